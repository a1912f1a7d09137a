//! Output helpers shared by commands: stdcopy demultiplexing, `--format` rendering, JSON printing.

use crate::format::table::TabWriter;
use crate::format::template::Template;
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

/// Render `items` with a `--format` value: `json`, `table ...`, a Go template, or the default table
/// template when `format` is None.
pub fn render(
    items: &[Value],
    format: Option<&str>,
    default_table: &str,
    headers: &[(&str, &str)],
) -> Result<String> {
    let fmt = format.unwrap_or(default_table);
    if fmt == "json" {
        let mut s = String::new();
        for i in items {
            s.push_str(&crate::format::template::go_json(i, true));
            s.push('\n');
        }
        return Ok(s);
    }
    if let Some(t) = fmt.strip_prefix("table") {
        let t = t.trim_start();
        let t = if t.is_empty() {
            default_table.trim_start_matches("table").trim_start()
        } else {
            t
        };
        let tmpl = Template::parse(&unescape(t)).map_err(|e| anyhow!("{e}"))?;
        let header = header_line(t, headers);
        let mut text = String::new();
        text.push_str(&header);
        text.push('\n');
        for i in items {
            text.push_str(&tmpl.execute(i).map_err(|e| anyhow!("{e}"))?);
            text.push('\n');
        }
        return Ok(TabWriter::docker().format(&text));
    }
    let tmpl = Template::parse(&unescape(fmt)).map_err(|e| anyhow!("{e}"))?;
    let mut s = String::new();
    for i in items {
        s.push_str(&tmpl.execute(i).map_err(|e| anyhow!("{e}"))?);
        s.push('\n');
    }
    Ok(s)
}

/// `\t` and `\n` typed on the command line mean tab and newline, as in docker.
fn unescape(s: &str) -> String {
    s.replace("\\t", "\t").replace("\\n", "\n")
}

/// The header row of a table template: each `{{.Field}}` becomes its column title.
fn header_line(t: &str, headers: &[(&str, &str)]) -> String {
    let t = unescape(t);
    let mut out = String::new();
    let mut rest = t.as_str();
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let Some(end) = rest[start..].find("}}") else {
            break;
        };
        let inner = rest[start + 2..start + end]
            .trim()
            .trim_start_matches('-')
            .trim_end_matches('-')
            .trim();
        let field = inner
            .trim_start_matches('.')
            .split_whitespace()
            .next()
            .unwrap_or("");
        let title = headers
            .iter()
            .find(|(k, _)| *k == field)
            .map(|(_, v)| v.to_string())
            .unwrap_or_else(|| field.to_uppercase());
        out.push_str(&title);
        rest = &rest[start + end + 2..];
    }
    out.push_str(rest);
    out
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
    fn table_headers_come_from_field_names() {
        let h = header_line(
            "{{.ID}}\\t{{.Names}}\\t{{.Foo}}",
            &[("ID", "CONTAINER ID"), ("Names", "NAMES")],
        );
        assert_eq!(h, "CONTAINER ID\tNAMES\tFOO");
    }

    #[test]
    fn pretty_uses_four_spaces() {
        assert_eq!(pretty(&serde_json::json!({"a": 1})), "{\n    \"a\": 1\n}");
    }
}
