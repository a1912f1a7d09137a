//! `docker rmi`, `docker image prune`, and the garbage collector behind them.
//!
//! Removal only edits metadata (untag, delete the image record) in one transaction; disk space is
//! then reclaimed by GC, which computes the live set (config, manifest and layer blobs and the
//! chain ids of every recorded image), adds what in-flight operations lease, and deletes
//! everything else: blobs, snapshot directories (renamed to `.del-` first, then removed) and
//! snapshot records. Shared layers therefore stay until their last image goes.

use std::collections::HashSet;

use crate::config::ImageConfig;
use crate::content::short_id;
use crate::error::ImageError;
use crate::meta::{MetaRead, MetaTxn};
use crate::reference::Reference;
use crate::snapshot::{chain_ids, remove_doomed};
use crate::store::{
    is_image_id_prefix, resolve_id, ImageStore, PruneFilters, PruneReport, RemoveAction,
};

/// What a GC pass removed.
#[derive(Debug, Default)]
pub(crate) struct GcReport {
    pub(crate) bytes: u64,
    pub(crate) snapshots: Vec<String>,
}

/// Whether all references are in one repository with at most one tag (Docker's rule for
/// removing an image by id without force).
fn is_single_reference(refs: &[String]) -> bool {
    let parsed: Vec<Reference> = refs
        .iter()
        .filter_map(|r| Reference::parse_named(r).ok())
        .collect();
    let tags = parsed.iter().filter(|r| r.digest().is_none()).count();
    let mut repos: Vec<String> = parsed.iter().map(Reference::repository).collect();
    repos.sort();
    repos.dedup();
    tags <= 1 && repos.len() <= 1
}

fn has_children(t: &impl MetaRead, id: &str) -> Result<bool, ImageError> {
    Ok(t.images()?.iter().any(|(_, rec)| rec.parent == id))
}

fn label_matches(config: &ImageConfig, filter: &str) -> bool {
    let labels = config.config.labels.as_ref();
    match filter.split_once('=') {
        Some((k, v)) => labels.and_then(|l| l.get(k)).is_some_and(|x| x == v),
        None => labels.is_some_and(|l| l.contains_key(filter)),
    }
}

impl ImageStore {
    /// Removes a name or an image, as `docker rmi` does. `in_use(id)` tells whether a container
    /// uses an image. Forcing the removal of an image a container uses untags it but keeps it
    /// (a container's layers are never deleted under it).
    pub fn remove(
        &self,
        name_or_id: &str,
        force: bool,
        no_prune: bool,
        in_use: &dyn Fn(&str) -> bool,
    ) -> Result<Vec<RemoveAction>, ImageError> {
        let (mut actions, deleted) = self.inner.meta.update(|t| {
            let mut actions = Vec::new();
            let id = resolve_id(t, name_or_id)?;
            let delete = self.remove_in(t, &id, name_or_id, force, in_use, &mut actions)?;
            let mut deleted = Vec::new();
            if delete {
                let rec = t.image(&id)?;
                t.remove_image(&id)?;
                actions.push(RemoveAction::Deleted(id.clone()));
                deleted.push(id.clone());
                let mut parent = rec.map(|r| r.parent).unwrap_or_default();
                while !no_prune && !parent.is_empty() {
                    let Some(prec) = t.image(&parent)? else { break };
                    if !t.tags_of(&parent)?.is_empty()
                        || in_use(&parent)
                        || has_children(t, &parent)?
                    {
                        break;
                    }
                    t.remove_image(&parent)?;
                    actions.push(RemoveAction::Deleted(parent.clone()));
                    deleted.push(parent.clone());
                    parent = prec.parent;
                }
            }
            Ok::<_, ImageError>((actions, deleted))
        })?;
        if !deleted.is_empty() {
            let mut chains: HashSet<String> = HashSet::new();
            for id in &deleted {
                if let Ok(c) = self.config(id) {
                    chains.extend(chain_ids(&c.rootfs.diff_ids));
                }
            }
            for id in &deleted {
                self.forget_config(id);
            }
            let report = self.gc()?;
            for c in report.snapshots {
                if chains.contains(&c) {
                    actions.push(RemoveAction::Deleted(c));
                }
            }
        }
        Ok(actions)
    }

    /// Untags per Docker's rules; returns whether the image record should be deleted.
    fn remove_in(
        &self,
        t: &MetaTxn<'_>,
        id: &str,
        name: &str,
        force: bool,
        in_use: &dyn Fn(&str) -> bool,
        actions: &mut Vec<RemoveAction>,
    ) -> Result<bool, ImageError> {
        let refs = t.tags_of(id)?;
        if !is_image_id_prefix(id, name) {
            let reference = Reference::parse(name)?;
            if t.tag(&reference.full())?.as_deref() == Some(id) {
                if !force && is_single_reference(&refs) && in_use(id) {
                    return Err(ImageError::ImageInUse {
                        image: reference.familiar(),
                    });
                }
                t.remove_tag(&reference.full())?;
                actions.push(RemoveAction::Untagged(reference.familiar()));
                // With the last tag of a repository gone, its digest references go too.
                if reference.digest().is_none() {
                    let remaining: Vec<Reference> = t
                        .tags_of(id)?
                        .iter()
                        .filter_map(|r| Reference::parse_named(r).ok())
                        .filter(|r| r.repository() == reference.repository())
                        .collect();
                    if remaining.iter().all(|r| r.digest().is_some()) {
                        for r in remaining {
                            t.remove_tag(&r.full())?;
                            actions.push(RemoveAction::Untagged(r.familiar()));
                        }
                    }
                }
                if !t.tags_of(id)?.is_empty() {
                    return Ok(false);
                }
                // The last name is gone: delete unless that would break something (quietly kept).
                return Ok(!in_use(id) && !has_children(t, id)?);
            }
            // Resolved without a stored reference (e.g. name@manifest-digest): remove by id.
        }
        if has_children(t, id)? {
            return Err(ImageError::HasChildren {
                image: short_id(id),
            });
        }
        if !force && !is_single_reference(&refs) {
            return Err(ImageError::MultipleRepositories {
                image: short_id(id),
            });
        }
        if in_use(id) && !force {
            return Err(ImageError::ImageInUse {
                image: short_id(id),
            });
        }
        for r in &refs {
            t.remove_tag(r)?;
            let shown = Reference::parse_named(r)
                .map(|x| x.familiar())
                .unwrap_or_else(|_| r.clone());
            actions.push(RemoveAction::Untagged(shown));
        }
        Ok(!in_use(id))
    }

    /// Removes dangling images (or every unused image with `all`) matching `filters`.
    pub fn prune(
        &self,
        all: bool,
        filters: &PruneFilters,
        in_use: &dyn Fn(&str) -> bool,
    ) -> Result<PruneReport, ImageError> {
        let deleted = self.inner.meta.update(|t| {
            let mut actions = Vec::new();
            let images = t.images()?;
            for (id, rec) in &images {
                let refs = t.tags_of(id)?;
                if (!all && !refs.is_empty()) || in_use(id) {
                    continue;
                }
                if images.iter().any(|(_, other)| &other.parent == id) {
                    continue;
                }
                let config = self.config(id)?;
                if let Some(until) = filters.until {
                    let created = config.created_time().unwrap_or(rec.created);
                    if created >= until {
                        continue;
                    }
                }
                if !filters.label.iter().all(|f| label_matches(&config, f))
                    || filters.label_not.iter().any(|f| label_matches(&config, f))
                {
                    continue;
                }
                for r in &refs {
                    t.remove_tag(r)?;
                    let shown = Reference::parse_named(r)
                        .map(|x| x.familiar())
                        .unwrap_or_else(|_| r.clone());
                    actions.push(RemoveAction::Untagged(shown));
                }
                t.remove_image(id)?;
                actions.push(RemoveAction::Deleted(id.clone()));
            }
            Ok::<_, ImageError>(actions)
        })?;
        let mut report = PruneReport {
            deleted,
            space_reclaimed: 0,
        };
        if !report.deleted.is_empty() {
            for a in &report.deleted {
                if let RemoveAction::Deleted(id) = a {
                    self.forget_config(id);
                }
            }
            let gc = self.gc()?;
            report.space_reclaimed = gc.bytes;
            report
                .deleted
                .extend(gc.snapshots.into_iter().map(RemoveAction::Deleted));
        }
        Ok(report)
    }

    /// Deletes every blob and snapshot no image references and no operation leases.
    pub(crate) fn gc(&self) -> Result<GcReport, ImageError> {
        let mut report = GcReport::default();
        let mut doomed = Vec::new();
        {
            let leased = self.inner.leases.lock();
            let r = self.inner.meta.read()?;
            let mut live: HashSet<String> = HashSet::new();
            for (id, rec) in r.images()? {
                live.insert(id);
                live.insert(rec.config_digest.clone());
                if let Some(m) = &rec.manifest {
                    live.insert(m.digest.clone());
                }
                let diff_ids: Vec<String> = rec.layers.iter().map(|l| l.diff_id.clone()).collect();
                for l in rec.layers {
                    live.insert(l.digest);
                }
                live.extend(chain_ids(&diff_ids));
            }
            let dead = |k: &str| !live.contains(k) && !leased.contains_key(k);
            let dead_records: Vec<String> = r
                .snapshots()?
                .into_iter()
                .map(|(k, _)| k)
                .filter(|k| dead(k))
                .collect();
            drop(r);
            if !dead_records.is_empty() {
                self.inner.meta.update(|t| {
                    for k in &dead_records {
                        t.remove_snapshot(k)?;
                    }
                    Ok::<_, ImageError>(())
                })?;
            }
            for (digest, _) in self.inner.content.list()? {
                if dead(&digest) {
                    report.bytes += self.inner.content.remove(&digest)?;
                }
            }
            for chain in self.inner.snapshots.list()? {
                if dead(&chain) {
                    if let Some((path, size)) = self.inner.snapshots.doom(&chain)? {
                        report.bytes += size;
                        report.snapshots.push(chain);
                        doomed.push(path);
                    }
                }
            }
        }
        for p in doomed {
            remove_doomed(&p);
        }
        Ok(report)
    }

    /// Best-effort GC after a failed operation dropped its lease.
    pub(crate) fn sweep_after_failure(&self) {
        if let Err(e) = self.gc() {
            tracing::warn!(error = %e, "collecting garbage after a failed operation");
        }
    }
}
