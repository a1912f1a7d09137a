//! `update`: change a container's resource limits and restart policy, live when it runs.
//!
//! The new limits are described first as cgroup file writes ([`cgroup_writes`], for v1 or v2, unit-tested on
//! fixture trees) and then written into the running container's cgroup; the record keeps them for the next
//! start and for inspect.

use super::Status;
use crate::error::{EngineError, Result};
use crate::Engine;
use bollard_stubs::models::HostConfig;
use std::path::{Path, PathBuf};

/// One write into the container's cgroup: (v1 controller or "" on v2, file, value).
pub type CgroupWrite = (&'static str, &'static str, String);

/// The limits of `u` as cgroup writes, in an order the kernel accepts (v1 checks memory <= memsw at each step,
/// so the combined limit is lifted first).
pub fn cgroup_writes(v2: bool, u: &HostConfig) -> Vec<CgroupWrite> {
    let mut w: Vec<CgroupWrite> = Vec::new();
    let mem = u.memory.filter(|m| *m > 0);
    let swap = u.memory_swap.filter(|s| *s != 0);
    if v2 {
        if let Some(m) = mem {
            w.push(("", "memory.max", m.to_string()));
            match swap {
                Some(-1) => w.push(("", "memory.swap.max", "max".into())),
                Some(s) if s >= m => w.push(("", "memory.swap.max", (s - m).to_string())),
                _ => {}
            }
        }
        if let Some(r) = u.memory_reservation.filter(|r| *r > 0) {
            w.push(("", "memory.low", r.to_string()));
        }
        if let Some(s) = u.cpu_shares.filter(|s| *s > 0) {
            let weight = 1 + ((s.clamp(2, 262144) - 2) * 9999) / 262142;
            w.push(("", "cpu.weight", weight.to_string()));
        }
        if let Some((q, p)) = cpu_quota(u) {
            let q = if q > 0 { q.to_string() } else { "max".into() };
            w.push(("", "cpu.max", format!("{q} {p}")));
        }
        if let Some(p) = u.pids_limit {
            w.push(("", "pids.max", pids(p)));
        }
        if let Some(c) = u.cpuset_cpus.as_ref().filter(|c| !c.is_empty()) {
            w.push(("", "cpuset.cpus", c.clone()));
        }
        if let Some(c) = u.cpuset_mems.as_ref().filter(|c| !c.is_empty()) {
            w.push(("", "cpuset.mems", c.clone()));
        }
    } else {
        if let Some(m) = mem {
            w.push(("memory", "memory.memsw.limit_in_bytes", "-1".into()));
            w.push(("memory", "memory.limit_in_bytes", m.to_string()));
            let memsw = match swap {
                Some(-1) => None,
                Some(s) => Some(s),
                // Docker's default: as much swap as memory.
                None => Some(m * 2),
            };
            if let Some(s) = memsw {
                w.push(("memory", "memory.memsw.limit_in_bytes", s.to_string()));
            }
        }
        if let Some(r) = u.memory_reservation.filter(|r| *r > 0) {
            w.push(("memory", "memory.soft_limit_in_bytes", r.to_string()));
        }
        if let Some(s) = u.cpu_shares.filter(|s| *s > 0) {
            w.push(("cpu", "cpu.shares", s.to_string()));
        }
        if let Some((q, p)) = cpu_quota(u) {
            w.push(("cpu", "cpu.cfs_period_us", p.to_string()));
            w.push((
                "cpu",
                "cpu.cfs_quota_us",
                if q > 0 { q.to_string() } else { "-1".into() },
            ));
        }
        if let Some(p) = u.pids_limit {
            w.push(("pids", "pids.max", pids(p)));
        }
        if let Some(c) = u.cpuset_cpus.as_ref().filter(|c| !c.is_empty()) {
            w.push(("cpuset", "cpuset.cpus", c.clone()));
        }
        if let Some(c) = u.cpuset_mems.as_ref().filter(|c| !c.is_empty()) {
            w.push(("cpuset", "cpuset.mems", c.clone()));
        }
        if let Some(b) = u.blkio_weight.filter(|b| *b > 0) {
            w.push(("blkio", "blkio.weight", b.to_string()));
        }
    }
    w
}

fn pids(p: i64) -> String {
    if p > 0 {
        p.to_string()
    } else {
        "max".into()
    }
}

/// (quota, period) in microseconds from `--cpus` or `--cpu-quota`/`--cpu-period`.
fn cpu_quota(u: &HostConfig) -> Option<(i64, i64)> {
    if let Some(n) = u.nano_cpus.filter(|n| *n > 0) {
        let period = 100_000;
        return Some((n * period / 1_000_000_000, period));
    }
    let q = u.cpu_quota.filter(|q| *q != 0);
    let p = u.cpu_period.filter(|p| *p > 0);
    match (q, p) {
        (None, None) => None,
        (q, p) => Some((q.unwrap_or(-1), p.unwrap_or(100_000))),
    }
}

/// Copy the fields `update` may change from `u` onto `hc`.
fn merge(hc: &mut HostConfig, u: &HostConfig) {
    macro_rules! take {
        ($($f:ident),*) => {$( if u.$f.is_some() { hc.$f = u.$f.clone(); } )*};
    }
    take!(
        memory,
        memory_swap,
        memory_reservation,
        cpu_shares,
        cpu_quota,
        cpu_period,
        cpuset_cpus,
        cpuset_mems,
        pids_limit,
        blkio_weight,
        restart_policy
    );
    if u.nano_cpus.is_some_and(|n| n > 0) {
        hc.nano_cpus = u.nano_cpus;
        hc.cpu_quota = None;
        hc.cpu_period = None;
    } else if u.cpu_quota.is_some() || u.cpu_period.is_some() {
        hc.nano_cpus = None;
    }
}

impl Engine {
    /// `update`: validate like create, write the new limits into a running container's cgroup, keep them.
    pub async fn update(&self, name_or_id: &str, u: HostConfig) -> Result<Vec<String>> {
        let h = self.lookup(name_or_id).await?;
        let _op = h.op.lock().await;
        let rec = h.record();
        if rec.host_config.auto_remove == Some(true) {
            let named = u
                .restart_policy
                .as_ref()
                .and_then(|p| serde_json::to_value(p.name).ok())
                .and_then(|v| v.as_str().map(str::to_string))
                .is_some_and(|n| !n.is_empty() && n != "no");
            if named {
                return Err(EngineError::Invalid(
                    "Restart policy cannot be updated because AutoRemove is enabled for the container".into(),
                ));
            }
        }
        let mut hc = rec.host_config.clone();
        merge(&mut hc, &u);
        if u.memory.is_some_and(|m| m > 0) && u.memory_swap.is_none() {
            hc.memory_swap = None;
        }
        super::create::validate_host_config(&mut hc)?;
        if matches!(
            rec.state.status,
            Status::Running | Status::Paused | Status::Restarting
        ) {
            let loc = crate::stats::CgroupLocation::new(
                &self.inner.cfg.cgroup_root,
                &self.inner.cfg.cgroup_parent,
                &h.id,
            );
            let writes = cgroup_writes(loc.v2, &u);
            let (root, rel) = (loc.root.clone(), loc.rel.clone());
            let v2 = loc.v2;
            tokio::task::spawn_blocking(move || apply(&root, &rel, v2, &writes))
                .await
                .map_err(EngineError::join)??;
        }
        h.update(|r| r.host_config = hc);
        self.save(&h)?;
        self.container_event(&h, "update", &[]);
        Ok(Vec::new())
    }
}

fn cgroup_file(root: &Path, rel: &str, v2: bool, controller: &str, file: &str) -> PathBuf {
    if v2 {
        root.join(rel).join(file)
    } else {
        root.join(controller).join(rel).join(file)
    }
}

/// Write the limits; a controller the host does not have (no swap accounting, no blkio) is skipped, any
/// other failure is reported with the file and value.
fn apply(root: &Path, rel: &str, v2: bool, writes: &[CgroupWrite]) -> Result<()> {
    for (controller, file, value) in writes {
        let p = cgroup_file(root, rel, v2, controller, file);
        if !p.exists() {
            tracing::debug!(file = %p.display(), "cgroup file missing: limit not supported here");
            continue;
        }
        std::fs::write(&p, value).map_err(|e| {
            EngineError::Invalid(format!(
                "Cannot update container: write {value} to {}: {e}",
                p.display()
            ))
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_writes_lift_memsw_first() {
        let u = HostConfig {
            memory: Some(64 << 20),
            nano_cpus: Some(1_500_000_000),
            pids_limit: Some(-1),
            cpu_shares: Some(512),
            ..Default::default()
        };
        let w = cgroup_writes(false, &u);
        let files: Vec<&str> = w.iter().map(|(_, f, _)| *f).collect();
        assert_eq!(
            files,
            vec![
                "memory.memsw.limit_in_bytes",
                "memory.limit_in_bytes",
                "memory.memsw.limit_in_bytes",
                "cpu.shares",
                "cpu.cfs_period_us",
                "cpu.cfs_quota_us",
                "pids.max"
            ]
        );
        assert_eq!(w[2].2, (128u64 << 20).to_string());
        assert_eq!(w[5].2, "150000");
        assert_eq!(w[6].2, "max");
    }

    #[test]
    fn v2_writes_on_a_fixture_tree() {
        let d = tempfile::tempdir().unwrap();
        let cg = d.path().join("berth/c1");
        std::fs::create_dir_all(&cg).unwrap();
        for f in [
            "memory.max",
            "memory.swap.max",
            "cpu.max",
            "cpu.weight",
            "pids.max",
        ] {
            std::fs::write(cg.join(f), "max").unwrap();
        }
        let u = HostConfig {
            memory: Some(100 << 20),
            memory_swap: Some(300 << 20),
            cpu_quota: Some(50_000),
            cpu_period: Some(100_000),
            cpu_shares: Some(1024),
            pids_limit: Some(42),
            ..Default::default()
        };
        apply(d.path(), "berth/c1", true, &cgroup_writes(true, &u)).unwrap();
        let r = |f: &str| std::fs::read_to_string(cg.join(f)).unwrap();
        assert_eq!(r("memory.max"), (100u64 << 20).to_string());
        assert_eq!(r("memory.swap.max"), (200u64 << 20).to_string());
        assert_eq!(r("cpu.max"), "50000 100000");
        assert_eq!(r("cpu.weight"), "39");
        assert_eq!(r("pids.max"), "42");
    }

    #[test]
    fn merge_keeps_unset_fields_and_replaces_cpu_forms() {
        let mut hc = HostConfig {
            memory: Some(1 << 30),
            cpu_quota: Some(10_000),
            ..Default::default()
        };
        merge(
            &mut hc,
            &HostConfig {
                nano_cpus: Some(500_000_000),
                ..Default::default()
            },
        );
        assert_eq!(hc.memory, Some(1 << 30));
        assert_eq!(hc.nano_cpus, Some(500_000_000));
        assert_eq!(hc.cpu_quota, None);
    }
}
