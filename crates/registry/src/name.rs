//! Repository names and tags, validated per the distribution spec before they ever touch a path.

/// The longest repository name accepted.
pub const MAX_NAME_LEN: usize = 255;

/// Whether `name` is a valid repository name: `/`-separated components, each
/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`. No component can be empty, `.`, `..` or start with `_`, so a
/// valid name is always a safe relative path that cannot collide with the store's `_`-prefixed entries.
pub fn valid_repository(name: &str) -> bool {
    !name.is_empty() && name.len() <= MAX_NAME_LEN && name.split('/').all(valid_component)
}

fn valid_component(c: &str) -> bool {
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
        // A separator run: ".", "_", "__" or one or more "-".
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// Whether `tag` is a valid tag: `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
pub fn valid_tag(tag: &str) -> bool {
    let b = tag.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b[1..]
            .iter()
            .all(|&x| x.is_ascii_alphanumeric() || x == b'_' || x == b'.' || x == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_names() {
        for ok in [
            "a",
            "library/busybox",
            "a.b/c_d/e__f/g---h",
            "0/1/2",
            "x-y.z",
        ] {
            assert!(valid_repository(ok), "{ok} should be valid");
        }
        for bad in [
            "",
            "A",
            "a/",
            "/a",
            "a//b",
            "..",
            "a/../b",
            "a/./b",
            "_a",
            "a_",
            "a___b",
            "a..b",
            "a/_manifests",
            "a%2e",
            "a b",
            "a:b",
            "-a",
        ] {
            assert!(!valid_repository(bad), "{bad} should be invalid");
        }
        assert!(!valid_repository(&"a".repeat(256)));
    }

    #[test]
    fn tags() {
        for ok in ["latest", "v1.0", "_x", "A-b_c.d"] {
            assert!(valid_tag(ok), "{ok}");
        }
        for bad in ["", ".x", "-x", "a/b", "..", "a:b", &"a".repeat(129)] {
            assert!(!valid_tag(bad), "{bad}");
        }
    }
}
