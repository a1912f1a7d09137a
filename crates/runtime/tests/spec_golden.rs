//! Golden tests of `berth_runtime::spec::generate`: each case's spec, as canonical JSON, must equal
//! `tests/golden/<case>.json`.
//!
//! After an intended change, regenerate the files with
//! `UPDATE_GOLDEN=1 cargo test -p berth-runtime --test spec_golden` and review the diff.

use berth_runtime::spec::{
    generate, to_canonical_json, MountKind, MountSpec, NetworkMode, Propagation, Resources,
    SeccompMode, SpecInput, Ulimit,
};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

const ID: &str = "4f1c2a9b8e7d6c5b4a3928171615141312111009080706050403020100ffeedd";

fn golden_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("golden")
        .join(format!("{name}.json"))
}

/// A unified-style line diff of `expected` → `actual` (longest common subsequence), with three lines
/// of context around each change.
fn line_diff(expected: &str, actual: &str) -> String {
    let a: Vec<&str> = expected.lines().collect();
    let b: Vec<&str> = actual.lines().collect();
    // lcs[i][j]: length of the LCS of a[i..] and b[j..]
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let mut ops: Vec<(char, usize, &str)> = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            ops.push((' ', i + 1, a[i]));
            i += 1;
            j += 1;
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            ops.push(('-', i + 1, a[i]));
            i += 1;
        } else {
            ops.push(('+', j + 1, b[j]));
            j += 1;
        }
    }
    let changed: Vec<usize> = ops
        .iter()
        .enumerate()
        .filter(|(_, op)| op.0 != ' ')
        .map(|(k, _)| k)
        .collect();
    let mut out = String::new();
    let mut last_printed: Option<usize> = None;
    for (k, (tag, line_no, text)) in ops.iter().enumerate() {
        let near = changed.iter().any(|&c| c.abs_diff(k) <= 3);
        if !near {
            continue;
        }
        if last_printed.is_some_and(|l| l + 1 != k) {
            out.push_str("   ...\n");
        }
        out.push_str(&format!("{tag} {line_no:>4} | {text}\n"));
        last_printed = Some(k);
    }
    out
}

fn check(name: &str, input: &SpecInput) {
    let spec = generate(input).unwrap_or_else(|e| panic!("{name}: generate failed: {e}"));
    let actual = to_canonical_json(&spec).unwrap_or_else(|e| panic!("{name}: {e}"));
    let path = golden_path(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1") {
        std::fs::write(&path, &actual)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        // straight to stderr: the test harness captures eprintln! of passing tests
        let _ = writeln!(std::io::stderr(), "updated golden file {}", path.display());
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {} ({e}); create it with UPDATE_GOLDEN=1 cargo test -p berth-runtime --test spec_golden",
            path.display()
        )
    });
    if expected != actual {
        panic!(
            "{name}: generated spec differs from {} (- golden, + generated; line numbers of each side):\n{}\n\
             if the change is intended: UPDATE_GOLDEN=1 cargo test -p berth-runtime --test spec_golden",
            path.display(),
            line_diff(&expected, &actual)
        );
    }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_string()).collect()
}

/// `docker run busybox sh`, as the engine resolves it.
fn busybox_sh() -> SpecInput {
    SpecInput {
        id: ID.to_string(),
        rootfs: PathBuf::from(format!("/var/lib/berth/containers/{ID}/rootfs")),
        args: strings(&["sh"]),
        env: strings(&["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]),
        hostname: ID[..12].to_string(),
        cgroups_path: format!("/berth/{ID}"),
        etc_files: vec![
            (
                PathBuf::from(format!("/var/lib/berth/containers/{ID}/resolv.conf")),
                "/etc/resolv.conf".to_string(),
            ),
            (
                PathBuf::from(format!("/var/lib/berth/containers/{ID}/hostname")),
                "/etc/hostname".to_string(),
            ),
            (
                PathBuf::from(format!("/var/lib/berth/containers/{ID}/hosts")),
                "/etc/hosts".to_string(),
            ),
        ],
        arch: "amd64".to_string(),
        ..SpecInput::default()
    }
}

#[test]
fn golden_minimal_busybox_sh() {
    check("minimal_busybox_sh", &busybox_sh());
}

#[test]
fn golden_readonly_mounts_caps_limits() {
    check(
        "readonly_mounts_caps_limits",
        &readonly_mounts_caps_limits(),
    );
}

fn readonly_mounts_caps_limits() -> SpecInput {
    let mut input = busybox_sh();
    input.readonly_rootfs = true;
    input.args = strings(&["httpd", "-f", "-p", "80"]);
    input.env.push("MODE=prod".to_string());
    input.cwd = "/srv".to_string();
    input.uid = 1000;
    input.gid = 1000;
    input.additional_gids = vec![27];
    input.tty = true;
    input.cap_add = strings(&["net_admin", "CAP_SYS_PTRACE"]);
    input.cap_drop = strings(&["MKNOD", "cap_net_raw"]);
    input.no_new_privileges = true;
    input.init_binary = Some(PathBuf::from("/usr/libexec/berth/docker-init"));
    input.mounts = vec![
        MountSpec {
            destination: "/srv/cache".to_string(),
            kind: MountKind::Tmpfs,
            options: strings(&["size=64m", "mode=1777"]),
            ..MountSpec::default()
        },
        MountSpec {
            destination: "/srv".to_string(),
            source: PathBuf::from("/home/user/site"),
            kind: MountKind::Bind,
            readonly: true,
            ..MountSpec::default()
        },
        MountSpec {
            destination: "/var/lib/data".to_string(),
            source: PathBuf::from("/var/lib/berth/volumes/data/_data"),
            kind: MountKind::Volume,
            propagation: Some(Propagation::Rslave),
            ..MountSpec::default()
        },
        MountSpec {
            destination: "/tmp".to_string(),
            kind: MountKind::Tmpfs,
            ..MountSpec::default()
        },
    ];
    input.resources = Resources {
        memory: 256 * 1024 * 1024,
        memory_swap: 512 * 1024 * 1024,
        memory_reservation: 128 * 1024 * 1024,
        nano_cpus: 1_500_000_000,
        cpu_shares: 512,
        cpuset_cpus: "0-1".to_string(),
        pids_limit: Some(100),
        blkio_weight: 300,
        ..Resources::default()
    };
    input.ulimits = vec![
        Ulimit {
            name: "nofile".to_string(),
            soft: 1024,
            hard: 4096,
        },
        Ulimit {
            name: "core".to_string(),
            soft: -1,
            hard: -1,
        },
    ];
    input
        .sysctls
        .insert("net.ipv4.tcp_keepalive_time".to_string(), "60".to_string());
    input.shm_size = 128 * 1024 * 1024;
    input.kernel_version = Some("6.1".parse().expect("kernel version"));
    input.annotations.insert(
        "org.opencontainers.image.title".to_string(),
        "web".to_string(),
    );
    input
}

#[test]
fn golden_privileged() {
    check("privileged", &privileged());
}

fn privileged() -> SpecInput {
    let mut input = busybox_sh();
    input.privileged = true;
    input.cap_drop = strings(&["NET_ADMIN"]);
    input
}

#[test]
fn golden_seccomp_unconfined() {
    check("seccomp_unconfined", &seccomp_unconfined());
}

fn seccomp_unconfined() -> SpecInput {
    let mut input = busybox_sh();
    input.seccomp = SeccompMode::Unconfined;
    input
}

#[test]
fn golden_seccomp_custom() {
    check("seccomp_custom", &seccomp_custom());
}

fn seccomp_custom() -> SpecInput {
    let mut input = busybox_sh();
    input.cap_add = strings(&["SYS_TIME"]);
    input.seccomp = SeccompMode::Custom(
        r#"{
            "defaultAction": "SCMP_ACT_ALLOW",
            "archMap": [
                {"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]},
                {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": null}
            ],
            "syscalls": [
                {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
                {"name": "settimeofday", "action": "SCMP_ACT_ERRNO",
                 "excludes": {"caps": ["CAP_SYS_TIME"]}},
                {"names": ["personality"], "action": "SCMP_ACT_ERRNO",
                 "args": [{"index": 0, "value": 8, "valueTwo": 0, "op": "SCMP_CMP_NE"}]},
                {"names": ["arch_prctl"], "action": "SCMP_ACT_LOG", "includes": {"arches": ["arm64"]}}
            ]
        }"#
        .to_string(),
    );
    input
}

#[test]
fn golden_network_host() {
    check("network_host", &network_host());
}

fn network_host() -> SpecInput {
    let mut input = busybox_sh();
    input.network = NetworkMode::Host;
    input.uts_host = true;
    input.etc_files.retain(|(_, dest)| dest != "/etc/hostname");
    input
}

#[test]
fn golden_joined_netns_shareable_ipc() {
    check("joined_netns_shareable_ipc", &joined_netns_shareable_ipc());
}

fn joined_netns_shareable_ipc() -> SpecInput {
    let mut input = busybox_sh();
    input.network = NetworkMode::Path(PathBuf::from(format!("/run/berth/netns/{}", &ID[..12])));
    input.ipc_shareable = true;
    input.shm_source = Some(PathBuf::from(format!(
        "/var/lib/berth/containers/{ID}/mounts/shm"
    )));
    input.args = strings(&["sleep", "infinity"]);
    input
}

#[test]
fn diff_shows_changed_lines_with_context() {
    let expected = "a\nb\nc\nd\ne\nf\ng\nh\ni\n";
    let actual = "a\nb\nc\nd\nE\nf\ng\nh\ni\nj\n";
    let diff = line_diff(expected, actual);
    assert!(diff.contains("-    5 | e\n+    5 | E\n"), "{diff}");
    assert!(diff.contains("+   10 | j"), "{diff}");
    assert!(!diff.contains("| a"), "{diff}");
    assert_eq!(line_diff("x\n", "x\n"), "");
}

fn all_cases() -> Vec<(&'static str, SpecInput)> {
    vec![
        ("minimal_busybox_sh", busybox_sh()),
        ("readonly_mounts_caps_limits", readonly_mounts_caps_limits()),
        ("privileged", privileged()),
        ("seccomp_unconfined", seccomp_unconfined()),
        ("seccomp_custom", seccomp_custom()),
        ("network_host", network_host()),
        ("joined_netns_shareable_ipc", joined_netns_shareable_ipc()),
    ]
}

/// Key paths of a JSON document with the JSON type at each: arrays as `[]`, the free-form maps
/// (`annotations`, `sysctl`) as `*`.
fn shapes(value: &Value, path: &str, out: &mut BTreeMap<String, &'static str>) {
    let kind = match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    out.insert(path.to_string(), kind);
    match value {
        Value::Object(map) => {
            let free = path.ends_with(".annotations") || path.ends_with(".sysctl");
            for (key, child) in map {
                let key = if free { "*" } else { key.as_str() };
                shapes(child, &format!("{path}.{key}"), out);
            }
        }
        Value::Array(items) => {
            for item in items {
                shapes(item, &format!("{path}[]"), out);
            }
        }
        _ => {}
    }
}

/// Every key the generated specs use, as named by the OCI runtime-spec (config.md, config-linux.md).
const RUNTIME_SPEC_KEYS: &[&str] = &[
    "$",
    "$.ociVersion",
    "$.hostname",
    "$.domainname",
    "$.annotations",
    "$.annotations.*",
    "$.root",
    "$.root.path",
    "$.root.readonly",
    "$.mounts",
    "$.mounts[]",
    "$.mounts[].destination",
    "$.mounts[].type",
    "$.mounts[].source",
    "$.mounts[].options",
    "$.mounts[].options[]",
    "$.process",
    "$.process.terminal",
    "$.process.cwd",
    "$.process.args",
    "$.process.args[]",
    "$.process.env",
    "$.process.env[]",
    "$.process.noNewPrivileges",
    "$.process.oomScoreAdj",
    "$.process.user",
    "$.process.user.uid",
    "$.process.user.gid",
    "$.process.user.additionalGids",
    "$.process.user.additionalGids[]",
    "$.process.capabilities",
    "$.process.capabilities.bounding",
    "$.process.capabilities.bounding[]",
    "$.process.capabilities.effective",
    "$.process.capabilities.effective[]",
    "$.process.capabilities.permitted",
    "$.process.capabilities.permitted[]",
    "$.process.capabilities.inheritable",
    "$.process.capabilities.inheritable[]",
    "$.process.capabilities.ambient",
    "$.process.capabilities.ambient[]",
    "$.process.rlimits",
    "$.process.rlimits[]",
    "$.process.rlimits[].type",
    "$.process.rlimits[].soft",
    "$.process.rlimits[].hard",
    "$.linux",
    "$.linux.cgroupsPath",
    "$.linux.devices",
    "$.linux.rootfsPropagation",
    "$.linux.maskedPaths",
    "$.linux.maskedPaths[]",
    "$.linux.readonlyPaths",
    "$.linux.readonlyPaths[]",
    "$.linux.sysctl",
    "$.linux.sysctl.*",
    "$.linux.namespaces",
    "$.linux.namespaces[]",
    "$.linux.namespaces[].type",
    "$.linux.namespaces[].path",
    "$.linux.resources",
    "$.linux.resources.devices",
    "$.linux.resources.devices[]",
    "$.linux.resources.devices[].allow",
    "$.linux.resources.devices[].type",
    "$.linux.resources.devices[].major",
    "$.linux.resources.devices[].minor",
    "$.linux.resources.devices[].access",
    "$.linux.resources.memory",
    "$.linux.resources.memory.limit",
    "$.linux.resources.memory.reservation",
    "$.linux.resources.memory.swap",
    "$.linux.resources.cpu",
    "$.linux.resources.cpu.shares",
    "$.linux.resources.cpu.quota",
    "$.linux.resources.cpu.period",
    "$.linux.resources.cpu.cpus",
    "$.linux.resources.pids",
    "$.linux.resources.pids.limit",
    "$.linux.resources.blockIO",
    "$.linux.resources.blockIO.weight",
    "$.linux.seccomp",
    "$.linux.seccomp.defaultAction",
    "$.linux.seccomp.defaultErrnoRet",
    "$.linux.seccomp.architectures",
    "$.linux.seccomp.architectures[]",
    "$.linux.seccomp.syscalls",
    "$.linux.seccomp.syscalls[]",
    "$.linux.seccomp.syscalls[].names",
    "$.linux.seccomp.syscalls[].names[]",
    "$.linux.seccomp.syscalls[].action",
    "$.linux.seccomp.syscalls[].errnoRet",
    "$.linux.seccomp.syscalls[].args",
    "$.linux.seccomp.syscalls[].args[]",
    "$.linux.seccomp.syscalls[].args[].index",
    "$.linux.seccomp.syscalls[].args[].value",
    "$.linux.seccomp.syscalls[].args[].valueTwo",
    "$.linux.seccomp.syscalls[].args[].op",
];

fn spec_shapes(input: &SpecInput) -> BTreeMap<String, &'static str> {
    let spec = generate(input).expect("generates");
    let json = to_canonical_json(&spec).expect("serialises");
    let value: Value = serde_json::from_str(&json).expect("valid json");
    let mut out = BTreeMap::new();
    shapes(&value, "$", &mut out);
    out
}

#[test]
fn every_key_is_a_runtime_spec_key() {
    for (name, input) in all_cases() {
        for (path, kind) in spec_shapes(&input) {
            assert!(
                RUNTIME_SPEC_KEYS.contains(&path.as_str()),
                "{name}: {path} ({kind}) is not a runtime-spec key we expect to emit"
            );
            assert_ne!(kind, "null", "{name}: {path} is null");
        }
    }
}

/// Where runc is installed, its own default spec (`runc spec`) must give every key we share with it
/// the same JSON type.
#[test]
fn shapes_agree_with_runc_spec() {
    let runc = ["/usr/sbin/runc", "/usr/bin/runc"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists());
    let Some(runc) = runc else {
        let _ = writeln!(
            std::io::stderr(),
            "runc not installed: shape comparison not run"
        );
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let status = std::process::Command::new(&runc)
        .arg("spec")
        .arg("--bundle")
        .arg(dir.path())
        .status()
        .expect("runc runs");
    assert!(status.success(), "runc spec failed: {status}");
    let text = std::fs::read_to_string(dir.path().join("config.json")).expect("runc wrote a spec");
    let value: Value = serde_json::from_str(&text).expect("runc's spec is json");
    let mut reference = BTreeMap::new();
    shapes(&value, "$", &mut reference);
    let mut shared = 0;
    for (name, input) in all_cases() {
        for (path, kind) in spec_shapes(&input) {
            if let Some(want) = reference.get(&path) {
                shared += 1;
                assert_eq!(
                    *want, kind,
                    "{name}: {path} is a {kind}, runc writes a {want}"
                );
            }
        }
    }
    assert!(
        shared > 100,
        "only {shared} keys in common with runc's spec"
    );
}
