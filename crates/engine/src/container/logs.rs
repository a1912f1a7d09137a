//! `logs`: read the json-file log (rotated files oldest first), filter by time and tail, and follow.

use super::Status;
use crate::error::{EngineError, Result};
use crate::Engine;
use berth_runtime::logfile::{rotated, Entry};
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::PathBuf;
use tokio::sync::mpsc;

#[derive(Debug, Clone, Default)]
pub struct LogsOptions {
    pub stdout: bool,
    pub stderr: bool,
    pub follow: bool,
    /// Keep the last N lines (None = all).
    pub tail: Option<usize>,
    /// Unix times in nanoseconds.
    pub since: Option<i64>,
    pub until: Option<i64>,
}

/// One log line.
#[derive(Debug, Clone, PartialEq)]
pub struct LogLine {
    pub stderr: bool,
    pub time: String,
    pub data: Vec<u8>,
}

fn nanos(t: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(t)
        .ok()
        .and_then(|d| d.timestamp_nanos_opt())
        .unwrap_or(0)
}

impl Engine {
    /// Stream a container's logs into a channel; the stream ends when the logs are read (or, following, when
    /// the container stops and the file holds nothing more).
    pub async fn logs(
        &self,
        name_or_id: &str,
        opts: LogsOptions,
    ) -> Result<mpsc::Receiver<LogLine>> {
        let h = self.lookup(name_or_id).await?;
        let rec = h.record();
        if super::create::log_driver(&rec.host_config) == "none" {
            // Docker's words (dockerd answers 501; the clients print the message either way).
            return Err(EngineError::Invalid(
                "configured logging driver does not support reading".into(),
            ));
        }
        let path = PathBuf::from(&rec.log_path);
        let (tx, rx) = mpsc::channel(256);
        let wait = h.wait.subscribe();
        let h2 = h.clone();
        // The live file is opened now and read through this handle: a client may remove the container before
        // it reads its stream (docker-py's `run(remove=True)` does), and the data must still be there.
        let mut live: Option<std::fs::File> = std::fs::File::open(&path).ok();
        tokio::task::spawn_blocking(move || {
            let keep = |e: &Entry| -> bool {
                let err = e.stream == "stderr";
                if (err && !opts.stderr) || (!err && !opts.stdout) {
                    return false;
                }
                let t = nanos(&e.time);
                opts.since.is_none_or(|s| t >= s) && opts.until.is_none_or(|u| t <= u)
            };
            let to_line = |e: Entry| LogLine {
                stderr: e.stream == "stderr",
                time: e.time,
                data: e.log.into_bytes(),
            };
            // Oldest rotation first.
            let mut files: Vec<PathBuf> = (1..100)
                .map(|n| rotated(&path, n))
                .take_while(|p| p.exists())
                .collect();
            files.reverse();
            files.push(path.clone());
            let mut lines: VecDeque<Entry> = VecDeque::new();
            let mut live_pos = 0u64;
            for (i, f) in files.iter().enumerate() {
                let is_live = i == files.len() - 1;
                let opened = if is_live {
                    live.as_ref().and_then(|l| l.try_clone().ok())
                } else {
                    std::fs::File::open(f).ok()
                };
                let Some(mut file) = opened else {
                    continue;
                };
                if is_live {
                    let _ = file.seek(SeekFrom::Start(0));
                }
                let mut r = BufReader::new(file);
                let mut buf = String::new();
                loop {
                    buf.clear();
                    match r.read_line(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(_) if !buf.ends_with('\n') => break,
                        Ok(n) => {
                            if i == files.len() - 1 {
                                live_pos += n as u64;
                            }
                            if let Ok(e) = serde_json::from_str::<Entry>(&buf) {
                                if keep(&e) {
                                    lines.push_back(e);
                                    if let Some(t) = opts.tail {
                                        if lines.len() > t {
                                            lines.pop_front();
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            for e in lines {
                if tx.blocking_send(to_line(e)).is_err() {
                    return;
                }
            }
            if !opts.follow {
                return;
            }
            // Follow: poll the live file for growth; a rotation (the file got shorter or replaced) restarts
            // from its beginning. Stop when the container is no longer running and nothing new is left.
            let mut pos = live_pos;
            let mut partial = String::new();
            loop {
                let running = wait.borrow().running
                    || matches!(
                        h2.record().state.status,
                        Status::Running | Status::Created | Status::Restarting
                    );
                let mut progressed = false;
                if live.is_none() {
                    live = std::fs::File::open(&path).ok();
                    pos = 0;
                }
                if let Some(f) = live.as_mut() {
                    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
                    if len < pos {
                        pos = 0;
                    }
                    if len > pos && f.seek(SeekFrom::Start(pos)).is_ok() {
                        let mut r = BufReader::new(f);
                        loop {
                            let mut buf = String::new();
                            match r.read_line(&mut buf) {
                                Ok(0) | Err(_) => break,
                                Ok(n) => {
                                    pos += n as u64;
                                    progressed = true;
                                    partial.push_str(&buf);
                                    if !partial.ends_with('\n') {
                                        continue;
                                    }
                                    let line = std::mem::take(&mut partial);
                                    if let Ok(e) = serde_json::from_str::<Entry>(&line) {
                                        if keep(&e) && tx.blocking_send(to_line(e)).is_err() {
                                            return;
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                // Rotated: the path names a new file. The old one is read to its end first (above), then the
                // new one from its beginning.
                if !progressed {
                    use std::os::unix::fs::MetadataExt;
                    let held = live
                        .as_ref()
                        .and_then(|f| f.metadata().ok())
                        .map(|m| m.ino());
                    let now = std::fs::metadata(&path).ok().map(|m| m.ino());
                    if now.is_some() && held != now {
                        live = None;
                        continue;
                    }
                }
                if tx.is_closed() {
                    return;
                }
                if !running && !progressed {
                    return;
                }
                if let Some(u) = opts.until {
                    if chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0) > u {
                        return;
                    }
                }
                if !progressed {
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
            }
        });
        Ok(rx)
    }
}
