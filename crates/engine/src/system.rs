//! Facts for `info`, `version` and `system df`.

use crate::container::Status;
use crate::error::Result;
use crate::Engine;

/// Container counts by state and other daemon facts for `info`.
#[derive(Debug, Clone, Default)]
pub struct Info {
    pub containers: usize,
    pub running: usize,
    pub paused: usize,
    pub stopped: usize,
    pub images: usize,
    pub cgroup_version: &'static str,
    pub data_root: String,
    pub exec_root: String,
    pub daemon_id: String,
    /// What `docker info` prints at its end.
    pub warnings: Vec<String>,
}

/// Disk usage of images and containers.
#[derive(Debug, Clone, Default)]
pub struct DiskUsage {
    pub layers_size: u64,
    pub images: Vec<berth_image::Image>,
    /// (container record, bytes in its writable layer)
    pub containers: Vec<(crate::container::Record, u64)>,
}

impl Engine {
    pub async fn info(&self) -> Result<Info> {
        let recs: Vec<_> = self
            .inner
            .containers
            .read()
            .await
            .values()
            .map(|h| h.record())
            .collect();
        let images = self.list_images().await?.len();
        let count = |s: Status| recs.iter().filter(|r| r.state.status == s).count();
        let running = count(Status::Running);
        let paused = count(Status::Paused);
        Ok(Info {
            containers: recs.len(),
            running,
            paused,
            stopped: recs.len() - running - paused,
            images,
            cgroup_version: cgroup_version(&self.inner.cfg.cgroup_root),
            data_root: self.inner.cfg.data_root.display().to_string(),
            exec_root: self.inner.cfg.exec_root.display().to_string(),
            daemon_id: self.inner.cfg.daemon_id.clone(),
            warnings: if self.inner.net.cfg.bridge == "none" {
                vec!["the default bridge network is disabled (\"bridge\": \"none\"): containers default to --network none".into()]
            } else {
                Vec::new()
            },
        })
    }

    pub async fn disk_usage(&self) -> Result<DiskUsage> {
        let images = self.list_images().await?;
        let layers_size = self.images_blocking(|s| s.disk_usage()).await?;
        let recs: Vec<_> = self
            .inner
            .containers
            .read()
            .await
            .values()
            .map(|h| h.record())
            .collect();
        let mut containers = Vec::new();
        for r in recs {
            let size = crate::container::remove_dir_size(&self.paths(&r.id).dir.join("upper"));
            containers.push((r, size));
        }
        Ok(DiskUsage {
            layers_size,
            images,
            containers,
        })
    }

    pub fn started_at(&self) -> chrono::DateTime<chrono::Utc> {
        self.inner.started_at
    }
}

/// "2" on a pure cgroup v2 host (cgroup2 at the root), "1" otherwise (v1 or hybrid).
pub fn cgroup_version(root: &std::path::Path) -> &'static str {
    if root.join("cgroup.controllers").exists() {
        "2"
    } else {
        "1"
    }
}
