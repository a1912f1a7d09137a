//! berth-engine: the services behind every front end (Engine API, CLI, later CRI and the dashboard).
//!
//! The engine owns the container records, drives image operations through [`berth_image::ImageStore`], starts
//! containers through per-container shims ([`berth_runtime::shim`]) and publishes events. It knows nothing of
//! HTTP: handlers in `berth-api` decode requests into the typed calls here. A container's configuration is
//! kept in Docker's own data model (`bollard_stubs::models::{ContainerConfig, HostConfig}`, generated from the
//! Engine API's swagger) so that `inspect` gives back exactly what the user asked for.
//!
//! Layout: [`container`] (one file per verb), [`store`] (container records in redb), [`events`],
//! [`shim_client`] (talking to shims), [`user`] (resolving `-u` through the image's passwd/group),
//! [`hello`] (the embedded hello-world image), [`system`] (info, version, disk usage).

pub mod build;
pub mod cgroups;
pub mod container;
pub mod error;
pub mod events;
pub mod exec;
pub mod hello;
pub mod images;
pub mod names;
pub mod network;
pub mod registry;
pub mod shim_client;
mod spare_shim;
pub mod stats;
pub mod store;
pub mod system;
pub mod user;
pub mod volumes;

pub use error::{EngineError, ErrorKind, Result};

use berth_image::ImageStore;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::RwLock;

/// Where the engine keeps things and how it runs containers; built by the daemon from flags and daemon.json.
#[derive(Debug, Clone)]
pub struct Config {
    /// `--data-root`: images, snapshots, container dirs, metadata.redb.
    pub data_root: PathBuf,
    /// `--exec-root`: shim sockets and state.
    pub exec_root: PathBuf,
    /// The program that is run as `PROGRAM shim - [<cgroup-parent>]` (see `spare_shim`).
    pub shim_program: PathBuf,
    /// Parent cgroup of all containers (relative to each hierarchy), e.g. `/berth`.
    pub cgroup_parent: String,
    /// The cgroup filesystem root (normally `/sys/fs/cgroup`).
    pub cgroup_root: PathBuf,
    /// Default json-file rotation: bytes per file (0 = unlimited) and number of files.
    pub log_max_size: u64,
    pub log_max_files: u32,
    /// Host resolv.conf copied into containers.
    pub resolv_conf: PathBuf,
    /// Host hosts file, used as is by `--network host` containers.
    pub hosts_file: PathBuf,
    /// procfs (for machine-wide CPU time and memory in stats).
    pub proc_root: PathBuf,
    /// The host's device directory (`/dev`), where `--device` and `--privileged` find device nodes.
    pub dev_root: PathBuf,
    /// The binary bind-mounted as `/sbin/docker-init` for `--init`, if any.
    pub init_binary: Option<PathBuf>,
    pub daemon_id: String,
    pub registry: registry::RegistryConfig,
    pub network: network::NetworkConfig,
}

/// The longest `--exec-root` that keeps every socket below it within the kernel's 108-byte limit: the
/// longest is a shim's control socket, `<exec-root>/s/<24 characters of the id>` plus the final NUL.
pub const MAX_EXEC_ROOT_LEN: usize = 108 - "/s/".len() - 24 - 1;

/// The engine; cheap to clone.
#[derive(Clone)]
pub struct Engine {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub cfg: Config,
    pub images: ImageStore,
    pub store: store::ContainerStore,
    pub containers: RwLock<HashMap<String, Arc<container::Handle>>>,
    pub events: events::EventBus,
    pub execs: exec::ExecStore,
    pub volumes: volumes::VolumeStore,
    pub net: network::NetServices,
    /// Serialises volume create and remove (name checks against the store).
    pub volume_lock: tokio::sync::Mutex<()>,
    /// The registry client, made at the first pull, push, search or login (it loads the system's CA
    /// certificates: memory a daemon that never talks to a registry does not need to hold).
    pub registry: std::sync::OnceLock<berth_distribution::RegistryClient>,
    pub build_cache: build::CacheStore,
    pub started_at: chrono::DateTime<chrono::Utc>,
    /// Network namespaces made ahead for `--network none`.
    pub spare_netns: Arc<network::spare::SpareNetns>,
    /// A shim started ahead of the next start.
    spare_shims: spare_shim::SpareShims,
    /// The mount points every container's root holds (`container::init_layer`).
    init_layer: PathBuf,
    /// Directories of removed containers kept for the next creates (`container::dir_pool`).
    dir_pool: container::dir_pool::DirPool,
    /// What a start reads from an image, by image id and user (`container::start::ImageView`).
    image_views: container::ImageViews,
}

impl Engine {
    /// Open the stores under the data root and reconnect to containers that kept running.
    pub async fn open(cfg: Config, net: network::NetDeps) -> Result<Engine> {
        // Shim sockets live below the exec root and unix socket paths are limited to 108 bytes: refuse an
        // exec root that would make starts fail later.
        let len = cfg.exec_root.as_os_str().len();
        if len > MAX_EXEC_ROOT_LEN {
            return Err(EngineError::Invalid(format!(
                "exec root {} is {len} bytes long; unix socket paths below it would exceed the kernel's limit: use a path of at most {MAX_EXEC_ROOT_LEN} bytes",
                cfg.exec_root.display()
            )));
        }
        for d in [
            cfg.data_root.join("containers"),
            cfg.exec_root.join("containers"),
        ] {
            std::fs::create_dir_all(&d)
                .map_err(|e| EngineError::io(format!("create {}", d.display()), e))?;
        }
        let init_layer = container::init_layer::ensure(&cfg.data_root)
            .map_err(|e| EngineError::io("make the init layer", e))?;
        let dir_pool = container::dir_pool::DirPool::new(cfg.data_root.join("containers"));
        dir_pool.clear_stale();
        let db_path = cfg.data_root.join("metadata.redb");
        let db = tokio::task::spawn_blocking(move || {
            redb::Database::create(&db_path).map_err(|e| (db_path, e))
        })
        .await
        .map_err(EngineError::join)?
        .map_err(|(p, e)| {
            EngineError::Internal(format!("open metadata database {}: {e}", p.display()))
        })?;
        let db = Arc::new(db);
        let root = cfg.data_root.clone();
        let db2 = db.clone();
        let images = tokio::task::spawn_blocking(move || ImageStore::open(&root, db2))
            .await
            .map_err(EngineError::join)??;
        let store = store::ContainerStore::open(db.clone())?;
        let volumes = volumes::VolumeStore::open(db.clone(), cfg.data_root.join("volumes"))?;
        let build_cache = build::CacheStore::open(db.clone())?;
        let net =
            network::NetServices::new(cfg.network.clone(), net, network::NetworkStore::open(db)?);
        let spare_netns = network::spare::SpareNetns::new(cfg.exec_root.join("netns-spare"));
        let spare_shims = spare_shim::SpareShims::new(
            cfg.shim_program.clone(),
            cfg.cgroup_parent.clone(),
            cfg.exec_root.join("s"),
        );
        let engine = Engine {
            inner: Arc::new(Inner {
                cfg,
                images,
                store,
                containers: RwLock::new(HashMap::new()),
                events: events::EventBus::new(),
                execs: exec::ExecStore::default(),
                volumes,
                net,
                volume_lock: tokio::sync::Mutex::new(()),
                registry: std::sync::OnceLock::new(),
                build_cache,
                started_at: chrono::Utc::now(),
                spare_netns,
                spare_shims,
                init_layer,
                dir_pool,
                image_views: Default::default(),
            }),
        };
        engine.clean_builder_scratch();
        // Compiled seccomp programs are read by shims as they start: none is starting now.
        let _ = std::fs::remove_dir_all(engine.seccomp_dir());
        if let Ok(mountinfo) = std::fs::read_to_string("/proc/self/mountinfo") {
            berth_runtime::cgroups::Cgroup::remove_stale_spares(
                &engine.inner.cfg.cgroup_parent,
                &berth_sys::launch::cgroup_mounts(&mountinfo),
            );
        }
        // Spares a daemon left behind (a container that took one holds it by itself).
        engine.inner.spare_netns.clear();
        engine.init_networks().await?;
        engine.recover().await?;
        engine.network_recover().await;
        engine.inner.spare_shims.refill();
        Ok(engine)
    }

    /// At shutdown: puts the container changes that were saved lazily on disk.
    pub fn flush(&self) {
        if let Err(e) = self.inner.store.sync() {
            tracing::warn!("sync the container store: {e}");
        }
        self.inner.spare_netns.clear();
        self.inner.spare_shims.clear();
        self.inner.dir_pool.release_mounted();
    }

    pub fn config(&self) -> &Config {
        &self.inner.cfg
    }

    pub fn events(&self) -> &events::EventBus {
        &self.inner.events
    }
}
