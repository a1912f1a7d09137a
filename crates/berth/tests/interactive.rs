//! Interactive containers through berth's CLI and the real docker CLI: stdin, terminals (under a real pty
//! made by script(1)), exec, attach and detach keys.

mod common;

use common::{text, Daemon};
use std::io::Write;
use std::process::{Command, Stdio};

fn piped(d: &Daemon, cli: &str, args: &[&str], input: &str) -> (String, Option<i32>) {
    let mut cmd = if cli == "docker" {
        Command::new("docker")
    } else {
        Command::new(common::BERTH)
    };
    let mut child = cmd
        .args(args)
        .env("BERTH_HOST", format!("unix://{}", d.socket().display()))
        .env("DOCKER_HOST", format!("unix://{}", d.socket().display()))
        .env("DOCKER_CONFIG", d.dir.path().join("docker-config"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (text(&out.stdout), out.status.code())
}

#[test]
fn stdin_reaches_run_i_and_its_end_closes_it() {
    let d = Daemon::start();
    d.import_busybox();
    for cli in ["berth", "docker"] {
        let (out, rc) = piped(
            &d,
            cli,
            &["run", "-i", "--rm", "busybox", "sh", "-c", "cat; echo done"],
            "hi\nthere\n",
        );
        assert_eq!((out.as_str(), rc), ("hi\nthere\ndone\n", Some(0)), "{cli}");
    }
}

#[test]
fn run_it_gives_a_real_terminal_with_the_clients_size() {
    let d = Daemon::start();
    d.import_busybox();
    for cli in ["berth", "docker"] {
        let (out, rc) = d.in_pty(
            &format!("{cli} run -it --rm busybox sh"),
            33,
            101,
            &["tty; stty size\\n", "echo $((6*7))\\n", "exit 3\\n"],
        );
        assert!(out.contains("/dev/pts/0"), "{cli}: {out}");
        assert!(out.contains("33 101"), "{cli}: {out}");
        assert!(out.contains("\n42\n"), "{cli}: {out}");
        assert_eq!(rc, Some(3), "{cli}: {out}");
    }
}

#[test]
fn exec_runs_commands_in_the_running_container() {
    let d = Daemon::start();
    d.import_busybox();
    assert!(d
        .berth(&["run", "-d", "--name", "box", "busybox", "sleep", "300"])
        .status
        .success());
    for cli in ["berth", "docker"] {
        let run = |args: &[&str]| {
            if cli == "docker" {
                d.docker(args)
            } else {
                d.berth(args)
            }
        };
        let out = run(&["exec", "box", "echo", "hello"]);
        assert_eq!(text(&out.stdout), "hello\n", "{cli}: {}", text(&out.stderr));
        let out = run(&["exec", "box", "sh", "-c", "exit 3"]);
        assert_eq!(out.status.code(), Some(3), "{cli}");
        let out = run(&[
            "exec",
            "-u",
            "nobody",
            "-e",
            "X=1",
            "-w",
            "/etc",
            "box",
            "sh",
            "-c",
            "id -u; echo $X; pwd",
        ]);
        assert_eq!(
            text(&out.stdout),
            "65534\n1\n/etc\n",
            "{cli}: {}",
            text(&out.stderr)
        );
        let out = run(&["exec", "box", "nosuchcmd"]);
        assert_eq!(out.status.code(), Some(127), "{cli}: {}", text(&out.stderr));
        // Same namespaces and the container's own (default) capabilities.
        let out = run(&[
            "exec",
            "box",
            "sh",
            "-c",
            "hostname; grep CapEff /proc/self/status",
        ]);
        let o = text(&out.stdout);
        assert!(o.contains("00000000a80425fb"), "{cli}: {o}");
        // The container's cgroups (every hierarchy), pid namespace and environment.
        let out = run(&[
            "exec",
            "box",
            "sh",
            "-c",
            "cat /proc/self/cgroup; echo ---; cat /proc/1/cgroup; echo ---; echo $$; grep -c . /proc/self/status >/dev/null; echo $PATH",
        ]);
        let o = text(&out.stdout);
        let parts: Vec<&str> = o.split("---\n").collect();
        assert_eq!(parts.len(), 3, "{cli}: {o}");
        assert_eq!(parts[0], parts[1], "{cli}: the exec's cgroups are init's");
        // (Seen through the container's cgroup namespace: a process outside its cgroups shows "/..".)
        assert!(
            parts[0].contains(":/\n") && !parts[0].contains(".."),
            "{cli}: {o}"
        );
        let pid: u32 = parts[2].lines().next().unwrap_or("").parse().unwrap_or(0);
        assert!(
            pid > 1 && pid < 100,
            "{cli}: pid {pid} is not in the container's pid namespace"
        );
        assert!(parts[2].contains("/usr/bin"), "{cli}: {o}");
        let (o, rc) = piped(&d, cli, &["exec", "-i", "box", "cat"], "through stdin\n");
        assert_eq!((o.as_str(), rc), ("through stdin\n", Some(0)), "{cli}");
        let (o, rc) = d.in_pty(
            &format!("{cli} exec -it box sh -c 'tty; stty size; exit 4'"),
            22,
            77,
            &[],
        );
        assert!(o.contains("/dev/pts/") && o.contains("22 77"), "{cli}: {o}");
        assert_eq!(rc, Some(4), "{cli}: {o}");
    }
    // Privileged exec gets every capability the daemon has.
    let out = d.berth(&[
        "exec",
        "--privileged",
        "box",
        "grep",
        "CapEff",
        "/proc/self/status",
    ]);
    assert!(
        !text(&out.stdout).contains("a80425fb"),
        "{}",
        text(&out.stdout)
    );
    // Exec into a stopped container is refused.
    assert!(d.berth(&["stop", "-t", "0", "box"]).status.success());
    let out = d.docker(&["exec", "box", "true"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        text(&out.stderr).contains("is not running"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn detach_keys_leave_the_container_running_and_attach_comes_back() {
    let d = Daemon::start();
    d.import_busybox();
    let (_, rc) = d.in_pty(
        "berth run -it --name keep busybox sh",
        24,
        80,
        &["\\020\\021"],
    );
    assert_eq!(rc, Some(0));
    let out = d.berth(&["inspect", "--format", "{{.State.Running}}", "keep"]);
    assert_eq!(text(&out.stdout).trim(), "true");
    for cli in ["berth", "docker"] {
        let (o, rc) = d.in_pty(
            &format!("{cli} attach keep"),
            24,
            80,
            &[&format!("echo back-{cli}\\n"), "\\020\\021"],
        );
        assert!(o.contains(&format!("\nback-{cli}\n")), "{cli}: {o}");
        // docker reports a detach from `attach` as the error "read escape sequence" (status 1); berth too.
        assert!(o.contains("read escape sequence"), "{cli}: {o}");
        assert_eq!(rc, Some(1), "{cli}: {o}");
        let out = d.berth(&["inspect", "--format", "{{.State.Running}}", "keep"]);
        assert_eq!(text(&out.stdout).trim(), "true", "{cli}");
    }
    let (_, rc) = d.in_pty("berth attach keep", 24, 80, &["exit 7\\n"]);
    assert_eq!(rc, Some(7));
}

#[test]
fn sig_proxy_forwards_signals_to_a_container_without_a_terminal() {
    let d = Daemon::start();
    d.import_busybox();
    let mut child = std::process::Command::new(common::BERTH)
        .args([
            "run",
            "--rm",
            "busybox",
            "sh",
            "-c",
            "trap 'echo got TERM; exit 7' TERM; echo ready; while true; do sleep 0.1; done",
        ])
        .env("BERTH_HOST", format!("unix://{}", d.socket().display()))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 64];
    use std::io::Read;
    while !String::from_utf8_lossy(&got).contains("ready") {
        let n = out.read(&mut buf).unwrap();
        assert!(n > 0, "the container never got ready");
        got.extend_from_slice(&buf[..n]);
    }
    // SIGTERM to the CLI (by its pid) reaches the container's process.
    let _ = std::process::Command::new("kill")
        .arg(child.id().to_string())
        .status();
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    let status = child.wait().unwrap();
    assert!(rest.contains("got TERM"), "{rest}");
    assert_eq!(status.code(), Some(7));
}

#[test]
fn an_attached_client_slower_than_the_container_gets_every_byte() {
    // The container writes 48 MiB at once; the client reads nothing for 3 seconds, then everything. The output
    // waits for the client (it used to be dropped once the client was a few hundred chunks behind).
    let d = Daemon::start();
    d.import_busybox_full();
    let size: usize = 48 << 20;
    let mut child = d
        .berth_cmd()
        .args(["run", "--rm", "busybox", "sh", "-c"])
        .arg(format!(
            "yes 0123456789abcdefghijklmnopqrstuvwxyz | head -c {size}"
        ))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(3));
    let mut out = child.stdout.take().unwrap();
    let mut got = 0usize;
    let mut buf = vec![0u8; 1 << 20];
    let mut lines_ok = true;
    loop {
        let n = std::io::Read::read(&mut out, &mut buf).unwrap();
        if n == 0 {
            break;
        }
        // Every byte is where `yes` put it: 37-byte lines, so a lost chunk would also break the pattern.
        for (i, b) in buf[..n].iter().enumerate() {
            let want = b"0123456789abcdefghijklmnopqrstuvwxyz\n"[(got + i) % 37];
            lines_ok &= *b == want;
        }
        got += n;
    }
    let status = child.wait().unwrap();
    assert_eq!(got, size, "{}", d.log());
    assert!(lines_ok, "the output is not what the container wrote");
    assert_eq!(status.code(), Some(0));
    assert!(!d.log().contains("took no output"), "{}", d.log());
}
