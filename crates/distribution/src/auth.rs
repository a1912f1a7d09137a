//! Registry authentication: `WWW-Authenticate` challenges and Docker's token protocol.
//!
//! A registry answers 401 with `Bearer realm="...",service="...",scope="..."` (Docker Hub, GHCR,
//! Quay, Harbor, the reference registry with token auth) or `Basic realm="..."` (htpasswd). For
//! Bearer we ask the realm for a token: `GET realm?service=S&scope=repository:NAME:pull[,push]`,
//! with HTTP Basic credentials when we have them (anonymously otherwise, which is how public
//! images are pulled), or `POST` with `grant_type=refresh_token` when the credentials hold an
//! identity token. The answer's `token` (or `access_token`) is cached per registry and scope until
//! shortly before `expires_in` (60 s when absent, as the spec says).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use base64::Engine;
use serde::Deserialize;

use crate::credentials::Credential;

/// A parsed `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

/// Parses a `WWW-Authenticate` header value (one challenge, quoted or token parameters).
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    let params = parse_params(rest);
    match scheme.to_ascii_lowercase().as_str() {
        "basic" => Some(Challenge::Basic),
        "bearer" => Some(Challenge::Bearer {
            realm: params.get("realm")?.clone(),
            service: params.get("service").cloned(),
            scope: params.get("scope").cloned(),
        }),
        _ => None,
    }
}

fn parse_params(s: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut chars = s.chars().peekable();
    loop {
        while matches!(chars.peek(), Some(c) if *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' {
                break;
            }
            key.push(c);
            chars.next();
        }
        if chars.next().is_none() {
            return out;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => {
                        if let Some(n) = chars.next() {
                            value.push(n);
                        }
                    }
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        out.insert(key.trim().to_ascii_lowercase(), value.trim().to_string());
    }
}

/// The `Authorization` value for HTTP Basic.
pub fn basic_header(cred: &Credential) -> String {
    let raw = format!("{}:{}", cred.username, cred.password);
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

#[derive(Debug, Deserialize)]
struct TokenAnswer {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// A token with its expiry.
#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub(crate) value: String,
    pub(crate) expires: Instant,
}

/// Why a token request failed.
#[derive(Debug)]
pub(crate) enum TokenFailure {
    /// The realm refused the credentials (401/403).
    Refused(String),
    /// Any other answer or a transport error.
    Other(String),
}

/// Asks the realm of a Bearer challenge for a token covering `scopes`.
pub(crate) async fn fetch_token(
    http: &reqwest::Client,
    realm: &str,
    service: Option<&str>,
    scopes: &[String],
    cred: Option<&Credential>,
) -> Result<Token, TokenFailure> {
    let other = |e: String| TokenFailure::Other(e);
    let req = match cred.and_then(|c| c.identity_token.as_ref()) {
        Some(refresh) => {
            let mut form = vec![
                ("grant_type", "refresh_token".to_string()),
                ("refresh_token", refresh.clone()),
                ("client_id", "berth".to_string()),
            ];
            if let Some(s) = service {
                form.push(("service", s.to_string()));
            }
            if !scopes.is_empty() {
                form.push(("scope", scopes.join(" ")));
            }
            let body = form
                .iter()
                .map(|(k, v)| format!("{k}={}", urlencode(v)))
                .collect::<Vec<_>>()
                .join("&");
            http.post(realm)
                .header("Content-Type", "application/x-www-form-urlencoded")
                .body(body)
        }
        None => {
            let mut query: Vec<(&str, String)> = Vec::new();
            if let Some(s) = service {
                query.push(("service", s.to_string()));
            }
            for s in scopes {
                query.push(("scope", s.clone()));
            }
            if let Some(c) = cred {
                query.push(("account", c.username.clone()));
            }
            let mut url = reqwest::Url::parse(realm).map_err(|e| other(e.to_string()))?;
            {
                let mut q = url.query_pairs_mut();
                for (k, v) in &query {
                    q.append_pair(k, v);
                }
            }
            let mut r = http.get(url);
            if let Some(c) = cred {
                r = r.header("Authorization", basic_header(c));
            }
            r
        }
    };
    let resp = req.send().await.map_err(|e| other(e.to_string()))?;
    let status = resp.status();
    if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
        let body = resp.text().await.unwrap_or_default();
        return Err(TokenFailure::Refused(error_detail(&body, status.as_u16())));
    }
    if !status.is_success() {
        let body = resp.text().await.unwrap_or_default();
        return Err(other(format!(
            "token server answered {status}: {}",
            error_detail(&body, status.as_u16())
        )));
    }
    let bytes = resp.bytes().await.map_err(|e| other(e.to_string()))?;
    if bytes.len() > 1 << 20 {
        return Err(other("token answer is larger than 1 MiB".to_string()));
    }
    let a: TokenAnswer = serde_json::from_slice(&bytes)
        .map_err(|e| other(format!("token answer is not valid json: {e}")))?;
    let value = a
        .token
        .filter(|t| !t.is_empty())
        .or(a.access_token)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| other("token answer has no token".to_string()))?;
    let lifetime = Duration::from_secs(a.expires_in.unwrap_or(60).max(10));
    Ok(Token {
        value,
        // Renew a little early so a token does not expire between check and use.
        expires: Instant::now() + lifetime - Duration::from_secs(5),
    })
}

fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The message of a registry error body (`{"errors":[{"code","message","detail"}]}`), else the
/// body's first line, else the status.
pub fn error_detail(body: &str, status: u16) -> String {
    #[derive(Deserialize)]
    struct Errors {
        #[serde(default)]
        errors: Vec<ErrorItem>,
        #[serde(default)]
        details: Option<String>,
    }
    #[derive(Deserialize)]
    struct ErrorItem {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    if let Ok(e) = serde_json::from_str::<Errors>(body) {
        let parts: Vec<String> = e
            .errors
            .iter()
            .map(|i| match (i.code.is_empty(), i.message.is_empty()) {
                (false, false) => format!("{}: {}", i.code.to_lowercase(), i.message),
                (false, true) => i.code.to_lowercase(),
                _ => i.message.clone(),
            })
            .collect();
        if !parts.is_empty() {
            return parts.join("; ");
        }
        if let Some(d) = e.details {
            return d;
        }
    }
    let line = body.lines().next().unwrap_or("").trim();
    if line.is_empty() || line.len() > 200 {
        format!("status {status}")
    } else {
        line.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_docker_hub_and_ghcr_challenges() {
        let hub = r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#;
        assert_eq!(
            parse_challenge(hub),
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/busybox:pull".into()),
            })
        );
        let ghcr = r#"Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:user/image:pull""#;
        assert!(
            matches!(parse_challenge(ghcr), Some(Challenge::Bearer { service: Some(s), .. }) if s == "ghcr.io")
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(
            parse_challenge("Bearer realm=https://x/token, service=svc"),
            Some(Challenge::Bearer {
                realm: "https://x/token".into(),
                service: Some("svc".into()),
                scope: None,
            })
        );
        assert_eq!(
            parse_challenge("Bearer service=\"x\""),
            None,
            "realm is required"
        );
        assert_eq!(parse_challenge("Negotiate abc"), None);
    }

    #[test]
    fn error_bodies() {
        let body =
            r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{}}]}"#;
        assert_eq!(
            error_detail(body, 404),
            "manifest_unknown: manifest unknown"
        );
        assert_eq!(error_detail("", 502), "status 502");
        assert_eq!(urlencode("a b/c"), "a%20b%2Fc");
    }
}
