//! Compatibility with a client we did not write: the Docker SDK for Python (Debian's `python3-docker`, which
//! `scripts/test.sh` installs) drives networks, volumes, ports, exec and logs against berth.

mod common;

use common::{text, Daemon};

#[test]
fn docker_sdk_for_python_drives_networks_volumes_and_ports() {
    let d = Daemon::start();
    d.import_busybox_full();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sdk/networks_volumes.py");
    let port = common::free_port();
    // Debian's interpreter: python3-docker lives there, whatever else is first on PATH.
    let out = std::process::Command::new("/usr/bin/python3")
        .arg(script)
        .arg(d.socket())
        .arg(port.to_string())
        .output()
        .expect("run /usr/bin/python3 (scripts/test.sh installs python3-docker)");
    assert!(
        out.status.success(),
        "docker-py failed:\n{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert_eq!(text(&out.stdout), "ok\n");
}
