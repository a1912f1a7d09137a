//! berth-daemon: the composition root. It reads flags and `daemon.json`, takes the data-root lock, builds the
//! engine with its concrete parts, and serves the Engine API until SIGTERM/SIGINT. Containers are not stopped
//! on shutdown: their shims keep them running and the next daemon reattaches.

pub mod config;

use anyhow::{bail, Context};
use berth_api::AppState;
use berth_engine::Engine;
use config::DaemonConfig;
use std::os::unix::fs::PermissionsExt;

/// Run the daemon until a termination signal.
pub async fn run(cfg: DaemonConfig) -> anyhow::Result<()> {
    std::fs::create_dir_all(&cfg.data_root)
        .with_context(|| format!("create data root {}", cfg.data_root.display()))?;
    std::fs::create_dir_all(&cfg.exec_root)
        .with_context(|| format!("create exec root {}", cfg.exec_root.display()))?;
    let _lock = berth_sys::lock::LockFile::try_acquire(
        &cfg.data_root.join("berth.lock"),
        &format!("data root {}", cfg.data_root.display()),
    )
    .map_err(|e| {
        anyhow::anyhow!("{e}: is another berth daemon running? stop it or use another --data-root")
    })?;
    if let Some(p) = &cfg.pidfile {
        std::fs::write(p, format!("{}\n", std::process::id()))
            .with_context(|| format!("write pid file {}", p.display()))?;
    }
    // The small `berth-shim` next to `berth` when it is installed, else `berth shim`.
    let exe = std::env::current_exe().context("find the berth executable for shims")?;
    let program = Some(exe.with_file_name("berth-shim"))
        .filter(|p| p.is_file())
        .unwrap_or(exe);
    // Shims (and the containers' processes until they exec) run from a read-only bind of the binary.
    let shim_program = cfg.exec_root.join("berth-shim");
    berth_sys::mount::bind_file_readonly(&program, &shim_program).with_context(|| {
        format!(
            "install {} read-only at {}",
            program.display(),
            shim_program.display()
        )
    })?;
    let daemon_id = daemon_id(&cfg.data_root)?;
    let init_binary = install_init(&cfg.exec_root)?;
    let engine = Engine::open(
        berth_engine::Config {
            data_root: cfg.data_root.clone(),
            exec_root: cfg.exec_root.clone(),
            shim_program,
            cgroup_parent: cfg.cgroup_parent.clone(),
            cgroup_root: cfg.cgroup_root.clone(),
            log_max_size: cfg.log_max_size,
            log_max_files: cfg.log_max_files,
            resolv_conf: "/etc/resolv.conf".into(),
            hosts_file: "/etc/hosts".into(),
            proc_root: "/proc".into(),
            dev_root: "/dev".into(),
            init_binary: Some(init_binary),
            daemon_id,
            registry: berth_engine::registry::RegistryConfig {
                insecure_registries: cfg.insecure_registries.clone(),
                registry_mirrors: cfg.registry_mirrors.clone(),
                max_concurrent_downloads: cfg.max_concurrent_downloads,
                max_concurrent_uploads: cfg.max_concurrent_uploads,
                certs_dirs: cfg.certs_dirs.clone(),
            },
            network: cfg.network.clone(),
        },
        net_deps(&cfg)?,
    )
    .await
    .context("open the engine")?;
    let state = AppState {
        engine,
        version: env!("CARGO_PKG_VERSION").to_string(),
    };

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut servers = Vec::new();
    for host in &cfg.hosts {
        if let Some(path) = host.strip_prefix("unix://") {
            let path = std::path::PathBuf::from(path);
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("create {}", dir.display()))?;
            }
            if path.exists() {
                if std::os::unix::net::UnixStream::connect(&path).is_ok() {
                    bail!("{} is in use by another daemon", path.display());
                }
                std::fs::remove_file(&path)
                    .with_context(|| format!("remove stale socket {}", path.display()))?;
            }
            let listener = tokio::net::UnixListener::bind(&path)
                .with_context(|| format!("listen on {}", path.display()))?;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o660))
                .with_context(|| format!("chmod {}", path.display()))?;
            tracing::info!("API listening on {}", path.display());
            let mut rx = stop_rx.clone();
            let st = state.clone();
            servers.push(tokio::spawn(async move {
                let _ = berth_api::serve_unix(listener, st, async move {
                    let _ = rx.wait_for(|s| *s).await;
                })
                .await;
                let _ = std::fs::remove_file(&path);
            }));
        } else if let Some(addr) = host.strip_prefix("tcp://") {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("listen on {addr}"))?;
            tracing::warn!("API listening on tcp://{addr} WITHOUT TLS: anyone who can reach it is root on this host");
            let mut rx = stop_rx.clone();
            let st = state.clone();
            servers.push(tokio::spawn(async move {
                let _ = berth_api::serve_tcp(listener, st, async move {
                    let _ = rx.wait_for(|s| *s).await;
                })
                .await;
            }));
        } else {
            bail!("unsupported host {host:?}: use unix:///path or tcp://addr:port");
        }
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: shutting down (containers keep running)"),
        _ = int.recv() => tracing::info!("SIGINT: shutting down (containers keep running)"),
    }
    let _ = stop_tx.send(true);
    for s in servers {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), s).await;
    }
    state.engine.flush();
    if let Some(p) = &cfg.pidfile {
        let _ = std::fs::remove_file(p);
    }
    // Running shims keep their (lazily unmounted) binary; the next daemon binds it again.
    let _ = berth_sys::mount::unmount(&cfg.exec_root.join("berth-shim"));
    Ok(())
}

/// Write the static `docker-init` for `--init` under the exec root (temp, fsync, rename; read-only).
fn install_init(exec_root: &std::path::Path) -> anyhow::Result<std::path::PathBuf> {
    use std::io::Write;
    let path = exec_root.join("docker-init");
    let tmp = exec_root.join(".docker-init.tmp");
    let mut f = std::fs::File::create(&tmp).with_context(|| format!("write {}", tmp.display()))?;
    f.write_all(berth_init::INIT)
        .with_context(|| format!("write {}", tmp.display()))?;
    f.sync_all()
        .with_context(|| format!("sync {}", tmp.display()))?;
    drop(f);
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o555))
        .with_context(|| format!("chmod {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("install {}", path.display()))?;
    Ok(path)
}

/// A stable id for this data root (Docker's `ID` in info).
fn daemon_id(root: &std::path::Path) -> anyhow::Result<String> {
    let p = root.join("engine-id");
    if let Ok(s) = std::fs::read_to_string(&p) {
        if !s.trim().is_empty() {
            return Ok(s.trim().to_string());
        }
    }
    let id = format!("{:032x}", rand_u128());
    let tmp = p.with_extension("tmp");
    std::fs::write(&tmp, &id).with_context(|| format!("write {}", tmp.display()))?;
    std::fs::rename(&tmp, &p).with_context(|| format!("write {}", p.display()))?;
    Ok(id)
}

fn rand_u128() -> u128 {
    let mut b = [0u8; 16];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = std::io::Read::read_exact(&mut f, &mut b);
    }
    u128::from_le_bytes(b)
}

/// The kernel-facing networking parts: netlink for links, one nftables table for the firewall.
fn net_deps(cfg: &DaemonConfig) -> anyhow::Result<berth_engine::network::NetDeps> {
    let links = berth_network::link::Netlink::new().context("open a netlink connection")?;
    Ok(berth_engine::network::NetDeps {
        links: std::sync::Arc::new(links),
        firewall: std::sync::Arc::new(berth_network::firewall::Nft::new(
            cfg.network.firewall_table.clone(),
        )),
    })
}
