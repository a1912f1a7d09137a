//! `.dockerignore` files, with the rules of Docker's build context
//! (`github.com/moby/patternmatcher` and its `ignorefile` package, which buildkit's `dockerignore` wraps).
//!
//! Reading the file:
//! - a UTF-8 byte order mark is dropped; lines starting with `#` are comments (only in the first column);
//! - each line is trimmed, blank lines are skipped;
//! - a leading `!` makes an exception (re-includes what earlier patterns excluded);
//! - the pattern is cleaned like Go's `filepath.Clean` (`./a//b/../c` is `a/c`, a trailing `/` goes) and a
//!   leading `/` is removed, so `/foo` and `foo` mean the same.
//!
//! Matching a path (relative to the context root, `/`-separated):
//! - the last pattern that matches decides, an exception un-excluding;
//! - a pattern matching a parent directory matches everything below it (`node_modules` excludes
//!   `node_modules/a/b`, and `!dir/keep` re-includes `dir/keep/x`);
//! - `*` matches any run of characters but `/`, `?` one character but `/`, `[a-z]` / `[^a-z]` one character
//!   of a class, `\` escapes the next character, as in Go's `filepath.Match`;
//! - `**` matches any number of directories, including none (`**/*.go`, `a/**/b`); a trailing `/**`
//!   matches everything below (`dir/**` matches `dir/x` but not `dir` itself);
//! - a pattern starting with `**` and otherwise free of wildcards is a suffix test, as patternmatcher does
//!   (`**.go`, `**/foo`, which also matches `foo`).
//!
//! Docker always sends the Dockerfile and the `.dockerignore` file itself, even when a pattern (such as
//! `Dockerfile` or `.dockerignore`) excludes them; that exception is the caller's business, this module only
//! answers what the patterns say.

use thiserror::Error;

/// A parsed `.dockerignore`.
#[derive(Debug, Clone, Default)]
pub struct DockerIgnore {
    patterns: Vec<Pattern>,
    has_exceptions: bool,
}

/// Why a `.dockerignore` could not be parsed.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum IgnoreError {
    /// A line that is only `!` (an exception of nothing).
    #[error("line {line}: illegal exclusion pattern: \"!\"")]
    IllegalExclusion {
        /// The line number, from 1.
        line: usize,
    },
    /// A malformed pattern: an unterminated or empty `[` class, a bad range, a trailing `\`.
    #[error("line {line}: syntax error in pattern {pattern:?}: {reason}")]
    BadPattern {
        /// The line number, from 1.
        line: usize,
        /// The pattern as cleaned (with its `!` if any).
        pattern: String,
        /// What is wrong with it.
        reason: String,
    },
}

#[derive(Debug, Clone)]
struct Pattern {
    exclusion: bool,
    text: String,
    shape: Shape,
}

/// How a pattern is tested, as patternmatcher classifies it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Shape {
    /// No wildcard at all: the path must be the pattern.
    Exact,
    /// Literal text then a final `**`: the path must start with the text.
    Prefix(String),
    /// A leading `**` then literal text: the path must end with the text (or be it without its `/`).
    Suffix(String),
    /// Anything else.
    Glob(Vec<Glob>),
}

/// One element of a glob.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Glob {
    Literal(char),
    /// `?`: one character but `/`.
    One,
    /// `*`: any run of characters without `/`.
    Star,
    /// `**` (with its `/`) inside a pattern: nothing, or anything ending with `/`.
    AnyDirs,
    /// `**` at the end of a pattern: anything.
    Rest,
    /// `[...]`: one character in (or, negated, not in) the ranges.
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

impl DockerIgnore {
    /// Parses the file's text: `#` comment lines, blank lines skipped, each pattern trimmed, `!` exceptions,
    /// patterns cleaned like Go's filepath.Clean, a leading `/` stripped; errors for bad patterns (e.g.
    /// unterminated `[`) are returned.
    pub fn parse(text: &str) -> Result<DockerIgnore, IgnoreError> {
        Self::from_patterns(read_patterns(text))
    }

    /// An empty matcher (no file).
    pub fn empty() -> DockerIgnore {
        DockerIgnore::default()
    }

    /// Whether `path` (relative to the context root, `/`-separated, no leading `./`) is excluded, with
    /// moby/patternmatcher's semantics: the last matching pattern wins, a pattern that matches a parent
    /// directory also excludes everything below it, `**` matches any number of directories, `*`, `?`, `[...]`
    /// classes and `\` escapes as in Go's filepath.Match.
    ///
    /// The path is cleaned first; the context root itself (`.` or an empty path) is never excluded.
    pub fn is_excluded(&self, path: &str) -> bool {
        let path = clean(path);
        if path == "." {
            return false;
        }
        let mut excluded = false;
        for pattern in &self.patterns {
            // A pattern that cannot change the answer is not tried.
            if pattern.exclusion != excluded {
                continue;
            }
            if pattern.matches_or_parent_matches(&path) {
                excluded = !pattern.exclusion;
            }
        }
        excluded
    }

    /// Whether an excluded directory must still be walked because some `!` exception could match below it
    /// (patternmatcher's "Exclusions()" + dir-prefix logic), so a context walker can skip whole excluded
    /// trees when this is false.
    ///
    /// This is conservative: `true` when an exception might re-include something below `dir`, also for
    /// wildcard exceptions such as `!**/*.go` (which Docker's own prefix test misses). A directory that is
    /// not excluded at all (or the root) must of course be walked, so the answer is `true` for it too.
    pub fn must_descend(&self, dir: &str) -> bool {
        let dir = clean(dir);
        if dir == "." || !self.is_excluded(&dir) {
            return true;
        }
        if !self.has_exceptions {
            return false;
        }
        // Every pattern matching `dir` (or a parent) matches everything below it too, so only the
        // exceptions after the last such pattern (which excludes) can re-include something below.
        let Some(last) = self
            .patterns
            .iter()
            .rposition(|pattern| pattern.matches_or_parent_matches(&dir))
        else {
            return true;
        };
        let below = format!("{dir}/");
        self.patterns[last + 1..]
            .iter()
            .any(|pattern| pattern.exclusion && pattern.may_match_below(&below))
    }

    /// Whether there are no patterns at all (nothing is excluded).
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Builds the matcher from already-read patterns (patternmatcher's `New`), with their line numbers.
    fn from_patterns<S: AsRef<str>>(
        lines: impl IntoIterator<Item = (usize, S)>,
    ) -> Result<DockerIgnore, IgnoreError> {
        let mut ignore = DockerIgnore::default();
        for (line, pattern) in lines {
            let pattern = pattern.as_ref().trim();
            if pattern.is_empty() {
                continue;
            }
            let cleaned = clean(pattern);
            let (exclusion, text) = match cleaned.strip_prefix('!') {
                Some("") => return Err(IgnoreError::IllegalExclusion { line }),
                Some(rest) => (true, rest),
                None => (false, cleaned.as_str()),
            };
            let shape = compile(text).map_err(|reason| IgnoreError::BadPattern {
                line,
                pattern: cleaned.clone(),
                reason,
            })?;
            ignore.has_exceptions |= exclusion;
            ignore.patterns.push(Pattern {
                exclusion,
                text: text.to_string(),
                shape,
            });
        }
        Ok(ignore)
    }
}

/// The patterns of a `.dockerignore` text, with their line numbers (moby/patternmatcher's
/// `ignorefile.ReadAll`).
fn read_patterns(text: &str) -> Vec<(usize, String)> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut patterns = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.starts_with('#') {
            continue;
        }
        let mut pattern = line.trim();
        if pattern.is_empty() {
            continue;
        }
        let invert = pattern.starts_with('!');
        if invert {
            pattern = pattern[1..].trim();
        }
        let mut cleaned = String::new();
        if !pattern.is_empty() {
            cleaned = clean(pattern);
            if cleaned.len() > 1 && cleaned.starts_with('/') {
                cleaned.remove(0);
            }
        }
        if invert {
            cleaned.insert(0, '!');
        }
        patterns.push((index + 1, cleaned));
    }
    patterns
}

/// Go's `path.Clean`: the shortest equivalent path (no `//`, `.` or resolvable `..` elements, no trailing
/// `/`), `.` for an empty result.
fn clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|last| *last != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            part => parts.push(part),
        }
    }
    let joined = parts.join("/");
    if rooted {
        format!("/{joined}")
    } else if joined.is_empty() {
        ".".to_string()
    } else {
        joined
    }
}

/// Compiles a cleaned pattern (without its `!`), checking its syntax like Go's `filepath.Match` does.
fn compile(pattern: &str) -> Result<Shape, String> {
    #[derive(PartialEq, Eq)]
    enum Kind {
        Exact,
        Prefix,
        Suffix,
        Glob,
    }
    let chars: Vec<char> = pattern.chars().collect();
    let mut kind = Kind::Exact;
    let mut globs = Vec::new();
    let mut i = 0;
    let mut first = true;
    while i < chars.len() {
        let ch = chars[i];
        i += 1;
        match ch {
            '*' if chars.get(i) == Some(&'*') => {
                i += 1;
                // `**/` is the same as `**`.
                if chars.get(i) == Some(&'/') {
                    i += 1;
                }
                if i == chars.len() {
                    if kind == Kind::Exact {
                        kind = Kind::Prefix;
                    } else {
                        globs.push(Glob::Rest);
                        kind = Kind::Glob;
                    }
                } else {
                    globs.push(Glob::AnyDirs);
                    kind = Kind::Glob;
                }
                if first {
                    kind = Kind::Suffix;
                }
            }
            '*' => {
                globs.push(Glob::Star);
                kind = Kind::Glob;
            }
            '?' => {
                globs.push(Glob::One);
                kind = Kind::Glob;
            }
            '\\' => {
                let Some(&escaped) = chars.get(i) else {
                    return Err("trailing backslash".to_string());
                };
                i += 1;
                globs.push(Glob::Literal(escaped));
                kind = Kind::Glob;
            }
            '[' => {
                globs.push(parse_class(&chars, &mut i)?);
                kind = Kind::Glob;
            }
            ']' => {
                globs.push(Glob::Literal(']'));
                kind = Kind::Glob;
            }
            other => globs.push(Glob::Literal(other)),
        }
        first = false;
    }
    Ok(match kind {
        Kind::Exact => Shape::Exact,
        Kind::Prefix => Shape::Prefix(pattern[..pattern.len() - 2].to_string()),
        Kind::Suffix => Shape::Suffix(pattern[2..].to_string()),
        Kind::Glob => Shape::Glob(globs),
    })
}

/// A `[...]` class, `i` being just after the `[`: an optional `^`, then at least one character or
/// `lo-hi` range (`\` escaping; an unescaped `-` or `]` is not a character), then `]`.
fn parse_class(chars: &[char], i: &mut usize) -> Result<Glob, String> {
    let negated = chars.get(*i) == Some(&'^');
    if negated {
        *i += 1;
    }
    let mut ranges = Vec::new();
    loop {
        if chars.get(*i) == Some(&']') && !ranges.is_empty() {
            *i += 1;
            return Ok(Glob::Class { negated, ranges });
        }
        let lo = class_char(chars, i)?;
        let mut hi = lo;
        if chars.get(*i) == Some(&'-') {
            *i += 1;
            hi = class_char(chars, i)?;
        }
        if lo > hi {
            return Err(format!("invalid character class range {lo}-{hi}"));
        }
        ranges.push((lo, hi));
    }
}

fn class_char(chars: &[char], i: &mut usize) -> Result<char, String> {
    let unterminated = || "unterminated character class".to_string();
    let mut ch = *chars.get(*i).ok_or_else(unterminated)?;
    match ch {
        '-' | ']' => return Err(format!("unexpected {ch:?} in character class")),
        '\\' => {
            *i += 1;
            ch = *chars.get(*i).ok_or_else(unterminated)?;
        }
        _ => {}
    }
    *i += 1;
    // Something (at least the closing `]`) must follow.
    if *i >= chars.len() {
        return Err(unterminated());
    }
    Ok(ch)
}

impl Pattern {
    fn matches(&self, path: &str) -> bool {
        match &self.shape {
            Shape::Exact => path == self.text,
            Shape::Prefix(prefix) => path.starts_with(prefix.as_str()),
            Shape::Suffix(suffix) => {
                // `**/foo` also matches `foo` itself.
                path.ends_with(suffix.as_str())
                    || suffix.strip_prefix('/').is_some_and(|rest| path == rest)
            }
            Shape::Glob(globs) => {
                let text: Vec<char> = path.chars().collect();
                GlobMatch::new(globs, &text, false).run()
            }
        }
    }

    /// The path or one of its parent directories matches.
    fn matches_or_parent_matches(&self, path: &str) -> bool {
        self.matches(path)
            || path
                .match_indices('/')
                .any(|(at, _)| self.matches(&path[..at]))
    }

    /// Whether some path starting with `below` (a directory and its `/`) could match.
    fn may_match_below(&self, below: &str) -> bool {
        match &self.shape {
            Shape::Exact => self.text.starts_with(below),
            Shape::Prefix(prefix) => {
                prefix.starts_with(below) || below.starts_with(prefix.as_str())
            }
            // Some `<below>...<suffix>` always exists.
            Shape::Suffix(_) => true,
            Shape::Glob(globs) => {
                let text: Vec<char> = below.chars().collect();
                GlobMatch::new(globs, &text, true).run()
            }
        }
    }
}

/// A glob matched against a whole text, or, `partial`, against a beginning of some text (any state still
/// alive at the end of the text counts as a match).
struct GlobMatch<'a> {
    globs: &'a [Glob],
    text: &'a [char],
    partial: bool,
    /// `(glob, position)` → 0 unknown, 1 no match, 2 match.
    memo: Vec<u8>,
}

impl<'a> GlobMatch<'a> {
    fn new(globs: &'a [Glob], text: &'a [char], partial: bool) -> Self {
        GlobMatch {
            globs,
            text,
            partial,
            memo: vec![0; (globs.len() + 1) * (text.len() + 1)],
        }
    }

    fn run(&mut self) -> bool {
        self.at(0, 0)
    }

    fn at(&mut self, glob: usize, pos: usize) -> bool {
        let len = self.text.len();
        if pos == len && self.partial {
            return true;
        }
        let Some(current) = self.globs.get(glob) else {
            return pos == len;
        };
        let key = glob * (len + 1) + pos;
        match self.memo[key] {
            1 => return false,
            2 => return true,
            _ => {}
        }
        let next = self.text.get(pos).copied();
        let found = match current {
            Glob::Literal(ch) => next == Some(*ch) && self.at(glob + 1, pos + 1),
            Glob::One => next.is_some_and(|c| c != '/') && self.at(glob + 1, pos + 1),
            Glob::Class { negated, ranges } => {
                next.is_some_and(|c| ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *negated)
                    && self.at(glob + 1, pos + 1)
            }
            Glob::Star => {
                let run = self.text[pos..].iter().take_while(|&&c| c != '/').count();
                (pos..=pos + run).any(|stop| self.at(glob + 1, stop))
            }
            // patternmatcher's `(.*/)?`; its `.` does not match a newline.
            Glob::AnyDirs => {
                let run = self.text[pos..].iter().take_while(|&&c| c != '\n').count();
                self.at(glob + 1, pos)
                    || (pos..pos + run).any(|at| self.text[at] == '/' && self.at(glob + 1, at + 1))
                    || (self.partial && pos + run == len)
            }
            // patternmatcher's `.*`.
            Glob::Rest => {
                let run = self.text[pos..].iter().take_while(|&&c| c != '\n').count();
                (pos..=pos + run).any(|stop| self.at(glob + 1, stop))
            }
        };
        self.memo[key] = if found { 2 } else { 1 };
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A matcher from patterns as patternmatcher's `New` takes them (no `ReadAll` processing).
    fn new(patterns: &[&str]) -> Result<DockerIgnore, IgnoreError> {
        DockerIgnore::from_patterns(patterns.iter().enumerate().map(|(i, p)| (i + 1, *p)))
    }

    /// patternmatcher's `Matches(file, patterns)`: the file is cleaned, `.` never matches.
    fn matches(file: &str, patterns: &[&str]) -> Result<bool, IgnoreError> {
        Ok(new(patterns)?.is_excluded(file))
    }

    #[test]
    fn patternmatcher_small_cases() {
        // TestWildcardMatches, TestPatternMatches
        assert_eq!(matches("fileutils.go", &["*"]), Ok(true));
        assert_eq!(matches("fileutils.go", &["*.go"]), Ok(true));
        // TestExclusionPatternMatchesPatternBefore / After
        assert_eq!(
            matches("fileutils.go", &["!fileutils.go", "*.go"]),
            Ok(true)
        );
        assert_eq!(
            matches("fileutils.go", &["*.go", "!fileutils.go"]),
            Ok(false)
        );
        // TestPatternMatchesFolderExclusions, ...WithSlash..., ...Wildcard...
        assert_eq!(
            matches("docs/README.md", &["docs", "!docs/README.md"]),
            Ok(false)
        );
        assert_eq!(
            matches("docs/README.md", &["docs/", "!docs/README.md"]),
            Ok(false)
        );
        assert_eq!(
            matches("docs/README.md", &["docs/*", "!docs/README.md"]),
            Ok(false)
        );
        // TestExclusionPatternMatchesWholeDirectory
        assert_eq!(matches(".", &["*.go"]), Ok(false));
        // TestSingleExclamationError
        assert_eq!(
            matches("fileutils.go", &["!"]),
            Err(IgnoreError::IllegalExclusion { line: 1 })
        );
        // TestMatchesWithNoPatterns
        assert_eq!(matches("/any/path/there", &[]), Ok(false));
        // TestMatchesWithMalformedPatterns
        assert!(matches("/any/path/there", &["["]).is_err());
    }

    /// patternmatcher `TestMatches` (`tests`, plus the non-Windows `a\*b` case), checked like its
    /// `MatchesOrParentMatches` sub-test.
    const TEST_MATCHES: &[(&str, &str, bool)] = &[
        ("**", "file", true),
        ("**", "file/", true),
        ("**/", "file", true),
        ("**/", "file/", true),
        ("**", "/", true),
        ("**/", "/", true),
        ("**", "dir/file", true),
        ("**/", "dir/file", true),
        ("**", "dir/file/", true),
        ("**/", "dir/file/", true),
        ("**/**", "dir/file", true),
        ("**/**", "dir/file/", true),
        ("dir/**", "dir/file", true),
        ("dir/**", "dir/file/", true),
        ("dir/**", "dir/dir2/file", true),
        ("dir/**", "dir/dir2/file/", true),
        ("**/dir", "dir", true),
        ("**/dir", "dir/file", true),
        ("**/dir2/*", "dir/dir2/file", true),
        ("**/dir2/*", "dir/dir2/file/", true),
        ("**/dir2/**", "dir/dir2/dir3/file", true),
        ("**/dir2/**", "dir/dir2/dir3/file/", true),
        ("**file", "file", true),
        ("**file", "dir/file", true),
        ("**/file", "dir/file", true),
        ("**file", "dir/dir/file", true),
        ("**/file", "dir/dir/file", true),
        ("**/file*", "dir/dir/file", true),
        ("**/file*", "dir/dir/file.txt", true),
        ("**/file*txt", "dir/dir/file.txt", true),
        ("**/file*.txt", "dir/dir/file.txt", true),
        ("**/file*.txt*", "dir/dir/file.txt", true),
        ("**/**/*.txt", "dir/dir/file.txt", true),
        ("**/**/*.txt2", "dir/dir/file.txt", false),
        ("**/*.txt", "file.txt", true),
        ("**/**/*.txt", "file.txt", true),
        ("a**/*.txt", "a/file.txt", true),
        ("a**/*.txt", "a/dir/file.txt", true),
        ("a**/*.txt", "a/dir/dir/file.txt", true),
        ("a/*.txt", "a/dir/file.txt", false),
        ("a/*.txt", "a/file.txt", true),
        ("a/*.txt**", "a/file.txt", true),
        ("a[b-d]e", "ae", false),
        ("a[b-d]e", "ace", true),
        ("a[b-d]e", "aae", false),
        ("a[^b-d]e", "aze", true),
        (".*", ".foo", true),
        (".*", "foo", false),
        ("abc.def", "abcdef", false),
        ("abc.def", "abc.def", true),
        ("abc.def", "abcZdef", false),
        ("abc?def", "abcZdef", true),
        ("abc?def", "abcdef", false),
        (r"a\\", r"a\", true),
        ("**/foo/bar", "foo/bar", true),
        ("**/foo/bar", "dir/foo/bar", true),
        ("**/foo/bar", "dir/dir2/foo/bar", true),
        ("abc/**", "abc", false),
        ("abc/**", "abc/def", true),
        ("abc/**", "abc/def/ghi", true),
        ("**/.foo", ".foo", true),
        ("**/.foo", "bar.foo", false),
        ("a(b)c/def", "a(b)c/def", true),
        ("a(b)c/def", "a(b)c/xyz", false),
        ("a.|)$(}+{bc", "a.|)$(}+{bc", true),
        (
            "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
            "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
            true,
        ),
        (
            "dist/*.whl",
            "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
            true,
        ),
        (r"a\*b", "a*b", true),
    ];

    /// patternmatcher `TestMatches` (`multiPatternTests`).
    const MULTI_PATTERN_TESTS: &[(&[&str], &str, bool)] = &[
        (&["**", "!util/docker/web"], "util/docker/web/foo", false),
        (
            &["**", "!util/docker/web", "util/docker/web/foo"],
            "util/docker/web/foo",
            true,
        ),
        (
            &[
                "**",
                "!dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
            ],
            "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
            false,
        ),
        (
            &["**", "!dist/*.whl"],
            "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
            false,
        ),
    ];

    #[test]
    fn patternmatcher_test_matches() {
        for &(pattern, text, pass) in TEST_MATCHES {
            let ignore = new(&[pattern]).unwrap_or_else(|err| panic!("pattern {pattern:?}: {err}"));
            assert_eq!(
                ignore.is_excluded(text),
                pass,
                "pattern {pattern:?} text {text:?}"
            );
        }
        for &(patterns, text, pass) in MULTI_PATTERN_TESTS {
            let ignore = new(patterns).unwrap();
            assert_eq!(
                ignore.is_excluded(text),
                pass,
                "patterns {patterns:?} text {text:?}"
            );
        }
    }

    /// patternmatcher `matchTests` (taken from Go's `filepath.Match` tests), run through `Matches`:
    /// `None` means the pattern is rejected as malformed.
    const MATCH_TESTS: &[(&str, &str, Option<bool>)] = &[
        ("abc", "abc", Some(true)),
        ("*", "abc", Some(true)),
        ("*c", "abc", Some(true)),
        ("a*", "a", Some(true)),
        ("a*", "abc", Some(true)),
        ("a*", "ab/c", Some(true)),
        ("a*/b", "abc/b", Some(true)),
        ("a*/b", "a/c/b", Some(false)),
        ("a*b*c*d*e*/f", "axbxcxdxe/f", Some(true)),
        ("a*b*c*d*e*/f", "axbxcxdxexxx/f", Some(true)),
        ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", Some(false)),
        ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", Some(false)),
        ("a*b?c*x", "abxbbxdbxebxczzx", Some(true)),
        ("a*b?c*x", "abxbbxdbxebxczzy", Some(false)),
        ("ab[c]", "abc", Some(true)),
        ("ab[b-d]", "abc", Some(true)),
        ("ab[e-g]", "abc", Some(false)),
        ("ab[^c]", "abc", Some(false)),
        ("ab[^b-d]", "abc", Some(false)),
        ("ab[^e-g]", "abc", Some(true)),
        (r"a\*b", "a*b", Some(true)),
        (r"a\*b", "ab", Some(false)),
        ("a?b", "a☺b", Some(true)),
        ("a[^a]b", "a☺b", Some(true)),
        ("a???b", "a☺b", Some(false)),
        ("a[^a][^a][^a]b", "a☺b", Some(false)),
        ("[a-ζ]*", "α", Some(true)),
        ("*[a-ζ]", "A", Some(false)),
        ("a?b", "a/b", Some(false)),
        ("a*b", "a/b", Some(false)),
        (r"[\]a]", "]", Some(true)),
        (r"[\-]", "-", Some(true)),
        (r"[x\-]", "x", Some(true)),
        (r"[x\-]", "-", Some(true)),
        (r"[x\-]", "z", Some(false)),
        (r"[\-x]", "x", Some(true)),
        (r"[\-x]", "-", Some(true)),
        (r"[\-x]", "a", Some(false)),
        ("[]a]", "]", None),
        ("[-]", "-", None),
        ("[x-]", "x", None),
        ("[x-]", "-", None),
        ("[x-]", "z", None),
        ("[-x]", "x", None),
        ("[-x]", "-", None),
        ("[-x]", "a", None),
        (r"\", "a", None),
        ("[a-b-c]", "a", None),
        ("[", "a", None),
        ("[^", "a", None),
        ("[^bc", "a", None),
        ("a[", "a", None),
        ("a[", "ab", None),
        ("*x", "xxx", Some(true)),
    ];

    #[test]
    fn patternmatcher_match_tests() {
        for &(pattern, text, expected) in MATCH_TESTS {
            let got = matches(text, &[pattern]);
            match expected {
                Some(expected) => {
                    assert_eq!(got, Ok(expected), "pattern {pattern:?} text {text:?}")
                }
                None => assert!(
                    matches!(got, Err(IgnoreError::BadPattern { .. })),
                    "pattern {pattern:?} should be rejected, got {got:?}"
                ),
            }
        }
    }

    /// patternmatcher `compileTests`: the match type each pattern gets.
    #[test]
    fn patternmatcher_compile_tests() {
        use Glob::*;
        let shape = |pattern: &str| compile(&clean(pattern)).unwrap();
        let glob = |pattern: &str| match shape(pattern) {
            Shape::Glob(globs) => globs,
            other => panic!("pattern {pattern:?} compiled to {other:?}"),
        };
        let lit = |text: &str| text.chars().map(Literal).collect::<Vec<_>>();
        assert_eq!(glob("*"), [Star]);
        assert_eq!(glob("file*"), [lit("file"), vec![Star]].concat());
        assert_eq!(glob("*file"), [vec![Star], lit("file")].concat());
        assert_eq!(glob("a*/b"), [lit("a"), vec![Star], lit("/b")].concat());
        assert_eq!(shape("**"), Shape::Suffix(String::new()));
        assert_eq!(glob("**/**"), [AnyDirs, Rest]);
        assert_eq!(shape("dir/**"), Shape::Prefix("dir/".into()));
        assert_eq!(shape("**/dir"), Shape::Suffix("/dir".into()));
        assert_eq!(
            glob("**/dir2/*"),
            [vec![AnyDirs], lit("dir2/"), vec![Star]].concat()
        );
        assert_eq!(
            glob("**/dir2/**"),
            [vec![AnyDirs], lit("dir2/"), vec![Rest]].concat()
        );
        assert_eq!(shape("**file"), Shape::Suffix("file".into()));
        assert_eq!(
            glob("**/file*txt"),
            [vec![AnyDirs], lit("file"), vec![Star], lit("txt")].concat()
        );
        assert_eq!(
            glob("**/**/*.txt"),
            [vec![AnyDirs, AnyDirs, Star], lit(".txt")].concat()
        );
        let class = Class {
            negated: false,
            ranges: vec![('b', 'd')],
        };
        assert_eq!(glob("a[b-d]e"), [Literal('a'), class, Literal('e')]);
        assert_eq!(glob(".*"), [Literal('.'), Star]);
        assert_eq!(shape("abc.def"), Shape::Exact);
        assert_eq!(
            glob("abc?def"),
            [lit("abc"), vec![One], lit("def")].concat()
        );
        assert_eq!(shape("**/foo/bar"), Shape::Suffix("/foo/bar".into()));
        assert_eq!(shape("a(b)c/def"), Shape::Exact);
        assert_eq!(shape("a.|)$(}+{bc"), Shape::Exact);
        assert_eq!(
            shape("dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl"),
            Shape::Exact
        );
    }

    /// patternmatcher `TestCleanPatterns*`.
    #[test]
    fn patternmatcher_clean_patterns() {
        assert_eq!(new(&["docs", "config"]).unwrap().patterns.len(), 2);
        assert_eq!(new(&["docs", "config", ""]).unwrap().patterns.len(), 2);
        assert!(new(&["docs", "!docs/README.md"]).unwrap().has_exceptions);
        assert!(new(&["docs", "  !docs/README.md"]).unwrap().has_exceptions);
        assert!(new(&["docs", "!docs/README.md  "]).unwrap().has_exceptions);
        assert!(!new(&["docs"]).unwrap().has_exceptions);
        assert!(new(&["!"]).is_err());
    }

    /// patternmatcher `ignorefile.TestReadAll`.
    #[test]
    fn ignorefile_read_all() {
        assert!(read_patterns("").is_empty());
        let content = "test1\n/test2\n/a/file/here\n\nlastfile\n# this is a comment\n! /inverted/abs/path\n!\n! ";
        let got: Vec<String> = read_patterns(content).into_iter().map(|(_, p)| p).collect();
        assert_eq!(
            got,
            [
                "test1",
                "test2",
                "a/file/here",
                "lastfile",
                "!inverted/abs/path",
                "!",
                "!"
            ]
        );
        let lines: Vec<usize> = read_patterns(content)
            .into_iter()
            .map(|(line, _)| line)
            .collect();
        assert_eq!(lines, [1, 2, 3, 5, 7, 8, 9]);
        // And the `!` lines are then rejected, with their line number.
        assert_eq!(
            DockerIgnore::parse(content).unwrap_err(),
            IgnoreError::IllegalExclusion { line: 8 }
        );
    }

    #[test]
    fn read_patterns_details() {
        let got: Vec<String> = read_patterns(
            "\u{feff}# comment\r\n  # not a comment\r\n./a//b/../c/\r\n\t/x/ \n!./y\n/\n!/\n*.md\n",
        )
        .into_iter()
        .map(|(_, p)| p)
        .collect();
        assert_eq!(
            got,
            ["# not a comment", "a/c", "x", "!y", "/", "!/", "*.md"]
        );
        // `!/` cleans to `!`: an illegal exclusion, as in Docker.
        assert!(matches!(
            DockerIgnore::parse("!/"),
            Err(IgnoreError::IllegalExclusion { line: 1 })
        ));
        // A BOM only counts at the very start.
        assert_eq!(read_patterns("a\n\u{feff}b")[1].1, "\u{feff}b");
    }

    /// Go `path.Clean` cases (from Go's `path` tests).
    #[test]
    fn clean_like_go() {
        let cases = [
            ("", "."),
            ("abc", "abc"),
            ("abc/def", "abc/def"),
            ("a/b/c", "a/b/c"),
            (".", "."),
            ("..", ".."),
            ("../..", "../.."),
            ("../../abc", "../../abc"),
            ("/abc", "/abc"),
            ("/", "/"),
            ("abc/", "abc"),
            ("abc/def/", "abc/def"),
            ("/abc/", "/abc"),
            ("abc//def//ghi", "abc/def/ghi"),
            ("//abc", "/abc"),
            ("///abc", "/abc"),
            ("//abc//", "/abc"),
            ("abc//", "abc"),
            ("abc/./def", "abc/def"),
            ("/./abc/def", "/abc/def"),
            ("abc/.", "abc"),
            ("abc/def/ghi/../jkl", "abc/def/jkl"),
            ("abc/def/../ghi/../jkl", "abc/jkl"),
            ("abc/def/..", "abc"),
            ("abc/def/../..", "."),
            ("/abc/def/../..", "/"),
            ("abc/def/../../..", ".."),
            ("/abc/def/../../..", "/"),
            ("abc/def/../../../ghi/jkl/../../../mno", "../../mno"),
            ("abc/./../def", "def"),
            ("abc//./../def", "def"),
            ("abc/../../././../def", "../../def"),
        ];
        for (input, expected) in cases {
            assert_eq!(clean(input), expected, "clean({input:?})");
        }
    }

    #[test]
    fn common_dockerignore_files() {
        let ignore = DockerIgnore::parse("*.md\n!README.md\n").unwrap();
        assert!(ignore.is_excluded("CHANGELOG.md"));
        assert!(!ignore.is_excluded("README.md"));
        // `*` does not cross directories: only top-level markdown files are excluded.
        assert!(!ignore.is_excluded("docs/guide.md"));
        assert!(!ignore.is_excluded("main.rs"));

        let ignore = DockerIgnore::parse("**/*.go").unwrap();
        assert!(ignore.is_excluded("main.go"));
        assert!(ignore.is_excluded("cmd/tool/main.go"));
        assert!(!ignore.is_excluded("main.go.txt"));
        assert!(!ignore.is_excluded("cmd/README"));

        let ignore = DockerIgnore::parse("node_modules").unwrap();
        assert!(ignore.is_excluded("node_modules"));
        assert!(ignore.is_excluded("node_modules/left-pad/index.js"));
        assert!(!ignore.is_excluded("app/node_modules"));
        assert!(!ignore.is_excluded("node_modules2"));

        let ignore = DockerIgnore::parse("dir/").unwrap();
        assert!(ignore.is_excluded("dir"));
        assert!(ignore.is_excluded("dir/file"));
        assert!(!ignore.is_excluded("dirt"));

        let ignore = DockerIgnore::parse(".git\n").unwrap();
        assert!(ignore.is_excluded(".git"));
        assert!(ignore.is_excluded(".git/objects/ab/cdef"));
        assert!(!ignore.is_excluded(".gitignore"));
        assert!(!ignore.is_excluded("sub/.git"));

        let ignore = DockerIgnore::parse("Dockerfile\n.dockerignore\n").unwrap();
        // The caller still sends these two files; the patterns do exclude them.
        assert!(ignore.is_excluded("Dockerfile"));
        assert!(ignore.is_excluded(".dockerignore"));
        assert!(!ignore.is_excluded("Dockerfile.dev"));
    }

    #[test]
    fn exception_under_excluded_dir() {
        let ignore = DockerIgnore::parse("dir\n!dir/keep\n").unwrap();
        assert!(ignore.is_excluded("dir"));
        assert!(ignore.is_excluded("dir/other"));
        assert!(!ignore.is_excluded("dir/keep"));
        assert!(!ignore.is_excluded("dir/keep/deep/file"));
        assert!(ignore.is_excluded("dir/keeper"));
        assert!(ignore.must_descend("dir"));
        assert!(!ignore.must_descend("dir/other"));
        assert!(ignore.must_descend("dir/keep"));

        // Re-excluded below the exception.
        let ignore = DockerIgnore::parse("dir\n!dir/keep\ndir/keep/tmp\n").unwrap();
        assert!(ignore.is_excluded("dir/keep/tmp/x"));
        assert!(!ignore.is_excluded("dir/keep/x"));
        assert!(!ignore.must_descend("dir/keep/tmp"));
    }

    #[test]
    fn last_match_wins() {
        let ignore = DockerIgnore::parse("*\n!src\nsrc/*.tmp\n!src/keep.tmp\n").unwrap();
        assert!(ignore.is_excluded("README"));
        assert!(!ignore.is_excluded("src"));
        assert!(!ignore.is_excluded("src/main.rs"));
        assert!(ignore.is_excluded("src/a.tmp"));
        assert!(!ignore.is_excluded("src/keep.tmp"));
        // The order matters: an exception before the pattern it should override does nothing.
        let ignore = DockerIgnore::parse("!keep.log\n*.log\n").unwrap();
        assert!(ignore.is_excluded("keep.log"));
    }

    #[test]
    fn must_descend_cases() {
        let no_exceptions = DockerIgnore::parse("build\n").unwrap();
        assert!(!no_exceptions.must_descend("build"));
        assert!(no_exceptions.must_descend("src"));
        assert!(no_exceptions.must_descend("."));
        assert!(no_exceptions.must_descend(""));

        let cases: &[(&str, &str, bool)] = &[
            // Exact exception below.
            ("*\n!a/b/c", "a", true),
            ("*\n!a/b/c", "a/b", true),
            ("*\n!a/b/c", "x", false),
            ("*\n!a/b/c", "a/c", false),
            // Wildcard exceptions (Docker's prefix test would skip these directories).
            ("*\n!**/*.go", "vendor", true),
            ("*\n!*/keep", "x", true),
            ("*\n!*/keep", "x/y", false),
            ("*\n!a*/keep", "b", false),
            ("*\n![ab]/keep", "a", true),
            ("*\n![ab]/keep", "c", false),
            ("*\n!a/**/keep", "a/x/y", true),
            ("*\n!a/**/keep", "b/x", false),
            ("**\n!src/**", "src", true),
            ("**\n!src/**", "srcx", false),
            ("**\n!src**", "srcx", true),
            ("**\n!**.go", "anything", true),
            // An exception matching the directory's parent, overridden by a later pattern.
            ("a/b\n!a\na/b", "a/b", false),
            ("a/b\n!a/b/c\na", "a/b", false),
            ("a\n!a/b/c\na/x", "a", true),
        ];
        for &(text, dir, expected) in cases {
            let ignore = DockerIgnore::parse(text).unwrap();
            assert_eq!(
                ignore.must_descend(dir),
                expected,
                "patterns {text:?} dir {dir:?}"
            );
        }
    }

    /// `must_descend` is sound: whenever it says a directory can be skipped, nothing below is included.
    #[test]
    fn must_descend_is_sound() {
        let files = [
            "a/b/c",
            "a/b/d.go",
            "a/keep",
            "a/x/keep",
            "b/keep/x",
            "src/main.go",
            "src/x.tmp",
            "vendor/m/x.go",
        ];
        let ignores = [
            "*\n!a/b/c",
            "*\n!**/*.go",
            "*\n!*/keep",
            "a\n!a/*/keep",
            "**\n!src/**\nsrc/*.tmp",
            "vendor\n!vendor/m\nvendor/m/*.go",
        ];
        for text in ignores {
            let ignore = DockerIgnore::parse(text).unwrap();
            for file in files {
                for (at, _) in file.match_indices('/') {
                    let dir = &file[..at];
                    if !ignore.must_descend(dir) {
                        assert!(
                            ignore.is_excluded(file),
                            "{text:?}: skipping {dir:?} loses {file:?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn paths_are_cleaned() {
        let ignore = DockerIgnore::parse("/foo/bar\n").unwrap();
        assert!(ignore.is_excluded("foo/bar"));
        assert!(ignore.is_excluded("./foo/bar"));
        assert!(ignore.is_excluded("foo//bar/"));
        assert!(ignore.is_excluded("foo/bar/baz"));
        assert!(!ignore.is_excluded("."));
        assert!(!DockerIgnore::parse("*\n**").unwrap().is_excluded(""));
    }

    #[test]
    fn empty_and_comment_only() {
        assert!(DockerIgnore::empty().is_empty());
        assert!(!DockerIgnore::empty().is_excluded("anything"));
        assert!(DockerIgnore::empty().must_descend("anything"));
        let ignore = DockerIgnore::parse("# only\n\n   \n").unwrap();
        assert!(ignore.is_empty());
        assert!(!DockerIgnore::parse("x").unwrap().is_empty());
    }

    #[test]
    fn classes_and_escapes() {
        let ignore = new(&[r"file[0-9].txt", r"\[x\]", "[^a-c]z", "lit]", r"odd\?"]).unwrap();
        assert!(ignore.is_excluded("file3.txt"));
        assert!(!ignore.is_excluded("filex.txt"));
        assert!(ignore.is_excluded("[x]"));
        assert!(ignore.is_excluded("dz"));
        assert!(!ignore.is_excluded("bz"));
        assert!(ignore.is_excluded("lit]"));
        assert!(ignore.is_excluded("odd?"));
        assert!(!ignore.is_excluded("oddx"));
        // Wildcards inside a class are literal, like in `filepath.Match`.
        let ignore = new(&["[*?]"]).unwrap();
        assert!(ignore.is_excluded("*"));
        assert!(ignore.is_excluded("?"));
        assert!(!ignore.is_excluded("a"));
    }

    #[test]
    fn double_star_forms() {
        let ignore = new(&["a/**/b"]).unwrap();
        for (path, expected) in [
            ("a/b", true),
            ("a/x/b", true),
            ("a/x/y/b", true),
            ("a/xb", false),
            ("b", false),
        ] {
            assert_eq!(ignore.is_excluded(path), expected, "{path:?}");
        }
        // `**` not followed by `/` in the middle still needs a `/` before what follows (patternmatcher's
        // `(.*/)?`).
        let ignore = new(&["a**b*"]).unwrap();
        assert!(ignore.is_excluded("ab"));
        assert!(ignore.is_excluded("ax/b"));
        assert!(!ignore.is_excluded("axb"));
        // A leading `**` with only literal text after it is a plain suffix test.
        let ignore = new(&["**.log"]).unwrap();
        assert!(ignore.is_excluded("x.log"));
        assert!(ignore.is_excluded("a/b/x.log"));
        assert!(!ignore.is_excluded("x.log.1"));
    }

    #[test]
    fn bad_patterns() {
        assert_eq!(
            DockerIgnore::parse("ok\nbad[\n").unwrap_err(),
            IgnoreError::BadPattern {
                line: 2,
                pattern: "bad[".into(),
                reason: "unterminated character class".into()
            }
        );
        assert_eq!(
            DockerIgnore::parse("ok\nbad[").unwrap_err().to_string(),
            "line 2: syntax error in pattern \"bad[\": unterminated character class"
        );
        assert!(DockerIgnore::parse("x\\").is_err());
        assert!(DockerIgnore::parse("!x[").is_err());
        // patternmatcher accepts this one and then fails every match (a reversed range in its regular
        // expression); it is rejected up front here.
        let err = DockerIgnore::parse("[Local-Only]/").unwrap_err();
        assert!(
            err.to_string()
                .contains("invalid character class range l-O"),
            "{err}"
        );
        assert_eq!(
            IgnoreError::IllegalExclusion { line: 3 }.to_string(),
            "line 3: illegal exclusion pattern: \"!\""
        );
    }
}
