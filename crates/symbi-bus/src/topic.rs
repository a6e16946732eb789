//! Topic names and subscription patterns.
//!
//! A topic name is a hierarchy of tokens. Both `/` (the DSL's spelling: `support/urgent`)
//! and `.` (NATS's spelling: `support.urgent`) separate tokens and mean the same thing;
//! the canonical form, used for policy decisions, statuses and display, separates with
//! `/`. So `support.urgent`, `support/urgent` and `topic://support/urgent` are one topic,
//! and a policy written for `support/urgent` covers every spelling (a deny rule cannot be
//! bypassed by re-spelling the name). On NATS the canonical name maps to the subject
//! `symbi.topic.support.urgent`.
//!
//! Patterns add the NATS wildcards, each a whole token: `*` matches exactly one token,
//! `>` (last token only) matches one or more trailing tokens.
//!
//! | pattern | matches | does not match |
//! |---|---|---|
//! | `a/b` | `a/b` | `a/b/c`, `a` |
//! | `a/*` | `a/b` | `a`, `a/b/c` |
//! | `a/>` | `a/b`, `a/b/c` | `a` |
//! | `*/b` | `x/b` | `x/y/b` |
//! | `>` | everything | — |
//!
//! ```
//! use symbi_bus::topic::{Topic, TopicPattern};
//! let t = Topic::parse("topic://support.urgent").unwrap();
//! assert_eq!(t.as_str(), "support/urgent");
//! assert!(TopicPattern::parse("support/*").unwrap().matches(&t));
//! assert!(TopicPattern::parse("support.>").unwrap().matches(&t));
//! assert!(!TopicPattern::parse("support").unwrap().matches(&t));
//! ```

use std::fmt;
use std::sync::Arc;

/// Longest canonical topic name or pattern, in bytes.
pub const MAX_TOPIC_LEN: usize = 255;
/// Most tokens in a topic name or pattern.
pub const MAX_TOKENS: usize = 16;

/// Why a topic name or pattern was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid topic `{input}`: {reason}")]
pub struct TopicError {
    /// The name as given.
    pub input: String,
    /// What is wrong with it.
    pub reason: String,
}

fn err(input: &str, reason: impl Into<String>) -> TopicError {
    TopicError {
        input: input.to_string(),
        reason: reason.into(),
    }
}

/// Splits and validates; `wildcards` allows `*` and a final `>`.
fn tokens(input: &str, wildcards: bool) -> Result<Vec<&str>, TopicError> {
    let body = input.strip_prefix("topic://").unwrap_or(input);
    if body.is_empty() {
        return Err(err(input, "is empty"));
    }
    let toks: Vec<&str> = body.split(['/', '.']).collect();
    if toks.len() > MAX_TOKENS {
        return Err(err(
            input,
            format!(
                "has {} tokens; at most {MAX_TOKENS} are allowed",
                toks.len()
            ),
        ));
    }
    for (i, t) in toks.iter().enumerate() {
        if t.is_empty() {
            return Err(err(
                input,
                "has an empty token (leading, trailing or doubled separator)",
            ));
        }
        if *t == "*" || *t == ">" {
            if !wildcards {
                return Err(err(
                    input,
                    format!("wildcard `{t}` is only allowed in subscription patterns"),
                ));
            }
            if *t == ">" && i + 1 != toks.len() {
                return Err(err(input, "`>` must be the last token"));
            }
            continue;
        }
        if i == 0 && t.starts_with('$') {
            return Err(err(input, "names starting with `$` are reserved"));
        }
        if let Some(c) = t
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || "_-:@~+=$".contains(*c)))
        {
            return Err(err(
                input,
                format!("character {c:?} is not allowed (letters, digits and _ - : @ ~ + = only)"),
            ));
        }
    }
    let canonical_len = toks.iter().map(|t| t.len()).sum::<usize>() + toks.len() - 1;
    if canonical_len > MAX_TOPIC_LEN {
        return Err(err(input, format!("is longer than {MAX_TOPIC_LEN} bytes")));
    }
    Ok(toks)
}

/// A concrete topic name in canonical (`/`-separated) form. Cheap to clone.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Topic(Arc<str>);

impl Topic {
    /// Parses a name written with `/` or `.` separators, optionally prefixed `topic://`.
    pub fn parse(input: &str) -> Result<Self, TopicError> {
        Ok(Topic(tokens(input, false)?.join("/").into()))
    }

    /// The canonical name (`a/b/c`).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The tokens, in order.
    pub fn tokens(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }

    /// The NATS subject below `prefix` (`prefix.a.b.c`).
    pub fn nats_subject(&self, prefix: &str) -> String {
        format!("{prefix}.{}", self.0.replace('/', "."))
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Topic({})", self.0)
    }
}

/// One token of a pattern.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum PatternToken {
    /// A literal token.
    Literal(Box<str>),
    /// `*`: exactly one token.
    One,
    /// `>`: one or more trailing tokens.
    Rest,
}

/// A subscription pattern in canonical form, with NATS wildcards.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct TopicPattern {
    canonical: Arc<str>,
    tokens: Arc<[PatternToken]>,
}

impl TopicPattern {
    /// Parses a pattern (`a/*/c`, `a.>`, `topic://a/b`).
    pub fn parse(input: &str) -> Result<Self, TopicError> {
        let toks = tokens(input, true)?;
        let parsed = toks
            .iter()
            .map(|t| match *t {
                "*" => PatternToken::One,
                ">" => PatternToken::Rest,
                lit => PatternToken::Literal(lit.into()),
            })
            .collect();
        Ok(TopicPattern {
            canonical: toks.join("/").into(),
            tokens: parsed,
        })
    }

    /// The canonical pattern (`a/*/c`).
    pub fn as_str(&self) -> &str {
        &self.canonical
    }

    /// The pattern's tokens.
    pub fn pattern_tokens(&self) -> &[PatternToken] {
        &self.tokens
    }

    /// Whether the pattern contains a wildcard.
    pub fn is_wildcard(&self) -> bool {
        self.tokens
            .iter()
            .any(|t| !matches!(t, PatternToken::Literal(_)))
    }

    /// Whether `topic` matches this pattern.
    pub fn matches(&self, topic: &Topic) -> bool {
        let mut it = topic.tokens();
        for (i, p) in self.tokens.iter().enumerate() {
            match p {
                PatternToken::Rest => {
                    // `>` needs at least one more token; it is always last.
                    debug_assert_eq!(i + 1, self.tokens.len());
                    return it.next().is_some();
                }
                PatternToken::One => {
                    if it.next().is_none() {
                        return false;
                    }
                }
                PatternToken::Literal(l) => {
                    if it.next() != Some(&**l) {
                        return false;
                    }
                }
            }
        }
        it.next().is_none()
    }

    /// The NATS subject pattern below `prefix` (`prefix.a.*.c`).
    pub fn nats_subject(&self, prefix: &str) -> String {
        format!("{prefix}.{}", self.canonical.replace('/', "."))
    }
}

impl fmt::Display for TopicPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.canonical)
    }
}

impl fmt::Debug for TopicPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TopicPattern({})", self.canonical)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The wildcard matching table (pattern, topic, expected).
    const TABLE: &[(&str, &str, bool)] = &[
        ("a/b", "a/b", true),
        ("a/b", "a.b", true),
        ("a.b", "a/b", true),
        ("a/b", "a/b/c", false),
        ("a/b", "a", false),
        ("a/b", "a/c", false),
        ("a/*", "a/b", true),
        ("a/*", "a", false),
        ("a/*", "a/b/c", false),
        ("a/b/*", "a/b/c", true),
        ("a.b.*", "a/b/c", true),
        ("a.b.*", "a/b", false),
        ("a.b.*", "a/b/c/d", false),
        ("a/>", "a/b", true),
        ("a/>", "a/b/c/d", true),
        ("a.>", "a", false),
        ("a.>", "b/c", false),
        ("*/b", "x/b", true),
        ("*/b", "x/y/b", false),
        ("*/*", "x/y", true),
        ("*/*", "x", false),
        ("*/>", "x/y/z", true),
        ("*/>", "x", false),
        ("a/*/c", "a/b/c", true),
        ("a/*/c", "a/b/d", false),
        (">", "a", true),
        (">", "a/b/c", true),
        ("*", "a", true),
        ("*", "a/b", false),
        ("support/*", "support/urgent", true),
        ("support/>", "support.urgent", true),
        ("oncall/page", "topic://oncall/page", true),
        ("topic://oncall.>", "oncall/page", true),
    ];

    #[test]
    fn wildcard_matching_table() {
        for (p, t, want) in TABLE {
            let pat = TopicPattern::parse(p).unwrap();
            let topic = Topic::parse(t).unwrap();
            assert_eq!(pat.matches(&topic), *want, "pattern {p} vs topic {t}");
        }
    }

    #[test]
    fn canonical_forms() {
        assert_eq!(Topic::parse("a.b/c").unwrap().as_str(), "a/b/c");
        assert_eq!(Topic::parse("topic://x").unwrap().as_str(), "x");
        assert_eq!(TopicPattern::parse("a.*.>").unwrap().as_str(), "a/*/>");
        assert_eq!(
            Topic::parse("a/b").unwrap().nats_subject("symbi.topic"),
            "symbi.topic.a.b"
        );
        assert_eq!(
            TopicPattern::parse("a/>").unwrap().nats_subject("p"),
            "p.a.>"
        );
    }

    #[test]
    fn invalid_names_are_refused_with_reasons() {
        for (input, needle) in [
            ("", "empty"),
            ("a//b", "empty token"),
            ("a/", "empty token"),
            ("/a", "empty token"),
            ("a/*", "only allowed in subscription patterns"),
            ("a b", "not allowed"),
            ("$SYS/x", "reserved"),
        ] {
            let e = Topic::parse(input).unwrap_err();
            assert!(e.to_string().contains(needle), "{input}: {e}");
        }
        assert!(
            TopicPattern::parse("a/>/b")
                .unwrap_err()
                .reason
                .contains("last token")
        );
        assert!(TopicPattern::parse("a/".repeat(20).trim_end_matches('/')).is_err());
        assert!(
            Topic::parse(&"x".repeat(300))
                .unwrap_err()
                .reason
                .contains("longer")
        );
    }
}
