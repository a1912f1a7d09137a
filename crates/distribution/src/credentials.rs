//! Registry credentials in Docker's `config.json` (`$DOCKER_CONFIG/config.json`, else
//! `~/.docker/config.json`), read and written the way the docker CLI does.
//!
//! Lookup order for a registry: `credHelpers[<key>]`, then `credsStore`, then `auths[<key>]`
//! (`auth` is base64 `user:password`; `identitytoken` an OAuth refresh token). Docker Hub's key is
//! `https://index.docker.io/v1/`; other registries are keyed by `host[:port]`, and `auths` keys
//! written with a scheme or a path (`https://host/v1/`) match too. Helpers are the
//! `docker-credential-<name>` programs: `get` reads the server URL on stdin and prints
//! `{"ServerURL","Username","Secret"}` (user `<token>` means the secret is an identity token),
//! `store` reads that JSON. Writing keeps every other key of the file, goes through a temporary
//! file renamed into place, and leaves the file mode 0600. Secrets are never logged.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::io::AsyncWriteExt;

use crate::error::DistError;

/// The `auths` key of Docker Hub.
pub const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";
/// How long a credential helper may take.
const HELPER_TIMEOUT: Duration = Duration::from_secs(30);

/// Credentials for one registry.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Credential {
    pub username: String,
    pub password: String,
    /// An OAuth refresh token (`identitytoken`), used instead of the password for Bearer tokens.
    pub identity_token: Option<String>,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Where credentials are read from and written to.
#[derive(Debug, Clone)]
pub struct DockerConfig {
    path: PathBuf,
    /// Where `docker-credential-*` programs are looked up; `$PATH` when `None`.
    helper_dir: Option<PathBuf>,
}

#[derive(Debug, Deserialize, Serialize)]
struct HelperAnswer {
    #[serde(rename = "ServerURL", default)]
    server_url: String,
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: String,
}

/// The host part of an `auths` key (`https://host:port/v1/` → `host:port`).
fn key_host(key: &str) -> &str {
    let k = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    k.split('/').next().unwrap_or(k)
}

impl DockerConfig {
    /// The config at `path`.
    pub fn new(path: impl Into<PathBuf>) -> DockerConfig {
        DockerConfig {
            path: path.into(),
            helper_dir: None,
        }
    }

    /// Looks credential helpers up in `dir` instead of `$PATH`.
    pub fn with_helper_dir(mut self, dir: impl Into<PathBuf>) -> DockerConfig {
        self.helper_dir = Some(dir.into());
        self
    }

    fn helper_program(&self, helper: &str) -> PathBuf {
        let name = format!("docker-credential-{helper}");
        match &self.helper_dir {
            Some(d) => d.join(name),
            None => PathBuf::from(name),
        }
    }

    /// `$DOCKER_CONFIG/config.json`, else `$HOME/.docker/config.json`.
    pub fn default_location() -> DockerConfig {
        let dir = match std::env::var_os("DOCKER_CONFIG") {
            Some(d) => PathBuf::from(d),
            None => std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("/root"))
                .join(".docker"),
        };
        DockerConfig::new(dir.join("config.json"))
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn read(&self) -> Result<Map<String, Value>, DistError> {
        let bytes = match std::fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Map::new()),
            Err(source) => {
                return Err(DistError::Config {
                    op: "reading",
                    path: self.path.clone(),
                    source,
                })
            }
        };
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Map::new());
        }
        serde_json::from_slice(&bytes).map_err(|source| DistError::ConfigJson {
            path: self.path.clone(),
            source,
        })
    }

    fn write(&self, doc: &Map<String, Value>) -> Result<(), DistError> {
        let err = |op| {
            let path = self.path.clone();
            move |source| DistError::Config { op, path, source }
        };
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(err("creating the directory of"))?;
        let bytes = serde_json::to_vec_pretty(doc).map_err(|e| DistError::Config {
            op: "serialising",
            path: self.path.clone(),
            source: std::io::Error::other(e),
        })?;
        let tmp = dir.join(format!(".config.json.{:016x}", rand::random::<u64>()));
        let result = (|| {
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &self.path)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result.map_err(err("writing"))
    }

    /// The helper configured for `key`, if any.
    fn helper_for(doc: &Map<String, Value>, key: &str) -> Option<String> {
        let host = key_host(key);
        if let Some(Value::Object(helpers)) = doc.get("credHelpers") {
            for (k, v) in helpers {
                if (k == key || key_host(k) == host) && v.as_str().is_some_and(|s| !s.is_empty()) {
                    return v.as_str().map(str::to_string);
                }
            }
        }
        doc.get("credsStore")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    }

    /// The credentials stored for the registry `key` (see [`crate::registry_key`]).
    pub async fn get(&self, key: &str) -> Result<Option<Credential>, DistError> {
        let doc = self.read()?;
        if let Some(helper) = Self::helper_for(&doc, key) {
            return helper_get(&self.helper_program(&helper), &helper, key).await;
        }
        let host = key_host(key);
        let Some(Value::Object(auths)) = doc.get("auths") else {
            return Ok(None);
        };
        let entry = auths
            .get(key)
            .or_else(|| {
                auths
                    .iter()
                    .find(|(k, _)| key_host(k) == host)
                    .map(|(_, v)| v)
            })
            .and_then(Value::as_object);
        let Some(entry) = entry else { return Ok(None) };
        let mut cred = Credential::default();
        if let Some(auth) = entry.get("auth").and_then(Value::as_str) {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| DistError::Invalid {
                    what: format!("auth entry for {key} in {}", self.path.display()),
                    reason: "not base64 of user:password".to_string(),
                })?;
            let (u, p) = decoded.split_once(':').unwrap_or((decoded.as_str(), ""));
            cred.username = u.to_string();
            cred.password = p.to_string();
        }
        if let Some(u) = entry.get("username").and_then(Value::as_str) {
            if cred.username.is_empty() {
                cred.username = u.to_string();
            }
        }
        if let Some(p) = entry.get("password").and_then(Value::as_str) {
            if cred.password.is_empty() {
                cred.password = p.to_string();
            }
        }
        cred.identity_token = entry
            .get("identitytoken")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string);
        if cred.username.is_empty() && cred.identity_token.is_none() {
            return Ok(None);
        }
        Ok(Some(cred))
    }

    /// Stores credentials for `key`: through the configured helper, else base64 in `auths`.
    pub async fn store(&self, key: &str, cred: &Credential) -> Result<(), DistError> {
        let mut doc = self.read()?;
        let helper = Self::helper_for(&doc, key);
        if let Some(helper) = &helper {
            helper_store(&self.helper_program(helper), helper, key, cred).await?;
        }
        let auths = doc
            .entry("auths")
            .or_insert_with(|| Value::Object(Map::new()));
        if !auths.is_object() {
            *auths = Value::Object(Map::new());
        }
        if let Value::Object(auths) = auths {
            let mut entry = Map::new();
            if helper.is_none() {
                let raw = format!("{}:{}", cred.username, cred.password);
                entry.insert(
                    "auth".to_string(),
                    Value::String(base64::engine::general_purpose::STANDARD.encode(raw)),
                );
                if let Some(t) = &cred.identity_token {
                    entry.insert("identitytoken".to_string(), Value::String(t.clone()));
                }
            }
            auths.insert(key.to_string(), Value::Object(entry));
        }
        self.write(&doc)
    }
}

async fn run_helper(
    program: &Path,
    helper: &str,
    verb: &str,
    input: &[u8],
) -> Result<Vec<u8>, DistError> {
    let fail = |reason: String| DistError::CredentialHelper {
        helper: helper.to_string(),
        reason,
    };
    let mut child = tokio::process::Command::new(program)
        .arg(verb)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| fail(format!("starting: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input)
            .await
            .map_err(|e| fail(format!("writing its input: {e}")))?;
    }
    let out = tokio::time::timeout(HELPER_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| fail(format!("{verb} timed out")))?
        .map_err(|e| fail(format!("{verb}: {e}")))?;
    if !out.status.success() {
        let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
        return Err(fail(format!("{verb} failed ({}): {text}", out.status)));
    }
    Ok(out.stdout)
}

async fn helper_get(
    program: &Path,
    helper: &str,
    key: &str,
) -> Result<Option<Credential>, DistError> {
    let out = match run_helper(program, helper, "get", key.as_bytes()).await {
        Ok(o) => o,
        // The helpers answer "credentials not found in native keychain" with a failure status.
        Err(DistError::CredentialHelper { reason, .. })
            if reason.contains("credentials not found") =>
        {
            return Ok(None)
        }
        Err(e) => return Err(e),
    };
    let a: HelperAnswer =
        serde_json::from_slice(&out).map_err(|e| DistError::CredentialHelper {
            helper: helper.to_string(),
            reason: format!("unreadable answer: {e}"),
        })?;
    if a.username == "<token>" {
        return Ok(Some(Credential {
            username: String::new(),
            password: String::new(),
            identity_token: Some(a.secret),
        }));
    }
    Ok(Some(Credential {
        username: a.username,
        password: a.secret,
        identity_token: None,
    }))
}

async fn helper_store(
    program: &Path,
    helper: &str,
    key: &str,
    cred: &Credential,
) -> Result<(), DistError> {
    let a = match &cred.identity_token {
        Some(t) => HelperAnswer {
            server_url: key.to_string(),
            username: "<token>".to_string(),
            secret: t.clone(),
        },
        None => HelperAnswer {
            server_url: key.to_string(),
            username: cred.username.clone(),
            secret: cred.password.clone(),
        },
    };
    let input = serde_json::to_vec(&a).map_err(|e| DistError::CredentialHelper {
        helper: helper.to_string(),
        reason: e.to_string(),
    })?;
    run_helper(program, helper, "store", &input)
        .await
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_and_writes_auths() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("config.json");
        std::fs::write(
            &path,
            r#"{"auths":{"https://index.docker.io/v1/":{"auth":"dXNlcjpwYTpzcw=="},"http://reg.example:5000/v1/":{"auth":"YTpi"}},"psFormat":"x"}"#,
        )
        .expect("write");
        let c = DockerConfig::new(&path);
        let hub = c.get(DOCKER_HUB_KEY).await.expect("get").expect("some");
        assert_eq!(
            (hub.username.as_str(), hub.password.as_str()),
            ("user", "pa:ss")
        );
        let other = c.get("reg.example:5000").await.expect("get").expect("some");
        assert_eq!(other.username, "a");
        assert!(c.get("nowhere:1").await.expect("get").is_none());
        let cred = Credential {
            username: "me".into(),
            password: "secret".into(),
            identity_token: None,
        };
        c.store("127.0.0.1:5000", &cred).await.expect("store");
        assert_eq!(c.get("127.0.0.1:5000").await.expect("get"), Some(cred));
        let doc: Value =
            serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("json");
        assert_eq!(doc["psFormat"], "x", "other keys are kept");
        assert_eq!(doc["auths"]["127.0.0.1:5000"]["auth"], "bWU6c2VjcmV0");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(!format!("{:?}", c.get("127.0.0.1:5000").await.expect("get")).contains("secret"));
    }

    #[tokio::test]
    async fn credential_helper_round_trip() {
        let dir = tempfile::tempdir().expect("tempdir");
        // A helper that stores what it is given in a file and answers get with it.
        let bin = dir.path().join("docker-credential-testhelper");
        let store = dir.path().join("helper-store");
        std::fs::write(
            &bin,
            format!(
                "#!/bin/sh\ncase \"$1\" in\n store) cat > {s} ;;\n get) read url; if [ -f {s} ]; then cat {s}; else echo 'credentials not found in native keychain'; exit 1; fi ;;\nesac\n",
                s = store.display()
            ),
        )
        .expect("write helper");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let path = dir.path().join("config.json");
        std::fs::write(&path, r#"{"credHelpers":{"reg.test":"testhelper"}}"#).expect("write");
        let c = DockerConfig::new(&path).with_helper_dir(dir.path());
        assert!(c.get("reg.test").await.expect("get").is_none());
        let cred = Credential {
            username: "u".into(),
            password: "p".into(),
            identity_token: None,
        };
        c.store("reg.test", &cred).await.expect("store");
        assert_eq!(c.get("reg.test").await.expect("get"), Some(cred));
        let doc: Value =
            serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("json");
        assert_eq!(
            doc["auths"]["reg.test"],
            serde_json::json!({}),
            "no secret in the file"
        );
    }
}
