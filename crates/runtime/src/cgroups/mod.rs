//! A container's cgroup, made by the shim before the init is cloned: its directory in each v1 controller
//! hierarchy or in the unified v2 one (controllers enabled on the way down), its limits written
//! ([`limits`]), frozen and thawed for pause, removed with everything below it at the end. The init only
//! has to move itself in (see `berth_sys::container`).

use std::os::fd::OwnedFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use berth_sys::container::{CgroupHierarchy, Cgroups};
use berth_sys::launch::CgroupMount;
use oci_spec::runtime::LinuxResources;

use crate::container::{io, RuntimeError};

pub mod devices;
pub mod limits;

/// A container's cgroup: its directory in each hierarchy it was made in.
#[derive(Debug, Clone)]
pub struct Cgroup {
    /// `linux.cgroupsPath`, absolute within each hierarchy (`/berth/<id>`).
    pub path: PathBuf,
    /// The unified (v2) hierarchy, or one directory per v1 controller hierarchy.
    pub v2: bool,
    /// Each directory with the v1 controllers of its hierarchy (none on v2).
    pub dirs: Vec<(Vec<String>, PathBuf)>,
}

/// How a spare shim's cgroup is named under the parent, before its pid.
const SPARE_PREFIX: &str = "spare-";

impl Cgroup {
    /// Makes the container's cgroup in every hierarchy that has controllers (v1), or in the unified one
    /// with the controllers enabled on the way down (v2), and writes its limits.
    pub fn create(
        path: &Path,
        resources: Option<&LinuxResources>,
        mounts: &[CgroupMount],
    ) -> Result<Cgroup, RuntimeError> {
        let rel = path.strip_prefix("/").unwrap_or(path);
        let unified = unified_root(mounts);
        let v2 = unified.is_some();
        let mut dirs = Vec::new();
        // What was made stays listed even when a later step fails, so that it is removed again.
        let made: Result<(), RuntimeError> = (|| {
            if let Some(root) = unified {
                let mut dir = root.to_path_buf();
                for comp in rel.components() {
                    enable_controllers(&dir)?;
                    dir.push(comp);
                    mkdir(&dir)?;
                }
                dirs.push((Vec::new(), dir));
                return Ok(());
            }
            for m in mounts.iter().filter(|m| !m.v2) {
                if m.controllers.iter().all(|c| c.starts_with("name=")) {
                    continue;
                }
                let cpuset = m.controllers.iter().any(|c| c == "cpuset");
                // Usually only the container's own directory is missing: one `mkdir`.
                let leaf = m.dir.join(rel);
                let made_leaf = match std::fs::create_dir(&leaf) {
                    Ok(()) => Some(true),
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Some(false),
                    Err(_) => None,
                };
                if let Some(made) = made_leaf {
                    if let (true, true, Some(parent)) = (made, cpuset, leaf.parent()) {
                        inherit_cpuset(parent, &leaf).inspect_err(|_| {
                            let _ = std::fs::remove_dir(&leaf);
                        })?;
                    }
                    dirs.push((m.controllers.clone(), leaf));
                    continue;
                }
                let mut dir = m.dir.clone();
                for comp in rel.components() {
                    let parent = dir.clone();
                    dir.push(comp);
                    if mkdir(&dir)? && cpuset {
                        inherit_cpuset(&parent, &dir).inspect_err(|_| {
                            let _ = std::fs::remove_dir(&dir);
                        })?;
                    }
                }
                dirs.push((m.controllers.clone(), dir));
            }
            Ok(())
        })();
        let cg = Cgroup {
            path: path.to_path_buf(),
            v2,
            dirs,
        };
        if let Err(e) = made {
            cg.remove();
            return Err(e);
        }
        if let Err(e) = cg.apply(resources) {
            cg.remove();
            return Err(e);
        }
        Ok(cg)
    }

    /// A cgroup made ahead, `<parent>/spare-<pid>` in every v1 hierarchy, by a spare shim while it waits for
    /// its container ([`Cgroup::adopt`] then renames it). `None` on v2, where a cgroup cannot be renamed
    /// (and is one `mkdir` anyway), or when it cannot be made.
    pub fn spare(parent: &str, mounts: &[CgroupMount]) -> Option<Cgroup> {
        if unified_root(mounts).is_some() || mounts.iter().all(|m| m.v2) {
            return None;
        }
        let path = Path::new(parent).join(format!("{SPARE_PREFIX}{}", std::process::id()));
        Cgroup::create(&path, None, mounts).ok()
    }

    /// The container's cgroup at `path` from one made ahead ([`Cgroup::spare`]): on v1 a cgroup can be
    /// renamed within its parent, so each directory takes the container's name and only the limits are
    /// left to write. Under another parent, or if a rename fails, the spare is removed and `path` made
    /// as by [`Cgroup::create`]; `before_removal` is called first (what the spare put in its cgroup must
    /// leave it, or it cannot be removed), and is not called when the renamed cgroup is the container's.
    pub fn adopt(
        self,
        path: &Path,
        resources: Option<&LinuxResources>,
        mounts: &[CgroupMount],
        before_removal: impl FnOnce(),
    ) -> Result<Cgroup, RuntimeError> {
        let name = path
            .file_name()
            .filter(|_| !self.v2 && self.path.parent() == path.parent());
        let Some(name) = name else {
            before_removal();
            self.remove();
            return Cgroup::create(path, resources, mounts);
        };
        let mut dirs = Vec::with_capacity(self.dirs.len());
        let mut renamed = true;
        for (ctls, dir) in &self.dirs {
            let to = dir.with_file_name(name);
            if renamed && std::fs::rename(dir, &to).is_ok() {
                dirs.push((ctls.clone(), to));
            } else {
                renamed = false;
                dirs.push((ctls.clone(), dir.clone()));
            }
        }
        let cg = Cgroup {
            path: path.to_path_buf(),
            v2: false,
            dirs,
        };
        if !renamed {
            before_removal();
            cg.remove();
            return Cgroup::create(path, resources, mounts);
        }
        if let Err(e) = cg.apply(resources) {
            before_removal();
            cg.remove();
            return Err(e);
        }
        Ok(cg)
    }

    /// Removes the spare cgroups under `parent` whose shim is gone (one killed before it could remove its
    /// own); those of live spares (another daemon's too) stay.
    pub fn remove_stale_spares(parent: &str, mounts: &[CgroupMount]) {
        let rel = Path::new(parent);
        let rel = rel.strip_prefix("/").unwrap_or(rel);
        for m in mounts.iter().filter(|m| !m.v2) {
            let Ok(entries) = std::fs::read_dir(m.dir.join(rel)) else {
                continue;
            };
            for e in entries.flatten() {
                let name = e.file_name();
                let Some(pid) = name
                    .to_str()
                    .and_then(|n| n.strip_prefix(SPARE_PREFIX))
                    .and_then(|p| p.parse::<u32>().ok())
                else {
                    continue;
                };
                let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
                // (A spare that was just handed its container has taken the shims' name.)
                let live = [crate::shim::SPARE_NAME, crate::shim::SHIM_NAME]
                    .iter()
                    .any(|n| n.to_bytes() == comm.trim().as_bytes());
                if !live {
                    let _ = std::fs::remove_dir(e.path());
                }
            }
        }
    }

    /// The directory of the hierarchy that holds v1 `controller` (the unified one on v2).
    fn dir_for(&self, controller: &str) -> Option<&Path> {
        self.dirs
            .iter()
            .find(|(ctls, _)| self.v2 || ctls.iter().any(|c| c == controller))
            .map(|(_, d)| d.as_path())
    }

    fn apply(&self, resources: Option<&LinuxResources>) -> Result<(), RuntimeError> {
        let Some(resources) = resources else {
            return Ok(());
        };
        // Consecutive writes to one file (the device rules: a dozen to `devices.allow`) share one open.
        let mut open: Option<(PathBuf, std::fs::File)> = None;
        for (ctl, file, value) in limits::writes(self.v2, resources) {
            let Some(dir) = self.dir_for(ctl) else {
                return Err(RuntimeError::Limits(format!(
                    "the host has no {ctl} cgroup hierarchy to set {file} in"
                )));
            };
            let path = dir.join(file);
            let written = match &open {
                Some((p, f)) if *p == path => f.write_all_at(value.as_bytes(), 0),
                // As `fs::write` opens (fixture trees in the tests are plain directories).
                _ => std::fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .open(&path)
                    .and_then(|f| {
                        f.write_all_at(value.as_bytes(), 0)?;
                        open = Some((path.clone(), f));
                        Ok(())
                    }),
            };
            if let Err(e) = written {
                // Without swap accounting the kernel has no memory+swap limit: Docker warns and goes on.
                if file == "memory.memsw.limit_in_bytes" && e.kind() == std::io::ErrorKind::NotFound
                {
                    continue;
                }
                return Err(RuntimeError::Limits(format!(
                    "write {value} to {}: {e}",
                    path.display()
                )));
            }
        }
        // v2 has no device files: its device rules are an eBPF program attached to the cgroup.
        if let (true, Some(rules)) = (self.v2, resources.devices()) {
            if let Some((_, dir)) = self.dirs.first() {
                devices::attach(dir, rules)?;
            }
        }
        Ok(())
    }

    /// How the init joins this cgroup.
    pub fn join(&self) -> Result<Cgroups, RuntimeError> {
        if self.v2 {
            let dir = self
                .dirs
                .first()
                .map(|(_, d)| d.clone())
                .unwrap_or_default();
            let fd: OwnedFd = rustix::fs::open(
                &dir,
                rustix::fs::OFlags::PATH
                    | rustix::fs::OFlags::DIRECTORY
                    | rustix::fs::OFlags::CLOEXEC,
                rustix::fs::Mode::empty(),
            )
            .map_err(|e| RuntimeError::Io {
                what: format!("open cgroup {}", dir.display()),
                source: e.into(),
            })?;
            Ok(Cgroups {
                tasks: Vec::new(),
                v2_dir: Some((fd, dir)),
            })
        } else {
            Ok(Cgroups {
                tasks: self.dirs.iter().map(|(_, d)| d.join("tasks")).collect(),
                v2_dir: None,
            })
        }
    }

    /// Freezes (`true`) or thaws the container's processes, and waits until the kernel says it is done.
    pub fn freeze(&self, frozen: bool) -> Result<(), RuntimeError> {
        let (file, value, state_file, done): (&str, &str, &str, &str) = match (self.v2, frozen) {
            (true, true) => ("cgroup.freeze", "1", "cgroup.events", "frozen 1"),
            (true, false) => ("cgroup.freeze", "0", "cgroup.events", "frozen 0"),
            (false, true) => ("freezer.state", "FROZEN", "freezer.state", "FROZEN"),
            (false, false) => ("freezer.state", "THAWED", "freezer.state", "THAWED"),
        };
        let dir = self
            .dir_for("freezer")
            .ok_or_else(|| RuntimeError::Limits("the host has no freezer cgroup".into()))?;
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut pause = Duration::from_micros(100);
        loop {
            // v1 may stop at FREEZING while a task is busy in the kernel: asking again moves it on.
            std::fs::write(dir.join(file), value)
                .map_err(io(format!("write {value} to {}", dir.join(file).display())))?;
            let state = std::fs::read_to_string(dir.join(state_file)).unwrap_or_default();
            if state.lines().any(|l| l.trim() == done) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                if frozen {
                    // Not left half-frozen: the container goes on running, as the caller will report.
                    let thaw = if self.v2 { "0" } else { "THAWED" };
                    let _ = std::fs::write(dir.join(file), thaw);
                }
                return Err(RuntimeError::Limits(format!(
                    "the cgroup {} did not reach {done:?} within 5 s",
                    dir.display()
                )));
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(10));
        }
    }

    /// Kills what is left in the cgroup and removes its directories, the cgroups the container made below
    /// its own (systemd in a privileged container does) first, deepest first. A process that is still
    /// exiting keeps a directory busy for a moment: retried for up to a second.
    pub fn remove(&self) {
        // Usually nothing is left (the init's end took its pid namespace with it) and one `rmdir` per
        // hierarchy does it; what is still busy gets the whole treatment.
        let busy: Vec<&PathBuf> = self
            .dirs
            .iter()
            .map(|(_, dir)| dir)
            .filter(|dir| match std::fs::remove_dir(dir) {
                Ok(()) => false,
                Err(e) => e.kind() != std::io::ErrorKind::NotFound,
            })
            .collect();
        let mut all = Vec::new();
        for dir in busy {
            cgroup_tree(dir, &mut all);
        }
        for dir in &all {
            if let Ok(procs) = std::fs::read_to_string(dir.join("cgroup.procs")) {
                for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                    let _ = berth_sys::process::signal(pid, libc::SIGKILL);
                }
            }
        }
        let deadline = Instant::now() + Duration::from_secs(1);
        // `all` lists each cgroup before the ones below it.
        for dir in all.iter().rev() {
            let mut pause = Duration::from_millis(1);
            loop {
                match std::fs::remove_dir(dir) {
                    Ok(()) => break,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                    Err(e)
                        if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline =>
                    {
                        std::thread::sleep(pause);
                        pause = (pause * 2).min(Duration::from_millis(50));
                    }
                    Err(e) => {
                        tracing::warn!(dir = %dir.display(), error = %e, "remove the container's cgroup");
                        break;
                    }
                }
            }
        }
    }

    /// The hierarchies the container sees under its cgroup mount.
    pub fn hierarchies(&self, mounts: &[CgroupMount]) -> Vec<CgroupHierarchy> {
        let rel = self.path.strip_prefix("/").unwrap_or(&self.path);
        if self.v2 {
            return vec![CgroupHierarchy {
                name: String::new(),
                fstype: "cgroup2".into(),
                options: String::new(),
                host_dir: self
                    .dirs
                    .first()
                    .map(|(_, d)| d.clone())
                    .unwrap_or_default(),
            }];
        }
        mounts
            .iter()
            .filter(|m| !m.v2)
            .map(|m| CgroupHierarchy {
                name: m
                    .dir
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| m.controllers.join(",")),
                fstype: "cgroup".into(),
                options: m.controllers.join(","),
                host_dir: m.dir.join(rel),
            })
            .collect()
    }
}

/// `dir` and every cgroup below it, each before its children.
fn cgroup_tree(dir: &Path, out: &mut Vec<PathBuf>) {
    out.push(dir.to_path_buf());
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                cgroup_tree(&e.path(), out);
            }
        }
    }
}

/// The cgroup2 mount when the host's cgroups are unified (v2 only); `None` on v1 and hybrid hosts, whose
/// controllers are all in v1 hierarchies.
fn unified_root(mounts: &[CgroupMount]) -> Option<&Path> {
    let v1_controllers = mounts
        .iter()
        .any(|m| !m.v2 && m.controllers.iter().any(|c| !c.starts_with("name=")));
    if v1_controllers {
        return None;
    }
    mounts.iter().find(|m| m.v2).map(|m| m.dir.as_path())
}

/// Makes `dir`; whether it was new.
fn mkdir(dir: &Path) -> Result<bool, RuntimeError> {
    match std::fs::create_dir(dir) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(RuntimeError::Io {
            what: format!("create cgroup {}", dir.display()),
            source: e,
        }),
    }
}

/// A new v1 cpuset cgroup starts with no CPUs and no memory nodes, and nothing can join it: it gets its
/// parent's (its own limits, if any, are written after).
fn inherit_cpuset(parent: &Path, dir: &Path) -> Result<(), RuntimeError> {
    for file in ["cpuset.cpus", "cpuset.mems"] {
        let mine = std::fs::read_to_string(dir.join(file)).unwrap_or_default();
        if !mine.trim().is_empty() {
            continue;
        }
        let theirs = std::fs::read_to_string(parent.join(file))
            .map_err(io(format!("read {}", parent.join(file).display())))?;
        std::fs::write(dir.join(file), theirs.trim())
            .map_err(io(format!("write {}", dir.join(file).display())))?;
    }
    Ok(())
}

/// Lets the children of v2 cgroup `dir` use every controller it has.
fn enable_controllers(dir: &Path) -> Result<(), RuntimeError> {
    let have = std::fs::read_to_string(dir.join("cgroup.controllers"))
        .map_err(io(format!("read {}/cgroup.controllers", dir.display())))?;
    let on = std::fs::read_to_string(dir.join("cgroup.subtree_control")).unwrap_or_default();
    let want: Vec<String> = have
        .split_whitespace()
        .filter(|c| !on.split_whitespace().any(|o| o == *c))
        .map(|c| format!("+{c}"))
        .collect();
    if want.is_empty() {
        return Ok(());
    }
    std::fs::write(dir.join("cgroup.subtree_control"), want.join(" ")).map_err(io(format!(
        "enable controllers {} in {}",
        want.join(" "),
        dir.display()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hybrid_hosts_use_v1_and_unified_ones_v2() {
        let v1 = berth_sys::launch::cgroup_mounts(
            "31 30 0:28 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n\
             36 30 0:33 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n",
        );
        assert_eq!(unified_root(&v1), None);
        let v2 = berth_sys::launch::cgroup_mounts(
            "40 1 0:40 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
        );
        assert_eq!(unified_root(&v2), Some(Path::new("/sys/fs/cgroup")));
    }

    #[test]
    fn v1_hierarchies_are_seen_by_their_directory_names() {
        let mounts = berth_sys::launch::cgroup_mounts(
            "31 30 0:28 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n\
             35 30 0:32 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd\n\
             36 30 0:33 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n",
        );
        let cg = Cgroup {
            path: PathBuf::from("/berth/abc"),
            v2: false,
            dirs: vec![(
                vec!["cpu".into(), "cpuacct".into()],
                PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/berth/abc"),
            )],
        };
        let hs = cg.hierarchies(&mounts);
        assert_eq!(
            hs.len(),
            2,
            "the unified hierarchy of a hybrid host is left out"
        );
        assert_eq!(hs[0].name, "cpu,cpuacct");
        assert_eq!(hs[0].options, "cpu,cpuacct");
        assert_eq!(
            hs[0].host_dir,
            PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/berth/abc")
        );
        assert_eq!(hs[1].name, "systemd");
        assert_eq!(hs[1].options, "name=systemd");
    }

    fn limits() -> LinuxResources {
        use oci_spec::runtime::{LinuxMemoryBuilder, LinuxPidsBuilder, LinuxResourcesBuilder};
        LinuxResourcesBuilder::default()
            .memory(
                LinuxMemoryBuilder::default()
                    .limit(64 << 20)
                    .build()
                    .unwrap(),
            )
            .pids(LinuxPidsBuilder::default().limit(50).build().unwrap())
            .build()
            .unwrap()
    }

    #[test]
    fn a_v2_cgroup_is_made_on_a_fixture_tree_with_its_controllers_and_limits() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        for dir in [r.to_path_buf(), r.join("berth")] {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("cgroup.controllers"), "cpu memory pids\n").unwrap();
        }
        let mounts = vec![CgroupMount {
            dir: r.to_path_buf(),
            v2: true,
            controllers: Vec::new(),
        }];
        let cg = Cgroup::create(Path::new("/berth/abc"), Some(&limits()), &mounts).unwrap();
        assert!(cg.v2);
        let leaf = r.join("berth/abc");
        assert_eq!(cg.dirs, vec![(Vec::new(), leaf.clone())]);
        for dir in [r.to_path_buf(), r.join("berth")] {
            assert_eq!(
                std::fs::read_to_string(dir.join("cgroup.subtree_control")).unwrap(),
                "+cpu +memory +pids"
            );
        }
        assert_eq!(
            std::fs::read_to_string(leaf.join("memory.max")).unwrap(),
            "67108864"
        );
        assert_eq!(
            std::fs::read_to_string(leaf.join("pids.max")).unwrap(),
            "50"
        );
        let join = cg.join().unwrap();
        assert!(join.tasks.is_empty());
        assert_eq!(join.v2_dir.map(|(_, d)| d), Some(leaf));
    }

    #[test]
    fn v1_cgroups_are_made_in_each_controller_hierarchy_on_a_fixture_tree() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        for h in ["cpuset", "memory", "pids", "systemd"] {
            std::fs::create_dir_all(r.join(h)).unwrap();
        }
        std::fs::write(r.join("cpuset/cpuset.cpus"), "0-3\n").unwrap();
        std::fs::write(r.join("cpuset/cpuset.mems"), "0\n").unwrap();
        let mounts: Vec<CgroupMount> = [
            ("cpuset", "cpuset"),
            ("memory", "memory"),
            ("pids", "pids"),
            ("systemd", "name=systemd"),
        ]
        .into_iter()
        .map(|(d, c)| CgroupMount {
            dir: r.join(d),
            v2: false,
            controllers: vec![c.to_string()],
        })
        .collect();
        let cg = Cgroup::create(Path::new("/berth/abc"), Some(&limits()), &mounts).unwrap();
        assert!(!cg.v2);
        assert_eq!(
            cg.dirs.len(),
            3,
            "named hierarchies get no cgroup: {:?}",
            cg.dirs
        );
        assert_eq!(
            std::fs::read_to_string(r.join("cpuset/berth/abc/cpuset.cpus")).unwrap(),
            "0-3",
            "an empty cpuset inherits all the way down"
        );
        assert_eq!(
            std::fs::read_to_string(r.join("memory/berth/abc/memory.limit_in_bytes")).unwrap(),
            "67108864"
        );
        assert_eq!(
            std::fs::read_to_string(r.join("pids/berth/abc/pids.max")).unwrap(),
            "50"
        );
        assert!(!r.join("systemd/berth").exists());
        let join = cg.join().unwrap();
        assert_eq!(
            join.tasks,
            ["cpuset", "memory", "pids"].map(|h| r.join(h).join("berth/abc/tasks"))
        );
    }

    #[test]
    fn removal_takes_the_cgroups_the_container_made_below_its_own() {
        let root = tempfile::tempdir().unwrap();
        let leaf = root.path().join("berth/abc");
        std::fs::create_dir_all(leaf.join("init.scope/sub")).unwrap();
        std::fs::create_dir_all(leaf.join("system.slice")).unwrap();
        let cg = Cgroup {
            path: PathBuf::from("/berth/abc"),
            v2: true,
            dirs: vec![(Vec::new(), leaf.clone())],
        };
        cg.remove();
        assert!(!leaf.exists());
        assert!(
            root.path().join("berth").exists(),
            "the shared parent stays"
        );
    }

    #[test]
    fn a_v1_cgroup_under_an_existing_parent_is_one_mkdir_and_inherits_its_cpuset() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        let mounts = v1_fixture(r);
        for h in ["cpuset", "memory", "pids"] {
            std::fs::create_dir_all(r.join(h).join("berth")).unwrap();
        }
        std::fs::write(r.join("cpuset/berth/cpuset.cpus"), "1\n").unwrap();
        std::fs::write(r.join("cpuset/berth/cpuset.mems"), "0\n").unwrap();
        let cg = Cgroup::create(Path::new("/berth/abc"), None, &mounts).unwrap();
        assert_eq!(
            cg.dirs.iter().map(|(_, d)| d.clone()).collect::<Vec<_>>(),
            ["cpuset", "memory", "pids"].map(|h| r.join(h).join("berth/abc"))
        );
        assert_eq!(
            std::fs::read_to_string(r.join("cpuset/berth/abc/cpuset.cpus")).unwrap(),
            "1"
        );
        // Made again over an existing directory (a restart): nothing is inherited over it.
        std::fs::write(r.join("cpuset/berth/abc/cpuset.cpus"), "0\n").unwrap();
        Cgroup::create(Path::new("/berth/abc"), None, &mounts).unwrap();
        assert_eq!(
            std::fs::read_to_string(r.join("cpuset/berth/abc/cpuset.cpus")).unwrap(),
            "0\n"
        );
    }

    fn v1_fixture(r: &Path) -> Vec<CgroupMount> {
        for h in ["cpuset", "memory", "pids"] {
            std::fs::create_dir_all(r.join(h)).unwrap();
        }
        std::fs::write(r.join("cpuset/cpuset.cpus"), "0-3\n").unwrap();
        std::fs::write(r.join("cpuset/cpuset.mems"), "0\n").unwrap();
        ["cpuset", "memory", "pids"]
            .into_iter()
            .map(|h| CgroupMount {
                dir: r.join(h),
                v2: false,
                controllers: vec![h.to_string()],
            })
            .collect()
    }

    #[test]
    fn a_spare_cgroup_is_renamed_for_its_container_and_then_limited() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        let mounts = v1_fixture(r);
        let spare = Cgroup::spare("/berth", &mounts).expect("a spare on v1");
        let name = format!("spare-{}", std::process::id());
        for h in ["cpuset", "memory", "pids"] {
            assert!(r.join(h).join("berth").join(&name).is_dir(), "{h}");
        }
        let mut emptied = false;
        let cg = spare
            .adopt(Path::new("/berth/abc"), Some(&limits()), &mounts, || {
                emptied = true
            })
            .unwrap();
        assert!(
            !emptied,
            "what is in the spare's cgroup stays: it is the container's"
        );
        assert_eq!(
            cg.dirs.iter().map(|(_, d)| d.clone()).collect::<Vec<_>>(),
            ["cpuset", "memory", "pids"].map(|h| r.join(h).join("berth/abc"))
        );
        for h in ["cpuset", "memory", "pids"] {
            assert!(!r.join(h).join("berth").join(&name).exists(), "{h}");
        }
        assert_eq!(
            std::fs::read_to_string(r.join("cpuset/berth/abc/cpuset.cpus")).unwrap(),
            "0-3",
            "inherited when the spare was made"
        );
        assert_eq!(
            std::fs::read_to_string(r.join("memory/berth/abc/memory.limit_in_bytes")).unwrap(),
            "67108864"
        );
    }

    #[test]
    fn a_spare_cgroup_under_another_parent_is_removed_and_the_cgroup_made_afresh() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        let mounts = v1_fixture(r);
        let spare = Cgroup::spare("/berth", &mounts).unwrap();
        let mut emptied = false;
        let cg = spare
            .adopt(Path::new("/other/abc"), None, &mounts, || emptied = true)
            .unwrap();
        assert!(
            emptied,
            "the spare's cgroup is emptied before it is removed"
        );
        assert_eq!(cg.path, Path::new("/other/abc"));
        assert!(r.join("memory/other/abc").is_dir());
        let name = format!("spare-{}", std::process::id());
        assert!(!r.join("memory/berth").join(name).exists());
    }

    #[test]
    fn no_spare_cgroup_on_v2_and_stale_spares_are_removed() {
        let root = tempfile::tempdir().unwrap();
        let v2 = vec![CgroupMount {
            dir: root.path().to_path_buf(),
            v2: true,
            controllers: Vec::new(),
        }];
        assert!(Cgroup::spare("/berth", &v2).is_none());
        let r = root.path().join("v1");
        let mounts = v1_fixture(&r);
        // pid 0 is never a spare's; a container's cgroup is not a spare's either.
        std::fs::create_dir_all(r.join("memory/berth/spare-0")).unwrap();
        std::fs::create_dir_all(r.join("memory/berth/abc")).unwrap();
        Cgroup::remove_stale_spares("/berth", &mounts);
        assert!(!r.join("memory/berth/spare-0").exists());
        assert!(r.join("memory/berth/abc").exists());
    }

    #[test]
    fn removal_of_empty_cgroups_takes_each_hierarchy_and_skips_the_missing() {
        let root = tempfile::tempdir().unwrap();
        let dirs: Vec<(Vec<String>, PathBuf)> = ["cpu", "memory", "pids"]
            .iter()
            .map(|h| (vec![h.to_string()], root.path().join(h).join("berth/abc")))
            .collect();
        std::fs::create_dir_all(&dirs[0].1).unwrap();
        std::fs::create_dir_all(&dirs[1].1).unwrap();
        let cg = Cgroup {
            path: PathBuf::from("/berth/abc"),
            v2: false,
            dirs: dirs.clone(),
        };
        cg.remove();
        for (_, d) in &dirs {
            assert!(!d.exists(), "{}", d.display());
        }
        assert!(
            root.path().join("memory/berth").exists(),
            "the shared parent stays"
        );
    }

    #[test]
    fn v2_controllers_are_enabled_for_children() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("cgroup.controllers"),
            "cpuset cpu io memory pids\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("cgroup.subtree_control"), "cpu memory\n").unwrap();
        enable_controllers(dir.path()).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("cgroup.subtree_control")).unwrap(),
            "+cpuset +io +pids"
        );
    }

    #[test]
    fn an_empty_cpuset_inherits_its_parents() {
        let parent = tempfile::tempdir().unwrap();
        std::fs::write(parent.path().join("cpuset.cpus"), "0-1\n").unwrap();
        std::fs::write(parent.path().join("cpuset.mems"), "0\n").unwrap();
        let child = parent.path().join("c");
        std::fs::create_dir(&child).unwrap();
        std::fs::write(child.join("cpuset.cpus"), "\n").unwrap();
        std::fs::write(child.join("cpuset.mems"), "0\n").unwrap();
        inherit_cpuset(parent.path(), &child).unwrap();
        assert_eq!(
            std::fs::read_to_string(child.join("cpuset.cpus")).unwrap(),
            "0-1"
        );
        assert_eq!(
            std::fs::read_to_string(child.join("cpuset.mems")).unwrap(),
            "0\n"
        );
    }
}
