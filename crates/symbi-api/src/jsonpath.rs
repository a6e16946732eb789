//! The JSONPath subset of webhook filters (GRAMMAR §4.11.4): `$` followed by member
//! accesses (`.name`, `['name']`, `["name"]`) and array indexes (`[0]`, `[-1]` from the end).
//! That is all a filter needs (`$.action`, `$.items[0].state`); wildcards, slices, recursive
//! descent and predicates select several values and are refused, so a filter never has to
//! guess which of several matches counts.

use serde_json::Value;

/// One step of a path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Object member.
    Key(String),
    /// Array element (negative: from the end).
    Index(i64),
}

/// A parsed path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JsonPath {
    steps: Vec<Step>,
}

/// A path outside the subset.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid JSONPath `{path}` at character {at}: {message}")]
pub struct PathError {
    /// The path.
    pub path: String,
    /// 0-based character position.
    pub at: usize,
    /// Why.
    pub message: &'static str,
}

impl JsonPath {
    /// Parses `$.a.b[0]`, `$['a b']`, `$.items[-1]`.
    ///
    /// ```
    /// use symbi_api::jsonpath::JsonPath;
    /// let p = JsonPath::parse("$.items[0].state").unwrap();
    /// let v = serde_json::json!({"items": [{"state": "open"}]});
    /// assert_eq!(p.select(&v), Some(&serde_json::json!("open")));
    /// ```
    pub fn parse(path: &str) -> Result<JsonPath, PathError> {
        let err = |at, message| PathError {
            path: path.to_string(),
            at,
            message,
        };
        let chars: Vec<char> = path.trim().chars().collect();
        if chars.first() != Some(&'$') {
            return Err(err(0, "a path starts with `$`"));
        }
        let mut i = 1;
        let mut steps = Vec::new();
        while i < chars.len() {
            match chars[i] {
                '.' => {
                    i += 1;
                    let start = i;
                    while i < chars.len()
                        && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '-')
                    {
                        i += 1;
                    }
                    if i == start {
                        return Err(err(
                            start,
                            if chars.get(start) == Some(&'.') {
                                "recursive descent `..` is not supported"
                            } else {
                                "expected a member name"
                            },
                        ));
                    }
                    steps.push(Step::Key(chars[start..i].iter().collect()));
                }
                '[' => {
                    i += 1;
                    match chars.get(i) {
                        Some(q @ ('\'' | '"')) => {
                            let q = *q;
                            i += 1;
                            let mut s = String::new();
                            loop {
                                match chars.get(i) {
                                    None => return Err(err(i, "unterminated quoted name")),
                                    Some('\\') if chars.get(i + 1).is_some() => {
                                        s.push(chars[i + 1]);
                                        i += 2;
                                    }
                                    Some(c) if *c == q => {
                                        i += 1;
                                        break;
                                    }
                                    Some(c) => {
                                        s.push(*c);
                                        i += 1;
                                    }
                                }
                            }
                            steps.push(Step::Key(s));
                        }
                        _ => {
                            let start = i;
                            if chars.get(i) == Some(&'-') {
                                i += 1;
                            }
                            while i < chars.len() && chars[i].is_ascii_digit() {
                                i += 1;
                            }
                            let text: String = chars[start..i].iter().collect();
                            let n = text.parse::<i64>().map_err(|_| err(start, "expected an index or a quoted name (wildcards, slices and filters are not supported)"))?;
                            steps.push(Step::Index(n));
                        }
                    }
                    if chars.get(i) != Some(&']') {
                        return Err(err(i, "expected `]`"));
                    }
                    i += 1;
                }
                _ => return Err(err(i, "expected `.` or `[`")),
            }
        }
        Ok(JsonPath { steps })
    }

    /// The value at the path, if there is one.
    pub fn select<'v>(&self, v: &'v Value) -> Option<&'v Value> {
        let mut cur = v;
        for s in &self.steps {
            cur = match (s, cur) {
                (Step::Key(k), Value::Object(m)) => m.get(k)?,
                (Step::Index(i), Value::Array(a)) => {
                    let idx = if *i < 0 {
                        a.len().checked_sub(i.unsigned_abs() as usize)?
                    } else {
                        *i as usize
                    };
                    a.get(idx)?
                }
                _ => return None,
            };
        }
        Some(cur)
    }
}

/// A webhook filter: the value at `path` equals, or contains, a given value.
#[derive(Clone, Debug, PartialEq)]
pub enum Filter {
    /// Equal JSON values.
    Equals(JsonPath, Value),
    /// A string containing a string, an array containing an element, or an object
    /// containing a key.
    Contains(JsonPath, Value),
}

impl Filter {
    /// Whether `body` passes.
    pub fn matches(&self, body: &Value) -> bool {
        match self {
            Filter::Equals(p, want) => p.select(body) == Some(want),
            Filter::Contains(p, want) => match (p.select(body), want) {
                (Some(Value::String(s)), Value::String(w)) => s.contains(w.as_str()),
                (Some(Value::Array(a)), w) => a.contains(w),
                (Some(Value::Object(m)), Value::String(k)) => m.contains_key(k),
                _ => false,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn subset() {
        let v = json!({"a": {"b": [10, {"c d": "x"}]}, "list": [1, 2, 3]});
        let sel = |p: &str| JsonPath::parse(p).unwrap().select(&v).cloned();
        assert_eq!(sel("$"), Some(v.clone()));
        assert_eq!(sel("$.a.b[0]"), Some(json!(10)));
        assert_eq!(sel("$.a.b[1]['c d']"), Some(json!("x")));
        assert_eq!(sel("$[\"list\"][-1]"), Some(json!(3)));
        assert_eq!(sel("$.a.b[5]"), None);
        assert_eq!(sel("$.list.x"), None);
        for bad in [
            "a.b",
            "$..a",
            "$.a[*]",
            "$.a[0:2]",
            "$.a[?(@.x)]",
            "$.",
            "$['x'",
            "$[1",
        ] {
            assert!(JsonPath::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn filters() {
        let body = json!({"event": "ticket.created", "tags": ["p1"], "subject": "Login outage"});
        let p = |s| JsonPath::parse(s).unwrap();
        assert!(Filter::Equals(p("$.event"), json!("ticket.created")).matches(&body));
        assert!(!Filter::Equals(p("$.event"), json!("ticket.closed")).matches(&body));
        assert!(Filter::Contains(p("$.subject"), json!("outage")).matches(&body));
        assert!(Filter::Contains(p("$.tags"), json!("p1")).matches(&body));
        assert!(!Filter::Contains(p("$.missing"), json!("p1")).matches(&body));
    }
}
