//! End-to-end formatter tests, with expectations taken from docker/cli's own formatter tests.

use serde_json::{json, Value};

use super::*;

fn container_rows() -> Vec<Value> {
    ["foobar_baz", "foobar_bar"]
        .iter()
        .enumerate()
        .map(|(i, name)| {
            json!({
                "ID": format!("containerID{}", i + 1),
                "Names": name,
                "Image": "ubuntu",
                "Command": "\"\"",
                "CreatedAt": "2024-05-01 10:00:00 +0000 UTC",
                "RunningFor": "24 hours ago",
                "Ports": "",
                "State": "running",
                "Status": "",
                "Size": "0B",
                "Labels": "",
                "Mounts": "",
                "Networks": "",
                "LocalVolumes": "0",
                "@Label": {"com.docker.compose.project": "shop"}
            })
        })
        .collect()
}

fn render_ps(format: &str) -> String {
    match Formatter::parse(format)
        .and_then(|f| f.render(&headers(CONTAINER_HEADERS), &container_rows()))
    {
        Ok(s) => s,
        Err(e) => e.to_string(),
    }
}

#[test]
fn ps_default_tables() {
    assert_eq!(
        render_ps(&container_format("table", false, true)),
        "CONTAINER ID   IMAGE     COMMAND   CREATED        STATUS    PORTS     NAMES        SIZE\n\
         containerID1   ubuntu    \"\"        24 hours ago                       foobar_baz   0B\n\
         containerID2   ubuntu    \"\"        24 hours ago                       foobar_bar   0B\n"
    );
    assert_eq!(
        render_ps(&container_format("", false, false)),
        "CONTAINER ID   IMAGE     COMMAND   CREATED        STATUS    PORTS     NAMES\n\
         containerID1   ubuntu    \"\"        24 hours ago                       foobar_baz\n\
         containerID2   ubuntu    \"\"        24 hours ago                       foobar_bar\n"
    );
}

#[test]
fn ps_custom_and_quiet() {
    assert_eq!(
        render_ps(&container_format("table {{.Image}}", false, false)),
        "IMAGE\nubuntu\nubuntu\n"
    );
    assert_eq!(
        render_ps(&container_format("table {{.Image}}", true, false)),
        "containerID1\ncontainerID2\n"
    );
    assert_eq!(
        render_ps(&container_format("table", true, false)),
        "containerID1\ncontainerID2\n"
    );
    assert_eq!(
        render_ps(&container_format("table {{.State}}", false, true)),
        "STATE\nrunning\nrunning\n"
    );
    assert_eq!(render_ps("{{.Image}}"), "ubuntu\nubuntu\n");
    assert_eq!(
        render_ps("table {{split .Image \":\"}}"),
        "IMAGE\n[ubuntu]\n[ubuntu]\n"
    );
    assert_eq!(
        render_ps("{{.ID}}\\t{{.Names}}"),
        "containerID1\tfoobar_baz\ncontainerID2\tfoobar_bar\n"
    );
    assert_eq!(
        render_ps("table {{.ID}}\\t{{.Label \"com.docker.compose.project\"}}"),
        "CONTAINER ID   project\ncontainerID1   shop\ncontainerID2   shop\n"
    );
}

#[test]
fn ps_special_headers() {
    // docker/cli testdata/container-context-write-special-headers.golden
    let format = container_format(
        "table {{truncate .ID 5}}\\t{{json .Image}} {{.RunningFor}}/{{title .Status}}/{{pad .Ports 2 2}}.{{upper .Names}} {{lower .Status}}",
        false,
        true,
    );
    assert_eq!(
        render_ps(&format),
        "CONTAINER ID   IMAGE CREATED/STATUS/  PORTS  .NAMES STATUS\n\
         conta          \"ubuntu\" 24 hours ago//.FOOBAR_BAZ \n\
         conta          \"ubuntu\" 24 hours ago//.FOOBAR_BAR \n"
    );
}

#[test]
fn ps_raw() {
    let out = render_ps(&container_format("raw", false, true));
    let one = "container_id: containerID1\nimage: ubuntu\ncommand: \"\"\ncreated_at: 2024-05-01 10:00:00 +0000 UTC\nstate: running\nstatus:\nnames: foobar_baz\nlabels:\nports:\nsize: 0B\n\n";
    assert!(out.starts_with(one), "{out}");
    assert_eq!(
        render_ps(&container_format("raw", true, false)),
        "container_id: containerID1\ncontainer_id: containerID2\n"
    );
}

#[test]
fn ps_errors() {
    assert_eq!(
        render_ps("{{InvalidFunction}}"),
        "template parsing error: template: :1: function \"InvalidFunction\" not defined"
    );
    assert_eq!(
        render_ps("{{nil}}"),
        "template parsing error: template: :1:2: executing \"\" at <nil>: nil is not a command"
    );
    assert_eq!(
        render_ps("{{.Names.X}}"),
        "template parsing error: template: :1:8: executing \"\" at <.Names.X>: can't evaluate field X in type string"
    );
}

#[test]
fn tables_without_rows_print_the_header() {
    let f = |format: &str| {
        Formatter::parse(format)
            .and_then(|f| f.render(&headers(CONTAINER_HEADERS), &[]))
            .unwrap_or_else(|e| e.to_string())
    };
    assert_eq!(f("{{.Image}}"), "");
    assert_eq!(f("table {{.Image}}"), "IMAGE\n");
    assert_eq!(f("table {{.Image}}\t{{.Size}}"), "IMAGE     SIZE\n");
    // A header that fails keeps what was written before the failure.
    assert_eq!(f("table {{.Image}}\t{{json .}}"), "IMAGE     \n");
}

#[test]
fn json_rows_escape_html_like_docker() {
    let rows =
        vec![json!({"ID": "abc", "Image": "<none>", "Labels": "a=b&c", "@Label": {"a": "b&c"}})];
    let out = Formatter::parse("json")
        .and_then(|f| f.render(&headers(IMAGE_HEADERS), &rows))
        .unwrap_or_else(|e| e.to_string());
    assert_eq!(
        out,
        "{\"ID\":\"abc\",\"Image\":\"\\u003cnone\\u003e\",\"Labels\":\"a=b\\u0026c\"}\n"
    );
    let out = Formatter::parse("{{json .Image}}")
        .and_then(|f| f.render(&Value::Null, &rows))
        .unwrap_or_else(|e| e.to_string());
    assert_eq!(out, "\"<none>\"\n");
    let plain = Formatter::parse("{{json .}}")
        .map(|f| f.escape_row_html(false))
        .and_then(|f| f.render(&Value::Null, &rows))
        .unwrap_or_else(|e| e.to_string());
    // Plain data (escaping off) is encoded as is, `@` keys included.
    assert_eq!(
        plain,
        "{\"@Label\":{\"a\":\"b&c\"},\"ID\":\"abc\",\"Image\":\"<none>\",\"Labels\":\"a=b&c\"}\n"
    );
}

fn image_rows() -> Vec<Value> {
    let row = |repo: &str, tag: &str, id: &str, since: &str, digest: &str| {
        json!({
            "Repository": repo, "Tag": tag, "ID": id, "CreatedSince": since,
            "Digest": digest, "Size": "0B", "CreatedAt": "x", "Containers": "N/A"
        })
    };
    vec![
        row(
            "image",
            "tag1",
            "imageID1",
            "24 hours ago",
            "sha256:cbbf2f9a99b47fc460d422812b6a5adff7dfee951d8fa2e4a98caa0382cfbdbf",
        ),
        row("image", "tag2", "imageID2", "", "<none>"),
        row("<none>", "<none>", "imageID3", "24 hours ago", "<none>"),
    ]
}

fn render_images(format: &str) -> String {
    Formatter::parse(format)
        .and_then(|f| f.render(&headers(IMAGE_HEADERS), &image_rows()))
        .unwrap_or_else(|e| e.to_string())
}

#[test]
fn images_tables() {
    assert_eq!(
        render_images(&image_format("table", false, false)),
        "REPOSITORY   TAG       IMAGE ID   CREATED        SIZE\n\
         image        tag1      imageID1   24 hours ago   0B\n\
         image        tag2      imageID2   N/A            0B\n\
         <none>       <none>    imageID3   24 hours ago   0B\n"
    );
    assert_eq!(
        render_images(&image_format("table {{.Repository}}", false, true)),
        "REPOSITORY   DIGEST\n\
         image        sha256:cbbf2f9a99b47fc460d422812b6a5adff7dfee951d8fa2e4a98caa0382cfbdbf\n\
         image        <none>\n\
         <none>       <none>\n"
    );
    assert_eq!(
        render_images(&image_format("table", false, true)),
        "REPOSITORY   TAG       DIGEST                                                                    IMAGE ID   CREATED        SIZE\n\
         image        tag1      sha256:cbbf2f9a99b47fc460d422812b6a5adff7dfee951d8fa2e4a98caa0382cfbdbf   imageID1   24 hours ago   0B\n\
         image        tag2      <none>                                                                    imageID2   N/A            0B\n\
         <none>       <none>    <none>                                                                    imageID3   24 hours ago   0B\n"
    );
    assert_eq!(
        render_images(&image_format("table", true, true)),
        "imageID1\nimageID2\nimageID3\n"
    );
    assert_eq!(
        render_images(&image_format("table {{.Digest}}", true, false))
            .lines()
            .next(),
        Some("DIGEST")
    );
    let raw = render_images(&image_format("raw", false, false));
    assert!(
        raw.starts_with(
            "repository: image\ntag: tag1\nimage_id: imageID1\ncreated_at: x\nvirtual_size: 0B\n\n"
        ),
        "{raw}"
    );
}

#[test]
fn headers_map() {
    let h = headers(VOLUME_HEADERS);
    assert_eq!(h.get("Name"), Some(&json!("VOLUME NAME")));
    let out = Formatter::parse(VOLUME_TABLE_FORMAT)
        .and_then(|f| f.render(&h, &[json!({"Driver": "local", "Name": "data"})]))
        .unwrap_or_else(|e| e.to_string());
    assert_eq!(out, "DRIVER    VOLUME NAME\nlocal     data\n");
    assert!(Formatter::parse("table {{.ID}}")
        .map(|f| f.is_table())
        .unwrap_or(false));
}

/// A raw container as the API lists it, turned into a `docker ps` row with the [`human`]
/// helpers (`now` fixed through `running_for`).
struct RawContainer {
    id: &'static str,
    names: &'static [&'static str],
    image: &'static str,
    command: &'static str,
    running_for: &'static str,
    status: &'static str,
    ports: Vec<human::PortSummary>,
    size_rw: i64,
    size_root_fs: i64,
}

fn port(ip: &str, private_port: u16, public_port: u16, protocol: &str) -> human::PortSummary {
    human::PortSummary {
        ip: ip.to_string(),
        private_port,
        public_port,
        protocol: protocol.to_string(),
    }
}

fn ps_row(c: &RawContainer) -> Value {
    let names: Vec<String> = c.names.iter().map(|n| n.to_string()).collect();
    json!({
        "ID": human::truncate_id(c.id),
        "Names": human::names_column(&names, true),
        "Image": c.image,
        "Command": human::command_column(c.command, true),
        "RunningFor": c.running_for,
        "Status": c.status,
        "Ports": human::ports_column(&c.ports),
        "Size": human::container_size_column(c.size_rw, c.size_root_fs),
    })
}

/// Output of the real docker 28.2.2 CLI (`docker ps -a -s`) for the same containers, served by
/// a fake daemon.
#[test]
fn ps_table_matches_docker_28_capture() {
    let containers = [
        RawContainer {
            id: "4f2a9c1d3b5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a",
            names: &["/web"],
            image: "nginx:latest",
            command: "/docker-entrypoint.sh nginx -g 'daemon off;'",
            running_for: "25 years ago",
            status: "Up 2 hours",
            ports: vec![
                port("0.0.0.0", 80, 8080, "tcp"),
                port("::", 80, 8080, "tcp"),
                port("", 443, 0, "tcp"),
            ],
            size_rw: 12345,
            size_root_fs: 187_654_321,
        },
        RawContainer {
            id: "b00000000000111122223333444455556666777788889999aaaabbbbccccdddd",
            names: &["/db", "/web/db"],
            image: "postgres:16",
            command: "docker-entrypoint.sh postgres",
            running_for: "25 years ago",
            status: "Exited (0) 5 seconds ago",
            ports: vec![],
            size_rw: 0,
            size_root_fs: 0,
        },
        RawContainer {
            id: "c3c3c3c3c3c3aaaabbbbccccddddeeeeffff0000111122223333444455556666",
            names: &["/日本語の名前"],
            image: "1234567890ab",
            command: "python3 -c \"print('日本語テキスト')\"\ttab",
            running_for: "3 years ago",
            status: "Up 3 days (Paused)",
            ports: vec![
                port("127.0.0.1", 5000, 5000, "udp"),
                port("127.0.0.1", 5001, 5001, "udp"),
                port("", 7000, 0, "sctp"),
            ],
            size_rw: 999_999,
            size_root_fs: 0,
        },
    ];
    let rows: Vec<Value> = containers.iter().map(ps_row).collect();
    let out = Formatter::parse(&container_format("", false, true))
        .map(|f| f.row_type(CONTAINER_ROW_TYPE))
        .and_then(|f| f.render(&headers(CONTAINER_HEADERS), &rows))
        .unwrap_or_else(|e| e.to_string());
    let want = concat!(
        "CONTAINER ID   IMAGE          COMMAND                   CREATED        STATUS                     PORTS                                              NAMES          SIZE\n",
        "4f2a9c1d3b5e   nginx:latest   \"/docker-entrypoint.…\"    25 years ago   Up 2 hours                 443/tcp, 0.0.0.0:8080->80/tcp, [::]:8080->80/tcp   web            12.3kB (virtual 188MB)\n",
        "b00000000000   postgres:16    \"docker-entrypoint.s…\"    25 years ago   Exited (0) 5 seconds ago                                                      db             0B\n",
        "c3c3c3c3c3c3   1234567890ab   \"python3 -c \\\"print('…\"   3 years ago    Up 3 days (Paused)         127.0.0.1:5000-5001->5000-5001/udp, 7000/sctp      日本語の名前   1e+03kB\n",
    );
    assert_eq!(out, want);
}

/// Errors and nil printing of formatter rows, as the docker 28.2.2 CLI prints them.
#[test]
fn strict_rows_and_format_check() {
    let empty = empty_row(CONTAINER_HEADERS);
    let check = |f: &str| match check_format(f, &empty, CONTAINER_ROW_TYPE) {
        Ok(()) => "ok".to_string(),
        Err(e) => e.to_string(),
    };
    assert_eq!(check("table {{.ID}}\\t{{.Names}}"), "ok");
    assert_eq!(check("{{.Label \"x\"}} {{json .}}"), "ok");
    assert_eq!(
        check("{{.ID}"),
        "failed to parse template: template: :1: bad character U+007D '}'"
    );
    assert_eq!(
        check("table {{.Foo}}"),
        "failed to execute template: template: :1:8: executing \"\" at <.Foo>: can't evaluate field Foo in type *formatter.ContainerContext"
    );
    assert_eq!(
        check("{{.Label}}"),
        "failed to execute template: template: :1:2: executing \"\" at <.Label>: wrong number of args for Label: want 1 got 0"
    );
    assert_eq!(
        check("{{.State.Status}}"),
        "failed to execute template: template: :1:8: executing \"\" at <.State.Status>: can't evaluate field Status in type string"
    );
    assert_eq!(
        check("{{lower 3}}"),
        "failed to execute template: template: :1:8: executing \"\" at <3>: expected string; found 3"
    );
    let rows = vec![json!({"ID": "abc", "Platform": null, "@Label": {}})];
    let render = |f: &str| {
        Formatter::parse(f)
            .map(|f| f.row_type(CONTAINER_ROW_TYPE))
            .and_then(|f| f.render(&headers(CONTAINER_HEADERS), &rows))
            .unwrap_or_else(|e| e.to_string())
    };
    assert_eq!(render("{{.Platform}}|{{json .Platform}}"), "<nil>|null\n");
    assert_eq!(
        render("{{.Nope}}"),
        "template parsing error: template: :1:2: executing \"\" at <.Nope>: can't evaluate field Nope in type *formatter.ContainerContext"
    );
}
