//! Conversion between values and JSON (GRAMMAR 4.2).

use super::text::write_float;
use super::{Entries, List, MAX_DEPTH, Map, Str, Value, heap};
use crate::error::{Fault, VResult};
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::Value as Json;
use std::fmt;

/// Converts a value to JSON: durations become their canonical string, sizes their number
/// of bytes, errors `{"error": {"kind", "message"}}`, secrets `"[REDACTED]"`; a lambda or a
/// ref cannot be converted (`TypeError`).
pub fn to_json(v: &Value) -> VResult<Json> {
    Ok(match v {
        Value::Null => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Int(i) => Json::from(*i),
        Value::Float(f) => serde_json::Number::from_f64(*f)
            .map(Json::Number)
            .unwrap_or(Json::Null),
        Value::Duration(d) => Json::String(super::duration_text(*d)),
        Value::Size(s) => Json::from(*s),
        Value::Str(s) => Json::String(s.as_str().to_string()),
        Value::List(l) => Json::Array(l.as_slice().iter().map(to_json).collect::<VResult<_>>()?),
        Value::Map(m) => {
            let mut o = serde_json::Map::with_capacity(m.len());
            for (k, x) in m.iter() {
                o.insert(k.as_str().to_string(), to_json(x)?);
            }
            Json::Object(o)
        }
        Value::Error(e) => {
            serde_json::json!({"error": {"kind": e.kind.as_str(), "message": e.message.as_str()}})
        }
        Value::Secret(_) => Json::String("[REDACTED]".into()),
        Value::Lambda(_) => return Err(Fault::type_error("a lambda cannot be converted to JSON")),
        Value::Ref(r) => {
            return Err(Fault::type_error(format!(
                "the memory store ref `{}` cannot be converted to JSON",
                r.as_str()
            )));
        }
    })
}

/// Why a JSON document could not become a value.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FromJsonError {
    /// Nested deeper than [`MAX_DEPTH`].
    #[error("JSON value nested deeper than {MAX_DEPTH} levels")]
    TooDeep,
    /// The heap budget ran out while converting.
    #[error("heap budget exhausted while converting JSON")]
    Heap,
    /// Not JSON text.
    #[error("invalid JSON: {0}")]
    Syntax(String),
}

impl From<FromJsonError> for Fault {
    fn from(e: FromJsonError) -> Fault {
        match e {
            FromJsonError::TooDeep => {
                Fault::new(crate::error::ErrorKind::StackOverflow, e.to_string())
            }
            FromJsonError::Heap => super::ops::heap_fault(),
            FromJsonError::Syntax(_) => Fault::type_error(e.to_string()),
        }
    }
}

/// Converts JSON to a value: objects become maps in text order, numbers written without
/// fraction or exponent that fit in i64 become ints, all other numbers floats.
pub fn from_json(j: &Json) -> Result<Value, FromJsonError> {
    from_json_depth(j, 0)
}

fn from_json_depth(j: &Json, depth: u32) -> Result<Value, FromJsonError> {
    if depth > MAX_DEPTH {
        return Err(FromJsonError::TooDeep);
    }
    Ok(match j {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => number(n),
        Json::String(s) => Value::Str(Str::from(s.as_str())),
        Json::Array(a) => {
            let mut v = Vec::with_capacity(a.len());
            for x in a {
                v.push(from_json_depth(x, depth + 1)?);
            }
            check_heap()?;
            Value::List(List::from_vec(v))
        }
        Json::Object(o) => {
            let mut m = Entries::with_capacity_and_hasher(o.len(), Default::default());
            for (k, x) in o {
                m.insert(Str::from(k.as_str()), from_json_depth(x, depth + 1)?);
            }
            check_heap()?;
            Value::Map(Map::from_entries(m))
        }
    })
}

fn number(n: &serde_json::Number) -> Value {
    if let Some(i) = n.as_i64() {
        Value::Int(i)
    } else {
        Value::Float(n.as_f64().unwrap_or(0.0))
    }
}

fn check_heap() -> Result<(), FromJsonError> {
    if heap::fits(0) {
        Ok(())
    } else {
        Err(FromJsonError::Heap)
    }
}

/// Parses JSON text straight into a value (`parse_json`), checking depth and the heap
/// budget as it goes, so hostile text cannot allocate far beyond the budget.
pub(crate) fn parse_json_text(text: &str) -> Result<Value, FromJsonError> {
    let mut de = serde_json::Deserializer::from_str(text);
    let v = Seed { depth: 0 }.deserialize(&mut de).map_err(|e| {
        let msg = e.to_string();
        if msg.contains("nested deeper") || msg.contains("recursion limit") {
            FromJsonError::TooDeep
        } else if msg.contains("heap budget") {
            FromJsonError::Heap
        } else {
            FromJsonError::Syntax(msg)
        }
    })?;
    de.end().map_err(|e| FromJsonError::Syntax(e.to_string()))?;
    Ok(v)
}

struct Seed {
    depth: u32,
}

impl<'de> DeserializeSeed<'de> for Seed {
    type Value = Value;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seed {
    type Value = Value;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }
    fn visit_i64<E>(self, i: i64) -> Result<Value, E> {
        Ok(Value::Int(i))
    }
    fn visit_u64<E>(self, u: u64) -> Result<Value, E> {
        Ok(i64::try_from(u)
            .map(Value::Int)
            .unwrap_or(Value::Float(u as f64)))
    }
    fn visit_f64<E>(self, f: f64) -> Result<Value, E> {
        Ok(Value::Float(f))
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Value, E> {
        if !heap::fits(heap::str_cost(s.len())) {
            return Err(E::custom("heap budget exhausted"));
        }
        Ok(Value::Str(Str::from(s)))
    }
    fn visit_string<E: de::Error>(self, s: String) -> Result<Value, E> {
        if !heap::fits(heap::str_cost(s.len())) {
            return Err(E::custom("heap budget exhausted"));
        }
        Ok(Value::Str(Str::from(s)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        if self.depth >= MAX_DEPTH {
            return Err(de::Error::custom("nested deeper than the limit"));
        }
        let mut v = Vec::new();
        while let Some(x) = seq.next_element_seed(Seed {
            depth: self.depth + 1,
        })? {
            v.push(x);
            if v.len() % 64 == 0 && !heap::fits(heap::list_cost(v.capacity())) {
                return Err(de::Error::custom("heap budget exhausted"));
            }
        }
        Ok(Value::List(List::from_vec(v)))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        if self.depth >= MAX_DEPTH {
            return Err(de::Error::custom("nested deeper than the limit"));
        }
        let mut m = Entries::default();
        while let Some(k) = map.next_key::<String>()? {
            let v = map.next_value_seed(Seed {
                depth: self.depth + 1,
            })?;
            m.insert(Str::from(k), v);
            if m.len() % 64 == 0 && !heap::fits(heap::map_cost(m.capacity())) {
                return Err(de::Error::custom("heap budget exhausted"));
            }
        }
        Ok(Value::Map(Map::from_entries(m)))
    }
}

/// Formats floats as GRAMMAR 4.2 asks (`2.0`, `1e16`), everything else as serde_json.
struct DslFormatter {
    pretty: Option<serde_json::ser::PrettyFormatter<'static>>,
}

macro_rules! delegate {
    ($($name:ident ( $($arg:ident : $ty:ty),* );)*) => {
        $(fn $name<W: ?Sized + std::io::Write>(&mut self, w: &mut W $(, $arg: $ty)*) -> std::io::Result<()> {
            match &mut self.pretty {
                Some(p) => p.$name(w $(, $arg)*),
                None => serde_json::ser::CompactFormatter.$name(w $(, $arg)*),
            }
        })*
    };
}

impl serde_json::ser::Formatter for DslFormatter {
    fn write_f64<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        value: f64,
    ) -> std::io::Result<()> {
        let mut s = String::new();
        write_float(&mut s, value);
        w.write_all(s.as_bytes())
    }
    delegate! {
        begin_array();
        end_array();
        begin_array_value(first: bool);
        end_array_value();
        begin_object();
        end_object();
        begin_object_key(first: bool);
        end_object_key();
        begin_object_value();
        end_object_value();
    }
}

/// JSON text with floats written as GRAMMAR 4.2 asks (`2.0`, `59.666666666666664`,
/// `1e16`), compact or pretty. Use it wherever the DSL's results are printed.
///
/// ```
/// use symbi_dsl::value::json_to_string;
/// let j = serde_json::json!({"mean": 2.0, "n": 3});
/// assert_eq!(json_to_string(&j, false), r#"{"mean":2.0,"n":3}"#);
/// ```
pub fn json_to_string(j: &Json, pretty: bool) -> String {
    let mut buf = Vec::new();
    let fmt = DslFormatter {
        pretty: if pretty {
            Some(serde_json::ser::PrettyFormatter::with_indent(b"  "))
        } else {
            None
        },
    };
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    let _ = serde::Serialize::serialize(j, &mut ser);
    String::from_utf8(buf).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip_rules() {
        let j: Json =
            serde_json::from_str(r#"{"b": 1, "a": 2.0, "c": [1e2, 9223372036854775808], "b": 3}"#)
                .unwrap();
        let v = from_json(&j).unwrap();
        assert_eq!(
            super::super::render(&v),
            r#"{"b":3,"a":2.0,"c":[100.0,9.223372036854776e18]}"#
        );
        let back = to_json(&v).unwrap();
        assert_eq!(
            json_to_string(&back, false),
            r#"{"b":3,"a":2.0,"c":[100.0,9.223372036854776e18]}"#
        );
    }

    #[test]
    fn parse_text_directly() {
        let v = parse_json_text(r#"{"x": [1, 2.5, "s", null, true], "x": 7}"#).unwrap();
        assert_eq!(super::super::render(&v), r#"{"x":7}"#);
        assert!(parse_json_text("[1,").is_err());
        let deep = "[".repeat(400) + &"]".repeat(400);
        assert!(matches!(
            parse_json_text(&deep),
            Err(FromJsonError::TooDeep)
        ));
    }

    #[test]
    fn lambda_and_ref_do_not_convert() {
        assert!(to_json(&Value::Ref(Str::from("log"))).is_err());
        assert_eq!(
            to_json(&Value::Duration(1500)).unwrap(),
            Json::String("1500ms".into())
        );
        assert_eq!(to_json(&Value::Size(1024)).unwrap(), Json::from(1024));
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use crate::value::float_text;
    use proptest::prelude::*;

    fn arb_json() -> impl Strategy<Value = Json> {
        let leaf = prop_oneof![
            Just(Json::Null),
            any::<bool>().prop_map(Json::Bool),
            any::<i64>().prop_map(Json::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(|f| serde_json::Number::from_f64(f).map(Json::Number).unwrap()),
            ".{0,8}".prop_map(Json::String),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Json::Array),
                prop::collection::vec(("[a-z]{0,4}", inner), 0..6)
                    .prop_map(|kv| Json::Object(kv.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn float_text_round_trips_and_looks_like_a_float(f in any::<f64>().prop_filter("finite", |f| f.is_finite())) {
            let t = float_text(f);
            prop_assert_eq!(t.parse::<f64>().unwrap().to_bits(), f.to_bits());
            prop_assert!(t.contains('.') || t.contains('e'), "{}", t);
        }

        #[test]
        fn json_round_trips_through_values(j in arb_json()) {
            let v = from_json(&j).unwrap();
            prop_assert_eq!(to_json(&v).unwrap(), j.clone());
            // And through the DSL's own JSON text (float text of GRAMMAR 4.2).
            let text = json_to_string(&j, false);
            let back = parse_json_text(&text).unwrap();
            prop_assert_eq!(to_json(&back).unwrap(), j);
        }
    }
}
