//! Text forms of values (GRAMMAR 4.2 "Float text", 4.5.1 rendering for `+` and `format`).

use super::Value;
use std::fmt::Write as _;

/// The text of a float: the shortest decimal that reads back as the same `f64`, always
/// looking like a float (`2.0`, `0.1`, `-0.0`); magnitudes from 1e16 up and below 1e-4 use
/// exponent form (`1e16`, `1.5e-5`).
///
/// ```
/// use symbi_dsl::value::float_text;
/// assert_eq!(float_text(2.0), "2.0");
/// assert_eq!(float_text(59.666666666666664), "59.666666666666664");
/// assert_eq!(float_text(-0.0), "-0.0");
/// assert_eq!(float_text(1e16), "1e16");
/// assert_eq!(float_text(1.5e-5), "1.5e-5");
/// assert_eq!(float_text(0.0001), "0.0001");
/// ```
pub fn float_text(f: f64) -> String {
    let mut out = String::new();
    write_float(&mut out, f);
    out
}

pub(crate) fn write_float(out: &mut String, f: f64) {
    let a = f.abs();
    if a != 0.0 && (a >= 1e16 || a < 1e-4) {
        // Rust's `{:e}` is the shortest round-trip digits in exponent form: `1e16`, `1.5e-5`.
        let _ = write!(out, "{f:e}");
    } else {
        let start = out.len();
        // `{}` on f64 is the shortest round-trip decimal without exponent.
        let _ = write!(out, "{f}");
        if !out[start..].contains('.') {
            out.push_str(".0");
        }
    }
}

const DURATION_UNITS: [(&str, i64); 5] = [
    ("w", 604_800_000),
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1000),
];

/// The canonical text of a duration in milliseconds: the largest unit that divides it
/// exactly (`90s`, `2m`, `1500ms`, `-1w`; zero is `0s`).
///
/// ```
/// use symbi_dsl::value::duration_text;
/// assert_eq!(duration_text(90_000), "90s");
/// assert_eq!(duration_text(120_000), "2m");
/// assert_eq!(duration_text(1500), "1500ms");
/// assert_eq!(duration_text(-604_800_000), "-1w");
/// assert_eq!(duration_text(0), "0s");
/// ```
pub fn duration_text(ms: i64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    for (unit, mult) in DURATION_UNITS {
        if ms % mult == 0 {
            return format!("{}{unit}", ms / mult);
        }
    }
    format!("{ms}ms")
}

/// The canonical text of a size: the largest binary unit that divides it (`8MB`, `1536B`).
pub fn size_text(bytes: u64) -> String {
    symbi_types::ByteSize(bytes).to_string()
}

/// The text of a value as `+` with a string, `format`, `join` and `to_string` render it
/// (GRAMMAR 4.5.1): strings as they are, ints in decimal, floats as [`float_text`],
/// durations canonically, lists and maps as compact JSON (with the same rules inside),
/// secrets as `[REDACTED]` (callers that concatenate make the result a secret).
pub fn render(v: &Value) -> String {
    let mut out = String::new();
    render_into(&mut out, v);
    out
}

pub(crate) fn render_into(out: &mut String, v: &Value) {
    match v {
        Value::Str(s) => out.push_str(s.as_str()),
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Float(f) => write_float(out, *f),
        Value::Duration(d) => out.push_str(&duration_text(*d)),
        Value::Size(s) => out.push_str(&size_text(*s)),
        Value::Lambda(_) => out.push_str("<lambda>"),
        Value::Ref(r) => {
            let _ = write!(out, "<ref {}>", r.as_str());
        }
        Value::Secret(_) => out.push_str("[REDACTED]"),
        Value::Error(e) => {
            let _ = write!(out, "{}: {}", e.kind.as_str(), e.message.as_str());
        }
        Value::List(_) | Value::Map(_) => write_compact_json(out, v),
    }
}

/// Compact JSON text (no spaces, map keys in map order) as used for rendering, hashing
/// and `to_json`; values that JSON cannot hold are written as strings (`"<lambda>"`).
pub(crate) fn write_compact_json(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Float(f) => write_float(out, *f),
        Value::Size(s) => {
            let _ = write!(out, "{s}");
        }
        Value::Str(s) => write_json_string(out, s.as_str()),
        Value::Duration(d) => write_json_string(out, &duration_text(*d)),
        Value::Secret(_) => write_json_string(out, "[REDACTED]"),
        Value::Lambda(_) => write_json_string(out, "<lambda>"),
        Value::Ref(r) => write_json_string(out, &format!("<ref {}>", r.as_str())),
        Value::Error(e) => {
            out.push_str("{\"error\":{\"kind\":");
            write_json_string(out, e.kind.as_str());
            out.push_str(",\"message\":");
            write_json_string(out, e.message.as_str());
            out.push_str("}}");
        }
        Value::List(l) => {
            out.push('[');
            for (i, x) in l.as_slice().iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_compact_json(out, x);
            }
            out.push(']');
        }
        Value::Map(m) => {
            out.push('{');
            for (i, (k, x)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json_string(out, k.as_str());
                out.push(':');
                write_compact_json(out, x);
            }
            out.push('}');
        }
    }
}

pub(crate) fn write_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Estimated length of [`render`]'s output, used to check the heap budget before building
/// large strings. Exact for strings, an upper-bound guess otherwise.
pub(crate) fn render_len_hint(v: &Value) -> usize {
    match v {
        Value::Str(s) => s.len(),
        Value::List(l) => l.len() * 8 + 2,
        Value::Map(m) => m.len() * 16 + 2,
        _ => 24,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats() {
        assert_eq!(float_text(0.1), "0.1");
        assert_eq!(float_text(100.0), "100.0");
        assert_eq!(float_text(1e15), "1000000000000000.0");
        assert_eq!(float_text(1.25e16), "1.25e16");
        assert_eq!(float_text(-2.5e-7), "-2.5e-7");
        assert_eq!(float_text(0.0), "0.0");
    }

    #[test]
    fn render_collections() {
        let v = Value::map([
            (
                "a",
                Value::list(vec![Value::Int(1), Value::Float(2.0), Value::str("x\"y")]),
            ),
            ("d", Value::Duration(90_000)),
            ("n", Value::Null),
        ]);
        assert_eq!(render(&v), r#"{"a":[1,2.0,"x\"y"],"d":"90s","n":null}"#);
        assert_eq!(render(&Value::Size(8 << 20)), "8MB");
        assert_eq!(render(&Value::secret(Value::str("k"))), "[REDACTED]");
    }
}
