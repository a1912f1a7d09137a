//! System commands: version, info, events, system df, system prune.

use crate::client::{enc, next_chunk, Client, API_VERSION};
use crate::cmd_container::{filters_json, parse_time_arg};
use crate::format::human;
use crate::output::{pretty, render, render_plain};
use anyhow::Result;
use clap::Args;
use hyper::Method;
use serde_json::{json, Value};

#[derive(Args, Debug)]
pub struct VersionArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long)]
    pub format: Option<String>,
}

pub async fn version(c: &Client, a: VersionArgs) -> Result<i32> {
    let server = c.get_json("/version").await;
    let client = json!({
        "Version": env!("CARGO_PKG_VERSION"), "ApiVersion": API_VERSION, "Os": "linux",
        "Arch": std::env::consts::ARCH, "GoVersion": "rust", "GitCommit": "",
    });
    let data = json!({"Client": client, "Server": server.as_ref().ok()});
    if let Some(f) = &a.format {
        print!("{}", render_plain(&[data], f)?);
        return Ok(0);
    }
    println!("Client:\n Version:           {}\n API version:       {API_VERSION}\n OS/Arch:           linux/{}", env!("CARGO_PKG_VERSION"), std::env::consts::ARCH);
    let s = server?;
    println!(
        "\nServer: berth\n Engine:\n  Version:          {}\n  API version:      {} (minimum version {})\n  OS/Arch:          {}/{}\n  Kernel Version:   {}",
        s["Version"].as_str().unwrap_or(""),
        s["ApiVersion"].as_str().unwrap_or(""),
        s["MinAPIVersion"].as_str().unwrap_or(""),
        s["Os"].as_str().unwrap_or(""),
        s["Arch"].as_str().unwrap_or(""),
        s["KernelVersion"].as_str().unwrap_or("")
    );
    Ok(0)
}

#[derive(Args, Debug)]
pub struct FormatArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long)]
    pub format: Option<String>,
}

pub async fn info(c: &Client, a: FormatArgs) -> Result<i32> {
    let i = c.get_json("/info").await?;
    if let Some(f) = &a.format {
        print!("{}", render_plain(&[i], f)?);
        return Ok(0);
    }
    let s = |k: &str| {
        i[k].as_str()
            .map(str::to_string)
            .unwrap_or_else(|| i[k].to_string())
    };
    println!("Server:");
    println!(
        " Containers: {}\n  Running: {}\n  Paused: {}\n  Stopped: {}",
        s("Containers"),
        s("ContainersRunning"),
        s("ContainersPaused"),
        s("ContainersStopped")
    );
    println!(" Images: {}", s("Images"));
    println!(" Server Version: {}", s("ServerVersion"));
    println!(" Storage Driver: {}", s("Driver"));
    println!(" Logging Driver: {}", s("LoggingDriver"));
    println!(" Cgroup Driver: {}", s("CgroupDriver"));
    println!(" Cgroup Version: {}", s("CgroupVersion"));
    println!(" Default Runtime: {}", s("DefaultRuntime"));
    println!(" Kernel Version: {}", s("KernelVersion"));
    println!(" Operating System: {}", s("OperatingSystem"));
    println!(" Architecture: {}", s("Architecture"));
    println!(" CPUs: {}", s("NCPU"));
    println!(
        " Total Memory: {}",
        human::bytes_size(i["MemTotal"].as_f64().unwrap_or(0.0))
    );
    println!(" Name: {}", s("Name"));
    println!(" ID: {}", s("ID"));
    println!(" Berth Root Dir: {}", s("DockerRootDir"));
    println!(" Live Restore Enabled: {}", s("LiveRestoreEnabled"));
    for w in i["Warnings"].as_array().into_iter().flatten() {
        if let Some(w) = w.as_str() {
            eprintln!("WARNING: {w}");
        }
    }
    Ok(0)
}

#[derive(Args, Debug)]
pub struct EventsArgs {
    /// Filter output based on conditions provided
    #[arg(short = 'f', long = "filter")]
    pub filter: Vec<String>,
    /// Show all events created since timestamp
    #[arg(long)]
    pub since: Option<String>,
    /// Stream events until this timestamp
    #[arg(long)]
    pub until: Option<String>,
    /// Format output using a custom template
    #[arg(long)]
    pub format: Option<String>,
}

pub async fn events(c: &Client, a: EventsArgs) -> Result<i32> {
    let mut q = format!("filters={}", enc(&filters_json(&a.filter)?));
    if let Some(s) = &a.since {
        q.push_str(&format!("&since={}", parse_time_arg(s)?));
    }
    if let Some(u) = &a.until {
        q.push_str(&format!("&until={}", parse_time_arg(u)?));
    }
    let resp = c.stream(Method::GET, &format!("/events?{q}")).await?;
    let mut body = resp.into_body();
    let mut buf = Vec::new();
    while let Some(chunk) = next_chunk(&mut body).await? {
        buf.extend_from_slice(&chunk);
        while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=pos).collect();
            let Ok(e) = serde_json::from_slice::<Value>(&line) else {
                continue;
            };
            match &a.format {
                Some(f) => print!("{}", render_plain(&[e], f)?),
                None => println!("{}", event_line(&e)),
            }
        }
    }
    Ok(0)
}

/// docker's default event line: `TIME TYPE ACTION ID (k=v, ...)`.
fn event_line(e: &Value) -> String {
    let nanos = e["timeNano"].as_i64().unwrap_or(0);
    let t = chrono::DateTime::from_timestamp(nanos / 1_000_000_000, (nanos % 1_000_000_000) as u32)
        .unwrap_or_default();
    let attrs: Vec<String> = e["Actor"]["Attributes"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
        .collect();
    format!(
        "{} {} {} {} ({})",
        t.with_timezone(&chrono::Local)
            .format("%Y-%m-%dT%H:%M:%S%.9f%:z"),
        e["Type"].as_str().unwrap_or(""),
        e["Action"].as_str().unwrap_or(""),
        e["Actor"]["ID"].as_str().unwrap_or(""),
        attrs.join(", ")
    )
}

#[derive(Args, Debug)]
pub struct DfArgs {
    /// Show detailed information on space usage
    #[arg(short = 'v', long)]
    pub verbose: bool,
    /// Format output using a custom template
    #[arg(long)]
    pub format: Option<String>,
}

pub async fn df(c: &Client, a: DfArgs) -> Result<i32> {
    let d = c.get_json("/system/df").await?;
    if a.verbose {
        println!("{}", pretty(&d));
        return Ok(0);
    }
    let images: Vec<Value> = d["Images"].as_array().cloned().unwrap_or_default();
    let containers: Vec<Value> = d["Containers"].as_array().cloned().unwrap_or_default();
    let img_size: f64 = images.iter().filter_map(|i| i["Size"].as_f64()).sum();
    let img_active = images
        .iter()
        .filter(|i| i["Containers"].as_i64().unwrap_or(0) > 0)
        .count();
    let unused: f64 = images
        .iter()
        .filter(|i| i["Containers"].as_i64().unwrap_or(0) == 0)
        .filter_map(|i| i["Size"].as_f64())
        .sum();
    let ctr_size: f64 = containers.iter().filter_map(|c| c["SizeRw"].as_f64()).sum();
    let ctr_active = containers
        .iter()
        .filter(|c| c["State"] == "running")
        .count();
    let ctr_reclaim: f64 = containers
        .iter()
        .filter(|c| c["State"] != "running")
        .filter_map(|c| c["SizeRw"].as_f64())
        .sum();
    let volumes: Vec<Value> = d["Volumes"].as_array().cloned().unwrap_or_default();
    let vol_refs = |v: &Value| v["UsageData"]["RefCount"].as_i64().unwrap_or(0);
    let vol_bytes = |v: &Value| v["UsageData"]["Size"].as_f64().unwrap_or(0.0);
    let vol_size: f64 = volumes.iter().map(vol_bytes).sum();
    let vol_active = volumes.iter().filter(|v| vol_refs(v) > 0).count();
    let vol_reclaim: f64 = volumes
        .iter()
        .filter(|v| vol_refs(v) == 0)
        .map(vol_bytes)
        .sum();
    let pct = |part: f64, whole: f64| {
        if whole > 0.0 {
            format!(" ({:.0}%)", part * 100.0 / whole)
        } else {
            String::new()
        }
    };
    let rows = vec![
        json!({"Type": "Images", "TotalCount": images.len(), "Active": img_active, "Size": human::human_size(img_size), "Reclaimable": format!("{}{}", human::human_size(unused), pct(unused, img_size))}),
        json!({"Type": "Containers", "TotalCount": containers.len(), "Active": ctr_active, "Size": human::human_size(ctr_size), "Reclaimable": format!("{}{}", human::human_size(ctr_reclaim), pct(ctr_reclaim, ctr_size))}),
        json!({"Type": "Local Volumes", "TotalCount": volumes.len(), "Active": vol_active, "Size": human::human_size(vol_size), "Reclaimable": format!("{}{}", human::human_size(vol_reclaim), pct(vol_reclaim, vol_size))}),
        json!({"Type": "Build Cache", "TotalCount": 0, "Active": 0, "Size": "0B", "Reclaimable": "0B"}),
    ];
    let headers = [
        ("Type", "TYPE"),
        ("TotalCount", "TOTAL"),
        ("Active", "ACTIVE"),
        ("Size", "SIZE"),
        ("Reclaimable", "RECLAIMABLE"),
    ];
    print!(
        "{}",
        render(
            &rows,
            a.format.as_deref(),
            "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}",
            &headers
        )?
    );
    Ok(0)
}

#[derive(Args, Debug)]
pub struct SystemPruneArgs {
    /// Remove all unused images not just dangling ones
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Prune anonymous volumes
    #[arg(long)]
    pub volumes: bool,
}

/// `system prune`: stopped containers, unused networks, dangling (or with `-a` all unused) images, the build
/// cache, and with `--volumes` anonymous volumes, in Docker's order and words.
pub async fn system_prune(c: &Client, a: SystemPruneArgs) -> Result<i32> {
    let mut warning = String::from("WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least one container\n");
    if a.volumes {
        warning.push_str("  - all anonymous volumes not used by at least one container\n");
    }
    warning.push_str(if a.all {
        "  - all images without at least one container associated to them\n  - all build cache\n"
    } else {
        "  - all dangling images\n  - unused build cache\n"
    });
    if !crate::cmd_container::confirm(&warning, a.force) {
        return Ok(0);
    }
    let mut total = 0u64;
    let list = |v: &Value, key: &str| -> Vec<String> {
        v[key]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|i| i.as_str().map(str::to_string))
            .collect()
    };
    let v = c.post_json("/containers/prune", None).await?;
    total += v["SpaceReclaimed"].as_u64().unwrap_or(0);
    print_deleted("Deleted Containers:", &list(&v, "ContainersDeleted"));
    let v = c.post_json("/networks/prune", None).await?;
    print_deleted("Deleted Networks:", &list(&v, "NetworksDeleted"));
    if a.volumes {
        let v = c.post_json("/volumes/prune", None).await?;
        total += v["SpaceReclaimed"].as_u64().unwrap_or(0);
        print_deleted("Deleted Volumes:", &list(&v, "VolumesDeleted"));
    }
    let q = if a.all {
        format!("/images/prune?filters={}", enc(r#"{"dangling":["false"]}"#))
    } else {
        "/images/prune".to_string()
    };
    let v = c.post_json(&q, None).await?;
    total += v["SpaceReclaimed"].as_u64().unwrap_or(0);
    let mut images = Vec::new();
    for d in v["ImagesDeleted"].as_array().into_iter().flatten() {
        for (k, label) in [("Untagged", "untagged"), ("Deleted", "deleted")] {
            if let Some(s) = d[k].as_str() {
                images.push(format!("{label}: {s}"));
            }
        }
    }
    print_deleted("Deleted Images:", &images);
    let v = c.post_json("/build/prune", None).await?;
    total += v["SpaceReclaimed"].as_u64().unwrap_or(0);
    print_deleted("Deleted build cache objects:", &list(&v, "CachesDeleted"));
    println!(
        "Total reclaimed space: {}",
        crate::format::human::human_size(total as f64)
    );
    Ok(0)
}

fn print_deleted(title: &str, items: &[String]) {
    if !items.is_empty() {
        println!("{title}");
        for i in items {
            println!("{i}");
        }
        println!();
    }
}
