//! Restart policies, pause and unpause, top and stats, through berth's CLI and the real docker CLI; what a
//! container's end leaves behind.

mod common;

use common::{ok, text, Daemon};
use std::process::Command;
use std::time::{Duration, Instant};

fn inspect(d: &Daemon, name: &str, format: &str) -> String {
    text(&d.berth(&["inspect", "--format", format, name]).stdout)
        .trim()
        .to_string()
}

fn wait_for(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn restart_policies_follow_docker() {
    let mut d = Daemon::start();
    d.import_busybox();
    // on-failure:2 restarts a failing container twice, then leaves it exited.
    assert!(d
        .berth(&[
            "run",
            "-d",
            "--name",
            "flaky",
            "--restart",
            "on-failure:2",
            "busybox",
            "sh",
            "-c",
            "exit 1"
        ])
        .status
        .success());
    wait_for("two restarts", 20, || {
        inspect(&d, "flaky", "{{.RestartCount}} {{.State.Status}}") == "2 exited"
    });
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(
        inspect(
            &d,
            "flaky",
            "{{.RestartCount}} {{.State.Status}} {{.State.ExitCode}}"
        ),
        "2 exited 1"
    );
    // on-failure does not restart a success.
    assert!(d
        .berth(&[
            "run",
            "-d",
            "--name",
            "fine",
            "--restart",
            "on-failure",
            "busybox",
            "true"
        ])
        .status
        .success());
    wait_for("exit", 10, || {
        inspect(&d, "fine", "{{.State.Status}}") == "exited"
    });
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(inspect(&d, "fine", "{{.RestartCount}}"), "0");
    // always brings it back; stop keeps it down.
    assert!(d
        .docker(&[
            "run",
            "-d",
            "--name",
            "loop",
            "--restart",
            "always",
            "busybox",
            "sh",
            "-c",
            "sleep 0.3"
        ])
        .status
        .success());
    wait_for("restarts", 20, || {
        inspect(&d, "loop", "{{.RestartCount}}")
            .parse::<i64>()
            .unwrap_or(0)
            >= 2
    });
    assert!(d.docker(&["stop", "-t", "1", "loop"]).status.success());
    wait_for("stopped", 10, || {
        inspect(&d, "loop", "{{.State.Status}}") == "exited"
    });
    let count = inspect(&d, "loop", "{{.RestartCount}}");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        inspect(&d, "loop", "{{.State.Status}} {{.RestartCount}}"),
        format!("exited {count}")
    );
    // With the daemon: `always` starts again even after a stop, `unless-stopped` stays down.
    assert!(d
        .berth(&[
            "run",
            "-d",
            "--name",
            "keeper",
            "--restart",
            "always",
            "busybox",
            "sleep",
            "300"
        ])
        .status
        .success());
    assert!(d
        .berth(&[
            "run",
            "-d",
            "--name",
            "polite",
            "--restart",
            "unless-stopped",
            "busybox",
            "sleep",
            "300"
        ])
        .status
        .success());
    assert!(d
        .berth(&["stop", "-t", "0", "keeper", "polite"])
        .status
        .success());
    d.kill9();
    d.spawn();
    wait_for("keeper back", 10, || {
        inspect(&d, "keeper", "{{.State.Status}}") == "running"
    });
    assert_eq!(inspect(&d, "polite", "{{.State.Status}}"), "exited");
    let out = d.berth(&["run", "--rm", "--restart", "always", "busybox", "true"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        text(&out.stderr).contains("AutoRemove"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn pause_top_and_stats() {
    let d = Daemon::start();
    d.import_busybox();
    assert!(d
        .berth(&["run", "-d", "--name", "busy", "--memory", "64m", "busybox", "sleep", "300"])
        .status
        .success());
    for cli in ["berth", "docker"] {
        let run = |args: &[&str]| {
            if cli == "docker" {
                d.docker(args)
            } else {
                d.berth(args)
            }
        };
        assert!(run(&["pause", "busy"]).status.success(), "{cli}");
        assert_eq!(
            inspect(&d, "busy", "{{.State.Status}} {{.State.Paused}}"),
            "paused true",
            "{cli}"
        );
        let out = run(&["pause", "busy"]);
        assert_ne!(out.status.code(), Some(0), "{cli}: pausing twice");
        assert!(run(&["unpause", "busy"]).status.success(), "{cli}");
        assert_eq!(inspect(&d, "busy", "{{.State.Status}}"), "running", "{cli}");
        let out = run(&["top", "busy"]);
        let o = text(&out.stdout);
        assert!(
            o.contains("PID") && o.contains("sleep 300"),
            "{cli}: {o} {}",
            text(&out.stderr)
        );
        let out = run(&[
            "stats",
            "--no-stream",
            "--format",
            "{{.Name}} {{.PIDs}} {{.MemUsage}}",
            "busy",
        ]);
        let o = text(&out.stdout);
        assert!(
            o.starts_with("busy 1 ") && o.contains("/ 64MiB"),
            "{cli}: {o} {}",
            text(&out.stderr)
        );
    }
    let out = d.docker(&["stats", "--no-stream"]);
    assert!(
        text(&out.stdout).contains("CONTAINER ID") && text(&out.stdout).contains("busy"),
        "{}",
        text(&out.stdout)
    );
    assert!(d.berth(&["stop", "-t", "0", "busy"]).status.success());
    let out = d.berth(&["top", "busy"]);
    assert_ne!(out.status.code(), Some(0));
}

#[test]
fn diff_and_export_show_what_the_container_changed() {
    let d = Daemon::start();
    d.import_busybox();
    let out = d.berth(&[
        "run",
        "--name",
        "changer",
        "busybox",
        "sh",
        "-c",
        "echo hi > /newfile; rm /bin/true; echo x >> /etc/passwd",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    for cli in ["berth", "docker"] {
        let out = if cli == "docker" {
            d.docker(&["diff", "changer"])
        } else {
            d.berth(&["diff", "changer"])
        };
        let lines: Vec<String> = text(&out.stdout).lines().map(str::to_string).collect();
        for want in ["A /newfile", "D /bin/true", "C /etc", "C /etc/passwd"] {
            assert!(
                lines.iter().any(|l| l == want),
                "{cli}: {want} missing in {lines:?}"
            );
        }
        // Stopped container: its root is mounted just for the export.
        let file = d.dir.path().join(format!("export-{cli}.tar"));
        let out = if cli == "docker" {
            d.docker(&["export", "-o", file.to_str().unwrap(), "changer"])
        } else {
            d.berth(&["export", "-o", file.to_str().unwrap(), "changer"])
        };
        assert!(out.status.success(), "{cli}: {}", text(&out.stderr));
        let list = std::process::Command::new("tar")
            .arg("-tf")
            .arg(&file)
            .output()
            .unwrap();
        let names = text(&list.stdout);
        assert!(
            names
                .lines()
                .any(|l| l.trim_start_matches("./") == "newfile"),
            "{cli}: {names}"
        );
        assert!(
            names
                .lines()
                .any(|l| l.trim_start_matches("./") == "bin/busybox"),
            "{cli}: {names}"
        );
        assert!(
            !names
                .lines()
                .any(|l| l.trim_start_matches("./") == "bin/true"),
            "{cli}: {names}"
        );
    }
    let root = d.dir.path().join("data/containers");
    let mounted = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounted.contains(&root.display().to_string()),
        "export left a mount behind"
    );
}

#[test]
fn health_checks_report_starting_healthy_and_unhealthy() {
    let d = Daemon::start();
    d.import_busybox();
    let out = d.docker(&[
        "run",
        "-d",
        "--name",
        "probed",
        "--health-cmd",
        "test -f /ok",
        "--health-interval",
        "300ms",
        "--health-retries",
        "2",
        "busybox",
        "sleep",
        "300",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        inspect(&d, "probed", "{{.State.Health.Status}}"),
        "starting"
    );
    wait_for("unhealthy", 15, || {
        inspect(&d, "probed", "{{.State.Health.Status}}") == "unhealthy"
    });
    let out = d.docker(&["ps", "--format", "{{.Status}}"]);
    assert!(
        text(&out.stdout).contains("(unhealthy)"),
        "{}",
        text(&out.stdout)
    );
    assert!(d
        .berth(&["exec", "probed", "sh", "-c", ": > /ok"])
        .status
        .success());
    wait_for("healthy", 15, || {
        inspect(&d, "probed", "{{.State.Health.Status}}") == "healthy"
    });
    assert_eq!(
        inspect(&d, "probed", "{{.State.Health.FailingStreak}}"),
        "0"
    );
    let out = d.berth(&[
        "inspect",
        "--format",
        "{{(index .State.Health.Log 0).ExitCode}}",
        "probed",
    ]);
    assert!(
        matches!(text(&out.stdout).trim(), "0" | "1"),
        "{}",
        text(&out.stdout)
    );
    let out = d.berth(&[
        "events",
        "--since",
        "0",
        "--until",
        &format!(
            "{}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs()
                + 1
        ),
        "--filter",
        "container=probed",
        "--format",
        "{{.Action}}",
    ]);
    let actions = text(&out.stdout);
    assert!(
        actions.contains("health_status: unhealthy") && actions.contains("health_status: healthy"),
        "{actions}"
    );
    // --no-healthcheck turns a check off.
    assert!(d
        .berth(&[
            "run",
            "-d",
            "--name",
            "plain",
            "--no-healthcheck",
            "busybox",
            "sleep",
            "300"
        ])
        .status
        .success());
    let out = d.docker(&["inspect", "--format", "{{.State.Health}}", "plain"]);
    assert_eq!(text(&out.stdout).trim(), "<nil>");
}

#[test]
fn update_changes_limits_of_a_running_container() {
    let d = Daemon::start();
    d.import_busybox();
    let out = d.docker(&[
        "run", "-d", "--name", "up", "-m", "64m", "busybox", "sleep", "60",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = d.docker(&[
        "update",
        "--memory",
        "96m",
        "--pids-limit",
        "50",
        "--cpus",
        "0.5",
        "--restart",
        "on-failure:2",
        "up",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "up\n");
    // The container sees the new limits (its own cgroup, read from inside).
    let limits = text(
        &d.docker(&[
            "exec", "up", "sh", "-c",
            "cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max",
        ])
        .stdout,
    );
    assert_eq!(limits, format!("{}\n50\n", 96u64 << 20), "{limits}");
    assert_eq!(inspect(&d, "up", "{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}} {{.HostConfig.PidsLimit}} {{.HostConfig.RestartPolicy.Name}}"),
        format!("{} 500000000 50 on-failure", 96u64 << 20));
    // Bad values change nothing.
    let out = d.docker(&["update", "--memory", "1m", "up"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("Minimum memory limit"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        inspect(&d, "up", "{{.HostConfig.Memory}}"),
        (96u64 << 20).to_string()
    );
    let out = d.docker(&[
        "run", "-d", "--rm", "--name", "rr", "busybox", "sleep", "60",
    ]);
    assert!(out.status.success());
    let out = d.docker(&["update", "--restart", "always", "rr"]);
    assert!(
        text(&out.stderr).contains("AutoRemove"),
        "{}",
        text(&out.stderr)
    );
}

/// (open fds, threads, resident KiB) of a process.
fn proc_usage(pid: u32) -> (usize, usize, u64) {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |k: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(k))
            .and_then(|v| {
                v.split_whitespace()
                    .next()
                    .and_then(|n| n.parse::<u64>().ok())
            })
            .unwrap_or(0)
    };
    (fds, field("Threads:") as usize, field("VmRSS:"))
}

fn zombies_under(parent: u32) -> usize {
    std::fs::read_dir("/proc")
        .map(|rd| {
            rd.flatten()
                .filter(|e| {
                    let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
                    // pid (comm) state ppid ...
                    let rest = stat.rsplit_once(") ").map(|x| x.1).unwrap_or("");
                    let mut f = rest.split_whitespace();
                    let state = f.next();
                    let ppid = f.next().and_then(|p| p.parse::<u32>().ok());
                    state == Some("Z") && ppid == Some(parent)
                })
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn a_thousand_execs_leak_no_fd_thread_zombie_or_memory() {
    let d = Daemon::start();
    d.import_busybox();
    let out = d.berth(&["run", "-d", "--name", "ex", "busybox", "sleep", "600"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let daemon = d.pid().expect("daemon pid");
    // The shim is the container's init's parent.
    let shim = common::parent_pid(d.container_pid("ex")).expect("the container's shim");
    // Warm up (allocator arenas, lazily created tasks), then measure.
    for _ in 0..50 {
        assert!(d.berth(&["exec", "ex", "true"]).status.success());
    }
    std::thread::sleep(Duration::from_millis(300));
    let (d_fds, d_threads, d_rss) = proc_usage(daemon);
    let (s_fds, s_threads, s_rss) = proc_usage(shim);
    let n: usize = std::env::var("BERTH_EXEC_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    for i in 0..n {
        let out = d.berth(&["exec", "ex", "true"]);
        assert!(out.status.success(), "exec {i}: {}", text(&out.stderr));
    }
    std::thread::sleep(Duration::from_millis(300));
    let (d_fds2, d_threads2, d_rss2) = proc_usage(daemon);
    let (s_fds2, s_threads2, s_rss2) = proc_usage(shim);
    eprintln!(
        "after {n} execs: daemon fds {d_fds}->{d_fds2} threads {d_threads}->{d_threads2} rss {d_rss}->{d_rss2} KiB; \
         shim fds {s_fds}->{s_fds2} threads {s_threads}->{s_threads2} rss {s_rss}->{s_rss2} KiB"
    );
    assert!(d_fds2 <= d_fds + 2, "daemon fds {d_fds} -> {d_fds2}");
    assert!(s_fds2 <= s_fds, "shim fds {s_fds} -> {s_fds2}");
    assert!(
        d_threads2 <= d_threads + 2,
        "daemon threads {d_threads} -> {d_threads2}"
    );
    assert_eq!(s_threads2, s_threads, "shim threads");
    assert_eq!(zombies_under(shim), 0, "zombies under the shim");
    assert!(
        d_rss2 <= d_rss + 4096,
        "daemon RSS grew {d_rss} -> {d_rss2} KiB"
    );
    assert!(
        s_rss2 <= s_rss + 512,
        "shim RSS grew {s_rss} -> {s_rss2} KiB"
    );
    // The exec records are gone too: inspect of the container lists none still running.
    let ids = text(
        &d.docker(&["inspect", "-f", "{{len .ExecIDs}}", "ex"])
            .stdout,
    );
    assert!(
        ids.trim() == "0" || ids.trim().is_empty(),
        "exec ids kept: {ids}"
    );
}

/// The overlay mounts below `dir` (mount id, mount point), from this process's mount table (the daemon's
/// namespace: the test's).
fn overlays_below(dir: &std::path::Path) -> Vec<(String, String)> {
    let prefix = format!("{}/", dir.display());
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(" - overlay "))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            f[4].starts_with(&prefix)
                .then(|| (f[0].to_string(), f[4].to_string()))
        })
        .collect()
}

#[test]
fn a_run_rm_root_is_kept_mounted_for_the_next_and_let_go_by_rmi_and_shutdown() {
    let d = Daemon::start();
    d.import_busybox();
    let containers = d.dir.path().join("data/containers");
    let kept = || {
        overlays_below(&containers)
            .into_iter()
            .filter(|(_, mp)| mp.contains("/.free-"))
            .collect::<Vec<_>>()
    };
    // A container that wrote into its root: its directory is not kept mounted.
    ok(&d.berth(&["run", "--rm", "busybox", "sh", "-c", "echo x > /marker"]));
    // One that wrote nothing: its root stays mounted for the next.
    ok(&d.berth(&["run", "--rm", "busybox", "true"]));
    wait_for("a kept root", 10, || !kept().is_empty());
    assert_eq!(kept().len(), 1, "{:?}", overlays_below(&containers));
    let (mount_id, _) = kept()[0].clone();
    // The next `--rm` container of the image runs on that very mount, which shows the image and nothing of
    // the containers before.
    let out = ok(&d.berth(&[
        "run",
        "-d",
        "--rm",
        "--name",
        "next",
        "busybox",
        "sh",
        "-c",
        "test ! -e /marker && test -x /bin/busybox && sleep 30",
    ]));
    let id = out.trim().to_string();
    let mounts = overlays_below(&containers);
    let root = mounts
        .iter()
        .find(|(_, mp)| mp.contains(&id))
        .unwrap_or_else(|| panic!("no root for {id}: {mounts:?}"));
    assert_eq!(root.0, mount_id, "the kept mount is reused: {mounts:?}");
    assert!(kept().is_empty(), "{mounts:?}");
    ok(&d.berth(&["kill", "next"]));
    wait_for("the container's end", 10, || {
        text(&d.berth(&["ps", "-aq"]).stdout).trim().is_empty()
    });
    // It exited by a signal having written nothing: kept again.
    wait_for("a kept root", 10, || !kept().is_empty());
    // An image removal lets every kept root go (no deleted layer stays pinned).
    ok(&d.berth(&["rmi", "busybox"]));
    assert!(kept().is_empty(), "{:?}", overlays_below(&containers));
    // So does a shutdown.
    let tarball = d.busybox_tarball();
    ok(&d.berth(&["import", tarball.to_str().unwrap(), "busybox"]));
    ok(&d.berth(&["run", "--rm", "busybox", "true"]));
    wait_for("a kept root", 10, || !kept().is_empty());
    let pid = d.pid().unwrap();
    assert!(Command::new("kill")
        .arg(pid.to_string())
        .status()
        .unwrap()
        .success());
    wait_for("the daemon's exit", 10, || {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| {
            s.rsplit_once(") ").is_some_and(|x| x.1.starts_with('Z'))
        })
    });
    assert!(
        overlays_below(&containers).is_empty(),
        "{:?}",
        overlays_below(&containers)
    );
}
