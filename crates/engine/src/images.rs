//! Image operations, delegated to the image store on blocking threads, with events and the engine's rules
//! (an image a container uses is not deleted without force).

use crate::error::{EngineError, Result};
use crate::Engine;
use berth_image::{
    HistoryEntry, Image, ImageStore, ImportOptions, LoadedImage, PruneFilters, PruneReport,
    RemoveAction,
};
use std::collections::BTreeMap;
use std::io::{Read, Write};

impl Engine {
    /// Run `f` with the image store on a blocking thread.
    pub async fn images_blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&ImageStore) -> std::result::Result<T, berth_image::ImageError> + Send + 'static,
    ) -> Result<T> {
        let store = self.inner.images.clone();
        Ok(tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(EngineError::join)??)
    }

    /// Resolve an image by name or id; the embedded hello-world is made on first use.
    pub async fn resolve_image(&self, name: &str) -> Result<Image> {
        let n = name.to_string();
        match self.images_blocking(move |s| s.resolve(&n)).await {
            Ok(img) => Ok(img),
            Err(e) if e.kind() == crate::ErrorKind::NotFound && crate::hello::is_hello(name) => {
                let store = self.inner.images.clone();
                let img = tokio::task::spawn_blocking(move || crate::hello::seed(&store))
                    .await
                    .map_err(EngineError::join)??;
                self.image_event("load", &img.id, "hello-world:latest");
                Ok(img)
            }
            Err(e) => Err(e),
        }
    }

    pub async fn list_images(&self) -> Result<Vec<Image>> {
        self.images_blocking(|s| s.list()).await
    }

    pub async fn import_image(
        &self,
        reader: impl Read + Send + 'static,
        opts: ImportOptions,
    ) -> Result<Image> {
        let tag = opts
            .reference
            .as_ref()
            .map(|r| r.familiar())
            .unwrap_or_default();
        let img = self
            .images_blocking(move |s| s.import(reader, opts))
            .await?;
        self.image_event("import", &img.id, &tag);
        Ok(img)
    }

    /// Load a docker-archive or OCI layout tarball; `progress` gets Docker's "Loaded image: ..." lines.
    pub async fn load_images(
        &self,
        reader: impl Read + Send + 'static,
        progress: tokio::sync::mpsc::UnboundedSender<String>,
    ) -> Result<Vec<LoadedImage>> {
        let loaded = self
            .images_blocking(move |s| {
                s.load(reader, &mut |line: &str| {
                    let _ = progress.send(line.to_string());
                })
            })
            .await?;
        for l in &loaded {
            self.image_event(
                "load",
                &l.id,
                l.tags.first().map(String::as_str).unwrap_or(""),
            );
        }
        Ok(loaded)
    }

    pub async fn save_images(
        &self,
        names: Vec<String>,
        writer: impl Write + Send + 'static,
    ) -> Result<()> {
        for n in &names {
            self.resolve_image(n).await?;
        }
        let names2 = names.clone();
        self.images_blocking(move |s| s.save(&names2, writer))
            .await?;
        for n in &names {
            self.image_event("save", n, n);
        }
        Ok(())
    }

    pub async fn tag_image(&self, source: &str, target: &str) -> Result<()> {
        let img = self.resolve_image(source).await?;
        let (s, t) = (img.id.clone(), target.to_string());
        self.images_blocking(move |st| st.tag(&s, &t)).await?;
        self.image_event("tag", &img.id, target);
        Ok(())
    }

    pub async fn remove_image(
        &self,
        name: &str,
        force: bool,
        no_prune: bool,
    ) -> Result<Vec<RemoveAction>> {
        let img = self.resolve_image(name).await?;
        if let Some((cid, running)) = self.image_in_use(&img.id).await {
            let by_id = img
                .id
                .trim_start_matches("sha256:")
                .starts_with(name.trim_start_matches("sha256:"));
            // Docker: a running container's image cannot be deleted by id, not even with force.
            if running && by_id {
                return Err(EngineError::Conflict(format!(
                    "conflict: unable to delete {} (cannot be forced) - image is being used by running container {}",
                    short(&img.id),
                    &cid[..12]
                )));
            }
            if !force && (by_id || img.repo_tags.len() <= 1) {
                return Err(EngineError::Conflict(format!(
                    "conflict: unable to remove repository reference \"{name}\" (must force) - container {} is using its referenced image {}",
                    &cid[..12],
                    short(&img.id)
                )));
            }
        }
        let users: std::collections::HashSet<String> = {
            let map = self.inner.containers.read().await;
            map.values().map(|h| h.record().image_id).collect()
        };
        let n = name.to_string();
        let actions = self
            .images_blocking(move |s| s.remove(&n, force, no_prune, &|id: &str| users.contains(id)))
            .await?;
        if actions
            .iter()
            .any(|a| matches!(a, RemoveAction::Deleted(_)))
        {
            self.release_kept_roots().await;
        }
        for a in &actions {
            match a {
                RemoveAction::Untagged(r) => self.image_event("untag", &img.id, r),
                RemoveAction::Deleted(id) => self.image_event("delete", id, ""),
            }
        }
        Ok(actions)
    }

    pub async fn prune_images(&self, all: bool, filters: PruneFilters) -> Result<PruneReport> {
        let users: std::collections::HashSet<String> = {
            let map = self.inner.containers.read().await;
            map.values().map(|h| h.record().image_id).collect()
        };
        let report = self
            .images_blocking(move |s| s.prune(all, &filters, &|id: &str| users.contains(id)))
            .await?;
        self.release_kept_roots().await;
        self.inner
            .events
            .publish("image", "prune", "", BTreeMap::new());
        Ok(report)
    }

    /// Unmounts the roots kept mounted for the next `--rm` containers (`container::dir_pool`): an image
    /// was removed, and a kept mount would hold on to its layers' space.
    async fn release_kept_roots(&self) {
        let engine = self.clone();
        let _ = tokio::task::spawn_blocking(move || engine.inner.dir_pool.release_mounted()).await;
    }

    pub async fn image_history(&self, name: &str) -> Result<Vec<HistoryEntry>> {
        let img = self.resolve_image(name).await?;
        self.images_blocking(move |s| s.history(&img.id)).await
    }

    fn image_event(&self, action: &str, id: &str, name: &str) {
        let mut attrs = BTreeMap::new();
        if !name.is_empty() {
            attrs.insert("name".to_string(), name.to_string());
        }
        self.inner.events.publish("image", action, id, attrs);
    }
}

fn short(id: &str) -> String {
    id.trim_start_matches("sha256:").chars().take(12).collect()
}
