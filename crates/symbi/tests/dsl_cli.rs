//! `symbi dsl parse|check|fmt`: output forms and exit codes of GRAMMAR §6.1.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn symbi(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_symbi"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run symbi")
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

const BAD: &str = "agent a {\n    with {\n        let r = http.get(url)\n        x;\n    }\n}\n";

#[test]
fn parse_reports_errors_in_the_human_form_and_exits_1() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "probe.symbi", BAD);
    let out = symbi(&["dsl", "parse", "probe.symbi"], d.path());
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(
        err,
        "probe.symbi:3:30: error: expected `;` after the `let` statement [P002]\n  |\n3 |         let r = http.get(url)\n  |                              ^ add `;` here\nhelp: statements other than if/for/while/match/try end with a semicolon\n"
    );
}

#[test]
fn parse_json_lines() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "probe.symbi", BAD);
    let out = symbi(
        &["dsl", "parse", "--format", "json", "probe.symbi"],
        d.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1);
    let v = &lines[0];
    assert_eq!(v["severity"], "error");
    assert_eq!(v["code"], "P002");
    assert_eq!(v["file"], "probe.symbi");
    assert_eq!(
        (v["line"].as_u64(), v["column"].as_u64()),
        (Some(3), Some(30))
    );
    assert!(v["message"].as_str().unwrap().starts_with("expected `;`"));
    for key in ["end_line", "end_column", "labels", "help"] {
        assert!(v.get(key).is_some(), "{key}");
    }
}

#[test]
fn clean_files_exit_0_and_unreadable_exit_2() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "ok.symbi", "agent a { with { return 1; } }\n");
    assert_eq!(
        symbi(&["dsl", "parse", "ok.symbi"], d.path()).status.code(),
        Some(0)
    );
    assert_eq!(
        symbi(&["dsl", "check", "ok.symbi"], d.path()).status.code(),
        Some(0)
    );
    assert_eq!(
        symbi(&["dsl", "parse", "ok.symbi", "missing.symbi"], d.path())
            .status
            .code(),
        Some(2)
    );
    // Invalid UTF-8 is a diagnostic (L001), not an unreadable file.
    std::fs::write(d.path().join("bin.symbi"), b"agent \xff").unwrap();
    let out = symbi(&["dsl", "parse", "bin.symbi"], d.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("[L001]"));
    // A directory is searched for .symbi / .dsl files.
    std::fs::create_dir(d.path().join("sub")).unwrap();
    write(&d.path().join("sub"), "x.dsl", "agent b {");
    assert_eq!(
        symbi(&["dsl", "parse", "sub"], d.path()).status.code(),
        Some(1)
    );
}

#[test]
fn fmt_rewrites_in_place_and_check_reports() {
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        "a.symbi",
        "agent a{with timeout=1s{return 1+2;}} # done\n",
    );
    let out = symbi(&["dsl", "fmt", "--check", "a.symbi"], d.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("a.symbi: would be reformatted"));
    assert_eq!(
        symbi(&["dsl", "fmt", "a.symbi"], d.path()).status.code(),
        Some(0)
    );
    let text = std::fs::read_to_string(d.path().join("a.symbi")).unwrap();
    assert_eq!(
        text,
        "agent a {\n    with timeout = 1s {\n        return 1 + 2;\n    }\n} # done\n"
    );
    assert_eq!(
        symbi(&["dsl", "fmt", "--check", "a.symbi"], d.path())
            .status
            .code(),
        Some(0)
    );
    // No temporary file is left behind.
    assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
}

#[test]
fn fmt_leaves_files_with_syntax_errors_untouched() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "bad.symbi", BAD);
    let out = symbi(&["dsl", "fmt", "bad.symbi"], d.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("[P002]"));
    assert_eq!(
        std::fs::read_to_string(d.path().join("bad.symbi")).unwrap(),
        BAD
    );
}

#[test]
fn fmt_stdin_to_stdout() {
    let d = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_symbi"))
        .args(["dsl", "fmt", "-"])
        .current_dir(d.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"type T=String")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "type T = String\n");
    assert_eq!(
        symbi(&["dsl", "fmt", "-", "x.symbi"], d.path())
            .status
            .code(),
        Some(2)
    );
}
