//! Hiding the kernel's cgroup-attach latency from execs on cgroup v2.
//!
//! Moving a process into a cgroup by writing `cgroup.procs` takes the global `cgroup_threadgroup_rwsem`
//! for writing; when no writer came by for a while the kernel first waits for an RCU grace period
//! (5-40 ms measured on this project's VMs) while holding the cgroup mutex, and writers arriving within
//! the next grace period pass straight through. Docker and Podman pay that wait on every start.
//!
//! berth's runtime never takes that path for a container's init: on v1 the init moves its one thread
//! through `tasks` (no global lock), on v2 it is cloned straight into its cgroup (`CLONE_INTO_CGROUP`);
//! see `berth_sys::container`. An exec on v1 moves by thread too. Only an exec on v2 writes `cgroup.procs`
//! ([`berth_sys::launch`]), so for it [`crate::Engine::warm_cgroup_attach`] starts the wait early, at exec
//! create and exec start, in parallel with the rest: it "moves" the daemon into the cgroup it is already
//! in, a no-op that takes the same lock. It must not run at container start: holding the cgroup mutex
//! for a grace period, it would stall the shim's `mkdir` of the container's cgroups.

use std::path::{Path, PathBuf};

/// The `cgroup.procs` of the cgroup a process is in, from its `/proc/<pid>/cgroup` text: on a v2 host
/// (`root` holds `cgroup.controllers`) the unified one, else the first v1 hierarchy mounted under `root`.
pub fn own_procs_file(root: &Path, proc_cgroup: &str, v2: bool) -> Option<PathBuf> {
    for line in proc_cgroup.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_id), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let rel = path.trim_start_matches('/');
        let dir = if v2 {
            if !controllers.is_empty() {
                continue;
            }
            root.join(rel)
        } else {
            if controllers.is_empty() || controllers.starts_with("name=") {
                continue;
            }
            let mount = root.join(controllers);
            if !mount.is_dir() {
                continue;
            }
            mount.join(rel)
        };
        let procs = dir.join("cgroup.procs");
        if procs.exists() {
            return Some(procs);
        }
    }
    None
}

impl crate::Engine {
    /// Whether the host's cgroups are v2 (unified), as the runtime sees them.
    pub(crate) fn cgroup_v2(&self) -> bool {
        static V2: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *V2.get_or_init(|| crate::system::cgroup_version(&self.inner.cfg.cgroup_root) == "2")
    }

    /// Starts the cgroup attach lock's grace period now (see the module docs); best effort, never fails
    /// a start. Returns at once; the write happens on a blocking thread.
    pub(crate) fn warm_cgroup_attach(&self) {
        static PROCS: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
        let cfg = &self.inner.cfg;
        let procs = PROCS.get_or_init(|| {
            let text = std::fs::read_to_string(cfg.proc_root.join("self/cgroup")).ok()?;
            own_procs_file(&cfg.cgroup_root, &text, self.cgroup_v2())
        });
        let Some(procs) = procs.clone() else {
            return;
        };
        tokio::task::spawn_blocking(move || {
            if let Err(e) = std::fs::write(&procs, std::process::id().to_string()) {
                tracing::debug!(path = %procs.display(), error = %e, "cgroup attach warm-up");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_picks_a_mounted_hierarchy_and_skips_named_ones() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("pids/system/berthd")).unwrap();
        std::fs::write(root.path().join("pids/system/berthd/cgroup.procs"), "").unwrap();
        let text = "12:name=systemd:/system/berthd\n11:cpu,cpuacct:/system/berthd\n5:pids:/system/berthd\n0::/system/berthd\n";
        assert_eq!(
            own_procs_file(root.path(), text, false),
            Some(root.path().join("pids/system/berthd/cgroup.procs"))
        );
    }

    #[test]
    fn v2_uses_the_unified_line() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("system.slice/berth.service")).unwrap();
        std::fs::write(
            root.path().join("system.slice/berth.service/cgroup.procs"),
            "",
        )
        .unwrap();
        assert_eq!(
            own_procs_file(root.path(), "0::/system.slice/berth.service\n", true),
            Some(root.path().join("system.slice/berth.service/cgroup.procs"))
        );
        assert_eq!(own_procs_file(root.path(), "0::/elsewhere\n", true), None);
        assert_eq!(own_procs_file(root.path(), "garbage", true), None);
    }
}
