//! Docker image references: parsing, normalisation and the familiar form.
//!
//! Follows the grammar of Docker's `distribution/reference` package:
//!
//! ```text
//! reference   := name [ ":" tag ] [ "@" digest ]
//! name        := [domain '/'] path-component ['/' path-component]*
//! domain      := host [':' port]       host := domain-name | '[' ipv6 ']'
//! path-component := [a-z0-9]+ (separator [a-z0-9]+)*   separator := [._] | '__' | '-'+
//! tag         := [\w][\w.-]{0,127}
//! digest      := algorithm ':' hex{32,}  (sha256/sha384/sha512 validated by length)
//! ```
//!
//! Normalisation is `ParseNormalizedNamed`'s: a first component without `.` or `:` that is not
//! `localhost` (and is lowercase) is part of the path on `docker.io`; a single-component name on
//! `docker.io` gets `library/`; `index.docker.io` becomes `docker.io`. Error messages are Docker's.

use std::fmt;

use thiserror::Error;

use crate::error::ErrorKind;

/// The registry that names without a domain live on.
pub const DEFAULT_DOMAIN: &str = "docker.io";
const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
const OFFICIAL_REPO_PREFIX: &str = "library/";
/// The tag added by [`Reference::parse`] when none is given.
pub const DEFAULT_TAG: &str = "latest";
const NAME_TOTAL_LENGTH_MAX: usize = 255;
const TAG_LENGTH_MAX: usize = 128;

/// Why a reference string was refused (messages are Docker's).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ReferenceError {
    /// The string does not match the reference grammar.
    #[error("invalid reference format")]
    InvalidFormat { reference: String },
    /// The repository path contains uppercase letters.
    #[error("invalid reference format: repository name ({name}) must be lowercase")]
    Uppercase { name: String },
    /// The full name is longer than 255 characters.
    #[error("repository name must not be more than 255 characters")]
    NameTooLong { name: String },
    /// A 64-hex string cannot be a repository name (it would shadow image ids).
    #[error("invalid repository name ({name}), cannot specify 64-byte hexadecimal strings")]
    HexName { name: String },
    /// The digest algorithm is not one of sha256, sha384, sha512.
    #[error("unsupported digest algorithm")]
    DigestUnsupported { digest: String },
    /// The digest's hex part has the wrong length for its algorithm.
    #[error("invalid checksum digest length")]
    DigestLength { digest: String },
    /// The digest's hex part is not lowercase hex.
    #[error("invalid checksum digest format")]
    DigestFormat { digest: String },
}

impl ReferenceError {
    /// Every reference error is the caller's fault.
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidArgument
    }
}

/// A normalised image reference: `domain/path[:tag][@digest]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<String>,
}

impl Reference {
    /// Parses and normalises `s`, adding the tag `latest` when it has neither tag nor digest.
    pub fn parse(s: &str) -> Result<Reference, ReferenceError> {
        let mut r = Self::parse_named(s)?;
        if r.tag.is_none() && r.digest.is_none() {
            r.tag = Some(DEFAULT_TAG.to_string());
        }
        Ok(r)
    }

    /// Parses and normalises `s` without adding a default tag.
    pub fn parse_named(s: &str) -> Result<Reference, ReferenceError> {
        if is_full_hex_id(s) {
            return Err(ReferenceError::HexName {
                name: s.to_string(),
            });
        }
        let (domain, remainder) = split_docker_domain(s);
        let remote = match remainder.find(':') {
            Some(i) => &remainder[..i],
            None => remainder.as_str(),
        };
        if remote.to_lowercase() != remote {
            return Err(ReferenceError::Uppercase {
                name: remote.to_string(),
            });
        }
        parse_split(s, &domain, &remainder)
    }

    /// Builds a reference from parts already known to be valid, e.g. a repository and a tag.
    pub fn with_tag(&self, tag: &str) -> Result<Reference, ReferenceError> {
        if !is_tag(tag) {
            return Err(ReferenceError::InvalidFormat {
                reference: format!("{}:{tag}", self.repository()),
            });
        }
        Ok(Reference {
            domain: self.domain.clone(),
            path: self.path.clone(),
            tag: Some(tag.to_string()),
            digest: None,
        })
    }

    /// The same repository without tag and digest.
    pub fn name_only(&self) -> Reference {
        Reference {
            domain: self.domain.clone(),
            path: self.path.clone(),
            tag: None,
            digest: None,
        }
    }

    /// `docker.io/library/busybox:latest`.
    pub fn full(&self) -> String {
        self.render(self.repository())
    }

    /// `busybox:latest` (Docker strips `docker.io/` and `library/`).
    pub fn familiar(&self) -> String {
        self.render(self.familiar_repository())
    }

    /// `docker.io/library/busybox`.
    pub fn repository(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// `busybox`.
    pub fn familiar_repository(&self) -> String {
        if self.domain == DEFAULT_DOMAIN {
            match self.path.strip_prefix(OFFICIAL_REPO_PREFIX) {
                Some(rest) if !rest.contains('/') => rest.to_string(),
                _ => self.path.clone(),
            }
        } else {
            self.repository()
        }
    }

    /// The registry host (with port), e.g. `docker.io` or `localhost:5000`.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The repository path on the registry, e.g. `library/busybox`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The tag, if any.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest (`sha256:<hex>`), if any.
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    fn render(&self, repo: String) -> String {
        let mut s = repo;
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(d);
        }
        s
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.familiar())
    }
}

/// True for exactly 64 lowercase hex characters (an image id without its algorithm).
pub fn is_full_hex_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Validates a digest string (`algorithm:hex`) as Docker's go-digest does.
pub fn validate_digest(d: &str) -> Result<(), ReferenceError> {
    if !digest_matches_grammar(d) {
        return Err(ReferenceError::InvalidFormat {
            reference: d.to_string(),
        });
    }
    let (alg, hex) = d.split_once(':').unwrap_or((d, ""));
    let len = match alg {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => {
            return Err(ReferenceError::DigestUnsupported {
                digest: d.to_string(),
            })
        }
    };
    if hex.len() != len {
        return Err(ReferenceError::DigestLength {
            digest: d.to_string(),
        });
    }
    if !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(ReferenceError::DigestFormat {
            digest: d.to_string(),
        });
    }
    Ok(())
}

fn split_docker_domain(name: &str) -> (String, String) {
    let (mut domain, mut remainder) = match name.find('/') {
        Some(i) => {
            let first = &name[..i];
            if !first.contains(['.', ':']) && first != "localhost" && first.to_lowercase() == first
            {
                (DEFAULT_DOMAIN.to_string(), name.to_string())
            } else {
                (first.to_string(), name[i + 1..].to_string())
            }
        }
        None => (DEFAULT_DOMAIN.to_string(), name.to_string()),
    };
    if domain == LEGACY_DEFAULT_DOMAIN {
        domain = DEFAULT_DOMAIN.to_string();
    }
    if domain == DEFAULT_DOMAIN && !remainder.contains('/') {
        remainder = format!("{OFFICIAL_REPO_PREFIX}{remainder}");
    }
    (domain, remainder)
}

/// Parses `domain/remainder` where `remainder` is `path[:tag][@digest]`.
fn parse_split(original: &str, domain: &str, remainder: &str) -> Result<Reference, ReferenceError> {
    let invalid = || ReferenceError::InvalidFormat {
        reference: original.to_string(),
    };
    let (name_tag, digest) = match remainder.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (remainder, None),
    };
    let (path, tag) = match name_tag.split_once(':') {
        Some((p, t)) => (p, Some(t)),
        None => (name_tag, None),
    };
    if !is_domain(domain) || path.is_empty() || !path.split('/').all(is_path_component) {
        return Err(invalid());
    }
    if let Some(t) = tag {
        if !is_tag(t) {
            return Err(invalid());
        }
    }
    if let Some(d) = digest {
        if !digest_matches_grammar(d) {
            return Err(invalid());
        }
    }
    let name_len = domain.len() + 1 + path.len();
    if name_len > NAME_TOTAL_LENGTH_MAX {
        return Err(ReferenceError::NameTooLong {
            name: format!("{domain}/{path}"),
        });
    }
    if let Some(d) = digest {
        validate_digest(d)?;
    }
    Ok(Reference {
        domain: domain.to_string(),
        path: path.to_string(),
        tag: tag.map(str::to_string),
        digest: digest.map(str::to_string),
    })
}

fn is_domain(s: &str) -> bool {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let Some(end) = rest.find(']') else {
            return false;
        };
        let inner = &rest[..end];
        if inner.is_empty() || !inner.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
            return false;
        }
        let after = &rest[end + 1..];
        match after.strip_prefix(':') {
            Some(p) => ("[ipv6]", Some(p)),
            None if after.is_empty() => ("[ipv6]", None),
            None => return false,
        }
    } else {
        match s.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    if let Some(p) = port {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
    }
    host == "[ipv6]" || host.split('.').all(is_domain_component)
}

fn is_domain_component(c: &str) -> bool {
    !c.is_empty()
        && c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !c.starts_with('-')
        && !c.ends_with('-')
}

fn is_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        // A separator run: ".", "_", "__" or "-"+, always followed by an alphanumeric.
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = matches!(sep, "." | "_" | "__") || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

fn is_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= TAG_LENGTH_MAX
        && is_word(b[0])
        && b[1..].iter().all(|&x| is_word(x) || x == b'.' || x == b'-')
}

fn digest_matches_grammar(d: &str) -> bool {
    let Some((alg, hex)) = d.split_once(':') else {
        return false;
    };
    let alg_ok = !alg.is_empty()
        && alg.split(['-', '_', '+', '.']).all(|c| {
            let cb = c.as_bytes();
            !cb.is_empty()
                && cb[0].is_ascii_alphabetic()
                && cb.iter().all(|x| x.is_ascii_alphanumeric())
        });
    alg_ok && hex.len() >= 32 && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_components() {
        for ok in ["a", "a.b", "a_b", "a__b", "a-b", "a---b", "0", "a1.b2-c3"] {
            assert!(is_path_component(ok), "{ok}");
        }
        for bad in [
            "", "-a", "a-", "a..b", "a___b", "a._b", "A", ".a", "a.", "a$",
        ] {
            assert!(!is_path_component(bad), "{bad}");
        }
    }

    #[test]
    fn domains() {
        for ok in [
            "docker.io",
            "localhost:5000",
            "[::1]:5000",
            "[2001:db8::1]",
            "a-b.c",
            "Foo",
        ] {
            assert!(is_domain(ok), "{ok}");
        }
        for bad in [
            "-a.b", "a-.b", "a..b", "a:", "a:x", "[::1", "[zz]", "[::1]x", "a_b",
        ] {
            assert!(!is_domain(bad), "{bad}");
        }
    }
}
