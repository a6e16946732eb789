//! GRAMMAR §2.2–§2.7: program, metadata, agents, policies, functions, types, schedules,
//! channels, memory stores and webhooks — AST shape of valid forms, codes and positions
//! of invalid ones.

mod common;
use common::*;
use symbi_dsl::ast::*;

fn first_item(src: &str) -> Item {
    ok(src).items.into_iter().next().expect("one item")
}

#[test]
fn s2_2_empty_and_comment_only_files_are_valid() {
    assert!(ok("").items.is_empty());
    assert!(ok("// nothing\n# here\n/* at all */").items.is_empty());
}

#[test]
fn s2_2_anything_else_at_top_level_is_p005() {
    err1("let x = 1;", "P005", 1, 1);
    err1(";", "P005", 1, 1);
    err1("struct S {}", "P005", 1, 1);
    err1("behavior b {}", "P005", 1, 1);
    err1("import x", "P005", 1, 1);
    assert!(msg("struct S {}").starts_with(
        "expected a top-level item (metadata, agent, policy, type, function, schedule, channel, memory, webhook), found `struct`"
    ));
}

#[test]
fn s2_3_metadata_pairs_with_both_separators_and_optional_commas() {
    let Item::Metadata(m) = first_item(
        "metadata { a = 1 b: \"x\", c = [1, 2] d: { k: 1 } e = 5m f = 2KB g = true h = null i = ident }",
    ) else {
        panic!()
    };
    let keys: Vec<_> = m.pairs.iter().map(|p| p.key.name.as_str()).collect();
    assert_eq!(keys, ["a", "b", "c", "d", "e", "f", "g", "h", "i"]);
    assert!(matches!(m.pairs[2].value, PropValue::Array(_)));
    assert!(matches!(m.pairs[3].value, PropValue::Record(_)));
    assert!(matches!(&m.pairs[8].value, PropValue::Value(Value::Word(w)) if w.name == "ident"));
    // Any word is a key, reserved ones included.
    ok("metadata { if = 1 type: 2 }");
}

#[test]
fn s2_3_metadata_values_are_single_tokens() {
    err1("metadata { a = -1 }", "P001", 1, 16);
    err1("metadata { a = 1 + 2 }", "P001", 1, 18);
    err1("metadata { a = vault://x }", "P001", 1, 16);
    err1("metadata { a = 1,, b = 2 }", "P001", 1, 18);
}

#[test]
fn s2_4_agent_header_forms() {
    for src in [
        "agent a {}",
        "agent a() {}",
        "agent a -> T {}",
        "agent a(x: int) -> Map<String, Any> {}",
    ] {
        ok(src);
    }
    let Item::Agent(a) = first_item("agent a {}") else {
        panic!()
    };
    assert!(a.params.is_none());
    let Item::Agent(a) = first_item("agent a() {}") else {
        panic!()
    };
    assert_eq!(a.params.as_deref(), Some(&[][..]));
}

#[test]
fn s2_4_param_commas_optional_but_not_leading_or_doubled() {
    let Item::Agent(a) = first_item("agent a(x: int y: String, z: bool,) {}") else {
        panic!()
    };
    let names: Vec<_> = a.params().iter().map(|p| p.name.name.as_str()).collect();
    assert_eq!(names, ["x", "y", "z"]);
    err1("agent a(, x: int) {}", "P001", 1, 9);
    err1("agent a(x: int,, y: int) {}", "P001", 1, 16);
    err1("agent a(x: int = 1) {}", "P001", 1, 16);
}

#[test]
fn s2_4_agent_body_items() {
    let Item::Agent(a) = first_item(
        "agent a { capabilities = [\"x\", y] policy p { allow: x } function f() {} with {} with t = 1 {} capabilities: [] }",
    ) else {
        panic!()
    };
    let kinds: Vec<_> = a
        .items
        .iter()
        .map(|i| match i {
            AgentItem::Capabilities(_) => "cap",
            AgentItem::Policy(_) => "policy",
            AgentItem::Function(_) => "fn",
            AgentItem::With(_) => "with",
        })
        .collect();
    assert_eq!(kinds, ["cap", "policy", "fn", "with", "with", "cap"]);
    assert_eq!(a.with_blocks().count(), 2);
}

#[test]
fn s2_4_statements_in_agent_body_are_p004() {
    err1("agent a {\n    let x = 1;\n}", "P004", 2, 5);
    err1("agent a { return 1; }", "P004", 1, 11);
    err1("agent a { try { x(); } }", "P004", 1, 11);
    // The statement is skipped exactly: the next item is still read.
    let p = symbi_dsl::parse("agent a { let x = 1; with { y(); } }", "t");
    assert_eq!(p.diagnostics.len(), 1);
    let Item::Agent(a) = &p.program.items[0] else {
        panic!()
    };
    assert_eq!(a.with_blocks().count(), 1);
}

#[test]
fn s2_4_key_value_fields_in_agent_body_are_p006() {
    err1("agent a {\n    name: \"x\"\n}", "P006", 2, 5);
    err1("agent a { memory = \"persistent\" }", "P006", 1, 11);
    err1(
        "agent X { name: \"a\" version: \"1\" resources { cpu: 1 } }",
        "P006",
        1,
        11,
    );
    assert_eq!(
        msg("agent a { name: \"x\" }"),
        "`name` is not allowed in an agent body (expected capabilities, policy, function or with)"
    );
}

#[test]
fn s2_4_with_blocks_cannot_nest() {
    err1("agent a { with { with {} } }", "P001", 1, 18);
}

#[test]
fn s2_4_with_attributes() {
    let Item::Agent(a) = first_item(
        "agent a { with sandbox = Tier1, timeout = 30s max_memory = 8MB, requires = [\"a\", \"b\"], memory = \"persistent\", { } }",
    ) else {
        panic!()
    };
    let w = a.with_blocks().next().unwrap();
    let names: Vec<_> = w.attrs.iter().map(|a| a.name.name.as_str()).collect();
    assert_eq!(
        names,
        ["sandbox", "timeout", "max_memory", "requires", "memory"]
    );
    assert!(matches!(&w.attrs[0].value, PropValue::Value(Value::Word(v)) if v.name == "Tier1"));
    assert!(matches!(
        &w.attrs[1].value,
        PropValue::Value(Value::Lit(Literal {
            kind: LitKind::Duration(30000),
            ..
        }))
    ));
    assert!(matches!(w.attrs[3].value, PropValue::Array(_)));
}

#[test]
fn s2_4_capabilities_need_a_separator_and_an_array() {
    err1("agent a { capabilities [\"x\"] }", "P001", 1, 23);
    err1("agent a { capabilities = \"x\" }", "P001", 1, 26);
}

#[test]
fn s2_5_policy_rules_without_separators() {
    let Item::Policy(p) = first_item(
        "policy p {\n allow: read\n deny: [\"a\", \"b\"] if x > 1\n require: { human_approval: true }\n audit: all_operations\n}",
    ) else {
        panic!()
    };
    let kinds: Vec<_> = p.rules.iter().map(|r| r.kind).collect();
    assert_eq!(
        kinds,
        [
            RuleKind::Allow,
            RuleKind::Deny,
            RuleKind::Require,
            RuleKind::Audit
        ]
    );
    assert!(p.rules[1].guard.is_some());
    assert_eq!(sx(&p.rules[1].guard.clone().unwrap()), "(> x 1)");
    // All on one line works too: rules end where their expression ends.
    ok("policy p { allow: a deny: b(x) if x.y audit: all }");
}

#[test]
fn s2_5_words_after_a_rule_are_p001() {
    err1(
        "policy p {\n  audit: all_operations with signature\n}",
        "P001",
        2,
        25,
    );
    err1("policy p { require: x for y }", "P001", 1, 23);
    err1("policy p { allow: a if b if c }", "P001", 1, 26);
    err1("policy p { allow read }", "P001", 1, 17);
    assert_eq!(
        msg("policy p { allow read }"),
        "expected `:` after `allow`, found `read`"
    );
}

#[test]
fn s2_5_policy_in_agent_and_channel() {
    ok("agent a { policy p { allow: x } }");
    ok("channel c { platform: \"slack\" policy p { allow: invoke(\"a\") } }");
}

#[test]
fn s2_6_functions() {
    let Item::Function(f) = first_item("function f(a: int b: Array<String>) -> bool { a > 0 }")
    else {
        panic!()
    };
    assert_eq!(f.params.len(), 2);
    assert_eq!(f.ret.as_ref().unwrap().name.name, "bool");
    assert_eq!(block_sx(&f.body), "{(> a 0)}");
    ok("function g() {}");
    err1("function g {}", "P001", 1, 11);
}

#[test]
fn s2_6_type_definitions() {
    let Item::Type(t) = first_item("type P = { x: int, y: Option<float> z: String }") else {
        panic!()
    };
    let TypeDefKind::Struct(s) = &t.def else {
        panic!()
    };
    assert_eq!(s.fields.len(), 3);
    assert_eq!(s.fields[1].ty.args[0].name.name, "float");
    let Item::Type(t) = first_item("type UserId = String") else {
        panic!()
    };
    assert!(matches!(&t.def, TypeDefKind::Alias(a) if a.name == "String"));
    err1("type L = Array<int>", "P001", 1, 15);
    err1("type U = String;", "P001", 1, 16);
    ok("type E = {}");
}

#[test]
fn s2_6_types_nested_generics_without_spaces() {
    let Item::Function(f) = first_item("function f(m: Map<String,Array<int>>) {}") else {
        panic!()
    };
    let t = &f.params[0].ty;
    assert_eq!(
        (
            t.name.name.as_str(),
            t.args.len(),
            t.args[1].args[0].name.name.as_str()
        ),
        ("Map", 2, "int")
    );
    // `>=` right after a type is split into `>` and `=`.
    let b = body("let a: Array<int>= [];");
    assert_eq!(b.stmts.len(), 1);
}

#[test]
fn s2_7_schedule_properties() {
    let Item::Schedule(s) =
        first_item("schedule nightly { cron: \"0 2 * * *\", timezone = \"UTC\" one_shot: false }")
    else {
        panic!()
    };
    assert_eq!(s.props.len(), 3);
    err1("schedule { cron: \"x\" }", "P001", 1, 10);
    err1("schedule s { channels: [\"a\"] }", "P001", 1, 24);
    err1("schedule s { cron \"x\" }", "P001", 1, 18);
}

#[test]
fn s2_7_channel_entries() {
    let Item::Channel(c) = first_item(
        "channel ops { platform: \"slack\" channels: [\"#a\", \"#b\"] policy p { allow: x } data_classification { pii: redact, api_key: block } default_deny = true }",
    ) else {
        panic!()
    };
    let kinds: Vec<_> = c
        .entries
        .iter()
        .map(|e| match e {
            ChannelEntry::Prop(p) => p.key.name.to_string(),
            ChannelEntry::Policy(_) => "<policy>".into(),
            ChannelEntry::DataClassification(d) => format!("<dc {}>", d.rules.len()),
        })
        .collect();
    assert_eq!(
        kinds,
        ["platform", "channels", "<policy>", "<dc 2>", "default_deny"]
    );
    // `policy` always starts a sub-block inside a channel.
    err1("channel c { policy: \"p\" }", "P001", 1, 19);
}

#[test]
fn s2_7_memory_properties_have_no_separator() {
    let Item::Memory(m) = first_item(
        "memory log { store markdown path \"/x\" retention 90d search { vector_weight 0.7 keyword_weight 0.3 } }",
    ) else {
        panic!()
    };
    assert_eq!(m.entries.len(), 4);
    assert!(matches!(&m.entries[3], MemoryEntry::Search(b) if b.props.len() == 2));
    err1("memory log { store: markdown }", "P001", 1, 19);
}

#[test]
fn s2_7_webhook_properties_and_filter() {
    let Item::Webhook(w) = first_item(
        "webhook h { path \"/hooks/x\" provider github secret \"vault://s\" agent a filter { json_path \"$.action\" equals \"opened\" } }",
    ) else {
        panic!()
    };
    assert_eq!(w.entries.len(), 5);
    assert!(matches!(&w.entries[4], WebhookEntry::Filter(b) if b.props.len() == 2));
    err1("webhook h { path = \"/x\" }", "P001", 1, 18);
    err1("webhook { path \"/x\" }", "P001", 1, 9);
}

#[test]
fn items_carry_spans() {
    let src = "// c\nagent a {\n}\n\nmemory m { store markdown }";
    let p = ok(src);
    assert_eq!(p.items[0].span().text(src), "agent a {\n}");
    assert_eq!(p.items[1].span().text(src), "memory m { store markdown }");
    assert_eq!(p.items[1].name().unwrap().name, "m");
}
