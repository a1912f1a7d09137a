//! Compiles `init.c` into the static `docker-init` used by `--init`.
use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=init.c");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR is set by cargo"))
        .join("docker-init");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_string());
    let status = Command::new(&cc)
        .args(["-static", "-Os", "-s", "-o"])
        .arg(&out)
        .arg("init.c")
        .status()
        .unwrap_or_else(|e| panic!("cannot run the C compiler `{cc}` to build docker-init: {e}"));
    assert!(
        status.success(),
        "the C compiler `{cc}` failed to build init.c (static glibc: libc6-dev)"
    );
}
