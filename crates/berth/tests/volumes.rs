//! Volumes end to end, driven by the real `docker` CLI: named volumes that outlive containers, Docker's
//! copy-up, anonymous volumes and `rm -v`, `--mount` bind/tmpfs/volume, `--volumes-from`, driver options,
//! prune and `system df`.

mod common;

use common::{ok, text, Daemon};

#[test]
fn named_volume_keeps_data_across_containers() {
    let d = Daemon::start();
    d.import_busybox_full();
    assert_eq!(ok(&d.docker(&["volume", "create", "data"])).trim(), "data");
    ok(&d.docker(&[
        "run",
        "--rm",
        "-v",
        "data:/data",
        "busybox",
        "sh",
        "-c",
        "echo kept > /data/f",
    ]));
    assert_eq!(
        ok(&d.docker(&[
            "run",
            "--rm",
            "-v",
            "data:/data:ro",
            "busybox",
            "cat",
            "/data/f"
        ])),
        "kept\n"
    );
    // Read-only mounts refuse writes.
    let out = d.docker(&[
        "run",
        "--rm",
        "-v",
        "data:/data:ro",
        "busybox",
        "sh",
        "-c",
        "echo x > /data/g",
    ]);
    assert!(!out.status.success());
    let mp = ok(&d.docker(&["volume", "inspect", "-f", "{{.Mountpoint}}", "data"]));
    assert_eq!(
        std::fs::read_to_string(format!("{}/f", mp.trim())).unwrap(),
        "kept\n"
    );
    let ls = ok(&d.docker(&["volume", "ls"]));
    assert!(ls.starts_with("DRIVER    VOLUME NAME\n"), "{ls}");
    assert!(ls.contains("local     data\n"), "{ls}");
    // In use by a container (even a stopped one): refused, and nothing is lost.
    ok(&d.docker(&["create", "--name", "user", "-v", "data:/data", "busybox"]));
    let out = d.docker(&["volume", "rm", "data"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("volume is in use"),
        "{}",
        text(&out.stderr)
    );
    let inspect = ok(&d.docker(&["inspect", "-f", "{{json .Mounts}}", "user"]));
    let v: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    assert_eq!(v[0]["Type"], "volume");
    assert_eq!(v[0]["Name"], "data");
    assert_eq!(v[0]["Destination"], "/data");
    assert_eq!(v[0]["Driver"], "local");
    assert_eq!(v[0]["RW"], true);
    ok(&d.docker(&["rm", "user"]));
    ok(&d.docker(&["volume", "rm", "data"]));
    assert!(!std::path::Path::new(mp.trim()).exists());
    // Bad input: a clear error, nothing created.
    let out = d.docker(&["volume", "create", "b@d"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("includes invalid characters"),
        "{}",
        text(&out.stderr)
    );
    let out = d.docker(&["volume", "rm", "nope"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("no such volume"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(ok(&d.docker(&["volume", "ls", "-q"])), "");
}

#[test]
fn empty_volume_is_filled_from_the_image_once() {
    let d = Daemon::start();
    d.import_busybox_full();
    // /etc in the image has passwd and group: a new volume there gets them (copy-up).
    assert!(ok(&d.docker(&[
        "run",
        "--rm",
        "-v",
        "etc:/etc",
        "busybox",
        "cat",
        "/etc/passwd"
    ]))
    .starts_with("root:x:0:0"));
    ok(&d.docker(&[
        "run",
        "--rm",
        "-v",
        "etc:/etc",
        "busybox",
        "sh",
        "-c",
        "echo mine > /etc/passwd",
    ]));
    // Not empty any more: not filled again, the change stays.
    assert_eq!(
        ok(&d.docker(&[
            "run",
            "--rm",
            "-v",
            "etc:/etc",
            "busybox",
            "cat",
            "/etc/passwd"
        ])),
        "mine\n"
    );
    // nocopy leaves a new volume empty.
    assert_eq!(
        ok(&d.docker(&[
            "run",
            "--rm",
            "-v",
            "empty:/etc:nocopy",
            "busybox",
            "sh",
            "-c",
            "test -e /etc/passwd && echo present || echo absent",
        ])),
        "absent\n"
    );
}

#[test]
fn anonymous_volumes_go_with_rm_v_and_run_rm() {
    let d = Daemon::start();
    d.import_busybox_full();
    ok(&d.docker(&[
        "run",
        "--name",
        "aa",
        "-v",
        "/scratch",
        "-v",
        "keep:/keep",
        "busybox",
        "true",
    ]));
    let names = ok(&d.docker(&["volume", "ls", "-q"]));
    let anon: Vec<&str> = names.lines().filter(|n| *n != "keep").collect();
    assert_eq!(anon.len(), 1, "{names}");
    assert_eq!(anon[0].len(), 64);
    let labels = ok(&d.docker(&["volume", "inspect", "-f", "{{json .Labels}}", anon[0]]));
    assert!(labels.contains("com.docker.volume.anonymous"), "{labels}");
    ok(&d.docker(&["rm", "-v", "aa"]));
    assert_eq!(ok(&d.docker(&["volume", "ls", "-q"])), "keep\n");
    ok(&d.docker(&["run", "--rm", "-v", "/scratch", "busybox", "true"]));
    assert_eq!(ok(&d.docker(&["volume", "ls", "-q"])), "keep\n");
    // Plain prune takes anonymous volumes only; -a takes unused named ones too.
    ok(&d.docker(&["create", "-v", "/x", "busybox"]));
    let out = ok(&d.docker(&["volume", "prune", "-f"]));
    assert!(out.contains("Total reclaimed space"), "{out}");
    assert_eq!(
        ok(&d.docker(&["volume", "ls", "-q", "--filter", "dangling=true"])),
        "keep\n"
    );
    ok(&d.docker(&["volume", "prune", "-af"]));
    assert_eq!(
        ok(&d.docker(&["volume", "ls", "-q", "--filter", "dangling=true"])),
        ""
    );
    assert_eq!(
        ok(&d.docker(&["volume", "ls", "-q"])).lines().count(),
        1,
        "the used anonymous volume stays"
    );
}

#[test]
fn mount_flag_binds_tmpfs_and_volumes_from() {
    let d = Daemon::start();
    d.import_busybox_full();
    let host = d.dir.path().join("hostdir");
    std::fs::create_dir(&host).unwrap();
    std::fs::write(host.join("f"), "from host\n").unwrap();
    let bind = format!("type=bind,source={},target=/b,readonly", host.display());
    assert_eq!(
        ok(&d.docker(&["run", "--rm", "--mount", &bind, "busybox", "cat", "/b/f"])),
        "from host\n"
    );
    let out = d.docker(&[
        "run",
        "--rm",
        "--mount",
        &bind,
        "busybox",
        "sh",
        "-c",
        "echo x > /b/g",
    ]);
    assert!(!out.status.success());
    assert!(!host.join("g").exists());
    // A missing bind source is refused with --mount (and created by -v, as Docker does).
    let missing = d.dir.path().join("missing");
    let out = d.docker(&[
        "run",
        "--rm",
        "--mount",
        &format!("type=bind,source={},target=/m", missing.display()),
        "busybox",
        "true",
    ]);
    assert!(
        text(&out.stderr).contains("bind source path does not exist"),
        "{}",
        text(&out.stderr)
    );
    ok(&d.docker(&[
        "run",
        "--rm",
        "-v",
        &format!("{}:/m", missing.display()),
        "busybox",
        "true",
    ]));
    assert!(missing.is_dir());
    let mounts = ok(&d.docker(&[
        "run",
        "--rm",
        "--mount",
        "type=tmpfs,target=/t,tmpfs-size=1m",
        "busybox",
        "grep",
        " /t ",
        "/proc/mounts",
    ]));
    assert!(
        mounts.starts_with("tmpfs /t tmpfs") && mounts.contains("size=1024k"),
        "{mounts}"
    );
    ok(&d.docker(&[
        "run",
        "--mount",
        "source=shared,target=/s",
        "--name",
        "src",
        "busybox",
        "sh",
        "-c",
        "echo s > /s/f",
    ]));
    assert_eq!(
        ok(&d.docker(&[
            "run",
            "--rm",
            "--volumes-from",
            "src:ro",
            "busybox",
            "cat",
            "/s/f"
        ])),
        "s\n"
    );
    let out = d.docker(&[
        "run",
        "--rm",
        "--volumes-from",
        "src:ro",
        "busybox",
        "sh",
        "-c",
        "echo x > /s/f",
    ]);
    assert!(!out.status.success(), "volumes-from :ro must be read-only");
}

#[test]
fn driver_options_mount_a_tmpfs_volume() {
    let d = Daemon::start();
    d.import_busybox_full();
    ok(&d.docker(&[
        "volume",
        "create",
        "-o",
        "type=tmpfs",
        "-o",
        "device=tmpfs",
        "-o",
        "o=size=2m",
        "--label",
        "k=v",
        "tv",
    ]));
    let opts = ok(&d.docker(&[
        "volume",
        "inspect",
        "-f",
        "{{json .Options}} {{json .Labels}}",
        "tv",
    ]));
    assert!(
        opts.contains("\"type\":\"tmpfs\"") && opts.contains("\"k\":\"v\""),
        "{opts}"
    );
    ok(&d.docker(&[
        "run",
        "--rm",
        "-v",
        "tv:/v",
        "busybox",
        "sh",
        "-c",
        "echo t > /v/f",
    ]));
    let mp = ok(&d.docker(&["volume", "inspect", "-f", "{{.Mountpoint}}", "tv"]));
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        mounts.contains(&format!(" {} ", mp.trim())),
        "tmpfs volume mounted on its _data"
    );
    assert_eq!(
        std::fs::read_to_string(format!("{}/f", mp.trim())).unwrap(),
        "t\n"
    );
    let df = ok(&d.docker(&["system", "df"]));
    assert!(df.contains("Local Volumes   1"), "{df}");
    ok(&d.docker(&["volume", "rm", "tv"]));
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(&format!(" {} ", mp.trim())),
        "unmounted with the volume"
    );
    let out = d.docker(&["volume", "create", "-o", "bogus=1", "bad"]);
    assert!(
        text(&out.stderr).contains("invalid option key"),
        "{}",
        text(&out.stderr)
    );
}

/// Mount destinations behind symlinks are made where the links lead inside the root (`/var/run -> /run`, a
/// link to a directory that does not exist yet), and an image's `/etc/resolv.conf` that is a link leading
/// nowhere (as in images made for systemd-resolved) is shadowed by the init layer's file the container's
/// own is bound on; `/proc`, `/sys` and `/dev`, which the image lacks, come from that layer too. A fresh
/// container's `diff` is empty: its mount points are not in its upper directory.
#[test]
fn mount_points_behind_symlinks_and_the_init_layer() {
    let d = Daemon::start();
    // The image: busybox with the links (a build's RUN cannot replace /etc/resolv.conf, it is bound there).
    let root = d.dir.path().join("links");
    for dir in ["etc", "run", "var"] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
    common::busybox_in(
        &root,
        &["sh", "grep", "cut", "sort", "test", "true", "hostname"],
    );
    std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    std::os::unix::fs::symlink("/run", root.join("var/run")).unwrap();
    std::os::unix::fs::symlink("/nowhere/data", root.join("data")).unwrap();
    std::os::unix::fs::symlink("../run/stub/resolv.conf", root.join("etc/resolv.conf")).unwrap();
    d.import_tree(&root, "links:latest", &[]);
    let script = "grep -E ' /run/x | /nowhere/data ' /proc/mounts | cut -d' ' -f2 | sort; \
                  test -f /etc/resolv.conf && ! test -L /etc/resolv.conf && grep -c . /etc/resolv.conf >/dev/null && echo resolv; \
                  test -d /proc/self && test -d /sys/fs && test -c /dev/null && echo pseudo";
    let out = ok(&d.docker(&[
        "run",
        "--name",
        "links",
        "--tmpfs",
        "/var/run/x",
        "-v",
        "lv:/data",
        "links",
        "sh",
        "-c",
        script,
    ]));
    assert_eq!(out, "/nowhere/data\n/run/x\nresolv\npseudo\n", "{out}");
    // The mount points made for this run's own mounts are its changes; the init layer's are not.
    let changes = ok(&d.docker(&["diff", "links"]));
    let mut lines: Vec<&str> = changes.lines().collect();
    lines.sort_unstable();
    assert_eq!(
        lines,
        ["A /nowhere", "A /nowhere/data", "A /run/x", "C /run"],
        "{changes}"
    );
    ok(&d.docker(&["run", "--name", "fresh", "links", "true"]));
    let changes = ok(&d.docker(&["diff", "fresh"]));
    assert_eq!(
        changes, "",
        "a container that wrote nothing changed nothing"
    );
    ok(&d.docker(&["rm", "fresh"]));
    ok(&d.docker(&["rm", "-v", "links"]));
}
