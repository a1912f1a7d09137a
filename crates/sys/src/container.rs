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
//! 6. says it is ready and waits for the shim's start (or the shim's end, and then exits);
//! 7. becomes the process ([`crate::launch`]'s last steps: working directory, rlimits, `no_new_privs`,
//!    seccomp, user, capabilities) and execs the program.
//!
//! A failure at any step comes back as the init's own words over the sync socket, which is close-on-exec:
//! the shim reads "ready", then, after start, end-of-file once the program runs.

use std::ffi::{CString, OsStr};
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::CloneFlags;
use nix::sys::socket::{recvmsg, sendmsg, socketpair, AddressFamily, MsgFlags, SockFlag, SockType};
use rustix::fs::{self as rfs, AtFlags, Mode, OFlags};

use crate::inroot::{self, How};
use crate::launch::{LaunchError, Process, Stdio};

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

/// Clones the init described by `init` and waits until it is ready to run its program (or failed). The
/// caller must be single-threaded: the child allocates before it execs. The init is the caller's child.
pub fn create(init: Init) -> Result<Created, LaunchError> {
    let (ours, theirs) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| crate::SysError::os("socketpair", "container init", e))?;
    let pid = clone_init(&init)?;
    if pid == 0 {
        drop(ours);
        let sync = UnixStream::from(theirs);
        // A panic must not unwind into the shim's code, running on in the container's namespaces.
        let outcome =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_init(init, &sync)))
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
    drop(init);
    let sync = UnixStream::from(ours);
    let created = Created { pid, sync };
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
/// `CLONE_INTO_CGROUP` is missing (the init then writes its cgroup itself). Returns 0 in the child.
fn clone_init(init: &Init) -> Result<i32, crate::SysError> {
    let flags = init.new_namespaces.bits() as u64;
    let mut args = CloneArgs {
        flags,
        exit_signal: libc::SIGCHLD as u64,
        ..CloneArgs::default()
    };
    if let Some((fd, _)) = &init.cgroups.v2_dir {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = fd.as_raw_fd() as u64;
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
        return Ok(r as i32);
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
    if r == 0 && args.cgroup != 0 {
        // Marks that the cgroup must be joined by hand: see `join_cgroups`.
        CLONED_OUTSIDE_CGROUP.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    Ok(r as i32)
}

static CLONED_OUTSIDE_CGROUP: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

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
fn run_init(init: Init, sync: &UnixStream) -> Result<std::convert::Infallible, String> {
    // Nothing may look into this process (/proc/1/exe is the shim's binary) until it execs the program.
    nix::sys::prctl::set_dumpable(false).map_err(|e| format!("set non-dumpable: {e}"))?;
    crate::process::reset_signals().map_err(|e| format!("reset signals: {e}"))?;
    join_cgroups(&init.cgroups)?;
    for (fd, kind) in &init.join {
        nix::sched::setns(fd.as_fd(), *kind)
            .map_err(|e| format!("join the {} namespace: {e}", kind_name(*kind)))?;
    }
    if init.cgroup_ns {
        nix::sched::unshare(CloneFlags::CLONE_NEWCGROUP)
            .map_err(|e| format!("create the cgroup namespace: {e}"))?;
    }
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
    // Wait for the start; the shim's end (end-of-file) means this container will never run.
    let mut b = [0u8; 1];
    loop {
        match nix::unistd::read(sync.as_raw_fd(), &mut b) {
            Err(nix::Error::EINTR) => continue,
            Ok(1) if b[0] == b's' => break,
            // SAFETY: `_exit` leaves this forked child without running the shim's destructors.
            _ => unsafe { libc::_exit(1) },
        }
    }
    crate::launch::become_process(&init.process)
}

fn kind_name(k: CloneFlags) -> &'static str {
    crate::launch::ns_file(k).unwrap_or("unknown")
}

fn join_cgroups(c: &Cgroups) -> Result<(), String> {
    for f in &c.tasks {
        std::fs::write(f, "0").map_err(|e| format!("join cgroup {}: {e}", f.display()))?;
    }
    if let Some((_, dir)) = &c.v2_dir {
        if CLONED_OUTSIDE_CGROUP.load(std::sync::atomic::Ordering::Relaxed) {
            let f = dir.join("cgroup.procs");
            std::fs::write(&f, "0").map_err(|e| format!("join cgroup {}: {e}", f.display()))?;
        }
    }
    Ok(())
}

fn cstr(p: &Path) -> Result<CString, String> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| format!("{p:?} holds a NUL byte"))
}

/// The path through which the kernel reaches what `fd` is open on (`mount` accepts it as a target).
fn fd_path(fd: &OwnedFd) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

/// Everything before `pivot_root`: propagation, the root bound on itself, the spec's mounts, `/dev`.
fn prepare_root(init: &Init) -> Result<(), String> {
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        init.root_propagation,
        None::<&str>,
    )
    .map_err(|e| format!("set the propagation of /: {e}"))?;
    let rootfs = cstr(&init.rootfs)?;
    mount(
        Some(rootfs.as_c_str()),
        rootfs.as_c_str(),
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|e| format!("bind the root {} on itself: {e}", init.rootfs.display()))?;
    let root: OwnedFd = rfs::open(
        &init.rootfs,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| format!("open the root {}: {e}", init.rootfs.display()))?;
    // Device nodes are made only on a `/dev` tmpfs of the container's own: the last mount on `/dev`
    // decides, and a `/dev` bound from the host (`-v /dev:/dev`) is never written to.
    let mut dev_tmpfs = false;
    for m in &init.mounts {
        mount_one(root.as_fd(), m, init).map_err(|e| {
            format!(
                "mount {} on {}: {e}",
                m.source.display(),
                m.destination.display()
            )
        })?;
        if m.destination == Path::new("/dev") {
            dev_tmpfs = m.kind == MountKind::Fs && m.fstype == "tmpfs";
        }
    }
    if dev_tmpfs {
        default_devices(root.as_fd())?;
        for d in &init.devices {
            make_device(root.as_fd(), d)
                .map_err(|e| format!("create device {}: {e}", d.path.display()))?;
        }
    }
    Ok(())
}

/// Creates `dest` inside the root (a directory, or an empty file when `file`) unless it exists, and opens it.
fn mount_point(root: BorrowedFd<'_>, dest: &Path, file: bool) -> std::io::Result<OwnedFd> {
    if let Ok(fd) = inroot::open(root, dest, How::Path) {
        return Ok(fd);
    }
    // Symlinks on the way (an image's `/var/run -> /run`, or one pointing at a path of the host's) are
    // followed inside the root, and what is missing is created there.
    let resolved = inroot::resolve(root, &dest.to_string_lossy())?;
    let dest = Path::new(&resolved);
    if !file {
        inroot::mkdir_all(root, dest, 0o755, None)?;
    } else {
        let parent = dest.parent().unwrap_or(Path::new("/"));
        let dir = inroot::mkdir_all(root, parent, 0o755, None)?;
        let name = dest.file_name().unwrap_or(OsStr::new("."));
        match rfs::openat(
            &dir,
            name,
            OFlags::CREATE | OFlags::WRONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
            Mode::from_raw_mode(0o755),
        ) {
            Ok(_) | Err(rustix::io::Errno::EXIST) | Err(rustix::io::Errno::LOOP) => {}
            Err(e) => return Err(e.into()),
        }
    }
    inroot::open(root, dest, How::Path)
}

fn mount_one(root: BorrowedFd<'_>, m: &Mount, init: &Init) -> Result<(), String> {
    let io = |e: std::io::Error| e.to_string();
    match m.kind {
        MountKind::Bind => {
            let src_dir = std::fs::metadata(&m.source)
                .map_err(|e| format!("source: {e}"))?
                .is_dir();
            let target = mount_point(root, &m.destination, !src_dir).map_err(io)?;
            let t = fd_path(&target);
            let bind = MsFlags::MS_BIND | (m.flags & MsFlags::MS_REC);
            mount(
                Some(&m.source),
                t.as_str(),
                None::<&str>,
                bind,
                None::<&str>,
            )
            .map_err(|e| e.to_string())?;
            let extra = m.flags - (MsFlags::MS_BIND | MsFlags::MS_REC);
            if !extra.is_empty() {
                // Re-open: the bind is a new mount on top of the old descriptor's.
                let target = inroot::open(root, &m.destination, How::Path).map_err(io)?;
                mount(
                    None::<&str>,
                    fd_path(&target).as_str(),
                    None::<&str>,
                    extra | MsFlags::MS_BIND | MsFlags::MS_REMOUNT,
                    None::<&str>,
                )
                .map_err(|e| format!("remount with its options: {e}"))?;
            }
        }
        MountKind::Cgroup => mount_cgroups(root, m, init)?,
        MountKind::Fs => {
            let target = mount_point(root, &m.destination, false).map_err(io)?;
            let data = (!m.data.is_empty()).then_some(m.data.as_str());
            mount(
                Some(&m.source),
                fd_path(&target).as_str(),
                Some(m.fstype.as_str()),
                m.flags,
                data,
            )
            .map_err(|e| e.to_string())?;
        }
    }
    if !m.propagation.is_empty() {
        let target = inroot::open(root, &m.destination, How::Path).map_err(io)?;
        mount(
            None::<&str>,
            fd_path(&target).as_str(),
            None::<&str>,
            m.propagation,
            None::<&str>,
        )
        .map_err(|e| format!("set propagation: {e}"))?;
    }
    Ok(())
}

/// `/sys/fs/cgroup`: on a v2 host the unified hierarchy itself; on v1 a tmpfs with one directory per
/// hierarchy. In the container's own cgroup namespace each hierarchy is mounted afresh (its root is the
/// container's cgroup); without one, the container's cgroup directories are bound.
fn mount_cgroups(root: BorrowedFd<'_>, m: &Mount, init: &Init) -> Result<(), String> {
    let io = |e: std::io::Error| e.to_string();
    let flags = m.flags & (MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC);
    let ro = m.flags & MsFlags::MS_RDONLY;
    let hs = &init.cgroup_hierarchies;
    if let [h] = hs.as_slice() {
        if h.fstype == "cgroup2" {
            let target = mount_point(root, &m.destination, false).map_err(io)?;
            let t = fd_path(&target);
            return if init.cgroup_ns {
                mount(
                    Some("cgroup2"),
                    t.as_str(),
                    Some("cgroup2"),
                    flags | ro,
                    None::<&str>,
                )
                .map_err(|e| e.to_string())
            } else {
                bind_readonly(&h.host_dir, &t, flags | ro)
            };
        }
    }
    let target = mount_point(root, &m.destination, false).map_err(io)?;
    mount(
        Some("tmpfs"),
        fd_path(&target).as_str(),
        Some("tmpfs"),
        flags,
        Some("mode=755"),
    )
    .map_err(|e| e.to_string())?;
    for h in hs.iter().filter(|h| h.fstype == "cgroup") {
        let dest = m.destination.join(&h.name);
        let dir = mount_point(root, &dest, false).map_err(io)?;
        let t = fd_path(&dir);
        if init.cgroup_ns {
            mount(
                Some("cgroup"),
                t.as_str(),
                Some("cgroup"),
                flags | ro,
                Some(h.options.as_str()),
            )
            .map_err(|e| format!("{}: {e}", h.name))?;
        } else {
            bind_readonly(&h.host_dir, &t, flags | ro)?;
        }
        // `cpu` and `cpuacct` for a `cpu,cpuacct` hierarchy, as hosts have them.
        if h.name.contains(',') {
            let parent = inroot::open(root, &m.destination, How::Dir).map_err(io)?;
            for ctl in h.name.split(',') {
                let _ = rfs::symlinkat(h.name.as_str(), &parent, ctl);
            }
        }
    }
    if !ro.is_empty() {
        let target = inroot::open(root, &m.destination, How::Path).map_err(io)?;
        mount(
            None::<&str>,
            fd_path(&target).as_str(),
            None::<&str>,
            flags | ro | MsFlags::MS_REMOUNT,
            Some("mode=755"),
        )
        .map_err(|e| format!("remount read-only: {e}"))?;
    }
    Ok(())
}

fn bind_readonly(src: &Path, target: &str, flags: MsFlags) -> Result<(), String> {
    mount(
        Some(src),
        target,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|e| format!("bind {}: {e}", src.display()))?;
    mount(
        None::<&str>,
        target,
        None::<&str>,
        flags | MsFlags::MS_BIND | MsFlags::MS_REMOUNT,
        None::<&str>,
    )
    .map_err(|e| format!("remount {}: {e}", src.display()))
}

/// Docker's default devices on the container's `/dev` tmpfs, and its usual symlinks.
fn default_devices(root: BorrowedFd<'_>) -> Result<(), String> {
    const DEFAULTS: [(&str, u64, u64); 6] = [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
    ];
    for (name, major, minor) in DEFAULTS {
        let d = Device {
            path: Path::new("/dev").join(name),
            kind: libc::S_IFCHR,
            major,
            minor,
            mode: 0o666,
            uid: 0,
            gid: 0,
        };
        make_device(root, &d).map_err(|e| format!("create /dev/{name}: {e}"))?;
    }
    let dev =
        inroot::open(root, Path::new("/dev"), How::Dir).map_err(|e| format!("open /dev: {e}"))?;
    for (name, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("ptmx", "pts/ptmx"),
    ] {
        match rfs::symlinkat(target, &dev, name) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(e) => return Err(format!("create /dev/{name}: {e}")),
        }
    }
    Ok(())
}

fn make_device(root: BorrowedFd<'_>, d: &Device) -> std::io::Result<()> {
    let parent = d.path.parent().unwrap_or(Path::new("/dev"));
    let name = d.path.file_name().unwrap_or(OsStr::new("."));
    let dir = inroot::mkdir_all(root, parent, 0o755, None)?;
    let kind = rfs::FileType::from_raw_mode(d.kind);
    match rfs::mknodat(
        &dir,
        name,
        kind,
        Mode::from_raw_mode(d.mode & 0o7777),
        rfs::makedev(d.major as u32, d.minor as u32),
    ) {
        Ok(()) => {}
        Err(rustix::io::Errno::EXIST) => {
            // The container's own tmpfs (see `prepare_root`): a default node the spec lists again is
            // made anew with the spec's owner and mode.
            rfs::unlinkat(&dir, name, AtFlags::empty())?;
            rfs::mknodat(
                &dir,
                name,
                kind,
                Mode::from_raw_mode(d.mode & 0o7777),
                rfs::makedev(d.major as u32, d.minor as u32),
            )?;
        }
        Err(e) => return Err(e.into()),
    }
    rfs::chownat(
        &dir,
        name,
        Some(rfs::Uid::from_raw(d.uid)),
        Some(rfs::Gid::from_raw(d.gid)),
        AtFlags::SYMLINK_NOFOLLOW,
    )?;
    Ok(())
}

/// `pivot_root` onto `rootfs` and detach the old root, without a directory for it (`pivot_root(".", ".")`).
fn pivot_root(rootfs: &Path) -> Result<(), String> {
    let old = rfs::open(
        "/",
        OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| format!("open /: {e}"))?;
    let new = rfs::open(
        rootfs,
        OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| format!("open the root {}: {e}", rootfs.display()))?;
    nix::unistd::fchdir(new.as_raw_fd()).map_err(|e| format!("enter the root: {e}"))?;
    nix::unistd::pivot_root(".", ".").map_err(|e| format!("pivot_root: {e}"))?;
    nix::unistd::fchdir(old.as_raw_fd()).map_err(|e| format!("enter the old root: {e}"))?;
    // The old root's mounts must not take the host's mounts with them as they go.
    mount(
        None::<&str>,
        ".",
        None::<&str>,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|e| format!("make the old root a slave: {e}"))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(|e| format!("detach the old root: {e}"))?;
    nix::unistd::chdir("/").map_err(|e| format!("chdir /: {e}"))?;
    Ok(())
}

/// Binds the terminal's peer on `/dev/console`, as runtimes do for a container with a terminal.
fn bind_console(slave: &OwnedFd) -> Result<(), String> {
    match rfs::open(
        "/dev/console",
        OFlags::CREATE | OFlags::WRONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
    ) {
        Ok(_) | Err(rustix::io::Errno::EXIST) => {}
        Err(e) => return Err(format!("create /dev/console: {e}")),
    }
    mount(
        Some(fd_path(slave).as_str()),
        "/dev/console",
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|e| format!("bind the terminal on /dev/console: {e}"))
}

/// The flags of the mount at `path` that a remount must keep (or the kernel refuses, or clears them).
fn kept_flags(path: &Path) -> MsFlags {
    let Ok(st) = nix::sys::statvfs::statvfs(path) else {
        return MsFlags::empty();
    };
    use nix::sys::statvfs::FsFlags;
    let f = st.flags();
    let mut out = MsFlags::empty();
    for (fs, ms) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if f.contains(fs) {
            out |= ms;
        }
    }
    out
}

fn remount_readonly(path: &Path) -> Result<(), String> {
    mount(
        None::<&str>,
        path,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | kept_flags(path),
        None::<&str>,
    )
    .map_err(|e| format!("remount {} read-only: {e}", path.display()))
}

/// A read-only path: bound on itself, then remounted read-only. One that does not exist is skipped.
fn readonly_path(p: &Path) -> Result<(), String> {
    match mount(
        Some(p),
        p,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    ) {
        Ok(()) => remount_readonly(p),
        Err(nix::Error::ENOENT) => Ok(()),
        Err(e) => Err(format!("bind {} on itself: {e}", p.display())),
    }
}

/// A masked path: `/dev/null` over a file, an empty read-only tmpfs over a directory.
fn mask_path(p: &Path) -> Result<(), String> {
    match mount(
        Some("/dev/null"),
        p,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    ) {
        Ok(()) | Err(nix::Error::ENOENT) => Ok(()),
        Err(nix::Error::ENOTDIR) => mount(
            Some("tmpfs"),
            p,
            Some("tmpfs"),
            MsFlags::MS_RDONLY,
            None::<&str>,
        )
        .map_err(|e| format!("mask {}: {e}", p.display())),
        Err(e) => Err(format!("mask {}: {e}", p.display())),
    }
}
