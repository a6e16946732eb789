//! Implementations of the pure functions (GRAMMAR 5.1) and intrinsics (5.2).

use super::{Args, Builtin, BuiltinClass, ParamSig, named, opt, req};
use crate::error::{ErrorKind, Fault};
use crate::host::LogLevel;
use crate::interp::{Flow, Interp, R, Raised, fault, index, type_error};
use crate::value::{
    self, Entries, List, Map, Str, Value, compare, heap, render, to_json, values_equal,
};
use std::cmp::Ordering;
use std::sync::Arc;

macro_rules! b {
    ($name:expr, [$($p:expr),* $(,)?], $f:expr) => {
        Builtin { name: $name, params: &[$($p),*], variadic: false, class: BuiltinClass::Pure, method: true, f: $f }
    };
    ($name:expr, [$($p:expr),* $(,)?], $f:expr, variadic) => {
        Builtin { name: $name, params: &[$($p),*], variadic: true, class: BuiltinClass::Pure, method: true, f: $f }
    };
    ($name:expr, [$($p:expr),* $(,)?], $f:expr, $class:ident, $method:expr) => {
        Builtin { name: $name, params: &[$($p),*], variadic: false, class: BuiltinClass::$class, method: $method, f: $f }
    };
    ($name:expr, [$($p:expr),* $(,)?], $f:expr, $class:ident, $method:expr, variadic) => {
        Builtin { name: $name, params: &[$($p),*], variadic: true, class: BuiltinClass::$class, method: $method, f: $f }
    };
}

const X: ParamSig = req("x");
const S: ParamSig = req("s");
const XS: ParamSig = req("xs");
const M: ParamSig = req("m");
const F: ParamSig = req("f");

pub(super) static BUILTINS: &[Builtin] = &[
    b!("len", [X], len),
    b!("length", [X], len),
    b!("format", [req("template")], format, variadic),
    b!("upper", [S], upper),
    b!("lower", [S], lower),
    b!("trim", [S], trim),
    b!("split", [S, req("sep")], split),
    b!("join", [XS, req("sep")], join),
    b!("replace", [S, req("from"), req("to")], replace),
    b!("substring", [S, req("start"), opt("end")], substring),
    b!("starts_with", [S, req("p")], starts_with),
    b!("ends_with", [S, req("p")], ends_with),
    b!("contains", [X, req("y")], contains),
    b!("matches", [S, req("regex")], matches),
    b!("contains_pattern", [S, req("regex")], matches),
    b!("is_empty", [X], is_empty),
    b!("keys", [M], keys),
    b!("values", [M], values),
    b!("has", [M, req("k")], has),
    b!("get", [req("c"), req("k"), opt("default")], get),
    b!("merge", [req("a"), req("b")], merge),
    b!("first", [XS], first),
    b!("last", [XS], last),
    b!("reverse", [XS], reverse),
    b!("unique", [XS], unique),
    b!("flatten", [XS], flatten),
    b!("sort", [XS, opt("key")], sort),
    b!("map", [XS, F], map),
    b!("filter", [XS, F], filter),
    b!("find", [XS, F], find),
    b!("any", [XS, F], any),
    b!("all", [XS, F], all),
    b!("count", [XS, opt("f")], count),
    b!("reduce", [XS, req("init"), F], reduce),
    b!(
        "range",
        [req("a"), opt("b"), opt("step")],
        range,
        Pure,
        false
    ),
    b!("min", [], min, Pure, true, variadic),
    b!("max", [], max, Pure, true, variadic),
    b!("sum", [XS], sum),
    b!("avg", [XS], avg),
    b!("abs", [X], abs),
    b!("round", [X, opt("digits")], round),
    b!("floor", [X], floor),
    b!("ceil", [X], ceil),
    b!("idiv", [req("a"), req("b")], idiv),
    b!("to_string", [X], to_string),
    b!("str", [X], to_string),
    b!("to_int", [X], to_int),
    b!("to_float", [X], to_float),
    b!("to_bool", [X], to_bool),
    b!("type_of", [X], type_of),
    b!("is_null", [X], is_null),
    b!("parse_json", [S], parse_json),
    b!("to_json", [X], to_json_fn),
    b!("hash_sha256", [X], hash_sha256),
    b!("hmac_sha256", [req("key"), req("data")], hmac_sha256),
    b!(
        "verify_hmac_sha256",
        [req("key"), req("data"), req("signature_hex")],
        verify_hmac
    ),
    b!("base64_encode", [S], base64_encode),
    b!("base64_decode", [S], base64_decode),
    b!("now", [], now, Recorded, false),
    b!("time_since", [req("t")], time_since, Recorded, false),
    b!("generate_id", [], generate_id, Recorded, false),
    b!(
        "error",
        [req("message"), named("kind"), named("details")],
        error,
        Pure,
        false
    ),
    b!("Err", [req("message")], err_fn, Pure, false),
    b!("Some", [X], identity, Pure, false),
    b!("Ok", [X], identity, Pure, false),
    b!("log", [req("level"), opt("message")], log, Intrinsic, false),
    b!("print", [], print, Intrinsic, false, variadic),
    b!(
        "audit_log",
        [req("event"), opt("details")],
        audit_log,
        Intrinsic,
        false
    ),
    b!("trigger", [], trigger, Intrinsic, false),
    // Mutating methods: listed for their signatures (E110) and E108; as plain functions
    // they cannot mutate anything (values are copied), so calling them is a TypeError.
    b!("push", [req("value")], not_a_function, Mutating, false),
    b!("append", [req("value")], not_a_function, Mutating, false),
    b!("pop", [], not_a_function, Mutating, false),
    b!(
        "insert",
        [req("index"), req("value")],
        not_a_function,
        Mutating,
        false
    ),
    b!("remove", [req("key")], not_a_function, Mutating, false),
    b!("extend", [req("values")], not_a_function, Mutating, false),
    b!("clear", [], not_a_function, Mutating, false),
    b!(
        "set",
        [req("key"), req("value")],
        not_a_function,
        Mutating,
        false
    ),
];

// -------------------------------------------------------------------------------------
// Argument helpers
// -------------------------------------------------------------------------------------

fn arg(a: &mut Args, i: usize) -> Value {
    a.take_or_null(i)
}

fn string(v: &Value, f: &str) -> R<Str> {
    match v {
        Value::Str(s) => Ok(s.clone()),
        other => Err(type_error(format!(
            "`{f}` needs a string, found {}",
            other.type_name()
        ))),
    }
}

fn int(v: &Value, f: &str) -> R<i64> {
    match v {
        Value::Int(i) => Ok(*i),
        other => Err(type_error(format!(
            "`{f}` needs an int, found {}",
            other.type_name()
        ))),
    }
}

fn list(v: &Value, f: &str) -> R<List> {
    match v {
        Value::List(l) => Ok(l.clone()),
        other => Err(type_error(format!(
            "`{f}` needs a list, found {}",
            other.type_name()
        ))),
    }
}

fn map_arg(v: &Value, f: &str) -> R<Map> {
    match v {
        Value::Map(m) => Ok(m.clone()),
        other => Err(type_error(format!(
            "`{f}` needs a map, found {}",
            other.type_name()
        ))),
    }
}

fn ensure_heap(bytes: usize) -> R<()> {
    if heap::fits(bytes) {
        Ok(())
    } else {
        Err(value::heap_fault_pub().into())
    }
}

/// Runs `f` on a secret's content and keeps the result secret.
fn secret_or<Fn1: FnOnce(Value) -> R>(v: Value, f: Fn1) -> R {
    match v {
        Value::Secret(s) => Ok(Value::secret(f(s.reveal().clone())?)),
        v => f(v),
    }
}

// -------------------------------------------------------------------------------------
// Strings
// -------------------------------------------------------------------------------------

fn len(_: &mut Interp<'_>, a: &mut Args) -> R {
    let x = arg(a, 0);
    let inner = match &x {
        Value::Secret(s) => s.reveal().clone(),
        v => v.clone(),
    };
    inner.len().map(|n| Value::Int(n as i64)).ok_or_else(|| {
        type_error(format!(
            "`len` needs a string, list or map, found {}",
            inner.type_name()
        ))
    })
}

fn format(_: &mut Interp<'_>, a: &mut Args) -> R {
    let t = arg(a, 0);
    let secret =
        matches!(t, Value::Secret(_)) || a.rest.iter().any(|v| matches!(v, Value::Secret(_)));
    let t = match t {
        Value::Secret(s) => s.reveal().clone(),
        v => v,
    };
    let t = string(&t, "format")?;
    let est: usize = t.len() + a.rest.iter().map(value::render_len_hint_pub).sum::<usize>();
    ensure_heap(est)?;
    let mut out = String::with_capacity(est);
    let mut vals = a.rest.iter();
    let mut used = 0;
    let mut chars = t.as_str().chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                out.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                out.push('}');
            }
            '{' if chars.peek() == Some(&'}') => {
                chars.next();
                match vals.next() {
                    Some(v) => {
                        let v = match v {
                            Value::Secret(s) => s.reveal(),
                            v => v,
                        };
                        out.push_str(&render(v));
                        used += 1;
                    }
                    None => {
                        return Err(fault(
                            ErrorKind::ArityError,
                            format!(
                                "`format` has more `{{}}` than the {} value(s) given",
                                a.rest.len()
                            ),
                        ));
                    }
                }
            }
            c => out.push(c),
        }
    }
    if used < a.rest.len() {
        return Err(fault(
            ErrorKind::ArityError,
            format!(
                "`format` was given {} values but the template has {used} `{{}}`",
                a.rest.len()
            ),
        ));
    }
    let v = Value::str(out);
    Ok(if secret { Value::secret(v) } else { v })
}

fn str_map(a: &mut Args, f: &str, op: fn(&str) -> String) -> R {
    let x = arg(a, 0);
    secret_or(x, |x| Ok(Value::str(op(string(&x, f)?.as_str()))))
}

fn upper(_: &mut Interp<'_>, a: &mut Args) -> R {
    str_map(a, "upper", |s| s.to_uppercase())
}
fn lower(_: &mut Interp<'_>, a: &mut Args) -> R {
    str_map(a, "lower", |s| s.to_lowercase())
}
fn trim(_: &mut Interp<'_>, a: &mut Args) -> R {
    let x = arg(a, 0);
    secret_or(x, |x| {
        let s = string(&x, "trim")?;
        let t = s.as_str().trim();
        Ok(if t.len() == s.len() {
            Value::Str(s)
        } else {
            Value::str(t)
        })
    })
}

fn split(it: &mut Interp<'_>, a: &mut Args) -> R {
    let s = string(&arg(a, 0), "split")?;
    let sep = string(&arg(a, 1), "split")?;
    ensure_heap(s.len() * 2)?;
    let parts: Vec<Value> = if sep.is_empty() {
        s.as_str()
            .chars()
            .map(|c| Value::str(c.to_string()))
            .collect()
    } else {
        s.as_str().split(sep.as_str()).map(Value::str).collect()
    };
    it.charge(parts.len() as u64)?;
    Ok(Value::list(parts))
}

fn join(it: &mut Interp<'_>, a: &mut Args) -> R {
    let xs = list(&arg(a, 0), "join")?;
    let sep = string(&arg(a, 1), "join")?;
    it.charge(xs.len() as u64)?;
    let est = xs
        .as_slice()
        .iter()
        .map(value::render_len_hint_pub)
        .sum::<usize>()
        + sep.len() * xs.len();
    ensure_heap(est)?;
    let mut out = String::with_capacity(est);
    let mut secret = false;
    for (i, v) in xs.as_slice().iter().enumerate() {
        if i > 0 {
            out.push_str(sep.as_str());
        }
        match v {
            Value::Secret(s) => {
                secret = true;
                out.push_str(&render(s.reveal()));
            }
            v => out.push_str(&render(v)),
        }
    }
    let v = Value::str(out);
    Ok(if secret { Value::secret(v) } else { v })
}

fn replace(_: &mut Interp<'_>, a: &mut Args) -> R {
    let s = string(&arg(a, 0), "replace")?;
    let from = string(&arg(a, 1), "replace")?;
    let to = string(&arg(a, 2), "replace")?;
    let n = if from.is_empty() {
        s.char_len() + 1
    } else {
        s.as_str().matches(from.as_str()).count()
    };
    let est = s.len().saturating_add(n.saturating_mul(to.len()));
    ensure_heap(est)?;
    Ok(Value::str(s.as_str().replace(from.as_str(), to.as_str())))
}

fn substring(_: &mut Interp<'_>, a: &mut Args) -> R {
    let s = string(&arg(a, 0), "substring")?;
    let start = int(&arg(a, 1), "substring")?;
    let end = match a.take(2) {
        None | Some(Value::Null) => None,
        Some(v) => Some(int(&v, "substring")?),
    };
    let len = s.char_len() as i64;
    let clamp = |i: i64| -> usize { (if i < 0 { i + len } else { i }).clamp(0, len) as usize };
    let (st, en) = (clamp(start), clamp(end.unwrap_or(len)));
    if st >= en {
        return Ok(Value::str(""));
    }
    let t = s.as_str();
    let out: String = if t.is_ascii() {
        t[st..en].to_string()
    } else {
        t.chars().skip(st).take(en - st).collect()
    };
    Ok(Value::str(out))
}

fn starts_with(_: &mut Interp<'_>, a: &mut Args) -> R {
    let s = string(&arg(a, 0), "starts_with")?;
    let p = string(&arg(a, 1), "starts_with")?;
    Ok(Value::Bool(s.as_str().starts_with(p.as_str())))
}

fn ends_with(_: &mut Interp<'_>, a: &mut Args) -> R {
    let s = string(&arg(a, 0), "ends_with")?;
    let p = string(&arg(a, 1), "ends_with")?;
    Ok(Value::Bool(s.as_str().ends_with(p.as_str())))
}

fn contains(it: &mut Interp<'_>, a: &mut Args) -> R {
    let x = arg(a, 0);
    let y = arg(a, 1);
    match &x {
        Value::Str(s) => Ok(Value::Bool(
            s.as_str().contains(string(&y, "contains")?.as_str()),
        )),
        Value::List(l) => {
            it.charge(l.len() as u64)?;
            Ok(Value::Bool(
                l.as_slice().iter().any(|v| values_equal(v, &y)),
            ))
        }
        Value::Map(m) => Ok(Value::Bool(
            matches!(&y, Value::Str(k) if m.get(k.as_str()).is_some()),
        )),
        other => Err(type_error(format!(
            "`contains` needs a string, list or map, found {}",
            other.type_name()
        ))),
    }
}

fn matches(it: &mut Interp<'_>, a: &mut Args) -> R {
    let s = string(&arg(a, 0), "matches")?;
    let pat = string(&arg(a, 1), "matches")?;
    let re = match it.regex_cache.iter().find(|(p, _)| p == &pat) {
        Some((_, r)) => r.clone(),
        None => {
            let r = regex::RegexBuilder::new(pat.as_str())
                .size_limit(1 << 20)
                .dfa_size_limit(1 << 20)
                .build()
                .map_err(|e| type_error(format!("invalid regular expression: {e}")))?;
            let r = Arc::new(r);
            if it.regex_cache.len() >= 32 {
                it.regex_cache.remove(0);
            }
            it.regex_cache.push((pat, r.clone()));
            r
        }
    };
    it.charge(1 + s.len() as u64 / 256)?;
    Ok(Value::Bool(re.is_match(s.as_str())))
}

fn is_empty(_: &mut Interp<'_>, a: &mut Args) -> R {
    match arg(a, 0) {
        Value::Null => Ok(Value::Bool(true)),
        v => v.len().map(|n| Value::Bool(n == 0)).ok_or_else(|| {
            type_error(format!(
                "`is_empty` needs a string, list, map or null, found {}",
                v.type_name()
            ))
        }),
    }
}

// -------------------------------------------------------------------------------------
// Maps
// -------------------------------------------------------------------------------------

fn keys(it: &mut Interp<'_>, a: &mut Args) -> R {
    let m = map_arg(&arg(a, 0), "keys")?;
    it.charge(m.len() as u64)?;
    Ok(Value::list(
        m.iter().map(|(k, _)| Value::Str(k.clone())).collect(),
    ))
}

fn values(it: &mut Interp<'_>, a: &mut Args) -> R {
    let m = map_arg(&arg(a, 0), "values")?;
    it.charge(m.len() as u64)?;
    Ok(Value::list(m.iter().map(|(_, v)| v.clone()).collect()))
}

fn has(_: &mut Interp<'_>, a: &mut Args) -> R {
    let m = map_arg(&arg(a, 0), "has")?;
    let k = string(&arg(a, 1), "has")?;
    Ok(Value::Bool(m.get(k.as_str()).is_some()))
}

fn get(_: &mut Interp<'_>, a: &mut Args) -> R {
    let c = arg(a, 0);
    let k = arg(a, 1);
    let d = a.take(2).unwrap_or(Value::Null);
    match (&c, &k) {
        (Value::Map(m), Value::Str(s)) => Ok(m.get(s.as_str()).cloned().unwrap_or(d)),
        (Value::List(l), Value::Int(i)) => Ok(crate::interp::norm_index(*i, l.len())
            .map(|j| l.as_slice()[j].clone())
            .unwrap_or(d)),
        (Value::Null, _) => Ok(d),
        _ => Err(type_error(format!(
            "`get` needs a map and a string key or a list and an int index, found {} and {}",
            c.type_name(),
            k.type_name()
        ))),
    }
}

fn merge(it: &mut Interp<'_>, a: &mut Args) -> R {
    let x = map_arg(&arg(a, 0), "merge")?;
    let y = map_arg(&arg(a, 1), "merge")?;
    it.charge(y.len() as u64)?;
    Ok(value::binary_op(
        value::BinOp::Add,
        Value::Map(x),
        Value::Map(y),
    )?)
}

// -------------------------------------------------------------------------------------
// Lists
// -------------------------------------------------------------------------------------

fn first(_: &mut Interp<'_>, a: &mut Args) -> R {
    Ok(list(&arg(a, 0), "first")?
        .as_slice()
        .first()
        .cloned()
        .unwrap_or(Value::Null))
}

fn last(_: &mut Interp<'_>, a: &mut Args) -> R {
    Ok(list(&arg(a, 0), "last")?
        .as_slice()
        .last()
        .cloned()
        .unwrap_or(Value::Null))
}

fn reverse(it: &mut Interp<'_>, a: &mut Args) -> R {
    match arg(a, 0) {
        Value::Str(s) => Ok(Value::str(s.as_str().chars().rev().collect::<String>())),
        v => {
            let l = list(&v, "reverse")?;
            it.charge(l.len() as u64)?;
            let mut v = l.into_vec();
            v.reverse();
            Ok(Value::list(v))
        }
    }
}

/// A hashable key for scalar values (floats equal to ints hash like the int).
#[derive(PartialEq, Eq, Hash)]
enum HKey {
    Null,
    Bool(bool),
    Int(i64),
    Float(u64),
    Str(Str),
    Duration(i64),
    Size(u64),
}

fn hkey(v: &Value) -> Option<HKey> {
    Some(match v {
        Value::Null => HKey::Null,
        Value::Bool(b) => HKey::Bool(*b),
        Value::Int(i) => HKey::Int(*i),
        Value::Float(f) => {
            if f.fract() == 0.0 && *f >= -9.2e18 && *f <= 9.2e18 {
                HKey::Int(*f as i64)
            } else {
                HKey::Float(if *f == 0.0 { 0 } else { f.to_bits() })
            }
        }
        Value::Str(s) => HKey::Str(s.clone()),
        Value::Duration(d) => HKey::Duration(*d),
        Value::Size(s) => HKey::Size(*s),
        _ => return None,
    })
}

fn unique(it: &mut Interp<'_>, a: &mut Args) -> R {
    let l = list(&arg(a, 0), "unique")?;
    it.charge(l.len() as u64)?;
    let mut seen = std::collections::HashSet::with_hasher(value::MapHasher::default());
    let mut others: Vec<Value> = Vec::new();
    let mut out = Vec::new();
    for v in l.as_slice() {
        match hkey(v) {
            Some(k) => {
                if seen.insert(k) {
                    out.push(v.clone());
                }
            }
            None => {
                it.charge(others.len() as u64)?;
                if !others.iter().any(|o| values_equal(o, v)) {
                    others.push(v.clone());
                    out.push(v.clone());
                }
            }
        }
    }
    Ok(Value::list(out))
}

fn flatten(it: &mut Interp<'_>, a: &mut Args) -> R {
    let l = list(&arg(a, 0), "flatten")?;
    it.charge(l.len() as u64)?;
    let mut out = Vec::with_capacity(l.len());
    for v in l.as_slice() {
        match v {
            Value::List(inner) => {
                it.charge(inner.len() as u64)?;
                out.extend(inner.as_slice().iter().cloned());
            }
            v => out.push(v.clone()),
        }
    }
    ensure_heap(out.len() * 16)?;
    Ok(Value::list(out))
}

fn sort(it: &mut Interp<'_>, a: &mut Args) -> R {
    let l = list(&arg(a, 0), "sort")?;
    let key = a.take(1).filter(|k| !k.is_null());
    let n = l.len();
    it.charge(n as u64 * (1 + (usize::BITS - n.leading_zeros()) as u64))?;
    let items = l.into_vec();
    let keys: Vec<Value> = match &key {
        Some(f) => {
            let mut ks = Vec::with_capacity(n);
            for v in &items {
                ks.push(it.apply(f, v.clone(), "sort")?);
            }
            ks
        }
        None => items.clone(),
    };
    let mut idx: Vec<usize> = (0..n).collect();
    let mut err: Option<Fault> = None;
    idx.sort_by(|&i, &j| match compare(&keys[i], &keys[j]) {
        Ok(o) => o,
        Err(e) => {
            err.get_or_insert(e);
            Ordering::Equal
        }
    });
    if let Some(e) = err {
        return Err(e.into());
    }
    let mut slots: Vec<Option<Value>> = items.into_iter().map(Some).collect();
    Ok(Value::list(
        idx.into_iter()
            .map(|i| slots[i].take().unwrap_or(Value::Null))
            .collect(),
    ))
}

fn map(it: &mut Interp<'_>, a: &mut Args) -> R {
    let l = list(&arg(a, 0), "map")?;
    let f = arg(a, 1);
    let mut out = Vec::with_capacity(l.len());
    for v in l.as_slice() {
        it.charge(1)?;
        out.push(it.apply(&f, v.clone(), "map")?);
    }
    let v = Value::list(out);
    v.check_depth()?;
    Ok(v)
}

fn filter(it: &mut Interp<'_>, a: &mut Args) -> R {
    let x = arg(a, 0);
    let f = arg(a, 1);
    if let Value::Map(m) = &x {
        let mut out = Entries::default();
        for (k, v) in m.iter() {
            it.charge(1)?;
            if it.apply(&f, v.clone(), "filter")?.truthy() {
                out.insert(k.clone(), v.clone());
            }
        }
        return Ok(Value::Map(Map::from_entries(out)));
    }
    let l = list(&x, "filter")?;
    let mut out = Vec::new();
    for v in l.as_slice() {
        it.charge(1)?;
        if it.apply(&f, v.clone(), "filter")?.truthy() {
            out.push(v.clone());
        }
    }
    Ok(Value::list(out))
}

fn find(it: &mut Interp<'_>, a: &mut Args) -> R {
    let l = list(&arg(a, 0), "find")?;
    let f = arg(a, 1);
    for v in l.as_slice() {
        it.charge(1)?;
        if it.apply(&f, v.clone(), "find")?.truthy() {
            return Ok(v.clone());
        }
    }
    Ok(Value::Null)
}

fn any(it: &mut Interp<'_>, a: &mut Args) -> R {
    let l = list(&arg(a, 0), "any")?;
    let f = arg(a, 1);
    for v in l.as_slice() {
        it.charge(1)?;
        if it.apply(&f, v.clone(), "any")?.truthy() {
            return Ok(Value::Bool(true));
        }
    }
    Ok(Value::Bool(false))
}

fn all(it: &mut Interp<'_>, a: &mut Args) -> R {
    let l = list(&arg(a, 0), "all")?;
    let f = arg(a, 1);
    for v in l.as_slice() {
        it.charge(1)?;
        if !it.apply(&f, v.clone(), "all")?.truthy() {
            return Ok(Value::Bool(false));
        }
    }
    Ok(Value::Bool(true))
}

fn count(it: &mut Interp<'_>, a: &mut Args) -> R {
    let x = arg(a, 0);
    let f = a.take(1).filter(|f| !f.is_null());
    let l = match (&x, &f) {
        (Value::List(l), _) => l.clone(),
        (other, None) => {
            return other.len().map(|n| Value::Int(n as i64)).ok_or_else(|| {
                type_error(format!("`count` needs a list, found {}", other.type_name()))
            });
        }
        (other, Some(_)) => {
            return Err(type_error(format!(
                "`count` needs a list, found {}",
                other.type_name()
            )));
        }
    };
    let Some(f) = f else {
        return Ok(Value::Int(l.len() as i64));
    };
    let mut n = 0;
    for v in l.as_slice() {
        it.charge(1)?;
        if it.apply(&f, v.clone(), "count")?.truthy() {
            n += 1;
        }
    }
    Ok(Value::Int(n))
}

fn reduce(it: &mut Interp<'_>, a: &mut Args) -> R {
    let l = list(&arg(a, 0), "reduce")?;
    let mut acc = arg(a, 1);
    let f = arg(a, 2);
    for v in l.as_slice() {
        it.charge(1)?;
        acc = it.apply(&f, Value::list(vec![acc, v.clone()]), "reduce")?;
        acc.check_depth()?;
    }
    Ok(acc)
}

fn range(it: &mut Interp<'_>, a: &mut Args) -> R {
    let x = int(&arg(a, 0), "range")?;
    let (start, end) = match a.take(1) {
        None | Some(Value::Null) => (0, x),
        Some(v) => (x, int(&v, "range")?),
    };
    let step = match a.take(2) {
        None | Some(Value::Null) => 1,
        Some(v) => int(&v, "range")?,
    };
    if step == 0 {
        return Err(Fault::arith("`range` step cannot be zero").into());
    }
    let n: i128 = if step > 0 {
        if end <= start {
            0
        } else {
            ((end as i128 - start as i128) + step as i128 - 1) / step as i128
        }
    } else if end >= start {
        0
    } else {
        ((start as i128 - end as i128) + (-(step as i128)) - 1) / (-(step as i128))
    };
    if n > 1_000_000 {
        return Err(Fault::arith(format!(
            "`range` would make {n} elements; the limit is 1000000"
        ))
        .into());
    }
    it.charge(n as u64)?;
    ensure_heap(n as usize * 16)?;
    let mut out = Vec::with_capacity(n as usize);
    let mut i = start as i128;
    for _ in 0..n {
        out.push(Value::Int(i as i64));
        i += step as i128;
    }
    Ok(Value::list(out))
}

// -------------------------------------------------------------------------------------
// Numbers
// -------------------------------------------------------------------------------------

fn min_max(it: &mut Interp<'_>, a: &mut Args, want: Ordering, name: &str) -> R {
    let items: Vec<Value> = match a.rest.len() {
        0 => {
            return Err(fault(
                ErrorKind::ArityError,
                format!("`{name}` needs at least one argument"),
            ));
        }
        1 => match &a.rest[0] {
            Value::List(l) => l.as_slice().to_vec(),
            v => vec![v.clone()],
        },
        _ => std::mem::take(&mut a.rest),
    };
    it.charge(items.len() as u64)?;
    let mut best: Option<Value> = None;
    for v in items {
        best = Some(match best {
            None => v,
            Some(b) => {
                if compare(&v, &b)? == want {
                    v
                } else {
                    b
                }
            }
        });
    }
    Ok(best.unwrap_or(Value::Null))
}

fn min(it: &mut Interp<'_>, a: &mut Args) -> R {
    min_max(it, a, Ordering::Less, "min")
}
fn max(it: &mut Interp<'_>, a: &mut Args) -> R {
    min_max(it, a, Ordering::Greater, "max")
}

fn sum(it: &mut Interp<'_>, a: &mut Args) -> R {
    let l = list(&arg(a, 0), "sum")?;
    it.charge(l.len() as u64)?;
    let mut acc = Value::Int(0);
    for v in l.as_slice() {
        if !matches!(v, Value::Int(_) | Value::Float(_) | Value::Duration(_)) {
            return Err(type_error(format!(
                "`sum` needs numbers, found {}",
                v.type_name()
            )));
        }
        acc = if matches!((&acc, v), (Value::Int(0), Value::Duration(_)))
            && matches!(acc, Value::Int(0))
        {
            v.clone()
        } else {
            value::binary_op(value::BinOp::Add, acc, v.clone())?
        };
    }
    Ok(acc)
}

fn avg(it: &mut Interp<'_>, a: &mut Args) -> R {
    let l = list(&arg(a, 0), "avg")?;
    it.charge(l.len() as u64)?;
    if l.is_empty() {
        return Ok(Value::Null);
    }
    let mut total = 0.0f64;
    for v in l.as_slice() {
        total += match v {
            Value::Int(i) => *i as f64,
            Value::Float(f) => *f,
            other => {
                return Err(type_error(format!(
                    "`avg` needs numbers, found {}",
                    other.type_name()
                )));
            }
        };
    }
    Ok(Value::float(total / l.len() as f64)?)
}

fn abs(_: &mut Interp<'_>, a: &mut Args) -> R {
    match arg(a, 0) {
        Value::Int(i) => i
            .checked_abs()
            .map(Value::Int)
            .ok_or_else(|| Fault::arith("integer overflow").into()),
        Value::Float(f) => Ok(Value::Float(f.abs())),
        Value::Duration(d) => d
            .checked_abs()
            .map(Value::Duration)
            .ok_or_else(|| Fault::arith("duration out of range").into()),
        other => Err(type_error(format!(
            "`abs` needs a number, found {}",
            other.type_name()
        ))),
    }
}

fn float_to_int(f: f64, what: &str) -> R {
    if !(-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&f) {
        return Err(Fault::arith(format!(
            "`{what}` result {} does not fit in an int",
            value::float_text(f)
        ))
        .into());
    }
    Ok(Value::Int(f as i64))
}

/// Rounds the exact value of `x` to `digits` decimals, halves away from zero.
fn round_digits(x: f64, digits: i64) -> R {
    if digits < 0 {
        let p = 10f64.powi((-digits).min(308) as i32);
        return Ok(Value::float((x / p).round() * p)?);
    }
    let d = digits.min(1074) as usize;
    // `{:.1100}` prints the exact binary value (every f64 has a finite decimal expansion
    // of at most 1074 fractional digits), so the digit after position `d` decides.
    let exact = format!("{:.1100}", x.abs());
    let dot = exact.find('.').unwrap_or(exact.len());
    let mut digits_buf: Vec<u8> = exact[..dot]
        .bytes()
        .chain(exact[dot + 1..].bytes().take(d))
        .collect();
    let next = exact.as_bytes().get(dot + 1 + d).copied().unwrap_or(b'0');
    if next >= b'5' {
        let mut i = digits_buf.len();
        loop {
            if i == 0 {
                digits_buf.insert(0, b'1');
                break;
            }
            i -= 1;
            if digits_buf[i] == b'9' {
                digits_buf[i] = b'0';
            } else {
                digits_buf[i] += 1;
                break;
            }
        }
    }
    let int_len = digits_buf.len() - d;
    let mut text = String::with_capacity(digits_buf.len() + 2);
    if x.is_sign_negative() {
        text.push('-');
    }
    text.push_str(std::str::from_utf8(&digits_buf[..int_len]).unwrap_or("0"));
    text.push('.');
    text.push_str(std::str::from_utf8(&digits_buf[int_len..]).unwrap_or(""));
    text.push('0');
    let v: f64 = text.parse().map_err(|_| Fault::arith("`round` failed"))?;
    Ok(Value::float(v)?)
}

fn round(_: &mut Interp<'_>, a: &mut Args) -> R {
    let x = arg(a, 0);
    let digits = match a.take(1) {
        None | Some(Value::Null) => None,
        Some(v) => Some(int(&v, "round")?),
    };
    match (x, digits) {
        (Value::Int(i), None) => Ok(Value::Int(i)),
        (Value::Float(f), None) => float_to_int(f.round(), "round"),
        (Value::Int(i), Some(d)) => round_digits(i as f64, d),
        (Value::Float(f), Some(d)) => round_digits(f, d),
        (other, _) => Err(type_error(format!(
            "`round` needs a number, found {}",
            other.type_name()
        ))),
    }
}

fn floor(_: &mut Interp<'_>, a: &mut Args) -> R {
    match arg(a, 0) {
        Value::Int(i) => Ok(Value::Int(i)),
        Value::Float(f) => float_to_int(f.floor(), "floor"),
        other => Err(type_error(format!(
            "`floor` needs a number, found {}",
            other.type_name()
        ))),
    }
}

fn ceil(_: &mut Interp<'_>, a: &mut Args) -> R {
    match arg(a, 0) {
        Value::Int(i) => Ok(Value::Int(i)),
        Value::Float(f) => float_to_int(f.ceil(), "ceil"),
        other => Err(type_error(format!(
            "`ceil` needs a number, found {}",
            other.type_name()
        ))),
    }
}

fn idiv(_: &mut Interp<'_>, a: &mut Args) -> R {
    let x = int(&arg(a, 0), "idiv")?;
    let y = int(&arg(a, 1), "idiv")?;
    if y == 0 {
        return Err(Fault::arith("division by zero").into());
    }
    x.checked_div(y)
        .map(Value::Int)
        .ok_or_else(|| Fault::arith("integer overflow").into())
}

// -------------------------------------------------------------------------------------
// Conversions
// -------------------------------------------------------------------------------------

fn to_string(_: &mut Interp<'_>, a: &mut Args) -> R {
    match arg(a, 0) {
        Value::Secret(s) => Ok(Value::secret(Value::str(render(s.reveal())))),
        v @ Value::Str(_) => Ok(v),
        v => Ok(Value::str(render(&v))),
    }
}

fn to_int(_: &mut Interp<'_>, a: &mut Args) -> R {
    match arg(a, 0) {
        Value::Int(i) => Ok(Value::Int(i)),
        Value::Float(f) => float_to_int(f.trunc(), "to_int"),
        Value::Duration(d) => Ok(Value::Int(d)),
        Value::Size(s) => i64::try_from(s)
            .map(Value::Int)
            .map_err(|_| Fault::arith("size does not fit in an int").into()),
        Value::Str(s) => {
            let t = s.as_str();
            let digits = t.strip_prefix('-').unwrap_or(t);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(type_error(format!("cannot convert {:?} to an int", t)));
            }
            t.parse::<i64>()
                .map(Value::Int)
                .map_err(|_| Fault::arith(format!("{t} does not fit in an int")).into())
        }
        other => Err(type_error(format!(
            "cannot convert a {} to an int",
            other.type_name()
        ))),
    }
}

fn to_float(_: &mut Interp<'_>, a: &mut Args) -> R {
    match arg(a, 0) {
        Value::Int(i) => Ok(Value::Float(i as f64)),
        Value::Float(f) => Ok(Value::Float(f)),
        Value::Str(s) => match s.as_str().trim().parse::<f64>() {
            Ok(f) if f.is_finite() => Ok(Value::Float(f)),
            _ => Err(type_error(format!(
                "cannot convert {:?} to a float",
                s.as_str()
            ))),
        },
        other => Err(type_error(format!(
            "cannot convert a {} to a float",
            other.type_name()
        ))),
    }
}

fn to_bool(_: &mut Interp<'_>, a: &mut Args) -> R {
    match arg(a, 0) {
        Value::Str(s) => match s.as_str().to_ascii_lowercase().as_str() {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => Err(type_error(format!(
                "cannot convert {:?} to a bool",
                s.as_str()
            ))),
        },
        v => Ok(Value::Bool(v.truthy())),
    }
}

fn type_of(_: &mut Interp<'_>, a: &mut Args) -> R {
    Ok(Value::str(arg(a, 0).type_name()))
}

fn is_null(_: &mut Interp<'_>, a: &mut Args) -> R {
    Ok(Value::Bool(arg(a, 0).is_null()))
}

fn parse_json(_: &mut Interp<'_>, a: &mut Args) -> R {
    let s = string(&arg(a, 0), "parse_json")?;
    Ok(value::json::parse_json_text(s.as_str()).map_err(Fault::from)?)
}

fn to_json_fn(_: &mut Interp<'_>, a: &mut Args) -> R {
    let j = to_json(&arg(a, 0))?;
    Ok(Value::str(value::json_to_string(&j, false)))
}

// -------------------------------------------------------------------------------------
// Hashing and encoding
// -------------------------------------------------------------------------------------

fn bytes_of(v: &Value) -> Vec<u8> {
    match v {
        Value::Str(s) => s.as_str().as_bytes().to_vec(),
        Value::Secret(s) => bytes_of(s.reveal()),
        other => render_compact_json(other).into_bytes(),
    }
}

fn render_compact_json(v: &Value) -> String {
    match v {
        Value::List(_) | Value::Map(_) => render(v),
        other => {
            let mut s = String::new();
            match other {
                Value::Str(t) => s.push_str(&serde_json::to_string(t.as_str()).unwrap_or_default()),
                o => s.push_str(&render(o)),
            }
            s
        }
    }
}

fn hash_sha256(_: &mut Interp<'_>, a: &mut Args) -> R {
    use sha2::Digest;
    let x = arg(a, 0);
    let h = hex::encode(sha2::Sha256::digest(bytes_of(&x)));
    Ok(if matches!(x, Value::Secret(_)) {
        Value::secret(Value::str(h))
    } else {
        Value::str(h)
    })
}

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

fn mac(key: &Value, data: &Value) -> R<HmacSha256> {
    use hmac::Mac;
    let mut m = HmacSha256::new_from_slice(&bytes_of(key))
        .map_err(|e| type_error(format!("invalid HMAC key: {e}")))?;
    m.update(&bytes_of(data));
    Ok(m)
}

fn hmac_sha256(_: &mut Interp<'_>, a: &mut Args) -> R {
    use hmac::Mac;
    let m = mac(&arg(a, 0), &arg(a, 1))?;
    Ok(Value::str(hex::encode(m.finalize().into_bytes())))
}

fn verify_hmac(_: &mut Interp<'_>, a: &mut Args) -> R {
    use hmac::Mac;
    let m = mac(&arg(a, 0), &arg(a, 1))?;
    let sig = arg(a, 2);
    let sig = match &sig {
        Value::Secret(s) => s.reveal().clone(),
        v => v.clone(),
    };
    let sig = string(&sig, "verify_hmac_sha256")?;
    let Ok(bytes) = hex::decode(sig.as_str().trim()) else {
        return Ok(Value::Bool(false));
    };
    // `verify_slice` compares in constant time.
    Ok(Value::Bool(m.verify_slice(&bytes).is_ok()))
}

fn base64_encode(_: &mut Interp<'_>, a: &mut Args) -> R {
    use base64::Engine;
    let x = arg(a, 0);
    secret_or(x, |x| {
        let s = string(&x, "base64_encode")?;
        Ok(Value::str(
            base64::engine::general_purpose::STANDARD.encode(s.as_str().as_bytes()),
        ))
    })
}

fn base64_decode(_: &mut Interp<'_>, a: &mut Args) -> R {
    use base64::Engine;
    let x = arg(a, 0);
    secret_or(x, |x| {
        let s = string(&x, "base64_decode")?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(s.as_str().trim().as_bytes())
            .map_err(|e| type_error(format!("invalid base64: {e}")))?;
        String::from_utf8(bytes)
            .map(Value::str)
            .map_err(|_| type_error("decoded base64 is not UTF-8 text"))
    })
}

// -------------------------------------------------------------------------------------
// Recorded (non-deterministic) functions
// -------------------------------------------------------------------------------------

fn now_text() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

fn now(it: &mut Interp<'_>, _: &mut Args) -> R {
    let j = it
        .fx
        .recorded("now", &mut || serde_json::Value::String(now_text()));
    Ok(value::from_json(&j).map_err(Fault::from)?)
}

fn time_since(it: &mut Interp<'_>, a: &mut Args) -> R {
    let t = string(&arg(a, 0), "time_since")?;
    let then = chrono::DateTime::parse_from_rfc3339(t.as_str())
        .map_err(|e| type_error(format!("`time_since` needs an RFC 3339 time: {e}")))?;
    let j = it.fx.recorded("time_since", &mut || {
        let ms = (chrono::Utc::now() - then.with_timezone(&chrono::Utc)).num_milliseconds();
        serde_json::Value::from(ms)
    });
    Ok(value::from_json(&j).map_err(Fault::from)?)
}

fn generate_id(it: &mut Interp<'_>, _: &mut Args) -> R {
    let j = it.fx.recorded("generate_id", &mut || {
        serde_json::Value::String(uuid::Uuid::new_v4().to_string())
    });
    Ok(value::from_json(&j).map_err(Fault::from)?)
}

// -------------------------------------------------------------------------------------
// Errors and Option/Result helpers
// -------------------------------------------------------------------------------------

fn error(_: &mut Interp<'_>, a: &mut Args) -> R {
    let msg = arg(a, 0);
    if let Value::Error(e) = &msg {
        // `error(e)` raises `e` again unchanged.
        return Err(Flow::Err(Box::new(Raised::from_value(e))));
    }
    let kind = match a.take(1) {
        None | Some(Value::Null) => ErrorKind::Custom("Error".into()),
        Some(Value::Str(k)) => {
            let k = ErrorKind::from_name(k.as_str());
            if matches!(
                k,
                ErrorKind::BudgetExhausted
                    | ErrorKind::Timeout
                    | ErrorKind::InputError
                    | ErrorKind::InternalFault
            ) {
                return Err(type_error(format!(
                    "the kind `{k}` cannot be raised by `error`"
                )));
            }
            if k.as_str().is_empty() {
                return Err(type_error("an error kind cannot be empty"));
            }
            k
        }
        Some(other) => {
            return Err(type_error(format!(
                "an error kind must be a string, found {}",
                other.type_name()
            )));
        }
    };
    let details = match a.take(2) {
        None => Value::Null,
        Some(d @ (Value::Null | Value::Map(_))) => d,
        Some(other) => {
            return Err(type_error(format!(
                "error details must be a map or null, found {}",
                other.type_name()
            )));
        }
    };
    let message = match msg {
        Value::Str(s) => s.as_str().to_string(),
        other => render(&other),
    };
    Err(Fault::new(kind, message).with_details(details).into())
}

fn err_fn(it: &mut Interp<'_>, a: &mut Args) -> R {
    let mut b = Args::default();
    b.fixed.push(a.take(0));
    b.fixed.push(None);
    b.fixed.push(None);
    error(it, &mut b)
}

fn identity(_: &mut Interp<'_>, a: &mut Args) -> R {
    Ok(arg(a, 0))
}

fn not_a_function(_: &mut Interp<'_>, _: &mut Args) -> R {
    Err(type_error(
        "this is a method that modifies its receiver: call it as `list.push(x)` on a variable",
    ))
}

// -------------------------------------------------------------------------------------
// Intrinsics
// -------------------------------------------------------------------------------------

fn guard_refuses(it: &Interp<'_>, name: &str) -> R<()> {
    if it.fx.is_guard() {
        return Err(type_error(format!(
            "a policy guard cannot call the intrinsic `{name}`"
        )));
    }
    Ok(())
}

fn text_of(v: &Value) -> String {
    match v {
        Value::Str(s) => s.as_str().to_string(),
        other => render(other),
    }
}

fn log(it: &mut Interp<'_>, a: &mut Args) -> R {
    guard_refuses(it, "log")?;
    let first = arg(a, 0);
    let (level, msg) = match a.take(1) {
        None => (LogLevel::Info, text_of(&first)),
        Some(m) => {
            let lv = string(&first, "log")?;
            let level = LogLevel::parse(lv.as_str()).ok_or_else(|| {
                type_error(format!(
                    "unknown log level {:?} (DEBUG, INFO, WARNING, ERROR or CRITICAL)",
                    lv.as_str()
                ))
            })?;
            (level, text_of(&m))
        }
    };
    let loc = it.source_location(it.cur_span);
    it.fx.log(level, &msg, &loc);
    Ok(Value::Null)
}

fn print(it: &mut Interp<'_>, a: &mut Args) -> R {
    guard_refuses(it, "print")?;
    let msg = a.rest.iter().map(text_of).collect::<Vec<_>>().join(" ");
    let loc = it.source_location(it.cur_span);
    it.fx.log(LogLevel::Info, &msg, &loc);
    Ok(Value::Null)
}

fn audit_log(it: &mut Interp<'_>, a: &mut Args) -> R {
    guard_refuses(it, "audit_log")?;
    let event = string(&arg(a, 0), "audit_log")?;
    let details = crate::value::to_json_lossy(&a.take(1).unwrap_or(Value::Null));
    let loc = it.source_location(it.cur_span);
    let deadline = it.deadline;
    it.fx
        .audit(event.as_str(), &details, &loc, deadline)
        .map_err(|e| {
            let mut f = Fault::new(
                ErrorKind::ActionFailed,
                format!("the audit log refused the event: {e}"),
            );
            f.action = Some("audit_log".into());
            Flow::from(f)
        })?;
    Ok(Value::Null)
}

fn trigger(it: &mut Interp<'_>, _: &mut Args) -> R {
    guard_refuses(it, "trigger")?;
    Ok(it.fx.trigger())
}

#[allow(dead_code)]
fn _index_used(o: &Value, i: &Value) -> R {
    index(o, i)
}
