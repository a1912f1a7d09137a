//! `volume create|ls|inspect|rm|prune`.

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
pub enum VolumeCmd {
    /// Create a volume
    Create(CreateArgs),
    /// List volumes
    #[command(alias = "list")]
    Ls(LsArgs),
    /// Display detailed information on one or more volumes
    Inspect(InspectArgs),
    /// Remove one or more volumes
    #[command(alias = "remove")]
    Rm(RmArgs),
    /// Remove unused local volumes
    Prune(PruneArgs),
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    /// Specify volume driver name
    #[arg(short = 'd', long, default_value = "local")]
    pub driver: String,
    /// Set driver specific options
    #[arg(short = 'o', long = "opt")]
    pub opt: Vec<String>,
    /// Set metadata for a volume
    #[arg(long)]
    pub label: Vec<String>,
    /// Specify volume name
    #[arg(long = "name")]
    pub name_flag: Option<String>,
    pub name: Option<String>,
}

#[derive(Args, Debug)]
pub struct LsArgs {
    /// Only display volume names
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Provide filter values (e.g. "dangling=true")
    #[arg(short = 'f', long)]
    pub filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long)]
    pub format: Option<String>,
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long)]
    pub format: Option<String>,
    #[arg(required = true)]
    pub volumes: Vec<String>,
}

#[derive(Args, Debug)]
pub struct RmArgs {
    /// Force the removal of one or more volumes
    #[arg(short = 'f', long)]
    pub force: bool,
    #[arg(required = true)]
    pub volumes: Vec<String>,
}

#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Remove all unused volumes, not just anonymous ones
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Provide filter values (e.g. "label=<label>")
    #[arg(long)]
    pub filter: Vec<String>,
}

fn key_values(items: &[String], what: &str) -> Result<Map<String, Value>> {
    let mut m = Map::new();
    for i in items {
        let (k, v) = match i.split_once('=') {
            Some((k, v)) => (k, v),
            None if what == "label" => (i.as_str(), ""),
            None => return Err(anyhow!("invalid key value pair format in driver options")),
        };
        m.insert(k.to_string(), json!(v));
    }
    Ok(m)
}

pub async fn run(c: &Client, cmd: VolumeCmd) -> Result<i32> {
    match cmd {
        VolumeCmd::Create(a) => create(c, a).await,
        VolumeCmd::Ls(a) => ls(c, a).await,
        VolumeCmd::Inspect(a) => inspect(c, a).await,
        VolumeCmd::Rm(a) => rm(c, a).await,
        VolumeCmd::Prune(a) => prune(c, a).await,
    }
}

async fn create(c: &Client, a: CreateArgs) -> Result<i32> {
    if a.name.is_some() && a.name_flag.is_some() && a.name != a.name_flag {
        return Err(StatusError {
            code: 1,
            message: "conflicting options: cannot specify a volume-name through both --name and as a positional arg".into(),
        }
        .into());
    }
    let body = json!({
        "Name": a.name.or(a.name_flag).unwrap_or_default(),
        "Driver": a.driver,
        "DriverOpts": key_values(&a.opt, "opt")?,
        "Labels": key_values(&a.label, "label")?,
    });
    let v = c.post_json("/volumes/create", Some(&body)).await?;
    println!("{}", v["Name"].as_str().unwrap_or(""));
    Ok(0)
}

async fn ls(c: &Client, a: LsArgs) -> Result<i32> {
    let v = c
        .get_json(&format!(
            "/volumes?filters={}",
            enc(&filters_json(&a.filter)?)
        ))
        .await?;
    let vols: Vec<Value> = v["Volumes"].as_array().cloned().unwrap_or_default();
    if a.quiet {
        for v in &vols {
            println!("{}", v["Name"].as_str().unwrap_or(""));
        }
        return Ok(0);
    }
    let rows: Vec<Value> = vols
        .iter()
        .map(|v| {
            let labels = v["Labels"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_default();
            json!({"Driver": v["Driver"], "Name": v["Name"], "Mountpoint": v["Mountpoint"], "Scope": v["Scope"],
                   "Labels": labels, "CreatedAt": v["CreatedAt"]})
        })
        .collect();
    let headers = [
        ("Driver", "DRIVER"),
        ("Name", "VOLUME NAME"),
        ("Mountpoint", "MOUNTPOINT"),
        ("Scope", "SCOPE"),
        ("Labels", "LABELS"),
        ("CreatedAt", "CREATED"),
    ];
    print!(
        "{}",
        render(
            &rows,
            a.format.as_deref(),
            "table {{.Driver}}\t{{.Name}}",
            &headers
        )?
    );
    Ok(0)
}

async fn inspect(c: &Client, a: InspectArgs) -> Result<i32> {
    let mut objs = Vec::new();
    let mut errors = Vec::new();
    for n in &a.volumes {
        match c.get_json(&format!("/volumes/{}", enc(n))).await {
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
    for n in &a.volumes {
        let path = format!("/volumes/{}?force={}", enc(n), a.force as u8);
        match c.call(Method::DELETE, &path, None).await {
            Ok(_) => println!("{n}"),
            Err(e) => {
                eprintln!("{e:#}");
                failed = true;
            }
        }
    }
    Ok(if failed { 1 } else { 0 })
}

async fn prune(c: &Client, a: PruneArgs) -> Result<i32> {
    let warning = if a.all {
        "WARNING! This will remove all local volumes not used by at least one container."
    } else {
        "WARNING! This will remove anonymous local volumes not used by at least one container."
    };
    if !confirm(warning, a.force) {
        return Ok(0);
    }
    let mut filters = a.filter.clone();
    if a.all {
        filters.push("all=true".into());
    }
    let v = c
        .post_json(
            &format!("/volumes/prune?filters={}", enc(&filters_json(&filters)?)),
            None,
        )
        .await?;
    let names: Vec<Value> = v["VolumesDeleted"].as_array().cloned().unwrap_or_default();
    if !names.is_empty() {
        println!("Deleted Volumes:");
        for n in &names {
            println!("{}", n.as_str().unwrap_or(""));
        }
        println!();
    }
    println!(
        "Total reclaimed space: {}",
        human::human_size(v["SpaceReclaimed"].as_f64().unwrap_or(0.0))
    );
    Ok(0)
}
