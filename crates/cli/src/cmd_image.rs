//! Image commands: images, image inspect, tag, rmi, history, import, load, save, image prune.

use crate::client::{enc, next_chunk, Client};
use crate::cmd_container::{confirm, filters_json, print_inspected};
use crate::format::human;
use crate::output::render;
use crate::StatusError;
use anyhow::{anyhow, Context, Result};
use clap::Args;
use hyper::Method;
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;

#[derive(Args, Debug)]
pub struct ImagesArgs {
    /// Show all images (default hides intermediate images)
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Only show image IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Show digests
    #[arg(long)]
    pub digests: bool,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Filter output based on conditions provided
    #[arg(short = 'f', long = "filter")]
    pub filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long)]
    pub format: Option<String>,
    /// Repository (and tag) to list
    pub reference: Option<String>,
}

fn image_rows(v: &Value, trunc: bool) -> Vec<Value> {
    let id = v["Id"].as_str().unwrap_or("");
    let id = if trunc {
        human::truncate_id(id).to_string()
    } else {
        id.to_string()
    };
    let created =
        chrono::DateTime::from_timestamp(v["Created"].as_i64().unwrap_or(0), 0).unwrap_or_default();
    let size = human::human_size_with_precision(v["Size"].as_f64().unwrap_or(0.0), 3);
    let digest = v["RepoDigests"]
        .as_array()
        .and_then(|d| d.first())
        .and_then(|d| d.as_str())
        .and_then(|d| d.split_once('@'))
        .map(|(_, d)| d.to_string())
        .unwrap_or_else(|| "<none>".into());
    let row = |repo: &str, tag: &str| {
        json!({
            "ID": id, "Repository": repo, "Tag": tag, "Digest": digest,
            "CreatedSince": human::time_ago(created, chrono::Utc::now()),
            "CreatedAt": created.with_timezone(&chrono::Local).format("%Y-%m-%d %H:%M:%S %z %Z").to_string(),
            "Size": size, "Containers": "N/A",
        })
    };
    let tags: Vec<&str> = v["RepoTags"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t.as_str())
        .collect();
    if tags.is_empty() {
        return vec![row("<none>", "<none>")];
    }
    tags.iter()
        .map(|t| match t.rsplit_once(':') {
            Some((r, tag)) if !tag.contains('/') => row(r, tag),
            _ => row(t, "<none>"),
        })
        .collect()
}

pub async fn images(c: &Client, a: ImagesArgs) -> Result<i32> {
    let mut filters = a.filter.clone();
    if let Some(r) = &a.reference {
        filters.push(format!("reference={r}"));
    }
    let list = c
        .get_json(&format!(
            "/images/json?all={}&filters={}",
            a.all as u8,
            enc(&filters_json(&filters)?)
        ))
        .await?;
    let items: Vec<Value> = list.as_array().cloned().unwrap_or_default();
    if a.quiet {
        let mut seen = std::collections::HashSet::new();
        for i in &items {
            let id = i["Id"].as_str().unwrap_or("");
            let id = if a.no_trunc {
                id
            } else {
                human::truncate_id(id)
            };
            if seen.insert(id.to_string()) {
                println!("{id}");
            }
        }
        return Ok(0);
    }
    let rows: Vec<Value> = items
        .iter()
        .flat_map(|i| image_rows(i, !a.no_trunc))
        .collect();
    let default = crate::format::image_format("table", false, a.digests);
    print!(
        "{}",
        render(
            &rows,
            a.format.as_deref(),
            &default,
            crate::format::IMAGE_HEADERS
        )?
    );
    Ok(0)
}

#[derive(Args, Debug)]
pub struct ImageInspectArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long)]
    pub format: Option<String>,
    #[arg(required = true)]
    pub images: Vec<String>,
}

pub async fn inspect(c: &Client, a: ImageInspectArgs) -> Result<i32> {
    let mut objs = Vec::new();
    let mut errors = Vec::new();
    for n in &a.images {
        match c.get_json(&format!("/images/{n}/json")).await {
            Ok(v) => objs.push(v),
            Err(_) => errors.push(format!("Error: No such image: {n}")),
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
pub struct TagArgs {
    pub source: String,
    pub target: String,
}

pub async fn tag(c: &Client, a: TagArgs) -> Result<i32> {
    let (repo, tag) = match a.target.rsplit_once(':') {
        Some((r, t)) if !t.contains('/') => (r.to_string(), t.to_string()),
        _ => (a.target.clone(), String::new()),
    };
    c.call(
        Method::POST,
        &format!(
            "/images/{}/tag?repo={}&tag={}",
            a.source,
            enc(&repo),
            enc(&tag)
        ),
        None,
    )
    .await?;
    Ok(0)
}

#[derive(Args, Debug)]
pub struct RmiArgs {
    /// Force removal of the image
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Do not delete untagged parents
    #[arg(long = "no-prune")]
    pub no_prune: bool,
    #[arg(required = true)]
    pub images: Vec<String>,
}

pub async fn rmi(c: &Client, a: RmiArgs) -> Result<i32> {
    let mut failed = false;
    for n in &a.images {
        match c
            .call(
                Method::DELETE,
                &format!(
                    "/images/{n}?force={}&noprune={}",
                    a.force as u8, a.no_prune as u8
                ),
                None,
            )
            .await
        {
            Ok((_, b)) => {
                let v: Value = serde_json::from_slice(&b).unwrap_or(Value::Null);
                for item in v.as_array().into_iter().flatten() {
                    if let Some(u) = item["Untagged"].as_str() {
                        println!("Untagged: {u}");
                    }
                    if let Some(d) = item["Deleted"].as_str() {
                        println!("Deleted: {d}");
                    }
                }
            }
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

#[derive(Args, Debug)]
pub struct HistoryArgs {
    /// Print sizes and dates in human readable format
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub human: bool,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Only show image IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Format output using a custom template
    #[arg(long)]
    pub format: Option<String>,
    pub image: String,
}

pub async fn history(c: &Client, a: HistoryArgs) -> Result<i32> {
    let v = c.get_json(&format!("/images/{}/history", a.image)).await?;
    let items: Vec<Value> = v.as_array().cloned().unwrap_or_default();
    let rows: Vec<Value> = items
        .iter()
        .map(|h| {
            let id = h["Id"].as_str().unwrap_or("<missing>");
            let created = chrono::DateTime::from_timestamp(h["Created"].as_i64().unwrap_or(0), 0).unwrap_or_default();
            let by = h["CreatedBy"].as_str().unwrap_or("");
            json!({
                "ID": if a.no_trunc || id == "<missing>" { id.to_string() } else { human::truncate_id(id).to_string() },
                "CreatedSince": human::time_ago(created, chrono::Utc::now()),
                "CreatedAt": created.to_rfc3339(),
                "CreatedBy": if a.no_trunc { by.to_string() } else { human::ellipsis(by, 45) },
                "Size": human::human_size_with_precision(h["Size"].as_f64().unwrap_or(0.0), 3),
                "Comment": h["Comment"].as_str().unwrap_or(""),
            })
        })
        .collect();
    if a.quiet {
        for r in &rows {
            println!("{}", r["ID"].as_str().unwrap_or(""));
        }
        return Ok(0);
    }
    let headers = [
        ("ID", "IMAGE"),
        ("CreatedSince", "CREATED"),
        ("CreatedBy", "CREATED BY"),
        ("Size", "SIZE"),
        ("Comment", "COMMENT"),
        ("CreatedAt", "CREATED AT"),
    ];
    let default = "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}";
    print!("{}", render(&rows, a.format.as_deref(), default, &headers)?);
    Ok(0)
}

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// Apply Dockerfile instruction to the created image
    #[arg(short = 'c', long = "change")]
    pub change: Vec<String>,
    /// Set commit message for imported image
    #[arg(short = 'm', long)]
    pub message: Option<String>,
    /// Set platform if server is multi-platform capable
    #[arg(long)]
    pub platform: Option<String>,
    /// File (or - for STDIN)
    pub file: String,
    /// Repository[:tag]
    pub reference: Option<String>,
}

async fn open_input(path: &str) -> Result<Box<dyn tokio::io::AsyncRead + Send + Sync + Unpin>> {
    if path == "-" {
        Ok(Box::new(tokio::io::stdin()))
    } else {
        Ok(Box::new(
            tokio::fs::File::open(path)
                .await
                .with_context(|| format!("open {path}"))?,
        ))
    }
}

/// Print a JSON-lines progress stream: `stream`/`status` text, and fail on `error`.
async fn follow_progress(body: &mut hyper::body::Incoming, quiet: bool) -> Result<Vec<Value>> {
    let mut buf = Vec::new();
    let mut all = Vec::new();
    while let Some(chunk) = next_chunk(body).await? {
        buf.extend_from_slice(&chunk);
        while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=pos).collect();
            let Ok(v) = serde_json::from_slice::<Value>(&line) else {
                continue;
            };
            if let Some(e) = v["error"].as_str() {
                return Err(anyhow!("{e}"));
            }
            if !quiet {
                if let Some(s) = v["stream"].as_str() {
                    print!("{s}");
                }
            }
            all.push(v);
        }
    }
    Ok(all)
}

pub async fn import(c: &Client, a: ImportArgs) -> Result<i32> {
    let mut q = "fromSrc=-".to_string();
    if let Some(r) = &a.reference {
        let (repo, tag) = match r.rsplit_once(':') {
            Some((r, t)) if !t.contains('/') => (r.to_string(), t.to_string()),
            _ => (r.clone(), String::new()),
        };
        q.push_str(&format!("&repo={}&tag={}", enc(&repo), enc(&tag)));
    }
    for ch in &a.change {
        q.push_str(&format!("&changes={}", enc(ch)));
    }
    if let Some(m) = &a.message {
        q.push_str(&format!("&message={}", enc(m)));
    }
    if let Some(p) = &a.platform {
        q.push_str(&format!("&platform={}", enc(p)));
    }
    let input = open_input(&a.file).await?;
    let resp = c
        .upload(&format!("/images/create?{q}"), "application/x-tar", input)
        .await?;
    let mut body = resp.into_body();
    let lines = follow_progress(&mut body, true).await?;
    if let Some(id) = lines.iter().rev().find_map(|l| l["status"].as_str()) {
        println!("{id}");
    }
    Ok(0)
}

#[derive(Args, Debug)]
pub struct LoadArgs {
    /// Read from tar archive file, instead of STDIN
    #[arg(short = 'i', long)]
    pub input: Option<String>,
    /// Suppress the load output
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

pub async fn load(c: &Client, a: LoadArgs) -> Result<i32> {
    let input = open_input(a.input.as_deref().unwrap_or("-")).await?;
    let resp = c
        .upload(
            &format!("/images/load?quiet={}", a.quiet as u8),
            "application/x-tar",
            input,
        )
        .await?;
    let mut body = resp.into_body();
    follow_progress(&mut body, a.quiet).await?;
    Ok(0)
}

#[derive(Args, Debug)]
pub struct SaveArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short = 'o', long)]
    pub output: Option<String>,
    #[arg(required = true)]
    pub images: Vec<String>,
}

pub async fn save(c: &Client, a: SaveArgs) -> Result<i32> {
    if a.output.is_none() && std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        return Err(StatusError {
            code: 1,
            message: "cowardly refusing to save to a terminal. Use the -o flag or redirect".into(),
        }
        .into());
    }
    let q: Vec<String> = a
        .images
        .iter()
        .map(|i| format!("names={}", enc(i)))
        .collect();
    let resp = c
        .stream(Method::GET, &format!("/images/get?{}", q.join("&")))
        .await?;
    let mut body = resp.into_body();
    let (mut out, tmp): (
        Box<dyn tokio::io::AsyncWrite + Unpin + Send>,
        Option<(String, String)>,
    ) = match &a.output {
        Some(p) => {
            let tmp = format!("{p}.berth-tmp");
            (
                Box::new(
                    tokio::fs::File::create(&tmp)
                        .await
                        .with_context(|| format!("create {tmp}"))?,
                ),
                Some((tmp, p.clone())),
            )
        }
        None => (Box::new(tokio::io::stdout()), None),
    };
    while let Some(chunk) = next_chunk(&mut body)
        .await
        .context("the daemon failed while saving")?
    {
        out.write_all(&chunk).await?;
    }
    out.flush().await?;
    drop(out);
    if let Some((tmp, p)) = tmp {
        tokio::fs::rename(&tmp, &p)
            .await
            .with_context(|| format!("write {p}"))?;
    }
    Ok(0)
}

#[derive(Args, Debug)]
pub struct ImagePruneArgs {
    /// Remove all unused images, not just dangling ones
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Provide filter values (e.g. "until=<timestamp>")
    #[arg(long)]
    pub filter: Vec<String>,
}

pub async fn prune(c: &Client, a: ImagePruneArgs) -> Result<i32> {
    let warning = if a.all {
        "WARNING! This will remove all images without at least one container associated to them."
    } else {
        "WARNING! This will remove all dangling images."
    };
    if !confirm(warning, a.force) {
        return Ok(0);
    }
    let mut filters = a.filter.clone();
    filters.push(format!("dangling={}", !a.all));
    let v = c
        .post_json(
            &format!("/images/prune?filters={}", enc(&filters_json(&filters)?)),
            None,
        )
        .await?;
    let items: Vec<Value> = v["ImagesDeleted"].as_array().cloned().unwrap_or_default();
    if !items.is_empty() {
        println!("Deleted Images:");
        for i in &items {
            if let Some(u) = i["Untagged"].as_str() {
                println!("untagged: {u}");
            }
            if let Some(d) = i["Deleted"].as_str() {
                println!("deleted: {d}");
            }
        }
        println!();
    }
    println!(
        "Total reclaimed space: {}",
        human::human_size(v["SpaceReclaimed"].as_f64().unwrap_or(0.0))
    );
    Ok(0)
}
