//! Seccomp filters compiled once per profile instead of once per process.
//!
//! libcontainer compiles the spec's seccomp section with libseccomp inside every container's init and every
//! exec'd process. For Docker's default profile on x86_64 (which also covers the x86 and x32 ABIs) that costs
//! ~15 ms of CPU each time, a third of a container start. The daemon compiles it here instead, caches the
//! program by the section's content, and hands the shim the exported BPF; the shim's executor loads it right
//! before the container's process (or an exec'd one) runs its program.
//!
//! The contract with the kernel and libcontainer:
//! - [`take_from_spec`] removes the section from the spec the runtime sees, so libcontainer does not compile
//!   it again, and returns the program. Profiles with `SCMP_ACT_NOTIFY` (which need libcontainer's listener
//!   plumbing) are left in the spec.
//! - Without `no_new_privileges`, loading a filter needs CAP_SYS_ADMIN, which libcontainer has already
//!   dropped by the time the executor runs. So when the process would not hold it, CAP_SYS_ADMIN is added to
//!   the *effective and permitted* sets only (never bounding, inheritable or ambient); the executor loads the
//!   filter and then drops every capability the bounding set does not hold. An execve can only grant
//!   capabilities from the bounding set, so the program starts with exactly the capabilities Docker gives.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
use oci_spec::runtime::{
    Arch, Capability, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag,
    LinuxSeccompOperator, Spec,
};
use sha2::{Digest, Sha256};

/// A filter ready for the shim: the exported program and the `seccomp(2)` flags to load it with.
#[derive(Debug, Clone)]
pub struct Compiled {
    pub program: Arc<Vec<u8>>,
    pub flags: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum FilterError {
    #[error("seccomp: {what}: {reason}")]
    Libseccomp { what: String, reason: String },
    #[error("seccomp: errno {0} does not fit a TRACE action")]
    TraceErrno(u32),
    #[error("seccomp: writing the compiled filter: {0}")]
    Export(#[from] std::io::Error),
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

/// Whether the section uses the user-space notifier anywhere (left to libcontainer).
fn uses_notify(s: &LinuxSeccomp) -> bool {
    s.default_action() == LinuxSeccompAction::ScmpActNotify
        || s.syscalls()
            .iter()
            .flatten()
            .any(|r| r.action() == LinuxSeccompAction::ScmpActNotify)
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

/// Programs compiled by this process, by the sha256 of the section's JSON.
type Cache = Mutex<HashMap<[u8; 32], Arc<Vec<u8>>>>;

fn cache() -> &'static Cache {
    static CACHE: std::sync::OnceLock<Cache> = std::sync::OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// [`compile`], once per distinct section for the life of the process.
pub fn compile_cached(s: &LinuxSeccomp) -> Result<Arc<Vec<u8>>, FilterError> {
    let json = serde_json::to_vec(s).map_err(std::io::Error::other)?;
    let key: [u8; 32] = Sha256::digest(&json).into();
    if let Some(p) = cache().lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
        return Ok(p.clone());
    }
    let program = Arc::new(compile(s)?);
    let mut c = cache().lock().unwrap_or_else(|p| p.into_inner());
    // A handful of profiles in practice; a bound keeps a pathological client from growing it forever.
    if c.len() >= 64 {
        c.clear();
    }
    // Another thread may have compiled the same section meanwhile: everyone shares the first.
    Ok(c.entry(key).or_insert(program).clone())
}

/// Whether a spec with this section runs with a precompiled filter (and so lends CAP_SYS_ADMIN to the
/// processes that load it).
pub fn precompiles(section: Option<&LinuxSeccomp>) -> bool {
    section.is_some_and(|s| !uses_notify(s))
}

/// Lends CAP_SYS_ADMIN to a process's effective and permitted sets for loading the filter, unless it
/// runs with `no_new_privileges` (then loading needs no capability).
pub fn lend_capability(process: &mut oci_spec::runtime::Process) {
    if process.no_new_privileges() == Some(true) {
        return;
    }
    if let Some(mut caps) = process.capabilities().clone() {
        let mut effective = caps.effective().clone().unwrap_or_default();
        effective.insert(Capability::SysAdmin);
        caps.set_effective(Some(effective));
        let mut permitted = caps.permitted().clone().unwrap_or_default();
        permitted.insert(Capability::SysAdmin);
        caps.set_permitted(Some(permitted));
        process.set_capabilities(Some(caps));
    }
}

/// Takes the seccomp section out of `spec` and compiles it (see the module docs); `None` when the spec
/// has none or needs libcontainer's own handling (notify).
pub fn take_from_spec(spec: &mut Spec) -> Result<Option<Compiled>, FilterError> {
    let Some(section) = spec.linux().as_ref().and_then(|l| l.seccomp().clone()) else {
        return Ok(None);
    };
    if !precompiles(Some(&section)) {
        return Ok(None);
    }
    let program = compile_cached(&section)?;
    if let Some(linux) = spec.linux_mut() {
        linux.set_seccomp(None);
    }
    if let Some(process) = spec.process_mut() {
        lend_capability(process);
    }
    Ok(Some(Compiled {
        flags: flags(&section),
        program,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::defaults::DEFAULT_CAPABILITIES;
    use crate::spec::seccomp::{convert_profile, default_profile};

    fn docker_default() -> LinuxSeccomp {
        convert_profile(
            &default_profile().unwrap(),
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
        let n = berth_sys::seccomp::Program::from_bytes(&p).unwrap().len();
        // x86_64, x86 and x32 each get their own branch: far longer than one ABI's.
        assert!(n > 500, "{n} instructions");
        assert!(Arc::ptr_eq(&p, &compile_cached(&s).unwrap()));
        assert_eq!(flags(&s), 0);
    }

    #[test]
    fn the_section_leaves_the_spec_and_sys_admin_is_lent_only_to_effective_and_permitted() {
        let mut spec = Spec::default();
        let mut linux = spec.linux().clone().unwrap_or_default();
        linux.set_seccomp(Some(docker_default()));
        spec.set_linux(Some(linux));
        let mut process = spec.process().clone().unwrap();
        let mut caps = process.capabilities().clone().unwrap();
        let set: std::collections::HashSet<Capability> =
            DEFAULT_CAPABILITIES.iter().copied().collect();
        caps.set_bounding(Some(set.clone()));
        caps.set_effective(Some(set.clone()));
        caps.set_permitted(Some(set.clone()));
        caps.set_inheritable(None);
        caps.set_ambient(None);
        process.set_capabilities(Some(caps));
        process.set_no_new_privileges(None);
        spec.set_process(Some(process));

        let c = take_from_spec(&mut spec).unwrap().expect("compiled");
        assert!(!c.program.is_empty());
        assert!(spec.linux().as_ref().unwrap().seccomp().is_none());
        let caps = spec
            .process()
            .as_ref()
            .unwrap()
            .capabilities()
            .clone()
            .unwrap();
        assert!(caps
            .effective()
            .as_ref()
            .unwrap()
            .contains(&Capability::SysAdmin));
        assert!(caps
            .permitted()
            .as_ref()
            .unwrap()
            .contains(&Capability::SysAdmin));
        assert!(!caps
            .bounding()
            .as_ref()
            .unwrap()
            .contains(&Capability::SysAdmin));
        assert!(caps.inheritable().is_none() && caps.ambient().is_none());

        // With no_new_privileges nothing is lent; without a section nothing changes.
        let mut spec2 = Spec::default();
        let mut linux = spec2.linux().clone().unwrap_or_default();
        linux.set_seccomp(Some(docker_default()));
        spec2.set_linux(Some(linux));
        let mut process = spec2.process().clone().unwrap();
        process.set_no_new_privileges(Some(true));
        let before = process.capabilities().clone();
        spec2.set_process(Some(process));
        take_from_spec(&mut spec2).unwrap().expect("compiled");
        assert_eq!(spec2.process().as_ref().unwrap().capabilities(), &before);
        assert!(take_from_spec(&mut spec2).unwrap().is_none());
    }

    #[test]
    fn notify_profiles_stay_with_libcontainer() {
        let mut s = docker_default();
        s.set_default_action(LinuxSeccompAction::ScmpActNotify);
        let mut spec = Spec::default();
        let mut linux = spec.linux().clone().unwrap_or_default();
        linux.set_seccomp(Some(s));
        spec.set_linux(Some(linux));
        assert!(take_from_spec(&mut spec).unwrap().is_none());
        assert!(spec.linux().as_ref().unwrap().seccomp().is_some());
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
