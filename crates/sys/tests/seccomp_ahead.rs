//! A seccomp filter compiled ahead (`Program::compile_ahead`) is compiled at the lowest priority, never in
//! place of its caller, and put on the whole process at the caller's priority when asked for. Needs root
//! (a filter loaded without `no_new_privs`).
//!
//! The filter goes on the process that loads it: a forked child does it, and answers with its exit code.

use berth_sys::seccomp::Program;

/// ld [0] (the syscall number); jeq getppid (110) → errno(EPERM), else allow.
fn deny_getppid() -> Program {
    let insns: [(u16, u8, u8, u32); 4] = [
        (0x20, 0, 0, 0),
        (0x15, 0, 1, 110),
        (0x06, 0, 0, 0x0005_0000 | libc::EPERM as u32),
        (0x06, 0, 0, 0x7fff_0000),
    ];
    let mut bytes = Vec::new();
    for (code, jt, jf, k) in insns {
        bytes.extend(code.to_ne_bytes());
        bytes.push(jt);
        bytes.push(jf);
        bytes.extend(k.to_ne_bytes());
    }
    Program::from_bytes(&bytes).unwrap()
}

/// The nice value of thread `tid` of this process, from its `stat`.
fn nice(tid: &str) -> Option<i64> {
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).ok()?;
    // Fields after the command's closing parenthesis: state is the 3rd field, nice the 19th.
    stat.rsplit_once(") ")?.1.split(' ').nth(16)?.parse().ok()
}

/// The child's checks; its exit code says which failed.
fn child() -> i32 {
    let me = std::process::id().to_string();
    let base = nice(&me);
    let ahead = match deny_getppid().compile_ahead(0) {
        Ok(a) => a,
        Err(_) => return 2,
    };
    // The thread says who it is once it has lowered itself.
    let mut lowered = false;
    for _ in 0..2000 {
        let others: Vec<String> = std::fs::read_dir("/proc/self/task")
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|t| *t != me)
                    .collect()
            })
            .unwrap_or_default();
        if others
            .iter()
            .any(|t| nice(t) == Some(19) && base != Some(19))
        {
            lowered = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_micros(500));
    }
    if !lowered {
        return 3;
    }
    if nice(&me) != base {
        return 4;
    }
    if ahead.install().is_err() {
        return 5;
    }
    // SAFETY: getppid takes no arguments.
    let ppid = unsafe { libc::syscall(libc::SYS_getppid) };
    if ppid != -1 || std::io::Error::last_os_error().raw_os_error() != Some(libc::EPERM) {
        return 6;
    }
    // The thread is gone: the process is one thread again, at its own priority.
    let tasks = std::fs::read_dir("/proc/self/task").map_or(0, |d| d.count());
    if tasks != 1 || nice(&me) != base {
        return 7;
    }
    0
}

#[test]
fn a_filter_compiled_ahead_is_compiled_at_the_lowest_priority_and_installed_on_the_process() {
    if !cfg!(target_arch = "x86_64") || !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root on x86_64");
        return;
    }
    // SAFETY: the child runs `child` and `_exit`s; glibc's fork leaves malloc usable in the child.
    match unsafe { nix::unistd::fork() }.expect("fork") {
        nix::unistd::ForkResult::Child => {
            let code = child();
            // SAFETY: `_exit` ends the forked child without running the test harness's handlers.
            unsafe { libc::_exit(code) };
        }
        nix::unistd::ForkResult::Parent { child } => {
            let status = nix::sys::wait::waitpid(child, None).expect("wait");
            assert_eq!(
                status,
                nix::sys::wait::WaitStatus::Exited(child, 0),
                "exit codes: 2 compile_ahead failed, 3 the thread did not lower its priority, 4 the caller's \
                 changed, 5 install failed, 6 the filter is not on the caller, 7 the thread is not gone"
            );
        }
    }
}
