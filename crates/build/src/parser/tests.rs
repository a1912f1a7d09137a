use super::*;
use std::path::Path;

/// Golden files: every `testdata/parse/*.Dockerfile` parses into the JSON in its `.golden` twin.
/// `UPDATE_GOLDEN=1 cargo test -p berth-build` rewrites them.
#[test]
fn corpus_matches_golden_files() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/testdata/parse");
    let mut seen = 0;
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.extension().and_then(|e| e.to_str()) != Some("Dockerfile") {
            continue;
        }
        seen += 1;
        let text = std::fs::read_to_string(&path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let parsed = parse(&text, &name).unwrap_or_else(|e| panic!("{name}: {e}"));
        let got = serde_json::to_string_pretty(&parsed).unwrap() + "\n";
        let golden = path.with_extension("golden");
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(&golden, &got).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&golden)
            .unwrap_or_else(|_| panic!("{}: missing; run with UPDATE_GOLDEN=1", golden.display()));
        if got != want {
            let diff: Vec<String> = want
                .lines()
                .zip(got.lines())
                .enumerate()
                .filter(|(_, (w, g))| w != g)
                .take(5)
                .map(|(i, (w, g))| format!("line {}:\n  want {w}\n  got  {g}", i + 1))
                .collect();
            panic!(
                "{name} differs from {}:\n{}",
                golden.display(),
                diff.join("\n")
            );
        }
    }
    assert!(seen >= 5, "the corpus is missing");
}

fn one(text: &str) -> Dockerfile {
    parse(text, "Dockerfile").unwrap_or_else(|e| panic!("{e}"))
}

fn kinds(text: &str) -> Vec<Kind> {
    one(text).stages[0]
        .instructions
        .iter()
        .map(|i| i.kind.clone())
        .collect()
}

#[test]
fn continuation_joins_lines_and_skips_comments_and_blank_lines() {
    let d = one("FROM a\nRUN echo a \\\n  # note\n\n  b\nCMD x\n");
    let run = &d.stages[0].instructions[0];
    assert_eq!(run.original, "RUN echo a   b");
    assert_eq!((run.line, run.end_line), (2, 5));
    assert_eq!(d.stages[0].instructions[1].line, 6);
}

#[test]
fn an_escaped_escape_token_does_not_continue() {
    let k = kinds("FROM a\nRUN echo x\\\\\nCMD y\n");
    assert_eq!(k.len(), 2);
}

#[test]
fn directives_only_at_the_top() {
    let d = one("# escape=`\n# syntax=x/y\nFROM a\nRUN a `\n b\n");
    assert_eq!(d.escape, '`');
    assert_eq!(d.syntax.as_deref(), Some("x/y"));
    // After a comment line, `# escape=` is an ordinary comment.
    let d = one("# hello\n# escape=`\nFROM a\nRUN a \\\n b\n");
    assert_eq!(d.escape, '\\');
    assert_eq!(
        d.stages[0].instructions[0].kind,
        Kind::Run(Run {
            command: Command::Shell("a  b".into()),
            heredocs: vec![],
            mounts: vec![],
            network: None,
            security: None
        })
    );
}

#[test]
fn exec_and_shell_forms() {
    let k = kinds("FROM a\nCMD [\"a\", \"b c\"]\nENTRYPOINT [not json\nCMD []\n");
    assert_eq!(
        k[0],
        Kind::Cmd(Command::Exec(vec!["a".into(), "b c".into()]))
    );
    assert_eq!(k[1], Kind::Entrypoint(Command::Shell("[not json".into())));
    assert_eq!(k[2], Kind::Cmd(Command::Exec(vec![])));
}

#[test]
fn env_pairs_and_legacy_form() {
    let k = kinds("FROM a\nENV A=1 B=\"x y\" C=a\\ b\nENV KEY value with  spaces\n");
    assert_eq!(
        k[0],
        Kind::Env(vec![
            ("A".into(), "1".into()),
            ("B".into(), "\"x y\"".into()),
            ("C".into(), "a\\ b".into())
        ])
    );
    assert_eq!(
        k[1],
        Kind::Env(vec![("KEY".into(), "value with  spaces".into())])
    );
}

#[test]
fn heredocs_are_read_after_the_instruction() {
    let d =
        one("FROM a\nRUN <<EOF\nset -e\necho $HOME\nEOF\nRUN <<-'X'\n\tquoted\n\tX\nCMD done\n");
    let ins = &d.stages[0].instructions;
    assert_eq!(ins.len(), 3);
    let Kind::Run(r) = &ins[0].kind else { panic!() };
    assert_eq!(r.heredocs[0].content, "set -e\necho $HOME\n");
    assert!(r.heredocs[0].expand);
    assert_eq!((ins[0].line, ins[0].end_line), (2, 5));
    let Kind::Run(r) = &ins[1].kind else { panic!() };
    assert_eq!(r.heredocs[0].content, "quoted\n");
    assert!(!r.heredocs[0].expand);
    assert_eq!(ins[2].line, 9);
}

#[test]
fn stages_names_and_meta_args() {
    let d = one("ARG V=1\nFROM a:$V AS One\nFROM one\nFROM --platform=linux/amd64 c as three\n");
    assert_eq!(d.meta_args.len(), 1);
    assert_eq!(d.stages.len(), 3);
    assert_eq!(d.stages[0].name.as_deref(), Some("one"));
    assert_eq!(d.stages[1].base, "one");
    assert_eq!(d.stages[2].platform.as_deref(), Some("linux/amd64"));
}

#[test]
fn copy_flags_and_forms() {
    let k = kinds("FROM a\nCOPY --from=b --chown=1:1 --link x y /z/\nCOPY [\"a b\", \"/c d\"]\n");
    let Kind::Copy(c) = &k[0] else { panic!() };
    assert_eq!(c.sources, vec!["x", "y"]);
    assert_eq!(c.dest, "/z/");
    assert_eq!(c.from.as_deref(), Some("b"));
    assert_eq!(c.chown.as_deref(), Some("1:1"));
    assert!(c.link);
    let Kind::Copy(c) = &k[1] else { panic!() };
    assert_eq!(c.sources, vec!["a b"]);
    assert_eq!(c.dest, "/c d");
}

/// Errors name the line and what is wrong.
#[test]
fn bad_input_errors() {
    let cases: &[(&str, usize, &str)] = &[
        (
            "FROM a\nFRO b\n",
            2,
            "unknown instruction: FRO (did you mean from?)",
        ),
        ("FROM a\nBOGUS x\n", 2, "unknown instruction: BOGUS"),
        ("RUN x\nFROM a\n", 1, "no build stage in current context"),
        ("# just a comment\n", 1, "no FROM instruction"),
        (
            "FROM a b\n",
            1,
            "FROM requires either one or three arguments",
        ),
        ("FROM a AS 1x\n", 1, "invalid name for build stage"),
        ("FROM a AS x\nFROM b AS x\n", 2, "duplicate stage name"),
        (
            "FROM a\nCOPY x\n",
            2,
            "COPY requires at least two arguments",
        ),
        ("FROM a\nCOPY --bogus=1 x y\n", 2, "unknown flag: bogus"),
        (
            "FROM a\nRUN --mount\n",
            2,
            "RUN requires at least one argument",
        ),
        (
            "FROM a\nSHELL sh -c\n",
            2,
            "SHELL requires the arguments to be in JSON form",
        ),
        ("FROM a\nENV\n", 2, "ENV requires at least one argument"),
        ("FROM a\nENV A=1 B\n", 2, "can't find = in \"B\""),
        ("FROM a\nENV A\n", 2, "ENV must have two arguments"),
        (
            "FROM a\nWORKDIR a b\n",
            2,
            "WORKDIR requires exactly one argument",
        ),
        (
            "FROM a\nHEALTHCHECK sh\n",
            2,
            "HEALTHCHECK requires NONE or CMD",
        ),
        ("FROM a\nONBUILD ONBUILD RUN x\n", 2, "chaining ONBUILD"),
        (
            "FROM a\nONBUILD FROM x\n",
            2,
            "FROM isn't allowed as an ONBUILD trigger",
        ),
        ("FROM a\nRUN <<EOF\nno end\n", 2, "unterminated heredoc EOF"),
        ("# escape=x\nFROM a\n", 1, "invalid escape token"),
        (
            "FROM a\nCOPY --link=maybe a b\n",
            2,
            "expecting boolean value",
        ),
    ];
    for (text, line, want) in cases {
        let e = parse(text, "Dockerfile.test").expect_err(text);
        assert_eq!(e.line, *line, "{text:?}: {e}");
        assert!(
            e.to_string().contains(want),
            "{text:?}: got {e}, want {want}"
        );
        assert!(e.to_string().contains("Dockerfile.test"), "{e}");
    }
}

#[test]
fn onbuild_trigger_is_parsed() {
    let k = kinds("FROM a\nONBUILD COPY . /src\n");
    let Kind::Onbuild(t) = &k[0] else { panic!() };
    assert_eq!(t.original, "COPY . /src");
    assert!(matches!(t.kind, Kind::Copy(_)));
}

#[test]
fn split_words_keeps_quotes_for_expansion() {
    assert_eq!(
        split_words("a \"b c\" 'd e' f\\ g", '\\'),
        vec!["a", "\"b c\"", "'d e'", "f\\ g"]
    );
}
