//! `build`, end to end with berth's CLI and the real docker CLI (classic builder protocol): multi-stage builds with
//! `COPY --from`, build args, `.dockerignore` with exceptions, heredocs, the resulting image config, the cache
//! (a cached rebuild runs no container; a changed file rebuilds from its step; mtimes do not count; the cache
//! survives a daemon restart; `builder prune` forgets it), and bad input (syntax errors with their line, a
//! failing RUN, sources outside the context) that tags nothing.

mod common;

use common::{failed, ok, text, Daemon, BERTH};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// A tar of regular files owned by root.
fn tar_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    for (name, data) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        tar.append_data(&mut h, name, *data).unwrap();
    }
    tar.into_inner().unwrap()
}

fn write(dir: &Path, name: &str, content: &str) {
    let p = dir.join(name);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(p, content).unwrap();
}

const MULTI_STAGE: &str = r#"# a comment
ARG BASE=busybox
FROM ${BASE} AS build
ARG GREETING=hello
ENV APP_HOME=/app \
    MODE="two words"
WORKDIR $APP_HOME
COPY src/ ./src/
COPY *.txt ./
RUN echo "$GREETING from $MODE" > /app/built.txt && cat /app/built.txt
RUN <<EOF
echo heredoc ran
mkdir -p /app/gen
echo generated > /app/gen/file
EOF
COPY <<NOTE /app/note.txt
note in $APP_HOME
NOTE

FROM busybox AS unused
RUN exit 1

FROM busybox
LABEL org.example.stage=final
EXPOSE 8080 53/udp
VOLUME /data
COPY --from=build /app /srv
WORKDIR /srv
USER 1000:1000
HEALTHCHECK --interval=5s --retries=2 CMD cat /srv/built.txt
ENTRYPOINT ["cat"]
CMD ["/srv/built.txt"]
"#;

fn multi_stage_context(dir: &Path) {
    write(dir, "Dockerfile", MULTI_STAGE);
    write(dir, "src/main.c", "int main(){}\n");
    write(dir, "src/skip.md", "docs\n");
    write(dir, "a.txt", "A\n");
    write(dir, "README.txt", "readme\n");
    write(dir, ".dockerignore", "**/*.md\n*.txt\n!a.txt\n");
}

#[test]
fn multi_stage_build_with_berth_and_the_docker_cli() {
    let d = Daemon::start();
    d.import_busybox();
    let ctx = d.dir.path().join("ctx");
    multi_stage_context(&ctx);
    let c = ctx.to_str().unwrap();

    let out = ok(&d.berth(&[
        "build",
        "-t",
        "app:1",
        "-t",
        "app:extra",
        "--build-arg",
        "GREETING=bonjour",
        c,
    ]));
    assert!(
        out.contains("bonjour from two words"),
        "RUN output shown: {out}"
    );
    assert!(out.contains("heredoc ran"), "{out}");
    assert!(out.contains("Successfully tagged app:1"), "{out}");
    assert!(
        !out.contains("RUN exit 1"),
        "the unused stage is not built: {out}"
    );
    assert_eq!(
        ok(&d.berth(&["run", "--rm", "app:1"])),
        "bonjour from two words\n"
    );
    let listing = ok(&d.berth(&[
        "run",
        "--rm",
        "--entrypoint",
        "sh",
        "app:1",
        "-c",
        "id -u; id -g; pwd; ls /srv /srv/src; cat /srv/gen/file /srv/note.txt",
    ]));
    assert!(listing.starts_with("1000\n1000\n/srv\n"), "{listing}");
    assert!(
        listing.contains("a.txt") && !listing.contains("README.txt"),
        "dockerignore exception: {listing}"
    );
    assert!(
        listing.contains("main.c") && !listing.contains("skip.md"),
        "**/*.md excluded: {listing}"
    );
    assert!(listing.contains("generated\nnote in /app\n"), "{listing}");

    let cfg: serde_json::Value =
        serde_json::from_str(&ok(&d.berth(&["image", "inspect", "app:1"]))).unwrap();
    let cfg = &cfg[0]["Config"];
    assert_eq!(cfg["User"], "1000:1000");
    assert_eq!(cfg["WorkingDir"], "/srv");
    assert_eq!(cfg["Entrypoint"], serde_json::json!(["cat"]));
    assert_eq!(cfg["Cmd"], serde_json::json!(["/srv/built.txt"]));
    assert_eq!(cfg["Labels"]["org.example.stage"], "final");
    assert!(
        cfg["ExposedPorts"].get("8080/tcp").is_some()
            && cfg["ExposedPorts"].get("53/udp").is_some()
    );
    assert!(cfg["Volumes"].get("/data").is_some());
    assert_eq!(
        cfg["Healthcheck"]["Test"],
        serde_json::json!(["CMD-SHELL", "cat /srv/built.txt"])
    );
    assert_eq!(cfg["Healthcheck"]["Interval"], 5_000_000_000i64);
    let env = cfg["Env"].to_string();
    assert!(
        !env.contains("GREETING") && !env.contains("APP_HOME"),
        "build args and the other stage's ENV stay out: {env}"
    );
    let history = ok(&d.berth(&["history", "--no-trunc", "app:1"]));
    assert!(history.contains("COPY --from=build /app /srv"), "{history}");
    assert!(history.contains("USER 1000:1000"), "{history}");

    // The real docker CLI through the classic builder protocol, with a Dockerfile elsewhere (-f).
    std::fs::rename(
        ctx.join("Dockerfile"),
        d.dir.path().join("Other.Dockerfile"),
    )
    .unwrap();
    let other = d.dir.path().join("Other.Dockerfile");
    let out = d.docker(&[
        "build",
        "-t",
        "dk:1",
        "--build-arg",
        "GREETING=hi",
        "-f",
        other.to_str().unwrap(),
        c,
    ]);
    let shown = ok(&out);
    assert!(
        shown.contains("Successfully tagged dk:1"),
        "{shown}{}",
        text(&out.stderr)
    );
    assert_eq!(
        ok(&d.docker(&["run", "--rm", "dk:1"])),
        "hi from two words\n"
    );
    let quiet = ok(&d.docker(&[
        "build",
        "-q",
        "-f",
        other.to_str().unwrap(),
        "--build-arg",
        "GREETING=hi",
        c,
    ]));
    let id = ok(&d.docker(&["image", "inspect", "-f", "{{.Id}}", "dk:1"]));
    assert_eq!(
        quiet.trim(),
        id.trim(),
        "-q prints the id only (and the cache gives the same image)"
    );
}

#[test]
fn cache_reuses_steps_skips_containers_and_survives_restart() {
    let mut d = Daemon::start();
    d.import_busybox();
    let ctx = d.dir.path().join("ctx");
    write(
        &ctx,
        "Dockerfile",
        "FROM busybox\nRUN echo step-one-$((40+2))\nCOPY f.txt /f.txt\nRUN cat /f.txt\n",
    );
    write(&ctx, "f.txt", "v1\n");
    let c = ctx.to_str().unwrap();
    let first = ok(&d.berth(&["build", "-t", "c:1", c]));
    assert!(
        first.contains("step-one-42") && !first.contains("Using cache"),
        "{first}"
    );
    let id1 = ok(&d.berth(&["images", "-q", "--no-trunc", "c:1"]));
    let containers = ok(&d.berth(&["ps", "-aq"]));

    // A fully cached rebuild: same image, no RUN output, no container made.
    let events_since = chrono_now();
    let again = ok(&d.berth(&["build", "-t", "c:1", c]));
    assert_eq!(again.matches("Using cache").count(), 3, "{again}");
    assert!(!again.contains("step-one-42"), "{again}");
    assert_eq!(ok(&d.berth(&["images", "-q", "--no-trunc", "c:1"])), id1);
    let ev = ok(&d.berth(&[
        "events",
        "--since",
        &events_since,
        "--until",
        &chrono_now(),
        "--filter",
        "type=container",
    ]));
    assert!(
        ev.trim().is_empty(),
        "no container events during a cached build: {ev}"
    );
    assert_eq!(ok(&d.berth(&["ps", "-aq"])), containers);

    // Only mtime changes: still cached.
    let f = ctx.join("f.txt");
    let t = std::time::SystemTime::now() + std::time::Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(&f)
        .unwrap()
        .set_modified(t)
        .unwrap();
    let touched = ok(&d.berth(&["build", "-t", "c:1", c]));
    assert_eq!(
        touched.matches("Using cache").count(),
        3,
        "mtime ignored: {touched}"
    );

    // A changed file: the steps before it are cached, the rest run again.
    write(&ctx, "f.txt", "v2\n");
    let changed = ok(&d.berth(&["build", "-t", "c:2", c]));
    assert_eq!(changed.matches("Using cache").count(), 1, "{changed}");
    assert!(changed.contains("v2"), "{changed}");
    assert_ne!(ok(&d.berth(&["images", "-q", "--no-trunc", "c:2"])), id1);

    // The cache is on disk.
    d.kill9();
    d.spawn();
    let after = ok(&d.berth(&["build", "-t", "c:2", c]));
    assert_eq!(
        after.matches("Using cache").count(),
        3,
        "after a daemon restart: {after}"
    );

    // --no-cache, then builder prune forgets everything.
    let nocache = ok(&d.berth(&["build", "--no-cache", c]));
    assert!(
        !nocache.contains("Using cache") && nocache.contains("step-one-42"),
        "{nocache}"
    );
    ok(&d.berth(&["builder", "prune", "-f"]));
    let pruned = ok(&d.berth(&["build", c]));
    assert!(!pruned.contains("Using cache"), "{pruned}");
}

fn chrono_now() -> String {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        .to_string()
}

#[test]
fn bad_builds_fail_clearly_and_tag_nothing() {
    let d = Daemon::start();
    d.import_busybox();
    let ctx = d.dir.path().join("ctx");
    let c = ctx.to_str().unwrap().to_string();
    let cases: &[(&str, &str)] = &[
        ("FROM busybox\nRUN true\nFRM x\n", "line 3"),
        (
            "FROM busybox\nRUN echo visible-output && exit 7\n",
            "returned a non-zero code: 7",
        ),
        (
            "FROM busybox\nCOPY ../outside /x\n",
            "outside the build context",
        ),
        ("FROM busybox\nCOPY /etc/passwd /x\n", "outside it"),
        (
            "FROM busybox\nCOPY escape /x\n",
            "outside the build context",
        ),
        ("FROM busybox\nCOPY missing.txt /x\n", "missing.txt"),
        ("FROM busybox\nCOPY --chmod=xyz f /x\n", "octal"),
        ("FROM nosuchimage-here\n", "nosuchimage-here"),
    ];
    write(&ctx, "f", "x");
    std::os::unix::fs::symlink("../../../../etc/passwd", ctx.join("escape")).unwrap();
    for (df, want) in cases {
        write(&ctx, "Dockerfile", df);
        let out = d.berth(&["build", "-t", "bad:1", &c]);
        let msg = failed(&out);
        assert!(msg.contains(want), "{df:?}: want {want:?} in {msg}");
        if df.contains("visible-output") {
            let shown = text(&out.stdout);
            assert!(
                shown.contains("visible-output"),
                "the failing RUN's output is shown: {shown}"
            );
        }
        let images = ok(&d.berth(&["images", "-q", "bad"]));
        assert!(
            images.trim().is_empty(),
            "{df:?} tagged something: {images}"
        );
    }
    // The docker CLI shows the same errors.
    write(&ctx, "Dockerfile", "FROM busybox\nBOGUS\n");
    let msg = failed(&d.docker(&["build", &c]));
    assert!(msg.contains("unknown instruction: BOGUS"), "{msg}");
    // A missing build target.
    write(&ctx, "Dockerfile", "FROM busybox AS a\n");
    let msg = failed(&d.berth(&["build", "--target", "b", &c]));
    assert!(msg.contains("failed to reach build target b"), "{msg}");
}

#[test]
fn dockerfile_and_context_from_stdin() {
    let d = Daemon::start();
    d.import_busybox();
    let run = |args: &[&str], input: &[u8]| {
        let mut child = Command::new(BERTH)
            .args(args)
            .env("BERTH_HOST", format!("unix://{}", d.socket().display()))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input).unwrap();
        child.wait_with_output().unwrap()
    };
    // `build -` with a Dockerfile: an empty context.
    let out = run(
        &["build", "-t", "s:1", "-"],
        b"FROM busybox\nCMD [\"echo\", \"from stdin\"]\n",
    );
    ok(&out);
    assert_eq!(ok(&d.berth(&["run", "--rm", "s:1"])), "from stdin\n");
    // `build -` with a tar context, and `-f -` with a directory.
    let bytes = tar_of(&[
        (
            "Dockerfile",
            b"FROM busybox\nCOPY x /x\nCMD [\"cat\", \"/x\"]\n",
        ),
        ("x", b"tarred\n"),
    ]);
    ok(&run(&["build", "-t", "s:2", "-"], &bytes));
    assert_eq!(ok(&d.berth(&["run", "--rm", "s:2"])), "tarred\n");
    let ctx = d.dir.path().join("ctx");
    write(&ctx, "y", "dir context\n");
    ok(&run(
        &["build", "-t", "s:3", "-f", "-", ctx.to_str().unwrap()],
        b"FROM busybox\nCOPY y /y\nCMD [\"cat\", \"/y\"]\n",
    ));
    assert_eq!(ok(&d.berth(&["run", "--rm", "s:3"])), "dir context\n");
    // --iidfile.
    let iid = d.dir.path().join("iid");
    ok(&run(
        &["build", "--iidfile", iid.to_str().unwrap(), "-"],
        b"FROM busybox\nLABEL a=b\n",
    ));
    assert!(std::fs::read_to_string(&iid)
        .unwrap()
        .starts_with("sha256:"));
}

#[test]
fn a_client_that_goes_away_stops_the_build_and_its_container() {
    let d = Daemon::start();
    d.import_busybox();
    let ctx = d.dir.path().join("ctx");
    write(
        &ctx,
        "Dockerfile",
        "FROM busybox\nRUN echo started && sleep 60\n",
    );
    let mut child = Command::new(BERTH)
        .args(["build", "-t", "never:1", ctx.to_str().unwrap()])
        .env("BERTH_HOST", format!("unix://{}", d.socket().display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the RUN step is running, then drop the client.
    let mut stdout = child.stdout.take().unwrap();
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut buf = [0u8; 256];
    while !text(&seen).contains("started") {
        assert!(
            std::time::Instant::now() < deadline,
            "the RUN step never started: {}",
            text(&seen)
        );
        let n = std::io::Read::read(&mut stdout, &mut buf).unwrap();
        assert!(n > 0, "the build ended early: {}", text(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // Within a few seconds the step's container is gone (not after the 60 s sleep) and nothing is tagged.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let ps = ok(&d.berth(&["ps", "-aq"]));
        if ps.trim().is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the build's container outlived its client: {ps}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(ok(&d.berth(&["images", "-q", "never"])).trim().is_empty());
}

#[test]
fn copy_exclude_parents_and_add_archives() {
    let d = Daemon::start();
    d.import_busybox();
    let ctx = d.dir.path().join("ctx");
    write(&ctx, "src/a/keep.txt", "keep\n");
    write(&ctx, "src/a/drop.log", "drop\n");
    write(&ctx, "src/b/c/deep.txt", "deep\n");
    write(&ctx, "src/b/c/also.log", "drop\n");
    // A gzip tar for ADD to unpack.
    let raw = tar_of(&[("inside/x.txt", b"unpacked\n")]);
    let gz = Command::new("gzip")
        .arg("-c")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().unwrap().write_all(&raw)?;
            c.wait_with_output()
        })
        .unwrap();
    std::fs::write(ctx.join("bundle.tar.gz"), gz.stdout).unwrap();
    write(
        &ctx,
        "Dockerfile",
        "FROM busybox\n\
         COPY --exclude=**/*.log src/ /ex/\n\
         COPY --parents src/b/c/deep.txt src/a/keep.txt /par/\n\
         ADD bundle.tar.gz /unpacked/\n\
         COPY --chmod=0600 --chown=12:34 src/a/keep.txt /owned\n\
         CMD [\"sh\", \"-c\", \"find /ex /par /unpacked -type f | sort; stat -c '%a %u %g' /owned\"]\n",
    );
    ok(&d.berth(&["build", "-t", "cp:1", ctx.to_str().unwrap()]));
    let out = ok(&d.berth(&["run", "--rm", "cp:1"]));
    assert_eq!(
        out,
        "/ex/a/keep.txt\n/ex/b/c/deep.txt\n/par/src/a/keep.txt\n/par/src/b/c/deep.txt\n/unpacked/inside/x.txt\n600 12 34\n"
    );
}

#[test]
fn language_features_behave_like_docker() {
    let d = Daemon::start();
    d.import_busybox();
    let ctx = d.dir.path().join("ctx");
    // A base with an ONBUILD trigger.
    write(
        &ctx,
        "Dockerfile",
        "FROM busybox\nONBUILD RUN echo triggered > /onbuild\n",
    );
    ok(&d.berth(&["build", "-t", "withtrigger", ctx.to_str().unwrap()]));
    write(&ctx, "dep.txt", "dep\n");
    write(
        &ctx,
        "Dockerfile",
        r#"ARG V=meta
FROM busybox AS first
ARG V
ARG ONLY_HERE=1
ENV FROM_ENV=env
ARG FROM_ENV=arg
RUN echo "V=$V here=$ONLY_HERE env=$FROM_ENV" > /first.txt
SHELL ["/bin/sh", "-ec"]
RUN --mount=type=cache,target=/cache echo run >> /cache/count && wc -l < /cache/count > /count.txt
RUN <<EOT
#!/bin/sh
echo "shebang script as $(id -u)" > /script.txt
EOT
STOPSIGNAL SIGUSR1

FROM withtrigger AS second
RUN echo "V=${V:-unset}" > /second.txt

FROM busybox
COPY --from=first /first.txt /count.txt /script.txt /out/
COPY --from=1 /second.txt /onbuild /out/
CMD ["sh", "-c", "cat /out/*"]
"#,
    );
    let c = ctx.to_str().unwrap();
    ok(&d.berth(&["build", "-t", "lang:1", "--no-cache", c]));
    let out = ok(&d.berth(&["run", "--rm", "lang:1"]));
    // ENV wins over an ARG of the same name; a meta ARG needs re-declaring to be seen; stage ARGs stay in their stage.
    assert!(out.contains("V=meta here=1 env=env\n"), "{out}");
    assert!(out.contains("V=unset\n"), "{out}");
    assert!(out.contains("shebang script as 0\n"), "{out}");
    assert!(
        out.contains("triggered\n"),
        "ONBUILD ran in the stage built on it: {out}"
    );
    assert!(out.contains("1\n"), "{out}");
    // The cache mount keeps its content across builds (the count grows even with --no-cache).
    ok(&d.berth(&[
        "build",
        "-t",
        "lang:2",
        "--no-cache",
        "--build-arg",
        "V=given",
        c,
    ]));
    let out = ok(&d.berth(&["run", "--rm", "lang:2"]));
    assert!(out.contains("V=given here=1"), "{out}");
    assert!(out.contains("2\n"), "cache mount persisted: {out}");
    // --target stops at a stage, with that stage's config.
    ok(&d.berth(&["build", "-t", "lang:first", "--target", "first", c]));
    let sig = ok(&d.berth(&[
        "image",
        "inspect",
        "-f",
        "{{.Config.StopSignal}} {{json .Config.Shell}}",
        "lang:first",
    ]));
    assert_eq!(sig.trim(), r#"SIGUSR1 ["/bin/sh","-ec"]"#);
}

#[test]
fn add_downloads_from_a_url_and_checks_its_checksum() {
    let d = Daemon::start();
    d.import_busybox();
    // A web server on loopback, serving one file.
    let www = d.dir.path().join("www");
    write(&www, "remote.txt", "from the web\n");
    let port = common::free_port();
    let mut server = Command::new("python3")
        .args([
            "-m",
            "http.server",
            "--bind",
            "127.0.0.1",
            &port.to_string(),
        ])
        .current_dir(&www)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 -m http.server");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "the test web server did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let ctx = d.dir.path().join("ctx");
    let url = format!("http://127.0.0.1:{port}/remote.txt");
    write(
        &ctx,
        "Dockerfile",
        &format!("FROM busybox\nADD {url} /dl/\nADD {url} /named.txt\nCMD [\"sh\", \"-c\", \"cat /dl/remote.txt; stat -c %a /dl/remote.txt /named.txt\"]\n"),
    );
    let c = ctx.to_str().unwrap();
    let built = d.berth(&["build", "-t", "dl:1", c]);
    let good = "sha256:".to_string() + &sha256_hex(b"from the web\n");
    write(
        &ctx,
        "Dockerfile.sum",
        &format!("FROM busybox\nADD --checksum={good} {url} /ok.txt\n"),
    );
    let sum_ok = d.berth(&[
        "build",
        "-f",
        ctx.join("Dockerfile.sum").to_str().unwrap(),
        c,
    ]);
    write(
        &ctx,
        "Dockerfile.bad",
        &format!(
            "FROM busybox\nADD --checksum=sha256:{} {url} /x\n",
            "0".repeat(64)
        ),
    );
    let sum_bad = d.berth(&[
        "build",
        "-f",
        ctx.join("Dockerfile.bad").to_str().unwrap(),
        c,
    ]);
    let _ = server.kill();
    let _ = server.wait();
    ok(&built);
    assert_eq!(
        ok(&d.berth(&["run", "--rm", "dl:1"])),
        "from the web\n600\n600\n"
    );
    ok(&sum_ok);
    assert!(failed(&sum_bad).contains("checksum mismatch"));
}

fn sha256_hex(data: &[u8]) -> String {
    let out = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().unwrap().write_all(data)?;
            c.wait_with_output()
        })
        .unwrap();
    text(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn cache_from_reuses_the_layers_of_an_image_from_another_daemon() {
    let a = Daemon::start();
    a.import_busybox();
    let ctx = a.dir.path().join("ctx");
    write(&ctx, "f.txt", "shared\n");
    write(
        &ctx,
        "Dockerfile",
        "FROM busybox\nRUN echo ran-$((20+1)) | tee /r\nCOPY f.txt /f\nENV E=1\nCMD [\"cat\", \"/r\", \"/f\"]\n",
    );
    let c = ctx.to_str().unwrap();
    ok(&a.berth(&["build", "-t", "app:1", c]));
    let archive = a.dir.path().join("app.tar");
    ok(&a.berth(&["save", "-o", archive.to_str().unwrap(), "busybox", "app:1"]));
    let app_id = ok(&a.berth(&["images", "-q", "--no-trunc", "app:1"]));

    // Another daemon gets the images as a pull would give them (no build cache of its own).
    let b = Daemon::start();
    ok(&b.berth(&["load", "-i", archive.to_str().unwrap()]));
    let out = ok(&b.berth(&["build", "--cache-from", "app:1", "-t", "app:2", c]));
    assert_eq!(
        out.matches("Using cache").count(),
        2,
        "RUN and COPY reused: {out}"
    );
    assert!(!out.contains("ran-21"), "no RUN executed: {out}");
    assert_eq!(ok(&b.berth(&["run", "--rm", "app:2"])), "ran-21\nshared\n");
    let layers = |d: &Daemon, r: &str| {
        ok(&d.berth(&["image", "inspect", "-f", "{{json .RootFS.Layers}}", r]))
    };
    assert_eq!(layers(&b, "app:2"), layers(&a, "app:1"), "same layers");
    let _ = app_id;
    // Without it, or with a changed file, the steps run.
    let plain = ok(&b.berth(&["build", "--no-cache", c]));
    assert!(plain.contains("ran-21"), "{plain}");
    write(&ctx, "f.txt", "changed\n");
    let changed = ok(&b.berth(&["build", "--cache-from", "app:1", "-t", "app:3", c]));
    assert!(
        changed.contains("Using cache"),
        "the RUN before the change is reused: {changed}"
    );
    assert_eq!(ok(&b.berth(&["run", "--rm", "app:3"])), "ran-21\nchanged\n");
    // The docker CLI sends --cache-from too.
    write(&ctx, "f.txt", "shared\n");
    let c2 = Daemon::start();
    ok(&c2.berth(&["load", "-i", archive.to_str().unwrap()]));
    let out = ok(&c2.docker(&["build", "--cache-from", "app:1", "-t", "app:4", c]));
    assert_eq!(out.matches("Using cache").count(), 2, "{out}");
}

#[test]
fn run_mounts_bind_from_other_stages_and_refuse_escapes() {
    let d = Daemon::start();
    d.import_busybox();
    let ctx = d.dir.path().join("ctx");
    write(&ctx, "in-context.txt", "ctx\n");
    write(
        &ctx,
        "Dockerfile",
        "FROM busybox AS tools\n\
         RUN mkdir -p /opt/t && echo tool-output > /opt/t/file\n\
         FROM busybox\n\
         RUN --mount=type=bind,from=tools,source=/opt/t,target=/mnt/t cat /mnt/t/file > /got\n\
         RUN --mount=type=bind,from=tools,source=/opt/t/file,target=/one cat /one >> /got\n\
         RUN --mount=type=bind,source=in-context.txt,target=/c cat /c >> /got\n\
         CMD [\"cat\", \"/got\"]\n",
    );
    let c = ctx.to_str().unwrap();
    ok(&d.berth(&["build", "-t", "mnt:1", c]));
    assert_eq!(
        ok(&d.berth(&["run", "--rm", "mnt:1"])),
        "tool-output\ntool-output\nctx\n"
    );
    // A bind source in the context that leads out of it is refused (the host's files are never mounted).
    std::os::unix::fs::symlink("/etc", ctx.join("hostetc")).unwrap();
    write(
        &ctx,
        "Dockerfile",
        "FROM busybox\nRUN --mount=type=bind,source=hostetc,target=/h cat /h/hostname\n",
    );
    let msg = failed(&d.berth(&["build", c]));
    assert!(msg.contains("outside the build context"), "{msg}");
}

#[test]
fn platform_args_are_the_hosts() {
    let d = Daemon::start();
    d.import_busybox();
    let ctx = d.dir.path().join("ctx");
    write(
        &ctx,
        "Dockerfile",
        "FROM --platform=$BUILDPLATFORM busybox\nARG TARGETARCH\nARG TARGETOS\nRUN echo \"$TARGETOS/$TARGETARCH\" > /p\nCMD [\"cat\", \"/p\"]\n",
    );
    let c = ctx.to_str().unwrap();
    ok(&d.berth(&["build", "-t", "plat:1", c]));
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    assert_eq!(
        ok(&d.berth(&["run", "--rm", "plat:1"])),
        format!("linux/{arch}\n")
    );
    // The CLI's --platform (the host's), --label and --network none.
    let host = format!("linux/{arch}");
    let netfile = ctx.join("Dockerfile.net");
    write(&ctx, "Dockerfile.net", "FROM busybox\nRUN cat /proc/net/dev | tail -n +3 | wc -l > /links\nCMD [\"cat\", \"/links\"]\n");
    ok(&d.berth(&[
        "build",
        "--platform",
        &host,
        "--label",
        "team=core",
        "--network",
        "none",
        "-t",
        "plat:2",
        "-f",
        netfile.to_str().unwrap(),
        c,
    ]));
    let label = ok(&d.berth(&[
        "image",
        "inspect",
        "-f",
        "{{index .Config.Labels \"team\"}}",
        "plat:2",
    ]));
    assert_eq!(label.trim(), "core");
    assert_eq!(
        ok(&d.berth(&["run", "--rm", "--network", "none", "plat:2"])).trim(),
        "1",
        "RUN saw only lo"
    );
    let other = if arch == "amd64" {
        "linux/arm64"
    } else {
        "linux/amd64"
    };
    let msg = failed(&d.berth(&["build", "--platform", other, c]));
    assert!(msg.contains("host's platform"), "{msg}");
    write(
        &ctx,
        "Dockerfile",
        &format!("FROM --platform={other} busybox\n"),
    );
    let msg = failed(&d.berth(&["build", c]));
    assert!(msg.contains("host's platform"), "{msg}");
}
