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
    // to call at any time from any thread; `mallopt` only sets one of its parameters.
    unsafe {
        libc::malloc_trim(0);
        // Freed memory goes back on its own again (see `warm_up`): glibc's default threshold.
        #[cfg(target_env = "gnu")]
        libc::mallopt(libc::M_TRIM_THRESHOLD, 128 * 1024);
    }
}

/// Has the pages a process is about to need made now, while it waits for its work (a spare shim, an init
/// cloned ahead): a page's first touch costs a fault (1.5-2.5 µs each in a VM), and a container's start
/// touches a few hundred KiB of stack and heap for the first time. `heap` bytes of heap are touched and
/// kept (freed memory stays with the allocator until [`release_free_memory`]), `stack` bytes of stack, and
/// every private writable page the process already has is made its own (a clone shares its parent's
/// until it writes to them). Best effort: what fails is left to fault as before.
pub fn warm_up(heap: usize, stack: usize) {
    // SAFETY: `mallopt` only sets a parameter of glibc's allocator.
    #[cfg(target_env = "gnu")]
    unsafe {
        libc::mallopt(libc::M_TRIM_THRESHOLD, 64 << 20);
    }
    // Blocks under glibc's mmap threshold (128 KiB), so that they come from the heap and stay there.
    let blocks: Vec<Vec<u8>> = (0..heap.div_ceil(32 * 1024))
        .map(|_| {
            let mut b = Vec::with_capacity(32 * 1024);
            b.resize(32 * 1024, 1u8);
            b
        })
        .collect();
    drop(std::hint::black_box(blocks));
    touch_stack(stack);
    // What the process shares copy-on-write: its heap, data and stack (`/proc/self/maps`, read first:
    // the populating changes nothing the file lists).
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    for (start, end, perms, _) in mappings(&maps) {
        // (A large one is not the process's working memory: left alone.)
        if perms.starts_with("rw") && perms.ends_with('p') && end - start <= 8 << 20 {
            // SAFETY: MADV_POPULATE_WRITE (Linux 5.14) only faults in pages of an existing private
            // writable mapping of this process, as writes to them would; it changes no content.
            unsafe {
                libc::madvise(
                    start as *mut libc::c_void,
                    end - start,
                    libc::MADV_POPULATE_WRITE,
                );
            }
        }
    }
}

/// Gives back the stack pages below the caller's frame but 64 KiB (a container's start went deeper than a
/// shim that serves it ever goes again; see [`warm_up`]): memory per running container. Only on the
/// process's main thread (another thread's stack is not the one `/proc/self/maps` calls `[stack]`).
pub fn release_unused_stack() {
    let here = 0u8;
    let sp = std::hint::black_box(&here) as *const u8 as usize;
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    let Some((start, _, _, _)) =
        mappings(&maps).find(|m| m.3 == "[stack]" && (m.0..m.1).contains(&sp))
    else {
        return;
    };
    let end = sp.saturating_sub(64 * 1024) & !4095;
    if end > start {
        // SAFETY: the range lies in this thread's stack below its frame and a 64 KiB margin (signal
        // frames and the red zone included): nothing lives there, and it reads as zeros if reached again.
        unsafe {
            libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED);
        }
    }
}

/// The lines of `/proc/self/maps`: start, end, permissions and the name (or "").
fn mappings(maps: &str) -> impl Iterator<Item = (usize, usize, &str, &str)> {
    maps.lines().filter_map(|line| {
        let mut f = line.split_whitespace();
        let (range, perms) = (f.next()?, f.next()?);
        let name = f.nth(3).unwrap_or("");
        let (start, end) = range.split_once('-')?;
        Some((
            usize::from_str_radix(start, 16).ok()?,
            usize::from_str_radix(end, 16).ok()?,
            perms,
            name,
        ))
    })
}

/// Writes one byte in each page of `bytes` of stack below the caller's frame.
#[inline(never)]
fn touch_stack(bytes: usize) {
    const CHUNK: usize = 32 * 1024;
    #[inline(never)]
    fn down(left: usize) {
        let mut chunk = [0u8; CHUNK];
        for i in (0..CHUNK).step_by(4096) {
            // SAFETY: `i` is within `chunk`, a local array.
            unsafe { std::ptr::write_volatile(chunk.as_mut_ptr().add(i), 1) };
        }
        if left > CHUNK {
            down(left - CHUNK);
        }
        // Used after the call: the frame stays (no tail call reusing it).
        std::hint::black_box(&chunk);
    }
    down(bytes);
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

/// The nice value that work nobody waits for runs at: it takes only the CPU nobody else wants.
pub const LOWEST_NICE: i32 = 19;

/// The nice value of process or thread `id` (0: the calling thread; on Linux a thread has its own).
pub fn nice_of(id: i32) -> std::io::Result<i32> {
    // getpriority may return -1 legitimately: errno tells.
    // SAFETY: errno is this thread's; getpriority takes plain integers.
    unsafe {
        *libc::__errno_location() = 0;
        let p = libc::getpriority(libc::PRIO_PROCESS, id as libc::id_t);
        if p == -1 && *libc::__errno_location() != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(p)
    }
}

/// Sets the nice value of process or thread `id` (0: the calling thread). Raising a priority (a lower
/// value) needs CAP_SYS_NICE.
pub fn set_nice(id: i32, nice: i32) -> std::io::Result<()> {
    // SAFETY: setpriority takes plain integers.
    if unsafe { libc::setpriority(libc::PRIO_PROCESS, id as libc::id_t, nice) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Sets the nice value of every process in process group `pgrp` (see [`set_nice`]).
pub fn set_group_nice(pgrp: i32, nice: i32) -> std::io::Result<()> {
    // SAFETY: setpriority takes plain integers.
    if unsafe { libc::setpriority(libc::PRIO_PGRP, pgrp as libc::id_t, nice) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Sets the calling thread's nice value (on Linux a thread has its own) and returns the one it had. For
/// clean-up work that must not take the CPU from what a client is waiting for; put the old value back
/// afterwards on a thread that is reused.
pub fn set_thread_nice(nice: i32) -> std::io::Result<i32> {
    let old = nice_of(0)?;
    set_nice(0, nice)?;
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

    #[test]
    fn the_lines_of_the_mappings_file_are_read() {
        let maps = "00400000-00452000 r-xp 00000000 08:02 173521 /usr/bin/dbus-daemon\n\
                    0e03f000-0e060000 rw-p 00000000 00:00 0 [heap]\n\
                    7ffd4a7f1000-7ffd4a812000 rw-p 00000000 00:00 0 [stack]\n\
                    7f2e7c000000-7f2e7c021000 rw-p 00000000 00:00 0\n";
        let m: Vec<_> = mappings(maps).collect();
        assert_eq!(m.len(), 4);
        assert_eq!(m[0], (0x400000, 0x452000, "r-xp", "/usr/bin/dbus-daemon"));
        assert_eq!(m[1].3, "[heap]");
        assert_eq!(m[2], (0x7ffd4a7f1000, 0x7ffd4a812000, "rw-p", "[stack]"));
        assert_eq!(m[3].3, "");
    }

    #[test]
    fn a_warmed_up_process_has_its_pages_and_gives_its_stack_back() {
        // In a child: the test's threads are not the process's main thread.
        // SAFETY: the child only calls these functions (which allocate: the harness's other threads may
        // hold no allocator lock across a fork for long, and the child exits at once either way) and exits.
        match unsafe { nix::unistd::fork() }.expect("fork") {
            nix::unistd::ForkResult::Child => {
                let faults = || {
                    let mut u = std::mem::MaybeUninit::<libc::rusage>::zeroed();
                    // SAFETY: getrusage fills the struct it is given.
                    unsafe { libc::getrusage(libc::RUSAGE_SELF, u.as_mut_ptr()) };
                    // SAFETY: initialised by getrusage (or left zeroed).
                    unsafe { u.assume_init() }.ru_minflt
                };
                warm_up(256 * 1024, 128 * 1024);
                let before = faults();
                // What was warmed up faults no more: 64 KiB of heap and of stack.
                let v = vec![1u8; 64 * 1024];
                std::hint::black_box(&v);
                touch_stack(64 * 1024);
                let warm = faults() - before < 8;
                release_unused_stack();
                // SAFETY: `_exit` ends the forked child at once.
                unsafe { libc::_exit(if warm { 0 } else { 1 }) };
            }
            nix::unistd::ForkResult::Parent { child } => {
                let status = nix::sys::wait::waitpid(child, None).expect("wait");
                assert_eq!(status, nix::sys::wait::WaitStatus::Exited(child, 0));
            }
        }
    }
}
