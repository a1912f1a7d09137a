//! `cp` (the archive endpoints) and `commit`, end to end with berth's CLI and the real docker CLI: round trips
//! both ways on running and stopped containers, volumes and read-only mounts, tar streams, `-a`, Docker's
//! errors, hostile uploads, a container racing symlinks against `cp` (CVE-2018-15664), and committed images.

mod common;

use common::{failed, ok, text, Daemon};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The CLI under test: berth's or docker's.
fn cli(d: &Daemon, docker: bool, args: &[&str]) -> Output {
    if docker {
        d.docker(args)
    } else {
        d.berth(args)
    }
}

fn name(docker: bool) -> &'static str {
    if docker {
        "docker"
    } else {
        "berth"
    }
}

/// A local tree: `src/` with a file, a subdirectory and a relative symlink.
fn local_tree(root: &Path) -> PathBuf {
    let src = root.join("src");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::write(src.join("a.txt"), "alpha\n").unwrap();
    std::fs::write(src.join("sub/b.txt"), "beta\n").unwrap();
    std::os::unix::fs::symlink("a.txt", src.join("link")).unwrap();
    src
}

fn listing(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let mut names: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        names.sort();
        for p in names {
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            let m = std::fs::symlink_metadata(&p).unwrap();
            if m.file_type().is_symlink() {
                out.push(format!(
                    "{rel} -> {}",
                    std::fs::read_link(&p).unwrap().display()
                ));
            } else if m.is_dir() {
                out.push(format!("{rel}/"));
                walk(root, &p, out);
            } else {
                out.push(format!("{rel}: {}", std::fs::read_to_string(&p).unwrap()));
            }
        }
    }
    walk(dir, dir, &mut out);
    out
}

fn exec(d: &Daemon, ctr: &str, script: &str) -> String {
    ok(&d.berth(&["exec", ctr, "sh", "-c", script]))
}

/// The copy rules, exercised against `ctr` (running or stopped) under `/work-<tag>`; checks are made with
/// `check` (an exec while running, a copy back otherwise).
fn round_trips(d: &Daemon, docker: bool, ctr: &str, tag: &str) {
    let local = tempfile::tempdir().unwrap();
    let src = local_tree(local.path());
    let src_s = src.display().to_string();
    let base = format!("/work-{tag}");
    // A directory to a new name, then into the existing directory, then its content with `/.`.
    ok(&cli(d, docker, &["cp", &src_s, &format!("{ctr}:{base}")]));
    ok(&cli(d, docker, &["cp", &src_s, &format!("{ctr}:{base}")]));
    ok(&cli(
        d,
        docker,
        &[
            "cp",
            &format!("{src_s}/."),
            &format!("{ctr}:{base}/content"),
        ],
    ));
    // A file to a new name and into a directory (trailing slash).
    let file = src.join("a.txt").display().to_string();
    ok(&cli(
        d,
        docker,
        &["cp", &file, &format!("{ctr}:{base}/renamed.txt")],
    ));
    let err = failed(&cli(
        d,
        docker,
        &["cp", &file, &format!("{ctr}:{base}/sub-into/")],
    ));
    assert!(err.contains("no such directory"), "{err}");
    // Back out: the whole tree, compared.
    let out = local.path().join("out");
    ok(&cli(
        d,
        docker,
        &["cp", &format!("{ctr}:{base}"), &out.display().to_string()],
    ));
    let got = listing(&out);
    let want_src = listing(&src);
    for line in &want_src {
        assert!(
            got.contains(line),
            "{} {tag}: {line} missing in {got:?}",
            name(docker)
        );
        assert!(
            got.contains(&format!("src/{line}")),
            "{} {tag}: src/{line} missing in {got:?}",
            name(docker)
        );
        assert!(
            got.contains(&format!("content/{line}")),
            "{} {tag}: content/{line} missing in {got:?}",
            name(docker)
        );
    }
    assert!(got.contains(&"renamed.txt: alpha\n".to_string()), "{got:?}");
    // `sub-into/` did not exist: docker refuses a file into a missing directory.
    assert!(!got.iter().any(|l| l.starts_with("sub-into")), "{got:?}");
    // A file out to an existing directory and to a new name; a directory's content with `/.`.
    let into = local.path().join("into");
    std::fs::create_dir(&into).unwrap();
    ok(&cli(
        d,
        docker,
        &[
            "cp",
            &format!("{ctr}:{base}/a.txt"),
            &into.display().to_string(),
        ],
    ));
    ok(&cli(
        d,
        docker,
        &[
            "cp",
            &format!("{ctr}:{base}/sub/."),
            &into.join("subcontent").display().to_string(),
        ],
    ));
    assert_eq!(
        std::fs::read_to_string(into.join("a.txt")).unwrap(),
        "alpha\n"
    );
    assert_eq!(
        std::fs::read_to_string(into.join("subcontent/b.txt")).unwrap(),
        "beta\n"
    );
    // A symlink is copied as a symlink; `-L` copies its target under the link's name.
    ok(&cli(
        d,
        docker,
        &[
            "cp",
            &format!("{ctr}:{base}/link"),
            &into.join("l1").display().to_string(),
        ],
    ));
    ok(&cli(
        d,
        docker,
        &[
            "cp",
            "-L",
            &format!("{ctr}:{base}/link"),
            &into.join("l2").display().to_string(),
        ],
    ));
    assert!(std::fs::symlink_metadata(into.join("l1"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(std::fs::read_to_string(into.join("l2")).unwrap(), "alpha\n");
}

#[test]
fn cp_round_trips_with_both_clis_on_running_and_stopped_containers() {
    let d = Daemon::start();
    d.import_busybox_full();
    ok(&d.berth(&["run", "-d", "--name", "cpc", "busybox", "sleep", "1000"]));
    for docker in [false, true] {
        round_trips(&d, docker, "cpc", &format!("run-{}", name(docker)));
    }
    // The whole root of a running container: its files, not the runtime's /dev, /proc and /sys.
    for docker in [false, true] {
        let root = d.dir.path().join(format!("rootcopy-{}", name(docker)));
        ok(&cli(
            &d,
            docker,
            &["cp", "cpc:/", &root.display().to_string()],
        ));
        assert!(root.join("bin/busybox").is_file(), "{}", name(docker));
        for runtime in ["dev", "proc", "sys"] {
            assert_eq!(
                std::fs::read_dir(root.join(runtime)).unwrap().count(),
                0,
                "{}: {runtime}",
                name(docker)
            );
        }
    }
    // What the running container sees.
    assert_eq!(
        exec(&d, "cpc", "cat /work-run-berth/src/sub/b.txt"),
        "beta\n"
    );
    assert_eq!(
        exec(&d, "cpc", "cat /work-run-docker/content/a.txt"),
        "alpha\n"
    );
    ok(&d.berth(&["stop", "-t", "0", "cpc"]));
    for docker in [false, true] {
        round_trips(&d, docker, "cpc", &format!("stop-{}", name(docker)));
    }
    // Nothing stays mounted on the host for a stopped container (the daemon's read-only shim binary is
    // its own), and the copies are there after a start.
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let dir = d.dir.path().display().to_string();
    let left: Vec<&str> = mounts
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|mp| mp.starts_with(&dir) && !mp.ends_with("/berth-shim"))
        .collect();
    assert!(
        left.is_empty(),
        "a stopped container's root stayed mounted: {left:?}"
    );
    ok(&d.berth(&["start", "cpc"]));
    assert_eq!(
        exec(&d, "cpc", "cat /work-stop-docker/src/a.txt"),
        "alpha\n"
    );
    assert_eq!(
        exec(&d, "cpc", "cat /work-stop-berth/renamed.txt"),
        "alpha\n"
    );
}

#[test]
fn cp_reaches_volumes_and_binds_and_respects_read_only() {
    let d = Daemon::start();
    d.import_busybox_full();
    let bind = d.dir.path().join("bindsrc");
    std::fs::create_dir_all(&bind).unwrap();
    std::fs::write(bind.join("inbind"), "bound\n").unwrap();
    let file = d.dir.path().join("f.txt");
    std::fs::write(&file, "payload\n").unwrap();
    let f = file.display().to_string();
    ok(&d.berth(&[
        "run",
        "-d",
        "--name",
        "vols",
        "-v",
        "vol:/data",
        "-v",
        &format!("{}:/bind:ro", bind.display()),
        "--tmpfs",
        "/scratch",
        "busybox",
        "sleep",
        "1000",
    ]));
    let mp = ok(&d.berth(&["volume", "inspect", "-f", "{{.Mountpoint}}", "vol"]));
    let mp = PathBuf::from(mp.trim());
    for docker in [false, true] {
        let n = name(docker);
        ok(&cli(
            &d,
            docker,
            &["cp", &f, &format!("vols:/data/run-{n}")],
        ));
        assert_eq!(
            std::fs::read_to_string(mp.join(format!("run-{n}"))).unwrap(),
            "payload\n"
        );
        // Reading a bind mount, refusing to write a read-only one.
        let got = ok(&cli(&d, docker, &["cp", "vols:/bind/inbind", "-"]));
        assert!(got.contains("bound"), "{n}: {got}");
        let err = failed(&cli(&d, docker, &["cp", &f, "vols:/bind/"]));
        assert!(
            err.contains("mounted volume is marked read-only"),
            "{n}: {err}"
        );
    }
    // A tree extracted at `/` whose `data/` is the volume: what lands below the mount point is copied into it.
    let tree = d.dir.path().join("tree");
    std::fs::create_dir_all(tree.join("data/deep")).unwrap();
    std::fs::write(tree.join("data/deep/x"), "across\n").unwrap();
    std::fs::write(tree.join("top"), "top\n").unwrap();
    for docker in [false, true] {
        ok(&cli(
            &d,
            docker,
            &["cp", &format!("{}/.", tree.display()), "vols:/"],
        ));
    }
    assert_eq!(
        std::fs::read_to_string(mp.join("deep/x")).unwrap(),
        "across\n"
    );
    assert_eq!(exec(&d, "vols", "cat /top /data/deep/x"), "top\nacross\n");
    // A running container's tmpfs is reached where the container sees it.
    ok(&d.berth(&["cp", &f, "vols:/scratch/"]));
    assert_eq!(exec(&d, "vols", "cat /scratch/f.txt"), "payload\n");
    ok(&d.berth(&["stop", "-t", "0", "vols"]));
    for docker in [false, true] {
        let n = name(docker);
        ok(&cli(
            &d,
            docker,
            &["cp", &f, &format!("vols:/data/stopped-{n}")],
        ));
        assert_eq!(
            std::fs::read_to_string(mp.join(format!("stopped-{n}"))).unwrap(),
            "payload\n"
        );
        let err = failed(&cli(&d, docker, &["cp", &f, "vols:/bind/"]));
        assert!(
            err.contains("mounted volume is marked read-only"),
            "{n}: {err}"
        );
        let out = d.dir.path().join(format!("back-{n}"));
        ok(&cli(
            &d,
            docker,
            &["cp", "vols:/data", &out.display().to_string()],
        ));
        assert!(out.join("run-berth").exists());
    }
    assert!(!bind.join("f.txt").exists());
    // A read-only root refuses writes outside volumes, running or not.
    ok(&d.berth(&[
        "run",
        "-d",
        "--name",
        "ro",
        "--read-only",
        "-v",
        "rovol:/rw",
        "busybox",
        "sleep",
        "1000",
    ]));
    for docker in [false, true] {
        let err = failed(&cli(&d, docker, &["cp", &f, "ro:/etc/"]));
        assert!(
            err.contains("container rootfs is marked read-only"),
            "{err}"
        );
        ok(&cli(&d, docker, &["cp", &f, "ro:/rw/"]));
    }
    ok(&d.berth(&["stop", "-t", "0", "ro"]));
    let err = failed(&d.berth(&["cp", &f, "ro:/etc/"]));
    assert!(
        err.contains("container rootfs is marked read-only"),
        "{err}"
    );
}

/// Entry names (with `/` for directories) of a tar stream.
fn tar_names(bytes: &[u8]) -> Vec<String> {
    let mut a = tar::Archive::new(bytes);
    a.entries()
        .unwrap()
        .map(|e| String::from_utf8_lossy(&e.unwrap().path_bytes()).into_owned())
        .collect()
}

#[test]
fn cp_streams_tar_archives_on_stdin_and_stdout() {
    let d = Daemon::start();
    d.import_busybox_full();
    ok(&d.berth(&["run", "-d", "--name", "tar", "busybox", "sleep", "1000"]));
    exec(
        &d,
        "tar",
        "mkdir -p /d/sub && echo 1 > /d/one && echo 2 > /d/sub/two",
    );
    for docker in [false, true] {
        let out = cli(&d, docker, &["cp", "tar:/d", "-"]);
        assert_eq!(
            tar_names(&out.stdout),
            ["d/", "d/one", "d/sub/", "d/sub/two"],
            "{}",
            name(docker)
        );
        let out = cli(&d, docker, &["cp", "tar:/d/.", "-"]);
        assert_eq!(tar_names(&out.stdout)[..2], ["./", "./one"]);
        let out = cli(&d, docker, &["cp", "tar:/d/one", "-"]);
        assert_eq!(tar_names(&out.stdout), ["one"]);
    }
    // A tar on stdin goes into a directory.
    let local = tempfile::tempdir().unwrap();
    let src = local_tree(local.path());
    let tarball = Command::new("tar")
        .arg("-C")
        .arg(&src)
        .args(["-cf", "-", "."])
        .output()
        .unwrap()
        .stdout;
    for docker in [false, true] {
        let dest = format!("/in-{}", name(docker));
        exec(&d, "tar", &format!("mkdir {dest}"));
        ok(&d.with_stdin(docker, &["cp", "-", &format!("tar:{dest}")], &tarball));
        assert_eq!(exec(&d, "tar", &format!("cat {dest}/sub/b.txt")), "beta\n");
        // Only into a directory.
        let err = failed(&d.with_stdin(docker, &["cp", "-", "tar:/d/one"], &tarball));
        assert!(err.contains("must be a directory"), "{err}");
    }
    // A stream that is not a complete tar changes nothing.
    // Cut inside the second entry, well before the end-of-archive marker.
    let cut = &tarball[..1100];
    let before = exec(&d, "tar", "ls -R /d");
    failed(&d.with_stdin(false, &["cp", "-", "tar:/d"], cut));
    assert_eq!(exec(&d, "tar", "ls -R /d"), before);
}

#[test]
fn cp_archive_mode_keeps_ownership() {
    let d = Daemon::start();
    d.import_busybox_full();
    ok(&d.berth(&["run", "-d", "--name", "own", "busybox", "sleep", "1000"]));
    let f = d.dir.path().join("owned");
    std::fs::write(&f, "x").unwrap();
    std::os::unix::fs::chown(&f, Some(1234), Some(5678)).unwrap();
    let f = f.display().to_string();
    ok(&d.berth(&["cp", &f, "own:/plain"]));
    ok(&d.berth(&["cp", "-a", &f, "own:/kept"]));
    ok(&d.docker(&["cp", "-a", &f, "own:/docker-kept"]));
    assert_eq!(exec(&d, "own", "stat -c %u:%g /plain"), "0:0\n");
    assert_eq!(exec(&d, "own", "stat -c %u:%g /kept"), "1234:5678\n");
    assert_eq!(exec(&d, "own", "stat -c %u:%g /docker-kept"), "1234:5678\n");
    // Out of the container: the caller owns the copy unless `-a`.
    exec(&d, "own", "echo y > /theirs && chown 42:43 /theirs");
    let plain = d.dir.path().join("plain-out");
    let kept = d.dir.path().join("kept-out");
    ok(&d.berth(&["cp", "own:/theirs", &plain.display().to_string()]));
    ok(&d.berth(&["cp", "-a", "own:/theirs", &kept.display().to_string()]));
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(&plain).unwrap();
    assert_eq!((m.uid(), m.gid()), (0, 0));
    let m = std::fs::metadata(&kept).unwrap();
    assert_eq!((m.uid(), m.gid()), (42, 43));
    // With a container user, copyUIDGID gives the files to that user (Docker's daemon rule).
    ok(&d.berth(&[
        "run", "-d", "-u", "nobody", "--name", "nob", "busybox", "sleep", "1000",
    ]));
    exec(&d, "nob", "true");
    ok(&d.berth(&["cp", "-a", &f, "nob:/etc/mine"]));
    assert_eq!(exec(&d, "nob", "stat -c %u:%g /etc/mine"), "65534:65534\n");
}

#[test]
fn cp_errors_are_dockers() {
    let d = Daemon::start();
    d.import_busybox_full();
    ok(&d.berth(&["run", "-d", "--name", "err", "busybox", "sleep", "1000"]));
    let local = tempfile::tempdir().unwrap();
    let src = local_tree(local.path());
    let file = src.join("a.txt").display().to_string();
    let dir = src.display().to_string();
    for docker in [false, true] {
        let n = name(docker);
        let err = failed(&cli(&d, docker, &["cp", "err:/nope", "/tmp"]));
        assert!(
            err.contains("Could not find the file /nope in container err"),
            "{n}: {err}"
        );
        let err = failed(&cli(&d, docker, &["cp", &dir, "err:/etc/passwd"]));
        assert!(err.contains("cannot copy directory"), "{n}: {err}");
        let err = failed(&cli(&d, docker, &["cp", "err:/etc", &file]));
        assert!(err.contains("cannot copy directory"), "{n}: {err}");
        let missing = local.path().join("no/such");
        let err = failed(&cli(
            &d,
            docker,
            &["cp", "err:/etc/passwd", &missing.display().to_string()],
        ));
        assert!(err.contains("invalid output path: directory"), "{n}: {err}");
        let err = failed(&cli(&d, docker, &["cp", &file, "err:/no/such"]));
        assert!(
            err.contains("Could not find the file /no in container err"),
            "{n}: {err}"
        );
        let err = failed(&cli(&d, docker, &["cp", &file, "err:/nodir/"]));
        assert!(err.contains("no such directory"), "{n}: {err}");
        let err = failed(&cli(&d, docker, &["cp", &file, "nosuch:/file"]));
        assert!(err.contains("No such container: nosuch"), "{n}: {err}");
        let err = failed(&cli(&d, docker, &["cp", "err:/a", "err:/b"]));
        assert!(
            err.contains("copying between containers is not supported"),
            "{n}: {err}"
        );
        let err = failed(&cli(&d, docker, &["cp", "a", "b"]));
        assert!(
            err.contains("must specify at least one container source"),
            "{n}: {err}"
        );
    }
    // The daemon's own answers, as an API client sees them.
    let curl = |args: &[&str]| {
        let out = Command::new("curl")
            .args(["-s", "--unix-socket"])
            .arg(d.socket())
            .args(args)
            .output()
            .unwrap();
        text(&out.stdout)
    };
    let code = curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-I",
        "http://b/containers/err/archive?path=/nope",
    ]);
    assert_eq!(code, "404");
    let code = curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-I",
        "http://b/containers/err/archive?path=",
    ]);
    assert_eq!(code, "400");
    let body = curl(&[
        "-X",
        "PUT",
        "--data-binary",
        "@/dev/null",
        "http://b/containers/err/archive?path=/etc/passwd",
    ]);
    assert!(
        body.contains("extraction point is not a directory"),
        "{body}"
    );
    // The stat header of a symlink names where it leads, inside the container.
    exec(&d, "err", "ln -s /etc/../etc/passwd /pw");
    let headers = curl(&["-I", "http://b/containers/err/archive?path=/pw"]);
    let b64 = headers
        .lines()
        .find_map(|l| l.strip_prefix("x-docker-container-path-stat: "))
        .or_else(|| {
            headers
                .lines()
                .find_map(|l| l.strip_prefix("X-Docker-Container-Path-Stat: "))
        })
        .unwrap_or_else(|| panic!("no stat header in {headers}"))
        .trim();
    let mut dec = Command::new("base64")
        .arg("-d")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    dec.stdin.take().unwrap().write_all(b64.as_bytes()).unwrap();
    let json: serde_json::Value =
        serde_json::from_slice(&dec.wait_with_output().unwrap().stdout).unwrap();
    assert_eq!(json["name"], "pw");
    assert_eq!(json["linkTarget"], "/etc/passwd");
    assert_eq!(
        json["mode"].as_u64().unwrap() & (1 << 27),
        1 << 27,
        "{json}"
    );
}

/// A tar entry with a name written byte for byte.
fn raw_entry(out: &mut Vec<u8>, name: &str, kind: tar::EntryType, link: &str, data: &[u8]) {
    let mut h = tar::Header::new_gnu();
    h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
    h.set_entry_type(kind);
    h.set_mode(0o644);
    h.set_size(data.len() as u64);
    if matches!(kind, tar::EntryType::Char) {
        h.set_device_major(1).unwrap();
        h.set_device_minor(3).unwrap();
    }
    h.set_cksum();
    out.extend_from_slice(h.as_bytes());
    out.extend_from_slice(data);
    out.extend(std::iter::repeat_n(0u8, (512 - data.len() % 512) % 512));
}

#[test]
fn hostile_uploads_are_refused_whole() {
    let d = Daemon::start();
    d.import_busybox_full();
    ok(&d.berth(&["run", "-d", "--name", "hostile", "busybox", "sleep", "1000"]));
    exec(
        &d,
        "hostile",
        "mkdir /dst && echo keep > /dst/keep && ln -s / /dst/root",
    );
    let outside = d.dir.path().join("outside-marker");
    std::fs::create_dir_all(&outside).unwrap();
    let rel_outside = outside.display().to_string();
    use tar::EntryType::{Char, Regular, Symlink};
    type Entry<'a> = (&'a str, tar::EntryType, &'a str);
    let cases: Vec<(&str, Vec<Entry>)> = vec![
        (
            "dotdot",
            vec![("ok", Regular, ""), ("../../../evil", Regular, "")],
        ),
        (
            "absolute",
            vec![("ok", Regular, ""), ("/evil", Regular, "")],
        ),
        (
            "through an existing symlink",
            vec![("ok", Regular, ""), ("root/evil", Regular, "")],
        ),
        (
            "through its own symlink",
            vec![
                ("ok", Regular, ""),
                ("l", Symlink, "/"),
                ("l/evil", Regular, ""),
            ],
        ),
        ("device", vec![("ok", Regular, ""), ("null", Char, "")]),
    ];
    for (what, entries) in cases {
        let mut t = Vec::new();
        for (n, k, l) in entries {
            let n = n.replace(
                "evil",
                &format!("{}/evil", rel_outside.trim_start_matches('/')),
            );
            raw_entry(&mut t, &n, k, l, b"x");
        }
        t.extend_from_slice(&[0u8; 1024]);
        let out = d.with_stdin(false, &["cp", "-", "hostile:/dst"], &t);
        let err = failed(&out);
        assert!(err.contains("Error response from daemon"), "{what}: {err}");
        assert_eq!(
            exec(&d, "hostile", "ls /dst"),
            "keep\nroot\n",
            "{what}: half written"
        );
        assert_eq!(
            std::fs::read_dir(&outside).unwrap().count(),
            0,
            "{what}: wrote on the host"
        );
    }
}

#[test]
fn cp_never_leaves_the_container_while_it_races_symlinks() {
    let d = Daemon::start();
    d.import_busybox_full();
    // A host directory the container names through a path that exists on the host only.
    let host = d
        .dir
        .path()
        .join(format!("hostonly-{}", std::process::id()));
    std::fs::create_dir_all(&host).unwrap();
    let secret = format!("host-secret-{}", std::process::id());
    std::fs::write(host.join("secret"), &secret).unwrap();
    let rel = host.display().to_string();
    let rel = rel.trim_start_matches('/');
    // `/x` is, in turn, a symlink to `/`, a symlink to a directory and a real directory; the decoys have the same
    // relative layout as the host path, so a daemon that resolved on the host would find the host's files.
    let script = format!(
        "mkdir -p /real/{rel} /realdir/{rel} && echo decoy > /real/{rel}/secret && echo decoy > /realdir/{rel}/secret && \
         while :; do ln -sfn / /x.l; mv -fT /x.l /x; ln -sfn /real /x.l; mv -fT /x.l /x; \
         rm -f /x; mv /realdir /x; mv /x /realdir; done"
    );
    ok(&d.berth(&[
        "run", "-d", "--name", "race", "busybox", "sh", "-c", &script,
    ]));
    std::thread::sleep(std::time::Duration::from_millis(300));
    let payload_dir = tempfile::tempdir().unwrap();
    let payload = payload_dir.path().join("payload");
    std::fs::write(&payload, "from-cp").unwrap();
    std::fs::create_dir(payload_dir.path().join("pdir")).unwrap();
    std::fs::write(payload_dir.path().join("pdir/inner"), "from-cp").unwrap();
    let (mut found, mut missing) = (0, 0);
    for i in 0..60 {
        let docker = i % 4 == 3;
        let out_path = payload_dir.path().join(format!("out{i}"));
        let got = cli(
            &d,
            docker,
            &[
                "cp",
                &format!("race:/x/{rel}/secret"),
                &out_path.display().to_string(),
            ],
        );
        if got.status.success() {
            let content = std::fs::read_to_string(&out_path).unwrap();
            assert!(
                !content.contains(&secret),
                "read the host's file through /x"
            );
            assert_eq!(content, "decoy\n");
            found += 1;
        } else {
            missing += 1;
        }
        let dir_out = payload_dir.path().join(format!("dirout{i}"));
        let got = cli(
            &d,
            docker,
            &[
                "cp",
                &format!("race:/x/{rel}"),
                &dir_out.display().to_string(),
            ],
        );
        if got.status.success() {
            let all = listing(&dir_out).join("\n");
            assert!(
                !all.contains(&secret),
                "read the host's directory through /x"
            );
        }
        let _ = cli(
            &d,
            docker,
            &[
                "cp",
                &payload.display().to_string(),
                &format!("race:/x/{rel}/"),
            ],
        );
        let _ = cli(
            &d,
            docker,
            &[
                "cp",
                &payload_dir.path().join("pdir").display().to_string(),
                &format!("race:/x/{rel}/pdir{i}"),
            ],
        );
        let names: Vec<String> = std::fs::read_dir(&host)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["secret"], "cp wrote into the host directory");
        assert_eq!(
            std::fs::read_to_string(host.join("secret")).unwrap(),
            secret
        );
    }
    // Both sides of the race were met: the decoy was read and the path was missing.
    assert!(found > 0 && missing > 0, "found {found}, missing {missing}");
    // The writes that succeeded landed inside the container.
    let inside = exec(
        &d,
        "race",
        &format!("ls /real/{rel} /realdir/{rel} 2>/dev/null || true"),
    );
    assert!(inside.contains("secret"), "{inside}");
}

#[test]
fn cp_resolves_symlinks_inside_a_stopped_containers_root() {
    let d = Daemon::start();
    d.import_busybox_full();
    let host = d.dir.path().join("hostdir");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("secret"), "host").unwrap();
    let rel = host.display().to_string();
    let rel = rel.trim_start_matches('/').to_string();
    let setup = format!(
        "mkdir -p /real/{rel} && echo decoy > /real/{rel}/secret && ln -s / /escape && ln -s ../../../../.. /real/up"
    );
    ok(&d.berth(&["run", "--name", "st", "busybox", "sh", "-c", &setup]));
    let out = d.dir.path().join("out");
    let f = d.dir.path().join("payload");
    std::fs::write(&f, "payload").unwrap();
    for docker in [false, true] {
        for via in ["escape", "real/up"] {
            let err = failed(&cli(
                &d,
                docker,
                &[
                    "cp",
                    &format!("st:/{via}/{rel}/secret"),
                    &out.display().to_string(),
                ],
            ));
            assert!(err.contains("Could not find the file"), "{via}: {err}");
            failed(&cli(
                &d,
                docker,
                &["cp", &f.display().to_string(), &format!("st:/{via}/{rel}/")],
            ));
        }
        // The same links lead where they would inside the container.
        ok(&cli(
            &d,
            docker,
            &[
                "cp",
                &format!("st:/escape/real/up/real/{rel}/secret"),
                &out.display().to_string(),
            ],
        ));
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "decoy\n");
    }
    let names: Vec<_> = std::fs::read_dir(&host).unwrap().collect();
    assert_eq!(names.len(), 1);
    assert_eq!(
        std::fs::read_to_string(host.join("secret")).unwrap(),
        "host"
    );
}

#[test]
fn cp_prepares_a_created_container_before_its_first_start() {
    let d = Daemon::start();
    d.import_busybox_full();
    ok(&d.berth(&[
        "create",
        "--name",
        "fresh",
        "-v",
        "freshvol:/data",
        "busybox",
        "cat",
        "/data/f",
        "/etc/g",
    ]));
    let f = d.dir.path().join("f");
    std::fs::write(&f, "in the volume\n").unwrap();
    let g = d.dir.path().join("g");
    std::fs::write(&g, "in the root\n").unwrap();
    ok(&d.docker(&["cp", &f.display().to_string(), "fresh:/data/"]));
    ok(&d.berth(&["cp", &g.display().to_string(), "fresh:/etc/"]));
    assert_eq!(
        ok(&d.berth(&["start", "-a", "fresh"])),
        "in the volume\nin the root\n"
    );
}

#[test]
fn cp_shows_dockers_summary_on_a_terminal() {
    let d = Daemon::start();
    d.import_busybox_full();
    ok(&d.berth(&["run", "-d", "--name", "pty", "busybox", "sleep", "1000"]));
    let out = d.dir.path().join("pw");
    let (screen, rc) = d.in_pty(
        &format!(
            "berth cp pty:/etc/passwd {} && berth cp {} pty:/copied && berth cp -q pty:/etc/group {}",
            out.display(),
            out.display(),
            d.dir.path().join("grp").display()
        ),
        24,
        80,
        &[],
    );
    assert_eq!(rc, Some(0), "{screen}");
    assert!(
        screen.contains(&format!("Successfully copied 2.05kB to {}", out.display())),
        "{screen}"
    );
    assert!(
        screen.contains("Successfully copied 2.05kB to pty:/copied"),
        "{screen}"
    );
    assert_eq!(
        screen.matches("Successfully copied").count(),
        2,
        "-q: {screen}"
    );
    // Without a terminal, nothing (like docker).
    let plain = d.berth(&["cp", "pty:/etc/passwd", &out.display().to_string()]);
    assert_eq!(text(&plain.stderr), "");
}

#[test]
fn commit_makes_an_image_that_runs() {
    let d = Daemon::start();
    d.import_busybox_full();
    ok(&d.berth(&[
        "run",
        "-d",
        "--name",
        "src",
        "busybox",
        "sh",
        "-c",
        "echo committed > /f; rm /etc/group; sleep 1000",
    ]));
    std::thread::sleep(std::time::Duration::from_millis(500));
    for docker in [false, true] {
        let n = name(docker);
        let id = ok(&cli(
            &d,
            docker,
            &[
                "commit",
                "--change",
                r#"CMD ["cat","/f"]"#,
                "-c",
                "ENV FROM_COMMIT=1",
                "-m",
                "a message",
                "-a",
                "Ann Author",
                "src",
                &format!("snap:{n}"),
            ],
        ));
        assert!(id.trim().starts_with("sha256:"), "{n}: {id}");
        assert_eq!(
            ok(&d.berth(&["run", "--rm", &format!("snap:{n}")])),
            "committed\n"
        );
        // The deletion travelled as a whiteout; the config carries the change, message and author.
        let out = d.berth(&[
            "run",
            "--rm",
            &format!("snap:{n}"),
            "sh",
            "-c",
            "ls /etc/group; echo $FROM_COMMIT",
        ]);
        assert_eq!(text(&out.stdout), "1\n", "{n}");
        let inspect = ok(&d.docker(&[
            "image",
            "inspect",
            "-f",
            "{{json .Config.Cmd}}|{{.Comment}}|{{.Author}}|{{len .RootFS.Layers}}",
            &format!("snap:{n}"),
        ]));
        assert_eq!(
            inspect.trim(),
            r#"["cat","/f"]|a message|Ann Author|2"#,
            "{n}"
        );
        let history = ok(&d.berth(&["history", &format!("snap:{n}")]));
        assert!(history.contains("a message"), "{history}");
    }
    // The container was paused for the commits and runs again afterwards.
    let state = ok(&d.berth(&["inspect", "-f", "{{.State.Status}}", "src"]));
    assert_eq!(state.trim(), "running");
    // A stopped container commits too; without a tag the image is dangling; without changes the command stays.
    ok(&d.berth(&["stop", "-t", "0", "src"]));
    let id = ok(&d.berth(&["commit", "src"]));
    let cmd = ok(&d.docker(&["image", "inspect", "-f", "{{json .Config.Cmd}}", id.trim()]));
    assert_eq!(
        cmd.trim(),
        r#"["sh","-c","echo committed > /f; rm /etc/group; sleep 1000"]"#
    );
    let err = failed(&d.berth(&["commit", "nosuch"]));
    assert!(err.contains("No such container: nosuch"), "{err}");
}
