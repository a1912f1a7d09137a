//! What a registry lists: a repository's tags (`/v2/<name>/tags/list`, followed across `Link` pages) for
//! `pull --all-tags`, and the `/v1/search` index Docker's `search` queries (served by `berth registry` too).

use crate::client::{repo_scope, status_error};
use crate::error::DistError;
use crate::manifest::Repo;
use crate::RegistryClient;
use berth_image::Reference;
use serde::{Deserialize, Serialize};

/// At most this many tag pages are followed (a registry answering with endless `Link`s cannot loop us).
const MAX_PAGES: usize = 1000;

/// One `/v1/search` result, in Docker's shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct SearchResult {
    pub name: String,
    pub description: String,
    pub star_count: u64,
    pub is_official: bool,
    pub is_automated: bool,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct SearchAnswer {
    results: Vec<SearchResult>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct TagsAnswer {
    tags: Option<Vec<String>>,
}

/// The next page's path from a `Link: </v2/x/tags/list?n=..&last=..>; rel="next"` header.
fn next_link(v: &str) -> Option<String> {
    v.split(',').find_map(|part| {
        let part = part.trim();
        if !part.contains("rel=\"next\"") {
            return None;
        }
        let start = part.find('<')? + 1;
        let end = part.find('>')?;
        Some(part[start..end].to_string())
    })
}

impl RegistryClient {
    /// Every tag of `reference`'s repository, in the registry's order.
    pub async fn tags(&self, reference: &Reference) -> Result<Vec<String>, DistError> {
        let ep = self
            .endpoints(reference.domain(), false)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| DistError::InvalidRegistry {
                name: reference.domain().to_string(),
                reason: "no endpoint".into(),
            })?;
        let repo = Repo {
            client: self,
            ep,
            path: reference.path().to_string(),
            scopes: vec![repo_scope(reference.path(), "pull")],
            action: "pull",
            display: reference.familiar_repository(),
        };
        let mut out = Vec::new();
        let mut url = repo.url("tags/list");
        let what = format!("tags of {}", repo.display);
        for _ in 0..MAX_PAGES {
            let u = url.clone();
            let resp = self
                .send(&repo.ep, &repo.req(&what, true), &|http| http.get(&u))
                .await?;
            if !resp.status().is_success() {
                return Err(status_error(&repo.ep, resp, &what, repo.action, &repo.display).await);
            }
            let next = resp
                .headers()
                .get("Link")
                .and_then(|v| v.to_str().ok())
                .and_then(next_link);
            let body = resp.bytes().await.map_err(|source| DistError::Transport {
                registry: repo.ep.registry.clone(),
                what: what.clone(),
                source,
            })?;
            let page: TagsAnswer =
                serde_json::from_slice(&body).map_err(|e| DistError::Invalid {
                    what: what.clone(),
                    reason: e.to_string(),
                })?;
            out.extend(page.tags.unwrap_or_default());
            match next {
                Some(n) if n.starts_with('/') => url = format!("{}{n}", repo.ep.base),
                Some(n) => url = n,
                None => return Ok(out),
            }
        }
        Ok(out)
    }

    /// Docker's `search`: `term` may start with a registry (`127.0.0.1:5000/web`), else Docker Hub's index
    /// is asked. At most `limit` results (the registry's default when 0).
    pub async fn search(&self, term: &str, limit: usize) -> Result<Vec<SearchResult>, DistError> {
        let (domain, query) = match term.split_once('/') {
            Some((d, q)) if d.contains('.') || d.contains(':') || d == "localhost" => (d, q),
            _ => ("docker.io", term),
        };
        let ep = self
            .endpoints(domain, false)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| DistError::InvalidRegistry {
                name: domain.to_string(),
                reason: "no endpoint".into(),
            })?;
        let base = if domain == "docker.io" {
            "https://index.docker.io".to_string()
        } else {
            ep.base.clone()
        };
        let mut url = reqwest::Url::parse(&format!("{base}/v1/search")).map_err(|e| {
            DistError::InvalidRegistry {
                name: domain.to_string(),
                reason: e.to_string(),
            }
        })?;
        url.query_pairs_mut().append_pair("q", query);
        if limit > 0 {
            url.query_pairs_mut().append_pair("n", &limit.to_string());
        }
        let what = format!("search for {query}");
        let req = crate::client::Req {
            scopes: &[],
            action: "search",
            repository: query,
            what: &what,
            idempotent: true,
        };
        let u = url.to_string();
        let resp = self.send(&ep, &req, &|http| http.get(&u)).await?;
        if !resp.status().is_success() {
            return Err(status_error(&ep, resp, &what, "search", query).await);
        }
        let body = resp.bytes().await.map_err(|source| DistError::Transport {
            registry: ep.registry.clone(),
            what: what.clone(),
            source,
        })?;
        let a: SearchAnswer = serde_json::from_slice(&body).map_err(|e| DistError::Invalid {
            what,
            reason: e.to_string(),
        })?;
        let mut r = a.results;
        if limit > 0 {
            r.truncate(limit);
        }
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_headers_give_the_next_page() {
        assert_eq!(
            next_link("</v2/a/tags/list?n=2&last=b>; rel=\"next\"").as_deref(),
            Some("/v2/a/tags/list?n=2&last=b")
        );
        assert_eq!(next_link("<https://r/x>; rel=\"prev\""), None);
    }
}
