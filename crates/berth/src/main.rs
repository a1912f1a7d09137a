//! The `berth` binary: the CLI, plus `berth daemon` and the hidden `berth shim -` (a container's shim, handed its container on stdin).
//!
//! The shim is dispatched before anything else runs (no async runtime, no threads), because it clones
//! containers' processes from itself (`berth_sys::container`, `berth_sys::launch`).

use clap::Parser;
use std::path::PathBuf;

/// `berth daemon` flags, with dockerd's names.
#[derive(Parser, Debug)]
#[command(name = "berth daemon", about = "Run the berth daemon")]
struct DaemonArgs {
    /// Daemon socket(s) to listen on (unix:///path, tcp://addr:port)
    #[arg(short = 'H', long = "host")]
    host: Vec<String>,
    /// Root directory of persistent state
    #[arg(long = "data-root")]
    data_root: Option<PathBuf>,
    /// Root directory for execution state files
    #[arg(long = "exec-root")]
    exec_root: Option<PathBuf>,
    /// Path to use for the daemon PID file
    #[arg(short = 'p', long = "pidfile")]
    pidfile: Option<PathBuf>,
    /// Daemon configuration file
    #[arg(long = "config-file")]
    config_file: Option<PathBuf>,
    /// Set the logging level ("debug"|"info"|"warn"|"error")
    #[arg(short = 'l', long = "log-level")]
    log_level: Option<String>,
    /// Enable debug mode
    #[arg(short = 'D', long)]
    debug: bool,
    /// Attach containers to a network bridge ("none" disables the default bridge)
    #[arg(short = 'b', long)]
    bridge: Option<String>,
    /// Specify default-bridge IP (gateway address and prefix, e.g. 172.17.0.1/16)
    #[arg(long)]
    bip: Option<String>,
    /// Set the containers network MTU
    #[arg(long)]
    mtu: Option<u32>,
    /// The nftables table berth keeps its rules in
    #[arg(long = "firewall-table")]
    firewall_table: Option<String>,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("shim") => {
            let Some(dir) = args.get(2) else {
                eprintln!("usage: berth shim - [cgroup-parent [socket-dir]]");
                std::process::exit(2);
            };
            std::process::exit(berth_runtime::shim::main_args(
                dir,
                args.get(3).map(String::as_str),
                args.get(4).map(String::as_str),
            ));
        }
        Some("daemon") => std::process::exit(daemon(&args[1..])),
        Some("registry") => std::process::exit(berth_registry::cli_main(&args[1..])),
        _ => {}
    }
    let cli = berth_cli::Cli::parse();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("berth: cannot start: {e}");
            std::process::exit(125);
        }
    };
    let code = rt.block_on(berth_cli::run(cli));
    std::process::exit(code);
}

fn daemon(args: &[String]) -> i32 {
    berth_sys::process::single_malloc_arena();
    let a = DaemonArgs::parse_from(args);
    let flags = berth_daemon::config::Flags {
        hosts: a.host,
        data_root: a.data_root,
        exec_root: a.exec_root,
        pidfile: a.pidfile,
        config_file: a.config_file,
        log_level: a.log_level,
        debug: a.debug,
        bridge: a.bridge,
        bip: a.bip,
        mtu: a.mtu,
        firewall_table: a.firewall_table,
    };
    let cfg = match berth_daemon::config::load(&flags) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("berth daemon: {e:#}");
            return 1;
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_new(&cfg.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("berth daemon: cannot start: {e}");
            return 1;
        }
    };
    match rt.block_on(berth_daemon::run(cfg)) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("berth daemon: {e:#}");
            1
        }
    }
}
