//! `pause`, `unpause`, `top`, `stats`.

use crate::client::{enc, Client};
use crate::format::human;
use crate::output::render;
use crate::StatusError;
use anyhow::Result;
use clap::Args;
use hyper::Method;
use serde_json::{json, Value};

#[derive(Args, Debug)]
pub struct IdsArgs {
    #[arg(required = true)]
    pub containers: Vec<String>,
}

async fn each_call(c: &Client, ids: &[String], verb: &str) -> Result<i32> {
    let mut failed = false;
    for id in ids {
        match c
            .call(
                Method::POST,
                &format!("/containers/{}/{verb}", enc(id)),
                None,
            )
            .await
        {
            Ok(_) => println!("{id}"),
            Err(e) => {
                eprintln!("{e:#}");
                failed = true;
            }
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

pub async fn pause(c: &Client, a: IdsArgs) -> Result<i32> {
    each_call(c, &a.containers, "pause").await
}

pub async fn unpause(c: &Client, a: IdsArgs) -> Result<i32> {
    each_call(c, &a.containers, "unpause").await
}

#[derive(Args, Debug)]
pub struct TopArgs {
    pub container: String,
    /// Options passed to ps
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

pub async fn top(c: &Client, a: TopArgs) -> Result<i32> {
    let mut path = format!("/containers/{}/top", enc(&a.container));
    if !a.ps_args.is_empty() {
        path.push_str(&format!("?ps_args={}", enc(&a.ps_args.join(" "))));
    }
    let v = c.get_json(&path).await?;
    let titles: Vec<&str> = v["Titles"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t.as_str())
        .collect();
    let mut text = titles.join("\t");
    text.push('\n');
    for row in v["Processes"].as_array().into_iter().flatten() {
        let cells: Vec<&str> = row
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c.as_str())
            .collect();
        text.push_str(&cells.join("\t"));
        text.push('\n');
    }
    print!(
        "{}",
        crate::format::table::TabWriter::docker().format(&text)
    );
    Ok(0)
}

#[derive(Args, Debug)]
pub struct StatsArgs {
    /// Show all containers (default shows just running)
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Disable streaming stats and only pull the first result
    #[arg(long = "no-stream")]
    pub no_stream: bool,
    /// Do not truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Format output using a custom template
    #[arg(long)]
    pub format: Option<String>,
    pub containers: Vec<String>,
}

const HEADERS: &[(&str, &str)] = &[
    ("Container", "CONTAINER"),
    ("ID", "CONTAINER ID"),
    ("Name", "NAME"),
    ("CPUPerc", "CPU %"),
    ("MemUsage", "MEM USAGE / LIMIT"),
    ("MemPerc", "MEM %"),
    ("NetIO", "NET I/O"),
    ("BlockIO", "BLOCK I/O"),
    ("PIDs", "PIDS"),
];

/// A stats row as docker computes it from the daemon's JSON.
pub fn row(v: &Value, trunc: bool) -> Value {
    let f = |p: &Value| p.as_f64().unwrap_or(0.0);
    let cpu_delta = f(&v["cpu_stats"]["cpu_usage"]["total_usage"])
        - f(&v["precpu_stats"]["cpu_usage"]["total_usage"]);
    let sys_delta =
        f(&v["cpu_stats"]["system_cpu_usage"]) - f(&v["precpu_stats"]["system_cpu_usage"]);
    let cpus = f(&v["cpu_stats"]["online_cpus"]).max(1.0);
    let cpu = if cpu_delta > 0.0 && sys_delta > 0.0 {
        cpu_delta / sys_delta * cpus * 100.0
    } else {
        0.0
    };
    let mem =
        (f(&v["memory_stats"]["usage"]) - f(&v["memory_stats"]["stats"]["inactive_file"])).max(0.0);
    let limit = f(&v["memory_stats"]["limit"]);
    let mem_pct = if limit > 0.0 {
        mem / limit * 100.0
    } else {
        0.0
    };
    let blk = |op: &str| -> f64 {
        v["blkio_stats"]["io_service_bytes_recursive"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["op"] == op)
            .map(|e| f(&e["value"]))
            .sum()
    };
    let id = v["id"].as_str().unwrap_or("");
    json!({
        "Container": if trunc { human::truncate_id(id).to_string() } else { id.to_string() },
        "ID": if trunc { human::truncate_id(id).to_string() } else { id.to_string() },
        "Name": v["name"].as_str().unwrap_or("").trim_start_matches('/'),
        "CPUPerc": format!("{cpu:.2}%"),
        "MemUsage": format!("{} / {}", human::bytes_size(mem), human::bytes_size(limit)),
        "MemPerc": format!("{mem_pct:.2}%"),
        "NetIO": "0B / 0B",
        "BlockIO": format!("{} / {}", human::human_size_with_precision(blk("read"), 3), human::human_size_with_precision(blk("write"), 3)),
        "PIDs": v["pids_stats"]["current"].as_u64().unwrap_or(0).to_string(),
    })
}

pub async fn stats(c: &Client, a: StatsArgs) -> Result<i32> {
    let default = "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}";
    loop {
        let ids: Vec<String> = if a.containers.is_empty() {
            let list = c
                .get_json(&format!("/containers/json?all={}", a.all as u8))
                .await?;
            list.as_array()
                .into_iter()
                .flatten()
                .filter_map(|x| x["Id"].as_str().map(str::to_string))
                .collect()
        } else {
            a.containers.clone()
        };
        let calls = ids.iter().map(|id| {
            let path = format!("/containers/{}/stats?stream=false", enc(id));
            async move { c.get_json(&path).await }
        });
        let results = futures_util::future::join_all(calls).await;
        let mut rows = Vec::new();
        for (id, r) in ids.iter().zip(results) {
            match r {
                Ok(v) => rows.push(row(&v, !a.no_trunc)),
                Err(e) if !a.containers.is_empty() => {
                    return Err(anyhow::anyhow!("{e:#}").context(format!("stats of {id}")))
                }
                Err(_) => {}
            }
        }
        let out = render(&rows, a.format.as_deref(), default, HEADERS)?;
        if a.no_stream {
            print!("{out}");
            return Ok(0);
        }
        // Like docker: clear the screen and redraw every second.
        print!("\x1b[2J\x1b[H{out}");
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn cpu_and_memory_percentages_follow_docker() {
        let v = serde_json::json!({
            "id": "0123456789abcdef", "name": "/web",
            "cpu_stats": {"cpu_usage": {"total_usage": 300}, "system_cpu_usage": 2000, "online_cpus": 2},
            "precpu_stats": {"cpu_usage": {"total_usage": 100}, "system_cpu_usage": 1000},
            "memory_stats": {"usage": 3 * 1024 * 1024, "limit": 100 * 1024 * 1024, "stats": {"inactive_file": 1024 * 1024}},
            "pids_stats": {"current": 4},
            "blkio_stats": {"io_service_bytes_recursive": [{"op": "read", "value": 1000}, {"op": "write", "value": 0}]},
        });
        let r = super::row(&v, true);
        assert_eq!(r["CPUPerc"], "40.00%");
        assert_eq!(r["MemUsage"], "2MiB / 100MiB");
        assert_eq!(r["MemPerc"], "2.00%");
        assert_eq!(r["PIDs"], "4");
        assert_eq!(r["Name"], "web");
        assert_eq!(r["ID"], "0123456789ab");
    }
}

#[derive(Args, Debug)]
pub struct DiffArgs {
    pub container: String,
}

pub async fn diff(c: &Client, a: DiffArgs) -> Result<i32> {
    let v = c
        .get_json(&format!("/containers/{}/changes", enc(&a.container)))
        .await?;
    for ch in v.as_array().into_iter().flatten() {
        let kind = match ch["Kind"].as_u64() {
            Some(1) => "A",
            Some(2) => "D",
            _ => "C",
        };
        println!("{kind} {}", ch["Path"].as_str().unwrap_or(""));
    }
    Ok(0)
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short = 'o', long)]
    pub output: Option<String>,
    pub container: String,
}

pub async fn export(c: &Client, a: ExportArgs) -> Result<i32> {
    use std::io::IsTerminal;
    use tokio::io::AsyncWriteExt;
    if a.output.is_none() && std::io::stdout().is_terminal() {
        return Err(StatusError {
            code: 1,
            message: "cowardly refusing to save to a terminal. Use the -o flag or redirect".into(),
        }
        .into());
    }
    let resp = c
        .stream(
            Method::GET,
            &format!("/containers/{}/export", enc(&a.container)),
        )
        .await?;
    let mut body = resp.into_body();
    let mut out: Box<dyn tokio::io::AsyncWrite + Unpin + Send> = match &a.output {
        Some(p) => Box::new(tokio::fs::File::create(p).await?),
        None => Box::new(tokio::io::stdout()),
    };
    while let Some(chunk) = crate::client::next_chunk(&mut body).await? {
        out.write_all(&chunk).await?;
    }
    out.flush().await?;
    Ok(0)
}
