//! Registry commands: pull, push, login, logout — and the progress display they share with `run`.

use crate::client::{enc, next_chunk, Client};
use crate::StatusError;
use anyhow::{anyhow, Context, Result};
use base64::Engine as _;
use berth_distribution::{registry_key, Credential, DockerConfig};
use clap::Args;
use hyper::Method;
use serde_json::{json, Value};
use std::io::{IsTerminal, Write};

/// The `X-Registry-Auth` value for the registry of `image` (from `~/.docker/config.json` and its helpers).
pub async fn auth_header(image: &str) -> Option<String> {
    let domain = berth_image::Reference::parse(image)
        .ok()?
        .full()
        .split('/')
        .next()?
        .to_string();
    let (server, key) = registry_key(&domain);
    let cred = DockerConfig::default_location()
        .get(&key)
        .await
        .ok()
        .flatten()?;
    let v = json!({
        "username": cred.username,
        "password": cred.password,
        "identitytoken": cred.identity_token.unwrap_or_default(),
        "serveraddress": if server == "docker.io" { key } else { server },
    });
    Some(base64::engine::general_purpose::URL_SAFE.encode(serde_json::to_vec(&v).ok()?))
}

/// Docker's progress bar: `[=====>      ]  1.2MB/5.3MB`.
fn bar(current: u64, total: u64) -> String {
    let human = |n: u64| crate::format::human::human_size_with_precision(n as f64, 3);
    if total == 0 {
        return human(current);
    }
    let width = 50usize;
    let done = ((current as f64 / total as f64) * width as f64).min(width as f64) as usize;
    let mut b = String::from("[");
    b.push_str(&"=".repeat(done.saturating_sub(1)));
    if done > 0 && done < width {
        b.push('>');
    } else if done == width {
        b.push('=');
    }
    b.push_str(&" ".repeat(width - done.max(1).min(width) + usize::from(done == 0)));
    b.push(']');
    format!("{b}  {}/{}", human(current), human(total))
}

/// Renders Docker's JSON progress stream like the docker CLI: one line per layer updated in place on a
/// terminal, plain status lines otherwise. Returns an error for an `error` message.
pub struct ProgressView {
    tty: bool,
    quiet: bool,
    ids: Vec<String>,
    /// Write to stderr (`run` and `create` keep stdout for the container's output or id).
    to_stderr: bool,
}

impl ProgressView {
    pub fn new(quiet: bool) -> Self {
        ProgressView {
            tty: std::io::stdout().is_terminal(),
            quiet,
            ids: Vec::new(),
            to_stderr: false,
        }
    }

    pub fn on_stderr(quiet: bool) -> Self {
        ProgressView {
            tty: std::io::stderr().is_terminal(),
            quiet,
            ids: Vec::new(),
            to_stderr: true,
        }
    }

    pub fn show(&mut self, m: &Value) -> Result<()> {
        if let Some(e) = m["error"].as_str() {
            return Err(anyhow!("{e}"));
        }
        if self.quiet {
            return Ok(());
        }
        let status = m["status"].as_str().unwrap_or("");
        let id = m["id"].as_str();
        let detail = &m["progressDetail"];
        let text = match (detail["current"].as_u64(), detail["total"].as_u64()) {
            (Some(c), Some(t)) => format!("{status} {}", bar(c, t)),
            _ => status.to_string(),
        };
        let mut out: Box<dyn Write> = if self.to_stderr {
            Box::new(std::io::stderr())
        } else {
            Box::new(std::io::stdout())
        };
        match id {
            Some(id) if self.tty => {
                let line = format!("{id}: {text}");
                match self.ids.iter().position(|i| i == id) {
                    Some(pos) => {
                        let up = self.ids.len() - pos;
                        let _ = write!(out, "\x1b[{up}A\r\x1b[2K{line}\x1b[{up}B\r");
                    }
                    None => {
                        self.ids.push(id.to_string());
                        let _ = writeln!(out, "{line}");
                    }
                }
            }
            Some(id) => {
                if detail["current"].is_null() {
                    let _ = writeln!(out, "{id}: {text}");
                }
            }
            None => {
                let _ = writeln!(out, "{text}");
            }
        }
        let _ = out.flush();
        Ok(())
    }
}

/// Follow a JSON progress stream to its end.
pub async fn follow(body: &mut hyper::body::Incoming, view: &mut ProgressView) -> Result<()> {
    let mut buf = Vec::new();
    while let Some(chunk) = next_chunk(body).await? {
        buf.extend_from_slice(&chunk);
        while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=pos).collect();
            if let Ok(v) = serde_json::from_slice::<Value>(&line) {
                view.show(&v)?;
            }
        }
    }
    Ok(())
}

/// Pull `image` with progress (shared by `pull` and `run`/`create`).
pub async fn pull_image(
    c: &Client,
    image: &str,
    platform: Option<&str>,
    view: ProgressView,
) -> Result<()> {
    pull_request(c, image, platform, view, false).await
}

/// `all_tags`: no tag is sent, which the daemon takes as every tag (a plain pull always names one, as the
/// docker CLI does).
async fn pull_request(
    c: &Client,
    image: &str,
    platform: Option<&str>,
    mut view: ProgressView,
    all_tags: bool,
) -> Result<()> {
    let mut q = format!("fromImage={}", enc(image));
    let named = berth_image::Reference::parse_named(image)
        .map(|r| r.tag().is_some() || r.digest().is_some())
        .unwrap_or(true);
    if !named && !all_tags {
        q.push_str("&tag=latest");
    }
    if let Some(p) = platform {
        q.push_str(&format!("&platform={}", enc(p)));
    }
    let resp = c
        .stream_with_auth(
            Method::POST,
            &format!("/images/create?{q}"),
            auth_header(image).await,
        )
        .await?;
    let mut body = resp.into_body();
    follow(&mut body, &mut view).await
}

#[derive(Args, Debug)]
pub struct PullArgs {
    /// Suppress verbose output
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Set platform if server is multi-platform capable
    #[arg(long)]
    pub platform: Option<String>,
    /// Download all tagged images in the repository
    #[arg(short = 'a', long = "all-tags")]
    pub all_tags: bool,
    pub image: String,
}

pub async fn pull(c: &Client, a: PullArgs) -> Result<i32> {
    let r = berth_image::Reference::parse(&a.image).map_err(|e| StatusError {
        code: 1,
        message: format!("{e}"),
    })?;
    if a.all_tags {
        let named = berth_image::Reference::parse_named(&a.image)
            .map(|r| r.tag().is_some() || r.digest().is_some())
            .unwrap_or(true);
        if named {
            return Err(StatusError {
                code: 1,
                message: "tag can't be used with --all-tags/-a".into(),
            }
            .into());
        }
        pull_request(
            c,
            &a.image,
            a.platform.as_deref(),
            ProgressView::new(a.quiet),
            true,
        )
        .await?;
        println!("{}", r.repository());
        return Ok(0);
    }
    pull_image(
        c,
        &a.image,
        a.platform.as_deref(),
        ProgressView::new(a.quiet),
    )
    .await?;
    println!("{}", r.full());
    Ok(0)
}

#[derive(Args, Debug)]
pub struct PushArgs {
    /// Suppress verbose output
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Push all tags of an image to the repository
    #[arg(short = 'a', long = "all-tags")]
    pub all_tags: bool,
    pub image: String,
}

pub async fn push(c: &Client, a: PushArgs) -> Result<i32> {
    let r = berth_image::Reference::parse(&a.image).map_err(|e| StatusError {
        code: 1,
        message: format!("{e}"),
    })?;
    let tags: Vec<String> = if a.all_tags {
        let list = c
            .get_json(&format!(
                "/images/json?filters={}",
                enc(&json!({"reference": [r.familiar_repository()]}).to_string())
            ))
            .await?;
        list.as_array()
            .into_iter()
            .flatten()
            .flat_map(|i| i["RepoTags"].as_array().cloned().unwrap_or_default())
            .filter_map(|t| t.as_str().map(str::to_string))
            .filter(|t| t.starts_with(&format!("{}:", r.familiar_repository())))
            .collect()
    } else {
        vec![a.image.clone()]
    };
    for t in tags {
        let tr = berth_image::Reference::parse(&t).map_err(|e| anyhow!("{e}"))?;
        let q = format!("tag={}", enc(tr.tag().unwrap_or("latest")));
        let resp = c
            .stream_with_auth(
                Method::POST,
                &format!("/images/{}/push?{q}", tr.familiar_repository()),
                auth_header(&t).await,
            )
            .await?;
        let mut body = resp.into_body();
        follow(&mut body, &mut ProgressView::new(a.quiet)).await?;
        if a.quiet {
            println!("{}", tr.full());
        }
    }
    Ok(0)
}

#[derive(Args, Debug)]
pub struct LoginArgs {
    /// Username
    #[arg(short = 'u', long)]
    pub username: Option<String>,
    /// Password (prefer --password-stdin)
    #[arg(short = 'p', long)]
    pub password: Option<String>,
    /// Take the password from stdin
    #[arg(long = "password-stdin")]
    pub password_stdin: bool,
    /// The registry (default: Docker Hub)
    pub server: Option<String>,
}

fn prompt(question: &str, hidden: bool) -> Result<String> {
    eprint!("{question}");
    let _ = std::io::stderr().flush();
    let stdin = std::io::stdin();
    let saved = if hidden && stdin.is_terminal() {
        rustix::termios::tcgetattr(&stdin).ok()
    } else {
        None
    };
    if let Some(t) = &saved {
        let mut quiet = t.clone();
        quiet.local_modes.remove(rustix::termios::LocalModes::ECHO);
        let _ = rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, &quiet);
    }
    let mut line = String::new();
    let r = stdin.read_line(&mut line);
    if let Some(t) = &saved {
        let _ = rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, t);
        eprintln!();
    }
    r.context("read from stdin")?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

pub async fn login(c: &Client, a: LoginArgs) -> Result<i32> {
    let server = a
        .server
        .clone()
        .unwrap_or_else(|| "https://index.docker.io/v1/".into());
    let (_, key) = registry_key(&server);
    if a.password.is_some() {
        eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
    }
    let username = match &a.username {
        Some(u) => u.clone(),
        None => prompt("Username: ", false)?,
    };
    let password = if a.password_stdin {
        if a.username.is_none() {
            return Err(StatusError {
                code: 1,
                message: "Must provide --username with --password-stdin".into(),
            }
            .into());
        }
        let mut s = String::new();
        std::io::stdin()
            .read_line(&mut s)
            .context("read the password from stdin")?;
        s.trim_end_matches(['\n', '\r']).to_string()
    } else {
        match &a.password {
            Some(p) => p.clone(),
            None => prompt("Password: ", true)?,
        }
    };
    if username.is_empty() || password.is_empty() {
        return Err(StatusError {
            code: 1,
            message: "Error: Non-null Username and Password Required".into(),
        }
        .into());
    }
    let body = json!({"username": username, "password": password, "serveraddress": server});
    c.post_json("/auth", Some(&body)).await?;
    let cfg = DockerConfig::default_location();
    let cred = Credential {
        username,
        password,
        identity_token: None,
    };
    cfg.store(&key, &cred)
        .await
        .map_err(|e| anyhow!("storing credentials: {e}"))?;
    eprintln!(
        "WARNING! Your credentials are stored unencrypted in '{}'.",
        cfg.path().display()
    );
    eprintln!("Configure a credential helper to remove this warning. See\nhttps://docs.docker.com/go/credential-store/\n");
    println!("Login Succeeded");
    Ok(0)
}

#[derive(Args, Debug)]
pub struct LogoutArgs {
    pub server: Option<String>,
}

pub async fn logout(a: LogoutArgs) -> Result<i32> {
    let server = a
        .server
        .clone()
        .unwrap_or_else(|| "https://index.docker.io/v1/".into());
    let (name, key) = registry_key(&server);
    let cfg = DockerConfig::default_location();
    let path = cfg.path().to_path_buf();
    let mut v: Value = match std::fs::read(&path) {
        Ok(b) => serde_json::from_slice(&b).with_context(|| format!("parse {}", path.display()))?,
        Err(_) => json!({}),
    };
    let removed = v["auths"]
        .as_object_mut()
        .map(|m| m.remove(&key).is_some() || m.remove(&name).is_some())
        .unwrap_or(false);
    if !removed {
        println!("Not logged in to {name}");
        return Ok(0);
    }
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(&v)?)
        .with_context(|| format!("write {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("write {}", path.display()))?;
    println!("Removing login credentials for {name}");
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_bars_read_like_docker() {
        let b = bar(50, 100);
        assert!(b.starts_with("[========================>"), "{b}");
        assert_eq!(b.find(']'), Some(51), "{b}");
        assert!(b.ends_with("50B/100B"), "{b}");
        assert_eq!(bar(100, 100).matches('=').count(), 50);
    }

    #[test]
    fn progress_errors_surface() {
        let mut v = ProgressView {
            tty: false,
            quiet: true,
            ids: vec![],
            to_stderr: false,
        };
        assert!(v
            .show(&json!({"status": "Downloading", "id": "abc"}))
            .is_ok());
        assert_eq!(
            v.show(&json!({"error": "boom", "errorDetail": {"message": "boom"}}))
                .unwrap_err()
                .to_string(),
            "boom"
        );
    }
}

#[derive(Args, Debug)]
pub struct SearchArgs {
    /// Max number of search results
    #[arg(long)]
    pub limit: Option<usize>,
    /// Filter output based on conditions provided
    #[arg(short = 'f', long)]
    pub filter: Vec<String>,
    /// Pretty-print search using a Go template
    #[arg(long)]
    pub format: Option<String>,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    pub term: String,
}

/// `search TERM`: the registry's index (`/v1/search`), through the daemon like the docker CLI.
pub async fn search(c: &Client, a: SearchArgs) -> Result<i32> {
    let mut q = format!("term={}", enc(&a.term));
    if let Some(l) = a.limit {
        q.push_str(&format!("&limit={l}"));
    }
    if !a.filter.is_empty() {
        q.push_str(&format!(
            "&filters={}",
            enc(&crate::cmd_container::filters_json(&a.filter)?)
        ));
    }
    let v = c.get_json(&format!("/images/search?{q}")).await?;
    let rows: Vec<serde_json::Value> = v
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|r| {
            let mut desc = r["description"].as_str().unwrap_or("").replace('\n', " ");
            if !a.no_trunc && desc.chars().count() > 45 {
                desc = desc.chars().take(44).collect::<String>() + "…";
            }
            serde_json::json!({
                "Name": r["name"], "Description": desc, "StarCount": r["star_count"].as_u64().unwrap_or(0).to_string(),
                "IsOfficial": if r["is_official"].as_bool().unwrap_or(false) { "[OK]" } else { "" },
                "IsAutomated": if r["is_automated"].as_bool().unwrap_or(false) { "[OK]" } else { "" },
            })
        })
        .collect();
    let headers = [
        ("Name", "NAME"),
        ("Description", "DESCRIPTION"),
        ("StarCount", "STARS"),
        ("IsOfficial", "OFFICIAL"),
        ("IsAutomated", "AUTOMATED"),
    ];
    print!(
        "{}",
        crate::output::render(
            &rows,
            a.format.as_deref(),
            "table {{.Name}}\t{{.Description}}\t{{.StarCount}}\t{{.IsOfficial}}",
            &headers
        )?
    );
    Ok(0)
}
