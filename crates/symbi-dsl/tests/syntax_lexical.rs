//! GRAMMAR §1: lexical structure, rules L-a … L-f and errors L001 … L007, seen through
//! the public `parse` API (AST values and diagnostic positions).

mod common;
use common::*;
use symbi_dsl::ast::*;

#[test]
fn s1_1_bom_is_skipped_and_positions_start_after_it() {
    ok("\u{feff}agent a {}");
    err1("\u{feff}x", "P005", 1, 1);
}

#[test]
fn s1_1_invalid_utf8_is_l001_at_first_bad_byte() {
    let p = symbi_dsl::parse_bytes(b"agent a {\n  \xff }", "t.symbi");
    assert_eq!(p.diagnostics.len(), 1);
    assert_eq!(p.diagnostics[0].code, "L001");
    let pos = p.source.position(p.diagnostics[0].span.start);
    assert_eq!((pos.line, pos.column), (2, 3));
}

#[test]
fn s1_1_line_terminators_lf_crlf_and_lone_cr() {
    err1("agent a {}\r\n\r\n  x", "P005", 3, 3);
    err1("agent a {}\r\r  x", "P005", 3, 3);
    err1("agent a {}\n\n  x", "P005", 3, 3);
}

#[test]
fn s1_1_columns_count_scalar_values_and_tabs_as_one() {
    // `é` (2 bytes) and the emoji (4 bytes) count as one column each.
    err1("agent a { with { let s = \"é😀\" x; } }", "P002", 1, 30);
    err1("\t\tx", "P005", 1, 3);
}

#[test]
fn s1_1_non_ascii_outside_strings_is_l003() {
    err1("agent é {}", "L003", 1, 7);
    assert_eq!(msg("agent é {}"), "unexpected character `é`");
    ok("// café\nagent a { with { let s = \"naïve\"; } }");
}

#[test]
fn s1_2_comments_all_three_forms_kept_in_order() {
    let p = ok("# hash\nagent a { // line\n  with { x = 1; # trailing hash\n /* block\n */ } }");
    let kinds: Vec<_> = p.comments.iter().map(|c| c.kind).collect();
    assert_eq!(
        kinds,
        [
            CommentKind::Hash,
            CommentKind::Line,
            CommentKind::Hash,
            CommentKind::Block
        ]
    );
    assert_eq!(p.comments[3].text, "/* block\n */");
}

#[test]
fn s1_2_unclosed_block_comment_is_l002_at_its_start() {
    assert_eq!(errs("agent a {}\n  /* never closed"), [("L002", 2, 3)]);
}

#[test]
fn s1_2_block_comments_do_not_nest() {
    // The first `*/` ends the comment; the second `*/` is then `*` `/` tokens.
    assert_eq!(codes("/* a /* b */ c */"), ["P005"]);
}

#[test]
fn s1_3_words_are_case_sensitive_and_ascii() {
    let b = body("let String = 1; let string = 2; let _x9 = 3;");
    assert_eq!(b.stmts.len(), 3);
}

#[test]
fn s1_4_string_escapes() {
    assert_eq!(
        ex(r#""a\n\t\r\0\\\"\'""#),
        format!("{:?}", "a\n\t\r\0\\\"'")
    );
    assert_eq!(ex(r#""\u{48}\u{e9}\u{1F600}""#), format!("{:?}", "Hé😀"));
    // An unknown escape is kept verbatim, backslash included, and noted for W229.
    assert_eq!(ex(r#""\d+""#), format!("{:?}", "\\d+"));
    let p = ok(r#"function f() { let r = "\d+\w"; }"#);
    let notes: Vec<_> = p.syntax_notes.iter().map(|n| n.kind).collect();
    assert_eq!(
        notes,
        [SyntaxNoteKind::UnknownEscape, SyntaxNoteKind::UnknownEscape]
    );
}

#[test]
fn s1_4_multiline_strings_store_lf_whatever_the_line_ending() {
    assert_eq!(ex("\"a\r\nb\rc\nd\""), format!("{:?}", "a\nb\nc\nd"));
}

#[test]
fn s1_4_no_interpolation_or_single_quotes() {
    assert_eq!(ex(r#""{name}""#), "\"{name}\"");
    assert_eq!(codes("function f() { let s = 'x'; }")[0], "L003");
}

#[test]
fn s1_4_invalid_unicode_escapes_are_l005() {
    for s in [
        r#""\u{d800}""#,
        r#""\u{110000}""#,
        r#""\u{}""#,
        r#""\u{1234567}""#,
        r#""\u41""#,
        r#""\u{zz}""#,
    ] {
        assert_eq!(ex_errs(s).first().map(|e| e.0), Some("L005"), "{s}");
    }
    assert_eq!(ex_errs(r#""ab\u{d800}""#), [("L005", 2, 12)]);
}

#[test]
fn s1_4_unterminated_string_is_l004_at_opening_quote_only() {
    assert_eq!(
        errs("agent a {\n  with { let s = \"abc;\n  }\n}\n"),
        [("L004", 2, 18)]
    );
}

#[test]
fn s1_4_numbers_ints_floats_and_separators() {
    assert_eq!(ex("100_000_000"), "100000000");
    assert_eq!(ex("1.25"), "1.25");
    assert_eq!(ex("1_000.5"), "1000.5");
    assert_eq!(ex("9223372036854775807"), "9223372036854775807");
    assert_eq!(ex("-5"), "(- 5)");
    assert_eq!(ex_errs("9223372036854775808"), [("L006", 2, 9)]);
    assert_eq!(ex_errs("1_")[0].0, "L007");
    assert_eq!(ex_errs("1__0")[0].0, "L007");
}

#[test]
fn s1_4_no_leading_or_trailing_dot_and_no_exponent() {
    assert_eq!(ex_errs(".5")[0].0, "P001");
    assert_eq!(ex_errs("1.")[0].0, "P001");
    assert_eq!(ex_errs("1e5")[0].0, "L007");
}

#[test]
fn s1_4_durations_all_units() {
    assert_eq!(ex("30s"), "dur(30000)");
    assert_eq!(ex("5m"), "dur(300000)");
    assert_eq!(ex("2h"), "dur(7200000)");
    assert_eq!(ex("7d"), "dur(604800000)");
    assert_eq!(ex("1w"), "dur(604800000)");
    assert_eq!(ex("6months"), "dur(15552000000)");
    assert_eq!(ex("1y"), "dur(31536000000)");
    assert_eq!(ex("250ms"), "dur(250)");
    assert_eq!(ex("30.seconds"), "dur(30000)");
    assert_eq!(ex("5.minutes"), "dur(300000)");
    assert_eq!(ex("2.hours"), "dur(7200000)");
    assert_eq!(ex("- 5m"), "(- dur(300000))");
}

#[test]
fn s1_4_duration_errors() {
    assert_eq!(ex_errs("1.5h")[0].0, "L007");
    assert_eq!(ex_errs("1_000s")[0].0, "L007");
    assert_eq!(ex_errs("1_000.seconds")[0].0, "L007");
    assert_eq!(ex_errs("200000000000y")[0].0, "L006");
}

#[test]
fn s1_4_sizes() {
    assert_eq!(ex("512B"), "size(512)");
    assert_eq!(ex("8KB"), "size(8192)");
    assert_eq!(ex("64MB"), "size(67108864)");
    assert_eq!(ex("1GB"), "size(1073741824)");
    assert_eq!(ex("2TB"), "size(2199023255552)");
    assert_eq!(ex_errs("20000000TB")[0].0, "L006");
    let p = ok("function f() { let m = 8MB; let t = 5ms; }");
    let notes: Vec<_> = p.syntax_notes.iter().map(|n| n.kind).collect();
    assert_eq!(
        notes,
        [
            SyntaxNoteKind::SizeLiteral,
            SyntaxNoteKind::MillisecondDuration
        ]
    );
}

#[test]
fn s1_4_booleans_null_and_none() {
    assert_eq!(ex("[true, false, null, None]"), "[true, false, null, None]");
}

#[test]
fn s1_4_vault_references() {
    assert_eq!(
        ex("vault://llm/openai/api_key"),
        "vault(llm/openai/api_key)"
    );
    assert_eq!(ex("vault://api/keys[name]"), "([] vault(api/keys) name)");
    assert_eq!(ex("{ vault: 1 }"), "{vault: 1}");
}

#[test]
fn s1_5_operators_longest_match_and_absent_operators() {
    assert_eq!(ex("a<=b"), "(<= a b)");
    assert_eq!(ex("a!=b"), "(!= a b)");
    for bad in ["a | b", "a & b", "a ^ b", "~a", "a ? b : c", "a >> b"] {
        let e = ex_errs(bad);
        assert!(
            e.iter().any(|e| e.0 == "L003") || e[0].0 == "P001",
            "{bad}: {e:?}"
        );
    }
    assert_eq!(ex_errs("a | b"), [("L003", 2, 11)]);
}

#[test]
fn l_a_number_followed_by_letters() {
    for (src, col) in [("5min", 9), ("90_days", 9), ("3px", 9), ("10mb", 9)] {
        assert_eq!(ex_errs(src), [("L007", 2, col)], "{src}");
    }
    assert!(msg("function f() { let x = 5min; }").contains("invalid suffix `min` on number"));
    // The longest unit wins.
    assert_eq!(ex("6months"), "dur(15552000000)");
    assert_eq!(ex("10ms"), "dur(10)");
}

#[test]
fn l_b_spelled_durations_versus_member_access() {
    assert_eq!(ex("5.seconds"), "dur(5000)");
    assert_eq!(ex("5.days"), "(. 5 days)");
    assert_eq!(ex("5.secondsx"), "(. 5 secondsx)");
}

#[test]
fn l_c_floats_versus_members() {
    assert_eq!(ex("1.5"), "1.5");
    assert_eq!(ex("1.x"), "(. 1 x)");
    assert_eq!(ex_errs("x.0"), [("P001", 2, 11)]);
}

#[test]
fn l_d_vault_only_when_glued_to_scheme() {
    assert_eq!(ex("vault"), "vault");
    assert_eq!(ex("vault.x"), "(. vault x)");
}

#[test]
fn l_e_comment_starts_inside_strings_are_text() {
    assert_eq!(ex("\"# not // a /* comment\""), "\"# not // a /* comment\"");
    let p = ok("function f() { x = 1; # note\n }");
    assert_eq!(p.comments.len(), 1);
}

#[test]
fn l_f_keyword_looking_words_are_decided_by_position() {
    // Contextual keywords are identifiers outside their construct.
    let b = body("let type = 1; let agent = type; for channel in channels { schedule(channel); }");
    assert_eq!(b.stmts.len(), 3);
    assert_eq!(ex("agent.name"), "(. agent name)");
    assert_eq!(ex("x.match"), "(. x match)");
}
