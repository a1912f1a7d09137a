//! Seccomp filters compiled once per profile instead of once per process.
//!
//! Compiling Docker's default profile with libseccomp on x86_64 (which also covers the x86 and x32 ABIs)
//! costs ~15 ms of CPU, a third of what a container start used to cost. The daemon compiles each profile
//! here, caches the program by the section's content, and hands the shim the exported BPF; the container's
//! init and every exec'd process load it right before their program runs (`berth_sys::launch`): without
//! `no_new_privileges` while they still hold CAP_SYS_ADMIN, before their capabilities are dropped; with
//! it, as the very last step.
//!
//! [`precompile`] refuses profiles with `SCMP_ACT_NOTIFY`: they need a seccomp agent listening on the
//! spec's `listenerPath`, which berth does not run (nor does Docker).

use std::sync::{Arc, Mutex};

use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator, Spec,
};
use sha2::{Digest, Sha256};

/// A filter ready for the shim: the exported program and the `seccomp(2)` flags to load it with.
#[derive(Debug, Clone)]
pub struct Compiled {
    pub program: Arc<Program>,
    pub flags: u32,
    /// Whether a container's init may have the kernel compile the filter on a thread of its own while it
    /// sets its root up (`berth_sys::seccomp::Program::compile_ahead`; see [`compiles_ahead`]).
    pub compile_ahead: bool,
}

/// An exported program and its name, the hex sha256 of its bytes (computed once, when it is compiled).
#[derive(Debug)]
pub struct Program {
    pub bytes: Vec<u8>,
    pub digest: String,
}

#[derive(Debug, thiserror::Error)]
pub enum FilterError {
    #[error("seccomp: {what}: {reason}")]
    Libseccomp { what: String, reason: String },
    #[error("seccomp: errno {0} does not fit a TRACE action")]
    TraceErrno(u32),
    #[error("seccomp: writing the compiled filter: {0}")]
    Export(#[from] std::io::Error),
    #[error("seccomp: SCMP_ACT_NOTIFY needs a seccomp agent listening on listenerPath, which berth does not run")]
    Notify,
}

fn lib_err(what: impl Into<String>) -> impl FnOnce(libseccomp::error::SeccompError) -> FilterError {
    let what = what.into();
    move |e| FilterError::Libseccomp {
        what,
        reason: e.to_string(),
    }
}

fn arch(a: Arch) -> ScmpArch {
    match a {
        Arch::ScmpArchNative => ScmpArch::Native,
        Arch::ScmpArchX86 => ScmpArch::X86,
        Arch::ScmpArchX86_64 => ScmpArch::X8664,
        Arch::ScmpArchX32 => ScmpArch::X32,
        Arch::ScmpArchArm => ScmpArch::Arm,
        Arch::ScmpArchAarch64 => ScmpArch::Aarch64,
        Arch::ScmpArchMips => ScmpArch::Mips,
        Arch::ScmpArchMips64 => ScmpArch::Mips64,
        Arch::ScmpArchMips64n32 => ScmpArch::Mips64N32,
        Arch::ScmpArchMipsel => ScmpArch::Mipsel,
        Arch::ScmpArchMipsel64 => ScmpArch::Mipsel64,
        Arch::ScmpArchMipsel64n32 => ScmpArch::Mipsel64N32,
        Arch::ScmpArchPpc => ScmpArch::Ppc,
        Arch::ScmpArchPpc64 => ScmpArch::Ppc64,
        Arch::ScmpArchPpc64le => ScmpArch::Ppc64Le,
        Arch::ScmpArchS390 => ScmpArch::S390,
        Arch::ScmpArchS390x => ScmpArch::S390X,
        Arch::ScmpArchRiscv64 => ScmpArch::Riscv64,
        Arch::ScmpArchParisc => ScmpArch::Parisc,
        Arch::ScmpArchParisc64 => ScmpArch::Parisc64,
        Arch::ScmpArchLoongarch64 => ScmpArch::Loongarch64,
        Arch::ScmpArchM68k => ScmpArch::M68k,
        Arch::ScmpArchSh => ScmpArch::Sh,
        Arch::ScmpArchSheb => ScmpArch::Sheb,
    }
}

/// The OCI action as libseccomp's; an ERRNO or TRACE without a value means EPERM, as runc does.
fn action(a: LinuxSeccompAction, errno: Option<u32>) -> Result<ScmpAction, FilterError> {
    let ret = errno.unwrap_or(libc::EPERM as u32);
    Ok(match a {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            ScmpAction::KillThread
        }
        LinuxSeccompAction::ScmpActKillProcess => ScmpAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => ScmpAction::Trap,
        LinuxSeccompAction::ScmpActErrno => ScmpAction::Errno(ret as i32),
        LinuxSeccompAction::ScmpActTrace => {
            ScmpAction::Trace(u16::try_from(ret).map_err(|_| FilterError::TraceErrno(ret))?)
        }
        LinuxSeccompAction::ScmpActAllow => ScmpAction::Allow,
        LinuxSeccompAction::ScmpActLog => ScmpAction::Log,
        LinuxSeccompAction::ScmpActNotify => ScmpAction::Notify,
    })
}

fn compare(
    op: LinuxSeccompOperator,
    index: u32,
    value: u64,
    value_two: Option<u64>,
) -> ScmpArgCompare {
    let op = match op {
        LinuxSeccompOperator::ScmpCmpNe => ScmpCompareOp::NotEqual,
        LinuxSeccompOperator::ScmpCmpLt => ScmpCompareOp::Less,
        LinuxSeccompOperator::ScmpCmpLe => ScmpCompareOp::LessOrEqual,
        LinuxSeccompOperator::ScmpCmpEq => ScmpCompareOp::Equal,
        LinuxSeccompOperator::ScmpCmpGe => ScmpCompareOp::GreaterEqual,
        LinuxSeccompOperator::ScmpCmpGt => ScmpCompareOp::Greater,
        // `(arg & value) == valueTwo`, as runc reads the OCI spec (Docker's clone rule masks the namespace
        // flags with `value` and expects 0).
        LinuxSeccompOperator::ScmpCmpMaskedEq => ScmpCompareOp::MaskedEqual(value),
    };
    match op {
        ScmpCompareOp::MaskedEqual(_) => ScmpArgCompare::new(index, op, value_two.unwrap_or(0)),
        _ => ScmpArgCompare::new(index, op, value),
    }
}

/// Whether the section uses the user-space notifier anywhere (see [`precompile`]).
fn uses_notify(s: &LinuxSeccomp) -> bool {
    s.default_action() == LinuxSeccompAction::ScmpActNotify
        || s.syscalls()
            .iter()
            .flatten()
            .any(|r| r.action() == LinuxSeccompAction::ScmpActNotify)
}

/// What the thread that compiles a filter ahead calls once the filter is on it: to wait and be woken
/// (`futex`, `sched_yield`), to install the filter on the process (`seccomp`) and to end (`madvise`,
/// `munmap` and `rt_sigprocmask` in the C library's thread exit, then `exit`).
const THREAD_AHEAD_CALLS: [&str; 7] = [
    "futex",
    "sched_yield",
    "seccomp",
    "madvise",
    "munmap",
    "rt_sigprocmask",
    "exit",
];

/// Whether a section may be compiled ahead on a thread of the init's (see [`Compiled::compile_ahead`]):
/// it never kills, traps, traces or notifies (a syscall it does not allow fails, at worst), it allows
/// what that thread calls whatever the arguments ([`THREAD_AHEAD_CALLS`]), and it asks for no
/// `seccomp(2)` flag that thread could not pass on (a notification listener, `TSYNC` of its own).
fn compiles_ahead(s: &LinuxSeccomp) -> bool {
    use LinuxSeccompAction::{ScmpActAllow, ScmpActErrno, ScmpActLog};
    let allows = |a: LinuxSeccompAction| matches!(a, ScmpActAllow | ScmpActLog);
    let rules = || s.syscalls().iter().flatten();
    let mild = matches!(s.default_action(), ScmpActAllow | ScmpActErrno | ScmpActLog)
        && rules().all(|r| matches!(r.action(), ScmpActAllow | ScmpActErrno | ScmpActLog));
    let allowed = |name: &str| {
        let mut named = rules()
            .filter(|r| r.names().iter().any(|n| n == name))
            .peekable();
        match named.peek() {
            None => allows(s.default_action()),
            Some(_) => named.all(|r| allows(r.action()) && r.args().iter().flatten().count() == 0),
        }
    };
    mild && flags(s)
        & (berth_sys::seccomp::FLAG_TSYNC | berth_sys::seccomp::FLAG_WAIT_KILLABLE_RECV)
        == 0
        && THREAD_AHEAD_CALLS.iter().all(|c| allowed(c))
}

/// The `seccomp(2)` flags of a section.
fn flags(s: &LinuxSeccomp) -> u32 {
    s.flags()
        .iter()
        .flatten()
        .map(|f| match f {
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => berth_sys::seccomp::FLAG_TSYNC,
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => berth_sys::seccomp::FLAG_LOG,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => {
                berth_sys::seccomp::FLAG_SPEC_ALLOW
            }
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => {
                berth_sys::seccomp::FLAG_WAIT_KILLABLE_RECV
            }
        })
        .fold(0, |a, b| a | b)
}

/// Compiles a section to classic BPF with libseccomp, with the rule semantics runc and libcontainer use:
/// a rule whose action equals the default is redundant and skipped; names the kernel's tables do not know
/// are skipped; several conditions on one argument become one rule per condition.
pub fn compile(s: &LinuxSeccomp) -> Result<Vec<u8>, FilterError> {
    let default = action(s.default_action(), s.default_errno_ret())?;
    let mut ctx = ScmpFilterContext::new(default).map_err(lib_err("new filter"))?;
    // A binary tree by syscall number instead of libseccomp's default chain of comparisons. The kernel runs
    // the whole filter once per syscall number and ABI when it is attached (to cache what is always
    // allowed), so the chain made every container start and exec pay ~1.5 ms in `seccomp(2)` for Docker's
    // profile; the tree also answers each syscall in O(log n). Needs libseccomp 2.5 (Debian 12 has 2.5.4);
    // older ones keep the chain.
    if let Err(e) = ctx.set_ctl_optimize(2) {
        tracing::debug!(error = %e, "seccomp: binary-tree optimization unavailable");
    }
    for a in s.architectures().iter().flatten() {
        ctx.add_arch(arch(*a))
            .map_err(lib_err(format!("architecture {a:?}")))?;
    }
    for rule in s.syscalls().iter().flatten() {
        let act = action(rule.action(), rule.errno_ret())?;
        if act == default {
            continue;
        }
        for name in rule.names() {
            let Ok(nr) = ScmpSyscall::from_name(name) else {
                tracing::debug!(name, "seccomp: syscall unknown to libseccomp, skipped");
                continue;
            };
            let conds: Vec<ScmpArgCompare> = rule
                .args()
                .iter()
                .flatten()
                .map(|a| compare(a.op(), a.index() as u32, a.value(), a.value_two()))
                .collect();
            let mut indices: Vec<usize> = rule.args().iter().flatten().map(|a| a.index()).collect();
            indices.sort_unstable();
            let repeated = indices.windows(2).any(|w| w[0] == w[1]);
            let what = || format!("rule for {name}");
            if conds.is_empty() {
                ctx.add_rule(act, nr).map_err(lib_err(what()))?;
            } else if repeated {
                for c in &conds {
                    ctx.add_rule_conditional(act, nr, std::slice::from_ref(c))
                        .map_err(lib_err(what()))?;
                }
            } else {
                ctx.add_rule_conditional(act, nr, &conds)
                    .map_err(lib_err(what()))?;
            }
        }
    }
    // libseccomp exports to a file descriptor; a memfd keeps it off the disk.
    let fd = rustix::fs::memfd_create("berth-seccomp", rustix::fs::MemfdFlags::CLOEXEC)
        .map_err(std::io::Error::from)?;
    let mut file = std::fs::File::from(fd);
    ctx.export_bpf(&mut file).map_err(lib_err("export"))?;
    use std::io::{Read, Seek};
    file.seek(std::io::SeekFrom::Start(0))?;
    let mut program = Vec::new();
    file.read_to_end(&mut program)?;
    berth_sys::seccomp::Program::from_bytes(&program)?;
    Ok(program)
}

/// Programs compiled by this process, with the sections they were compiled from: a section is found by
/// comparison (cheaper than any encoding of it a key would need; sections that differ mostly do early).
static CACHE: Mutex<Vec<(LinuxSeccomp, Arc<Program>)>> = Mutex::new(Vec::new());

/// [`compile`], once per distinct section for the life of the process.
pub fn compile_cached(s: &LinuxSeccomp) -> Result<Arc<Program>, FilterError> {
    let known = |c: &[(LinuxSeccomp, Arc<Program>)]| {
        c.iter().find(|(seen, _)| seen == s).map(|(_, p)| p.clone())
    };
    if let Some(p) = known(&CACHE.lock().unwrap_or_else(|p| p.into_inner())) {
        return Ok(p);
    }
    let bytes = compile(s)?;
    let digest = format!("{:x}", Sha256::digest(&bytes));
    let program = Arc::new(Program { bytes, digest });
    let mut c = CACHE.lock().unwrap_or_else(|p| p.into_inner());
    // Another thread may have compiled the same section meanwhile: everyone shares the first.
    if let Some(p) = known(&c) {
        return Ok(p);
    }
    // A handful of profiles in practice; a bound keeps a pathological client from growing it forever.
    if c.len() >= 64 {
        c.clear();
    }
    c.push((s.clone(), program.clone()));
    Ok(program)
}

/// Compiles the spec's seccomp section (see the module docs); `None` when it has none.
pub fn precompile(spec: &Spec) -> Result<Option<Compiled>, FilterError> {
    let Some(section) = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) else {
        return Ok(None);
    };
    if uses_notify(section) {
        return Err(FilterError::Notify);
    }
    Ok(Some(Compiled {
        flags: flags(section),
        program: compile_cached(section)?,
        compile_ahead: compiles_ahead(section),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::defaults::DEFAULT_CAPABILITIES;
    use crate::spec::seccomp::{convert_profile, default_profile};

    fn docker_default() -> LinuxSeccomp {
        convert_profile(
            default_profile().unwrap(),
            &DEFAULT_CAPABILITIES,
            "amd64",
            None,
        )
        .unwrap()
        .unwrap()
    }

    #[test]
    fn docker_default_profile_compiles_for_three_abis_and_is_cached() {
        let s = docker_default();
        let p = compile_cached(&s).unwrap();
        let n = berth_sys::seccomp::Program::from_bytes(&p.bytes)
            .unwrap()
            .len();
        // x86_64, x86 and x32 each get their own branch: far longer than one ABI's.
        assert!(n > 500, "{n} instructions");
        assert!(Arc::ptr_eq(&p, &compile_cached(&s).unwrap()));
        assert_eq!(flags(&s), 0);
    }

    #[test]
    fn the_spec_section_is_compiled_and_notify_profiles_are_refused() {
        let mut spec = Spec::default();
        assert!(precompile(&spec).unwrap().is_none());
        let mut linux = spec.linux().clone().unwrap_or_default();
        linux.set_seccomp(Some(docker_default()));
        spec.set_linux(Some(linux.clone()));
        let c = precompile(&spec).unwrap().expect("compiled");
        assert!(!c.program.bytes.is_empty());
        assert_eq!(
            c.program.digest,
            format!("{:x}", Sha256::digest(&c.program.bytes))
        );
        assert!(
            spec.linux().as_ref().unwrap().seccomp().is_some(),
            "the spec keeps its section"
        );

        let mut s = docker_default();
        s.set_default_action(LinuxSeccompAction::ScmpActNotify);
        linux.set_seccomp(Some(s));
        spec.set_linux(Some(linux));
        assert!(matches!(precompile(&spec), Err(FilterError::Notify)));
    }

    #[test]
    fn only_a_mild_profile_that_lets_the_thread_work_is_compiled_ahead() {
        use oci_spec::runtime::{LinuxSeccompArgBuilder, LinuxSyscall};
        let docker = docker_default();
        assert!(compiles_ahead(&docker));
        // A profile that kills, anywhere.
        let mut s = docker.clone();
        s.set_default_action(LinuxSeccompAction::ScmpActKillProcess);
        assert!(!compiles_ahead(&s));
        let mut s = docker.clone();
        let mut rules = s.syscalls().clone().unwrap();
        let mut trap = LinuxSyscall::default();
        trap.set_names(vec!["ptrace".into()]);
        trap.set_action(LinuxSeccompAction::ScmpActTrap);
        rules.push(trap);
        s.set_syscalls(Some(rules));
        assert!(!compiles_ahead(&s));
        // One that does not allow a call of the thread's (here `futex`), or only for some arguments.
        let without = |name: &str| {
            let mut s = docker.clone();
            let rules = s.syscalls().clone().unwrap().into_iter().map(|mut r| {
                r.set_names(r.names().iter().filter(|n| *n != name).cloned().collect());
                r
            });
            s.set_syscalls(Some(rules.collect()));
            s
        };
        assert!(!compiles_ahead(&without("futex")));
        assert!(!compiles_ahead(&without("exit")));
        assert!(compiles_ahead(&without("ptrace")));
        let mut s = without("futex");
        let mut rules = s.syscalls().clone().unwrap();
        let mut some = LinuxSyscall::default();
        some.set_names(vec!["futex".into()]);
        some.set_action(LinuxSeccompAction::ScmpActAllow);
        let arg = LinuxSeccompArgBuilder::default()
            .index(1usize)
            .value(0u64)
            .op(LinuxSeccompOperator::ScmpCmpEq)
            .build()
            .unwrap();
        some.set_args(Some(vec![arg]));
        rules.push(some);
        s.set_syscalls(Some(rules));
        assert!(!compiles_ahead(&s));
        // One whose default allows: the thread's calls are allowed unnamed.
        let mut s = without("futex");
        s.set_default_action(LinuxSeccompAction::ScmpActAllow);
        assert!(compiles_ahead(&s));
        // Flags the thread could not pass on.
        let mut s = docker.clone();
        s.set_flags(Some(vec![LinuxSeccompFilterFlag::SeccompFilterFlagTsync]));
        assert!(!compiles_ahead(&s));
    }

    #[test]
    fn masked_equal_takes_the_mask_from_value_and_the_result_from_value_two() {
        // Both orders produce a program; the test pins which datum is the mask by comparing with a
        // hand-made libseccomp rule.
        let c = compare(LinuxSeccompOperator::ScmpCmpMaskedEq, 0, 0xff, Some(0x10));
        let want = ScmpArgCompare::new(0, ScmpCompareOp::MaskedEqual(0xff), 0x10);
        assert_eq!(format!("{c:?}"), format!("{want:?}"));
    }
}
