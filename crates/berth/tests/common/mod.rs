//! Shared harness of the end-to-end tests: a real daemon in a temp root, the berth and docker CLIs pointed at
//! it, and a busybox image made from Debian's busybox-static. Cleans up its containers, mounts and daemon
//! (by pid) even when a test fails.
#![allow(dead_code)] // each test file uses a different part of the harness

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BERTH: &str = env!("CARGO_BIN_EXE_berth");

pub struct Daemon {
    pub dir: tempfile::TempDir,
    child: Option<Child>,
    /// This daemon's own default bridge, nftables table, and address space, so parallel tests never meet.
    pub bridge: String,
    pub table: String,
    /// The second and third octets of the default bridge's 10.x.y.0/24.
    pub net: (u8, u8),
    /// For a daemon shown a pure cgroup v2 host: the cgroup (in the host's cgroup2 hierarchy) it runs in.
    pub v2_cgroup: Option<PathBuf>,
}

static DAEMONS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

impl Daemon {
    pub fn start() -> Daemon {
        let mut d = Daemon::start_unspawned();
        d.spawn();
        d
    }

    /// A daemon that sees a pure cgroup v2 host whatever the host has: it runs in a cgroup of its own in
    /// the host's cgroup2 hierarchy, in its own cgroup and mount namespaces, where the v1 hierarchies are
    /// unmounted and cgroup2 is mounted on `/sys/fs/cgroup`. (On a hybrid host that hierarchy has no
    /// controllers: limits cannot be set there, but cgroups, device filters, freezing and joins work.)
    pub fn start_on_cgroup_v2() -> Daemon {
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let unified = info
            .lines()
            .find(|l| l.contains(" - cgroup2 "))
            .and_then(|l| l.split(' ').nth(4))
            .expect("this host has a cgroup2 mount")
            .to_string();
        let n = DAEMONS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let cgroup = Path::new(&unified).join(format!("berth-test-v2-{}-{n}", std::process::id()));
        std::fs::create_dir(&cgroup).unwrap();
        let mut d = Daemon::start_unspawned();
        d.v2_cgroup = Some(cgroup);
        d.spawn();
        d
    }

    fn start_unspawned() -> Daemon {
        assert!(
            nix_is_root(),
            "the end-to-end tests need root: run them as root (CI does)"
        );
        let dir = tempfile::Builder::new()
            .prefix("be-")
            .tempdir_in("/tmp")
            .expect("temp dir");
        let n = DAEMONS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let pid = std::process::id();
        Daemon {
            dir,
            child: None,
            bridge: format!("bt{}x{n}", pid % 10000),
            table: format!("bt_{pid}_{n}"),
            net: (100 + (pid % 100) as u8, (n % 256) as u8),
            v2_cgroup: None,
        }
    }

    pub fn spawn(&mut self) {
        let cfg = self.dir.path().join("no-daemon.json");
        if !cfg.exists() {
            let (a, b) = self.net;
            let pool = 200 + (std::process::id() % 50);
            let cfg_json = serde_json::json!({
                "bridge": self.bridge,
                "bip": format!("10.{a}.{b}.1/24"),
                "firewall-table": self.table,
                "default-address-pools": [{"base": format!("10.{pool}.{}.0/20", (b % 16) * 16), "size": 24}],
            });
            std::fs::write(&cfg, cfg_json.to_string()).unwrap();
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("daemon.log"))
            .unwrap();
        let mut cmd = match &self.v2_cgroup {
            None => Command::new(BERTH),
            Some(cgroup) => {
                // The shell moves itself into the cgroup, which becomes the root of its new cgroup
                // namespace, then into a leaf below (the root must have no process of its own where
                // controllers are enabled below it), and becomes the daemon (same pid).
                let mut c = Command::new("sh");
                c.arg("-c")
                    .arg(
                        "echo $$ > \"$0/cgroup.procs\" && exec unshare --mount --cgroup \
                         --propagation private sh -c 'umount -R /sys/fs/cgroup && \
                         mount -t cgroup2 cgroup2 /sys/fs/cgroup && mkdir /sys/fs/cgroup/daemon && \
                         echo $$ > /sys/fs/cgroup/daemon/cgroup.procs && exec \"$@\"' sh \"$@\"",
                    )
                    .arg(cgroup)
                    .arg(BERTH);
                c
            }
        };
        let child = cmd
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

    /// The daemon's pid (while it runs).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("berth.sock")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("daemon.log")).unwrap_or_default()
    }

    /// berth's CLI pointed at this daemon, with this test's own `config.json` directory.
    pub fn berth_cmd(&self) -> Command {
        let mut c = Command::new(BERTH);
        c.env("BERTH_HOST", format!("unix://{}", self.socket().display()))
            .env_remove("DOCKER_HOST")
            .env("DOCKER_CONFIG", self.dir.path().join("docker-config"));
        c
    }

    pub fn berth(&self, args: &[&str]) -> Output {
        self.berth_cmd().args(args).output().expect("run berth")
    }

    /// The docker CLI pointed at this daemon, with this test's own `config.json` directory.
    pub fn docker_cmd(&self) -> Command {
        let mut c = Command::new("docker");
        c.env("DOCKER_HOST", format!("unix://{}", self.socket().display()))
            .env("DOCKER_CONFIG", self.dir.path().join("docker-config"));
        c
    }

    pub fn docker(&self, args: &[&str]) -> Output {
        self.docker_cmd()
            .args(args)
            .output()
            .expect("run the docker CLI (docker v28 must be on PATH)")
    }

    /// `berth` (or, with `docker`, the docker CLI) with `input` on stdin.
    pub fn with_stdin(&self, docker: bool, args: &[&str], input: &[u8]) -> Output {
        use std::io::Write;
        let mut cmd = if docker {
            self.docker_cmd()
        } else {
            self.berth_cmd()
        };
        let mut child = cmd
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        let mut stdin = child.stdin.take().expect("stdin");
        let input = input.to_vec();
        // A writer thread, so a large input cannot deadlock against a full stdout pipe.
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
        let out = child.wait_with_output().expect("wait");
        let _ = writer.join();
        out
    }

    /// The host pid of a running container's process (`inspect`'s `.State.Pid`).
    pub fn container_pid(&self, name: &str) -> u32 {
        let out = self.berth(&["inspect", "--format", "{{.State.Pid}}", name]);
        text(&out.stdout)
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("the pid of {name}: {}", text(&out.stderr)))
    }

    /// SIGKILL the daemon (containers must survive).
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// A busybox image built from Debian's busybox-static.
    pub fn import_busybox(&self) {
        self.import_busybox_with(&["sh", "echo", "cat", "sleep", "id", "true", "ls", "hostname"]);
    }

    /// busybox with every applet linked (wget, httpd, nc, nslookup, ip, mount...), for network and volume tests.
    pub fn import_busybox_full(&self) {
        let list = Command::new(busybox_binary())
            .arg("--list")
            .output()
            .expect("busybox --list");
        let applets: Vec<String> = text(&list.stdout)
            .lines()
            .map(str::to_string)
            .filter(|a| a != "busybox")
            .collect();
        let refs: Vec<&str> = applets.iter().map(String::as_str).collect();
        self.import_busybox_with(&refs);
    }

    fn import_busybox_with(&self, applets: &[&str]) {
        let root = self.dir.path().join("bbroot");
        std::fs::create_dir_all(root.join("bin")).unwrap();
        std::fs::create_dir_all(root.join("etc")).unwrap();
        busybox_in(&root, applets);
        std::fs::write(
            root.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
        )
        .unwrap();
        std::fs::write(root.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n").unwrap();
        self.import_tree(&root, "busybox:latest", &["-c", "CMD [\"sh\"]"]);
    }

    /// The tarball [`Daemon::import_busybox`] imported.
    pub fn busybox_tarball(&self) -> PathBuf {
        self.dir.path().join("bbroot.tar")
    }

    /// Imports the directory tree `root` as the image `reference` (`berth import`, `flags` before the
    /// tarball), through a tarball beside it (`root` with the extension `tar`).
    pub fn import_tree(&self, root: &Path, reference: &str, flags: &[&str]) {
        let tar = root.with_extension("tar");
        let st = Command::new("tar")
            .arg("-C")
            .arg(root)
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .status()
            .unwrap();
        assert!(st.success());
        let mut args = vec!["import"];
        args.extend_from_slice(flags);
        args.extend([tar.to_str().unwrap(), reference]);
        let out = self.berth(&args);
        assert!(out.status.success(), "import failed: {}", text(&out.stderr));
        assert!(text(&out.stdout).starts_with("sha256:"));
    }
}

/// The host's static busybox (Debian's busybox-static).
pub fn busybox_binary() -> &'static str {
    ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("busybox-static is installed")
}

/// `root/bin/busybox`, with a link to it for each of `applets`.
pub fn busybox_in(root: &Path, applets: &[&str]) {
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::copy(busybox_binary(), root.join("bin/busybox")).unwrap();
    for c in applets {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(c)).unwrap();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.child.is_some() {
            let ids = self.berth(&["ps", "-aq", "--no-trunc"]);
            for id in text(&ids.stdout).lines() {
                let _ = self.berth(&["rm", "-f", id]);
            }
            let _ = self.berth(&["network", "prune", "-f"]);
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
        if let Some(cgroup) = &self.v2_cgroup {
            remove_test_cgroup(cgroup);
        }
        // The default bridge and the firewall table outlive a daemon by design (containers survive it); a
        // test's daemon takes them along.
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge])
            .stderr(Stdio::null())
            .status();
        let _ = Command::new("nft")
            .args(["delete", "table", "ip", &self.table])
            .stderr(Stdio::null())
            .status();
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

/// Kills what a test left in its cgroup (the processes it started: shims, containers) and removes the
/// cgroup, deepest first.
fn remove_test_cgroup(cgroup: &Path) {
    fn tree(dir: &Path, out: &mut Vec<PathBuf>) {
        out.push(dir.to_path_buf());
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                tree(&e.path(), out);
            }
        }
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut all = Vec::new();
        tree(cgroup, &mut all);
        let mut busy = false;
        for dir in &all {
            let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
            for pid in procs.split_whitespace() {
                busy = true;
                let _ = Command::new("kill").args(["-9", pid]).status();
            }
        }
        if !busy || Instant::now() >= deadline {
            for dir in all.iter().rev() {
                let _ = std::fs::remove_dir(dir);
            }
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn nix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// The command's stdout, after asserting that it succeeded (showing both streams if not).
pub fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "failed ({:?}): {}{}",
        out.status.code(),
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// The command's stderr, after asserting that it failed.
pub fn failed(out: &Output) -> String {
    assert!(
        !out.status.success(),
        "unexpectedly succeeded: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stderr)
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

impl Daemon {
    /// Run `cmdline` (a shell command line) under a pseudo-terminal of `rows`x`cols` with `script`, typing
    /// `input` (each chunk after a pause). Returns the terminal output and the exit code.
    pub fn in_pty(
        &self,
        cmdline: &str,
        rows: u16,
        cols: u16,
        input: &[&str],
    ) -> (String, Option<i32>) {
        let mut feeder = String::from("sleep 1.5;");
        for chunk in input {
            feeder.push_str(&format!(
                "printf '{}'; sleep 0.7;",
                chunk.replace('\'', "'\\''")
            ));
        }
        feeder.push_str("sleep 1");
        let inner = format!("stty rows {rows} cols {cols}; {cmdline}; echo \"[rc=$?]\"");
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "({feeder}) | timeout 60 script -qec '{}' /dev/null",
                inner.replace('\'', "'\\''")
            ))
            .env("BERTH_HOST", format!("unix://{}", self.socket().display()))
            .env("DOCKER_HOST", format!("unix://{}", self.socket().display()))
            .env("DOCKER_CONFIG", self.dir.path().join("docker-config"))
            .env(
                "PATH",
                format!(
                    "{}:{}",
                    Path::new(BERTH).parent().unwrap().display(),
                    std::env::var("PATH").unwrap_or_default()
                ),
            )
            .output()
            .expect("run script(1) from util-linux");
        let s = text(&out.stdout).replace('\r', "");
        let rc = s
            .rsplit("[rc=")
            .next()
            .and_then(|t| t.split(']').next())
            .and_then(|c| c.parse().ok());
        (s, rc)
    }
}

/// Run a program we started and stop it by pid when dropped (registries in tests).
pub struct Server {
    pub child: Child,
    pub dir: tempfile::TempDir,
    pub addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free loopback port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_http(addr: &str, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if std::net::TcpStream::connect(addr).is_ok() {
            return;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "registry at {addr} exited early"
        );
        assert!(
            Instant::now() < deadline,
            "registry at {addr} did not come up"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `berth registry serve` on a free loopback port.
pub fn berth_registry() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let mut child = Command::new(BERTH)
        .args(["registry", "serve", "--addr", &addr, "--root"])
        .arg(dir.path().join("root"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_http(&addr, &mut child);
    Server { child, dir, addr }
}

/// Debian's `docker-registry` (the reference implementation) on a free loopback port.
pub fn reference_registry() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let cfg = dir.path().join("config.yml");
    std::fs::write(
        &cfg,
        format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let bin = ["/usr/bin/docker-registry", "/usr/sbin/docker-registry"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("Debian's docker-registry is installed (scripts/test.sh installs it)");
    let mut child = Command::new(bin)
        .arg("serve")
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_http(&addr, &mut child);
    Server { child, dir, addr }
}

/// The parent of process `pid`, from `/proc/<pid>/stat`.
pub fn parent_pid(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // pid (comm) state ppid ...: comm may hold spaces and parentheses, the last ") " ends it.
    stat.rsplit_once(") ")?
        .1
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// The processes whose parent is `pid`.
pub fn children_of(pid: u32) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.file_name().to_string_lossy().parse::<u32>().ok())
                .filter(|&p| parent_pid(p) == Some(pid))
                .collect()
        })
        .unwrap_or_default()
}

/// Whether the process `/proc/<pid>` is a spare shim, one waiting for a container (it names itself so).
pub fn is_spare_shim(proc_dir: &Path) -> bool {
    std::fs::read_to_string(proc_dir.join("comm")).is_ok_and(|c| c.trim() == "berth-spare")
}

/// How many shim processes serve containers under `dir` (a test's temp root); spares serve none (nor
/// is the init a spare clones ahead a shim).
pub fn shims_under(dir: &Path) -> usize {
    let want = dir.display().to_string();
    std::fs::read_dir("/proc")
        .map(|rd| {
            rd.flatten()
                .filter(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .chars()
                        .all(|c| c.is_ascii_digit())
                })
                .filter(|e| {
                    let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
                    let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
                    (cmd.contains("berth-shim") || cmd.contains(" shim "))
                        && cmd.contains(&want)
                        && std::fs::read_to_string(e.path().join("comm"))
                            .is_ok_and(|c| c.trim() == "berth-shim")
                })
                .count()
        })
        .unwrap_or(0)
}
