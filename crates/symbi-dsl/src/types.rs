//! Declared types and run-time conformance (GRAMMAR 4.2 "Types").
//!
//! Types are gradual: an unknown name is `Any` (note N301). Conformance converts where the
//! grammar says so: an int where `float` is declared becomes a float, a duration string or
//! an int of milliseconds where `Duration` is declared becomes a duration, a size string or
//! an int of bytes where `Size` is declared becomes a size — at any depth (list elements,
//! map values, struct fields).

use crate::value::{Entries, List, Map, Str, Value};
use std::fmt;
use std::sync::Arc;

/// A resolved type.
#[derive(Clone, Debug, PartialEq)]
pub enum Ty {
    /// `Any`, `JSON`, unknown names: anything, null included.
    Any,
    /// `String`.
    String,
    /// `int`.
    Int,
    /// `float` (accepts ints, converting them).
    Float,
    /// `bool`.
    Bool,
    /// `Null` (Option-like).
    Null,
    /// `Duration`.
    Duration,
    /// `Size`.
    Size,
    /// `Array<T>` / `List<T>`.
    List(Box<Ty>),
    /// `Map<String, V>`.
    Map(Box<Ty>),
    /// `Option<T>` / `Optional<T>` / `Maybe<T>`: T or null (Option-like).
    Option(Box<Ty>),
    /// A struct type of the file.
    Struct(Arc<StructTy>),
}

/// A `type Name = { … }`.
#[derive(Debug, PartialEq)]
pub struct StructTy {
    /// Its name.
    pub name: Str,
    /// Fields in declared order. A field's type is resolved lazily through
    /// [`StructTy::field_types`] so that recursive types work.
    pub fields: Vec<(Str, std::sync::OnceLock<Ty>)>,
}

impl StructTy {
    /// The fields with their resolved types.
    pub fn field_types(&self) -> impl Iterator<Item = (&Str, &Ty)> {
        self.fields
            .iter()
            .map(|(n, t)| (n, t.get().unwrap_or(&Ty::Any)))
    }
}

impl Ty {
    /// Whether a parameter or field of this type may be left out (binds null).
    pub fn is_option_like(&self) -> bool {
        matches!(self, Ty::Option(_) | Ty::Null)
    }

    /// Whether this is `Any`.
    pub fn is_any(&self) -> bool {
        matches!(self, Ty::Any)
    }

    /// Checks `v` against the type, converting as GRAMMAR 4.2 says. The error message
    /// says what was expected and what was found (`expected int, found string`), with the
    /// path of the offending element (`items[1].qty`).
    pub fn conform(&self, v: Value) -> Result<Value, String> {
        self.conform_at(v, &mut String::new())
    }

    fn conform_at(&self, v: Value, path: &mut String) -> Result<Value, String> {
        let fail = |path: &String, v: &Value, t: &Ty| {
            let at = if path.is_empty() {
                String::new()
            } else {
                format!(" at `{path}`")
            };
            Err(format!("expected {t}, found {}{at}", v.type_name()))
        };
        match self {
            Ty::Any => Ok(v),
            Ty::String => match v {
                Value::Str(_) => Ok(v),
                Value::Secret(ref s) if matches!(s.reveal(), Value::Str(_)) => Ok(v),
                _ => fail(path, &v, self),
            },
            Ty::Int => match v {
                Value::Int(_) => Ok(v),
                _ => fail(path, &v, self),
            },
            Ty::Float => match v {
                Value::Float(_) => Ok(v),
                Value::Int(i) => Ok(Value::Float(i as f64)),
                _ => fail(path, &v, self),
            },
            Ty::Bool => match v {
                Value::Bool(_) => Ok(v),
                _ => fail(path, &v, self),
            },
            Ty::Null => match v {
                Value::Null => Ok(v),
                _ => fail(path, &v, self),
            },
            Ty::Duration => match &v {
                Value::Duration(_) => Ok(v),
                Value::Int(ms) => Ok(Value::Duration(*ms)),
                Value::Str(s) => match s.parse::<symbi_types::HumanDuration>() {
                    Ok(d) if s.chars().any(|c| c.is_ascii_alphabetic()) => {
                        i64::try_from(d.0.as_millis())
                            .map(Value::Duration)
                            .map_err(|_| "duration out of range".to_string())
                    }
                    _ => fail(path, &v, self),
                },
                _ => fail(path, &v, self),
            },
            Ty::Size => match &v {
                Value::Size(_) => Ok(v),
                Value::Int(b) if *b >= 0 => Ok(Value::Size(*b as u64)),
                Value::Str(s) => match s.parse::<symbi_types::ByteSize>() {
                    Ok(b) => Ok(Value::Size(b.0)),
                    Err(_) => fail(path, &v, self),
                },
                _ => fail(path, &v, self),
            },
            Ty::Option(inner) => match v {
                Value::Null => Ok(v),
                v => inner.conform_at(v, path),
            },
            Ty::List(elem) => match v {
                Value::List(l) => {
                    if elem.is_any() {
                        return Ok(Value::List(l));
                    }
                    let mut out: Option<Vec<Value>> = None;
                    for (i, x) in l.as_slice().iter().enumerate() {
                        let len = path.len();
                        path.push_str(&format!("[{i}]"));
                        let c = elem.conform_at(x.clone(), path)?;
                        path.truncate(len);
                        let changed = !same(&c, x);
                        if changed && out.is_none() {
                            out = Some(l.as_slice()[..i].to_vec());
                        }
                        if let Some(o) = &mut out {
                            o.push(c);
                        }
                    }
                    Ok(match out {
                        Some(o) => Value::List(List::from_vec(o)),
                        None => Value::List(l),
                    })
                }
                _ => fail(path, &v, self),
            },
            Ty::Map(val) => match v {
                Value::Map(m) => {
                    if val.is_any() {
                        return Ok(Value::Map(m));
                    }
                    let mut out: Option<Entries> = None;
                    for (i, (k, x)) in m.iter().enumerate() {
                        let len = path.len();
                        push_key(path, k);
                        let c = val.conform_at(x.clone(), path)?;
                        path.truncate(len);
                        if !same(&c, x) && out.is_none() {
                            out = Some(
                                m.iter()
                                    .take(i)
                                    .map(|(k, v)| (k.clone(), v.clone()))
                                    .collect(),
                            );
                        }
                        if let Some(o) = &mut out {
                            o.insert(k.clone(), c);
                        }
                    }
                    Ok(match out {
                        Some(o) => Value::Map(Map::from_entries(o)),
                        None => Value::Map(m),
                    })
                }
                _ => fail(path, &v, self),
            },
            Ty::Struct(st) => match v {
                Value::Map(mut m) => {
                    for (name, fty) in st.field_types() {
                        let len = path.len();
                        push_key(path, name);
                        match m.get(name.as_str()) {
                            None => {
                                if !fty.is_option_like() {
                                    let at = if len == 0 {
                                        String::new()
                                    } else {
                                        format!(" at `{}`", &path[..len])
                                    };
                                    return Err(format!(
                                        "missing field `{name}` of {}{at}",
                                        st.name
                                    ));
                                }
                            }
                            Some(x) => {
                                let x = x.clone();
                                let c = fty.conform_at(x.clone(), path)?;
                                if !same(&c, &x) {
                                    m.make_mut().set(name.clone(), c);
                                }
                            }
                        }
                        path.truncate(len);
                    }
                    Ok(Value::Map(m))
                }
                _ => fail(path, &v, self),
            },
        }
    }
}

fn push_key(path: &mut String, k: &str) {
    if !path.is_empty() {
        path.push('.');
    }
    path.push_str(k);
}

/// Whether conformance left the value unchanged (cheap identity check).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Float(x), Value::Float(y)) => x.to_bits() == y.to_bits(),
        (Value::Int(x), Value::Int(y)) => x == y,
        (Value::List(x), Value::List(y)) => List::ptr_eq(x, y),
        (Value::Map(_), Value::Map(_)) => crate::value::values_equal(a, b) && kinds_same(a, b),
        (Value::Str(x), Value::Str(y)) => Str::ptr_eq(x, y),
        (Value::Duration(x), Value::Duration(y)) => x == y,
        (Value::Size(x), Value::Size(y)) => x == y,
        _ => {
            std::mem::discriminant(a) == std::mem::discriminant(b)
                && matches!(a, Value::Null | Value::Bool(_) | Value::Secret(_))
        }
    }
}

/// Deep check that conversion did not change any number's kind (int → float).
fn kinds_same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Map(x), Value::Map(y)) => x
            .iter()
            .zip(y.iter())
            .all(|((_, p), (_, q))| kinds_same(p, q)),
        (Value::List(x), Value::List(y)) => x
            .as_slice()
            .iter()
            .zip(y.as_slice())
            .all(|(p, q)| kinds_same(p, q)),
        _ => std::mem::discriminant(a) == std::mem::discriminant(b),
    }
}

impl fmt::Display for Ty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ty::Any => f.write_str("Any"),
            Ty::String => f.write_str("String"),
            Ty::Int => f.write_str("int"),
            Ty::Float => f.write_str("float"),
            Ty::Bool => f.write_str("bool"),
            Ty::Null => f.write_str("Null"),
            Ty::Duration => f.write_str("Duration"),
            Ty::Size => f.write_str("Size"),
            Ty::List(t) => write!(f, "Array<{t}>"),
            Ty::Map(t) => write!(f, "Map<String, {t}>"),
            Ty::Option(t) => write!(f, "Option<{t}>"),
            Ty::Struct(s) => f.write_str(&s.name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::OnceLock;

    #[test]
    fn floats_accept_ints_deeply() {
        let t = Ty::List(Box::new(Ty::Float));
        let v = Value::list(vec![Value::Int(2), Value::Float(1.5)]);
        let c = t.conform(v).unwrap();
        assert!(
            matches!(&c, Value::List(l) if matches!(l.as_slice()[0], Value::Float(f) if f == 2.0))
        );
        assert!(
            Ty::List(Box::new(Ty::Int))
                .conform(Value::list(vec![Value::Int(1), Value::str("x")]))
                .unwrap_err()
                .contains("[1]")
        );
    }

    #[test]
    fn structs_require_non_optional_fields() {
        let st = Arc::new(StructTy {
            name: "LineItem".into(),
            fields: vec![
                ("sku".into(), OnceLock::from(Ty::String)),
                ("unit_price".into(), OnceLock::from(Ty::Float)),
                (
                    "note".into(),
                    OnceLock::from(Ty::Option(Box::new(Ty::String))),
                ),
            ],
        });
        let t = Ty::Struct(st);
        let ok = t
            .conform(Value::map([
                ("sku", Value::str("A")),
                ("unit_price", Value::Int(2)),
            ]))
            .unwrap();
        assert!(
            matches!(ok, Value::Map(ref m) if matches!(m.get("unit_price"), Some(Value::Float(_))))
        );
        let err = t
            .conform(Value::map([("sku", Value::str("A"))]))
            .unwrap_err();
        assert!(err.contains("missing field `unit_price`"), "{err}");
    }

    #[test]
    fn durations_and_sizes_convert() {
        assert_eq!(
            Ty::Duration.conform(Value::str("90s")).unwrap(),
            Value::Duration(90_000)
        );
        assert_eq!(
            Ty::Duration.conform(Value::Int(5)).unwrap(),
            Value::Duration(5)
        );
        assert!(Ty::Duration.conform(Value::str("90")).is_err());
        assert_eq!(
            Ty::Size.conform(Value::str("8MB")).unwrap(),
            Value::Size(8 << 20)
        );
    }
}
