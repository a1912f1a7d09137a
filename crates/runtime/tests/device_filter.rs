//! The cgroup v2 device filter in the real kernel: a process in a v2 cgroup with Docker's default device
//! rules attached can make device nodes and open `/dev/null`, but cannot open a device the rules leave
//! out (`/dev/full` here). Runs as root on any host with a cgroup2 mount (the hybrid hosts CI runs on have one holding no
//! controllers, which is enough: device filters are not a controller).

use std::path::{Path, PathBuf};
use std::process::Command;

use berth_runtime::cgroups::devices;
use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceCgroupBuilder, LinuxDeviceType};

/// Unmounts the test's tmpfs when it ends.
struct Unmount(PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// A cgroup made for this test, removed when it ends (its processes have exited by then).
struct TestCgroup(PathBuf);

impl Drop for TestCgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

fn rule(
    allow: bool,
    typ: LinuxDeviceType,
    major: Option<i64>,
    minor: Option<i64>,
) -> LinuxDeviceCgroup {
    let mut b = LinuxDeviceCgroupBuilder::default()
        .allow(allow)
        .typ(typ)
        .access(if typ == LinuxDeviceType::A || major.is_some() {
            "rwm"
        } else {
            "m"
        });
    if let Some(m) = major {
        b = b.major(m);
    }
    if let Some(m) = minor {
        b = b.minor(m);
    }
    b.build().unwrap()
}

/// Runs a shell in `cgroup` that opens the device nodes in `nodes`, and returns what it printed.
fn probe(cgroup: &Path, nodes: &Path) -> String {
    let script = format!(
        "echo $$ > {procs} || exit 9
         mknod {n}/made c 1 11 && echo mknod-ok || echo mknod-denied
         (: < {n}/null) 2>/dev/null && echo null-ok || echo null-denied
         (: < {n}/full) 2>/dev/null && echo full-ok || echo full-denied",
        procs = cgroup.join("cgroup.procs").display(),
        n = nodes.display()
    );
    let out = Command::new("sh").arg("-c").arg(script).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn a_v2_cgroup_with_docker_rules_keeps_its_processes_from_other_devices() {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let mounts = berth_sys::launch::cgroup_mounts(&mountinfo);
    let unified = mounts
        .iter()
        .find(|m| m.v2)
        .expect("this host has a cgroup2 mount (pure v2, or hybrid with /sys/fs/cgroup/unified)");
    let cgroup = TestCgroup(
        unified
            .dir
            .join(format!("berth-test-devices-{}", std::process::id())),
    );
    std::fs::create_dir(&cgroup.0).unwrap();

    // Device nodes on a tmpfs of the test's own: /tmp may be mounted nodev.
    let nodes = tempfile::tempdir().unwrap();
    let st = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k", "berth-test-dev"])
        .arg(nodes.path())
        .status()
        .unwrap();
    assert!(st.success(), "mount a tmpfs for the device nodes");
    let _unmount = Unmount(nodes.path().to_path_buf());
    for (name, minor) in [("null", 3), ("full", 7)] {
        let st = Command::new("mknod")
            .arg(nodes.path().join(name))
            .args(["c", "1", &minor.to_string()])
            .status()
            .unwrap();
        assert!(st.success());
    }

    assert_eq!(
        probe(&cgroup.0, nodes.path()),
        "mknod-ok\nnull-ok\nfull-ok\n",
        "without a filter every device opens"
    );
    std::fs::remove_file(nodes.path().join("made")).unwrap();

    use LinuxDeviceType::{A, B, C};
    let rules = [
        rule(false, A, None, None),
        rule(true, C, None, None),
        rule(true, B, None, None),
        rule(true, C, Some(1), Some(3)),
        rule(true, C, Some(136), None),
    ];
    devices::attach(&cgroup.0, &rules).unwrap();
    assert_eq!(
        probe(&cgroup.0, nodes.path()),
        "mknod-ok\nnull-ok\nfull-denied\n",
        "with Docker's rules only the listed devices open"
    );
}
