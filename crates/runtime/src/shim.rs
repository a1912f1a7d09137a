//! `berth shim`: the per-container supervisor.
//!
//! The daemon writes the OCI bundle, then hands the state directory and the [`ShimConfig`] (a line of JSON
//! each) to a spare shim it started ahead of time, or to one it starts then ([`main_args`]), on the shim's
//! standard input: one end of a socket pair, which is also the daemon's first connection to the shim. The
//! daemon does not wait: its `Attach` and `Start` follow on the same connection at once, and the shim
//! serves them once the container is created. The shim:
//! 1. starts its own session and becomes a child subreaper (the container init and every exec are cloned as
//!    its children);
//! 2. mounts the container's overlay root (idempotent), makes the container's cgroup with its limits, and
//!    creates the container's init with berth's own runtime ([`crate::container`], `berth_sys::container`),
//!    its stdio on pipes the shim reads — or, with a terminal, on a pty whose master the init sends back. A
//!    spare on cgroup v1 made the cgroup (renamed now) and cloned the init ahead, and hands it its container;
//! 3. while the init sets itself up, binds its control socket (for the daemon's later connections, after
//!    a restart too), blocks the signals it takes through a signalfd and opens the log; once the init is
//!    ready, holds the container's mount namespace, answers on the first connection (a `Control` frame:
//!    `{"ok":true,"pid":N}` or the error), detaches its own stdio, and serves that connection like any
//!    other — from here on it needs nothing from the daemon;
//! 4. loops on `poll`: the init's output goes to attached connections and then to the json-file log's
//!    thread ([`LogThread`]); a stream written in small pieces is let gather between reads; an exec's
//!    output goes to the connection that asked for it; requests (start, kill, attach, resize, exec, stdin) are
//!    served; `SIGCHLD` (via signalfd) reaps;
//! 5. when the init has exited and its output is drained it sends the `Exit` frame to every connection,
//!    records the status in `exit.json` (write, fsync, rename) for a daemon that was away (not for a
//!    container removed at its end: such a daemon removes it at start-up), lets go of the container's mount
//!    namespace (held since it was made so that the init's exit does not wait for its teardown), removes the
//!    container's cgroup, unmounts the root (not a `--rm` container's: the daemon keeps it mounted for the
//!    next one when nothing of this one's is left in it),
//!    closes the connections and exits. The daemon takes the closed connection as the sign that the
//!    container's directories are free again.
//!
//! It is small on purpose, memory per container being a benchmark figure: one thread, and a second for the
//! log made at the container's first output (a quiet container never has it).

use crate::container::Cgroup;
use crate::logfile::{now_rfc3339, LogThread};
use crate::proto::{self, Decoder, ExitStatus, Kind, Reply, Request, ShimConfig};
use berth_sys::container::Created;
use berth_sys::mount::{self, Overlay};
use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Why a shim could not set its container (or an exec) up.
#[derive(Debug, thiserror::Error)]
pub enum ShimError {
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
    #[error("exec: {0}")]
    Exec(String),
    #[error(transparent)]
    Runtime(#[from] crate::container::RuntimeError),
}

fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ShimError {
    let what = what.into();
    move |source| ShimError::Io { what, source }
}

fn os_err(what: impl Into<String>) -> impl FnOnce(nix::Error) -> ShimError {
    let what = what.into();
    move |source| ShimError::Os { what, source }
}

/// The argument of `berth shim`: the state directory and the configuration come on stdin, a line each
/// (see [`main_args`]).
pub const SPARE: &str = "-";

/// The process name of a spare while it waits, and of a shim (a spare once it has its container).
pub(crate) const SPARE_NAME: &std::ffi::CStr = c"berth-spare";
pub(crate) const SHIM_NAME: &std::ffi::CStr = c"berth-shim";
/// The process name of a container's init that a spare cloned ahead, until it runs the program.
pub(crate) const INIT_NAME: &std::ffi::CStr = c"berth-init";

/// Entry point of `berth shim - [<cgroup-parent>]`; returns the process exit code.
///
/// Its standard input is a socket the daemon holds the other end of. The shim blocks reading it; the
/// daemon writes the container's state directory and its configuration ([`ShimConfig`] as JSON), a line
/// each, and from there on the socket is the daemon's connection to the shim: the frames of
/// [`crate::proto`], whose first answer says whether the container was created.
///
/// The daemon starts a shim before it has a container for it (a spare), so that a start does not wait for
/// a process to be made, its program loaded and its runtime set up (most of a millisecond), nor, on cgroup
/// v1, for the container's cgroup to be made and its init cloned (given the parent, it makes the cgroup and
/// clones the init in it ahead), nor for its control socket to be bound (given the daemon's socket
/// directory, it binds one there ahead, which the start renames). Without its lines (the daemon closed its
/// end, or died) it kills that init, removes the cgroup and the socket, and exits quietly.
pub fn main_args(arg: &str, cgroup_parent: Option<&str>, socket_dir: Option<&str>) -> i32 {
    if arg != SPARE {
        eprintln!(
            "usage: berth shim - [cgroup-parent [socket-dir]] (the container comes on standard input)"
        );
        return 2;
    }
    // One malloc arena: the shim's log thread and its init's seccomp thread (see
    // `berth_sys::seccomp::Program::compile_ahead`) would each make one of their own (a 64 MiB mapping
    // trimmed to what they use, pages faulted in anew), where the main one is warmed up already.
    berth_sys::process::single_malloc_arena();
    // A session and process group of its own: a signal to the daemon's (a Ctrl-C in the terminal of a
    // daemon run in the foreground) does not reach it or its container.
    let _ = berth_sys::process::new_session();
    // While it waits a spare goes by a name of its own, so that `ps` (and a count of the shims that serve
    // containers) tells it apart; once it has a container it is a shim like the others.
    let _ = nix::sys::prctl::set_name(SPARE_NAME);
    // A spare readies itself (and the init it clones ahead) at the lowest priority: that work is done
    // while a client waits for something else (the last container's end, the next command's start), and
    // must not take the CPU from it. Given its container, it is back at the daemon's priority: the daemon
    // raises its process group once it has written the container (the init cloned ahead is in it until
    // handed its container), and it raises itself and that init as it reads it. A container given before
    // it lowered itself is waiting on its input: then it does not.
    let base = berth_sys::process::nice_of(0).unwrap_or(0);
    if cgroup_parent.is_some() {
        let _ = berth_sys::process::set_nice(0, berth_sys::process::LOWEST_NICE);
        if input_waiting() {
            let _ = berth_sys::process::set_nice(0, base);
        }
    }
    // It finds the cgroup hierarchies ahead (they stay where they are): the kernel prints every mount for
    // a read of the mount table, a tenth of a millisecond here.
    let cgroup_mounts = std::fs::read_to_string("/proc/self/mountinfo")
        .ok()
        .map(|mountinfo| berth_sys::launch::cgroup_mounts(&mountinfo));
    // On cgroup v1 it also makes its container's cgroup ahead, under the daemon's cgroup parent: nine
    // `mkdir`s off the start's path, a `rename` each on it (see `Cgroup::adopt`).
    let cgroup = cgroup_parent
        .zip(cgroup_mounts.as_deref())
        .and_then(|(parent, mounts)| Cgroup::spare(parent, mounts));
    // And clones its container's init ahead, in that cgroup (see `berth_sys::container::clone_ahead`);
    // without one, the start clones it.
    let ahead = cgroup
        .as_ref()
        .and_then(|cg| berth_sys::container::clone_ahead(INIT_NAME, &cg.join().ok()?).ok());
    // And binds its control socket ahead, in the daemon's socket directory, under a name of its own: the
    // start renames it (a new socket file is a new inode, and on a filesystem where files come and go
    // ext4 looks past every recently freed inode for one).
    let prebound = cgroup_parent
        .zip(socket_dir)
        .and_then(|(_, dir)| Prebound::bind(Path::new(dir)));
    let spare = SpareCgroup(cgroup, ahead, prebound);
    // A spare (one given the cgroup parent) has time: the pages its container's start touches first
    // are made now (the init cloned ahead does the same with its own).
    if cgroup_parent.is_some() {
        berth_sys::process::warm_up(256 * 1024, 128 * 1024);
    }
    let handed = std::io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .map(UnixStream::from)
        .and_then(|mut conn| {
            let given = read_lines(&mut conn)?;
            Ok((conn, given))
        });
    match handed {
        Ok((conn, Some((state_dir, config, rest)))) => {
            if cgroup_parent.is_some() {
                let _ = berth_sys::process::set_nice(0, base);
                if let Some(init) = &spare.1 {
                    let _ = berth_sys::process::set_nice(init.pid(), base);
                }
            }
            let _ = nix::sys::prctl::set_name(SHIM_NAME);
            run(
                Path::new(&state_dir),
                spare,
                cgroup_mounts,
                &config,
                conn,
                &rest,
            )
        }
        // The spare's cgroup and init go with it.
        _ => 0,
    }
}

/// Whether the daemon has written to the shim's input already.
fn input_waiting() -> bool {
    let stdin = std::io::stdin();
    let mut fds = [nix::poll::PollFd::new(
        stdin.as_fd(),
        nix::poll::PollFlags::POLLIN,
    )];
    nix::poll::poll(&mut fds, nix::poll::PollTimeout::ZERO).is_ok_and(|n| n > 0)
}

/// Reads the state directory and the configuration, a line each, from the daemon's connection; returns
/// them with the bytes that followed (the daemon's first requests), or `None` at the end of input.
fn read_lines(conn: &mut UnixStream) -> std::io::Result<Option<(String, String, Vec<u8>)>> {
    let mut buf = Vec::with_capacity(8 * 1024);
    let mut chunk = [0u8; 8 * 1024];
    loop {
        let mut ends = buf
            .iter()
            .enumerate()
            .filter(|(_, &b)| b == b'\n')
            .map(|(i, _)| i);
        if let (Some(first), Some(second)) = (ends.next(), ends.next()) {
            if first == 0 {
                return Ok(None);
            }
            let dir = String::from_utf8_lossy(&buf[..first]).into_owned();
            let config = String::from_utf8_lossy(&buf[first + 1..second]).into_owned();
            return Ok(Some((dir, config, buf[second + 1..].to_vec())));
        }
        let n = match conn.read(&mut chunk) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            r => r?,
        };
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Runs the shim for the state directory `state_dir` with its configuration `config` (see the module docs),
/// answering on `conn`, whose `rest` (requests that came with the configuration) it then serves; returns
/// the exit code. `cgroup_mounts`: the cgroup hierarchies, if found already.
fn run(
    state_dir: &Path,
    spare: SpareCgroup,
    cgroup_mounts: Option<Vec<berth_sys::launch::CgroupMount>>,
    config: &str,
    mut conn: UnixStream,
    rest: &[u8],
) -> i32 {
    let cfg = serde_json::from_str::<ShimConfig>(config).map_err(|source| ShimError::ConfigJson {
        path: format!("the configuration of {}", state_dir.display()),
        source,
    });
    let cfg = match cfg {
        Ok(c) => c,
        Err(e) => {
            drop(spare);
            let _ = conn.write_all(&reply_frame(false, Some(e.to_string()), None));
            return 1;
        }
    };
    match Shim::setup(cfg, spare, cgroup_mounts) {
        Err(e) => {
            let _ = conn.write_all(&reply_frame(false, Some(e.to_string()), None));
            1
        }
        Ok(mut shim) => {
            let _ = conn.write_all(&reply_frame(true, None, Some(shim.procs[0].pid)));
            let ci = shim.add_client(conn);
            shim.clients[ci].decoder.push(rest);
            shim.serve_frames(ci);
            shim.run();
            0
        }
    }
}

/// The answer to the daemon's handing over of a container: a `Control` frame.
fn reply_frame(ok: bool, error: Option<String>, pid: Option<i32>) -> Vec<u8> {
    let body = serde_json::to_vec(&Reply {
        ok,
        error,
        pid,
        started: false,
    })
    .unwrap_or_else(|_| b"{}".to_vec());
    proto::encode(Kind::Control, &body)
}

/// A connection from the daemon.
struct Client {
    id: u64,
    stream: UnixStream,
    decoder: Decoder,
    stdout: bool,
    stderr: bool,
    stdin: bool,
}

/// A process the shim supervises: the container's init (index 0) or an exec.
struct Proc {
    exec: Option<String>,
    pid: i32,
    /// stdout and stderr pipes; with a terminal, the pty master (as stdout) only.
    out: [Option<File>; 2],
    stdin: Option<File>,
    /// The pty master, for resizing.
    master: Option<File>,
    exit: Option<i32>,
    exited_at: Option<Instant>,
    /// For an exec: the connection that gets its output and its exit.
    owner: Option<u64>,
}

/// The stdio of a process about to be created.
struct Stdio {
    child: Option<[OwnedFd; 3]>,
    ours_out: [Option<File>; 2],
    ours_in: Option<File>,
}

/// Pipes for a process without a terminal.
fn pipes(open_stdin: bool) -> Result<Stdio, ShimError> {
    let (out_r, out_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(os_err("pipe"))?;
    let (err_r, err_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(os_err("pipe"))?;
    let (stdin_child, stdin_ours): (OwnedFd, Option<OwnedFd>) = if open_stdin {
        let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(os_err("pipe"))?;
        (r, Some(w))
    } else {
        (
            File::open("/dev/null")
                .map_err(io_err("open /dev/null"))?
                .into(),
            None,
        )
    };
    Ok(Stdio {
        child: Some([stdin_child, out_w, err_w]),
        ours_out: [Some(File::from(out_r)), Some(File::from(err_r))],
        ours_in: stdin_ours.map(File::from),
    })
}

struct Shim {
    cfg: ShimConfig,
    /// The container's seccomp filter, loaded by its init and by every exec.
    filter: Option<(berth_sys::seccomp::Program, u32)>,
    /// The init, waiting for its start (taken at start).
    created: Option<Created>,
    cgroup: Cgroup,
    started: bool,
    /// See [`Shim::tidy_once_started`].
    tidied: bool,
    /// When the container was started.
    started_at: Option<Instant>,
    /// Frozen by a `Pause` (a frozen v1 task ignores even SIGKILL until thawed).
    paused: bool,
    listener: UnixListener,
    sigfd: SignalFd,
    procs: Vec<Proc>,
    log: Option<LogThread>,
    clients: Vec<Client>,
    next_client: u64,
    /// Output read from a process, after room for a frame header, so a frame goes out without a copy.
    /// Allocated at the first output: a container that prints nothing costs nothing for it (memory per
    /// running container is what a host with many containers pays).
    io_buf: Vec<u8>,
    /// The cgroup files an exec joins through (`tasks` on v1, `cgroup.procs` on v2), found at the first
    /// exec: the init's cgroups, the shim's and the mounts do not change while the container runs.
    exec_cgroups: Option<(Vec<PathBuf>, Vec<PathBuf>)>,
    /// When output was last read, and whether the last reads found a stream that is written in small
    /// pieces faster than they are read (see [`GATHER`]).
    last_read: Option<Instant>,
    gather: bool,
    /// The container's mount namespace, held so that the init's exit does not tear it down: unmounting a
    /// namespace's mounts waits for an RCU grace period (about half a millisecond here), which would
    /// delay the exit the daemon and `wait` see. Let go once the exit is sent.
    mount_ns: Option<File>,
}

/// What a shim serves its container with, readied while the container's init sets itself up.
struct Serving {
    listener: UnixListener,
    sigfd: SignalFd,
    log: Option<LogThread>,
}

impl Serving {
    /// Binds the control socket, readies the signal handling and the log.
    fn prepare(cfg: &ShimConfig, prebound: Option<Prebound>) -> Result<Serving, ShimError> {
        let listener = match prebound.and_then(|p| p.take_as(&cfg.socket)) {
            Some(l) => l,
            None => {
                let _ = std::fs::remove_file(&cfg.socket);
                UnixListener::bind(&cfg.socket)
                    .map_err(io_err(format!("bind {}", cfg.socket.display())))?
            }
        };
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
                LogThread::open(l.clone())
                    .map_err(io_err(format!("open log {}", l.path.display())))?,
            ),
            None => None,
        };
        Ok(Serving {
            listener,
            sigfd,
            log,
        })
    }
}

/// How much output one read takes (a pipe holds 64 KiB by default).
const IO_CHUNK: usize = 64 * 1024;
/// A pipe wakes its reader at every write, so a process that streams output in small writes (4 KiB is
/// common) is read, framed and forwarded in pieces that small, and every hop after the shim (daemon,
/// client) pays per piece. While reads keep coming back less than half full within [`STREAMING`] of the
/// previous one, the shim waits this long before it reads again, so that the pieces gather into one frame.
/// A pipe holds 64 KiB: at the rates where this matters it fills in about this time, after which reads
/// come back full and nothing waits. Output that is not a stream (a prompt, a line now and then) never waits.
const GATHER: Duration = Duration::from_micros(250);
const STREAMING: Duration = Duration::from_millis(1);
/// A started container's shim tidies (see `Shim::tidy_once_started`) once it has had nothing to do for this
/// long, or this long after the start at the latest.
const TIDY_WHEN_QUIET_MS: u16 = 20;
const TIDY_AT_THE_LATEST: Duration = Duration::from_millis(200);

/// Whether a read of `n` bytes, `since` the previous read of output, shows a stream that is written in small
/// pieces faster than they are read: then the shim waits [`GATHER`] before it reads again.
fn written_in_pieces(n: usize, since: Option<Duration>) -> bool {
    n < IO_CHUNK / 2 && since.is_some_and(|d| d < STREAMING)
}

impl Shim {
    /// `spare_cgroup`: what a spare made ahead (whatever fails before the container takes it must not
    /// leave it behind).
    fn setup(
        mut cfg: ShimConfig,
        spare_cgroup: SpareCgroup,
        cgroup_mounts: Option<Vec<berth_sys::launch::CgroupMount>>,
    ) -> Result<Shim, ShimError> {
        // In a session of its own since it started (`main_args`).
        berth_sys::process::set_subreaper()?;
        std::fs::create_dir_all(&cfg.rootfs)
            .map_err(io_err(format!("create {}", cfg.rootfs.display())))?;
        let cgroup_mounts = match cgroup_mounts {
            Some(m) => m,
            None => berth_sys::launch::cgroup_mounts(
                &std::fs::read_to_string("/proc/self/mountinfo")
                    .map_err(io_err("read /proc/self/mountinfo"))?,
            ),
        };
        // The daemon mounts the root itself for a copy-up and for a container removed at its end.
        if !mount::is_mounted(&cfg.rootfs) {
            let ov = Overlay {
                lower: cfg.lower.clone(),
                upper: cfg.upper.clone(),
                work: cfg.work.clone(),
                volatile: cfg.volatile,
            };
            mount::mount_overlay(&ov, &cfg.rootfs)?;
        }
        let spec = cfg.spec.take();
        match Self::create(cfg.clone(), spec, cgroup_mounts, spare_cgroup) {
            Ok(s) => Ok(s),
            Err(e) => {
                let _ = mount::unmount(&cfg.rootfs);
                Err(e)
            }
        }
    }

    fn create(
        cfg: ShimConfig,
        spec: Option<oci_spec::runtime::Spec>,
        cgroup_mounts: Vec<berth_sys::launch::CgroupMount>,
        mut spare_cgroup: SpareCgroup,
    ) -> Result<Shim, ShimError> {
        let filter = load_filter(cfg.seccomp.as_ref())?;
        let spec_path = cfg.bundle.join("config.json");
        let spec =
            spec.ok_or_else(|| ShimError::Create("the configuration holds no spec".into()))?;
        let linux = spec.linux().clone().unwrap_or_default();
        let cgroup_path = linux.cgroups_path().clone().ok_or_else(|| {
            ShimError::Create(format!("{} has no linux.cgroupsPath", spec_path.display()))
        })?;
        // The init cloned ahead is in the spare's cgroup: it is the container's init if that cgroup
        // becomes the container's (and the init fits the container: see `create_init`).
        let mut ahead = spare_cgroup.1.take();
        let prebound = spare_cgroup.2.take();
        let cgroup = match spare_cgroup.0.take() {
            Some(spare) => spare.adopt(
                &cgroup_path,
                linux.resources().as_ref(),
                &cgroup_mounts,
                || drop(ahead.take()),
            )?,
            None => {
                drop(ahead.take());
                Cgroup::create(&cgroup_path, linux.resources().as_ref(), &cgroup_mounts)?
            }
        };
        // While the init sets its root up, the shim readies what it serves with.
        let made = Self::create_init(
            &cfg,
            &spec,
            &cgroup,
            &cgroup_mounts,
            filter.clone(),
            ahead,
            |_| Serving::prepare(&cfg, prebound),
        );
        match made {
            Ok((created, init, serving)) => {
                Ok(Self::serve(cfg, filter, created, cgroup, init, serving))
            }
            Err(e) => {
                cgroup.remove();
                let _ = std::fs::remove_file(&cfg.socket);
                Err(e)
            }
        }
    }

    /// Clones the container's init with its stdio: pipes, or a terminal whose master it sends back; or
    /// hands the init cloned `ahead` its container, when it fits (the same pid, IPC and UTS namespaces).
    /// `meanwhile` runs (with the init's pid) while the init sets itself up; the init is ready when this
    /// returns, or killed if `meanwhile` failed.
    #[allow(clippy::too_many_arguments)]
    fn create_init<P>(
        cfg: &ShimConfig,
        spec: &oci_spec::runtime::Spec,
        cgroup: &Cgroup,
        cgroup_mounts: &[berth_sys::launch::CgroupMount],
        filter: Option<(berth_sys::seccomp::Program, u32)>,
        ahead: Option<berth_sys::container::Ahead>,
        meanwhile: impl FnOnce(i32) -> Result<P, ShimError>,
    ) -> Result<(Created, Proc, P), ShimError> {
        let (launch_stdio, terminal, stdio) = if cfg.tty {
            let (ours, theirs) = UnixStream::pair().map_err(io_err("socketpair"))?;
            (berth_sys::launch::Stdio::Terminal(theirs), Some(ours), None)
        } else {
            let mut st = pipes(cfg.open_stdin)?;
            let fds = st
                .child
                .take()
                .ok_or_else(|| ShimError::Create("no stdio for the container".into()))?;
            (berth_sys::launch::Stdio::Fds(fds), None, Some(st))
        };
        let mut init = crate::container::init(
            spec,
            &cfg.bundle,
            cgroup,
            cgroup_mounts,
            filter,
            launch_stdio,
        )?;
        init.process.compile_filter_ahead = cfg.seccomp.as_ref().is_some_and(|f| f.compile_ahead);
        let spawned = match ahead {
            Some(ahead) if ahead.fits(&init) => match ahead.hand(init) {
                Ok(spawned) => Ok(spawned),
                // It died while it waited: a new one.
                Err(init) => berth_sys::container::spawn(*init),
            },
            other => {
                drop(other);
                berth_sys::container::spawn(init)
            }
        }
        .map_err(|e| ShimError::Create(e.to_string()))?;
        let prepared = meanwhile(spawned.pid())?;
        let created = spawned
            .ready()
            .map_err(|e| ShimError::Create(e.to_string()))?;
        let pid = created.pid;
        let console = match terminal {
            Some(ours) => Some(berth_sys::launch::receive_terminal(&ours)?),
            None => None,
        };
        let init = match (console, stdio) {
            (Some(master), _) => {
                if let Some((rows, cols)) = cfg.console_size {
                    let _ = berth_sys::fd::set_winsize(&master, rows, cols);
                }
                let reader = master.try_clone().map_err(io_err("dup pty master"))?;
                let writer = master.try_clone().map_err(io_err("dup pty master"))?;
                Proc {
                    exec: None,
                    pid,
                    out: [Some(reader), None],
                    stdin: Some(writer),
                    master: Some(master),
                    exit: None,
                    exited_at: None,
                    owner: None,
                }
            }
            (None, Some(st)) => Proc {
                exec: None,
                pid,
                out: st.ours_out,
                stdin: st.ours_in,
                master: None,
                exit: None,
                exited_at: None,
                owner: None,
            },
            (None, None) => return Err(ShimError::Create("no stdio for the container".into())),
        };
        Ok((created, init, prepared))
    }

    /// The shim of a ready init, with what [`Serving::prepare`] readied.
    fn serve(
        cfg: ShimConfig,
        filter: Option<(berth_sys::seccomp::Program, u32)>,
        created: Created,
        cgroup: Cgroup,
        init: Proc,
        serving: Serving,
    ) -> Shim {
        // The init is ready: its mount namespace is the container's (an init cloned ahead takes its own
        // only once handed its container).
        let mount_ns = File::open(format!("/proc/{}/ns/mnt", init.pid)).ok();
        Shim {
            cfg,
            filter,
            created: Some(created),
            cgroup,
            started: false,
            tidied: false,
            started_at: None,
            paused: false,
            listener: serving.listener,
            sigfd: serving.sigfd,
            procs: vec![init],
            log: serving.log,
            clients: Vec::new(),
            next_client: 1,
            io_buf: Vec::new(),
            exec_cgroups: None,
            last_read: None,
            gather: false,
            mount_ns,
        }
    }

    fn run(&mut self) {
        loop {
            self.reap();
            self.finish_execs();
            let init = &self.procs[0];
            if let Some(at) = init.exited_at {
                if init.out.iter().all(Option::is_none) || at.elapsed() >= Duration::from_secs(2) {
                    break;
                }
            }
            let draining = self.procs.iter().any(|p| p.exit.is_some());
            let tidy_due = self.started && !self.tidied;
            let timeout = if draining {
                50u16
            } else if tidy_due {
                TIDY_WHEN_QUIET_MS
            } else {
                5000u16
            };
            // (what, proc or client index, stream)
            let mut slots: Vec<(u8, usize, usize)> = vec![(0, 0, 0), (1, 0, 0)];
            let ready: Vec<bool>;
            let tidy_now: bool;
            {
                let mut fds: Vec<PollFd> = vec![
                    PollFd::new(self.listener.as_fd(), PollFlags::POLLIN),
                    PollFd::new(self.sigfd.as_fd(), PollFlags::POLLIN),
                ];
                for (pi, p) in self.procs.iter().enumerate() {
                    for (si, o) in p.out.iter().enumerate() {
                        if let Some(f) = o {
                            fds.push(PollFd::new(f.as_fd(), PollFlags::POLLIN));
                            slots.push((2, pi, si));
                        }
                    }
                }
                for (ci, c) in self.clients.iter().enumerate() {
                    fds.push(PollFd::new(c.stream.as_fd(), PollFlags::POLLIN));
                    slots.push((3, ci, 0));
                }
                let quiet = match poll(&mut fds, PollTimeout::from(timeout)) {
                    Ok(n) => n == 0,
                    Err(nix::Error::EINTR) => continue,
                    Err(_) => {
                        std::thread::sleep(Duration::from_millis(50));
                        false
                    }
                };
                tidy_now = tidy_due
                    && (quiet
                        || self
                            .started_at
                            .is_some_and(|t| t.elapsed() >= TIDY_AT_THE_LATEST));
                ready = fds
                    .iter()
                    .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
                    .collect();
            }
            if tidy_now {
                self.tidy_once_started();
            }
            if ready[1] {
                while let Ok(Some(_)) = self.sigfd.read_signal() {}
            }
            // Output first, then clients (highest index first, so removals keep indices valid), then accept.
            for (k, &(what, pi, si)) in slots.iter().enumerate() {
                if what == 2 && ready[k] {
                    self.pump(pi, si);
                }
            }
            for (k, &(what, ci, _)) in slots.iter().enumerate().rev() {
                if what == 3 && ready[k] {
                    self.serve_client(ci);
                }
            }
            if ready[0] {
                self.accept();
            }
            if std::mem::take(&mut self.gather) {
                std::thread::sleep(GATHER);
            }
        }
        self.finish();
    }

    fn reap(&mut self) {
        loop {
            let (pid, code) = match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) => (pid.as_raw(), code),
                Ok(WaitStatus::Signaled(pid, sig, _)) => (pid.as_raw(), 128 + sig as i32),
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(_) => continue,
            };
            if let Some(p) = self
                .procs
                .iter_mut()
                .find(|p| p.pid == pid && p.exit.is_none())
            {
                p.exit = Some(code);
                p.exited_at = Some(Instant::now());
            }
        }
    }

    /// Execs whose process ended and whose output is drained (or that had 2 s to drain) report and go.
    fn finish_execs(&mut self) {
        let mut i = 1;
        while i < self.procs.len() {
            let p = &self.procs[i];
            let done = p.exited_at.is_some_and(|at| {
                p.out.iter().all(Option::is_none) || at.elapsed() >= Duration::from_secs(2)
            });
            if !done {
                i += 1;
                continue;
            }
            let p = self.procs.remove(i);
            let status = ExitStatus {
                exit_code: p.exit.unwrap_or(255),
                oom_killed: false,
                finished_at: now_rfc3339(),
                error: None,
                started: true,
            };
            let frame = proto::encode(Kind::Exit, &serde_json::to_vec(&status).unwrap_or_default());
            if let Some(ci) = self.clients.iter().position(|c| Some(c.id) == p.owner) {
                let c = self.clients.remove(ci);
                let mut s = c.stream;
                let _ = s.write_all(&frame);
                let _ = s.shutdown(std::net::Shutdown::Both);
            }
        }
    }

    fn pump(&mut self, pi: usize, si: usize) {
        let Some(p) = self.procs.get_mut(pi) else {
            return;
        };
        let Some(f) = p.out[si].as_mut() else { return };
        if self.io_buf.is_empty() {
            self.io_buf = vec![0; proto::HEADER_LEN + IO_CHUNK];
        }
        let buf = &mut self.io_buf;
        let n = match f.read(&mut buf[proto::HEADER_LEN..]) {
            // EIO is how a pty master reports that the last slave closed.
            Ok(0) | Err(_) => {
                p.out[si] = None;
                return;
            }
            Ok(n) => n,
        };
        let now = Instant::now();
        if written_in_pieces(n, self.last_read.map(|t| now - t)) {
            self.gather = true;
        }
        self.last_read = Some(now);
        let stream = if si == 1 { 2u8 } else { 1u8 };
        let kind = if stream == 1 {
            Kind::Stdout
        } else {
            Kind::Stderr
        };
        buf[..proto::HEADER_LEN].copy_from_slice(&proto::header(kind, n));
        let frame = &buf[..proto::HEADER_LEN + n];
        let data = &frame[proto::HEADER_LEN..];
        match p.owner {
            Some(owner) => {
                if let Some(ci) = self.clients.iter().position(|c| c.id == owner) {
                    if self.clients[ci].stream.write_all(frame).is_err() {
                        self.clients.remove(ci);
                    }
                }
            }
            None => {
                // Attached clients first: the log takes its copy on a thread of its own.
                self.clients.retain_mut(|c| {
                    let wants = if stream == 1 { c.stdout } else { c.stderr };
                    !wants || c.stream.write_all(frame).is_ok()
                });
                if let Some(log) = self.log.as_mut() {
                    log.write(stream, data);
                }
            }
        }
    }

    fn accept(&mut self) {
        while let Ok((stream, _)) = self.listener.accept() {
            self.add_client(stream);
        }
    }

    /// Serves a connection from the daemon from now on; returns its index.
    fn add_client(&mut self, stream: UnixStream) -> usize {
        let _ = stream.set_nonblocking(false);
        let _ = stream.set_write_timeout(Some(Duration::from_secs(10)));
        let id = self.next_client;
        self.next_client += 1;
        self.clients.push(Client {
            id,
            stream,
            decoder: Decoder::default(),
            stdout: false,
            stderr: false,
            stdin: false,
        });
        self.clients.len() - 1
    }

    fn serve_client(&mut self, ci: usize) {
        let mut buf = [0u8; 32 * 1024];
        let n = match self.clients[ci].stream.read(&mut buf) {
            Ok(0) | Err(_) => {
                self.drop_client(ci);
                return;
            }
            Ok(n) => n,
        };
        self.clients[ci].decoder.push(&buf[..n]);
        self.serve_frames(ci);
    }

    /// Serves the whole frames a connection has sent (the connection may be dropped on the way).
    fn serve_frames(&mut self, ci: usize) {
        loop {
            let frame = match self.clients[ci].decoder.next_frame() {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(_) => {
                    self.drop_client(ci);
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
                    let sent = self.clients[ci]
                        .stream
                        .write_all(&proto::encode(Kind::Control, &bytes));
                    if sent.is_err() {
                        self.drop_client(ci);
                        return;
                    }
                }
                (Kind::Stdin, data) => {
                    let id = self.clients[ci].id;
                    let target = self.procs.iter().position(|p| p.owner == Some(id)).or(
                        if self.clients[ci].stdin {
                            Some(0)
                        } else {
                            None
                        },
                    );
                    if let Some(p) = target.and_then(|t| self.procs.get_mut(t)) {
                        if let Some(s) = p.stdin.as_mut() {
                            if s.write_all(&data).is_err() {
                                p.stdin = None;
                            }
                        }
                    }
                }
                _ => {}
            }
        }
    }

    /// A connection went away; an exec it owned keeps running (docker exec -d semantics), unowned.
    fn drop_client(&mut self, ci: usize) {
        let c = self.clients.remove(ci);
        for p in self.procs.iter_mut().filter(|p| p.owner == Some(c.id)) {
            p.owner = None;
            p.stdin = None;
        }
    }

    /// Once the container has started, when the shim has had nothing to do for a moment (or a while after
    /// the start at the latest): the standard descriptors to /dev/null (they were the spare's connection
    /// to the daemon), and the memory the start used and no longer needs back to the kernel (memory per
    /// running container). Not at once: a short container's end, which its client waits for, came while
    /// the shim did this; a container that has ended by then never needs it.
    fn tidy_once_started(&mut self) {
        if !self.started || self.tidied {
            return;
        }
        self.tidied = true;
        let _ = berth_sys::process::stdio_to_devnull();
        berth_sys::process::release_free_memory();
        berth_sys::process::release_unused_stack();
    }

    fn handle(&mut self, ci: usize, req: Request) -> Reply {
        let ok = |s: &Shim, pid: i32| Reply {
            ok: true,
            error: None,
            pid: Some(pid),
            started: s.started,
        };
        let fail = |e: String| Reply {
            ok: false,
            error: Some(e),
            ..Reply::default()
        };
        let init_pid = self.procs[0].pid;
        match req {
            Request::State => ok(self, init_pid),
            Request::Start => {
                if self.started {
                    return ok(self, init_pid);
                }
                let Some(created) = self.created.take() else {
                    return fail("the container's init is gone".into());
                };
                match created.start() {
                    Ok(()) => {
                        self.started = true;
                        self.started_at = Some(Instant::now());
                        ok(self, init_pid)
                    }
                    Err(e) => fail(e.to_string()),
                }
            }
            Request::Kill { signal } => {
                if self.procs[0].exit.is_some() {
                    return fail("container is not running".into());
                }
                match berth_sys::process::signal(init_pid, signal) {
                    Ok(()) => {
                        // A paused container is killed for good (`rm -f`, `kill`): thaw it so it can die.
                        if self.paused
                            && signal == libc::SIGKILL
                            && self.cgroup.freeze(false).is_ok()
                        {
                            self.paused = false;
                        }
                        ok(self, init_pid)
                    }
                    Err(e) => fail(e.to_string()),
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
                ok(self, init_pid)
            }
            Request::CloseStdin => {
                let id = self.clients[ci].id;
                let target = self
                    .procs
                    .iter()
                    .position(|p| p.owner == Some(id))
                    .unwrap_or(0);
                self.procs[target].stdin = None;
                ok(self, init_pid)
            }
            Request::Pause => match self.cgroup.freeze(true) {
                Ok(()) => {
                    self.paused = true;
                    ok(self, init_pid)
                }
                Err(e) => fail(e.to_string()),
            },
            Request::Resume => match self.cgroup.freeze(false) {
                Ok(()) => {
                    self.paused = false;
                    ok(self, init_pid)
                }
                Err(e) => fail(e.to_string()),
            },
            Request::Resize { exec, rows, cols } => {
                let p = self.procs.iter().find(|p| p.exec == exec);
                match p.and_then(|p| p.master.as_ref()) {
                    Some(m) => match berth_sys::fd::set_winsize(m, rows, cols) {
                        Ok(()) => ok(self, init_pid),
                        Err(e) => fail(e.to_string()),
                    },
                    None => fail("no terminal to resize".into()),
                }
            }
            Request::Exec {
                exec,
                process,
                tty,
                stdin,
                console_size,
            } => {
                if !self.started || self.procs[0].exit.is_some() {
                    return fail("container is not running".into());
                }
                let owner = self.clients[ci].id;
                match self.spawn_exec(&exec, &process, tty, stdin, console_size) {
                    Ok(mut p) => {
                        p.owner = Some(owner);
                        let pid = p.pid;
                        self.procs.push(p);
                        ok(self, pid)
                    }
                    Err(e) => fail(e.to_string()),
                }
            }
        }
    }

    /// Starts an exec'd process in the container with berth's own launcher ([`berth_sys::launch`]): it
    /// joins the container's cgroups thread by thread (no global lock on cgroup v1) and its namespaces,
    /// and sets the process up from its OCI `process` as the container's init was (user, groups, rlimits,
    /// `no_new_privs`, capabilities, the container's seccomp filter), with pipes or a terminal.
    fn spawn_exec(
        &mut self,
        exec: &str,
        process: &Path,
        tty: bool,
        open_stdin: bool,
        console_size: Option<(u16, u16)>,
    ) -> Result<Proc, ShimError> {
        let data = std::fs::read(process).map_err(io_err(format!("read {}", process.display())))?;
        let process: oci_spec::runtime::Process = serde_json::from_slice(&data)
            .map_err(|e| ShimError::Exec(format!("decode {}: {e}", process.display())))?;
        let init = self.procs[0].pid;
        let cgroups = match &self.exec_cgroups {
            Some(c) => c.clone(),
            None => {
                let c = berth_sys::launch::cgroup_targets_of(init)?;
                self.exec_cgroups.insert(c).clone()
            }
        };
        // A terminal's master comes back over `ours`; pipes keep our ends in `stdio`.
        let (launch_stdio, terminal, stdio) = if tty {
            let (ours, theirs) = UnixStream::pair().map_err(io_err("socketpair"))?;
            (berth_sys::launch::Stdio::Terminal(theirs), Some(ours), None)
        } else {
            let mut st = pipes(open_stdin)?;
            let fds = st
                .child
                .take()
                .ok_or_else(|| ShimError::Exec("no stdio for the process".into()))?;
            (berth_sys::launch::Stdio::Fds(fds), None, Some(st))
        };
        let spec = exec_launch(&process, init, cgroups, self.filter.clone(), launch_stdio)?;
        let pid = berth_sys::launch::launch(spec).map_err(|e| ShimError::Exec(e.to_string()))?;
        Ok(match (terminal, stdio) {
            (Some(ours), _) => {
                let master = berth_sys::launch::receive_terminal(&ours)?;
                if let Some((rows, cols)) = console_size {
                    let _ = berth_sys::fd::set_winsize(&master, rows, cols);
                }
                let reader = master.try_clone().map_err(io_err("dup pty master"))?;
                let writer = master.try_clone().map_err(io_err("dup pty master"))?;
                Proc {
                    exec: Some(exec.to_string()),
                    pid,
                    out: [Some(reader), None],
                    stdin: Some(writer),
                    master: Some(master),
                    exit: None,
                    exited_at: None,
                    owner: None,
                }
            }
            (None, Some(st)) => Proc {
                exec: Some(exec.to_string()),
                pid,
                out: st.ours_out,
                stdin: st.ours_in,
                master: None,
                exit: None,
                exited_at: None,
                owner: None,
            },
            (None, None) => return Err(ShimError::Exec("no stdio for the process".into())),
        })
    }

    fn finish(&mut self) {
        if let Some(log) = self.log.as_mut() {
            let _ = log.finish();
        }
        let oom_killed = self
            .cfg
            .oom_event_files
            .iter()
            .any(|p| oom_kill_count(p) > 0);
        let status = ExitStatus {
            exit_code: self.procs[0].exit.unwrap_or(255),
            oom_killed,
            finished_at: now_rfc3339(),
            error: None,
            started: self.started,
        };
        // The exit first, then the rest: `wait` and `run` return while the shim records and cleans up. The
        // daemon waits for the connection to close before it reuses or removes the container's directories.
        let payload = serde_json::to_vec(&status).unwrap_or_default();
        let frame = proto::encode(Kind::Exit, &payload);
        for c in self.clients.iter_mut() {
            let _ = c.stream.write_all(&frame);
        }
        // For a daemon that was away (written before the connection closes, so before any removal of the
        // directory). Not for a `--rm` container: a daemon that was away removes it at start-up whatever
        // its status, which nobody can ask for any more.
        if !self.cfg.volatile {
            let _ = write_exit(&self.cfg.exit_file, &status, true);
        }
        // What is left nobody waits for when the container is removed at its end (its client has its
        // answer, the daemon removes it in the background): the CPU goes to what does.
        if self.cfg.volatile {
            let _ = berth_sys::process::set_nice(0, berth_sys::process::LOWEST_NICE);
        }
        self.created = None;
        self.mount_ns = None;
        self.cgroup.remove();
        // A `--rm` container's root is left to the daemon, which removes the container now: it keeps the
        // directory for the next `--rm` container of the image with the root still mounted when nothing
        // of this one's is left in it (a daemon that was away unmounts it when it removes the container).
        if !self.cfg.volatile {
            let _ = mount::unmount(&self.cfg.rootfs);
        }
        let _ = std::fs::remove_file(&self.cfg.socket);
        for c in self.clients.iter_mut() {
            let _ = c.stream.shutdown(std::net::Shutdown::Both);
        }
    }
}

/// A spare's cgroup, the init it cloned ahead in it and the control socket it bound ahead, until the
/// container takes them: the init is killed, the cgroup and the socket removed if dropped before.
struct SpareCgroup(
    Option<Cgroup>,
    Option<berth_sys::container::Ahead>,
    Option<Prebound>,
);

impl Drop for SpareCgroup {
    fn drop(&mut self) {
        drop(self.1.take());
        if let Some(cg) = self.0.take() {
            cg.remove();
        }
    }
}

/// A spare's control socket, bound ahead as `.spare-<pid>` in the daemon's socket directory; its file is
/// removed if it is dropped unused.
struct Prebound {
    listener: Option<UnixListener>,
    path: PathBuf,
}

impl Prebound {
    fn bind(dir: &Path) -> Option<Prebound> {
        let path = dir.join(format!("{PREBOUND_PREFIX}{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).ok()?;
        Some(Prebound {
            listener: Some(listener),
            path,
        })
    }

    /// The listener, its file renamed to `to` (in the same directory); `None` (the file removed) if it
    /// cannot be.
    fn take_as(mut self, to: &Path) -> Option<UnixListener> {
        if self.path.parent() != to.parent() || std::fs::rename(&self.path, to).is_err() {
            return None;
        }
        self.path = PathBuf::new();
        self.listener.take()
    }
}

impl Drop for Prebound {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// The name a spare's socket is bound ahead under, followed by its pid (never a container's: those are
/// hex ids).
pub const PREBOUND_PREFIX: &str = ".spare-";

/// Reads the seccomp program the daemon compiled for this container.
fn load_filter(
    cfg: Option<&proto::SeccompFilter>,
) -> Result<Option<(berth_sys::seccomp::Program, u32)>, ShimError> {
    let Some(f) = cfg else {
        return Ok(None);
    };
    let bytes = std::fs::read(&f.program).map_err(io_err(format!(
        "read seccomp program {}",
        f.program.display()
    )))?;
    let program = berth_sys::seccomp::Program::from_bytes(&bytes)
        .map_err(io_err(format!("seccomp program {}", f.program.display())))?;
    Ok(Some((program, f.flags)))
}

/// The namespaces an exec joins, all of the container init's (a namespace it shares with the host is the
/// host's, so joining it changes nothing); mount last, so the rest resolve against the host's `/proc`.
const EXEC_NAMESPACES: [nix::sched::CloneFlags; 6] = [
    nix::sched::CloneFlags::CLONE_NEWCGROUP,
    nix::sched::CloneFlags::CLONE_NEWIPC,
    nix::sched::CloneFlags::CLONE_NEWUTS,
    nix::sched::CloneFlags::CLONE_NEWNET,
    nix::sched::CloneFlags::CLONE_NEWPID,
    nix::sched::CloneFlags::CLONE_NEWNS,
];

/// What [`berth_sys::launch`] needs to start `process` in the container whose init is `init`.
fn exec_launch(
    process: &oci_spec::runtime::Process,
    init: i32,
    (cgroup_tasks, cgroup_procs): (Vec<PathBuf>, Vec<PathBuf>),
    seccomp: Option<(berth_sys::seccomp::Program, u32)>,
    stdio: berth_sys::launch::Stdio,
) -> Result<berth_sys::launch::Launch, ShimError> {
    Ok(berth_sys::launch::Launch {
        namespaces: berth_sys::launch::open_namespaces(init, &EXEC_NAMESPACES)?,
        cgroup_tasks,
        cgroup_procs,
        process: crate::container::process(process, seccomp)
            .map_err(|e| ShimError::Exec(e.to_string()))?,
        stdio,
    })
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

/// Record the exit status: write a temp file, fsync (when `durable`), rename, so a reader never sees half
/// of it.
pub fn write_exit(path: &Path, status: &ExitStatus, durable: bool) -> std::io::Result<()> {
    // The state directory is made by the first thing that writes into it (a start makes none).
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    {
        let mut f = File::create(&tmp)?;
        f.write_all(&serde_json::to_vec(status).map_err(std::io::Error::other)?)?;
        if durable {
            f.sync_all()?;
        }
    }
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_container_comes_in_two_lines_and_the_requests_after_them_are_kept() {
        let (mut ours, mut theirs) = UnixStream::pair().unwrap();
        let frame = proto::encode(Kind::Control, br#"{"op":"start"}"#);
        let mut sent = b"/run/berth/containers/abc\n{\"id\":\"abc\"}\n".to_vec();
        sent.extend_from_slice(&frame);
        // In two pieces, the first ending inside the configuration.
        theirs.write_all(&sent[..30]).unwrap();
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            theirs.write_all(&sent[30..]).unwrap();
            theirs
        });
        let (dir, config, rest) = read_lines(&mut ours).unwrap().unwrap();
        assert_eq!(dir, "/run/berth/containers/abc");
        assert_eq!(config, r#"{"id":"abc"}"#);
        // The rest may still be on its way: what came is the start of the frame, and the frame follows.
        assert!(frame.starts_with(&rest), "{rest:?}");
        drop(writer.join().unwrap());
        let mut all = rest;
        ours.read_to_end(&mut all).unwrap();
        assert_eq!(all, frame);
        // The end of the input before the lines (the daemon went away): nothing to do.
        let (mut ours, theirs) = UnixStream::pair().unwrap();
        drop(theirs);
        assert!(read_lines(&mut ours).unwrap().is_none());
        let (mut ours, mut theirs) = UnixStream::pair().unwrap();
        theirs.write_all(b"/only/one/line\n").unwrap();
        drop(theirs);
        assert!(read_lines(&mut ours).unwrap().is_none());
    }

    #[test]
    fn only_small_reads_in_quick_succession_wait_to_gather() {
        let quick = Some(Duration::from_micros(30));
        // A writer's 4 KiB pieces, read as soon as written: wait for more.
        assert!(written_in_pieces(4096, quick));
        // A read that found the pipe well filled, a first read, a line now and then: no waiting.
        assert!(!written_in_pieces(IO_CHUNK, quick));
        assert!(!written_in_pieces(IO_CHUNK / 2, quick));
        assert!(!written_in_pieces(100, None));
        assert!(!written_in_pieces(100, Some(Duration::from_millis(20))));
    }

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
            started: true,
        };
        write_exit(&p, &st, true).unwrap();
        let back: ExitStatus = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        assert_eq!(back, st);
        assert!(!p.with_extension("tmp").exists());
    }
}
