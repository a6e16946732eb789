//! The command template language of tool manifests.
//!
//! A command is an array of strings; **each array element becomes exactly one argv
//! element**, whatever the values put into it contain. There is no shell anywhere: the
//! container's process is started with that argv directly (`execve`), so `;`, `|`, `$(…)`,
//! backticks, quotes, globs and newlines in values are just bytes.
//!
//! Within an element, `{{name}}` (spaces inside the braces allowed) is replaced by the value
//! of the input property `name`:
//!
//! * strings are inserted as they are; integers and numbers in their JSON spelling;
//!   booleans as `true` / `false`. A property used in an argv element must have a scalar
//!   schema type (`string`, `integer`, `number`, `boolean`) — checked when the manifest
//!   loads. Arrays and objects go through stdin.
//! * if the property is absent (or `null`) the **whole element is dropped**, so an optional
//!   flag is written `"--max-lines={{max}}"`;
//! * a value containing a NUL byte is refused (argv cannot carry it);
//! * **option injection**: a value that would *begin* an argv element (the element starts
//!   with the placeholder) and itself begins with `-` is refused — unless a literal `"--"`
//!   element appears earlier in the command, after which programs stop parsing options.
//!   Prefixed elements such as `"--file={{f}}"` are always safe.
//! * `{{` always opens a placeholder; there is no escape for a literal `{{`.
//!
//! The optional stdin template uses the same placeholders (any number, concatenated, values
//! of any type — arrays and objects are written as JSON) plus `{{$input}}`, the whole input
//! object as JSON.

use serde_json::Value;
use std::fmt;

/// One piece of a parsed template string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Piece {
    /// Literal text.
    Lit(String),
    /// A placeholder for an input property.
    Var(String),
    /// `{{$input}}`: the whole input as JSON (stdin templates only).
    Input,
}

/// A parsed template string (one argv element, or the stdin template).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemplateString {
    /// Pieces in order.
    pub pieces: Vec<Piece>,
}

/// A syntax error in a template string, with the byte offset inside the string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemplateSyntaxError {
    /// Byte offset of the problem within the string.
    pub offset: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for TemplateSyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (at byte {})", self.message, self.offset)
    }
}

fn is_name(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(ch) if ch.is_ascii_alphabetic() || ch == '_')
        && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
}

impl TemplateString {
    /// Parses `text`.
    ///
    /// ```
    /// use symbi_sandbox::template::{Piece, TemplateString};
    /// let t = TemplateString::parse("--lines={{ n }}").unwrap();
    /// assert_eq!(t.pieces, vec![Piece::Lit("--lines=".into()), Piece::Var("n".into())]);
    /// assert!(TemplateString::parse("{{ bad name }}").is_err());
    /// ```
    pub fn parse(text: &str) -> Result<Self, TemplateSyntaxError> {
        let mut pieces = Vec::new();
        let mut rest = text;
        let mut base = 0;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                pieces.push(Piece::Lit(rest[..open].to_string()));
            }
            let after = &rest[open + 2..];
            let close = after.find("}}").ok_or_else(|| TemplateSyntaxError {
                offset: base + open,
                message: "`{{` without a closing `}}`".into(),
            })?;
            let name = after[..close].trim();
            if name == "$input" {
                pieces.push(Piece::Input);
            } else if is_name(name) {
                pieces.push(Piece::Var(name.to_string()));
            } else {
                return Err(TemplateSyntaxError {
                    offset: base + open,
                    message: format!(
                        "`{{{{{}}}}}` is not a placeholder: a property name is letters, digits and `_`, not starting with a digit",
                        &after[..close]
                    ),
                });
            }
            let consumed = open + 2 + close + 2;
            base += consumed;
            rest = &rest[consumed..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Lit(rest.to_string()));
        }
        Ok(Self { pieces })
    }

    /// Property names used, in order.
    pub fn vars(&self) -> impl Iterator<Item = &str> {
        self.pieces.iter().filter_map(|p| match p {
            Piece::Var(v) => Some(v.as_str()),
            _ => None,
        })
    }

    /// Whether the string starts with a placeholder (its value would begin the element).
    pub fn starts_with_var(&self) -> bool {
        matches!(self.pieces.first(), Some(Piece::Var(_)))
    }

    /// Whether it is the literal `--`.
    pub fn is_end_of_options(&self) -> bool {
        matches!(self.pieces.as_slice(), [Piece::Lit(l)] if l == "--")
    }
}

/// A rendering problem (bad value for an argument).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenderError {
    /// The property.
    pub property: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for RenderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "/{}: {}", self.property, self.message)
    }
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Renders an argv template against an (already schema-validated) input object.
///
/// ```
/// use symbi_sandbox::template::{render_argv, TemplateString};
/// use serde_json::json;
/// let cmd: Vec<_> = ["wc", "-w", "--", "{{file}}"].iter().map(|s| TemplateString::parse(s).unwrap()).collect();
/// let argv = render_argv(&cmd, &json!({"file": "-rf; $(reboot)"})).unwrap();
/// assert_eq!(argv, vec!["wc", "-w", "--", "-rf; $(reboot)"]);
/// ```
pub fn render_argv(
    command: &[TemplateString],
    input: &Value,
) -> Result<Vec<String>, Vec<RenderError>> {
    let mut argv = Vec::with_capacity(command.len());
    let mut errors = Vec::new();
    let mut options_ended = false;
    'elements: for (i, element) in command.iter().enumerate() {
        let mut out = String::new();
        for (j, piece) in element.pieces.iter().enumerate() {
            match piece {
                Piece::Lit(l) => out.push_str(l),
                Piece::Input => {
                    errors.push(RenderError {
                        property: "$input".into(),
                        message: "`{{$input}}` is only allowed in the stdin template".into(),
                    });
                    continue 'elements;
                }
                Piece::Var(name) => match input.get(name) {
                    None | Some(Value::Null) => continue 'elements,
                    Some(v) => match scalar(v) {
                        None => errors.push(RenderError {
                            property: name.clone(),
                            message: "arrays and objects cannot be argv elements; pass them through stdin".into(),
                        }),
                        Some(s) => {
                            if s.contains('\0') {
                                errors.push(RenderError { property: name.clone(), message: "contains a NUL byte".into() });
                            } else if j == 0 && i > 0 && !options_ended && s.starts_with('-') {
                                errors.push(RenderError {
                                    property: name.clone(),
                                    message: format!(
                                        "value `{}` starts with `-` and would be read as an option (the tool's command has no `--` before this argument)",
                                        s.chars().take(40).collect::<String>()
                                    ),
                                });
                            } else {
                                out.push_str(&s);
                            }
                        }
                    },
                },
            }
        }
        if element.is_end_of_options() {
            options_ended = true;
        }
        argv.push(out);
    }
    if errors.is_empty() {
        Ok(argv)
    } else {
        Err(errors)
    }
}

/// Renders the stdin template: placeholders of any type (arrays and objects as JSON) and
/// `{{$input}}`; absent properties render as nothing.
pub fn render_stdin(template: &TemplateString, input: &Value) -> Vec<u8> {
    let mut out = String::new();
    for piece in &template.pieces {
        match piece {
            Piece::Lit(l) => out.push_str(l),
            Piece::Input => out.push_str(&input.to_string()),
            Piece::Var(name) => match input.get(name) {
                None | Some(Value::Null) => {}
                Some(v) => match scalar(v) {
                    Some(s) => out.push_str(&s),
                    None => out.push_str(&v.to_string()),
                },
            },
        }
    }
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cmd(parts: &[&str]) -> Vec<TemplateString> {
        parts
            .iter()
            .map(|p| TemplateString::parse(p).unwrap())
            .collect()
    }

    #[test]
    fn parse_forms() {
        assert_eq!(
            TemplateString::parse("plain").unwrap().pieces,
            vec![Piece::Lit("plain".into())]
        );
        assert_eq!(
            TemplateString::parse("a{{x}}b{{ y }}").unwrap().pieces,
            vec![
                Piece::Lit("a".into()),
                Piece::Var("x".into()),
                Piece::Lit("b".into()),
                Piece::Var("y".into())
            ]
        );
        assert_eq!(
            TemplateString::parse("{{$input}}").unwrap().pieces,
            vec![Piece::Input]
        );
        // A lone `}}` is literal text (jq programs contain it).
        assert_eq!(
            TemplateString::parse("{a:{b:1}}").unwrap().pieces,
            vec![Piece::Lit("{a:{b:1}}".into())]
        );
        let e = TemplateString::parse("x{{unclosed").unwrap_err();
        assert_eq!(e.offset, 1);
        assert!(TemplateString::parse("{{1abc}}").is_err());
        assert!(TemplateString::parse("{{a-b}}").is_err());
        assert!(TemplateString::parse("{{}}").is_err());
    }

    #[test]
    fn hostile_values_stay_one_element() {
        let c = cmd(&["echo", "--", "{{v}}"]);
        for hostile in [
            "; rm -rf /",
            "$(cat /etc/shadow)",
            "`reboot`",
            "a\nb\nc",
            "x && y || z | w > /tmp/f < /etc/passwd",
            "'\"quoted\"'",
            "*",
            "--help",
            "-rf",
            "   spaces   ",
            "",
        ] {
            let argv = render_argv(&c, &json!({ "v": hostile })).unwrap();
            assert_eq!(argv, vec!["echo".to_string(), "--".into(), hostile.into()]);
        }
    }

    #[test]
    fn leading_dash_refused_before_double_dash() {
        let c = cmd(&["wc", "-w", "{{file}}"]);
        let e = render_argv(&c, &json!({"file": "--files0-from=/etc/passwd"})).unwrap_err();
        assert_eq!(e[0].property, "file");
        assert!(e[0].message.contains("option"));
        // Negative numbers are values that start with `-` too.
        let c = cmd(&["head", "-n", "{{n}}"]);
        assert!(render_argv(&c, &json!({"n": -5})).is_err());
        // Prefixed elements are safe.
        let c = cmd(&["head", "--lines={{n}}"]);
        assert_eq!(
            render_argv(&c, &json!({"n": -5})).unwrap(),
            vec!["head", "--lines=-5"]
        );
        // The program name itself is never a placeholder position we check (element 0).
        let c = cmd(&["{{p}}"]);
        assert_eq!(render_argv(&c, &json!({"p": "-x"})).unwrap(), vec!["-x"]);
    }

    #[test]
    fn absent_optional_drops_element() {
        let c = cmd(&["tool", "--max={{max}}", "{{flag}}", "end"]);
        assert_eq!(render_argv(&c, &json!({})).unwrap(), vec!["tool", "end"]);
        assert_eq!(
            render_argv(&c, &json!({"max": null, "flag": true})).unwrap(),
            vec!["tool", "true", "end"]
        );
        assert_eq!(
            render_argv(&c, &json!({"max": 3.5})).unwrap(),
            vec!["tool", "--max=3.5", "end"]
        );
    }

    #[test]
    fn nul_and_compound_refused() {
        let c = cmd(&["t", "--", "{{v}}"]);
        assert!(render_argv(&c, &json!({"v": "a\u{0}b"})).is_err());
        assert!(render_argv(&c, &json!({"v": [1, 2]})).is_err());
        assert!(render_argv(&c, &json!({"v": {"a": 1}})).is_err());
        let c = cmd(&["t", "{{$input}}"]);
        assert!(render_argv(&c, &json!({})).is_err());
    }

    #[test]
    fn stdin_rendering() {
        let t = TemplateString::parse("{{text}}").unwrap();
        assert_eq!(render_stdin(&t, &json!({"text": "a b\n"})), b"a b\n");
        let t = TemplateString::parse("{{$input}}").unwrap();
        assert_eq!(render_stdin(&t, &json!({"a": [1]})), br#"{"a":[1]}"#);
        let t = TemplateString::parse("{{doc}}").unwrap();
        assert_eq!(render_stdin(&t, &json!({"doc": {"k": 1}})), br#"{"k":1}"#);
        assert_eq!(render_stdin(&t, &json!({})), b"");
    }
}
