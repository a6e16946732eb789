//! `input_sanitization` / `output_sanitization` (GRAMMAR.md §4.10): scrub control
//! characters and invisible Unicode from every string inside a JSON value, so that a tool
//! or a model never sees (or returns) text that renders differently from what it contains.

use serde_json::Value;

/// Whether `c` is removed: C0/C1 controls other than tab and newline, zero-width and
/// joiner characters, bidirectional overrides and isolates, the BOM, soft hyphen, and
/// Unicode tag characters (used to smuggle invisible instructions).
pub fn is_scrubbed(c: char) -> bool {
    match c {
        '\t' | '\n' => false,
        '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}' => true,
        '\u{ad}' | '\u{34f}' | '\u{61c}' | '\u{115f}' | '\u{1160}' | '\u{17b4}' | '\u{17b5}' => {
            true
        }
        '\u{180b}'..='\u{180f}' => true,
        '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{206f}' => true,
        '\u{3164}' | '\u{fe00}'..='\u{fe0f}' | '\u{feff}' | '\u{ffa0}' => true,
        '\u{fff0}'..='\u{fff8}' => true,
        '\u{1d173}'..='\u{1d17a}' | '\u{e0000}'..='\u{e007f}' | '\u{e0100}'..='\u{e01ef}' => true,
        _ => false,
    }
}

/// Scrubs one string; returns how many characters were removed.
pub fn scrub_str(s: &mut String) -> usize {
    if !s.chars().any(is_scrubbed) {
        return 0;
    }
    let before = s.chars().count();
    s.retain(|c| !is_scrubbed(c));
    before - s.chars().count()
}

/// Scrubs every string (and map key) in `v`; returns how many characters were removed.
///
/// ```
/// use serde_json::json;
/// let mut v = json!({"q": "pay\u{202e}moc.live", "n": ["a\u{200b}b"]});
/// assert_eq!(symbi_runtime::gateway::sanitize::scrub(&mut v), 2);
/// assert_eq!(v, json!({"q": "paymoc.live", "n": ["ab"]}));
/// ```
pub fn scrub(v: &mut Value) -> usize {
    match v {
        Value::String(s) => scrub_str(s),
        Value::Array(a) => a.iter_mut().map(scrub).sum(),
        Value::Object(m) => {
            let mut removed = 0;
            let dirty = m.keys().any(|k| k.chars().any(is_scrubbed));
            if dirty {
                let entries: Vec<(String, Value)> = std::mem::take(m).into_iter().collect();
                for (mut k, mut val) in entries {
                    removed += scrub_str(&mut k) + scrub(&mut val);
                    m.insert(k, val);
                }
            } else {
                removed += m.values_mut().map(scrub).sum::<usize>();
            }
            removed
        }
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keeps_ordinary_text_and_whitespace() {
        let mut v = json!({"a": "héllo wörld\n\tç", "b": 1});
        assert_eq!(scrub(&mut v), 0);
        assert_eq!(v, json!({"a": "héllo wörld\n\tç", "b": 1}));
    }

    #[test]
    fn removes_controls_bidi_and_tags() {
        let mut v = json!(["\u{1b}[31mred\u{7}", "x\u{e0041}\u{e0042}y", "\u{feff}bom", {"k\u{200d}": "v"}]);
        assert_eq!(scrub(&mut v), 6);
        assert_eq!(v, json!(["[31mred", "xy", "bom", {"k": "v"}]));
    }
}
