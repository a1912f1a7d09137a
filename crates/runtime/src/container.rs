//! berth's built-in runtime, the shim's side: an OCI spec turned into [`berth_sys::container::Init`].
//!
//! The container's cgroups ([`crate::cgroups`]) are made by the shim before the init is cloned, so the
//! init only has to move itself in: by thread through `tasks` on v1 (no global lock), at clone time with
//! `CLONE_INTO_CGROUP` on v2. Either way no start waits for the kernel's cgroup-attach grace period (see
//! `berth_sys::container`).

use std::ffi::CString;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use berth_sys::container::{Device, Init, Mount, MountKind};
use berth_sys::launch::{CgroupMount, Process, Stdio};
use nix::mount::MsFlags;
use nix::sched::CloneFlags;
use oci_spec::runtime::{LinuxNamespaceType, Spec};

pub use crate::cgroups::Cgroup;

/// Why a spec cannot be run by berth's runtime, or its cgroups not be set up.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("{0}")]
    Unsupported(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("apply the container's resource limits: {0}")]
    Limits(String),
    #[error(transparent)]
    Sys(#[from] berth_sys::SysError),
}

pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> RuntimeError {
    let what = what.into();
    move |source| RuntimeError::Io { what, source }
}

/// The process part of a spec, as berth's launcher takes it (also what an exec becomes).
pub fn process(
    p: &oci_spec::runtime::Process,
    seccomp: Option<(berth_sys::seccomp::Program, u32)>,
) -> Result<Process, RuntimeError> {
    let cstr = |s: &str, what: &str| {
        CString::new(s)
            .map_err(|_| RuntimeError::Unsupported(format!("{what} {s:?} holds a NUL byte")))
    };
    let set = |s: &Option<oci_spec::runtime::Capabilities>| -> caps::CapsHashSet {
        s.iter().flatten().filter_map(|c| caps_name(*c)).collect()
    };
    let c = p.capabilities().clone().unwrap_or_default();
    let capabilities = berth_sys::launch::Capabilities {
        bounding: set(c.bounding()),
        effective: set(c.effective()),
        permitted: set(c.permitted()),
        inheritable: set(c.inheritable()),
        ambient: set(c.ambient()),
    };
    let user = p.user();
    let rlimits = p
        .rlimits()
        .iter()
        .flatten()
        .map(|r| (rlimit_resource(r.typ()), r.soft(), r.hard()))
        .collect();
    Ok(Process {
        args: p
            .args()
            .iter()
            .flatten()
            .map(|a| cstr(a, "argument"))
            .collect::<Result<_, _>>()?,
        env: p
            .env()
            .iter()
            .flatten()
            .map(|e| cstr(e, "environment variable"))
            .collect::<Result<_, _>>()?,
        cwd: cstr(&p.cwd().to_string_lossy(), "working directory")?,
        uid: user.uid(),
        gid: user.gid(),
        additional_gids: user.additional_gids().clone().unwrap_or_default(),
        rlimits,
        oom_score_adj: p.oom_score_adj(),
        no_new_privileges: p.no_new_privileges().unwrap_or(false),
        seccomp,
        // The shim says when (see `proto::SeccompFilter::compile_ahead`).
        compile_filter_ahead: false,
        capabilities,
    })
}

/// The `caps` crate's name of an OCI capability (oci-spec prints `SYS_ADMIN`, `caps` parses `CAP_SYS_ADMIN`).
pub fn caps_name(c: oci_spec::runtime::Capability) -> Option<caps::Capability> {
    let name = c.to_string();
    let name = if name.starts_with("CAP_") {
        name
    } else {
        format!("CAP_{name}")
    };
    name.parse().ok()
}

/// The kernel's number for an OCI rlimit type.
fn rlimit_resource(t: oci_spec::runtime::PosixRlimitType) -> i32 {
    use oci_spec::runtime::PosixRlimitType as T;
    (match t {
        T::RlimitCpu => libc::RLIMIT_CPU,
        T::RlimitFsize => libc::RLIMIT_FSIZE,
        T::RlimitData => libc::RLIMIT_DATA,
        T::RlimitStack => libc::RLIMIT_STACK,
        T::RlimitCore => libc::RLIMIT_CORE,
        T::RlimitRss => libc::RLIMIT_RSS,
        T::RlimitNproc => libc::RLIMIT_NPROC,
        T::RlimitNofile => libc::RLIMIT_NOFILE,
        T::RlimitMemlock => libc::RLIMIT_MEMLOCK,
        T::RlimitAs => libc::RLIMIT_AS,
        T::RlimitLocks => libc::RLIMIT_LOCKS,
        T::RlimitSigpending => libc::RLIMIT_SIGPENDING,
        T::RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        T::RlimitNice => libc::RLIMIT_NICE,
        T::RlimitRtprio => libc::RLIMIT_RTPRIO,
        T::RlimitRttime => libc::RLIMIT_RTTIME,
    }) as i32
}

/// Everything [`berth_sys::container::spawn`] needs for `spec`, whose cgroup is `cgroup`.
pub fn init(
    spec: &Spec,
    bundle: &Path,
    cgroup: &Cgroup,
    mounts: &[CgroupMount],
    seccomp: Option<(berth_sys::seccomp::Program, u32)>,
    stdio: Stdio,
) -> Result<Init, RuntimeError> {
    let linux = spec
        .linux()
        .as_ref()
        .ok_or_else(|| RuntimeError::Unsupported("the spec has no linux section".into()))?;
    // The spec's seccomp section comes precompiled (see `crate::filter`): it is `seccomp`.
    if linux.seccomp().is_some() && seccomp.is_none() {
        return Err(RuntimeError::Unsupported(
            "the spec's seccomp section was not compiled for the shim".into(),
        ));
    }
    let mut new_namespaces = CloneFlags::empty();
    let mut join = Vec::new();
    let mut cgroup_ns = false;
    for ns in linux.namespaces().iter().flatten() {
        let flag = match ns.typ() {
            LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
            LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
            LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
            LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
            LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
            LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
            other => {
                return Err(RuntimeError::Unsupported(format!(
                    "{other:?} namespaces are not supported"
                )))
            }
        };
        match ns.path() {
            None if flag == CloneFlags::CLONE_NEWCGROUP => cgroup_ns = true,
            None => new_namespaces |= flag,
            Some(path) => {
                if matches!(flag, CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWNS) {
                    return Err(RuntimeError::Unsupported(format!(
                        "joining a {:?} namespace by path is not supported",
                        ns.typ()
                    )));
                }
                let f = std::fs::File::open(path)
                    .map_err(io(format!("open namespace {}", path.display())))?;
                join.push((OwnedFd::from(f), flag));
            }
        }
    }
    if !new_namespaces.contains(CloneFlags::CLONE_NEWNS) {
        return Err(RuntimeError::Unsupported(
            "a container needs its own mount namespace".into(),
        ));
    }
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| RuntimeError::Unsupported("the spec has no root".into()))?;
    let rootfs = if root.path().is_absolute() {
        root.path().clone()
    } else {
        bundle.join(root.path())
    };
    // `pivot_root` refuses a shared root or parent: a shared root (asked for by `rshared` volumes) is made
    // shared again once in place.
    let (root_propagation, share_root) = match linux.rootfs_propagation().as_deref() {
        None | Some("") => (MsFlags::MS_SLAVE | MsFlags::MS_REC, false),
        Some("shared" | "rshared") => (MsFlags::MS_SLAVE | MsFlags::MS_REC, true),
        Some(p) => (
            berth_sys::mount::propagation_flags(p).ok_or_else(|| {
                RuntimeError::Unsupported(format!("unknown rootfsPropagation {p:?}"))
            })?,
            false,
        ),
    };
    let mut out_mounts = Vec::new();
    for m in spec.mounts().iter().flatten() {
        let berth_sys::mount::MountOptions {
            flags,
            propagation,
            data,
        } = berth_sys::mount::parse_mount_options(m.options().iter().flatten().map(String::as_str));
        let fstype = m.typ().clone().unwrap_or_default();
        let kind = if fstype == "bind" || flags.contains(MsFlags::MS_BIND) {
            MountKind::Bind
        } else if fstype == "cgroup" || fstype == "cgroup2" {
            MountKind::Cgroup
        } else {
            MountKind::Fs
        };
        let source = m.source().clone().unwrap_or_else(|| PathBuf::from(&fstype));
        let source = if kind == MountKind::Bind && source.is_relative() {
            bundle.join(source)
        } else {
            source
        };
        if !m.destination().is_absolute() {
            return Err(RuntimeError::Unsupported(format!(
                "mount destination {} is not absolute",
                m.destination().display()
            )));
        }
        out_mounts.push(Mount {
            kind,
            source,
            destination: m.destination().clone(),
            fstype,
            flags,
            propagation,
            data,
        });
    }
    let mut devices = Vec::new();
    for d in linux.devices().iter().flatten() {
        use oci_spec::runtime::LinuxDeviceType as T;
        let kind = match d.typ() {
            T::C | T::U => libc::S_IFCHR,
            T::B => libc::S_IFBLK,
            T::P => libc::S_IFIFO,
            T::A => continue,
        };
        devices.push(Device {
            path: d.path().clone(),
            kind,
            major: d.major() as u64,
            minor: d.minor() as u64,
            mode: d.file_mode().unwrap_or(0o666),
            uid: d.uid().unwrap_or(0),
            gid: d.gid().unwrap_or(0),
        });
    }
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| RuntimeError::Unsupported("the spec has no process".into()))?;
    Ok(Init {
        new_namespaces,
        join,
        cgroup_ns,
        cgroups: cgroup.join()?,
        cgroup_hierarchies: cgroup.hierarchies(mounts),
        rootfs,
        root_propagation,
        share_root,
        readonly_root: root.readonly().unwrap_or(false),
        mounts: out_mounts,
        devices,
        masked_paths: linux
            .masked_paths()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(PathBuf::from)
            .collect(),
        readonly_paths: linux
            .readonly_paths()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(PathBuf::from)
            .collect(),
        hostname: spec.hostname().clone().filter(|h| !h.is_empty()),
        domainname: spec.domainname().clone().filter(|d| !d.is_empty()),
        sysctls: linux
            .sysctl()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect(),
        process: self::process(process, seccomp)?,
        stdio,
    })
}
