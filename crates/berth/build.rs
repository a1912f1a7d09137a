//! Link flags for the two binaries.
//!
//! `berth-shim` is position-dependent. A shim lives as long as its container, one per container, so its private
//! memory is what every running container costs. Linked as PIE, the dynamic loader rewrites every pointer in the
//! binary's relocated read-only data at start (about 200 KiB of `.data.rel.ro` for this shim), and those
//! copy-on-write pages are private to each shim: close to half of its private memory. Linked without PIE the
//! linker resolves them once, and the pages stay clean and shared by every shim. The price is that the shim's own
//! code and data sit at a fixed address (libraries, heap and stack are still randomized); the shim parses nothing
//! its container sends (output is copied as bytes) and its one peer is the daemon on a root-only socket.
//!
//! `berth` (the daemon and the CLI) stays PIE, and is laid out for a small resident set:
//! - its relative relocations are packed (`DT_RELR`, glibc 2.36 and later): the loader reads a bitmap of a few
//!   KiB instead of an 800 KiB table, which every berth process used to map at start;
//! - the functions it runs most (daemon start-up, the common API calls, the CLI; listed in
//!   `link/hot-symbols.txt` by `scripts/orderfile.sh`) are placed together at the start of `.text`. Left where
//!   the compiler put them, the few thousand functions a daemon runs are spread over 20 MiB of code, and as the
//!   kernel maps a file's pages 64 KiB at a time around each fault, an idle daemon kept ~10 MiB of code
//!   resident. Names missing from the binary (another toolchain renames them) are skipped by the linker.
//!
//! Both need lld, rustc's default linker on x86_64 Linux since 1.90; with another linker, or
//! `BERTH_NO_ORDERFILE=1`, the binary is linked plainly.
use std::process::Command;

fn main() {
    println!("cargo:rustc-link-arg-bin=berth-shim=-no-pie");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=link/hot-symbols.txt");
    println!("cargo:rerun-if-env-changed=BERTH_NO_ORDERFILE");
    if std::env::var_os("BERTH_NO_ORDERFILE").is_some() || !default_lld() {
        return;
    }
    if glibc_has_relr() {
        println!("cargo:rustc-link-arg-bin=berth=-Wl,-z,pack-relative-relocs");
    }
    let order = std::path::Path::new(&std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default())
        .join("link/hot-symbols.txt");
    if order.is_file() {
        println!(
            "cargo:rustc-link-arg-bin=berth=-Wl,--symbol-ordering-file={}",
            order.display()
        );
        println!("cargo:rustc-link-arg-bin=berth=-Wl,--no-warn-symbol-ordering");
    }
}

/// Whether rustc links this target with its bundled lld: x86_64 Linux (gnu) from rustc 1.90 on, unless a
/// linker of the user's own is configured.
fn default_lld() -> bool {
    let target = std::env::var("TARGET").unwrap_or_default();
    if target != "x86_64-unknown-linux-gnu" {
        return false;
    }
    let flags = std::env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    if flags.contains("linker")
        || std::env::var_os("CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER").is_some()
    {
        return false;
    }
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let Ok(out) = Command::new(rustc).arg("-vV").output() else {
        return false;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix("release: "))
        .is_some_and(|v| at_least(v, (1, 90)))
}

/// Whether the C library the binary will run with reads packed relocations (glibc 2.36 and later; the binary
/// is built where it runs, as berth is not cross-compiled).
fn glibc_has_relr() -> bool {
    let Ok(out) = Command::new("getconf").arg("GNU_LIBC_VERSION").output() else {
        return false;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim()
        .strip_prefix("glibc ")
        .is_some_and(|v| at_least(v, (2, 36)))
}

/// Whether a version such as `1.95.0` or `2.36` is at least `min` (major, minor).
fn at_least(version: &str, min: (u32, u32)) -> bool {
    let mut parts = version
        .split(['.', '-'])
        .map(|p| p.parse::<u32>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0)) >= min
}
