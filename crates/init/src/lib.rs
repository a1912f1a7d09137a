//! berth-init: the static `docker-init` program that `--init` runs as PID 1 inside a container.
//!
//! `build.rs` compiles `init.c`: it runs the command as a child, forwards signals, reaps zombies and exits
//! with the child's status. The daemon writes it once under its exec root; the runtime bind-mounts it
//! read-only at `/sbin/docker-init`.

/// The static executable for the host architecture.
pub static INIT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/docker-init"));

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;
    use std::process::Command;

    /// Spawn, retrying on ETXTBSY: a parallel test's fork can briefly hold our just-written executable open
    /// for writing (the classic write-then-exec race in threaded programs).
    fn retry<T>(mut f: impl FnMut() -> std::io::Result<T>) -> T {
        for _ in 0..50 {
            match f() {
                Err(e) if e.raw_os_error() == Some(26) => {
                    std::thread::sleep(std::time::Duration::from_millis(20))
                }
                r => return r.unwrap(),
            }
        }
        f().unwrap()
    }

    fn install() -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("docker-init");
        std::fs::write(&p, super::INIT).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        (dir, p)
    }

    #[test]
    fn passes_exit_codes_and_signals_through() {
        let (_d, p) = install();
        let st = retry(|| Command::new(&p).args(["--", "sh", "-c", "exit 7"]).status());
        assert_eq!(st.code(), Some(7));
        let st = retry(|| {
            Command::new(&p)
                .args(["sh", "-c", "kill -TERM $$"])
                .status()
        });
        assert_eq!(st.code(), Some(128 + 15));
        let st = retry(|| Command::new(&p).args(["--", "/no/such/program"]).status());
        assert_eq!(st.code(), Some(127));
        let out = retry(|| Command::new(&p).args(["--", "echo", "hi"]).output());
        assert_eq!(out.stdout, b"hi\n");
    }

    #[test]
    fn forwards_a_signal_to_the_child() {
        let (_d, p) = install();
        let mut child = retry(|| Command::new(&p).args(["--", "sleep", "30"]).spawn());
        std::thread::sleep(std::time::Duration::from_millis(300));
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        let st = child.wait().unwrap();
        assert_eq!(st.code(), Some(128 + 15));
    }
}
