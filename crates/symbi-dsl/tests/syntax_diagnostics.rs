//! GRAMMAR §6.1: positions of missing / unexpected tokens and unclosed delimiters, the
//! message conventions, and both output forms.

mod common;
use common::*;

#[test]
fn missing_token_is_reported_just_after_the_previous_token() {
    // `;` missing at the end of line 2: column after `1`, not the start of line 3.
    err1(
        "function f() {\n    let x = 1\n    let y = 2;\n}",
        "P002",
        2,
        14,
    );
    // `:` missing after `allow`.
    err1("policy p {\n    allow read\n}", "P001", 2, 10);
}

#[test]
fn unexpected_token_is_reported_at_its_start() {
    err1("function f() {\n    let x = ];\n}", "P001", 2, 13);
    assert_eq!(
        msg("function f() {\n    let x = ];\n}"),
        "expected an expression, found `]`"
    );
}

#[test]
fn unclosed_delimiter_is_reported_at_end_of_file_with_the_opener() {
    let src = "agent a {\n    with {\n        f(1, 2\n";
    let p = symbi_dsl::parse(src, "u.symbi");
    let d = p
        .diagnostics
        .iter()
        .find(|d| d.code == "P003")
        .expect("P003");
    assert_eq!(d.span.start as usize, src.len());
    let pos = p.source.position(d.span.start);
    assert_eq!((pos.line, pos.column), (4, 1));
    let opener = p.source.position(d.labels[0].span.start);
    assert_eq!((opener.line, opener.column), (3, 10));
    assert_eq!(d.labels[0].message, "unclosed `(` opened here");
    // Only the innermost unclosed delimiter is reported.
    assert_eq!(p.diagnostics.iter().filter(|d| d.code == "P003").count(), 1);
}

#[test]
fn messages_follow_the_conventions() {
    let bad = [
        "agent {",
        "agent a { name: 1 }",
        "agent a { let x = 1; }",
        "struct X {}",
        "function f() { let if = 1; }",
        "function f() { x = 1 }",
        "policy p { allow: a with b }",
        "function f() { let x = \"abc",
        "function f() { let x = 5min; }",
        "function f() { let x = 'a'; }",
        "/* open",
        "function f() { let x = \"\\u{d800}\"; }",
        "function f() { let x = 99999999999999999999; }",
        "memory m { store: markdown }",
        "function f() { match x { \"a\" => return 1; } }",
        "function f() { try {} catch e {} }",
    ];
    for src in bad {
        let p = symbi_dsl::parse(src, "m.symbi");
        assert!(!p.diagnostics.is_empty(), "{src}");
        for d in &p.diagnostics {
            let first = d.message.chars().next().unwrap();
            assert!(!first.is_uppercase(), "{src}: {}", d.message);
            assert!(!d.message.ends_with('.'), "{src}: {}", d.message);
            assert!(!d.message.contains(d.code), "{src}: {}", d.message);
            for internal in [
                "token",
                "Token",
                "Kw::",
                "PResult",
                "parser state",
                "lookahead",
            ] {
                assert!(!d.message.contains(internal), "{src}: {}", d.message);
            }
            let rendered = p.source.render(d);
            let head = rendered.lines().next().unwrap();
            assert!(
                head.starts_with("m.symbi:") && head.ends_with(&format!("[{}]", d.code)),
                "{head}"
            );
            assert!(head.contains(": error: "), "{head}");
        }
    }
}

#[test]
fn first_line_matches_the_grep_convention() {
    let p = symbi_dsl::parse(
        "agent a {\n  with {\n    let r = 1\n  }\n}",
        "dir/probe.symbi",
    );
    let text = p.render_diagnostics();
    let head = text.lines().next().unwrap();
    let (loc, rest) = head.split_once(": error: ").unwrap();
    let parts: Vec<_> = loc.rsplitn(3, ':').collect();
    assert_eq!(parts, ["14", "3", "dir/probe.symbi"]);
    assert!(rest.ends_with(" [P002]"));
}

#[test]
fn json_lines_have_every_field() {
    let p = symbi_dsl::parse("agent a {\n  with {\n    f(1,\n", "j.symbi");
    for d in &p.diagnostics {
        let v: serde_json::Value = serde_json::from_str(&p.source.to_json_line(d)).unwrap();
        let obj = v.as_object().unwrap();
        let keys: Vec<_> = obj.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "severity",
                "code",
                "message",
                "file",
                "line",
                "column",
                "end_line",
                "end_column",
                "labels",
                "help"
            ]
        );
        assert_eq!(v["file"], "j.symbi");
        assert!(v["line"].as_u64().unwrap() >= 1 && v["column"].as_u64().unwrap() >= 1);
        for l in v["labels"].as_array().unwrap() {
            for k in ["line", "column", "end_line", "end_column", "message"] {
                assert!(l.get(k).is_some(), "{k}");
            }
        }
    }
}

#[test]
fn partial_program_is_kept_after_errors() {
    let p = symbi_dsl::parse(
        "agent a { with { let = 1; ok(); } }\nfunction g() { return 1 }\nagent b { with { done(); } }",
        "p.symbi",
    );
    assert_eq!(p.diagnostics.len(), 2);
    assert_eq!(p.program.items.len(), 3);
    let symbi_dsl::ast::Item::Agent(a) = &p.program.items[0] else {
        panic!()
    };
    assert_eq!(
        a.with_blocks().next().unwrap().body.stmts.len(),
        1,
        "`ok();` survives the bad `let`"
    );
}
