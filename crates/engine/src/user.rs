//! Resolving `-u user[:group]` through the image's `/etc/passwd` and `/etc/group`, and safe path
//! resolution inside a container root.

use crate::error::{EngineError, Result};
use std::path::{Component, Path, PathBuf};

/// The numeric identity a container process runs as.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Ids {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub home: String,
}

/// Resolve `spec` (`""`, `name`, `uid`, `name:group`, `uid:gid`...) with `read` giving a file of the image.
/// Docker's rules: a numeric user needs no passwd entry; a name must exist; the primary group is the passwd
/// entry's unless given; supplementary groups are those listing the user.
pub fn resolve(spec: &str, read: impl Fn(&str) -> Option<Vec<u8>>) -> Result<Ids> {
    let passwd = read("/etc/passwd")
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let group = read("/etc/group")
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let (user, grp) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let user = if user.is_empty() { "0" } else { user };
    let entries: Vec<Vec<&str>> = passwd
        .lines()
        .map(|l| l.split(':').collect())
        .filter(|f: &Vec<&str>| f.len() >= 7)
        .collect();
    let found = entries
        .iter()
        .find(|f| f[0] == user || (user.parse::<u32>().is_ok() && f[2] == user));
    let (uid, mut gid, name, home) = match (found, user.parse::<u32>()) {
        (Some(f), _) => (
            f[2].parse().map_err(|_| {
                EngineError::Invalid(format!("invalid uid in /etc/passwd for {}", f[0]))
            })?,
            f[3].parse().unwrap_or(0),
            f[0].to_string(),
            f[5].to_string(),
        ),
        (None, Ok(uid)) => (uid, 0, String::new(), "/".to_string()),
        (None, Err(_)) => {
            return Err(EngineError::Invalid(format!(
                "unable to find user {user}: no matching entries in passwd file"
            )))
        }
    };
    let groups: Vec<Vec<&str>> = group
        .lines()
        .map(|l| l.split(':').collect())
        .filter(|f: &Vec<&str>| f.len() >= 4)
        .collect();
    if let Some(g) = grp.filter(|g| !g.is_empty()) {
        gid = match groups.iter().find(|f| f[0] == g || f[2] == g) {
            Some(f) => f[2].parse().unwrap_or(0),
            None => g.parse().map_err(|_| {
                EngineError::Invalid(format!(
                    "unable to find group {g}: no matching entries in group file"
                ))
            })?,
        };
    }
    let mut additional_gids = Vec::new();
    if !name.is_empty() && grp.is_none() {
        for f in &groups {
            if f[3].split(',').any(|m| m == name) {
                if let Ok(g) = f[2].parse::<u32>() {
                    if g != gid && !additional_gids.contains(&g) {
                        additional_gids.push(g);
                    }
                }
            }
        }
    }
    Ok(Ids {
        uid,
        gid,
        additional_gids,
        home,
    })
}

/// Resolve `path` as seen from inside `root`: symlinks are followed but can never lead out of `root`
/// (absolute targets and `..` are taken relative to `root`, as the kernel does after pivot_root).
/// Returns the host path of the final component, or None after too many links.
pub fn resolve_in_root(root: &Path, path: &str) -> Option<PathBuf> {
    let mut parts: Vec<String> = Vec::new();
    let mut pending: Vec<String> = Path::new(path)
        .components()
        .rev()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect();
    let mut links = 0;
    while let Some(c) = pending.pop() {
        if c == ".." {
            parts.pop();
            continue;
        }
        let mut candidate = root.to_path_buf();
        for p in &parts {
            candidate.push(p);
        }
        candidate.push(&c);
        match std::fs::symlink_metadata(&candidate) {
            Ok(m) if m.file_type().is_symlink() => {
                links += 1;
                if links > 40 {
                    return None;
                }
                let target = std::fs::read_link(&candidate).ok()?;
                if target.is_absolute() {
                    parts.clear();
                }
                for comp in target.components().rev() {
                    match comp {
                        Component::Normal(s) => pending.push(s.to_string_lossy().into_owned()),
                        Component::ParentDir => pending.push("..".into()),
                        _ => {}
                    }
                }
            }
            _ => parts.push(c),
        }
    }
    let mut out = root.to_path_buf();
    for p in parts {
        out.push(p);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\nalice:x:1000:1000::/home/alice:/bin/sh\n";
    const GROUP: &str = "root:x:0:\nwheel:x:10:alice\nalice:x:1000:\nstaff:x:50:bob,alice\n";

    fn read(p: &str) -> Option<Vec<u8>> {
        match p {
            "/etc/passwd" => Some(PASSWD.as_bytes().to_vec()),
            "/etc/group" => Some(GROUP.as_bytes().to_vec()),
            _ => None,
        }
    }

    #[test]
    fn users_resolve_like_docker() {
        assert_eq!(
            resolve("", read).unwrap(),
            Ids {
                uid: 0,
                gid: 0,
                additional_gids: vec![],
                home: "/root".into()
            }
        );
        let a = resolve("alice", read).unwrap();
        assert_eq!(
            (a.uid, a.gid, a.additional_gids.clone(), a.home.as_str()),
            (1000, 1000, vec![10, 50], "/home/alice")
        );
        assert_eq!(resolve("alice:staff", read).unwrap().gid, 50);
        assert_eq!(resolve("1234", read).unwrap().uid, 1234);
        assert_eq!(resolve("1234:99", read).unwrap().gid, 99);
        assert_eq!(resolve("65534", read).unwrap().home, "/nonexistent");
        assert!(resolve("mallory", read)
            .unwrap_err()
            .to_string()
            .contains("unable to find user mallory"));
        assert!(resolve("alice:nogroup", read)
            .unwrap_err()
            .to_string()
            .contains("unable to find group nogroup"));
    }

    #[test]
    fn symlinks_never_leave_the_root() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        std::fs::create_dir_all(root.join("usr/bin")).unwrap();
        std::os::unix::fs::symlink("/", root.join("escape")).unwrap();
        std::os::unix::fs::symlink("../../../../..", root.join("usr/up")).unwrap();
        std::os::unix::fs::symlink("/usr/bin", root.join("bin")).unwrap();
        assert_eq!(
            resolve_in_root(root, "/escape/etc/passwd").unwrap(),
            root.join("etc/passwd")
        );
        assert_eq!(
            resolve_in_root(root, "/usr/up/etc").unwrap(),
            root.join("etc")
        );
        assert_eq!(
            resolve_in_root(root, "/bin/sh").unwrap(),
            root.join("usr/bin/sh")
        );
        std::os::unix::fs::symlink("loop", root.join("loop")).unwrap();
        assert!(resolve_in_root(root, "/loop").is_none());
    }
}
