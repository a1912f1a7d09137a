//! `berth build [OPTIONS] PATH | -` and `berth builder prune`: the context is tarred on the fly (with
//! `.dockerignore` applied, as the docker CLI does) and streamed to `POST /build`; the daemon's JSON stream is
//! printed as it comes.

use crate::client::{enc, next_chunk, Client};
use anyhow::{anyhow, Context, Result};
use berth_build::ignore::DockerIgnore;
use bytes::Bytes;
use clap::Args;
use hyper::Method;
use serde_json::Value;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

#[derive(Args, Debug)]
pub struct BuildArgs {
    /// Name and optionally a tag in the "name:tag" format
    #[arg(short = 't', long = "tag")]
    pub tags: Vec<String>,
    /// Name of the Dockerfile (default: "PATH/Dockerfile"; "-" reads it from STDIN)
    #[arg(short = 'f', long = "file")]
    pub file: Option<String>,
    /// Set build-time variables
    #[arg(long = "build-arg")]
    pub build_args: Vec<String>,
    /// Set the target build stage to build
    #[arg(long)]
    pub target: Option<String>,
    /// Do not use cache when building the image
    #[arg(long)]
    pub no_cache: bool,
    /// Always attempt to pull a newer version of the image
    #[arg(long)]
    pub pull: bool,
    /// Set metadata for an image
    #[arg(long = "label")]
    pub labels: Vec<String>,
    /// Set the networking mode for the RUN instructions during build
    #[arg(long, default_value = "default")]
    pub network: String,
    /// Suppress the build output and print image ID on success
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Write the image ID to the file
    #[arg(long)]
    pub iidfile: Option<String>,
    /// Set platform if server is multi-platform capable
    #[arg(long)]
    pub platform: Option<String>,
    /// Type of progress output (auto, plain, tty)
    #[arg(long, default_value = "auto")]
    pub progress: String,
    /// Remove intermediate containers after a successful build
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1,
          default_missing_value = "true", require_equals = true)]
    pub rm: bool,
    /// Always remove intermediate containers
    #[arg(long)]
    pub force_rm: bool,
    /// Images to consider as cache sources
    #[arg(long = "cache-from")]
    pub cache_from: Vec<String>,
    /// PATH, or "-" for a tar archive or a Dockerfile on STDIN
    pub context: String,
}

#[derive(Args, Debug)]
pub struct BuilderPruneArgs {
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Remove all unused build cache, not just dangling ones
    #[arg(short = 'a', long)]
    pub all: bool,
}

/// The query string of a build request.
pub fn query(a: &BuildArgs, dockerfile: &str) -> Result<String> {
    let mut q = Vec::new();
    for t in &a.tags {
        berth_image::Reference::parse(t)
            .map_err(|e| anyhow!("invalid argument \"{t}\" for \"-t, --tag\" flag: {e}"))?;
        q.push(format!("t={}", enc(t)));
    }
    if !dockerfile.is_empty() {
        q.push(format!("dockerfile={}", enc(dockerfile)));
    }
    let mut args = serde_json::Map::new();
    for ba in &a.build_args {
        match ba.split_once('=') {
            Some((k, v)) => {
                args.insert(k.to_string(), Value::String(v.to_string()));
            }
            // `--build-arg NAME` takes the value from the environment, or leaves it unset.
            None => {
                let v = std::env::var(ba)
                    .ok()
                    .map(Value::String)
                    .unwrap_or(Value::Null);
                args.insert(ba.clone(), v);
            }
        }
    }
    if !args.is_empty() {
        q.push(format!(
            "buildargs={}",
            enc(&Value::Object(args).to_string())
        ));
    }
    let mut labels = serde_json::Map::new();
    for l in &a.labels {
        let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
        labels.insert(k.to_string(), Value::String(v.to_string()));
    }
    if !labels.is_empty() {
        q.push(format!(
            "labels={}",
            enc(&Value::Object(labels).to_string())
        ));
    }
    if let Some(t) = &a.target {
        q.push(format!("target={}", enc(t)));
    }
    if a.no_cache {
        q.push("nocache=1".into());
    }
    if a.pull {
        q.push("pull=1".into());
    }
    if a.quiet {
        q.push("q=1".into());
    }
    q.push(format!("rm={}", u8::from(a.rm)));
    if a.force_rm {
        q.push("forcerm=1".into());
    }
    if let Some(p) = &a.platform {
        q.push(format!("platform={}", enc(p)));
    }
    if !a.cache_from.is_empty() {
        q.push(format!(
            "cachefrom={}",
            enc(&serde_json::to_string(&a.cache_from)?)
        ));
    }
    if a.network != "default" {
        q.push(format!("networkmode={}", enc(&a.network)));
    }
    Ok(q.join("&"))
}

/// Where the context comes from.
enum Source {
    /// A directory, and the Dockerfile (a path in it, or text added to the tar under `name`).
    Dir {
        dir: PathBuf,
        extra: Option<(String, Vec<u8>)>,
    },
    /// A tar archive on stdin (already started: `head` was read).
    Tar { head: Vec<u8> },
    /// Only a Dockerfile (from stdin): an empty context.
    DockerfileOnly(Vec<u8>),
}

pub async fn build(c: &Client, a: BuildArgs) -> Result<i32> {
    let mut dockerfile = String::new();
    let source = if a.context == "-" {
        if a.file.as_deref() == Some("-") {
            return Err(anyhow!(
                "invalid argument: can't use stdin for both build context and dockerfile"
            ));
        }
        let mut head = vec![0u8; 512];
        let n = read_full(&mut std::io::stdin(), &mut head)?;
        head.truncate(n);
        if looks_like_archive(&head) {
            if let Some(f) = &a.file {
                dockerfile = f.clone();
            }
            Source::Tar { head }
        } else {
            let mut rest = Vec::new();
            std::io::stdin().read_to_end(&mut rest)?;
            head.extend(rest);
            dockerfile = "Dockerfile".into();
            Source::DockerfileOnly(head)
        }
    } else {
        let dir = PathBuf::from(&a.context);
        let meta = std::fs::metadata(&dir).with_context(|| {
            format!("unable to prepare context: path {:?} not found", a.context)
        })?;
        if !meta.is_dir() {
            return Err(anyhow!(
                "unable to prepare context: context must be a directory: {}",
                a.context
            ));
        }
        let extra = match a.file.as_deref() {
            Some("-") => {
                let mut text = Vec::new();
                std::io::stdin().read_to_end(&mut text)?;
                let name = format!(
                    ".dockerfile.{:012x}",
                    rand::random::<u64>() & 0xffff_ffff_ffff
                );
                dockerfile = name.clone();
                Some((name, text))
            }
            Some(f) => {
                let p = Path::new(f);
                let abs = std::fs::canonicalize(p).with_context(|| {
                    format!("unable to prepare context: the Dockerfile {f} cannot be read")
                })?;
                let ctx_abs = std::fs::canonicalize(&dir)?;
                match abs.strip_prefix(&ctx_abs) {
                    Ok(rel) => {
                        dockerfile = rel.to_string_lossy().into_owned();
                        None
                    }
                    Err(_) => {
                        let text = std::fs::read(&abs).with_context(|| format!("read {f}"))?;
                        let name = format!(
                            ".dockerfile.{:012x}",
                            rand::random::<u64>() & 0xffff_ffff_ffff
                        );
                        dockerfile = name.clone();
                        Some((name, text))
                    }
                }
            }
            None => {
                if !dir.join("Dockerfile").exists() && !dir.join("dockerfile").exists() {
                    return Err(anyhow!(
                        "unable to prepare context: unable to evaluate symlinks in Dockerfile path: lstat {}: no such file or directory",
                        dir.join("Dockerfile").display()
                    ));
                }
                None
            }
        };
        Source::Dir { dir, extra }
    };
    let q = query(&a, &dockerfile)?;

    // The context streams through a channel: a blocking thread writes the tar, the request sends the chunks.
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(8);
    let writer = std::thread::spawn(move || {
        let mut w = ChannelWriter { tx: tx.clone() };
        let r = match source {
            Source::Dir { dir, extra } => write_context(&dir, extra, &mut w),
            Source::Tar { head } => (|| {
                w.write_all(&head)?;
                std::io::copy(&mut std::io::stdin(), &mut w)?;
                Ok(())
            })(),
            Source::DockerfileOnly(text) => (|| {
                let mut t = tar::Builder::new(&mut w);
                append_bytes(&mut t, "Dockerfile", &text)?;
                t.finish()
            })(),
        };
        if let Err(e) = &r {
            let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
        }
        r
    });
    let resp = c
        .send_stream(
            Method::POST,
            &format!("/build?{q}"),
            "application/x-tar",
            rx,
        )
        .await;
    let written = tokio::task::spawn_blocking(move || writer.join())
        .await
        .map_err(|e| anyhow!("{e}"))?
        .map_err(|_| anyhow!("the context writer panicked"))?;
    written.context("sending the build context")?;
    let resp = resp?;
    let mut body = resp.into_body();
    let mut buf = Vec::new();
    let mut id = None;
    let mut out = std::io::stdout();
    while let Some(chunk) = next_chunk(&mut body).await? {
        buf.extend_from_slice(&chunk);
        while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=pos).collect();
            let Ok(v) = serde_json::from_slice::<Value>(&line) else {
                continue;
            };
            if let Some(e) = v["error"].as_str() {
                let _ = out.flush();
                eprintln!("{e}");
                return Ok(1);
            }
            if let Some(i) = v["aux"]["ID"].as_str() {
                id = Some(i.to_string());
            }
            if !a.quiet {
                if let Some(s) = v["stream"].as_str() {
                    let _ = out.write_all(s.as_bytes());
                    let _ = out.flush();
                }
            }
        }
    }
    let Some(id) = id else {
        return Err(anyhow!("the daemon ended the build without an image id"));
    };
    if a.quiet {
        println!("{id}");
    }
    if let Some(f) = &a.iidfile {
        std::fs::write(f, &id).with_context(|| format!("write the image id to {f}"))?;
    }
    Ok(0)
}

pub async fn builder_prune(c: &Client, a: BuilderPruneArgs) -> Result<i32> {
    let warning = if a.all {
        "WARNING! This will remove all build cache."
    } else {
        "WARNING! This will remove all dangling build cache."
    };
    if !crate::cmd_container::confirm(warning, a.force) {
        return Ok(0);
    }
    let v = c.post_json("/build/prune", None).await?;
    if let Some(ids) = v["CachesDeleted"].as_array() {
        if !ids.is_empty() {
            println!("Deleted build cache objects:");
            for i in ids {
                println!("{}", i.as_str().unwrap_or_default());
            }
            println!();
        }
    }
    let bytes = v["SpaceReclaimed"].as_u64().unwrap_or(0);
    println!(
        "Total reclaimed space: {}",
        crate::format::human::human_size(bytes as f64)
    );
    Ok(0)
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..])? {
            0 => break,
            n => got += n,
        }
    }
    Ok(got)
}

/// A tar (ustar magic), gzip, bzip2, xz or zstd stream.
fn looks_like_archive(head: &[u8]) -> bool {
    (head.len() >= 262 && &head[257..262] == b"ustar")
        || head.starts_with(&[0x1f, 0x8b])
        || head.starts_with(b"BZh")
        || head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0])
        || head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd])
}

struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<std::io::Result<Bytes>>,
}

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // An empty chunk would end a chunked request body early.
        if buf.is_empty() {
            return Ok(0);
        }
        self.tx
            .blocking_send(Ok(Bytes::copy_from_slice(buf)))
            .map_err(|_| {
                std::io::Error::new(
                    std::io::ErrorKind::BrokenPipe,
                    "the daemon closed the upload",
                )
            })?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn append_bytes<W: Write>(t: &mut tar::Builder<W>, name: &str, data: &[u8]) -> std::io::Result<()> {
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    );
    h.set_entry_type(tar::EntryType::Regular);
    t.append_data(&mut h, name, data)
}

/// Writes the context directory as a tar: `.dockerignore` applied (the Dockerfile and `.dockerignore` are sent
/// even when it excludes them, as Docker does), symlinks kept as symlinks, excluded directories skipped unless
/// an exception could match inside.
fn write_context(
    dir: &Path,
    extra: Option<(String, Vec<u8>)>,
    w: &mut impl Write,
) -> std::io::Result<()> {
    let ignore = match std::fs::read_to_string(dir.join(".dockerignore")) {
        Ok(text) => DockerIgnore::parse(&text)
            .map_err(|e| std::io::Error::other(format!(".dockerignore: {e}")))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => DockerIgnore::empty(),
        Err(e) => return Err(e),
    };
    let mut t = tar::Builder::new(w);
    t.follow_symlinks(false);
    t.mode(tar::HeaderMode::Complete);
    walk(&mut t, dir, "", &ignore)?;
    if let Some((name, text)) = extra {
        append_bytes(&mut t, &name, &text)?;
    }
    t.finish()
}

fn walk<W: Write>(
    t: &mut tar::Builder<W>,
    root: &Path,
    rel: &str,
    ignore: &DockerIgnore,
) -> std::io::Result<()> {
    let here = if rel.is_empty() {
        root.to_path_buf()
    } else {
        root.join(rel)
    };
    let mut names: Vec<_> = std::fs::read_dir(&here)?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<std::io::Result<_>>()?;
    names.sort();
    for n in names {
        let name = n.to_string_lossy().into_owned();
        let path = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        let full = root.join(&path);
        let meta = std::fs::symlink_metadata(&full)?;
        let always = rel.is_empty() && (name == "Dockerfile" || name == ".dockerignore");
        let excluded = !always && ignore.is_excluded(&path);
        if meta.is_dir() {
            if !excluded {
                t.append_path_with_name(&full, &path)?;
            }
            if !excluded || ignore.must_descend(&path) {
                walk(t, root, &path, ignore)?;
            }
        } else if !excluded {
            t.append_path_with_name(&full, &path)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_tar_honours_dockerignore() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        std::fs::write(p.join("Dockerfile"), "FROM scratch\n").unwrap();
        std::fs::write(
            p.join(".dockerignore"),
            "*.md\n!README.md\nsecret/\nDockerfile\n",
        )
        .unwrap();
        std::fs::write(p.join("a.md"), "x").unwrap();
        std::fs::write(p.join("README.md"), "x").unwrap();
        std::fs::create_dir(p.join("secret")).unwrap();
        std::fs::write(p.join("secret/key"), "x").unwrap();
        std::fs::create_dir(p.join("src")).unwrap();
        std::fs::write(p.join("src/main.c"), "x").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", p.join("link")).unwrap();
        let mut out = Vec::new();
        write_context(p, None, &mut out).unwrap();
        let mut names: Vec<String> = tar::Archive::new(out.as_slice())
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            vec![
                ".dockerignore",
                "Dockerfile",
                "README.md",
                "link",
                "src",
                "src/main.c"
            ]
        );
    }

    #[test]
    fn archives_are_recognised() {
        let mut tar = vec![0u8; 512];
        tar[257..262].copy_from_slice(b"ustar");
        assert!(looks_like_archive(&tar));
        assert!(looks_like_archive(&[0x1f, 0x8b, 8, 0]));
        assert!(!looks_like_archive(b"FROM busybox\nRUN true\n"));
    }
}
