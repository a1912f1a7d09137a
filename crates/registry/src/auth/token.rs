//! Docker registry token auth: the token service issues JWTs (HS256, signed with a secret shared by all
//! replicas) whose `access` claim lists per-repository actions; the registry verifies signature, issuer,
//! audience and lifetime, then checks the claim against the request.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use ring::hmac;
use serde::{Deserialize, Serialize};

use super::{AccessRules, Action, Principal};

/// Why a token is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    /// Not three base64url parts of JSON.
    #[error("malformed token")]
    Malformed,
    /// Not HS256.
    #[error("unsupported token algorithm")]
    Algorithm,
    /// Wrong signature.
    #[error("bad token signature")]
    Signature,
    /// Wrong issuer or audience.
    #[error("token not issued for this registry")]
    Audience,
    /// Expired or not yet valid.
    #[error("token expired")]
    Expired,
}

/// One entry of the `access` claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// `repository` or `registry`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Repository name (or `catalog`).
    pub name: String,
    /// Granted actions.
    pub actions: Vec<String>,
}

/// A token's claims.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer.
    pub iss: String,
    /// Subject: the user name, empty for anonymous.
    pub sub: String,
    /// Audience: the registry's service name.
    pub aud: String,
    /// Expiry (unix seconds).
    pub exp: i64,
    /// Not before.
    pub nbf: i64,
    /// Issued at.
    pub iat: i64,
    /// Unique id.
    pub jti: String,
    /// What the bearer may do.
    #[serde(default)]
    pub access: Vec<Grant>,
}

impl Claims {
    /// Whether the token grants every action in `actions` on `kind:name` (`registry:catalog` needs `*`).
    pub fn grants(&self, kind: &str, name: &str, actions: &[Action]) -> bool {
        self.access.iter().any(|g| {
            g.kind == kind
                && g.name == name
                && if actions.is_empty() {
                    g.actions.iter().any(|a| a == "*")
                } else {
                    actions
                        .iter()
                        .all(|a| g.actions.iter().any(|x| x == a.as_str()))
                }
        })
    }
}

/// Issues and verifies tokens.
pub struct TokenService {
    key: hmac::Key,
    issuer: String,
    service: String,
    realm: Option<String>,
    ttl: Duration,
}

const CLOCK_SKEW: i64 = 60;

impl TokenService {
    /// A service signing with `secret`. `realm` is the token endpoint URL advertised in challenges; when
    /// `None` it is derived from each request (`scheme://host/token`).
    pub fn new(
        secret: &[u8],
        issuer: &str,
        service: &str,
        realm: Option<String>,
        ttl: Duration,
    ) -> TokenService {
        TokenService {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
            issuer: issuer.to_string(),
            service: service.to_string(),
            realm,
            ttl,
        }
    }

    /// The token endpoint URL.
    pub fn realm(&self, base: &str) -> String {
        self.realm
            .clone()
            .unwrap_or_else(|| format!("{base}/token"))
    }

    /// The service name (the tokens' audience).
    pub fn service(&self) -> &str {
        &self.service
    }

    /// Token lifetime.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// What `who` may have of the requested `scopes` (`type:name:actions`, several per string separated by
    /// spaces, as in the OAuth form).
    pub fn grant(&self, rules: &AccessRules, who: &Principal, scopes: &[String]) -> Vec<Grant> {
        let mut out: Vec<Grant> = Vec::new();
        for scope in scopes
            .iter()
            .flat_map(|s| s.split(' '))
            .filter(|s| !s.is_empty())
        {
            let Some((kind, rest)) = scope.split_once(':') else {
                continue;
            };
            let Some((name, actions)) = rest.rsplit_once(':') else {
                continue;
            };
            let granted: Vec<String> = match kind {
                "repository" if crate::name::valid_repository(name) => {
                    let allowed = rules.allowed(who, name);
                    Action::parse_list(actions)
                        .into_iter()
                        .filter(|a| allowed.contains(a))
                        .map(|a| a.as_str().to_string())
                        .collect()
                }
                "registry" if name == "catalog" && matches!(who, Principal::User(_)) => {
                    vec!["*".to_string()]
                }
                _ => Vec::new(),
            };
            if granted.is_empty() {
                continue;
            }
            match out.iter_mut().find(|g| g.kind == kind && g.name == name) {
                Some(g) => {
                    for a in granted {
                        if !g.actions.contains(&a) {
                            g.actions.push(a);
                        }
                    }
                }
                None => out.push(Grant {
                    kind: kind.to_string(),
                    name: name.to_string(),
                    actions: granted,
                }),
            }
        }
        out
    }

    /// A signed token for `who` with `access`.
    pub fn issue(&self, who: &Principal, access: Vec<Grant>) -> String {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            iss: self.issuer.clone(),
            sub: match who {
                Principal::Anonymous => String::new(),
                Principal::User(u) => u.clone(),
            },
            aud: self.service.clone(),
            exp: now + self.ttl.as_secs() as i64,
            nbf: now - 1,
            iat: now,
            jti: hex::encode(rand::random::<[u8; 16]>()),
            access,
        };
        let header = B64.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        // Claims are plain strings and numbers: serialising them cannot fail.
        let payload = B64.encode(serde_json::to_vec(&claims).unwrap_or_default());
        let signing_input = format!("{header}.{payload}");
        let sig = hmac::sign(&self.key, signing_input.as_bytes());
        format!("{signing_input}.{}", B64.encode(sig.as_ref()))
    }

    /// Verifies a token and returns its claims.
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        let header: serde_json::Value =
            serde_json::from_slice(&B64.decode(h).map_err(|_| TokenError::Malformed)?)
                .map_err(|_| TokenError::Malformed)?;
        if header.get("alg").and_then(|a| a.as_str()) != Some("HS256") {
            return Err(TokenError::Algorithm);
        }
        let sig = B64.decode(s).map_err(|_| TokenError::Malformed)?;
        hmac::verify(&self.key, format!("{h}.{p}").as_bytes(), &sig)
            .map_err(|_| TokenError::Signature)?;
        let claims: Claims =
            serde_json::from_slice(&B64.decode(p).map_err(|_| TokenError::Malformed)?)
                .map_err(|_| TokenError::Malformed)?;
        if claims.iss != self.issuer || claims.aud != self.service {
            return Err(TokenError::Audience);
        }
        let now = chrono::Utc::now().timestamp();
        if now > claims.exp + CLOCK_SKEW || now + CLOCK_SKEW < claims.nbf {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::AccessRule;
    use std::collections::HashMap;

    fn svc() -> TokenService {
        TokenService::new(b"secret", "iss", "svc", None, Duration::from_secs(60))
    }

    #[test]
    fn issues_verifiable_scoped_tokens() {
        let ts = svc();
        let rules = AccessRules::new(vec![AccessRule {
            repository: "pub/*".into(),
            anonymous: vec![Action::Pull],
            users: HashMap::new(),
        }]);
        let scopes = vec![
            "repository:pub/a:pull,push repository:priv:pull".to_string(),
            "registry:catalog:*".into(),
        ];
        let anon = ts.grant(&rules, &Principal::Anonymous, &scopes);
        assert_eq!(
            anon,
            vec![Grant {
                kind: "repository".into(),
                name: "pub/a".into(),
                actions: vec!["pull".into()]
            }]
        );
        let alice = Principal::User("alice".into());
        let g = ts.grant(&rules, &alice, &scopes);
        assert_eq!(
            g.len(),
            3,
            "{g:?}: pub/a pull (as anonymous), priv (no rule: all), catalog"
        );
        let tok = ts.issue(&alice, g);
        let c = ts.verify(&tok).expect("verify");
        assert_eq!(c.sub, "alice");
        assert!(c.grants("repository", "priv", &[Action::Pull]));
        assert!(
            !c.grants("repository", "pub/a", &[Action::Push]),
            "rule grants users nothing on pub/*"
        );
        assert!(!c.grants("repository", "other", &[Action::Pull]));
    }

    #[test]
    fn rejects_forged_tokens() {
        let ts = svc();
        let tok = ts.issue(&Principal::User("a".into()), vec![]);
        let other = TokenService::new(b"other", "iss", "svc", None, Duration::from_secs(60));
        assert_eq!(other.verify(&tok).err(), Some(TokenError::Signature));
        let aud = TokenService::new(b"secret", "iss", "elsewhere", None, Duration::from_secs(60));
        assert_eq!(aud.verify(&tok).err(), Some(TokenError::Audience));
        let parts: Vec<&str> = tok.split('.').collect();
        let none = format!("{}.{}.", B64.encode(br#"{"alg":"none"}"#), parts[1]);
        assert_eq!(ts.verify(&none).err(), Some(TokenError::Algorithm));
        assert_eq!(ts.verify("a.b").err(), Some(TokenError::Malformed));
        let expired = TokenService::new(b"secret", "iss", "svc", None, Duration::ZERO);
        let mut c = ts.verify(&tok).expect("valid");
        c.exp -= 3600;
        let payload = B64.encode(serde_json::to_vec(&c).expect("json"));
        let input = format!("{}.{payload}", parts[0]);
        let sig = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, b"secret"),
            input.as_bytes(),
        );
        let old = format!("{input}.{}", B64.encode(sig.as_ref()));
        assert_eq!(expired.verify(&old).err(), Some(TokenError::Expired));
    }
}
