//! Link `berth-shim` as a position-dependent executable.
//!
//! A shim lives as long as its container, one per container, so its private memory is what every running
//! container costs. Linked as PIE, the dynamic loader rewrites every pointer in the binary's relocated
//! read-only data at start (about 200 KiB of `.data.rel.ro` for this shim), and those copy-on-write pages are
//! private to each shim: close to half of its private memory. Linked without PIE the linker resolves them
//! once, and the pages stay clean and shared by every shim. The price is that the shim's own code and data
//! sit at a fixed address (libraries, heap and stack are still randomized); the shim parses nothing its
//! container sends (output is copied as bytes) and its one peer is the daemon on a root-only socket. The
//! daemon and the CLI (`berth`) stay PIE.
fn main() {
    println!("cargo:rustc-link-arg-bin=berth-shim=-no-pie");
    println!("cargo:rerun-if-changed=build.rs");
}
