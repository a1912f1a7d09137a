//! Docker-format seccomp profiles and their conversion to the OCI `linux.seccomp` section.
//!
//! A Docker profile is an OCI seccomp section plus conditions: `archMap` picks the architectures for the
//! machine, and each syscall rule may carry `includes`/`excludes` filters on capabilities (checked against
//! the container's bounding set), architectures (Go/libseccomp names such as `amd64`, `arm64`) and a
//! minimum kernel version. [`docker_profile_to_oci`] evaluates those conditions for one container and
//! returns the plain OCI section, exactly as the Docker daemon does before handing the spec to runc.
//!
//! [`DEFAULT_PROFILE_JSON`] is Docker's default profile (from `moby/profiles`, Apache-2.0): an allowlist
//! with `defaultAction` `SCMP_ACT_ERRNO` (EPERM), rules that open `mount`, `ptrace`, `reboot`... only to
//! the capabilities that make them meaningful, `personality` and `clone` argument rules, and `clone3`
//! answered with ENOSYS so that libc falls back to `clone`.

use oci_spec::runtime::{
    Arch, Capability, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompFilterFlag,
    LinuxSyscall,
};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use super::caps::normalize_capability_name;
use super::defaults::capability_name;

/// Docker's default seccomp profile, in Docker's profile format.
pub const DEFAULT_PROFILE_JSON: &str = include_str!("docker_default_seccomp.json");

/// What can go wrong reading or converting a Docker seccomp profile.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// The profile is not valid JSON or does not have the profile's shape.
    #[error("invalid seccomp profile")]
    Parse {
        /// The decoding error.
        #[source]
        source: serde_json::Error,
    },
    /// Both `architectures` and `archMap` are set; Docker accepts only one of them.
    #[error("seccomp profile sets both 'architectures' and 'archMap'")]
    ArchitecturesAndArchMap,
    /// A syscall rule sets both `name` and `names`.
    #[error("seccomp rule {index} sets both 'name' ({name}) and 'names'")]
    NameAndNames {
        /// Position of the rule in `syscalls`.
        index: usize,
        /// The single name.
        name: String,
    },
    /// A syscall rule names no syscall.
    #[error("seccomp rule {index} names no syscall")]
    NoSyscallName {
        /// Position of the rule in `syscalls`.
        index: usize,
    },
    /// A kernel version is not `<major>.<minor>`.
    #[error("invalid kernel version {value:?}, expected \"<major>.<minor>\"")]
    InvalidKernelVersion {
        /// The rejected text.
        value: String,
    },
    /// The profile lists syscall rules but no `defaultAction`.
    #[error("seccomp profile has syscall rules but no 'defaultAction'")]
    MissingDefaultAction,
}

/// A kernel version as `<major>.<minor>`, the form Docker profiles use in `minKernel`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KernelVersion {
    /// The "5" in "5.10.0-21-amd64".
    pub major: u32,
    /// The "10" in "5.10.0-21-amd64".
    pub minor: u32,
}

impl FromStr for KernelVersion {
    type Err = SeccompError;

    /// Parses "5.10" as well as a full release such as "6.1.0-18-amd64" (the first two numbers).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || SeccompError::InvalidKernelVersion {
            value: s.to_string(),
        };
        let mut parts = s.splitn(3, '.');
        let major = parts.next().and_then(|p| p.parse().ok()).ok_or_else(err)?;
        let minor_text = parts.next().ok_or_else(err)?;
        let digits: String = minor_text
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        let minor = digits.parse().map_err(|_| err())?;
        if major == 0 && minor == 0 {
            return Err(err());
        }
        Ok(KernelVersion { major, minor })
    }
}

impl fmt::Display for KernelVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

impl Serialize for KernelVersion {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for KernelVersion {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Reads `null` as the type's default, like Go's JSON decoder does for slices.
fn nullable<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// Reads a `minKernel` where `""` means "no minimum".
fn min_kernel<'de, D>(deserializer: D) -> Result<Option<KernelVersion>, D::Error>
where
    D: Deserializer<'de>,
{
    match Option::<String>::deserialize(deserializer)? {
        None => Ok(None),
        Some(text) if text.is_empty() => Ok(None),
        Some(text) => text.parse().map(Some).map_err(serde::de::Error::custom),
    }
}

/// A seccomp profile in Docker's format.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DockerProfile {
    /// Action for syscalls no rule matches; absent together with `syscalls` means "no filter".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_action: Option<LinuxSeccompAction>,
    /// Errno returned by an `SCMP_ACT_ERRNO` default action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_errno_ret: Option<u32>,
    /// Explicit architectures (exclusive with `arch_map`).
    #[serde(default, deserialize_with = "nullable")]
    pub architectures: Vec<Arch>,
    /// Architectures per native architecture (exclusive with `architectures`).
    #[serde(default, deserialize_with = "nullable")]
    pub arch_map: Vec<ArchMapEntry>,
    /// Seccomp filter flags.
    #[serde(default, deserialize_with = "nullable")]
    pub flags: Vec<LinuxSeccompFilterFlag>,
    /// Unix socket of a seccomp notification agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listener_path: Option<PathBuf>,
    /// Opaque data passed to the notification agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listener_metadata: Option<String>,
    /// The rules, in order.
    #[serde(default, deserialize_with = "nullable")]
    pub syscalls: Vec<DockerSyscall>,
}

/// One `archMap` entry: a native architecture and the sub-architectures it also runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArchMapEntry {
    /// The native architecture.
    pub architecture: Arch,
    /// Compatible architectures (e.g. x86 and x32 on x86_64).
    #[serde(default, deserialize_with = "nullable")]
    pub sub_architectures: Vec<Arch>,
}

/// One syscall rule of a Docker profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DockerSyscall {
    /// A single syscall name (older profiles; exclusive with `names`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Syscall names.
    #[serde(default, deserialize_with = "nullable")]
    pub names: Vec<String>,
    /// What happens when the rule matches.
    pub action: LinuxSeccompAction,
    /// Errno for `SCMP_ACT_ERRNO`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errno_ret: Option<u32>,
    /// Argument conditions, all of which must hold.
    #[serde(default, deserialize_with = "nullable")]
    pub args: Vec<LinuxSeccompArg>,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// The rule applies only if all of these hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub includes: Option<Filter>,
    /// The rule is dropped if any of these holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub excludes: Option<Filter>,
}

/// Conditions of a rule.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Filter {
    /// Capabilities (`CAP_SYS_ADMIN`) looked up in the bounding set.
    #[serde(default, deserialize_with = "nullable")]
    pub caps: Vec<String>,
    /// Native architecture names (`amd64`, `arm64`, `s390x`...).
    #[serde(default, deserialize_with = "nullable")]
    pub arches: Vec<String>,
    /// Minimum kernel version.
    #[serde(
        default,
        deserialize_with = "min_kernel",
        skip_serializing_if = "Option::is_none"
    )]
    pub min_kernel: Option<KernelVersion>,
}

/// The architecture of this build in Docker's naming (`amd64`, `arm64`, `x86`, `arm`, `ppc64le`...).
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "x86" => "x86",
        "aarch64" => "arm64",
        "arm" => "arm",
        "loongarch64" => "loong64",
        "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
        "powerpc64" => "ppc64",
        "powerpc" => "ppc",
        "riscv64" => "riscv64",
        "s390x" => "s390x",
        "mips64" if cfg!(target_endian = "little") => "mipsel64",
        "mips64" => "mips64",
        "mips" if cfg!(target_endian = "little") => "mipsle",
        other => other,
    }
}

/// The seccomp architecture of a Docker-named architecture, if libseccomp knows it.
pub fn seccomp_arch(arch: &str) -> Option<Arch> {
    let arch = match arch {
        "x86" => Arch::ScmpArchX86,
        "amd64" => Arch::ScmpArchX86_64,
        "arm" => Arch::ScmpArchArm,
        "arm64" => Arch::ScmpArchAarch64,
        "loong64" | "loongarch64" => Arch::ScmpArchLoongarch64,
        "mips64" => Arch::ScmpArchMips64,
        "mips64n32" => Arch::ScmpArchMips64n32,
        "mipsel64" => Arch::ScmpArchMipsel64,
        "mips3l64n32" => Arch::ScmpArchMipsel64n32,
        "mipsle" => Arch::ScmpArchMipsel,
        "ppc" => Arch::ScmpArchPpc,
        "ppc64" => Arch::ScmpArchPpc64,
        "ppc64le" => Arch::ScmpArchPpc64le,
        "riscv64" => Arch::ScmpArchRiscv64,
        "s390" => Arch::ScmpArchS390,
        "s390x" => Arch::ScmpArchS390x,
        _ => return None,
    };
    Some(arch)
}

/// Parses a Docker-format profile.
pub fn parse_profile(profile_json: &str) -> Result<DockerProfile, SeccompError> {
    serde_json::from_str(profile_json).map_err(|source| SeccompError::Parse { source })
}

/// Docker's default profile, parsed.
pub fn default_profile() -> Result<&'static DockerProfile, SeccompError> {
    // Parsed once per process: every start with the default profile needs it.
    static PROFILE: std::sync::OnceLock<DockerProfile> = std::sync::OnceLock::new();
    if let Some(p) = PROFILE.get() {
        return Ok(p);
    }
    let parsed = parse_profile(DEFAULT_PROFILE_JSON)?;
    Ok(PROFILE.get_or_init(|| parsed))
}

/// Parses a Docker-format profile and converts it for a container with bounding capabilities `caps`,
/// on architecture `arch` (Docker naming, see [`host_arch`]) and kernel `kernel`.
///
/// Returns `None` when the profile disables seccomp (no default action and no rules). An unknown kernel
/// (`None`) counts as newer than any `minKernel`.
pub fn docker_profile_to_oci(
    profile_json: &str,
    caps: &[Capability],
    arch: &str,
    kernel: Option<KernelVersion>,
) -> Result<Option<LinuxSeccomp>, SeccompError> {
    convert_profile(&parse_profile(profile_json)?, caps, arch, kernel)
}

/// Converts an already parsed profile; see [`docker_profile_to_oci`].
pub fn convert_profile(
    profile: &DockerProfile,
    caps: &[Capability],
    arch: &str,
    kernel: Option<KernelVersion>,
) -> Result<Option<LinuxSeccomp>, SeccompError> {
    let Some(default_action) = profile.default_action else {
        if profile.syscalls.is_empty() {
            return Ok(None);
        }
        return Err(SeccompError::MissingDefaultAction);
    };
    if !profile.architectures.is_empty() && !profile.arch_map.is_empty() {
        return Err(SeccompError::ArchitecturesAndArchMap);
    }

    let mut architectures = profile.architectures.clone();
    if let Some(native) = seccomp_arch(arch) {
        if let Some(entry) = profile.arch_map.iter().find(|e| e.architecture == native) {
            architectures.push(entry.architecture);
            architectures.extend(entry.sub_architectures.iter().copied());
        }
    }

    let held: Vec<&str> = caps.iter().map(|c| capability_name(*c)).collect();
    let mut syscalls = Vec::new();
    for (index, rule) in profile.syscalls.iter().enumerate() {
        let names = match (&rule.name, rule.names.is_empty()) {
            (Some(name), false) => {
                return Err(SeccompError::NameAndNames {
                    index,
                    name: name.clone(),
                })
            }
            (Some(name), true) => vec![name.clone()],
            (None, false) => rule.names.clone(),
            (None, true) => return Err(SeccompError::NoSyscallName { index }),
        };
        if !rule_applies(rule, &held, arch, kernel) {
            continue;
        }
        let mut out = LinuxSyscall::default();
        out.set_names(names);
        out.set_action(rule.action);
        out.set_errno_ret(rule.errno_ret);
        out.set_args((!rule.args.is_empty()).then(|| rule.args.clone()));
        syscalls.push(out);
    }

    let mut seccomp = LinuxSeccomp::default();
    seccomp.set_default_action(default_action);
    seccomp.set_default_errno_ret(profile.default_errno_ret);
    seccomp.set_architectures((!architectures.is_empty()).then_some(architectures));
    seccomp.set_flags((!profile.flags.is_empty()).then(|| profile.flags.clone()));
    seccomp.set_listener_path(profile.listener_path.clone());
    seccomp.set_listener_metadata(profile.listener_metadata.clone());
    seccomp.set_syscalls((!syscalls.is_empty()).then_some(syscalls));
    Ok(Some(seccomp))
}

fn holds(held: &[&str], cap: &str) -> bool {
    normalize_capability_name(cap).is_some_and(|name| held.contains(&name.as_str()))
}

fn newer_or_equal(kernel: Option<KernelVersion>, min: KernelVersion) -> bool {
    kernel.is_none_or(|k| k >= min)
}

/// Docker's rule selection: any exclude condition that holds drops the rule; every include condition
/// must hold.
fn rule_applies(
    rule: &DockerSyscall,
    held: &[&str],
    arch: &str,
    kernel: Option<KernelVersion>,
) -> bool {
    if let Some(ex) = &rule.excludes {
        if ex.arches.iter().any(|a| a == arch)
            || ex.caps.iter().any(|c| holds(held, c))
            || ex.min_kernel.is_some_and(|min| newer_or_equal(kernel, min))
        {
            return false;
        }
    }
    if let Some(inc) = &rule.includes {
        if (!inc.arches.is_empty() && !inc.arches.iter().any(|a| a == arch))
            || !inc.caps.iter().all(|c| holds(held, c))
            || inc
                .min_kernel
                .is_some_and(|min| !newer_or_equal(kernel, min))
        {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::defaults::DEFAULT_CAPABILITIES;

    fn allowed(seccomp: &LinuxSeccomp, name: &str) -> Vec<LinuxSyscall> {
        seccomp
            .syscalls()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .filter(|s| s.names().iter().any(|n| n == name))
            .collect()
    }

    fn default_for(caps: &[Capability], arch: &str) -> LinuxSeccomp {
        docker_profile_to_oci(DEFAULT_PROFILE_JSON, caps, arch, None)
            .expect("default profile converts")
            .expect("default profile enables seccomp")
    }

    #[test]
    fn default_profile_shape() {
        let s = default_for(&DEFAULT_CAPABILITIES, "amd64");
        assert_eq!(s.default_action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(s.default_errno_ret(), Some(1));
        assert_eq!(
            s.architectures().clone().unwrap_or_default(),
            vec![Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32]
        );
        assert!(!allowed(&s, "read").is_empty());
        assert!(!allowed(&s, "arch_prctl").is_empty());
        assert!(allowed(&s, "mount").is_empty(), "mount needs CAP_SYS_ADMIN");
        assert!(allowed(&s, "reboot").is_empty());
        assert!(allowed(&s, "s390_runtime_instr").is_empty());
        // chroot comes with CAP_SYS_CHROOT, a default capability
        assert!(!allowed(&s, "chroot").is_empty());
        // clone3 answers ENOSYS without CAP_SYS_ADMIN
        let clone3 = allowed(&s, "clone3");
        assert_eq!(clone3.len(), 1);
        assert_eq!(clone3[0].action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(clone3[0].errno_ret(), Some(38));
        // clone is allowed only without namespace flags
        let clone = allowed(&s, "clone");
        assert_eq!(clone.len(), 1);
        let args = clone[0].args().clone().unwrap_or_default();
        assert_eq!(args[0].index(), 0);
        assert_eq!(args[0].value(), 2_114_060_288);
        // five personality rules
        assert_eq!(allowed(&s, "personality").len(), 5);
    }

    #[test]
    fn sys_admin_opens_mount_and_namespaces() {
        let mut caps = DEFAULT_CAPABILITIES.to_vec();
        caps.push(Capability::SysAdmin);
        let s = default_for(&caps, "amd64");
        assert!(!allowed(&s, "mount").is_empty());
        assert!(!allowed(&s, "setns").is_empty());
        // the unconditional clone rule replaces the flag-filtered one and clone3 is allowed
        let clone = allowed(&s, "clone");
        assert_eq!(clone.len(), 1);
        assert!(clone[0].args().is_none());
        assert!(allowed(&s, "clone3")
            .iter()
            .all(|r| r.action() == LinuxSeccompAction::ScmpActAllow));
    }

    #[test]
    fn capability_rules_follow_the_bounding_set() {
        let s = default_for(&[Capability::SysPtrace, Capability::SysBoot], "amd64");
        assert!(!allowed(&s, "kcmp").is_empty());
        assert!(!allowed(&s, "reboot").is_empty());
        assert!(allowed(&s, "chroot").is_empty());
        assert!(allowed(&s, "iopl").is_empty());
    }

    #[test]
    fn arm64_uses_its_arch_map_entry() {
        let s = default_for(&DEFAULT_CAPABILITIES, "arm64");
        assert_eq!(
            s.architectures().clone().unwrap_or_default(),
            vec![Arch::ScmpArchAarch64, Arch::ScmpArchArm]
        );
        assert!(allowed(&s, "arch_prctl").is_empty());
        assert!(!allowed(&s, "set_tls").is_empty());
    }

    #[test]
    fn min_kernel_is_checked_when_known() {
        let old = KernelVersion { major: 4, minor: 4 };
        let s = docker_profile_to_oci(DEFAULT_PROFILE_JSON, &[], "amd64", Some(old))
            .expect("converts")
            .expect("enabled");
        assert!(allowed(&s, "ptrace").is_empty());
        let new: KernelVersion = "6.1.0-18-amd64".parse().expect("parses");
        let s = docker_profile_to_oci(DEFAULT_PROFILE_JSON, &[], "amd64", Some(new))
            .expect("converts")
            .expect("enabled");
        assert!(!allowed(&s, "ptrace").is_empty());
    }

    #[test]
    fn kernel_version_parsing() {
        assert_eq!(
            "5.10".parse::<KernelVersion>().ok(),
            Some(KernelVersion {
                major: 5,
                minor: 10
            })
        );
        assert!("5".parse::<KernelVersion>().is_err());
        assert!("0.0".parse::<KernelVersion>().is_err());
        assert!("x.1".parse::<KernelVersion>().is_err());
        assert_eq!(KernelVersion { major: 4, minor: 8 }.to_string(), "4.8");
    }

    #[test]
    fn custom_profile_with_name_and_architectures() {
        let json = r#"{
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [
                {"name": "chmod", "action": "SCMP_ACT_ERRNO", "errnoRet": 13, "args": null},
                {"names": ["mkdir"], "action": "SCMP_ACT_LOG", "args": [], "includes": {"caps": ["sys_admin"]}}
            ]
        }"#;
        let s = docker_profile_to_oci(json, &[], "amd64", None)
            .expect("converts")
            .expect("enabled");
        assert_eq!(s.default_action(), LinuxSeccompAction::ScmpActAllow);
        assert_eq!(
            s.architectures().clone().unwrap_or_default(),
            vec![Arch::ScmpArchX86_64]
        );
        let calls = s.syscalls().clone().unwrap_or_default();
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].names(), &vec!["chmod".to_string()]);
        assert_eq!(calls[0].errno_ret(), Some(13));
        // lowercase cap names in filters are normalised
        let s = docker_profile_to_oci(json, &[Capability::SysAdmin], "amd64", None)
            .expect("converts")
            .expect("enabled");
        assert_eq!(s.syscalls().clone().unwrap_or_default().len(), 2);
    }

    #[test]
    fn empty_profile_disables_seccomp() {
        assert_eq!(
            docker_profile_to_oci("{}", &[], "amd64", None).ok(),
            Some(None)
        );
    }

    #[test]
    fn invalid_profiles_are_errors() {
        let cases = [
            (
                r#"{"syscalls": [{"names": ["a"], "action": "SCMP_ACT_ALLOW"}]}"#,
                "no 'defaultAction'",
            ),
            (
                r#"{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86"],
                    "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": null}]}"#,
                "both 'architectures' and 'archMap'",
            ),
            (
                r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"name": "a", "names": ["b"], "action": "SCMP_ACT_ALLOW"}]}"#,
                "both 'name'",
            ),
            (
                r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"action": "SCMP_ACT_ALLOW"}]}"#,
                "names no syscall",
            ),
            (
                r#"{"defaultAction": "SCMP_ACT_BOGUS"}"#,
                "invalid seccomp profile",
            ),
            (r#"not json"#, "invalid seccomp profile"),
            (
                r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["a"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "4"}}]}"#,
                "invalid seccomp profile",
            ),
        ];
        for (json, want) in cases {
            let err = docker_profile_to_oci(json, &[], "amd64", None)
                .expect_err(&format!("{json} must be rejected"));
            assert!(err.to_string().contains(want), "{json}: {err}");
        }
    }

    #[test]
    fn unknown_arch_gets_no_architectures() {
        let s = default_for(&DEFAULT_CAPABILITIES, "pdp11");
        assert!(s.architectures().is_none());
    }

    #[test]
    fn host_arch_is_known_to_libseccomp_on_common_targets() {
        if cfg!(any(target_arch = "x86_64", target_arch = "aarch64")) {
            assert!(seccomp_arch(host_arch()).is_some());
        }
    }
}
