//! The lexer, parser, diagnostic renderers and formatter never panic and never overflow
//! the stack, whatever the input: a bounded, deterministic stand-in for the fuzz target
//! (`fuzz/`, see docs/benchmarks/dsl-syntax.md) that runs in the normal test suite. It
//! also replays every seed of the fuzz corpus in `fuzz/seeds/`.

use std::path::PathBuf;

/// xorshift64*: deterministic, dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Everything the library offers on one input, with its invariants.
fn exercise(bytes: &[u8]) {
    let p = symbi_dsl::parse_bytes(bytes, "fuzz.symbi");
    assert!(p.diagnostics.len() <= symbi_dsl::parser::MAX_ERRORS);
    for d in &p.diagnostics {
        let text = p.source.render(d);
        assert!(text.starts_with("fuzz.symbi:"), "{text}");
        let _ = p.source.to_json_line(d);
        assert!(d.span.end as usize <= p.source.text().len());
    }
    if !p.has_errors() {
        let out = match symbi_dsl::fmt::format_source(p.source.text()) {
            Ok(out) => out,
            Err(e) => panic!("valid input not formatted: {e}\n{}", p.source.text()),
        };
        let again = symbi_dsl::fmt::format_source(&out).expect("formatted output formats");
        assert_eq!(
            again,
            out,
            "formatter not idempotent on {:?}",
            p.source.text()
        );
    }
}

const VOCAB: &[&str] = &[
    "agent",
    "policy",
    "function",
    "type",
    "metadata",
    "schedule",
    "channel",
    "memory",
    "webhook",
    "with",
    "capabilities",
    "allow",
    "deny",
    "require",
    "audit",
    "search",
    "filter",
    "data_classification",
    "let",
    "if",
    "else",
    "for",
    "in",
    "while",
    "break",
    "continue",
    "match",
    "try",
    "catch",
    "return",
    "true",
    "false",
    "null",
    "not",
    "_",
    "x",
    "f",
    "Point",
    "String",
    "int",
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    ",",
    ";",
    ":",
    ".",
    "->",
    "=>",
    "=",
    "+=",
    "-=",
    "==",
    "!=",
    "<",
    ">",
    "<=",
    ">=",
    "+",
    "-",
    "*",
    "/",
    "%",
    "!",
    "||",
    "&&",
    "1",
    "2.5",
    "30s",
    "5.minutes",
    "250ms",
    "8MB",
    "\"s\"",
    "\"a\\u{e9}\\d\"",
    "vault://a/b",
    "// c\n",
    "# h\n",
    "/* b */",
    "\n",
    " ",
    "|",
    "é",
    "\"",
    "/*",
    "1_",
    "5min",
    "x.0",
];

#[test]
fn random_bytes() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for _ in 0..2000 {
        let len = rng.below(200);
        let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        exercise(&bytes);
    }
}

#[test]
fn random_token_soup() {
    let mut rng = Rng(42);
    for _ in 0..4000 {
        let n = rng.below(60);
        let mut s = String::new();
        for _ in 0..n {
            s.push_str(VOCAB[rng.below(VOCAB.len())]);
            if rng.below(3) == 0 {
                s.push(' ');
            }
        }
        exercise(s.as_bytes());
    }
}

fn examples() -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/examples");
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v.into_iter().map(|p| std::fs::read(p).unwrap()).collect()
}

#[test]
fn mutated_examples() {
    let ex = examples();
    let mut rng = Rng(7);
    for i in 0..3000 {
        let mut b = ex[i % ex.len()].clone();
        for _ in 0..1 + rng.below(4) {
            match rng.below(4) {
                0 if !b.is_empty() => {
                    let at = rng.below(b.len());
                    let n = rng.below(16).min(b.len() - at);
                    b.drain(at..at + n);
                }
                1 => {
                    let at = rng.below(b.len() + 1);
                    let tok = VOCAB[rng.below(VOCAB.len())];
                    b.splice(at..at, tok.bytes());
                }
                2 if b.len() > 2 => {
                    let (x, y) = (rng.below(b.len()), rng.below(b.len()));
                    b.swap(x, y);
                }
                _ => {
                    let at = rng.below(b.len() + 1);
                    b.insert(at, rng.next() as u8);
                }
            }
        }
        exercise(&b);
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let n = 100_000;
    for (open, close) in [
        ("(", ")"),
        ("[", "]"),
        ("{a:", "}"),
        ("-", "x"),
        ("not ", "x"),
        ("x => ", "x"),
        ("f(", ")"),
        ("if a { ", " } else { 1 }"),
        ("a + ", "a"),
        ("a.", "b"),
    ] {
        let src = format!(
            "function f() {{ let v = {}{}; }}",
            open.repeat(n),
            close.repeat(n)
        );
        let p = symbi_dsl::parse(&src, "deep.symbi");
        assert!(p.has_errors(), "{open}");
        assert!(
            p.diagnostics
                .iter()
                .any(|d| d.message.starts_with("nesting too deep")),
            "{open}: {:?}",
            p.diagnostics.first()
        );
    }
    for src in [
        format!("function f() {{ {} }}", "if a { ".repeat(n)),
        format!("type T = {{ a: {} }}", "Array<".repeat(n)),
        format!("function f() {{ if let {} = x {{ }} }}", "Some(".repeat(n)),
        format!("metadata {{ a = {} }}", "[".repeat(n)),
        format!("function f() {{ {} }}", "if a {} else ".repeat(n)),
    ] {
        assert!(symbi_dsl::parse(&src, "deep.symbi").has_errors());
    }
    // Nesting within the limit formats fine.
    let src = format!(
        "function f() {{ let v = {}1{}; }}",
        "(".repeat(100),
        ")".repeat(100)
    );
    exercise(src.as_bytes());
}

#[test]
fn fuzz_seed_corpus_replays() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds");
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut n = 0;
    for e in entries {
        let p = e.unwrap().path();
        exercise(&std::fs::read(&p).unwrap());
        n += 1;
    }
    assert!(n >= 9, "the seed corpus holds at least the nine examples");
}
