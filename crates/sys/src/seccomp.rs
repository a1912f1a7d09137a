//! Loading a seccomp filter that was compiled ahead of time (classic BPF, as libseccomp exports it).
//!
//! Compiling Docker's default profile for x86_64, x86 and x32 costs libseccomp ~15 ms of CPU; the daemon does it
//! once per distinct profile and every container start and exec only loads the result.

use std::io;

/// One BPF instruction's size (`struct sock_filter`).
pub const INSTRUCTION_SIZE: usize = std::mem::size_of::<libc::sock_filter>();
/// The kernel's limit on a filter's length (`BPF_MAXINSNS`).
pub const MAX_INSTRUCTIONS: usize = 4096;

/// `SECCOMP_FILTER_FLAG_*` values for [`load_filter`].
pub const FLAG_TSYNC: u32 = 1;
pub const FLAG_LOG: u32 = 2;
pub const FLAG_SPEC_ALLOW: u32 = 4;
pub const FLAG_WAIT_KILLABLE_RECV: u32 = 32;

/// A compiled filter, ready to load.
#[derive(Clone)]
pub struct Program(Vec<libc::sock_filter>);

impl std::fmt::Debug for Program {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Program({} instructions)", self.0.len())
    }
}

impl Program {
    /// Parses an exported program (native-endian `struct sock_filter`s), checking that it is a whole
    /// number of instructions within the kernel's limit.
    pub fn from_bytes(bytes: &[u8]) -> io::Result<Program> {
        if bytes.is_empty() || !bytes.len().is_multiple_of(INSTRUCTION_SIZE) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "a seccomp program of {} bytes is not a whole number of instructions",
                    bytes.len()
                ),
            ));
        }
        let n = bytes.len() / INSTRUCTION_SIZE;
        if n > MAX_INSTRUCTIONS {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("a seccomp program of {n} instructions is longer than the kernel allows"),
            ));
        }
        Ok(Program(
            bytes
                .chunks_exact(INSTRUCTION_SIZE)
                .map(|c| libc::sock_filter {
                    code: u16::from_ne_bytes([c[0], c[1]]),
                    jt: c[2],
                    jf: c[3],
                    k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
                })
                .collect(),
        ))
    }

    /// The program as [`Program::from_bytes`] reads it.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.0.len() * INSTRUCTION_SIZE);
        for i in &self.0 {
            out.extend_from_slice(&i.code.to_ne_bytes());
            out.push(i.jt);
            out.push(i.jf);
            out.extend_from_slice(&i.k.to_ne_bytes());
        }
        out
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Installs the filter on the calling thread (`seccomp(SECCOMP_SET_MODE_FILTER)`), inherited across
    /// fork and exec. Without `no_new_privs` the caller needs CAP_SYS_ADMIN. Allocates nothing, so it is
    /// safe in a freshly forked child.
    pub fn load(&self, flags: u32) -> io::Result<()> {
        let prog = libc::sock_fprog {
            len: self.0.len() as u16,
            filter: self.0.as_ptr() as *mut libc::sock_filter,
        };
        // SAFETY: `prog` points at `len` initialised instructions owned by `self`, which outlives the call
        // (`from_bytes` bounds `len` by BPF_MAXINSNS, so it fits u16); the kernel copies the program before
        // returning and keeps no pointer to our memory.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                flags as libc::c_ulong,
                &prog as *const libc::sock_fprog,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        // With TSYNC, a positive answer is the thread that could not take the filter.
        if rc > 0 {
            return Err(io::Error::other(format!(
                "thread {rc} could not take the filter"
            )));
        }
        Ok(())
    }

    /// Has the kernel compile the filter now, on a thread of its own (installed there alone), to be put
    /// on the whole process later by [`Ahead::install`]: loading a filter the size of Docker's profile
    /// (three ABIs, ~1,250 instructions) takes the kernel a quarter of a millisecond here (checking it,
    /// converting it to eBPF and compiling that), which then runs alongside the caller's work.
    ///
    /// The filter must let that thread wait, install and leave: allow `futex`, `seccomp` and `exit`, and
    /// fail (not kill or trap) whatever else a thread's end may call. The caller must be the process's
    /// only thread (it is, as long as the `Ahead` lives, but for that thread), and hold CAP_SYS_ADMIN and
    /// CAP_SYS_NICE.
    ///
    /// The thread runs at the lowest priority until [`Ahead::install`] asks for its filter: it takes a CPU
    /// nobody else wants, and never the caller's (a new thread is often put on its creator's CPU when the
    /// other is busy, and it took the caller's place there for the whole compile).
    pub fn compile_ahead(&self, flags: u32) -> io::Result<Ahead> {
        use std::sync::atomic::Ordering::SeqCst;
        let program = self.clone();
        let (go, wait) = std::sync::mpsc::channel::<()>();
        let (tell, done) = std::sync::mpsc::channel::<io::Result<()>>();
        let tid = std::sync::Arc::new(std::sync::atomic::AtomicI32::new(0));
        let its_tid = tid.clone();
        let wanted = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let is_wanted = wanted.clone();
        let base = crate::process::nice_of(0).unwrap_or(0);
        let thread = std::thread::Builder::new()
            .name("berth-seccomp".into())
            .stack_size(64 * 1024)
            .spawn(move || {
                // This thread alone (on Linux a `PRIO_PROCESS` of 0 is the calling thread), then said:
                // an install from now on raises it again.
                let _ = crate::process::set_nice(0, crate::process::LOWEST_NICE);
                // SAFETY: gettid has no preconditions.
                its_tid.store(unsafe { libc::gettid() }, SeqCst);
                if is_wanted.load(SeqCst) {
                    let _ = crate::process::set_nice(0, base);
                }
                // This thread alone for now: the kernel does its work here, now.
                if let Err(e) = program.load(flags & !FLAG_TSYNC) {
                    let _ = tell.send(Err(e));
                    return;
                }
                if wait.recv().is_err() {
                    return;
                }
                // Then every thread of the process gets this thread's filters: the one compiled above
                // and one that allows everything, which the kernel has no work for. Together they
                // decide as the first alone does.
                let _ = tell.send(allow_all().load(FLAG_TSYNC | (flags & FLAG_SPEC_ALLOW)));
            })?;
        Ok(Ahead {
            go,
            done,
            thread,
            tid,
            wanted,
            base,
        })
    }
}

/// The filter of a single instruction that allows every syscall (`ret SECCOMP_RET_ALLOW`).
fn allow_all() -> Program {
    Program(vec![libc::sock_filter {
        code: (libc::BPF_RET | libc::BPF_K) as u16,
        jt: 0,
        jf: 0,
        k: libc::SECCOMP_RET_ALLOW,
    }])
}

/// A filter compiled ahead by [`Program::compile_ahead`], on a thread that waits to install it.
pub struct Ahead {
    go: std::sync::mpsc::Sender<()>,
    done: std::sync::mpsc::Receiver<io::Result<()>>,
    thread: std::thread::JoinHandle<()>,
    tid: std::sync::Arc<std::sync::atomic::AtomicI32>,
    /// Set when the filter is asked for: the thread is raised to the caller's priority.
    wanted: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// The caller's nice value when it started the thread.
    base: i32,
}

impl Ahead {
    /// Installs the filter on every thread of the process, the caller's included (it takes effect at
    /// once), and waits for the thread that compiled it to be gone, its id released (a join returns a
    /// moment before); returns that id.
    pub fn install(self) -> io::Result<i32> {
        use std::sync::atomic::Ordering::SeqCst;
        // Its compile is what the caller waits for now: at the caller's priority (the thread raises itself
        // if it has not said who it is yet).
        self.wanted.store(true, SeqCst);
        let running = self.tid.load(SeqCst);
        if running > 0 {
            // Best effort: a thread left at the lowest priority still finishes.
            let _ = crate::process::set_nice(running, self.base);
        }
        // Gone already if its compile failed: then its answer is waiting.
        let _ = self.go.send(());
        let installed = self
            .done
            .recv()
            .unwrap_or_else(|_| Err(io::Error::other("the thread compiling the filter ended")));
        let _ = self.thread.join();
        let tid = self.tid.load(SeqCst);
        // Bounded: 10 ms. (`kill` would not do: it looks a thread's id up as a process's, never there.)
        for _ in 0..1000 {
            // SAFETY: signal 0 to a thread of this process only asks whether that thread still is.
            let there = unsafe { libc::syscall(libc::SYS_tgkill, libc::getpid(), tid, 0) } == 0;
            if tid <= 0 || !there {
                break;
            }
            std::thread::sleep(std::time::Duration::from_micros(10));
        }
        installed.map(|()| tid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_must_be_whole_instructions() {
        assert!(Program::from_bytes(&[]).is_err());
        assert!(Program::from_bytes(&[0; 12]).is_err());
        assert_eq!(Program::from_bytes(&[0; 16]).unwrap().len(), 2);
        assert!(Program::from_bytes(&vec![0; 8 * 4097]).is_err());
    }

    #[test]
    fn a_loaded_filter_applies_to_the_process() {
        if !cfg!(target_arch = "x86_64") {
            return;
        }
        // ld [0] (the syscall number); jeq getppid (110) → errno(EPERM), else allow.
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
        let program = Program::from_bytes(&bytes).unwrap();
        // SAFETY: the child only makes raw syscalls and exits; it allocates nothing and takes no lock.
        let forked = unsafe { nix::unistd::fork() }.expect("fork");
        match forked {
            nix::unistd::ForkResult::Child => {
                let filtered =
                    nix::sys::prctl::set_no_new_privs().is_ok() && program.load(0).is_ok();
                // SAFETY: getppid takes no arguments.
                let ppid = unsafe { libc::syscall(libc::SYS_getppid) };
                let ok = filtered
                    && ppid == -1
                    && io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
                // SAFETY: `_exit` ends the forked child without running the parent's atexit handlers.
                unsafe { libc::_exit(if ok { 0 } else { 1 }) };
            }
            nix::unistd::ForkResult::Parent { child } => {
                let status = nix::sys::wait::waitpid(child, None).expect("wait");
                assert_eq!(status, nix::sys::wait::WaitStatus::Exited(child, 0));
            }
        }
    }
}
