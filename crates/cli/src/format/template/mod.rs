//! A Go `text/template` subset for docker's `--format` flag, evaluated over JSON data.
//!
//! Supported: text and `{{ }}` actions with `{{-`/`-}}` trim markers and `{{/* comments */}}`;
//! field chains (`.State.Status`), `.`, variables (`$x := ...`, `$x = ...`, `$`), string, raw
//! string, char, number, bool and nil literals; pipelines and parenthesized pipelines;
//! `if`/`else if`/`else`, `with`/`else with`, `range` (with `$i, $v :=`, `else`, `break`,
//! `continue`); Go's builtins `and or not eq ne lt le gt ge len index slice print printf println
//! html js urlquery` and docker's `json split join title lower upper pad truncate`.
//! `define`/`template`/`block` and `call` are rejected at parse time.
//!
//! Output follows Go: strings raw, integers without a fraction, floats as `%v`, maps as
//! `map[k:v]`, slices as `[a b]`, null or missing values as `<no value>`. Errors are worded as
//! Go's: `template: :1: unexpected "}" in operand` when parsing and
//! `template: :1:2: executing "" at <.Foo>: ...` when executing.
//!
//! ```
//! use berth_cli::format::template::Template;
//! let t = Template::parse("{{.Name}}: {{join .Tags \", \"}}").unwrap();
//! let data = serde_json::json!({"Name": "web", "Tags": ["a", "b"]});
//! assert_eq!(t.execute(&data).unwrap(), "web: a, b");
//! ```

mod escape;
mod exec;
mod funcs;
mod lex;
mod parse;
mod printf;
pub(crate) mod value;

use serde_json::Value;

pub use value::{go_json, go_quote};

/// Errors from parsing or executing a template, worded like Go's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// The template text is malformed.
    #[error("template: :{line}: {message}")]
    Parse { line: usize, message: String },
    /// Evaluation failed at a node (`context` is the node's source).
    #[error("template: :{line}:{col}: executing \"\" at <{context}>: {message}")]
    Exec {
        line: usize,
        col: usize,
        context: String,
        message: String,
    },
}

/// Evaluation options.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    /// Render a table header: docker's `HeaderFunctions` replace `json split join title lower
    /// upper truncate` with functions that return their first argument unchanged, and
    /// `.Label "a.b"` yields a header label.
    pub header: bool,
    /// `json` applied to the root value escapes `<`, `>` and `&` (`\u003c`...), as docker's
    /// formatter objects do because their `MarshalJSON` uses `json.Marshal`. Other values are
    /// encoded without HTML escaping, like docker's `json` function.
    pub escape_root_html: bool,
    /// Treat the root value as a docker formatter object of this Go type (for example
    /// `*formatter.ContainerContext`): a field it lacks is an error (`can't evaluate field Foo in
    /// type *formatter.ContainerContext`) instead of Go map semantics' `<no value>`.
    pub root_type: Option<&'static str>,
}

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    src: String,
    nodes: Vec<parse::Node>,
}

impl Template {
    /// Parses template text.
    pub fn parse(src: &str) -> Result<Template, TemplateError> {
        let nodes = parse::parse(src)?;
        Ok(Template {
            src: src.to_string(),
            nodes,
        })
    }

    /// The template's source text.
    pub fn source(&self) -> &str {
        &self.src
    }

    /// Executes the template with default options.
    pub fn execute(&self, data: &Value) -> Result<String, TemplateError> {
        self.execute_with(data, &Options::default())
    }

    /// Executes the template.
    pub fn execute_with(&self, data: &Value, opts: &Options) -> Result<String, TemplateError> {
        let (out, err) = self.execute_partial(data, opts);
        match err {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }

    /// Executes the template and returns the output written before any error, like Go, whose
    /// templates write as they go (docker prints a partial table header this way).
    pub fn execute_partial(&self, data: &Value, opts: &Options) -> (String, Option<TemplateError>) {
        let mut ex = exec::Exec {
            src: &self.src,
            root: data,
            opts,
            vars: Vec::new(),
            out: String::new(),
        };
        let res = ex.run(&self.nodes);
        (ex.out, res.err())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn data() -> Value {
        json!({
            "ID": "4f2a9c1d3b5e",
            "Names": "web",
            "State": {"Status": "running", "Pid": 42, "Running": true, "ExitCode": 0},
            "Config": {
                "Labels": {"com.example.tier": "front", "app": "shop"},
                "Env": ["A=1", "B=2"],
                "Cmd": ["sh", "-c", "echo hi"]
            },
            "Ports": [],
            "Size": 1.5,
            "Empty": "",
            "Null": null,
            "Label": {"app": "shop"},
            "Html": "<a&b>"
        })
    }

    fn run(src: &str) -> String {
        match Template::parse(src).and_then(|t| t.execute(&data())) {
            Ok(s) => s,
            Err(e) => format!("ERR {e}"),
        }
    }

    #[test]
    fn fields_and_printing() {
        assert_eq!(run("{{.ID}}"), "4f2a9c1d3b5e");
        assert_eq!(run("{{.State.Status}} {{.State.Pid}}"), "running 42");
        assert_eq!(run("{{.Config.Env}}"), "[A=1 B=2]");
        assert_eq!(
            run("{{.Config.Labels}}"),
            "map[app:shop com.example.tier:front]"
        );
        assert_eq!(run("{{.State.Running}}"), "true");
        assert_eq!(run("{{.Size}}"), "1.5");
        assert_eq!(run("{{.Missing}}"), "<no value>");
        assert_eq!(run("{{.Missing.Deeper}}"), "<no value>");
        assert_eq!(run("{{.Null}}"), "<no value>");
        assert_eq!(run("{{.Ports}}"), "[]");
        assert!(run("{{.}}").starts_with("map[Config:map["));
    }

    #[test]
    fn json_function() {
        assert_eq!(run("{{json .Config.Env}}"), r#"["A=1","B=2"]"#);
        assert_eq!(run("{{json .Html}}"), r#""<a&b>""#);
        assert_eq!(run("{{json .Null}}"), "null");
        assert_eq!(run("{{json .Missing}}"), "null");
        let t = Template::parse("{{json .}}").unwrap_or_else(|e| panic!("{e}"));
        let opts = Options {
            escape_root_html: true,
            ..Options::default()
        };
        let d = json!({"Image": "<none>", "b": 1});
        assert_eq!(
            t.execute_with(&d, &opts).as_deref(),
            Ok(r#"{"Image":"\u003cnone\u003e","b":1}"#)
        );
        assert_eq!(t.execute(&d).as_deref(), Ok(r#"{"Image":"<none>","b":1}"#));
    }

    #[test]
    fn pipelines_and_functions() {
        assert_eq!(run("{{.Names | upper}}"), "WEB");
        assert_eq!(run("{{join .Config.Cmd \" \"}}"), "sh -c echo hi");
        assert_eq!(run("{{index .Config.Labels \"app\"}}"), "shop");
        assert_eq!(run("{{index .Config.Env 1}}"), "B=2");
        assert_eq!(run("{{len .Config.Env}}"), "2");
        assert_eq!(run("{{printf \"%s-%d\" .Names .State.Pid}}"), "web-42");
        assert_eq!(run("{{.Names | printf \"<%s>\"}}"), "<web>");
        assert_eq!(run("{{split \"a:b\" \":\" | json}}"), r#"["a","b"]"#);
        assert_eq!(run("{{(index .Config.Env 0) | lower}}"), "a=1");
        assert_eq!(run("{{println .Names}}"), "web\n");
        assert_eq!(run("{{truncate .ID 4}}"), "4f2a");
        assert_eq!(run("{{title \"hello world\"}}"), "Hello World");
        assert_eq!(run("{{pad .Names 1 2}}|"), " web  |");
        assert_eq!(run("{{.Label \"app\"}}|{{.Label \"nope\"}}|"), "shop||");
    }

    #[test]
    fn conditionals() {
        assert_eq!(run("{{if .State.Running}}up{{else}}down{{end}}"), "up");
        assert_eq!(run("{{if .Empty}}x{{else if .Null}}y{{else}}z{{end}}"), "z");
        assert_eq!(
            run("{{if eq .State.Status \"running\" \"paused\"}}live{{end}}"),
            "live"
        );
        assert_eq!(run("{{if and .Names .Empty}}a{{else}}b{{end}}"), "b");
        assert_eq!(run("{{or .Empty .Names}}"), "web");
        assert_eq!(run("{{and .Names .Empty}}|"), "|");
        assert_eq!(run("{{if not .Empty}}yes{{end}}"), "yes");
        assert_eq!(run("{{if gt .State.Pid 10}}big{{end}}"), "big");
        assert_eq!(run("{{with .State}}{{.Status}}{{end}}"), "running");
        assert_eq!(run("{{with .Missing}}x{{else}}none{{end}}"), "none");
        assert_eq!(
            run("{{with .Empty}}x{{else with .Names}}{{.}}{{end}}"),
            "web"
        );
    }

    #[test]
    fn ranges_and_variables() {
        assert_eq!(run("{{range .Config.Env}}[{{.}}]{{end}}"), "[A=1][B=2]");
        assert_eq!(
            run("{{range $k, $v := .Config.Labels}}{{$k}}={{$v}};{{end}}"),
            "app=shop;com.example.tier=front;"
        );
        assert_eq!(
            run("{{range $i, $e := .Config.Env}}{{$i}}:{{$e}} {{end}}"),
            "0:A=1 1:B=2 "
        );
        assert_eq!(run("{{range $e := .Config.Env}}{{$e}}{{end}}"), "A=1B=2");
        assert_eq!(run("{{range .Ports}}x{{else}}none{{end}}"), "none");
        assert_eq!(run("{{range .Missing}}x{{end}}|"), "|");
        assert_eq!(run("{{range 3}}{{.}}{{end}}"), "012");
        assert_eq!(
            run("{{range .Config.Cmd}}{{if eq . \"-c\"}}{{continue}}{{end}}{{if eq . \"echo hi\"}}{{break}}{{end}}{{.}}{{end}}"),
            "sh"
        );
        assert_eq!(
            run("{{$n := .Names}}{{range .Config.Env}}{{$n}}{{end}}"),
            "webweb"
        );
        assert_eq!(run("{{$x := 1}}{{if true}}{{$x = 2}}{{end}}{{$x}}"), "2");
        assert_eq!(run("{{range .Config.Env}}{{$.Names}}{{end}}"), "webweb");
        assert_eq!(run("{{$x := .State}}{{$x.Status}}"), "running");
    }

    #[test]
    fn trim_markers_and_literals() {
        assert_eq!(run("a  {{- .Names -}}  b"), "awebb");
        assert_eq!(
            run("{{\"lit\"}} {{`raw`}} {{12}} {{1.5}} {{true}} {{'a'}}"),
            "lit raw 12 1.5 true 97"
        );
        assert_eq!(run("x{{/* comment */}}y"), "xy");
        assert_eq!(run("{{- \"\\t\" -}}"), "\t");
    }

    #[test]
    fn execution_errors() {
        assert_eq!(
            run("{{.Names.First}}"),
            r#"ERR template: :1:8: executing "" at <.Names.First>: can't evaluate field First in type string"#
        );
        assert_eq!(
            run("{{index .Config.Env 5}}"),
            r#"ERR template: :1:2: executing "" at <index .Config.Env 5>: error calling index: index out of range: 5"#
        );
        assert_eq!(
            run("{{lower .State.Pid}}"),
            r#"ERR template: :1:14: executing "" at <.State.Pid>: wrong type for value; expected string; got int"#
        );
        assert_eq!(
            run("{{.Names \"x\"}}"),
            r#"ERR template: :1:2: executing "" at <.Names>: Names is not a method but has arguments"#
        );
        assert_eq!(
            run("a\n {{range .Names}}{{end}}"),
            r#"ERR template: :2:9: executing "" at <.Names>: range can't iterate over web"#
        );
        assert!(run("{{\"a\" | \"b\"}}").starts_with("ERR template: :1: non executable"));
        assert_eq!(
            run("{{printf \"%s\" .Config.Labels.app | printf \"%s %s\" \"long-argument-text\"}}"),
            "long-argument-text shop"
        );
    }

    #[test]
    fn partial_output_on_error() {
        let t = Template::parse("a{{.X.Y}}b").unwrap_or_else(|e| panic!("{e}"));
        let (out, err) = t.execute_partial(&json!({"X": "s"}), &Options::default());
        assert_eq!(out, "a");
        assert!(err.is_some());
    }

    #[test]
    fn header_mode() {
        let header = json!({"ID": "CONTAINER ID", "Names": "NAMES"});
        let opts = Options {
            header: true,
            ..Options::default()
        };
        let t =
            Template::parse("{{.ID | lower}}\t{{join .Names \",\"}}\t{{.Label \"com.x.my-key\"}}")
                .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            t.execute_with(&header, &opts).as_deref(),
            Ok("CONTAINER ID\tNAMES\tmy key")
        );
    }
}
