//! The Docker/OCI image config (the config blob) and platforms.
//!
//! Field names are Docker's (`architecture`, `os`, `config` with PascalCase keys, `rootfs`,
//! `history`). Unknown keys are kept in `extra` maps (serde flatten) so re-serialising loses
//! nothing; the image id is always the digest of the original bytes, never of a re-serialisation.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};
use thiserror::Error;

use crate::error::ErrorKind;

/// Errors about image configs and platforms.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The config blob is not a valid image config.
    #[error("invalid image config {digest}")]
    Invalid {
        digest: String,
        #[source]
        source: serde_json::Error,
    },
    /// A platform string does not parse.
    #[error("invalid platform {platform:?}")]
    InvalidPlatform { platform: String },
    /// The platform's operating system is not Linux.
    #[error("operating system {os:?} is not supported")]
    UnsupportedOs { os: String },
    /// Serialising a config failed.
    #[error("serialising image config")]
    Serialize {
        #[source]
        source: serde_json::Error,
    },
}

impl ConfigError {
    /// The coarse category of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ConfigError::Serialize { .. } => ErrorKind::Internal,
            _ => ErrorKind::InvalidArgument,
        }
    }
}

fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// The image config JSON.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImageConfig {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// RFC 3339 creation time as written in the config.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub config: ContainerConfig,
    #[serde(default, deserialize_with = "null_default")]
    pub rootfs: RootFs,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub history: Vec<History>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_config: Option<ContainerConfig>,
    /// Every other key, kept as is.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ImageConfig {
    /// Parses a config blob; `digest` names it in errors.
    pub fn from_slice(bytes: &[u8], digest: &str) -> Result<ImageConfig, ConfigError> {
        serde_json::from_slice(bytes).map_err(|source| ConfigError::Invalid {
            digest: digest.to_string(),
            source,
        })
    }

    /// Serialises the config (for configs this store creates).
    pub fn to_vec(&self) -> Result<Vec<u8>, ConfigError> {
        serde_json::to_vec(self).map_err(|source| ConfigError::Serialize { source })
    }

    /// The creation time, when present and valid.
    pub fn created_time(&self) -> Option<DateTime<Utc>> {
        parse_time(self.created.as_deref())
    }
}

/// Parses an RFC 3339 time.
pub fn parse_time(s: Option<&str>) -> Option<DateTime<Utc>> {
    s.and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
}

/// The runtime defaults of an image (`config` in the image config), Docker's PascalCase keys.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<HealthConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args_escaped: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volumes: Option<BTreeMap<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_build: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_timeout: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<Vec<String>>,
    /// Every other key (Hostname, Tty, Image, ...), kept as is.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A health check (durations in nanoseconds).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_period: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_interval: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<i64>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `rootfs`: the ordered uncompressed layer digests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type", default = "layers_type")]
    pub kind: String,
    #[serde(default, deserialize_with = "null_default")]
    pub diff_ids: Vec<String>,
}

fn layers_type() -> String {
    "layers".to_string()
}

impl Default for RootFs {
    fn default() -> Self {
        RootFs {
            kind: layers_type(),
            diff_ids: Vec::new(),
        }
    }
}

/// One `history` entry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub empty_layer: Option<bool>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// An OS/architecture/variant triple.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl Platform {
    /// The platform this process runs on, in OCI terms (`amd64` on x86_64, `arm64`/`v8` on aarch64).
    pub fn host() -> Platform {
        let (architecture, variant) = normalize_arch(std::env::consts::ARCH, None);
        Platform {
            os: "linux".to_string(),
            architecture,
            variant,
        }
    }

    /// Parses `os[/arch[/variant]]` or a bare architecture; only Linux is accepted.
    pub fn parse(s: &str) -> Result<Platform, ConfigError> {
        let invalid = || ConfigError::InvalidPlatform {
            platform: s.to_string(),
        };
        let parts: Vec<&str> = s.split('/').collect();
        if parts.iter().any(|p| p.is_empty()) || parts.len() > 3 {
            return Err(invalid());
        }
        let host = Platform::host();
        let (os, arch, variant) = match parts.as_slice() {
            [one] if is_os(one) => (one.to_lowercase(), host.architecture, host.variant),
            [one] => ("linux".to_string(), one.to_lowercase(), None),
            [os, arch] => (os.to_lowercase(), arch.to_lowercase(), None),
            [os, arch, v] => (
                os.to_lowercase(),
                arch.to_lowercase(),
                Some(v.to_lowercase()),
            ),
            _ => return Err(invalid()),
        };
        if os != "linux" {
            return Err(ConfigError::UnsupportedOs { os });
        }
        let (architecture, variant) = normalize_arch(&arch, variant);
        Ok(Platform {
            os,
            architecture,
            variant,
        })
    }

    /// Whether an index entry's platform can run here: same OS and architecture, and a compatible
    /// variant (none given matches anything).
    pub fn matches(&self, os: &str, architecture: &str, variant: Option<&str>) -> bool {
        let (arch, var) = normalize_arch(architecture, variant.map(str::to_string));
        os == self.os
            && arch == self.architecture
            && match (&self.variant, &var) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            }
    }
}

fn is_os(s: &str) -> bool {
    matches!(
        s.to_lowercase().as_str(),
        "linux" | "windows" | "darwin" | "freebsd" | "solaris" | "illumos" | "netbsd" | "openbsd"
    )
}

/// Maps architecture aliases to OCI names (containerd's `platforms.Normalize`).
fn normalize_arch(arch: &str, variant: Option<String>) -> (String, Option<String>) {
    match arch {
        "x86_64" | "x86-64" | "amd64" => ("amd64".to_string(), variant.filter(|v| v != "v1")),
        "aarch64" | "arm64" => (
            "arm64".to_string(),
            match variant.as_deref() {
                None | Some("8") | Some("v8") => Some("v8".to_string()),
                Some(v) => Some(v.to_string()),
            },
        ),
        "armhf" => ("arm".to_string(), Some("v7".to_string())),
        "armel" => ("arm".to_string(), Some("v6".to_string())),
        "arm" => (
            "arm".to_string(),
            Some(match variant.as_deref() {
                None | Some("7") => "v7".to_string(),
                Some("5") => "v5".to_string(),
                Some("6") => "v6".to_string(),
                Some("8") => "v8".to_string(),
                Some(v) => v.to_string(),
            }),
        ),
        "i386" | "i486" | "i586" | "i686" | "x86" => ("386".to_string(), variant),
        "powerpc64" | "ppc64le" => ("ppc64le".to_string(), variant),
        other => (other.to_string(), variant),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_survive_a_round_trip() {
        let raw = r#"{"architecture":"amd64","os":"linux","config":{"Env":["A=b"],"Cmd":null,"Hostname":"h","Tty":false},"rootfs":{"type":"layers","diff_ids":[]},"moby.buildkit.buildinfo.v1":"x","os.version":"1"}"#;
        let c = ImageConfig::from_slice(raw.as_bytes(), "sha256:x").expect("parse");
        assert_eq!(c.config.env.as_deref(), Some(&["A=b".to_string()][..]));
        assert_eq!(c.config.cmd, None);
        assert_eq!(c.config.extra.get("Hostname"), Some(&Value::from("h")));
        assert_eq!(c.extra.get("os.version"), Some(&Value::from("1")));
        let back: Value = serde_json::from_slice(&c.to_vec().expect("ser")).expect("json");
        assert_eq!(back["moby.buildkit.buildinfo.v1"], "x");
        assert_eq!(back["config"]["Tty"], false);
    }

    #[test]
    fn null_config_and_history() {
        let c = ImageConfig::from_slice(
            br#"{"config":null,"history":null,"rootfs":{"type":"layers","diff_ids":null}}"#,
            "d",
        )
        .expect("parse");
        assert_eq!(c.config, ContainerConfig::default());
        assert!(c.history.is_empty() && c.rootfs.diff_ids.is_empty());
    }

    #[test]
    fn platforms() {
        let p = Platform::parse("linux/amd64").expect("parse");
        assert_eq!((p.architecture.as_str(), p.variant), ("amd64", None));
        let p = Platform::parse("linux/aarch64").expect("parse");
        assert_eq!(
            (p.architecture.as_str(), p.variant.as_deref()),
            ("arm64", Some("v8"))
        );
        assert!(matches!(
            Platform::parse("windows/amd64"),
            Err(ConfigError::UnsupportedOs { .. })
        ));
        assert!(matches!(
            Platform::parse("linux//x"),
            Err(ConfigError::InvalidPlatform { .. })
        ));
        let host = Platform::host();
        assert_eq!(host.os, "linux");
        assert!(host.matches("linux", &host.architecture.clone(), None));
        assert!(!host.matches("linux", "s390x", None));
    }
}
