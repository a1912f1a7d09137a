//! A container's resource limits as cgroup file writes, for v1 hierarchies and for the unified v2 one.
//!
//! [`writes`] is a pure function of the spec's `linux.resources` (unit-tested here, also for v2 on hosts
//! that only have v1); [`super::Cgroup`] writes the result into the container's cgroup before its init
//! joins it. The semantics are runc's: OCI values are v1 values, converted for v2 (`cpu.shares` to
//! `cpu.weight`, `memory.swap` as memory plus swap to `memory.swap.max` as swap alone, the blkio weight to
//! `io.weight`). Device rules are written to v1's `devices.allow`/`devices.deny`; v2 has no device files,
//! its rules are an eBPF program ([`super::devices`]).

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType, LinuxResources};

/// One write: the v1 controller whose hierarchy holds the file (`""` on v2), the file, the value.
pub type Write = (&'static str, &'static str, String);

/// The writes that give a new cgroup the limits in `r`, in an order the kernel accepts.
pub fn writes(v2: bool, r: &LinuxResources) -> Vec<Write> {
    let mut w = Vec::new();
    if let Some(c) = r.cpu() {
        let cpus = c.cpus().as_ref().filter(|s| !s.is_empty());
        let mems = c.mems().as_ref().filter(|s| !s.is_empty());
        let ctl = if v2 { "" } else { "cpuset" };
        if let Some(s) = cpus {
            w.push((ctl, "cpuset.cpus", s.clone()));
        }
        if let Some(s) = mems {
            w.push((ctl, "cpuset.mems", s.clone()));
        }
        if v2 {
            if let Some(s) = c.shares().filter(|s| *s > 0) {
                w.push(("", "cpu.weight", shares_to_weight(s).to_string()));
            }
            let quota = c.quota().filter(|q| *q != 0);
            let period = c.period().filter(|p| *p > 0);
            if quota.is_some() || period.is_some() {
                let q = match quota {
                    Some(q) if q > 0 => q.to_string(),
                    _ => "max".into(),
                };
                w.push(("", "cpu.max", format!("{q} {}", period.unwrap_or(100_000))));
            }
        } else {
            if let Some(s) = c.shares().filter(|s| *s > 0) {
                w.push(("cpu", "cpu.shares", s.to_string()));
            }
            // The period first: the kernel checks the quota against it.
            if let Some(p) = c.period().filter(|p| *p > 0) {
                w.push(("cpu", "cpu.cfs_period_us", p.to_string()));
            }
            if let Some(q) = c.quota().filter(|q| *q != 0) {
                w.push(("cpu", "cpu.cfs_quota_us", q.to_string()));
            }
            if let Some(p) = c.realtime_period().filter(|p| *p > 0) {
                w.push(("cpu", "cpu.rt_period_us", p.to_string()));
            }
            if let Some(q) = c.realtime_runtime().filter(|q| *q != 0) {
                w.push(("cpu", "cpu.rt_runtime_us", q.to_string()));
            }
        }
    }
    if let Some(m) = r.memory() {
        let limit = m.limit().filter(|l| *l != 0);
        let swap = m.swap().filter(|s| *s != 0);
        if v2 {
            if let Some(l) = limit {
                w.push(("", "memory.max", max_or(l)));
            }
            if let Some(s) = swap {
                // OCI's swap is memory plus swap; v2 limits swap alone.
                let v = match (s, limit) {
                    (-1, _) => "max".to_string(),
                    (s, Some(l)) if l > 0 && s >= l => (s - l).to_string(),
                    (s, _) => s.to_string(),
                };
                w.push(("", "memory.swap.max", v));
            }
            if let Some(r) = m.reservation().filter(|r| *r > 0) {
                w.push(("", "memory.low", r.to_string()));
            }
            if m.disable_oom_killer() == Some(true) {
                // v2 has no switch to turn the OOM killer off; kill the whole group or nothing instead.
                w.push(("", "memory.oom.group", "0".into()));
            }
        } else {
            // Each step must keep memory <= memory+swap: the new cgroup starts unlimited, so the memory
            // limit goes first.
            if let Some(l) = limit {
                w.push(("memory", "memory.limit_in_bytes", l.to_string()));
            }
            if let Some(s) = swap {
                w.push(("memory", "memory.memsw.limit_in_bytes", s.to_string()));
            }
            if let Some(r) = m.reservation().filter(|r| *r > 0) {
                w.push(("memory", "memory.soft_limit_in_bytes", r.to_string()));
            }
            if let Some(s) = m.swappiness().filter(|s| *s <= 100) {
                w.push(("memory", "memory.swappiness", s.to_string()));
            }
            if m.disable_oom_killer() == Some(true) {
                w.push(("memory", "memory.oom_control", "1".into()));
            }
        }
    }
    if let Some(p) = r.pids() {
        let v = if p.limit() > 0 {
            p.limit().to_string()
        } else {
            "max".into()
        };
        w.push((if v2 { "" } else { "pids" }, "pids.max", v));
    }
    if let Some(b) = r.block_io() {
        if let Some(weight) = b.weight().filter(|w| *w > 0) {
            if v2 {
                w.push(("", "io.weight", blkio_to_io_weight(weight).to_string()));
            } else {
                w.push(("blkio", "blkio.weight", weight.to_string()));
            }
        }
        if !v2 {
            for d in b.weight_device().iter().flatten() {
                if let Some(weight) = d.weight() {
                    w.push((
                        "blkio",
                        "blkio.weight_device",
                        format!("{}:{} {weight}", d.major(), d.minor()),
                    ));
                }
            }
        }
        let throttles = [
            (
                b.throttle_read_bps_device(),
                "blkio.throttle.read_bps_device",
                "rbps",
            ),
            (
                b.throttle_write_bps_device(),
                "blkio.throttle.write_bps_device",
                "wbps",
            ),
            (
                b.throttle_read_iops_device(),
                "blkio.throttle.read_iops_device",
                "riops",
            ),
            (
                b.throttle_write_iops_device(),
                "blkio.throttle.write_iops_device",
                "wiops",
            ),
        ];
        for (list, file, key) in throttles {
            for d in list.iter().flatten() {
                if v2 {
                    w.push((
                        "",
                        "io.max",
                        format!("{}:{} {key}={}", d.major(), d.minor(), d.rate()),
                    ));
                } else {
                    w.push((
                        "blkio",
                        file,
                        format!("{}:{} {}", d.major(), d.minor(), d.rate()),
                    ));
                }
            }
        }
    }
    for h in r.hugepage_limits().iter().flatten() {
        let file: &'static str = match (v2, h.page_size().as_str()) {
            (false, "2MB") => "hugetlb.2MB.limit_in_bytes",
            (false, "1GB") => "hugetlb.1GB.limit_in_bytes",
            (true, "2MB") => "hugetlb.2MB.max",
            (true, "1GB") => "hugetlb.1GB.max",
            _ => continue,
        };
        w.push((if v2 { "" } else { "hugetlb" }, file, h.limit().to_string()));
    }
    if !v2 {
        for d in r.devices().iter().flatten() {
            let file = if d.allow() {
                "devices.allow"
            } else {
                "devices.deny"
            };
            w.push(("devices", file, device_rule(d)));
        }
    }
    w
}

fn max_or(v: i64) -> String {
    if v < 0 {
        "max".into()
    } else {
        v.to_string()
    }
}

/// runc's conversion of v1 `cpu.shares` (2..262144) to v2 `cpu.weight` (1..10000).
fn shares_to_weight(shares: u64) -> u64 {
    1 + ((shares.clamp(2, 262_144) - 2) * 9999) / 262_142
}

/// runc's conversion of a v1 blkio weight (10..1000) to a v2 `io.weight` (1..10000).
fn blkio_to_io_weight(weight: u16) -> u64 {
    1 + (u64::from(weight.clamp(10, 1000)) - 10) * 9999 / 990
}

/// A v1 device rule: `c 1:3 rwm`, `a *:* rwm`.
fn device_rule(d: &LinuxDeviceCgroup) -> String {
    let typ = match d.typ() {
        Some(LinuxDeviceType::C) | Some(LinuxDeviceType::U) => "c",
        Some(LinuxDeviceType::B) => "b",
        Some(LinuxDeviceType::P) => "p",
        Some(LinuxDeviceType::A) | None => "a",
    };
    let num = |n: Option<i64>| n.map(|n| n.to_string()).unwrap_or_else(|| "*".into());
    let access = d.access().clone().unwrap_or_else(|| "rwm".into());
    format!("{typ} {}:{} {access}", num(d.major()), num(d.minor()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{
        LinuxBlockIoBuilder, LinuxCpuBuilder, LinuxDeviceCgroupBuilder, LinuxMemoryBuilder,
        LinuxPidsBuilder, LinuxResourcesBuilder,
    };

    fn resources() -> LinuxResources {
        LinuxResourcesBuilder::default()
            .memory(
                LinuxMemoryBuilder::default()
                    .limit(268_435_456)
                    .reservation(134_217_728)
                    .swap(536_870_912)
                    .build()
                    .unwrap(),
            )
            .cpu(
                LinuxCpuBuilder::default()
                    .shares(512u64)
                    .quota(150_000)
                    .period(100_000u64)
                    .cpus("0-1")
                    .build()
                    .unwrap(),
            )
            .pids(LinuxPidsBuilder::default().limit(100).build().unwrap())
            .block_io(
                LinuxBlockIoBuilder::default()
                    .weight(300u16)
                    .build()
                    .unwrap(),
            )
            .devices(vec![
                LinuxDeviceCgroupBuilder::default()
                    .allow(false)
                    .access("rwm")
                    .build()
                    .unwrap(),
                LinuxDeviceCgroupBuilder::default()
                    .allow(true)
                    .typ(LinuxDeviceType::C)
                    .major(1)
                    .minor(3)
                    .access("rwm")
                    .build()
                    .unwrap(),
                LinuxDeviceCgroupBuilder::default()
                    .allow(true)
                    .typ(LinuxDeviceType::C)
                    .major(136)
                    .access("rwm")
                    .build()
                    .unwrap(),
            ])
            .build()
            .unwrap()
    }

    fn show(w: &[Write]) -> Vec<String> {
        w.iter().map(|(c, f, v)| format!("{c}/{f}={v}")).collect()
    }

    #[test]
    fn v1_writes_follow_the_kernels_order() {
        assert_eq!(
            show(&writes(false, &resources())),
            [
                "cpuset/cpuset.cpus=0-1",
                "cpu/cpu.shares=512",
                "cpu/cpu.cfs_period_us=100000",
                "cpu/cpu.cfs_quota_us=150000",
                "memory/memory.limit_in_bytes=268435456",
                "memory/memory.memsw.limit_in_bytes=536870912",
                "memory/memory.soft_limit_in_bytes=134217728",
                "pids/pids.max=100",
                "blkio/blkio.weight=300",
                "devices/devices.deny=a *:* rwm",
                "devices/devices.allow=c 1:3 rwm",
                "devices/devices.allow=c 136:* rwm",
            ]
        );
    }

    #[test]
    fn v2_writes_convert_v1_values() {
        assert_eq!(
            show(&writes(true, &resources())),
            [
                "/cpuset.cpus=0-1",
                "/cpu.weight=20",
                "/cpu.max=150000 100000",
                "/memory.max=268435456",
                "/memory.swap.max=268435456",
                "/memory.low=134217728",
                "/pids.max=100",
                "/io.weight=2930",
            ]
        );
    }

    #[test]
    fn unlimited_values_read_max() {
        let r = LinuxResourcesBuilder::default()
            .memory(
                LinuxMemoryBuilder::default()
                    .limit(-1)
                    .swap(-1)
                    .build()
                    .unwrap(),
            )
            .pids(LinuxPidsBuilder::default().limit(-1).build().unwrap())
            .cpu(
                LinuxCpuBuilder::default()
                    .quota(-1)
                    .period(50_000u64)
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap();
        assert_eq!(
            show(&writes(true, &r)),
            [
                "/cpu.max=max 50000",
                "/memory.max=max",
                "/memory.swap.max=max",
                "/pids.max=max"
            ]
        );
        assert_eq!(
            show(&writes(false, &r)),
            [
                "cpu/cpu.cfs_period_us=50000",
                "cpu/cpu.cfs_quota_us=-1",
                "memory/memory.limit_in_bytes=-1",
                "memory/memory.memsw.limit_in_bytes=-1",
                "pids/pids.max=max"
            ]
        );
    }

    #[test]
    fn weights_convert_like_runc() {
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(blkio_to_io_weight(10), 1);
        assert_eq!(blkio_to_io_weight(1000), 10_000);
    }
}
