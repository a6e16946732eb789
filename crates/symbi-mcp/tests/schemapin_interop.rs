//! SchemaPin interop: tool schemas signed by the Python `schemapin` package on a Python
//! `mcp` server, verified by symbi in strict mode; tampered schema, wrong key, substituted
//! key after pinning and revoked key are refused with a clear reason.

mod common;

use common::*;
use serde_json::{Map, json};
use symbi_mcp::{CallOptions, McpError, ToolEntry, VerificationStatus};
use symbi_types::decision::VerificationMode;

struct Fixture {
    _state: tempfile::TempDir,
    peer: HttpPeer,
    private: String,
    public: String,
}

fn fixture() -> Fixture {
    let state = tempfile::tempdir().unwrap();
    let (private, public) = python_keypair();
    std::fs::write(state.path().join("signing.pem"), &private).unwrap();
    std::fs::write(
        state.path().join("wellknown.json"),
        python_well_known(&public, &[], None),
    )
    .unwrap();
    let peer = HttpPeer::start(state.path());
    Fixture {
        _state: state,
        peer,
        private,
        public,
    }
}

impl Fixture {
    fn server(&self) -> symbi_config::sections::mcp::McpServer {
        let mut s = http("py", &self.peer.url());
        s.publisher = Some(self.peer.base());
        s
    }
    fn write(&self, file: &str, text: &str) {
        std::fs::write(self.peer.state.join(file), text).unwrap();
    }
}

fn code(t: &ToolEntry) -> String {
    match &t.verification {
        VerificationStatus::Invalid { code, .. } => code.clone(),
        other => other.word().to_string(),
    }
}

fn tool<'a>(tools: &'a [ToolEntry], name: &str) -> &'a ToolEntry {
    tools.iter().find(|t| t.name == name).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_signed_schemas_verify_in_strict_mode_and_pin_on_first_use() {
    let f = fixture();
    let env = manager(vec![f.server()], VerificationMode::Strict);
    env.mcp.start().await[0].1.as_ref().expect("connects");
    let tools = env.mcp.tools();
    assert_eq!(tools.len(), 11);
    for t in &tools {
        assert!(
            t.accepted && t.verification.is_verified(),
            "{} : {:?}",
            t.name,
            t.verification
        );
    }
    let host = format!("127.0.0.1:{}", f.peer.port);
    match &tools[0].verification {
        VerificationStatus::Verified {
            domain,
            fingerprint,
            pin,
            developer,
        } => {
            assert_eq!(domain, &host);
            assert_eq!(fingerprint, &fingerprint_of(&f.public));
            assert_eq!(pin, "first_use");
            assert_eq!(developer.as_deref(), Some("Symbi Test Publisher"));
        }
        other => panic!("{other:?}"),
    }
    assert!(
        matches!(&tools[1].verification, VerificationStatus::Verified { pin, .. } if pin == "pinned")
    );
    let out = env
        .mcp
        .call_tool(
            "add",
            Map::from_iter([("a".into(), json!(2)), ("b".into(), json!(3))]),
            CallOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(out.value, json!({"sum": 5}));

    // Every verification is an audit event.
    let ev: Vec<_> = env
        .log
        .events()
        .into_iter()
        .filter(|e| e.event.event_type == "tool_verification")
        .collect();
    assert_eq!(ev.len(), 11);
    assert_eq!(ev[0].event.details["status"], "verified");
    assert_eq!(ev[0].event.details["pin"], "first_use");
    assert_eq!(ev[0].event.details["mode"], "strict");

    // The pin persists: a new manager over the same data directory finds the key pinned.
    let pins = env.data.path().join("mcp/pins");
    assert!(
        std::fs::read_dir(&pins).unwrap().count() == 1,
        "one pin file for the publisher"
    );
    env.mcp.shutdown().await;
    let settings = symbi_mcp::McpSettings::from_config(
        &symbi_config::McpSection {
            servers: vec![f.server()],
            ..Default::default()
        },
        env.data.path(),
    )
    .unwrap();
    let log = symbi_types::MemoryEventLog::default();
    let again = symbi_mcp::McpManager::new(settings, std::sync::Arc::new(log)).unwrap();
    again.start().await[0].1.as_ref().unwrap();
    assert!(again.tools().iter().all(
        |t| matches!(&t.verification, VerificationStatus::Verified { pin, .. } if pin == "pinned")
    ));
    again.shutdown().await;
}

fn fingerprint_of(p: &str) -> String {
    fingerprint(p)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_schema_is_refused() {
    let f = fixture();
    let env = manager(vec![f.server()], VerificationMode::Strict);
    env.mcp.start().await[0].1.as_ref().unwrap();
    f.write("tamper", "echo");
    let tools = env.mcp.refresh("py").await.unwrap();
    let echo = tool(&tools, "echo");
    assert_eq!(code(echo), "SIGNATURE_INVALID");
    assert!(!echo.accepted);
    assert!(
        tool(&tools, "add").accepted,
        "untouched tools stay verified"
    );
    match env
        .mcp
        .call_tool(
            "echo",
            Map::from_iter([("text".into(), json!("x"))]),
            CallOptions::default(),
        )
        .await
    {
        Err(McpError::Refused { tool, reason }) => {
            assert_eq!(tool, "py.echo");
            assert!(
                reason.contains("SIGNATURE_INVALID") && reason.contains("tampered"),
                "{reason}"
            );
        }
        other => panic!("expected Refused, got {other:?}"),
    }
    let last = env
        .log
        .events()
        .into_iter()
        .filter(|e| e.event.details["tool"] == "echo")
        .last()
        .unwrap();
    assert_eq!(last.event.details["accepted"], false);
    assert_eq!(last.event.details["code"], "SIGNATURE_INVALID");
    env.mcp.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_key_is_refused_and_not_pinned() {
    let f = fixture();
    let (_, other_public) = python_keypair();
    f.write(
        "wellknown.json",
        &python_well_known(&other_public, &[], None),
    );
    let env = manager(vec![f.server()], VerificationMode::Strict);
    env.mcp.start().await[0].1.as_ref().unwrap();
    let tools = env.mcp.tools();
    assert!(
        tools
            .iter()
            .all(|t| code(t) == "SIGNATURE_INVALID" && !t.accepted)
    );
    assert!(
        env.mcp.pins().list().unwrap().is_empty(),
        "a key that verifies nothing is never pinned"
    );
    let e = env
        .mcp
        .call_tool("add", Map::new(), CallOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(e, McpError::Refused { .. }), "{e}");
    env.mcp.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn substituted_key_after_pinning_is_refused_until_repinned() {
    let f = fixture();
    let env = manager(vec![f.server()], VerificationMode::Strict);
    env.mcp.start().await[0].1.as_ref().unwrap();
    assert!(env.mcp.tools().iter().all(|t| t.accepted));

    // The publisher's document and the signatures now use another key: a substitution.
    let (private2, public2) = python_keypair();
    f.write("signing.pem", &private2);
    f.write("wellknown.json", &python_well_known(&public2, &[], None));
    let tools = env.mcp.refresh("py").await.unwrap();
    for t in &tools {
        assert_eq!(code(t), "KEY_PIN_MISMATCH", "{}", t.name);
        let VerificationStatus::Invalid { reason, .. } = &t.verification else {
            unreachable!()
        };
        assert!(
            reason.contains(&fingerprint(&f.public)) && reason.contains(&fingerprint(&public2)),
            "{reason}"
        );
    }
    let e = env
        .mcp
        .call_tool("add", Map::new(), CallOptions::default())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("KEY_PIN_MISMATCH"), "{e}");

    // The operator accepts the new key explicitly.
    let tools = env.mcp.repin("py").await.unwrap();
    assert!(tools.iter().all(|t| t.accepted), "re-pinned");
    let _ = &f.private;
    env.mcp.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_key_is_refused_from_either_revocation_source() {
    let f = fixture();
    let fp = fingerprint(&f.public);
    // 1. The discovery document's revoked_keys.
    f.write(
        "wellknown.json",
        &python_well_known(&f.public, &[fp.clone()], None),
    );
    let env = manager(vec![f.server()], VerificationMode::Strict);
    env.mcp.start().await[0].1.as_ref().unwrap();
    assert!(
        env.mcp
            .tools()
            .iter()
            .all(|t| code(t) == "KEY_REVOKED" && !t.accepted)
    );

    // 2. A standalone revocation document named by the discovery document.
    let ep = format!("{}/.well-known/schemapin-revocations.json", f.peer.base());
    f.write(
        "wellknown.json",
        &python_well_known(&f.public, &[], Some(&ep)),
    );
    f.write(
        "revocations.json",
        &json!({"schemapin_version": "1.2", "domain": "127.0.0.1", "updated_at": "2026-11-01T00:00:00Z",
                "revoked_keys": [{"fingerprint": fp, "revoked_at": "2026-11-01T00:00:00Z", "reason": "key_compromise"}]})
        .to_string(),
    );
    let tools = env.mcp.refresh("py").await.unwrap();
    assert!(
        tools.iter().all(|t| code(t) == "KEY_REVOKED"),
        "{:?}",
        tools[0].verification
    );

    // 3. An unreachable revocation endpoint fails closed.
    std::fs::remove_file(f.peer.state.join("revocations.json")).unwrap();
    let tools = env.mcp.refresh("py").await.unwrap();
    assert!(
        tools
            .iter()
            .all(|t| code(t) == "DISCOVERY_FETCH_FAILED" && !t.accepted),
        "{:?}",
        tools[0].verification
    );
    env.mcp.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_key_unsigned_tools_and_policy_demanded_strictness() {
    let f = fixture();
    // A configured publisher key, no discovery.
    let mut s = http("py", &f.peer.url());
    s.publisher_key = Some(f.public.clone());
    let env = manager(vec![s, everything("ev")], VerificationMode::Warn);
    for (name, r) in env.mcp.start().await {
        r.unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let py = env.mcp.server_tools("py");
    assert!(py.iter().all(|t| matches!(&t.verification, VerificationStatus::Verified { domain, .. } if domain == "server:py")));
    // Warn mode offers unsigned tools…
    let ev = env.mcp.server_tools("ev");
    assert!(
        ev.iter()
            .all(|t| t.verification == VerificationStatus::Unsigned && t.accepted)
    );
    env.mcp
        .call_tool(
            "ev.echo",
            Map::from_iter([("message".into(), json!("hi"))]),
            CallOptions::default(),
        )
        .await
        .unwrap();
    // …unless the policy (or `security = high`) demands strict verification.
    let strict = CallOptions {
        required_mode: Some(VerificationMode::Strict),
        ..Default::default()
    };
    let e = env
        .mcp
        .call_tool(
            "ev.echo",
            Map::from_iter([("message".into(), json!("hi"))]),
            strict.clone(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&e, McpError::Refused { reason, .. } if reason.contains("unsigned")),
        "{e}"
    );
    env.mcp
        .call_tool(
            "py.echo",
            Map::from_iter([("text".into(), json!("hi"))]),
            strict,
        )
        .await
        .expect("verified tools pass");
    env.mcp.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_mode_refuses_unsigned_tools() {
    let env = manager(vec![everything("ev")], VerificationMode::Strict);
    env.mcp.start().await[0].1.as_ref().unwrap();
    assert!(env.mcp.tools().iter().all(|t| !t.accepted));
    let e = env
        .mcp
        .call_tool(
            "echo",
            Map::from_iter([("message".into(), json!("hi"))]),
            CallOptions::default(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&e, McpError::Refused { reason, .. } if reason.contains("unsigned") && reason.contains("strict")),
        "{e}"
    );
    env.mcp.shutdown().await;
}
