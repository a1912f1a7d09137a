//! Docker container config → OCI runtime spec (`config.json`), as a pure function.
//!
//! The engine resolves everything that needs I/O (the image's user database, volume paths, the network
//! namespace, hosts/resolv.conf files) into a [`SpecInput`]; [`generate`] turns it into an
//! [`oci_spec::runtime::Spec`] the way the Docker daemon does (moby's `DefaultLinuxSpec` and
//! `daemon/oci_linux.go`):
//!
//! * namespaces: mount, network (none with `--network host`, joined by path), uts, pid, ipc and a
//!   private cgroup namespace;
//! * process: arguments (behind `/sbin/docker-init --` with `--init`), Docker's environment defaults,
//!   user, Docker's 14 default capabilities tweaked by `cap_add`/`cap_drop` (all 41 when privileged),
//!   rlimits, no_new_privileges, oom_score_adj;
//! * mounts: see [`mounts`]; masked and read-only paths (none when privileged);
//! * resources: memory, CPU, pids, block IO and the device cgroup allowlist;
//! * seccomp: Docker's default profile (or a custom one) evaluated for the container's capabilities,
//!   see [`seccomp`].
//!
//! Capability sets are hash sets in `oci-spec`, so [`to_canonical_json`] is the way to write a
//! deterministic `config.json` (sorted keys, sorted capability lists); the golden tests use it.

pub mod caps;
pub mod defaults;
mod input;
pub mod mounts;
pub mod process;
pub mod resources;
pub mod seccomp;

pub use caps::{parse_capability, resolve_capabilities};
pub use input::{
    Device, MountKind, MountSpec, NetworkMode, Propagation, Resources, SeccompMode, SpecInput,
    Ulimit,
};
pub use process::rlimit_type;
pub use resources::cpu_quota_from_nano_cpus;
pub use seccomp::{docker_profile_to_oci, KernelVersion, SeccompError};

use oci_spec::runtime::{
    Capability, Linux, LinuxNamespace, LinuxNamespaceType, LinuxSeccomp, Root, Spec,
};
use serde_json::Value;
use std::collections::HashMap;
use std::path::PathBuf;

use defaults::{DEFAULT_NET_SYSCTLS, MASKED_PATHS, OCI_VERSION, READONLY_PATHS};

/// Why a spec cannot be generated from a [`SpecInput`].
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// The process has nothing to execute.
    #[error("container has no command to run")]
    EmptyArgs,
    /// A device that cannot be described in the spec.
    #[error("device {path}: {reason}")]
    InvalidDevice { path: String, reason: String },
    /// The working directory is not absolute.
    #[error("working directory {cwd:?} is not an absolute path")]
    RelativeCwd {
        /// The rejected directory.
        cwd: String,
    },
    /// The rootfs path is not absolute.
    #[error("rootfs {path:?} is not an absolute path")]
    RelativeRootfs {
        /// The rejected path.
        path: PathBuf,
    },
    /// `cgroups_path` is empty.
    #[error("cgroups path is not set")]
    MissingCgroupsPath,
    /// A `cap_add`/`cap_drop` entry names no Linux capability.
    #[error("unknown capability {name:?}")]
    UnknownCapability {
        /// The name as given.
        name: String,
    },
    /// A `cap_add` entry names a capability the engine itself does not have.
    #[error("capability {name} is not available in this environment")]
    UnavailableCapability {
        /// The capability.
        name: String,
    },
    /// A ulimit names no rlimit.
    #[error("unknown ulimit {name:?}")]
    UnknownUlimit {
        /// The name as given.
        name: String,
    },
    /// A ulimit's soft limit exceeds its hard limit.
    #[error("ulimit {name}: soft limit {soft} is above hard limit {hard}")]
    UlimitSoftAboveHard {
        /// The ulimit.
        name: String,
        /// Soft limit (negative: unlimited).
        soft: i64,
        /// Hard limit (negative: unlimited).
        hard: i64,
    },
    /// A resource value is out of range.
    #[error("invalid {field} value {value}")]
    InvalidResource {
        /// The [`Resources`] field.
        field: &'static str,
        /// The rejected value.
        value: i64,
    },
    /// `nano_cpus` together with `cpu_quota` or `cpu_period`.
    #[error("nano cpus cannot be combined with cpu quota or cpu period")]
    ConflictingCpuLimits,
    /// A mount destination is relative or the root itself.
    #[error("invalid mount destination {destination:?}")]
    InvalidMountDestination {
        /// The destination as given.
        destination: String,
    },
    /// A bind source is not an absolute host path.
    #[error("mount at {destination}: source {source_path:?} is not an absolute path")]
    RelativeMountSource {
        /// Where it was to be mounted.
        destination: String,
        /// The rejected source.
        source_path: PathBuf,
    },
    /// A mount option is unknown or not allowed for this kind of mount.
    #[error("mount at {destination}: invalid option {option:?}")]
    InvalidMountOption {
        /// The mount's destination.
        destination: String,
        /// The rejected option.
        option: String,
    },
    /// Two user mounts share a destination.
    #[error("duplicate mount point {destination}")]
    DuplicateMountDestination {
        /// The shared destination.
        destination: String,
    },
    /// A sysctl that is not namespaced would change the host.
    #[error("sysctl {name} is not namespaced and cannot be set in a container")]
    SysctlNotNamespaced {
        /// The sysctl.
        name: String,
    },
    /// A namespaced sysctl whose namespace the container shares with the host or another container.
    #[error("sysctl {name} needs the container's own {namespace} namespace")]
    SysctlSharedNamespace {
        /// The sysctl.
        name: String,
        /// `network`, `ipc` or `uts`.
        namespace: &'static str,
    },
    /// `ipc_shareable` together with `ipc_host`.
    #[error("ipc mode cannot be both shareable and host")]
    ConflictingIpcModes,
    /// `ipc_shareable` without `shm_source`.
    #[error("a shareable ipc namespace needs a host shm directory")]
    MissingShmSource,
    /// The seccomp profile cannot be used.
    #[error("seccomp profile")]
    Seccomp {
        /// What is wrong with it.
        #[from]
        source: SeccompError,
    },
    /// `oci-spec` refused to build a section.
    #[error("cannot build the {what} section of the runtime spec")]
    Build {
        /// The section.
        what: &'static str,
        /// The builder's error.
        #[source]
        source: oci_spec::OciSpecError,
    },
    /// The spec cannot be serialised.
    #[error("cannot serialise the runtime spec")]
    Serialize {
        /// The serde error.
        #[source]
        source: serde_json::Error,
    },
}

fn namespace(typ: LinuxNamespaceType, path: Option<PathBuf>) -> LinuxNamespace {
    let mut ns = LinuxNamespace::default();
    ns.set_typ(typ);
    ns.set_path(path);
    ns
}

/// `linux.devices`: the nodes the runtime makes in the container's `/dev`.
fn devices(list: &[input::Device]) -> Result<Vec<oci_spec::runtime::LinuxDevice>, SpecError> {
    list.iter()
        .map(|d| {
            let typ = match d.kind {
                'b' => oci_spec::runtime::LinuxDeviceType::B,
                _ => oci_spec::runtime::LinuxDeviceType::C,
            };
            oci_spec::runtime::LinuxDeviceBuilder::default()
                .path(PathBuf::from(&d.path))
                .typ(typ)
                .major(d.major)
                .minor(d.minor)
                .file_mode(d.file_mode)
                .uid(d.uid)
                .gid(d.gid)
                .build()
                .map_err(|e| SpecError::InvalidDevice {
                    path: d.path.clone(),
                    reason: e.to_string(),
                })
        })
        .collect()
}

/// Docker's namespace list: mount, network, uts, pid, ipc, then a private cgroup namespace.
fn namespaces(input: &SpecInput) -> Vec<LinuxNamespace> {
    let mut out = vec![namespace(LinuxNamespaceType::Mount, None)];
    match &input.network {
        NetworkMode::None => out.push(namespace(LinuxNamespaceType::Network, None)),
        NetworkMode::Host => {}
        NetworkMode::Path(path) | NetworkMode::Container(path) => {
            out.push(namespace(LinuxNamespaceType::Network, Some(path.clone())))
        }
    }
    if !input.uts_host {
        out.push(namespace(LinuxNamespaceType::Uts, None));
    }
    if !input.pid_host {
        out.push(namespace(LinuxNamespaceType::Pid, None));
    }
    if !input.ipc_host {
        out.push(namespace(LinuxNamespaceType::Ipc, None));
    }
    out.push(namespace(LinuxNamespaceType::Cgroup, None));
    out
}

/// The namespace a sysctl lives in, or `None` if it is global (runc's rules).
fn sysctl_namespace(name: &str) -> Option<&'static str> {
    const IPC: [&str; 8] = [
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    if IPC.contains(&name) || name.starts_with("fs.mqueue.") {
        Some("ipc")
    } else if name.starts_with("net.") {
        Some("network")
    } else if name == "kernel.domainname" || name == "kernel.hostname" {
        Some("uts")
    } else {
        None
    }
}

/// Docker's network sysctls for a network namespace of the container's own, overridden by the user's;
/// every sysctl must belong to a namespace the container owns.
fn sysctls(input: &SpecInput) -> Result<HashMap<String, String>, SpecError> {
    let own_netns = matches!(input.network, NetworkMode::None | NetworkMode::Path(_));
    let mut out = HashMap::new();
    if own_netns {
        for (name, value) in DEFAULT_NET_SYSCTLS {
            out.insert(name.to_string(), value.to_string());
        }
    }
    for (name, value) in &input.sysctls {
        let namespace = sysctl_namespace(name)
            .ok_or_else(|| SpecError::SysctlNotNamespaced { name: name.clone() })?;
        let owned = match namespace {
            "network" => own_netns,
            "ipc" => !input.ipc_host,
            _ => !input.uts_host,
        };
        if !owned {
            return Err(SpecError::SysctlSharedNamespace {
                name: name.clone(),
                namespace,
            });
        }
        out.insert(name.clone(), value.clone());
    }
    Ok(out)
}

fn path_list(defaults: &[&str], extra: &[String], privileged: bool) -> Option<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    let base = if privileged { &[][..] } else { defaults };
    for path in base
        .iter()
        .map(|p| (*p).to_string())
        .chain(extra.iter().cloned())
    {
        if !out.contains(&path) {
            out.push(path);
        }
    }
    (!out.is_empty()).then_some(out)
}

fn seccomp_section(
    input: &SpecInput,
    caps: &[Capability],
) -> Result<Option<LinuxSeccomp>, SpecError> {
    let arch = if input.arch.is_empty() {
        seccomp::host_arch()
    } else {
        input.arch.as_str()
    };
    let section = match &input.seccomp {
        SeccompMode::Unconfined => None,
        SeccompMode::Default if input.privileged => None,
        SeccompMode::Default => default_section(caps, arch, input.kernel_version)?,
        SeccompMode::Custom(json) => docker_profile_to_oci(json, caps, arch, input.kernel_version)?,
    };
    Ok(section)
}

/// Docker's default profile converted for `caps`, `arch` and `kernel`: converted once per combination
/// (a handful in a daemon's life; the conversion was a tenth of a start's work), then cloned.
fn default_section(
    caps: &[Capability],
    arch: &str,
    kernel: Option<seccomp::KernelVersion>,
) -> Result<Option<LinuxSeccomp>, SpecError> {
    type Key = (Vec<Capability>, String, Option<seccomp::KernelVersion>);
    static CONVERTED: std::sync::Mutex<Vec<(Key, Option<LinuxSeccomp>)>> =
        std::sync::Mutex::new(Vec::new());
    let key: Key = (caps.to_vec(), arch.to_string(), kernel);
    let mut done = CONVERTED.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, section)) = done.iter().find(|(k, _)| *k == key) {
        return Ok(section.clone());
    }
    let section = seccomp::convert_profile(seccomp::default_profile()?, caps, arch, kernel)?;
    if done.len() >= 16 {
        done.clear();
    }
    done.push((key, section.clone()));
    Ok(section)
}

/// Generates the OCI runtime spec of a container; see the module documentation.
pub fn generate(input: &SpecInput) -> Result<Spec, SpecError> {
    if !input.rootfs.is_absolute() {
        return Err(SpecError::RelativeRootfs {
            path: input.rootfs.clone(),
        });
    }
    if input.cgroups_path.is_empty() {
        return Err(SpecError::MissingCgroupsPath);
    }
    if input.ipc_shareable && input.ipc_host {
        return Err(SpecError::ConflictingIpcModes);
    }
    if input.ipc_shareable && input.shm_source.is_none() {
        return Err(SpecError::MissingShmSource);
    }

    // Docker adds the init only when the container has its own pid namespace
    let with_init = input.init_binary.is_some() && !input.pid_host;
    let caps = resolve_capabilities(
        &input.cap_add,
        &input.cap_drop,
        input.privileged,
        input.available_capabilities,
    )?;
    let process = process::process(input, &caps, with_init)?;
    let plan = mounts::plan_mounts(input, with_init)?;
    let sysctl = sysctls(input)?;

    let mut root = Root::default();
    root.set_path(input.rootfs.clone());
    root.set_readonly(Some(input.readonly_rootfs));

    let mut linux = Linux::default();
    linux.set_net_devices(None);
    linux.set_uid_mappings(None);
    linux.set_gid_mappings(None);
    linux.set_sysctl((!sysctl.is_empty()).then_some(sysctl));
    linux.set_resources(Some(resources::resources(
        &input.resources,
        input.privileged,
        &input.devices,
    )?));
    linux.set_cgroups_path(Some(PathBuf::from(&input.cgroups_path)));
    linux.set_namespaces(Some(namespaces(input)));
    linux.set_devices(Some(devices(&input.devices)?));
    linux.set_seccomp(seccomp_section(input, &caps)?);
    linux.set_rootfs_propagation(plan.rootfs_propagation);
    linux.set_masked_paths(path_list(
        &MASKED_PATHS,
        &input.masked_paths_extra,
        input.privileged,
    ));
    linux.set_readonly_paths(path_list(
        &READONLY_PATHS,
        &input.readonly_paths_extra,
        input.privileged,
    ));
    linux.set_mount_label(None);
    linux.set_intel_rdt(None);
    linux.set_memory_policy(None);
    linux.set_personality(None);
    linux.set_time_offsets(None);

    let hostname = (!input.uts_host && !input.hostname.is_empty()).then(|| input.hostname.clone());
    let domainname =
        (!input.uts_host && !input.domainname.is_empty()).then(|| input.domainname.clone());
    let annotations: HashMap<String, String> = input
        .annotations
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();

    let mut spec = Spec::default();
    spec.set_version(OCI_VERSION.to_string());
    spec.set_root(Some(root));
    spec.set_mounts(Some(plan.mounts));
    spec.set_process(Some(process));
    spec.set_hostname(hostname);
    spec.set_domainname(domainname);
    spec.set_hooks(None);
    spec.set_annotations((!annotations.is_empty()).then_some(annotations));
    spec.set_linux(Some(linux));
    spec.set_solaris(None);
    spec.set_windows(None);
    spec.set_vm(None);
    spec.set_zos(None);
    Ok(spec)
}

/// Sorts object keys everywhere and the capability lists of `process.capabilities`, which `oci-spec`
/// keeps in hash sets.
fn canonicalize(value: &mut Value, key: &str) {
    const CAPABILITY_SETS: [&str; 5] = [
        "bounding",
        "effective",
        "inheritable",
        "permitted",
        "ambient",
    ];
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = std::mem::take(map).into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            for (child_key, mut child) in entries {
                canonicalize(&mut child, &child_key);
                map.insert(child_key, child);
            }
        }
        Value::Array(items) => {
            if CAPABILITY_SETS.contains(&key) {
                items.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
            }
            for item in items {
                canonicalize(item, "");
            }
        }
        _ => {}
    }
}

/// Serialises a spec as deterministic pretty JSON (two-space indent, trailing newline).
pub fn to_canonical_json(spec: &Spec) -> Result<String, SpecError> {
    let mut value = serde_json::to_value(spec).map_err(|source| SpecError::Serialize { source })?;
    canonicalize(&mut value, "");
    let mut text =
        serde_json::to_string_pretty(&value).map_err(|source| SpecError::Serialize { source })?;
    text.push('\n');
    Ok(text)
}

#[cfg(test)]
mod tests;
