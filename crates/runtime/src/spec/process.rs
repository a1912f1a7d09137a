//! The `process` section: arguments, environment, user, capabilities and rlimits.

use oci_spec::runtime::{
    Capabilities, Capability, LinuxCapabilities, PosixRlimit, PosixRlimitBuilder, PosixRlimitType,
    Process, User,
};
use std::collections::HashMap;
use std::path::PathBuf;

use super::defaults::{DEFAULT_PATH_ENV, INIT_PATH};
use super::input::{SpecInput, Ulimit};
use super::SpecError;

/// The rlimit a `--ulimit` name (`nofile`, case-insensitive) sets.
pub fn rlimit_type(name: &str) -> Result<PosixRlimitType, SpecError> {
    let typ = match name.to_ascii_lowercase().as_str() {
        "as" => PosixRlimitType::RlimitAs,
        "core" => PosixRlimitType::RlimitCore,
        "cpu" => PosixRlimitType::RlimitCpu,
        "data" => PosixRlimitType::RlimitData,
        "fsize" => PosixRlimitType::RlimitFsize,
        "locks" => PosixRlimitType::RlimitLocks,
        "memlock" => PosixRlimitType::RlimitMemlock,
        "msgqueue" => PosixRlimitType::RlimitMsgqueue,
        "nice" => PosixRlimitType::RlimitNice,
        "nofile" => PosixRlimitType::RlimitNofile,
        "nproc" => PosixRlimitType::RlimitNproc,
        "rss" => PosixRlimitType::RlimitRss,
        "rtprio" => PosixRlimitType::RlimitRtprio,
        "rttime" => PosixRlimitType::RlimitRttime,
        "sigpending" => PosixRlimitType::RlimitSigpending,
        "stack" => PosixRlimitType::RlimitStack,
        _ => {
            return Err(SpecError::UnknownUlimit {
                name: name.to_string(),
            })
        }
    };
    Ok(typ)
}

/// A limit as the kernel takes it: negative (Docker's "unlimited", -1) is `RLIM_INFINITY`.
fn rlimit_value(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(u64::MAX)
}

/// The rlimits of `--ulimit`s, in order; a repeated name keeps its first place and its last value.
pub fn rlimits(ulimits: &[Ulimit]) -> Result<Vec<PosixRlimit>, SpecError> {
    let mut out: Vec<PosixRlimit> = Vec::new();
    for ulimit in ulimits {
        let typ = rlimit_type(&ulimit.name)?;
        let (soft, hard) = (rlimit_value(ulimit.soft), rlimit_value(ulimit.hard));
        if soft > hard {
            return Err(SpecError::UlimitSoftAboveHard {
                name: ulimit.name.clone(),
                soft: ulimit.soft,
                hard: ulimit.hard,
            });
        }
        let rlimit = PosixRlimitBuilder::default()
            .typ(typ)
            .soft(soft)
            .hard(hard)
            .build()
            .map_err(|source| SpecError::Build {
                what: "rlimit",
                source,
            })?;
        match out.iter_mut().find(|r| r.typ() == typ) {
            Some(existing) => *existing = rlimit,
            None => out.push(rlimit),
        }
    }
    Ok(out)
}

/// Docker's environment: `PATH`, `HOSTNAME` and, with a tty, `TERM=xterm`, then the container's own
/// variables, which replace those of the same name or are appended (`KEY` without `=` removes one).
pub fn environment(user_env: &[String], hostname: &str, tty: bool) -> Vec<String> {
    let mut env: Vec<Option<String>> = vec![
        Some(format!("PATH={DEFAULT_PATH_ENV}")),
        Some(format!("HOSTNAME={hostname}")),
    ];
    if tty {
        env.push(Some("TERM=xterm".to_string()));
    }
    let index: HashMap<String, usize> = env
        .iter()
        .enumerate()
        .filter_map(|(i, e)| {
            let e = e.as_deref()?;
            Some((e.split_once('=').map_or(e, |(k, _)| k).to_string(), i))
        })
        .collect();
    for entry in user_env {
        match entry.split_once('=') {
            None => {
                if let Some(&i) = index.get(entry.as_str()) {
                    env[i] = None;
                }
            }
            Some((key, _)) => match index.get(key) {
                Some(&i) => env[i] = Some(entry.clone()),
                None => env.push(Some(entry.clone())),
            },
        }
    }
    env.into_iter().flatten().collect()
}

/// The process user: uid, gid and the supplementary groups with the primary group first.
pub fn user(uid: u32, gid: u32, additional_gids: &[u32]) -> User {
    let mut gids = Vec::with_capacity(additional_gids.len() + 1);
    if !additional_gids.contains(&gid) {
        gids.push(gid);
    }
    gids.extend_from_slice(additional_gids);
    let mut user = User::default();
    user.set_uid(uid);
    user.set_gid(gid);
    user.set_additional_gids(Some(gids));
    user
}

/// Bounding = effective = permitted = `caps`; inheritable and ambient empty (Docker 24+).
pub fn capabilities(caps: &[Capability]) -> LinuxCapabilities {
    let set: Capabilities = caps.iter().copied().collect();
    let mut out = LinuxCapabilities::default();
    out.set_bounding(Some(set.clone()));
    out.set_effective(Some(set.clone()));
    out.set_permitted(Some(set));
    out.set_inheritable(Some(Capabilities::new()));
    out.set_ambient(Some(Capabilities::new()));
    out
}

/// The whole `process` section. `with_init` prepends `/sbin/docker-init --` to the arguments.
pub fn process(
    input: &SpecInput,
    caps: &[Capability],
    with_init: bool,
) -> Result<Process, SpecError> {
    if input.args.is_empty() {
        return Err(SpecError::EmptyArgs);
    }
    let cwd = if input.cwd.is_empty() {
        "/"
    } else {
        input.cwd.as_str()
    };
    if !cwd.starts_with('/') {
        return Err(SpecError::RelativeCwd {
            cwd: cwd.to_string(),
        });
    }
    let mut args = Vec::with_capacity(input.args.len() + 2);
    if with_init {
        args.push(INIT_PATH.to_string());
        args.push("--".to_string());
    }
    args.extend(input.args.iter().cloned());

    let mut p = Process::default();
    p.set_terminal(Some(input.tty));
    p.set_console_size(None);
    p.set_user(user(input.uid, input.gid, &input.additional_gids));
    p.set_args(Some(args));
    p.set_command_line(None);
    p.set_env(Some(environment(&input.env, &input.hostname, input.tty)));
    p.set_cwd(PathBuf::from(cwd));
    p.set_capabilities(Some(capabilities(caps)));
    let limits = rlimits(&input.ulimits)?;
    p.set_rlimits((!limits.is_empty()).then_some(limits));
    // Absent rather than `false` when not asked for: youki's init loads seccomp before dropping capabilities
    // only when the field is absent, and an explicit `false` makes it load the filter after CAP_SYS_ADMIN is
    // gone, which the kernel refuses. runc treats both the same.
    p.set_no_new_privileges(input.no_new_privileges.then_some(true));
    p.set_apparmor_profile(None);
    p.set_oom_score_adj(Some(input.oom_score_adj));
    p.set_selinux_label(None);
    p.set_io_priority(None);
    p.set_scheduler(None);
    p.set_exec_cpu_affinity(None);
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_string()).collect()
    }

    fn ulimit(name: &str, soft: i64, hard: i64) -> Ulimit {
        Ulimit {
            name: name.to_string(),
            soft,
            hard,
        }
    }

    #[test]
    fn ulimit_names_map_to_rlimits() {
        let cases = [
            ("nofile", PosixRlimitType::RlimitNofile),
            ("NPROC", PosixRlimitType::RlimitNproc),
            ("core", PosixRlimitType::RlimitCore),
            ("memlock", PosixRlimitType::RlimitMemlock),
            ("rttime", PosixRlimitType::RlimitRttime),
            ("as", PosixRlimitType::RlimitAs),
        ];
        for (name, want) in cases {
            assert_eq!(rlimit_type(name).ok(), Some(want), "{name}");
        }
        let json = serde_json::to_string(&PosixRlimitType::RlimitNofile).expect("serialises");
        assert_eq!(json, "\"RLIMIT_NOFILE\"");
    }

    #[test]
    fn unknown_ulimit_is_an_error() {
        for name in ["nofiles", "RLIMIT_NOFILE", ""] {
            assert!(
                matches!(rlimit_type(name), Err(SpecError::UnknownUlimit { .. })),
                "{name}"
            );
        }
        assert!(matches!(
            rlimits(&[ulimit("bogus", 1, 1)]),
            Err(SpecError::UnknownUlimit { name }) if name == "bogus"
        ));
    }

    #[test]
    fn rlimit_values_and_duplicates() {
        let out = rlimits(&[
            ulimit("nofile", 1024, 4096),
            ulimit("core", -1, -1),
            ulimit("nofile", 2048, 8192),
        ])
        .expect("valid");
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].typ(), PosixRlimitType::RlimitNofile);
        assert_eq!((out[0].soft(), out[0].hard()), (2048, 8192));
        assert_eq!((out[1].soft(), out[1].hard()), (u64::MAX, u64::MAX));
        assert!(matches!(
            rlimits(&[ulimit("nofile", 10, 5)]),
            Err(SpecError::UlimitSoftAboveHard { .. })
        ));
        // unlimited soft above a finite hard limit is also wrong
        assert!(rlimits(&[ulimit("nofile", -1, 5)]).is_err());
    }

    #[test]
    fn environment_defaults_and_overrides() {
        assert_eq!(
            environment(&strings(&["A=1"]), "h1", false),
            strings(&[&format!("PATH={DEFAULT_PATH_ENV}"), "HOSTNAME=h1", "A=1"])
        );
        assert_eq!(
            environment(&strings(&["PATH=/bin", "HOSTNAME=x", "B=2"]), "h1", true),
            strings(&["PATH=/bin", "HOSTNAME=x", "TERM=xterm", "B=2"])
        );
        // a bare name removes a default; other bare names are ignored
        assert_eq!(
            environment(&strings(&["TERM", "NOPE", "C=a=b"]), "h", true),
            strings(&[&format!("PATH={DEFAULT_PATH_ENV}"), "HOSTNAME=h", "C=a=b"])
        );
    }

    #[test]
    fn user_puts_primary_group_first() {
        let u = user(1000, 100, &[27, 100]);
        assert_eq!(u.additional_gids().clone(), Some(vec![27, 100]));
        let u = user(1000, 100, &[27]);
        assert_eq!(u.additional_gids().clone(), Some(vec![100, 27]));
        let u = user(0, 0, &[]);
        assert_eq!(u.additional_gids().clone(), Some(vec![0]));
    }

    #[test]
    fn process_validates_args_and_cwd() {
        let input = SpecInput::default();
        assert!(matches!(
            process(&input, &[], false),
            Err(SpecError::EmptyArgs)
        ));
        let input = SpecInput {
            args: strings(&["sh"]),
            cwd: "tmp".to_string(),
            ..SpecInput::default()
        };
        assert!(matches!(
            process(&input, &[], false),
            Err(SpecError::RelativeCwd { .. })
        ));
        let input = SpecInput {
            args: strings(&["sh", "-c", "true"]),
            ..SpecInput::default()
        };
        let p = process(&input, &[], true).expect("valid");
        assert_eq!(
            p.args().clone(),
            Some(strings(&[INIT_PATH, "--", "sh", "-c", "true"]))
        );
        assert_eq!(p.cwd(), &PathBuf::from("/"));
        assert_eq!(p.rlimits(), &None);
    }
}
