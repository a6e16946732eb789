//! Operators on values (GRAMMAR 4.5.1–4.5.2).

use super::text::{render_into, render_len_hint};
use super::{List, Map, Str, Value, heap};
use crate::error::{ErrorKind, Fault, VResult};
use std::cmp::Ordering;

/// Arithmetic operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `%`
    Rem,
}

impl BinOp {
    fn symbol(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Rem => "%",
        }
    }
}

fn overflow() -> Fault {
    Fault::arith("integer overflow")
}

fn type_mismatch(op: BinOp, a: &Value, b: &Value) -> Fault {
    Fault::type_error(format!(
        "unsupported operand types for `{}`: {} and {}",
        op.symbol(),
        a.type_name(),
        b.type_name()
    ))
}

/// Rounds a float number of milliseconds to a duration (halves away from zero).
fn ms_from_f64(ms: f64) -> VResult {
    let r = ms.round();
    if !r.is_finite() || r < i64::MIN as f64 || r >= i64::MAX as f64 {
        return Err(Fault::arith("duration out of range"));
    }
    Ok(Value::Duration(r as i64))
}

fn num(v: &Value) -> Option<f64> {
    match v {
        Value::Int(i) => Some(*i as f64),
        Value::Float(f) => Some(*f),
        _ => None,
    }
}

/// Evaluates `a op b`, consuming the operands (so that `s + t` with an unshared `s` can
/// append in place).
pub fn binary_op(op: BinOp, a: Value, b: Value) -> VResult {
    use Value::*;
    match (op, &a, &b) {
        (BinOp::Add, Int(x), Int(y)) => x.checked_add(*y).map(Int).ok_or_else(overflow),
        (BinOp::Sub, Int(x), Int(y)) => x.checked_sub(*y).map(Int).ok_or_else(overflow),
        (BinOp::Mul, Int(x), Int(y)) => x.checked_mul(*y).map(Int).ok_or_else(overflow),
        (BinOp::Div, Int(_) | Float(_), Int(_) | Float(_)) => {
            let (x, y) = (num(&a).unwrap_or(0.0), num(&b).unwrap_or(0.0));
            if y == 0.0 {
                return Err(Fault::arith("division by zero"));
            }
            if let (Int(x), Int(y)) = (&a, &b) {
                // Exact when both fit in the 53-bit mantissa; otherwise the nearest float.
                return Value::float(*x as f64 / *y as f64);
            }
            Value::float(x / y)
        }
        (BinOp::Rem, Int(x), Int(y)) => {
            if *y == 0 {
                Err(Fault::arith("division by zero"))
            } else if *y == -1 {
                Ok(Int(0))
            } else {
                Ok(Int(x % y))
            }
        }
        (BinOp::Rem, Int(_) | Float(_), Int(_) | Float(_)) => {
            let (x, y) = (num(&a).unwrap_or(0.0), num(&b).unwrap_or(0.0));
            if y == 0.0 {
                return Err(Fault::arith("division by zero"));
            }
            Value::float(x % y)
        }
        (BinOp::Add | BinOp::Sub | BinOp::Mul, Int(_) | Float(_), Int(_) | Float(_)) => {
            let (x, y) = (num(&a).unwrap_or(0.0), num(&b).unwrap_or(0.0));
            Value::float(match op {
                BinOp::Add => x + y,
                BinOp::Sub => x - y,
                _ => x * y,
            })
        }
        // Strings: concatenation with the other side rendered.
        (BinOp::Add, Str(_), _) | (BinOp::Add, _, Str(_)) => concat(a, b),
        (BinOp::Add, Secret(_), _) | (BinOp::Add, _, Secret(_)) => concat(a, b),
        (BinOp::Add, List(_), List(_)) => {
            let (List(mut x), List(y)) = (a, b) else {
                unreachable!()
            };
            if !heap::fits(heap::list_cost(y.len())) {
                return Err(heap_exhausted());
            }
            {
                let mut m = x.make_mut();
                m.reserve(y.len());
                for v in y.as_slice() {
                    m.push(v.clone());
                }
            }
            Ok(List(x))
        }
        (BinOp::Add, Map(_), Map(_)) => {
            let (Map(mut x), Map(y)) = (a, b) else {
                unreachable!()
            };
            {
                let mut m = x.make_mut();
                for (k, v) in y.iter() {
                    m.set(k.clone(), v.clone());
                }
            }
            Ok(Map(x))
        }
        (BinOp::Add, Duration(x), Duration(y)) => x
            .checked_add(*y)
            .map(Duration)
            .ok_or_else(|| Fault::arith("duration out of range")),
        (BinOp::Sub, Duration(x), Duration(y)) => x
            .checked_sub(*y)
            .map(Duration)
            .ok_or_else(|| Fault::arith("duration out of range")),
        (BinOp::Mul, Duration(d), Int(n)) | (BinOp::Mul, Int(n), Duration(d)) => d
            .checked_mul(*n)
            .map(Duration)
            .ok_or_else(|| Fault::arith("duration out of range")),
        (BinOp::Mul, Duration(d), Float(f)) | (BinOp::Mul, Float(f), Duration(d)) => {
            ms_from_f64(*d as f64 * f)
        }
        (BinOp::Div, Duration(d), Int(_) | Float(_)) => {
            let n = num(&b).unwrap_or(0.0);
            if n == 0.0 {
                return Err(Fault::arith("division by zero"));
            }
            if let Int(n) = b {
                // Exact integer path: round half away from zero.
                let (q, r) = (d / n, d % n);
                let twice = (r as i128).abs() * 2;
                let adj = if twice >= (n as i128).abs() {
                    if (*d < 0) != (n < 0) { -1 } else { 1 }
                } else {
                    0
                };
                return q
                    .checked_add(adj)
                    .map(Duration)
                    .ok_or_else(|| Fault::arith("duration out of range"));
            }
            ms_from_f64(*d as f64 / n)
        }
        (BinOp::Div, Duration(x), Duration(y)) => {
            if *y == 0 {
                return Err(Fault::arith("division by zero"));
            }
            Value::float(*x as f64 / *y as f64)
        }
        _ => Err(type_mismatch(op, &a, &b)),
    }
}

fn heap_exhausted() -> Fault {
    let (limit, live) = heap::current_usage().unwrap_or((0, 0));
    Fault::new(
        ErrorKind::BudgetExhausted,
        format!("heap budget exhausted: {live} of {limit} bytes in use"),
    )
    .with_details(Value::map([
        ("budget", Value::str("memory")),
        ("limit", Value::Int(limit as i64)),
        ("used", Value::Int(live as i64)),
    ]))
}

pub(crate) fn heap_fault() -> Fault {
    heap_exhausted()
}

/// String concatenation; a secret on either side makes the result a secret.
fn concat(a: Value, b: Value) -> VResult {
    let secret = matches!(a, Value::Secret(_)) || matches!(b, Value::Secret(_));
    let reveal = |v: Value| match v {
        Value::Secret(s) => s.reveal().clone(),
        v => v,
    };
    let (a, b) = (reveal(a), reveal(b));
    let extra = render_len_hint(&b)
        + if matches!(a, Value::Str(_)) {
            0
        } else {
            render_len_hint(&a)
        };
    if !heap::fits(extra) {
        return Err(heap_exhausted());
    }
    let out = match a {
        Value::Str(mut s) => {
            match &b {
                Value::Str(t) => s.push_str(t.as_str()),
                other => {
                    let mut t = String::new();
                    render_into(&mut t, other);
                    s.push_str(&t);
                }
            }
            s
        }
        other => {
            let mut t = String::with_capacity(render_len_hint(&other) + render_len_hint(&b));
            render_into(&mut t, &other);
            render_into(&mut t, &b);
            Str::from(t)
        }
    };
    Ok(if secret {
        Value::secret(Value::Str(out))
    } else {
        Value::Str(out)
    })
}

/// `-a`.
pub fn negate(a: &Value) -> VResult {
    match a {
        Value::Int(i) => i.checked_neg().map(Value::Int).ok_or_else(overflow),
        Value::Float(f) => Ok(Value::Float(-f)),
        Value::Duration(d) => d
            .checked_neg()
            .map(Value::Duration)
            .ok_or_else(|| Fault::arith("duration out of range")),
        other => Err(Fault::type_error(format!(
            "cannot negate a {}",
            other.type_name()
        ))),
    }
}

/// Exact comparison of an int with a float (GRAMMAR 4.5.2: the int is not rounded).
fn cmp_int_float(i: i64, f: f64) -> Ordering {
    if f >= 9_223_372_036_854_775_808.0 {
        return Ordering::Less;
    }
    if f < -9_223_372_036_854_775_808.0 {
        return Ordering::Greater;
    }
    let t = f.trunc();
    let ti = t as i64;
    match i.cmp(&ti) {
        Ordering::Equal => {
            let frac = f - t;
            if frac > 0.0 {
                Ordering::Less
            } else if frac < 0.0 {
                Ordering::Greater
            } else {
                Ordering::Equal
            }
        }
        o => o,
    }
}

/// Structural equality (GRAMMAR 4.5.2). Values of different kinds are unequal; ints and
/// floats compare by exact numeric value; maps ignore order.
pub fn values_equal(a: &Value, b: &Value) -> bool {
    use Value::*;
    match (a, b) {
        (Null, Null) => true,
        (Bool(x), Bool(y)) => x == y,
        (Int(x), Int(y)) => x == y,
        (Float(x), Float(y)) => x == y,
        (Int(x), Float(y)) | (Float(y), Int(x)) => cmp_int_float(*x, *y) == Ordering::Equal,
        (Duration(x), Duration(y)) => x == y,
        (Size(x), Size(y)) => x == y,
        (Str(x), Str(y)) => x == y,
        (Ref(x), Ref(y)) => x == y,
        (List(x), List(y)) => {
            super::List::ptr_eq(x, y)
                || (x.len() == y.len()
                    && x.as_slice()
                        .iter()
                        .zip(y.as_slice())
                        .all(|(p, q)| values_equal(p, q)))
        }
        (Map(x), Map(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k.as_str()).is_some_and(|w| values_equal(v, w)))
        }
        (Lambda(x), Lambda(y)) => std::sync::Arc::ptr_eq(x, y),
        (Error(x), Error(y)) => {
            x.kind == y.kind && x.message == y.message && values_equal(&x.details, &y.details)
        }
        (Secret(x), Secret(y)) => values_equal(x.reveal(), y.reveal()),
        _ => false,
    }
}

/// Ordering for `<` `>` `<=` `>=` and `sort` (GRAMMAR 4.5.2): numbers numerically, strings
/// by scalar values, durations and sizes by magnitude; anything else is a `TypeError`.
pub fn compare(a: &Value, b: &Value) -> VResult<Ordering> {
    use Value::*;
    Ok(match (a, b) {
        (Int(x), Int(y)) => x.cmp(y),
        (Float(x), Float(y)) => x.partial_cmp(y).unwrap_or(Ordering::Equal),
        (Int(x), Float(y)) => cmp_int_float(*x, *y),
        (Float(x), Int(y)) => cmp_int_float(*y, *x).reverse(),
        (Str(x), Str(y)) => x.as_str().cmp(y.as_str()),
        (Duration(x), Duration(y)) => x.cmp(y),
        (Size(x), Size(y)) => x.cmp(y),
        _ => {
            return Err(Fault::type_error(format!(
                "cannot compare {} with {}",
                a.type_name(),
                b.type_name()
            )));
        }
    })
}

/// `a in b` (GRAMMAR 4.5.2).
pub(crate) fn contains(b: &Value, a: &Value) -> VResult<bool> {
    match b {
        Value::List(l) => Ok(l.as_slice().iter().any(|x| values_equal(x, a))),
        Value::Map(m) => match a {
            Value::Str(k) => Ok(m.get(k.as_str()).is_some()),
            _ => Ok(false),
        },
        Value::Str(s) => match a {
            Value::Str(t) => Ok(s.as_str().contains(t.as_str())),
            other => Err(Fault::type_error(format!(
                "`in` on a string needs a string on the left, found {}",
                other.type_name()
            ))),
        },
        other => Err(Fault::type_error(format!(
            "`in` needs a list, map or string, found {}",
            other.type_name()
        ))),
    }
}

// Keep the List/Map imports used for type-level clarity in signatures above.
#[allow(dead_code)]
fn _types(_: List, _: Map) {}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(a: Value, b: Value) -> VResult {
        binary_op(BinOp::Add, a, b)
    }

    #[test]
    fn int_arith_is_checked() {
        assert!(add(Value::Int(i64::MAX), Value::Int(1)).is_err());
        assert_eq!(
            binary_op(BinOp::Rem, Value::Int(-7), Value::Int(2)).unwrap(),
            Value::Int(-1)
        );
        assert_eq!(
            binary_op(BinOp::Rem, Value::Int(i64::MIN), Value::Int(-1)).unwrap(),
            Value::Int(0)
        );
        assert!(
            matches!(binary_op(BinOp::Div, Value::Int(7), Value::Int(2)).unwrap(), Value::Float(f) if f == 3.5)
        );
        assert!(binary_op(BinOp::Div, Value::Int(1), Value::Float(0.0)).is_err());
        assert!(binary_op(BinOp::Mul, Value::Float(1e308), Value::Float(10.0)).is_err());
    }

    #[test]
    fn mixed_equality_is_exact() {
        assert!(values_equal(&Value::Int(1), &Value::Float(1.0)));
        assert!(!values_equal(
            &Value::Int(9_007_199_254_740_993),
            &Value::Float(9_007_199_254_740_992.0)
        ));
        assert_eq!(
            compare(
                &Value::Int(9_007_199_254_740_993),
                &Value::Float(9_007_199_254_740_992.0)
            )
            .unwrap(),
            Ordering::Greater
        );
        assert!(values_equal(
            &Value::Duration(60_000),
            &Value::Duration(60_000)
        ));
        assert!(!values_equal(&Value::Int(0), &Value::Null));
        assert!(compare(&Value::Null, &Value::Int(1)).is_err());
    }

    #[test]
    fn strings_concat_and_secrets_stay_secret() {
        assert_eq!(
            add(Value::str("x"), Value::Float(2.0)).unwrap(),
            Value::str("x2.0")
        );
        assert_eq!(
            add(Value::Int(1), Value::str("a")).unwrap(),
            Value::str("1a")
        );
        let s = add(Value::str("Bearer "), Value::secret(Value::str("tok"))).unwrap();
        assert!(matches!(&s, Value::Secret(x) if x.reveal().as_str() == Some("Bearer tok")));
    }

    #[test]
    fn durations() {
        assert_eq!(
            binary_op(BinOp::Div, Value::Duration(1000), Value::Int(3)).unwrap(),
            Value::Duration(333)
        );
        assert_eq!(
            binary_op(BinOp::Div, Value::Duration(1001), Value::Int(2)).unwrap(),
            Value::Duration(501)
        );
        assert_eq!(
            binary_op(BinOp::Div, Value::Duration(-1001), Value::Int(2)).unwrap(),
            Value::Duration(-501)
        );
        assert_eq!(
            binary_op(BinOp::Mul, Value::Float(1.5), Value::Duration(1)).unwrap(),
            Value::Duration(2)
        );
        assert!(
            matches!(binary_op(BinOp::Div, Value::Duration(3000), Value::Duration(2000)).unwrap(), Value::Float(f) if f == 1.5)
        );
    }

    #[test]
    fn merge_keeps_left_order() {
        let a = Value::map([("a", Value::Int(1)), ("b", Value::Int(2))]);
        let b = Value::map([("c", Value::Int(3)), ("a", Value::Int(9))]);
        let m = add(a, b).unwrap();
        assert_eq!(super::super::render(&m), r#"{"a":9,"b":2,"c":3}"#);
    }
}
