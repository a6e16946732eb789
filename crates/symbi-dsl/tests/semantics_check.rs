//! Checker diagnostics: each code with its position (GRAMMAR 4.12, 6.2).

use symbi_dsl::{CheckOptions, Mode};

fn diags_with(src: &str, opts: &CheckOptions) -> Vec<(String, String, u32, u32)> {
    let parsed = symbi_dsl::parse(src, "c.symbi");
    assert!(
        !parsed.has_errors(),
        "syntax errors: {}",
        parsed.render_diagnostics()
    );
    symbi_dsl::check(&parsed, opts)
        .iter()
        .map(|d| {
            let p = parsed.source.position(d.span.start);
            (
                d.code.to_string(),
                d.severity.as_str().to_string(),
                p.line,
                p.column,
            )
        })
        .collect()
}

fn diags(src: &str) -> Vec<(String, String, u32, u32)> {
    diags_with(src, &CheckOptions::default())
}

#[track_caller]
fn has(src: &str, code: &str, line: u32, col: u32) {
    let d = diags(src);
    assert!(
        d.iter()
            .any(|(c, _, l, k)| c == code && *l == line && *k == col),
        "expected {code} at {line}:{col}, got {d:?}"
    );
}

#[test]
fn names() {
    has("agent a { with {} }\nagent a { with {} }", "E101", 2, 7);
    has("function f() {}\nfunction f() {}", "E102", 2, 10);
    has("agent a(x: int, x: int) { with {} }", "E103", 1, 17);
    has("agent a { with { let r = {k: 1, k: 2}; } }", "E104", 1, 33);
    has("type T = { a: int, a: int }", "E104", 1, 20);
    has("agent a { with { return y; } }", "W203", 1, 25);
    has("agent a { with { break; } }", "E109", 1, 18);
}

#[test]
fn calls() {
    has(
        "function f(a: int) {}\nagent a { with { f(1, 2); } }",
        "E110",
        2,
        18,
    );
    has(
        "function f(a: int) {}\nagent a { with { f(b: 1); } }",
        "E111",
        2,
        18,
    );
    has(
        "agent a { with { substring(\"x\", end: 1, 2); } }",
        "E112",
        1,
        41,
    );
    has("agent a { with { len(); } }", "E110", 1, 18);
    has("agent a { with { frobnicate(1); } }", "W201", 1, 18);
    let d = diags_with(
        "agent a { with { frobnicate(1); } }",
        &CheckOptions {
            deny_unresolved: true,
            ..Default::default()
        },
    );
    assert_eq!(d[0].1, "error");
    has("agent a { with { f() = 1; } }", "E108", 1, 18);
    has("agent a { with { [1].push(2); } }", "E108", 1, 18);
}

#[test]
fn with_attributes() {
    has("agent a { with timeout = \"soon\" { } }", "E105", 1, 26);
    has("agent a { with timeout = 60 { } }", "W209", 1, 26);
    has(
        "agent a { with max_memory = 8MB, max_memory_mb = 8 { } }",
        "E106",
        1,
        34,
    );
    has("agent a { with colour = \"red\" { } }", "W206", 1, 16);
    has("agent a { with sandbox = \"e2b\" { } }", "W207", 1, 26);
    has("agent a { with sandbox = \"none\" { } }", "E105", 1, 26);
    let d = diags_with(
        "agent a { with sandbox = \"none\" { } }",
        &CheckOptions {
            mode: Mode::Development,
            ..Default::default()
        },
    );
    assert!(d.iter().any(|x| x.0 == "W208"), "{d:?}");
    has(
        "agent a { with memory = \"persistent\" { } with memory = \"ephemeral\" { } }",
        "E105",
        1,
        56,
    );
    has("agent a { }", "W218", 1, 7);
    has("agent a { capabilities = [1] with {} }", "E120", 1, 27);
}

#[test]
fn items() {
    has(
        "schedule s { timezone: \"UTC\" }\nagent s { with {} }",
        "E123",
        1,
        10,
    );
    has(
        "schedule s { cron: \"* * * * *\", at: \"2027-01-01T00:00:00Z\" }\nagent s { with {} }",
        "E124",
        1,
        10,
    );
    has(
        "schedule s { cron: \"61 * * * *\" }\nagent s { with {} }",
        "E125",
        1,
        20,
    );
    has(
        "schedule s { cron: \"* * * * *\", timezone: \"Mars/Base\" }\nagent s { with {} }",
        "E126",
        1,
        43,
    );
    has("schedule s { cron: \"* * * * *\" }", "E127", 1, 10);
    has("channel c { workspace: \"w\" }", "E128", 1, 9);
    has(
        "channel c { platform: \"slack\" data_classification { pii: shred } }",
        "E129",
        1,
        58,
    );
    has("channel c { platform: \"slack\" }", "W225", 1, 23);
    has("memory m { path \"x\" }", "E130", 1, 8);
    has("memory m { store sqlite }", "E130", 1, 18);
    has(
        "webhook w { secret \"s\" }\nagent a { with {} }",
        "E131",
        1,
        9,
    );
    has(
        "webhook w { path \"/x\" }\nagent a { with {} }",
        "E132",
        1,
        9,
    );
    has(
        "metadata { version = \"1\" version = \"2\" }",
        "W221",
        1,
        26,
    );
    has("metadata { executor = \"claude\" }", "W222", 1, 23);
    has(
        "schedule s { cron: \"* * * * *\", colour: 1 }\nagent s { with {} }",
        "W223",
        1,
        33,
    );
    has(
        "schedule s { cron: \"* * * * *\", deliver: \"ftp://x\" }\nagent s { with {} }",
        "W224",
        1,
        42,
    );
}

#[test]
fn policies() {
    has(
        "agent a { policy p { allow: 1 + 2 } with {} }",
        "E117",
        1,
        29,
    );
    has(
        "agent a { policy p { allow: read(x) if check_rate_limit(x) } with {} }",
        "E118",
        1,
        40,
    );
    assert!(
        !diags("agent a { policy p { allow: read(x) if check_rate_limit(x) } with {} }")
            .iter()
            .any(|d| d.0 == "W201")
    );
    has(
        "agent a { policy p { require: { quantum_seal: true } } with {} }",
        "W219",
        1,
        31,
    );
    let d = diags("agent a { policy p { require: { quantum_seal: true } } with {} }");
    assert_eq!(
        d.iter().find(|x| x.0 == "W219").unwrap().1,
        "error",
        "production mode makes W219 an error"
    );
    let d = diags_with(
        "agent a { policy p { require: { quantum_seal: true } } with {} }",
        &CheckOptions {
            mode: Mode::Development,
            ..Default::default()
        },
    );
    assert_eq!(d.iter().find(|x| x.0 == "W219").unwrap().1, "warning");
    has(
        "agent a { policy p { audit: { sparkle: true } } with {} }",
        "W220",
        1,
        31,
    );
    assert!(diags("agent a { policy p { allow: http.get(t) if t.domain == \"x\" deny: [\"file_access\"] require: { rate_limiting: \"3/minute\" } } with {} }").is_empty());
}

#[test]
fn types_and_hygiene() {
    has(
        "function f(a: int) {}\nagent a { with { f(\"x\"); } }",
        "E115",
        2,
        20,
    );
    has(
        "type P = { x: int }\nagent a { with { let p = P { y: 1 }; } }",
        "E115",
        2,
        30,
    );
    has(
        "type P = { x: int, y: int }\nagent a { with { let p = P { x: 1 }; } }",
        "W215",
        2,
        26,
    );
    has("agent a -> int { with { return \"s\"; } }", "E116", 1, 32);
    has("agent a(x: Widget) { with {} }", "N301", 1, 12);
    has("agent a { with { return 1; let x = 2; } }", "W211", 1, 28);
    has(
        "agent a(x: int) { with { match x { 1 => 2 } } }",
        "W213",
        1,
        26,
    );
    has(
        "agent a(x: int) { with { let b = 1 < x < 3; } }",
        "W214",
        1,
        34,
    );
    has("agent a { with { let x = 1; let x = 2; } }", "W216", 1, 33);
    has("agent a { with { try { } } }", "W217", 1, 18);
}

#[test]
fn compat_and_escapes() {
    let d = diags_with(
        "agent a { with { while false { } } }",
        &CheckOptions {
            compat: true,
            ..Default::default()
        },
    );
    assert!(
        d.iter().any(|x| x.0 == "W230" && x.2 == 1 && x.3 == 18),
        "{d:?}"
    );
    has("agent a { with { let s = \"\\d\"; } }", "W229", 1, 27);
}
