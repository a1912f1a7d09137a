//! The Dockerfile syntax: text in, typed instructions out.
//!
//! What it handles, as Docker's frontend does: parser directives at the top (`# syntax=`, `# escape=`, `# check=`),
//! comment lines (also inside continued instructions), line continuations with the escape token, empty
//! continuation lines, heredocs on `RUN`, `COPY` and `ADD` (`<<EOF`, `<<-EOF` stripping leading tabs, `<<"EOF"`
//! and `<<'EOF'` without expansion, several per line), JSON (exec) and shell forms, instruction flags
//! (`--from=`, `--chown=`, `--mount=`...), `ENV`/`LABEL` key=value pairs and the legacy `ENV key value` form,
//! `ONBUILD` triggers and `HEALTHCHECK` options.
//!
//! Values are kept as written (quotes included): variable expansion needs the build's state, so the executor
//! does it with [`crate::shell::Lexer`]. Errors carry the file name and line.

use serde::Serialize;
use thiserror::Error;

/// A syntax error: file, line (1-based) and what is wrong.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("dockerfile parse error on line {line} ({file}): {message}")]
pub struct ParseError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dockerfile {
    /// The escape token (`\` unless `# escape=` says otherwise).
    pub escape: char,
    /// The `# syntax=` directive, if any (berth builds with its own frontend and ignores it).
    pub syntax: Option<String>,
    /// `ARG` instructions before the first `FROM` (usable in `FROM` lines).
    pub meta_args: Vec<Instruction>,
    pub stages: Vec<Stage>,
}

/// One `FROM` and the instructions up to the next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stage {
    /// The stage's position in the file.
    pub index: usize,
    /// The line of its `FROM`.
    pub line: usize,
    /// `FROM` image as written (may hold `$VAR`s from meta args).
    pub base: String,
    /// `AS name`, lower-cased as Docker does.
    pub name: Option<String>,
    /// `--platform=` as written.
    pub platform: Option<String>,
    pub instructions: Vec<Instruction>,
}

/// One instruction with where it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Instruction {
    /// First line (1-based).
    pub line: usize,
    /// Last line (continuations and heredocs included).
    pub end_line: usize,
    /// The instruction on one line, continuations joined (without heredoc bodies).
    pub original: String,
    pub kind: Kind,
}

impl Instruction {
    /// The instruction's keyword, upper case (`RUN`, `COPY`...).
    pub fn keyword(&self) -> &'static str {
        self.kind.keyword()
    }
}

/// A command in exec (JSON) or shell form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Command {
    Exec(Vec<String>),
    Shell(String),
}

/// A heredoc's body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Heredoc {
    /// The delimiter (`EOF`).
    pub name: String,
    /// The lines between the marker and the delimiter, each ending with `\n`.
    pub content: String,
    /// Unquoted delimiters expand variables in the body.
    pub expand: bool,
}

/// `RUN`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Run {
    pub command: Command,
    pub heredocs: Vec<Heredoc>,
    /// `--mount=` values as written.
    pub mounts: Vec<String>,
    /// `--network=`.
    pub network: Option<String>,
    /// `--security=`.
    pub security: Option<String>,
}

/// `COPY` and `ADD`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Copy {
    /// Sources as written; a heredoc source is `<<NAME` and its body is in `heredocs`.
    pub sources: Vec<String>,
    pub dest: String,
    pub from: Option<String>,
    pub chown: Option<String>,
    pub chmod: Option<String>,
    pub link: bool,
    pub parents: bool,
    pub exclude: Vec<String>,
    /// `ADD --checksum=`.
    pub checksum: Option<String>,
    /// `ADD --keep-git-dir`.
    pub keep_git_dir: bool,
    pub heredocs: Vec<Heredoc>,
}

/// `HEALTHCHECK`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Health {
    /// `HEALTHCHECK NONE`.
    None,
    Check {
        command: Command,
        interval: Option<String>,
        timeout: Option<String>,
        start_period: Option<String>,
        start_interval: Option<String>,
        retries: Option<String>,
    },
}

/// What an instruction says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Kind {
    Run(Run),
    Cmd(Command),
    Entrypoint(Command),
    /// `SHELL` (JSON form only).
    Shell(Vec<String>),
    /// `ENV` pairs, raw.
    Env(Vec<(String, String)>),
    /// `ARG name[=default]`, raw.
    Arg(Vec<(String, Option<String>)>),
    Label(Vec<(String, String)>),
    Expose(Vec<String>),
    Volume(Vec<String>),
    User(String),
    Workdir(String),
    StopSignal(String),
    Healthcheck(Health),
    /// `ONBUILD` and its trigger, parsed (the trigger's text is its `original`).
    Onbuild(Box<Instruction>),
    Copy(Copy),
    Add(Copy),
    Maintainer(String),
}

impl Kind {
    /// The instruction's keyword.
    pub fn keyword(&self) -> &'static str {
        match self {
            Kind::Run(_) => "RUN",
            Kind::Cmd(_) => "CMD",
            Kind::Entrypoint(_) => "ENTRYPOINT",
            Kind::Shell(_) => "SHELL",
            Kind::Env(_) => "ENV",
            Kind::Arg(_) => "ARG",
            Kind::Label(_) => "LABEL",
            Kind::Expose(_) => "EXPOSE",
            Kind::Volume(_) => "VOLUME",
            Kind::User(_) => "USER",
            Kind::Workdir(_) => "WORKDIR",
            Kind::StopSignal(_) => "STOPSIGNAL",
            Kind::Healthcheck(_) => "HEALTHCHECK",
            Kind::Onbuild(_) => "ONBUILD",
            Kind::Copy(_) => "COPY",
            Kind::Add(_) => "ADD",
            Kind::Maintainer(_) => "MAINTAINER",
        }
    }
}

const KEYWORDS: &[&str] = &[
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

/// Parses a Dockerfile's text; `file` names it in errors.
pub fn parse(text: &str, file: &str) -> Result<Dockerfile, ParseError> {
    let lines: Vec<&str> = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    let err = |line: usize, message: String| ParseError {
        file: file.to_string(),
        line,
        message,
    };
    let mut escape = '\\';
    let mut syntax = None;
    let mut i = 0;
    // Parser directives: `# key=value` lines at the very top; any other line ends them.
    let mut seen = Vec::new();
    while i < lines.len() {
        let Some((key, value)) = directive(lines[i]) else {
            break;
        };
        if seen.contains(&key) {
            return Err(err(
                i + 1,
                format!("only one {key} parser directive can be used"),
            ));
        }
        match key.as_str() {
            "escape" => {
                escape = match value.as_str() {
                    "\\" => '\\',
                    "`" => '`',
                    other => {
                        return Err(err(
                            i + 1,
                            format!("invalid escape token '{other}' does not match ` or \\"),
                        ))
                    }
                }
            }
            "syntax" => syntax = Some(value),
            _ => {}
        }
        seen.push(key);
        i += 1;
    }
    // The first line's byte-order mark is not part of the text.
    let mut raw = Vec::new();
    while i < lines.len() {
        let start = i;
        let first = lines[i].trim_start_matches('\u{feff}');
        i += 1;
        let trimmed = first.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        // Join continuation lines; comment and empty lines inside are skipped.
        let mut joined = String::new();
        let mut line = trimmed.to_string();
        loop {
            match continued(&line, escape) {
                Some(head) => {
                    joined.push_str(head);
                    let mut next = None;
                    while i < lines.len() {
                        let l = lines[i];
                        i += 1;
                        let t = l.trim_start();
                        if t.starts_with('#') || t.trim().is_empty() {
                            continue;
                        }
                        next = Some(l.to_string());
                        break;
                    }
                    match next {
                        Some(n) => line = n,
                        None => break,
                    }
                }
                None => {
                    joined.push_str(&line);
                    break;
                }
            }
        }
        let joined = joined.trim().to_string();
        let (word, rest) = split_keyword(&joined);
        let keyword = word.to_ascii_uppercase();
        if !KEYWORDS.contains(&keyword.as_str()) {
            return Err(err(start + 1, unknown_instruction(word)));
        }
        // Heredoc bodies follow the instruction.
        let mut heredocs = Vec::new();
        if matches!(keyword.as_str(), "RUN" | "COPY" | "ADD") {
            for marker in heredoc_markers(rest) {
                let mut content = String::new();
                let mut closed = false;
                while i < lines.len() {
                    let l = lines[i];
                    i += 1;
                    let l = if marker.strip_tabs {
                        l.trim_start_matches('\t')
                    } else {
                        l
                    };
                    if l == marker.name {
                        closed = true;
                        break;
                    }
                    content.push_str(l);
                    content.push('\n');
                }
                if !closed {
                    return Err(err(
                        start + 1,
                        format!(
                            "unterminated heredoc {}: no line {:?}",
                            marker.name, marker.name
                        ),
                    ));
                }
                heredocs.push(Heredoc {
                    name: marker.name,
                    content,
                    expand: marker.expand,
                });
            }
        }
        raw.push(RawInstruction {
            line: start + 1,
            end_line: i,
            keyword,
            rest: rest.to_string(),
            original: joined.clone(),
            heredocs,
        });
    }

    let mut meta_args = Vec::new();
    let mut stages: Vec<Stage> = Vec::new();
    for r in raw {
        let line = r.line;
        if r.keyword == "FROM" {
            let (flags, args) = flags(&r.rest, escape, &["platform"]).map_err(|m| err(line, m))?;
            let words = split_words(args, escape);
            let (base, name) =
                match words.as_slice() {
                    [image] => (image.clone(), None),
                    [image, as_, name] if as_.eq_ignore_ascii_case("as") => {
                        (image.clone(), Some(name.to_ascii_lowercase()))
                    }
                    _ => return Err(err(
                        line,
                        "FROM requires either one or three arguments (FROM <image> [AS <name>])"
                            .to_string(),
                    )),
                };
            if let Some(n) = &name {
                if !valid_stage_name(n) {
                    return Err(err(line, format!("invalid name for build stage: {n:?}, name can't start with a number or contain symbols")));
                }
                if stages.iter().any(|s| s.name.as_deref() == Some(n)) {
                    return Err(err(line, format!("duplicate stage name {n:?}")));
                }
            }
            stages.push(Stage {
                index: stages.len(),
                line,
                base,
                name,
                platform: flag_value(&flags, "platform"),
                instructions: Vec::new(),
            });
            continue;
        }
        let ins = instruction(r, escape, file, false)?;
        match stages.last_mut() {
            Some(stage) => stage.instructions.push(ins),
            None if matches!(ins.kind, Kind::Arg(_)) => meta_args.push(ins),
            None => {
                return Err(err(
                    line,
                    format!(
                        "{} instruction before the first FROM: no build stage in current context",
                        ins.keyword()
                    ),
                ))
            }
        }
    }
    if stages.is_empty() {
        return Err(err(1, "the Dockerfile has no FROM instruction".to_string()));
    }
    Ok(Dockerfile {
        escape,
        syntax,
        meta_args,
        stages,
    })
}

struct RawInstruction {
    line: usize,
    end_line: usize,
    keyword: String,
    rest: String,
    original: String,
    heredocs: Vec<Heredoc>,
}

fn instruction(
    r: RawInstruction,
    escape: char,
    file: &str,
    in_onbuild: bool,
) -> Result<Instruction, ParseError> {
    let err = |message: String| ParseError {
        file: file.to_string(),
        line: r.line,
        message,
    };
    let rest = r.rest.as_str();
    let kw = r.keyword.as_str();
    let need_args = |rest: &str| {
        if rest.trim().is_empty() {
            Err(err(format!("{kw} requires at least one argument")))
        } else {
            Ok(())
        }
    };
    let no_flags = |rest: &str| -> Result<(), ParseError> {
        if let Some(f) = leading_flag(rest) {
            return Err(err(format!("unknown flag: {f}")));
        }
        Ok(())
    };
    let kind = match kw {
        "RUN" => {
            let (flags, args) =
                flags(rest, escape, &["mount", "network", "security"]).map_err(err)?;
            need_args(args)?;
            Kind::Run(Run {
                command: command(args),
                heredocs: r.heredocs.clone(),
                mounts: flag_values(&flags, "mount"),
                network: flag_value(&flags, "network"),
                security: flag_value(&flags, "security"),
            })
        }
        "CMD" | "ENTRYPOINT" => {
            no_flags(rest)?;
            let c = command(rest);
            if kw == "CMD" {
                Kind::Cmd(c)
            } else {
                Kind::Entrypoint(c)
            }
        }
        "SHELL" => match json_array(rest) {
            Some(v) if !v.is_empty() => Kind::Shell(v),
            _ => return Err(err("SHELL requires the arguments to be in JSON form".into())),
        },
        "ENV" | "LABEL" => {
            need_args(rest)?;
            let pairs = name_values(kw, rest, escape).map_err(err)?;
            if kw == "ENV" {
                Kind::Env(pairs)
            } else {
                Kind::Label(pairs)
            }
        }
        "ARG" => {
            need_args(rest)?;
            let mut args = Vec::new();
            for w in split_words(rest, escape) {
                match w.split_once('=') {
                    Some((k, v)) => args.push((k.to_string(), Some(v.to_string()))),
                    None => args.push((w, None)),
                }
            }
            for (k, _) in &args {
                if k.is_empty() {
                    return Err(err("ARG names can not be blank".into()));
                }
            }
            Kind::Arg(args)
        }
        "EXPOSE" => {
            need_args(rest)?;
            Kind::Expose(split_words(rest, escape))
        }
        "VOLUME" => {
            need_args(rest)?;
            let v = json_array(rest).unwrap_or_else(|| split_words(rest, escape));
            if v.iter().any(|s| s.trim().is_empty()) {
                return Err(err("VOLUME specified can not be an empty string".into()));
            }
            Kind::Volume(v)
        }
        "USER" | "WORKDIR" | "STOPSIGNAL" | "MAINTAINER" => {
            need_args(rest)?;
            let v = rest.trim().to_string();
            if kw != "MAINTAINER" && split_words(&v, escape).len() != 1 {
                return Err(err(format!("{kw} requires exactly one argument")));
            }
            match kw {
                "USER" => Kind::User(v),
                "WORKDIR" => Kind::Workdir(v),
                "STOPSIGNAL" => Kind::StopSignal(v),
                _ => Kind::Maintainer(v),
            }
        }
        "HEALTHCHECK" => {
            let (flags, args) = flags(
                rest,
                escape,
                &[
                    "interval",
                    "timeout",
                    "start-period",
                    "start-interval",
                    "retries",
                ],
            )
            .map_err(err)?;
            let (word, cmd) = split_keyword(args);
            match word.to_ascii_uppercase().as_str() {
                "NONE" => {
                    if !cmd.trim().is_empty() || !flags.is_empty() {
                        return Err(err("HEALTHCHECK NONE takes no arguments".into()));
                    }
                    Kind::Healthcheck(Health::None)
                }
                "CMD" => {
                    if cmd.trim().is_empty() {
                        return Err(err("HEALTHCHECK CMD requires a command".into()));
                    }
                    Kind::Healthcheck(Health::Check {
                        command: command(cmd),
                        interval: flag_value(&flags, "interval"),
                        timeout: flag_value(&flags, "timeout"),
                        start_period: flag_value(&flags, "start-period"),
                        start_interval: flag_value(&flags, "start-interval"),
                        retries: flag_value(&flags, "retries"),
                    })
                }
                _ => {
                    return Err(err(
                        "HEALTHCHECK requires NONE or CMD followed by a command".into(),
                    ))
                }
            }
        }
        "ONBUILD" => {
            if in_onbuild {
                return Err(err(
                    "chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed".into()
                ));
            }
            need_args(rest)?;
            let (word, trigger_rest) = split_keyword(rest.trim());
            let trigger_kw = word.to_ascii_uppercase();
            match trigger_kw.as_str() {
                "ONBUILD" => {
                    return Err(err(
                        "chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed".into()
                    ))
                }
                "FROM" | "MAINTAINER" => {
                    return Err(err(format!(
                        "{trigger_kw} isn't allowed as an ONBUILD trigger"
                    )))
                }
                k if !KEYWORDS.contains(&k) => return Err(err(unknown_instruction(word))),
                _ => {}
            }
            let trigger = instruction(
                RawInstruction {
                    line: r.line,
                    end_line: r.end_line,
                    keyword: trigger_kw,
                    rest: trigger_rest.to_string(),
                    original: rest.trim().to_string(),
                    heredocs: Vec::new(),
                },
                escape,
                file,
                true,
            )?;
            Kind::Onbuild(Box::new(trigger))
        }
        "COPY" | "ADD" => {
            let allowed: &[&str] = if kw == "COPY" {
                &["from", "chown", "chmod", "link", "parents", "exclude"]
            } else {
                &[
                    "chown",
                    "chmod",
                    "link",
                    "parents",
                    "exclude",
                    "checksum",
                    "keep-git-dir",
                ]
            };
            let (flags, args) = flags(rest, escape, allowed).map_err(err)?;
            let mut words = json_array(args).unwrap_or_else(|| split_words(args, escape));
            if words.len() < 2 {
                return Err(err(format!(
                    "{kw} requires at least two arguments, but only {} provided",
                    words.len()
                )));
            }
            let dest = words.pop().unwrap_or_default();
            let c = Copy {
                sources: words,
                dest,
                from: flag_value(&flags, "from"),
                chown: flag_value(&flags, "chown"),
                chmod: flag_value(&flags, "chmod"),
                link: flag_bool(&flags, "link").map_err(err)?,
                parents: flag_bool(&flags, "parents").map_err(err)?,
                exclude: flag_values(&flags, "exclude"),
                checksum: flag_value(&flags, "checksum"),
                keep_git_dir: flag_bool(&flags, "keep-git-dir").map_err(err)?,
                heredocs: r.heredocs.clone(),
            };
            if kw == "COPY" {
                Kind::Copy(c)
            } else {
                Kind::Add(c)
            }
        }
        other => return Err(err(unknown_instruction(other))),
    };
    Ok(Instruction {
        line: r.line,
        end_line: r.end_line,
        original: r.original,
        kind,
    })
}

/// `# key=value` at the top of the file (keys are case-insensitive).
fn directive(line: &str) -> Option<(String, String)> {
    let rest = line
        .trim_start_matches('\u{feff}')
        .trim()
        .strip_prefix('#')?;
    let (k, v) = rest.split_once('=')?;
    let k = k.trim();
    if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return None;
    }
    Some((k.to_ascii_lowercase(), v.trim().to_string()))
}

/// The line without its trailing escape token when it continues on the next line.
fn continued(line: &str, escape: char) -> Option<&str> {
    let t = line.trim_end();
    let head = t.strip_suffix(escape)?;
    // An escaped escape token (`\\`) at the end does not continue the line.
    let run = head.chars().rev().take_while(|&c| c == escape).count();
    (run % 2 == 0).then_some(head)
}

fn split_keyword(s: &str) -> (&str, &str) {
    let s = s.trim_start();
    match s.find(char::is_whitespace) {
        Some(i) => (&s[..i], s[i..].trim_start()),
        None => (s, ""),
    }
}

fn unknown_instruction(word: &str) -> String {
    let upper = word.to_ascii_uppercase();
    let close = KEYWORDS
        .iter()
        .map(|k| (edit_distance(k, &upper), k))
        .filter(|(d, _)| *d <= 2 && upper.len() > 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k);
    match close {
        Some(k) => format!(
            "unknown instruction: {word} (did you mean {}?)",
            k.to_ascii_lowercase()
        ),
        None => format!("unknown instruction: {word}"),
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, &cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

fn valid_stage_name(n: &str) -> bool {
    let mut chars = n.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// The exec form when `s` is a JSON array of strings, else `None`.
fn json_array(s: &str) -> Option<Vec<String>> {
    let t = s.trim();
    if !t.starts_with('[') {
        return None;
    }
    serde_json::from_str::<Vec<String>>(t).ok()
}

fn command(s: &str) -> Command {
    match json_array(s) {
        Some(v) => Command::Exec(v),
        None => Command::Shell(s.trim().to_string()),
    }
}

/// Splits on whitespace outside quotes, keeping quotes and escapes as written (expansion removes them later).
pub fn split_words(s: &str, escape: char) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == escape {
            cur.push(c);
            if let Some(n) = chars.next() {
                cur.push(n);
            }
            in_word = true;
            continue;
        }
        match quote {
            Some(q) => {
                cur.push(c);
                if c == q {
                    quote = None;
                }
            }
            None if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            None => {
                if c == '"' || c == '\'' {
                    quote = Some(c);
                }
                cur.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    words
}

/// `ENV`/`LABEL` arguments: `k=v k2="v 2"` pairs, or the legacy `ENV key the value` (one pair).
fn name_values(kw: &str, rest: &str, escape: char) -> Result<Vec<(String, String)>, String> {
    let words = split_words(rest, escape);
    let Some(first) = words.first() else {
        return Err(format!("{kw} requires at least one argument"));
    };
    if !first.contains('=') {
        // Legacy form: the first word is the key, the rest of the line the value.
        let (key, value) = split_keyword(rest);
        if value.is_empty() {
            return Err(format!("{kw} must have two arguments"));
        }
        return Ok(vec![(key.to_string(), value.to_string())]);
    }
    let mut pairs = Vec::new();
    for w in words {
        match w.split_once('=') {
            Some(("", _)) => {
                return Err(format!("{kw} names can not be blank"));
            }
            Some((k, v)) => pairs.push((k.to_string(), v.to_string())),
            None => {
                return Err(format!(
                    "Syntax error - can't find = in {w:?}. Must be of the form: name=value"
                ))
            }
        }
    }
    Ok(pairs)
}

/// A parsed `--name[=value]` flag.
type Flag = (String, Option<String>);

fn leading_flag(rest: &str) -> Option<String> {
    let w = split_words(rest, '\\').into_iter().next()?;
    w.starts_with("--").then_some(w)
}

/// Leading `--flag[=value]` words; returns them and the rest of the arguments.
fn flags<'a>(
    rest: &'a str,
    escape: char,
    allowed: &[&str],
) -> Result<(Vec<Flag>, &'a str), String> {
    let mut out = Vec::new();
    let mut s = rest.trim_start();
    while s.starts_with("--") {
        let end = word_end(s, escape);
        let word = &s[..end];
        if word == "--" {
            s = s[end..].trim_start();
            break;
        }
        let body = &word[2..];
        let (name, value) = match body.split_once('=') {
            Some((n, v)) => (n.to_string(), Some(unquote(v))),
            None => (body.to_string(), None),
        };
        if !allowed.contains(&name.as_str()) {
            return Err(format!("unknown flag: {name}"));
        }
        out.push((name, value));
        s = s[end..].trim_start();
    }
    Ok((out, s))
}

/// Byte index where the word at the start of `s` ends (quotes and escapes respected).
fn word_end(s: &str, escape: char) -> usize {
    let mut quote: Option<char> = None;
    let mut it = s.char_indices();
    while let Some((i, c)) = it.next() {
        if c == escape {
            it.next();
            continue;
        }
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c.is_whitespace() => return i,
            None if c == '"' || c == '\'' => quote = Some(c),
            None => {}
        }
    }
    s.len()
}

/// A flag value's surrounding quotes removed (`--chown="a b"`).
fn unquote(v: &str) -> String {
    for q in ['"', '\''] {
        if v.len() >= 2 && v.starts_with(q) && v.ends_with(q) {
            return v[1..v.len() - 1].to_string();
        }
    }
    v.to_string()
}

fn flag_value(flags: &[Flag], name: &str) -> Option<String> {
    flags
        .iter()
        .rev()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.clone().unwrap_or_default())
}

fn flag_values(flags: &[Flag], name: &str) -> Vec<String> {
    flags
        .iter()
        .filter(|(n, _)| n == name)
        .map(|(_, v)| v.clone().unwrap_or_default())
        .collect()
}

fn flag_bool(flags: &[Flag], name: &str) -> Result<bool, String> {
    match flags.iter().rev().find(|(n, _)| n == name) {
        None => Ok(false),
        Some((_, None)) => Ok(true),
        Some((_, Some(v))) => match v.as_str() {
            "true" | "1" => Ok(true),
            "false" | "0" => Ok(false),
            other => Err(format!(
                "expecting boolean value for flag {name}, not: {other}"
            )),
        },
    }
}

struct Marker {
    name: String,
    strip_tabs: bool,
    expand: bool,
}

/// Heredoc markers (`<<EOF`, `<<-EOF`, `<<"EOF"`) on an instruction line, in order. A `<<` inside quotes
/// is not a marker; the name must be a shell word.
fn heredoc_markers(rest: &str) -> Vec<Marker> {
    let mut out = Vec::new();
    let b = rest.as_bytes();
    let mut quote: Option<u8> = None;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if let Some(q) = quote {
            if c == q {
                quote = None;
            }
            i += 1;
            continue;
        }
        if c == b'"' || c == b'\'' {
            quote = Some(c);
            i += 1;
            continue;
        }
        if c == b'<' && b.get(i + 1) == Some(&b'<') && b.get(i + 2) != Some(&b'<') {
            let mut j = i + 2;
            let strip_tabs = b.get(j) == Some(&b'-');
            if strip_tabs {
                j += 1;
            }
            let q = match b.get(j) {
                Some(&q @ (b'"' | b'\'')) => {
                    j += 1;
                    Some(q)
                }
                _ => None,
            };
            let start = j;
            while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
                j += 1;
            }
            if j > start {
                let name = rest[start..j].to_string();
                let closed = match q {
                    Some(q) if b.get(j) == Some(&q) => {
                        j += 1;
                        true
                    }
                    Some(_) => false,
                    None => true,
                };
                if closed {
                    out.push(Marker {
                        name,
                        strip_tabs,
                        expand: q.is_none(),
                    });
                }
            }
            i = j.max(i + 2);
            continue;
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests;
