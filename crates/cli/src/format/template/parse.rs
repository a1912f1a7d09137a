//! Parser for the Go `text/template` subset: turns lexer tokens into a tree.
//!
//! Mirrors the structure of Go's `text/template/parse` (`itemList`, `action`, `pipeline`,
//! `command`, `operand`, `term`) so that errors come out with the same wording and in the same
//! order: `unexpected "}" in operand`, `function "x" not defined`, `undefined variable "$x"`,
//! `missing value for if`, `unexpected EOF`... `define`, `template` and `block` are not supported
//! (docker formats never use them).

use super::lex::{lex, Item, Keyword, Tok};
use super::TemplateError;

/// Where a node starts: byte offset and 1-based line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pos {
    pub(crate) offset: usize,
    pub(crate) line: usize,
}

#[derive(Debug, Clone)]
pub(crate) enum Node {
    Text(String),
    Action(Pipe),
    If(Branch),
    With(Branch),
    Range(Branch),
    Break,
    Continue,
}

/// The shared shape of `if`, `with` and `range`.
#[derive(Debug, Clone)]
pub(crate) struct Branch {
    pub(crate) pipe: Pipe,
    pub(crate) list: Vec<Node>,
    pub(crate) else_list: Option<Vec<Node>>,
}

#[derive(Debug, Clone)]
pub(crate) struct Pipe {
    pub(crate) decl: Vec<String>,
    pub(crate) is_assign: bool,
    pub(crate) cmds: Vec<Cmd>,
}

#[derive(Debug, Clone)]
pub(crate) struct Cmd {
    pub(crate) args: Vec<Arg>,
    pub(crate) pos: Pos,
    pub(crate) src: String,
}

#[derive(Debug, Clone)]
pub(crate) struct Arg {
    pub(crate) kind: ArgKind,
    pub(crate) pos: Pos,
    pub(crate) src: String,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Num {
    Int(i64),
    Float(f64),
}

#[derive(Debug, Clone)]
pub(crate) enum ArgKind {
    /// `.A.B.C`
    Field(Vec<String>),
    /// `$x.A.B`: the variable name and any fields.
    Variable(String, Vec<String>),
    Dot,
    Nil,
    Bool(bool),
    Number(Num),
    Str(String),
    /// A function name.
    Ident(String),
    /// `(pipeline).A.B` or similar: a term followed by fields.
    Chain(Box<Arg>, Vec<String>),
    /// A parenthesized pipeline.
    Pipe(Box<Pipe>),
}

/// Functions known to the parser; anything else is `function "x" not defined`.
pub(crate) const FUNCTIONS: &[&str] = &[
    "and", "eq", "ge", "gt", "html", "index", "js", "le", "len", "lt", "ne", "not", "or", "print",
    "printf", "println", "slice", "urlquery", "json", "split", "join", "title", "lower", "upper",
    "pad", "truncate",
];

/// What ended an item list.
enum Stop {
    Eof,
    End,
    /// `{{else}}`, or `{{else if ...}}` / `{{else with ...}}` with the keyword not yet consumed.
    Else(Option<Keyword>),
}

pub(crate) fn parse(src: &str) -> Result<Vec<Node>, TemplateError> {
    let mut p = Parser {
        src,
        items: lex(src),
        idx: 0,
        vars: vec!["$".to_string()],
        range_depth: 0,
        last_line: 1,
    };
    let (list, stop) = p.item_list()?;
    match stop {
        Stop::Eof => Ok(list),
        Stop::End => Err(p.error("unexpected {{end}}")),
        Stop::Else(_) => Err(p.error("unexpected {{else}}")),
    }
}

struct Parser<'a> {
    src: &'a str,
    items: Vec<Item>,
    idx: usize,
    vars: Vec<String>,
    range_depth: usize,
    last_line: usize,
}

impl Parser<'_> {
    fn error(&self, message: impl Into<String>) -> TemplateError {
        TemplateError::Parse {
            line: self.last_line,
            message: message.into(),
        }
    }

    fn item(&self, idx: usize) -> &Item {
        let last = self.items.len().saturating_sub(1);
        &self.items[idx.min(last)]
    }

    fn next(&mut self) -> Item {
        let it = self.item(self.idx).clone();
        if self.idx < self.items.len() {
            self.idx += 1;
        }
        self.last_line = it.line;
        it
    }

    fn backup(&mut self) {
        self.idx = self.idx.saturating_sub(1);
    }

    fn peek(&self) -> &Item {
        self.item(self.idx)
    }

    fn next_non_space(&mut self) -> Item {
        loop {
            let it = self.next();
            if it.tok != Tok::Space {
                return it;
            }
        }
    }

    fn peek_non_space(&mut self) -> Item {
        let it = self.next_non_space();
        self.backup();
        it
    }

    fn unexpected(&self, item: &Item, context: &str) -> TemplateError {
        if let Tok::Error(msg) = &item.tok {
            return self.error(msg.clone());
        }
        self.error(format!("unexpected {} in {context}", item.describe()))
    }

    fn expect_right_delim(&mut self, context: &str) -> Result<(), TemplateError> {
        let it = self.next_non_space();
        if it.tok != Tok::RightDelim {
            return Err(self.unexpected(&it, context));
        }
        Ok(())
    }

    fn pos_of(item: &Item) -> Pos {
        Pos {
            offset: item.pos,
            line: item.line,
        }
    }

    fn src_between(&self, start: usize) -> String {
        let end = self.item(self.idx).pos.max(start);
        self.src
            .get(start..end)
            .unwrap_or("")
            .trim_end()
            .to_string()
    }

    fn item_list(&mut self) -> Result<(Vec<Node>, Stop), TemplateError> {
        let mut list = Vec::new();
        loop {
            let it = self.next();
            match it.tok {
                Tok::Eof => return Ok((list, Stop::Eof)),
                Tok::Error(msg) => return Err(self.error(msg)),
                Tok::Text(t) => list.push(Node::Text(t)),
                Tok::LeftDelim => match self.action()? {
                    Ok(node) => list.push(node),
                    Err(stop) => return Ok((list, stop)),
                },
                _ => return Err(self.unexpected(&it, "input")),
            }
        }
    }

    /// Parses one action; `Err(stop)` reports an `{{end}}` or `{{else}}`.
    fn action(&mut self) -> Result<Result<Node, Stop>, TemplateError> {
        let it = self.next_non_space();
        match it.tok {
            Tok::Keyword(Keyword::Else) => {
                let peek = self.peek_non_space();
                if let Tok::Keyword(k @ (Keyword::If | Keyword::With)) = peek.tok {
                    return Ok(Err(Stop::Else(Some(k))));
                }
                self.expect_right_delim("else")?;
                Ok(Err(Stop::Else(None)))
            }
            Tok::Keyword(Keyword::End) => {
                self.expect_right_delim("end")?;
                Ok(Err(Stop::End))
            }
            Tok::Keyword(Keyword::If) => Ok(Ok(Node::If(self.control("if")?))),
            Tok::Keyword(Keyword::With) => Ok(Ok(Node::With(self.control("with")?))),
            Tok::Keyword(Keyword::Range) => Ok(Ok(Node::Range(self.control("range")?))),
            Tok::Keyword(k @ (Keyword::Break | Keyword::Continue)) => {
                self.expect_right_delim(k.name())?;
                if self.range_depth == 0 {
                    return Err(self.error(format!("{{{{{}}}}} outside {{{{range}}}}", k.name())));
                }
                Ok(Ok(if k == Keyword::Break {
                    Node::Break
                } else {
                    Node::Continue
                }))
            }
            Tok::Keyword(k @ (Keyword::Define | Keyword::Template | Keyword::Block)) => {
                Err(self.error(format!("{{{{{}}}}} is not supported", k.name())))
            }
            _ => {
                self.backup();
                Ok(Ok(Node::Action(self.pipeline("command", true)?)))
            }
        }
    }

    fn control(&mut self, context: &str) -> Result<Branch, TemplateError> {
        let mark = self.vars.len();
        let result = self.control_inner(context);
        self.vars.truncate(mark);
        result
    }

    fn control_inner(&mut self, context: &str) -> Result<Branch, TemplateError> {
        let pipe = self.pipeline(context, true)?;
        if context == "range" {
            self.range_depth += 1;
        }
        let body = self.item_list();
        if context == "range" {
            self.range_depth -= 1;
        }
        let (list, stop) = body?;
        let else_list = match stop {
            Stop::End => None,
            Stop::Eof => return Err(self.error("unexpected EOF")),
            Stop::Else(Some(k))
                if (k == Keyword::If && context == "if")
                    || (k == Keyword::With && context == "with") =>
            {
                self.next_non_space();
                // The chained control consumes the single shared {{end}}.
                Some(vec![if k == Keyword::If {
                    Node::If(self.control("if")?)
                } else {
                    Node::With(self.control("with")?)
                }])
            }
            Stop::Else(Some(_)) => {
                // "{{else if}}" inside a range or "{{else with}}" inside an if: Go's error.
                let it = self.next_non_space();
                return Err(self.unexpected(&it, "input"));
            }
            Stop::Else(None) => {
                let (else_list, stop) = self.item_list()?;
                match stop {
                    Stop::End => Some(else_list),
                    Stop::Eof => return Err(self.error("unexpected EOF")),
                    Stop::Else(_) => return Err(self.error("expected end; found {{else}}")),
                }
            }
        };
        Ok(Branch {
            pipe,
            list,
            else_list,
        })
    }

    /// Parses a pipeline up to the closing delimiter (`delim`) or a right paren.
    fn pipeline(&mut self, context: &str, delim: bool) -> Result<Pipe, TemplateError> {
        let mut pipe = Pipe {
            decl: Vec::new(),
            is_assign: false,
            cmds: Vec::new(),
        };
        loop {
            let v = self.peek_non_space();
            let Tok::Variable(name) = &v.tok else { break };
            let name = name.clone();
            let save = self.idx;
            self.next_non_space();
            let next = self.peek_non_space();
            match next.tok {
                Tok::Assign | Tok::Declare => {
                    pipe.is_assign = next.tok == Tok::Assign;
                    self.next_non_space();
                    if pipe.is_assign && !self.vars.contains(&name) {
                        return Err(self.error(format!("undefined variable {}", quote(&name))));
                    }
                    pipe.decl.push(name.clone());
                    self.vars.push(name);
                    break;
                }
                Tok::Char(',') => {
                    self.next_non_space();
                    pipe.decl.push(name.clone());
                    self.vars.push(name);
                    if context == "range" && pipe.decl.len() < 2 {
                        match self.peek_non_space().tok {
                            Tok::Variable(_) | Tok::RightDelim | Tok::RightParen => continue,
                            _ => return Err(self.error("range can only initialize variables")),
                        }
                    }
                    return Err(self.error(format!("too many declarations in {context}")));
                }
                _ => {
                    self.idx = save;
                    break;
                }
            }
        }
        loop {
            let it = self.next_non_space();
            match it.tok {
                Tok::RightDelim if delim => break,
                Tok::RightParen if !delim => break,
                Tok::Bool(_)
                | Tok::CharConst(_)
                | Tok::Dot
                | Tok::Field(_)
                | Tok::Identifier(_)
                | Tok::Number(_)
                | Tok::Nil
                | Tok::Str(_)
                | Tok::Variable(_)
                | Tok::LeftParen => {
                    self.backup();
                    let cmd = self.command()?;
                    pipe.cmds.push(cmd);
                }
                _ => return Err(self.unexpected(&it, context)),
            }
        }
        if pipe.cmds.is_empty() {
            return Err(self.error(format!("missing value for {context}")));
        }
        for (i, cmd) in pipe.cmds.iter().enumerate().skip(1) {
            if let Some(first) = cmd.args.first() {
                if matches!(
                    first.kind,
                    ArgKind::Bool(_)
                        | ArgKind::Dot
                        | ArgKind::Nil
                        | ArgKind::Number(_)
                        | ArgKind::Str(_)
                ) {
                    return Err(self.error(format!(
                        "non executable command in pipeline stage {}",
                        i + 1
                    )));
                }
            }
        }
        Ok(pipe)
    }

    fn command(&mut self) -> Result<Cmd, TemplateError> {
        let first = self.peek_non_space();
        let start = first.pos;
        let pos = Self::pos_of(&first);
        let mut args = Vec::new();
        let mut end = start;
        loop {
            self.peek_non_space();
            if let Some(arg) = self.operand()? {
                args.push(arg);
                end = self.peek().pos;
            }
            let it = self.next();
            match it.tok {
                Tok::Space => continue,
                Tok::RightDelim | Tok::RightParen => self.backup(),
                Tok::Pipe => {}
                _ => return Err(self.unexpected(&it, "operand")),
            }
            break;
        }
        if args.is_empty() {
            return Err(self.error("empty command"));
        }
        let src = self
            .src
            .get(start..end)
            .unwrap_or("")
            .trim_end()
            .to_string();
        Ok(Cmd { args, pos, src })
    }

    fn operand(&mut self) -> Result<Option<Arg>, TemplateError> {
        let Some(term) = self.term()? else {
            return Ok(None);
        };
        if !matches!(self.peek().tok, Tok::Field(_)) {
            return Ok(Some(term));
        }
        // Go positions a chain at its first chained field, not at the term.
        let chain_pos = Self::pos_of(self.peek());
        let mut fields = Vec::new();
        while let Tok::Field(f) = &self.peek().tok {
            fields.push(f.clone());
            self.next();
        }
        let src = format!("{}.{}", term.src, fields.join("."));
        let kind = match term.kind {
            ArgKind::Field(mut base) => {
                base.extend(fields);
                ArgKind::Field(base)
            }
            ArgKind::Variable(name, mut base) => {
                base.extend(fields);
                ArgKind::Variable(name, base)
            }
            ArgKind::Bool(_)
            | ArgKind::Str(_)
            | ArgKind::Number(_)
            | ArgKind::Nil
            | ArgKind::Dot => {
                return Err(self.error(format!("unexpected . after term {}", quote(&term.src))));
            }
            _ => ArgKind::Chain(Box::new(term.clone()), fields),
        };
        Ok(Some(Arg {
            kind,
            pos: chain_pos,
            src,
        }))
    }

    fn term(&mut self) -> Result<Option<Arg>, TemplateError> {
        let it = self.next_non_space();
        let pos = Self::pos_of(&it);
        let kind = match &it.tok {
            Tok::Identifier(name) => {
                if !FUNCTIONS.contains(&name.as_str()) {
                    return Err(self.error(format!("function {} not defined", quote(name))));
                }
                ArgKind::Ident(name.clone())
            }
            Tok::Dot => ArgKind::Dot,
            Tok::Nil => ArgKind::Nil,
            Tok::Variable(name) => {
                if !self.vars.contains(name) {
                    return Err(self.error(format!("undefined variable {}", quote(name))));
                }
                ArgKind::Variable(name.clone(), Vec::new())
            }
            Tok::Field(name) => ArgKind::Field(vec![name.clone()]),
            Tok::Bool(b) => ArgKind::Bool(*b),
            Tok::CharConst(c) => ArgKind::Number(Num::Int(i64::from(u32::from(*c)))),
            Tok::Number(text) => ArgKind::Number(self.number(text)?),
            Tok::Str(s) => ArgKind::Str(s.clone()),
            Tok::LeftParen => {
                let pipe = self.pipeline("parenthesized pipeline", false)?;
                let src = self.src_between(it.pos);
                return Ok(Some(Arg {
                    kind: ArgKind::Pipe(Box::new(pipe)),
                    pos,
                    src,
                }));
            }
            _ => {
                self.backup();
                return Ok(None);
            }
        };
        Ok(Some(Arg {
            kind,
            pos,
            src: it.raw.clone(),
        }))
    }

    fn number(&self, text: &str) -> Result<Num, TemplateError> {
        let clean = text.replace('_', "");
        let (neg, body) = match clean.strip_prefix('-') {
            Some(b) => (true, b),
            None => (false, clean.strip_prefix('+').unwrap_or(&clean)),
        };
        let hex = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X"));
        let int = match hex {
            Some(h) => i64::from_str_radix(h, 16).ok(),
            None => body.parse::<i64>().ok(),
        };
        if let Some(i) = int {
            return Ok(Num::Int(if neg { -i } else { i }));
        }
        match body.parse::<f64>() {
            Ok(f) if hex.is_none() && f.is_finite() => Ok(Num::Float(if neg { -f } else { f })),
            _ => Err(self.error(format!("illegal number syntax: {}", quote(text)))),
        }
    }
}

fn quote(s: &str) -> String {
    super::value::go_quote(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(src: &str) -> String {
        match parse(src) {
            Ok(_) => "ok".to_string(),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn go_parse_errors() {
        assert_eq!(err("{{.ID }"), r#"template: :1: unexpected "}" in operand"#);
        assert_eq!(err("{{.ID}"), "template: :1: bad character U+007D '}'");
        assert_eq!(err("{{json .}"), "template: :1: bad character U+007D '}'");
        assert_eq!(err("{{end}}"), "template: :1: unexpected {{end}}");
        assert_eq!(err("{{else}}"), "template: :1: unexpected {{else}}");
        assert_eq!(err("{{if .X}}a"), "template: :1: unexpected EOF");
        assert_eq!(
            err("{{nosuch .X}}"),
            r#"template: :1: function "nosuch" not defined"#
        );
        assert_eq!(err("{{}}"), "template: :1: missing value for command");
        assert_eq!(err("{{if}}{{end}}"), "template: :1: missing value for if");
        assert_eq!(err("{{$x}}"), r#"template: :1: undefined variable "$x""#);
        assert_eq!(err("{{.A"), "template: :1: unclosed action");
        assert_eq!(
            err("a\n{{\"x}}"),
            "template: :2: unterminated quoted string"
        );
        assert_eq!(
            err("{{.X | 3}}"),
            "template: :1: non executable command in pipeline stage 2"
        );
        assert_eq!(
            err("{{\"a\".B}}"),
            r#"template: :1: unexpected . after term "\"a\"""#
        );
        assert_eq!(
            err("{{break}}"),
            "template: :1: {{break}} outside {{range}}"
        );
        assert_eq!(
            err("{{template \"x\"}}"),
            "template: :1: {{template}} is not supported"
        );
        assert_eq!(
            err("{{$a, $b := .X}}"),
            "template: :1: too many declarations in command"
        );
        assert_eq!(
            err("{{.A end}}"),
            "template: :1: unexpected <end> in operand"
        );
        assert_eq!(
            err("{{if .A}}{{else}}{{else}}{{end}}"),
            "template: :1: expected end; found {{else}}"
        );
    }

    #[test]
    fn variables_are_scoped_to_controls() {
        assert_eq!(
            err("{{if .A}}{{$x := 1}}{{end}}{{$x}}"),
            r#"template: :1: undefined variable "$x""#
        );
        assert_eq!(err("{{$x := 1}}{{if .A}}{{$x}}{{end}}{{$x = 2}}"), "ok");
        assert_eq!(err("{{range $i, $v := .}}{{$i}}{{$v}}{{end}}"), "ok");
        assert_eq!(
            err("{{$y = 2}}"),
            r#"template: :1: undefined variable "$y""#
        );
    }

    #[test]
    fn structure() {
        let nodes = parse("a{{if .X}}b{{else if .Y}}c{{else}}d{{end}}").unwrap_or_default();
        assert_eq!(nodes.len(), 2);
        let Node::If(b) = &nodes[1] else {
            panic!("expected if, got {:?}", nodes[1]);
        };
        let Some(else_list) = &b.else_list else {
            panic!("missing else");
        };
        assert!(matches!(else_list.as_slice(), [Node::If(inner)] if inner.else_list.is_some()));
    }

    #[test]
    fn commands_keep_their_source() {
        let nodes = parse("{{index .X 5 | printf \"%v\"}}").unwrap_or_default();
        let Some(Node::Action(pipe)) = nodes.first() else {
            panic!("expected action");
        };
        let srcs: Vec<&str> = pipe.cmds.iter().map(|c| c.src.as_str()).collect();
        assert_eq!(srcs, vec!["index .X 5", "printf \"%v\""]);
        assert!(matches!(&pipe.cmds[0].args[1].kind, ArgKind::Field(f) if f == &["X"]));
    }

    #[test]
    fn chains_and_numbers() {
        let nodes = parse("{{(.A).B.C}}{{$.X.Y}}{{-1.5}}{{0x1F}}{{'a'}}").unwrap_or_default();
        let kinds: Vec<String> = nodes
            .iter()
            .map(|n| match n {
                Node::Action(p) => format!("{:?}", p.cmds[0].args[0].kind),
                other => format!("{other:?}"),
            })
            .collect();
        assert!(kinds[0].starts_with("Chain("), "{}", kinds[0]);
        assert!(kinds[0].ends_with("[\"B\", \"C\"])"), "{}", kinds[0]);
        assert_eq!(kinds[1], r#"Variable("$", ["X", "Y"])"#);
        assert_eq!(kinds[2], "Number(Float(-1.5))");
        assert_eq!(kinds[3], "Number(Int(31))");
        assert_eq!(kinds[4], "Number(Int(97))");
    }
}
