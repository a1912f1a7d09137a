//! `create`: validate the request, merge the image's config into the container's, allocate id and name,
//! prepare the container directory. Nothing runs yet.

use super::{dir_pool, now_rfc3339, Handle, Record, State};
use crate::error::{EngineError, Result};
use crate::Engine;
use bollard_stubs::models::{ContainerConfig, HostConfig};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// A create call: Docker's `Config` and `HostConfig`, and the optional name.
#[derive(Debug, Clone, Default)]
pub struct CreateRequest {
    pub name: Option<String>,
    pub config: ContainerConfig,
    pub host_config: HostConfig,
    /// `NetworkingConfig.EndpointsConfig`: per network, aliases and requested addresses.
    pub endpoints: BTreeMap<String, crate::network::endpoint::EndpointRequest>,
}

/// Docker's rule for container names.
pub fn valid_name(name: &str) -> bool {
    let n = name.strip_prefix('/').unwrap_or(name);
    let mut chars = n.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && n.len() >= 2
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

fn strings(v: &Value) -> Option<Vec<String>> {
    v.as_array().map(|a| {
        a.iter()
            .filter_map(|s| s.as_str().map(str::to_string))
            .collect()
    })
}

/// Merge an image's config (Docker's JSON shape) under the user's: the user's values win; env is merged by key;
/// an entrypoint given by the user discards the image's cmd, like Docker.
pub fn merge_image_config(cfg: &mut ContainerConfig, image: &Value) {
    let user_entrypoint = cfg.entrypoint.is_some();
    if cfg.entrypoint.is_none() {
        cfg.entrypoint = strings(&image["Entrypoint"]).filter(|v| !v.is_empty());
    }
    if cfg.cmd.is_none() && !user_entrypoint {
        cfg.cmd = strings(&image["Cmd"]);
    }
    let mut env: Vec<String> = strings(&image["Env"]).unwrap_or_default();
    for kv in cfg.env.take().unwrap_or_default() {
        let key = kv.split('=').next().unwrap_or("").to_string();
        env.retain(|e| e.split('=').next() != Some(key.as_str()));
        env.push(kv);
    }
    cfg.env = Some(env);
    if cfg.working_dir.as_deref().unwrap_or("").is_empty() {
        cfg.working_dir = image["WorkingDir"]
            .as_str()
            .map(str::to_string)
            .filter(|s| !s.is_empty());
    }
    if cfg.user.as_deref().unwrap_or("").is_empty() {
        cfg.user = image["User"]
            .as_str()
            .map(str::to_string)
            .filter(|s| !s.is_empty());
    }
    if cfg.stop_signal.is_none() {
        cfg.stop_signal = image["StopSignal"].as_str().map(str::to_string);
    }
    if let Some(labels) = image["Labels"].as_object() {
        let mut merged: std::collections::HashMap<String, String> = labels
            .iter()
            .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
            .collect();
        merged.extend(cfg.labels.take().unwrap_or_default());
        cfg.labels = Some(merged);
    }
    if let Some(ports) = image["ExposedPorts"].as_object() {
        let mut all = cfg.exposed_ports.take().unwrap_or_default();
        for p in ports.keys() {
            if !all.contains(p) {
                all.push(p.clone());
            }
        }
        cfg.exposed_ports = Some(all);
    }
    if let Some(vols) = image["Volumes"].as_object() {
        let mut all = cfg.volumes.take().unwrap_or_default();
        for v in vols.keys() {
            if !all.contains(v) {
                all.push(v.clone());
            }
        }
        cfg.volumes = Some(all);
    }
    if cfg.healthcheck.is_none() && image["Healthcheck"].is_object() {
        cfg.healthcheck = serde_json::from_value(image["Healthcheck"].clone()).ok();
    }
}

/// The container's log driver: `json-file` unless it asks for another (`""` is the default too).
pub fn log_driver(hc: &HostConfig) -> &str {
    match hc.log_config.as_ref().and_then(|l| l.typ.as_deref()) {
        None | Some("") => "json-file",
        Some(d) => d,
    }
}

/// Docker's checks on resources and modes, with Docker's messages.
pub fn validate_host_config(hc: &mut HostConfig) -> Result<()> {
    let driver = log_driver(hc);
    if !matches!(driver, "json-file" | "none") {
        return Err(EngineError::Invalid(format!(
            "logger: no log driver named '{driver}' is registered (berth has json-file and none)"
        )));
    }
    let mem = hc.memory.unwrap_or(0);
    if mem != 0 && mem < 6 * 1024 * 1024 {
        return Err(EngineError::Invalid(
            "Minimum memory limit allowed is 6MB".into(),
        ));
    }
    let swap = hc.memory_swap.unwrap_or(0);
    if swap > 0 && mem == 0 {
        return Err(EngineError::Invalid(
            "You should always set the Memory limit when using Memoryswap limit, see usage".into(),
        ));
    }
    if swap > 0 && swap < mem {
        return Err(EngineError::Invalid(
            "Minimum memoryswap limit should be larger than memory limit, see usage".into(),
        ));
    }
    if hc.nano_cpus.unwrap_or(0) > 0
        && (hc.cpu_quota.unwrap_or(0) > 0 || hc.cpu_period.unwrap_or(0) > 0)
    {
        return Err(EngineError::Invalid(
            "Conflicting options: Nano CPUs and CPU Period cannot both be set".into(),
        ));
    }
    // Only when asked: counting the CPUs reads the daemon's own cgroup quota files.
    let nano_cpus = hc.nano_cpus.unwrap_or(0);
    let ncpu = (nano_cpus > 0).then(|| {
        std::thread::available_parallelism()
            .map(|n| n.get() as i64)
            .unwrap_or(1)
    });
    if let Some(ncpu) = ncpu.filter(|n| nano_cpus > n * 1_000_000_000) {
        return Err(EngineError::Invalid(format!(
            "range of CPUs is from 0.01 to {ncpu}.00, as there are only {ncpu} CPUs available"
        )));
    }
    let mode = hc.network_mode.clone().unwrap_or_default();
    let mode = match mode.as_str() {
        "" | "default" => "bridge".to_string(),
        m => m.to_string(),
    };
    if mode.starts_with("container:") && hc.port_bindings.as_ref().is_some_and(|p| !p.is_empty()) {
        return Err(EngineError::Invalid(
            "conflicting options: port publishing and the container type network mode".into(),
        ));
    }
    if mode == "host" {
        // Docker discards published ports with the host's network.
        hc.port_bindings = None;
        hc.publish_all_ports = None;
    }
    hc.network_mode = Some(mode);
    if let Some(rp) = &hc.restart_policy {
        if let Some(name) = &rp.name {
            let n = serde_json::to_value(name)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            if !matches!(n.as_str(), "" | "no") && hc.auto_remove == Some(true) {
                return Err(EngineError::Invalid(
                    "can't create 'AutoRemove' container with restart policy".into(),
                ));
            }
        }
    }
    Ok(())
}

impl Engine {
    pub async fn create(&self, mut req: CreateRequest) -> Result<Record> {
        let name = match req.name.take().filter(|n| !n.is_empty()) {
            Some(n) => {
                if !valid_name(&n) {
                    return Err(EngineError::Invalid(format!(
                        "Invalid container name ({n}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
                    )));
                }
                Some(format!("/{}", n.trim_start_matches('/')))
            }
            None => None,
        };
        let image_name = req.config.image.clone().unwrap_or_default();
        if image_name.is_empty() {
            return Err(EngineError::Invalid(
                "config.Image must be specified".into(),
            ));
        }
        let image = self.resolve_image(&image_name).await?;
        let image_cfg = serde_json::to_value(&image.config).unwrap_or(Value::Null);
        let mut config = req.config;
        merge_image_config(&mut config, &image_cfg["config"]);
        let mut hc = req.host_config;
        validate_host_config(&mut hc)?;
        let mut mode = hc.network_mode.clone().unwrap_or_default();
        if mode == "bridge" && self.inner.net.cfg.bridge == "none" {
            mode = "none".into();
            hc.network_mode = Some(mode.clone());
            // The docker CLI also names the default network among the endpoints; with no bridge there is none.
            req.endpoints.retain(|k, _| k != "default" && k != "bridge");
        }
        if let Some(other) = mode.strip_prefix("container:") {
            self.lookup(other).await?;
        }
        // A missing network is the caller's mistake here, not a missing object: answered 400, or clients take
        // a 404 from create for a missing image and try to pull it.
        let endpoints = self
            .initial_endpoints(&mode, &req.endpoints)
            .map_err(|e| match e {
                EngineError::NoSuchNetwork(_) => EngineError::Invalid(e.to_string()),
                e => e,
            })?;
        let mut args: Vec<String> = config.entrypoint.clone().unwrap_or_default();
        args.extend(config.cmd.clone().unwrap_or_default());
        if args.is_empty() {
            return Err(EngineError::Invalid("no command specified".into()));
        }

        let (mounts, new_volumes) = super::mounts::resolve(self, &config, &hc).await?;
        match self
            .create_record(name, config, hc, image, image_name, args, mounts, endpoints)
            .await
        {
            Ok(rec) => Ok(rec),
            Err(e) => {
                for v in &new_volumes {
                    let _ = self.volume_remove(v, true).await;
                }
                Err(e)
            }
        }
    }

    #[allow(clippy::too_many_arguments)] // the pieces `create` resolved, handed over once
    async fn create_record(
        &self,
        name: Option<String>,
        mut config: ContainerConfig,
        hc: HostConfig,
        image: berth_image::Image,
        image_name: String,
        args: Vec<String>,
        mounts: Vec<super::MountPoint>,
        endpoints: BTreeMap<String, crate::network::Endpoint>,
    ) -> Result<Record> {
        let mut map = self.inner.containers.write().await;
        let name = match name {
            Some(n) => {
                if let Some(holder) = map.values().find(|h| h.record().name == n) {
                    return Err(EngineError::Conflict(format!(
                        "Conflict. The container name \"{n}\" is already in use by container \"{}\". You have to remove (or rename) that container to be able to reuse that name.",
                        holder.id
                    )));
                }
                n
            }
            None => {
                let taken: std::collections::HashSet<String> =
                    map.values().map(|h| h.record().name).collect();
                let mut rng = rand::thread_rng();
                format!(
                    "/{}",
                    crate::names::generate_unique(&mut rng, |n| taken.contains(&format!("/{n}")))
                )
            }
        };
        let id = loop {
            let id = super::new_id();
            if !map.contains_key(&id) {
                break id;
            }
        };
        if config.hostname.as_deref().unwrap_or("").is_empty() {
            config.hostname = Some(if hc.network_mode.as_deref() == Some("host") {
                nix::unistd::gethostname()
                    .ok()
                    .and_then(|h| h.into_string().ok())
                    .unwrap_or_else(|| id[..12].to_string())
            } else {
                id[..12].to_string()
            });
        }
        config.image = Some(image_name.clone());
        let paths = self.paths(&id);
        let rec = Record {
            id: id.clone(),
            name,
            created: now_rfc3339(),
            image_id: image.id.clone(),
            image: image_name,
            path: args[0].clone(),
            args: args[1..].to_vec(),
            config,
            host_config: hc,
            state: State::default(),
            restart_count: 0,
            log_path: paths
                .dir
                .join(format!("{id}-json.log"))
                .display()
                .to_string(),
            hostname_path: paths.dir.join("hostname").display().to_string(),
            hosts_path: paths.dir.join("hosts").display().to_string(),
            resolv_conf_path: paths.dir.join("resolv.conf").display().to_string(),
            exits: 0,
            manually_stopped: false,
            mounts,
            endpoints,
            sandbox_key: String::new(),
            ports: BTreeMap::new(),
        };
        // The directory is made on a blocking thread while the record is committed, and the create answers
        // without waiting for it: what uses it waits (`Engine::dir_made`); the start, the client's next
        // request, first. A crash before it is whole leaves a record whose directory start-up completes
        // (`recover`); a failure is the start's error.
        // An auto-remove container's record need not be in the store yet: after a crash start-up removes
        // every auto-remove container that is not running, so losing it changes nothing a client can see
        // (a commit that is not durable would not survive a crash either). Its start puts it there, on
        // disk, while the shim sets the container up, before its process runs.
        let durable = rec.host_config.auto_remove != Some(true);
        let make_dir = self.dir_maker(&rec, true);
        // An auto-remove container is a `run --rm`'s: its start is the client's next step but two (attach,
        // wait), so its root is mounted now too, on the same thread, while those go back and forth (the
        // overlay mount is most of a millisecond here), or a kept directory with it mounted already is
        // taken (`dir_pool`); the shim finds it mounted.
        let mounter = (!durable).then(|| self.root_mounter(&rec));
        let making = tokio::task::spawn_blocking(move || {
            let Some(mounter) = mounter else {
                make_dir(None)?;
                return Ok(None);
            };
            let want = mounter.root();
            let taken = make_dir(want.as_ref())?;
            Ok::<_, EngineError>(match (taken, want) {
                (dir_pool::Taken::Mounted, want) => want,
                (_, want) => mounter.mount(want),
            })
        });
        let made: super::DirMade = {
            use futures_util::FutureExt;
            async move {
                match making.await {
                    Ok(Ok(root)) => Ok(root),
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(e) => Err(e.to_string()),
                }
            }
            .boxed()
            .shared()
        };
        let put = if durable {
            let store = self.inner.store.clone();
            let saved = rec.clone();
            tokio::task::spawn_blocking(move || store.put(&saved))
                .await
                .map_err(EngineError::join)
                .and_then(|r| r)
        } else {
            Ok(())
        };
        if let Err(e) = put {
            let _ = made.await;
            let _ = std::fs::remove_dir_all(&paths.dir);
            return Err(e);
        }
        let h = Handle::new(rec.clone());
        h.unsynced
            .store(!durable, std::sync::atomic::Ordering::SeqCst);
        if let Ok(mut m) = h.dir_made.lock() {
            *m = Some(made);
        }
        map.insert(id.clone(), h.clone());
        drop(map);
        self.container_event(&h, "create", &[]);
        Ok(rec)
    }
}

/// Mounts the root of an auto-remove container ahead of its start (see [`Engine::root_mounter`]).
struct RootMounter {
    store: berth_image::ImageStore,
    init_layer: PathBuf,
    image_id: String,
    dir: PathBuf,
    id: String,
}

impl RootMounter {
    /// The root the container's image makes (its lower directories as they are now); `None` (logged) when
    /// they cannot be found: the shim mounts the root itself, and says what fails.
    fn root(&self) -> Option<dir_pool::Root> {
        let root = self
            .store
            .layer_dirs(&self.image_id)
            .map_err(|e| e.to_string())
            .and_then(|layers| {
                dir_pool::Root::of(super::init_layer::lower(&self.init_layer, layers))
                    .map_err(|e| e.to_string())
            });
        root.map_err(|e| tracing::debug!(id = %self.id, "the layers of the root: {e}"))
            .ok()
    }

    /// Mounts `root` as the container's shim would (the same lower, upper and work directories,
    /// `volatile`); the root mounted, or `None` (logged: the shim mounts it itself, and says what fails).
    fn mount(&self, root: Option<dir_pool::Root>) -> Option<dir_pool::Root> {
        let root = root?;
        let ov = berth_sys::mount::Overlay {
            lower: root.lower().to_vec(),
            upper: self.dir.join("upper"),
            work: self.dir.join("work"),
            volatile: true,
        };
        // A new container's root (its directory new or a kept one, unmounted) is not mounted yet: no look at
        // the mount table.
        match berth_sys::mount::mount_overlay(&ov, &self.dir.join("rootfs")) {
            Ok(()) => Some(root),
            Err(e) => {
                tracing::debug!(id = %self.id, "mount the root ahead of the start: {e}");
                None
            }
        }
    }
}

impl Engine {
    /// What mounts the root of auto-remove container `rec` on a blocking thread, when its directory is
    /// made.
    fn root_mounter(&self, rec: &Record) -> RootMounter {
        RootMounter {
            store: self.inner.images.clone(),
            init_layer: self.inner.init_layer.clone(),
            image_id: rec.image_id.clone(),
            dir: self.paths(&rec.id).dir,
            id: rec.id.clone(),
        }
    }

    /// Makes (or completes) the container's directory for `rec` (see [`prepare_dir`]), on a blocking thread;
    /// with `reuse`, from a removed container's when one is kept (`dir_pool`), with the root given to the
    /// closure mounted if one is kept so. What it took.
    pub(crate) fn dir_maker(
        &self,
        rec: &Record,
        reuse: bool,
    ) -> impl FnOnce(Option<&dir_pool::Root>) -> Result<dir_pool::Taken> + Send + 'static {
        let engine = self.clone();
        let dir = self.paths(&rec.id).dir;
        let hostname = rec.config.hostname.clone().unwrap_or_default();
        let resolv_src = self.inner.cfg.resolv_conf.clone();
        let hosts_src = self.inner.cfg.hosts_file.clone();
        let host_net = rec.host_config.network_mode.as_deref() == Some("host");
        let extra_hosts = rec.host_config.extra_hosts.clone().unwrap_or_default();
        move |want| {
            let taken = if reuse {
                engine.inner.dir_pool.take(&dir, want)
            } else {
                dir_pool::Taken::Nothing
            };
            prepare_dir(
                &dir,
                &hostname,
                &resolv_src,
                &hosts_src,
                host_net,
                &extra_hosts,
            )?;
            Ok(taken)
        }
    }
}

/// The container directory: overlay upper/work dirs, the root mount point, and the files Docker bind-mounts
/// into every container (`/etc/hostname`, `/etc/hosts`, `/etc/resolv.conf`).
fn prepare_dir(
    dir: &std::path::Path,
    hostname: &str,
    resolv_src: &std::path::Path,
    hosts_src: &std::path::Path,
    host_net: bool,
    extra_hosts: &[String],
) -> Result<()> {
    for sub in ["upper", "work", "rootfs"] {
        let p = dir.join(sub);
        std::fs::create_dir_all(&p)
            .map_err(|e| EngineError::io(format!("create {}", p.display()), e))?;
    }
    let write = |name: &str, content: String| -> Result<()> {
        let p = dir.join(name);
        super::write_in_place(&p, content.as_bytes())
            .map_err(|e| EngineError::io(format!("write {}", p.display()), e))
    };
    write("hostname", format!("{hostname}\n"))?;
    let mut hosts = String::from(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::\tip6-localnet\nff00::\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n",
    );
    for h in extra_hosts {
        if let Some((name, ip)) = h.split_once(':') {
            hosts.push_str(&format!("{ip}\t{name}\n"));
        }
    }
    if host_net {
        hosts = std::fs::read_to_string(hosts_src).unwrap_or(hosts);
    }
    write("hosts", hosts)?;
    write(
        "resolv.conf",
        container_resolv_conf(
            &std::fs::read_to_string(resolv_src).unwrap_or_default(),
            host_net,
        ),
    )?;
    Ok(())
}

/// Docker's rule: copy the host's resolv.conf, drop loopback nameservers (they mean nothing in another network
/// namespace) and fall back to public resolvers when none is left. With the host's network it is copied as is.
pub fn container_resolv_conf(host: &str, host_net: bool) -> String {
    if host_net {
        return host.to_string();
    }
    let mut out = String::new();
    let mut servers = 0;
    for line in host.lines() {
        let t = line.trim();
        if let Some(rest) = t.strip_prefix("nameserver") {
            let ip = rest.trim();
            if ip.starts_with("127.") || ip == "::1" {
                continue;
            }
            servers += 1;
        }
        out.push_str(line);
        out.push('\n');
    }
    if servers == 0 {
        out.push_str("nameserver 8.8.8.8\nnameserver 8.8.4.4\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_docker_rule() {
        assert!(valid_name("web"));
        assert!(valid_name("/web-1.a_b"));
        assert!(!valid_name("a"));
        assert!(!valid_name("-web"));
        assert!(!valid_name("we b"));
        assert!(!valid_name("wéb"));
    }

    #[test]
    fn image_config_is_merged_under_user_values() {
        let image = serde_json::json!({
            "Env": ["PATH=/bin", "A=1"], "Cmd": ["sh"], "WorkingDir": "/srv", "User": "nobody",
            "Labels": {"a": "img", "b": "img"}, "ExposedPorts": {"80/tcp": {}}
        });
        let mut cfg = ContainerConfig {
            env: Some(vec!["A=2".into(), "B=3".into()]),
            labels: Some([("b".to_string(), "user".to_string())].into()),
            ..Default::default()
        };
        merge_image_config(&mut cfg, &image);
        assert_eq!(cfg.env.unwrap(), vec!["PATH=/bin", "A=2", "B=3"]);
        assert_eq!(cfg.cmd.unwrap(), vec!["sh"]);
        assert_eq!(cfg.working_dir.as_deref(), Some("/srv"));
        assert_eq!(cfg.user.as_deref(), Some("nobody"));
        let labels = cfg.labels.unwrap();
        assert_eq!(labels["a"], "img");
        assert_eq!(labels["b"], "user");
        assert_eq!(cfg.exposed_ports.unwrap(), vec!["80/tcp"]);
    }

    #[test]
    fn user_entrypoint_discards_image_cmd() {
        let image = serde_json::json!({"Entrypoint": ["/init"], "Cmd": ["serve"]});
        let mut cfg = ContainerConfig {
            entrypoint: Some(vec!["echo".into()]),
            ..Default::default()
        };
        merge_image_config(&mut cfg, &image);
        assert_eq!(cfg.entrypoint.unwrap(), vec!["echo"]);
        assert!(cfg.cmd.is_none());
    }

    #[test]
    fn resource_checks_use_docker_messages() {
        let mut hc = HostConfig {
            memory: Some(1024),
            ..Default::default()
        };
        assert_eq!(
            validate_host_config(&mut hc).unwrap_err().to_string(),
            "Minimum memory limit allowed is 6MB"
        );
        let mut hc = HostConfig {
            memory: Some(64 << 20),
            memory_swap: Some(32 << 20),
            ..Default::default()
        };
        assert!(validate_host_config(&mut hc)
            .unwrap_err()
            .to_string()
            .contains("memoryswap"));
        let mut hc = HostConfig::default();
        validate_host_config(&mut hc).unwrap();
        assert_eq!(hc.network_mode.as_deref(), Some("bridge"));
        let mut hc = HostConfig {
            network_mode: Some("container:web".into()),
            port_bindings: Some([("80/tcp".to_string(), Some(vec![]))].into_iter().collect()),
            ..Default::default()
        };
        assert!(validate_host_config(&mut hc)
            .unwrap_err()
            .to_string()
            .contains("port publishing and the container type network mode"));
    }

    #[test]
    fn resolv_conf_drops_loopback_servers() {
        let host = "search example.com\nnameserver 127.0.0.53\noptions edns0\n";
        let got = container_resolv_conf(host, false);
        assert!(got.contains("search example.com"));
        assert!(!got.contains("127.0.0.53"));
        assert!(got.contains("nameserver 8.8.8.8"));
        let host = "nameserver 10.0.0.2\n";
        assert_eq!(container_resolv_conf(host, false), "nameserver 10.0.0.2\n");
    }
}
