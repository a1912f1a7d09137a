//! What the directory shows of repositories and manifests, computed from the stores (manifest and config
//! blobs are immutable, so summaries are cached by digest).

use std::collections::HashMap;
use std::sync::Mutex;

use crate::api::{ApiError, AppState};
use crate::digest::Digest;
use crate::manifest;
use crate::registry::RegistryError;

/// A manifest as the directory shows it.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Media type.
    pub media_type: String,
    /// Total size of config and layers (for indexes: of every platform's image).
    pub size: u64,
    /// Platforms (`os/arch[/variant]`).
    pub platforms: Vec<String>,
    /// Layers: digest, size, media type.
    pub layers: Vec<(Digest, u64, String)>,
    /// The config descriptor and its JSON, pretty-printed.
    pub config: Option<(Digest, String)>,
    /// Children of an index: digest and platform.
    pub children: Vec<(Digest, String)>,
}

/// Cache of summaries by manifest digest.
#[derive(Default)]
pub struct Summaries(Mutex<HashMap<Digest, Summary>>);

/// One tag of a repository.
#[derive(Debug, Clone)]
pub struct TagInfo {
    /// Name.
    pub name: String,
    /// Manifest digest.
    pub digest: Digest,
    /// When pushed.
    pub pushed: String,
    /// The manifest's summary.
    pub summary: Summary,
}

/// A repository as the directory shows it.
#[derive(Debug, Clone)]
pub struct Repository {
    /// Name.
    pub name: String,
    /// Tags, most recently pushed first.
    pub tags: Vec<TagInfo>,
}

impl Repository {
    /// The most recently pushed tag.
    pub fn latest(&self) -> Option<&TagInfo> {
        self.tags.first()
    }
}

fn err(e: crate::storage::StorageError) -> ApiError {
    RegistryError::from(e).into()
}

async fn image_summary(st: &AppState, m: &manifest::Manifest) -> Result<Summary, ApiError> {
    let mut s = Summary::default();
    if let Some(c) = &m.config {
        s.size += c.size;
        if c.size <= 1 << 20 {
            if let Some(b) = st.registry.blobs().get(&c.digest).await.map_err(err)? {
                let v: serde_json::Value = serde_json::from_slice(&b).unwrap_or_default();
                let os = v.get("os").and_then(|x| x.as_str()).unwrap_or("");
                let arch = v.get("architecture").and_then(|x| x.as_str()).unwrap_or("");
                if !os.is_empty() {
                    let mut p = format!("{os}/{arch}");
                    if let Some(var) = v.get("variant").and_then(|x| x.as_str()) {
                        p.push_str(&format!("/{var}"));
                    }
                    s.platforms.push(p);
                }
                let pretty = serde_json::to_string_pretty(&v).unwrap_or_default();
                s.config = Some((c.digest.clone(), pretty));
            }
        }
    }
    for l in &m.layers {
        s.size += l.size;
        s.layers
            .push((l.digest.clone(), l.size, l.media_type.clone()));
    }
    Ok(s)
}

/// The summary of manifest `digest` of `repo`.
pub async fn manifest(st: &AppState, repo: &str, digest: &Digest) -> Result<Summary, ApiError> {
    if let Some(s) = st
        .summaries
        .0
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(digest)
    {
        return Ok(s.clone());
    }
    let Some(link) = st
        .registry
        .meta()
        .manifest(repo, digest)
        .await
        .map_err(err)?
    else {
        return Ok(Summary::default());
    };
    let body = st.registry.manifest_bytes(digest).await?;
    let Ok(m) = manifest::parse(Some(&link.media_type), &body) else {
        return Ok(Summary::default());
    };
    let mut s = if m.is_index() {
        let mut s = Summary::default();
        for child in &m.manifests {
            let platform = child
                .platform
                .as_ref()
                .map(|p| p.to_string())
                .unwrap_or_default();
            if let Some(cl) = st
                .registry
                .meta()
                .manifest(repo, &child.digest)
                .await
                .map_err(err)?
            {
                let cb = st.registry.manifest_bytes(&child.digest).await?;
                if let Ok(cm) = manifest::parse(Some(&cl.media_type), &cb) {
                    if !cm.is_index() {
                        s.size += image_summary(st, &cm).await?.size;
                    }
                }
            }
            if !platform.is_empty() && platform != "unknown/unknown" {
                s.platforms.push(platform.clone());
            }
            s.children.push((child.digest.clone(), platform));
        }
        s
    } else {
        image_summary(st, &m).await?
    };
    s.media_type = link.media_type;
    st.summaries
        .0
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(digest.clone(), s.clone());
    Ok(s)
}

/// The summary of `repo`.
pub async fn repository(st: &AppState, repo: &str) -> Result<Repository, ApiError> {
    let mut tags = Vec::new();
    for (name, link) in st.registry.meta().tags(repo).await.map_err(err)? {
        let summary = manifest(st, repo, &link.digest).await?;
        tags.push(TagInfo {
            name,
            digest: link.digest,
            pushed: link.pushed,
            summary,
        });
    }
    tags.sort_by(|a, b| b.pushed.cmp(&a.pushed).then(a.name.cmp(&b.name)));
    Ok(Repository {
        name: repo.to_string(),
        tags,
    })
}
