//! Link flags for the two binaries.
//!
//! Both are position-dependent (`-no-pie`), as Debian builds runc, containerd and podman.
//! - `berth-shim`: a shim lives as long as its container, one per container, so its private memory is what
//!   every running container costs. Linked as PIE, the dynamic loader rewrites every pointer in the binary's
//!   relocated read-only data at start (about 200 KiB of `.data.rel.ro` for this shim), and those
//!   copy-on-write pages are private to each shim: close to half of its private memory. Linked without PIE
//!   the linker resolves them once, and the pages stay clean and shared by every shim.
//! - `berth`: every CLI command is a process start, on the path of every `run`. As PIE the loader rewrote
//!   ~490 KiB of `.data.rel.ro` at each start (about 120 page faults and copies): `berth --version` took
//!   2.3 ms, 1.7 ms without PIE, and a `run` gains the same 0.6 ms.
//!
//! The price is that the program's own code and data sit at a fixed address (shared libraries, heap, stack
//! and every other mapping are still randomized). berth is Rust, `unsafe` is confined to one crate, and the
//! shim parses nothing its container sends (output is copied as bytes).
//!
//! `berth` is also laid out for a small resident set: the functions it runs most (daemon start-up, the common
//! API calls, the CLI; listed in `link/hot-symbols.txt` by `scripts/orderfile.sh`) are placed together at the
//! start of `.text`. Left where the compiler put them, the few thousand functions a daemon runs are spread
//! over 20 MiB of code, and as the kernel maps a file's pages 64 KiB at a time around each fault, an idle
//! daemon kept ~10 MiB of code resident. Names missing from the binary (another toolchain renames them) are
//! skipped by the linker. (Without PIE there are no relative relocations left to pack with `DT_RELR`.)
//!
//! The ordering needs lld, rustc's default linker on x86_64 Linux since 1.90; with another linker, or
//! `BERTH_NO_ORDERFILE=1`, the binary is linked plainly.
use std::process::Command;

fn main() {
    for bin in ["berth-shim", "berth"] {
        println!("cargo:rustc-link-arg-bin={bin}=-no-pie");
    }
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=link/hot-symbols.txt");
    println!("cargo:rerun-if-env-changed=BERTH_NO_ORDERFILE");
    if std::env::var_os("BERTH_NO_ORDERFILE").is_some() || !default_lld() {
        return;
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

/// Whether a version such as `1.95.0` or `2.36` is at least `min` (major, minor).
fn at_least(version: &str, min: (u32, u32)) -> bool {
    let mut parts = version
        .split(['.', '-'])
        .map(|p| p.parse::<u32>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0)) >= min
}
