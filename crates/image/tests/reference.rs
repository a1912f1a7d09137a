//! Reference parsing table, after the cases of Docker's `distribution/reference` tests.

use berth_image::reference::{validate_digest, Reference, ReferenceError};

const HEX64: &str = "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";

/// (input, full, familiar, tag to check, digest)
type Case = (String, String, String, Option<&'static str>, Option<String>);

#[test]
fn valid_references_normalise() {
    let d = format!("sha256:{HEX64}");
    let sha512 = format!("sha512:{}", "f".repeat(128));
    let cases: Vec<Case> = vec![
        (
            "busybox".into(),
            "docker.io/library/busybox:latest".into(),
            "busybox:latest".into(),
            Some("latest"),
            None,
        ),
        (
            "busybox:1.36".into(),
            "docker.io/library/busybox:1.36".into(),
            "busybox:1.36".into(),
            Some("1.36"),
            None,
        ),
        (
            "library/busybox".into(),
            "docker.io/library/busybox:latest".into(),
            "busybox:latest".into(),
            Some("latest"),
            None,
        ),
        (
            "docker.io/library/busybox".into(),
            "docker.io/library/busybox:latest".into(),
            "busybox:latest".into(),
            Some("latest"),
            None,
        ),
        (
            "index.docker.io/library/busybox".into(),
            "docker.io/library/busybox:latest".into(),
            "busybox:latest".into(),
            Some("latest"),
            None,
        ),
        (
            "docker.io/foo/bar".into(),
            "docker.io/foo/bar:latest".into(),
            "foo/bar:latest".into(),
            Some("latest"),
            None,
        ),
        (
            "docker.io/library/foo/bar".into(),
            "docker.io/library/foo/bar:latest".into(),
            "library/foo/bar:latest".into(),
            Some("latest"),
            None,
        ),
        (
            "test_com".into(),
            "docker.io/library/test_com:latest".into(),
            "test_com:latest".into(),
            Some("latest"),
            None,
        ),
        (
            "test.com:tag".into(),
            "docker.io/library/test.com:tag".into(),
            "test.com:tag".into(),
            Some("tag"),
            None,
        ),
        (
            "test.com:5000".into(),
            "docker.io/library/test.com:5000".into(),
            "test.com:5000".into(),
            Some("5000"),
            None,
        ),
        (
            "test.com/repo:tag".into(),
            "test.com/repo:tag".into(),
            "test.com/repo:tag".into(),
            Some("tag"),
            None,
        ),
        (
            "test:5000/repo".into(),
            "test:5000/repo:latest".into(),
            "test:5000/repo:latest".into(),
            Some("latest"),
            None,
        ),
        (
            "test:5000/repo:tag".into(),
            "test:5000/repo:tag".into(),
            "test:5000/repo:tag".into(),
            Some("tag"),
            None,
        ),
        (
            format!("test:5000/repo@{d}"),
            format!("test:5000/repo@{d}"),
            format!("test:5000/repo@{d}"),
            None,
            Some(d.clone()),
        ),
        (
            format!("test:5000/repo:tag@{d}"),
            format!("test:5000/repo:tag@{d}"),
            format!("test:5000/repo:tag@{d}"),
            Some("tag"),
            Some(d.clone()),
        ),
        (
            "lowercase:Uppercase".into(),
            "docker.io/library/lowercase:Uppercase".into(),
            "lowercase:Uppercase".into(),
            Some("Uppercase"),
            None,
        ),
        (
            "sub-dom1.foo.com/bar/baz/quux".into(),
            "sub-dom1.foo.com/bar/baz/quux:latest".into(),
            "sub-dom1.foo.com/bar/baz/quux:latest".into(),
            Some("latest"),
            None,
        ),
        (
            "b.gcr.io/test.example.com/my-app:test.example.com".into(),
            "b.gcr.io/test.example.com/my-app:test.example.com".into(),
            "b.gcr.io/test.example.com/my-app:test.example.com".into(),
            Some("test.example.com"),
            None,
        ),
        (
            "xn--n3h.com/myimage:xn--n3h.com".into(),
            "xn--n3h.com/myimage:xn--n3h.com".into(),
            "xn--n3h.com/myimage:xn--n3h.com".into(),
            Some("xn--n3h.com"),
            None,
        ),
        (
            format!("xn--7o8h.com/myimage:xn--7o8h.com@{sha512}"),
            format!("xn--7o8h.com/myimage:xn--7o8h.com@{sha512}"),
            format!("xn--7o8h.com/myimage:xn--7o8h.com@{sha512}"),
            Some("xn--7o8h.com"),
            Some(sha512.clone()),
        ),
        (
            "foo_bar.com:8080".into(),
            "docker.io/library/foo_bar.com:8080".into(),
            "foo_bar.com:8080".into(),
            Some("8080"),
            None,
        ),
        (
            "foo/foo_bar.com:8080".into(),
            "docker.io/foo/foo_bar.com:8080".into(),
            "foo/foo_bar.com:8080".into(),
            Some("8080"),
            None,
        ),
        (
            "192.168.1.1".into(),
            "docker.io/library/192.168.1.1:latest".into(),
            "192.168.1.1:latest".into(),
            Some("latest"),
            None,
        ),
        (
            "192.168.1.1:5000/repo:5050".into(),
            "192.168.1.1:5000/repo:5050".into(),
            "192.168.1.1:5000/repo:5050".into(),
            Some("5050"),
            None,
        ),
        (
            "[2001:db8::1]:5000/repo".into(),
            "[2001:db8::1]:5000/repo:latest".into(),
            "[2001:db8::1]:5000/repo:latest".into(),
            Some("latest"),
            None,
        ),
        (
            "[2001:db8::1]/repo".into(),
            "[2001:db8::1]/repo:latest".into(),
            "[2001:db8::1]/repo:latest".into(),
            Some("latest"),
            None,
        ),
        (
            "localhost/foo".into(),
            "localhost/foo:latest".into(),
            "localhost/foo:latest".into(),
            Some("latest"),
            None,
        ),
        (
            "localhost:5000/foo/bar:v1".into(),
            "localhost:5000/foo/bar:v1".into(),
            "localhost:5000/foo/bar:v1".into(),
            Some("v1"),
            None,
        ),
        (
            "Foo/bar".into(),
            "Foo/bar:latest".into(),
            "Foo/bar:latest".into(),
            Some("latest"),
            None,
        ),
        (
            "registry.io/foo/project--id.module--name.ver---sion--name".into(),
            "registry.io/foo/project--id.module--name.ver---sion--name:latest".into(),
            "registry.io/foo/project--id.module--name.ver---sion--name:latest".into(),
            Some("latest"),
            None,
        ),
        (
            "a__b".into(),
            "docker.io/library/a__b:latest".into(),
            "a__b:latest".into(),
            Some("latest"),
            None,
        ),
        (
            format!("busybox:{}", "t".repeat(128)),
            format!("docker.io/library/busybox:{}", "t".repeat(128)),
            format!("busybox:{}", "t".repeat(128)),
            None,
            None,
        ),
    ];
    for (input, full, familiar, tag, digest) in cases {
        let r = Reference::parse(&input).unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(r.full(), full, "full of {input}");
        assert_eq!(r.familiar(), familiar, "familiar of {input}");
        if tag.is_some() {
            assert_eq!(r.tag(), tag, "tag of {input}");
        }
        assert_eq!(r.digest().map(str::to_string), digest, "digest of {input}");
    }
}

#[test]
fn parse_named_adds_no_tag() {
    let r = Reference::parse_named("busybox").expect("parse");
    assert_eq!(r.tag(), None);
    assert_eq!(r.full(), "docker.io/library/busybox");
    assert_eq!(r.familiar(), "busybox");
    assert_eq!(r.repository(), "docker.io/library/busybox");
    assert_eq!(r.familiar_repository(), "busybox");
    let d = format!("sha256:{HEX64}");
    let r = Reference::parse(&format!("busybox@{d}")).expect("digest");
    assert_eq!(r.tag(), None, "a digest reference gets no default tag");
    assert_eq!(r.familiar(), format!("busybox@{d}"));
    let r = Reference::parse("localhost:5000/a/b:1").expect("parse");
    assert_eq!(r.familiar_repository(), "localhost:5000/a/b");
    assert_eq!(r.domain(), "localhost:5000");
    assert_eq!(r.path(), "a/b");
}

#[test]
fn invalid_references_have_dockers_messages() {
    let invalid = "invalid reference format";
    let cases: Vec<(String, String)> = vec![
        ("".into(), invalid.into()),
        (":justtag".into(), invalid.into()),
        (format!("@sha256:{HEX64}"), invalid.into()),
        ("x@sha256:short".into(), invalid.into()),
        ("aa/asdf$$^/aa".into(), invalid.into()),
        ("-foo".into(), invalid.into()),
        ("foo-".into(), invalid.into()),
        ("a..b".into(), invalid.into()),
        ("a___b".into(), invalid.into()),
        ("foo:bar:baz".into(), invalid.into()),
        ("foo@bar@baz".into(), invalid.into()),
        ("[fe80::1%eth0]:5000/repo".into(), invalid.into()),
        ("[2001:db8::1]".into(), invalid.into()),
        ("repo/".into(), invalid.into()),
        ("a:b c".into(), invalid.into()),
        (format!("busybox:{}", "t".repeat(129)), invalid.into()),
        (
            "UPPER".into(),
            "invalid reference format: repository name (library/UPPER) must be lowercase".into(),
        ),
        (
            "Uppercase:tag".into(),
            "invalid reference format: repository name (library/Uppercase) must be lowercase"
                .into(),
        ),
        (
            "foo/Bar".into(),
            "invalid reference format: repository name (foo/Bar) must be lowercase".into(),
        ),
        (
            "Foo/Bar".into(),
            "invalid reference format: repository name (Bar) must be lowercase".into(),
        ),
        (
            HEX64.into(),
            format!(
                "invalid repository name ({HEX64}), cannot specify 64-byte hexadecimal strings"
            ),
        ),
        (
            format!("validname@invaliddigest:{HEX64}"),
            "unsupported digest algorithm".into(),
        ),
        (
            format!("validname@sha256:{}", "f".repeat(32)),
            "invalid checksum digest length".into(),
        ),
        (
            format!("validname@sha256:{}", "F".repeat(64)),
            "invalid checksum digest format".into(),
        ),
        (
            format!("{}a", "a/".repeat(128)),
            "repository name must not be more than 255 characters".into(),
        ),
    ];
    for (input, want) in cases {
        match Reference::parse(&input) {
            Ok(r) => panic!("{input:?} parsed as {}", r.full()),
            Err(e) => assert_eq!(e.to_string(), want, "message for {input:?}"),
        }
    }
}

#[test]
fn name_length_limit_counts_the_domain() {
    // docker.io/library/ is 18 characters: 237 more make 255, which is allowed; 238 is not.
    let ok = "a".repeat(237);
    Reference::parse(&ok).expect("255 characters");
    let too_long = "a".repeat(238);
    assert!(matches!(
        Reference::parse(&too_long),
        Err(ReferenceError::NameTooLong { .. })
    ));
}

#[test]
fn digest_validation() {
    validate_digest(&format!("sha256:{HEX64}")).expect("valid");
    assert!(validate_digest("sha256:abc").is_err());
    assert!(validate_digest(&format!("md5:{HEX64}")).is_err());
    assert_eq!(
        Reference::parse("x")
            .expect("x")
            .with_tag("bad tag")
            .map(|r| r.full()),
        Err(ReferenceError::InvalidFormat {
            reference: "docker.io/library/x:bad tag".into()
        })
    );
}
