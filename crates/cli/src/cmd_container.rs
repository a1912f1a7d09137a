//! Container commands: run, create, start, stop, restart, kill, wait, rm, ps, inspect, logs, rename, prune.

use crate::client::{enc, next_chunk, Client, DaemonError};
use crate::format::human;
use crate::output::{pretty, render, render_plain, Demux};
pub use crate::run_flags::{collect_env, create_body, CreateArgs, RunArgs};
use crate::StatusError;
use anyhow::{anyhow, bail, Result};
use clap::Args;
use hyper::Method;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn create(c: &Client, a: &CreateArgs, attached: bool) -> Result<String> {
    let body = create_body(a, attached)?;
    let mut path = "/containers/create".to_string();
    if let Some(n) = &a.name {
        path.push_str(&format!("?name={}", enc(n)));
    }
    let policy = a.pull.as_deref().unwrap_or("missing");
    if !matches!(policy, "always" | "missing" | "never") {
        return Err(StatusError { code: 125, message: format!("invalid pull option: '{policy}': must be one of \"always\", \"missing\" or \"never\"") }.into());
    }
    if policy == "always" {
        crate::cmd_registry::pull_image(
            c,
            &a.image,
            a.platform.as_deref(),
            crate::cmd_registry::ProgressView::on_stderr(false),
        )
        .await?;
    }
    let v = match c.post_json(&path, Some(&body)).await {
        Ok(v) => v,
        Err(e) => {
            let missing = e
                .downcast_ref::<DaemonError>()
                .is_some_and(|d| d.status == 404 && d.message.starts_with("No such image"));
            if !missing || policy != "missing" {
                return Err(e);
            }
            eprintln!("Unable to find image '{}' locally", a.image);
            crate::cmd_registry::pull_image(
                c,
                &a.image,
                a.platform.as_deref(),
                crate::cmd_registry::ProgressView::on_stderr(false),
            )
            .await?;
            c.post_json(&path, Some(&body)).await?
        }
    };
    for w in v["Warnings"].as_array().into_iter().flatten() {
        if let Some(w) = w.as_str() {
            eprintln!("WARNING: {w}");
        }
    }
    v["Id"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| anyhow!("the daemon returned no container id"))
}

pub async fn create_cmd(c: &Client, mut a: CreateArgs) -> Result<i32> {
    a.split();
    let id = create(c, &a, false).await?;
    println!("{id}");
    Ok(0)
}

/// Map a failed start to docker's exit codes.
fn start_error(e: anyhow::Error) -> anyhow::Error {
    let msg = format!("{e:#}");
    let code =
        if msg.contains("executable file not found") || msg.contains("no such file or directory") {
            127
        } else if msg.contains("permission denied") {
            126
        } else {
            125
        };
    StatusError { code, message: msg }.into()
}

pub async fn run(c: &Client, mut a: RunArgs) -> Result<i32> {
    a.create.split();
    let id = create(c, &a.create, !a.detach).await?;
    if a.detach {
        c.call(Method::POST, &format!("/containers/{id}/start"), None)
            .await
            .map_err(start_error)?;
        println!("{id}");
        return Ok(0);
    }
    let interactive = a.create.interactive;
    let tty = a.create.tty;
    let keys = detach_keys(a.detach_keys.as_deref())?;
    // Signals are forwarded from now on, as the docker CLI does: the handlers are set up while the
    // daemon attaches and starts (a signal before the start gets the daemon's "not running").
    let proxy = (a.sig_proxy && !tty).then(|| sig_proxy(c, &id));
    // The wait goes out while the attach is made, well before the start: a short `--rm` container could
    // otherwise be gone before its wait arrived.
    let cond = if a.create.rm { "removed" } else { "next-exit" };
    let wc = c.clone();
    let wid = id.clone();
    let waiter = tokio::spawn(async move {
        wc.post_json(&format!("/containers/{wid}/wait?condition={cond}"), None)
            .await
    });
    let mut q = "stream=1&stdout=1&stderr=1".to_string();
    if interactive {
        q.push_str("&stdin=1");
    }
    if let Some(k) = &a.detach_keys {
        q.push_str(&format!("&detachKeys={}", enc(k)));
    }
    let conn = match c
        .hijack(&format!("/containers/{id}/attach?{q}"), None)
        .await
    {
        Ok(conn) => conn,
        Err(e) => {
            waiter.abort();
            return Err(e);
        }
    };
    if let Err(e) = c
        .call(Method::POST, &format!("/containers/{id}/start"), None)
        .await
    {
        // Like the docker CLI: an auto-remove container that could not start is removed (the daemon
        // does that) before the command returns.
        if let Some(p) = proxy {
            p.abort();
        }
        if a.create.rm {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(30), waiter).await;
        } else {
            waiter.abort();
        }
        return Err(start_error(e));
    }
    let resize = tty.then(|| format!("/containers/{id}/resize"));
    let detached = session(c, conn, interactive, tty, keys, resize).await;
    if let Some(p) = proxy {
        p.abort();
    }
    if detached {
        waiter.abort();
        return Ok(0);
    }
    let w = waiter.await.map_err(|e| anyhow!("wait: {e}"))??;
    if let Some(m) = w["Error"]["Message"].as_str().filter(|m| !m.is_empty()) {
        eprintln!("{m}");
    }
    Ok(w["StatusCode"].as_i64().unwrap_or(125) as i32)
}

/// `--sig-proxy` (the default for attached containers without a terminal): the signals this CLI receives are
/// sent to the container, like the docker CLI does.
fn sig_proxy(c: &Client, id: &str) -> tokio::task::JoinHandle<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let c = c.clone();
    let id = id.to_string();
    tokio::spawn(async move {
        let kinds = [
            (SignalKind::interrupt(), "SIGINT"),
            (SignalKind::terminate(), "SIGTERM"),
            (SignalKind::hangup(), "SIGHUP"),
            (SignalKind::quit(), "SIGQUIT"),
            (SignalKind::user_defined1(), "SIGUSR1"),
            (SignalKind::user_defined2(), "SIGUSR2"),
        ];
        let (tx, mut rx) = tokio::sync::mpsc::channel::<&'static str>(16);
        for (kind, name) in kinds {
            let Ok(mut s) = signal(kind) else { continue };
            let tx = tx.clone();
            tokio::spawn(async move {
                while s.recv().await.is_some() {
                    if tx.send(name).await.is_err() {
                        return;
                    }
                }
            });
        }
        drop(tx);
        while let Some(name) = rx.recv().await {
            let _ = c
                .call(
                    Method::POST,
                    &format!("/containers/{}/kill?signal={name}", enc(&id)),
                    None,
                )
                .await;
        }
    })
}

/// The detach keys: the flag, or docker's default ctrl-p ctrl-q.
fn detach_keys(flag: Option<&str>) -> Result<Vec<u8>> {
    match flag {
        Some(k) => crate::tty::parse_detach_keys(k)
            .ok_or_else(|| anyhow!("Invalid detach keys ({k}) provided")),
        None => Ok(vec![16, 17]),
    }
}

/// Run an attached session on a hijacked connection: the user's input to the process (when interactive),
/// its output to ours (demultiplexed unless it has a terminal). With a terminal, ours is put in raw mode and
/// its size follows ours (`resize` is the endpoint). Returns true when the user detached.
pub async fn session(
    c: &Client,
    conn: hyper_util::rt::TokioIo<hyper::upgrade::Upgraded>,
    interactive: bool,
    tty: bool,
    keys: Vec<u8>,
    resize: Option<String>,
) -> bool {
    let _raw = tty.then(crate::tty::RawMode::enable);
    let (mut rd, mut wr) = tokio::io::split(conn);
    let detached = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let resizer = resize.map(|path| {
        let c = c.clone();
        tokio::spawn(async move {
            let mut last = None;
            let mut winch =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change()).ok();
            loop {
                let now = crate::tty::size();
                if now.is_some() && now != last {
                    if let Some((h, w)) = now {
                        let _ = c
                            .call(Method::POST, &format!("{path}?h={h}&w={w}"), None)
                            .await;
                    }
                    last = now;
                }
                match winch.as_mut() {
                    Some(s) => {
                        if s.recv().await.is_none() {
                            return;
                        }
                    }
                    None => return,
                }
            }
        })
    });
    let stdin_task = interactive.then(|| {
        let detached = detached.clone();
        tokio::spawn(async move {
            let mut watch = crate::tty::DetachWatch::new(keys);
            let mut stdin = tokio::io::stdin();
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                match stdin.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if watch.feed(&buf[..n]) {
                            detached.store(true, std::sync::atomic::Ordering::SeqCst);
                        }
                        if wr.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                }
            }
            let _ = wr.shutdown().await;
        })
    });
    let mut demux = Demux::default();
    let mut out = crate::output::raw_stdout();
    let mut err = std::io::stderr();
    let mut buf = vec![0u8; 128 * 1024];
    loop {
        match rd.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if tty {
                    use std::io::Write;
                    let _ = out.write_all(&buf[..n]);
                    let _ = out.flush();
                } else {
                    let _ = demux.feed(&buf[..n], &mut out, &mut err);
                }
            }
        }
    }
    if let Some(t) = stdin_task {
        t.abort();
    }
    if let Some(t) = resizer {
        t.abort();
    }
    detached.load(std::sync::atomic::Ordering::SeqCst)
}

#[derive(Args, Debug)]
pub struct StartArgs {
    /// Attach STDOUT/STDERR and forward signals
    #[arg(short = 'a', long)]
    pub attach: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys")]
    pub detach_keys: Option<String>,
    /// Attach container's STDIN
    #[arg(short = 'i', long)]
    pub interactive: bool,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub async fn start(c: &Client, a: StartArgs) -> Result<i32> {
    if a.attach {
        let id = a.containers.first().cloned().unwrap_or_default();
        let info = c
            .get_json(&format!("/containers/{}/json", enc(&id)))
            .await?;
        let tty = info["Config"]["Tty"].as_bool().unwrap_or(false);
        let interactive = a.interactive && info["Config"]["OpenStdin"].as_bool().unwrap_or(false);
        let keys = detach_keys(a.detach_keys.as_deref())?;
        let mut q = "stream=1&stdout=1&stderr=1".to_string();
        if interactive {
            q.push_str("&stdin=1");
        }
        let conn = c
            .hijack(&format!("/containers/{}/attach?{q}", enc(&id)), None)
            .await?;
        let wc = c.clone();
        let wid = id.clone();
        let waiter = tokio::spawn(async move {
            wc.post_json(
                &format!("/containers/{}/wait?condition=next-exit", enc(&wid)),
                None,
            )
            .await
        });
        c.call(
            Method::POST,
            &format!("/containers/{}/start", enc(&id)),
            None,
        )
        .await
        .map_err(start_error)?;
        let resize = tty.then(|| format!("/containers/{}/resize", enc(&id)));
        let proxy = (!tty).then(|| sig_proxy(c, &id));
        let detached = session(c, conn, interactive, tty, keys, resize).await;
        if let Some(p) = proxy {
            p.abort();
        }
        if detached {
            return Ok(0);
        }
        let w = waiter.await.map_err(|e| anyhow!("wait: {e}"))??;
        return Ok(w["StatusCode"].as_i64().unwrap_or(125) as i32);
    }
    each(&a.containers, |id| async move {
        c.call(
            Method::POST,
            &format!("/containers/{}/start", enc(&id)),
            None,
        )
        .await
        .map_err(start_error)?;
        println!("{id}");
        Ok(())
    })
    .await
}

/// Run `f` for each name; print errors like docker and fail at the end if any failed.
async fn each<F, Fut>(names: &[String], f: F) -> Result<i32>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    let mut failed = false;
    for n in names {
        if let Err(e) = f(n.clone()).await {
            eprintln!("{e:#}");
            failed = true;
        }
    }
    if failed {
        return Err(StatusError {
            code: 1,
            message: String::new(),
        }
        .into());
    }
    Ok(0)
}

#[derive(Args, Debug)]
pub struct StopArgs {
    /// Seconds to wait before killing the container
    #[arg(
        short = 't',
        long = "time",
        alias = "timeout",
        allow_hyphen_values = true
    )]
    pub time: Option<i64>,
    /// Signal to send to the container
    #[arg(short = 's', long)]
    pub signal: Option<String>,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub async fn stop(c: &Client, a: StopArgs, verb: &str) -> Result<i32> {
    let mut q = Vec::new();
    if let Some(t) = a.time {
        q.push(format!("t={t}"));
    }
    if let Some(s) = &a.signal {
        q.push(format!("signal={}", enc(s)));
    }
    let q = q.join("&");
    each(&a.containers, |id| {
        let q = q.clone();
        async move {
            c.call(
                Method::POST,
                &format!("/containers/{}/{verb}?{q}", enc(&id)),
                None,
            )
            .await?;
            println!("{id}");
            Ok(())
        }
    })
    .await
}

#[derive(Args, Debug)]
pub struct KillArgs {
    /// Signal to send to the container
    #[arg(short = 's', long, default_value = "KILL")]
    pub signal: String,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub async fn kill(c: &Client, a: KillArgs) -> Result<i32> {
    let sig = a.signal.clone();
    each(&a.containers, |id| {
        let sig = sig.clone();
        async move {
            c.call(
                Method::POST,
                &format!("/containers/{}/kill?signal={}", enc(&id), enc(&sig)),
                None,
            )
            .await?;
            println!("{id}");
            Ok(())
        }
    })
    .await
}

#[derive(Args, Debug)]
pub struct IdsArgs {
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub async fn wait(c: &Client, a: IdsArgs) -> Result<i32> {
    each(&a.containers, |id| async move {
        let v = c
            .post_json(&format!("/containers/{}/wait", enc(&id)), None)
            .await?;
        println!("{}", v["StatusCode"].as_i64().unwrap_or(-1));
        Ok(())
    })
    .await
}

#[derive(Args, Debug)]
pub struct RmArgs {
    /// Force the removal of a running container (uses SIGKILL)
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Remove anonymous volumes associated with the container
    #[arg(short = 'v', long)]
    pub volumes: bool,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub async fn rm(c: &Client, a: RmArgs) -> Result<i32> {
    let (f, v) = (a.force, a.volumes);
    each(&a.containers, |id| async move {
        c.call(
            Method::DELETE,
            &format!("/containers/{}?force={}&v={}", enc(&id), f as u8, v as u8),
            None,
        )
        .await?;
        println!("{id}");
        Ok(())
    })
    .await
}

#[derive(Args, Debug)]
pub struct PsArgs {
    /// Show all containers (default shows just running)
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Only display container IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Show n last created containers (includes all states)
    #[arg(short = 'n', long = "last", allow_hyphen_values = true)]
    pub last: Option<i64>,
    /// Show the latest created container (includes all states)
    #[arg(short = 'l', long)]
    pub latest: bool,
    /// Display total file sizes
    #[arg(short = 's', long)]
    pub size: bool,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Filter output based on conditions provided
    #[arg(short = 'f', long = "filter")]
    pub filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long)]
    pub format: Option<String>,
}

/// `k=v` filter flags to the API's JSON filter map.
pub fn filters_json(filters: &[String]) -> Result<String> {
    let mut m: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for f in filters {
        let (k, v) = f
            .split_once('=')
            .ok_or_else(|| anyhow!("bad format of filter (expected name=value)"))?;
        m.entry(k.to_lowercase()).or_default().push(v.to_string());
    }
    Ok(serde_json::to_string(&m)?)
}

/// The object a `ps --format` template sees (docker's container formatter fields).
fn ps_item(v: &Value, trunc: bool) -> Value {
    let id = v["Id"].as_str().unwrap_or("");
    let created = v["Created"].as_i64().unwrap_or(0);
    let when = chrono::DateTime::from_timestamp(created, 0).unwrap_or_default();
    let names: Vec<String> = v["Names"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| n.as_str().map(|s| s.trim_start_matches('/').to_string()))
        .collect();
    let labels: std::collections::BTreeMap<String, String> = v["Labels"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
        .collect();
    let size = match (v["SizeRw"].as_i64(), v["SizeRootFs"].as_i64()) {
        (Some(rw), Some(root)) => human::container_size_column(rw, root),
        _ => String::new(),
    };
    let mut image = v["Image"].as_str().unwrap_or("").to_string();
    if trunc && image.starts_with("sha256:") {
        image = human::truncate_id(&image).to_string();
    }
    json!({
        "ID": if trunc { human::truncate_id(id).to_string() } else { id.to_string() },
        "Image": image,
        "Command": human::command_column(v["Command"].as_str().unwrap_or(""), trunc),
        "CreatedAt": when.with_timezone(&chrono::Local).format("%Y-%m-%d %H:%M:%S %z %Z").to_string(),
        "RunningFor": human::time_ago(when, chrono::Utc::now()),
        "Ports": human::ports_column(&port_summaries(&v["Ports"])),
        "State": v["State"],
        "Status": v["Status"],
        "Size": size,
        "Names": names.join(","),
        "Labels": human::labels_column(&labels),
        "Mounts": v["Mounts"].as_array().map(|m| m.iter().map(|x| {
            let name = x["Name"].as_str().unwrap_or("");
            if name.is_empty() { x["Source"].as_str().unwrap_or("").to_string() } else { human::truncate_id(name).to_string() }
        }).collect::<Vec<_>>().join(",")).unwrap_or_default(),
        "Networks": v["NetworkSettings"]["Networks"].as_object().map(|m| m.keys().cloned().collect::<Vec<_>>().join(",")).unwrap_or_default(),
    })
}

/// The API's `Ports` of a container summary.
pub fn port_summaries(v: &Value) -> Vec<human::PortSummary> {
    v.as_array()
        .into_iter()
        .flatten()
        .map(|p| human::PortSummary {
            ip: p["IP"].as_str().unwrap_or("").to_string(),
            private_port: p["PrivatePort"].as_u64().unwrap_or(0) as u16,
            public_port: p["PublicPort"].as_u64().unwrap_or(0) as u16,
            protocol: p["Type"].as_str().unwrap_or("tcp").to_string(),
        })
        .collect()
}

pub async fn ps(c: &Client, a: PsArgs) -> Result<i32> {
    let mut q = vec![
        format!("all={}", a.all as u8),
        format!("size={}", a.size as u8),
    ];
    if let Some(n) = a.last {
        q.push(format!("limit={n}"));
    }
    if a.latest {
        q.push("limit=1".into());
    }
    if !a.filter.is_empty() {
        q.push(format!("filters={}", enc(&filters_json(&a.filter)?)));
    }
    let list = c
        .get_json(&format!("/containers/json?{}", q.join("&")))
        .await?;
    let items: Vec<Value> = list.as_array().cloned().unwrap_or_default();
    if a.quiet {
        for i in &items {
            let id = i["Id"].as_str().unwrap_or("");
            println!(
                "{}",
                if a.no_trunc {
                    id
                } else {
                    human::truncate_id(id)
                }
            );
        }
        return Ok(0);
    }
    let rows: Vec<Value> = items.iter().map(|i| ps_item(i, !a.no_trunc)).collect();
    let default = crate::format::container_format("table", false, a.size);
    print!(
        "{}",
        render(
            &rows,
            a.format.as_deref(),
            &default,
            crate::format::CONTAINER_HEADERS
        )?
    );
    Ok(0)
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long)]
    pub format: Option<String>,
    /// Display total file sizes if the type is container
    #[arg(short = 's', long)]
    pub size: bool,
    /// Return JSON for specified type
    #[arg(long = "type")]
    pub kind: Option<String>,
    #[arg(required = true)]
    pub names: Vec<String>,
}

/// Print inspected objects: a JSON array, or each through `--format`.
pub fn print_inspected(objs: &[Value], format: Option<&str>) -> Result<()> {
    match format {
        Some(f) => print!("{}", render_plain(objs, f)?),
        None => println!("{}", pretty(&Value::Array(objs.to_vec()))),
    }
    Ok(())
}

pub async fn inspect(c: &Client, a: InspectArgs) -> Result<i32> {
    let mut objs = Vec::new();
    let mut errors = Vec::new();
    for n in &a.names {
        let container = if a.kind.as_deref().is_none_or(|k| k == "container") {
            c.get_json(&format!(
                "/containers/{}/json?size={}",
                enc(n),
                a.size as u8
            ))
            .await
            .ok()
        } else {
            None
        };
        let found = match container {
            Some(v) => Some(v),
            None if a.kind.as_deref().is_none_or(|k| k == "image") => {
                c.get_json(&format!("/images/{n}/json")).await.ok()
            }
            None => None,
        };
        match found {
            Some(v) => objs.push(v),
            None => errors.push(format!("Error: No such object: {n}")),
        }
    }
    print_inspected(&objs, a.format.as_deref())?;
    if !errors.is_empty() {
        return Err(StatusError {
            code: 1,
            message: errors.join("\n"),
        }
        .into());
    }
    Ok(0)
}

#[derive(Args, Debug)]
pub struct LogsOptions {}

#[derive(Args, Debug)]
pub struct LogsArgs {
    /// Follow log output
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Number of lines to show from the end of the logs
    #[arg(short = 'n', long, default_value = "all")]
    pub tail: String,
    /// Show timestamps
    #[arg(short = 't', long)]
    pub timestamps: bool,
    /// Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m")
    #[arg(long)]
    pub since: Option<String>,
    /// Show logs before a timestamp or relative
    #[arg(long)]
    pub until: Option<String>,
    pub container: String,
}

/// A Go duration (`200ms`, `1m30s`) in nanoseconds.
pub fn go_duration_ns(s: &str) -> Option<i64> {
    let mut total = 0f64;
    let mut num = String::new();
    let mut rest = s;
    if s.is_empty() {
        return None;
    }
    while let Some(c) = rest.chars().next() {
        if c.is_ascii_digit() || c == '.' {
            num.push(c);
            rest = &rest[1..];
            continue;
        }
        let (unit, len) = if rest.starts_with("ms") {
            (1e6, 2)
        } else if rest.starts_with("us") {
            (1e3, 2)
        } else if rest.starts_with("ns") {
            (1.0, 2)
        } else {
            match c {
                'h' => (3.6e12, 1),
                'm' => (6e10, 1),
                's' => (1e9, 1),
                _ => return None,
            }
        };
        total += num.parse::<f64>().ok()? * unit;
        num.clear();
        rest = &rest[len..];
    }
    num.is_empty().then_some(total as i64)
}

/// docker's time arguments: RFC 3339, unix seconds, or a Go duration before now (`10m`, `1h30m`, `2s`).
pub fn parse_time_arg(s: &str) -> Result<String> {
    if s.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Ok(s.to_string());
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(format!(
            "{}.{:09}",
            t.timestamp(),
            t.timestamp_subsec_nanos()
        ));
    }
    let mut total = 0f64;
    let mut num = String::new();
    let mut rest = s;
    while !rest.is_empty() {
        let c = rest.chars().next().unwrap_or(' ');
        if c.is_ascii_digit() || c == '.' {
            num.push(c);
            rest = &rest[1..];
            continue;
        }
        let (unit, len) = if rest.starts_with("ms") {
            (0.001, 2)
        } else {
            match c {
                'h' => (3600.0, 1),
                'm' => (60.0, 1),
                's' => (1.0, 1),
                _ => bail!("invalid time value: {s}"),
            }
        };
        let n: f64 = num
            .parse()
            .map_err(|_| anyhow!("invalid time value: {s}"))?;
        total += n * unit;
        num.clear();
        rest = &rest[len..];
    }
    if !num.is_empty() {
        bail!("invalid time value: {s} (missing unit)");
    }
    let t = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0) as f64 / 1e9 - total;
    Ok(format!("{t:.9}"))
}

pub async fn logs(c: &Client, a: LogsArgs) -> Result<i32> {
    let info = c
        .get_json(&format!("/containers/{}/json", enc(&a.container)))
        .await?;
    let tty = info["Config"]["Tty"].as_bool().unwrap_or(false);
    let mut q = format!(
        "stdout=1&stderr=1&follow={}&timestamps={}&tail={}",
        a.follow as u8,
        a.timestamps as u8,
        enc(&a.tail)
    );
    if let Some(s) = &a.since {
        q.push_str(&format!("&since={}", parse_time_arg(s)?));
    }
    if let Some(u) = &a.until {
        q.push_str(&format!("&until={}", parse_time_arg(u)?));
    }
    let resp = c
        .stream(
            Method::GET,
            &format!("/containers/{}/logs?{q}", enc(&a.container)),
        )
        .await?;
    let mut body = resp.into_body();
    let mut demux = Demux::default();
    let (mut out, mut err) = (std::io::stdout(), std::io::stderr());
    while let Some(chunk) = next_chunk(&mut body).await? {
        if tty {
            use std::io::Write;
            out.write_all(&chunk)?;
        } else {
            demux.feed(&chunk, &mut out, &mut err)?;
        }
    }
    Ok(0)
}

#[derive(Args, Debug)]
pub struct RenameArgs {
    pub container: String,
    pub new_name: String,
}

pub async fn rename(c: &Client, a: RenameArgs) -> Result<i32> {
    c.call(
        Method::POST,
        &format!(
            "/containers/{}/rename?name={}",
            enc(&a.container),
            enc(&a.new_name)
        ),
        None,
    )
    .await?;
    Ok(0)
}

#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Provide filter values (e.g. "label=<key>=<value>")
    #[arg(long)]
    pub filter: Vec<String>,
}

/// Ask "Are you sure?" like docker, unless forced.
pub fn confirm(warning: &str, force: bool) -> bool {
    if force {
        return true;
    }
    eprint!("{warning}\nAre you sure you want to continue? [y/N] ");
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
    matches!(line.trim().to_lowercase().as_str(), "y" | "yes")
}

pub async fn prune(c: &Client, a: PruneArgs) -> Result<i32> {
    if !confirm("WARNING! This will remove all stopped containers.", a.force) {
        return Ok(0);
    }
    let v = c
        .post_json(
            &format!(
                "/containers/prune?filters={}",
                enc(&filters_json(&a.filter)?)
            ),
            None,
        )
        .await?;
    let ids: Vec<&str> = v["ContainersDeleted"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i.as_str())
        .collect();
    if !ids.is_empty() {
        println!("Deleted Containers:");
        for i in ids {
            println!("{i}");
        }
        println!();
    }
    println!(
        "Total reclaimed space: {}",
        human::human_size(v["SpaceReclaimed"].as_f64().unwrap_or(0.0))
    );
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_args() {
        assert!(filters_json(&["status".into()]).is_err());
        assert_eq!(parse_time_arg("1700000000").unwrap(), "1700000000");
        assert!(parse_time_arg("2023-01-02T13:23:37Z")
            .unwrap()
            .starts_with("1672665817."));
        let ten_min_ago: f64 = parse_time_arg("10m").unwrap().parse().unwrap();
        let now = chrono::Utc::now().timestamp() as f64;
        assert!((now - ten_min_ago - 600.0).abs() < 5.0);
        assert!(parse_time_arg("10x").is_err());
    }
}

#[derive(Args, Debug)]
pub struct AttachArgs {
    /// Do not attach STDIN
    #[arg(long = "no-stdin")]
    pub no_stdin: bool,
    /// Proxy all received signals to the process
    #[arg(long = "sig-proxy", default_value_t = true, action = clap::ArgAction::Set)]
    pub sig_proxy: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys")]
    pub detach_keys: Option<String>,
    pub container: String,
}

pub async fn attach(c: &Client, a: AttachArgs) -> Result<i32> {
    let info = c
        .get_json(&format!("/containers/{}/json", enc(&a.container)))
        .await?;
    if !info["State"]["Running"].as_bool().unwrap_or(false) {
        return Err(StatusError {
            code: 1,
            message: "You cannot attach to a stopped container, start it first".into(),
        }
        .into());
    }
    let id = info["Id"].as_str().unwrap_or_default().to_string();
    let tty = info["Config"]["Tty"].as_bool().unwrap_or(false);
    let interactive = !a.no_stdin && info["Config"]["OpenStdin"].as_bool().unwrap_or(false);
    let keys = detach_keys(a.detach_keys.as_deref())?;
    let mut q = "stream=1&stdout=1&stderr=1".to_string();
    if interactive {
        q.push_str("&stdin=1");
    }
    if let Some(k) = &a.detach_keys {
        q.push_str(&format!("&detachKeys={}", enc(k)));
    }
    let conn = c
        .hijack(&format!("/containers/{id}/attach?{q}"), None)
        .await?;
    let wc = c.clone();
    let wid = id.clone();
    let waiter =
        tokio::spawn(async move { wc.post_json(&format!("/containers/{wid}/wait"), None).await });
    let resize = tty.then(|| format!("/containers/{id}/resize"));
    let proxy = (a.sig_proxy && !tty).then(|| sig_proxy(c, &a.container));
    let detached = session(c, conn, interactive, tty, keys, resize).await;
    if let Some(p) = proxy {
        p.abort();
    }
    if detached {
        // Like the docker CLI: detaching from `attach` is reported as this error (exit status 1).
        return Err(StatusError {
            code: 1,
            message: "read escape sequence".into(),
        }
        .into());
    }
    let w = waiter.await.map_err(|e| anyhow!("wait: {e}"))??;
    Ok(w["StatusCode"].as_i64().unwrap_or(0) as i32)
}

#[derive(Args, Debug)]
#[command(disable_help_flag = true)]
pub struct ExecArgs {
    /// Print help
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
    /// Detached mode: run command in the background
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys")]
    pub detach_keys: Option<String>,
    /// Set environment variables
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long = "env-file")]
    pub env_file: Vec<String>,
    /// Keep STDIN open even if not attached
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Give extended privileges to the command
    #[arg(long)]
    pub privileged: bool,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Username or UID (format: "<name|uid>[:<group|gid>]")
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Working directory inside the container
    #[arg(short = 'w', long)]
    pub workdir: Option<String>,
    pub container: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    pub command: Vec<String>,
}

pub async fn exec(c: &Client, a: ExecArgs) -> Result<i32> {
    let env = collect_env(&a.env_file, &a.env)?;
    let keys = detach_keys(a.detach_keys.as_deref())?;
    let body = json!({
        "AttachStdin": a.interactive && !a.detach,
        "AttachStdout": !a.detach,
        "AttachStderr": !a.detach,
        "Tty": a.tty,
        "Cmd": a.command,
        "Env": env,
        "User": a.user.clone().unwrap_or_default(),
        "WorkingDir": a.workdir.clone().unwrap_or_default(),
        "Privileged": a.privileged,
        "DetachKeys": a.detach_keys.clone().unwrap_or_default(),
        "ConsoleSize": if a.tty { crate::tty::size().map(|(h, w)| json!([h, w])).unwrap_or(Value::Null) } else { Value::Null },
    });
    let v = c
        .post_json(
            &format!("/containers/{}/exec", enc(&a.container)),
            Some(&body),
        )
        .await?;
    let exec_id = v["Id"]
        .as_str()
        .ok_or_else(|| anyhow!("the daemon returned no exec id"))?
        .to_string();
    if a.detach {
        c.call(
            Method::POST,
            &format!("/exec/{exec_id}/start"),
            Some(&json!({"Detach": true, "Tty": a.tty})),
        )
        .await
        .map_err(start_error)?;
        return Ok(0);
    }
    let conn = c
        .hijack(
            &format!("/exec/{exec_id}/start"),
            Some(&json!({"Detach": false, "Tty": a.tty})),
        )
        .await
        .map_err(start_error)?;
    let resize = a.tty.then(|| format!("/exec/{exec_id}/resize"));
    if session(c, conn, a.interactive, a.tty, keys, resize).await {
        return Ok(0);
    }
    // The stream ends when the process does; its code may land a moment later.
    for _ in 0..200 {
        let info = c.get_json(&format!("/exec/{exec_id}/json")).await?;
        if let Some(code) = info["ExitCode"].as_i64() {
            if !info["Running"].as_bool().unwrap_or(false) {
                return Ok(code as i32);
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    Ok(0)
}
