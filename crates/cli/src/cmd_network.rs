//! `network create|ls|inspect|rm|prune|connect|disconnect` and `port`.

use crate::client::{enc, Client};
use crate::cmd_container::{confirm, filters_json, print_inspected};
use crate::format::human;
use crate::output::render;
use crate::StatusError;
use anyhow::{anyhow, Result};
use clap::{Args, Subcommand};
use hyper::Method;
use serde_json::{json, Map, Value};

#[derive(Subcommand, Debug)]
#[command(defer = true)]
pub enum NetworkCmd {
    /// Create a network
    Create(CreateArgs),
    /// List networks
    #[command(alias = "list")]
    Ls(LsArgs),
    /// Display detailed information on one or more networks
    Inspect(InspectArgs),
    /// Remove one or more networks
    #[command(alias = "remove")]
    Rm(RmArgs),
    /// Remove all unused networks
    Prune(PruneArgs),
    /// Connect a container to a network
    Connect(ConnectArgs),
    /// Disconnect a container from a network
    Disconnect(DisconnectArgs),
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    /// Driver to manage the Network
    #[arg(short = 'd', long, default_value = "bridge")]
    pub driver: String,
    /// Subnet in CIDR format that represents a network segment
    #[arg(long)]
    pub subnet: Vec<String>,
    /// Allocate container ip from a sub-range
    #[arg(long = "ip-range")]
    pub ip_range: Vec<String>,
    /// IPv4 or IPv6 Gateway for the master subnet
    #[arg(long)]
    pub gateway: Vec<String>,
    /// Restrict external access to the network
    #[arg(long)]
    pub internal: bool,
    /// Enable manual container attachment
    #[arg(long)]
    pub attachable: bool,
    /// Set metadata on a network
    #[arg(long)]
    pub label: Vec<String>,
    /// Set driver specific options
    #[arg(short = 'o', long = "opt")]
    pub opt: Vec<String>,
    /// Enable or disable IPv6 networking
    #[arg(long)]
    pub ipv6: bool,
    pub name: String,
}

#[derive(Args, Debug)]
pub struct LsArgs {
    /// Only display network IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Provide filter values (e.g. "driver=bridge")
    #[arg(short = 'f', long)]
    pub filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long)]
    pub format: Option<String>,
    /// Do not truncate the output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long)]
    pub format: Option<String>,
    #[arg(required = true)]
    pub networks: Vec<String>,
}

#[derive(Args, Debug)]
pub struct RmArgs {
    /// Do not error if the network does not exist
    #[arg(short = 'f', long)]
    pub force: bool,
    #[arg(required = true)]
    pub networks: Vec<String>,
}

#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Provide filter values (e.g. "label=<label>")
    #[arg(long)]
    pub filter: Vec<String>,
}

#[derive(Args, Debug)]
pub struct ConnectArgs {
    /// Add network-scoped alias for the container
    #[arg(long)]
    pub alias: Vec<String>,
    /// IPv4 address (e.g., 172.30.100.104)
    #[arg(long)]
    pub ip: Option<String>,
    pub network: String,
    pub container: String,
}

#[derive(Args, Debug)]
pub struct DisconnectArgs {
    /// Force the container to disconnect from a network
    #[arg(short = 'f', long)]
    pub force: bool,
    pub network: String,
    pub container: String,
}

#[derive(Args, Debug)]
pub struct PortArgs {
    pub container: String,
    /// PRIVATE_PORT[/PROTO]
    pub port: Option<String>,
}

fn key_values(items: &[String]) -> Map<String, Value> {
    items
        .iter()
        .map(|i| {
            let (k, v) = i.split_once('=').unwrap_or((i.as_str(), ""));
            (k.to_string(), json!(v))
        })
        .collect()
}

pub async fn run(c: &Client, cmd: NetworkCmd) -> Result<i32> {
    match cmd {
        NetworkCmd::Create(a) => create(c, a).await,
        NetworkCmd::Ls(a) => ls(c, a).await,
        NetworkCmd::Inspect(a) => inspect(c, a).await,
        NetworkCmd::Rm(a) => rm(c, a).await,
        NetworkCmd::Prune(a) => prune(c, a).await,
        NetworkCmd::Connect(a) => {
            let mut ep = json!({"Aliases": a.alias});
            if let Some(ip) = &a.ip {
                ep["IPAMConfig"] = json!({"IPv4Address": ip});
            }
            let body = json!({"Container": a.container, "EndpointConfig": ep});
            c.post_json(
                &format!("/networks/{}/connect", enc(&a.network)),
                Some(&body),
            )
            .await?;
            Ok(0)
        }
        NetworkCmd::Disconnect(a) => {
            let body = json!({"Container": a.container, "Force": a.force});
            c.post_json(
                &format!("/networks/{}/disconnect", enc(&a.network)),
                Some(&body),
            )
            .await?;
            Ok(0)
        }
    }
}

async fn create(c: &Client, a: CreateArgs) -> Result<i32> {
    if a.subnet.len() < a.ip_range.len() || a.subnet.len() < a.gateway.len() {
        return Err(anyhow!(
            "every ip-range or gateway must have a corresponding subnet"
        ));
    }
    let config: Vec<Value> = a
        .subnet
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let mut p = json!({"Subnet": s});
            if let Some(r) = a.ip_range.get(i) {
                p["IPRange"] = json!(r);
            }
            if let Some(g) = a.gateway.get(i) {
                p["Gateway"] = json!(g);
            }
            p
        })
        .collect();
    let body = json!({
        "Name": a.name,
        "Driver": a.driver,
        "Internal": a.internal,
        "Attachable": a.attachable,
        "EnableIPv6": a.ipv6,
        "IPAM": {"Driver": "default", "Config": config, "Options": {}},
        "Options": key_values(&a.opt),
        "Labels": key_values(&a.label),
    });
    let v = c.post_json("/networks/create", Some(&body)).await?;
    println!("{}", v["Id"].as_str().unwrap_or(""));
    Ok(0)
}

async fn ls(c: &Client, a: LsArgs) -> Result<i32> {
    let v = c
        .get_json(&format!(
            "/networks?filters={}",
            enc(&filters_json(&a.filter)?)
        ))
        .await?;
    let nets: Vec<Value> = v.as_array().cloned().unwrap_or_default();
    let id = |n: &Value| {
        let id = n["Id"].as_str().unwrap_or("");
        if a.no_trunc {
            id.to_string()
        } else {
            human::truncate_id(id).to_string()
        }
    };
    if a.quiet {
        for n in &nets {
            println!("{}", id(n));
        }
        return Ok(0);
    }
    let rows: Vec<Value> = nets
        .iter()
        .map(|n| {
            let labels = n["Labels"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_default();
            json!({"ID": id(n), "Name": n["Name"], "Driver": n["Driver"], "Scope": n["Scope"],
                   "IPv6": n["EnableIPv6"], "Internal": n["Internal"], "Labels": labels, "CreatedAt": n["Created"]})
        })
        .collect();
    let headers = [
        ("ID", "NETWORK ID"),
        ("Name", "NAME"),
        ("Driver", "DRIVER"),
        ("Scope", "SCOPE"),
        ("IPv6", "IPV6"),
        ("Internal", "INTERNAL"),
        ("Labels", "LABELS"),
        ("CreatedAt", "CREATED AT"),
    ];
    print!(
        "{}",
        render(
            &rows,
            a.format.as_deref(),
            "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}",
            &headers
        )?
    );
    Ok(0)
}

async fn inspect(c: &Client, a: InspectArgs) -> Result<i32> {
    let mut objs = Vec::new();
    let mut errors = Vec::new();
    for n in &a.networks {
        match c.get_json(&format!("/networks/{}", enc(n))).await {
            Ok(v) => objs.push(v),
            Err(e) => errors.push(format!("{e:#}")),
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

async fn rm(c: &Client, a: RmArgs) -> Result<i32> {
    let mut failed = false;
    for n in &a.networks {
        match c
            .call(Method::DELETE, &format!("/networks/{}", enc(n)), None)
            .await
        {
            Ok(_) => println!("{n}"),
            Err(e) if a.force && format!("{e:#}").contains("not found") => {}
            Err(e) => {
                eprintln!("{e:#}");
                failed = true;
            }
        }
    }
    Ok(if failed { 1 } else { 0 })
}

async fn prune(c: &Client, a: PruneArgs) -> Result<i32> {
    if !confirm(
        "WARNING! This will remove all custom networks not used by at least one container.",
        a.force,
    ) {
        return Ok(0);
    }
    let v = c
        .post_json(
            &format!("/networks/prune?filters={}", enc(&filters_json(&a.filter)?)),
            None,
        )
        .await?;
    let names: Vec<Value> = v["NetworksDeleted"].as_array().cloned().unwrap_or_default();
    if !names.is_empty() {
        println!("Deleted Networks:");
        for n in &names {
            println!("{}", n.as_str().unwrap_or(""));
        }
    }
    Ok(0)
}

/// `port CONTAINER [PRIVATE_PORT[/PROTO]]`, from inspect's `NetworkSettings.Ports`.
pub async fn port(c: &Client, a: PortArgs) -> Result<i32> {
    let v = c
        .get_json(&format!("/containers/{}/json", enc(&a.container)))
        .await?;
    let ports = v["NetworkSettings"]["Ports"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let show = |b: &Value| {
        let ip = b["HostIp"].as_str().unwrap_or("");
        let port = b["HostPort"].as_str().unwrap_or("");
        if ip.contains(':') {
            format!("[{ip}]:{port}")
        } else {
            format!("{ip}:{port}")
        }
    };
    match &a.port {
        Some(p) => {
            let key = if p.contains('/') {
                p.clone()
            } else {
                format!("{p}/tcp")
            };
            let binds = ports.get(&key).and_then(|b| b.as_array()).cloned();
            match binds.filter(|b| !b.is_empty()) {
                Some(b) => {
                    for x in &b {
                        println!("{}", show(x));
                    }
                    Ok(0)
                }
                None => Err(StatusError {
                    code: 1,
                    message: format!(
                        "Error: No public port '{key}' published for {}",
                        a.container
                    ),
                }
                .into()),
            }
        }
        None => {
            let mut keys: Vec<&String> = ports.keys().collect();
            keys.sort_by_key(|k| {
                let (n, p) = k.split_once('/').unwrap_or((k.as_str(), ""));
                (n.parse::<u32>().unwrap_or(0), p.to_string())
            });
            for k in keys {
                for b in ports[k].as_array().into_iter().flatten() {
                    println!("{k} -> {}", show(b));
                }
            }
            Ok(0)
        }
    }
}
