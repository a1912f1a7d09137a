//! The container's mount list, in the order the runtime mounts it.
//!
//! First Docker's default mounts (/proc, /dev, /dev/pts, /sys, /sys/fs/cgroup, /dev/mqueue, /dev/shm)
//! and the `--init` binary, minus any a user mount replaces (a user `/dev` replaces everything below
//! it too). Then the etc files, the shareable `/dev/shm` and the user mounts, stably sorted by the depth
//! of their destination so that `/data` is mounted before `/data/cache` (Docker's `sortMounts`).

use oci_spec::runtime::Mount;
use std::collections::HashSet;
use std::path::{Component, Path, PathBuf};

use super::defaults::{default_mounts, DEFAULT_SHM_SIZE, INIT_PATH, WRITABLE_WITH_READONLY_ROOTFS};
use super::input::{MountKind, MountSpec, Propagation, SpecInput};
use super::SpecError;

/// The mounts and the rootfs propagation they need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountPlan {
    /// Mounts in mount order.
    pub mounts: Vec<Mount>,
    /// `linux.rootfsPropagation`: `shared` if a mount is shared, `rslave` if one is a slave.
    pub rootfs_propagation: Option<String>,
}

/// Mount flags accepted in options (Linux mount(8) names), grouped by the flag they set or clear so that
/// a later option overrides an earlier one of the same group.
const FLAG_GROUPS: &[&[&str]] = &[
    &["ro", "rw"],
    &["suid", "nosuid"],
    &["dev", "nodev"],
    &["exec", "noexec"],
    &["sync", "async"],
    &["dirsync"],
    &["mand", "nomand"],
    &["atime", "noatime"],
    &["diratime", "nodiratime"],
    &["relatime", "norelatime"],
    &["strictatime", "nostrictatime"],
    &[
        "bind",
        "rbind",
        "private",
        "rprivate",
        "shared",
        "rshared",
        "slave",
        "rslave",
        "unbindable",
        "runbindable",
    ],
];

/// The group of `ro`/`rw` in [`FLAG_GROUPS`].
const READ_WRITE_GROUP: usize = 0;
/// The group of bind and propagation flags in [`FLAG_GROUPS`].
const PROPAGATION_GROUP: usize = FLAG_GROUPS.len() - 1;

/// `key=value` options a tmpfs accepts.
const TMPFS_DATA: &[&str] = &[
    "size",
    "mode",
    "uid",
    "gid",
    "nr_inodes",
    "nr_blocks",
    "mpol",
];

fn flag_group(option: &str) -> Option<usize> {
    FLAG_GROUPS.iter().position(|g| g.contains(&option))
}

/// Normalises an absolute container path (`/a//b/../c/` → `/a/c`). Relative paths and `/` itself are
/// rejected: nothing may be mounted over the root.
pub fn clean_destination(destination: &str) -> Result<String, SpecError> {
    let invalid = || SpecError::InvalidMountDestination {
        destination: destination.to_string(),
    };
    let path = Path::new(destination);
    if !path.is_absolute() {
        return Err(invalid());
    }
    let mut parts: Vec<&str> = Vec::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => parts.push(part.to_str().ok_or_else(invalid)?),
            Component::ParentDir => {
                parts.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    if parts.is_empty() {
        return Err(invalid());
    }
    Ok(format!("/{}", parts.join("/")))
}

/// Number of components of a cleaned absolute path: the sort key of user mounts.
fn depth(destination: &Path) -> usize {
    destination
        .components()
        .filter(|c| matches!(c, Component::Normal(_)))
        .count()
}

/// Merges tmpfs options like Docker (`MergeTmpfsOptions`): for each flag group and each `key=`, the
/// last occurrence wins and keeps its position; `defaults` is dropped; anything else is an error.
pub fn merge_tmpfs_options(
    destination: &str,
    options: &[String],
) -> Result<Vec<String>, SpecError> {
    let mut seen_groups = HashSet::new();
    let mut seen_keys = HashSet::new();
    let mut merged = Vec::new();
    for option in options.iter().rev() {
        if option == "defaults" {
            continue;
        }
        let fresh = if let Some(group) = flag_group(option) {
            seen_groups.insert(group)
        } else {
            match option.split_once('=') {
                Some((key, _)) if TMPFS_DATA.contains(&key) => seen_keys.insert(key.to_string()),
                _ => {
                    return Err(SpecError::InvalidMountOption {
                        destination: destination.to_string(),
                        option: option.clone(),
                    })
                }
            }
        };
        if fresh {
            merged.push(option.clone());
        }
    }
    merged.reverse();
    Ok(merged)
}

fn new_mount(destination: &str, typ: &str, source: PathBuf, options: Vec<String>) -> Mount {
    let mut m = Mount::default();
    m.set_destination(PathBuf::from(destination));
    m.set_typ(Some(typ.to_string()));
    m.set_source(Some(source));
    m.set_options(Some(options));
    m
}

fn bind_mount(
    destination: &str,
    source: PathBuf,
    readonly: bool,
    propagation: Propagation,
    extra: &[String],
) -> Result<Mount, SpecError> {
    if !source.is_absolute() {
        return Err(SpecError::RelativeMountSource {
            destination: destination.to_string(),
            source_path: source,
        });
    }
    let mut options = vec![
        "rbind".to_string(),
        if readonly { "ro" } else { "rw" }.to_string(),
        propagation.as_str().to_string(),
    ];
    for option in extra {
        // read-only-ness, bind mode and propagation have their own fields; only plain flags may be added
        match flag_group(option) {
            Some(group) if group != READ_WRITE_GROUP && group != PROPAGATION_GROUP => {
                options.push(option.clone())
            }
            _ => {
                return Err(SpecError::InvalidMountOption {
                    destination: destination.to_string(),
                    option: option.clone(),
                })
            }
        }
    }
    Ok(new_mount(destination, "bind", source, options))
}

fn user_mount(spec: &MountSpec) -> Result<(String, Mount, Propagation), SpecError> {
    let destination = clean_destination(&spec.destination)?;
    let propagation = spec.propagation.unwrap_or(Propagation::Rprivate);
    let mount = match spec.kind {
        MountKind::Bind | MountKind::Volume => bind_mount(
            &destination,
            spec.source.clone(),
            spec.readonly,
            propagation,
            &spec.options,
        )?,
        MountKind::Tmpfs => {
            let mut options: Vec<String> = ["noexec", "nosuid", "nodev", propagation.as_str()]
                .iter()
                .map(|s| (*s).to_string())
                .collect();
            options.extend(spec.options.iter().cloned());
            if spec.readonly {
                options.push("ro".to_string());
            }
            let options = merge_tmpfs_options(&destination, &options)?;
            new_mount(&destination, "tmpfs", PathBuf::from("tmpfs"), options)
        }
    };
    Ok((destination, mount, propagation))
}

fn remove_option(mount: &mut Mount, option: &str) {
    if let Some(options) = mount.options_mut() {
        options.retain(|o| o != option);
    }
}

/// Builds the mount list of `input`; see the module documentation for the order.
pub fn plan_mounts(input: &SpecInput, with_init: bool) -> Result<MountPlan, SpecError> {
    // user mounts first: they decide which defaults survive
    let mut users: Vec<(String, Mount, Propagation)> = Vec::new();
    let mut user_destinations = HashSet::new();
    for spec in &input.mounts {
        let entry = user_mount(spec)?;
        if !user_destinations.insert(entry.0.clone()) {
            return Err(SpecError::DuplicateMountDestination {
                destination: entry.0,
            });
        }
        users.push(entry);
    }

    // etc files and the shareable /dev/shm give way to a user mount at the same place
    let mut extras: Vec<(String, Mount, Propagation)> = Vec::new();
    for (host, container_path) in &input.etc_files {
        let destination = clean_destination(container_path)?;
        if user_destinations.contains(&destination)
            || extras.iter().any(|(d, _, _)| *d == destination)
        {
            continue;
        }
        let mount = bind_mount(
            &destination,
            host.clone(),
            input.readonly_rootfs,
            Propagation::Rprivate,
            &[],
        )?;
        extras.push((destination, mount, Propagation::Rprivate));
    }
    if let Some(shm) = &input.shm_source {
        let destination = "/dev/shm".to_string();
        if !user_destinations.contains(&destination) {
            let mount = bind_mount(&destination, shm.clone(), false, Propagation::Rprivate, &[])?;
            extras.push((destination, mount, Propagation::Rprivate));
        }
    }
    extras.extend(users);
    let replaced: HashSet<&str> = extras.iter().map(|(d, _, _)| d.as_str()).collect();
    let replaces_dev = replaced.contains("/dev");

    let shm_size = if input.shm_size == 0 {
        DEFAULT_SHM_SIZE
    } else {
        input.shm_size
    };
    let mut defaults = default_mounts(shm_size);
    if with_init {
        if let Some(init) = &input.init_binary {
            if !init.is_absolute() {
                return Err(SpecError::RelativeMountSource {
                    destination: INIT_PATH.to_string(),
                    source_path: init.clone(),
                });
            }
            defaults.push(new_mount(
                INIT_PATH,
                "bind",
                init.clone(),
                vec!["bind".to_string(), "ro".to_string()],
            ));
        }
    }
    let mut mounts: Vec<Mount> = Vec::new();
    for mut mount in defaults {
        let destination = mount.destination().to_string_lossy().into_owned();
        if replaced.contains(destination.as_str())
            || (replaces_dev && destination.starts_with("/dev/"))
        {
            continue;
        }
        if input.readonly_rootfs && !WRITABLE_WITH_READONLY_ROOTFS.contains(&destination.as_str()) {
            let options = mount.options_mut().get_or_insert_with(Vec::new);
            if !options.iter().any(|o| o == "ro") {
                options.push("ro".to_string());
            }
        }
        if input.privileged && (destination == "/sys" || mount.typ().as_deref() == Some("cgroup")) {
            remove_option(&mut mount, "ro");
        }
        mounts.push(mount);
    }

    let rootfs_propagation = if extras
        .iter()
        .any(|(_, _, p)| matches!(p, Propagation::Shared | Propagation::Rshared))
    {
        Some("shared".to_string())
    } else if extras
        .iter()
        .any(|(_, _, p)| matches!(p, Propagation::Slave | Propagation::Rslave))
    {
        Some("rslave".to_string())
    } else {
        None
    };

    // a stable sort keeps etc files ahead of user mounts of the same depth
    let mut rest: Vec<Mount> = extras.into_iter().map(|(_, m, _)| m).collect();
    rest.sort_by_key(|m| depth(m.destination()));
    mounts.extend(rest);
    Ok(MountPlan {
        mounts,
        rootfs_propagation,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn destinations(plan: &MountPlan) -> Vec<String> {
        plan.mounts
            .iter()
            .map(|m| m.destination().to_string_lossy().into_owned())
            .collect()
    }

    fn options_of(plan: &MountPlan, destination: &str) -> Vec<String> {
        plan.mounts
            .iter()
            .find(|m| m.destination() == Path::new(destination))
            .and_then(|m| m.options().clone())
            .unwrap_or_else(|| panic!("no mount at {destination}"))
    }

    fn bind(destination: &str, source: &str) -> MountSpec {
        MountSpec {
            destination: destination.to_string(),
            source: PathBuf::from(source),
            ..MountSpec::default()
        }
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_string()).collect()
    }

    #[test]
    fn clean_destination_normalises_and_rejects() {
        assert_eq!(
            clean_destination("/a//b/./c/").ok().as_deref(),
            Some("/a/b/c")
        );
        assert_eq!(clean_destination("/a/../b").ok().as_deref(), Some("/b"));
        for bad in ["relative", "", "/", "/..", "/a/.."] {
            assert!(
                matches!(
                    clean_destination(bad),
                    Err(SpecError::InvalidMountDestination { .. })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn user_mounts_sorted_parents_first_and_stable() {
        let input = SpecInput {
            mounts: vec![
                bind("/data/cache/deep", "/h/3"),
                bind("/data/cache", "/h/2"),
                bind("/zz", "/h/z"),
                bind("/data", "/h/1"),
                bind("/aa", "/h/a"),
            ],
            etc_files: vec![(PathBuf::from("/c/hosts"), "/etc/hosts".to_string())],
            ..SpecInput::default()
        };
        let plan = plan_mounts(&input, false).expect("plans");
        let dests = destinations(&plan);
        assert_eq!(
            dests[7..],
            strings(&[
                "/zz",
                "/data",
                "/aa",
                "/etc/hosts",
                "/data/cache",
                "/data/cache/deep"
            ])[..]
        );
        assert_eq!(
            dests[..7],
            strings(&[
                "/proc",
                "/dev",
                "/dev/pts",
                "/sys",
                "/sys/fs/cgroup",
                "/dev/mqueue",
                "/dev/shm"
            ])[..]
        );
    }

    #[test]
    fn bind_options_and_propagation() {
        let mut ro = bind("/ro", "/h/ro");
        ro.readonly = true;
        let mut shared = bind("/shared", "/h/s");
        shared.propagation = Some(Propagation::Rshared);
        let mut vol = bind("/vol", "/var/lib/berth/volumes/v/_data");
        vol.kind = MountKind::Volume;
        vol.options = strings(&["nosuid"]);
        let input = SpecInput {
            mounts: vec![ro, shared, vol],
            ..SpecInput::default()
        };
        let plan = plan_mounts(&input, false).expect("plans");
        assert_eq!(
            options_of(&plan, "/ro"),
            strings(&["rbind", "ro", "rprivate"])
        );
        assert_eq!(
            options_of(&plan, "/shared"),
            strings(&["rbind", "rw", "rshared"])
        );
        assert_eq!(
            options_of(&plan, "/vol"),
            strings(&["rbind", "rw", "rprivate", "nosuid"])
        );
        assert_eq!(plan.rootfs_propagation.as_deref(), Some("shared"));
    }

    #[test]
    fn slave_propagation_makes_rootfs_rslave() {
        let mut m = bind("/x", "/h/x");
        m.propagation = Some(Propagation::Slave);
        let input = SpecInput {
            mounts: vec![m],
            ..SpecInput::default()
        };
        let plan = plan_mounts(&input, false).expect("plans");
        assert_eq!(plan.rootfs_propagation.as_deref(), Some("rslave"));
        let plain = plan_mounts(&SpecInput::default(), false).expect("plans");
        assert_eq!(plain.rootfs_propagation, None);
    }

    #[test]
    fn tmpfs_options_merge_like_docker() {
        let merged = merge_tmpfs_options(
            "/t",
            &strings(&[
                "noexec", "nosuid", "nodev", "rprivate", "size=1m", "exec", "size=2m",
            ]),
        )
        .expect("merges");
        assert_eq!(
            merged,
            strings(&["nosuid", "nodev", "rprivate", "exec", "size=2m"])
        );
        assert!(matches!(
            merge_tmpfs_options("/t", &strings(&["bogus=1"])),
            Err(SpecError::InvalidMountOption { .. })
        ));
        assert!(merge_tmpfs_options("/t", &strings(&["defaults", "mode=1777"])).is_ok());
    }

    #[test]
    fn tmpfs_mount_readonly() {
        let input = SpecInput {
            mounts: vec![MountSpec {
                destination: "/run".to_string(),
                kind: MountKind::Tmpfs,
                readonly: true,
                options: strings(&["size=65536k", "rw"]),
                ..MountSpec::default()
            }],
            ..SpecInput::default()
        };
        let plan = plan_mounts(&input, false).expect("plans");
        assert_eq!(
            options_of(&plan, "/run"),
            strings(&["noexec", "nosuid", "nodev", "rprivate", "size=65536k", "ro"])
        );
        let m = plan.mounts.last().expect("a mount");
        assert_eq!(m.typ().as_deref(), Some("tmpfs"));
        assert_eq!(m.source().as_deref(), Some(Path::new("tmpfs")));
    }

    #[test]
    fn user_mount_replaces_defaults_and_etc_files() {
        let input = SpecInput {
            mounts: vec![bind("/dev", "/h/dev"), bind("/etc/hosts", "/h/hosts")],
            etc_files: vec![
                (PathBuf::from("/c/hosts"), "/etc/hosts".to_string()),
                (
                    PathBuf::from("/c/resolv.conf"),
                    "/etc/resolv.conf".to_string(),
                ),
            ],
            ..SpecInput::default()
        };
        let plan = plan_mounts(&input, false).expect("plans");
        let dests = destinations(&plan);
        assert_eq!(
            dests,
            strings(&[
                "/proc",
                "/sys",
                "/sys/fs/cgroup",
                "/dev",
                "/etc/resolv.conf",
                "/etc/hosts"
            ])
        );
        let hosts = plan.mounts.last().expect("a mount");
        assert_eq!(hosts.source().as_deref(), Some(Path::new("/h/hosts")));
    }

    #[test]
    fn duplicate_and_relative_user_mounts_are_errors() {
        let input = SpecInput {
            mounts: vec![bind("/a", "/h/1"), bind("/a/", "/h/2")],
            ..SpecInput::default()
        };
        assert!(matches!(
            plan_mounts(&input, false),
            Err(SpecError::DuplicateMountDestination { .. })
        ));
        let input = SpecInput {
            mounts: vec![bind("/a", "relative/source")],
            ..SpecInput::default()
        };
        assert!(matches!(
            plan_mounts(&input, false),
            Err(SpecError::RelativeMountSource { .. })
        ));
        let mut m = bind("/a", "/h");
        m.options = strings(&["rshared"]);
        let input = SpecInput {
            mounts: vec![m],
            ..SpecInput::default()
        };
        assert!(matches!(
            plan_mounts(&input, false),
            Err(SpecError::InvalidMountOption { .. })
        ));
    }

    #[test]
    fn readonly_rootfs_and_privileged_adjust_defaults() {
        let input = SpecInput {
            readonly_rootfs: true,
            etc_files: vec![(PathBuf::from("/c/hosts"), "/etc/hosts".to_string())],
            ..SpecInput::default()
        };
        let plan = plan_mounts(&input, false).expect("plans");
        assert_eq!(
            options_of(&plan, "/etc/hosts"),
            strings(&["rbind", "ro", "rprivate"])
        );
        assert!(!options_of(&plan, "/dev/shm").contains(&"ro".to_string()));
        let privileged = SpecInput {
            privileged: true,
            ..SpecInput::default()
        };
        let plan = plan_mounts(&privileged, false).expect("plans");
        assert!(!options_of(&plan, "/sys").contains(&"ro".to_string()));
        assert!(!options_of(&plan, "/sys/fs/cgroup").contains(&"ro".to_string()));
    }

    #[test]
    fn init_and_shm_source() {
        let input = SpecInput {
            init_binary: Some(PathBuf::from("/usr/libexec/berth-init")),
            shm_source: Some(PathBuf::from("/run/berth/c/shm")),
            shm_size: 1024,
            ..SpecInput::default()
        };
        let plan = plan_mounts(&input, true).expect("plans");
        let dests = destinations(&plan);
        assert_eq!(dests[6], INIT_PATH);
        assert_eq!(dests[7], "/dev/shm");
        assert_eq!(options_of(&plan, INIT_PATH), strings(&["bind", "ro"]));
        assert_eq!(dests.iter().filter(|d| *d == "/dev/shm").count(), 1);
        let plan = plan_mounts(&input, false).expect("plans");
        assert!(!destinations(&plan).contains(&INIT_PATH.to_string()));
    }
}
