//! `berth cp [-a] [-L] [-q] SRC DEST`: docker cp's client side. Exactly one side is `CONTAINER:PATH`; `-` is a
//! tar stream on stdin or stdout. The daemon only archives a path and extracts a tar into a directory; every
//! rule about what lands where (an existing directory receives the source, `SRC/.` copies a directory's
//! content, a missing destination takes the source's content under its own name, a directory never goes
//! onto a file) is decided here from the stat of both sides, as the docker CLI does (its `PrepareArchiveCopy`),
//! and applied by naming the archive's entries.

use crate::client::{enc, next_chunk, Client};
use crate::format::human::human_size_with_precision;
use crate::StatusError;
use anyhow::{anyhow, Result};
use base64::Engine as _;
use berth_archive::{ExtractOptions, Ownership, Resource, ResourceOptions};
use bytes::Bytes;
use clap::Args;
use hyper::Method;
use std::ffi::OsStr;
use std::io::{IsTerminal, Read, Write};
use std::os::fd::AsFd;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

mod paths;

use paths::{
    copy_info_destination_path, copy_info_source_path, get_rebase_name, join, os_error,
    rebase_pair, resolve_local_path, split_path_dir_entry, validate_output_path,
};
use paths::{prepare_archive_copy, split_cp_arg, CopyInfo};

#[derive(Args, Debug)]
pub struct CpArgs {
    /// Archive mode (copy all uid/gid information)
    #[arg(short = 'a', long = "archive")]
    pub archive: bool,
    /// Always follow symbol link in SRC_PATH
    #[arg(short = 'L', long = "follow-link")]
    pub follow_link: bool,
    /// Suppress progress output during copy. Progress output is automatically suppressed if no terminal is attached
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// CONTAINER:SRC_PATH, or a local SRC_PATH (- for a tar archive on STDIN)
    pub source: String,
    /// CONTAINER:DEST_PATH, or a local DEST_PATH (- for a tar archive on STDOUT)
    pub destination: String,
}

/// The stat a daemon sends in `X-Docker-Container-Path-Stat`.
#[derive(Debug, Clone, Default, serde::Deserialize)]
struct PathStat {
    #[serde(default)]
    mode: u32,
    #[serde(default, rename = "linkTarget")]
    link_target: String,
}

const MODE_DIR: u32 = 1 << 31;
const MODE_SYMLINK: u32 = 1 << 27;
const MODE_DEVICE: u32 = 1 << 26;
const MODE_IRREGULAR: u32 = 1 << 19;

pub async fn cp(c: &Client, a: CpArgs) -> Result<i32> {
    if a.source.is_empty() {
        return fail("source can not be empty");
    }
    if a.destination.is_empty() {
        return fail("destination can not be empty");
    }
    // Like docker: no progress unless stdout is a terminal or asked for.
    let quiet = a.quiet || !std::io::stdout().is_terminal();
    let (src_ctr, src_path) = split_cp_arg(&a.source);
    let (dst_ctr, dst_path) = split_cp_arg(&a.destination);
    let r = match (src_ctr, dst_ctr) {
        (Some(ctr), None) => from_container(c, &a, ctr, src_path, dst_path, quiet).await,
        (None, Some(ctr)) => to_container(c, &a, ctr, src_path, dst_path, quiet).await,
        (Some(_), Some(_)) => Err(anyhow!("copying between containers is not supported")),
        (None, None) => Err(anyhow!("must specify at least one container source")),
    };
    match r {
        Ok(()) => Ok(0),
        Err(e) => fail(&format!("{e:#}")),
    }
}

/// docker exits 1 on a failed copy.
fn fail(message: &str) -> Result<i32> {
    Err(StatusError {
        code: 1,
        message: message.to_string(),
    }
    .into())
}

// ---- from a container ----

async fn from_container(
    c: &Client,
    a: &CpArgs,
    ctr: &str,
    src: &str,
    dst: &str,
    quiet: bool,
) -> Result<()> {
    let to_stdout = dst == "-";
    let dst_path = if to_stdout {
        dst.to_string()
    } else {
        let p = resolve_local_path(dst)?;
        validate_output_path(&p)?;
        p
    };
    let mut src_path = src.to_string();
    let mut rebase_name = String::new();
    if a.follow_link {
        if let Ok(stat) = stat_path(c, ctr, &src_path).await {
            if stat.mode & MODE_SYMLINK != 0 {
                let mut target = stat.link_target.clone();
                if !target.starts_with('/') {
                    target = join(&split_path_dir_entry(&src_path).0, &target);
                }
                let (t, r) = get_rebase_name(&src_path, &target);
                src_path = t;
                rebase_name = r;
            }
        }
    }
    let resp = c
        .stream(
            Method::GET,
            &format!("/containers/{}/archive?path={}", enc(ctr), enc(&src_path)),
        )
        .await?;
    let stat = decode_stat(resp.headers())?;
    let mut body = resp.into_body();
    if to_stdout {
        let mut out = tokio::io::stdout();
        while let Some(chunk) = next_chunk(&mut body).await? {
            tokio::io::AsyncWriteExt::write_all(&mut out, &chunk).await?;
        }
        tokio::io::AsyncWriteExt::flush(&mut out).await?;
        return Ok(());
    }
    let src_info = CopyInfo {
        path: src_path.clone(),
        exists: true,
        is_dir: stat.mode & MODE_DIR != 0,
        rebase_name: rebase_name.clone(),
    };
    let dst_info = copy_info_destination_path(&dst_path)?;
    let (dst_dir, rebase) = prepare_archive_copy(&src_info, &dst_info)?;
    // The daemon names entries after the path asked for; `-L` first renames them after the link.
    let (_, src_base) = split_path_dir_entry(&src_path);
    let rebase = match (rebase, rebase_name.is_empty()) {
        (Some((_, new)), _) => Some(rebase_pair(&src_base, &new)),
        (None, false) => Some(rebase_pair(&src_base, &rebase_name)),
        (None, true) => None,
    };
    let counted = Arc::new(AtomicU64::new(0));
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(16);
    let feeder = {
        let counted = counted.clone();
        tokio::spawn(async move {
            loop {
                match next_chunk(&mut body).await {
                    Ok(Some(chunk)) => {
                        counted.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                        if tx.send(Ok(chunk)).await.is_err() {
                            return;
                        }
                    }
                    Ok(None) => return,
                    Err(e) => {
                        let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
                        return;
                    }
                }
            }
        })
    };
    let opts = ExtractOptions {
        ownership: if a.archive {
            Ownership::FromArchive
        } else {
            Ownership::Caller
        },
        no_overwrite_dir_non_dir: true,
        refuse_absolute: false,
        // Devices in a container's files are left out (Docker's client makes them when run as root).
        skip_devices: true,
        rebase,
        ..ExtractOptions::default()
    };
    let extracted = tokio::task::spawn_blocking(move || -> Result<()> {
        let dir = std::fs::File::open(&dst_dir).map_err(|e| os_error("open", &dst_dir, &e))?;
        let reader = ChannelReader {
            rx,
            buf: Bytes::new(),
        };
        berth_archive::extract_resource(reader, dir.as_fd(), Path::new(&dst_dir), &opts)
            .map(|_| ())
            .map_err(|e| anyhow!("{}", error_chain(&e)))
    })
    .await?;
    feeder.abort();
    extracted?;
    if !quiet {
        // docker v28 counts the bytes of the archive it received.
        eprintln!(
            "Successfully copied {} to {}",
            human_size_with_precision(counted.load(Ordering::Relaxed) as f64, 3),
            dst_path
        );
    }
    Ok(())
}

// ---- to a container ----

async fn to_container(
    c: &Client,
    a: &CpArgs,
    ctr: &str,
    src: &str,
    dst: &str,
    quiet: bool,
) -> Result<()> {
    let from_stdin = src == "-";
    let mut dst_info = CopyInfo {
        path: dst.to_string(),
        ..CopyInfo::default()
    };
    if let Ok(mut stat) = stat_path(c, ctr, dst).await {
        let mut ok = true;
        if stat.mode & MODE_SYMLINK != 0 {
            let mut target = stat.link_target.clone();
            if !target.starts_with('/') {
                target = join(&split_path_dir_entry(dst).0, &target);
            }
            dst_info.path = target.clone();
            match stat_path(c, ctr, &target).await {
                Ok(s) => stat = s,
                Err(_) => ok = false,
            }
        }
        if ok {
            if stat.mode & MODE_DEVICE != 0 || stat.mode & MODE_IRREGULAR != 0 {
                let what = if stat.mode & MODE_DEVICE != 0 {
                    "got a device"
                } else {
                    "got an irregular file"
                };
                return Err(anyhow!(
                    "destination \"{ctr}:{dst}\" must be a directory or a regular file: {what}"
                ));
            }
            dst_info.exists = true;
            dst_info.is_dir = stat.mode & MODE_DIR != 0;
        }
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(16);
    let counted = Arc::new(AtomicU64::new(0));
    let (dst_dir, producer) = if from_stdin {
        if !dst_info.is_dir {
            return Err(anyhow!("destination \"{ctr}:{dst}\" must be a directory"));
        }
        let counted = counted.clone();
        let producer = tokio::task::spawn_blocking(move || -> Result<()> {
            let mut stdin = std::io::stdin().lock();
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = match stdin.read(&mut buf) {
                    Ok(0) => return Ok(()),
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
                        return Err(e.into());
                    }
                };
                counted.fetch_add(n as u64, Ordering::Relaxed);
                if tx
                    .blocking_send(Ok(Bytes::copy_from_slice(&buf[..n])))
                    .is_err()
                {
                    return Ok(());
                }
            }
        });
        (dst_info.path.clone(), producer)
    } else {
        let src_path = resolve_local_path(src)?;
        let src_info = copy_info_source_path(&src_path, a.follow_link)?;
        let (dst_dir, rebase) = prepare_archive_copy(&src_info, &dst_info)?;
        let (src_dir, src_base) = split_path_dir_entry(&src_info.path);
        let name = match rebase {
            Some((_, new)) => new,
            None if !src_info.rebase_name.is_empty() => src_info.rebase_name.clone(),
            None => src_base.clone(),
        };
        let owner = if a.archive { None } else { Some((0, 0)) };
        let writer = ChannelWriter {
            tx: tx.clone(),
            counted: counted.clone(),
        };
        let producer = tokio::task::spawn_blocking(move || -> Result<()> {
            let r = write_local(&src_dir, &src_base, &name, owner, writer);
            if let Err(e) = &r {
                // Abort the upload: the daemon must not take a cut stream for an archive.
                let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
            }
            r
        });
        (dst_dir, producer)
    };
    let mut q = format!(
        "/containers/{}/archive?path={}&noOverwriteDirNonDir=true",
        enc(ctr),
        enc(&dst_dir)
    );
    if a.archive {
        q.push_str("&copyUIDGID=true");
    }
    let sent = c
        .send_stream(Method::PUT, &q, "application/x-tar", rx)
        .await;
    let produced = producer.await?;
    match sent {
        Ok(_) => produced?,
        // A local failure explains a refused upload better than the daemon's view of a cut stream.
        Err(e) => {
            produced?;
            return Err(e);
        }
    }
    if !quiet {
        eprintln!(
            "Successfully copied {} to {}:{}",
            human_size_with_precision(counted.load(Ordering::Relaxed) as f64, 3),
            ctr,
            dst_info.path
        );
    }
    Ok(())
}

/// The tar of `dir/base` (the directory's content when `base` is `.`) with its top entry named `name`.
fn write_local(
    dir: &str,
    base: &str,
    name: &str,
    owner: Option<(u32, u32)>,
    writer: ChannelWriter,
) -> Result<()> {
    let parent = std::fs::File::open(dir).map_err(|e| os_error("open", dir, &e))?;
    let opts = ResourceOptions {
        owner,
        ..ResourceOptions::default()
    };
    let shown = Path::new(dir).join(base);
    let resource = if base == "." || base == "/" {
        Resource::Dir(parent.as_fd())
    } else {
        Resource::Entry {
            parent: parent.as_fd(),
            name: OsStr::new(base),
        }
    };
    berth_archive::write_resource(resource, name.as_bytes(), &shown, writer, &opts)
        .map(|_| ())
        .map_err(|e| anyhow!("{}", error_chain(&e)))
}

// ---- plumbing ----

async fn stat_path(c: &Client, ctr: &str, path: &str) -> Result<PathStat> {
    let resp = c
        .stream(
            Method::HEAD,
            &format!("/containers/{}/archive?path={}", enc(ctr), enc(path)),
        )
        .await?;
    decode_stat(resp.headers())
}

fn decode_stat(headers: &hyper::HeaderMap) -> Result<PathStat> {
    let raw = headers
        .get("X-Docker-Container-Path-Stat")
        .ok_or_else(|| anyhow!("unable to get resource stat from response: no stat header"))?;
    let json = base64::engine::general_purpose::STANDARD
        .decode(raw.as_bytes())
        .map_err(|e| anyhow!("unable to decode container path stat header: {e}"))?;
    serde_json::from_slice(&json)
        .map_err(|e| anyhow!("unable to decode container path stat header: {e}"))
}

/// Chunks for an upload, counted.
struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<std::io::Result<Bytes>>,
    counted: Arc<AtomicU64>,
}

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.tx
            .blocking_send(Ok(Bytes::copy_from_slice(buf)))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "upload ended"))?;
        self.counted.fetch_add(buf.len() as u64, Ordering::Relaxed);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A blocking reader over downloaded chunks.
struct ChannelReader {
    rx: tokio::sync::mpsc::Receiver<std::io::Result<Bytes>>,
    buf: Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.buf.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.buf = b,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = out.len().min(self.buf.len());
        out[..n].copy_from_slice(&self.buf.split_to(n));
        Ok(n)
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
