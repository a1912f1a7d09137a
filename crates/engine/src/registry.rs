//! Pull, push and login: the engine's side of [`berth_distribution`]. Credentials come with each call (the
//! API takes them from `X-Registry-Auth`), never from a file of the daemon's.

use crate::error::{EngineError, Result};
use crate::Engine;
use berth_distribution::{
    Credential, Progress, PullOptions, PullOutcome, PushOptions, PushOutcome, RegistryClient,
};
use berth_image::{Platform, Reference};
use std::collections::BTreeMap;
use tokio::sync::mpsc;

/// Registry settings from daemon.json.
#[derive(Debug, Clone, Default)]
pub struct RegistryConfig {
    pub insecure_registries: Vec<String>,
    pub registry_mirrors: Vec<String>,
    pub max_concurrent_downloads: usize,
    pub max_concurrent_uploads: usize,
    /// Per-registry CA and client certificate directories (`certs.d`), first match wins.
    pub certs_dirs: Vec<std::path::PathBuf>,
}

/// Build the daemon's registry client.
pub fn client(cfg: &RegistryConfig, data_root: &std::path::Path) -> Result<RegistryClient> {
    let opts = berth_distribution::ClientOptions {
        insecure_registries: cfg.insecure_registries.clone(),
        registry_mirrors: cfg.registry_mirrors.clone(),
        // The daemon has no credentials of its own: they come with each request.
        docker_config: berth_distribution::DockerConfig::new(data_root.join("no-credentials.json")),
        user_agent: format!("berth/{}", env!("CARGO_PKG_VERSION")),
        certs_dirs: cfg.certs_dirs.clone(),
        ..Default::default()
    };
    RegistryClient::new(opts).map_err(|e| EngineError::Internal(e.to_string()))
}

impl Engine {
    /// The daemon's registry client, built at first use.
    fn registry(&self) -> Result<&RegistryClient> {
        if let Some(c) = self.inner.registry.get() {
            return Ok(c);
        }
        let c = client(&self.inner.cfg.registry, &self.inner.cfg.data_root)?;
        Ok(self.inner.registry.get_or_init(|| c))
    }

    fn registry_for(
        &self,
        reference: &Reference,
        cred: Option<Credential>,
    ) -> Result<RegistryClient> {
        let domain = reference
            .full()
            .split('/')
            .next()
            .unwrap_or("docker.io")
            .to_string();
        Ok(self.registry()?.with_credential(&domain, cred))
    }

    /// `pull --all-tags`: every tag of `repository` (which names no tag), one pull each.
    pub async fn pull_all_tags(
        &self,
        repository: &str,
        platform: Option<&str>,
        cred: Option<Credential>,
        progress: mpsc::UnboundedSender<Progress>,
    ) -> Result<Vec<PullOutcome>> {
        let r =
            Reference::parse_named(repository).map_err(|e| EngineError::Invalid(e.to_string()))?;
        if r.tag().is_some() || r.digest().is_some() {
            return Err(EngineError::Invalid(
                "tag can't be used with --all-tags/-a".into(),
            ));
        }
        let client = self.registry_for(&r, cred.clone())?;
        let tags = client.tags(&r).await?;
        let mut out = Vec::new();
        for t in tags {
            let name = format!("{}:{t}", r.repository());
            out.push(
                self.pull(&name, platform, cred.clone(), progress.clone())
                    .await?,
            );
        }
        Ok(out)
    }

    /// `search`: ask the registry named in `term` (Docker Hub's index otherwise).
    pub async fn search(
        &self,
        term: &str,
        limit: usize,
        cred: Option<Credential>,
    ) -> Result<Vec<berth_distribution::SearchResult>> {
        let domain = match term.split_once('/') {
            Some((d, _)) if d.contains('.') || d.contains(':') || d == "localhost" => d,
            _ => "docker.io",
        };
        let client = self.registry()?.with_credential(domain, cred);
        Ok(client.search(term, limit).await?)
    }

    /// Pull `reference` (a tag, or a digest) for `platform` (default: the host's).
    pub async fn pull(
        &self,
        reference: &str,
        platform: Option<&str>,
        cred: Option<Credential>,
        progress: mpsc::UnboundedSender<Progress>,
    ) -> Result<PullOutcome> {
        let r = Reference::parse(reference).map_err(|e| EngineError::Invalid(e.to_string()))?;
        let platform = match platform.filter(|p| !p.is_empty()) {
            Some(p) => Platform::parse(p).map_err(|e| EngineError::Invalid(e.to_string()))?,
            None => Platform::host(),
        };
        let client = self.registry_for(&r, cred)?;
        let mut opts = PullOptions::default();
        if self.inner.cfg.registry.max_concurrent_downloads > 0 {
            opts.max_concurrent_downloads = self.inner.cfg.registry.max_concurrent_downloads;
        }
        let outcome = berth_distribution::pull(
            &self.inner.images,
            &client,
            &r,
            &platform,
            &opts,
            move |p| {
                let _ = progress.send(p);
            },
        )
        .await?;
        let mut attrs = BTreeMap::new();
        attrs.insert("name".to_string(), r.familiar());
        self.inner
            .events
            .publish("image", "pull", &r.familiar(), attrs);
        Ok(outcome)
    }

    /// Push `name` (one tag) to its registry.
    pub async fn push(
        &self,
        name: &str,
        cred: Option<Credential>,
        progress: mpsc::UnboundedSender<Progress>,
    ) -> Result<PushOutcome> {
        let r = Reference::parse(name).map_err(|e| EngineError::Invalid(e.to_string()))?;
        self.resolve_image(&r.full()).await?;
        // Layers kept uncompressed locally go out gzip-compressed, as Docker sends them.
        let full = r.full();
        self.images_blocking(move |s| s.compress_layers_for_push(&full))
            .await?;
        let client = self.registry_for(&r, cred)?;
        let mut opts = PushOptions::default();
        if self.inner.cfg.registry.max_concurrent_uploads > 0 {
            opts.max_concurrent_uploads = self.inner.cfg.registry.max_concurrent_uploads;
        }
        let outcome = berth_distribution::push(&self.inner.images, &client, &r, &opts, move |p| {
            let _ = progress.send(p);
        })
        .await?;
        let mut attrs = BTreeMap::new();
        attrs.insert("name".to_string(), r.familiar());
        self.inner
            .events
            .publish("image", "push", &r.familiar(), attrs);
        Ok(outcome)
    }

    /// Check credentials against a registry (`docker login`); nothing is stored by the daemon.
    pub async fn login(&self, server: &str, username: &str, password: &str) -> Result<String> {
        let (registry, _) = berth_distribution::registry_key(server);
        let client = self.registry()?.with_credential(&registry, None);
        Ok(client
            .check_login(&registry, username, password)
            .await?
            .status)
    }
}
