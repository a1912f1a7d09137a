//! docker-compatible output formatting for the CLI: `--format` templates, tables and
//! human-readable values, byte for byte like the docker v28 CLI.
//!
//! - [`template`]: the Go `text/template` subset `--format` uses, over JSON data.
//! - [`table`]: Go's elastic tabwriter with docker's settings.
//! - [`human`]: sizes, durations, status lines, IDs, commands and port lists as docker prints
//!   them, and `--memory`-style size parsing.
//! - [`time`]: Go durations and `--since`/`--until` timestamps.
//!
//! [`Formatter`] ties them together the way docker's `formatter.Context` does: a format
//! string starting with `table` renders a header row (the template executed over a map from
//! field names to column titles, with docker's header functions) followed by one row per item,
//! aligned by the tabwriter; `json` means `{{json .}}`; anything else is a template executed
//! once per item, each followed by a newline. Literal `\t` and `\n` in the format become a tab
//! and a newline.
//!
//! Rows are JSON objects keyed by docker's formatter method names (`ID`, `Image`, `Command`,
//! `RunningFor`, `Names`...), with values already formatted (see [`human`]). A one-argument
//! method such as `{{.Label "key"}}` is an object under `@Label` (label name to value); `@`
//! keys are left out of `{{json .}}`, as docker's formatter JSON only has argument-less methods.

pub mod human;
pub mod table;
pub mod template;
pub mod time;

use serde_json::{Map, Value};

use self::table::TabWriter;
use self::template::{Options, Template, TemplateError};

/// Errors from formatting output.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// The format did not parse or failed on a row; docker prefixes both with this text.
    #[error("template parsing error: {0}")]
    Template(#[from] TemplateError),
    /// [`check_format`]: the raw format does not parse.
    #[error("failed to parse template: {0}")]
    CheckParse(TemplateError),
    /// [`check_format`]: the raw format fails on an empty row.
    #[error("failed to execute template: {0}")]
    CheckExecute(TemplateError),
}

/// Go type of `docker ps` rows, named in "can't evaluate field" errors.
pub const CONTAINER_ROW_TYPE: &str = "*formatter.ContainerContext";
/// Go type of `docker images` rows.
pub const IMAGE_ROW_TYPE: &str = "*formatter.imageContext";
/// Go type of `docker volume ls` rows.
pub const VOLUME_ROW_TYPE: &str = "*formatter.volumeContext";

/// docker's `DefaultQuietFormat`.
pub const QUIET_FORMAT: &str = "{{.ID}}";
/// docker's `JSONFormat`, used for `--format json`.
pub const JSON_FORMAT: &str = "{{json .}}";
/// `docker ps` default table.
pub const CONTAINER_TABLE_FORMAT: &str =
    "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}";
/// `docker images` default table.
pub const IMAGE_TABLE_FORMAT: &str = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{if .CreatedSince }}{{.CreatedSince}}{{else}}N/A{{end}}\t{{.Size}}";
/// `docker images --digests` default table.
pub const IMAGE_TABLE_FORMAT_WITH_DIGEST: &str = "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{if .CreatedSince }}{{.CreatedSince}}{{else}}N/A{{end}}\t{{.Size}}";
/// `docker volume ls` default table.
pub const VOLUME_TABLE_FORMAT: &str = "table {{.Driver}}\t{{.Name}}";

const CONTAINER_RAW_FORMAT: &str = "container_id: {{.ID}}\nimage: {{.Image}}\ncommand: {{.Command}}\ncreated_at: {{.CreatedAt}}\nstate: {{- pad .State 1 0}}\nstatus: {{- pad .Status 1 0}}\nnames: {{.Names}}\nlabels: {{- pad .Labels 1 0}}\nports: {{- pad .Ports 1 0}}\n";

/// Column titles of `docker ps` (docker's `NewContainerContext`).
pub const CONTAINER_HEADERS: &[(&str, &str)] = &[
    ("ID", "CONTAINER ID"),
    ("Names", "NAMES"),
    ("Image", "IMAGE"),
    ("Command", "COMMAND"),
    ("CreatedAt", "CREATED AT"),
    ("RunningFor", "CREATED"),
    ("Ports", "PORTS"),
    ("State", "STATE"),
    ("Status", "STATUS"),
    ("Size", "SIZE"),
    ("Labels", "LABELS"),
    ("Mounts", "MOUNTS"),
    ("LocalVolumes", "LOCAL VOLUMES"),
    ("Networks", "NETWORKS"),
    ("Platform", "PLATFORM"),
    ("HealthStatus", "HEALTH STATUS"),
];

/// Column titles of `docker images` (docker's `newImageContext`).
pub const IMAGE_HEADERS: &[(&str, &str)] = &[
    ("ID", "IMAGE ID"),
    ("Repository", "REPOSITORY"),
    ("Tag", "TAG"),
    ("Digest", "DIGEST"),
    ("CreatedSince", "CREATED"),
    ("CreatedAt", "CREATED AT"),
    ("Size", "SIZE"),
    ("Containers", "CONTAINERS"),
    ("VirtualSize", "SIZE"),
    ("SharedSize", "SHARED SIZE"),
    ("UniqueSize", "UNIQUE SIZE"),
];

/// Column titles of `docker volume ls`.
pub const VOLUME_HEADERS: &[(&str, &str)] = &[
    ("Name", "VOLUME NAME"),
    ("Driver", "DRIVER"),
    ("Scope", "SCOPE"),
    ("Mountpoint", "MOUNTPOINT"),
    ("Labels", "LABELS"),
    ("Links", "LINKS"),
    ("Size", "SIZE"),
    ("Group", "GROUP"),
    ("Availability", "AVAILABILITY"),
    ("Status", "STATUS"),
];

/// An empty formatter row: every field of `pairs` (a header list) as `""`, and an empty
/// `@Label` method table. Used by [`check_format`].
pub fn empty_row(pairs: &[(&str, &str)]) -> Value {
    let mut map: Map<String, Value> = pairs
        .iter()
        .map(|(k, _)| (k.to_string(), Value::String(String::new())))
        .collect();
    map.insert("@Label".to_string(), Value::Object(Map::new()));
    Value::Object(map)
}

/// `docker ps`'s up-front check of `--format` (`buildContainerListOptions`): the format exactly
/// as typed (a `table` prefix and literal `\t` included) must parse and execute over an empty
/// row, before the daemon is asked for anything.
pub fn check_format(
    format: &str,
    empty_row: &Value,
    row_type: &'static str,
) -> Result<(), FormatError> {
    let template = Template::parse(format).map_err(FormatError::CheckParse)?;
    let opts = Options {
        root_type: Some(row_type),
        ..Options::default()
    };
    template
        .execute_with(empty_row, &opts)
        .map(|_| ())
        .map_err(FormatError::CheckExecute)
}

/// The header data for a table: field name to column title.
pub fn headers(pairs: &[(&str, &str)]) -> Value {
    let map: Map<String, Value> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
        .collect();
    Value::Object(map)
}

/// docker's `NewContainerFormat`: the format `docker ps` uses for `--format`, `-q` and `-s`.
pub fn container_format(source: &str, quiet: bool, size: bool) -> String {
    match source {
        "table" | "" => {
            if quiet {
                return QUIET_FORMAT.to_string();
            }
            let mut format = CONTAINER_TABLE_FORMAT.to_string();
            if size {
                format.push_str("\t{{.Size}}");
            }
            format
        }
        "raw" => {
            if quiet {
                return "container_id: {{.ID}}".to_string();
            }
            let mut format = CONTAINER_RAW_FORMAT.to_string();
            if size {
                format.push_str("size: {{.Size}}\\n");
            }
            format
        }
        _ if quiet => QUIET_FORMAT.to_string(),
        _ => source.to_string(),
    }
}

/// docker's `NewImageFormat`: the format `docker images` uses for `--format`, `-q` and
/// `--digests`.
pub fn image_format(source: &str, quiet: bool, digest: bool) -> String {
    match source {
        "table" => {
            return if quiet {
                QUIET_FORMAT
            } else if digest {
                IMAGE_TABLE_FORMAT_WITH_DIGEST
            } else {
                IMAGE_TABLE_FORMAT
            }
            .to_string()
        }
        "raw" => {
            if quiet {
                return "image_id: {{.ID}}".to_string();
            }
            let digest_line = if digest { "digest: {{.Digest}}\n" } else { "" };
            return format!(
                "repository: {{{{ .Repository }}}}\ntag: {{{{.Tag}}}}\n{digest_line}image_id: {{{{.ID}}}}\ncreated_at: {{{{.CreatedAt}}}}\nvirtual_size: {{{{.Size}}}}\n"
            );
        }
        _ => {}
    }
    let mut format = source.to_string();
    if format.starts_with("table") && digest && !format.contains("{{.Digest}}") {
        format.push_str("\t{{.Digest}}");
    }
    format
}

/// A parsed `--format`, ready to render rows (docker's `formatter.Context`).
#[derive(Debug, Clone)]
pub struct Formatter {
    template: Template,
    table: bool,
    escape_root_html: bool,
    row_type: Option<&'static str>,
}

impl Formatter {
    /// Prepares a format string: strips a `table` prefix, maps `json` to `{{json .}}`, trims
    /// spaces and turns literal `\t`/`\n` into tabs/newlines, then parses the template.
    pub fn parse(format: &str) -> Result<Formatter, FormatError> {
        let table = format.starts_with("table");
        let mut text = if table {
            &format["table".len()..]
        } else if format == "json" {
            JSON_FORMAT
        } else {
            format
        };
        text = text.trim_matches(' ');
        let text = text.replace("\\t", "\t").replace("\\n", "\n");
        Ok(Formatter {
            template: Template::parse(&text)?,
            table,
            escape_root_html: true,
            row_type: None,
        })
    }

    /// Treats rows as docker formatter objects of this Go type (see [`CONTAINER_ROW_TYPE`]):
    /// a field a row lacks is an error, as for docker's structs, instead of `<no value>`.
    pub fn row_type(mut self, row_type: &'static str) -> Formatter {
        self.row_type = Some(row_type);
        self
    }

    /// Whether `{{json .}}` of a row escapes `<`, `>` and `&` and hides `@` method tables (the
    /// default, as docker's formatter objects marshal with `json.Marshal`). Turn it off for
    /// plain data, which is then encoded as is.
    pub fn escape_row_html(mut self, escape: bool) -> Formatter {
        self.escape_root_html = escape;
        self
    }

    /// Whether this is a `table` format.
    pub fn is_table(&self) -> bool {
        self.table
    }

    /// Renders the rows, preceded by a header row for table formats. `header` maps field names
    /// to column titles (see [`headers`]); it is ignored for non-table formats. Nothing is
    /// returned if any row fails, as docker prints nothing in that case.
    pub fn render(&self, header: &Value, rows: &[Value]) -> Result<String, FormatError> {
        let opts = Options {
            header: false,
            escape_root_html: self.escape_root_html,
            root_type: self.row_type,
        };
        let mut body = String::new();
        for row in rows {
            body.push_str(&self.template.execute_with(row, &opts)?);
            body.push('\n');
        }
        if !self.table {
            return Ok(body);
        }
        let header_opts = Options {
            header: true,
            ..Options::default()
        };
        // docker ignores header errors and keeps what was written before them.
        let (mut text, _) = self.template.execute_partial(header, &header_opts);
        text.push('\n');
        text.push_str(&body);
        Ok(TabWriter::docker().format(&text))
    }
}

#[cfg(test)]
mod tests;
