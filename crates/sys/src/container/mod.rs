//! Creating a container's init process: berth's own runtime core, run by the (single-threaded) shim.
//!
//! [`create`] clones the init straight into its new namespaces (one `clone3`; on cgroup v2 also straight
//! into its cgroup with `CLONE_INTO_CGROUP`). The init then, in order:
//! 1. on cgroup v1, moves its one thread into each hierarchy by writing `0` to `tasks` (the kernel takes no
//!    global lock for a thread that moves itself; writing a pid to `cgroup.procs` takes the system-wide
//!    threadgroup rwsem, whose first writer after an idle spell waits for an RCU grace period: 5-40 ms
//!    measured here, in the middle of every start);
//! 2. joins the namespaces given by path (a network namespace the daemon prepared), and unshares its cgroup
//!    namespace (after the move, so the namespace's root is the container's cgroup);
//! 3. makes every mount a slave of the host's, binds the root onto itself, and mounts the spec's mounts in
//!    order. Every destination is created and opened inside the root with `openat2(RESOLVE_IN_ROOT)` and
//!    mounted on through its descriptor (`/proc/self/fd/N`), so a symlink in the image can never place a
//!    mount outside the root;
//! 4. on its `/dev` tmpfs makes the default devices (null, zero, full, random, urandom, tty), the spec's
//!    devices and the usual symlinks (`fd`, `stdin`, `stdout`, `stderr`, `ptmx`);
//! 5. `pivot_root`s and detaches the old root; with a terminal, opens a pty in its own devpts, sends the
//!    master to the shim and binds the peer on `/dev/console`; writes its sysctls; makes the read-only paths
//!    read-only and masks the masked ones; remounts the root read-only if asked; sets its hostname;
//! 6. says it is ready; becomes the process ([`crate::launch`]'s last steps: working directory, rlimits,
//!    `no_new_privs`, seccomp, user, capabilities) while the daemon gets the word, as runc does before it
//!    waits; waits for the shim's start (or the shim's end, and then exits);
//! 7. execs the program (or, if a step of 6 failed, says why).
//!
//! A failure at any step comes back as the init's own words over the sync socket, which is close-on-exec:
//! the shim reads "ready", then, after start, end-of-file once the program runs.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use nix::mount::{mount, MsFlags};
use nix::sched::CloneFlags;
use nix::sys::socket::{recvmsg, sendmsg, socketpair, AddressFamily, MsgFlags, SockFlag, SockType};

use crate::launch::{LaunchError, Process, Stdio};

mod ahead;
mod rootfs;
pub use ahead::{clone_ahead, Ahead};
use rootfs::{bind_console, mask_path, pivot_root, prepare_root, readonly_path, remount_readonly};

/// How a mount is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountKind {
    /// A bind of a host path (`bind`, or `rbind` with [`MsFlags::MS_REC`]).
    Bind,
    /// The container's view of its cgroups (`/sys/fs/cgroup`), made from [`Init::cgroup_hierarchies`].
    Cgroup,
    /// A filesystem mounted by type (proc, sysfs, tmpfs, devpts, mqueue, ...).
    Fs,
}

/// One entry of the spec's `mounts`, with its options already split.
#[derive(Debug, Clone)]
pub struct Mount {
    pub kind: MountKind,
    pub source: PathBuf,
    pub destination: PathBuf,
    pub fstype: String,
    /// `MS_*` flags other than propagation.
    pub flags: MsFlags,
    /// Propagation to set after mounting (`MS_PRIVATE`, `MS_SLAVE`, ... with `MS_REC`), or empty.
    pub propagation: MsFlags,
    /// The filesystem's own options (`mode=755,size=65536k`).
    pub data: String,
}

/// A cgroup hierarchy as the container sees it under its cgroup mount.
#[derive(Debug, Clone)]
pub struct CgroupHierarchy {
    /// Its directory's name under the mount (`cpu,cpuacct`, `systemd`); empty for the v2 unified one.
    pub name: String,
    /// `cgroup` or `cgroup2`.
    pub fstype: String,
    /// Mount data (`cpu,cpuacct`, `name=systemd`; nothing for cgroup2).
    pub options: String,
    /// The container's cgroup directory in the host's hierarchy, bound when the container has no cgroup
    /// namespace of its own.
    pub host_dir: PathBuf,
}

/// A device node made in the container's `/dev`.
#[derive(Debug, Clone)]
pub struct Device {
    pub path: PathBuf,
    /// `S_IFCHR`, `S_IFBLK` or `S_IFIFO`.
    pub kind: u32,
    pub major: u64,
    pub minor: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// How the init joins its cgroups.
#[derive(Debug, Default)]
pub struct Cgroups {
    /// cgroup v1: `tasks` files the init moves its own thread into (`0`: no global lock).
    pub tasks: Vec<PathBuf>,
    /// cgroup v2: the container's cgroup directory, entered at clone time (`CLONE_INTO_CGROUP`), or, on
    /// kernels without it, by writing `0` to its `cgroup.procs`.
    pub v2_dir: Option<(OwnedFd, PathBuf)>,
}

/// Everything the init needs, already checked and converted from the OCI spec.
#[derive(Debug)]
pub struct Init {
    /// Namespaces the init is cloned into (`CLONE_NEW*`, except the cgroup namespace: see `cgroup_ns`).
    pub new_namespaces: CloneFlags,
    /// Namespaces joined by path before anything else, in this order.
    pub join: Vec<(OwnedFd, CloneFlags)>,
    /// Whether the init unshares a cgroup namespace once in its cgroups.
    pub cgroup_ns: bool,
    pub cgroups: Cgroups,
    pub cgroup_hierarchies: Vec<CgroupHierarchy>,
    /// The root filesystem, already mounted (the shim mounts the overlay).
    pub rootfs: PathBuf,
    /// Propagation of the host's mounts as the container sees them (`MS_SLAVE | MS_REC` unless asked).
    pub root_propagation: MsFlags,
    /// Make the new root's mounts shared once it is in place (`pivot_root` refuses a shared root). They
    /// are slaves of the host's: mounts the host makes reach the container, not the other way round.
    pub share_root: bool,
    pub readonly_root: bool,
    pub mounts: Vec<Mount>,
    pub devices: Vec<Device>,
    pub masked_paths: Vec<PathBuf>,
    pub readonly_paths: Vec<PathBuf>,
    pub hostname: Option<String>,
    pub domainname: Option<String>,
    /// `(name, value)`, names with dots (`net.ipv4.ip_forward`).
    pub sysctls: Vec<(String, String)>,
    pub process: Process,
    pub stdio: Stdio,
}

/// A created container init, stopped before its program until [`Created::start`].
#[derive(Debug)]
pub struct Created {
    pub pid: i32,
    sync: UnixStream,
}

/// `struct clone_args` of `clone3(2)` (size 88 with `cgroup`).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

const CLONE_INTO_CGROUP: u64 = 0x200000000;

/// A container init cloned and setting itself up: [`Spawned::ready`] waits until it is ready to run its
/// program. Dropped before that, the init is killed and reaped.
#[derive(Debug)]
pub struct Spawned {
    created: Option<Created>,
}

impl Spawned {
    pub fn pid(&self) -> i32 {
        self.created.as_ref().map_or(0, |c| c.pid)
    }

    /// Waits until the init is ready to run its program, or says why it is not.
    pub fn ready(mut self) -> Result<Created, LaunchError> {
        let Some(created) = self.created.take() else {
            return Err(LaunchError::Child("the container's init is gone".into()));
        };
        let pid = created.pid;
        match created.receive() {
            Ok(Message::Ready) => Ok(created),
            Ok(Message::Error(msg)) => {
                let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
                Err(LaunchError::Child(msg))
            }
            Ok(Message::End) | Err(_) => {
                use nix::sys::wait::WaitStatus;
                let child = nix::unistd::Pid::from_raw(pid);
                let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
                let how = match nix::sys::wait::waitpid(child, None) {
                    Ok(WaitStatus::Signaled(_, nix::sys::signal::Signal::SIGKILL, _)) => {
                        " (killed by SIGKILL: the memory limit may be too small for it to start)"
                            .to_string()
                    }
                    Ok(WaitStatus::Signaled(_, sig, _)) => format!(" (killed by {sig})"),
                    Ok(WaitStatus::Exited(_, code)) => format!(" (exit status {code})"),
                    _ => String::new(),
                };
                Err(LaunchError::Child(format!(
                    "the container's init ended before it was ready{how}"
                )))
            }
        }
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if let Some(c) = self.created.take() {
            let child = nix::unistd::Pid::from_raw(c.pid);
            let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(child, None);
        }
    }
}

/// Clones the init described by `init`, which sets itself up while the caller goes on; [`Spawned::ready`]
/// waits until it is ready to run its program (or failed). The caller must be single-threaded: the child
/// allocates before it execs. The init is the caller's child.
pub fn spawn(init: Init) -> Result<Spawned, LaunchError> {
    let v2_cgroup = init.cgroups.v2_dir.as_ref().map(|(fd, _)| fd.as_raw_fd());
    let (pid, sync) = clone_child(init.new_namespaces, v2_cgroup, |in_cgroup, sync| {
        run_init(init, in_cgroup, sync)
    })?;
    Ok(Spawned {
        created: Some(Created { pid, sync }),
    })
}

/// Clones a child into the namespaces `new` (and the v2 cgroup whose directory is open as `v2_cgroup`:
/// [`clone_init`]) and runs `body` there, told whether it is in that cgroup already, with the child's end
/// of a sync socket (sequenced packets, close-on-exec). `body` never returns but with a failure, which (like a panic: it must not unwind into
/// the shim's code, running on in the container's namespaces) is sent as `e` and its words before the
/// child exits. Returns the pid and the caller's end of the socket; everything `body` owns is dropped in
/// the caller when this returns.
fn clone_child<B>(
    new: CloneFlags,
    v2_cgroup: Option<std::os::fd::RawFd>,
    body: B,
) -> Result<(i32, UnixStream), LaunchError>
where
    B: FnOnce(bool, &UnixStream) -> Result<std::convert::Infallible, String>,
{
    let (ours, theirs) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| crate::SysError::os("socketpair", "container init", e))?;
    let (pid, in_cgroup) = clone_init(new, v2_cgroup)?;
    if pid == 0 {
        drop(ours);
        let sync = UnixStream::from(theirs);
        let outcome =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| body(in_cgroup, &sync)))
                .unwrap_or_else(|_| Err("the container's init panicked".into()));
        match outcome {
            Ok(never) => match never {},
            Err(msg) => {
                let mut m = b"e".to_vec();
                m.extend_from_slice(msg.as_bytes());
                let _ = nix::unistd::write(&sync, &m);
                // SAFETY: `_exit` leaves this forked child without running the shim's destructors.
                unsafe { libc::_exit(1) }
            }
        }
    }
    drop(theirs);
    drop(body);
    Ok((pid, UnixStream::from(ours)))
}

enum Message {
    Ready,
    Error(String),
    End,
}

impl Created {
    fn receive(&self) -> Result<Message, crate::SysError> {
        let mut buf = vec![0u8; 4096];
        let n = loop {
            let mut iov = [IoSliceMut::new(&mut buf)];
            match recvmsg::<()>(
                self.sync.as_raw_fd(),
                &mut iov,
                None,
                MsgFlags::MSG_CMSG_CLOEXEC,
            ) {
                Err(nix::Error::EINTR) => continue,
                Err(nix::Error::ECONNRESET) => break 0,
                r => {
                    break r
                        .map_err(|e| crate::SysError::os("recvmsg", "container init", e))?
                        .bytes
                }
            }
        };
        Ok(match buf.first().copied() {
            _ if n == 0 => Message::End,
            Some(b'r') => Message::Ready,
            _ => Message::Error(String::from_utf8_lossy(&buf[1..n]).into_owned()),
        })
    }

    /// Lets the init run its program; returns once it is exec'd, or the init's account of why not.
    pub fn start(&self) -> Result<(), LaunchError> {
        loop {
            match nix::unistd::write(&self.sync, b"s") {
                Err(nix::Error::EINTR) => continue,
                Err(nix::Error::EPIPE) | Err(nix::Error::ECONNRESET) => {
                    return Err(LaunchError::Child(
                        "the container's init ended before it was started".into(),
                    ))
                }
                Err(e) => return Err(crate::SysError::os("write", "container init", e).into()),
                Ok(_) => break,
            }
        }
        match self.receive()? {
            Message::End => Ok(()),
            Message::Error(msg) => Err(LaunchError::Child(msg)),
            Message::Ready => Err(LaunchError::Child(
                "the container's init answered out of turn".into(),
            )),
        }
    }
}

/// `clone3` into the new namespaces (and the v2 cgroup); falls back to `clone` where `clone3` or
/// `CLONE_INTO_CGROUP` is missing. Returns the pid (0 in the child) and whether the child starts in its v2
/// cgroup already (else the init writes its `cgroup.procs` itself).
fn clone_init(
    new: CloneFlags,
    v2_cgroup: Option<std::os::fd::RawFd>,
) -> Result<(i32, bool), crate::SysError> {
    let flags = new.bits() as u64;
    let mut args = CloneArgs {
        flags,
        exit_signal: libc::SIGCHLD as u64,
        ..CloneArgs::default()
    };
    if let Some(fd) = v2_cgroup {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = fd as u64;
    }
    // SAFETY: `args` is a valid clone_args of the size given; without CLONE_VM the child gets a copy of this
    // single-threaded process (see `create`) and continues like a fork's child.
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    if r >= 0 {
        return Ok((r as i32, true));
    }
    let e = nix::Error::last();
    if !matches!(
        e,
        nix::Error::ENOSYS | nix::Error::E2BIG | nix::Error::EINVAL
    ) {
        return Err(crate::SysError::os("clone3", "container init", e));
    }
    // SAFETY: `clone` without a new stack and without CLONE_VM behaves as `fork` with namespace flags.
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone,
            flags | libc::SIGCHLD as u64,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    if r < 0 {
        return Err(crate::SysError::os(
            "clone",
            "container init",
            nix::Error::last(),
        ));
    }
    Ok((r as i32, false))
}

fn send(sync: &UnixStream, what: &[u8]) -> Result<(), String> {
    sendmsg::<()>(
        sync.as_raw_fd(),
        &[IoSlice::new(what)],
        &[],
        MsgFlags::empty(),
        None,
    )
    .map_err(|e| format!("talk to the shim: {e}"))?;
    Ok(())
}

/// The init, from its first instruction after the clone up to the program.
fn run_init(
    init: Init,
    in_v2_cgroup: bool,
    sync: &UnixStream,
) -> Result<std::convert::Infallible, String> {
    // Nothing may look into this process (/proc/1/exe is the shim's binary) until it execs the program.
    nix::sys::prctl::set_dumpable(false).map_err(|e| format!("set non-dumpable: {e}"))?;
    crate::process::reset_signals().map_err(|e| format!("reset signals: {e}"))?;
    join_cgroups(&init.cgroups, in_v2_cgroup)?;
    set_up_and_run(init, sync)
}

/// The init once in its cgroups and in the namespaces it was cloned into: the rest, up to the program.
fn set_up_and_run(init: Init, sync: &UnixStream) -> Result<std::convert::Infallible, String> {
    for (fd, kind) in &init.join {
        nix::sched::setns(fd.as_fd(), *kind)
            .map_err(|e| format!("join the {} namespace: {e}", kind_name(*kind)))?;
    }
    if init.new_namespaces.contains(CloneFlags::CLONE_NEWNET) {
        crate::netns::loopback_up().map_err(|e| format!("bring the loopback interface up: {e}"))?;
    }
    if init.cgroup_ns {
        nix::sched::unshare(CloneFlags::CLONE_NEWCGROUP)
            .map_err(|e| format!("create the cgroup namespace: {e}"))?;
    }
    // From here on this process may have a second thread (no more namespaces to enter or make): the
    // kernel compiles the seccomp filter there while this thread sets the root up.
    let compiled = init
        .process
        .seccomp
        .as_ref()
        .filter(|_| init.process.compile_filter_ahead && !init.process.no_new_privileges)
        .and_then(|(program, flags)| FilterAhead::start(program, *flags, &init));
    nix::unistd::setsid().map_err(|e| format!("setsid: {e}"))?;
    if let Stdio::Fds(fds) = &init.stdio {
        crate::launch::take_stdio(fds)?;
    }
    nix::sys::stat::umask(nix::sys::stat::Mode::empty());
    prepare_root(&init)?;
    pivot_root(&init.rootfs)?;
    if init.share_root {
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_SHARED | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(|e| format!("make the root shared: {e}"))?;
    }
    if let Stdio::Terminal(sock) = &init.stdio {
        let slave = crate::launch::open_terminal(sock)?;
        bind_console(&slave)?;
        crate::launch::take_terminal(slave)?;
    }
    for (name, value) in &init.sysctls {
        let path = format!("/proc/sys/{}", name.replace('.', "/"));
        std::fs::write(&path, value).map_err(|e| format!("set sysctl {name}={value}: {e}"))?;
    }
    for p in &init.readonly_paths {
        readonly_path(p)?;
    }
    if !init.masked_paths.is_empty() && !Path::new("/dev/null").exists() {
        // Masking binds /dev/null: without it the paths would stay readable.
        return Err("cannot mask paths: the container has no /dev/null".into());
    }
    for p in &init.masked_paths {
        mask_path(p)?;
    }
    if init.readonly_root {
        remount_readonly(Path::new("/"))?;
    }
    if init.new_namespaces.contains(CloneFlags::CLONE_NEWUTS) {
        if let Some(h) = &init.hostname {
            nix::unistd::sethostname(h).map_err(|e| format!("set hostname {h:?}: {e}"))?;
        }
        if let Some(d) = &init.domainname {
            // SAFETY: the pointer and length describe `d`'s bytes for the duration of the call.
            if unsafe { libc::setdomainname(d.as_ptr().cast(), d.len()) } != 0 {
                return Err(format!(
                    "set domainname {d:?}: {}",
                    std::io::Error::last_os_error()
                ));
            }
        }
    }
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
    send(sync, b"r")?;
    // The program's identity, limits and seccomp filter are put on while the shim tells the daemon and
    // the daemon asks for the start (as runc does before it waits); a failure is told after the start.
    let prepared = crate::launch::prepare_process(&init.process, compiled);
    // Wait for the start; the shim's end (end-of-file) means this container will never run.
    let mut b = [0u8; 1];
    loop {
        match nix::unistd::read(sync.as_raw_fd(), &mut b) {
            Err(nix::Error::EINTR) => continue,
            Ok(1) if b[0] == b's' => break,
            // A seccomp profile that denies `read`: said, so that the start fails with a reason.
            Err(e) => {
                return Err(format!(
                    "read the start message (the seccomp profile must allow read): {e}"
                ))
            }
            // SAFETY: `_exit` leaves this forked child without running the shim's destructors.
            _ => unsafe { libc::_exit(1) },
        }
    }
    prepared?;
    crate::launch::exec_process(&init.process)
}

/// A container's seccomp filter compiled ahead by a thread of its init's ([`Program::compile_ahead`]).
/// In a new pid namespace that thread takes the id after the init's: it is given back once the thread has
/// gone, so that the container's first child is 2, as it would be without it.
pub(crate) struct FilterAhead {
    ahead: crate::seccomp::Ahead,
    /// `/proc/sys/kernel/ns_last_pid`, opened while `/proc` is the host's and writable (it counts for the
    /// namespace of whoever writes it).
    last_pid: Option<std::fs::File>,
}

impl FilterAhead {
    /// `None` if the thread could not be started, or the ids could not be given back.
    fn start(program: &crate::seccomp::Program, flags: u32, init: &Init) -> Option<FilterAhead> {
        let last_pid = if init.new_namespaces.contains(CloneFlags::CLONE_NEWPID) {
            Some(
                std::fs::OpenOptions::new()
                    .write(true)
                    .open("/proc/sys/kernel/ns_last_pid")
                    .ok()?,
            )
        } else {
            None
        };
        Some(FilterAhead {
            ahead: program.compile_ahead(flags).ok()?,
            last_pid,
        })
    }

    /// Puts the filter on the process (see [`crate::seccomp::Ahead::install`]) and gives the thread's
    /// id back. Needs CAP_SYS_ADMIN (or CAP_CHECKPOINT_RESTORE) for the latter.
    pub(crate) fn install(self) -> std::io::Result<()> {
        use std::io::Write;
        let tid = self.ahead.install()?;
        if let Some(mut f) = self.last_pid {
            // The next id is the thread's again; should this fail, the ids only start one further on.
            let _ = f.write_all((tid - 1).to_string().as_bytes());
        }
        Ok(())
    }
}

fn kind_name(k: CloneFlags) -> &'static str {
    crate::launch::ns_file(k).unwrap_or("unknown")
}

fn join_cgroups(c: &Cgroups, in_v2_cgroup: bool) -> Result<(), String> {
    for f in &c.tasks {
        std::fs::write(f, "0").map_err(|e| format!("join cgroup {}: {e}", f.display()))?;
    }
    if let Some((_, dir)) = &c.v2_dir {
        if !in_v2_cgroup {
            let f = dir.join("cgroup.procs");
            std::fs::write(&f, "0").map_err(|e| format!("join cgroup {}: {e}", f.display()))?;
        }
    }
    Ok(())
}
