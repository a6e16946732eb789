//! Property tests of the formatter over generated programs (GRAMMAR §6.4):
//! fmt(fmt(x)) == fmt(x), parse(fmt(x)) == parse(x) modulo spans, and every comment kept.
//!
//! Programs are generated as text with random layout (spaces, newlines, optional commas,
//! all three comment forms between elements) so that the formatter sees messy input.

use proptest::prelude::*;

fn sep() -> BoxedStrategy<String> {
    prop_oneof![
        6 => Just(" ".to_string()),
        3 => Just("\n".to_string()),
        1 => Just("\n\n".to_string()),
        1 => Just(" // line comment\n".to_string()),
        1 => Just("\n# hash comment\n".to_string()),
        1 => Just(" /* block */ ".to_string()),
    ]
    .boxed()
}

fn ident() -> BoxedStrategy<String> {
    prop::sample::select(vec![
        "a", "b", "xs", "item", "type", "agent", "policy", "_tmp", "value9", "None",
    ])
    .prop_map(str::to_string)
    .boxed()
}

fn name() -> BoxedStrategy<String> {
    prop::sample::select(vec!["x", "len", "if", "match", "type", "seconds", "k_2"])
        .prop_map(str::to_string)
        .boxed()
}

fn leaf() -> BoxedStrategy<String> {
    prop_oneof![
        ident(),
        (0i64..100_000).prop_map(|i| i.to_string()),
        Just("1_000".to_string()),
        Just("2.5".to_string()),
        Just("\"text\"".to_string()),
        Just("\"esc \\n \\u{e9} \\d\"".to_string()),
        Just("\"multi\nline\"".to_string()),
        Just("30s".to_string()),
        Just("5.minutes".to_string()),
        Just("250ms".to_string()),
        Just("8MB".to_string()),
        Just("true".to_string()),
        Just("null".to_string()),
        Just("vault://k/v".to_string()),
    ]
    .boxed()
}

fn expr() -> BoxedStrategy<String> {
    leaf()
        .prop_recursive(4, 48, 4, |inner| {
            let op = prop::sample::select(vec![
                "||", "&&", "==", "!=", "in", "<", ">=", "+", "-", "*", "/", "%",
            ]);
            prop_oneof![
                (inner.clone(), op, inner.clone()).prop_map(|(l, o, r)| format!("{l} {o} {r}")),
                (prop::sample::select(vec!["-", "!", "not "]), inner.clone())
                    .prop_map(|(o, e)| format!("{o}{e}")),
                inner.clone().prop_map(|e| format!("({e})")),
                (
                    ident(),
                    prop::collection::vec((inner.clone(), prop::option::of(name()), sep()), 0..4)
                )
                    .prop_map(|(f, args)| {
                        let a: Vec<String> = args
                            .into_iter()
                            .map(|(e, n, s)| match n {
                                Some(n) => format!("{n}: {e},{s}"),
                                None => format!("{e},{s}"),
                            })
                            .collect();
                        format!("{f}({})", a.concat())
                    }),
                (inner.clone(), name()).prop_map(|(e, n)| format!("({e}).{n}")),
                (ident(), name()).prop_map(|(e, n)| format!("{e}.{n}")),
                (inner.clone(), inner.clone()).prop_map(|(e, i)| format!("({e})[{i}]")),
                prop::collection::vec((name(), inner.clone(), any::<bool>(), sep()), 0..4)
                    .prop_map(|fs| {
                        let f: Vec<String> = fs
                            .into_iter()
                            .map(|(k, v, c, s)| format!("{k}: {v}{}{s}", if c { "," } else { "" }))
                            .collect();
                        format!("{{{}}}", f.concat())
                    }),
                prop::collection::vec((name(), inner.clone()), 1..3).prop_map(|fs| {
                    let f: Vec<String> = fs.into_iter().map(|(k, v)| format!("{k}: {v}")).collect();
                    format!("Point {{ {} }}", f.join(" "))
                }),
                prop::collection::vec((inner.clone(), sep()), 0..4).prop_map(|es| {
                    let e: Vec<String> = es.into_iter().map(|(e, s)| format!("{e},{s}")).collect();
                    format!("[{}]", e.concat())
                }),
                (ident(), inner.clone()).prop_map(|(p, b)| format!("{p} => {b}")),
                (ident(), inner.clone(), inner.clone())
                    .prop_map(|(c, a, b)| format!("if {c} {{ ({a}) }} else {{ ({b}) }}")),
            ]
        })
        .boxed()
}

fn stmt() -> BoxedStrategy<String> {
    let simple = prop_oneof![
        (ident(), expr()).prop_map(|(i, e)| format!("let {i} = {e};")),
        (ident(), expr()).prop_map(|(i, e)| format!("let {i}: Array<Map<String,int>> = {e};")),
        (ident(), name(), expr()).prop_map(|(i, n, e)| format!("{i}.{n} += {e};")),
        (ident(), expr()).prop_map(|(i, e)| format!("{i}[0] = {e};")),
        expr().prop_map(|e| format!("f({e});")),
        expr().prop_map(|e| format!("return {e};")),
        Just("return;".to_string()),
        Just("break;".to_string()),
        Just("continue;".to_string()),
    ];
    simple
        .prop_recursive(3, 24, 4, |inner| {
            let block = prop::collection::vec((inner.clone(), sep()), 0..4)
                .prop_map(|ss| {
                    let s: Vec<String> =
                        ss.into_iter().map(|(st, sp)| format!("{st}{sp}")).collect();
                    format!("{{{}}}", s.concat())
                })
                .boxed();
            prop_oneof![
                (
                    ident(),
                    block.clone(),
                    prop::option::of(block.clone()),
                    sep()
                )
                    .prop_map(|(c, t, e, s)| match e {
                        Some(e) => format!("if {c} {t}{s}else {e}"),
                        None => format!("if {c} {t}"),
                    }),
                (ident(), block.clone()).prop_map(|(o, b)| format!("if let Some(v) = {o} {b}")),
                (ident(), ident(), block.clone())
                    .prop_map(|(x, xs, b)| format!("for {x} in {xs} {b}")),
                (ident(), block.clone()).prop_map(|(c, b)| format!("while {c} {b}")),
                (
                    ident(),
                    prop::collection::vec((expr(), block.clone(), any::<bool>()), 0..3)
                )
                    .prop_map(|(s, arms)| {
                        let a: Vec<String> = arms
                            .into_iter()
                            .enumerate()
                            .map(|(i, (e, b, blk))| {
                                if blk {
                                    format!("{i} => {b}")
                                } else {
                                    format!("\"{i}\" => ({e}),")
                                }
                            })
                            .collect();
                        format!("match {s} {{ {} _ => {{}} }}", a.join(" "))
                    }),
                (block.clone(), block.clone())
                    .prop_map(|(b, c)| format!("try {b} catch (Kind e) {c} catch (e) {{}}")),
            ]
        })
        .boxed()
}

fn body() -> BoxedStrategy<String> {
    (
        prop::collection::vec((stmt(), sep()), 0..5),
        prop::option::of(expr()),
    )
        .prop_map(|(ss, tail)| {
            let mut s: String = ss.into_iter().map(|(st, sp)| format!("{st}{sp}")).collect();
            if let Some(t) = tail {
                s.push_str(&format!("({t})"));
            }
            format!("{{{s}}}")
        })
        .boxed()
}

fn item() -> BoxedStrategy<String> {
    prop_oneof![
        (body(), sep()).prop_map(|(b, s)| format!("function f(a: int{s}b: Array<String>) -> Map<String, Any> {b}")),
        (body(), expr(), sep()).prop_map(|(b, e, s)| format!(
            "agent a(x: int) -> T {{{s}capabilities = [\"read\", write]{s}policy p {{ allow: http.get(t) if t.domain in hosts{s}deny: [\"a\"] require: {{ human_approval: true }} audit: all }}{s}with sandbox = Tier1,{s}timeout = 30s, tags = [\"x\"]{s}{b}{s}with {{ let q = {e}; }}}}"
        )),
        sep().prop_map(|s| format!("metadata {{ version = \"1\"{s}tags: [\"a\", \"b\"] extra = {{ k: 1 }} }}")),
        sep().prop_map(|s| format!("type P = {{ x: int,{s}y: Option<String> }}\ntype Id = String")),
        sep().prop_map(|s| format!("schedule s {{ cron: \"0 * * * *\",{s}timezone = \"UTC\" }}")),
        sep().prop_map(|s| format!("channel c {{ platform: \"slack\"{s}channels: [\"#a\"] policy cp {{ allow: invoke(\"a\") }} data_classification {{ pii: redact{s}api_key: block }} }}")),
        sep().prop_map(|s| format!("memory m {{ store markdown{s}path \"/p\" search {{ vector_weight 0.5 keyword_weight 0.5 }} }}")),
        sep().prop_map(|s| format!("webhook w {{ path \"/h\"{s}secret \"vault://s\" filter {{ json_path \"$.a\" equals \"b\" }} }}")),
    ]
    .boxed()
}

fn program() -> impl Strategy<Value = String> {
    prop::collection::vec((item(), sep()), 0..4).prop_map(|items| {
        items
            .into_iter()
            .map(|(i, s)| format!("{i}{s}\n"))
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, max_global_rejects: 4096, ..ProptestConfig::default() })]

    #[test]
    fn formatting_is_idempotent_and_preserves_the_program(src in program()) {
        let original = symbi_dsl::parse(&src, "gen.symbi");
        prop_assume!(!original.has_errors());
        let once = symbi_dsl::fmt::format_source(&src).map_err(|e| TestCaseError::fail(format!("{e}\n--- input:\n{src}")))?;
        let twice = symbi_dsl::fmt::format_source(&once).map_err(|e| TestCaseError::fail(format!("{e}\n--- once:\n{once}")))?;
        prop_assert_eq!(&once, &twice, "not idempotent; input:\n{}", src);
        let reparsed = symbi_dsl::parse(&once, "gen.symbi");
        prop_assert!(reparsed.program.eq_modulo_spans(&original.program), "meaning changed:\n{}\n---\n{}", src, once);
        prop_assert_eq!(reparsed.program.comments.len(), original.program.comments.len());
        for line in once.lines() {
            prop_assert!(!line.ends_with(' ') || line.contains('"'), "trailing whitespace in {:?}", line);
        }
    }

    #[test]
    fn generated_programs_mostly_parse(src in program()) {
        // Guards the generator itself: if most cases were rejected the property above
        // would test little.
        let p = symbi_dsl::parse(&src, "gen.symbi");
        prop_assert!(!p.has_errors(), "{}\n{}", src, p.render_diagnostics());
    }
}
