//! `rm`, `rename`, `container prune`.

use super::{create::valid_name, Status};
use crate::error::{EngineError, Result};
use crate::Engine;

impl Engine {
    /// Remove a container; a running one only with `force` (it is killed first). With `volumes`, its
    /// anonymous volumes go too (unless another container uses them).
    pub async fn remove(&self, name_or_id: &str, force: bool, volumes: bool) -> Result<()> {
        let h = self.lookup(name_or_id).await?;
        let _op = h.op.lock().await;
        let rec = h.record();
        match rec.state.status {
            Status::Running | Status::Paused | Status::Restarting if !force => {
                return Err(EngineError::Conflict(format!(
                    "cannot remove container \"{}\": container is running: stop the container before removing or force remove",
                    rec.name
                )));
            }
            Status::Running | Status::Paused | Status::Restarting => {
                let _ = self.stop_locked(&h, Some(0), Some("KILL".into())).await;
            }
            Status::Removing => return Ok(()),
            _ => {}
        }
        h.update(|r| r.state.status = Status::Removing);
        self.shim_gone(&h).await;
        // Its files go whole: not while the create is still making them (a failure there changes nothing).
        let root = self.dir_root(&h).await.ok().flatten();
        let cleanup = self.remove_files(&h.id, root, false).await?;
        if !cleanup.is_empty() {
            h.update(|r| r.state.status = Status::Dead);
            let _ = self.save(&h);
            return Err(EngineError::Internal(format!(
                "unable to remove filesystem for {}: {}",
                h.id,
                cleanup.join("; ")
            )));
        }
        self.inner.store.delete(&h.id)?;
        self.inner.containers.write().await.remove(&h.id);
        self.container_event(&h, "destroy", &[]);
        h.wait.send_modify(|w| w.removed = true);
        if volumes {
            let errors = self.remove_volumes_of(&rec).await;
            if !errors.is_empty() {
                return Err(EngineError::Internal(format!(
                    "container removed, but not all of its volumes: {}",
                    errors.join("; ")
                )));
            }
        }
        Ok(())
    }

    /// `--rm`: the container goes from the list (and its waiters are told) first, its files after, once its
    /// shim is done with them. Nothing here needs to be on disk at once: after a crash, start-up removes an
    /// auto-remove container that is not running, and the directories of containers it has no record of.
    pub(crate) async fn auto_remove(&self, h: &std::sync::Arc<super::Handle>) {
        let rec = {
            let _op = h.op.lock().await;
            let rec = h.record();
            // A start or a removal since the exit has the last word.
            if rec.state.status != Status::Exited && rec.state.status != Status::Created {
                return;
            }
            h.update(|r| r.state.status = Status::Removing);
            self.inner.containers.write().await.remove(&h.id);
            self.container_event(h, "destroy", &[]);
            h.wait.send_modify(|w| w.removed = true);
            // Its waiters first (a `run --rm` returns on this), its record in the store after: clients
            // see the containers of the list above. Should the record stay (a crash now, or a failure
            // here), start-up removes it, as it does every auto-remove container that is not running.
            if let Err(e) = self.inner.store.delete_with(&h.id, false) {
                tracing::warn!(id = %h.id, "remove the record of an auto-remove container: {e}");
            }
            rec
        };
        let errors = self.remove_volumes_of(&rec).await;
        if !errors.is_empty() {
            tracing::warn!(id = %h.id, "remove the volumes of an auto-remove container: {}", errors.join("; "));
        }
        self.shim_gone(h).await;
        let root = self.dir_root(h).await.ok().flatten();
        self.remove_files_in_background(&h.id, root).await;
    }

    /// [`Engine::remove_files`] where nobody waits for the answer: what fails is logged (start-up removes
    /// it later, as files with no record).
    async fn remove_files_in_background(
        &self,
        id: &str,
        root: Option<super::dir_pool::Root>,
    ) -> bool {
        let errors = match self.remove_files(id, root, true).await {
            Ok(errors) => errors,
            Err(e) => vec![e.to_string()],
        };
        if !errors.is_empty() {
            tracing::warn!(id = %id, "remove a container's files: {}", errors.join("; "));
        }
        errors.is_empty()
    }

    /// Removes the anonymous volumes of a removed container (those no other container uses); what could
    /// not be removed.
    async fn remove_volumes_of(&self, rec: &super::Record) -> Vec<String> {
        let names: Vec<String> = rec
            .mounts
            .iter()
            .filter(|m| m.kind == super::MountType::Volume)
            .map(|m| m.name.clone())
            .collect();
        self.remove_anonymous_volumes(&names).await
    }

    /// Unmounts a container's root and removes its directories; what could not be done. A directory that
    /// holds nothing of the container's own is kept for the next create instead (`dir_pool`), with its root
    /// still mounted if the daemon mounted it over `root` (an auto-remove container's, whose shim leaves it
    /// mounted). In the `background` (nobody waits for it) the removal of the directories runs at the
    /// lowest CPU priority, on a thread of its own (its priority dies with it).
    async fn remove_files(
        &self,
        id: &str,
        root: Option<super::dir_pool::Root>,
        background: bool,
    ) -> Result<Vec<String>> {
        let paths = self.paths(id);
        let rootfs = paths.dir.join("rootfs");
        let (dir, state) = (paths.dir.clone(), paths.state.clone());
        let (engine, id) = (self.clone(), id.to_string());
        let work = move || {
            let mut errors = Vec::new();
            // A directory that holds nothing of the container's own is kept for the next create: with the
            // root the daemon mounted still in it, or else unmounted.
            let kept_mounted =
                root.is_some_and(|r| engine.inner.dir_pool.give_mounted(&dir, &id, r));
            if !kept_mounted {
                if let Err(e) = berth_sys::mount::unmount(&rootfs) {
                    errors.push(e.to_string());
                }
            }
            if background {
                // After the unmount: nothing below takes a lock a start needs.
                let _ = berth_sys::process::set_thread_nice(berth_sys::process::LOWEST_NICE);
            }
            let kept = kept_mounted || (errors.is_empty() && engine.inner.dir_pool.give(&dir, &id));
            for d in [&dir, &state] {
                if kept && d == &dir {
                    continue;
                }
                if let Err(e) = std::fs::remove_dir_all(d) {
                    if e.kind() != std::io::ErrorKind::NotFound {
                        errors.push(format!("remove {}: {e}", d.display()));
                    }
                }
            }
            errors
        };
        if !background {
            return tokio::task::spawn_blocking(work)
                .await
                .map_err(EngineError::join);
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name("berth-rm".into())
            .spawn(move || {
                let _ = tx.send(work());
            })
            .map_err(|e| EngineError::io("start a clean-up thread", e))?;
        rx.await
            .map_err(|_| EngineError::Internal("the clean-up thread ended early".into()))
    }

    /// Start-up: removes the directories of containers that have no record (a crash between an
    /// auto-removed container's record and its files, or in the middle of a create).
    pub(crate) async fn remove_orphan_files(&self, known: &std::collections::HashSet<String>) {
        let mut orphans = Vec::new();
        for root in &self.container_roots() {
            for e in std::fs::read_dir(root).into_iter().flatten().flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let is_id = name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit());
                if is_id && !known.contains(&name) && !orphans.contains(&name) {
                    orphans.push(name);
                }
            }
        }
        for id in orphans {
            // A shim still answering belongs to a container being removed: it finishes on its own.
            if std::os::unix::net::UnixStream::connect(self.paths(&id).socket).is_ok() {
                continue;
            }
            if self.remove_files_in_background(&id, None).await {
                tracing::info!(id = %id, "removed the files of a container with no record");
            }
        }
    }

    pub async fn rename(&self, name_or_id: &str, new_name: &str) -> Result<()> {
        if !valid_name(new_name) {
            return Err(EngineError::Invalid(format!(
                "Invalid container name ({new_name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
            )));
        }
        let h = self.lookup(name_or_id).await?;
        let new = format!("/{}", new_name.trim_start_matches('/'));
        let map = self.inner.containers.write().await;
        if let Some(holder) = map.values().find(|o| o.record().name == new) {
            if holder.id == h.id {
                return Err(EngineError::Invalid(
                    "Renaming a container with the same name as its current name".into(),
                ));
            }
            return Err(EngineError::Conflict(format!(
                "Conflict. The container name \"{new}\" is already in use by container \"{}\". You have to remove (or rename) that container to be able to reuse that name.",
                holder.id
            )));
        }
        let old = h.update(|r| std::mem::replace(&mut r.name, new.clone()));
        if let Err(e) = self.save(&h) {
            h.update(|r| r.name = old);
            return Err(e);
        }
        drop(map);
        self.container_event(&h, "rename", &[("oldName", old)]);
        Ok(())
    }

    /// Remove every stopped container matching `labels` (`k` or `k=v`, all must match); returns ids and
    /// the space reclaimed.
    pub async fn prune_containers(&self, labels: &[String]) -> Result<(Vec<String>, u64)> {
        let candidates: Vec<_> = {
            let map = self.inner.containers.read().await;
            map.values()
                .map(|h| h.record())
                .filter(|r| {
                    matches!(
                        r.state.status,
                        Status::Exited | Status::Created | Status::Dead
                    )
                })
                .filter(|r| super::list::labels_match(&r.labels(), labels))
                .collect()
        };
        let mut removed = Vec::new();
        let mut space = 0;
        for r in candidates {
            let size = dir_size(&self.paths(&r.id).dir.join("upper"));
            if self.remove(&r.id, false, false).await.is_ok() {
                removed.push(r.id);
                space += size;
            }
        }
        self.inner
            .events
            .publish("container", "prune", "", Default::default());
        Ok((removed, space))
    }
}

/// Bytes used by regular files under `dir` (not following symlinks).
pub fn dir_size(dir: &std::path::Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let Ok(m) = e.metadata() else { continue };
            if m.is_dir() {
                stack.push(e.path());
            } else if m.is_file() {
                total += m.len();
            }
        }
    }
    total
}
