//! Assignment, compound assignment and mutating methods on places (GRAMMAR 4.4, 5.1).
//!
//! A place is a variable with a path of members / indexes. The path's index expressions
//! are evaluated first, then the assigned value, then the store walks the path with
//! copy-on-write (`make_mut`) at each level, so an unshared container is updated in
//! place. Depths are refreshed on the way back up.

use super::ir::*;
use super::{Flow, Interp, R, fault, norm_index, type_error};
use crate::error::{ErrorKind, Fault, VResult};
use crate::types::Ty;
use crate::value::{BinOp, Str, Value, binary_op, render};

/// An evaluated path step.
pub(crate) enum Key {
    Name(Str),
    Int(i64),
    Other(Value),
}

impl<'a> Interp<'a> {
    fn eval_keys(&mut self, place: &Place) -> R<smallvec::SmallVec<[Key; 4]>> {
        let mut keys = smallvec::SmallVec::new();
        for step in place.path.iter() {
            keys.push(match step {
                PathStep::Member(n) => Key::Name(n.clone()),
                PathStep::Index(e) => match self.eval(e)? {
                    Value::Str(s) => Key::Name(s),
                    Value::Int(i) => Key::Int(i),
                    other => Key::Other(other),
                },
            });
        }
        Ok(keys)
    }

    fn root_mut(&mut self, place: &Place) -> R<&mut Value> {
        let i = self.base + place.root as usize;
        match &mut self.stack[i] {
            Some(v) => Ok(v),
            None => Err(fault(
                ErrorKind::NameError,
                format!("`{}` is not defined", place.root_name),
            )),
        }
    }

    pub(crate) fn assign(&mut self, place: &Place, value: &Expr, ty: Option<&Ty>) -> R<()> {
        if place.path.is_empty() {
            let mut v = self.eval(value)?;
            if let Some(t) = ty {
                v = t.conform(v).map_err(|m| {
                    type_error(format!("cannot assign to `{}`: {m}", place.root_name))
                })?;
            }
            v.check_depth()?;
            let i = self.base + place.root as usize;
            self.stack[i] = Some(v);
            return Ok(());
        }
        let keys = self.eval_keys(place)?;
        let v = self.eval(value)?;
        let root = self.root_mut(place)?;
        store(root, &keys, v, None)?;
        root.check_depth()?;
        Ok(())
    }

    pub(crate) fn compound(
        &mut self,
        place: &Place,
        op: BinOp,
        value: &Expr,
        in_place: bool,
        ty: Option<&Ty>,
    ) -> R<()> {
        if in_place {
            let keys = self.eval_keys(place)?;
            let rhs = self.eval(value)?;
            let root = self.root_mut(place)?;
            store(root, &keys, rhs, Some(op))?;
            root.check_depth()?;
            if place.path.is_empty() {
                if let Some(t) = ty {
                    let v = root.clone();
                    let c = t.conform(v).map_err(|m| {
                        type_error(format!("cannot assign to `{}`: {m}", place.root_name))
                    })?;
                    *self.root_mut(place)? = c;
                }
            }
            return Ok(());
        }
        // The value may mutate the place: read the place first (GRAMMAR 4.4 order).
        let keys = self.eval_keys(place)?;
        let current = {
            let root = self.root_mut(place)?.clone();
            read_path(&root, &keys)?
        };
        let rhs = self.eval(value)?;
        let mut v = binary_op(op, current, rhs)?;
        if place.path.is_empty() {
            if let Some(t) = ty {
                v = t.conform(v).map_err(|m| {
                    type_error(format!("cannot assign to `{}`: {m}", place.root_name))
                })?;
            }
        }
        let root = self.root_mut(place)?;
        store(root, &keys, v, None)?;
        root.check_depth()?;
        Ok(())
    }

    pub(crate) fn call_mut_method(
        &mut self,
        place: &Place,
        name: &Str,
        c: &Call,
        span: crate::span::Span,
    ) -> R {
        let keys = self.eval_keys(place)?;
        let mut args = Vec::with_capacity(c.args.len());
        for (x, n) in c.args.iter().zip(c.names.iter()) {
            let v = self.eval(x)?;
            if n.is_some() {
                return Err(fault(
                    ErrorKind::ArityError,
                    format!("`{name}` takes no named arguments"),
                ));
            }
            args.push(v);
        }
        // A map holding a lambda under a name that is not a map operation: call it.
        {
            let root = self.root_mut(place)?.clone();
            let target = read_path(&root, &keys)?;
            if let Value::Map(m) = &target {
                if !matches!(name.as_str(), "set" | "remove" | "clear") {
                    if let Some(Value::Lambda(l)) = m.get(name.as_str()) {
                        let l = l.clone();
                        if args.len() != 1 {
                            return Err(fault(
                                ErrorKind::ArityError,
                                "a lambda takes exactly 1 positional argument",
                            ));
                        }
                        let arg = args.pop().unwrap_or(Value::Null);
                        return self.call_lambda(&l, arg, span);
                    }
                }
            }
        }
        let n = match (name.as_str(), args.first()) {
            ("extend", Some(Value::List(l))) => l.len() as u64,
            _ => 1,
        };
        self.charge(n)?;
        let root = self.root_mut(place)?;
        let out = with_path_mut(root, &keys, &mut |target| {
            mutate(target, name.as_str(), std::mem::take(&mut args))
        })?;
        root.check_depth()?;
        self.check_heap()?;
        Ok(out)
    }
}

fn key_text(k: &Key) -> String {
    match k {
        Key::Name(s) => format!("`{s}`"),
        Key::Int(i) => i.to_string(),
        Key::Other(v) => render(v),
    }
}

/// Reads the value at `keys` under `v` (for compound assignment; absent map keys read as
/// null).
fn read_path(v: &Value, keys: &[Key]) -> VResult {
    let mut cur = v.clone();
    for k in keys {
        cur = match (&cur, k) {
            (Value::Map(m), Key::Name(n)) => m.get(n.as_str()).cloned().unwrap_or(Value::Null),
            (Value::List(l), Key::Int(i)) => match norm_index(*i, l.len()) {
                Some(j) => l.as_slice()[j].clone(),
                None => {
                    return Err(Fault::index(format!(
                        "index {i} is out of range for a list of length {}",
                        l.len()
                    )));
                }
            },
            (Value::Null, k) => {
                return Err(Fault::new(
                    ErrorKind::NullError,
                    format!("cannot read {} of null", key_text(k)),
                ));
            }
            (o, k) => {
                return Err(Fault::type_error(format!(
                    "cannot read {} of a {}",
                    key_text(k),
                    o.type_name()
                )));
            }
        };
    }
    Ok(cur)
}

/// Applies `op` with `rhs` to `slot` in place where it can (string append, list append).
fn apply_op(slot: &mut Value, op: BinOp, rhs: Value) -> VResult<()> {
    if op == BinOp::Add {
        match (&mut *slot, &rhs) {
            (Value::Str(s), r) if !matches!(r, Value::Secret(_)) => {
                let hint = crate::value::render_len_hint_pub(r);
                if !crate::value::heap::fits(hint) {
                    return Err(crate::value::heap_fault_pub());
                }
                match r {
                    Value::Str(t) => s.push_str(t.as_str()),
                    other => s.push_str(&render(other)),
                }
                return Ok(());
            }
            (Value::Int(a), Value::Int(b)) => {
                *a = a
                    .checked_add(*b)
                    .ok_or_else(|| Fault::arith("integer overflow"))?;
                return Ok(());
            }
            _ => {}
        }
    }
    let cur = std::mem::take(slot);
    let backup = cur.clone();
    match binary_op(op, cur, rhs) {
        Ok(v) => {
            *slot = v;
            Ok(())
        }
        Err(e) => {
            *slot = backup;
            Err(e)
        }
    }
}

/// Stores `v` (or applies `op` with it) at `keys` under `target`.
fn store(target: &mut Value, keys: &[Key], v: Value, op: Option<BinOp>) -> VResult<()> {
    let Some((k, rest)) = keys.split_first() else {
        return match op {
            None => {
                *target = v;
                Ok(())
            }
            Some(op) => apply_op(target, op, v),
        };
    };
    match target {
        Value::Map(m) => {
            let Key::Name(name) = k else {
                return Err(Fault::type_error(format!(
                    "a map key must be a string, found {}",
                    key_text(k)
                )));
            };
            let mut mm = m.make_mut();
            if rest.is_empty() && op.is_none() {
                mm.set(name.clone(), v);
                return Ok(());
            }
            let d = match mm.get_mut(name.as_str()) {
                Some(child) => {
                    store(child, rest, v, op)?;
                    child.depth()
                }
                None if rest.is_empty() => {
                    // `m.k += x` with `k` absent: null op x (a TypeError with a clear message).
                    let mut nv = Value::Null;
                    apply_op(&mut nv, op.unwrap_or(BinOp::Add), v)?;
                    let d = nv.depth();
                    mm.set(name.clone(), nv);
                    d
                }
                None => {
                    return Err(Fault::type_error(format!(
                        "cannot store into `{name}`: it is null"
                    )));
                }
            };
            mm.note_depth(d);
            Ok(())
        }
        Value::List(l) => {
            let Key::Int(i) = k else {
                return Err(Fault::type_error(format!(
                    "a list index must be an int, found {}",
                    key_text(k)
                )));
            };
            let len = l.len();
            let Some(j) = norm_index(*i, len) else {
                return Err(Fault::index(format!(
                    "index {i} is out of range for a list of length {len}"
                )));
            };
            let mut lm = l.make_mut();
            let d = {
                let child = &mut lm[j];
                store(child, rest, v, op)?;
                child.depth()
            };
            lm.note_depth(d);
            Ok(())
        }
        Value::Null => Err(Fault::type_error(format!(
            "cannot store {} into null",
            key_text(k)
        ))),
        other => Err(Fault::type_error(format!(
            "cannot store {} into a {}",
            key_text(k),
            other.type_name()
        ))),
    }
}

/// Runs `f` on the value at `keys` under `target` (mutably, copy on write).
fn with_path_mut(
    target: &mut Value,
    keys: &[Key],
    f: &mut dyn FnMut(&mut Value) -> VResult,
) -> VResult {
    let Some((k, rest)) = keys.split_first() else {
        return f(target);
    };
    match target {
        Value::Map(m) => {
            let Key::Name(name) = k else {
                return Err(Fault::type_error(format!(
                    "a map key must be a string, found {}",
                    key_text(k)
                )));
            };
            let mut mm = m.make_mut();
            let Some(child) = mm.get_mut(name.as_str()) else {
                return Err(Fault::new(
                    ErrorKind::NullError,
                    format!("`{name}` is null"),
                ));
            };
            let r = with_path_mut(child, rest, f)?;
            let d = child.depth();
            mm.note_depth(d);
            Ok(r)
        }
        Value::List(l) => {
            let Key::Int(i) = k else {
                return Err(Fault::type_error(format!(
                    "a list index must be an int, found {}",
                    key_text(k)
                )));
            };
            let len = l.len();
            let Some(j) = norm_index(*i, len) else {
                return Err(Fault::index(format!(
                    "index {i} is out of range for a list of length {len}"
                )));
            };
            let mut lm = l.make_mut();
            let r = with_path_mut(&mut lm[j], rest, f)?;
            let d = lm[j].depth();
            lm.note_depth(d);
            Ok(r)
        }
        Value::Null => Err(Fault::new(
            ErrorKind::NullError,
            format!("cannot read {} of null", key_text(k)),
        )),
        other => Err(Fault::type_error(format!(
            "cannot read {} of a {}",
            key_text(k),
            other.type_name()
        ))),
    }
}

fn want(args: &[Value], n: usize, name: &str) -> VResult<()> {
    if args.len() != n {
        return Err(Fault::arity(format!(
            "`{name}` takes {n} argument{} but {} were given",
            if n == 1 { "" } else { "s" },
            args.len()
        )));
    }
    Ok(())
}

/// The mutating methods of GRAMMAR 5.1.
fn mutate(target: &mut Value, name: &str, mut args: Vec<Value>) -> VResult {
    match target {
        Value::List(l) => match name {
            "push" | "append" => {
                want(&args, 1, name)?;
                l.make_mut().push(args.pop().unwrap_or(Value::Null));
                Ok(Value::Null)
            }
            "pop" => {
                want(&args, 0, name)?;
                Ok(l.make_mut().pop().unwrap_or(Value::Null))
            }
            "insert" => {
                want(&args, 2, name)?;
                let v = args.pop().unwrap_or(Value::Null);
                let Value::Int(i) = args[0] else {
                    return Err(Fault::type_error(format!(
                        "`insert` needs an int index, found {}",
                        args[0].type_name()
                    )));
                };
                let len = l.len() as i64;
                let j = if i < 0 { i + len } else { i };
                if !(0..=len).contains(&j) {
                    return Err(Fault::index(format!(
                        "index {i} is out of range for insert into a list of length {len}"
                    )));
                }
                let mut m = l.make_mut();
                let d = v.depth();
                m.insert(j as usize, v);
                m.note_depth(d);
                Ok(Value::Null)
            }
            "remove" => {
                want(&args, 1, name)?;
                let Value::Int(i) = args[0] else {
                    return Err(Fault::type_error(format!(
                        "`remove` on a list needs an int index, found {}",
                        args[0].type_name()
                    )));
                };
                let Some(j) = norm_index(i, l.len()) else {
                    return Err(Fault::index(format!(
                        "index {i} is out of range for a list of length {}",
                        l.len()
                    )));
                };
                Ok(l.make_mut().remove(j))
            }
            "extend" => {
                want(&args, 1, name)?;
                match args.pop() {
                    Some(Value::List(other)) => {
                        let mut m = l.make_mut();
                        m.reserve(other.len());
                        for v in other.as_slice() {
                            m.push(v.clone());
                        }
                        Ok(Value::Null)
                    }
                    Some(other) => Err(Fault::type_error(format!(
                        "`extend` needs a list, found {}",
                        other.type_name()
                    ))),
                    None => Ok(Value::Null),
                }
            }
            "clear" => {
                want(&args, 0, name)?;
                l.make_mut().clear();
                Ok(Value::Null)
            }
            _ => Err(Fault::type_error(format!("no method `{name}` on list"))),
        },
        Value::Map(m) => match name {
            "set" => {
                want(&args, 2, name)?;
                let v = args.pop().unwrap_or(Value::Null);
                let Some(Value::Str(k)) = args.pop() else {
                    return Err(Fault::type_error("`set` needs a string key"));
                };
                m.make_mut().set(k, v);
                Ok(Value::Null)
            }
            "remove" => {
                want(&args, 1, name)?;
                let Value::Str(k) = &args[0] else {
                    return Err(Fault::type_error(format!(
                        "`remove` on a map needs a string key, found {}",
                        args[0].type_name()
                    )));
                };
                Ok(m.make_mut().shift_remove(k.as_str()).unwrap_or(Value::Null))
            }
            "clear" => {
                want(&args, 0, name)?;
                m.make_mut().clear();
                Ok(Value::Null)
            }
            _ => Err(Fault::type_error(format!("no method `{name}` on map"))),
        },
        Value::Null => Err(Fault::new(
            ErrorKind::NullError,
            format!("cannot call `{name}` on null"),
        )),
        other => Err(Fault::type_error(format!(
            "no method `{name}` on {}",
            other.type_name()
        ))),
    }
}

#[allow(dead_code)]
fn _unused(_: Flow) {}
