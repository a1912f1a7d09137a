//! Output helpers shared by commands: stdcopy demultiplexing, `--format` rendering, JSON printing.

use crate::format::Formatter;
use anyhow::{anyhow, Result};
use serde_json::Value;
use std::io::Write;

/// Demultiplexes Docker's stdcopy stream (8-byte headers) into stdout and stderr.
#[derive(Default)]
pub struct Demux {
    buf: Vec<u8>,
}

impl Demux {
    /// Feed bytes; complete frames are written out.
    pub fn feed(
        &mut self,
        data: &[u8],
        out: &mut impl Write,
        err: &mut impl Write,
    ) -> std::io::Result<()> {
        self.buf.extend_from_slice(data);
        loop {
            if self.buf.len() < 8 {
                return Ok(());
            }
            let len =
                u32::from_be_bytes([self.buf[4], self.buf[5], self.buf[6], self.buf[7]]) as usize;
            if self.buf.len() < 8 + len {
                return Ok(());
            }
            let payload = &self.buf[8..8 + len];
            match self.buf[0] {
                2 => {
                    err.write_all(payload)?;
                    err.flush()?;
                }
                _ => {
                    out.write_all(payload)?;
                    out.flush()?;
                }
            }
            self.buf.drain(..8 + len);
        }
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
