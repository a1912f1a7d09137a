//! End-to-end tests: a real daemon in a temp data root, driven by berth's CLI and by the real `docker` CLI.
//! They need root (namespaces, overlayfs, cgroups) and Debian's busybox-static (`.ci/run` installs it).

mod common;

use common::{ok, text, Daemon, BERTH};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn hello_world_runs_from_the_embedded_image() {
    let d = Daemon::start();
    let out = d.berth(&["run", "--rm", "hello-world"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("Hello from berth!"),
        "{}",
        text(&out.stdout)
    );
    let ps = d.berth(&["ps", "-aq"]);
    assert_eq!(text(&ps.stdout).trim(), "", "--rm left a container behind");
}

#[test]
fn berth_cli_lifecycle_and_exit_codes() {
    let d = Daemon::start();
    d.import_busybox();
    let out = d.berth(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(text(&out.stdout), "out\n");
    assert_eq!(text(&out.stderr), "err\n");
    let out = d.berth(&[
        "run",
        "--rm",
        "-u",
        "nobody",
        "-e",
        "FOO=bar",
        "-w",
        "/etc",
        "--hostname",
        "box",
        "busybox",
        "sh",
        "-c",
        "id -u; echo $FOO; pwd; hostname",
    ]);
    assert_eq!(
        text(&out.stdout),
        "65534\nbar\n/etc\nbox\n",
        "{}",
        text(&out.stderr)
    );
    let out = d.berth(&["run", "busybox", "nosuchcmd"]);
    assert_eq!(out.status.code(), Some(127), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("executable file not found"));
    // The runtime's words and Docker's codes for what cannot run, found where the program runs: a path
    // that is not there (127), a file that is not executable and a directory (126). An auto-remove
    // container that could not start is removed; the others stay created.
    for (cmd, code, words) in [
        (
            "/bin/nope",
            127,
            "stat /bin/nope: no such file or directory",
        ),
        (
            "/etc/passwd",
            126,
            "exec: \"/etc/passwd\": permission denied",
        ),
        ("/etc", 126, "exec: \"/etc\": permission denied"),
    ] {
        let out = d.berth(&["run", "--name", "cannot", "busybox", cmd]);
        assert_eq!(
            out.status.code(),
            Some(code),
            "{cmd}: {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stderr).contains(words),
            "{cmd}: {}",
            text(&out.stderr)
        );
        let status = ok(&d.berth(&["inspect", "--format", "{{.State.Status}}", "cannot"]));
        assert_eq!(status.trim(), "created", "{cmd}");
        ok(&d.berth(&["rm", "cannot"]));
        let out = d.berth(&["run", "--rm", "--name", "cannot", "busybox", cmd]);
        assert_eq!(
            out.status.code(),
            Some(code),
            "{cmd}: {}",
            text(&out.stderr)
        );
        let out = d.berth(&["inspect", "cannot"]);
        assert!(!out.status.success(), "{cmd}: --rm removes the container");
    }
    let out = d.berth(&["run", "--rm", "nosuchimage"]);
    assert_eq!(out.status.code(), Some(125));
    // An auto-remove container's root is mounted at its create, ahead of the start; a removal without a
    // start unmounts it.
    let id = ok(&d.berth(&["create", "--rm", "busybox", "true"]));
    let rootfs = d
        .dir
        .path()
        .join("data/containers")
        .join(id.trim())
        .join("rootfs");
    let mounted = || {
        let want = format!(" {} ", rootfs.display());
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .any(|l| l.contains(&want))
    };
    let end = Instant::now() + Duration::from_secs(10);
    while !mounted() {
        assert!(
            Instant::now() < end,
            "the root of a created --rm container is mounted"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    ok(&d.berth(&["rm", id.trim()]));
    assert!(!mounted(), "rm unmounts it");
    // What is copied into such a container before its start goes through that mount, and its start sees it.
    let id = ok(&d.berth(&["create", "--rm", "busybox", "cat", "/hello"]));
    let file = d.dir.path().join("hello");
    std::fs::write(&file, "copied\n").unwrap();
    ok(&d.berth(&[
        "cp",
        file.to_str().unwrap(),
        &format!("{}:/hello", id.trim()),
    ]));
    assert_eq!(ok(&d.berth(&["start", "-a", id.trim()])), "copied\n");
    // A container's state directory (under the exec root) is made by what first writes into it: an exec's
    // process file, the shim's record of the exit; a start makes none.
    let id = ok(&d.berth(&["run", "-d", "busybox", "sleep", "100"]));
    let state = d.dir.path().join("x/containers").join(id.trim());
    assert!(!state.exists(), "{}", state.display());
    ok(&d.berth(&["exec", id.trim(), "true"]));
    assert!(state.is_dir());
    ok(&d.berth(&["stop", "-t", "0", id.trim()]));
    // The shim sends the exit first and records it after, so `stop` may return before the record is there.
    let end = Instant::now() + Duration::from_secs(10);
    while !state.join("exit.json").is_file() {
        assert!(
            Instant::now() < end,
            "the shim records the exit in exit.json"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    ok(&d.berth(&["rm", id.trim()]));
    // Read-only root and Docker's default capability set (no CAP_SYS_ADMIN: mount is refused).
    let out = d.berth(&[
        "run",
        "--rm",
        "--read-only",
        "busybox",
        "sh",
        "-c",
        "touch /x",
    ]);
    assert_ne!(out.status.code(), Some(0));
    let out = d.berth(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "grep CapEff /proc/self/status",
    ]);
    assert!(
        text(&out.stdout).contains("00000000a80425fb"),
        "{}",
        text(&out.stdout)
    );
    // No descriptor of the daemon or the shim reaches the container: ls sees its stdio and its own dir fd.
    let out = d.berth(&["run", "--rm", "busybox", "ls", "/proc/self/fd"]);
    assert_eq!(
        text(&out.stdout).split_whitespace().collect::<Vec<_>>(),
        vec!["0", "1", "2", "3"],
        "{}",
        text(&out.stderr)
    );
    // ulimits: within the daemon's hard limit they apply; above it they need CAP_SYS_RESOURCE, and a daemon
    // without it (like this CI machine) refuses with a message that says so.
    let out = d.berth(&[
        "run",
        "--rm",
        "--ulimit",
        "nofile=1024:2048",
        "busybox",
        "sh",
        "-c",
        "ulimit -n; ulimit -Hn",
    ]);
    assert_eq!(text(&out.stdout), "1024\n2048\n", "{}", text(&out.stderr));
    let out = d.berth(&[
        "run",
        "--rm",
        "--ulimit",
        "nofile=1048576:1048576",
        "busybox",
        "sh",
        "-c",
        "ulimit -Hn",
    ]);
    if has_cap_sys_resource() {
        assert_eq!(text(&out.stdout), "1048576\n", "{}", text(&out.stderr));
    } else {
        assert_eq!(out.status.code(), Some(125));
        assert!(
            text(&out.stderr).contains("CAP_SYS_RESOURCE"),
            "{}",
            text(&out.stderr)
        );
    }
}

fn has_cap_sys_resource() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("CapEff:")
                    .map(|h| u64::from_str_radix(h.trim(), 16).unwrap_or(0))
            })
        })
        .is_some_and(|c| c & (1 << 24) != 0)
}

#[test]
fn docker_cli_runs_lists_inspects_logs_stops_removes() {
    let d = Daemon::start();
    d.import_busybox();
    let out = d.docker(&["run", "--rm", "busybox", "echo", "hello docker"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "hello docker\n");
    let out = d.docker(&[
        "run",
        "-d",
        "--name",
        "web",
        "busybox",
        "sh",
        "-c",
        "echo started; sleep 100",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let id = text(&out.stdout).trim().to_string();
    assert_eq!(id.len(), 64);
    let out = d.docker(&["ps", "--format", "{{.Names}} {{.Status}}"]);
    assert!(
        text(&out.stdout).starts_with("web Up"),
        "{}",
        text(&out.stdout)
    );
    let out = d.docker(&[
        "inspect",
        "--format",
        "{{.State.Running}} {{.Name}} {{.Config.Image}}",
        "web",
    ]);
    assert_eq!(text(&out.stdout).trim(), "true /web busybox");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let out = d.docker(&["logs", "web"]);
        if text(&out.stdout) == "started\n" {
            break;
        }
        assert!(Instant::now() < deadline, "logs: {:?}", text(&out.stdout));
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = d.docker(&["rm", "web"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("container is running"),
        "{}",
        text(&out.stderr)
    );
    let out = d.docker(&["stop", "-t", "1", "web"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = d.docker(&[
        "inspect",
        "--format",
        "{{.State.Status}} {{.State.ExitCode}}",
        "web",
    ]);
    assert_eq!(text(&out.stdout).trim(), "exited 137");
    let out = d.docker(&["rm", "web"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = d.docker(&["inspect", "web"]);
    assert_eq!(out.status.code(), Some(1));
    let out = d.docker(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert!(
        text(&out.stdout).contains("busybox:latest"),
        "{}",
        text(&out.stdout)
    );
}

/// The nice value of process `pid`, from its `stat`.
fn nice_of(pid: u32) -> i64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // After the command's closing parenthesis: state is the 3rd field, nice the 19th.
    stat.rsplit_once(") ")
        .unwrap()
        .1
        .split(' ')
        .nth(16)
        .unwrap()
        .parse()
        .unwrap()
}

/// The processes named `berth-spare` whose parent is `parent`.
fn spares_of(parent: u32) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| common::is_spare_shim(&e.path()))
        .filter_map(|e| e.file_name().to_string_lossy().parse::<u32>().ok())
        .filter(|&pid| common::parent_pid(pid) == Some(parent))
        .collect()
}

#[test]
fn a_spare_shim_waits_for_the_next_start_and_goes_with_the_daemon() {
    let mut d = Daemon::start();
    d.import_busybox();
    let daemon = d.pid().expect("daemon pid");
    let wait_for = |what: &str, f: &dyn Fn() -> bool| {
        let end = Instant::now() + Duration::from_secs(10);
        while !f() {
            assert!(Instant::now() < end, "{what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    wait_for("the daemon keeps a spare shim", &|| {
        spares_of(daemon).len() == 1
    });
    let spare = spares_of(daemon)[0];
    // On cgroup v1 a spare makes its container's cgroup ahead (under the daemon's cgroup parent, `/berth`);
    // the start renames it.
    let v1 = std::path::Path::new("/sys/fs/cgroup/memory/cgroup.procs").exists();
    let spare_cgroup = |pid: u32| format!("/sys/fs/cgroup/memory/berth/spare-{pid}");
    if v1 {
        wait_for("the spare's cgroup", &|| {
            std::path::Path::new(&spare_cgroup(spare)).is_dir()
        });
    }
    // On v1 it also clones its container's init ahead, in that cgroup.
    let ahead_of = |spare: u32| {
        let procs = std::fs::read_to_string(format!("{}/cgroup.procs", spare_cgroup(spare)))
            .unwrap_or_default();
        common::children_of(spare).into_iter().find(|&p| {
            std::fs::read_to_string(format!("/proc/{p}/comm"))
                .is_ok_and(|c| c.trim() == "berth-init")
                && procs.lines().any(|l| l.trim() == p.to_string())
        })
    };
    let ahead = if v1 {
        wait_for("the init cloned ahead, in the spare's cgroup", &|| {
            ahead_of(spare).is_some()
        });
        ahead_of(spare)
    } else {
        None
    };
    // A spare readies itself (and that init) at the lowest priority, in a session of its own.
    let daemon_nice = nice_of(daemon);
    wait_for("the spare at the lowest priority", &|| nice_of(spare) == 19);
    if let Some(ahead) = ahead {
        assert_eq!(nice_of(ahead), 19, "the init cloned ahead");
    }
    let sid = |pid: u32| {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        stat.rsplit_once(") ")
            .unwrap()
            .1
            .split(' ')
            .nth(3)
            .unwrap()
            .to_string()
    };
    assert_eq!(sid(spare), spare.to_string(), "the spare leads a session");
    // It binds its control socket ahead, under a name of its own; the start renames it.
    let sockets = d.dir.path().join("x/s");
    let prebound = sockets.join(format!(".spare-{spare}"));
    {
        use std::os::unix::fs::FileTypeExt;
        wait_for("the spare's socket bound ahead", &|| {
            std::fs::symlink_metadata(&prebound).is_ok_and(|m| m.file_type().is_socket())
        });
    }
    // The next start hands the spare its container: the spare is the init's parent, a shim like others,
    // and both run at the daemon's priority.
    ok(&d.berth(&["run", "-d", "--name", "took", "busybox", "sleep", "100"]));
    let init = d.container_pid("took");
    assert_eq!(nice_of(spare), daemon_nice, "the shim");
    assert!(!prebound.exists(), "renamed for the container");
    let id = text(&d.berth(&["inspect", "--format", "{{.Id}}", "took"]).stdout);
    assert!(sockets.join(&id.trim()[..24]).exists());
    assert_eq!(nice_of(init), daemon_nice, "the container's process");
    if let Some(ahead) = ahead {
        assert_eq!(init, ahead, "the init cloned ahead runs the container");
    }
    if v1 {
        let id = text(&d.berth(&["inspect", "--format", "{{.Id}}", "took"]).stdout);
        let ours = format!("/sys/fs/cgroup/memory/berth/{}", id.trim());
        assert!(std::path::Path::new(&ours).is_dir(), "{ours}");
        assert!(!std::path::Path::new(&spare_cgroup(spare)).exists());
        let procs = std::fs::read_to_string(format!("{ours}/cgroup.procs")).unwrap();
        assert!(
            procs.lines().any(|l| l.trim() == init.to_string()),
            "the init is in the renamed cgroup: {procs:?}"
        );
    }
    assert_eq!(
        common::parent_pid(init),
        Some(spare),
        "the spare runs the container"
    );
    let comm = std::fs::read_to_string(format!("/proc/{spare}/comm")).unwrap();
    assert_eq!(comm.trim(), "berth-shim");
    assert_eq!(common::shims_under(d.dir.path()), 1);
    // And a new spare takes its place.
    wait_for("a new spare after the start", &|| {
        spares_of(daemon).iter().any(|&p| p != spare)
    });
    let next = spares_of(daemon)[0];
    let out = d.berth(&["logs", "took"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // An init cloned ahead that died while it waited is replaced by one cloned at the start.
    if v1 {
        wait_for("the next spare's init cloned ahead", &|| {
            ahead_of(next).is_some()
        });
        let dead = ahead_of(next).unwrap();
        let killed = std::process::Command::new("kill")
            .args(["-9", &dead.to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let out = ok(&d.berth(&["run", "--rm", "--name", "fresh", "busybox", "echo", "fresh"]));
        assert_eq!(out, "fresh\n");
        assert!(!common::children_of(next).contains(&dead), "it was reaped");
    }
    let next = {
        wait_for("a new spare after the start", &|| {
            spares_of(daemon).iter().any(|&p| p != next)
        });
        spares_of(daemon)[0]
    };
    // A daemon killed outright leaves no spare behind (it reads the end of its input), while the
    // container's shim keeps the container running.
    d.kill9();
    wait_for("the spare exits with the daemon", &|| {
        !std::path::Path::new(&format!("/proc/{next}")).exists()
            || std::fs::read_to_string(format!("/proc/{next}/stat"))
                .is_ok_and(|s| s.rsplit_once(") ").is_some_and(|x| x.1.starts_with('Z')))
    });
    assert!(
        std::path::Path::new(&format!("/proc/{spare}")).exists(),
        "the container's shim outlives the daemon"
    );
    assert!(
        !sockets.join(format!(".spare-{next}")).exists(),
        "the spare removes the socket it bound ahead"
    );
    if v1 {
        assert!(
            !std::path::Path::new(&spare_cgroup(next)).exists(),
            "the spare removed its cgroup"
        );
    }
    d.spawn();
    let out = d.berth(&["inspect", "--format", "{{.State.Running}}", "took"]);
    assert_eq!(text(&out.stdout).trim(), "true", "{}", text(&out.stderr));
    ok(&d.berth(&["rm", "-f", "took"]));
}

#[test]
fn containers_survive_a_daemon_killed_with_sigkill() {
    let mut d = Daemon::start();
    d.import_busybox();
    let out = d.berth(&[
        "run",
        "-d",
        "--name",
        "keep",
        "busybox",
        "sh",
        "-c",
        "echo one; sleep 1; echo two; sleep 100",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // A record whose directory a crash left incomplete (its files are written last) is completed.
    let half = ok(&d.berth(&["create", "--name", "half", "busybox", "true"]));
    let half_dir = d.dir.path().join("data/containers").join(half.trim());
    // An auto-remove container's create is put on disk by its start (before its process runs): a running
    // one survives; one that was only created is gone after the crash, as start-up removes it anyway.
    // These are the last commits before the crash (a durable one after them would save them anyway).
    let created = ok(&d.berth(&["create", "--rm", "--name", "rmnew", "busybox", "true"]));
    let created_dir = d.dir.path().join("data/containers").join(created.trim());
    // (Without a network: a started container with endpoints is saved durably anyway.)
    ok(&d.berth(&[
        "run",
        "--rm",
        "-d",
        "--network",
        "none",
        "--name",
        "rmkeep",
        "busybox",
        "sleep",
        "100",
    ]));
    d.kill9();
    std::thread::sleep(Duration::from_millis(1500));
    for f in ["resolv.conf", "hosts", "hostname"] {
        std::fs::remove_file(half_dir.join(f)).unwrap();
    }
    d.spawn();
    let out = d.berth(&["inspect", "--format", "{{.State.Running}}", "keep"]);
    assert_eq!(text(&out.stdout).trim(), "true", "{}", text(&out.stderr));
    let out = d.berth(&["inspect", "--format", "{{.State.Running}}", "rmkeep"]);
    assert_eq!(text(&out.stdout).trim(), "true", "{}", text(&out.stderr));
    assert!(!d.berth(&["inspect", "rmnew"]).status.success());
    assert!(
        !created_dir.exists(),
        "the created auto-remove container's files are gone"
    );
    assert!(half_dir.join("resolv.conf").exists());
    let out = d.berth(&["start", "-a", "half"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    ok(&d.berth(&["rm", "-f", "rmkeep", "half"]));
    let out = d.berth(&["logs", "keep"]);
    assert_eq!(
        text(&out.stdout),
        "one\ntwo\n",
        "logs kept flowing while the daemon was down"
    );
    // An exit while the daemon is down is recorded with its code.
    let out = d.berth(&[
        "run",
        "-d",
        "--name",
        "quick",
        "busybox",
        "sh",
        "-c",
        "sleep 1; exit 5",
    ]);
    assert!(out.status.success());
    // An auto-remove container that ends while the daemon is down is removed, files and all.
    let gone = ok(&d.berth(&["run", "--rm", "-d", "busybox", "sleep", "1"]));
    let gone = gone.trim();
    let gone_dir = d.dir.path().join("data/containers").join(gone);
    assert!(gone_dir.exists());
    d.kill9();
    std::thread::sleep(Duration::from_millis(2000));
    // What a crash in the middle of a create leaves: a container directory with no record.
    let orphan = d.dir.path().join("data/containers").join("ab".repeat(32));
    std::fs::create_dir_all(orphan.join("upper/etc")).unwrap();
    std::fs::write(orphan.join("config.v2.json"), "{}").unwrap();
    d.spawn();
    assert!(
        !orphan.exists(),
        "start-up removes container files with no record"
    );
    let out = d.berth(&[
        "inspect",
        "--format",
        "{{.State.Status}} {{.State.ExitCode}}",
        "quick",
    ]);
    assert_eq!(text(&out.stdout).trim(), "exited 5");
    assert_eq!(
        ok(&d.berth(&["ps", "-aq", "--no-trunc"]))
            .lines()
            .filter(|l| *l == gone)
            .count(),
        0
    );
    assert!(
        !gone_dir.exists(),
        "the auto-removed container's files are gone"
    );
    // A second run of a container that had ended before, ending while the daemon is down: its new exit is
    // recorded, not the old one kept.
    let counter = "n=$(cat /n 2>/dev/null || echo 0); n=$((n+1)); echo $n > /n; sleep 1; exit $n";
    ok(&d.berth(&[
        "run", "-d", "--name", "again", "busybox", "sh", "-c", counter,
    ]));
    assert_eq!(ok(&d.berth(&["wait", "again"])).trim(), "1");
    ok(&d.berth(&["start", "again"]));
    d.kill9();
    std::thread::sleep(Duration::from_millis(2000));
    d.spawn();
    let out = d.berth(&[
        "inspect",
        "--format",
        "{{.State.Status}} {{.State.ExitCode}}",
        "again",
    ]);
    assert_eq!(text(&out.stdout).trim(), "exited 2");
}

#[test]
fn a_second_daemon_on_the_same_data_root_is_refused() {
    let d = Daemon::start();
    let out = Command::new(BERTH)
        .args([
            "daemon",
            "-H",
            &format!("unix://{}/other.sock", d.dir.path().display()),
        ])
        .arg("--data-root")
        .arg(d.dir.path().join("data"))
        .arg("--exec-root")
        .arg(d.dir.path().join("y"))
        .arg("--config-file")
        .arg(d.dir.path().join("no-daemon.json"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("already locked"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn bad_input_gets_docker_errors() {
    let d = Daemon::start();
    let out = d.docker(&["run", "--rm", "UPPER"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        text(&out.stderr).contains("invalid reference format"),
        "{}",
        text(&out.stderr)
    );
    let out = d.docker(&["inspect", "nosuch"]);
    assert!(
        text(&out.stderr).contains("No such object"),
        "{}",
        text(&out.stderr)
    );
    d.import_busybox();
    let out = d.docker(&["run", "--name", "dup", "busybox", "true"]);
    assert!(out.status.success());
    let out = d.docker(&["run", "--name", "dup", "busybox", "true"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        text(&out.stderr).contains("is already in use by container"),
        "{}",
        text(&out.stderr)
    );
}

/// `2026-11-28T13:14:46.913875123Z`: date, `T`, time with nanoseconds, `Z`.
fn chrono_like_rfc3339(t: &str) -> bool {
    let b = t.as_bytes();
    b.len() == 30 && b[4] == b'-' && b[10] == b'T' && b[19] == b'.' && t.ends_with('Z')
}

#[test]
fn init_runs_the_command_as_pid_2_and_passes_its_status() {
    let d = Daemon::start();
    d.import_busybox();
    let out = d.berth(&[
        "run",
        "--rm",
        "--init",
        "busybox",
        "sh",
        "-c",
        "echo $$; exit 4",
    ]);
    assert_eq!(text(&out.stdout), "2\n", "{}", text(&out.stderr));
    assert_eq!(out.status.code(), Some(4));
    let out = d.berth(&["run", "--rm", "busybox", "sh", "-c", "echo $$"]);
    assert_eq!(text(&out.stdout), "1\n");
    // The container's first child is 2 (the thread that compiled the seccomp filter had that id).
    let out = d.berth(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "cut -d' ' -f1 /proc/self/stat & wait",
    ]);
    assert_eq!(text(&out.stdout), "2\n", "{}", text(&out.stderr));
}

#[test]
fn resource_limits_reach_the_cgroup() {
    let d = Daemon::start();
    d.import_busybox();
    // v1 (memory, pids hierarchies) or v2 (unified) seen through the container's cgroup namespace.
    let script =
        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/memory.max 2>/dev/null; \
                  cat /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/pids.max 2>/dev/null; true";
    let out = d.berth(&[
        "run",
        "--rm",
        "--memory",
        "64m",
        "--pids-limit",
        "50",
        "busybox",
        "sh",
        "-c",
        script,
    ]);
    assert_eq!(text(&out.stdout), "67108864\n50\n", "{}", text(&out.stderr));
}

#[test]
fn oom_kill_is_reported_in_inspect() {
    let d = Daemon::start();
    d.import_busybox();
    let out = d.berth(&[
        "run",
        "--name",
        "hog",
        "--memory",
        "16m",
        "--memory-swap",
        "16m",
        "busybox",
        "sh",
        "-c",
        "a=aaaaaaaa; while true; do a=$a$a; done",
    ]);
    assert_eq!(out.status.code(), Some(137), "{}", text(&out.stderr));
    let out = d.berth(&[
        "inspect",
        "--format",
        "{{.State.OOMKilled}} {{.State.ExitCode}}",
        "hog",
    ]);
    assert_eq!(text(&out.stdout).trim(), "true 137");
}

#[test]
fn save_and_load_round_trip_through_the_docker_cli() {
    let d = Daemon::start();
    d.import_busybox();
    let id = text(&d.docker(&["images", "-q", "--no-trunc", "busybox"]).stdout)
        .trim()
        .to_string();
    assert!(id.starts_with("sha256:"), "{id}");
    let archive = d.dir.path().join("busybox-save.tar");
    let out = d.docker(&["save", "-o", archive.to_str().unwrap(), "busybox"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let listing = Command::new("tar")
        .arg("-tf")
        .arg(&archive)
        .output()
        .unwrap();
    let names = text(&listing.stdout);
    assert!(
        names.contains("manifest.json")
            && names.contains("index.json")
            && names.contains("oci-layout"),
        "{names}"
    );
    let out = d.docker(&["rmi", "busybox"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&d.docker(&["images", "-q"]).stdout).trim().is_empty()
            || !text(&d.docker(&["images"]).stdout).contains("busybox")
    );
    let out = d.docker(&["load", "-i", archive.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("Loaded image: busybox:latest"),
        "{}",
        text(&out.stdout)
    );
    let again = text(&d.docker(&["images", "-q", "--no-trunc", "busybox"]).stdout)
        .trim()
        .to_string();
    assert_eq!(again, id);
    let out = d.docker(&["run", "--rm", "busybox", "echo", "loaded"]);
    assert_eq!(text(&out.stdout), "loaded\n");
}

#[test]
fn tag_rmi_and_images_in_use() {
    let d = Daemon::start();
    d.import_busybox();
    assert!(d.berth(&["tag", "busybox", "mybox:1"]).status.success());
    let out = d.berth(&["images", "--format", "{{.Repository}}:{{.Tag}}", "mybox"]);
    assert_eq!(text(&out.stdout), "mybox:1\n");
    let out = d.berth(&["rmi", "mybox:1"]);
    assert_eq!(
        text(&out.stdout),
        "Untagged: mybox:1\n",
        "{}",
        text(&out.stderr)
    );
    assert!(d
        .berth(&["create", "--name", "user", "busybox", "true"])
        .status
        .success());
    let out = d.berth(&["rmi", "busybox"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("conflict"),
        "{}",
        text(&out.stderr)
    );
    let out = d.berth(&["history", "busybox"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("IMAGE"),
        "{}",
        text(&out.stdout)
    );
    let out = d.berth(&["system", "df"]);
    assert!(
        text(&out.stdout).contains("Images") && text(&out.stdout).contains("Containers"),
        "{}",
        text(&out.stdout)
    );
    assert!(d.berth(&["rm", "user"]).status.success());
    let out = d.berth(&["rmi", "busybox"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("Deleted: sha256:"));
}

#[test]
fn events_record_the_container_lifecycle() {
    let d = Daemon::start();
    d.import_busybox();
    let since = format!(
        "{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            - 1
    );
    // Several: a short container's exit can reach the daemon while its start is being answered, and the
    // order of the events must not depend on which comes first.
    for name in ["ev", "ev1", "ev2", "ev3", "ev4"] {
        assert!(d
            .berth(&["run", "--rm", "--name", name, "busybox", "true"])
            .status
            .success());
    }
    let until = format!(
        "{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 1
    );
    let events = |filter: &str, format: &str| {
        text(
            &d.berth(&[
                "events", "--since", &since, "--until", &until, "--filter", filter, "--format",
                format,
            ])
            .stdout,
        )
    };
    let actions = events("container=ev", "{{.Action}}");
    assert_eq!(
        actions.lines().collect::<Vec<_>>(),
        vec!["create", "start", "die", "destroy"],
        "{actions}"
    );
    let all = events("type=container", "{{.Actor.Attributes.name}} {{.Action}}");
    for name in ["ev1", "ev2", "ev3", "ev4"] {
        let actions: Vec<&str> = all
            .lines()
            .filter_map(|l| l.strip_prefix(&format!("{name} ")))
            .collect();
        assert_eq!(actions, vec!["create", "start", "die", "destroy"], "{all}");
    }
    let out = d.docker(&[
        "events",
        "--since",
        &since,
        "--until",
        &until,
        "--filter",
        "type=container",
        "--filter",
        "event=die",
    ]);
    assert!(
        text(&out.stdout).contains("container die"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn logs_follow_tail_and_rotation() {
    let d = Daemon::start();
    d.import_busybox();
    // `--log-driver none`: output still reaches an attached client, nothing is kept, `logs` says why;
    // a driver berth does not have is refused at create.
    for cli in ["berth", "docker"] {
        let run = |args: &[&str]| {
            if cli == "docker" {
                d.docker(args)
            } else {
                d.berth(args)
            }
        };
        let name = format!("quiet-{cli}");
        let out = run(&[
            "run",
            "--name",
            &name,
            "--log-driver",
            "none",
            "busybox",
            "echo",
            "unlogged",
        ]);
        assert_eq!(
            text(&out.stdout),
            "unlogged\n",
            "{cli}: {}",
            text(&out.stderr)
        );
        let out = run(&["logs", &name]);
        assert!(!out.status.success(), "{cli}");
        assert!(
            text(&out.stderr).contains("configured logging driver does not support reading"),
            "{cli}: {}",
            text(&out.stderr)
        );
        let out = run(&["run", "--rm", "--log-driver", "syslog", "busybox", "true"]);
        assert!(!out.status.success(), "{cli}");
        assert!(
            text(&out.stderr).contains("no log driver named 'syslog'"),
            "{cli}: {}",
            text(&out.stderr)
        );
    }
    let out = d.berth(&["inspect", "--format", "{{.LogPath}}", "quiet-berth"]);
    let log = text(&out.stdout).trim().to_string();
    assert!(
        log.is_empty() || !std::path::Path::new(&log).exists(),
        "no log file: {log}"
    );
    let out = d.berth(&[
        "run",
        "-d",
        "--name",
        "counter",
        "busybox",
        "sh",
        "-c",
        "for i in 1 2 3; do echo $i; sleep 0.3; done",
    ]);
    assert!(out.status.success());
    let out = d.berth(&["logs", "-f", "counter"]);
    assert_eq!(text(&out.stdout), "1\n2\n3\n");
    let out = d.docker(&["logs", "--tail", "1", "counter"]);
    assert_eq!(text(&out.stdout), "3\n");
    let out = d.docker(&["logs", "-t", "counter"]);
    let stamped: Vec<(String, String)> = text(&out.stdout)
        .lines()
        .map(|l| {
            let (t, rest) = l.split_once(' ').unwrap_or(("", l));
            (t.to_string(), rest.to_string())
        })
        .collect();
    assert_eq!(
        stamped.iter().map(|(_, r)| r.as_str()).collect::<Vec<_>>(),
        vec!["1", "2", "3"]
    );
    for (t, _) in &stamped {
        assert!(chrono_like_rfc3339(t), "not a timestamp: {t:?}");
    }
    // json-file rotation: small files, three of them at most.
    let out = d.berth(&[
        "run",
        "--name",
        "chatty",
        "--log-opt",
        "max-size=2k",
        "--log-opt",
        "max-file=3",
        "busybox",
        "sh",
        "-c",
        "i=0; while [ $i -lt 400 ]; do echo line $i; i=$((i+1)); done",
    ]);
    assert!(out.status.success());
    let path = text(
        &d.berth(&["inspect", "--format", "{{.LogPath}}", "chatty"])
            .stdout,
    )
    .trim()
    .to_string();
    assert!(Path::new(&format!("{path}.1")).exists() && Path::new(&format!("{path}.2")).exists());
    assert!(!Path::new(&format!("{path}.3")).exists());
    let out = d.berth(&["logs", "--tail", "1", "chatty"]);
    assert_eq!(text(&out.stdout), "line 399\n");
}

#[test]
fn import_refuses_a_tarball_that_escapes() {
    let d = Daemon::start();
    let bad = d.dir.path().join("evil.tar");
    {
        let mut b = tar::Builder::new(std::fs::File::create(&bad).unwrap());
        let mut h = tar::Header::new_old();
        let name = b"../../escaped-by-berth-test";
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.set_size(4);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        b.append(&h, &b"evil"[..]).unwrap();
        b.finish().unwrap();
    }
    let out = d.berth(&["import", bad.to_str().unwrap(), "evil:latest"]);
    assert_eq!(out.status.code(), Some(125), "{}", text(&out.stdout));
    assert!(!text(&out.stderr).is_empty());
    assert!(!text(&d.berth(&["images"]).stdout).contains("evil"));
    for p in ["/escaped-by-berth-test", "/tmp/escaped-by-berth-test"] {
        assert!(!Path::new(p).exists(), "{p} was written");
    }
    let truncated = d.dir.path().join("truncated.tar");
    let full = std::fs::read(&bad).unwrap();
    std::fs::write(&truncated, &full[..700]).unwrap();
    let out = d.berth(&["import", truncated.to_str().unwrap(), "half:latest"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(!text(&d.berth(&["images"]).stdout).contains("half"));
}

#[test]
fn on_a_cgroup_v2_host_device_rules_hold_and_pause_and_exec_work() {
    // A daemon shown a pure v2 host: no devices.allow there, only the eBPF filter keeps a container
    // from a device node it makes itself.
    let d = Daemon::start_on_cgroup_v2();
    d.import_busybox_full();
    let out = ok(&d.berth(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "grep ^0:: /proc/self/cgroup; grep -c ' - cgroup2 ' /proc/self/mountinfo",
    ]));
    assert_eq!(
        out, "0::/\n1\n",
        "the container is in its own v2 cgroup namespace"
    );
    let probe = "mknod /dev/probe c 10 229 && (: < /dev/probe) 2>&1 && echo opened; \
                 head -c 3 /dev/zero | wc -c";
    let out = ok(&d.berth(&["run", "--rm", "busybox", "sh", "-c", probe]));
    assert!(
        out.contains("Operation not permitted") && !out.contains("opened"),
        "a device outside Docker's list cannot be opened: {out}"
    );
    assert!(out.ends_with("3\n"), "/dev/zero can: {out}");
    let out = ok(&d.berth(&["run", "--rm", "--privileged", "busybox", "sh", "-c", probe]));
    assert!(
        out.contains("opened"),
        "a privileged container has every device: {out}"
    );

    ok(&d.berth(&["run", "-d", "--name", "v2", "busybox", "sleep", "300"]));
    assert_eq!(
        ok(&d.berth(&["exec", "v2", "grep", "^0::", "/proc/self/cgroup"])),
        "0::/\n"
    );
    ok(&d.berth(&["pause", "v2"]));
    assert_eq!(
        ok(&d.berth(&["inspect", "-f", "{{.State.Status}}", "v2"])),
        "paused\n"
    );
    let id = ok(&d.berth(&["inspect", "-f", "{{.Id}}", "v2"]));
    let cgroup = d.v2_cgroup.as_ref().unwrap().join("berth").join(id.trim());
    assert_eq!(
        std::fs::read_to_string(cgroup.join("cgroup.freeze")).unwrap(),
        "1\n",
        "paused through cgroup.freeze"
    );
    ok(&d.berth(&["unpause", "v2"]));
    assert_eq!(ok(&d.berth(&["exec", "v2", "echo", "thawed"])), "thawed\n");
    ok(&d.berth(&["rm", "-f", "v2"]));
    assert!(
        !cgroup.exists(),
        "the container's cgroup is removed with it"
    );
}

#[test]
fn the_runtime_keeps_mounts_inside_the_root_and_kernel_files_read_only() {
    let d = Daemon::start();
    d.import_busybox_full();
    // An image whose /evil is a symlink to a host path: a runtime that followed it would create (and mount
    // on) a directory of the host's.
    let host = d.dir.path().join("outside-the-root");
    let host_s = host.to_str().unwrap();
    ok(&d.berth(&[
        "run", "--name", "mk", "busybox", "ln", "-s", host_s, "/evil",
    ]));
    ok(&d.berth(&["commit", "mk", "evil:1"]));
    let script = format!(
        "grep -q ' {host_s}/sub ' /proc/self/mountinfo && echo tmpfs-inside-the-root; \
         (touch /sys/fs/cgroup/x) 2>/dev/null || echo cgroup-ro; \
         (mkdir /sys/fs/cgroup/pids/x || mkdir /sys/fs/cgroup/x) 2>/dev/null || echo cgroups-ro; \
         wc -c < /proc/timer_list; \
         (echo x > /proc/sys/kernel/domainname) 2>/dev/null || echo proc-sys-ro; \
         ls -l /dev/null | cut -c1-10; echo $$"
    );
    let out = d.berth(&[
        "run",
        "--rm",
        "--tmpfs",
        "/evil/sub",
        "evil:1",
        "sh",
        "-c",
        &script,
    ]);
    assert_eq!(
        text(&out.stdout),
        "tmpfs-inside-the-root\ncgroup-ro\ncgroups-ro\n0\nproc-sys-ro\ncrw-rw-rw-\n1\n",
        "{}",
        text(&out.stderr)
    );
    assert!(!host.exists(), "{} was created on the host", host.display());
}

#[test]
fn devices_reach_the_container_with_device_and_privileged() {
    use std::os::unix::fs::FileTypeExt;
    let d = Daemon::start();
    d.import_busybox_full();
    // The docker CLI's --device, renamed in the container and limited to read and write.
    let out = d.docker(&[
        "run",
        "--rm",
        "--device",
        "/dev/null:/dev/mynull:rw",
        "busybox",
        "sh",
        "-c",
        "ls -l /dev/mynull | cut -c1-10; echo x > /dev/mynull && echo wrote",
    ]);
    assert_eq!(
        text(&out.stdout),
        "crw-rw-rw-\nwrote\n",
        "{}",
        text(&out.stderr)
    );
    let out = d.berth(&[
        "run",
        "--rm",
        "--device",
        "/dev/nope-berth",
        "busybox",
        "true",
    ]);
    // Docker finds devices at start, and its CLI reads "no such file or directory" there as 127.
    assert_eq!(out.status.code(), Some(127));
    assert!(
        text(&out.stderr).contains("error gathering device information while adding custom device"),
        "{}",
        text(&out.stderr)
    );
    // --privileged brings the host's devices: one the default set lacks.
    let defaults = [
        "null", "zero", "full", "random", "urandom", "tty", "console", "ptmx",
    ];
    let extra = std::fs::read_dir("/dev")
        .unwrap()
        .flatten()
        .filter(|e| {
            let t = e.file_type().unwrap();
            t.is_char_device() || t.is_block_device()
        })
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| !defaults.contains(&n.as_str()))
        .expect("the host has a device beyond the default set");
    let probe = format!("test -e /dev/{extra} && echo present || echo absent");
    let out = d.berth(&["run", "--rm", "--privileged", "busybox", "sh", "-c", &probe]);
    assert_eq!(
        text(&out.stdout),
        "present\n",
        "{extra}: {}",
        text(&out.stderr)
    );
    let out = d.berth(&["run", "--rm", "busybox", "sh", "-c", &probe]);
    assert_eq!(text(&out.stdout), "absent\n", "{extra}");
}

#[test]
fn shims_and_container_inits_run_from_a_read_only_binary() {
    // Until it execs, a container's init is the shim's binary: a container must never reach a writable
    // copy of it through /proc/PID/exe (CVE-2019-5736).
    let d = Daemon::start();
    d.import_busybox();
    ok(&d.berth(&["run", "-d", "--name", "shimmed", "busybox", "sleep", "30"]));
    let init = d.container_pid("shimmed");
    // The init's parent is its shim (which may have been started as a spare, without the container's id
    // on its command line).
    let shim = common::parent_pid(init).expect("the container's shim runs");
    let cmd = String::from_utf8_lossy(&std::fs::read(format!("/proc/{shim}/cmdline")).unwrap())
        .replace('\0', " ");
    assert!(
        cmd.contains(" shim "),
        "the init's parent is no shim: {cmd}"
    );
    let exe = std::fs::read_link(format!("/proc/{shim}/exe")).unwrap();
    assert!(exe.starts_with(d.dir.path()), "{exe:?}");
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let opts = info
        .lines()
        .find(|l| l.split(' ').nth(4) == Some(exe.to_str().unwrap()))
        .and_then(|l| l.split(' ').nth(5).map(str::to_string))
        .unwrap_or_else(|| panic!("{exe:?} is not a mount point"));
    assert!(opts.split(',').any(|o| o == "ro"), "{exe:?}: {opts}");
    ok(&d.berth(&["rm", "-f", "shimmed"]));
}

#[test]
fn runc_runs_the_bundle_berth_generated_with_the_same_result() {
    let d = Daemon::start();
    d.import_busybox();
    let script = "id; hostname; grep -E '^(CapEff|CapBnd|NoNewPrivs|Seccomp):' /proc/self/status; cat /etc/hostname";
    let out = d.berth(&[
        "run",
        "--name",
        "ref",
        "--hostname",
        "same",
        // The bundle is replayed after the container is gone: no namespace path to join.
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        script,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let berth_out = text(&out.stdout);
    let Some(runc) = ["/usr/sbin/runc", "/usr/bin/runc"]
        .into_iter()
        .find(|p| Path::new(p).exists())
    else {
        panic!("runc is not installed: the test script installs it");
    };
    let id = text(&d.berth(&["inspect", "--format", "{{.Id}}", "ref"]).stdout)
        .trim()
        .to_string();
    let cfg_path = d
        .dir
        .path()
        .join("data/containers")
        .join(&id)
        .join("config.json");
    let mut spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&cfg_path).unwrap()).unwrap();
    let bundle = d.dir.path().join("runc-bundle");
    std::fs::create_dir_all(&bundle).unwrap();
    spec["root"]["path"] = serde_json::json!(d.dir.path().join("bbroot").display().to_string());
    spec["root"]["readonly"] = serde_json::json!(true);
    // One level, so that runc's delete leaves nothing behind in any hierarchy.
    let cgroup = format!("berth-runc-test-{}", &id[..12]);
    spec["linux"]["cgroupsPath"] = serde_json::json!(format!("/{cgroup}"));
    std::fs::write(
        bundle.join("config.json"),
        serde_json::to_vec(&spec).unwrap(),
    )
    .unwrap();
    let name = format!("berth-test-{}", &id[..12]);
    let out = Command::new(runc)
        .args(["run", "--bundle", bundle.to_str().unwrap(), &name])
        .output()
        .unwrap();
    let _ = Command::new(runc).args(["delete", "-f", &name]).output();
    for hierarchy in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let _ = std::fs::remove_dir(hierarchy.path().join(&cgroup));
    }
    assert!(out.status.success(), "runc: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout), berth_out);
}

#[test]
fn containers_and_execs_start_with_default_signal_handling() {
    // The shim ignores SIGPIPE (it writes to clients that may go away); its programs must not inherit
    // that, or `yes | head` never ends. Nothing blocked, nothing ignored, as under Docker.
    let d = Daemon::start();
    d.import_busybox_full();
    // (busybox sh itself ignores SIGQUIT for what it runs, so the state is read by grep run directly.)
    let probe = ["grep", "-E", "^Sig(Blk|Ign):", "/proc/self/status"];
    let want = "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n";
    let out = d.berth(&[&["run", "--rm", "busybox"][..], &probe].concat());
    assert_eq!(text(&out.stdout), want, "{}", text(&out.stderr));
    let out = d.berth(&[
        "run",
        "--rm",
        "busybox",
        "timeout",
        "10",
        "sh",
        "-c",
        "yes | head -n 2",
    ]);
    assert!(out.status.success(), "yes | head must end by itself");
    assert_eq!(text(&out.stdout), "y\ny\n", "{}", text(&out.stderr));
    ok(&d.berth(&["run", "-d", "--name", "sig", "busybox", "sleep", "300"]));
    let out = d.berth(&[&["exec", "sig"][..], &probe].concat());
    assert_eq!(text(&out.stdout), want, "{}", text(&out.stderr));
    let out = d.berth(&[
        "exec",
        "sig",
        "timeout",
        "10",
        "sh",
        "-c",
        "yes | head -n 2",
    ]);
    assert!(out.status.success(), "yes | head must end by itself");
    assert_eq!(text(&out.stdout), "y\ny\n", "{}", text(&out.stderr));
    ok(&d.berth(&["rm", "-f", "sig"]));
}

#[test]
fn the_seccomp_filter_confines_the_container_and_its_execs() {
    // The filter is compiled once by the daemon and loaded by the shim (not by the runtime): check
    // that it is really in force. Creating a user namespace needs no capability, so only seccomp
    // (Docker's profile refuses `unshare` without CAP_SYS_ADMIN) stops it; unconfined, it works.
    let d = Daemon::start();
    d.import_busybox_full();
    let probe = [
        "sh",
        "-c",
        "unshare -U true && echo free; grep -E '^(Seccomp|Seccomp_filters|CapEff|CapPrm):' /proc/self/status",
    ];
    let run = |extra: &[&str]| {
        let mut args = vec!["run", "--rm"];
        args.extend(extra);
        args.push("busybox");
        args.extend(probe);
        let out = d.berth(&args);
        (text(&out.stdout), text(&out.stderr))
    };
    let (out, err) = run(&[]);
    assert!(!out.contains("free"), "{out}");
    assert!(err.contains("Operation not permitted"), "{err}");
    assert!(out.contains("Seccomp:\t2"), "{out}");
    // Docker's profile is compiled by a thread of the init's while the init sets its root up, then put
    // on the init with one that allows everything: two filters that decide as the first alone.
    assert!(out.contains("Seccomp_filters:\t2"), "{out}");
    // The capability lent for loading the filter is gone before the program runs.
    assert!(out.contains("CapEff:\t00000000a80425fb"), "{out}");
    assert!(out.contains("CapPrm:\t00000000a80425fb"), "{out}");
    let (out, _) = run(&["--security-opt", "seccomp=unconfined"]);
    assert!(out.contains("free") && out.contains("Seccomp:\t0"), "{out}");
    // With no_new_privs the filter goes on last, loaded by the init itself.
    let (out, _) = run(&["--security-opt", "no-new-privileges"]);
    assert!(
        !out.contains("free") && out.contains("Seccomp:\t2") && out.contains("Seccomp_filters:\t1"),
        "{out}"
    );
    let (out, _) = run(&["--user", "1000"]);
    assert!(
        out.contains("Seccomp:\t2") && out.contains("CapPrm:\t0000000000000000"),
        "{out}"
    );

    // Execs get the same filter and the container's capabilities, with the docker CLI too.
    ok(&d.berth(&["run", "-d", "--name", "confined", "busybox", "sleep", "300"]));
    for docker in [false, true] {
        let mut args = vec!["exec", "confined"];
        args.extend(probe);
        let out = if docker {
            d.docker(&args)
        } else {
            d.berth(&args)
        };
        let o = text(&out.stdout);
        assert!(!o.contains("free") && o.contains("Seccomp:\t2"), "{o}");
        assert!(o.contains("Seccomp_filters:\t1"), "{o}");
        assert!(o.contains("CapPrm:\t00000000a80425fb"), "{o}");
    }
    // A non-root exec keeps no capability; nothing of the shim's reaches the process (only stdio and
    // ls's own directory are open).
    let out = d.berth(&[
        "exec",
        "-u",
        "1000",
        "confined",
        "sh",
        "-c",
        &probe[2].replace("unshare -U true && echo free; ", ""),
    ]);
    let o = text(&out.stdout);
    assert!(
        o.contains("Seccomp:\t2")
            && o.contains("CapPrm:\t0000000000000000")
            && o.contains("CapEff:\t0000000000000000"),
        "{o}"
    );
    let out = d.berth(&["exec", "confined", "ls", "/proc/self/fd"]);
    assert_eq!(
        text(&out.stdout).split_whitespace().collect::<Vec<_>>(),
        ["0", "1", "2", "3"]
    );
    ok(&d.berth(&["rm", "-f", "confined"]));
    // With no_new_privs the exec gets it too, and the filter.
    ok(&d.berth(&[
        "run",
        "-d",
        "--name",
        "nnp",
        "--security-opt",
        "no-new-privileges",
        "busybox",
        "sleep",
        "300",
    ]));
    let out = d.berth(&[
        "exec",
        "nnp",
        "grep",
        "-E",
        "^(NoNewPrivs|Seccomp):",
        "/proc/self/status",
    ]);
    let o = text(&out.stdout);
    assert!(
        o.contains("NoNewPrivs:\t1") && o.contains("Seccomp:\t2"),
        "{o}"
    );
    ok(&d.berth(&["rm", "-f", "nnp"]));
}

#[test]
fn the_store_stays_consistent_when_the_daemon_is_killed_at_random_moments() {
    let mut d = Daemon::start();
    d.import_busybox();
    let tar = d.busybox_tarball();
    let saved = d.dir.path().join("saved.tar");
    assert!(d
        .berth(&["tag", "busybox", "loadme:latest"])
        .status
        .success());
    assert!(d
        .berth(&["save", "-o", saved.to_str().unwrap(), "loadme"])
        .status
        .success());
    assert!(d.berth(&["rmi", "loadme"]).status.success());
    let mut acknowledged_images = Vec::new();
    let mut acknowledged_containers = Vec::new();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    let mut rng = seed | 1;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    for i in 0..12 {
        let op = next() % 5;
        let name = format!("crash{i}");
        let args: Vec<String> = match op {
            0 => vec![
                "import".into(),
                tar.display().to_string(),
                format!("{name}:latest"),
            ],
            1 => vec![
                "create".into(),
                "--name".into(),
                name.clone(),
                "busybox".into(),
                "true".into(),
            ],
            2 => vec![
                "run".into(),
                "-d".into(),
                "--name".into(),
                name.clone(),
                "busybox".into(),
                "sleep".into(),
                "30".into(),
            ],
            3 => vec!["load".into(), "-i".into(), saved.display().to_string()],
            _ => match acknowledged_containers.pop() {
                Some(c) => vec!["rm".into(), "-f".into(), c],
                None => vec![
                    "create".into(),
                    "--name".into(),
                    name.clone(),
                    "busybox".into(),
                    "true".into(),
                ],
            },
        };
        let mut child = Command::new(BERTH)
            .args(&args)
            .env("BERTH_HOST", format!("unix://{}", d.socket().display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(next() % 120));
        d.kill9();
        let acked = child.wait().unwrap().success();
        d.spawn();
        let images = d.berth(&["images", "--format", "{{.Repository}}"]);
        assert!(
            images.status.success(),
            "images after crash {i}: {}\n{}",
            text(&images.stderr),
            d.log()
        );
        let ps = d.berth(&["ps", "-a", "--format", "{{.Names}}"]);
        assert!(
            ps.status.success(),
            "ps after crash {i}: {}",
            text(&ps.stderr)
        );
        if acked {
            match args[0].as_str() {
                "import" => acknowledged_images.push(name.clone()),
                "load" => acknowledged_images.push("loadme".into()),
                "create" | "run" => acknowledged_containers.push(name.clone()),
                _ => {}
            }
        }
        let images = text(&images.stdout);
        let ps = text(&ps.stdout);
        for img in &acknowledged_images {
            assert!(
                images.lines().any(|l| l == img),
                "acknowledged image {img} lost after crash {i}: {images}"
            );
        }
        for c in &acknowledged_containers {
            assert!(
                ps.lines().any(|l| l == c),
                "acknowledged container {c} lost after crash {i}: {ps}"
            );
        }
    }
    // No shim outlives the daemon's knowledge of it: one per running container, none for the rest.
    let running = text(&d.berth(&["ps", "-q"]).stdout).lines().count();
    assert_eq!(
        common::shims_under(d.dir.path()),
        running,
        "stray shims after the crash loop"
    );
    let out = d.berth(&["run", "--rm", "busybox", "echo", "still works"]);
    assert_eq!(text(&out.stdout), "still works\n", "{}", text(&out.stderr));
}

/// One raw HTTP/1.1 request on the daemon's socket; returns the status code and the body.
fn raw_request(d: &Daemon, method: &str, path: &str, body: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::os::unix::net::UnixStream::connect(d.socket()).unwrap();
    write!(s, "{method} {path} HTTP/1.1\r\nHost: berth\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let status = resp
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = resp
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

#[test]
fn the_api_answers_bad_requests_with_docker_statuses_and_messages() {
    let d = Daemon::start();
    d.import_busybox();
    let (st, body) = raw_request(&d, "POST", "/v1.47/containers/create", "{not json");
    assert_eq!(st, 400, "{body}");
    assert!(body.contains("\"message\""), "{body}");
    for bad in ["UPPER", "a::b", "x@sha256:short"] {
        let (st, body) = raw_request(
            &d,
            "POST",
            "/v1.47/containers/create",
            &format!("{{\"Image\": \"{bad}\"}}"),
        );
        assert_eq!(st, 400, "{bad}: {body}");
        assert!(body.contains("invalid reference format"), "{bad}: {body}");
    }
    let (st, body) = raw_request(
        &d,
        "POST",
        "/v1.47/containers/create",
        r#"{"Image": "nosuch"}"#,
    );
    assert_eq!(st, 404, "{body}");
    assert!(body.contains("No such image: nosuch"), "{body}");
    let (st, body) = raw_request(&d, "GET", "/v1.47/containers/nosuch/json", "");
    assert_eq!(st, 404);
    assert!(body.contains("No such container: nosuch"), "{body}");
    let (st, _) = raw_request(&d, "GET", "/v1.99/info", "");
    assert_eq!(st, 400);
    let (st, body) = raw_request(&d, "GET", "/v1.24/version", "");
    assert_eq!(st, 200, "{body}");
    let (st, body) = raw_request(&d, "HEAD", "/_ping", "");
    assert_eq!((st, body.as_str()), (200, ""));
    let (st, body) = raw_request(
        &d,
        "POST",
        "/containers/create?name=web",
        r#"{"Image": "busybox", "Cmd": ["sleep", "30"]}"#,
    );
    assert_eq!(st, 201, "{body}");
    let (st, body) = raw_request(
        &d,
        "POST",
        "/containers/create?name=web",
        r#"{"Image": "busybox"}"#,
    );
    assert_eq!(st, 409, "{body}");
    let (st, _) = raw_request(&d, "POST", "/containers/web/start", "");
    assert_eq!(st, 204);
    let (st, _) = raw_request(&d, "POST", "/containers/web/start", "");
    assert_eq!(st, 304);
    let (st, body) = raw_request(&d, "DELETE", "/containers/web", "");
    assert_eq!(st, 409, "{body}");
    let (st, _) = raw_request(&d, "DELETE", "/containers/web?force=1", "");
    assert_eq!(st, 204);
}

/// Starts at once outnumber the spare shims: the first take a spare, the others start a shim of their own
/// (each handed its container on its input the same way); every container runs.
#[test]
fn concurrent_starts_with_and_without_spare_shims() {
    let d = Daemon::start();
    d.import_busybox();
    let names: Vec<String> = (0..6).map(|i| format!("burst{i}")).collect();
    std::thread::scope(|s| {
        for n in &names {
            let d = &d;
            s.spawn(move || {
                ok(&d.berth(&["run", "--name", n, "busybox", "echo", n]));
            });
        }
    });
    for n in &names {
        assert_eq!(ok(&d.berth(&["logs", n])), format!("{n}\n"));
        ok(&d.berth(&["rm", n]));
    }
}
