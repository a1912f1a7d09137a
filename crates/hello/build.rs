//! Compiles `hello.c` into the tiny static program of the embedded `hello-world` image.
use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=hello.c");
    let out =
        PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR is set by cargo")).join("hello");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_string());
    let status = Command::new(&cc)
        .args([
            "-static",
            "-nostdlib",
            "-nostartfiles",
            "-fno-stack-protector",
            "-fno-asynchronous-unwind-tables",
            "-fno-pie",
            "-no-pie",
            "-Os",
            "-s",
            "-Wl,--build-id=none",
            "-o",
        ])
        .arg(&out)
        .arg("hello.c")
        .status()
        .unwrap_or_else(|e| {
            panic!("cannot run the C compiler `{cc}` to build the hello-world program: {e}")
        });
    assert!(
        status.success(),
        "the C compiler `{cc}` failed to build hello.c"
    );
}
