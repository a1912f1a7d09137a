//! Output helpers shared by commands: stdcopy demultiplexing, `--format` rendering, JSON printing.

use crate::format::Formatter;
use anyhow::{anyhow, Result};
use serde_json::Value;
use std::io::Write;

/// Demultiplexes Docker's stdcopy stream (8-byte headers) into stdout and stderr. A frame's payload is
/// written as it arrives, straight from the caller's buffer: nothing is held back for a frame to
/// complete and nothing is copied.
#[derive(Default)]
pub struct Demux {
    header: [u8; 8],
    /// Bytes of the next header received so far.
    have: usize,
    /// Bytes of the current frame's payload still to come, and its stream (2: stderr).
    left: usize,
    stream: u8,
}

impl Demux {
    /// Feed bytes; what they carry of each frame's payload is written out, then both writers flushed.
    pub fn feed(
        &mut self,
        mut data: &[u8],
        out: &mut impl Write,
        err: &mut impl Write,
    ) -> std::io::Result<()> {
        while !data.is_empty() {
            if self.left == 0 {
                let take = (8 - self.have).min(data.len());
                self.header[self.have..self.have + take].copy_from_slice(&data[..take]);
                self.have += take;
                data = &data[take..];
                if self.have == 8 {
                    self.have = 0;
                    self.stream = self.header[0];
                    let h = &self.header;
                    self.left = u32::from_be_bytes([h[4], h[5], h[6], h[7]]) as usize;
                }
                continue;
            }
            let take = self.left.min(data.len());
            if self.stream == 2 {
                err.write_all(&data[..take])?;
            } else {
                out.write_all(&data[..take])?;
            }
            self.left -= take;
            data = &data[take..];
        }
        out.flush()?;
        err.flush()
    }
}

/// This process's standard output without Rust's line buffering (one `write` per chunk however many lines
/// it holds), for streaming a container's output.
pub fn raw_stdout() -> Box<dyn Write> {
    use std::os::fd::AsFd;
    match std::io::stdout().as_fd().try_clone_to_owned() {
        Ok(fd) => Box::new(std::fs::File::from(fd)),
        Err(_) => Box::new(std::io::stdout()),
    }
}

/// Render rows of a list command (`ps`, `images`, `history`, `system df`) with `format` (or the command's
/// default table), the way docker's formatter does: a `table` format gets a header row from `headers`.
pub fn render(
    items: &[Value],
    format: Option<&str>,
    default_table: &str,
    headers: &[(&str, &str)],
) -> Result<String> {
    let fmt = match format {
        None | Some("") | Some("table") => default_table,
        Some(f) => f,
    };
    let f = Formatter::parse(fmt).map_err(|e| anyhow!("{e}"))?;
    f.render(&crate::format::headers(headers), items)
        .map_err(|e| anyhow!("{e}"))
}

/// Render plain API objects (`inspect`, `info`, `version`, `events`) with a `--format` template, one per line.
pub fn render_plain(items: &[Value], format: &str) -> Result<String> {
    let f = Formatter::parse(format)
        .map_err(|e| anyhow!("{e}"))?
        .escape_row_html(false);
    f.render(&Value::Null, items).map_err(|e| anyhow!("{e}"))
}

/// Pretty JSON as docker prints it (4-space indent).
pub fn pretty(v: &Value) -> String {
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    let _ = serde::Serialize::serialize(v, &mut ser);
    String::from_utf8_lossy(&buf).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demux_splits_streams_across_chunks() {
        let mut d = Demux::default();
        let (mut o, mut e) = (Vec::new(), Vec::new());
        let data = [
            &[1u8, 0, 0, 0, 0, 0, 0, 3][..],
            b"out",
            &[2, 0, 0, 0, 0, 0, 0, 3],
            b"err",
        ]
        .concat();
        for c in data.chunks(5) {
            d.feed(c, &mut o, &mut e).unwrap();
        }
        assert_eq!(o, b"out");
        assert_eq!(e, b"err");
    }

    #[test]
    fn demux_streams_payloads_as_they_come_and_skips_empty_frames() {
        let mut d = Demux::default();
        let (mut o, mut e) = (Vec::new(), Vec::new());
        d.feed(
            &[1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 10, b'h', b'e'],
            &mut o,
            &mut e,
        )
        .unwrap();
        assert_eq!(o, b"he", "half a frame is written at once");
        d.feed(b"llo, wor", &mut o, &mut e).unwrap();
        d.feed(&[2, 0, 0, 0, 0, 0, 0, 1, b'!'], &mut o, &mut e)
            .unwrap();
        assert_eq!(o, b"hello, wor");
        assert_eq!(e, b"!");
        // A frame larger than a read, split at any point.
        let mut d = Demux::default();
        let (mut o, mut e) = (Vec::new(), Vec::new());
        let big = vec![b'x'; 70_000];
        let mut data = vec![1, 0, 0, 0];
        data.extend_from_slice(&(big.len() as u32).to_be_bytes());
        data.extend_from_slice(&big);
        data.extend_from_slice(&[2, 0, 0, 0, 0, 0, 0, 2, b'o', b'k']);
        for c in data.chunks(4096) {
            d.feed(c, &mut o, &mut e).unwrap();
        }
        assert_eq!(o, big);
        assert_eq!(e, b"ok");
    }

    #[test]
    fn tables_get_docker_headers() {
        let rows = vec![serde_json::json!({"ID": "abc", "Names": "web"})];
        let out = render(
            &rows,
            Some("table {{.ID}}\\t{{.Names}}"),
            "",
            &[("ID", "CONTAINER ID"), ("Names", "NAMES")],
        )
        .unwrap();
        assert_eq!(out, "CONTAINER ID   NAMES\nabc            web\n");
        let out = render(&rows, Some("{{.Names}}"), "", &[]).unwrap();
        assert_eq!(out, "web\n");
        assert!(render(&rows, Some("{{.Names"), "", &[]).is_err());
    }

    #[test]
    fn pretty_uses_four_spaces() {
        assert_eq!(pretty(&serde_json::json!({"a": 1})), "{\n    \"a\": 1\n}");
    }
}
