//! Lexical handling of entry names: cleaning, escape detection, whiteout names.

/// Longest cleaned entry path we accept (Linux `PATH_MAX`, including the terminating NUL). Besides
/// matching what a path-based tool could ever create, it bounds the depth of any tree we build and so
/// the recursion of [`crate::fsat::remove_all_at`].
pub(crate) const PATH_MAX: usize = 4096;

/// Prefix of whiteout names in layer tars.
pub(crate) const WHITEOUT_PREFIX: &[u8] = b".wh.";
/// Name of the opaque-directory marker in layer tars.
pub(crate) const OPAQUE_MARKER: &[u8] = b".wh..wh..opq";
/// Prefix of AUFS metadata names (`.wh..wh.plnk`, `.wh..wh.aufs`), which we ignore.
pub(crate) const WHITEOUT_META_PREFIX: &[u8] = b".wh..wh.";

/// Why [`clean`] refused a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// `..` climbs above the root.
    Escapes,
    /// A NUL byte, which no file name can hold.
    Nul,
    /// Longer than [`PATH_MAX`] once cleaned.
    TooLong,
}

/// Cleans a raw entry name into a path relative to the archive root: leading `/`, `.` components
/// and repeated slashes disappear, `..` removes the previous component. Returns the components joined
/// by `/` (empty for the root itself). A `..` that would climb above the root is refused rather than
/// clamped: an archive that tries it is malicious, not sloppy.
pub(crate) fn clean(raw: &[u8]) -> Result<Vec<u8>, Refusal> {
    if raw.contains(&0) {
        return Err(Refusal::Nul);
    }
    let mut parts: Vec<&[u8]> = Vec::new();
    for comp in raw.split(|b| *b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => {
                if parts.pop().is_none() {
                    return Err(Refusal::Escapes);
                }
            }
            name => parts.push(name),
        }
    }
    let cleaned = parts.join(&b'/');
    if cleaned.len() >= PATH_MAX {
        return Err(Refusal::TooLong);
    }
    Ok(cleaned)
}

/// Splits a cleaned path into its parent (possibly empty) and its last component.
pub(crate) fn split_last(path: &[u8]) -> (&[u8], &[u8]) {
    match path.iter().rposition(|b| *b == b'/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => (&[], path),
    }
}

/// Joins a cleaned parent and a single component.
pub(crate) fn join(parent: &[u8], name: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(parent.len() + 1 + name.len());
    if !parent.is_empty() {
        out.extend_from_slice(parent);
        out.push(b'/');
    }
    out.extend_from_slice(name);
    out
}

/// What the last component of an entry name means in a layer tar.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Whiteout<'a> {
    /// An ordinary name.
    No,
    /// `.wh..wh..opq`: the parent directory hides everything below it in lower layers.
    Opaque,
    /// `.wh.NAME`: `NAME` is deleted.
    Remove(&'a [u8]),
    /// `.wh..wh.*` other than the opaque marker: AUFS bookkeeping, ignored.
    Meta,
    /// `.wh.`, `.wh..` or `.wh...`: would delete the directory itself or climb out.
    Invalid,
}

/// Classifies the last component of an entry name.
pub(crate) fn whiteout(name: &[u8]) -> Whiteout<'_> {
    if name == OPAQUE_MARKER {
        return Whiteout::Opaque;
    }
    if name.starts_with(WHITEOUT_META_PREFIX) {
        return Whiteout::Meta;
    }
    match name.strip_prefix(WHITEOUT_PREFIX) {
        None => Whiteout::No,
        Some(b"" | b"." | b"..") => Whiteout::Invalid,
        Some(target) => Whiteout::Remove(target),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(raw: &str) -> String {
        String::from_utf8(clean(raw.as_bytes()).expect("clean")).expect("utf8")
    }

    #[test]
    fn clean_strips_roots_dots_and_slashes() {
        assert_eq!(ok("bin/sh"), "bin/sh");
        assert_eq!(ok("./bin/sh"), "bin/sh");
        assert_eq!(ok("/etc/x"), "etc/x");
        assert_eq!(ok("//etc//./x/"), "etc/x");
        assert_eq!(ok("a/../b"), "b");
        assert_eq!(ok("a/b/../../c"), "c");
        assert_eq!(ok("./"), "");
        assert_eq!(ok("/"), "");
        assert_eq!(ok("."), "");
        assert_eq!(ok("..."), "...");
        assert_eq!(ok("a/..b"), "a/..b");
    }

    #[test]
    fn clean_refuses_escapes() {
        for raw in [
            "..",
            "../evil",
            "/abs/../../x",
            "a/../../b",
            "./../x",
            "/..",
            "a/b/../../../c",
        ] {
            assert_eq!(clean(raw.as_bytes()), Err(Refusal::Escapes), "{raw}");
        }
    }

    #[test]
    fn clean_refuses_nul_and_huge() {
        assert_eq!(clean(b"a\0b"), Err(Refusal::Nul));
        let long = "a/".repeat(PATH_MAX);
        assert_eq!(clean(long.as_bytes()), Err(Refusal::TooLong));
    }

    #[test]
    fn split_and_join() {
        assert_eq!(split_last(b"a/b/c"), (&b"a/b"[..], &b"c"[..]));
        assert_eq!(split_last(b"c"), (&b""[..], &b"c"[..]));
        assert_eq!(join(b"", b"c"), b"c");
        assert_eq!(join(b"a/b", b"c"), b"a/b/c");
    }

    #[test]
    fn whiteout_names() {
        assert_eq!(whiteout(b"file"), Whiteout::No);
        assert_eq!(whiteout(b".wh..wh..opq"), Whiteout::Opaque);
        assert_eq!(whiteout(b".wh..wh.plnk"), Whiteout::Meta);
        assert_eq!(whiteout(b".wh.foo"), Whiteout::Remove(b"foo"));
        assert_eq!(whiteout(b".wh..hidden"), Whiteout::Remove(b".hidden"));
        assert_eq!(whiteout(b".wh."), Whiteout::Invalid);
        assert_eq!(whiteout(b".wh.."), Whiteout::Invalid);
        assert_eq!(whiteout(b".wh..."), Whiteout::Invalid);
        assert_eq!(whiteout(b".whx"), Whiteout::No);
    }
}
