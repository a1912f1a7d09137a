//! End-to-end tests: a real daemon in a temp data root, driven by berth's CLI and by the real `docker` CLI.
//! They need root (namespaces, overlayfs, cgroups) and Debian's busybox-static (`.ci/run` installs it).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BERTH: &str = env!("CARGO_BIN_EXE_berth");

struct Daemon {
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Daemon {
    fn start() -> Daemon {
        assert!(
            nix_is_root(),
            "the end-to-end tests need root: run them as root (CI does)"
        );
        let dir = tempfile::Builder::new()
            .prefix("be-")
            .tempdir_in("/tmp")
            .expect("temp dir");
        let mut d = Daemon { dir, child: None };
        d.spawn();
        d
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("daemon.log"))
            .unwrap();
        let child = Command::new(BERTH)
            .args([
                "daemon",
                "-H",
                &format!("unix://{}", self.socket().display()),
            ])
            .arg("--data-root")
            .arg(self.dir.path().join("data"))
            .arg("--exec-root")
            .arg(self.dir.path().join("x"))
            .arg("--config-file")
            .arg(self.dir.path().join("no-daemon.json"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start berth daemon");
        std::fs::write(self.dir.path().join("no-daemon.json"), "{}").unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::os::unix::net::UnixStream::connect(self.socket()).is_err() {
            assert!(
                Instant::now() < deadline,
                "daemon did not come up: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("berth.sock")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("daemon.log")).unwrap_or_default()
    }

    fn berth(&self, args: &[&str]) -> Output {
        Command::new(BERTH)
            .args(args)
            .env("BERTH_HOST", format!("unix://{}", self.socket().display()))
            .env_remove("DOCKER_HOST")
            .output()
            .expect("run berth")
    }

    fn docker(&self, args: &[&str]) -> Output {
        Command::new("docker")
            .args(args)
            .env("DOCKER_HOST", format!("unix://{}", self.socket().display()))
            .env("DOCKER_CONFIG", self.dir.path().join("docker-config"))
            .output()
            .expect("run the docker CLI (docker v28 must be on PATH)")
    }

    /// SIGKILL the daemon (containers must survive).
    fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// A busybox image built from Debian's busybox-static.
    fn import_busybox(&self) {
        let root = self.dir.path().join("bbroot");
        std::fs::create_dir_all(root.join("bin")).unwrap();
        std::fs::create_dir_all(root.join("etc")).unwrap();
        let bb = ["/bin/busybox", "/usr/bin/busybox"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("busybox-static is installed");
        std::fs::copy(bb, root.join("bin/busybox")).unwrap();
        for c in ["sh", "echo", "cat", "sleep", "id", "true", "ls", "hostname"] {
            std::os::unix::fs::symlink("busybox", root.join("bin").join(c)).unwrap();
        }
        std::fs::write(
            root.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
        )
        .unwrap();
        std::fs::write(root.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n").unwrap();
        let tar = self.dir.path().join("bb.tar");
        let st = Command::new("tar")
            .arg("-C")
            .arg(&root)
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .status()
            .unwrap();
        assert!(st.success());
        let out = self.berth(&[
            "import",
            "-c",
            "CMD [\"sh\"]",
            tar.to_str().unwrap(),
            "busybox:latest",
        ]);
        assert!(out.status.success(), "import failed: {}", text(&out.stderr));
        assert!(text(&out.stdout).starts_with("sha256:"));
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.child.is_some() {
            let ids = self.berth(&["ps", "-aq", "--no-trunc"]);
            for id in text(&ids.stdout).lines() {
                let _ = self.berth(&["rm", "-f", id]);
            }
        }
        if let Some(mut c) = self.child.take() {
            // SIGTERM by pid: the daemon we started, nothing else.
            let _ = Command::new("kill").arg(c.id().to_string()).status();
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        // Anything still mounted under our temp dir (a failed test) must not outlive it.
        if let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") {
            let prefix = self.dir.path().display().to_string();
            for l in info.lines() {
                if let Some(mp) = l.split(' ').nth(4) {
                    if mp.starts_with(&prefix) {
                        let _ = Command::new("umount").arg("-l").arg(mp).status();
                    }
                }
            }
        }
    }
}

fn nix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

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
    let out = d.berth(&["run", "--rm", "nosuchimage"]);
    assert_eq!(out.status.code(), Some(125));
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
    d.kill9();
    std::thread::sleep(Duration::from_millis(1500));
    d.spawn();
    let out = d.berth(&["inspect", "--format", "{{.State.Running}}", "keep"]);
    assert_eq!(text(&out.stdout).trim(), "true", "{}", text(&out.stderr));
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
    d.kill9();
    std::thread::sleep(Duration::from_millis(2000));
    d.spawn();
    let out = d.berth(&[
        "inspect",
        "--format",
        "{{.State.Status}} {{.State.ExitCode}}",
        "quick",
    ]);
    assert_eq!(text(&out.stdout).trim(), "exited 5");
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
