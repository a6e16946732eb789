//! The nine example programs of GRAMMAR §7 parse without any diagnostic.

use std::path::PathBuf;

fn examples() -> Vec<(String, String)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/examples");
    let mut v: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/data/examples exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "symbi"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read_to_string(&p).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn all_nine_examples_parse_cleanly() {
    let ex = examples();
    assert_eq!(ex.len(), 9);
    for (name, text) in ex {
        let p = symbi_dsl::parse(&text, &name);
        assert!(
            p.diagnostics.is_empty(),
            "{name}:\n{}",
            p.render_diagnostics()
        );
        assert!(!p.program.items.is_empty(), "{name}");
    }
}

#[test]
fn formatter_is_idempotent_and_keeps_meaning_on_examples() {
    for (name, text) in examples() {
        let once = symbi_dsl::fmt::format_source(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        let twice =
            symbi_dsl::fmt::format_source(&once).unwrap_or_else(|e| panic!("{name} (2nd): {e}"));
        assert_eq!(once, twice, "{name}: formatting is not idempotent");
        let a = symbi_dsl::parse(&text, &name).program;
        let b = symbi_dsl::parse(&once, &name).program;
        assert!(
            a.eq_modulo_spans(&b),
            "{name}: formatting changed the program"
        );
        assert_eq!(a.comments.len(), b.comments.len(), "{name}: lost a comment");
        if std::env::var_os("SHOW_FMT").is_some() {
            println!("===== {name}\n{once}");
        }
    }
}
