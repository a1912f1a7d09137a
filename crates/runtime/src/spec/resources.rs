//! `linux.resources`: memory, CPU, pids and block IO limits with Docker's conversions, and the device
//! cgroup rules.

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxPids, LinuxResources};

use super::defaults::{default_device_rules, privileged_device_rules};
use super::input::Resources;
use super::SpecError;

/// The CFS period `--cpus` uses, in microseconds (100 ms, like Docker).
pub const NANO_CPUS_PERIOD: u64 = 100_000;

/// Docker's `--cpus` conversion: quota = nano_cpus × period / 10⁹ with a 100 ms period, so `--cpus 1.5`
/// (1 500 000 000) gives a quota of 150 000 µs per 100 000 µs.
pub fn cpu_quota_from_nano_cpus(nano_cpus: i64) -> Result<(i64, u64), SpecError> {
    let quota = i128::from(nano_cpus) * i128::from(NANO_CPUS_PERIOD) / 1_000_000_000;
    let quota = i64::try_from(quota).map_err(|_| SpecError::InvalidResource {
        field: "nano_cpus",
        value: nano_cpus,
    })?;
    Ok((quota, NANO_CPUS_PERIOD))
}

fn memory(r: &Resources) -> Option<LinuxMemory> {
    let mut m = LinuxMemory::default();
    let mut set = false;
    if r.memory > 0 {
        m.set_limit(Some(r.memory));
        set = true;
    }
    if r.memory_reservation > 0 {
        m.set_reservation(Some(r.memory_reservation));
        set = true;
    }
    if r.memory_swap > 0 || r.memory_swap == -1 {
        m.set_swap(Some(r.memory_swap));
        set = true;
    }
    if let Some(swappiness) = r.memory_swappiness {
        m.set_swappiness(Some(swappiness));
        set = true;
    }
    if r.oom_kill_disable {
        m.set_disable_oom_killer(Some(true));
        set = true;
    }
    set.then_some(m)
}

fn cpu(r: &Resources) -> Result<Option<LinuxCpu>, SpecError> {
    let mut c = LinuxCpu::default();
    let mut set = false;
    if r.cpu_shares != 0 {
        let shares = u64::try_from(r.cpu_shares).map_err(|_| SpecError::InvalidResource {
            field: "cpu_shares",
            value: r.cpu_shares,
        })?;
        c.set_shares(Some(shares));
        set = true;
    }
    if !r.cpuset_cpus.is_empty() {
        c.set_cpus(Some(r.cpuset_cpus.clone()));
        set = true;
    }
    if !r.cpuset_mems.is_empty() {
        c.set_mems(Some(r.cpuset_mems.clone()));
        set = true;
    }
    if r.nano_cpus != 0 {
        if r.cpu_quota != 0 || r.cpu_period != 0 {
            return Err(SpecError::ConflictingCpuLimits);
        }
        if r.nano_cpus < 0 {
            return Err(SpecError::InvalidResource {
                field: "nano_cpus",
                value: r.nano_cpus,
            });
        }
        let (quota, period) = cpu_quota_from_nano_cpus(r.nano_cpus)?;
        c.set_quota(Some(quota));
        c.set_period(Some(period));
        set = true;
    }
    if r.cpu_period != 0 {
        let period = u64::try_from(r.cpu_period).map_err(|_| SpecError::InvalidResource {
            field: "cpu_period",
            value: r.cpu_period,
        })?;
        c.set_period(Some(period));
        set = true;
    }
    if r.cpu_quota != 0 {
        c.set_quota(Some(r.cpu_quota));
        set = true;
    }
    Ok(set.then_some(c))
}

fn pids(r: &Resources) -> Option<LinuxPids> {
    r.pids_limit.map(|limit| {
        let mut p = LinuxPids::default();
        // Docker: zero or negative means unlimited, which runtimes spell -1
        p.set_limit(if limit <= 0 { -1 } else { limit });
        p
    })
}

fn block_io(r: &Resources) -> Option<LinuxBlockIo> {
    (r.blkio_weight != 0).then(|| {
        let mut b = LinuxBlockIo::default();
        b.set_weight(Some(r.blkio_weight));
        b
    })
}

/// The whole `linux.resources` section.
pub fn resources(
    r: &Resources,
    privileged: bool,
    devices: &[super::input::Device],
) -> Result<LinuxResources, SpecError> {
    let mut out = LinuxResources::default();
    out.set_devices(Some(if privileged {
        privileged_device_rules()
    } else {
        let mut rules = default_device_rules();
        for d in devices {
            let mut rule = oci_spec::runtime::LinuxDeviceCgroup::default();
            rule.set_allow(true);
            rule.set_typ(Some(if d.kind == 'b' {
                oci_spec::runtime::LinuxDeviceType::B
            } else {
                oci_spec::runtime::LinuxDeviceType::C
            }));
            rule.set_major(Some(d.major));
            rule.set_minor(Some(d.minor));
            rule.set_access(Some(d.permissions.clone()));
            rules.push(rule);
        }
        rules
    }));
    out.set_memory(memory(r));
    out.set_cpu(cpu(r)?);
    out.set_pids(pids(r));
    out.set_block_io(block_io(r));
    out.set_hugepage_limits(None);
    out.set_network(None);
    out.set_rdma(None);
    out.set_unified(None);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nano_cpus_quota_math() {
        assert_eq!(
            cpu_quota_from_nano_cpus(1_500_000_000).ok(),
            Some((150_000, 100_000))
        );
        assert_eq!(
            cpu_quota_from_nano_cpus(500_000_000).ok(),
            Some((50_000, 100_000))
        );
        assert_eq!(
            cpu_quota_from_nano_cpus(10_000_000).ok(),
            Some((1_000, 100_000))
        );
        assert_eq!(cpu_quota_from_nano_cpus(1).ok(), Some((0, 100_000)));
        assert!(cpu_quota_from_nano_cpus(i64::MAX).is_ok());
    }

    #[test]
    fn cpu_section() {
        let r = Resources {
            nano_cpus: 2_000_000_000,
            cpu_shares: 512,
            cpuset_cpus: "0-1".to_string(),
            ..Resources::default()
        };
        let c = cpu(&r).expect("valid").expect("set");
        assert_eq!(c.quota(), Some(200_000));
        assert_eq!(c.period(), Some(100_000));
        assert_eq!(c.shares(), Some(512));
        assert_eq!(c.cpus().as_deref(), Some("0-1"));
        assert_eq!(cpu(&Resources::default()).expect("valid"), None);

        let explicit = Resources {
            cpu_quota: 25_000,
            cpu_period: 50_000,
            ..Resources::default()
        };
        let c = cpu(&explicit).expect("valid").expect("set");
        assert_eq!((c.quota(), c.period()), (Some(25_000), Some(50_000)));
    }

    #[test]
    fn cpu_errors() {
        let conflicting = Resources {
            nano_cpus: 1_000_000_000,
            cpu_quota: 1000,
            ..Resources::default()
        };
        assert!(matches!(
            cpu(&conflicting),
            Err(SpecError::ConflictingCpuLimits)
        ));
        let negative = Resources {
            cpu_shares: -2,
            ..Resources::default()
        };
        assert!(matches!(
            cpu(&negative),
            Err(SpecError::InvalidResource {
                field: "cpu_shares",
                value: -2
            })
        ));
    }

    #[test]
    fn memory_section() {
        let r = Resources {
            memory: 64 << 20,
            memory_swap: -1,
            memory_reservation: 32 << 20,
            oom_kill_disable: true,
            ..Resources::default()
        };
        let m = memory(&r).expect("set");
        assert_eq!(m.limit(), Some(64 << 20));
        assert_eq!(m.swap(), Some(-1));
        assert_eq!(m.reservation(), Some(32 << 20));
        assert_eq!(m.disable_oom_killer(), Some(true));
        assert_eq!(memory(&Resources::default()), None);
        // negative values other than -1 swap are "unset", like Docker
        let r = Resources {
            memory: -5,
            memory_swap: -3,
            ..Resources::default()
        };
        assert_eq!(memory(&r), None);
    }

    #[test]
    fn pids_and_blkio() {
        let limit = |v| {
            pids(&Resources {
                pids_limit: v,
                ..Resources::default()
            })
            .map(|p| p.limit())
        };
        assert_eq!(limit(None), None);
        assert_eq!(limit(Some(0)), Some(-1));
        assert_eq!(limit(Some(-7)), Some(-1));
        assert_eq!(limit(Some(100)), Some(100));
        let r = Resources {
            blkio_weight: 300,
            ..Resources::default()
        };
        assert_eq!(block_io(&r).and_then(|b| b.weight()), Some(300));
        assert_eq!(block_io(&Resources::default()), None);
    }

    #[test]
    fn privileged_allows_all_devices() {
        let r = resources(&Resources::default(), true, &[]).expect("valid");
        let devices = r.devices().clone().unwrap_or_default();
        assert_eq!(devices.len(), 1);
        assert!(devices[0].allow());
        let r = resources(&Resources::default(), false, &[]).expect("valid");
        assert!(!r.devices().clone().unwrap_or_default()[0].allow());
    }

    #[test]
    fn an_added_device_is_allowed_with_its_permissions() {
        let d = super::super::input::Device {
            path: "/dev/xvda".into(),
            kind: 'b',
            major: 8,
            minor: 0,
            file_mode: 0o660,
            uid: 0,
            gid: 6,
            permissions: "rw".into(),
        };
        let r = resources(&Resources::default(), false, &[d]).expect("valid");
        let rules = r.devices().clone().unwrap_or_default();
        let last = rules.last().unwrap();
        assert!(last.allow());
        assert_eq!(last.typ(), Some(oci_spec::runtime::LinuxDeviceType::B));
        assert_eq!((last.major(), last.minor()), (Some(8), Some(0)));
        assert_eq!(last.access().as_deref(), Some("rw"));
        assert_eq!(rules.len(), default_device_rules().len() + 1);
    }
}
