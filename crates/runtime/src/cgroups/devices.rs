//! Device rules on cgroup v2: the spec's `linux.resources.devices` turned into an eBPF program of type
//! `BPF_PROG_TYPE_CGROUP_DEVICE`, which `berth_sys::bpf` loads and attaches to the container's cgroup.
//!
//! The rules mean on v2 exactly what they mean when written to v1's `devices.allow` and `devices.deny`:
//! [`Rules::apply`] follows the kernel's v1 device controller (an `a` rule resets the default and drops
//! the exceptions; a rule against the default adds or widens an exception, a rule with the default takes
//! access away from an exception of the same device), and the program checks an access the way the v1
//! controller does (default deny: one exception must cover the whole access; default allow: no exception
//! may cover any part of it). So a container gets the same devices on a v1 host and on a v2 one.

use std::path::Path;

use berth_sys::bpf::Insn;
use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

use crate::container::RuntimeError;

/// Gives the v2 cgroup `dir` the device rules `rules`: loads their program and attaches it, in addition
/// to whatever the cgroups above have attached. Nothing is attached when the rules allow everything.
pub fn attach(dir: &Path, rules: &[LinuxDeviceCgroup]) -> Result<(), RuntimeError> {
    let Some(program) = Rules::from_spec(rules).program() else {
        return Ok(());
    };
    let prog = berth_sys::bpf::load_device_filter(&program)?;
    berth_sys::bpf::attach_device_filter(dir, &prog)?;
    Ok(())
}

/// `BPF_DEVCG_DEV_BLOCK` and `BPF_DEVCG_DEV_CHAR`, the device type in the program's context.
const BLOCK: u32 = 1;
const CHAR: u32 = 2;
/// `BPF_DEVCG_ACC_MKNOD`, `_READ`, `_WRITE`.
const MKNOD: u32 = 1;
const READ: u32 = 2;
const WRITE: u32 = 4;
const ALL_ACCESS: u32 = MKNOD | READ | WRITE;

/// One exception: a block or character device (`None`: any major or minor), and the access it is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exception {
    pub typ: u32,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    pub access: u32,
}

/// The device controller's state after a list of rules: its default, and the exceptions to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    pub default_allow: bool,
    pub exceptions: Vec<Exception>,
}

impl Default for Rules {
    /// A new v1 cgroup under a root that allows everything.
    fn default() -> Self {
        Rules {
            default_allow: true,
            exceptions: Vec::new(),
        }
    }
}

impl Rules {
    /// The state after `rules`, applied in order from a cgroup that allows everything.
    pub fn from_spec(rules: &[LinuxDeviceCgroup]) -> Rules {
        let mut state = Rules::default();
        for r in rules {
            state.apply(r);
        }
        state
    }

    /// One rule, as the v1 controller takes a write to `devices.allow` (`allow`) or `devices.deny`.
    pub fn apply(&mut self, rule: &LinuxDeviceCgroup) {
        let typ = match rule.typ() {
            None | Some(LinuxDeviceType::A) => {
                self.default_allow = rule.allow();
                self.exceptions.clear();
                return;
            }
            Some(LinuxDeviceType::B) => BLOCK,
            Some(LinuxDeviceType::C) | Some(LinuxDeviceType::U) => CHAR,
            // FIFOs are not device nodes: no device controller checks them (v1 refuses the rule).
            Some(LinuxDeviceType::P) => return,
        };
        let number = |n: Option<i64>| n.filter(|n| *n >= 0).map(|n| n as u32);
        let access = rule
            .access()
            .as_deref()
            .unwrap_or("rwm")
            .chars()
            .map(|c| match c {
                'm' => MKNOD,
                'r' => READ,
                'w' => WRITE,
                _ => 0,
            })
            .fold(0, |a, b| a | b);
        let ex = Exception {
            typ,
            major: number(rule.major()),
            minor: number(rule.minor()),
            access,
        };
        let same = |e: &Exception| e.typ == ex.typ && e.major == ex.major && e.minor == ex.minor;
        if rule.allow() != self.default_allow {
            match self.exceptions.iter_mut().find(|e| same(e)) {
                Some(e) => e.access |= ex.access,
                None => self.exceptions.push(ex),
            }
        } else {
            for e in self.exceptions.iter_mut().filter(|e| same(e)) {
                e.access &= !ex.access;
            }
            self.exceptions.retain(|e| e.access != 0);
        }
    }

    /// Whether the v1 controller in this state lets a process have `access` to a device.
    pub fn allows(&self, typ: u32, major: u32, minor: u32, access: u32) -> bool {
        let device = |e: &&Exception| {
            e.typ == typ && e.major.is_none_or(|m| m == major) && e.minor.is_none_or(|m| m == minor)
        };
        if self.default_allow {
            !self
                .exceptions
                .iter()
                .filter(device)
                .any(|e| access & e.access != 0)
        } else {
            self.exceptions
                .iter()
                .filter(device)
                .any(|e| access & !e.access == 0)
        }
    }

    /// The program that checks an access as [`Rules::allows`] does; `None` when it would allow
    /// everything (a privileged container), which needs no program.
    pub fn program(&self) -> Option<Vec<Insn>> {
        if self.default_allow && self.exceptions.is_empty() {
            return None;
        }
        // The context (r1): u32 access_type (access << 16 | type), u32 major, u32 minor.
        let mut p = vec![
            ldx_w(2, 1, 0),
            alu32_k(AND, 2, 0xffff),
            ldx_w(3, 1, 0),
            alu32_k(RSH, 3, 16),
            ldx_w(4, 1, 4),
            ldx_w(5, 1, 8),
        ];
        let matched = i32::from(!self.default_allow);
        for e in &self.exceptions {
            // Each check (marked `true`) jumps past the block when the exception does not apply.
            let mut block: Vec<(Insn, bool)> = vec![(jmp_k(JNE, 2, e.typ as i32), true)];
            if self.default_allow {
                // Denied when the exception covers any part of the access.
                block.push((mov64_x(1, 3), false));
                block.push((alu32_k(AND, 1, e.access as i32), false));
                block.push((jmp_k(JEQ, 1, 0), true));
            } else if e.access != ALL_ACCESS {
                // Allowed only when the exception covers all of it.
                block.push((mov64_x(1, 3), false));
                block.push((alu32_k(AND, 1, (!e.access & ALL_ACCESS) as i32), false));
                block.push((jmp_k(JNE, 1, 0), true));
            }
            if let Some(m) = e.major {
                block.push((jmp_k(JNE, 4, m as i32), true));
            }
            if let Some(m) = e.minor {
                block.push((jmp_k(JNE, 5, m as i32), true));
            }
            block.push((mov64_k(0, matched), false));
            block.push((exit(), false));
            let len = block.len();
            for (i, (mut insn, skip)) in block.into_iter().enumerate() {
                if skip {
                    insn.off = (len - i - 1) as i16;
                }
                p.push(insn);
            }
        }
        p.push(mov64_k(0, 1 - matched));
        p.push(exit());
        Some(p)
    }
}

const AND: u8 = 0x50;
const RSH: u8 = 0x70;
const JEQ: u8 = 0x10;
const JNE: u8 = 0x50;

/// `dst = *(u32 *)(src + off)`
fn ldx_w(dst: u8, src: u8, off: i16) -> Insn {
    Insn {
        code: 0x61,
        regs: dst | (src << 4),
        off,
        imm: 0,
    }
}

/// `dst op= imm` on the low 32 bits (the high ones cleared).
fn alu32_k(op: u8, dst: u8, imm: i32) -> Insn {
    Insn {
        code: 0x04 | op,
        regs: dst,
        off: 0,
        imm,
    }
}

fn mov64_x(dst: u8, src: u8) -> Insn {
    Insn {
        code: 0xbf,
        regs: dst | (src << 4),
        off: 0,
        imm: 0,
    }
}

fn mov64_k(dst: u8, imm: i32) -> Insn {
    Insn {
        code: 0xb7,
        regs: dst,
        off: 0,
        imm,
    }
}

/// `if dst op imm goto +off` (the offset is filled in by the caller).
fn jmp_k(op: u8, dst: u8, imm: i32) -> Insn {
    Insn {
        code: 0x05 | op,
        regs: dst,
        off: 0,
        imm,
    }
}

fn exit() -> Insn {
    Insn {
        code: 0x95,
        regs: 0,
        off: 0,
        imm: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxDeviceCgroupBuilder;

    fn rule(
        allow: bool,
        typ: LinuxDeviceType,
        major: Option<i64>,
        minor: Option<i64>,
        access: &str,
    ) -> LinuxDeviceCgroup {
        let mut b = LinuxDeviceCgroupBuilder::default()
            .allow(allow)
            .typ(typ)
            .access(access);
        if let Some(m) = major {
            b = b.major(m);
        }
        if let Some(m) = minor {
            b = b.minor(m);
        }
        b.build().unwrap()
    }

    /// Docker's default rules, as the engine writes them into the spec.
    fn docker_default() -> Vec<LinuxDeviceCgroup> {
        use LinuxDeviceType::{A, B, C};
        vec![
            rule(false, A, None, None, "rwm"),
            rule(true, C, None, None, "m"),
            rule(true, B, None, None, "m"),
            rule(true, C, Some(1), Some(3), "rwm"),
            rule(true, C, Some(1), Some(8), "rwm"),
            rule(true, C, Some(1), Some(7), "rwm"),
            rule(true, C, Some(5), Some(0), "rwm"),
            rule(true, C, Some(1), Some(5), "rwm"),
            rule(true, C, Some(1), Some(9), "rwm"),
            rule(true, C, Some(5), Some(1), "rwm"),
            rule(true, C, Some(136), None, "rwm"),
            rule(true, C, Some(5), Some(2), "rwm"),
            rule(true, C, Some(10), Some(200), "rwm"),
        ]
    }

    /// Runs a device filter on one access, as the kernel would: the instructions the emitter uses only.
    fn run(p: &[Insn], typ: u32, major: u32, minor: u32, access: u32) -> bool {
        let ctx = [(access << 16) | typ, major, minor];
        let mut r = [0u64; 11];
        let mut pc = 0usize;
        for _ in 0..10_000 {
            let i = p[pc];
            let (dst, src) = ((i.regs & 0xf) as usize, (i.regs >> 4) as usize);
            pc += 1;
            match i.code {
                0x61 => {
                    assert_eq!(src, 1, "only the context is read");
                    r[dst] = u64::from(ctx[i.off as usize / 4]);
                }
                0x54 => r[dst] = (r[dst] as u32 & i.imm as u32) as u64,
                0x74 => r[dst] = ((r[dst] as u32) >> i.imm) as u64,
                0xbf => r[dst] = r[src],
                0xb7 => r[dst] = i.imm as i64 as u64,
                0x55 | 0x15 => {
                    let eq = r[dst] == i.imm as i64 as u64;
                    if eq == (i.code == 0x15) {
                        pc += i.off as usize;
                    }
                }
                0x95 => return r[0] == 1,
                c => panic!("unexpected opcode {c:#x}"),
            }
        }
        panic!("the program did not end")
    }

    fn every_access(rules: &Rules) {
        let p = rules.program().expect("a program");
        for typ in [BLOCK, CHAR] {
            for major in [0, 1, 5, 8, 10, 136, 4095] {
                for minor in [0, 1, 2, 3, 5, 7, 8, 9, 200, 1000] {
                    for access in 1..=ALL_ACCESS {
                        assert_eq!(
                            run(&p, typ, major, minor, access),
                            rules.allows(typ, major, minor, access),
                            "type {typ} {major}:{minor} access {access} under {rules:?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn docker_defaults_allow_the_standard_nodes_and_mknod_only_elsewhere() {
        let rules = Rules::from_spec(&docker_default());
        assert!(!rules.default_allow);
        assert!(rules.allows(CHAR, 1, 3, READ | WRITE), "/dev/null");
        assert!(rules.allows(CHAR, 136, 4, READ | WRITE), "a pty");
        assert!(rules.allows(CHAR, 10, 200, READ | WRITE), "/dev/net/tun");
        assert!(
            rules.allows(CHAR, 4, 1, MKNOD),
            "mknod of any character device"
        );
        assert!(
            rules.allows(BLOCK, 8, 0, MKNOD),
            "mknod of any block device"
        );
        assert!(
            !rules.allows(BLOCK, 8, 0, READ),
            "the host's disk cannot be read"
        );
        assert!(!rules.allows(BLOCK, 8, 0, MKNOD | READ));
        assert!(!rules.allows(CHAR, 1, 1, READ), "/dev/mem cannot be read");
        assert!(
            !rules.allows(CHAR, 4, 1, WRITE),
            "a host tty cannot be written"
        );
        every_access(&rules);
    }

    #[test]
    fn rules_against_the_default_merge_and_rules_with_it_take_access_away() {
        use LinuxDeviceType::{A, B, C};
        let rules = Rules::from_spec(&[
            rule(false, A, None, None, "rwm"),
            rule(true, C, Some(1), Some(3), "r"),
            rule(true, C, Some(1), Some(3), "w"),
            rule(true, B, Some(8), None, "rwm"),
            rule(false, B, Some(8), None, "w"),
            rule(false, C, Some(1), Some(5), "rwm"),
        ]);
        assert_eq!(
            rules.exceptions,
            vec![
                Exception {
                    typ: CHAR,
                    major: Some(1),
                    minor: Some(3),
                    access: READ | WRITE
                },
                Exception {
                    typ: BLOCK,
                    major: Some(8),
                    minor: None,
                    access: READ | MKNOD
                },
            ]
        );
        assert!(
            rules.allows(CHAR, 1, 3, READ | WRITE),
            "merged into one exception"
        );
        assert!(!rules.allows(CHAR, 1, 3, MKNOD));
        assert!(rules.allows(BLOCK, 8, 16, READ));
        assert!(!rules.allows(BLOCK, 8, 16, WRITE));
        every_access(&rules);
    }

    #[test]
    fn a_default_allow_list_denies_any_part_of_an_exception() {
        use LinuxDeviceType::{A, C};
        let rules = Rules::from_spec(&[
            rule(true, A, None, None, "rwm"),
            rule(false, C, Some(1), Some(1), "w"),
            rule(false, C, Some(4), None, "rwm"),
        ]);
        assert!(rules.default_allow);
        assert!(rules.allows(CHAR, 1, 1, READ));
        assert!(
            !rules.allows(CHAR, 1, 1, READ | WRITE),
            "partly denied is denied"
        );
        assert!(!rules.allows(CHAR, 4, 7, MKNOD));
        assert!(
            rules.allows(BLOCK, 4, 7, READ),
            "the type is part of the device"
        );
        every_access(&rules);
    }

    #[test]
    fn privileged_needs_no_program_and_an_all_rule_drops_earlier_exceptions() {
        use LinuxDeviceType::{A, C};
        let mut privileged = docker_default();
        privileged.push(rule(true, A, None, None, "rwm"));
        assert_eq!(Rules::from_spec(&privileged).program(), None);
        let reset = Rules::from_spec(&[
            rule(true, C, Some(1), Some(3), "rwm"),
            rule(false, A, None, None, "rwm"),
        ]);
        assert!(reset.exceptions.is_empty());
        assert!(!reset.allows(CHAR, 1, 3, READ));
        assert_eq!(
            reset.program().unwrap(),
            vec![
                ldx_w(2, 1, 0),
                alu32_k(AND, 2, 0xffff),
                ldx_w(3, 1, 0),
                alu32_k(RSH, 3, 16),
                ldx_w(4, 1, 4),
                ldx_w(5, 1, 8),
                mov64_k(0, 0),
                exit()
            ]
        );
    }
}
