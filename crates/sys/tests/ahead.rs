//! An init cloned ahead joins the cgroups it is given even when they are renamed before it has run, as a
//! start renames a spare shim's cgroups for its container. Needs root and a cgroup v1 hierarchy (`pids`).
//!
//! One test in this file: `clone_ahead` wants a caller with no other busy thread (its child allocates).

use berth_sys::container::{clone_ahead, Cgroups};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Removes the test's cgroups, under either name, however the test ends.
struct Dirs(Vec<PathBuf>);

impl Drop for Dirs {
    fn drop(&mut self) {
        for d in &self.0 {
            // A killed process leaves its cgroup a moment after it has been reaped.
            let end = Instant::now() + Duration::from_secs(5);
            while d.exists() && std::fs::remove_dir(d).is_err() && Instant::now() < end {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

fn members(dir: &Path) -> Vec<i32> {
    std::fs::read_to_string(dir.join("tasks"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

#[test]
fn an_init_cloned_ahead_joins_its_cgroup_even_when_it_is_renamed_first() {
    let hierarchy = Path::new("/sys/fs/cgroup/pids");
    if !nix::unistd::geteuid().is_root() || !hierarchy.join("tasks").is_file() {
        eprintln!("skipped: needs root and the cgroup v1 pids hierarchy");
        return;
    }
    for round in 0..10 {
        let dir = hierarchy.join(format!("berth-test-ahead-{}-{round}", std::process::id()));
        let renamed = dir.with_extension("renamed");
        let _dirs = Dirs(vec![dir.clone(), renamed.clone()]);
        std::fs::create_dir(&dir).unwrap();
        let ahead = clone_ahead(
            c"berth-test-init",
            &Cgroups {
                tasks: vec![dir.join("tasks")],
                v2_dir: None,
            },
        )
        .unwrap();
        // At once, as a start may: most often before the new process has run.
        std::fs::rename(&dir, &renamed).unwrap();
        let end = Instant::now() + Duration::from_secs(5);
        while !members(&renamed).contains(&ahead.pid()) {
            assert!(
                Instant::now() < end,
                "round {round}: the init cloned ahead ({}) is not in its renamed cgroup",
                ahead.pid()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        drop(ahead);
    }
}
