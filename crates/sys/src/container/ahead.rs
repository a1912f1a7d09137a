//! A container init cloned ahead of its container, by a spare shim while it waits (cgroup v1).
//!
//! Cloning the init is most of a millisecond of a start: the `clone3` itself (a copy of the shim's memory
//! map and new pid, IPC and UTS namespaces), the new process's first run, and its moves into the nine v1
//! cgroup hierarchies. A spare does all that before it has a container: [`clone_ahead`] clones a process
//! into new pid, IPC and UTS namespaces that moves itself into the spare's cgroups (which the start renames
//! to the container's) and waits on a socket. The start hands it the [`Init`] ([`Ahead::hand`]): the
//! description as bytes in a memfd, and the descriptors it holds, in one message; the process takes its
//! mount namespace then (`unshare`, a copy of the host's mounts as they are at the start, not as they were
//! when the spare was made), and a network namespace if the container has one of its own, and goes on as
//! an init cloned at the start does.
//!
//! An init that does not fit the container (another pid, IPC or UTS namespace, or a user namespace) is
//! killed and a new one cloned as before ([`Ahead::fits`]). Until it is handed its container the process
//! dies with the spare (`PR_SET_PDEATHSIG`); once handed, like any init, it outlives a shim that dies.

use std::ffi::CString;
use std::io::{IoSlice, IoSliceMut, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use nix::mount::MsFlags;
use nix::sched::CloneFlags;
use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};

use super::{CgroupHierarchy, Cgroups, Created, Device, Init, Mount, MountKind, Spawned};
use crate::launch::{Capabilities, LaunchError, Process, Stdio};
use crate::seccomp::Program;

/// The namespaces an init cloned ahead is in: those that can only be entered at a clone (pid) or cost
/// most to make (IPC, UTS). Mount and network namespaces are taken when the container is known.
const AHEAD: CloneFlags = CloneFlags::CLONE_NEWPID
    .union(CloneFlags::CLONE_NEWIPC)
    .union(CloneFlags::CLONE_NEWUTS);
/// What the process can still take once handed its container.
const LATER: CloneFlags = CloneFlags::CLONE_NEWNS.union(CloneFlags::CLONE_NEWNET);
/// At most this many descriptors come with the description (namespaces to join, stdio).
const MAX_FDS: usize = 32;

/// An init cloned ahead, waiting for its container. Dropped without being handed one, it is killed and
/// reaped.
#[derive(Debug)]
pub struct Ahead {
    created: Option<Created>,
}

/// Clones an init ahead into new pid, IPC and UTS namespaces, named `name` (what `ps` shows until it
/// execs the program); it moves its thread into the cgroup v1 hierarchies of `cgroups` (their `tasks`
/// files) and waits for [`Ahead::hand`]. The caller must be single-threaded (the child allocates).
///
/// The cgroup files are opened here, before the clone: the start renames the cgroups for its container,
/// maybe before the new process has run at all, and an open file still names its cgroup after a rename.
pub fn clone_ahead(name: &std::ffi::CStr, cgroups: &Cgroups) -> Result<Ahead, LaunchError> {
    let procs = cgroups
        .tasks
        .iter()
        .cloned()
        .chain(
            cgroups
                .v2_dir
                .iter()
                .map(|(_, dir)| dir.join("cgroup.procs")),
        )
        .map(
            |path| match std::fs::OpenOptions::new().write(true).open(&path) {
                Ok(file) => Ok((file, path)),
                Err(e) => Err(crate::SysError::io("open cgroup", path.display(), e)),
            },
        )
        .collect::<Result<Vec<_>, _>>()?;
    let (pid, sync) = super::clone_child(AHEAD, None, |_, sync| {
        let _ = nix::sys::prctl::set_name(name);
        wait_for_container(procs, sync)
    })?;
    Ok(Ahead {
        created: Some(Created { pid, sync }),
    })
}

impl Ahead {
    pub fn pid(&self) -> i32 {
        self.created.as_ref().map_or(0, |c| c.pid)
    }

    /// Whether `init` can be this process: it asks for new pid, IPC and UTS namespaces, no other new
    /// namespace but mount and network, and is not cloned into a v2 cgroup.
    pub fn fits(&self, init: &Init) -> bool {
        init.new_namespaces.contains(AHEAD)
            && LATER.contains(init.new_namespaces.difference(AHEAD))
            && init.cgroups.v2_dir.is_none()
    }

    /// Hands the waiting init its container (which must [fit](Ahead::fits)); from here on it is as if
    /// [`super::spawn`] had cloned it. It is in the container's cgroups already (the spare's, renamed),
    /// so `init.cgroups` is not joined again. When it cannot be handed (it has died), it is reaped and
    /// `init` comes back, for [`super::spawn`].
    pub fn hand(mut self, init: Init) -> Result<Spawned, Box<Init>> {
        let Some(created) = self.created.take() else {
            return Err(Box::new(init));
        };
        // Killed and reaped if dropped, like a spawned init.
        let spawned = Spawned {
            created: Some(created),
        };
        let sent = spawned
            .created
            .as_ref()
            .map_or(Err(nix::Error::ESRCH), |c| send(&c.sync, &init));
        if sent.is_err() {
            return Err(Box::new(init));
        }
        // Our copies of its descriptors go; the init has its own.
        drop(init);
        Ok(spawned)
    }
}

/// Sends `init` as [`receive`] takes it: its description in a memfd, and its descriptors.
fn send(sync: &UnixStream, init: &Init) -> nix::Result<()> {
    let (bytes, fds) = encode(init);
    let errno = |e: rustix::io::Errno| nix::Error::from_raw(e.raw_os_error());
    let memfd =
        rustix::fs::memfd_create("berth-init", rustix::fs::MemfdFlags::CLOEXEC).map_err(errno)?;
    if rustix::io::write(&memfd, &bytes).map_err(errno)? != bytes.len() {
        return Err(nix::Error::EIO);
    }
    let mut all: Vec<RawFd> = vec![memfd.as_raw_fd()];
    all.extend(fds);
    let cmsg = [ControlMessage::ScmRights(&all)];
    loop {
        match sendmsg::<()>(
            sync.as_raw_fd(),
            &[IoSlice::new(b"i")],
            &cmsg,
            MsgFlags::empty(),
            None,
        ) {
            Err(nix::Error::EINTR) => continue,
            r => return r.map(drop),
        }
    }
}

impl Drop for Ahead {
    fn drop(&mut self) {
        if let Some(c) = self.created.take() {
            let child = nix::unistd::Pid::from_raw(c.pid);
            let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(child, None);
        }
    }
}

/// The cloned process until it has its container, then the init.
fn wait_for_container(
    cgroups: Vec<(std::fs::File, PathBuf)>,
    sync: &UnixStream,
) -> Result<std::convert::Infallible, String> {
    nix::sys::prctl::set_dumpable(false).map_err(|e| format!("set non-dumpable: {e}"))?;
    // It goes with the spare until it has a container. (A spare that went before this reads as the end
    // of the sync socket below: its parent is outside its pid namespace, `getppid` says 0 either way.)
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
        .map_err(|e| format!("set the parent-death signal: {e}"))?;
    crate::process::reset_signals().map_err(|e| format!("reset signals: {e}"))?;
    // Nothing of the spare's: its standard descriptors are its connection to the daemon.
    crate::process::stdio_to_devnull().map_err(|e| format!("stdio: {e}"))?;
    for (mut file, path) in cgroups {
        file.write_all(b"0")
            .map_err(|e| format!("join cgroup {}: {e}", path.display()))?;
    }
    // The pages it will write to, its own now (it shares the spare's until it writes them).
    crate::process::warm_up(128 * 1024, 64 * 1024);
    let (bytes, mut fds) = receive(sync)?;
    let init = decode(&bytes, &mut fds)?;
    if !fds.is_empty() {
        return Err("the container's description came with descriptors it does not use".into());
    }
    nix::sys::prctl::set_pdeathsig(None)
        .map_err(|e| format!("clear the parent-death signal: {e}"))?;
    let later = init.new_namespaces.difference(AHEAD);
    if !later.is_empty() {
        nix::sched::unshare(later)
            .map_err(|e| format!("create the container's namespaces: {e}"))?;
    }
    super::set_up_and_run(init, sync)
}

/// Waits for the description: the memfd holding it and the descriptors it names, in order. The end of
/// the shim (end-of-file) means there will be no container: the process exits.
fn receive(sync: &UnixStream) -> Result<(Vec<u8>, std::collections::VecDeque<OwnedFd>), String> {
    let mut byte = [0u8; 1];
    let mut space = nix::cmsg_space!([RawFd; MAX_FDS]);
    let (n, raw) = loop {
        let mut iov = [IoSliceMut::new(&mut byte)];
        match recvmsg::<()>(
            sync.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(format!("wait for the container: {e}")),
            Ok(msg) => {
                let mut raw = Vec::new();
                for c in msg
                    .cmsgs()
                    .map_err(|e| format!("wait for the container: {e}"))?
                {
                    if let ControlMessageOwned::ScmRights(fds) = c {
                        raw.extend(fds);
                    }
                }
                break (msg.bytes, raw);
            }
        }
    };
    // SAFETY: the kernel just gave us these descriptors; nothing else owns them.
    let mut fds: std::collections::VecDeque<OwnedFd> = raw
        .into_iter()
        .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) })
        .collect();
    if n == 0 {
        // SAFETY: `_exit` leaves this forked child without running the shim's destructors.
        unsafe { libc::_exit(0) }
    }
    let memfd = fds
        .pop_front()
        .ok_or("the container's description came without its memfd")?;
    let mut file = std::fs::File::from(memfd);
    let mut bytes = Vec::new();
    // From its start: the shim's write left the (shared) offset at its end.
    std::io::Seek::rewind(&mut file)
        .and_then(|()| std::io::Read::read_to_end(&mut file, &mut bytes))
        .map_err(|e| format!("read the container's description: {e}"))?;
    Ok((bytes, fds))
}

// The description's encoding: what one build of the shim writes and the same build reads (the process
// is a fork of it), so it needs no versioning. Integers are little-endian; byte strings and lists are
// preceded by their length (u32).

struct Writer(Vec<u8>);

impl Writer {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn len(&mut self, n: usize) {
        self.u32(n as u32);
    }
    fn bytes(&mut self, b: &[u8]) {
        self.len(b.len());
        self.0.extend_from_slice(b);
    }
    fn path(&mut self, p: &Path) {
        self.bytes(p.as_os_str().as_bytes());
    }
    fn paths(&mut self, ps: &[PathBuf]) {
        self.len(ps.len());
        for p in ps {
            self.path(p);
        }
    }
    fn opt(&mut self, b: Option<&[u8]>) {
        match b {
            Some(b) => {
                self.u8(1);
                self.bytes(b);
            }
            None => self.u8(0),
        }
    }
    fn caps(&mut self, set: &std::collections::HashSet<caps::Capability>) {
        self.len(set.len());
        for c in set {
            self.u8(c.index());
        }
    }
}

struct Reader<'a> {
    b: &'a [u8],
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        if self.b.len() < n {
            return Err("the container's description is cut short".into());
        }
        let (head, rest) = self.b.split_at(n);
        self.b = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn flag(&mut self) -> Result<bool, String> {
        Ok(self.u8()? != 0)
    }
    fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64, String> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    /// A count of items that take at least a byte each: never more than what is left.
    fn len(&mut self) -> Result<usize, String> {
        let n = self.u32()? as usize;
        if n > self.b.len() {
            return Err("the container's description is cut short".into());
        }
        Ok(n)
    }
    fn bytes(&mut self) -> Result<Vec<u8>, String> {
        let n = self.len()?;
        Ok(self.take(n)?.to_vec())
    }
    fn string(&mut self) -> Result<String, String> {
        String::from_utf8(self.bytes()?).map_err(|_| "a name that is not UTF-8".to_string())
    }
    fn cstring(&mut self) -> Result<CString, String> {
        CString::new(self.bytes()?).map_err(|_| "a string with a NUL byte".to_string())
    }
    fn path(&mut self) -> Result<PathBuf, String> {
        let bytes = self.bytes()?;
        Ok(PathBuf::from(
            <std::ffi::OsString as std::os::unix::ffi::OsStringExt>::from_vec(bytes),
        ))
    }
    fn paths(&mut self) -> Result<Vec<PathBuf>, String> {
        (0..self.len()?).map(|_| self.path()).collect()
    }
    fn opt_string(&mut self) -> Result<Option<String>, String> {
        if self.flag()? {
            Ok(Some(self.string()?))
        } else {
            Ok(None)
        }
    }
    fn caps(&mut self) -> Result<std::collections::HashSet<caps::Capability>, String> {
        let all = caps::all();
        (0..self.len()?)
            .map(|_| {
                let i = self.u8()?;
                all.iter()
                    .find(|c| c.index() == i)
                    .copied()
                    .ok_or_else(|| format!("unknown capability {i}"))
            })
            .collect()
    }
}

/// `init` as bytes, and the descriptors it holds, in the order [`decode`] takes them: the namespaces to
/// join, then stdio (three descriptors, or the terminal socket). Its cgroups are not described: the
/// process joined them before it was handed its container.
fn encode(init: &Init) -> (Vec<u8>, Vec<RawFd>) {
    let mut w = Writer(Vec::with_capacity(16 * 1024));
    let mut fds = Vec::new();
    w.u64(init.new_namespaces.bits() as u64);
    w.len(init.join.len());
    for (fd, kind) in &init.join {
        w.u64(kind.bits() as u64);
        fds.push(fd.as_raw_fd());
    }
    w.u8(init.cgroup_ns as u8);
    w.len(init.cgroup_hierarchies.len());
    for h in &init.cgroup_hierarchies {
        w.bytes(h.name.as_bytes());
        w.bytes(h.fstype.as_bytes());
        w.bytes(h.options.as_bytes());
        w.path(&h.host_dir);
    }
    w.path(&init.rootfs);
    w.u64(init.root_propagation.bits());
    w.u8(init.share_root as u8);
    w.u8(init.readonly_root as u8);
    w.len(init.mounts.len());
    for m in &init.mounts {
        w.u8(match m.kind {
            MountKind::Bind => 0,
            MountKind::Cgroup => 1,
            MountKind::Fs => 2,
        });
        w.path(&m.source);
        w.path(&m.destination);
        w.bytes(m.fstype.as_bytes());
        w.u64(m.flags.bits());
        w.u64(m.propagation.bits());
        w.bytes(m.data.as_bytes());
    }
    w.len(init.devices.len());
    for d in &init.devices {
        w.path(&d.path);
        w.u32(d.kind);
        w.u64(d.major);
        w.u64(d.minor);
        w.u32(d.mode);
        w.u32(d.uid);
        w.u32(d.gid);
    }
    w.paths(&init.masked_paths);
    w.paths(&init.readonly_paths);
    w.opt(init.hostname.as_deref().map(str::as_bytes));
    w.opt(init.domainname.as_deref().map(str::as_bytes));
    w.len(init.sysctls.len());
    for (k, v) in &init.sysctls {
        w.bytes(k.as_bytes());
        w.bytes(v.as_bytes());
    }
    let p = &init.process;
    for list in [&p.args, &p.env] {
        w.len(list.len());
        for s in list {
            w.bytes(s.as_bytes());
        }
    }
    w.bytes(p.cwd.as_bytes());
    w.u32(p.uid);
    w.u32(p.gid);
    w.len(p.additional_gids.len());
    for g in &p.additional_gids {
        w.u32(*g);
    }
    w.len(p.rlimits.len());
    for (r, soft, hard) in &p.rlimits {
        w.u32(*r as u32);
        w.u64(*soft);
        w.u64(*hard);
    }
    match p.oom_score_adj {
        Some(v) => {
            w.u8(1);
            w.u32(v as u32);
        }
        None => w.u8(0),
    }
    w.u8(p.no_new_privileges as u8);
    match &p.seccomp {
        Some((program, flags)) => {
            w.u8(1);
            w.bytes(&program.to_bytes());
            w.u32(*flags);
        }
        None => w.u8(0),
    }
    w.u8(p.compile_filter_ahead as u8);
    let c = &p.capabilities;
    for set in [
        &c.bounding,
        &c.effective,
        &c.permitted,
        &c.inheritable,
        &c.ambient,
    ] {
        w.caps(set);
    }
    match &init.stdio {
        Stdio::Fds(three) => {
            w.u8(0);
            fds.extend(three.iter().map(|f| f.as_raw_fd()));
        }
        Stdio::Terminal(sock) => {
            w.u8(1);
            fds.push(sock.as_raw_fd());
        }
    }
    (w.0, fds)
}

/// The [`Init`] [`encode`] described, taking its descriptors from the front of `fds`.
fn decode(bytes: &[u8], fds: &mut std::collections::VecDeque<OwnedFd>) -> Result<Init, String> {
    let mut r = Reader { b: bytes };
    let mut fd = || {
        fds.pop_front().ok_or_else(|| {
            "the container's description names a descriptor it did not come with".to_string()
        })
    };
    let new_namespaces = CloneFlags::from_bits_retain(r.u64()? as i32);
    let mut join = Vec::new();
    for _ in 0..r.len()? {
        let kind = CloneFlags::from_bits_retain(r.u64()? as i32);
        join.push((fd()?, kind));
    }
    let cgroup_ns = r.flag()?;
    let mut cgroup_hierarchies = Vec::new();
    for _ in 0..r.len()? {
        cgroup_hierarchies.push(CgroupHierarchy {
            name: r.string()?,
            fstype: r.string()?,
            options: r.string()?,
            host_dir: r.path()?,
        });
    }
    let rootfs = r.path()?;
    let root_propagation = MsFlags::from_bits_retain(r.u64()?);
    let share_root = r.flag()?;
    let readonly_root = r.flag()?;
    let mut mounts = Vec::new();
    for _ in 0..r.len()? {
        let kind = match r.u8()? {
            0 => MountKind::Bind,
            1 => MountKind::Cgroup,
            2 => MountKind::Fs,
            k => return Err(format!("unknown mount kind {k}")),
        };
        mounts.push(Mount {
            kind,
            source: r.path()?,
            destination: r.path()?,
            fstype: r.string()?,
            flags: MsFlags::from_bits_retain(r.u64()?),
            propagation: MsFlags::from_bits_retain(r.u64()?),
            data: r.string()?,
        });
    }
    let mut devices = Vec::new();
    for _ in 0..r.len()? {
        devices.push(Device {
            path: r.path()?,
            kind: r.u32()?,
            major: r.u64()?,
            minor: r.u64()?,
            mode: r.u32()?,
            uid: r.u32()?,
            gid: r.u32()?,
        });
    }
    let masked_paths = r.paths()?;
    let readonly_paths = r.paths()?;
    let hostname = r.opt_string()?;
    let domainname = r.opt_string()?;
    let mut sysctls = Vec::new();
    for _ in 0..r.len()? {
        sysctls.push((r.string()?, r.string()?));
    }
    let mut lists = [Vec::new(), Vec::new()];
    for list in &mut lists {
        for _ in 0..r.len()? {
            list.push(r.cstring()?);
        }
    }
    let [args, env] = lists;
    let cwd = r.cstring()?;
    let uid = r.u32()?;
    let gid = r.u32()?;
    let additional_gids = (0..r.len()?).map(|_| r.u32()).collect::<Result<_, _>>()?;
    let mut rlimits = Vec::new();
    for _ in 0..r.len()? {
        rlimits.push((r.u32()? as i32, r.u64()?, r.u64()?));
    }
    let oom_score_adj = if r.flag()? {
        Some(r.u32()? as i32)
    } else {
        None
    };
    let no_new_privileges = r.flag()?;
    let seccomp = if r.flag()? {
        let program = Program::from_bytes(&r.bytes()?).map_err(|e| e.to_string())?;
        Some((program, r.u32()?))
    } else {
        None
    };
    let compile_filter_ahead = r.flag()?;
    let capabilities = Capabilities {
        bounding: r.caps()?,
        effective: r.caps()?,
        permitted: r.caps()?,
        inheritable: r.caps()?,
        ambient: r.caps()?,
    };
    let stdio = match r.u8()? {
        0 => Stdio::Fds([fd()?, fd()?, fd()?]),
        1 => Stdio::Terminal(UnixStream::from(fd()?)),
        k => return Err(format!("unknown stdio kind {k}")),
    };
    if !r.b.is_empty() {
        return Err("the container's description has bytes left over".into());
    }
    Ok(Init {
        new_namespaces,
        join,
        cgroup_ns,
        cgroups: Cgroups::default(),
        cgroup_hierarchies,
        rootfs,
        root_propagation,
        share_root,
        readonly_root,
        mounts,
        devices,
        masked_paths,
        readonly_paths,
        hostname,
        domainname,
        sysctls,
        process: Process {
            args,
            env,
            cwd,
            uid,
            gid,
            additional_gids,
            rlimits,
            oom_score_adj,
            no_new_privileges,
            seccomp,
            compile_filter_ahead,
            capabilities,
        },
        stdio,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(stdio: Stdio, join: Vec<(OwnedFd, CloneFlags)>) -> Init {
        let mut caps = Capabilities::default();
        caps.bounding.insert(caps::Capability::CAP_CHOWN);
        caps.bounding.insert(caps::Capability::CAP_NET_BIND_SERVICE);
        caps.effective.insert(caps::Capability::CAP_KILL);
        Init {
            new_namespaces: AHEAD | CloneFlags::CLONE_NEWNS,
            join,
            cgroup_ns: true,
            cgroups: Cgroups::default(),
            cgroup_hierarchies: vec![CgroupHierarchy {
                name: "cpu,cpuacct".into(),
                fstype: "cgroup".into(),
                options: "cpu,cpuacct".into(),
                host_dir: "/sys/fs/cgroup/cpu,cpuacct/berth/abc".into(),
            }],
            rootfs: "/var/lib/berth/containers/abc/rootfs".into(),
            root_propagation: MsFlags::MS_SLAVE | MsFlags::MS_REC,
            share_root: false,
            readonly_root: true,
            mounts: vec![Mount {
                kind: MountKind::Fs,
                source: "tmpfs".into(),
                destination: "/dev".into(),
                fstype: "tmpfs".into(),
                flags: MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME,
                propagation: MsFlags::empty(),
                data: "mode=755,size=65536k".into(),
            }],
            devices: vec![Device {
                path: "/dev/fuse".into(),
                kind: libc::S_IFCHR,
                major: 10,
                minor: 229,
                mode: 0o666,
                uid: 0,
                gid: 0,
            }],
            masked_paths: vec!["/proc/kcore".into()],
            readonly_paths: vec!["/proc/sys".into(), "/proc/bus".into()],
            hostname: Some("box".into()),
            domainname: None,
            sysctls: vec![("net.ipv4.ip_forward".into(), "1".into())],
            process: Process {
                args: vec![c"sh".into(), c"-c".into()],
                env: vec![c"PATH=/bin".into()],
                cwd: c"/".into(),
                uid: 1000,
                gid: 1000,
                additional_gids: vec![10, 20],
                rlimits: vec![(libc::RLIMIT_NOFILE as i32, 1024, 4096)],
                oom_score_adj: Some(-500),
                no_new_privileges: true,
                seccomp: Some((
                    Program::from_bytes(&[6, 0, 0, 0, 0, 0, 0xff, 0x7f]).unwrap(),
                    4,
                )),
                compile_filter_ahead: true,
                capabilities: caps,
            },
            stdio,
        }
    }

    fn null() -> OwnedFd {
        std::fs::File::open("/dev/null").unwrap().into()
    }

    #[test]
    fn a_description_comes_back_as_it_went() {
        let init = sample(
            Stdio::Fds([null(), null(), null()]),
            vec![(null(), CloneFlags::CLONE_NEWNET)],
        );
        let (bytes, fds) = encode(&init);
        assert_eq!(fds.len(), 4);
        let mut given: std::collections::VecDeque<OwnedFd> = fds.iter().map(|_| null()).collect();
        let back = decode(&bytes, &mut given).unwrap();
        assert!(given.is_empty());
        assert_eq!(format!("{:?}", back.mounts), format!("{:?}", init.mounts));
        assert_eq!(format!("{:?}", back.devices), format!("{:?}", init.devices));
        assert_eq!(
            format!("{:?}", back.cgroup_hierarchies),
            format!("{:?}", init.cgroup_hierarchies)
        );
        assert_eq!(back.new_namespaces, init.new_namespaces);
        assert_eq!(back.join.len(), 1);
        assert_eq!(back.join[0].1, CloneFlags::CLONE_NEWNET);
        assert_eq!(back.rootfs, init.rootfs);
        assert_eq!(back.root_propagation, init.root_propagation);
        assert!(back.readonly_root && back.cgroup_ns && !back.share_root);
        assert_eq!(back.masked_paths, init.masked_paths);
        assert_eq!(back.readonly_paths, init.readonly_paths);
        assert_eq!(back.hostname.as_deref(), Some("box"));
        assert_eq!(back.domainname, None);
        assert_eq!(back.sysctls, init.sysctls);
        let (p, q) = (&back.process, &init.process);
        assert_eq!((&p.args, &p.env, &p.cwd), (&q.args, &q.env, &q.cwd));
        assert_eq!(
            (p.uid, p.gid, &p.additional_gids),
            (q.uid, q.gid, &q.additional_gids)
        );
        assert_eq!(p.rlimits, q.rlimits);
        assert_eq!(p.oom_score_adj, Some(-500));
        assert!(p.no_new_privileges);
        let (prog, flags) = p.seccomp.as_ref().unwrap();
        assert_eq!(
            (prog.to_bytes(), *flags),
            (vec![6, 0, 0, 0, 0, 0, 0xff, 0x7f], 4)
        );
        assert!(p.compile_filter_ahead);
        assert_eq!(p.capabilities.bounding, q.capabilities.bounding);
        assert_eq!(p.capabilities.effective, q.capabilities.effective);
        assert!(p.capabilities.ambient.is_empty());
        assert!(matches!(back.stdio, Stdio::Fds(_)));
    }

    #[test]
    fn a_cut_or_padded_description_or_missing_descriptors_are_refused() {
        let (a, _b) = UnixStream::pair().unwrap();
        let init = sample(Stdio::Terminal(a), Vec::new());
        let (bytes, fds) = encode(&init);
        assert_eq!(fds.len(), 1);
        for cut in [0, 1, bytes.len() / 2, bytes.len() - 1] {
            let mut given: std::collections::VecDeque<OwnedFd> = [null()].into();
            assert!(decode(&bytes[..cut], &mut given).is_err(), "cut at {cut}");
        }
        let mut padded = bytes.clone();
        padded.push(0);
        let mut given: std::collections::VecDeque<OwnedFd> = [null()].into();
        assert!(decode(&padded, &mut given).is_err());
        let mut none = std::collections::VecDeque::new();
        assert!(decode(&bytes, &mut none).is_err());
        let mut given: std::collections::VecDeque<OwnedFd> = [null()].into();
        assert!(matches!(
            decode(&bytes, &mut given).unwrap().stdio,
            Stdio::Terminal(_)
        ));
    }

    #[test]
    fn only_an_init_with_the_same_pid_ipc_and_uts_namespaces_fits() {
        let ahead = Ahead { created: None };
        let mut init = sample(Stdio::Fds([null(), null(), null()]), Vec::new());
        assert!(ahead.fits(&init));
        init.new_namespaces = AHEAD | LATER;
        assert!(ahead.fits(&init));
        // --pid host, --uts host: another namespace set.
        init.new_namespaces = CloneFlags::CLONE_NEWIPC | CloneFlags::CLONE_NEWUTS;
        assert!(!ahead.fits(&init));
        init.new_namespaces = AHEAD | CloneFlags::CLONE_NEWUSER;
        assert!(!ahead.fits(&init));
        init.new_namespaces = AHEAD;
        init.cgroups.v2_dir = Some((null(), "/sys/fs/cgroup/berth/abc".into()));
        assert!(!ahead.fits(&init));
    }
}
