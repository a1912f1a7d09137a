//! The input of spec generation: a container's settings, already resolved by the engine.
//!
//! Everything here is plain data (serde-able so the engine may store it next to the container): the
//! user is already looked up in the image's /etc/passwd, volumes already have host paths, the network
//! namespace already exists. [`super::generate`] reads nothing from the host.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

use super::seccomp::KernelVersion;

/// Everything the spec depends on, already resolved by the engine (no I/O inside `generate`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SpecInput {
    /// Container id (64 hex digits); context for the caller, not written into the spec (Docker does not
    /// either: the runtime gets it on its command line).
    pub id: String,
    /// Absolute path of the mounted root filesystem.
    pub rootfs: PathBuf,
    /// `--read-only`.
    pub readonly_rootfs: bool,
    /// Entrypoint and command, already combined; must not be empty.
    pub args: Vec<String>,
    /// `KEY=VALUE`, image and user env already merged. `generate` puts Docker's `PATH` and
    /// `HOSTNAME` (and `TERM=xterm` with a tty) first; entries here replace them, and a bare `KEY`
    /// removes one.
    pub env: Vec<String>,
    /// Working directory; absolute, `/` when empty.
    pub cwd: String,
    /// User id, resolved by the engine.
    pub uid: u32,
    /// Primary group id, resolved by the engine.
    pub gid: u32,
    /// Supplementary groups; `generate` puts `gid` first if it is missing, like Docker.
    pub additional_gids: Vec<u32>,
    /// Hostname (Docker: the first 12 digits of the id unless set).
    pub hostname: String,
    /// Domain name (`--domainname`); empty for none.
    pub domainname: String,
    /// Allocate a terminal (`-t`).
    pub tty: bool,
    /// `--privileged`.
    pub privileged: bool,
    /// `--cap-add`: `NET_ADMIN`, `CAP_NET_ADMIN`, `ALL`... (any case).
    pub cap_add: Vec<String>,
    /// `--cap-drop`, same forms as `cap_add`.
    pub cap_drop: Vec<String>,
    /// The engine's own bounding set as a bit mask (bit n = capability number n, the `CapBnd` line of
    /// /proc/self/status). `--privileged` and `--cap-add ALL` give every capability in it; `None` means
    /// all 41 Linux capabilities.
    pub available_capabilities: Option<u64>,
    /// `--security-opt no-new-privileges`.
    pub no_new_privileges: bool,
    /// The seccomp profile.
    pub seccomp: SeccompMode,
    /// User binds, volumes and tmpfs mounts, in any order.
    pub mounts: Vec<MountSpec>,
    /// Cgroup limits.
    pub resources: Resources,
    /// `--ulimit`.
    pub ulimits: Vec<Ulimit>,
    /// `--oom-score-adj`.
    pub oom_score_adj: i32,
    /// Cgroup path, e.g. `/berth/<id>`; required (youki otherwise creates `:youki:<id>`).
    pub cgroups_path: String,
    /// The network namespace.
    pub network: NetworkMode,
    /// `--ipc shareable`: other containers may join this IPC namespace, so `/dev/shm` must be a host
    /// tmpfs (`shm_source`) they can bind too.
    pub ipc_shareable: bool,
    /// `--pid host`: no PID namespace (and no `--init`, like Docker).
    pub pid_host: bool,
    /// `--ipc host`: no IPC namespace.
    pub ipc_host: bool,
    /// `--uts host`: no UTS namespace, no hostname.
    pub uts_host: bool,
    /// `--sysctl`; they override Docker's network defaults.
    pub sysctls: BTreeMap<String, String>,
    /// `/dev/shm` size in bytes; 64 MiB when 0.
    pub shm_size: u64,
    /// Device nodes made in the container's `/dev` (`--device`, or every host device with
    /// `--privileged`), already looked up on the host.
    pub devices: Vec<Device>,
    /// A host directory (a tmpfs the engine mounted) bind-mounted at `/dev/shm` instead of a private
    /// tmpfs; required with `ipc_shareable`.
    pub shm_source: Option<PathBuf>,
    /// Files bind-mounted into the container like Docker's hosts, hostname and resolv.conf:
    /// (host file, container path such as `/etc/hosts`). Writable unless the rootfs is read-only.
    pub etc_files: Vec<(PathBuf, String)>,
    /// Paths masked in addition to Docker's list (also for privileged containers).
    pub masked_paths_extra: Vec<String>,
    /// Paths made read-only in addition to Docker's list (also for privileged containers).
    pub readonly_paths_extra: Vec<String>,
    /// `--init`: this host binary is bind-mounted read-only at `/sbin/docker-init`, which becomes the
    /// container's pid 1 (`/sbin/docker-init -- <args>`). Ignored with `pid_host`, like Docker.
    pub init_binary: Option<PathBuf>,
    /// OCI annotations, copied as they are.
    pub annotations: BTreeMap<String, String>,
    /// Architecture in Docker's naming (`amd64`, `arm64`...) for the seccomp profile; empty means the
    /// architecture berth was built for.
    pub arch: String,
    /// Host kernel `<major>.<minor>` for the profile's `minKernel` rules; `None` counts as recent.
    pub kernel_version: Option<KernelVersion>,
}

/// Which seccomp filter the container gets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SeccompMode {
    /// Docker's default profile (none for privileged containers, like Docker).
    #[default]
    Default,
    /// No filter (`--security-opt seccomp=unconfined`).
    Unconfined,
    /// A Docker-format profile (JSON text); applied even to privileged containers, like Docker.
    Custom(String),
}

/// The container's network namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NetworkMode {
    /// A new network namespace created by the runtime.
    #[default]
    None,
    /// The host's network namespace (`--network host`).
    Host,
    /// Join the container's own namespace, prepared by the network driver and bound at this path.
    /// Docker's network sysctls are set in it.
    Path(PathBuf),
    /// Join another container's namespace (`--network container:<id>`) at this path; it is left as
    /// its owner configured it, so no sysctl is set.
    Container(PathBuf),
}

/// What a user mount is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MountKind {
    /// A host path (`-v /host:/ctr`, `--mount type=bind`).
    #[default]
    Bind,
    /// A named volume; `source` is its resolved host directory.
    Volume,
    /// A tmpfs (`--tmpfs`, `--mount type=tmpfs`); `source` is ignored.
    Tmpfs,
}

/// Mount propagation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Propagation {
    /// `private`
    Private,
    /// `rprivate` (the default)
    Rprivate,
    /// `shared`
    Shared,
    /// `rshared`
    Rshared,
    /// `slave`
    Slave,
    /// `rslave`
    Rslave,
}

impl Propagation {
    /// The mount option naming this propagation.
    pub fn as_str(self) -> &'static str {
        match self {
            Propagation::Private => "private",
            Propagation::Rprivate => "rprivate",
            Propagation::Shared => "shared",
            Propagation::Rshared => "rshared",
            Propagation::Slave => "slave",
            Propagation::Rslave => "rslave",
        }
    }
}

/// A user mount.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MountSpec {
    /// Absolute path inside the container.
    pub destination: String,
    /// Absolute host path (bind, volume); ignored for tmpfs.
    pub source: PathBuf,
    /// What it is.
    pub kind: MountKind,
    /// Mount read-only.
    pub readonly: bool,
    /// Tmpfs: `size=`, `mode=`, `uid=`, `gid=`, `nr_inodes=`, and flags such as `exec`. Bind and volume:
    /// extra mount flags (`nosuid`, `noexec`...).
    pub options: Vec<String>,
    /// Propagation; `rprivate` when unset.
    pub propagation: Option<Propagation>,
}

/// Cgroup limits, with Docker's units and "unset" conventions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Resources {
    /// Memory limit in bytes; 0 = unset.
    pub memory: i64,
    /// Memory + swap in bytes; -1 = unlimited swap, 0 = unset.
    pub memory_swap: i64,
    /// Soft memory limit in bytes; 0 = unset.
    pub memory_reservation: i64,
    /// `--memory-swappiness` (0-100).
    pub memory_swappiness: Option<u64>,
    /// `--cpus` in billionths of a CPU; 0 = unset. Exclusive with `cpu_quota`/`cpu_period`.
    pub nano_cpus: i64,
    /// Relative CPU weight; 0 = unset.
    pub cpu_shares: i64,
    /// CFS quota in microseconds per period; 0 = unset.
    pub cpu_quota: i64,
    /// CFS period in microseconds; 0 = unset.
    pub cpu_period: i64,
    /// CPUs allowed (`0-3,5`); empty = unset.
    pub cpuset_cpus: String,
    /// Memory nodes allowed; empty = unset.
    pub cpuset_mems: String,
    /// Maximum number of tasks; `Some(0)` or negative = unlimited, `None` = unset.
    pub pids_limit: Option<i64>,
    /// Block IO weight (10-1000); 0 = unset.
    pub blkio_weight: u16,
    /// Disable the OOM killer.
    pub oom_kill_disable: bool,
}

/// A `--ulimit`: name (`nofile`, `nproc`...) and limits; negative means unlimited.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ulimit {
    /// The resource, without the `RLIMIT_` prefix (`nofile`).
    pub name: String,
    /// Soft limit.
    pub soft: i64,
    /// Hard limit.
    pub hard: i64,
}

/// A device node for the container, as the engine found it on the host.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Device {
    /// Its path in the container.
    pub path: String,
    /// `c` (character) or `b` (block).
    pub kind: char,
    pub major: i64,
    pub minor: i64,
    /// Permission bits of the node.
    pub file_mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// What the device cgroup allows (`rwm` or a part of it).
    pub permissions: String,
}
