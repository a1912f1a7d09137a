//! Volumes: named and anonymous data directories that outlive containers (Docker's `local` driver).
//!
//! A volume lives at `<data-root>/volumes/<name>/_data`; its record (driver, labels, options, creation time)
//! is one JSON value in the redb table `berth.volumes` (schema 1, keyed by name). Anonymous volumes (from an
//! image's `VOLUME`, `-v /path`, or `--mount type=volume` without a source) carry Docker's label
//! `com.docker.volume.anonymous`; `rm -v`, `run --rm` and a plain `volume prune` remove only those.
//!
//! Driver options follow the local driver: `type`, `device`, `o` — e.g. `type=tmpfs,device=tmpfs,o=size=64m`
//! or `type=none,o=bind,device=/srv/data`. Such a volume is mounted on its `_data` directory when a container
//! first uses it and stays mounted until the volume is removed. Which containers use a volume is computed from
//! the container records, never stored twice.

use crate::error::{EngineError, Result};
use crate::Engine;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const VOLUMES: TableDefinition<&str, &[u8]> = TableDefinition::new("berth.volumes");

/// Docker's label on volumes created implicitly for a container.
pub const ANONYMOUS_LABEL: &str = "com.docker.volume.anonymous";

/// A volume's record, in Docker's `Volume` shape (minus the computed `Mountpoint`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(default)]
pub struct Volume {
    pub name: String,
    pub driver: String,
    pub created_at: String,
    pub labels: BTreeMap<String, String>,
    pub options: BTreeMap<String, String>,
}

impl Volume {
    pub fn anonymous(&self) -> bool {
        self.labels.contains_key(ANONYMOUS_LABEL)
    }
}

/// What `volume create` asks for.
#[derive(Debug, Clone, Default)]
pub struct CreateVolume {
    pub name: Option<String>,
    pub driver: Option<String>,
    pub driver_opts: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
}

/// Filters of `volume ls` and `volume prune`.
#[derive(Debug, Clone, Default)]
pub struct VolumeFilters {
    /// `dangling=true|false`: used by no container (or used).
    pub dangling: Option<bool>,
    /// `name=`: substring match, any of them.
    pub name: Vec<String>,
    /// `label=k` or `label=k=v`, all must match.
    pub label: Vec<String>,
    /// `driver=`.
    pub driver: Vec<String>,
}

#[derive(Clone)]
pub struct VolumeStore {
    db: Arc<Database>,
    root: PathBuf,
}

impl VolumeStore {
    pub fn open(db: Arc<Database>, root: PathBuf) -> Result<Self> {
        std::fs::create_dir_all(&root)
            .map_err(|e| EngineError::io(format!("create {}", root.display()), e))?;
        let tx = db.begin_write().map_err(EngineError::db)?;
        tx.open_table(VOLUMES).map_err(EngineError::db)?;
        tx.commit().map_err(EngineError::db)?;
        Ok(VolumeStore { db, root })
    }

    pub fn dir(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    pub fn data(&self, name: &str) -> PathBuf {
        self.root.join(name).join("_data")
    }

    pub fn get(&self, name: &str) -> Result<Option<Volume>> {
        let tx = self.db.begin_read().map_err(EngineError::db)?;
        let t = tx.open_table(VOLUMES).map_err(EngineError::db)?;
        let v = t.get(name).map_err(EngineError::db)?;
        Ok(v.and_then(|v| serde_json::from_slice(v.value()).ok()))
    }

    fn put(&self, v: &Volume) -> Result<()> {
        let json = serde_json::to_vec(v)
            .map_err(|e| EngineError::Internal(format!("encode volume: {e}")))?;
        let tx = self.db.begin_write().map_err(EngineError::db)?;
        {
            let mut t = tx.open_table(VOLUMES).map_err(EngineError::db)?;
            t.insert(v.name.as_str(), json.as_slice())
                .map_err(EngineError::db)?;
        }
        tx.commit().map_err(EngineError::db)
    }

    fn delete(&self, name: &str) -> Result<()> {
        let tx = self.db.begin_write().map_err(EngineError::db)?;
        {
            let mut t = tx.open_table(VOLUMES).map_err(EngineError::db)?;
            t.remove(name).map_err(EngineError::db)?;
        }
        tx.commit().map_err(EngineError::db)
    }

    pub fn all(&self) -> Result<Vec<Volume>> {
        let tx = self.db.begin_read().map_err(EngineError::db)?;
        let t = tx.open_table(VOLUMES).map_err(EngineError::db)?;
        let mut out = Vec::new();
        for item in t.iter().map_err(EngineError::db)? {
            let (_, v) = item.map_err(EngineError::db)?;
            if let Ok(v) = serde_json::from_slice::<Volume>(v.value()) {
                out.push(v);
            }
        }
        Ok(out)
    }
}

/// Docker's rule for local volume names.
pub fn valid_volume_name(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() >= 2
        && b[0].is_ascii_alphanumeric()
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

fn check_options(opts: &BTreeMap<String, String>) -> Result<()> {
    for k in opts.keys() {
        match k.as_str() {
            "type" | "device" | "o" => {}
            "size" => {
                return Err(EngineError::Invalid(
                    "quota size requested but no quota support".into(),
                ))
            }
            _ => return Err(EngineError::Invalid(format!("invalid option key: {k:?}"))),
        }
    }
    let has = |k: &str| opts.get(k).is_some_and(|v| !v.is_empty());
    if (has("type") || has("o")) && !has("device") {
        return Err(EngineError::Invalid(
            "missing required option: \"device\"".into(),
        ));
    }
    Ok(())
}

impl Engine {
    /// `volume create`: a new volume, or the existing one of that name (Docker's create is idempotent).
    pub async fn volume_create(&self, req: CreateVolume) -> Result<Volume> {
        let driver = req
            .driver
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| "local".into());
        if driver != "local" {
            return Err(EngineError::NotFoundMsg(format!(
                "error looking up volume plugin {driver}: plugin \"{driver}\" not found"
            )));
        }
        let name = match req.name.filter(|n| !n.is_empty()) {
            Some(n) => {
                if !valid_volume_name(&n) {
                    return Err(EngineError::Invalid(format!(
                        "create {n}: \"{n}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
                    )));
                }
                n
            }
            None => super::container::new_id(),
        };
        check_options(&req.driver_opts)?;
        let _guard = self.inner.volume_lock.lock().await;
        let vs = self.inner.volumes.clone();
        if let Some(existing) = vs.get(&name)? {
            return Ok(existing);
        }
        let v = Volume {
            name: name.clone(),
            driver,
            created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            labels: req.labels,
            options: req.driver_opts,
        };
        let data = vs.data(&name);
        std::fs::create_dir_all(&data)
            .map_err(|e| EngineError::io(format!("create volume {}", data.display()), e))?;
        if let Err(e) = vs.put(&v) {
            let _ = std::fs::remove_dir_all(vs.dir(&name));
            return Err(e);
        }
        self.volume_event(&v, "create");
        Ok(v)
    }

    pub async fn volume_inspect(&self, name: &str) -> Result<Volume> {
        self.inner
            .volumes
            .get(name)?
            .ok_or_else(|| EngineError::NoSuchVolume(name.to_string()))
    }

    /// Where a volume's data is on the host (Docker's `Mountpoint`).
    pub fn volume_mountpoint(&self, name: &str) -> PathBuf {
        self.inner.volumes.data(name)
    }

    /// Ids of the containers (any state) that mount volume `name`.
    pub async fn volume_users(&self, name: &str) -> Vec<String> {
        self.inner
            .containers
            .read()
            .await
            .values()
            .filter(|h| {
                h.record()
                    .mounts
                    .iter()
                    .any(|m| m.kind == crate::container::MountType::Volume && m.name == name)
            })
            .map(|h| h.id.clone())
            .collect()
    }

    pub async fn volume_list(&self, f: &VolumeFilters) -> Result<Vec<Volume>> {
        let mut out = Vec::new();
        for v in self.inner.volumes.all()? {
            if !f.name.is_empty() && !f.name.iter().any(|n| v.name.contains(n.as_str())) {
                continue;
            }
            if !f.driver.is_empty() && !f.driver.contains(&v.driver) {
                continue;
            }
            if !crate::container::list::labels_match(&v.labels, &f.label) {
                continue;
            }
            if let Some(d) = f.dangling {
                let used = !self.volume_users(&v.name).await.is_empty();
                if d == used {
                    continue;
                }
            }
            out.push(v);
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// `volume rm`: refused while a container uses it; `force` only forgives a missing volume.
    pub async fn volume_remove(&self, name: &str, force: bool) -> Result<()> {
        let _guard = self.inner.volume_lock.lock().await;
        let Some(v) = self.inner.volumes.get(name)? else {
            return if force {
                Ok(())
            } else {
                Err(EngineError::NoSuchVolume(name.to_string()))
            };
        };
        let users = self.volume_users(name).await;
        if !users.is_empty() {
            return Err(EngineError::Conflict(format!(
                "remove {name}: volume is in use - [{}]",
                users.join(", ")
            )));
        }
        self.remove_volume_files(&v).await?;
        self.volume_event(&v, "destroy");
        Ok(())
    }

    async fn remove_volume_files(&self, v: &Volume) -> Result<()> {
        let vs = self.inner.volumes.clone();
        let name = v.name.clone();
        tokio::task::spawn_blocking(move || -> Result<()> {
            let data = vs.data(&name);
            if berth_sys::mount::is_mounted(&data) {
                berth_sys::mount::unmount(&data)
                    .map_err(|e| EngineError::Internal(format!("remove {name}: {e}")))?;
            }
            // The record goes first: a crash after it leaves an orphan directory, never a record without data.
            vs.delete(&name)?;
            match std::fs::remove_dir_all(vs.dir(&name)) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(EngineError::io(format!("remove volume {name}"), e)),
            }
        })
        .await
        .map_err(EngineError::join)?
    }

    /// `volume prune`: unused volumes matching the filters; anonymous ones only unless `all`.
    pub async fn volume_prune(&self, all: bool, labels: &[String]) -> Result<(Vec<String>, u64)> {
        let f = VolumeFilters {
            dangling: Some(true),
            label: labels.to_vec(),
            ..Default::default()
        };
        let mut removed = Vec::new();
        let mut space = 0;
        for v in self.volume_list(&f).await? {
            if !all && !v.anonymous() {
                continue;
            }
            let size = crate::container::remove_dir_size(&self.inner.volumes.data(&v.name));
            if self.volume_remove(&v.name, false).await.is_ok() {
                removed.push(v.name);
                space += size;
            }
        }
        Ok((removed, space))
    }

    /// Sizes and reference counts for `system df`: (volume, bytes, containers using it).
    pub async fn volume_usage(&self) -> Result<Vec<(Volume, u64, usize)>> {
        let mut out = Vec::new();
        for v in self.inner.volumes.all()? {
            let size = crate::container::remove_dir_size(&self.inner.volumes.data(&v.name));
            let users = self.volume_users(&v.name).await.len();
            out.push((v, size, users));
        }
        Ok(out)
    }

    /// Make a volume ready to be bind-mounted into a container: mount its driver options on `_data` if it has
    /// any and is not mounted yet. Returns the host directory.
    pub(crate) fn prepare_volume(&self, name: &str) -> Result<PathBuf> {
        let vs = &self.inner.volumes;
        let v = vs
            .get(name)?
            .ok_or_else(|| EngineError::NoSuchVolume(name.to_string()))?;
        let data = vs.data(name);
        std::fs::create_dir_all(&data)
            .map_err(|e| EngineError::io(format!("create volume {}", data.display()), e))?;
        let device = v.options.get("device").cloned().unwrap_or_default();
        if device.is_empty() || berth_sys::mount::is_mounted(&data) {
            return Ok(data);
        }
        let fstype = v.options.get("type").cloned().unwrap_or_default();
        let o = v.options.get("o").cloned().unwrap_or_default();
        if o.split(',').any(|x| x == "bind" || x == "rbind") && !Path::new(&device).exists() {
            return Err(EngineError::Invalid(format!(
                "error while mounting volume '{}': failed to mount local volume: mount {device}:{}, flags: 0x1000: no such file or directory",
                data.display(),
                data.display()
            )));
        }
        berth_sys::mount::mount_fs(&device, &data, &fstype, &o).map_err(|e| {
            EngineError::Invalid(format!(
                "error while mounting volume '{}': failed to mount local volume: {e}",
                data.display()
            ))
        })?;
        Ok(data)
    }

    /// Get a volume by name for a container, creating it (named or anonymous) when missing.
    pub(crate) async fn volume_for_container(
        &self,
        name: Option<&str>,
        driver_opts: BTreeMap<String, String>,
        labels: BTreeMap<String, String>,
    ) -> Result<(Volume, bool)> {
        if let Some(n) = name {
            if let Some(v) = self.inner.volumes.get(n)? {
                return Ok((v, false));
            }
        }
        let mut labels = labels;
        if name.is_none() {
            labels.insert(ANONYMOUS_LABEL.into(), String::new());
        }
        let v = self
            .volume_create(CreateVolume {
                name: name.map(str::to_string),
                driver: None,
                driver_opts,
                labels,
            })
            .await?;
        Ok((v, true))
    }

    /// Remove the anonymous volumes a removed container used, unless another container still uses them
    /// (`rm -v`, `run --rm`). Returns the failures, as teardown keeps going.
    pub(crate) async fn remove_anonymous_volumes(&self, names: &[String]) -> Vec<String> {
        let mut errors = Vec::new();
        for n in names {
            match self.inner.volumes.get(n) {
                Ok(Some(v)) if v.anonymous() => {
                    if !self.volume_users(n).await.is_empty() {
                        continue;
                    }
                    if let Err(e) = self.volume_remove(n, true).await {
                        errors.push(e.to_string());
                    }
                }
                Ok(_) => {}
                Err(e) => errors.push(e.to_string()),
            }
        }
        errors
    }

    fn volume_event(&self, v: &Volume, action: &str) {
        let mut attrs = BTreeMap::new();
        attrs.insert("driver".to_string(), v.driver.clone());
        self.inner.events.publish("volume", action, &v.name, attrs);
    }

    /// Events for a container's volume mounts (`mount` on start, `unmount` on stop), like Docker.
    pub(crate) fn volume_mount_events(&self, rec: &crate::container::Record, action: &str) {
        for m in &rec.mounts {
            if m.kind != crate::container::MountType::Volume {
                continue;
            }
            let mut attrs = BTreeMap::new();
            attrs.insert("container".to_string(), rec.id.clone());
            attrs.insert("driver".to_string(), m.driver.clone());
            if action == "mount" {
                attrs.insert("destination".to_string(), m.destination.clone());
                attrs.insert("read/write".to_string(), m.rw.to_string());
                attrs.insert("propagation".to_string(), m.propagation.clone());
            }
            self.inner.events.publish("volume", action, &m.name, attrs);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_names_follow_docker_rule() {
        assert!(valid_volume_name("data"));
        assert!(valid_volume_name("a1_b.c-d"));
        assert!(!valid_volume_name("a"));
        assert!(!valid_volume_name("-data"));
        assert!(!valid_volume_name("da/ta"));
        assert!(!valid_volume_name("/abs"));
    }

    #[test]
    fn driver_options_are_checked() {
        let o = |kv: &[(&str, &str)]| {
            kv.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>()
        };
        assert!(check_options(&o(&[])).is_ok());
        assert!(check_options(&o(&[
            ("type", "tmpfs"),
            ("device", "tmpfs"),
            ("o", "size=1m")
        ]))
        .is_ok());
        assert_eq!(
            check_options(&o(&[("foo", "x")])).unwrap_err().to_string(),
            "invalid option key: \"foo\""
        );
        assert!(check_options(&o(&[("type", "tmpfs")]))
            .unwrap_err()
            .to_string()
            .contains("device"));
    }

    #[test]
    fn store_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(redb::Database::create(dir.path().join("m.redb")).unwrap());
        let s = VolumeStore::open(db, dir.path().join("volumes")).unwrap();
        let v = Volume {
            name: "data".into(),
            driver: "local".into(),
            ..Default::default()
        };
        s.put(&v).unwrap();
        assert_eq!(s.get("data").unwrap(), Some(v.clone()));
        assert_eq!(s.all().unwrap(), vec![v]);
        s.delete("data").unwrap();
        assert_eq!(s.get("data").unwrap(), None);
        assert_eq!(s.data("x"), dir.path().join("volumes/x/_data"));
    }
}
