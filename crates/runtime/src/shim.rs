//! `berth shim`: the per-container supervisor.
//!
//! The daemon writes `<state-dir>/shim.json` ([`ShimConfig`]) and the OCI bundle, then runs
//! `berth shim <state-dir>` with its stdout on a pipe. The shim:
//! 1. starts its own session and becomes a child subreaper (the container init is cloned as its child);
//! 2. mounts the container's overlay root (idempotent) and creates the container with `libcontainer`, its
//!    stdout/stderr on pipes the shim reads, stdin on a pipe when the container keeps stdin open;
//! 3. binds its control socket and answers one JSON line on stdout (`{"ok":true,"pid":N}` or the error), then
//!    detaches its own stdio — from here on it needs nothing from the daemon;
//! 4. loops on `poll`: output goes to the json-file log and to attached connections, requests (start, kill,
//!    attach, stdin) are served, `SIGCHLD` (via signalfd) reaps the init;
//! 5. when the init has exited and its output is drained it records the status in `exit.json` (write, fsync,
//!    rename), removes the container's cgroup and runtime state, unmounts the root, sends the `Exit` frame to
//!    every connection and exits.
//!
//! It is single-threaded and small on purpose: memory per container is a benchmark figure.

use crate::logfile::{now_rfc3339, LogWriter};
use crate::proto::{self, Decoder, ExitStatus, Kind, Reply, Request, ShimConfig};
use berth_sys::mount::{self, Overlay};
use libcontainer::container::builder::ContainerBuilder;
use libcontainer::container::Container;
use libcontainer::syscall::syscall::SyscallType;
use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::time::{Duration, Instant};

/// Why a shim could not set its container up.
#[derive(Debug, thiserror::Error)]
pub enum ShimError {
    #[error("read shim config {path}: {source}")]
    Config {
        path: String,
        source: std::io::Error,
    },
    #[error("parse shim config {path}: {source}")]
    ConfigJson {
        path: String,
        source: serde_json::Error,
    },
    #[error(transparent)]
    Sys(#[from] berth_sys::SysError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("{what}: {source}")]
    Os { what: String, source: nix::Error },
    #[error("create container: {0}")]
    Create(String),
}

fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ShimError {
    let what = what.into();
    move |source| ShimError::Io { what, source }
}

fn os_err(what: impl Into<String>) -> impl FnOnce(nix::Error) -> ShimError {
    let what = what.into();
    move |source| ShimError::Os { what, source }
}

/// Entry point of `berth shim <state-dir>`; returns the process exit code.
pub fn main(state_dir: &Path) -> i32 {
    let mut report = std::io::stdout();
    let cfg = match load_config(state_dir) {
        Ok(c) => c,
        Err(e) => {
            let _ = writeln!(report, "{}", reply_json(false, Some(e.to_string()), None));
            return 1;
        }
    };
    match Shim::setup(cfg) {
        Err(e) => {
            let _ = writeln!(report, "{}", reply_json(false, Some(e.to_string()), None));
            let _ = report.flush();
            1
        }
        Ok(mut shim) => {
            let _ = writeln!(report, "{}", reply_json(true, None, Some(shim.pid)));
            let _ = report.flush();
            let _ = berth_sys::process::stdio_to_devnull();
            shim.run();
            0
        }
    }
}

fn reply_json(ok: bool, error: Option<String>, pid: Option<i32>) -> String {
    serde_json::to_string(&Reply {
        ok,
        error,
        pid,
        started: false,
    })
    .unwrap_or_else(|_| "{}".into())
}

fn load_config(state_dir: &Path) -> Result<ShimConfig, ShimError> {
    let path = state_dir.join("shim.json");
    let data = std::fs::read(&path).map_err(|source| ShimError::Config {
        path: path.display().to_string(),
        source,
    })?;
    serde_json::from_slice(&data).map_err(|source| ShimError::ConfigJson {
        path: path.display().to_string(),
        source,
    })
}

struct Client {
    stream: UnixStream,
    decoder: Decoder,
    stdout: bool,
    stderr: bool,
    stdin: bool,
}

struct Shim {
    cfg: ShimConfig,
    container: Container,
    pid: i32,
    started: bool,
    listener: UnixListener,
    sigfd: SignalFd,
    out: [Option<std::fs::File>; 2],
    stdin: Option<std::fs::File>,
    log: Option<LogWriter>,
    clients: Vec<Client>,
    exit: Option<i32>,
}

impl Shim {
    fn setup(cfg: ShimConfig) -> Result<Shim, ShimError> {
        berth_sys::process::new_session()?;
        berth_sys::process::set_subreaper()?;
        std::fs::create_dir_all(&cfg.rootfs)
            .map_err(io_err(format!("create {}", cfg.rootfs.display())))?;
        if !mount::is_mounted(&cfg.rootfs) {
            let ov = Overlay {
                lower: cfg.lower.clone(),
                upper: cfg.upper.clone(),
                work: cfg.work.clone(),
            };
            mount::mount_overlay(&ov, &cfg.rootfs)?;
        }
        match Self::create(cfg.clone()) {
            Ok(s) => Ok(s),
            Err(e) => {
                let _ = mount::unmount(&cfg.rootfs);
                Err(e)
            }
        }
    }

    fn create(cfg: ShimConfig) -> Result<Shim, ShimError> {
        let (out_r, out_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(os_err("pipe"))?;
        let (err_r, err_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(os_err("pipe"))?;
        let (stdin_child, stdin_ours): (OwnedFd, Option<OwnedFd>) = if cfg.open_stdin {
            let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(os_err("pipe"))?;
            (r, Some(w))
        } else {
            let null = std::fs::File::open("/dev/null").map_err(io_err("open /dev/null"))?;
            (null.into(), None)
        };
        std::fs::create_dir_all(&cfg.runtime_root)
            .map_err(io_err(format!("create {}", cfg.runtime_root.display())))?;
        let container = ContainerBuilder::new(cfg.id.clone(), SyscallType::default())
            .with_root_path(&cfg.runtime_root)
            .map_err(|e| ShimError::Create(e.to_string()))?
            .with_stdin(stdin_child)
            .with_stdout(out_w)
            .with_stderr(err_w)
            .as_init(&cfg.bundle)
            .with_systemd(false)
            .with_detach(true)
            .build()
            .map_err(|e| ShimError::Create(error_chain(&e)))?;
        let pid = container
            .pid()
            .map(|p| p.as_raw())
            .ok_or_else(|| ShimError::Create("no init pid".into()))?;

        let _ = std::fs::remove_file(&cfg.socket);
        let listener = UnixListener::bind(&cfg.socket)
            .map_err(io_err(format!("bind {}", cfg.socket.display())))?;
        listener
            .set_nonblocking(true)
            .map_err(io_err("set socket non-blocking"))?;
        let mut mask = SigSet::empty();
        mask.add(Signal::SIGCHLD);
        mask.thread_block().map_err(os_err("block SIGCHLD"))?;
        let sigfd = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
            .map_err(os_err("signalfd"))?;
        // The shim must not die with its session's hang-up, nor on a stray SIGPIPE from a gone client.
        let mut ignore = SigSet::empty();
        ignore.add(Signal::SIGHUP);
        ignore.add(Signal::SIGPIPE);
        ignore.thread_block().map_err(os_err("block SIGHUP"))?;
        let log = match &cfg.log {
            Some(l) => Some(
                LogWriter::open(l.clone())
                    .map_err(io_err(format!("open log {}", l.path.display())))?,
            ),
            None => None,
        };
        Ok(Shim {
            cfg,
            container,
            pid,
            started: false,
            listener,
            sigfd,
            out: [
                Some(std::fs::File::from(out_r)),
                Some(std::fs::File::from(err_r)),
            ],
            stdin: stdin_ours.map(std::fs::File::from),
            log,
            clients: Vec::new(),
            exit: None,
        })
    }

    fn run(&mut self) {
        let mut drain_deadline: Option<Instant> = None;
        loop {
            self.reap();
            if self.exit.is_some() {
                let deadline =
                    *drain_deadline.get_or_insert_with(|| Instant::now() + Duration::from_secs(2));
                if self.out.iter().all(Option::is_none) || Instant::now() >= deadline {
                    break;
                }
            }
            let timeout = if self.exit.is_some() { 100u16 } else { 5000u16 };
            let mut ready = vec![false; 4 + self.clients.len()];
            {
                let mut fds: Vec<PollFd> = Vec::with_capacity(ready.len());
                let mut index: Vec<usize> = Vec::with_capacity(ready.len());
                fds.push(PollFd::new(self.listener.as_fd(), PollFlags::POLLIN));
                index.push(0);
                fds.push(PollFd::new(self.sigfd.as_fd(), PollFlags::POLLIN));
                index.push(1);
                for (i, o) in self.out.iter().enumerate() {
                    if let Some(f) = o {
                        fds.push(PollFd::new(f.as_fd(), PollFlags::POLLIN));
                        index.push(2 + i);
                    }
                }
                for (i, c) in self.clients.iter().enumerate() {
                    fds.push(PollFd::new(c.stream.as_fd(), PollFlags::POLLIN));
                    index.push(4 + i);
                }
                match poll(&mut fds, PollTimeout::from(timeout)) {
                    Ok(_) => {}
                    Err(nix::Error::EINTR) => continue,
                    Err(_) => std::thread::sleep(Duration::from_millis(50)),
                }
                for (fd, &i) in fds.iter().zip(&index) {
                    if fd.revents().is_some_and(|r| !r.is_empty()) {
                        ready[i] = true;
                    }
                }
            }
            if ready[1] {
                while let Ok(Some(_)) = self.sigfd.read_signal() {}
            }
            for (i, stream) in [(2usize, 1u8), (3, 2)] {
                if ready[i] {
                    self.pump(stream);
                }
            }
            // Clients, highest index first so removal keeps indices valid.
            for ci in (0..self.clients.len()).rev() {
                if ready[4 + ci] {
                    self.serve_client(ci);
                }
            }
            if ready[0] {
                self.accept();
            }
        }
        self.finish();
    }

    fn reap(&mut self) {
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) if pid.as_raw() == self.pid => {
                    self.exit = Some(code)
                }
                Ok(WaitStatus::Signaled(pid, sig, _)) if pid.as_raw() == self.pid => {
                    self.exit = Some(128 + sig as i32)
                }
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(_) => {}
            }
        }
    }

    fn pump(&mut self, stream: u8) {
        let idx = (stream - 1) as usize;
        let Some(f) = self.out[idx].as_mut() else {
            return;
        };
        let mut buf = [0u8; 32 * 1024];
        match f.read(&mut buf) {
            Ok(0) | Err(_) => self.out[idx] = None,
            Ok(n) => {
                let data = &buf[..n];
                if let Some(log) = self.log.as_mut() {
                    let _ = log.write(stream, data);
                }
                let kind = if stream == 1 {
                    Kind::Stdout
                } else {
                    Kind::Stderr
                };
                let frame = proto::encode(kind, data);
                self.clients.retain_mut(|c| {
                    let wants = if stream == 1 { c.stdout } else { c.stderr };
                    !wants || c.stream.write_all(&frame).is_ok()
                });
            }
        }
    }

    fn accept(&mut self) {
        while let Ok((stream, _)) = self.listener.accept() {
            let _ = stream.set_nonblocking(false);
            let _ = stream.set_write_timeout(Some(Duration::from_secs(10)));
            self.clients.push(Client {
                stream,
                decoder: Decoder::default(),
                stdout: false,
                stderr: false,
                stdin: false,
            });
        }
    }

    fn serve_client(&mut self, ci: usize) {
        let mut buf = [0u8; 32 * 1024];
        let n = match self.clients[ci].stream.read(&mut buf) {
            Ok(0) | Err(_) => {
                self.clients.remove(ci);
                return;
            }
            Ok(n) => n,
        };
        self.clients[ci].decoder.push(&buf[..n]);
        loop {
            let frame = match self.clients[ci].decoder.next_frame() {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(_) => {
                    self.clients.remove(ci);
                    return;
                }
            };
            match frame {
                (Kind::Control, payload) => {
                    let reply = match serde_json::from_slice::<Request>(&payload) {
                        Ok(req) => self.handle(ci, req),
                        Err(e) => Reply {
                            ok: false,
                            error: Some(format!("bad request: {e}")),
                            ..Reply::default()
                        },
                    };
                    let bytes = serde_json::to_vec(&reply).unwrap_or_default();
                    if self.clients[ci]
                        .stream
                        .write_all(&proto::encode(Kind::Control, &bytes))
                        .is_err()
                    {
                        self.clients.remove(ci);
                        return;
                    }
                }
                (Kind::Stdin, data) if self.clients[ci].stdin => {
                    if let Some(s) = self.stdin.as_mut() {
                        if s.write_all(&data).is_err() {
                            self.stdin = None;
                        }
                    }
                }
                _ => {}
            }
        }
    }

    fn handle(&mut self, ci: usize, req: Request) -> Reply {
        let ok = |s: &Shim| Reply {
            ok: true,
            error: None,
            pid: Some(s.pid),
            started: s.started,
        };
        match req {
            Request::State => ok(self),
            Request::Start => {
                if self.started {
                    return ok(self);
                }
                match self.container.start() {
                    Ok(()) => {
                        self.started = true;
                        ok(self)
                    }
                    Err(e) => Reply {
                        ok: false,
                        error: Some(error_chain(&e)),
                        ..Reply::default()
                    },
                }
            }
            Request::Kill { signal } => {
                if self.exit.is_some() {
                    return Reply {
                        ok: false,
                        error: Some("container is not running".into()),
                        ..Reply::default()
                    };
                }
                match berth_sys::process::signal(self.pid, signal) {
                    Ok(()) => ok(self),
                    Err(e) => Reply {
                        ok: false,
                        error: Some(e.to_string()),
                        ..Reply::default()
                    },
                }
            }
            Request::Attach {
                stdout,
                stderr,
                stdin,
            } => {
                let c = &mut self.clients[ci];
                c.stdout = stdout;
                c.stderr = stderr;
                c.stdin = stdin;
                ok(self)
            }
            Request::CloseStdin => {
                self.stdin = None;
                ok(self)
            }
        }
    }

    fn finish(&mut self) {
        if let Some(log) = self.log.as_mut() {
            let _ = log.flush();
        }
        let oom_killed = self
            .cfg
            .oom_event_files
            .iter()
            .any(|p| oom_kill_count(p) > 0);
        let _ = self.container.delete(true);
        let _ = mount::unmount(&self.cfg.rootfs);
        let status = ExitStatus {
            exit_code: self.exit.unwrap_or(255),
            oom_killed,
            finished_at: now_rfc3339(),
            error: None,
        };
        let _ = write_exit(&self.cfg.exit_file, &status);
        let payload = serde_json::to_vec(&status).unwrap_or_default();
        let frame = proto::encode(Kind::Exit, &payload);
        for c in self.clients.iter_mut() {
            let _ = c.stream.write_all(&frame);
            let _ = c.stream.shutdown(std::net::Shutdown::Both);
        }
        let _ = std::fs::remove_file(&self.cfg.socket);
    }
}

/// The `oom_kill` counter in a cgroup v1 `memory.oom_control` or v2 `memory.events` file (0 when absent).
pub fn oom_kill_count(path: &Path) -> u64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("oom_kill ")
                    .and_then(|v| v.trim().parse().ok())
            })
        })
        .unwrap_or(0)
}

/// Record the exit status: write a temp file, fsync, rename, so a reader never sees half of it.
pub fn write_exit(path: &Path, status: &ExitStatus) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&serde_json::to_vec(status).map_err(std::io::Error::other)?)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oom_counter_reads_v1_and_v2_formats() {
        let d = tempfile::tempdir().unwrap();
        let v1 = d.path().join("memory.oom_control");
        std::fs::write(&v1, "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n").unwrap();
        let v2 = d.path().join("memory.events");
        std::fs::write(&v2, "low 0\nhigh 0\nmax 1\noom 1\noom_kill 0\n").unwrap();
        assert_eq!(oom_kill_count(&v1), 2);
        assert_eq!(oom_kill_count(&v2), 0);
        assert_eq!(oom_kill_count(&d.path().join("missing")), 0);
    }

    #[test]
    fn exit_file_is_written_whole() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("exit.json");
        let st = ExitStatus {
            exit_code: 137,
            oom_killed: true,
            finished_at: "x".into(),
            error: None,
        };
        write_exit(&p, &st).unwrap();
        let back: ExitStatus = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        assert_eq!(back, st);
        assert!(!p.with_extension("tmp").exists());
    }
}
