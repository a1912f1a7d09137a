//! Docker's shell-word processing: variable expansion, quote removal and word splitting.
//!
//! This follows the lexer of buildkit's Dockerfile frontend (`frontend/dockerfile/shell/lex.go`), which is
//! what `docker build` applies to the arguments of `FROM`, `COPY`, `ENV`, `WORKDIR`, `USER`, `EXPOSE`, ...:
//!
//! - `$NAME` and `${NAME}` expand to the variable's value, or to nothing when it is unset; a name is a
//!   letter, digit or `_` run, a run of digits (`$1`, `$999`: positional parameters, which are never
//!   set in a Dockerfile unless the environment defines such a name) or one special parameter character
//!   (`$@ $* $# $? $- $$ $! $0`);
//! - a `$` not followed by a name or `{` is kept literally (`$.`, a trailing `$`);
//! - `${NAME:-word}` / `${NAME-word}`: `word` when the variable is unset or empty / unset;
//! - `${NAME:+word}` / `${NAME+word}`: `word` when the variable is set and non-empty / set;
//! - `${NAME:?msg}` / `${NAME?msg}`: an error `NAME: msg` when the variable is unset or empty / unset;
//! - `${NAME#pat}`, `${NAME##pat}`, `${NAME%pat}`, `${NAME%%pat}`: remove the shortest / longest prefix /
//!   suffix matching a shell pattern (`*`, `?`, `\` escapes; no bracket expressions);
//! - `${NAME/pat/repl}`, `${NAME//pat/repl}`: replace the first / every longest match of a pattern;
//! - words inside `${...}` are themselves expanded, so `${A:-${B:-x}}` nests;
//! - single quotes keep everything literally; double quotes expand `$` and let the escape token escape
//!   only `"`, `$` and itself (elsewhere the escape token stays);
//! - outside quotes the escape token makes the next character literal and is removed; a trailing escape
//!   token is dropped;
//! - `<<` followed by blanks (a heredoc marker) is kept together with the blanks as one word part.
//!
//! Errors are the bare messages; buildkit prefixes them with `failed to process "<word>": `, which is left
//! to the caller.

use thiserror::Error;

/// Docker's shell-word lexer with a configurable escape token (`\` by default, `` ` `` with `# escape=`` `
/// ``).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lexer {
    /// The escape token: `\`, or `` ` `` when the Dockerfile says `# escape=`` ` ``.
    pub escape: char,
}

/// Why a word could not be expanded.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ShellError {
    /// A single-quoted string is not closed.
    #[error("unexpected end of statement while looking for matching single-quote")]
    UnterminatedSingleQuote,
    /// A double-quoted string is not closed.
    #[error("unexpected end of statement while looking for matching double-quote")]
    UnterminatedDoubleQuote,
    /// A `${` has no closing `}`.
    #[error("syntax error: missing '}}'")]
    MissingBrace,
    /// A `${NAME/pattern` has no `/` before the end of the word.
    #[error("syntax error: missing '/' in ${{}}")]
    MissingSlash,
    /// `${}`, `${{...}`, `${:...}`.
    #[error("syntax error: bad substitution")]
    BadSubstitution,
    /// A `${NAME<modifier>...}` form that Docker does not support, such as `${NAME:=x}` or `${NAME:#x}`.
    #[error("unsupported modifier ({0}) in substitution")]
    UnsupportedModifier(String),
    /// A `${NAME?message}` or `${NAME:?message}` whose variable is unset (or empty).
    #[error("{name}: {message}")]
    Required {
        /// The variable's name.
        name: String,
        /// The message given in the word, or Docker's default one.
        message: String,
    },
    /// The pattern of a `#`, `%` or `/` substitution is malformed (an escape of an ordinary character).
    #[error("invalid pattern ({pattern}) in substitution: {reason}")]
    InvalidPattern {
        /// The pattern, after expansion.
        pattern: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl Default for Lexer {
    fn default() -> Self {
        Lexer::new('\\')
    }
}

impl Lexer {
    /// A lexer using `escape` as the escape token.
    pub fn new(escape: char) -> Lexer {
        Lexer { escape }
    }

    /// One word with variables expanded and quotes removed (buildkit ProcessWord): used for FROM, COPY dest,
    /// WORKDIR, USER, ...
    ///
    /// Whitespace is kept as it is, quoted or not.
    pub fn process_word(
        &self,
        word: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<String, ShellError> {
        self.run(word, env).map(|done| done.result)
    }

    /// Several words: expansion then splitting on unquoted whitespace (buildkit ProcessWords): used for
    /// EXPOSE, VOLUME, COPY sources, ...
    ///
    /// Whitespace that comes from an unquoted variable's value splits too; quoted or escaped whitespace
    /// does not. Empty words (`""`) are dropped.
    pub fn process_words(
        &self,
        word: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Vec<String>, ShellError> {
        self.run(word, env).map(|done| done.words)
    }

    /// Like process_word, also returning the names of the variables that were referenced (set or not), in
    /// order of first use, de-duplicated.
    ///
    /// The order is the order in which the references appear in the text (`${A:-$B}` gives `A`, `B`);
    /// positional and special parameters (`$1`, `$@`) count as references, like in buildkit.
    pub fn process_word_with_matches(
        &self,
        word: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(String, Vec<String>), ShellError> {
        self.run(word, env).map(|done| (done.result, done.refs))
    }

    fn run(
        &self,
        word: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Processed, ShellError> {
        let mut scan = Scanner {
            chars: word.chars().collect(),
            pos: 0,
            escape: self.escape,
            raw_escapes: false,
            env,
            refs: Vec::new(),
        };
        let (result, words) = scan.until(None, false)?;
        Ok(Processed {
            result,
            words,
            refs: scan.refs,
        })
    }
}

/// What one run of the lexer produces.
struct Processed {
    result: String,
    words: Vec<String>,
    refs: Vec<String>,
}

/// The word being split while it is expanded.
#[derive(Default)]
struct Words {
    current: String,
    done: Vec<String>,
}

impl Words {
    /// A character that splits on whitespace.
    fn push(&mut self, ch: char) {
        if ch.is_whitespace() {
            if !self.current.is_empty() {
                self.done.push(std::mem::take(&mut self.current));
            }
        } else {
            self.current.push(ch);
        }
    }

    /// The value of an unquoted expansion: its whitespace splits.
    fn push_expanded(&mut self, text: &str) {
        text.chars().for_each(|ch| self.push(ch));
    }

    fn push_raw(&mut self, ch: char) {
        self.current.push(ch);
    }

    fn push_raw_str(&mut self, text: &str) {
        self.current.push_str(text);
    }

    fn finish(mut self) -> Vec<String> {
        if !self.current.is_empty() {
            self.done.push(self.current);
        }
        self.done
    }
}

struct Scanner<'a> {
    chars: Vec<char>,
    pos: usize,
    escape: char,
    /// Keep escape tokens in the output (inside `#`, `%` and `/` patterns, where the pattern matcher
    /// interprets `\` itself).
    raw_escapes: bool,
    env: &'a dyn Fn(&str) -> Option<String>,
    refs: Vec<String>,
}

impl Scanner<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let ch = self.peek()?;
        self.pos += 1;
        Some(ch)
    }

    fn note(&mut self, name: &str) {
        if !self.refs.iter().any(|known| known == name) {
            self.refs.push(name.to_string());
        }
    }

    /// The variable's value, `None` when unset.
    fn lookup(&mut self, name: &str) -> Option<String> {
        self.note(name);
        (self.env)(name)
    }

    /// Processes up to the end of the input or up to (and past) `stop`, returning the text and its words.
    /// Without `stop` found, the error is [`ShellError::MissingBrace`], which [`Scanner::sub_word`] refines.
    fn until(
        &mut self,
        stop: Option<char>,
        raw_escapes: bool,
    ) -> Result<(String, Vec<String>), ShellError> {
        let saved = std::mem::replace(&mut self.raw_escapes, raw_escapes);
        let outcome = self.until_inner(stop);
        self.raw_escapes = saved;
        outcome
    }

    fn until_inner(&mut self, stop: Option<char>) -> Result<(String, Vec<String>), ShellError> {
        let mut result = String::new();
        let mut words = Words::default();
        while let Some(ch) = self.peek() {
            if stop == Some(ch) {
                self.pos += 1;
                return Ok((result, words.finish()));
            }
            match ch {
                '$' => {
                    let value = self.dollar()?;
                    words.push_expanded(&value);
                    result.push_str(&value);
                }
                '<' => {
                    let marker = self.heredoc_marker();
                    words.push_raw_str(&marker);
                    result.push_str(&marker);
                }
                '\'' => {
                    let text = self.single_quoted()?;
                    words.push_raw_str(&text);
                    result.push_str(&text);
                }
                '"' => {
                    let text = self.double_quoted()?;
                    words.push_raw_str(&text);
                    result.push_str(&text);
                }
                _ => {
                    self.pos += 1;
                    if ch == self.escape {
                        if self.raw_escapes {
                            words.push_raw(ch);
                            result.push(ch);
                        }
                        // The escape token makes the next character literal; at the end it vanishes.
                        let Some(escaped) = self.bump() else { break };
                        words.push_raw(escaped);
                        result.push(escaped);
                    } else {
                        words.push(ch);
                        result.push(ch);
                    }
                }
            }
        }
        match stop {
            Some(_) => Err(ShellError::MissingBrace),
            None => Ok((result, words.finish())),
        }
    }

    /// The word of a `${NAME<op>word}` up to `stop`; an error that ran into the end of the input is
    /// reported as `missing`, like buildkit does.
    fn sub_word(
        &mut self,
        stop: char,
        raw_escapes: bool,
        missing: ShellError,
    ) -> Result<String, ShellError> {
        match self.until(Some(stop), raw_escapes) {
            Ok((text, _)) => Ok(text),
            Err(_) if self.peek().is_none() => Err(missing),
            Err(err) => Err(err),
        }
    }

    fn heredoc_marker(&mut self) -> String {
        self.pos += 1;
        if self.peek() != Some('<') {
            return "<".to_string();
        }
        self.pos += 1;
        let mut marker = "<<".to_string();
        while let Some(blank @ (' ' | '\t' | '\r')) = self.peek() {
            marker.push(blank);
            self.pos += 1;
        }
        marker
    }

    fn single_quoted(&mut self) -> Result<String, ShellError> {
        self.pos += 1;
        let mut text = String::new();
        loop {
            match self.bump() {
                None => return Err(ShellError::UnterminatedSingleQuote),
                Some('\'') => return Ok(text),
                Some(ch) => text.push(ch),
            }
        }
    }

    fn double_quoted(&mut self) -> Result<String, ShellError> {
        self.pos += 1;
        let mut text = String::new();
        loop {
            match self.peek() {
                None => return Err(ShellError::UnterminatedDoubleQuote),
                Some('"') => {
                    self.pos += 1;
                    return Ok(text);
                }
                Some('$') => {
                    let value = self.dollar()?;
                    text.push_str(&value);
                }
                Some(ch) => {
                    self.pos += 1;
                    let mut out = ch;
                    if ch == self.escape {
                        if self.raw_escapes {
                            text.push(ch);
                        }
                        match self.peek() {
                            // Reported as an unterminated string on the next round.
                            None => continue,
                            Some(next) if next == '"' || next == '$' || next == self.escape => {
                                self.pos += 1;
                                out = next;
                            }
                            // Any other character: the escape token stays.
                            Some(_) => {}
                        }
                    }
                    text.push(out);
                }
            }
        }
    }

    /// A name after `$` or `${`: an identifier, a run of digits or one special parameter character.
    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(ch) = self.peek() {
            if name.is_empty() {
                if is_digit(ch) {
                    while let Some(digit) = self.peek().filter(|&c| is_digit(c)) {
                        name.push(digit);
                        self.pos += 1;
                    }
                    return name;
                }
                if is_special_parameter(ch) {
                    self.pos += 1;
                    return ch.to_string();
                }
            }
            if !(ch.is_alphabetic() || is_digit(ch) || ch == '_') {
                break;
            }
            name.push(ch);
            self.pos += 1;
        }
        name
    }

    fn dollar(&mut self) -> Result<String, ShellError> {
        self.pos += 1;
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".to_string());
            }
            return Ok(self.lookup(&name).unwrap_or_default());
        }
        self.pos += 1;
        match self.peek() {
            None => return Err(ShellError::MissingBrace),
            Some('{' | '}' | ':') => return Err(ShellError::BadSubstitution),
            Some(_) => {}
        }
        let name = self.name();
        let Some(ch) = self.bump() else {
            return Err(ShellError::MissingBrace);
        };
        match ch {
            '}' => Ok(self.lookup(&name).unwrap_or_default()),
            ':' | '+' | '-' | '?' | '#' | '%' => {
                let null_is_unset = ch == ':';
                let (op, modifier) = if null_is_unset {
                    let op = self.bump();
                    (op, format!(":{}", op.map(String::from).unwrap_or_default()))
                } else {
                    (Some(ch), ch.to_string())
                };
                let pattern_op = matches!(op, Some('#' | '%'));
                if null_is_unset && pattern_op {
                    return Err(ShellError::UnsupportedModifier(modifier));
                }
                self.note(&name);
                let word = self.sub_word('}', pattern_op, ShellError::MissingBrace)?;
                let value = self.lookup(&name);
                let is_null = |value: &Option<String>| match value {
                    None => true,
                    Some(value) => null_is_unset && value.is_empty(),
                };
                match op {
                    Some('-') => Ok(if is_null(&value) {
                        word
                    } else {
                        value.unwrap_or_default()
                    }),
                    Some('+') => Ok(if is_null(&value) { String::new() } else { word }),
                    Some('?') => match value {
                        Some(value) if !(null_is_unset && value.is_empty()) => Ok(value),
                        value => {
                            let message = if !word.is_empty() {
                                word
                            } else if value.is_none() {
                                "is not allowed to be unset".to_string()
                            } else {
                                "is not allowed to be empty".to_string()
                            };
                            Err(ShellError::Required { name, message })
                        }
                    },
                    Some(op @ ('#' | '%')) => {
                        let value = value.unwrap_or_default();
                        // `##` / `%%` remove the longest match, `#` / `%` the shortest.
                        let (pattern, greedy) = match word.strip_prefix(op) {
                            Some(rest) => (rest, true),
                            None => (word.as_str(), false),
                        };
                        let tokens = compile_pattern(pattern)?;
                        let value: Vec<char> = value.chars().collect();
                        Ok(if op == '#' {
                            let end = Pattern::new(&tokens, &value, greedy)
                                .match_from(0)
                                .unwrap_or(0);
                            value[end..].iter().collect()
                        } else {
                            // The shortest/longest suffix is the shortest/longest prefix of the reversed
                            // text for the reversed pattern.
                            let tokens: Vec<Token> = tokens.into_iter().rev().collect();
                            let reversed: Vec<char> = value.iter().rev().copied().collect();
                            let cut = Pattern::new(&tokens, &reversed, greedy)
                                .match_from(0)
                                .unwrap_or(0);
                            value[..value.len() - cut].iter().collect()
                        })
                    }
                    _ => Err(ShellError::UnsupportedModifier(modifier)),
                }
            }
            '/' => {
                let all = self.peek() == Some('/');
                if all {
                    self.pos += 1;
                }
                self.note(&name);
                let pattern = self.sub_word('/', true, ShellError::MissingSlash)?;
                let replacement = self.sub_word('}', true, ShellError::MissingBrace)?;
                let value = self.lookup(&name).unwrap_or_default();
                let tokens = compile_pattern(&pattern)?;
                Ok(replace(&tokens, &value, &replacement, all))
            }
            other => Err(ShellError::UnsupportedModifier(other.to_string())),
        }
    }
}

/// Go's `unicode.IsDigit`, approximated by Rust's numeric property.
fn is_digit(ch: char) -> bool {
    ch.is_numeric()
}

/// The POSIX special parameters (`$@`, `$*`, `$#`, `$?`, `$-`, `$$`, `$!`, `$0`).
fn is_special_parameter(ch: char) -> bool {
    matches!(ch, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0')
}

/// One element of a substitution pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    Literal(char),
    /// `?`: one character (not a newline, like buildkit's regular expression `.`).
    One,
    /// `*`: any run of characters without a newline.
    Many,
}

/// Compiles the pattern of a `#`, `%` or `/` substitution: `*`, `?`, and `\` escaping `*`, `?` or `\`;
/// a `\` before `}` or `/` (needed to keep them inside `${...}`) is dropped. Any other escape is an error.
fn compile_pattern(pattern: &str) -> Result<Vec<Token>, ShellError> {
    let invalid = |reason: String| ShellError::InvalidPattern {
        pattern: pattern.to_string(),
        reason,
    };
    let chars: Vec<char> = pattern.chars().collect();
    let mut tokens = Vec::with_capacity(chars.len());
    let mut i = 0;
    while i < chars.len() {
        let ch = chars[i];
        i += 1;
        match ch {
            '*' => tokens.push(Token::Many),
            '?' => tokens.push(Token::One),
            '\\' => match chars.get(i) {
                Some('}' | '/') => {}
                Some(&escaped @ ('*' | '?' | '\\')) => {
                    tokens.push(Token::Literal(escaped));
                    i += 1;
                }
                Some(other) => return Err(invalid(format!("invalid escape '\\{other}'"))),
                None => return Err(invalid("invalid escape '\\' at the end".to_string())),
            },
            other => tokens.push(Token::Literal(other)),
        }
    }
    Ok(tokens)
}

/// A substitution pattern matched against one text with the preferences of a backtracking regular
/// expression (what Go's leftmost-first `regexp` yields): `*` tries the longest run first when greedy and
/// the shortest first otherwise.
struct Pattern<'a> {
    tokens: &'a [Token],
    text: &'a [char],
    greedy: bool,
    /// `(token, position)` → the end of the preferred match of `tokens[token..]` at `position`.
    memo: Vec<Option<Option<usize>>>,
}

impl<'a> Pattern<'a> {
    fn new(tokens: &'a [Token], text: &'a [char], greedy: bool) -> Self {
        Pattern {
            tokens,
            text,
            greedy,
            memo: vec![None; (tokens.len() + 1) * (text.len() + 1)],
        }
    }

    /// The end of the preferred match starting at `start`, if any.
    fn match_from(&mut self, start: usize) -> Option<usize> {
        self.end(0, start)
    }

    /// The leftmost match at or after `from`, as `(start, end)`.
    fn find(&mut self, from: usize) -> Option<(usize, usize)> {
        (from..=self.text.len()).find_map(|start| self.match_from(start).map(|end| (start, end)))
    }

    fn end(&mut self, token: usize, pos: usize) -> Option<usize> {
        let Some(&current) = self.tokens.get(token) else {
            return Some(pos);
        };
        let key = token * (self.text.len() + 1) + pos;
        if let Some(known) = self.memo[key] {
            return known;
        }
        let next = self.text.get(pos).copied();
        let found = match current {
            Token::Literal(ch) => match next {
                Some(c) if c == ch => self.end(token + 1, pos + 1),
                _ => None,
            },
            Token::One => match next {
                Some(c) if c != '\n' => self.end(token + 1, pos + 1),
                _ => None,
            },
            Token::Many => {
                let run = self.text[pos..].iter().take_while(|&&c| c != '\n').count();
                if self.greedy {
                    (pos..=pos + run)
                        .rev()
                        .find_map(|stop| self.end(token + 1, stop))
                } else {
                    (pos..=pos + run).find_map(|stop| self.end(token + 1, stop))
                }
            }
        };
        self.memo[key] = Some(found);
        found
    }
}

/// `${NAME/pattern/replacement}` (first match) and `${NAME//pattern/replacement}` (every match), with the
/// handling of empty matches of Go's `Regexp.ReplaceAllString`. The replacement is inserted literally.
fn replace(tokens: &[Token], value: &str, replacement: &str, all: bool) -> String {
    let text: Vec<char> = value.chars().collect();
    let mut pattern = Pattern::new(tokens, &text, true);
    let mut out = String::new();
    if !all {
        return match pattern.find(0) {
            Some((start, end)) => {
                out.extend(&text[..start]);
                out.push_str(replacement);
                out.extend(&text[end..]);
                out
            }
            None => value.to_string(),
        };
    }
    let mut last_end = 0;
    let mut search = 0;
    while search <= text.len() {
        let Some((start, end)) = pattern.find(search) else {
            break;
        };
        out.extend(&text[last_end..start]);
        // An empty match right after the previous match is not replaced again.
        if end > last_end || start == 0 {
            out.push_str(replacement);
        }
        last_end = end;
        search = if search + 1 > end { search + 1 } else { end };
    }
    out.extend(&text[last_end..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// Like buildkit's `EnvsFromSlice`: `KEY=VALUE` entries, a later one winning, `KEY` alone meaning empty.
    fn env_from_slice(entries: &[&str]) -> HashMap<String, String> {
        entries
            .iter()
            .map(|entry| match entry.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (entry.to_string(), String::new()),
            })
            .collect()
    }

    fn word(input: &str, env: &HashMap<String, String>) -> Result<String, ShellError> {
        Lexer::new('\\').process_word(input, &|name| env.get(name).cloned())
    }

    fn words(input: &str, env: &HashMap<String, String>) -> Result<Vec<String>, ShellError> {
        Lexer::new('\\').process_words(input, &|name| env.get(name).cloned())
    }

    fn with_matches(
        input: &str,
        env: &HashMap<String, String>,
    ) -> Result<(String, Vec<String>), ShellError> {
        Lexer::new('\\').process_word_with_matches(input, &|name| env.get(name).cloned())
    }

    /// buildkit `frontend/dockerfile/shell/envVarTest` (the `A` and `U` lines; `W` ones are Windows-only),
    /// run by `TestShellParser4EnvVars` with `PWD=/home SHELL=bash KOREAN=한국어 NULL=`.
    /// `None` means an error is expected.
    const ENV_VAR_TEST: &[(&str, Option<&str>)] = &[
        ("hello", Some("hello")),
        ("he'll'o", Some("hello")),
        ("he'llo", None),
        (r"he\'llo", Some("he'llo")),
        (r"he\\'llo", None),
        (r"abc\tdef", Some("abctdef")),
        (r#""abc\tdef""#, Some(r"abc\tdef")),
        (r#""abc\\tdef""#, Some(r"abc\tdef")),
        (r"'abc\tdef'", Some(r"abc\tdef")),
        (r"hello\", Some("hello")),
        (r"hello\\", Some(r"hello\")),
        (r#""hello"#, None),
        (r#""hello\""#, None),
        (r#""hel'lo""#, Some("hel'lo")),
        ("'hello", None),
        (r"'hello\'", Some(r"hello\")),
        (r"'hello\there'", Some(r"hello\there")),
        (r"'hello\\there'", Some(r"hello\\there")),
        (r#""''""#, Some("''")),
        ("$.", Some("$.")),
        ("he$1x", Some("hex")),
        ("he$.x", Some("he$.x")),
        ("he$pwd.", Some("he.")),
        ("he$PWD", Some("he/home")),
        (r"he\$PWD", Some("he$PWD")),
        (r"he\\$PWD", Some(r"he\/home")),
        (r#""he\$PWD""#, Some("he$PWD")),
        (r#""he\\$PWD""#, Some(r"he\/home")),
        (r"\${}", Some("${}")),
        (r"\${}aaa", Some("${}aaa")),
        (r"he\${}", Some("he${}")),
        (r"he\${}xx", Some("he${}xx")),
        ("${}", None),
        ("${}aaa", None),
        ("he${}", None),
        ("he${}xx", None),
        ("he${hi}", Some("he")),
        ("he${hi}xx", Some("hexx")),
        ("he${PWD}", Some("he/home")),
        ("he${.}", None),
        ("he${XXX:-000}xx", Some("he000xx")),
        ("he${PWD:-000}xx", Some("he/homexx")),
        ("he${XXX:-$PWD}xx", Some("he/homexx")),
        ("he${XXX:-${PWD:-yyy}}xx", Some("he/homexx")),
        ("he${XXX:-${YYY:-yyy}}xx", Some("heyyyxx")),
        ("he${XXX:YYY}", None),
        ("he${XXX?}", None),
        ("he${XXX:?}", None),
        ("he${PWD?}", Some("he/home")),
        ("he${PWD:?}", Some("he/home")),
        ("he${NULL?}", Some("he")),
        ("he${NULL:?}", None),
        ("he${XXX:+${PWD}}xx", Some("hexx")),
        ("he${PWD:+${XXX}}xx", Some("hexx")),
        ("he${PWD:+${SHELL}}xx", Some("hebashxx")),
        ("he${XXX:+000}xx", Some("hexx")),
        ("he${PWD:+000}xx", Some("he000xx")),
        ("'he${XX}'", Some("he${XX}")),
        (r#""he${PWD}""#, Some("he/home")),
        (r#""he'$PWD'""#, Some("he'/home'")),
        (r#""$PWD""#, Some("/home")),
        ("'$PWD'", Some("$PWD")),
        (r"'\$PWD'", Some(r"\$PWD")),
        (r#"'"hello"'"#, Some(r#""hello""#)),
        (r"he\$PWD", Some("he$PWD")),
        (r#""he\$PWD""#, Some("he$PWD")),
        (r"'he\$PWD'", Some(r"he\$PWD")),
        ("he${PWD", None),
        ("he${PWD:=000}xx", None),
        ("he${PWD:+${PWD}:}xx", Some("he/home:xx")),
        (r"he${XXX:-\$PWD:}xx", Some("he$PWD:xx")),
        (r"he${XXX:-\${PWD}z}xx", Some("he${PWDz}xx")),
        ("안녕하세요", Some("안녕하세요")),
        ("안'녕'하세요", Some("안녕하세요")),
        ("안'녕하세요", None),
        (r"안녕\'하세요", Some("안녕'하세요")),
        (r"안\\'녕하세요", None),
        (r"안녕\t하세요", Some("안녕t하세요")),
        (r#""안녕\t하세요""#, Some(r"안녕\t하세요")),
        (r"'안녕\t하세요", None),
        (r"안녕하세요\", Some("안녕하세요")),
        (r"안녕하세요\\", Some(r"안녕하세요\")),
        (r#""안녕하세요"#, None),
        (r#""안녕하세요\""#, None),
        (r#""안녕'하세요""#, Some("안녕'하세요")),
        ("'안녕하세요", None),
        (r"'안녕하세요\'", Some(r"안녕하세요\")),
        ("안녕$1x", Some("안녕x")),
        ("안녕$.x", Some("안녕$.x")),
        ("안녕$pwd.", Some("안녕.")),
        ("안녕$PWD", Some("안녕/home")),
        (r"안녕\$PWD", Some("안녕$PWD")),
        (r"안녕\\$PWD", Some(r"안녕\/home")),
        (r"안녕\${}", Some("안녕${}")),
        (r"안녕\${}xx", Some("안녕${}xx")),
        ("안녕${}", None),
        ("안녕${}xx", None),
        ("안녕${hi}", Some("안녕")),
        ("안녕${hi}xx", Some("안녕xx")),
        ("안녕${PWD}", Some("안녕/home")),
        ("안녕${.}", None),
        ("안녕${XXX:-000}xx", Some("안녕000xx")),
        ("안녕${PWD:-000}xx", Some("안녕/homexx")),
        ("안녕${XXX:-$PWD}xx", Some("안녕/homexx")),
        ("안녕${XXX:-${PWD:-yyy}}xx", Some("안녕/homexx")),
        ("안녕${XXX:-${YYY:-yyy}}xx", Some("안녕yyyxx")),
        ("안녕${XXX:YYY}", None),
        ("안녕${XXX:+${PWD}}xx", Some("안녕xx")),
        ("안녕${PWD:+${XXX}}xx", Some("안녕xx")),
        ("안녕${PWD:+${SHELL}}xx", Some("안녕bashxx")),
        ("안녕${XXX:+000}xx", Some("안녕xx")),
        ("안녕${PWD:+000}xx", Some("안녕000xx")),
        ("'안녕${XX}'", Some("안녕${XX}")),
        (r#""안녕${PWD}""#, Some("안녕/home")),
        (r#""안녕'$PWD'""#, Some("안녕'/home'")),
        (r#"'"안녕"'"#, Some(r#""안녕""#)),
        (r"안녕\$PWD", Some("안녕$PWD")),
        (r#""안녕\$PWD""#, Some("안녕$PWD")),
        (r"'안녕\$PWD'", Some(r"안녕\$PWD")),
        ("안녕${PWD", None),
        ("안녕${PWD:=000}xx", None),
        ("안녕${PWD:+${PWD}:}xx", Some("안녕/home:xx")),
        (r"안녕${XXX:-\$PWD:}xx", Some("안녕$PWD:xx")),
        (r"안녕${XXX:-\${PWD}z}xx", Some("안녕${PWDz}xx")),
        ("$KOREAN", Some("한국어")),
        ("안녕$KOREAN", Some("안녕한국어")),
        ("${{aaa}", None),
        ("${aaa}}", Some("}")),
        ("${aaa", None),
        ("${{aaa:-bbb}", None),
        ("${aaa:-bbb}}", Some("bbb}")),
        ("${aaa:-bbb", None),
        ("${aaa:-bbb}", Some("bbb")),
        ("${aaa:-${bbb:-ccc}}", Some("ccc")),
        ("${aaa:-bbb ${foo}", None),
        ("${aaa:-bbb {foo}", Some("bbb {foo")),
        ("${:}", None),
        ("${:-bbb}", None),
        ("${:+bbb}", None),
        ("$1", Some("")),
        ("${1}", Some("")),
        ("${1:+bbb}", Some("")),
        ("${1:-bbb}", Some("bbb")),
        ("$2", Some("")),
        ("${2}", Some("")),
        ("${2:+bbb}", Some("")),
        ("${2:-bbb}", Some("bbb")),
        ("$3", Some("")),
        ("${3}", Some("")),
        ("${3:+bbb}", Some("")),
        ("${3:-bbb}", Some("bbb")),
        ("$4", Some("")),
        ("${4}", Some("")),
        ("${4:+bbb}", Some("")),
        ("${4:-bbb}", Some("bbb")),
        ("$5", Some("")),
        ("${5}", Some("")),
        ("${5:+bbb}", Some("")),
        ("${5:-bbb}", Some("bbb")),
        ("$6", Some("")),
        ("${6}", Some("")),
        ("${6:+bbb}", Some("")),
        ("${6:-bbb}", Some("bbb")),
        ("$7", Some("")),
        ("${7}", Some("")),
        ("${7:+bbb}", Some("")),
        ("${7:-bbb}", Some("bbb")),
        ("$8", Some("")),
        ("${8}", Some("")),
        ("${8:+bbb}", Some("")),
        ("${8:-bbb}", Some("bbb")),
        ("$9", Some("")),
        ("${9}", Some("")),
        ("${9:+bbb}", Some("")),
        ("${9:-bbb}", Some("bbb")),
        ("$999", Some("")),
        ("${999}", Some("")),
        ("${999:+bbb}", Some("")),
        ("${999:-bbb}", Some("bbb")),
        ("$999aaa", Some("aaa")),
        ("${999}aaa", Some("aaa")),
        ("${999:+bbb}aaa", Some("aaa")),
        ("${999:-bbb}aaa", Some("bbbaaa")),
        ("$001", Some("")),
        ("${001}", Some("")),
        ("${001:+bbb}", Some("")),
        ("${001:-bbb}", Some("bbb")),
        ("$001aaa", Some("aaa")),
        ("${001}aaa", Some("aaa")),
        ("${001:+bbb}aaa", Some("aaa")),
        ("${001:-bbb}aaa", Some("bbbaaa")),
        ("$@", Some("")),
        ("${@}", Some("")),
        ("${@:+bbb}", Some("")),
        ("${@:-bbb}", Some("bbb")),
        ("$@@@", Some("@@")),
        ("$@aaa", Some("aaa")),
        ("${@}aaa", Some("aaa")),
        ("${@:+bbb}aaa", Some("aaa")),
        ("${@:-bbb}aaa", Some("bbbaaa")),
        ("$*", Some("")),
        ("${*}", Some("")),
        ("${*:+bbb}", Some("")),
        ("${*:-bbb}", Some("bbb")),
        ("$#", Some("")),
        ("${#}", Some("")),
        ("${#:+bbb}", Some("")),
        ("${#:-bbb}", Some("bbb")),
        ("$?", Some("")),
        ("${?}", Some("")),
        ("${?:+bbb}", Some("")),
        ("${?:-bbb}", Some("bbb")),
        ("$-", Some("")),
        ("${-}", Some("")),
        ("${-:+bbb}", Some("")),
        ("${-:-bbb}", Some("bbb")),
        ("$$", Some("")),
        ("${$}", Some("")),
        ("${$:+bbb}", Some("")),
        ("${$:-bbb}", Some("bbb")),
        ("$!", Some("")),
        ("${!}", Some("")),
        ("${!:+bbb}", Some("")),
        ("${!:-bbb}", Some("bbb")),
        ("$0", Some("")),
        ("${0}", Some("")),
        ("${0:+bbb}", Some("")),
        ("${0:-bbb}", Some("bbb")),
    ];

    #[test]
    fn buildkit_env_var_test() {
        let env = env_from_slice(&["PWD=/home", "SHELL=bash", "KOREAN=한국어", "NULL="]);
        for &(input, expected) in ENV_VAR_TEST {
            let got = word(input, &env);
            match expected {
                Some(expected) => assert_eq!(got.as_deref(), Ok(expected), "input {input:?}"),
                None => assert!(got.is_err(), "input {input:?} should fail, got {got:?}"),
            }
        }
    }

    enum Step {
        /// `ENV KEY=VALUE`: adds to the environment of the following cases.
        Env(&'static str),
        Case(&'static str, &'static [&'static str]),
        Error(&'static str),
    }

    /// buildkit `frontend/dockerfile/shell/wordsTest`, run by `TestShellParser4Words` through ProcessWords.
    const WORDS_TEST: &[Step] = &[
        Step::Case("hello", &["hello"]),
        Step::Case("hello${hi}bye", &["hellobye"]),
        Step::Env("hi=hi"),
        Step::Case("hello${hi}bye", &["hellohibye"]),
        Step::Env("space=abc  def"),
        Step::Case("hello${space}bye", &["helloabc", "defbye"]),
        Step::Case(r#"hello"${space}"bye"#, &["helloabc  defbye"]),
        Step::Case(r#"hello "${space}"bye"#, &["hello", "abc  defbye"]),
        Step::Env("leading=  ab c"),
        Step::Case("hello${leading}def", &["hello", "ab", "cdef"]),
        Step::Case(r#"hello"${leading}" def"#, &["hello  ab c", "def"]),
        Step::Case(r#"hello"${leading}""#, &["hello  ab c"]),
        Step::Case("hello${leading}", &["hello", "ab", "c"]),
        Step::Env("trailing=ab c   "),
        Step::Case("hello${trailing}", &["helloab", "c"]),
        Step::Case("hello${trailing}d", &["helloab", "c", "d"]),
        Step::Case(r#"hello"${trailing}"d"#, &["helloab c   d"]),
        Step::Case(r#"hel"lo${trailing}""#, &["helloab c   "]),
        Step::Case(r#"hello" there  ""#, &["hello there  "]),
        Step::Case("hello there", &["hello", "there"]),
        Step::Case(r"hello\ there", &["hello there"]),
        Step::Error(r#"hello" there"#),
        Step::Case(r#"hello\" there"#, &[r#"hello""#, "there"]),
        Step::Case(r#"hello"\\there""#, &[r"hello\there"]),
        Step::Case(r#"hello"\there""#, &[r"hello\there"]),
        Step::Case(r"hello'\\there'", &[r"hello\\there"]),
        Step::Case(r"hello'\there'", &[r"hello\there"]),
        Step::Case("hello'$there'", &["hello$there"]),
    ];

    #[test]
    fn buildkit_words_test() {
        let mut entries: Vec<&str> = Vec::new();
        for step in WORDS_TEST {
            let env = env_from_slice(&entries);
            match step {
                Step::Env(entry) => entries.push(entry),
                Step::Case(input, expected) => {
                    assert_eq!(words(input, &env).unwrap(), *expected, "input {input:?}");
                }
                Step::Error(input) => assert!(words(input, &env).is_err(), "input {input:?}"),
            }
        }
    }

    /// buildkit `TestShellParserMandatoryEnvVars`.
    #[test]
    fn buildkit_mandatory_env_vars() {
        let set = env_from_slice(&["VAR=plain", "ARG=x"]);
        let empty = env_from_slice(&["VAR=", "ARG=x"]);
        let unset = env_from_slice(&["ARG=x"]);
        let no_empty = "${VAR:?message here$ARG}";
        let no_unset = "${VAR?message here$ARG}";

        assert_eq!(word(no_empty, &set).unwrap(), "plain");
        let err = word(no_empty, &empty).unwrap_err();
        assert_eq!(err.to_string(), "VAR: message herex");
        assert!(word(no_empty, &unset)
            .unwrap_err()
            .to_string()
            .contains("message herex"));

        assert_eq!(word(no_unset, &set).unwrap(), "plain");
        assert_eq!(word(no_unset, &empty).unwrap(), "");
        assert!(word(no_unset, &unset)
            .unwrap_err()
            .to_string()
            .contains("message herex"));
    }

    #[test]
    fn required_default_messages() {
        let env = env_of(&[("EMPTY", "")]);
        assert_eq!(
            word("${NOPE?}", &env).unwrap_err().to_string(),
            "NOPE: is not allowed to be unset"
        );
        assert_eq!(
            word("${NOPE:?}", &env).unwrap_err().to_string(),
            "NOPE: is not allowed to be unset"
        );
        assert_eq!(
            word("${EMPTY:?}", &env).unwrap_err().to_string(),
            "EMPTY: is not allowed to be empty"
        );
        assert_eq!(
            word("${EMPTY:?must be set}", &env).unwrap_err(),
            ShellError::Required {
                name: "EMPTY".into(),
                message: "must be set".into()
            }
        );
    }

    /// buildkit `TestProcessWithMatches`: input, environment, expected result (`None`: an error), and the
    /// union of buildkit's matched and unmatched sets.
    #[allow(clippy::type_complexity)]
    const PROCESS_WITH_MATCHES: &[(&str, &[(&str, &str)], Option<&str>, &[&str])] = &[
        ("x", &[("DUMMY", "dummy")], Some("x"), &[]),
        (
            "x ${UNUSED}",
            &[("DUMMY", "dummy")],
            Some("x "),
            &["UNUSED"],
        ),
        ("x ${FOO}", &[("FOO", "y")], Some("x y"), &["FOO"]),
        (
            "${FOO-aaa} ${BAR-bbb} ${BAZ-ccc}",
            &[("FOO", "xxx"), ("BAR", "")],
            Some("xxx  ccc"),
            &["FOO", "BAR", "BAZ"],
        ),
        (
            "${FOO:-aaa} ${BAR:-bbb} ${BAZ:-ccc}",
            &[("FOO", "xxx"), ("BAR", "")],
            Some("xxx bbb ccc"),
            &["FOO", "BAR", "BAZ"],
        ),
        (
            "${FOO:-}",
            &[("FOO", "xxx"), ("BAR", "")],
            Some("xxx"),
            &["FOO"],
        ),
        ("${FOO:-}", &[], Some(""), &["FOO"]),
        (
            "${FOO+aaa} ${BAR+bbb} ${BAZ+ccc}",
            &[("FOO", "xxx"), ("BAR", "")],
            Some("aaa bbb "),
            &["FOO", "BAR", "BAZ"],
        ),
        (
            "${FOO:+aaa} ${BAR:+bbb} ${BAZ:+ccc}",
            &[("FOO", "xxx"), ("BAR", "")],
            Some("aaa  "),
            &["FOO", "BAR", "BAZ"],
        ),
        (
            "${FOO?aaa}",
            &[("FOO", "xxx"), ("BAR", "")],
            Some("xxx"),
            &["FOO"],
        ),
        (
            "${BAR?bbb}",
            &[("FOO", "xxx"), ("BAR", "")],
            Some(""),
            &["BAR"],
        ),
        ("${BAZ?ccc}", &[("FOO", "xxx"), ("BAR", "")], None, &[]),
        (
            "${FOO:?aaa}",
            &[("FOO", "xxx"), ("BAR", "")],
            Some("xxx"),
            &["FOO"],
        ),
        ("${BAR:?bbb}", &[("FOO", "xxx"), ("BAR", "")], None, &[]),
        ("${BAZ:?ccc}", &[("FOO", "xxx"), ("BAR", "")], None, &[]),
        ("${BAZ:?}", &[("FOO", "xxx"), ("BAR", "")], None, &[]),
        ("${FOO=aaa}", &[("FOO", "xxx"), ("BAR", "")], None, &[]),
        ("${FOO=:aaa}", &[("FOO", "xxx"), ("BAR", "")], None, &[]),
        ("${FOO=}", &[], None, &[]),
        // Regular expression characters are literal; `}` must be escaped to stay inside `${}`.
        (
            r"${FOO#()[]{\}^$.\*\?|\\}",
            &[("FOO", r"()[]{}^$.*?|\x")],
            Some("x"),
            &["FOO"],
        ),
        (r"${FOO%%\**}", &[("FOO", "xx**")], Some("xx"), &["FOO"]),
        ("${FOO#*x*y}", &[("FOO", "xxyy")], Some("y"), &["FOO"]),
        ("${FOO#*}", &[("FOO", "xxyy")], Some("xxyy"), &["FOO"]),
        (
            "${FOO#$BAR}",
            &[("FOO", "xxyy"), ("BAR", "x")],
            Some("xyy"),
            &["FOO", "BAR"],
        ),
        (
            "${FOO#$BAR}",
            &[("FOO", "xxyy"), ("BAR", "")],
            Some("xxyy"),
            &["FOO", "BAR"],
        ),
        ("${FOO#}", &[("FOO", "xxyy")], Some("xxyy"), &["FOO"]),
        ("${FOO##*x}", &[("FOO", "xxyy")], Some("yy"), &["FOO"]),
        ("${FOO##}", &[("FOO", "xxyy")], Some("xxyy"), &["FOO"]),
        (r"${FOO#?\?}", &[("FOO", "???y")], Some("?y"), &["FOO"]),
        (
            "${ABC:-.}${FOO%x}${ABC:-.}",
            &[("FOO", "xxyy")],
            Some(".xxyy."),
            &["ABC", "FOO"],
        ),
        (r"${FOO%%\**\*}", &[("FOO", "a***yy*")], Some("a"), &["FOO"]),
        ("${FOO%}", &[("FOO", "xxyy")], Some("xxyy"), &["FOO"]),
        (
            "${FOO%%$BAR}",
            &[("FOO", "xxyy"), ("BAR", "")],
            Some("xxyy"),
            &["FOO", "BAR"],
        ),
        ("${FOO:#}", &[], None, &[]),
        ("${FOO:##}", &[], None, &[]),
        ("${FOO:%}", &[], None, &[]),
        ("${FOO:%%}", &[], None, &[]),
        // wildcards
        (
            "${FOO/$NEEDLE/.} - ${FOO//$NEEDLE/.}",
            &[("FOO", "/foo*/*/*.txt"), ("NEEDLE", r"\*/")],
            Some("/foo.*/*.txt - /foo..*.txt"),
            &["FOO", "NEEDLE"],
        ),
        // `/` in patterns
        (
            "${FOO/$NEEDLE/} - ${FOO//$NEEDLE/}",
            &[("FOO", "/tmp/tmp/bar.txt"), ("NEEDLE", "/tmp")],
            Some("/tmp/bar.txt - /bar.txt"),
            &["FOO", "NEEDLE"],
        ),
        (
            "${FOO/$NEEDLE/$REPLACEMENT} - ${FOO//$NEEDLE/$REPLACEMENT}",
            &[
                ("FOO", "/a/foo/b/c.txt"),
                ("NEEDLE", "/?/"),
                ("REPLACEMENT", "/"),
            ],
            Some("/foo/b/c.txt - /foo/c.txt"),
            &["FOO", "NEEDLE", "REPLACEMENT"],
        ),
        (
            "${FOO/$NEEDLE/$REPLACEMENT}",
            &[
                ("FOO", "http://google.de"),
                ("NEEDLE", "http://"),
                ("REPLACEMENT", "https://"),
            ],
            Some("https://google.de"),
            &["FOO", "NEEDLE", "REPLACEMENT"],
        ),
        // escaped separators
        (
            r"${FOO//\//\/}",
            &[("FOO", "/tmp/foo.txt")],
            Some(r"\/tmp\/foo.txt"),
            &["FOO"],
        ),
        // partial input: not guaranteed behaviour in buildkit, but must not crash
        (
            "${FOO/$BAR/ww}",
            &[("FOO", "xxyy"), ("BAR", "")],
            Some("wwxxyy"),
            &["FOO", "BAR"],
        ),
        ("${FOO//ww}", &[("FOO", "xxyy")], None, &[]),
        ("${FOO//}", &[("FOO", "xxyy")], None, &[]),
        ("${FOO///}", &[("FOO", "xxyy")], Some("xxyy"), &["FOO"]),
        ("${FOO///}", &[], Some(""), &["FOO"]),
    ];

    #[test]
    fn buildkit_process_with_matches() {
        for &(input, pairs, expected, refs) in PROCESS_WITH_MATCHES {
            let env = env_of(pairs);
            let got = with_matches(input, &env);
            match expected {
                None => assert!(got.is_err(), "input {input:?} should fail, got {got:?}"),
                Some(expected) => {
                    let (result, mut got_refs) =
                        got.unwrap_or_else(|err| panic!("input {input:?}: {err}"));
                    assert_eq!(result, expected, "input {input:?}");
                    let mut refs: Vec<&str> = refs.to_vec();
                    refs.sort();
                    got_refs.sort();
                    assert_eq!(got_refs, refs, "input {input:?}");
                }
            }
        }
    }

    /// buildkit `TestProcessWithMatchesPlatform`.
    #[test]
    fn buildkit_process_with_matches_platform() {
        let release = "something-${VERSION}.${TARGETOS}-${TARGETARCH}${TARGETVARIANT:+-${TARGETVARIANT}}.tar.gz";
        let base = [("VERSION", "v1.2.3"), ("TARGETOS", "linux")];
        let env = env_of(&[
            base[0],
            base[1],
            ("TARGETARCH", "arm"),
            ("TARGETVARIANT", "v7"),
        ]);
        assert_eq!(
            with_matches(release, &env).unwrap().0,
            "something-v1.2.3.linux-arm-v7.tar.gz"
        );
        let env = env_of(&[
            base[0],
            base[1],
            ("TARGETARCH", "arm64"),
            ("TARGETVARIANT", ""),
        ]);
        assert_eq!(
            with_matches(release, &env).unwrap().0,
            "something-v1.2.3.linux-arm64.tar.gz"
        );
        let env = env_of(&[base[0], base[1], ("TARGETARCH", "arm64")]);
        let (result, refs) = with_matches(release, &env).unwrap();
        assert_eq!(result, "something-v1.2.3.linux-arm64.tar.gz");
        assert_eq!(refs, ["VERSION", "TARGETOS", "TARGETARCH", "TARGETVARIANT"]);
    }

    /// buildkit `TestConvertShellPatternToRegex` (the valid and invalid patterns).
    #[test]
    fn buildkit_pattern_compile() {
        use Token::*;
        assert_eq!(compile_pattern("*").unwrap(), [Many]);
        assert_eq!(compile_pattern("?").unwrap(), [One]);
        assert_eq!(compile_pattern(r"\*").unwrap(), [Literal('*')]);
        let specials = compile_pattern(r"(()[]{\}^$.\*\?|\\").unwrap();
        let expected: Vec<Token> = r"(()[]{}^$.*?|\".chars().map(Literal).collect();
        assert_eq!(specials, expected);
        for invalid in [r"\", r"\x", r"\\\"] {
            assert!(compile_pattern(invalid).is_err(), "{invalid:?}");
        }
    }

    #[test]
    fn refs_in_textual_order_deduplicated() {
        let env = env_of(&[("A", "a")]);
        let (result, refs) = with_matches("$B ${A:-$C} ${B}x $A $1", &env).unwrap();
        assert_eq!(result, " a x a ");
        assert_eq!(refs, ["B", "A", "C", "1"]);
        let (_, refs) = with_matches("${A/$P/$R} '$Q' \"$S\" \\$T $", &env).unwrap();
        assert_eq!(refs, ["A", "P", "R", "S"]);
    }

    #[test]
    fn defaults_and_alternatives() {
        let env = env_of(&[("SET", "v"), ("EMPTY", "")]);
        let cases = [
            ("${SET:-d}", "v"),
            ("${EMPTY:-d}", "d"),
            ("${UNSET:-d}", "d"),
            ("${SET-d}", "v"),
            ("${EMPTY-d}", ""),
            ("${UNSET-d}", "d"),
            ("${SET:+a}", "a"),
            ("${EMPTY:+a}", ""),
            ("${UNSET:+a}", ""),
            ("${SET+a}", "a"),
            ("${EMPTY+a}", "a"),
            ("${UNSET+a}", ""),
            ("${SET?e}", "v"),
            ("${EMPTY?e}", ""),
            ("${UNSET:-${EMPTY:-${SET}}}", "v"),
            ("${UNSET:-'a b'}", "a b"),
            (r#"${UNSET:-"x${SET}y"}"#, "xvy"),
            ("${UNSET:-a}}", "a}"),
        ];
        for (input, expected) in cases {
            assert_eq!(word(input, &env).unwrap(), expected, "input {input:?}");
        }
    }

    #[test]
    fn pattern_trims() {
        let env = env_of(&[("P", "/usr/local/bin/tool.tar.gz"), ("NL", "a\nb")]);
        let cases = [
            ("${P#*/}", "usr/local/bin/tool.tar.gz"),
            ("${P##*/}", "tool.tar.gz"),
            ("${P%.*}", "/usr/local/bin/tool.tar"),
            ("${P%%.*}", "/usr/local/bin/tool"),
            ("${P%/*}", "/usr/local/bin"),
            ("${P#nomatch}", "/usr/local/bin/tool.tar.gz"),
            ("${P%?z}", "/usr/local/bin/tool.tar."),
            ("${UNSET#x}", ""),
            ("${P/local/opt}", "/usr/opt/bin/tool.tar.gz"),
            ("${P//o/0}", "/usr/l0cal/bin/t00l.tar.gz"),
            ("${P/*./X}", "Xgz"),
            ("${P/#/x}", "/usr/local/bin/tool.tar.gz"),
            // `*` and `?` do not cross newlines, like Go's `.`.
            ("${NL#*}", "a\nb"),
            ("${NL##*}", "\nb"),
            ("${NL/?/x}", "x\nb"),
            ("${NL//?/x}", "x\nx"),
        ];
        for (input, expected) in cases {
            assert_eq!(word(input, &env).unwrap(), expected, "input {input:?}");
        }
    }

    #[test]
    fn replace_all_empty_matches_like_go() {
        let toks = compile_pattern("").unwrap();
        assert_eq!(replace(&toks, "xy", "-", true), "-x-y-");
        assert_eq!(replace(&toks, "", "-", true), "-");
        let toks = compile_pattern("x*").unwrap();
        assert_eq!(replace(&toks, "axbxc", "-", true), "a-");
        let toks = compile_pattern("*").unwrap();
        assert_eq!(replace(&toks, "ab", "-", true), "-");
    }

    #[test]
    fn replacement_is_literal() {
        let env = env_of(&[("V", "abc"), ("R", "$0")]);
        assert_eq!(word("${V/b/$R}", &env).unwrap(), "a$0c");
    }

    #[test]
    fn quotes_inside_patterns() {
        let env = env_of(&[("V", r"a\bc"), ("W", "abc")]);
        // Quotes are removed but do not make wildcards literal; inside double quotes a backslash that
        // escapes nothing reaches the pattern as an escaped backslash.
        assert_eq!(word(r#"${V#"a\b"}"#, &env).unwrap(), "c");
        assert_eq!(word("${W#'a'}", &env).unwrap(), "bc");
        assert_eq!(word("${W#'*'}", &env).unwrap(), "abc");
        assert_eq!(word("${W##'*'}", &env).unwrap(), "");
    }

    #[test]
    fn invalid_patterns() {
        let env = env_of(&[("V", "abc")]);
        let err = word(r"${V#\x}", &env).unwrap_err();
        assert_eq!(
            err,
            ShellError::InvalidPattern {
                pattern: r"\x".into(),
                reason: r"invalid escape '\x'".into()
            }
        );
        assert!(word(r"${V%a\}", &env).is_err());
    }

    #[test]
    fn errors() {
        let env = HashMap::new();
        let cases = [
            ("'abc", ShellError::UnterminatedSingleQuote),
            ("\"abc", ShellError::UnterminatedDoubleQuote),
            ("\"abc\\", ShellError::UnterminatedDoubleQuote),
            ("${", ShellError::MissingBrace),
            ("${a", ShellError::MissingBrace),
            ("${a:", ShellError::MissingBrace),
            ("${a:-b", ShellError::MissingBrace),
            ("${a:-'b}", ShellError::MissingBrace),
            ("${a/b", ShellError::MissingSlash),
            ("${a/b/c", ShellError::MissingBrace),
            ("${}", ShellError::BadSubstitution),
            ("${{a}}", ShellError::BadSubstitution),
            ("${:-a}", ShellError::BadSubstitution),
            ("${a:-${}}", ShellError::BadSubstitution),
            ("${a=b}", ShellError::UnsupportedModifier("=".into())),
            ("${a:=b}", ShellError::UnsupportedModifier(":=".into())),
            ("${a:#b}", ShellError::UnsupportedModifier(":#".into())),
            ("${a b}", ShellError::UnsupportedModifier(" ".into())),
            ("${.}", ShellError::UnsupportedModifier(".".into())),
            ("${#a}", ShellError::UnsupportedModifier("a".into())),
        ];
        for (input, expected) in cases {
            assert_eq!(word(input, &env), Err(expected), "input {input:?}");
        }
        assert_eq!(
            ShellError::MissingBrace.to_string(),
            "syntax error: missing '}'"
        );
        assert_eq!(
            ShellError::MissingSlash.to_string(),
            "syntax error: missing '/' in ${}"
        );
        assert_eq!(
            ShellError::UnsupportedModifier(":=".into()).to_string(),
            "unsupported modifier (:=) in substitution"
        );
    }

    #[test]
    fn lone_dollars_and_escapes() {
        let env = env_of(&[("A", "x")]);
        let cases = [
            ("$", "$"),
            ("a$", "a$"),
            ("$ a", "$ a"),
            ("$/", "$/"),
            ("$'A'", "$A"),
            ("\\$A", "$A"),
            ("\\\\$A", "\\x"),
            ("a\\", "a"),
            ("a\\ b", "a b"),
            ("\"a\\b\"", "a\\b"),
            ("\"a\\\"b\"", "a\"b"),
            ("\"a\\\\b\"", "a\\b"),
            ("'a\\'", "a\\"),
            ("$A_1", ""),
            ("${A}_1", "x_1"),
            ("$Aé", ""),
        ];
        for (input, expected) in cases {
            assert_eq!(word(input, &env).unwrap(), expected, "input {input:?}");
        }
    }

    #[test]
    fn backtick_escape() {
        let env = env_of(&[("A", "x")]);
        let lexer = Lexer::new('`');
        let get = |name: &str| env.get(name).cloned();
        assert_eq!(
            lexer.process_word(r"C:\path\$A", &get).unwrap(),
            r"C:\path\x"
        );
        assert_eq!(lexer.process_word("`$A", &get).unwrap(), "$A");
        assert_eq!(lexer.process_word("a` b", &get).unwrap(), "a b");
        assert_eq!(lexer.process_word("\"a`\"b\"", &get).unwrap(), "a\"b");
        assert_eq!(lexer.process_word("\"a\\\"", &get).unwrap(), "a\\");
        assert_eq!(lexer.process_word("a`", &get).unwrap(), "a");
        assert_eq!(
            lexer.process_words(r"C:\a` b c", &get).unwrap(),
            [r"C:\a b", "c"]
        );
    }

    #[test]
    fn word_splitting() {
        let env = env_of(&[("LIST", " a  b "), ("EMPTY", "")]);
        let cases: &[(&str, &[&str])] = &[
            ("  80/tcp   443  ", &["80/tcp", "443"]),
            ("$LIST", &["a", "b"]),
            ("x$LIST", &["x", "a", "b"]),
            ("\"$LIST\"", &[" a  b "]),
            ("a \"\" b", &["a", "b"]),
            ("'' $EMPTY", &[]),
            ("a\\ b c", &["a b", "c"]),
            ("a\tb\nc", &["a", "b", "c"]),
            ("${EMPTY:-x y}", &["x", "y"]),
            ("'a  b'c d", &["a  bc", "d"]),
            // Prefix text before a nested expansion stays in its word (buildkit since v0.15 loses it,
            // a regression of its shared words buffer).
            ("pre${UNSET:-a}post", &["preapost"]),
            // A heredoc marker keeps its blanks.
            ("cat << EOF", &["cat", "<< EOF"]),
            ("cat <<EOF x", &["cat", "<<EOF", "x"]),
            ("a<b", &["a<b"]),
        ];
        for (input, expected) in cases {
            assert_eq!(words(input, &env).unwrap(), *expected, "input {input:?}");
        }
        // ProcessWord keeps all the whitespace.
        assert_eq!(word("  a  $LIST ", &env).unwrap(), "  a   a  b  ");
    }

    #[test]
    fn default_lexer_uses_backslash() {
        assert_eq!(Lexer::default(), Lexer::new('\\'));
        assert_eq!(Lexer::new('`').escape, '`');
    }
}
