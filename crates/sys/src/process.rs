//! Process attributes: sessions, subreapers, liveness, signals.

use crate::{Result, SysError};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// Start a new session so the process outlives its parent's terminal and process group.
pub fn new_session() -> Result<()> {
    match nix::unistd::setsid() {
        Ok(_) | Err(nix::Error::EPERM) => Ok(()), // already a group leader: keep going
        Err(e) => Err(SysError::os("setsid", "self", e)),
    }
}

/// Become a child subreaper: orphaned descendants (the container init) are re-parented to us.
pub fn set_subreaper() -> Result<()> {
    nix::sys::prctl::set_child_subreaper(true)
        .map_err(|e| SysError::os("prctl", "PR_SET_CHILD_SUBREAPER", e))
}

/// Whether a process with this pid exists (zombies count as existing).
pub fn alive(pid: i32) -> bool {
    pid > 0 && !matches!(kill(Pid::from_raw(pid), None), Err(nix::Error::ESRCH))
}

/// Send `signal` (a number) to `pid`.
pub fn signal(pid: i32, signal: i32) -> Result<()> {
    let sig = Signal::try_from(signal).map_err(|e| SysError::os("parse signal", signal, e))?;
    kill(Pid::from_raw(pid), sig).map_err(|e| SysError::os("kill", pid, e))
}

/// Give a process about to exec a program the signal state a program expects: nothing blocked and every
/// disposition at its default. Ignored signals survive `execve`, and the shim (a Rust program) ignores
/// SIGPIPE, so without this `yes | head` in a container would never end.
pub fn reset_signals() -> Result<()> {
    use nix::sys::signal::{sigprocmask, SigSet, SigmaskHow};
    sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
        .map_err(|e| SysError::os("sigprocmask", "unblock all", e))?;
    // Every signal the kernel has, the real-time ones included (glibc refuses to touch the two it keeps for
    // itself, 32 and 33, so this goes to the kernel directly).
    #[repr(C)]
    struct KernelSigaction {
        handler: usize,
        flags: u64,
        restorer: usize,
        mask: u64,
    }
    let dfl = KernelSigaction {
        handler: libc::SIG_DFL,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: `dfl` is a valid kernel `struct sigaction` (x86-64 and aarch64 layout, 8-byte mask) that
        // installs the default disposition, no handler of ours; the old action is not asked for.
        let r = unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                &dfl as *const KernelSigaction,
                std::ptr::null_mut::<KernelSigaction>(),
                8usize,
            )
        };
        if r != 0 {
            return Err(SysError::os("rt_sigaction", sig, nix::Error::last()));
        }
    }
    Ok(())
}

/// Redirect the standard descriptors 0, 1, 2 to /dev/null (a detached shim must not hold its parent's pipes).
pub fn stdio_to_devnull() -> Result<()> {
    use std::os::fd::AsRawFd;
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(|e| SysError::io("open", "/dev/null", e))?;
    for fd in 0..3 {
        nix::unistd::dup2(null.as_raw_fd(), fd).map_err(|e| SysError::os("dup2", fd, e))?;
    }
    Ok(())
}

/// Give memory that the allocator holds but no longer uses back to the kernel. A shim calls this once its
/// container is set up (parsing the OCI spec and the seccomp profile leaves a large, now-free heap): memory per
/// container is what a host with many containers pays.
pub fn release_free_memory() {
    // SAFETY: `malloc_trim` only walks glibc's own allocator state; it takes no pointers from us and is safe
    // to call at any time from any thread.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Make every thread allocate from glibc's one main arena. By default glibc gives each thread that allocates its
/// own arena (up to eight per core), and each keeps the memory freed in it: a daemon whose runtime threads
/// take turns serving requests ends up holding a few idle arenas. The per-thread caches still serve small
/// allocations without a lock. Call it before any thread starts.
pub fn single_malloc_arena() {
    #[cfg(target_env = "gnu")]
    // SAFETY: `mallopt` only sets a parameter of glibc's allocator; it takes no pointers.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

/// Sets the calling thread's nice value (on Linux a thread has its own) and returns the one it had. For
/// clean-up work that must not take the CPU from what a client is waiting for; put the old value back
/// afterwards on a thread that is reused.
pub fn set_thread_nice(nice: i32) -> std::io::Result<i32> {
    // SAFETY: gettid has no preconditions.
    let tid = unsafe { libc::gettid() } as libc::id_t;
    // getpriority may return -1 legitimately: errno tells.
    // SAFETY: errno is this thread's; getpriority and setpriority take plain integers.
    let old = unsafe {
        *libc::__errno_location() = 0;
        let p = libc::getpriority(libc::PRIO_PROCESS, tid);
        if p == -1 && *libc::__errno_location() != 0 {
            return Err(std::io::Error::last_os_error());
        }
        p
    };
    // SAFETY: as above.
    if unsafe { libc::setpriority(libc::PRIO_PROCESS, tid, nice) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(old)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_is_alive_and_bogus_pid_is_not() {
        assert!(alive(std::process::id() as i32));
        assert!(!alive(0));
        assert!(!alive(i32::MAX));
    }

    #[test]
    fn a_thread_sets_its_own_nice_value_and_gets_the_old_one_back() {
        std::thread::spawn(|| {
            let old = set_thread_nice(10).unwrap();
            assert_eq!(set_thread_nice(old).unwrap(), 10);
        })
        .join()
        .unwrap();
        // The other threads kept theirs.
        let mine = set_thread_nice(0).unwrap();
        assert_ne!(mine, 10);
    }
}
