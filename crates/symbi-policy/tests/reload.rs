//! Loading and hot reload: positioned errors, schema violations, atomic swaps under
//! concurrent evaluation, broken files keeping the old set, the directory watcher, API
//! updates and `policy_reload` events.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use symbi_policy::requests::{self, ToolSubject};
use symbi_policy::{EngineOptions, PolicyEngine, PolicyError, PolicySource, Severity};
use symbi_types::{Decision, MemoryEventLog, PolicyDecisionPoint, PolicyRequest};

fn set(id: &str) -> String {
    format!(
        "@id(\"{id}\")\npermit(principal is Agent, action == Action::\"invoke_tool\", resource);\n"
    )
}

/// Writes like an editor that saves atomically (temporary file, rename).
fn write(dir: &Path, name: &str, text: &str) {
    let tmp = dir.join(format!(".{name}.swp"));
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, dir.join(name)).unwrap();
}

fn tool_request() -> PolicyRequest {
    requests::invoke_tool(
        requests::agent_principal("bot", None, Vec::<String>::new(), None),
        ToolSubject::named("t"),
        vec![],
    )
}

fn invalid(r: Result<impl std::fmt::Debug, PolicyError>) -> Vec<symbi_policy::Diagnostic> {
    match r {
        Err(PolicyError::Invalid(d)) => d,
        other => panic!("expected invalid policies, got {other:?}"),
    }
}

#[test]
fn parse_errors_have_positions() {
    let text = "@id(\"ok\")\npermit(principal, action, resource);\n\npermit(principal, action == Action::\"invoke_tool\" resource);\n";
    let d = invalid(PolicyEngine::check(&[PolicySource::new(
        "p/bad.cedar",
        text,
    )]));
    let e = d.iter().find(|d| d.severity == Severity::Error).unwrap();
    assert_eq!((e.file.as_str(), e.line), ("p/bad.cedar", 4), "{d:?}");
    assert!(e.column > 1, "{e}");
    assert!(e.render().contains('^'));
}

#[test]
fn schema_violations_are_rejected_with_positions() {
    let cases = [
        // Reading a Host attribute without narrowing the resource type.
        (
            "permit(principal, action == Action::\"network_access\", resource)\nwhen { resource.domain == \"x\" };\n",
            2,
            "domain",
        ),
        // An action that is not in the vocabulary.
        (
            "\n\npermit(principal, action == Action::\"delete_everything\", resource);\n",
            3,
            "delete_everything",
        ),
        // An entity type that does not exist.
        (
            "permit(principal is Robot, action, resource);\n",
            1,
            "Robot",
        ),
        // A misspelt attribute.
        (
            "permit(principal is Agent, action, resource)\nwhen { principal.capabilitys.contains(\"x\") };\n",
            2,
            "capabilitys",
        ),
        // A type error.
        (
            "permit(principal is Agent, action, resource)\nwhen { principal.name > 3 };\n",
            2,
            "",
        ),
    ];
    for (text, line, needle) in cases {
        let d = invalid(PolicyEngine::check(&[PolicySource::new("v.cedar", text)]));
        let e = d
            .iter()
            .find(|d| d.severity == Severity::Error)
            .unwrap_or_else(|| panic!("{text}: {d:?}"));
        assert_eq!(e.line, line, "{text}: {e}");
        assert!(e.message.contains(needle), "{text}: {e}");
    }
}

#[test]
fn ids_templates_and_annotations_are_checked() {
    let dup = invalid(PolicyEngine::check(&[
        PolicySource::new("a.cedar", set("same")),
        PolicySource::new("b.cedar", format!("\n{}", set("same"))),
    ]));
    assert!(
        dup[0]
            .message
            .contains("duplicate policy id \"same\" (first used at a.cedar:1:1)")
            && dup[0].file == "b.cedar"
            && dup[0].line == 2,
        "{dup:?}"
    );

    let tpl = invalid(PolicyEngine::check(&[PolicySource::new(
        "t.cedar",
        "permit(principal == ?principal, action, resource);",
    )]));
    assert!(tpl[0].message.contains("templates"), "{tpl:?}");

    let bad = invalid(PolicyEngine::check(&[PolicySource::new(
        "n.cedar",
        "permit(principal, action, resource);\n@id(\"x\")\n@rate_limit(\"lots\")\npermit(principal, action, resource);",
    )]));
    assert_eq!((bad[0].line, bad[0].column), (3, 1), "{bad:?}");
    assert!(bad[0].message.contains("invalid `@rate_limit`"));

    // Unknown requirement annotations are accepted with a warning (and become opaque conditions).
    let ok = PolicyEngine::check(&[PolicySource::new(
        "w.cedar",
        "@geo_fence(\"eu\")\npermit(principal, action, resource);",
    )])
    .unwrap();
    assert_eq!(ok.warnings.len(), 1);
    assert!(ok.warnings[0].message.contains("opaque"));
    let e = PolicyEngine::from_sources(
        vec![PolicySource::new(
            "w.cedar",
            "@geo_fence(\"eu\")\npermit(principal, action, resource);",
        )],
        EngineOptions::enforcing(),
    )
    .unwrap();
    let d = e.decide(&tool_request(), None);
    assert!(
        matches!(d.conditions(), [symbi_types::Condition::Opaque { name, .. }] if name == "geo_fence"),
        "{d:?}"
    );
    // Without @id, the id is file:line:column.
    assert!(
        d.reason().contains("permitted by Cedar policy w.cedar:1:1"),
        "{d:?}"
    );
}

#[test]
fn broken_reload_keeps_the_previous_set_and_events_record_both() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write(dir, "p.cedar", &set("A"));
    let log = MemoryEventLog::default();
    let e = PolicyEngine::from_dir(
        dir,
        EngineOptions::enforcing().with_sink(Arc::new(log.clone())),
    )
    .unwrap();
    assert_eq!(e.snapshot().generation(), 1);

    write(
        dir,
        "p.cedar",
        "permit(principal, action,\n  oops resource);",
    );
    let err = invalid(e.reload());
    assert!(
        err[0]
            .to_string()
            .starts_with(&format!("{}:2:", dir.join("p.cedar").display())),
        "{err:?}"
    );
    // Still the old set.
    assert!(e.decide(&tool_request(), None).reason().contains("\"A\""));
    assert_eq!(e.snapshot().generation(), 1);

    write(dir, "p.cedar", &set("B"));
    let r = e.reload().unwrap();
    assert!(r.changed && r.generation == 2);
    assert!(e.decide(&tool_request(), None).reason().contains("\"B\""));
    // The same files again change nothing.
    assert!(!e.reload().unwrap().changed);

    assert!(e.flush_events(Duration::from_secs(10)));
    let events = log.of_type("policy_reload");
    let details: Vec<&serde_json::Value> = events.iter().map(|e| &e.event.details).collect();
    assert_eq!(details.len(), 3, "{details:?}");
    assert_eq!(details[0]["accepted"], true);
    assert_eq!(details[0]["cause"], "startup");
    assert_eq!(details[1]["accepted"], false);
    assert!(
        details[1]["error"].as_str().unwrap().contains("p.cedar:2:"),
        "{}",
        details[1]
    );
    assert_eq!(details[2]["accepted"], true);
    assert_eq!(details[2]["generation"], 2);
    assert_eq!(details[2]["cause"], "manual");
}

#[test]
fn reload_under_concurrent_evaluation_never_has_a_gap() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    write(&dir, "p.cedar", &set("old"));
    let e = Arc::new(PolicyEngine::from_dir(&dir, EngineOptions::enforcing()).unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let decisions = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..3)
        .map(|_| {
            let (e, stop, decisions) = (e.clone(), stop.clone(), decisions.clone());
            std::thread::spawn(move || {
                let req = tool_request();
                let (mut old, mut new) = (0u64, 0u64);
                while !stop.load(Ordering::Relaxed) {
                    let batch = e.decide_batch(std::slice::from_ref(&req), None);
                    for d in batch.into_iter().chain([e.decide(&req, None)]) {
                        match &d {
                            Decision::Allow { reasons }
                                if reasons
                                    == &["permitted by Cedar policy \"old\" (p.cedar:1:1)"] =>
                            {
                                old += 1
                            }
                            Decision::Allow { reasons }
                                if reasons
                                    == &["permitted by Cedar policy \"new\" (p.cedar:1:1)"] =>
                            {
                                new += 1
                            }
                            other => panic!("a decision came from neither set: {other:?}"),
                        }
                    }
                    decisions.fetch_add(2, Ordering::Relaxed);
                }
                (old, new)
            })
        })
        .collect();
    let mut accepted = 0;
    for i in 0..60 {
        let id = if i % 2 == 0 { "new" } else { "old" };
        write(&dir, "p.cedar", &set(id));
        e.reload().unwrap();
        accepted += 1;
        // A broken version in between is rejected and changes nothing.
        write(
            &dir,
            "p.cedar",
            "permit(principal, action, resource) when { ;",
        );
        assert!(e.reload().is_err());
        std::thread::sleep(Duration::from_millis(2));
    }
    stop.store(true, Ordering::Relaxed);
    let (mut old, mut new) = (0, 0);
    for t in threads {
        let (o, n) = t.join().expect("no evaluating thread saw a gap");
        old += o;
        new += n;
    }
    assert_eq!(e.snapshot().generation(), 1 + accepted);
    assert!(
        old > 0 && new > 0,
        "both sets were seen: old {old}, new {new}"
    );
    assert!(decisions.load(Ordering::Relaxed) > 100);
}

#[test]
fn watcher_applies_edits_and_ignores_broken_files() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    write(&dir, "p.cedar", &set("A"));
    let log = MemoryEventLog::default();
    let e = Arc::new(
        PolicyEngine::from_dir(
            &dir,
            EngineOptions::enforcing().with_sink(Arc::new(log.clone())),
        )
        .unwrap(),
    );
    e.watch().unwrap();
    assert!(e.is_watching());

    let wait_for = |want: &str| {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let d = e.decide(&tool_request(), None);
            if d.reason().contains(want) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the watcher did not apply the change: {d:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };

    write(&dir, "p.cedar", &set("B"));
    wait_for("\"B\"");

    // A new file in a new subdirectory (a forbid) takes effect too.
    std::fs::create_dir(dir.join("extra")).unwrap();
    write(
        &dir.join("extra"),
        "f.cedar",
        "@id(\"F\")\nforbid(principal, action == Action::\"invoke_tool\", resource == Tool::\"t\");",
    );
    wait_for("\"F\"");

    // A broken edit is rejected; the set stays.
    let before = e.snapshot().generation();
    write(&dir, "p.cedar", "permit(");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !log
        .of_type("policy_reload")
        .iter()
        .any(|ev| ev.event.details["accepted"] == false)
    {
        assert!(Instant::now() < deadline, "no rejected reload was recorded");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(e.snapshot().generation(), before);
    assert!(e.decide(&tool_request(), None).reason().contains("\"F\""));
    assert!(
        log.of_type("policy_reload")
            .iter()
            .any(|ev| ev.event.details["cause"] == "watch" && ev.event.details["accepted"] == true)
    );

    // Deleting the forbid's file applies as well.
    write(&dir, "p.cedar", &set("C"));
    std::fs::remove_file(dir.join("extra/f.cedar")).unwrap();
    wait_for("\"C\"");
}

#[test]
fn api_updates() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    write(&dir, "p.cedar", &set("A"));
    let e = PolicyEngine::from_dir(&dir, EngineOptions::enforcing()).unwrap();

    // In-memory replacement.
    let r = e
        .replace_policies(vec![PolicySource::new("api.cedar", set("API"))])
        .unwrap();
    assert_eq!(r.files, vec!["api.cedar".to_string()]);
    assert!(e.decide(&tool_request(), None).reason().contains("\"API\""));
    assert!(
        e.replace_policies(vec![PolicySource::new("api.cedar", "nope")])
            .is_err()
    );
    assert!(e.decide(&tool_request(), None).reason().contains("\"API\""));

    // A lasting file update: validated before it is written.
    let forbid = "@id(\"no-t\")\nforbid(principal, action == Action::\"invoke_tool\", resource == Tool::\"t\");\n";
    let err = e.write_policy_file(
        "team/x.cedar",
        "forbid(principal, action == Action::\"nope\", resource);",
    );
    assert!(matches!(err, Err(PolicyError::Invalid(_))));
    assert!(
        !dir.join("team/x.cedar").exists(),
        "an invalid file is never written"
    );
    let r = e.write_policy_file("team/x.cedar", forbid).unwrap();
    assert_eq!(
        r.files,
        vec!["p.cedar".to_string(), "team/x.cedar".to_string()]
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("team/x.cedar")).unwrap(),
        forbid
    );
    assert!(
        e.decide(&tool_request(), None)
            .reason()
            .contains("\"no-t\"")
    );
    for bad in ["../x.cedar", "/etc/x.cedar", "x.txt", ".hidden.cedar"] {
        assert!(
            matches!(
                e.write_policy_file(bad, forbid),
                Err(PolicyError::InvalidFileName(_))
            ),
            "{bad}"
        );
    }

    // Engines without a directory cannot reload from one.
    let mem = PolicyEngine::from_sources(vec![], EngineOptions::enforcing()).unwrap();
    assert!(matches!(mem.reload(), Err(PolicyError::NoDirectory)));
    // An empty set denies everything.
    assert!(
        mem.decide(&tool_request(), None)
            .reason()
            .contains("no rule allows")
    );
}

#[test]
fn from_config_seeds_and_watches() {
    let tmp = tempfile::tempdir().unwrap();
    let mut config = symbi_config::Config::default();
    config.runtime.data_dir = Some(tmp.path().to_path_buf());
    let e = PolicyEngine::from_config(&config, None).unwrap();
    let dir = tmp.path().join("policies");
    assert_eq!(e.dir(), Some(dir.as_path()));
    assert!(dir.join("default/00-runtime.cedar").is_file());
    assert!(e.enforcing() && e.is_watching());
    assert!(e.snapshot().policy_count() >= 6);
    drop(e);

    // A broken directory at startup is an error, not an empty policy set.
    std::fs::write(dir.join("bad.cedar"), "permit(").unwrap();
    config.security.enforce_policies = false;
    config.policy.watch = false;
    let err = PolicyEngine::from_config(&config, None).unwrap_err();
    assert!(err.to_string().contains("bad.cedar:1:"), "{err}");
    std::fs::remove_file(dir.join("bad.cedar")).unwrap();
    let e = PolicyEngine::from_config(&config, None).unwrap();
    assert!(!e.enforcing() && !e.is_watching());
}
