//! A tiny key-value interface (small values, `/`-separated keys, listing by prefix) and the
//! [`MetadataStore`] built on it, shared by the filesystem and object-store backends.

use async_trait::async_trait;
use bytes::Bytes;

use super::{Descriptor, ManifestLink, MetadataStore, Result, StorageError, TagLink};
use crate::digest::{Algorithm, Digest};

/// Small values under `/`-separated keys. Writes replace atomically.
#[async_trait]
pub trait Kv: Send + Sync + 'static {
    /// The value, or `None`.
    async fn get(&self, key: &str) -> Result<Option<Bytes>>;
    /// Writes a value atomically (readers see the old or the new value, never a part).
    async fn put(&self, key: &str, value: Bytes) -> Result<()>;
    /// Removes a key; `false` if absent.
    async fn delete(&self, key: &str) -> Result<bool>;
    /// Whether a key exists.
    async fn exists(&self, key: &str) -> Result<bool>;
    /// The names directly below `prefix` (keys and "directories"), unsorted.
    async fn children(&self, prefix: &str) -> Result<Vec<String>>;
}

/// [`MetadataStore`] on any [`Kv`].
pub struct KvMetadata<K> {
    kv: K,
}

impl<K: Kv> KvMetadata<K> {
    /// Wraps a key-value store.
    pub fn new(kv: K) -> KvMetadata<K> {
        KvMetadata { kv }
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        match self.kv.get(key).await? {
            None => Ok(None),
            Some(b) => {
                serde_json::from_slice(&b)
                    .map(Some)
                    .map_err(|source| StorageError::Corrupt {
                        key: key.to_string(),
                        source,
                    })
            }
        }
    }

    async fn put_json<T: serde::Serialize>(&self, key: &str, v: &T) -> Result<()> {
        let b = serde_json::to_vec(v).map_err(|source| StorageError::Corrupt {
            key: key.to_string(),
            source,
        })?;
        self.kv.put(key, Bytes::from(b)).await
    }

    async fn digests_under(&self, prefix: &str) -> Result<Vec<Digest>> {
        let mut out = Vec::new();
        for alg in [Algorithm::Sha256, Algorithm::Sha512] {
            for hex in self
                .kv
                .children(&format!("{prefix}/{}", alg.name()))
                .await?
            {
                if let Ok(d) = Digest::from_parts(alg, &hex) {
                    out.push(d);
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Walks `repositories/` depth first; returns names that hold a manifest.
    async fn walk(&self, out: &mut Vec<String>) -> Result<()> {
        let mut stack = vec![String::new()];
        while let Some(name) = stack.pop() {
            let prefix = if name.is_empty() {
                "repositories".to_string()
            } else {
                format!("repositories/{name}")
            };
            for child in self.kv.children(&prefix).await? {
                if child == "_manifests" {
                    if !self.manifests(&name).await?.is_empty() {
                        out.push(name.clone());
                    }
                } else if !child.starts_with('_') && !child.starts_with('.') {
                    stack.push(if name.is_empty() {
                        child
                    } else {
                        format!("{name}/{child}")
                    });
                }
            }
        }
        Ok(())
    }
}

fn layer_key(repo: &str, d: &Digest) -> String {
    format!(
        "repositories/{repo}/_layers/{}/{}",
        d.algorithm().name(),
        d.hex()
    )
}

fn manifest_key(repo: &str, d: &Digest) -> String {
    format!(
        "repositories/{repo}/_manifests/revisions/{}/{}",
        d.algorithm().name(),
        d.hex()
    )
}

fn tag_key(repo: &str, tag: &str) -> String {
    format!("repositories/{repo}/_manifests/tags/{tag}")
}

fn referrers_prefix(repo: &str, subject: &Digest) -> String {
    format!(
        "repositories/{repo}/_referrers/{}/{}",
        subject.algorithm().name(),
        subject.hex()
    )
}

#[async_trait]
impl<K: Kv> MetadataStore for KvMetadata<K> {
    async fn repositories(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        self.walk(&mut out).await?;
        out.sort();
        Ok(out)
    }

    async fn link_blob(&self, repo: &str, digest: &Digest) -> Result<()> {
        self.kv.put(&layer_key(repo, digest), Bytes::new()).await
    }

    async fn blob_linked(&self, repo: &str, digest: &Digest) -> Result<bool> {
        self.kv.exists(&layer_key(repo, digest)).await
    }

    async fn unlink_blob(&self, repo: &str, digest: &Digest) -> Result<bool> {
        self.kv.delete(&layer_key(repo, digest)).await
    }

    async fn blob_links(&self, repo: &str) -> Result<Vec<Digest>> {
        self.digests_under(&format!("repositories/{repo}/_layers"))
            .await
    }

    async fn put_manifest(&self, repo: &str, digest: &Digest, link: &ManifestLink) -> Result<()> {
        self.put_json(&manifest_key(repo, digest), link).await
    }

    async fn manifest(&self, repo: &str, digest: &Digest) -> Result<Option<ManifestLink>> {
        self.get_json(&manifest_key(repo, digest)).await
    }

    async fn delete_manifest(&self, repo: &str, digest: &Digest) -> Result<bool> {
        self.kv.delete(&manifest_key(repo, digest)).await
    }

    async fn manifests(&self, repo: &str) -> Result<Vec<Digest>> {
        self.digests_under(&format!("repositories/{repo}/_manifests/revisions"))
            .await
    }

    async fn put_tag(&self, repo: &str, tag: &str, link: &TagLink) -> Result<()> {
        self.put_json(&tag_key(repo, tag), link).await
    }

    async fn tag(&self, repo: &str, tag: &str) -> Result<Option<TagLink>> {
        self.get_json(&tag_key(repo, tag)).await
    }

    async fn delete_tag(&self, repo: &str, tag: &str) -> Result<bool> {
        self.kv.delete(&tag_key(repo, tag)).await
    }

    async fn tags(&self, repo: &str) -> Result<Vec<(String, TagLink)>> {
        let mut names: Vec<String> = self
            .kv
            .children(&format!("repositories/{repo}/_manifests/tags"))
            .await?
            .into_iter()
            .filter(|t| crate::name::valid_tag(t))
            .collect();
        names.sort();
        let mut out = Vec::with_capacity(names.len());
        for n in names {
            if let Some(link) = self.tag(repo, &n).await? {
                out.push((n, link));
            }
        }
        Ok(out)
    }

    async fn add_referrer(
        &self,
        repo: &str,
        subject: &Digest,
        referrer: &Descriptor,
    ) -> Result<()> {
        let key = format!(
            "{}/{}-{}",
            referrers_prefix(repo, subject),
            referrer.digest.algorithm().name(),
            referrer.digest.hex()
        );
        self.put_json(&key, referrer).await
    }

    async fn remove_referrer(&self, repo: &str, subject: &Digest, referrer: &Digest) -> Result<()> {
        let key = format!(
            "{}/{}-{}",
            referrers_prefix(repo, subject),
            referrer.algorithm().name(),
            referrer.hex()
        );
        self.kv.delete(&key).await.map(|_| ())
    }

    async fn referrers(&self, repo: &str, subject: &Digest) -> Result<Vec<Descriptor>> {
        let prefix = referrers_prefix(repo, subject);
        let mut names = self.kv.children(&prefix).await?;
        names.sort();
        let mut out = Vec::new();
        for n in names {
            if n.starts_with('.') {
                continue;
            }
            if let Some(d) = self
                .get_json::<Descriptor>(&format!("{prefix}/{n}"))
                .await?
            {
                out.push(d);
            }
        }
        Ok(out)
    }
}
