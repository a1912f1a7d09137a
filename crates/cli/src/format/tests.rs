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
