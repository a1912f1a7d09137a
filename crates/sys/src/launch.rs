//! Starting a process inside a running container (`exec`), the way a runtime's own init would be set up,
//! in two forks from the (single-threaded) shim:
//!
//! 1. The *joiner* moves itself into the container's cgroups and joins its namespaces. On cgroup v1 it moves
//!    its one thread by writing `0` to each hierarchy's `tasks` file: the kernel takes no global lock for a
//!    thread that moves itself, while writing a pid to `cgroup.procs` takes the system-wide threadgroup
//!    rwsem, whose first writer after an idle spell waits for an RCU grace period (7-16 ms here, measured).
//!    A pid namespace applies to children only, so the joiner forks the process and exits.
//! 2. The *process* resets signals, takes its stdio (pipes, or a terminal it opens in the container's own
//!    devpts and whose master it sends back over a socket), changes to its working directory, sets rlimits,
//!    `no_new_privs`, the seccomp filter, its user and groups and capabilities, marks every other descriptor
//!    close-on-exec and execs the program, searched on its `PATH` like `execvp`.
//!
//! A failure in either is written as one line to an error pipe that the caller reads until the program is
//! exec'd (the pipe is close-on-exec), so `launch` returns the child's own words: "exec: \"x\": executable
//! file not found in $PATH", "chdir to cwd (\"/nope\") set in config.json failed: ...".

use std::collections::HashSet;
use std::ffi::CString;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use nix::sched::CloneFlags;
use nix::unistd::{ForkResult, Gid, Uid};

use crate::seccomp::Program;

/// The capability sets a process gets (names as the `caps` crate knows them).
#[derive(Debug, Clone, Default)]
pub struct Capabilities {
    pub bounding: HashSet<caps::Capability>,
    pub effective: HashSet<caps::Capability>,
    pub permitted: HashSet<caps::Capability>,
    pub inheritable: HashSet<caps::Capability>,
    pub ambient: HashSet<caps::Capability>,
}

/// Where the process's standard descriptors come from.
#[derive(Debug)]
pub enum Stdio {
    /// stdin, stdout and stderr as given.
    Fds([OwnedFd; 3]),
    /// A new terminal in the container's devpts; its master is sent over this socket (SCM_RIGHTS).
    Terminal(UnixStream),
}

/// A process to start in a running container.
#[derive(Debug)]
pub struct Launch {
    /// Namespaces to join, in this order (mount last: paths resolve in the container from then on).
    pub namespaces: Vec<(OwnedFd, CloneFlags)>,
    /// cgroup v1 `tasks` files the joiner moves its own thread into (`0`: no global lock).
    pub cgroup_tasks: Vec<PathBuf>,
    /// `cgroup.procs` files the joiner writes its pid into (cgroup v2).
    pub cgroup_procs: Vec<PathBuf>,
    pub process: Process,
    pub stdio: Stdio,
}

/// What a process becomes just before its program runs: the same for a container's init
/// ([`crate::container`]) and for an exec.
#[derive(Debug)]
pub struct Process {
    pub args: Vec<CString>,
    pub env: Vec<CString>,
    pub cwd: CString,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    /// `(resource, soft, hard)`.
    pub rlimits: Vec<(i32, u64, u64)>,
    pub oom_score_adj: Option<i32>,
    pub no_new_privileges: bool,
    /// A compiled filter and the flags to load it with.
    pub seccomp: Option<(Program, u32)>,
    /// Whether a container's init may have the kernel compile `seccomp` on a thread of its own while it
    /// sets its root up ([`Program::compile_ahead`]): set for a filter that lets that thread wait, install
    /// it and end, and (without `no_new_privileges`, where the filter goes on before the process drops its
    /// privileges) allows what follows. An exec loads its filter as before.
    pub compile_filter_ahead: bool,
    pub capabilities: Capabilities,
}

/// Why a process could not be started.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// The shim could not fork or talk to its child.
    #[error(transparent)]
    Sys(#[from] crate::SysError),
    /// The child's own account of the step that failed.
    #[error("{0}")]
    Child(String),
}

/// Starts `l` and returns its pid (in the caller's pid namespace) once the program is exec'd. The caller
/// must be single-threaded: the children allocate between fork and exec. The process is re-parented to the
/// caller when the joiner exits, so the caller (a subreaper) reaps it.
pub fn launch(l: Launch) -> Result<i32, LaunchError> {
    let (err_r, err_w) = pipe()?;
    let (pid_r, pid_w) = pipe()?;
    // SAFETY: the caller is single-threaded (documented above), so the child owns a consistent copy of the
    // whole address space, allocator included; the child leaves only through `_exit` or `execve`.
    match unsafe { nix::unistd::fork() }.map_err(|e| crate::SysError::os("fork", "exec", e))? {
        ForkResult::Child => {
            drop(err_r);
            drop(pid_r);
            joiner(l, err_w, pid_w)
        }
        ForkResult::Parent { child } => {
            drop(err_w);
            drop(pid_w);
            drop(l);
            let _ = nix::sys::wait::waitpid(child, None);
            let mut pid = [0u8; 4];
            let got_pid = std::fs::File::from(pid_r).read_exact(&mut pid).is_ok();
            let mut err = String::new();
            let _ = std::fs::File::from(err_r).read_to_string(&mut err);
            if !err.is_empty() {
                return Err(LaunchError::Child(err.trim_end().to_string()));
            }
            if !got_pid {
                return Err(LaunchError::Child(
                    "the exec's joining process ended without starting it".into(),
                ));
            }
            Ok(i32::from_ne_bytes(pid))
        }
    }
}

fn pipe() -> Result<(OwnedFd, OwnedFd), crate::SysError> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| crate::SysError::os("pipe2", "exec", e))
}

/// Reports `msg` on the error pipe and leaves (the caller reads the message, not the status).
fn fail(err_w: &OwnedFd, msg: &str) -> ! {
    let _ = nix::unistd::write(err_w, msg.as_bytes());
    exit_now(1)
}

fn exit_now(code: i32) -> ! {
    // SAFETY: `_exit` ends the process without running the parent's atexit handlers or destructors, which
    // belong to the shim, not to this fork.
    unsafe { libc::_exit(code) }
}

/// The first child: joins the container's cgroups and namespaces, forks the process, reports its pid.
fn joiner(l: Launch, err_w: OwnedFd, pid_w: OwnedFd) -> ! {
    for f in &l.cgroup_tasks {
        if let Err(e) = std::fs::write(f, "0") {
            fail(&err_w, &format!("join cgroup {}: {e}", f.display()));
        }
    }
    let me = std::process::id().to_string();
    for f in &l.cgroup_procs {
        if let Err(e) = std::fs::write(f, &me) {
            fail(&err_w, &format!("join cgroup {}: {e}", f.display()));
        }
    }
    for (fd, kind) in &l.namespaces {
        if let Err(e) = nix::sched::setns(fd.as_fd(), *kind) {
            fail(
                &err_w,
                &format!("join the container's {kind:?} namespace: {e}"),
            );
        }
    }
    // SAFETY: this process is a single-threaded fork (see `launch`).
    match unsafe { nix::unistd::fork() } {
        Err(e) => fail(&err_w, &format!("fork in the container: {e}")),
        Ok(ForkResult::Child) => {
            drop(pid_w);
            match process(l) {
                Ok(never) => match never {},
                Err(msg) => fail(&err_w, &msg),
            }
        }
        Ok(ForkResult::Parent { child }) => {
            let mut f = std::fs::File::from(pid_w);
            let _ = f.write_all(&child.as_raw().to_ne_bytes());
            exit_now(0)
        }
    }
}

/// The process itself, in the container's namespaces: everything up to `execve`.
fn process(l: Launch) -> Result<std::convert::Infallible, String> {
    crate::process::reset_signals().map_err(|e| format!("reset signals: {e}"))?;
    nix::unistd::setsid().map_err(|e| format!("setsid: {e}"))?;
    match &l.stdio {
        Stdio::Fds(fds) => take_stdio(fds)?,
        Stdio::Terminal(sock) => take_terminal(open_terminal(sock)?)?,
    }
    become_process(&l.process)
}

/// Makes `fds` the standard descriptors.
pub(crate) fn take_stdio(fds: &[OwnedFd; 3]) -> Result<(), String> {
    for (i, fd) in fds.iter().enumerate() {
        dup_onto(fd.as_raw_fd(), i as RawFd)?;
    }
    Ok(())
}

/// The last steps before the program runs, in the container's namespaces and root: working directory,
/// rlimits, OOM score, `no_new_privs`, the seccomp filter, bounding set, user and groups, capabilities,
/// every descriptor above stdio close-on-exec, then `execvp`.
pub(crate) fn become_process(p: &Process) -> Result<std::convert::Infallible, String> {
    prepare_process(p, None)?;
    exec_process(p)
}

/// [`become_process`] up to the exec: afterwards the process has the program's identity, limits and
/// seccomp filter (which must allow what is left: reading the start message, `close_range`, `execve`, as
/// with runc). `compiled`: the filter, compiled ahead (see [`Process::compile_filter_ahead`]).
pub(crate) fn prepare_process(
    p: &Process,
    compiled: Option<crate::container::FilterAhead>,
) -> Result<(), String> {
    nix::unistd::chdir(p.cwd.as_c_str()).map_err(|e| {
        format!(
            "chdir to cwd ({:?}) set in config.json failed: {}",
            p.cwd.to_string_lossy(),
            e.desc().to_lowercase()
        )
    })?;
    for &(res, soft, hard) in &p.rlimits {
        let lim = libc::rlimit {
            rlim_cur: soft,
            rlim_max: hard,
        };
        // SAFETY: `lim` is a valid rlimit for the duration of the call.
        if unsafe { libc::setrlimit(res as _, &lim) } != 0 {
            return Err(format!(
                "set rlimit {res}: {}",
                std::io::Error::last_os_error()
            ));
        }
    }
    if let Some(adj) = p.oom_score_adj {
        std::fs::write("/proc/self/oom_score_adj", adj.to_string())
            .map_err(|e| format!("set oom_score_adj: {e}"))?;
    }
    if p.no_new_privileges {
        nix::sys::prctl::set_no_new_privs().map_err(|e| format!("set no_new_privs: {e}"))?;
    }
    // Without no_new_privs loading a filter needs CAP_SYS_ADMIN, which is still held here; with it, the
    // filter goes on last, as late as possible.
    if let Some((prog, flags)) = p.seccomp.as_ref().filter(|_| !p.no_new_privileges) {
        match compiled {
            // Should that fail, this thread tries: with the kernel's reason if it fails too.
            Some(ahead) => ahead.install().or_else(|_| prog.load(*flags)),
            None => prog.load(*flags),
        }
        .map_err(|e| format!("load the seccomp filter: {e}"))?;
    }
    bounding(&p.capabilities)?;
    user(p)?;
    capabilities(&p.capabilities)?;
    if let Some((prog, flags)) = p.seccomp.as_ref().filter(|_| p.no_new_privileges) {
        prog.load(*flags)
            .map_err(|e| format!("load the seccomp filter: {e}"))?;
    }
    Ok(())
}

/// The end of [`become_process`]: every descriptor above stdio close-on-exec, then `execvp`.
pub(crate) fn exec_process(p: &Process) -> Result<std::convert::Infallible, String> {
    // Nothing of the shim's may reach the program: every descriptor above stdio closes on exec.
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only sets flags on this process's descriptors.
    if unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    } != 0
    {
        return Err(format!(
            "mark descriptors close-on-exec: {}",
            std::io::Error::last_os_error()
        ));
    }
    exec(&p.args, &p.env)
}

fn dup_onto(fd: RawFd, target: RawFd) -> Result<(), String> {
    if fd == target {
        // Clear close-on-exec: it is the process's own descriptor now.
        // SAFETY: fcntl on a descriptor we own.
        unsafe { libc::fcntl(fd, libc::F_SETFD, 0) };
        return Ok(());
    }
    // SAFETY: dup2 onto 0..=2 replaces the standard descriptors of this forked process only.
    if unsafe { libc::dup2(fd, target) } < 0 {
        return Err(format!("set up stdio: {}", std::io::Error::last_os_error()));
    }
    Ok(())
}

/// Opens a terminal in the container's devpts and sends its master to the shim; returns the peer.
pub(crate) fn open_terminal(sock: &UnixStream) -> Result<OwnedFd, String> {
    use nix::fcntl::OFlag;
    use std::os::fd::FromRawFd;
    let master = nix::pty::posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .map_err(|e| format!("open /dev/ptmx in the container: {e}"))?;
    // No grantpt: devpts gives the peer its owner and mode itself, and glibc's grantpt would look the
    // `tty` group up through NSS, that is in the container's files, from this still-privileged process.
    nix::pty::unlockpt(&master).map_err(|e| format!("unlockpt: {e}"))?;
    // The peer is opened from the master itself, never by a path the container could have replaced.
    // SAFETY: TIOCGPTPEER takes open flags and returns a new descriptor or -1.
    let slave = unsafe {
        libc::ioctl(
            master.as_raw_fd(),
            libc::TIOCGPTPEER,
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    };
    if slave < 0 {
        return Err(format!(
            "open the terminal's peer: {}",
            std::io::Error::last_os_error()
        ));
    }
    let fds = [master.as_raw_fd()];
    let cmsg = [nix::sys::socket::ControlMessage::ScmRights(&fds)];
    nix::sys::socket::sendmsg::<()>(
        sock.as_raw_fd(),
        &[std::io::IoSlice::new(b"m")],
        &cmsg,
        nix::sys::socket::MsgFlags::empty(),
        None,
    )
    .map_err(|e| format!("send the terminal to the shim: {e}"))?;
    drop(master);
    // SAFETY: the kernel just returned this descriptor and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(slave) })
}

/// Makes the terminal `slave` this session's controlling terminal and the standard descriptors.
pub(crate) fn take_terminal(slave: OwnedFd) -> Result<(), String> {
    // SAFETY: TIOCSCTTY on a terminal this session leader opened.
    if unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSCTTY, 0) } < 0 {
        return Err(format!(
            "make the terminal controlling: {}",
            std::io::Error::last_os_error()
        ));
    }
    for target in 0..3 {
        dup_onto(slave.as_raw_fd(), target)?;
    }
    Ok(())
}

/// Groups, gid and uid, keeping the permitted capabilities across the uid change.
fn user(l: &Process) -> Result<(), String> {
    nix::sys::prctl::set_keepcaps(true).map_err(|e| format!("keep capabilities: {e}"))?;
    let groups: Vec<Gid> = l
        .additional_gids
        .iter()
        .map(|g| Gid::from_raw(*g))
        .collect();
    nix::unistd::setgroups(&groups).map_err(|e| format!("setgroups: {e}"))?;
    let g = Gid::from_raw(l.gid);
    nix::unistd::setresgid(g, g, g).map_err(|e| format!("setgid {}: {e}", l.gid))?;
    let u = Uid::from_raw(l.uid);
    nix::unistd::setresuid(u, u, u).map_err(|e| format!("setuid {}: {e}", l.uid))?;
    nix::sys::prctl::set_keepcaps(false).map_err(|e| format!("keep capabilities: {e}"))
}

/// Drops what the bounding set must not hold; done while still root with every capability (CAP_SETPCAP).
fn bounding(c: &Capabilities) -> Result<(), String> {
    for cap in caps::runtime::thread_all_supported() {
        if !c.bounding.contains(&cap) {
            caps::drop(None, caps::CapSet::Bounding, cap)
                .map_err(|e| format!("set bounding capabilities: {e}"))?;
        }
    }
    Ok(())
}

/// The effective, permitted, inheritable and ambient sets, after the uid change, within the bounding set.
fn capabilities(c: &Capabilities) -> Result<(), String> {
    use caps::CapSet;
    let err = |what: &str, e: caps::errors::CapsError| format!("set {what} capabilities: {e}");
    let only_bounded = |s: &HashSet<caps::Capability>| -> HashSet<caps::Capability> {
        s.intersection(&c.bounding).copied().collect()
    };
    // Effective first: every step must keep effective within permitted.
    caps::set(None, CapSet::Effective, &only_bounded(&c.effective))
        .map_err(|e| err("effective", e))?;
    caps::set(None, CapSet::Permitted, &only_bounded(&c.permitted))
        .map_err(|e| err("permitted", e))?;
    caps::set(None, CapSet::Inheritable, &only_bounded(&c.inheritable))
        .map_err(|e| err("inheritable", e))?;
    caps::clear(None, CapSet::Ambient).map_err(|e| err("ambient", e))?;
    for cap in only_bounded(&c.ambient) {
        caps::raise(None, CapSet::Ambient, cap).map_err(|e| err("ambient", e))?;
    }
    Ok(())
}

/// `execvp` with the process's own environment: a name without a slash is searched on its `PATH`.
fn exec(args: &[CString], env: &[CString]) -> Result<std::convert::Infallible, String> {
    let Some(prog) = args.first() else {
        return Err("no command to run".into());
    };
    let shown = prog.to_string_lossy().into_owned();
    let name = prog.to_bytes();
    if name.contains(&b'/') {
        let e = nix::unistd::execve(prog.as_c_str(), args, env).unwrap_err();
        return Err(format!("exec: {shown:?}: {}", e.desc().to_lowercase()));
    }
    let path = env
        .iter()
        .find_map(|e| e.to_bytes().strip_prefix(b"PATH="))
        .map(<[u8]>::to_vec)
        .unwrap_or_else(|| {
            b"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_vec()
        });
    let mut denied = None;
    for dir in path.split(|&b| b == b':') {
        let dir: &[u8] = if dir.is_empty() { b"." } else { dir };
        let mut full = dir.to_vec();
        full.push(b'/');
        full.extend_from_slice(name);
        let Ok(full) = CString::new(full) else {
            continue;
        };
        match nix::unistd::execve(full.as_c_str(), args, env).unwrap_err() {
            nix::Error::ENOENT | nix::Error::ENOTDIR | nix::Error::ELOOP => {}
            nix::Error::EACCES => denied = Some(nix::Error::EACCES),
            e => return Err(format!("exec: {shown:?}: {}", e.desc().to_lowercase())),
        }
    }
    Err(match denied {
        Some(e) => format!("exec: {shown:?}: {}", e.desc().to_lowercase()),
        None => format!("exec: {shown:?}: executable file not found in $PATH"),
    })
}

/// The namespace file name under `/proc/PID/ns/` for a namespace kind.
pub fn ns_file(kind: CloneFlags) -> Option<&'static str> {
    Some(match kind {
        CloneFlags::CLONE_NEWIPC => "ipc",
        CloneFlags::CLONE_NEWUTS => "uts",
        CloneFlags::CLONE_NEWNET => "net",
        CloneFlags::CLONE_NEWPID => "pid",
        CloneFlags::CLONE_NEWCGROUP => "cgroup",
        CloneFlags::CLONE_NEWNS => "mnt",
        CloneFlags::CLONE_NEWUSER => "user",
        _ => return None,
    })
}

/// Opens the namespaces of process `pid` for [`Launch::namespaces`].
pub fn open_namespaces(
    pid: i32,
    kinds: &[CloneFlags],
) -> Result<Vec<(OwnedFd, CloneFlags)>, crate::SysError> {
    let mut out = Vec::new();
    for &k in kinds {
        let Some(name) = ns_file(k) else { continue };
        let p = format!("/proc/{pid}/ns/{name}");
        let f = std::fs::File::open(&p).map_err(|e| crate::SysError::io("open", &p, e))?;
        out.push((OwnedFd::from(f), k));
    }
    Ok(out)
}

/// Receives a terminal master sent by [`Stdio::Terminal`]'s process.
pub fn receive_terminal(sock: &UnixStream) -> Result<std::fs::File, crate::SysError> {
    use std::os::fd::FromRawFd;
    let mut buf = [0u8; 1];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = nix::sys::socket::recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        nix::sys::socket::MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(|e| crate::SysError::os("recvmsg", "the exec's terminal", e))?;
    for c in msg
        .cmsgs()
        .map_err(|e| crate::SysError::os("recvmsg", "the exec's terminal", e))?
    {
        if let nix::sys::socket::ControlMessageOwned::ScmRights(fds) = c {
            if let Some(&fd) = fds.first() {
                // SAFETY: the kernel just gave us this descriptor; nothing else owns it.
                return Ok(unsafe { std::fs::File::from_raw_fd(fd) });
            }
        }
    }
    Err(crate::SysError::os(
        "recvmsg",
        "the exec's terminal",
        nix::Error::EBADMSG,
    ))
}

/// The cgroup files an exec's joiner writes to, from the container init's `/proc/PID/cgroup`, the shim's
/// own, and the cgroup mounts. A hierarchy where both are in the same cgroup needs nothing (the joiner
/// inherits the shim's); v1 hierarchies take the thread-level `tasks` file, the v2 one `cgroup.procs`.
pub fn cgroup_targets(
    init_cgroup: &str,
    own_cgroup: &str,
    mounts: &[CgroupMount],
) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let own: std::collections::HashMap<&str, &str> = own_cgroup
        .lines()
        .filter_map(|l| {
            let mut it = l.splitn(3, ':');
            let _id = it.next()?;
            Some((it.next()?, it.next()?))
        })
        .collect();
    let (mut tasks, mut procs) = (Vec::new(), Vec::new());
    for line in init_cgroup.lines() {
        let mut it = line.splitn(3, ':');
        let (Some(_), Some(ctrls), Some(path)) = (it.next(), it.next(), it.next()) else {
            continue;
        };
        if own.get(ctrls) == Some(&path) {
            continue;
        }
        let rel = path.trim_start_matches('/');
        if ctrls.is_empty() {
            if let Some(m) = mounts.iter().find(|m| m.v2) {
                procs.push(m.dir.join(rel).join("cgroup.procs"));
            }
        } else {
            let want: HashSet<&str> = ctrls.split(',').collect();
            if let Some(m) = mounts.iter().find(|m| {
                !m.v2
                    && m.controllers
                        .iter()
                        .map(String::as_str)
                        .collect::<HashSet<_>>()
                        == want
            }) {
                tasks.push(m.dir.join(rel).join("tasks"));
            }
        }
    }
    (tasks, procs)
}

/// [`cgroup_targets`] for an exec into the container whose init is `init`, as seen from this process.
pub fn cgroup_targets_of(init: i32) -> Result<(Vec<PathBuf>, Vec<PathBuf>), crate::SysError> {
    let read =
        |p: String| std::fs::read_to_string(&p).map_err(|e| crate::SysError::io("read", &p, e));
    Ok(cgroup_targets(
        &read(format!("/proc/{init}/cgroup"))?,
        &read("/proc/self/cgroup".into())?,
        &cgroup_mounts(&read("/proc/self/mountinfo".into())?),
    ))
}

/// A cgroup filesystem mount: its directory, whether it is cgroup2, and (v1) the controllers or `name=`
/// it holds, as `/proc/PID/cgroup` names them.
#[derive(Debug, Clone, PartialEq)]
pub struct CgroupMount {
    pub dir: PathBuf,
    pub v2: bool,
    pub controllers: Vec<String>,
}

/// The cgroup mounts listed in a `mountinfo` text (the first mount of each hierarchy).
pub fn cgroup_mounts(mountinfo: &str) -> Vec<CgroupMount> {
    const V1: &[&str] = &[
        "cpu",
        "cpuacct",
        "cpuset",
        "memory",
        "devices",
        "freezer",
        "net_cls",
        "blkio",
        "perf_event",
        "net_prio",
        "hugetlb",
        "pids",
        "rdma",
        "misc",
    ];
    let mut out: Vec<CgroupMount> = Vec::new();
    for line in mountinfo.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let mut post = post.split(' ');
        let fstype = post.next().unwrap_or("");
        let _source = post.next();
        let superopts = post.next().unwrap_or("");
        let Some(dir) = pre.split(' ').nth(4) else {
            continue;
        };
        let dir = PathBuf::from(unescape(dir));
        let m = match fstype {
            "cgroup2" => CgroupMount {
                dir,
                v2: true,
                controllers: Vec::new(),
            },
            "cgroup" => CgroupMount {
                dir,
                v2: false,
                controllers: superopts
                    .split(',')
                    .filter(|o| V1.contains(o) || o.starts_with("name="))
                    .map(str::to_string)
                    .collect(),
            },
            _ => continue,
        };
        if !out
            .iter()
            .any(|o| o.v2 == m.v2 && o.controllers == m.controllers)
        {
            out.push(m);
        }
    }
    out
}

/// mountinfo escapes space, tab, newline and backslash as octal.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() && b[i + 1..i + 4].iter().all(u8::is_ascii_digit) {
            out.push(
                u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 4]).unwrap_or("0"), 8)
                    .unwrap_or(b'?'),
            );
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO_HYBRID: &str = "\
30 1 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
31 30 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
32 30 0:29 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
33 30 0:30 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
34 30 0:31 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
35 30 0:32 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
36 30 0:33 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
37 1 0:31 / /mnt/again\\040here rw,relatime - cgroup cgroup rw,pids
";

    #[test]
    fn cgroup_mounts_are_read_from_mountinfo() {
        let m = cgroup_mounts(MOUNTINFO_HYBRID);
        assert_eq!(m.len(), 6, "{m:?}");
        assert_eq!(m[0].dir, PathBuf::from("/sys/fs/cgroup/cpu"));
        assert_eq!(m[0].controllers, vec!["cpu"]);
        assert_eq!(m[4].controllers, vec!["name=systemd"]);
        assert!(m[5].v2);
        assert_eq!(unescape("/mnt/again\\040here"), "/mnt/again here");
    }

    #[test]
    fn v1_hierarchies_are_joined_by_thread_and_shared_ones_skipped() {
        let m = cgroup_mounts(MOUNTINFO_HYBRID);
        let init = "5:pids:/berth/abc\n4:name=systemd:/\n3:memory:/berth/abc\n2:cpuacct:/berth/abc\n1:cpu:/berth/abc\n0::/\n";
        let own = "5:pids:/\n4:name=systemd:/\n3:memory:/\n2:cpuacct:/\n1:cpu:/\n0::/\n";
        let (tasks, procs) = cgroup_targets(init, own, &m);
        assert_eq!(
            tasks,
            vec![
                PathBuf::from("/sys/fs/cgroup/pids/berth/abc/tasks"),
                PathBuf::from("/sys/fs/cgroup/memory/berth/abc/tasks"),
                PathBuf::from("/sys/fs/cgroup/cpuacct/berth/abc/tasks"),
                PathBuf::from("/sys/fs/cgroup/cpu/berth/abc/tasks"),
            ]
        );
        assert!(procs.is_empty(), "{procs:?}");
    }

    #[test]
    fn a_v2_host_joins_by_cgroup_procs() {
        let m = cgroup_mounts("40 1 0:40 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n");
        let (tasks, procs) =
            cgroup_targets("0::/berth/abc\n", "0::/system.slice/berth.service\n", &m);
        assert!(tasks.is_empty());
        assert_eq!(
            procs,
            vec![PathBuf::from("/sys/fs/cgroup/berth/abc/cgroup.procs")]
        );
        let (_, none) = cgroup_targets("0::/berth/abc\n", "0::/berth/abc\n", &m);
        assert!(none.is_empty());
    }
}
