//! Docker's json-file log driver: one JSON object per line, `{"log":"…\n","stream":"stdout","time":"…"}`,
//! rotated by size into `NAME.1`, `NAME.2`, … like Docker's `max-size` / `max-file` options.

use crate::proto::LogConfig;
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

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
///
/// This is on the path of every byte a container prints, so entries are encoded by hand (the same JSON
/// `serde_json` writes for an [`Entry`]), every entry of one [`LogWriter::write`] goes out in one `write(2)`,
/// and complete lines are encoded straight from the caller's buffer.
pub struct LogWriter {
    cfg: LogConfig,
    file: File,
    size: u64,
    partial: [Vec<u8>; 2],
    /// Encoded entries not yet written.
    out: Vec<u8>,
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
            out: Vec::new(),
        })
    }

    /// Feed bytes read from stream 1 (stdout) or 2 (stderr). Every line this completes is written (lines
    /// longer than 16 KiB in 16 KiB entries, as Docker splits them); the rest waits for more bytes.
    pub fn write(&mut self, stream: u8, data: &[u8]) -> std::io::Result<()> {
        let idx = if stream == 2 { 1 } else { 0 };
        let time = now_rfc3339();
        let mut rest = data;
        while !rest.is_empty() {
            let held = self.partial[idx].len();
            let room = MAX_LINE - held;
            let window = &rest[..rest.len().min(room)];
            let cut = match find_newline(window) {
                Some(p) => p + 1,
                None if window.len() == room => room,
                None => {
                    self.partial[idx].extend_from_slice(window);
                    break;
                }
            };
            if held == 0 {
                self.entry(idx, &rest[..cut], &time)?;
            } else {
                let mut line = std::mem::take(&mut self.partial[idx]);
                line.extend_from_slice(&rest[..cut]);
                self.entry(idx, &line, &time)?;
                line.clear();
                self.partial[idx] = line;
            }
            rest = &rest[cut..];
        }
        self.write_out()
    }

    /// Write out what is left of unterminated lines (at the end of the container).
    pub fn flush(&mut self) -> std::io::Result<()> {
        let time = now_rfc3339();
        for idx in 0..2 {
            if !self.partial[idx].is_empty() {
                let line = std::mem::take(&mut self.partial[idx]);
                self.entry(idx, &line, &time)?;
            }
        }
        self.write_out()?;
        self.file.flush()
    }

    /// Encodes one entry after those waiting in `out`, rotating first (and writing out what waits) when
    /// the entry would take the live file past its size limit.
    fn entry(&mut self, idx: usize, line: &[u8], time: &str) -> std::io::Result<()> {
        let before = self.out.len();
        encode_entry(
            &mut self.out,
            line,
            if idx == 1 { "stderr" } else { "stdout" },
            time,
        );
        let len = (self.out.len() - before) as u64;
        let pending = self.size + before as u64;
        if self.cfg.max_size > 0 && pending > 0 && pending + len > self.cfg.max_size {
            let entry = self.out.split_off(before);
            self.write_out()?;
            self.rotate()?;
            self.out = entry;
        }
        Ok(())
    }

    fn write_out(&mut self) -> std::io::Result<()> {
        if !self.out.is_empty() {
            self.file.write_all(&self.out)?;
            self.size += self.out.len() as u64;
            self.out.clear();
        }
        Ok(())
    }

    /// Give back the memory a burst of output left allocated (a read of NUL bytes encodes to six times its
    /// size), for a container that has gone quiet: it must not stay allocated for the life of the container.
    /// Not done after each write, where it would reallocate for every read of a busy stream.
    pub fn trim(&mut self) {
        if self.out.is_empty() && self.out.capacity() > 64 * 1024 {
            self.out = Vec::new();
        }
        for p in &mut self.partial {
            if p.is_empty() && p.capacity() > 0 {
                *p = Vec::new();
            }
        }
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        let keep = self.cfg.max_files.max(1);
        if keep == 1 {
            self.file.set_len(0)?;
            self.size = 0;
            return Ok(());
        }
        // The oldest goes first, so that no rename replaces a file: ext4 writes a file renamed over another
        // out to disk before the rename returns (its `auto_da_alloc`), which would stall the output.
        match std::fs::remove_file(rotated(&self.cfg.path, keep - 1)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
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

/// A [`LogWriter`] on a thread of its own, so that encoding and writing the log, the most work on the path
/// of a container's output, runs beside the forwarding of that output to attached clients instead of
/// before it. Chunks are handed over through a short queue: a log that falls behind slows the container's
/// output down (its pipe fills) rather than dropping anything or growing without bound.
pub struct LogThread {
    state: LogState,
}

enum LogState {
    /// No output yet: the thread is made at the first, so a quiet container costs nothing for it.
    Idle(LogWriter),
    Running {
        tx: mpsc::SyncSender<(u8, Vec<u8>)>,
        thread: std::thread::JoinHandle<std::io::Result<()>>,
    },
    /// No thread could be made: written inline.
    Inline(LogWriter),
    Done,
}

/// Chunks (of up to 64 KiB) waiting for the log thread.
const LOG_QUEUE: usize = 4;
/// How long the log thread waits for output before it gives back the memory a burst left.
const LOG_IDLE: Duration = Duration::from_secs(5);

impl LogThread {
    pub fn open(cfg: LogConfig) -> std::io::Result<LogThread> {
        Ok(LogThread {
            state: LogState::Idle(LogWriter::open(cfg)?),
        })
    }

    /// Hand bytes read from stream 1 (stdout) or 2 (stderr) to the log; waits while the queue is full.
    pub fn write(&mut self, stream: u8, data: &[u8]) {
        if let LogState::Idle(_) = self.state {
            self.start();
        }
        match &mut self.state {
            LogState::Running { tx, .. } => {
                if tx.send((stream, data.to_vec())).is_err() {
                    // The thread is gone (it panicked): what it had is lost, the rest is not written.
                    self.state = LogState::Done;
                }
            }
            LogState::Inline(w) => {
                let _ = w.write(stream, data);
            }
            LogState::Idle(_) | LogState::Done => {}
        }
    }

    fn start(&mut self) {
        let LogState::Idle(w) = std::mem::replace(&mut self.state, LogState::Done) else {
            return;
        };
        let cfg = w.cfg.clone();
        let (tx, rx) = mpsc::sync_channel::<(u8, Vec<u8>)>(LOG_QUEUE);
        let spawned = std::thread::Builder::new()
            .name("log".into())
            .stack_size(256 * 1024)
            .spawn(move || {
                let mut w = w;
                loop {
                    match rx.recv_timeout(LOG_IDLE) {
                        Ok((stream, data)) => {
                            let _ = w.write(stream, &data);
                        }
                        Err(mpsc::RecvTimeoutError::Timeout) => w.trim(),
                        Err(mpsc::RecvTimeoutError::Disconnected) => return w.flush(),
                    }
                }
            });
        self.state = match spawned {
            Ok(thread) => LogState::Running { tx, thread },
            // The writer went with the closure: open the file again (it is opened to append).
            Err(_) => match LogWriter::open(cfg) {
                Ok(w) => LogState::Inline(w),
                Err(_) => LogState::Done,
            },
        };
    }

    /// Write out everything handed over, unterminated lines included (at the end of the container), and
    /// stop the thread.
    pub fn finish(&mut self) -> std::io::Result<()> {
        match std::mem::replace(&mut self.state, LogState::Done) {
            LogState::Idle(mut w) | LogState::Inline(mut w) => w.flush(),
            LogState::Running { tx, thread } => {
                drop(tx);
                thread
                    .join()
                    .unwrap_or_else(|_| Err(std::io::Error::other("the log thread panicked")))
            }
            LogState::Done => Ok(()),
        }
    }
}

/// Appends `{"log":LINE,"stream":STREAM,"time":TIME}\n`, byte for byte what `serde_json` writes for an
/// [`Entry`] whose `log` is `String::from_utf8_lossy(line)`.
fn encode_entry(out: &mut Vec<u8>, line: &[u8], stream: &str, time: &str) {
    out.reserve(line.len() + 64);
    out.extend_from_slice(b"{\"log\":\"");
    // Most lines are printable ASCII ending in a newline: those are copied whole, without the UTF-8 walk.
    let (body, newline) = match line.split_last() {
        Some((b'\n', body)) => (body, true),
        _ => (line, false),
    };
    if plain_ascii(body) {
        out.extend_from_slice(body);
        if newline {
            out.extend_from_slice(b"\\n");
        }
    } else if line.is_ascii() {
        // ASCII is valid UTF-8 as it is: no walk over its chunks.
        escape_into(out, line);
    } else {
        for chunk in line.utf8_chunks() {
            escape_into(out, chunk.valid().as_bytes());
            if !chunk.invalid().is_empty() {
                out.extend_from_slice("\u{FFFD}".as_bytes());
            }
        }
    }
    out.extend_from_slice(b"\",\"stream\":\"");
    out.extend_from_slice(stream.as_bytes());
    out.extend_from_slice(b"\",\"time\":\"");
    out.extend_from_slice(time.as_bytes());
    out.extend_from_slice(b"\"}\n");
}

/// Whether `s` is ASCII that a JSON string holds as it is (no control character, quote or backslash). Written
/// without an early exit so that the compiler checks many bytes per instruction.
fn plain_ascii(s: &[u8]) -> bool {
    s.iter().fold(0u8, |bad, &b| {
        bad | u8::from(!(0x20..0x80).contains(&b) || b == b'"' || b == b'\\')
    }) == 0
}

/// The index of the first newline in `s`, looked for 32 bytes at a time.
fn find_newline(s: &[u8]) -> Option<usize> {
    let mut chunks = s.chunks_exact(32);
    let mut base = 0;
    for c in &mut chunks {
        if c.iter().fold(false, |any, &b| any | (b == b'\n')) {
            return c.iter().position(|&b| b == b'\n').map(|p| base + p);
        }
        base += 32;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| b == b'\n')
        .map(|p| base + p)
}

/// How `serde_json` escapes a byte of a string: 0 for none, else the letter after the backslash (`u` for
/// `\u00XX`).
const ESCAPE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = b'u';
        i += 1;
    }
    t[0x08] = b'b';
    t[0x09] = b't';
    t[0x0a] = b'n';
    t[0x0c] = b'f';
    t[0x0d] = b'r';
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    t
};

/// Each byte as it appears inside a JSON string (padded to 8 bytes), and how many bytes that is.
const ESCAPED: [([u8; 8], u8); 256] = {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut t = [([0u8; 8], 0u8); 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = match ESCAPE[i] {
            0 => ([b, 0, 0, 0, 0, 0, 0, 0], 1),
            b'u' => ([b'\\', b'u', b'0', b'0', HEX[i >> 4], HEX[i & 15], 0, 0], 6),
            e => ([b'\\', e, 0, 0, 0, 0, 0, 0], 2),
        };
        i += 1;
    }
    t
};

/// Appends valid UTF-8 `s` as the inside of a JSON string. Escaped bytes are common in what reaches here
/// (a stream of NUL bytes escapes every byte, to six), so each byte's escape is copied from a table without
/// a branch, into a buffer on the stack that goes out in one copy per block.
fn escape_into(out: &mut Vec<u8>, s: &[u8]) {
    const BLOCK: usize = 1024;
    let mut buf = [0u8; 6 * BLOCK + 8];
    for block in s.chunks(BLOCK) {
        let mut n = 0;
        for &b in block {
            let (e, len) = &ESCAPED[b as usize];
            buf[n..n + 8].copy_from_slice(e);
            n += *len as usize;
        }
        out.extend_from_slice(&buf[..n]);
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

    fn config(path: PathBuf, max_size: u64, max_files: u32) -> LogConfig {
        LogConfig {
            path,
            max_size,
            max_files,
        }
    }

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
        let mut w = LogWriter::open(config(path.clone(), 0, 1)).unwrap();
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
    fn entries_are_encoded_as_serde_json_writes_them() {
        let mut lines: Vec<Vec<u8>> = vec![
            b"plain text\n".to_vec(),
            (0u8..=255).collect(),
            "quotes \" and \\ backslashes, tabs\t, \u{7f} del, caf\u{e9}, \u{1F600}\n"
                .as_bytes()
                .to_vec(),
            vec![b'a', 0xff, 0xfe, b'b', 0xe2, 0x82, b'c', 0xf0, 0x9f, 0x98],
            Vec::new(),
        ];
        lines.push(vec![0u8; 100]);
        // Each byte value inside an otherwise plain line, with and without the newline, so that both the
        // plain-ASCII copy and the escaping walk are compared with serde_json.
        for b in 0u8..=255 {
            let mut l = b"a long enough line of plain text ".to_vec();
            l.push(b);
            l.extend_from_slice(b" more text");
            lines.push(l.clone());
            l.push(b'\n');
            lines.push(l);
        }
        lines.push(b"\n".to_vec());
        lines.push(b"two\n\n".to_vec());
        for line in &lines {
            let mut got = Vec::new();
            encode_entry(&mut got, line, "stderr", "2026-11-28T00:00:00.000000001Z");
            let entry = Entry {
                log: String::from_utf8_lossy(line).into_owned(),
                stream: "stderr".into(),
                time: "2026-11-28T00:00:00.000000001Z".into(),
            };
            let mut want = serde_json::to_vec(&entry).unwrap();
            want.push(b'\n');
            assert_eq!(
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(&want),
                "{line:?}"
            );
        }
    }

    #[test]
    fn newlines_are_found_wherever_they_are() {
        for len in [0usize, 1, 31, 32, 33, 64, 100] {
            let none = vec![b'x'; len];
            assert_eq!(find_newline(&none), None, "{len}");
            for at in 0..len {
                let mut s = none.clone();
                s[at] = b'\n';
                if at + 5 < len {
                    s[at + 5] = b'\n';
                }
                assert_eq!(find_newline(&s), Some(at), "{len} {at}");
            }
        }
    }

    #[test]
    fn long_lines_are_split_at_16k_across_writes() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("c-json.log");
        let mut w = LogWriter::open(config(path.clone(), 0, 1)).unwrap();
        let long = vec![b'x'; MAX_LINE * 2 + 10];
        for piece in long.chunks(7000) {
            w.write(1, piece).unwrap();
        }
        w.write(1, b"\nnext\n").unwrap();
        w.flush().unwrap();
        let e = read_entries(&path);
        let lens: Vec<usize> = e.iter().map(|e| e.log.len()).collect();
        assert_eq!(lens, vec![MAX_LINE, MAX_LINE, 11, 5]);
        assert!(e[2].log.ends_with("x\n"));
        assert_eq!(e[3].log, "next\n");
    }

    #[test]
    fn the_log_thread_writes_everything_in_order_by_its_finish() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("c-json.log");
        let mut t = LogThread::open(config(path.clone(), 4096, 1000)).unwrap();
        for i in 0..500 {
            t.write(1 + (i % 2) as u8, format!("line {i}\n").as_bytes());
        }
        t.write(1, b"unterminated");
        t.finish().unwrap();
        let mut files: Vec<PathBuf> = (0..1000)
            .map(|n| rotated(&path, n))
            .filter(|p| p.exists())
            .collect();
        files.reverse();
        let e: Vec<Entry> = files.iter().flat_map(|p| read_entries(p)).collect();
        assert_eq!(e.len(), 501);
        for (i, e) in e.iter().take(500).enumerate() {
            assert_eq!(e.log, format!("line {i}\n"));
            assert_eq!(e.stream, if i % 2 == 0 { "stdout" } else { "stderr" });
        }
        assert_eq!(e[500].log, "unterminated");
        // Finished: more output is not written.
        t.write(1, b"late\n");
        assert_eq!(t.finish().ok(), Some(()));
    }

    #[test]
    fn a_burst_keeps_its_buffer_until_trimmed() {
        let d = tempfile::tempdir().unwrap();
        let mut w = LogWriter::open(config(d.path().join("c-json.log"), 0, 1)).unwrap();
        w.write(1, &[0u8; 64 * 1024]).unwrap();
        w.write(2, b"half a line").unwrap();
        // The next burst reuses it...
        assert!(w.out.capacity() >= 6 * 64 * 1024, "{}", w.out.capacity());
        w.trim();
        // ...until the container goes quiet; a partial line is kept.
        assert_eq!(w.out.capacity(), 0);
        assert_eq!(w.partial[1], b"half a line");
        assert_eq!(w.partial[0].capacity(), 0);
    }

    #[test]
    fn rotation_keeps_max_files() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("c-json.log");
        let mut w = LogWriter::open(config(path.clone(), 300, 3)).unwrap();
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
