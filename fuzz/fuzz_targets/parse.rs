//! Fuzz target: lexer + parser + diagnostic rendering on any bytes; on inputs without
//! syntax errors also the formatter round trip (it must succeed, keep the program and be
//! idempotent). Any panic, stack overflow or assertion failure is a finding.
//!
//! Run (see docs/benchmarks/dsl-syntax.md):
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run parse fuzz/corpus/parse fuzz/seeds -- -dict=fuzz/symbi.dict`
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let p = symbi_dsl::parse_bytes(data, "fuzz.symbi");
    assert!(p.diagnostics.len() <= symbi_dsl::parser::MAX_ERRORS);
    for d in &p.diagnostics {
        let _ = p.source.render(d);
        let _ = p.source.to_json_line(d);
    }
    if !p.has_errors() {
        let out = match symbi_dsl::fmt::format_source(p.source.text()) {
            Ok(out) => out,
            Err(e) => panic!("valid input not formatted: {e}"),
        };
        let again = symbi_dsl::fmt::format_source(&out).expect("formatted output formats again");
        assert_eq!(again, out, "formatter is not idempotent");
    }
});
