//! `berth registry serve|gc`: flags (clap), logging, the tokio runtime and signal handling.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use tokio::net::TcpListener;

use crate::api::{router, AppState};
use crate::config::{Config, ConfigError};
use crate::gc::{self, GcOptions};
use crate::server::{self, ServeError};

#[derive(Parser)]
#[command(
    name = "berth registry",
    about = "An OCI distribution registry with a web directory"
)]
struct RegistryCli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Serve the registry
    Serve(ServeArgs),
    /// Delete blobs no manifest references
    Gc(GcArgs),
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Address to listen on (default 127.0.0.1:5000)
    #[arg(long)]
    addr: Option<String>,
    /// Data root (default /var/lib/berth-registry)
    #[arg(long)]
    root: Option<PathBuf>,
    /// JSON configuration file
    #[arg(long)]
    config: Option<PathBuf>,
    /// PEM certificate chain for TLS
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for TLS
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// htpasswd file (bcrypt) for Basic auth
    #[arg(long)]
    htpasswd: Option<PathBuf>,
    /// Allow deleting manifests, tags and blobs
    #[arg(long)]
    delete_enabled: bool,
    /// Log level or filter
    #[arg(long)]
    log_level: Option<String>,
    /// Log format: text or json
    #[arg(long)]
    log_format: Option<String>,
}

#[derive(clap::Args)]
struct GcArgs {
    /// Data root
    #[arg(long)]
    root: Option<PathBuf>,
    /// JSON configuration file
    #[arg(long)]
    config: Option<PathBuf>,
    /// Report what would be deleted, delete nothing
    #[arg(long)]
    dry_run: bool,
    /// Keep unreferenced blobs younger than this many seconds
    #[arg(long)]
    grace_period: Option<u64>,
}

/// A failure of `berth registry`.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// TLS setup failed.
    #[error(transparent)]
    Serve(#[from] ServeError),
    /// The address cannot be bound.
    #[error("listen on {addr}")]
    Listen {
        /// The address.
        addr: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// No runtime.
    #[error("start the runtime")]
    Runtime(#[source] std::io::Error),
    /// The collector failed.
    #[error("garbage collection")]
    Gc(#[source] crate::registry::RegistryError),
}

fn load(config: &Option<PathBuf>) -> Result<Config, ConfigError> {
    match config {
        Some(p) => Config::load(p),
        None => Ok(Config::default()),
    }
}

fn init_logs(level: &str, format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if format == "json" {
        b.json().try_init()
    } else {
        b.try_init()
    };
}

fn report_error(e: &dyn std::error::Error) {
    let mut msg = format!("berth registry: {e}");
    let mut cur = e.source();
    while let Some(c) = cur {
        msg.push_str(&format!(": {c}"));
        cur = c.source();
    }
    eprintln!("{msg}");
}

/// Runs `berth registry ...`; `args[0]` is `registry`. Returns the exit code.
pub fn cli_main(args: &[String]) -> i32 {
    let cli = match RegistryCli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return e.exit_code();
        }
    };
    let res = match cli.cmd {
        Cmd::Serve(a) => serve_cmd(a),
        Cmd::Gc(a) => gc_cmd(a),
    };
    match res {
        Ok(()) => 0,
        Err(e) => {
            report_error(&e);
            1
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(CliError::Runtime)
}

fn serve_cmd(a: ServeArgs) -> Result<(), CliError> {
    let mut cfg = load(&a.config)?;
    if let Some(x) = a.addr {
        cfg.addr = x;
    }
    if let Some(x) = a.root {
        cfg.root = x;
    }
    if let (Some(cert), Some(key)) = (a.tls_cert, a.tls_key) {
        cfg.tls = Some(crate::config::TlsConfig { cert, key });
    }
    if let Some(h) = a.htpasswd {
        cfg.auth.get_or_insert_with(Default::default).htpasswd = Some(h);
    }
    if a.delete_enabled {
        cfg.delete_enabled = true;
    }
    if let Some(l) = a.log_level {
        cfg.log.level = l;
    }
    if let Some(f) = a.log_format {
        cfg.log.format = f;
    }
    init_logs(&cfg.log.level, &cfg.log.format);
    runtime()?.block_on(async move {
        let srv = Server::bind(&cfg).await?;
        println!("berth registry listening on {}", srv.url());
        srv.run(shutdown_signal()).await;
        Ok(())
    })
}

async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        () = term => {},
    }
}

fn gc_cmd(a: GcArgs) -> Result<(), CliError> {
    let mut cfg = load(&a.config)?;
    if let Some(r) = a.root {
        cfg.root = r;
    }
    init_logs("warn", "text");
    let grace = Duration::from_secs(a.grace_period.unwrap_or(cfg.gc.grace_secs));
    runtime()?.block_on(async move {
        let st = crate::config::build(&cfg)?;
        let opts = GcOptions {
            grace,
            dry_run: a.dry_run,
            ..GcOptions::default()
        };
        let r = gc::collect(&st.registry, &opts).await.map_err(CliError::Gc)?;
        let verb = if a.dry_run { "would delete" } else { "deleted" };
        for d in &r.deleted {
            println!("{verb} {d}");
        }
        println!(
            "{} repositories, {} manifests, {} blobs referenced; {verb} {} blobs ({} bytes), kept {} recent, removed {} links and {} stale uploads",
            r.repositories,
            r.manifests,
            r.marked,
            r.deleted.len(),
            r.bytes_freed,
            r.kept_recent,
            r.links_removed,
            r.uploads_removed
        );
        Ok(())
    })
}

/// A bound registry server, ready to run.
pub struct Server {
    listener: TcpListener,
    state: Arc<AppState>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    drain: Duration,
    gc_every: Option<Duration>,
    gc_grace: Duration,
}

impl Server {
    /// Prepares the root, assembles the service and binds the listener.
    pub async fn bind(cfg: &Config) -> Result<Server, CliError> {
        let state = Arc::new(crate::config::build(cfg)?);
        let tls = match &cfg.tls {
            Some(t) => Some(server::tls_acceptor(&t.cert, &t.key)?),
            None => None,
        };
        let listener = TcpListener::bind(&cfg.addr)
            .await
            .map_err(|source| CliError::Listen {
                addr: cfg.addr.clone(),
                source,
            })?;
        Ok(Server {
            listener,
            state,
            tls,
            drain: Duration::from_secs(cfg.shutdown_timeout_secs),
            gc_every: (cfg.gc.interval_secs > 0).then(|| Duration::from_secs(cfg.gc.interval_secs)),
            gc_grace: Duration::from_secs(cfg.gc.grace_secs),
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }

    /// The base URL.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        match self.local_addr() {
            Some(a) => format!("{scheme}://{a}"),
            None => format!("{scheme}://?"),
        }
    }

    /// Serves until `shutdown` completes, then finishes requests in flight.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) {
        let gc_task = self.gc_every.map(|every| {
            let st = self.state.clone();
            let grace = self.gc_grace;
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(every);
                tick.tick().await;
                loop {
                    tick.tick().await;
                    let opts = GcOptions {
                        grace,
                        ..GcOptions::default()
                    };
                    match gc::collect(&st.registry, &opts).await {
                        Ok(r) => {
                            st.metrics.gc_runs.fetch_add(1, Ordering::Relaxed);
                            st.metrics
                                .gc_blobs_deleted
                                .fetch_add(r.deleted.len() as u64, Ordering::Relaxed);
                            tracing::info!(
                                deleted = r.deleted.len(),
                                bytes = r.bytes_freed,
                                "garbage collected"
                            );
                        }
                        Err(e) => tracing::error!(error = %e, "garbage collection failed"),
                    }
                }
            })
        });
        tracing::info!(addr = %self.url(), "serving");
        let app = router(self.state.clone());
        server::serve(self.listener, app, self.tls, shutdown, self.drain).await;
        if let Some(t) = gc_task {
            t.abort();
        }
    }
}
