//! berth-hello: the program inside the embedded `hello-world` image.
//!
//! `build.rs` compiles `hello.c` (no libc, two syscalls) into a static executable of a few KB, so
//! `berth run hello-world` works on a machine with no network at all.

/// The static `hello` executable for the host architecture.
pub static HELLO: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/hello"));

/// The image's reference, as Docker names it.
pub const IMAGE: &str = "hello-world:latest";

#[cfg(test)]
mod tests {
    #[test]
    fn program_is_a_small_static_elf_that_greets() {
        assert_eq!(&super::HELLO[..4], b"\x7fELF");
        assert!(
            super::HELLO.len() < 64 * 1024,
            "{} bytes",
            super::HELLO.len()
        );
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("hello");
        std::fs::write(&p, super::HELLO).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        let out = std::process::Command::new(&p).output().unwrap();
        assert!(out.status.success());
        assert!(String::from_utf8_lossy(&out.stdout).contains("Hello from berth!"));
    }
}
