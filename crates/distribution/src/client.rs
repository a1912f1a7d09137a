//! [`RegistryClient`]: endpoints, TLS rules, authentication and retries for every registry call.
//!
//! - Endpoints: `docker.io` is served by `registry-1.docker.io`, after the `registry-mirrors` (pull
//!   only; a failing mirror falls through to the next endpoint). Other domains are their own host.
//! - TLS: HTTPS with the system roots. A registry listed in `insecure-registries` (by `host[:port]`,
//!   host, or CIDR of its IP address) or on loopback (`localhost`, 127.0.0.0/8, `::1`, as Docker
//!   treats them) is tried over HTTPS without certificate verification first, then plain HTTP; the
//!   first answer decides, per host, for the life of the client.
//!   A registry with a directory in one of `certs_dirs` (Docker's `/etc/docker/certs.d/<host[:port]>`) is
//!   verified against the CAs there (`*.crt`) as well, and offered the client certificate there
//!   (`*.cert` + `*.key`); see [`crate::tls`]. The token server of such a registry is reached
//!   with the same TLS settings, as Docker does.
//! - Auth: a 401 carries a challenge (see [`crate::auth`]); the token or Basic credentials obtained
//!   are cached per host and scope, so only the first request of a scope pays the round trip.
//!   Credentials come from [`DockerConfig`], looked up once per registry key.
//! - Retries: transport errors, 429 (honouring `Retry-After`, capped) and 5xx are retried with
//!   exponential back-off and jitter, `max_attempts` in all, for requests marked idempotent.
//!   Redirects (to blob storage) are followed by reqwest, which drops `Authorization` when the
//!   host changes.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::header::{HeaderValue, AUTHORIZATION, RETRY_AFTER, WWW_AUTHENTICATE};
use reqwest::{Response, StatusCode};

use crate::auth::{
    basic_header, error_detail, fetch_token, parse_challenge, Challenge, TokenFailure,
};
use crate::credentials::{Credential, DockerConfig, DOCKER_HUB_KEY};
use crate::error::DistError;

/// The host serving `docker.io`.
pub const DOCKER_HUB_HOST: &str = "registry-1.docker.io";
/// Longest wait a `Retry-After` may impose.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

/// How a [`RegistryClient`] behaves (Docker's `daemon.json` keys where they exist).
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// `insecure-registries`: `host[:port]`, host, or CIDR.
    pub insecure_registries: Vec<String>,
    /// `registry-mirrors`: base URLs tried before Docker Hub for `docker.io` pulls.
    pub registry_mirrors: Vec<String>,
    /// Where credentials live.
    pub docker_config: DockerConfig,
    /// Attempts per request (and per blob download), at least 1.
    pub max_attempts: u32,
    /// First back-off delay; doubled on each retry, capped at 10 s.
    pub retry_delay: Duration,
    pub connect_timeout: Duration,
    pub user_agent: String,
    /// Per-registry CAs and client certificates, `<dir>/<host[:port]>/` (Docker's `certs.d`); the
    /// first directory that has one for a host is used.
    pub certs_dirs: Vec<PathBuf>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            insecure_registries: Vec::new(),
            registry_mirrors: Vec::new(),
            docker_config: DockerConfig::default_location(),
            max_attempts: 5,
            retry_delay: Duration::from_millis(500),
            connect_timeout: Duration::from_secs(30),
            user_agent: format!("berth/{}", env!("CARGO_PKG_VERSION")),
            certs_dirs: Vec::new(),
        }
    }
}

/// One base URL a repository is reached through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    /// `https://host[:port]` or `http://host[:port]`, no trailing slash.
    pub(crate) base: String,
    /// `host[:port]`, the key of token and scheme caches.
    pub(crate) host: String,
    pub(crate) insecure: bool,
    pub(crate) mirror: bool,
    /// The `config.json` key of the registry's credentials.
    pub(crate) cred_key: String,
    /// The registry's name for messages (`docker.io`, `localhost:5000`).
    pub(crate) registry: String,
}

#[derive(Debug, Clone)]
enum HostAuth {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

#[derive(Debug, Default)]
struct State {
    schemes: HashMap<String, &'static str>,
    auth: HashMap<String, HostAuth>,
    tokens: HashMap<(String, String), crate::auth::Token>,
    creds: HashMap<String, Option<Credential>>,
    /// Clients for hosts with a `certs.d` directory, with the fingerprint of what it held.
    tls: HashMap<String, ([u8; 32], reqwest::Client)>,
}

/// The registry client (cheap to clone; share one per daemon).
#[derive(Debug, Clone)]
pub struct RegistryClient {
    pub(crate) opts: Arc<ClientOptions>,
    secure: reqwest::Client,
    insecure: reqwest::Client,
    state: Arc<Mutex<State>>,
}

/// The registry name and `config.json` key for a registry given as a reference domain or as
/// `docker login` takes it (`docker.io`, `https://index.docker.io/v1/`, `host:port`, URL).
pub fn registry_key(registry: &str) -> (String, String) {
    let trimmed = registry
        .trim()
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let host = trimmed.split('/').next().unwrap_or("");
    match host {
        ""
        | "docker.io"
        | "index.docker.io"
        | "registry-1.docker.io"
        | "registry.hub.docker.com" => ("docker.io".to_string(), DOCKER_HUB_KEY.to_string()),
        h => (h.to_string(), h.to_string()),
    }
}

fn host_only(host_port: &str) -> &str {
    if let Some(rest) = host_port.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host_port.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host_port,
    }
}

fn in_cidr(ip: IpAddr, cidr: &str) -> bool {
    let Some((net, bits)) = cidr.split_once('/') else {
        return false;
    };
    let (Ok(net), Ok(bits)) = (net.parse::<IpAddr>(), bits.parse::<u32>()) else {
        return false;
    };
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) if bits <= 32 => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) if bits <= 128 => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

fn http_builder(opts: &ClientOptions) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .user_agent(opts.user_agent.clone())
        .connect_timeout(opts.connect_timeout)
        .redirect(reqwest::redirect::Policy::limited(10))
}

/// `host[:port]` of a URL.
fn url_host(url: &str) -> Option<String> {
    let u = reqwest::Url::parse(url).ok()?;
    let h = u.host_str()?;
    Some(match u.port() {
        Some(p) => format!("{h}:{p}"),
        None => h.to_string(),
    })
}

impl RegistryClient {
    /// Builds the client; fails only when the TLS stack cannot be set up.
    pub fn new(opts: ClientOptions) -> Result<RegistryClient, DistError> {
        let build = |insecure: bool| {
            http_builder(&opts)
                .danger_accept_invalid_certs(insecure)
                .build()
                .map_err(|source| DistError::Transport {
                    registry: "local".to_string(),
                    what: "setting up the http client".to_string(),
                    source,
                })
        };
        Ok(RegistryClient {
            secure: build(false)?,
            insecure: build(true)?,
            opts: Arc::new(opts),
            state: Arc::new(Mutex::new(State::default())),
        })
    }

    /// A client for one request that carries its own credentials (a daemon gets them per request, in
    /// `X-Registry-Auth`): it shares the connection pools but has its own token cache, so one caller's
    /// credentials and tokens never serve another. `registry` is a reference domain or a login server.
    pub fn with_credential(&self, registry: &str, cred: Option<Credential>) -> RegistryClient {
        let mut state = State {
            tls: self.state().tls.clone(),
            ..State::default()
        };
        if let Some(c) = cred {
            let (_, key) = registry_key(registry);
            state.creds.insert(key, Some(c));
        }
        // Without credentials of its own it must not fall back to the daemon's config.json either.
        RegistryClient {
            secure: self.secure.clone(),
            insecure: self.insecure.clone(),
            opts: self.opts.clone(),
            state: Arc::new(Mutex::new(state)),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether `host[:port]` is treated as insecure (listed, or loopback).
    pub fn is_insecure(&self, host_port: &str) -> bool {
        let host = host_only(host_port);
        let ip = host.parse::<IpAddr>().ok();
        if host == "localhost" || ip.is_some_and(|i| i.is_loopback()) {
            return true;
        }
        self.opts.insecure_registries.iter().any(|entry| {
            let e = entry
                .trim()
                .trim_start_matches("http://")
                .trim_start_matches("https://")
                .trim_end_matches('/');
            e == host_port || e == host || ip.is_some_and(|i| in_cidr(i, e))
        })
    }

    pub(crate) fn http(&self, ep: &Endpoint) -> reqwest::Client {
        if ep.insecure {
            return self.insecure.clone();
        }
        match self.state().tls.get(&ep.host) {
            Some((_, c)) => c.clone(),
            None => self.secure.clone(),
        }
    }

    /// Reads `host`'s `certs.d` directory, as Docker does at every operation (a CA added later is
    /// used without a restart): a client that trusts its CAs and offers its client certificate, or
    /// `None` when there is no such directory. The client is rebuilt only when the files changed,
    /// so connections stay pooled.
    fn host_tls(&self, host: &str) -> Result<Option<reqwest::Client>, DistError> {
        let mut found = None;
        for dir in &self.opts.certs_dirs {
            found = crate::tls::read_host_dir(dir, host)?;
            if found.is_some() {
                break;
            }
        }
        let client = match found {
            None => {
                self.state().tls.remove(host);
                None
            }
            Some(t) => {
                if let Some((fp, c)) = self.state().tls.get(host) {
                    if *fp == t.fingerprint {
                        return Ok(Some(c.clone()));
                    }
                }
                let fingerprint = t.fingerprint;
                tracing::debug!(host, dir = %t.dir.display(), roots = t.roots.len(), client_cert = t.identity.is_some(), "registry TLS from certs.d");
                let mut b = http_builder(&self.opts);
                for root in t.roots {
                    b = b.add_root_certificate(root);
                }
                if let Some(id) = t.identity {
                    b = b.identity(id);
                }
                let c = b.build().map_err(|source| DistError::Transport {
                    registry: host.to_string(),
                    what: "setting up TLS".to_string(),
                    source,
                })?;
                self.state()
                    .tls
                    .insert(host.to_string(), (fingerprint, c.clone()));
                Some(c)
            }
        };
        Ok(client)
    }

    /// The client for a token realm: no verification on an insecure host, else the realm host's
    /// own `certs.d` settings, else those of the registry that sent us there.
    fn realm_http(&self, realm: &str, ep: &Endpoint) -> Result<reqwest::Client, DistError> {
        let Some(host) = url_host(realm) else {
            return Ok(self.http(ep));
        };
        if self.is_insecure(&host) {
            return Ok(self.insecure.clone());
        }
        Ok(match self.host_tls(&host)? {
            Some(c) => c,
            None if ep.insecure => self.secure.clone(),
            None => self.http(ep),
        })
    }

    /// The endpoints of a registry domain, mirrors first when `pull` and the domain is docker.io.
    pub(crate) async fn endpoints(
        &self,
        domain: &str,
        pull: bool,
    ) -> Result<Vec<Endpoint>, DistError> {
        let (registry, cred_key) = registry_key(domain);
        let mut out = Vec::new();
        if registry == "docker.io" && pull {
            for m in &self.opts.registry_mirrors {
                let url = reqwest::Url::parse(m).map_err(|e| DistError::InvalidRegistry {
                    name: m.clone(),
                    reason: e.to_string(),
                })?;
                let host = match (url.host_str(), url.port()) {
                    (Some(h), Some(p)) => format!("{h}:{p}"),
                    (Some(h), None) => h.to_string(),
                    _ => {
                        return Err(DistError::InvalidRegistry {
                            name: m.clone(),
                            reason: "no host".to_string(),
                        })
                    }
                };
                let insecure = self.is_insecure(&host);
                if !insecure {
                    self.host_tls(&host)?;
                }
                out.push(Endpoint {
                    base: m.trim_end_matches('/').to_string(),
                    insecure,
                    host,
                    mirror: true,
                    cred_key: cred_key.clone(),
                    registry: registry.clone(),
                });
            }
        }
        let host = if registry == "docker.io" {
            DOCKER_HUB_HOST.to_string()
        } else {
            registry.clone()
        };
        let insecure = self.is_insecure(&host);
        let scheme = if insecure {
            self.probe_scheme(&host).await
        } else {
            self.host_tls(&host)?;
            "https"
        };
        out.push(Endpoint {
            base: format!("{scheme}://{host}"),
            host,
            insecure,
            mirror: false,
            cred_key,
            registry,
        });
        Ok(out)
    }

    /// HTTPS (unverified) when the insecure host answers it, else HTTP (Docker's fallback).
    async fn probe_scheme(&self, host: &str) -> &'static str {
        if let Some(s) = self.state().schemes.get(host) {
            return s;
        }
        let probe = self
            .insecure
            .get(format!("https://{host}/v2/"))
            .timeout(Duration::from_secs(10))
            .send()
            .await;
        let scheme = if probe.is_ok() { "https" } else { "http" };
        tracing::debug!(host, scheme, "insecure registry scheme");
        self.state().schemes.insert(host.to_string(), scheme);
        scheme
    }

    /// The credentials for an endpoint's registry (looked up once).
    pub(crate) async fn credential(&self, key: &str) -> Result<Option<Credential>, DistError> {
        if let Some(c) = self.state().creds.get(key) {
            return Ok(c.clone());
        }
        let c = self.opts.docker_config.get(key).await?;
        self.state().creds.insert(key.to_string(), c.clone());
        Ok(c)
    }

    /// The `Authorization` value to send right away, when the host's scheme is known.
    async fn cached_auth(
        &self,
        ep: &Endpoint,
        scopes: &[String],
        action: &'static str,
        repository: &str,
    ) -> Result<Option<String>, DistError> {
        let auth = self.state().auth.get(&ep.host).cloned();
        match auth {
            None => Ok(None),
            Some(HostAuth::Basic) => Ok(self
                .credential(&ep.cred_key)
                .await?
                .map(|c| basic_header(&c))),
            Some(HostAuth::Bearer { realm, service }) => {
                let key = (ep.host.clone(), scopes.join(" "));
                if let Some(t) = self.state().tokens.get(&key) {
                    if t.expires > Instant::now() {
                        return Ok(Some(format!("Bearer {}", t.value)));
                    }
                }
                let cred = if ep.mirror {
                    None
                } else {
                    self.credential(&ep.cred_key).await?
                };
                let http = self.realm_http(&realm, ep)?;
                match fetch_token(&http, &realm, service.as_deref(), scopes, cred.as_ref()).await {
                    Ok(t) => {
                        let v = format!("Bearer {}", t.value);
                        self.state().tokens.insert(key, t);
                        Ok(Some(v))
                    }
                    Err(TokenFailure::Refused(detail)) => Err(DistError::AccessDenied {
                        action,
                        repository: repository.to_string(),
                        detail,
                    }),
                    Err(TokenFailure::Other(detail)) => Err(DistError::Status {
                        registry: ep.registry.clone(),
                        what: "a token request".to_string(),
                        status: 0,
                        detail,
                    }),
                }
            }
        }
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let base = self.opts.retry_delay.as_millis() as u64;
        let exp = base.saturating_mul(1u64 << attempt.min(6)).min(10_000);
        Duration::from_millis(exp + rand::random::<u64>() % (base / 2 + 1))
    }

    /// Sends a request built by `build`, authenticating on 401 and retrying (when `idempotent`)
    /// transport errors, 429 and 5xx. Returns the final response, whatever its status.
    pub(crate) async fn send(
        &self,
        ep: &Endpoint,
        req: &Req<'_>,
        build: &(dyn Fn(&reqwest::Client) -> reqwest::RequestBuilder + Send + Sync),
    ) -> Result<Response, DistError> {
        let attempts = self.opts.max_attempts.max(1);
        let mut attempt = 0;
        let mut authenticated_fresh = false;
        loop {
            attempt += 1;
            let authz = self
                .cached_auth(ep, req.scopes, req.action, req.repository)
                .await?;
            let mut rb = build(&self.http(ep));
            if let Some(a) = &authz {
                if let Ok(v) = HeaderValue::from_str(a) {
                    rb = rb.header(AUTHORIZATION, v);
                }
            }
            let resp = match rb.send().await {
                Ok(r) => r,
                Err(source) => {
                    if req.idempotent && attempt < attempts && !crate::error::is_permanent(&source)
                    {
                        tracing::debug!(error = %source, attempt, what = req.what, "retrying");
                        tokio::time::sleep(self.backoff(attempt)).await;
                        continue;
                    }
                    return Err(DistError::Transport {
                        registry: ep.registry.clone(),
                        what: req.what.to_string(),
                        source,
                    });
                }
            };
            let status = resp.status();
            if status == StatusCode::UNAUTHORIZED && !authenticated_fresh {
                let challenge = resp
                    .headers()
                    .get(WWW_AUTHENTICATE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(parse_challenge);
                let learned = match challenge {
                    Some(Challenge::Basic) => Some(HostAuth::Basic),
                    Some(Challenge::Bearer { realm, service, .. }) => {
                        Some(HostAuth::Bearer { realm, service })
                    }
                    None => None,
                };
                if let Some(l) = learned {
                    {
                        let mut st = self.state();
                        st.auth.insert(ep.host.clone(), l);
                        st.tokens.remove(&(ep.host.clone(), req.scopes.join(" ")));
                    }
                    authenticated_fresh = true;
                    attempt -= 1;
                    continue;
                }
                return Ok(resp);
            }
            let retryable = status == StatusCode::TOO_MANY_REQUESTS
                || matches!(status.as_u16(), 500 | 502 | 503 | 504);
            if retryable && req.idempotent && attempt < attempts {
                let wait = resp
                    .headers()
                    .get(RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|s| s.trim().parse::<u64>().ok())
                    .map(|s| Duration::from_secs(s).min(MAX_RETRY_AFTER))
                    .unwrap_or_else(|| self.backoff(attempt));
                tracing::debug!(%status, attempt, what = req.what, "retrying");
                tokio::time::sleep(wait).await;
                continue;
            }
            return Ok(resp);
        }
    }

    /// Verifies credentials against the registry's `/v2/` and stores them in `config.json`.
    /// `registry` is what `docker login` takes (empty for Docker Hub).
    pub async fn login(
        &self,
        registry: &str,
        username: &str,
        password: &str,
    ) -> Result<LoginOutcome, DistError> {
        self.login_inner(registry, username, password, true).await
    }

    /// Verify credentials against the registry's `/v2/` without storing them anywhere (a daemon's
    /// `/auth`: the client keeps the credentials).
    pub async fn check_login(
        &self,
        registry: &str,
        username: &str,
        password: &str,
    ) -> Result<LoginOutcome, DistError> {
        self.login_inner(registry, username, password, false).await
    }

    async fn login_inner(
        &self,
        registry: &str,
        username: &str,
        password: &str,
        store: bool,
    ) -> Result<LoginOutcome, DistError> {
        let (name, key) = registry_key(registry);
        let ep = self.endpoints(&name, false).await?.pop().ok_or_else(|| {
            DistError::InvalidRegistry {
                name: registry.to_string(),
                reason: "no endpoint".to_string(),
            }
        })?;
        let cred = Credential {
            username: username.to_string(),
            password: password.to_string(),
            identity_token: None,
        };
        let url = format!("{}/v2/", ep.base);
        let transport = |source| DistError::Transport {
            registry: name.clone(),
            what: "checking credentials".to_string(),
            source,
        };
        let resp = self.http(&ep).get(&url).send().await.map_err(transport)?;
        if resp.status() == StatusCode::UNAUTHORIZED {
            let challenge = resp
                .headers()
                .get(WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok())
                .and_then(parse_challenge);
            match challenge {
                Some(Challenge::Bearer { realm, service, .. }) => {
                    let http = self.realm_http(&realm, &ep)?;
                    match fetch_token(&http, &realm, service.as_deref(), &[], Some(&cred)).await {
                        Ok(_) => {}
                        Err(TokenFailure::Refused(_)) => {
                            return Err(DistError::LoginFailed { registry: name })
                        }
                        Err(TokenFailure::Other(detail)) => {
                            return Err(DistError::Status {
                                registry: name,
                                what: "login".to_string(),
                                status: 0,
                                detail,
                            })
                        }
                    }
                }
                _ => {
                    let again = self
                        .http(&ep)
                        .get(&url)
                        .header(AUTHORIZATION, basic_header(&cred))
                        .send()
                        .await
                        .map_err(transport)?;
                    if again.status() == StatusCode::UNAUTHORIZED {
                        return Err(DistError::LoginFailed { registry: name });
                    }
                    if !again.status().is_success() {
                        return Err(status_error(&ep, again, "login", "login", &name).await);
                    }
                }
            }
        } else if !resp.status().is_success() {
            return Err(status_error(&ep, resp, "login", "login", &name).await);
        }
        if store {
            self.opts.docker_config.store(&key, &cred).await?;
        }
        {
            let mut st = self.state();
            st.creds.insert(key.clone(), Some(cred));
            st.tokens.retain(|(h, _), _| h != &ep.host);
        }
        Ok(LoginOutcome {
            registry: name,
            status: "Login Succeeded".to_string(),
        })
    }
}

/// What `login` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginOutcome {
    pub registry: String,
    /// `Login Succeeded`.
    pub status: String,
}

/// What a request is, for authentication scopes, retries and messages.
pub(crate) struct Req<'a> {
    pub(crate) scopes: &'a [String],
    pub(crate) action: &'static str,
    pub(crate) repository: &'a str,
    pub(crate) what: &'a str,
    pub(crate) idempotent: bool,
}

/// The error for a non-success answer, with the registry's own message.
pub(crate) async fn status_error(
    ep: &Endpoint,
    resp: Response,
    what: &str,
    action: &'static str,
    repository: &str,
) -> DistError {
    let status = resp.status();
    let body = read_capped(resp, 64 * 1024).await;
    let detail = error_detail(&String::from_utf8_lossy(&body), status.as_u16());
    match status {
        StatusCode::UNAUTHORIZED => DistError::AccessDenied {
            action,
            repository: repository.to_string(),
            detail,
        },
        StatusCode::FORBIDDEN => DistError::Forbidden {
            what: repository.to_string(),
            detail,
        },
        StatusCode::NOT_FOUND => DistError::NotFound {
            what: what.to_string(),
            detail,
        },
        StatusCode::TOO_MANY_REQUESTS => DistError::TooManyRequests {
            registry: ep.registry.clone(),
        },
        s => DistError::Status {
            registry: ep.registry.clone(),
            what: what.to_string(),
            status: s.as_u16(),
            detail,
        },
    }
}

/// Up to `max` bytes of a body (errors end it early: it only feeds messages).
async fn read_capped(mut resp: Response, max: usize) -> Vec<u8> {
    let mut out = Vec::new();
    while let Ok(Some(chunk)) = resp.chunk().await {
        out.extend_from_slice(&chunk);
        if out.len() >= max {
            out.truncate(max);
            break;
        }
    }
    out
}

/// A set of scopes for one repository.
pub(crate) fn repo_scope(path: &str, actions: &str) -> String {
    format!("repository:{path}:{actions}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insecure_rules_and_keys() {
        let c = RegistryClient::new(ClientOptions {
            insecure_registries: vec!["reg.lan:5000".into(), "10.1.0.0/16".into()],
            ..ClientOptions::default()
        })
        .expect("client");
        assert!(c.is_insecure("localhost:5000"));
        assert!(c.is_insecure("127.0.0.1:5000"));
        assert!(c.is_insecure("[::1]:5000"));
        assert!(c.is_insecure("reg.lan:5000"));
        assert!(!c.is_insecure("reg.lan:5001"));
        assert!(c.is_insecure("10.1.2.3:443"));
        assert!(!c.is_insecure("10.2.0.1"));
        assert!(!c.is_insecure("ghcr.io"));
        assert_eq!(
            registry_key(""),
            ("docker.io".into(), DOCKER_HUB_KEY.into())
        );
        assert_eq!(
            registry_key("https://index.docker.io/v1/"),
            ("docker.io".into(), DOCKER_HUB_KEY.into())
        );
        assert_eq!(
            registry_key("ghcr.io"),
            ("ghcr.io".into(), "ghcr.io".into())
        );
    }

    #[tokio::test]
    async fn docker_hub_endpoints_with_mirror() {
        let c = RegistryClient::new(ClientOptions {
            registry_mirrors: vec!["https://mirror.example/".into()],
            ..ClientOptions::default()
        })
        .expect("client");
        let eps = c.endpoints("docker.io", true).await.expect("endpoints");
        assert_eq!(eps.len(), 2);
        assert_eq!(eps[0].base, "https://mirror.example");
        assert!(eps[0].mirror);
        assert_eq!(eps[1].base, "https://registry-1.docker.io");
        assert_eq!(eps[1].cred_key, DOCKER_HUB_KEY);
        let push = c.endpoints("docker.io", false).await.expect("endpoints");
        assert_eq!(push.len(), 1, "mirrors are for pulls only");
    }
}
