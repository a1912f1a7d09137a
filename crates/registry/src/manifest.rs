//! Manifest parsing and validation: Docker v2 schema 2 manifests and manifest lists, OCI manifests and indexes,
//! artifacts (`artifactType`, `subject`). The registry stores manifests byte for byte as pushed; this module
//! only decides their media type and which content they reference.

use serde::Deserialize;

use crate::digest::Digest;

/// Docker image manifest v2 schema 2.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list.
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// Why a manifest is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ManifestError {
    /// Not JSON, or not the expected shape.
    #[error("malformed manifest: {0}")]
    Malformed(String),
    /// `schemaVersion` is not 2.
    #[error("unsupported schema version {0}")]
    SchemaVersion(i64),
    /// A media type the registry does not serve as a manifest.
    #[error("unsupported manifest media type {0:?}")]
    MediaType(String),
    /// The `Content-Type` header and the `mediaType` field disagree.
    #[error("content type {header:?} does not match manifest media type {body:?}")]
    Mismatch {
        /// From the header.
        header: String,
        /// From the body.
        body: String,
    },
}

/// A descriptor inside a manifest.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Desc {
    /// Media type.
    #[serde(default)]
    pub media_type: String,
    /// Digest.
    pub digest: Digest,
    /// Size.
    pub size: u64,
    /// External URLs (foreign layers, which the registry does not hold).
    #[serde(default)]
    pub urls: Option<Vec<String>>,
    /// Platform (index entries).
    #[serde(default)]
    pub platform: Option<Platform>,
    /// Artifact type (index entries).
    #[serde(default)]
    pub artifact_type: Option<String>,
}

/// An index entry's platform.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Platform {
    /// `os`.
    #[serde(default)]
    pub os: String,
    /// `architecture`.
    #[serde(default)]
    pub architecture: String,
    /// `variant`.
    #[serde(default)]
    pub variant: Option<String>,
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raw {
    schema_version: Option<i64>,
    media_type: Option<String>,
    artifact_type: Option<String>,
    config: Option<Desc>,
    layers: Option<Vec<Desc>>,
    manifests: Option<Vec<Desc>>,
    subject: Option<Desc>,
    annotations: Option<serde_json::Map<String, serde_json::Value>>,
}

/// A validated manifest.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// The media type it is stored and served with.
    pub media_type: String,
    /// `artifactType` (or, for image manifests without one, the config's media type, as the referrers API wants).
    pub artifact_type: Option<String>,
    /// The config (image manifests).
    pub config: Option<Desc>,
    /// Layers (image manifests).
    pub layers: Vec<Desc>,
    /// Children (indexes).
    pub manifests: Vec<Desc>,
    /// The `subject`, if any.
    pub subject: Option<Desc>,
    /// Annotations.
    pub annotations: Option<serde_json::Map<String, serde_json::Value>>,
}

impl Manifest {
    /// Whether it is an index or manifest list.
    pub fn is_index(&self) -> bool {
        self.media_type == OCI_INDEX || self.media_type == DOCKER_LIST
    }
}

fn known(mt: &str) -> bool {
    matches!(mt, DOCKER_MANIFEST | DOCKER_LIST | OCI_MANIFEST | OCI_INDEX)
}

fn generic(ct: &str) -> bool {
    ct.is_empty() || ct == "application/json" || ct == "application/octet-stream"
}

/// Parses and validates a manifest pushed with `content_type` (the header, if any).
pub fn parse(content_type: Option<&str>, body: &[u8]) -> Result<Manifest, ManifestError> {
    let raw: Raw =
        serde_json::from_slice(body).map_err(|e| ManifestError::Malformed(e.to_string()))?;
    match raw.schema_version {
        Some(2) => {}
        Some(v) => return Err(ManifestError::SchemaVersion(v)),
        None => return Err(ManifestError::Malformed("missing schemaVersion".into())),
    }
    let ct = content_type
        .map(|c| {
            c.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    let media_type = match (&raw.media_type, generic(&ct)) {
        (Some(body), false) if *body != ct => {
            return Err(ManifestError::Mismatch {
                header: ct,
                body: body.clone(),
            })
        }
        (_, false) => ct,
        (Some(body), true) => body.clone(),
        (None, true) if raw.manifests.is_some() => OCI_INDEX.to_string(),
        (None, true) => OCI_MANIFEST.to_string(),
    };
    if !known(&media_type) {
        return Err(ManifestError::MediaType(media_type));
    }
    let index = media_type == OCI_INDEX || media_type == DOCKER_LIST;
    let (config, layers, manifests) = if index {
        let Some(m) = raw.manifests else {
            return Err(ManifestError::Malformed("index has no manifests".into()));
        };
        (None, Vec::new(), m)
    } else {
        let Some(c) = raw.config else {
            return Err(ManifestError::Malformed("manifest has no config".into()));
        };
        let Some(l) = raw.layers else {
            return Err(ManifestError::Malformed("manifest has no layers".into()));
        };
        (Some(c), l, Vec::new())
    };
    let artifact_type = raw.artifact_type.or_else(|| {
        config
            .as_ref()
            .map(|c| c.media_type.clone())
            .filter(|_| raw.subject.is_some())
    });
    Ok(Manifest {
        media_type,
        artifact_type,
        config,
        layers,
        manifests,
        subject: raw.subject,
        annotations: raw.annotations,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Algorithm;

    fn image(mt: Option<&str>) -> Vec<u8> {
        let d = Algorithm::Sha256.digest(b"x");
        let mut v = serde_json::json!({
            "schemaVersion": 2,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": d, "size": 1},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d, "size": 1}],
        });
        if let Some(mt) = mt {
            v["mediaType"] = mt.into();
        }
        serde_json::to_vec(&v).expect("json")
    }

    #[test]
    fn media_type_from_header_or_body() {
        assert_eq!(
            parse(Some(OCI_MANIFEST), &image(None))
                .expect("ok")
                .media_type,
            OCI_MANIFEST
        );
        assert_eq!(
            parse(None, &image(Some(DOCKER_MANIFEST)))
                .expect("ok")
                .media_type,
            DOCKER_MANIFEST
        );
        assert_eq!(
            parse(Some("application/json"), &image(None))
                .expect("ok")
                .media_type,
            OCI_MANIFEST
        );
        assert!(matches!(
            parse(Some(OCI_MANIFEST), &image(Some(DOCKER_MANIFEST))),
            Err(ManifestError::Mismatch { .. })
        ));
        assert!(matches!(
            parse(Some("text/plain"), &image(None)),
            Err(ManifestError::MediaType(_))
        ));
        assert!(matches!(
            parse(
                Some("application/vnd.docker.distribution.manifest.v1+prettyjws"),
                &image(None)
            ),
            Err(ManifestError::MediaType(_))
        ));
    }

    #[test]
    fn malformed() {
        assert!(matches!(
            parse(Some(OCI_MANIFEST), b"{not json"),
            Err(ManifestError::Malformed(_))
        ));
        assert!(matches!(
            parse(Some(OCI_MANIFEST), b"[]"),
            Err(ManifestError::Malformed(_))
        ));
        assert!(matches!(
            parse(Some(OCI_MANIFEST), br#"{"schemaVersion":1}"#),
            Err(ManifestError::SchemaVersion(1))
        ));
        assert!(matches!(
            parse(Some(OCI_INDEX), br#"{"schemaVersion":2}"#),
            Err(ManifestError::Malformed(_))
        ));
        let bad_digest = br#"{"schemaVersion":2,"config":{"mediaType":"x","digest":"sha256:zz","size":1},"layers":[]}"#;
        assert!(matches!(
            parse(Some(OCI_MANIFEST), bad_digest),
            Err(ManifestError::Malformed(_))
        ));
    }

    #[test]
    fn artifact_type_defaults_to_config_media_type_for_referrers() {
        let d = Algorithm::Sha256.digest(b"x");
        let v = serde_json::json!({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/x-sig-config", "digest": d, "size": 1},
            "layers": [], "subject": {"mediaType": OCI_MANIFEST, "digest": d, "size": 1},
        });
        let m = parse(None, &serde_json::to_vec(&v).expect("json")).expect("ok");
        assert_eq!(m.artifact_type.as_deref(), Some("application/x-sig-config"));
        assert_eq!(m.subject.map(|s| s.digest), Some(d));
    }
}
