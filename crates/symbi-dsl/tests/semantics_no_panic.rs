//! The checker, the loader and the interpreter never panic: mutated versions of the
//! examples that still parse are checked, loaded and executed (bounded budgets, every
//! action allowed). Deterministic (fixed seed), bounded (a few hundred programs).

mod semantics_support;

use semantics_support::*;
use serde_json::json;
use std::sync::Arc;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(src: &str, rng: &mut Rng) -> String {
    let lines: Vec<&str> = src.lines().collect();
    let mut out: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
    for _ in 0..1 + rng.below(3) {
        let i = rng.below(out.len());
        match rng.below(5) {
            0 => {
                out.remove(i);
            }
            1 => {
                let l = out[rng.below(out.len())].clone();
                out.insert(i, l);
            }
            2 => {
                let j = rng.below(out.len());
                out.swap(i, j);
            }
            3 => {
                let words = [
                    "x", "null", "1", "\"s\"", "[]", "{}", "-1", "0.5", "1s", "y.z",
                ];
                let w = words[rng.below(words.len())];
                let l = &out[i];
                if let Some(p) = l.find(|c: char| c.is_ascii_digit() || c == '"') {
                    let mut s = l.clone();
                    s.insert_str(p, &format!("{w} + "));
                    out[i] = s;
                }
            }
            _ => {
                let l = out[i]
                    .replace("==", "!=")
                    .replace("+=", "-=")
                    .replace("return", "let r =");
                out[i] = l;
            }
        }
    }
    out.join("\n")
}

#[test]
fn mutated_examples_never_panic() {
    let files = [
        "01-greeter.symbi",
        "02-scores.symbi",
        "03-guarded-fetch.symbi",
        "04-order-validator.symbi",
        "05-ticket-intake.symbi",
        "06-nightly-counter.symbi",
        "07-triage-pair.symbi",
        "08-approval-llm.symbi",
        "09-extensions.symbi",
    ];
    let mut rng = Rng(0x9e3779b97f4a7c15);
    let (mut loaded, mut executed) = (0, 0);
    let inputs = [
        json!({}),
        json!(null),
        json!({"scores": [1, 2], "pass_mark": 1, "name": "a", "x": 1}),
        json!([1, "a"]),
    ];
    for f in files {
        let src = example(f);
        for _ in 0..40 {
            let m = mutate(&src, &mut rng);
            let parsed = symbi_dsl::parse(&m, f);
            let _ = symbi_dsl::check(&parsed, &dev_opts());
            let Ok(prog) = symbi_dsl::program::load_parsed(&parsed, &dev_opts()) else {
                continue;
            };
            loaded += 1;
            for a in prog.agents() {
                for input in &inputs {
                    let mut h = TestHost::new(prog.clone());
                    h.allow_all = true;
                    let _ = run_with(Arc::new(h), a.name(), input.clone());
                    executed += 1;
                }
            }
        }
    }
    assert!(loaded > 50, "only {loaded} mutated programs loaded");
    assert!(executed > 100);
}
