//! Docker's json-file log driver: one JSON object per line, `{"log":"…\n","stream":"stdout","time":"…"}`,
//! rotated by size into `NAME.1`, `NAME.2`, … like Docker's `max-size` / `max-file` options.

use crate::proto::LogConfig;
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// One log line as stored.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Entry {
    pub log: String,
    pub stream: String,
    pub time: String,
}

/// Docker splits lines longer than this into several entries.
const MAX_LINE: usize = 16 * 1024;

/// Writes entries, buffering partial lines per stream, rotating by size.
pub struct LogWriter {
    cfg: LogConfig,
    file: File,
    size: u64,
    partial: [Vec<u8>; 2],
}

impl LogWriter {
    pub fn open(cfg: LogConfig) -> std::io::Result<LogWriter> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&cfg.path)?;
        let size = file.metadata()?.len();
        Ok(LogWriter {
            cfg,
            file,
            size,
            partial: [Vec::new(), Vec::new()],
        })
    }

    /// Feed bytes read from stream 1 (stdout) or 2 (stderr).
    pub fn write(&mut self, stream: u8, data: &[u8]) -> std::io::Result<()> {
        let idx = if stream == 2 { 1 } else { 0 };
        self.partial[idx].extend_from_slice(data);
        loop {
            let buf = &self.partial[idx];
            let cut = match buf.iter().position(|&b| b == b'\n') {
                Some(p) if p < MAX_LINE => p + 1,
                _ if buf.len() >= MAX_LINE => MAX_LINE,
                _ => break,
            };
            let line: Vec<u8> = self.partial[idx].drain(..cut).collect();
            self.emit(idx, &line)?;
        }
        Ok(())
    }

    /// Write out what is left of unterminated lines (at the end of the container).
    pub fn flush(&mut self) -> std::io::Result<()> {
        for idx in 0..2 {
            if !self.partial[idx].is_empty() {
                let line = std::mem::take(&mut self.partial[idx]);
                self.emit(idx, &line)?;
            }
        }
        self.file.flush()
    }

    fn emit(&mut self, idx: usize, line: &[u8]) -> std::io::Result<()> {
        let entry = Entry {
            log: String::from_utf8_lossy(line).into_owned(),
            stream: if idx == 1 { "stderr" } else { "stdout" }.to_string(),
            time: now_rfc3339(),
        };
        let mut json = serde_json::to_vec(&entry).map_err(std::io::Error::other)?;
        json.push(b'\n');
        if self.cfg.max_size > 0
            && self.size > 0
            && self.size + json.len() as u64 > self.cfg.max_size
        {
            self.rotate()?;
        }
        self.file.write_all(&json)?;
        self.size += json.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        let keep = self.cfg.max_files.max(1);
        if keep == 1 {
            self.file.set_len(0)?;
            self.size = 0;
            return Ok(());
        }
        for n in (1..keep).rev() {
            let from = rotated(&self.cfg.path, n - 1);
            let to = rotated(&self.cfg.path, n);
            if from.exists() {
                std::fs::rename(&from, &to)?;
            }
        }
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.cfg.path)?;
        self.size = 0;
        Ok(())
    }
}

/// The path of rotation `n` (0 is the live file).
pub fn rotated(path: &Path, n: u32) -> PathBuf {
    if n == 0 {
        path.to_path_buf()
    } else {
        PathBuf::from(format!("{}.{n}", path.display()))
    }
}

/// Now as Docker writes log times: RFC 3339 with nanoseconds, UTC.
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_entries(p: &Path) -> Vec<Entry> {
        std::fs::read_to_string(p)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn lines_are_split_buffered_and_flushed() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("c-json.log");
        let mut w = LogWriter::open(LogConfig {
            path: path.clone(),
            max_size: 0,
            max_files: 1,
        })
        .unwrap();
        w.write(1, b"hel").unwrap();
        w.write(2, b"oops\n").unwrap();
        w.write(1, b"lo\nwor").unwrap();
        w.flush().unwrap();
        let e = read_entries(&path);
        let got: Vec<(&str, &str)> = e
            .iter()
            .map(|e| (e.stream.as_str(), e.log.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("stderr", "oops\n"),
                ("stdout", "hello\n"),
                ("stdout", "wor")
            ]
        );
        assert!(e[0].time.ends_with('Z'));
    }

    #[test]
    fn rotation_keeps_max_files() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("c-json.log");
        let mut w = LogWriter::open(LogConfig {
            path: path.clone(),
            max_size: 300,
            max_files: 3,
        })
        .unwrap();
        for i in 0..40 {
            w.write(1, format!("line {i}\n").as_bytes()).unwrap();
        }
        w.flush().unwrap();
        assert!(rotated(&path, 1).exists());
        assert!(rotated(&path, 2).exists());
        assert!(!rotated(&path, 3).exists());
        for n in 0..3 {
            assert!(std::fs::metadata(rotated(&path, n)).unwrap().len() <= 300);
        }
        let last = read_entries(&path);
        assert_eq!(last.last().unwrap().log, "line 39\n");
    }
}
