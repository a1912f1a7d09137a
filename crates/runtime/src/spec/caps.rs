//! Capabilities: Docker's default set tweaked by `--cap-add`/`--cap-drop`, or every capability for
//! `--privileged`.
//!
//! Names are case-insensitive and the `CAP_` prefix is optional; `ALL` in `cap_add` means every
//! capability but those dropped, `ALL` in `cap_drop` means exactly the added ones (Docker's semantics).

use oci_spec::runtime::Capability;

use super::defaults::{capability_name, ALL_CAPABILITIES, DEFAULT_CAPABILITIES};
use super::SpecError;

const ALL: &str = "ALL";

/// The canonical `CAP_...` name of a capability given in any case, with or without the prefix; `None`
/// if there is no such capability.
pub fn normalize_capability_name(name: &str) -> Option<String> {
    let upper = name.to_ascii_uppercase();
    let full = if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    };
    ALL_CAPABILITIES
        .iter()
        .any(|(_, known)| *known == full)
        .then_some(full)
}

/// Parses one capability name ("net_admin", "CAP_NET_ADMIN"...).
pub fn parse_capability(name: &str) -> Result<Capability, SpecError> {
    let full = normalize_capability_name(name).ok_or_else(|| SpecError::UnknownCapability {
        name: name.to_string(),
    })?;
    ALL_CAPABILITIES
        .iter()
        .find(|(_, known)| **known == full)
        .map(|(cap, _)| *cap)
        .ok_or_else(|| SpecError::UnknownCapability {
            name: name.to_string(),
        })
}

/// A parsed `cap_add` or `cap_drop` list.
struct CapList {
    all: bool,
    caps: Vec<Capability>,
}

fn parse_list(names: &[String]) -> Result<CapList, SpecError> {
    let mut list = CapList {
        all: false,
        caps: Vec::new(),
    };
    for name in names {
        if name.eq_ignore_ascii_case(ALL) {
            list.all = true;
            continue;
        }
        let cap = parse_capability(name)?;
        if !list.caps.contains(&cap) {
            list.caps.push(cap);
        }
    }
    Ok(list)
}

/// Whether capability number `index` (its kernel number, the position in [`ALL_CAPABILITIES`]) is in
/// the `available` mask; no mask means every capability is available.
fn is_available(index: usize, available: Option<u64>) -> bool {
    available.is_none_or(|mask| index < 64 && mask & (1u64 << index) != 0)
}

/// The container's capability set, in a stable order: Docker's defaults (or every capability, in kernel
/// order) minus `cap_drop`, plus `cap_add`.
///
/// `available` is the engine's own bounding set as a bit mask (bit n = capability number n, the `CapBnd`
/// line of /proc/self/status); "every capability" (`--privileged`, `--cap-add ALL`) then means every
/// available one, like Docker, and adding an unavailable one is an error. `None` means all 41.
///
/// Unknown names are an error even for privileged containers.
pub fn resolve_capabilities(
    cap_add: &[String],
    cap_drop: &[String],
    privileged: bool,
    available: Option<u64>,
) -> Result<Vec<Capability>, SpecError> {
    let add = parse_list(cap_add)?;
    let drop = parse_list(cap_drop)?;
    let every = || {
        ALL_CAPABILITIES
            .iter()
            .enumerate()
            .filter(|(index, _)| is_available(*index, available))
            .map(|(_, (cap, _))| *cap)
    };
    if privileged {
        return Ok(every().collect());
    }
    for cap in &add.caps {
        let index = ALL_CAPABILITIES.iter().position(|(c, _)| c == cap);
        if !index.is_some_and(|i| is_available(i, available)) {
            return Err(SpecError::UnavailableCapability {
                name: capability_name(*cap).to_string(),
            });
        }
    }
    let caps = if add.all {
        every().filter(|c| !drop.caps.contains(c)).collect()
    } else if drop.all {
        add.caps
    } else {
        let mut caps: Vec<Capability> = DEFAULT_CAPABILITIES
            .iter()
            .copied()
            .filter(|c| !drop.caps.contains(c))
            .collect();
        for cap in add.caps {
            if !caps.contains(&cap) {
                caps.push(cap);
            }
        }
        caps
    };
    Ok(caps)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| (*s).to_string()).collect()
    }

    fn resolve(add: &[&str], drop: &[&str]) -> Result<Vec<Capability>, SpecError> {
        resolve_capabilities(&strings(add), &strings(drop), false, None)
    }

    #[test]
    fn no_tweaks_gives_docker_defaults() {
        assert_eq!(
            resolve(&[], &[]).expect("resolves"),
            DEFAULT_CAPABILITIES.to_vec()
        );
    }

    #[test]
    fn names_with_and_without_prefix_any_case() {
        for name in ["NET_ADMIN", "CAP_NET_ADMIN", "net_admin", "cap_Net_Admin"] {
            let caps = resolve(&[name], &[]).expect("resolves");
            assert_eq!(caps.last(), Some(&Capability::NetAdmin), "{name}");
            assert_eq!(caps.len(), 15);
        }
    }

    #[test]
    fn drop_removes_and_add_of_a_default_is_not_duplicated() {
        let caps = resolve(&["chown"], &["NET_RAW", "cap_mknod"]).expect("resolves");
        assert!(!caps.contains(&Capability::NetRaw));
        assert!(!caps.contains(&Capability::Mknod));
        assert_eq!(caps.iter().filter(|c| **c == Capability::Chown).count(), 1);
        assert_eq!(caps.len(), 12);
    }

    #[test]
    fn drop_all_keeps_only_added() {
        let caps = resolve(&["NET_BIND_SERVICE", "chown"], &["ALL"]).expect("resolves");
        assert_eq!(caps, vec![Capability::NetBindService, Capability::Chown]);
        assert!(resolve(&[], &["all"]).expect("resolves").is_empty());
    }

    #[test]
    fn add_all_minus_drops() {
        let caps = resolve(&["ALL"], &["SYS_ADMIN"]).expect("resolves");
        assert_eq!(caps.len(), ALL_CAPABILITIES.len() - 1);
        assert!(!caps.contains(&Capability::SysAdmin));
        assert!(caps.contains(&Capability::CheckpointRestore));
        // add ALL wins over drop ALL, like Docker
        let caps = resolve(&["all"], &["all"]).expect("resolves");
        assert_eq!(caps.len(), ALL_CAPABILITIES.len());
    }

    #[test]
    fn privileged_gets_every_capability_in_kernel_order() {
        let caps = resolve_capabilities(&[], &strings(&["chown"]), true, None).expect("resolves");
        assert_eq!(caps.len(), 41);
        assert_eq!(caps[0], Capability::Chown);
        assert_eq!(caps[40], Capability::CheckpointRestore);
    }

    #[test]
    fn unknown_capability_is_an_error() {
        for (add, drop) in [(&["CAP_FLY"][..], &[][..]), (&[][..], &["bogus"][..])] {
            match resolve(add, drop) {
                Err(SpecError::UnknownCapability { name }) => {
                    assert!(name == "CAP_FLY" || name == "bogus")
                }
                other => panic!("expected UnknownCapability, got {other:?}"),
            }
        }
        assert!(resolve_capabilities(&strings(&["CAP_CAP_CHOWN"]), &[], true, None).is_err());
        assert!(parse_capability("").is_err());
    }

    #[test]
    fn available_mask_limits_every_capability() {
        // a host without CAP_SYS_RESOURCE (24) and anything above CAP_BPF (39)
        let mask = ((1u64 << 40) - 1) & !(1u64 << 24);
        let caps = resolve_capabilities(&[], &[], true, Some(mask)).expect("resolves");
        assert_eq!(caps.len(), 39);
        assert!(!caps.contains(&Capability::SysResource));
        assert!(!caps.contains(&Capability::CheckpointRestore));
        let caps =
            resolve_capabilities(&strings(&["ALL"]), &[], false, Some(mask)).expect("resolves");
        assert_eq!(caps.len(), 39);
        match resolve_capabilities(&strings(&["sys_resource"]), &[], false, Some(mask)) {
            Err(SpecError::UnavailableCapability { name }) => assert_eq!(name, "CAP_SYS_RESOURCE"),
            other => panic!("expected UnavailableCapability, got {other:?}"),
        }
        // the defaults are not filtered, like Docker; dropping an absent one is fine
        let caps = resolve_capabilities(&[], &strings(&["SYS_RESOURCE"]), false, Some(mask))
            .expect("resolves");
        assert_eq!(caps, DEFAULT_CAPABILITIES.to_vec());
    }

    #[test]
    fn normalize() {
        assert_eq!(
            normalize_capability_name("sys_admin").as_deref(),
            Some("CAP_SYS_ADMIN")
        );
        assert_eq!(normalize_capability_name("CAP_NOPE"), None);
    }
}
