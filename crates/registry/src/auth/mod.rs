//! Authentication and authorization: htpasswd Basic auth, or Docker's token flow (a token endpoint issuing
//! signed JWTs with per-repository scopes, enforced by the registry), plus access rules deciding who may
//! pull, push or delete which repositories, anonymous users included. Credentials are never logged.

pub mod htpasswd;
pub mod token;

use std::collections::{BTreeSet, HashMap};

use axum::http::HeaderMap;
use base64::Engine as _;
use serde::Deserialize;

pub use htpasswd::Htpasswd;
pub use token::TokenService;

/// An action on a repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Read manifests and blobs.
    Pull,
    /// Upload blobs and manifests.
    Push,
    /// Delete manifests, tags and blobs.
    Delete,
}

impl Action {
    /// The scope word.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Pull => "pull",
            Action::Push => "push",
            Action::Delete => "delete",
        }
    }

    /// Parses a scope word (`*` means all).
    pub fn parse_list(s: &str) -> BTreeSet<Action> {
        let mut out = BTreeSet::new();
        for w in s.split(',') {
            match w.trim() {
                "pull" => {
                    out.insert(Action::Pull);
                }
                "push" => {
                    out.insert(Action::Push);
                }
                "delete" => {
                    out.insert(Action::Delete);
                }
                "*" => out.extend([Action::Pull, Action::Push, Action::Delete]),
                _ => {}
            }
        }
        out
    }
}

/// What a request touches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resource {
    /// The API root (`/v2/`): any authenticated identity.
    Base,
    /// `/v2/_catalog`.
    Catalog,
    /// A repository.
    Repository(String),
}

impl Resource {
    /// The token scope asking for `actions` on this resource.
    pub fn scope(&self, actions: &[Action]) -> Option<String> {
        match self {
            Resource::Base => None,
            Resource::Catalog => Some("registry:catalog:*".into()),
            Resource::Repository(r) => {
                let a: Vec<&str> = actions.iter().map(|a| a.as_str()).collect();
                Some(format!("repository:{r}:{}", a.join(",")))
            }
        }
    }
}

/// Who is asking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// No credentials.
    Anonymous,
    /// An authenticated user.
    User(String),
}

/// One access rule: for repositories matching `repository` (`*` matches anything, `/` included), what
/// anonymous users and which users may do. `"*"` in `users` means every authenticated user.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct AccessRule {
    /// Repository pattern.
    pub repository: String,
    /// Actions allowed without credentials.
    #[serde(default)]
    pub anonymous: Vec<Action>,
    /// Actions allowed per user name (`*`: any authenticated user).
    #[serde(default)]
    pub users: HashMap<String, Vec<Action>>,
}

/// Whether `pattern` (with `*` wildcards) matches `s`.
pub fn glob(pattern: &str, s: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == s;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !s.starts_with(first) || s.len() < first.len() + last.len() || !s.ends_with(last) {
        return false;
    }
    let mut rest = &s[first.len()..s.len() - last.len()];
    for p in &parts[1..parts.len() - 1] {
        match rest.find(p) {
            Some(i) => rest = &rest[i + p.len()..],
            None => return false,
        }
    }
    true
}

/// The access rules; the first rule whose pattern matches decides. Without a match, authenticated users
/// may do everything and anonymous users nothing.
#[derive(Debug, Clone, Default)]
pub struct AccessRules {
    rules: Vec<AccessRule>,
}

impl AccessRules {
    /// Wraps rules.
    pub fn new(rules: Vec<AccessRule>) -> AccessRules {
        AccessRules { rules }
    }

    /// What `who` may do on `repo`.
    pub fn allowed(&self, who: &Principal, repo: &str) -> BTreeSet<Action> {
        let all = || BTreeSet::from([Action::Pull, Action::Push, Action::Delete]);
        let Some(rule) = self.rules.iter().find(|r| glob(&r.repository, repo)) else {
            return match who {
                Principal::Anonymous => BTreeSet::new(),
                Principal::User(_) => all(),
            };
        };
        match who {
            Principal::Anonymous => rule.anonymous.iter().copied().collect(),
            Principal::User(u) => {
                let mut out: BTreeSet<Action> = rule.anonymous.iter().copied().collect();
                for key in [u.as_str(), "*"] {
                    if let Some(a) = rule.users.get(key) {
                        out.extend(a.iter().copied());
                    }
                }
                out
            }
        }
    }
}

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Send 401 with this challenge.
    Unauthorized(String),
    /// Send 403.
    Denied,
}

/// How requests are authenticated.
pub enum Mode {
    /// Everyone may do everything.
    None,
    /// HTTP Basic against an htpasswd file.
    Basic {
        /// The realm in the challenge.
        realm: String,
    },
    /// Bearer tokens from our token endpoint (which checks passwords against the htpasswd file).
    Token(Box<TokenService>),
}

/// The authentication and authorization policy of a registry.
pub struct Auth {
    /// The mode.
    pub mode: Mode,
    /// The users (Basic and token modes).
    pub users: Option<Htpasswd>,
    /// The access rules.
    pub rules: AccessRules,
}

/// Credentials from an `Authorization: Basic` header.
pub fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let v = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, rest) = v.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()?;
    let s = String::from_utf8(raw).ok()?;
    let (u, p) = s.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, rest) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
}

impl Auth {
    /// No authentication.
    pub fn none() -> Auth {
        Auth {
            mode: Mode::None,
            users: None,
            rules: AccessRules::default(),
        }
    }

    /// Whether any authentication is configured.
    pub fn enabled(&self) -> bool {
        !matches!(self.mode, Mode::None)
    }

    /// Decides whether a request with `headers` may do `actions` on `resource`. `realm_base` is
    /// `scheme://host` of the request, used when the token realm is not configured.
    pub fn check(
        &self,
        headers: &HeaderMap,
        realm_base: &str,
        resource: &Resource,
        actions: &[Action],
    ) -> Result<Principal, Refusal> {
        match &self.mode {
            Mode::None => Ok(Principal::Anonymous),
            Mode::Basic { realm } => {
                let challenge = || Refusal::Unauthorized(format!("Basic realm=\"{realm}\""));
                let who = match basic_credentials(headers) {
                    Some((u, p)) if self.users.as_ref().is_some_and(|us| us.verify(&u, &p)) => {
                        Principal::User(u)
                    }
                    Some(_) => return Err(challenge()),
                    None => Principal::Anonymous,
                };
                let ok = match resource {
                    Resource::Base | Resource::Catalog => who != Principal::Anonymous,
                    Resource::Repository(r) => {
                        let allowed = self.rules.allowed(&who, r);
                        actions.iter().all(|a| allowed.contains(a))
                    }
                };
                match (ok, &who) {
                    (true, _) => Ok(who),
                    (false, Principal::Anonymous) => Err(challenge()),
                    (false, Principal::User(_)) => Err(Refusal::Denied),
                }
            }
            Mode::Token(ts) => {
                let challenge = |error: Option<&str>| {
                    let mut c = format!(
                        "Bearer realm=\"{}\",service=\"{}\"",
                        ts.realm(realm_base),
                        ts.service()
                    );
                    if let Some(s) = resource.scope(actions) {
                        c.push_str(&format!(",scope=\"{s}\""));
                    }
                    if let Some(e) = error {
                        c.push_str(&format!(",error=\"{e}\""));
                    }
                    Refusal::Unauthorized(c)
                };
                let Some(tok) = bearer(headers) else {
                    // Anonymous access the rules allow needs no token (curl, `docker search`).
                    if let Resource::Repository(r) = resource {
                        let allowed = self.rules.allowed(&Principal::Anonymous, r);
                        if !actions.is_empty() && actions.iter().all(|a| allowed.contains(a)) {
                            return Ok(Principal::Anonymous);
                        }
                    }
                    return Err(challenge(None));
                };
                let claims = ts
                    .verify(tok)
                    .map_err(|_| challenge(Some("invalid_token")))?;
                let granted = match resource {
                    Resource::Base => true,
                    Resource::Catalog => claims.grants("registry", "catalog", &[]),
                    Resource::Repository(r) => claims.grants("repository", r, actions),
                };
                if granted {
                    Ok(if claims.sub.is_empty() {
                        Principal::Anonymous
                    } else {
                        Principal::User(claims.sub)
                    })
                } else {
                    Err(challenge(Some("insufficient_scope")))
                }
            }
        }
    }

    /// Whether `who` may pull `repo` (for listings and cross-repository mounts).
    pub fn may_pull(&self, headers: &HeaderMap, realm_base: &str, repo: &str) -> bool {
        self.check(
            headers,
            realm_base,
            &Resource::Repository(repo.to_string()),
            &[Action::Pull],
        )
        .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob("*", "a/b"));
        assert!(glob("public/*", "public/x/y"));
        assert!(!glob("public/*", "private/x"));
        assert!(glob("a*c*e", "abcde"));
        assert!(!glob("a*c*e", "abde"));
        assert!(glob("exact", "exact"));
        assert!(!glob("exact", "exactly"));
        assert!(!glob("ab*ba", "aba"));
    }

    #[test]
    fn rules_first_match_wins() {
        let rules = AccessRules::new(vec![
            AccessRule {
                repository: "public/*".into(),
                anonymous: vec![Action::Pull],
                users: HashMap::from([("alice".to_string(), vec![Action::Push])]),
            },
            AccessRule {
                repository: "*".into(),
                anonymous: vec![],
                users: HashMap::from([("*".to_string(), vec![Action::Pull])]),
            },
        ]);
        let alice = Principal::User("alice".into());
        let bob = Principal::User("bob".into());
        assert_eq!(
            rules.allowed(&Principal::Anonymous, "public/x"),
            BTreeSet::from([Action::Pull])
        );
        assert_eq!(
            rules.allowed(&alice, "public/x"),
            BTreeSet::from([Action::Pull, Action::Push])
        );
        assert_eq!(
            rules.allowed(&bob, "public/x"),
            BTreeSet::from([Action::Pull])
        );
        assert_eq!(
            rules.allowed(&bob, "team/x"),
            BTreeSet::from([Action::Pull])
        );
        assert!(rules.allowed(&Principal::Anonymous, "team/x").is_empty());
        assert_eq!(AccessRules::default().allowed(&bob, "x").len(), 3);
    }

    #[test]
    fn basic_mode_challenges_and_denies() {
        let hash = bcrypt::hash("pw", 4).expect("hash");
        let auth = Auth {
            mode: Mode::Basic {
                realm: "berth".into(),
            },
            users: Some(Htpasswd::parse(&format!("alice:{hash}")).expect("parse")),
            rules: AccessRules::new(vec![AccessRule {
                repository: "pub".into(),
                anonymous: vec![Action::Pull],
                users: HashMap::from([("*".to_string(), vec![Action::Pull])]),
            }]),
        };
        let repo = |r: &str| Resource::Repository(r.into());
        let mut h = HeaderMap::new();
        assert_eq!(
            auth.check(&h, "", &repo("pub"), &[Action::Pull]),
            Ok(Principal::Anonymous)
        );
        assert!(
            matches!(auth.check(&h, "", &Resource::Base, &[]), Err(Refusal::Unauthorized(c)) if c.starts_with("Basic"))
        );
        let cred = base64::engine::general_purpose::STANDARD.encode("alice:pw");
        h.insert(
            "authorization",
            format!("Basic {cred}").parse().expect("header"),
        );
        assert_eq!(
            auth.check(&h, "", &repo("priv"), &[Action::Push]),
            Ok(Principal::User("alice".into()))
        );
        assert_eq!(
            auth.check(&h, "", &repo("pub"), &[Action::Push]),
            Err(Refusal::Denied)
        );
        let bad = base64::engine::general_purpose::STANDARD.encode("alice:nope");
        h.insert(
            "authorization",
            format!("Basic {bad}").parse().expect("header"),
        );
        assert!(matches!(
            auth.check(&h, "", &repo("pub"), &[Action::Pull]),
            Err(Refusal::Unauthorized(_))
        ));
    }
}
