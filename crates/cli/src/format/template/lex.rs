//! Lexer for the Go `text/template` subset.
//!
//! Splits a template into text and action tokens the way Go's `text/template/parse` lexer does:
//! `{{` / `}}` delimiters, `{{- ` and ` -}}` trim markers, `{{/* comments */}}`, fields (`.Name`),
//! variables (`$x`), identifiers, keywords, string/raw-string/char/number literals and the
//! punctuation `| ( ) := = ,`. Spaces inside actions are tokens too, because the parser needs them
//! to tell `.A.B` (one chain) from `.A .B` (two operands).
//!
//! Lexing errors (an unclosed action, an unterminated string...) do not stop the lexer at once:
//! they become an [`Tok::Error`] token so that the parser reports whichever problem comes first,
//! exactly like Go, whose lexer runs lazily ahead of the parser.

const LEFT: &str = "{{";
const RIGHT: &str = "}}";

/// Keywords of the template language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Keyword {
    Block,
    Break,
    Continue,
    Define,
    Else,
    End,
    If,
    Range,
    Template,
    With,
}

impl Keyword {
    fn from_word(word: &str) -> Option<Keyword> {
        Some(match word {
            "block" => Keyword::Block,
            "break" => Keyword::Break,
            "continue" => Keyword::Continue,
            "define" => Keyword::Define,
            "else" => Keyword::Else,
            "end" => Keyword::End,
            "if" => Keyword::If,
            "range" => Keyword::Range,
            "template" => Keyword::Template,
            "with" => Keyword::With,
            _ => return None,
        })
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Keyword::Block => "block",
            Keyword::Break => "break",
            Keyword::Continue => "continue",
            Keyword::Define => "define",
            Keyword::Else => "else",
            Keyword::End => "end",
            Keyword::If => "if",
            Keyword::Range => "range",
            Keyword::Template => "template",
            Keyword::With => "with",
        }
    }
}

/// One token kind.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    /// Plain text outside actions (already trimmed by trim markers).
    Text(String),
    LeftDelim,
    RightDelim,
    Space,
    /// `.Name`: the name without the dot.
    Field(String),
    Dot,
    /// `$name` or `$`, with the dollar sign.
    Variable(String),
    Identifier(String),
    Keyword(Keyword),
    Bool(bool),
    Nil,
    /// A quoted or raw string, already unquoted.
    Str(String),
    /// A number literal, as written.
    Number(String),
    /// A character constant such as `'a'`, as its code point.
    CharConst(char),
    Pipe,
    LeftParen,
    RightParen,
    Declare,
    Assign,
    /// Any other printable ASCII character inside an action (`,` among them).
    Char(char),
    /// A lexing error, with Go's message.
    Error(String),
    Eof,
}

/// A token with its byte offset and 1-based line.
#[derive(Debug, Clone)]
pub(crate) struct Item {
    pub(crate) tok: Tok,
    pub(crate) pos: usize,
    pub(crate) line: usize,
    /// The source text of the token, for error messages.
    pub(crate) raw: String,
}

impl Item {
    /// How Go's `item.String()` shows a token in "unexpected ..." errors.
    pub(crate) fn describe(&self) -> String {
        match &self.tok {
            Tok::Eof => "EOF".to_string(),
            Tok::Error(msg) => msg.clone(),
            Tok::Keyword(k) => format!("<{}>", k.name()),
            _ => {
                let chars: Vec<char> = self.raw.chars().collect();
                if chars.len() > 10 {
                    let head: String = chars[..10].iter().collect();
                    format!("{}...", super::value::go_quote(&head))
                } else {
                    super::value::go_quote(&self.raw)
                }
            }
        }
    }
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn is_alnum(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

/// Tokenizes a whole template. The last item is always [`Tok::Eof`] or [`Tok::Error`].
pub(crate) fn lex(input: &str) -> Vec<Item> {
    let mut lx = Lexer {
        input,
        pos: 0,
        start: 0,
        items: Vec::new(),
        paren_depth: 0,
    };
    lx.run();
    lx.items
}

struct Lexer<'a> {
    input: &'a str,
    pos: usize,
    start: usize,
    items: Vec<Item>,
    paren_depth: usize,
}

impl<'a> Lexer<'a> {
    fn rest(&self) -> &'a str {
        &self.input[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn line_at(&self, pos: usize) -> usize {
        1 + self.input[..pos].bytes().filter(|b| *b == b'\n').count()
    }

    fn emit(&mut self, tok: Tok) {
        let raw = self.input[self.start..self.pos].to_string();
        self.items.push(Item {
            tok,
            pos: self.start,
            line: self.line_at(self.start),
            raw,
        });
        self.start = self.pos;
    }

    fn error(&mut self, msg: String) {
        self.items.push(Item {
            tok: Tok::Error(msg),
            pos: self.start,
            line: self.line_at(self.start),
            raw: String::new(),
        });
    }

    /// Top level: text up to the next left delimiter. Returns when the input is consumed or an
    /// error was emitted.
    fn run(&mut self) {
        loop {
            let Some(off) = self.rest().find(LEFT) else {
                self.pos = self.input.len();
                if self.pos > self.start {
                    let text = self.input[self.start..self.pos].to_string();
                    self.emit(Tok::Text(text));
                }
                self.emit(Tok::Eof);
                return;
            };
            let delim_at = self.pos + off;
            let after = &self.input[delim_at + LEFT.len()..];
            let trim = has_left_trim_marker(after);
            let mut text_end = delim_at;
            if trim {
                text_end = self.input[..delim_at].trim_end_matches(is_space).len();
                text_end = text_end.max(self.start);
            }
            if text_end > self.start {
                let text = self.input[self.start..text_end].to_string();
                self.pos = text_end;
                self.emit(Tok::Text(text));
            }
            self.pos = delim_at;
            self.start = delim_at;
            if !self.left_delim(trim) {
                return;
            }
        }
    }

    /// Lexes one action, starting at its left delimiter. Returns false after an error.
    fn left_delim(&mut self, trim: bool) -> bool {
        self.pos += LEFT.len();
        if trim {
            self.pos += 2;
        }
        if self.rest().starts_with("/*") {
            return self.comment();
        }
        self.emit(Tok::LeftDelim);
        self.paren_depth = 0;
        self.inside_action()
    }

    fn comment(&mut self) -> bool {
        let Some(end) = self.rest().find("*/") else {
            self.error("unclosed comment".to_string());
            return false;
        };
        self.pos += end + 2;
        let (at, trim) = self.at_right_delim();
        if !at {
            self.error("comment ends before closing delimiter".to_string());
            return false;
        }
        self.finish_right_delim(trim, false);
        true
    }

    /// Whether the input is at a right delimiter, possibly preceded by a trim marker.
    fn at_right_delim(&self) -> (bool, bool) {
        let rest = self.rest();
        let bytes = rest.as_bytes();
        if bytes.len() >= 2
            && is_space(bytes[0] as char)
            && bytes[1] == b'-'
            && rest[2..].starts_with(RIGHT)
        {
            return (true, true);
        }
        (rest.starts_with(RIGHT), false)
    }

    fn finish_right_delim(&mut self, trim: bool, emit: bool) {
        if trim {
            self.pos += 2;
        }
        self.pos += RIGHT.len();
        if emit {
            self.emit(Tok::RightDelim);
        }
        if trim {
            let skipped = self.rest().len() - self.rest().trim_start_matches(is_space).len();
            self.pos += skipped;
        }
        self.start = self.pos;
    }

    fn inside_action(&mut self) -> bool {
        loop {
            let (at, trim) = self.at_right_delim();
            if at {
                if self.paren_depth > 0 {
                    self.error("unclosed left paren".to_string());
                    return false;
                }
                self.finish_right_delim(trim, true);
                return true;
            }
            let Some(c) = self.peek() else {
                self.error("unclosed action".to_string());
                return false;
            };
            let ok = match c {
                c if is_space(c) => {
                    let n = self.rest().len() - self.rest().trim_start_matches(is_space).len();
                    self.pos += n;
                    // A space that begins a trim marker belongs to the delimiter.
                    if self.rest().starts_with("-}}") {
                        self.pos -= 1;
                    }
                    if self.pos > self.start {
                        self.emit(Tok::Space);
                    }
                    true
                }
                '=' => self.single(Tok::Assign),
                ':' => {
                    if self.rest().starts_with(":=") {
                        self.pos += 2;
                        self.emit(Tok::Declare);
                        true
                    } else {
                        self.error("expected :=".to_string());
                        false
                    }
                }
                '|' => self.single(Tok::Pipe),
                '"' => self.quote(),
                '`' => self.raw_quote(),
                '\'' => self.char_const(),
                '$' => self.field_or_variable('$'),
                '.' => {
                    let next = self.rest()[1..].chars().next();
                    if next.is_some_and(|n| n.is_ascii_digit()) {
                        self.number()
                    } else {
                        self.field_or_variable('.')
                    }
                }
                '+' | '-' | '0'..='9' => self.number(),
                c if c == '_' || c.is_alphabetic() => self.identifier(),
                '(' => {
                    self.paren_depth += 1;
                    self.single(Tok::LeftParen)
                }
                ')' => {
                    if self.paren_depth == 0 {
                        self.pos += 1;
                        self.error("unexpected right paren".to_string());
                        return false;
                    }
                    self.paren_depth -= 1;
                    self.single(Tok::RightParen)
                }
                c if c.is_ascii() && !c.is_ascii_control() => self.single(Tok::Char(c)),
                c => {
                    self.error(format!("bad character U+{:04X} '{}'", c as u32, c));
                    false
                }
            };
            if !ok {
                return false;
            }
        }
    }

    fn single(&mut self, tok: Tok) -> bool {
        let c = self.peek().map_or(1, char::len_utf8);
        self.pos += c;
        self.emit(tok);
        true
    }

    fn at_terminator(&self) -> bool {
        let Some(c) = self.peek() else { return true };
        if is_space(c) || matches!(c, '.' | ',' | '|' | ':' | ')' | '(') {
            return true;
        }
        self.rest().starts_with(RIGHT)
    }

    fn bad_char_here(&mut self) -> bool {
        let c = self.peek().unwrap_or(' ');
        self.error(format!("bad character U+{:04X} '{}'", c as u32, c));
        false
    }

    fn identifier(&mut self) -> bool {
        let n = self.rest().len() - self.rest().trim_start_matches(is_alnum).len();
        self.pos += n;
        if !self.at_terminator() {
            return self.bad_char_here();
        }
        let word = &self.input[self.start..self.pos];
        let tok = match word {
            "true" => Tok::Bool(true),
            "false" => Tok::Bool(false),
            "nil" => Tok::Nil,
            w => match Keyword::from_word(w) {
                Some(k) => Tok::Keyword(k),
                None => Tok::Identifier(w.to_string()),
            },
        };
        self.emit(tok);
        true
    }

    fn field_or_variable(&mut self, lead: char) -> bool {
        self.pos += 1;
        if self.at_terminator() {
            self.emit(if lead == '.' {
                Tok::Dot
            } else {
                Tok::Variable("$".to_string())
            });
            return true;
        }
        let n = self.rest().len() - self.rest().trim_start_matches(is_alnum).len();
        self.pos += n;
        if !self.at_terminator() {
            return self.bad_char_here();
        }
        let text = &self.input[self.start..self.pos];
        let tok = if lead == '.' {
            Tok::Field(text[1..].to_string())
        } else {
            Tok::Variable(text.to_string())
        };
        self.emit(tok);
        true
    }

    fn quote(&mut self) -> bool {
        let body_start = self.pos + 1;
        let mut chars = self.input[body_start..].char_indices();
        loop {
            match chars.next() {
                Some((_, '\\')) => match chars.next() {
                    Some((_, '\n')) | None => break,
                    Some(_) => {}
                },
                Some((_, '\n')) | None => break,
                Some((i, '"')) => {
                    self.pos = body_start + i + 1;
                    let raw = &self.input[body_start..body_start + i];
                    return match unquote(raw) {
                        Ok(s) => {
                            self.emit(Tok::Str(s));
                            true
                        }
                        Err(msg) => {
                            self.error(msg);
                            false
                        }
                    };
                }
                Some(_) => {}
            }
        }
        self.error("unterminated quoted string".to_string());
        false
    }

    fn raw_quote(&mut self) -> bool {
        let body_start = self.pos + 1;
        match self.input[body_start..].find('`') {
            Some(end) => {
                let text = self.input[body_start..body_start + end].replace('\r', "");
                self.pos = body_start + end + 1;
                self.emit(Tok::Str(text));
                true
            }
            None => {
                self.error("unterminated raw quoted string".to_string());
                false
            }
        }
    }

    fn char_const(&mut self) -> bool {
        let body_start = self.pos + 1;
        let mut chars = self.input[body_start..].char_indices();
        loop {
            match chars.next() {
                Some((_, '\\')) => match chars.next() {
                    Some((_, '\n')) | None => break,
                    Some(_) => {}
                },
                Some((_, '\n')) | None => break,
                Some((i, '\'')) => {
                    self.pos = body_start + i + 1;
                    let raw = &self.input[body_start..body_start + i];
                    let decoded = unquote(raw).ok().filter(|s| s.chars().count() == 1);
                    return match decoded.and_then(|s| s.chars().next()) {
                        Some(c) => {
                            self.emit(Tok::CharConst(c));
                            true
                        }
                        None => {
                            self.error(format!("malformed character constant: '{raw}'"));
                            false
                        }
                    };
                }
                Some(_) => {}
            }
        }
        self.error("unterminated character constant".to_string());
        false
    }

    fn number(&mut self) -> bool {
        let rest = self.rest();
        let bytes = rest.as_bytes();
        let mut i = 0;
        if i < bytes.len() && (bytes[i] == b'+' || bytes[i] == b'-') {
            i += 1;
        }
        let is_hex = rest[i..].starts_with("0x") || rest[i..].starts_with("0X");
        if is_hex {
            i += 2;
            while i < bytes.len() && (bytes[i].is_ascii_hexdigit() || bytes[i] == b'_') {
                i += 1;
            }
        } else {
            while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'_') {
                i += 1;
            }
            if i < bytes.len() && bytes[i] == b'.' {
                i += 1;
                while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'_') {
                    i += 1;
                }
            }
            if i < bytes.len() && (bytes[i] == b'e' || bytes[i] == b'E') {
                i += 1;
                if i < bytes.len() && (bytes[i] == b'+' || bytes[i] == b'-') {
                    i += 1;
                }
                while i < bytes.len() && bytes[i].is_ascii_digit() {
                    i += 1;
                }
            }
        }
        self.pos += i;
        if self.peek().is_some_and(is_alnum) {
            let n = self.rest().len() - self.rest().trim_start_matches(is_alnum).len();
            self.pos += n;
            let text = self.input[self.start..self.pos].to_string();
            self.error(format!(
                "bad number syntax: {}",
                super::value::go_quote(&text)
            ));
            return false;
        }
        let text = self.input[self.start..self.pos].to_string();
        self.emit(Tok::Number(text));
        true
    }
}

fn has_left_trim_marker(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 2 && b[0] == b'-' && is_space(b[1] as char)
}

/// Decodes the body of a Go double-quoted string (without the quotes).
pub(crate) fn unquote(body: &str) -> Result<String, String> {
    let mut out = String::with_capacity(body.len());
    let mut chars = body.chars();
    let invalid = || "invalid syntax".to_string();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let esc = chars.next().ok_or_else(invalid)?;
        match esc {
            'a' => out.push('\u{7}'),
            'b' => out.push('\u{8}'),
            'f' => out.push('\u{c}'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'v' => out.push('\u{b}'),
            '\\' => out.push('\\'),
            '"' => out.push('"'),
            '\'' => out.push('\''),
            'x' | 'u' | 'U' => {
                let n = match esc {
                    'x' => 2,
                    'u' => 4,
                    _ => 8,
                };
                let hex: String = chars.by_ref().take(n).collect();
                if hex.len() != n {
                    return Err(invalid());
                }
                let code = u32::from_str_radix(&hex, 16).map_err(|_| invalid())?;
                out.push(char::from_u32(code).ok_or_else(invalid)?);
            }
            '0'..='7' => {
                let rest: String = chars.by_ref().take(2).collect();
                let oct = format!("{esc}{rest}");
                let code = u32::from_str_radix(&oct, 8).map_err(|_| invalid())?;
                if oct.len() != 3 || code > 255 {
                    return Err(invalid());
                }
                out.push(char::from_u32(code).ok_or_else(invalid)?);
            }
            _ => return Err(invalid()),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        lex(s).into_iter().map(|i| i.tok).collect()
    }

    #[test]
    fn text_and_fields() {
        assert_eq!(
            toks("a {{.ID}} b"),
            vec![
                Tok::Text("a ".into()),
                Tok::LeftDelim,
                Tok::Field("ID".into()),
                Tok::RightDelim,
                Tok::Text(" b".into()),
                Tok::Eof
            ]
        );
    }

    #[test]
    fn chained_fields_have_no_space_between() {
        assert_eq!(
            toks("{{.State.Status $x.Y}}"),
            vec![
                Tok::LeftDelim,
                Tok::Field("State".into()),
                Tok::Field("Status".into()),
                Tok::Space,
                Tok::Variable("$x".into()),
                Tok::Field("Y".into()),
                Tok::RightDelim,
                Tok::Eof
            ]
        );
    }

    #[test]
    fn trim_markers_eat_whitespace() {
        assert_eq!(
            toks("a  \n{{- .X -}}\n  b"),
            vec![
                Tok::Text("a".into()),
                Tok::LeftDelim,
                Tok::Field("X".into()),
                Tok::RightDelim,
                Tok::Text("b".into()),
                Tok::Eof
            ]
        );
    }

    #[test]
    fn minus_number_is_not_a_trim_marker() {
        assert_eq!(
            toks("{{-3}}"),
            vec![
                Tok::LeftDelim,
                Tok::Number("-3".into()),
                Tok::RightDelim,
                Tok::Eof
            ]
        );
    }

    #[test]
    fn comments_vanish() {
        assert_eq!(
            toks("a {{- /* hi */ -}} b"),
            vec![Tok::Text("a".into()), Tok::Text("b".into()), Tok::Eof]
        );
    }

    #[test]
    fn literals_and_keywords() {
        assert_eq!(
            toks(r#"{{if eq "a\tb" `r` 'x' 1.5 true nil}}"#),
            vec![
                Tok::LeftDelim,
                Tok::Keyword(Keyword::If),
                Tok::Space,
                Tok::Identifier("eq".into()),
                Tok::Space,
                Tok::Str("a\tb".into()),
                Tok::Space,
                Tok::Str("r".into()),
                Tok::Space,
                Tok::CharConst('x'),
                Tok::Space,
                Tok::Number("1.5".into()),
                Tok::Space,
                Tok::Bool(true),
                Tok::Space,
                Tok::Nil,
                Tok::RightDelim,
                Tok::Eof
            ]
        );
    }

    #[test]
    fn declarations_and_punctuation() {
        assert_eq!(
            toks("{{$k, $v := (.X) | len}}"),
            vec![
                Tok::LeftDelim,
                Tok::Variable("$k".into()),
                Tok::Char(','),
                Tok::Space,
                Tok::Variable("$v".into()),
                Tok::Space,
                Tok::Declare,
                Tok::Space,
                Tok::LeftParen,
                Tok::Field("X".into()),
                Tok::RightParen,
                Tok::Space,
                Tok::Pipe,
                Tok::Space,
                Tok::Identifier("len".into()),
                Tok::RightDelim,
                Tok::Eof
            ]
        );
    }

    #[test]
    fn errors_become_tokens() {
        let last = |s: &str| lex(s).pop().map(|i| i.tok);
        assert_eq!(last("{{.ID"), Some(Tok::Error("unclosed action".into())));
        assert_eq!(
            last("{{\"abc}}"),
            Some(Tok::Error("unterminated quoted string".into()))
        );
        assert_eq!(last("{{/* x"), Some(Tok::Error("unclosed comment".into())));
        assert_eq!(
            last("{{(.X}}"),
            Some(Tok::Error("unclosed left paren".into()))
        );
        assert_eq!(
            last("{{.X)}}"),
            Some(Tok::Error("unexpected right paren".into()))
        );
        assert_eq!(
            last("{{12ab}}"),
            Some(Tok::Error("bad number syntax: \"12ab\"".into()))
        );
    }

    #[test]
    fn unquote_escapes() {
        assert_eq!(unquote(r"a\n\x41\u00e9\101").as_deref(), Ok("a\nAéA"));
        assert!(unquote(r"\q").is_err());
    }

    #[test]
    fn lines_are_tracked() {
        let items = lex("a\nb {{.X}}");
        let field = items.iter().find(|i| i.tok == Tok::Field("X".into()));
        assert_eq!(field.map(|i| (i.line, i.pos)), Some((2, 6)));
    }
}
