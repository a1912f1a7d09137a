//! Resource usage of a container, read from its cgroup — cgroup v1 (one hierarchy per controller) or v2 (one
//! unified tree), whichever the host has — in the shape of Docker's `/containers/{id}/stats`. Readers take the
//! cgroup root as a parameter so tests run them on fixture trees.

use std::path::{Path, PathBuf};

/// One sample.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sample {
    /// Total CPU time of the container, nanoseconds.
    pub cpu_total_ns: u64,
    pub cpu_user_ns: u64,
    pub cpu_kernel_ns: u64,
    /// The whole machine's CPU time (Docker's `system_cpu_usage`), nanoseconds.
    pub system_cpu_ns: u64,
    pub online_cpus: u64,
    pub memory_usage: u64,
    /// The limit, or the machine's memory when unlimited.
    pub memory_limit: u64,
    /// Page cache that Docker subtracts from usage (`total_inactive_file` on v1, `inactive_file` on v2).
    pub memory_inactive_file: u64,
    pub pids: u64,
    pub pids_limit: Option<u64>,
    pub blkio_read: u64,
    pub blkio_write: u64,
}

/// Where a container's cgroup lives.
#[derive(Debug, Clone)]
pub struct CgroupLocation {
    pub root: PathBuf,
    /// Relative path, e.g. `berth/<id>`.
    pub rel: String,
    pub v2: bool,
}

impl CgroupLocation {
    pub fn new(root: &Path, parent: &str, id: &str) -> CgroupLocation {
        let rel = format!("{}/{id}", parent.trim_matches('/'));
        CgroupLocation {
            root: root.to_path_buf(),
            rel,
            v2: root.join("cgroup.controllers").exists(),
        }
    }

    fn v1(&self, controller: &str, file: &str) -> PathBuf {
        self.root.join(controller).join(&self.rel).join(file)
    }

    fn v2(&self, file: &str) -> PathBuf {
        self.root.join(&self.rel).join(file)
    }

    /// The pids in the container's cgroup.
    pub fn pids(&self) -> Vec<i32> {
        let candidates = if self.v2 {
            vec![self.v2("cgroup.procs")]
        } else {
            vec![
                self.v1("pids", "cgroup.procs"),
                self.v1("memory", "cgroup.procs"),
                self.v1("cpu", "cgroup.procs"),
            ]
        };
        for c in candidates {
            if let Ok(s) = std::fs::read_to_string(&c) {
                return s.lines().filter_map(|l| l.trim().parse().ok()).collect();
            }
        }
        Vec::new()
    }

    /// Read one sample; `proc_root` is normally `/proc` (for `/proc/stat` and `/proc/meminfo`).
    pub fn sample(&self, proc_root: &Path) -> Sample {
        let mut s = Sample {
            system_cpu_ns: system_cpu_ns(proc_root),
            online_cpus: online_cpus(proc_root),
            ..Sample::default()
        };
        let host_mem = meminfo_total(proc_root);
        if self.v2 {
            let cpu_stat = read(&self.v2("cpu.stat"));
            let cpu = keyed(&cpu_stat);
            s.cpu_total_ns = cpu("usage_usec") * 1000;
            s.cpu_user_ns = cpu("user_usec") * 1000;
            s.cpu_kernel_ns = cpu("system_usec") * 1000;
            s.memory_usage = num(&read(&self.v2("memory.current")));
            s.memory_limit = limit(&read(&self.v2("memory.max"))).unwrap_or(host_mem);
            s.memory_inactive_file = keyed(&read(&self.v2("memory.stat")))("inactive_file");
            s.pids = num(&read(&self.v2("pids.current")));
            s.pids_limit = limit(&read(&self.v2("pids.max")));
            for line in read(&self.v2("io.stat")).lines() {
                for kv in line.split_whitespace().skip(1) {
                    match kv.split_once('=') {
                        Some(("rbytes", v)) => s.blkio_read += v.parse::<u64>().unwrap_or(0),
                        Some(("wbytes", v)) => s.blkio_write += v.parse::<u64>().unwrap_or(0),
                        _ => {}
                    }
                }
            }
        } else {
            s.cpu_total_ns = num(&read(&self.v1("cpuacct", "cpuacct.usage")));
            let acct_stat = read(&self.v1("cpuacct", "cpuacct.stat"));
            let acct = keyed(&acct_stat);
            let tick = 1_000_000_000 / 100; // USER_HZ
            s.cpu_user_ns = acct("user") * tick;
            s.cpu_kernel_ns = acct("system") * tick;
            s.memory_usage = num(&read(&self.v1("memory", "memory.usage_in_bytes")));
            // v1 reports an enormous number for "no limit".
            s.memory_limit = limit(&read(&self.v1("memory", "memory.limit_in_bytes")))
                .filter(|l| *l < host_mem)
                .unwrap_or(host_mem);
            s.memory_inactive_file =
                keyed(&read(&self.v1("memory", "memory.stat")))("total_inactive_file");
            s.pids = num(&read(&self.v1("pids", "pids.current")));
            s.pids_limit = limit(&read(&self.v1("pids", "pids.max")));
            for line in read(&self.v1("blkio", "blkio.throttle.io_service_bytes")).lines() {
                let f: Vec<&str> = line.split_whitespace().collect();
                if let [_, op, v] = f.as_slice() {
                    match *op {
                        "Read" => s.blkio_read += v.parse::<u64>().unwrap_or(0),
                        "Write" => s.blkio_write += v.parse::<u64>().unwrap_or(0),
                        _ => {}
                    }
                }
            }
        }
        s
    }
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

fn num(s: &str) -> u64 {
    s.trim().parse().unwrap_or(0)
}

/// A limit file: a number, or `max` (none).
fn limit(s: &str) -> Option<u64> {
    match s.trim() {
        "" | "max" => None,
        v => v.parse().ok(),
    }
}

/// `key value` lines as a lookup (missing keys are 0).
fn keyed(s: &str) -> impl Fn(&str) -> u64 + '_ {
    move |k: &str| {
        s.lines()
            .find_map(|l| {
                let mut it = l.split_whitespace();
                (it.next() == Some(k)).then(|| it.next().and_then(|v| v.parse().ok()).unwrap_or(0))
            })
            .unwrap_or(0)
    }
}

/// The machine's CPU time from the first line of `/proc/stat`, in nanoseconds (Docker's definition).
pub fn system_cpu_ns(proc_root: &Path) -> u64 {
    let stat = read(&proc_root.join("stat"));
    let ticks: u64 = stat
        .lines()
        .next()
        .filter(|l| l.starts_with("cpu "))
        .map(|l| {
            l.split_whitespace()
                .skip(1)
                .take(7)
                .filter_map(|v| v.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0);
    ticks * (1_000_000_000 / 100)
}

fn online_cpus(proc_root: &Path) -> u64 {
    let n = read(&proc_root.join("stat"))
        .lines()
        .filter(|l| l.starts_with("cpu") && !l.starts_with("cpu "))
        .count() as u64;
    n.max(1)
}

fn meminfo_total(proc_root: &Path) -> u64 {
    read(&proc_root.join("meminfo"))
        .lines()
        .find_map(|l| {
            l.strip_prefix("MemTotal:")
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        })
        .unwrap_or(0)
        * 1024
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(p: &Path, s: &str) {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, s).unwrap();
    }

    fn proc_fixture(d: &Path) -> PathBuf {
        let proc_root = d.join("proc");
        write(&proc_root.join("stat"), "cpu  100 0 50 850 0 0 0 0 0 0\ncpu0 50 0 25 425 0 0 0\ncpu1 50 0 25 425 0 0 0\nintr 1\n");
        write(
            &proc_root.join("meminfo"),
            "MemTotal:       1024 kB\nMemFree: 1 kB\n",
        );
        proc_root
    }

    #[test]
    fn cgroup_v2_fixture() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("cg");
        write(&root.join("cgroup.controllers"), "cpu memory pids io\n");
        let c = root.join("berth/abc");
        write(
            &c.join("cpu.stat"),
            "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n",
        );
        write(&c.join("memory.current"), "4096\n");
        write(&c.join("memory.max"), "max\n");
        write(&c.join("memory.stat"), "anon 1\ninactive_file 1024\n");
        write(&c.join("pids.current"), "3\n");
        write(&c.join("pids.max"), "50\n");
        write(
            &c.join("io.stat"),
            "8:0 rbytes=100 wbytes=200 rios=1 wios=2\n8:16 rbytes=1 wbytes=2\n",
        );
        write(&c.join("cgroup.procs"), "10\n11\n");
        let loc = CgroupLocation::new(&root, "/berth", "abc");
        assert!(loc.v2);
        let s = loc.sample(&proc_fixture(d.path()));
        assert_eq!(
            (s.cpu_total_ns, s.cpu_user_ns, s.cpu_kernel_ns),
            (1_500_000, 1_000_000, 500_000)
        );
        assert_eq!(
            (s.memory_usage, s.memory_limit, s.memory_inactive_file),
            (4096, 1024 * 1024, 1024)
        );
        assert_eq!((s.pids, s.pids_limit), (3, Some(50)));
        assert_eq!((s.blkio_read, s.blkio_write), (101, 202));
        assert_eq!(s.online_cpus, 2);
        assert_eq!(s.system_cpu_ns, 1000 * 10_000_000);
        assert_eq!(loc.pids(), vec![10, 11]);
    }

    #[test]
    fn cgroup_v1_fixture() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("cg");
        let rel = "berth/abc";
        write(
            &root.join("cpuacct").join(rel).join("cpuacct.usage"),
            "123456789\n",
        );
        write(
            &root.join("cpuacct").join(rel).join("cpuacct.stat"),
            "user 7\nsystem 3\n",
        );
        write(
            &root.join("memory").join(rel).join("memory.usage_in_bytes"),
            "8192\n",
        );
        write(
            &root.join("memory").join(rel).join("memory.limit_in_bytes"),
            "9223372036854771712\n",
        );
        write(
            &root.join("memory").join(rel).join("memory.stat"),
            "cache 5\ntotal_inactive_file 2048\n",
        );
        write(&root.join("pids").join(rel).join("pids.current"), "2\n");
        write(&root.join("pids").join(rel).join("pids.max"), "max\n");
        write(&root.join("pids").join(rel).join("cgroup.procs"), "42\n");
        write(
            &root
                .join("blkio")
                .join(rel)
                .join("blkio.throttle.io_service_bytes"),
            "8:0 Read 10\n8:0 Write 20\n8:0 Total 30\nTotal 30\n",
        );
        let loc = CgroupLocation::new(&root, "berth", "abc");
        assert!(!loc.v2);
        let s = loc.sample(&proc_fixture(d.path()));
        assert_eq!(s.cpu_total_ns, 123_456_789);
        assert_eq!((s.cpu_user_ns, s.cpu_kernel_ns), (70_000_000, 30_000_000));
        assert_eq!(
            (s.memory_usage, s.memory_limit, s.memory_inactive_file),
            (8192, 1024 * 1024, 2048),
            "unlimited means the machine's memory"
        );
        assert_eq!((s.pids, s.pids_limit), (2, None));
        assert_eq!((s.blkio_read, s.blkio_write), (10, 20));
        assert_eq!(loc.pids(), vec![42]);
    }
}
