//! Docker's defaults, as data: the capability set, the mounts every container gets, the masked and
//! read-only paths, the device cgroup rules and the environment.
//!
//! The values follow moby's `DefaultLinuxSpec` (daemon/pkg/oci/defaults.go) plus the device rules that
//! runc appends on its own (`AllowedDevices`), so that the spec says explicitly what a container may open
//! whichever runtime executes it.

use oci_spec::runtime::{Capability, LinuxDeviceCgroup, LinuxDeviceType, Mount};
use std::path::PathBuf;

/// The OCI runtime-spec version written into `ociVersion`.
///
/// Every field we emit exists in 1.0.2, which is also what Debian's runc 1.1 and youki announce.
pub const OCI_VERSION: &str = "1.0.2-dev";

/// Docker's default `PATH` for Linux containers.
pub const DEFAULT_PATH_ENV: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Where `--init` puts the init binary inside the container.
pub const INIT_PATH: &str = "/sbin/docker-init";

/// The size of `/dev/shm` when the caller leaves it at 0 (64 MiB, Docker's default).
pub const DEFAULT_SHM_SIZE: u64 = 64 * 1024 * 1024;

/// Every Linux capability up to `CAP_CHECKPOINT_RESTORE` (41 in all), in kernel number order, with the
/// name Docker and the runtime-spec use for it.
pub const ALL_CAPABILITIES: [(Capability, &str); 41] = [
    (Capability::Chown, "CAP_CHOWN"),
    (Capability::DacOverride, "CAP_DAC_OVERRIDE"),
    (Capability::DacReadSearch, "CAP_DAC_READ_SEARCH"),
    (Capability::Fowner, "CAP_FOWNER"),
    (Capability::Fsetid, "CAP_FSETID"),
    (Capability::Kill, "CAP_KILL"),
    (Capability::Setgid, "CAP_SETGID"),
    (Capability::Setuid, "CAP_SETUID"),
    (Capability::Setpcap, "CAP_SETPCAP"),
    (Capability::LinuxImmutable, "CAP_LINUX_IMMUTABLE"),
    (Capability::NetBindService, "CAP_NET_BIND_SERVICE"),
    (Capability::NetBroadcast, "CAP_NET_BROADCAST"),
    (Capability::NetAdmin, "CAP_NET_ADMIN"),
    (Capability::NetRaw, "CAP_NET_RAW"),
    (Capability::IpcLock, "CAP_IPC_LOCK"),
    (Capability::IpcOwner, "CAP_IPC_OWNER"),
    (Capability::SysModule, "CAP_SYS_MODULE"),
    (Capability::SysRawio, "CAP_SYS_RAWIO"),
    (Capability::SysChroot, "CAP_SYS_CHROOT"),
    (Capability::SysPtrace, "CAP_SYS_PTRACE"),
    (Capability::SysPacct, "CAP_SYS_PACCT"),
    (Capability::SysAdmin, "CAP_SYS_ADMIN"),
    (Capability::SysBoot, "CAP_SYS_BOOT"),
    (Capability::SysNice, "CAP_SYS_NICE"),
    (Capability::SysResource, "CAP_SYS_RESOURCE"),
    (Capability::SysTime, "CAP_SYS_TIME"),
    (Capability::SysTtyConfig, "CAP_SYS_TTY_CONFIG"),
    (Capability::Mknod, "CAP_MKNOD"),
    (Capability::Lease, "CAP_LEASE"),
    (Capability::AuditWrite, "CAP_AUDIT_WRITE"),
    (Capability::AuditControl, "CAP_AUDIT_CONTROL"),
    (Capability::Setfcap, "CAP_SETFCAP"),
    (Capability::MacOverride, "CAP_MAC_OVERRIDE"),
    (Capability::MacAdmin, "CAP_MAC_ADMIN"),
    (Capability::Syslog, "CAP_SYSLOG"),
    (Capability::WakeAlarm, "CAP_WAKE_ALARM"),
    (Capability::BlockSuspend, "CAP_BLOCK_SUSPEND"),
    (Capability::AuditRead, "CAP_AUDIT_READ"),
    (Capability::Perfmon, "CAP_PERFMON"),
    (Capability::Bpf, "CAP_BPF"),
    (Capability::CheckpointRestore, "CAP_CHECKPOINT_RESTORE"),
];

/// Docker's default capability set, in Docker's order.
pub const DEFAULT_CAPABILITIES: [Capability; 14] = [
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fsetid,
    Capability::Fowner,
    Capability::Mknod,
    Capability::NetRaw,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setfcap,
    Capability::Setpcap,
    Capability::NetBindService,
    Capability::SysChroot,
    Capability::Kill,
    Capability::AuditWrite,
];

/// The name (`CAP_...`) of a capability.
pub fn capability_name(cap: Capability) -> &'static str {
    ALL_CAPABILITIES
        .iter()
        .find(|(c, _)| *c == cap)
        .map_or("CAP_UNKNOWN", |(_, name)| name)
}

/// Paths masked (bind-mounted over with /dev/null or an empty tmpfs) in unprivileged containers.
pub const MASKED_PATHS: [&str; 12] = [
    "/proc/acpi",
    "/proc/asound",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/sys/devices/virtual/powercap",
    "/sys/firmware",
];

/// Paths remounted read-only in unprivileged containers.
pub const READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Destinations of default mounts that stay writable when the root filesystem is read-only.
pub const WRITABLE_WITH_READONLY_ROOTFS: [&str; 5] =
    ["/proc", "/dev/pts", "/dev/shm", "/dev/mqueue", "/dev"];

fn mount(destination: &str, typ: &str, source: &str, options: &[&str]) -> Mount {
    let mut m = Mount::default();
    m.set_destination(PathBuf::from(destination));
    m.set_typ(Some(typ.to_string()));
    m.set_source(Some(PathBuf::from(source)));
    m.set_options(Some(options.iter().map(|o| (*o).to_string()).collect()));
    m
}

/// The mounts every container gets, in order: /proc, /dev, /dev/pts, /sys, /sys/fs/cgroup, /dev/mqueue
/// and a /dev/shm tmpfs of `shm_size` bytes.
pub fn default_mounts(shm_size: u64) -> Vec<Mount> {
    let shm_size_opt = format!("size={shm_size}");
    vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", "ro"],
        ),
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["ro", "nosuid", "noexec", "nodev"],
        ),
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        ),
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", &shm_size_opt],
        ),
    ]
}

fn device_rule(
    allow: bool,
    typ: Option<LinuxDeviceType>,
    major: Option<i64>,
    minor: Option<i64>,
    access: &str,
) -> LinuxDeviceCgroup {
    let mut rule = LinuxDeviceCgroup::default();
    rule.set_allow(allow);
    rule.set_typ(typ);
    rule.set_major(major);
    rule.set_minor(minor);
    rule.set_access(Some(access.to_string()));
    rule
}

/// The device cgroup rules of an unprivileged container.
///
/// Deny everything; allow Docker's list (null, zero, urandom, random, tty, console); deny fuse like
/// Docker; then the rules runc adds by itself (mknod of any node, full, ptmx, the pts and tun), written
/// out so that every runtime enforces the same list.
pub fn default_device_rules() -> Vec<LinuxDeviceCgroup> {
    use LinuxDeviceType::{B, C};
    let c = |major: i64, minor: Option<i64>| device_rule(true, Some(C), Some(major), minor, "rwm");
    vec![
        device_rule(false, None, None, None, "rwm"),
        c(1, Some(5)),
        c(1, Some(3)),
        c(1, Some(9)),
        c(1, Some(8)),
        c(5, Some(0)),
        c(5, Some(1)),
        device_rule(false, Some(C), Some(10), Some(229), "rwm"),
        device_rule(true, Some(C), None, None, "m"),
        device_rule(true, Some(B), None, None, "m"),
        c(1, Some(7)),
        c(5, Some(2)),
        c(136, None),
        c(10, Some(200)),
    ]
}

/// The device cgroup rules of a privileged container: every device.
pub fn privileged_device_rules() -> Vec<LinuxDeviceCgroup> {
    vec![device_rule(true, None, None, None, "rwm")]
}

/// Sysctls Docker sets in a container's own network namespace: unprivileged ICMP echo sockets (ping
/// without CAP_NET_RAW) and binding ports below 1024 without CAP_NET_BIND_SERVICE.
pub const DEFAULT_NET_SYSCTLS: [(&str, &str); 2] = [
    ("net.ipv4.ip_unprivileged_port_start", "0"),
    ("net.ipv4.ping_group_range", "0 2147483647"),
];

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn capability_table_is_complete_and_unique() {
        let caps: HashSet<_> = ALL_CAPABILITIES.iter().map(|(c, _)| *c).collect();
        assert_eq!(caps.len(), ALL_CAPABILITIES.len());
        for (cap, name) in ALL_CAPABILITIES {
            // the table's names are exactly what oci-spec serialises
            let json = serde_json::to_string(&cap).expect("capability serialises");
            assert_eq!(json, format!("\"{name}\""));
        }
    }

    #[test]
    fn default_capabilities_are_fourteen_known_ones() {
        let set: HashSet<_> = DEFAULT_CAPABILITIES.iter().collect();
        assert_eq!(set.len(), 14);
        assert!(!set.contains(&Capability::SysAdmin));
        assert!(!set.contains(&Capability::NetAdmin));
        assert_eq!(capability_name(Capability::AuditWrite), "CAP_AUDIT_WRITE");
    }

    #[test]
    fn shm_mount_carries_the_size() {
        let mounts = default_mounts(1234);
        let shm = mounts
            .iter()
            .find(|m| m.destination() == &PathBuf::from("/dev/shm"))
            .expect("a /dev/shm mount");
        let opts = shm.options().clone().unwrap_or_default();
        assert!(opts.contains(&"size=1234".to_string()), "{opts:?}");
        assert_eq!(mounts.len(), 7);
    }

    #[test]
    fn device_rules_start_with_deny_all() {
        let rules = default_device_rules();
        assert!(!rules[0].allow());
        assert_eq!(rules[0].typ(), None);
        assert!(rules.iter().any(|r| r.allow()
            && r.typ() == Some(LinuxDeviceType::C)
            && r.major() == Some(136)
            && r.minor().is_none()));
        assert_eq!(privileged_device_rules().len(), 1);
    }
}
