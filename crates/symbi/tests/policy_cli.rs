//! `symbi policy check|eval|test` end to end, on the shipped policies and on broken ones.

use assert_cmd::Command;
use predicates::prelude::*;
use std::path::PathBuf;

fn repo_policies() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../policies")
}

fn symbi(data: &tempfile::TempDir) -> Command {
    let mut c = Command::cargo_bin("symbi").unwrap();
    c.env_remove("SYMBI_CONFIG_PATH")
        .arg("--data-dir")
        .arg(data.path());
    c
}

#[test]
fn check_accepts_the_shipped_policies() {
    let data = tempfile::tempdir().unwrap();
    symbi(&data)
        .args(["policy", "check"])
        .arg(repo_policies())
        .assert()
        .success()
        .stdout(predicate::str::contains(": ok (2 files,"));
    let out = symbi(&data)
        .args(["policy", "check", "--format", "json"])
        .arg(repo_policies().join("default"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], true);
    assert!(v["policies"].as_u64().unwrap() >= 6);
}

#[test]
fn check_reports_positions_and_exits_1() {
    let data = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("ok.cedar"),
        "permit(principal, action, resource);\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("bad.cedar"),
        "// a comment\npermit(principal, action == Action::\"network_access\", resource)\nwhen { resource.domain == \"x\" };\n",
    )
    .unwrap();
    let bad = dir.path().join("bad.cedar").display().to_string();
    symbi(&data)
        .args(["policy", "check"])
        .arg(dir.path())
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains(format!("{bad}:3:"))
                .and(predicate::str::contains("error:"))
                .and(predicate::str::contains("^")),
        )
        .stdout(predicate::str::contains("rejected"));
    // A missing directory is a usage error.
    symbi(&data)
        .args(["policy", "check"])
        .arg(dir.path().join("nope"))
        .assert()
        .code(2);
}

#[test]
fn eval_prints_decisions_and_exit_codes() {
    let data = tempfile::tempdir().unwrap();
    let pol = repo_policies();
    // Runtime operation by an API client: allowed by the defaults.
    let out = symbi(&data)
        .args(["policy", "eval", "--policies"])
        .arg(&pol)
        .args([
            "--principal",
            "Client::\"ci\"",
            "--action",
            "Action::\"create_agent\"",
            "--resource",
            "Agent::\"greeter\"",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["decision"], "Allow");
    assert!(
        v["reasons"][0]
            .as_str()
            .unwrap()
            .contains("runtime-clients-manage-agents"),
        "{v}"
    );

    // Network access: denied by default, exit 1, the reason says why.
    let out = symbi(&data)
        .args(["policy", "eval", "--policies"])
        .arg(&pol)
        .args([
            "--principal",
            "Agent::\"fetcher\"",
            "--action",
            "network_access",
            "--resource",
            "Host::\"example.com\"",
        ])
        .args([
            "--resource-attrs",
            r#"{"scheme": "https"}"#,
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["decision"], "Deny");
    assert!(
        v["reasons"][0]
            .as_str()
            .unwrap()
            .contains("no rule allows action network_access on Host::\"example.com\""),
        "{v}"
    );

    // A forbid names its policy in text output.
    symbi(&data)
        .args(["policy", "eval", "--policies"])
        .arg(&pol)
        .args([
            "--principal",
            "Agent::\"a\"",
            "--action",
            "Action::\"file_read\"",
            "--resource",
            "File::\"/etc/passwd\"",
        ])
        .assert()
        .code(1)
        .stdout(
            predicate::str::starts_with("Deny\n")
                .and(predicate::str::contains("files-stay-in-project")),
        );

    // Conditions from annotations.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("llm.cedar"),
        "@id(\"llm\")\n@require_approval(\"true\")\n@approval_expiry(\"10m\")\npermit(principal is Agent, action == Action::\"use_llm\", resource);\n",
    )
    .unwrap();
    let out = symbi(&data)
        .args(["policy", "eval", "--policies"])
        .arg(dir.path())
        .args([
            "--principal",
            "Agent::\"w\"",
            "--action",
            "use_llm",
            "--resource",
            "Model::\"gpt-4o\"",
            "--context",
            r#"{"trigger": "api"}"#,
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["decision"], "AllowWithConditions");
    assert_eq!(v["conditions"][0]["type"], "human_approval");
    assert_eq!(v["conditions"][0]["expiry"], 600000);

    // Usage errors: exit 2.
    symbi(&data)
        .args([
            "policy",
            "eval",
            "--principal",
            "Agent::\"a\"",
            "--action",
            "fly",
            "--resource",
            "Tool::\"t\"",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("unknown action category"));
    symbi(&data)
        .args([
            "policy",
            "eval",
            "--principal",
            "Agent::\"a\"",
            "--action",
            "invoke_tool",
            "--resource",
            "Tool::\"t\"",
            "--context",
            "[1]",
        ])
        .assert()
        .code(2);
    symbi(&data)
        .args([
            "policy",
            "eval",
            "--principal",
            "Nobody",
            "--action",
            "invoke_tool",
            "--resource",
            "Tool::\"t\"",
        ])
        .assert()
        .code(2);
}

#[test]
fn eval_without_a_policy_directory_uses_the_shipped_defaults() {
    let data = tempfile::tempdir().unwrap();
    symbi(&data)
        .args([
            "policy",
            "eval",
            "--principal",
            "Operator::\"alice\"",
            "--action",
            "execute_agent",
            "--resource",
            "Agent::\"greeter\"",
        ])
        .assert()
        .success()
        .stderr(predicate::str::contains("using the shipped defaults"));
}

const TABLE: &str = r#"
policies = "pol"

[[case]]
name = "clients create agents"
principal = 'Client::"ci"'
action = "create_agent"
resource = 'Agent::"greeter"'
expect = "Allow"

[[case]]
name = "no network by default"
principal = 'Agent::"fetcher"'
action = 'Action::"network_access"'
resource = 'Host::"example.com"'
resource_attrs = { scheme = "https" }
expect = "Deny"
reasons_contain = ["no rule allows"]

[[case]]
name = "llm needs approval"
principal = 'Agent::"w"'
action = "use_llm"
resource = 'Model::"gpt-4o"'
expect = "AllowWithConditions"
condition_types = ["human_approval"]
"#;

#[test]
fn test_tables_pass_and_fail() {
    let data = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pol = dir.path().join("pol");
    std::fs::create_dir(&pol).unwrap();
    for (name, text) in [
        (
            "00-runtime.cedar",
            "../../policies/default/00-runtime.cedar",
        ),
        ("10-egress.cedar", "../../policies/default/10-egress.cedar"),
    ] {
        std::fs::copy(
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(text),
            pol.join(name),
        )
        .unwrap();
    }
    std::fs::write(pol.join("llm.cedar"), "@require_approval(\"true\")\npermit(principal is Agent, action == Action::\"use_llm\", resource);\n").unwrap();
    let table = dir.path().join("t.toml");
    std::fs::write(&table, TABLE).unwrap();
    symbi(&data)
        .args(["policy", "test"])
        .arg(&table)
        .assert()
        .success()
        .stdout(predicate::str::contains("3 passed, 0 failed"));

    // Break a row: listed with the mismatch, exit 1.
    std::fs::write(
        &table,
        TABLE.replace("expect = \"Deny\"", "expect = \"Allow\""),
    )
    .unwrap();
    symbi(&data)
        .args(["policy", "test"])
        .arg(&table)
        .assert()
        .code(1)
        .stdout(
            predicate::str::contains("FAIL no network by default")
                .and(predicate::str::contains("expected Allow, got Deny"))
                .and(predicate::str::contains("2 passed, 1 failed")),
        );

    // JSON tables and JSON output.
    let json_table = dir.path().join("t.json");
    std::fs::write(
        &json_table,
        r#"{"policies": "pol", "case": [{"principal": "Agent::\"a\"", "action": "file_write", "resource": "File::\"/tmp/x\"", "expect": "Deny", "reasons_contain": ["files-stay-in-project"]}]}"#,
    )
    .unwrap();
    let out = symbi(&data)
        .args(["policy", "test", "--format", "json"])
        .arg(&json_table)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (v["passed"].as_u64(), v["failed"].as_u64()),
        (Some(1), Some(0))
    );

    // A malformed table: positioned usage error.
    std::fs::write(
        &table,
        "[[case]]\nprincipal = 'Agent::\"a\"'\nactoin = \"x\"\n",
    )
    .unwrap();
    symbi(&data)
        .args(["policy", "test"])
        .arg(&table)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("t.toml:3:1"));
}
