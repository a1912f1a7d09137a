//! Tests of [`generate`] as a whole: namespaces, sysctls, security settings and validation.

use super::*;
use oci_spec::runtime::{LinuxSeccompAction, Mount};
use std::path::Path;

fn base() -> SpecInput {
    SpecInput {
        id: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef".to_string(),
        rootfs: PathBuf::from("/var/lib/berth/containers/x/rootfs"),
        args: vec!["sh".to_string()],
        hostname: "0123456789ab".to_string(),
        cgroups_path: "/berth/x".to_string(),
        arch: "amd64".to_string(),
        ..SpecInput::default()
    }
}

fn linux(spec: &Spec) -> &Linux {
    spec.linux().as_ref().expect("linux section")
}

fn ns_types(spec: &Spec) -> Vec<LinuxNamespaceType> {
    linux(spec)
        .namespaces()
        .clone()
        .unwrap_or_default()
        .iter()
        .map(|n| n.typ())
        .collect()
}

fn mount_at<'a>(spec: &'a Spec, destination: &str) -> Option<&'a Mount> {
    spec.mounts().as_ref().and_then(|ms| {
        ms.iter()
            .find(|m| m.destination() == Path::new(destination))
    })
}

#[test]
fn default_namespaces() {
    let spec = generate(&base()).expect("generates");
    use LinuxNamespaceType::*;
    assert_eq!(ns_types(&spec), vec![Mount, Network, Uts, Pid, Ipc, Cgroup]);
    assert_eq!(spec.hostname().as_deref(), Some("0123456789ab"));
}

#[test]
fn host_modes_drop_namespaces() {
    let input = SpecInput {
        network: NetworkMode::Host,
        pid_host: true,
        ipc_host: true,
        uts_host: true,
        ..base()
    };
    let spec = generate(&input).expect("generates");
    use LinuxNamespaceType::*;
    assert_eq!(ns_types(&spec), vec![Mount, Cgroup]);
    assert_eq!(spec.hostname(), &None);
    assert_eq!(
        linux(&spec).sysctl(),
        &None,
        "no net sysctls on the host netns"
    );
}

#[test]
fn network_path_is_joined() {
    for mode in [
        NetworkMode::Path(PathBuf::from("/run/berth/netns/x")),
        NetworkMode::Container(PathBuf::from("/proc/42/ns/net")),
    ] {
        let input = SpecInput {
            network: mode.clone(),
            ..base()
        };
        let spec = generate(&input).expect("generates");
        let nss = linux(&spec).namespaces().clone().unwrap_or_default();
        let net = nss
            .iter()
            .find(|n| n.typ() == LinuxNamespaceType::Network)
            .expect("a network namespace");
        let want = match &mode {
            NetworkMode::Path(p) | NetworkMode::Container(p) => p.clone(),
            _ => unreachable!("only path modes are tested"),
        };
        assert_eq!(net.path().as_ref(), Some(&want));
        let has_sysctls = linux(&spec).sysctl().is_some();
        assert_eq!(
            has_sysctls,
            matches!(mode, NetworkMode::Path(_)),
            "{mode:?}"
        );
    }
}

#[test]
fn sysctls_merge_and_validate() {
    let mut input = base();
    input
        .sysctls
        .insert("net.ipv4.ip_unprivileged_port_start".into(), "1024".into());
    input.sysctls.insert("kernel.shmmax".into(), "1000".into());
    let spec = generate(&input).expect("generates");
    let sysctl = linux(&spec).sysctl().clone().expect("sysctls");
    assert_eq!(sysctl["net.ipv4.ip_unprivileged_port_start"], "1024");
    assert_eq!(sysctl["net.ipv4.ping_group_range"], "0 2147483647");
    assert_eq!(sysctl["kernel.shmmax"], "1000");

    let mut global = base();
    global.sysctls.insert("vm.swappiness".into(), "1".into());
    assert!(matches!(
        generate(&global),
        Err(SpecError::SysctlNotNamespaced { name }) if name == "vm.swappiness"
    ));
    let mut host_net = base();
    host_net.network = NetworkMode::Host;
    host_net
        .sysctls
        .insert("net.core.somaxconn".into(), "1".into());
    assert!(matches!(
        generate(&host_net),
        Err(SpecError::SysctlSharedNamespace {
            namespace: "network",
            ..
        })
    ));
    let mut host_ipc = base();
    host_ipc.ipc_host = true;
    host_ipc
        .sysctls
        .insert("fs.mqueue.msg_max".into(), "1".into());
    assert!(matches!(
        generate(&host_ipc),
        Err(SpecError::SysctlSharedNamespace {
            namespace: "ipc",
            ..
        })
    ));
}

#[test]
fn process_section() {
    let input = SpecInput {
        env: vec!["FOO=bar".to_string()],
        uid: 1000,
        gid: 1000,
        tty: true,
        no_new_privileges: true,
        ..base()
    };
    let spec = generate(&input).expect("generates");
    let p = spec.process().as_ref().expect("process");
    let env = p.env().clone().unwrap_or_default();
    assert!(env.contains(&"HOSTNAME=0123456789ab".to_string()));
    assert!(env.contains(&"TERM=xterm".to_string()));
    assert_eq!(env.last().map(String::as_str), Some("FOO=bar"));
    assert_eq!(p.terminal(), Some(true));
    assert_eq!(p.no_new_privileges(), Some(true));
    assert_eq!(p.oom_score_adj(), Some(0));
    assert_eq!(p.user().uid(), 1000);
    let caps = p.capabilities().as_ref().expect("capabilities");
    assert_eq!(caps.bounding().as_ref().map(|c| c.len()), Some(14));
    assert_eq!(caps.bounding(), caps.effective());
    assert_eq!(caps.bounding(), caps.permitted());
    assert_eq!(caps.inheritable().as_ref().map(|c| c.len()), Some(0));
    assert_eq!(caps.ambient().as_ref().map(|c| c.len()), Some(0));
}

#[test]
fn init_only_with_own_pid_namespace() {
    let input = SpecInput {
        init_binary: Some(PathBuf::from("/usr/libexec/docker-init")),
        ..base()
    };
    let spec = generate(&input).expect("generates");
    let args = spec.process().as_ref().and_then(|p| p.args().clone());
    assert_eq!(
        args,
        Some(vec!["/sbin/docker-init".into(), "--".into(), "sh".into()])
    );
    assert!(mount_at(&spec, "/sbin/docker-init").is_some());

    let host_pid = SpecInput {
        pid_host: true,
        ..input
    };
    let spec = generate(&host_pid).expect("generates");
    let args = spec.process().as_ref().and_then(|p| p.args().clone());
    assert_eq!(args, Some(vec!["sh".to_string()]));
    assert!(mount_at(&spec, "/sbin/docker-init").is_none());
}

#[test]
fn privileged_spec() {
    let input = SpecInput {
        privileged: true,
        masked_paths_extra: vec!["/proc/extra".to_string()],
        ..base()
    };
    let spec = generate(&input).expect("generates");
    let l = linux(&spec);
    assert_eq!(l.seccomp(), &None);
    assert_eq!(
        l.masked_paths().clone(),
        Some(vec!["/proc/extra".to_string()])
    );
    assert_eq!(l.readonly_paths(), &None);
    let caps = spec
        .process()
        .as_ref()
        .and_then(|p| p.capabilities().clone())
        .and_then(|c| c.bounding().clone())
        .expect("bounding set");
    assert_eq!(caps.len(), 41);
    let sys = mount_at(&spec, "/sys").expect("/sys");
    assert!(!sys
        .options()
        .clone()
        .unwrap_or_default()
        .contains(&"ro".to_string()));
}

#[test]
fn unprivileged_paths_and_devices() {
    let input = SpecInput {
        masked_paths_extra: vec!["/proc/kcore".to_string(), "/proc/x".to_string()],
        readonly_paths_extra: vec!["/proc/y".to_string()],
        ..base()
    };
    let spec = generate(&input).expect("generates");
    let l = linux(&spec);
    let masked = l.masked_paths().clone().unwrap_or_default();
    assert_eq!(masked.len(), MASKED_PATHS.len() + 1, "duplicates dropped");
    assert_eq!(masked.last().map(String::as_str), Some("/proc/x"));
    let ro = l.readonly_paths().clone().unwrap_or_default();
    assert_eq!(ro.len(), READONLY_PATHS.len() + 1);
    assert_eq!(l.devices().clone(), Some(Vec::new()));
    assert_eq!(l.cgroups_path().clone(), Some(PathBuf::from("/berth/x")));
}

#[test]
fn seccomp_modes() {
    let spec = generate(&base()).expect("generates");
    let s = linux(&spec).seccomp().clone().expect("default profile");
    assert_eq!(s.default_action(), LinuxSeccompAction::ScmpActErrno);

    let unconfined = SpecInput {
        seccomp: SeccompMode::Unconfined,
        ..base()
    };
    assert_eq!(
        linux(&generate(&unconfined).expect("generates")).seccomp(),
        &None
    );

    let custom = r#"{"defaultAction": "SCMP_ACT_LOG"}"#;
    let privileged_custom = SpecInput {
        privileged: true,
        seccomp: SeccompMode::Custom(custom.to_string()),
        ..base()
    };
    let spec = generate(&privileged_custom).expect("generates");
    let s = linux(&spec)
        .seccomp()
        .clone()
        .expect("custom applies when privileged");
    assert_eq!(s.default_action(), LinuxSeccompAction::ScmpActLog);

    let broken = SpecInput {
        seccomp: SeccompMode::Custom("{".to_string()),
        ..base()
    };
    assert!(matches!(generate(&broken), Err(SpecError::Seccomp { .. })));
}

#[test]
fn seccomp_follows_cap_add() {
    let input = SpecInput {
        cap_add: vec!["SYS_ADMIN".to_string()],
        ..base()
    };
    let spec = generate(&input).expect("generates");
    let s = linux(&spec).seccomp().clone().expect("profile");
    let calls = s.syscalls().clone().unwrap_or_default();
    assert!(calls
        .iter()
        .any(|c| c.names().contains(&"mount".to_string())));
}

#[test]
fn invalid_inputs() {
    let cases: Vec<(SpecInput, &str)> = vec![
        (
            SpecInput {
                rootfs: PathBuf::from("rootfs"),
                ..base()
            },
            "not an absolute path",
        ),
        (
            SpecInput {
                cgroups_path: String::new(),
                ..base()
            },
            "cgroups path is not set",
        ),
        (
            SpecInput {
                args: Vec::new(),
                ..base()
            },
            "no command",
        ),
        (
            SpecInput {
                cap_add: vec!["NET_FLY".to_string()],
                ..base()
            },
            "unknown capability \"NET_FLY\"",
        ),
        (
            SpecInput {
                ulimits: vec![Ulimit {
                    name: "nofiles".to_string(),
                    soft: 1,
                    hard: 1,
                }],
                ..base()
            },
            "unknown ulimit \"nofiles\"",
        ),
        (
            SpecInput {
                ipc_shareable: true,
                ..base()
            },
            "host shm directory",
        ),
        (
            SpecInput {
                ipc_shareable: true,
                ipc_host: true,
                shm_source: Some(PathBuf::from("/dev/shm")),
                ..base()
            },
            "both shareable and host",
        ),
    ];
    for (input, want) in cases {
        let err = generate(&input).expect_err(want);
        assert!(err.to_string().contains(want), "{err} does not say {want}");
    }
}

#[test]
fn annotations_and_domainname() {
    let mut input = SpecInput {
        domainname: "example.org".to_string(),
        ..base()
    };
    input.annotations.insert("org.berth.x".into(), "1".into());
    let spec = generate(&input).expect("generates");
    assert_eq!(spec.domainname().as_deref(), Some("example.org"));
    assert_eq!(
        spec.annotations()
            .as_ref()
            .and_then(|a| a.get("org.berth.x")),
        Some(&"1".to_string())
    );
    assert_eq!(generate(&base()).expect("generates").annotations(), &None);
}

#[test]
fn canonical_json_is_deterministic_and_sorted() {
    let input = SpecInput {
        cap_add: vec!["ALL".to_string()],
        ..base()
    };
    let spec = generate(&input).expect("generates");
    let first = to_canonical_json(&spec).expect("serialises");
    for _ in 0..5 {
        let again = to_canonical_json(&generate(&input).expect("generates")).expect("serialises");
        assert_eq!(first, again);
    }
    let value: Value = serde_json::from_str(&first).expect("valid json");
    let bounding: Vec<&str> = value["process"]["capabilities"]["bounding"]
        .as_array()
        .expect("array")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let mut sorted = bounding.clone();
    sorted.sort_unstable();
    assert_eq!(bounding, sorted);
    assert_eq!(value["ociVersion"], OCI_VERSION);
    // the JSON reads back as the same spec
    let back: Spec = serde_json::from_str(&first).expect("parses as a spec");
    assert_eq!(back, spec);
}
