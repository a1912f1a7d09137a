//! Manifests on the wire: fetching with the right `Accept`, size caps, digest checks, media types,
//! and platform selection in manifest lists and OCI indexes.

use berth_image::media::{self, Descriptor, Index, Manifest};
use berth_image::Platform;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use sha2::{Digest, Sha256};

use crate::client::{status_error, Endpoint, Req};
use crate::error::DistError;
use crate::RegistryClient;

/// Every manifest type we pull.
pub(crate) const ACCEPT_MANIFESTS: &str = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";
const SCHEMA1: [&str; 3] = [
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
    "application/json",
];
/// Docker's config media type.
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";

/// `sha256:<hex>` of `data`.
pub(crate) fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// A manifest or index as received.
#[derive(Debug, Clone)]
pub(crate) struct Fetched {
    pub(crate) bytes: Vec<u8>,
    pub(crate) digest: String,
    pub(crate) media_type: String,
}

/// What a fetched document is.
#[derive(Debug)]
pub(crate) enum Parsed {
    Index(Index),
    Manifest(Manifest),
}

/// Where a repository lives and how requests to it are authorised.
pub(crate) struct Repo<'a> {
    pub(crate) client: &'a RegistryClient,
    pub(crate) ep: Endpoint,
    /// The repository path on the registry (`library/busybox`).
    pub(crate) path: String,
    pub(crate) scopes: Vec<String>,
    pub(crate) action: &'static str,
    /// The repository as users name it, for messages.
    pub(crate) display: String,
}

impl Repo<'_> {
    pub(crate) fn req<'b>(&'b self, what: &'b str, idempotent: bool) -> Req<'b> {
        Req {
            scopes: &self.scopes,
            action: self.action,
            repository: &self.display,
            what,
            idempotent,
        }
    }

    pub(crate) fn url(&self, tail: &str) -> String {
        format!("{}/v2/{}/{tail}", self.ep.base, self.path)
    }

    /// Fetches a manifest by tag or digest, capped at `max` bytes and verified: against the digest
    /// it was asked by, else against `Docker-Content-Digest` when the registry sends one.
    pub(crate) async fn fetch_manifest(
        &self,
        reference: &str,
        what: &str,
        max: u64,
    ) -> Result<Fetched, DistError> {
        let url = self.url(&format!("manifests/{reference}"));
        let resp = self
            .client
            .send(&self.ep, &self.req(what, true), &|http| {
                http.get(&url).header(ACCEPT, ACCEPT_MANIFESTS)
            })
            .await?;
        if !resp.status().is_success() {
            return Err(status_error(&self.ep, resp, what, self.action, &self.display).await);
        }
        let too_large = || DistError::TooLarge {
            what: what.to_string(),
            max,
        };
        if resp.content_length().is_some_and(|l| l > max) {
            return Err(too_large());
        }
        let header_digest = resp
            .headers()
            .get("Docker-Content-Digest")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let content_type = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or("").trim().to_string());
        let mut resp = resp;
        let mut bytes = Vec::new();
        loop {
            let chunk = resp.chunk().await.map_err(|source| DistError::Transport {
                registry: self.ep.registry.clone(),
                what: what.to_string(),
                source,
            })?;
            let Some(chunk) = chunk else { break };
            bytes.extend_from_slice(&chunk);
            if bytes.len() as u64 > max {
                return Err(too_large());
            }
        }
        let digest = sha256(&bytes);
        let expected = if reference.starts_with("sha256:") {
            Some(reference.to_string())
        } else {
            header_digest.filter(|d| d.starts_with("sha256:"))
        };
        if let Some(e) = expected {
            if e != digest {
                return Err(DistError::DigestMismatch {
                    what: what.to_string(),
                    expected: e,
                    actual: digest,
                });
            }
        }
        let media_type = media_type_of(content_type.as_deref(), &bytes);
        Ok(Fetched {
            bytes,
            digest,
            media_type,
        })
    }
}

/// The media type of a manifest: the JSON's `mediaType`, else a specific `Content-Type`, else
/// guessed from its shape (OCI allows omitting it).
fn media_type_of(content_type: Option<&str>, bytes: &[u8]) -> String {
    let value: Option<serde_json::Value> = serde_json::from_slice(bytes).ok();
    if let Some(mt) = value
        .as_ref()
        .and_then(|v| v.get("mediaType"))
        .and_then(|m| m.as_str())
    {
        return mt.to_string();
    }
    match content_type {
        Some(ct) if !ct.is_empty() && ct != "application/json" && ct != "text/plain" => {
            ct.to_string()
        }
        _ => {
            let v = value.as_ref();
            if v.and_then(|v| v.get("schemaVersion"))
                .and_then(|s| s.as_i64())
                == Some(1)
            {
                SCHEMA1[0].to_string()
            } else if v.is_some_and(|v| v.get("manifests").is_some()) {
                media::OCI_INDEX.to_string()
            } else {
                media::OCI_MANIFEST.to_string()
            }
        }
    }
}

/// Parses a fetched manifest or index, refusing what we cannot pull.
pub(crate) fn parse(f: &Fetched, reference: &str) -> Result<Parsed, DistError> {
    let invalid = |e: serde_json::Error| DistError::Invalid {
        what: format!("manifest {}", f.digest),
        reason: e.to_string(),
    };
    let mt = f.media_type.as_str();
    if SCHEMA1.contains(&mt) {
        return Err(DistError::Schema1 {
            reference: reference.to_string(),
        });
    }
    if media::is_index(mt) {
        return serde_json::from_slice(&f.bytes)
            .map(Parsed::Index)
            .map_err(invalid);
    }
    if mt == media::OCI_MANIFEST || mt == media::DOCKER_MANIFEST {
        let m: Manifest = serde_json::from_slice(&f.bytes).map_err(invalid)?;
        return Ok(Parsed::Manifest(m));
    }
    Err(DistError::UnsupportedMediaType {
        what: format!("manifest of {reference}"),
        media_type: mt.to_string(),
    })
}

/// Checks that an image manifest's config and layers are types we can store and run.
pub(crate) fn check_manifest(m: &Manifest, reference: &str) -> Result<(), DistError> {
    let config_type = m.config.media_type.as_deref().unwrap_or(media::OCI_CONFIG);
    if config_type != media::OCI_CONFIG && config_type != DOCKER_CONFIG {
        return Err(DistError::UnsupportedMediaType {
            what: format!("config of {reference} (not a container image)"),
            media_type: config_type.to_string(),
        });
    }
    for l in &m.layers {
        let mt = l.media_type.as_deref().unwrap_or(media::OCI_LAYER_GZIP);
        let ok = matches!(
            mt,
            media::OCI_LAYER_TAR
                | media::OCI_LAYER_GZIP
                | media::OCI_LAYER_ZSTD
                | media::DOCKER_LAYER_TAR
                | media::DOCKER_LAYER_GZIP
        );
        if !ok {
            return Err(DistError::UnsupportedMediaType {
                what: format!("layer {} of {reference}", l.digest),
                media_type: mt.to_string(),
            });
        }
        if l.size < 0 || !l.digest.starts_with("sha256:") {
            return Err(DistError::Invalid {
                what: format!("manifest of {reference}"),
                reason: format!("layer {} has a bad digest or size", l.digest),
            });
        }
    }
    Ok(())
}

/// `os/arch[/variant]`, as Docker prints a platform.
pub fn format_platform(p: &Platform) -> String {
    match &p.variant {
        Some(v) => format!("{}/{}/{v}", p.os, p.architecture),
        None => format!("{}/{}", p.os, p.architecture),
    }
}

/// The index entry for `platform`: an exact variant match first, then any compatible one.
pub fn choose_platform<'a>(
    index: &'a Index,
    platform: &Platform,
) -> Result<&'a Descriptor, DistError> {
    let compatible: Vec<&Descriptor> = index
        .manifests
        .iter()
        .filter(|d| {
            d.platform
                .as_ref()
                .is_some_and(|p| platform.matches(&p.os, &p.architecture, p.variant.as_deref()))
        })
        .collect();
    let exact = compatible.iter().find(|d| {
        d.platform
            .as_ref()
            .is_some_and(|p| p.variant.is_some() && p.variant == platform.variant)
    });
    exact
        .or(compatible.first())
        .copied()
        .ok_or_else(|| DistError::NoMatchingPlatform {
            platform: format_platform(platform),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_image::media::PlatformSpec;

    fn entry(arch: &str, variant: Option<&str>, digest: char) -> Descriptor {
        Descriptor {
            media_type: Some(media::OCI_MANIFEST.into()),
            digest: format!("sha256:{}", digest.to_string().repeat(64)),
            size: 1,
            platform: Some(PlatformSpec {
                architecture: arch.into(),
                os: "linux".into(),
                variant: variant.map(str::to_string),
            }),
            ..Descriptor::default()
        }
    }

    #[test]
    fn platform_selection() {
        let index = Index {
            schema_version: 2,
            media_type: Some(media::OCI_INDEX.into()),
            manifests: vec![
                entry("arm", Some("v6"), 'a'),
                entry("arm", Some("v7"), 'b'),
                entry("amd64", None, 'c'),
                entry("arm64", Some("v8"), 'd'),
            ],
        };
        let p = |s: &str| Platform::parse(s).expect("platform");
        assert!(choose_platform(&index, &p("linux/amd64"))
            .expect("amd64")
            .digest
            .contains("ccc"));
        assert!(choose_platform(&index, &p("linux/arm/v7"))
            .expect("v7")
            .digest
            .contains("bbb"));
        assert!(choose_platform(&index, &p("linux/arm64"))
            .expect("arm64")
            .digest
            .contains("ddd"));
        let err = choose_platform(&index, &p("linux/s390x")).expect_err("none");
        assert_eq!(
            err.to_string(),
            "no matching manifest for linux/s390x in the manifest list entries"
        );
    }

    #[test]
    fn media_types() {
        assert_eq!(
            media_type_of(Some(media::DOCKER_MANIFEST), b"{}"),
            media::DOCKER_MANIFEST
        );
        assert_eq!(
            media_type_of(Some("application/json"), br#"{"manifests":[]}"#),
            media::OCI_INDEX
        );
        let f = Fetched {
            bytes: br#"{"schemaVersion":1,"name":"x"}"#.to_vec(),
            digest: sha256(b"x"),
            media_type: media_type_of(None, br#"{"schemaVersion":1}"#),
        };
        assert!(matches!(parse(&f, "x"), Err(DistError::Schema1 { .. })));
        let helm = Manifest {
            config: Descriptor {
                media_type: Some("application/vnd.cncf.helm.config.v1+json".into()),
                ..Descriptor::default()
            },
            ..Manifest::default()
        };
        assert!(matches!(
            check_manifest(&helm, "chart"),
            Err(DistError::UnsupportedMediaType { .. })
        ));
    }
}
