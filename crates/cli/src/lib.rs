//! berth-cli: the `berth` command, a drop-in for `docker`: same subcommands, flags, output and exit codes.
//!
//! Two stages, like the docker CLI: clap parses raw flags ([`Cli`]), then each command resolves them into
//! API calls through [`client::Client`]. Output formatting (Go templates, tables, human units) lives in
//! [`format`]. Exit codes: 125 for daemon/CLI errors, 126/127 when the command cannot be run, else the
//! container's.

pub mod client;
mod cmd_build;
mod cmd_commit;
mod cmd_container;
mod cmd_cp;
mod cmd_image;
mod cmd_network;
mod cmd_observe;
mod cmd_registry;
mod cmd_system;
mod cmd_update;
mod cmd_volume;
pub mod format;
mod output;
mod run_flags;
mod tty;

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

pub const DEFAULT_SOCKET: &str = "/run/berth/berth.sock";

/// An error that ends the CLI with a particular exit code (like docker's `StatusError`).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct StatusError {
    pub code: i32,
    pub message: String,
}

#[derive(Parser, Debug)]
#[command(
    name = "berth",
    version,
    about = "A self-sufficient runtime for containers, compatible with docker",
    disable_help_subcommand = true
)]
pub struct Cli {
    /// Daemon socket to connect to (unix:///path); also BERTH_HOST or DOCKER_HOST
    #[arg(short = 'H', long = "host", global = true)]
    pub host: Option<String>,
    /// Never start a daemon automatically (also BERTH_NO_AUTOSTART=1)
    #[arg(long = "no-autostart", global = true)]
    pub no_autostart: bool,
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Subcommand, Debug)]
#[command(defer = true)]
pub enum Cmd {
    /// Create and run a new container from an image
    Run(cmd_container::RunArgs),
    /// Create a new container
    Create(cmd_container::CreateArgs),
    /// Execute a command in a running container
    Exec(cmd_container::ExecArgs),
    /// Attach local standard input, output, and error streams to a running container
    Attach(cmd_container::AttachArgs),
    /// Start one or more stopped containers
    Start(cmd_container::StartArgs),
    /// Stop one or more running containers
    Stop(cmd_container::StopArgs),
    /// Restart one or more containers
    Restart(cmd_container::StopArgs),
    /// Kill one or more running containers
    Kill(cmd_container::KillArgs),
    /// Block until one or more containers stop, then print their exit codes
    Wait(cmd_container::IdsArgs),
    /// Remove one or more containers
    Rm(cmd_container::RmArgs),
    /// List containers
    Ps(cmd_container::PsArgs),
    /// Return low-level information on objects
    Inspect(cmd_container::InspectArgs),
    /// Fetch the logs of a container
    Logs(cmd_container::LogsArgs),
    /// Rename a container
    Rename(cmd_container::RenameArgs),
    /// Manage containers
    Container {
        #[command(subcommand)]
        cmd: ContainerCmd,
    },
    /// List images
    Images(cmd_image::ImagesArgs),
    /// Manage images
    Image {
        #[command(subcommand)]
        cmd: ImageCmd,
    },
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(cmd_image::TagArgs),
    /// Remove one or more images
    Rmi(cmd_image::RmiArgs),
    /// Show the history of an image
    History(cmd_image::HistoryArgs),
    /// Import the contents from a tarball to create a filesystem image
    Import(cmd_image::ImportArgs),
    /// Load an image from a tar archive or STDIN
    Load(cmd_image::LoadArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default)
    Save(cmd_image::SaveArgs),
    /// Pause all processes within one or more containers
    Pause(cmd_observe::IdsArgs),
    /// Unpause all processes within one or more containers
    Unpause(cmd_observe::IdsArgs),
    /// Display the running processes of a container
    Top(cmd_observe::TopArgs),
    /// Display a live stream of container(s) resource usage statistics
    Stats(cmd_observe::StatsArgs),
    /// Inspect changes to files or directories on a container's filesystem
    Diff(cmd_observe::DiffArgs),
    /// Export a container's filesystem as a tar archive
    Export(cmd_observe::ExportArgs),
    /// Copy files/folders between a container and the local filesystem
    Cp(cmd_cp::CpArgs),
    /// Create a new image from a container's changes
    Commit(cmd_commit::CommitArgs),
    /// Build an image from a Dockerfile
    Build(Box<cmd_build::BuildArgs>),
    /// Manage builds
    Builder {
        #[command(subcommand)]
        cmd: BuilderCmd,
    },
    /// Download an image from a registry
    Pull(cmd_registry::PullArgs),
    /// Upload an image to a registry
    Push(cmd_registry::PushArgs),
    /// Authenticate to a registry
    Login(cmd_registry::LoginArgs),
    /// Search a registry for images
    Search(cmd_registry::SearchArgs),
    /// Log out from a registry
    Logout(cmd_registry::LogoutArgs),
    /// Show the berth version information
    Version(cmd_system::VersionArgs),
    /// Display system-wide information
    Info(cmd_system::FormatArgs),
    /// Get real time events from the server
    Events(cmd_system::EventsArgs),
    /// Manage networks
    Network {
        #[command(subcommand)]
        cmd: cmd_network::NetworkCmd,
    },
    /// List port mappings or a specific mapping for the container
    Port(cmd_network::PortArgs),
    /// Update configuration of one or more containers
    Update(cmd_update::UpdateArgs),
    /// Manage volumes
    Volume {
        #[command(subcommand)]
        cmd: cmd_volume::VolumeCmd,
    },
    /// Manage berth
    System {
        #[command(subcommand)]
        cmd: SystemCmd,
    },
}

#[derive(Subcommand, Debug)]
#[command(defer = true)]
pub enum ContainerCmd {
    Run(cmd_container::RunArgs),
    Create(cmd_container::CreateArgs),
    Exec(cmd_container::ExecArgs),
    Attach(cmd_container::AttachArgs),
    Start(cmd_container::StartArgs),
    Stop(cmd_container::StopArgs),
    Restart(cmd_container::StopArgs),
    Kill(cmd_container::KillArgs),
    Wait(cmd_container::IdsArgs),
    Rm(cmd_container::RmArgs),
    #[command(alias = "list", alias = "ps")]
    Ls(cmd_container::PsArgs),
    Inspect(cmd_container::InspectArgs),
    Logs(cmd_container::LogsArgs),
    Rename(cmd_container::RenameArgs),
    Cp(cmd_cp::CpArgs),
    Commit(cmd_commit::CommitArgs),
    /// Remove all stopped containers
    Prune(cmd_container::PruneArgs),
}

#[derive(Subcommand, Debug)]
#[command(defer = true)]
pub enum ImageCmd {
    #[command(alias = "list")]
    Ls(cmd_image::ImagesArgs),
    Inspect(cmd_image::ImageInspectArgs),
    Tag(cmd_image::TagArgs),
    #[command(alias = "remove")]
    Rm(cmd_image::RmiArgs),
    History(cmd_image::HistoryArgs),
    Import(cmd_image::ImportArgs),
    Load(cmd_image::LoadArgs),
    Save(cmd_image::SaveArgs),
    /// Remove unused images
    Prune(cmd_image::ImagePruneArgs),
    Pull(cmd_registry::PullArgs),
    Push(cmd_registry::PushArgs),
}

#[derive(Subcommand, Debug)]
#[command(defer = true)]
pub enum BuilderCmd {
    /// Build an image from a Dockerfile
    Build(Box<cmd_build::BuildArgs>),
    /// Remove build cache
    Prune(cmd_build::BuilderPruneArgs),
}

#[derive(Subcommand, Debug)]
#[command(defer = true)]
pub enum SystemCmd {
    /// Show berth disk usage
    Df(cmd_system::DfArgs),
    /// Remove unused data
    Prune(cmd_system::SystemPruneArgs),
    Info(cmd_system::FormatArgs),
    Events(cmd_system::EventsArgs),
}

/// The socket to use: `-H`, then BERTH_HOST, then DOCKER_HOST, then the default.
pub fn resolve_socket(host: Option<&str>) -> Result<(PathBuf, bool)> {
    let (h, explicit) = match host {
        Some(h) => (h.to_string(), true),
        None => match std::env::var("BERTH_HOST").ok().filter(|s| !s.is_empty()) {
            Some(h) => (h, true),
            None => match std::env::var("DOCKER_HOST").ok().filter(|s| !s.is_empty()) {
                Some(h) => (h, true),
                None => (format!("unix://{DEFAULT_SOCKET}"), false),
            },
        },
    };
    match h.strip_prefix("unix://") {
        Some(p) => Ok((PathBuf::from(p), explicit)),
        None if h.starts_with('/') => Ok((PathBuf::from(h), explicit)),
        None => Err(anyhow::anyhow!(
            "unsupported host {h:?}: berth's CLI speaks to unix:// sockets"
        )),
    }
}

/// When nothing answers on the default socket, start `berth daemon` in the background and say so.
async fn ensure_daemon(socket: &std::path::Path, explicit: bool, no_autostart: bool) -> Result<()> {
    let off = no_autostart
        || std::env::var("BERTH_NO_AUTOSTART").is_ok_and(|v| !v.is_empty() && v != "0");
    // A socket the user named is never probed: the call itself reports "Cannot connect".
    if explicit || off {
        return Ok(());
    }
    if tokio::net::UnixStream::connect(socket).await.is_ok() {
        return Ok(());
    }
    if !nix::unistd::Uid::effective().is_root() {
        return Ok(());
    }
    let exe = std::env::current_exe()?;
    eprintln!(
        "berth: no daemon answered on {}; starting one (berth daemon)",
        socket.display()
    );
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open("/var/log/berth-daemon.log")
        .ok();
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("daemon").stdin(std::process::Stdio::null());
    match log {
        Some(f) => {
            let f2 = f.try_clone()?;
            cmd.stdout(f).stderr(f2);
        }
        None => {
            cmd.stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null());
        }
    }
    cmd.process_group(0);
    cmd.spawn()?;
    for _ in 0..200 {
        if tokio::net::UnixStream::connect(socket).await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    Err(anyhow::anyhow!(
        "started a daemon but it did not answer on {} (see /var/log/berth-daemon.log)",
        socket.display()
    ))
}

use std::os::unix::process::CommandExt;

/// Run the CLI; returns the process exit code.
pub async fn run(cli: Cli) -> i32 {
    let result = async {
        let (socket, explicit) = resolve_socket(cli.host.as_deref())?;
        ensure_daemon(&socket, explicit, cli.no_autostart).await?;
        let c = client::Client::new(socket);
        dispatch(&c, cli.cmd).await
    }
    .await;
    match result {
        Ok(code) => code,
        Err(e) => {
            if let Some(s) = e.downcast_ref::<StatusError>() {
                if !s.message.is_empty() {
                    eprintln!("{}", s.message);
                }
                return s.code;
            }
            eprintln!("{e:#}");
            125
        }
    }
}

async fn dispatch(c: &client::Client, cmd: Cmd) -> Result<i32> {
    use cmd_container as cc;
    use cmd_image as ci;
    use cmd_system as cs;
    match cmd {
        Cmd::Run(a)
        | Cmd::Container {
            cmd: ContainerCmd::Run(a),
        } => cc::run(c, a).await,
        Cmd::Create(a)
        | Cmd::Container {
            cmd: ContainerCmd::Create(a),
        } => cc::create_cmd(c, a).await,
        Cmd::Exec(a)
        | Cmd::Container {
            cmd: ContainerCmd::Exec(a),
        } => cc::exec(c, a).await,
        Cmd::Attach(a)
        | Cmd::Container {
            cmd: ContainerCmd::Attach(a),
        } => cc::attach(c, a).await,
        Cmd::Start(a)
        | Cmd::Container {
            cmd: ContainerCmd::Start(a),
        } => cc::start(c, a).await,
        Cmd::Stop(a)
        | Cmd::Container {
            cmd: ContainerCmd::Stop(a),
        } => cc::stop(c, a, "stop").await,
        Cmd::Restart(a)
        | Cmd::Container {
            cmd: ContainerCmd::Restart(a),
        } => cc::stop(c, a, "restart").await,
        Cmd::Kill(a)
        | Cmd::Container {
            cmd: ContainerCmd::Kill(a),
        } => cc::kill(c, a).await,
        Cmd::Wait(a)
        | Cmd::Container {
            cmd: ContainerCmd::Wait(a),
        } => cc::wait(c, a).await,
        Cmd::Rm(a)
        | Cmd::Container {
            cmd: ContainerCmd::Rm(a),
        } => cc::rm(c, a).await,
        Cmd::Ps(a)
        | Cmd::Container {
            cmd: ContainerCmd::Ls(a),
        } => cc::ps(c, a).await,
        Cmd::Inspect(a)
        | Cmd::Container {
            cmd: ContainerCmd::Inspect(a),
        } => cc::inspect(c, a).await,
        Cmd::Logs(a)
        | Cmd::Container {
            cmd: ContainerCmd::Logs(a),
        } => cc::logs(c, a).await,
        Cmd::Rename(a)
        | Cmd::Container {
            cmd: ContainerCmd::Rename(a),
        } => cc::rename(c, a).await,
        Cmd::Container {
            cmd: ContainerCmd::Prune(a),
        } => cc::prune(c, a).await,
        Cmd::Images(a)
        | Cmd::Image {
            cmd: ImageCmd::Ls(a),
        } => ci::images(c, a).await,
        Cmd::Image {
            cmd: ImageCmd::Inspect(a),
        } => ci::inspect(c, a).await,
        Cmd::Tag(a)
        | Cmd::Image {
            cmd: ImageCmd::Tag(a),
        } => ci::tag(c, a).await,
        Cmd::Rmi(a)
        | Cmd::Image {
            cmd: ImageCmd::Rm(a),
        } => ci::rmi(c, a).await,
        Cmd::History(a)
        | Cmd::Image {
            cmd: ImageCmd::History(a),
        } => ci::history(c, a).await,
        Cmd::Import(a)
        | Cmd::Image {
            cmd: ImageCmd::Import(a),
        } => ci::import(c, a).await,
        Cmd::Load(a)
        | Cmd::Image {
            cmd: ImageCmd::Load(a),
        } => ci::load(c, a).await,
        Cmd::Save(a)
        | Cmd::Image {
            cmd: ImageCmd::Save(a),
        } => ci::save(c, a).await,
        Cmd::Image {
            cmd: ImageCmd::Prune(a),
        } => ci::prune(c, a).await,
        Cmd::Pull(a)
        | Cmd::Image {
            cmd: ImageCmd::Pull(a),
        } => cmd_registry::pull(c, a).await,
        Cmd::Push(a)
        | Cmd::Image {
            cmd: ImageCmd::Push(a),
        } => cmd_registry::push(c, a).await,
        Cmd::Login(a) => cmd_registry::login(c, a).await,
        Cmd::Search(a) => cmd_registry::search(c, a).await,
        Cmd::Logout(a) => cmd_registry::logout(a).await,
        Cmd::Pause(a) => cmd_observe::pause(c, a).await,
        Cmd::Unpause(a) => cmd_observe::unpause(c, a).await,
        Cmd::Top(a) => cmd_observe::top(c, a).await,
        Cmd::Stats(a) => cmd_observe::stats(c, a).await,
        Cmd::Diff(a) => cmd_observe::diff(c, a).await,
        Cmd::Export(a) => cmd_observe::export(c, a).await,
        Cmd::Cp(a)
        | Cmd::Container {
            cmd: ContainerCmd::Cp(a),
        } => cmd_cp::cp(c, a).await,
        Cmd::Commit(a)
        | Cmd::Container {
            cmd: ContainerCmd::Commit(a),
        } => cmd_commit::commit(c, a).await,
        Cmd::Build(a)
        | Cmd::Builder {
            cmd: BuilderCmd::Build(a),
        } => cmd_build::build(c, *a).await,
        Cmd::Builder {
            cmd: BuilderCmd::Prune(a),
        } => cmd_build::builder_prune(c, a).await,
        Cmd::System {
            cmd: SystemCmd::Prune(a),
        } => cmd_system::system_prune(c, a).await,
        Cmd::Version(a) => cs::version(c, a).await,
        Cmd::Volume { cmd } => cmd_volume::run(c, cmd).await,
        Cmd::Update(a) => cmd_update::update(c, a).await,
        Cmd::Network { cmd } => cmd_network::run(c, cmd).await,
        Cmd::Port(a) => cmd_network::port(c, a).await,
        Cmd::Info(a)
        | Cmd::System {
            cmd: SystemCmd::Info(a),
        } => cs::info(c, a).await,
        Cmd::Events(a)
        | Cmd::System {
            cmd: SystemCmd::Events(a),
        } => cs::events(c, a).await,
        Cmd::System {
            cmd: SystemCmd::Df(a),
        } => cs::df(c, a).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn flag_definitions_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn docker_style_command_lines_parse() {
        let c = Cli::try_parse_from([
            "berth", "run", "--rm", "-h", "box", "-e", "A=1", "busybox", "sh", "-c", "echo hi",
        ])
        .unwrap();
        match c.cmd {
            Cmd::Run(mut r) => {
                r.create.split();
                assert_eq!(r.create.hostname.as_deref(), Some("box"));
                assert_eq!(r.create.image, "busybox");
                assert_eq!(r.create.command, vec!["sh", "-c", "echo hi"]);
                assert!(r.create.rm);
            }
            other => panic!("parsed as {other:?}"),
        }
        // Options end at the image: `-c` after it belongs to the command (it is also `--cpu-shares`).
        let c = Cli::try_parse_from([
            "berth",
            "run",
            "--entrypoint",
            "sh",
            "busybox",
            "-c",
            "echo hi",
        ])
        .unwrap();
        match c.cmd {
            Cmd::Run(mut r) => {
                r.create.split();
                assert_eq!(r.create.image, "busybox");
                assert_eq!(r.create.command, vec!["-c", "echo hi"]);
                assert_eq!(r.create.cpu_shares, None);
            }
            other => panic!("parsed as {other:?}"),
        }
        assert!(Cli::try_parse_from([
            "berth",
            "-H",
            "unix:///x.sock",
            "ps",
            "-a",
            "--format",
            "{{.ID}}"
        ])
        .is_ok());
    }

    #[test]
    fn hosts_resolve_in_docker_order() {
        assert_eq!(
            resolve_socket(Some("unix:///a.sock")).unwrap(),
            (PathBuf::from("/a.sock"), true)
        );
        assert!(resolve_socket(Some("ssh://x")).is_err());
    }
}
