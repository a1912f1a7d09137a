//! `berth commit [-a AUTHOR] [-c CHANGE]... [-m MESSAGE] [-p=false] CONTAINER [REPOSITORY[:TAG]]`: prints the new
//! image's id.

use crate::client::{enc, Client};
use anyhow::{anyhow, Result};
use berth_image::Reference;
use clap::Args;

#[derive(Args, Debug)]
pub struct CommitArgs {
    /// Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")
    #[arg(short = 'a', long)]
    pub author: Option<String>,
    /// Apply Dockerfile instruction to the created image
    #[arg(short = 'c', long = "change")]
    pub change: Vec<String>,
    /// Commit message
    #[arg(short = 'm', long)]
    pub message: Option<String>,
    /// Pause container during commit
    #[arg(
        short = 'p',
        long,
        default_value_t = true,
        action = clap::ArgAction::Set,
        num_args = 0..=1,
        default_missing_value = "true",
        require_equals = true
    )]
    pub pause: bool,
    pub container: String,
    /// REPOSITORY[:TAG]
    pub reference: Option<String>,
}

/// The `repo` and `tag` query values of a reference, as the docker CLI sends them.
pub fn repo_and_tag(reference: &str) -> Result<(String, String)> {
    let r = Reference::parse(reference).map_err(|e| anyhow!("{e}"))?;
    if r.digest().is_some() {
        return Err(anyhow!("refusing to create a tag with a digest reference"));
    }
    Ok((
        r.familiar_repository(),
        r.tag().unwrap_or("latest").to_string(),
    ))
}

pub async fn commit(c: &Client, a: CommitArgs) -> Result<i32> {
    let mut q = format!(
        "container={}&pause={}",
        enc(&a.container),
        if a.pause { "1" } else { "0" }
    );
    if let Some(r) = a.reference.as_deref().filter(|r| !r.is_empty()) {
        let (repo, tag) = repo_and_tag(r)?;
        q.push_str(&format!("&repo={}&tag={}", enc(&repo), enc(&tag)));
    }
    if let Some(m) = &a.message {
        q.push_str(&format!("&comment={}", enc(m)));
    }
    if let Some(au) = &a.author {
        q.push_str(&format!("&author={}", enc(au)));
    }
    for ch in &a.change {
        q.push_str(&format!("&changes={}", enc(ch)));
    }
    let v = c.post_json(&format!("/commit?{q}"), None).await?;
    let id = v["Id"]
        .as_str()
        .ok_or_else(|| anyhow!("bad answer from daemon: no image id"))?;
    println!("{id}");
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_become_repo_and_tag() {
        assert_eq!(
            repo_and_tag("app").unwrap(),
            ("app".into(), "latest".into())
        );
        assert_eq!(
            repo_and_tag("reg:5000/a/b:v1").unwrap(),
            ("reg:5000/a/b".into(), "v1".into())
        );
        assert!(repo_and_tag("UPPER").is_err());
    }
}
