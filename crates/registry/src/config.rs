//! The registry's configuration: a JSON file (`--config`) overridden by flags, and the assembly of the
//! service (storage backend, auth, options) from it.
//!
//! ```json
//! {
//!   "addr": "127.0.0.1:5000",
//!   "root": "/var/lib/berth-registry",
//!   "storage": {"kind": "fs"},
//!   "delete_enabled": true,
//!   "max_manifest_bytes": 4194304,
//!   "max_blob_bytes": 68719476736,
//!   "tls": {"cert": "/etc/berth/registry.crt", "key": "/etc/berth/registry.key"},
//!   "auth": {
//!     "htpasswd": "/etc/berth/htpasswd",
//!     "realm": "berth",
//!     "token": {"service": "berth-registry", "issuer": "berth-registry", "secret_file": "/etc/berth/token.key"},
//!     "access": [{"repository": "public/*", "anonymous": ["pull"], "users": {"*": ["pull", "push"]}}]
//!   },
//!   "gc": {"interval_secs": 3600, "grace_secs": 3600},
//!   "log": {"level": "info", "format": "json"},
//!   "shutdown_timeout_secs": 30
//! }
//! ```
//! `storage.kind` is `fs` (blobs and metadata under `root`), `memory` (for trials), or `s3` (any S3-compatible
//! store: `{"kind": "s3", "bucket": "...", "endpoint": "http://...", "region": "...", "allow_http": true}`,
//! credentials from the usual `AWS_*` environment variables, never from this file).
//!
//! Several replicas may share one bucket behind a load balancer: blobs, manifests, tags and referrers live only
//! in the bucket, so any replica serves, lists and deletes what another received, and `berth registry gc`
//! (or one replica's `gc.interval_secs`) collects the bucket while they all run. An upload in flight is staged
//! in the local `root` of the replica that opened it until its final PUT, so the requests of one upload
//! (`/v2/<name>/blobs/uploads/<uuid>`) must reach the same replica: route on that path (or use sticky sessions). With `auth.token` the
//! registry runs Docker's token flow with its own token endpoint at `/token`; with only `auth.htpasswd`, Basic
//! auth. Without `auth`, anyone may do anything: bind to loopback or put it behind a proxy.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::api::AppState;
use crate::auth::{AccessRule, AccessRules, Auth, Htpasswd, Mode, TokenService};
use crate::metrics::Metrics;
use crate::registry::{Options, Registry};
use crate::storage::fs::{FsBlobStore, FsKv};
use crate::storage::uploads::Uploads;
use crate::storage::{BlobStore, KvMetadata, MetadataStore};

/// A configuration problem.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("read config {path}")]
    Read {
        /// Path.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid.
    #[error("parse config {path}")]
    Parse {
        /// Path.
        path: PathBuf,
        /// Cause.
        #[source]
        source: serde_json::Error,
    },
    /// An htpasswd file is unusable.
    #[error(transparent)]
    Htpasswd(#[from] crate::auth::htpasswd::HtpasswdError),
    /// The token secret cannot be read or is too short.
    #[error("token secret {path}: {reason}")]
    Secret {
        /// Path.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Token auth needs users.
    #[error("auth.token needs auth.htpasswd (the users the token endpoint authenticates)")]
    TokenWithoutUsers,
    /// A storage kind that is unknown or not built in.
    #[error("storage kind {0:?} is not available in this build")]
    StorageKind(String),
    /// The object store could not be set up.
    #[error("object store: {0}")]
    ObjectStore(String),
    /// The root cannot be prepared.
    #[error("prepare root {path}")]
    Root {
        /// Path.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
}

/// Storage settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// `fs`, `memory` or `s3`.
    #[serde(default = "default_kind")]
    pub kind: String,
    /// S3 bucket.
    #[serde(default)]
    pub bucket: Option<String>,
    /// S3 endpoint URL (for S3-compatible stores).
    #[serde(default)]
    pub endpoint: Option<String>,
    /// S3 region.
    #[serde(default)]
    pub region: Option<String>,
    /// Allow plain-HTTP endpoints.
    #[serde(default)]
    pub allow_http: bool,
}

fn default_kind() -> String {
    "fs".into()
}

impl Default for StorageConfig {
    fn default() -> StorageConfig {
        StorageConfig {
            kind: default_kind(),
            bucket: None,
            endpoint: None,
            region: None,
            allow_http: false,
        }
    }
}

/// TLS settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
}

/// Token auth settings.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// Token endpoint URL advertised in challenges (default: `<scheme>://<host>/token` of each request).
    #[serde(default)]
    pub realm: Option<String>,
    /// Service name (token audience).
    #[serde(default = "default_service")]
    pub service: String,
    /// Token issuer.
    #[serde(default = "default_service")]
    pub issuer: String,
    /// File holding the signing secret (share it between replicas). Without it, a random secret per process.
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
    /// Token lifetime in seconds.
    #[serde(default = "default_ttl")]
    pub ttl_secs: u64,
}

fn default_service() -> String {
    "berth-registry".into()
}

fn default_ttl() -> u64 {
    300
}

/// Auth settings.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// htpasswd file (bcrypt).
    #[serde(default)]
    pub htpasswd: Option<PathBuf>,
    /// Basic realm.
    #[serde(default)]
    pub realm: Option<String>,
    /// Token flow.
    #[serde(default)]
    pub token: Option<TokenConfig>,
    /// Access rules.
    #[serde(default)]
    pub access: Vec<AccessRule>,
}

/// GC settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GcConfig {
    /// Run a collection this often (0: never, only `berth registry gc`).
    #[serde(default)]
    pub interval_secs: u64,
    /// Keep unreferenced blobs younger than this.
    #[serde(default = "default_grace")]
    pub grace_secs: u64,
}

fn default_grace() -> u64 {
    3600
}

impl Default for GcConfig {
    fn default() -> GcConfig {
        GcConfig {
            interval_secs: 0,
            grace_secs: default_grace(),
        }
    }
}

/// Log settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// `error`, `warn`, `info`, `debug`, `trace` or a tracing filter.
    #[serde(default = "default_level")]
    pub level: String,
    /// `text` or `json`.
    #[serde(default = "default_format")]
    pub format: String,
}

fn default_level() -> String {
    "info".into()
}

fn default_format() -> String {
    "text".into()
}

impl Default for LogConfig {
    fn default() -> LogConfig {
        LogConfig {
            level: default_level(),
            format: default_format(),
        }
    }
}

/// The whole configuration.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Listen address.
    #[serde(default = "default_addr")]
    pub addr: String,
    /// Data root.
    #[serde(default = "default_root")]
    pub root: PathBuf,
    /// Storage backend.
    #[serde(default)]
    pub storage: StorageConfig,
    /// Allow DELETE of manifests, tags and blobs.
    #[serde(default)]
    pub delete_enabled: bool,
    /// Largest manifest accepted.
    #[serde(default = "default_max_manifest")]
    pub max_manifest_bytes: usize,
    /// Largest blob accepted.
    #[serde(default = "default_max_blob")]
    pub max_blob_bytes: u64,
    /// TLS.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// Auth.
    #[serde(default)]
    pub auth: Option<AuthConfig>,
    /// GC.
    #[serde(default)]
    pub gc: GcConfig,
    /// Logs.
    #[serde(default)]
    pub log: LogConfig,
    /// How long shutdown waits for requests in flight.
    #[serde(default = "default_shutdown")]
    pub shutdown_timeout_secs: u64,
}

fn default_addr() -> String {
    "127.0.0.1:5000".into()
}

fn default_root() -> PathBuf {
    PathBuf::from("/var/lib/berth-registry")
}

fn default_max_manifest() -> usize {
    4 << 20
}

fn default_max_blob() -> u64 {
    64 << 30
}

fn default_shutdown() -> u64 {
    30
}

impl Default for Config {
    fn default() -> Config {
        Config {
            addr: default_addr(),
            root: default_root(),
            storage: StorageConfig::default(),
            delete_enabled: false,
            max_manifest_bytes: default_max_manifest(),
            max_blob_bytes: default_max_blob(),
            tls: None,
            auth: None,
            gc: GcConfig::default(),
            log: LogConfig::default(),
            shutdown_timeout_secs: default_shutdown(),
        }
    }
}

impl Config {
    /// Reads a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        serde_json::from_slice(&text).map_err(|source| ConfigError::Parse {
            path: path.to_path_buf(),
            source,
        })
    }
}

/// A blob store and a metadata store.
type Stores = (Arc<dyn BlobStore>, Arc<dyn MetadataStore>);

fn stores(cfg: &Config) -> Result<Stores, ConfigError> {
    match cfg.storage.kind.as_str() {
        "fs" => Ok((
            Arc::new(FsBlobStore::new(&cfg.root)),
            Arc::new(KvMetadata::new(FsKv::new(&cfg.root))),
        )),
        #[cfg(feature = "object-store")]
        "memory" => {
            let s: Arc<dyn object_store::ObjectStore> =
                Arc::new(object_store::memory::InMemory::new());
            Ok(object_stores(s))
        }
        #[cfg(feature = "s3")]
        "s3" => {
            let mut b = object_store::aws::AmazonS3Builder::from_env();
            if let Some(bucket) = &cfg.storage.bucket {
                b = b.with_bucket_name(bucket);
            }
            if let Some(e) = &cfg.storage.endpoint {
                b = b.with_endpoint(e);
            }
            if let Some(r) = &cfg.storage.region {
                b = b.with_region(r);
            }
            b = b.with_allow_http(cfg.storage.allow_http);
            let s = b
                .build()
                .map_err(|e| ConfigError::ObjectStore(e.to_string()))?;
            Ok(object_stores(Arc::new(s)))
        }
        other => Err(ConfigError::StorageKind(other.to_string())),
    }
}

#[cfg(feature = "object-store")]
fn object_stores(
    s: Arc<dyn object_store::ObjectStore>,
) -> (Arc<dyn BlobStore>, Arc<dyn MetadataStore>) {
    use crate::storage::object::{ObjectBlobStore, ObjectKv};
    (
        Arc::new(ObjectBlobStore::new(s.clone())),
        Arc::new(KvMetadata::new(ObjectKv::new(s))),
    )
}

fn auth(cfg: &Config) -> Result<Auth, ConfigError> {
    let Some(a) = &cfg.auth else {
        return Ok(Auth::none());
    };
    let users = match &a.htpasswd {
        Some(p) => Some(Htpasswd::load(p)?),
        None => None,
    };
    let rules = AccessRules::new(a.access.clone());
    let mode = match &a.token {
        Some(t) => {
            if users.is_none() {
                return Err(ConfigError::TokenWithoutUsers);
            }
            let secret = match &t.secret_file {
                Some(p) => {
                    let s = std::fs::read(p).map_err(|e| ConfigError::Secret {
                        path: p.clone(),
                        reason: e.to_string(),
                    })?;
                    if s.len() < 32 {
                        return Err(ConfigError::Secret {
                            path: p.clone(),
                            reason: "shorter than 32 bytes".into(),
                        });
                    }
                    s
                }
                None => rand::random::<[u8; 32]>().to_vec(),
            };
            Mode::Token(Box::new(TokenService::new(
                &secret,
                &t.issuer,
                &t.service,
                t.realm.clone(),
                Duration::from_secs(t.ttl_secs),
            )))
        }
        None if users.is_some() => Mode::Basic {
            realm: a.realm.clone().unwrap_or_else(|| "berth-registry".into()),
        },
        None => Mode::None,
    };
    Ok(Auth { mode, users, rules })
}

/// Prepares the root (directories, leftovers of a crash) and assembles the service.
pub fn build(cfg: &Config) -> Result<AppState, ConfigError> {
    let uploads_dir = cfg.root.join("uploads");
    std::fs::create_dir_all(&uploads_dir).map_err(|source| ConfigError::Root {
        path: uploads_dir.clone(),
        source,
    })?;
    let removed = crate::storage::fs::remove_temp_files(&cfg.root.join("blobs"))
        + crate::storage::fs::remove_temp_files(&cfg.root.join("repositories"));
    if removed > 0 {
        tracing::info!(removed, "removed temp files left by a crash");
    }
    let (blobs, meta) = stores(cfg)?;
    let registry = Registry::new(
        blobs,
        meta,
        Uploads::new(uploads_dir, cfg.max_blob_bytes),
        Options {
            max_manifest_bytes: cfg.max_manifest_bytes,
            delete_enabled: cfg.delete_enabled,
            ..Options::default()
        },
    );
    Ok(AppState {
        registry: Arc::new(registry),
        auth: auth(cfg)?,
        metrics: Arc::new(Metrics::default()),
        tls: cfg.tls.is_some(),
        summaries: crate::web::Summaries::default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_unknown_keys() {
        let c = Config::default();
        assert_eq!(c.addr, "127.0.0.1:5000");
        assert!(!c.delete_enabled);
        assert_eq!(c.max_manifest_bytes, 4 << 20);
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("c.json");
        std::fs::write(
            &p,
            r#"{"addr": "127.0.0.1:0", "delete_enabled": true, "gc": {"interval_secs": 5}}"#,
        )
        .expect("write");
        let c = Config::load(&p).expect("load");
        assert!(c.delete_enabled);
        assert_eq!(c.gc.interval_secs, 5);
        assert_eq!(c.gc.grace_secs, 3600);
        std::fs::write(&p, r#"{"adr": "x"}"#).expect("write");
        assert!(matches!(Config::load(&p), Err(ConfigError::Parse { .. })));
    }

    #[test]
    fn token_auth_needs_users_and_a_long_secret() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut c = Config {
            root: dir.path().to_path_buf(),
            auth: Some(AuthConfig {
                token: Some(serde_json::from_str("{}").expect("token config")),
                ..AuthConfig::default()
            }),
            ..Config::default()
        };
        assert!(matches!(build(&c), Err(ConfigError::TokenWithoutUsers)));
        let hp = dir.path().join("htpasswd");
        std::fs::write(&hp, format!("u:{}\n", bcrypt::hash("p", 4).expect("hash"))).expect("write");
        let secret = dir.path().join("secret");
        std::fs::write(&secret, b"short").expect("write");
        c.auth = Some(AuthConfig {
            htpasswd: Some(hp),
            token: Some(
                serde_json::from_value(serde_json::json!({"secret_file": secret}))
                    .expect("token config"),
            ),
            ..AuthConfig::default()
        });
        assert!(matches!(build(&c), Err(ConfigError::Secret { .. })));
    }
}
