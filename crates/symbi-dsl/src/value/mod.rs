//! Run-time values of the DSL (GRAMMAR 4.2).
//!
//! [`Value`] is 16 bytes. Scalars are stored inline; strings, lists, maps, lambdas, errors
//! and secrets are reference-counted (`Arc`) and have **value semantics** through
//! copy-on-write: cloning a value is O(1), and the first mutation of a shared container
//! copies it ([`Arc::make_mut`]). Mutation of an unshared container (the common case for a
//! variable the program builds up) is in place, so `s += "x"` and `xs.push(v)` in a loop
//! are amortised O(1).
//!
//! Every heap object carries the tag of the [`heap::HeapMeter`] that counts it and its
//! nesting depth; the interpreter refuses values nested deeper than [`MAX_DEPTH`] so that
//! recursive algorithms (equality, rendering, JSON, drop) never overflow the stack.

pub mod heap;
pub(crate) mod json;
mod ops;
mod text;

pub use json::{FromJsonError, from_json, json_to_string, to_json};
pub use ops::{BinOp, binary_op, compare, negate, values_equal};
pub use text::{duration_text, float_text, render, size_text};

use crate::error::{Fault, VResult};
use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// The deepest nesting of lists, maps, lambdas and secrets a value may have.
pub const MAX_DEPTH: u32 = 256;

/// Hasher for maps: seeded per process (no hash flooding from hostile keys); iteration
/// order never depends on it (maps keep insertion order).
pub type MapHasher = foldhash::fast::RandomState;

/// The insertion-ordered entries of a map.
pub type Entries = indexmap::IndexMap<Str, Value, MapHasher>;

/// A run-time value.
#[derive(Clone, Default)]
pub enum Value {
    /// `null`.
    #[default]
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// A 64-bit signed integer.
    Int(i64),
    /// A finite 64-bit float.
    Float(f64),
    /// A signed number of milliseconds.
    Duration(i64),
    /// A number of bytes.
    Size(u64),
    /// Unicode text.
    Str(Str),
    /// A list.
    List(List),
    /// A map with string keys in insertion order.
    Map(Map),
    /// A lambda with its captured variables.
    Lambda(Arc<Lambda>),
    /// An error caught by `catch`.
    Error(Arc<ErrorValue>),
    /// A string or map that came from a vault; it renders as `[REDACTED]`.
    Secret(Arc<Secret>),
    /// A handle to a named memory store of the file.
    Ref(Str),
}

impl Value {
    /// The `type_of` name (GRAMMAR 5.1).
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Duration(_) => "duration",
            Value::Size(_) => "size",
            Value::Str(_) => "string",
            Value::List(_) => "list",
            Value::Map(_) => "map",
            Value::Lambda(_) => "lambda",
            Value::Error(_) => "error",
            Value::Secret(_) => "secret",
            Value::Ref(_) => "ref",
        }
    }

    /// A string value.
    pub fn str(s: impl Into<String>) -> Value {
        Value::Str(Str::from(s.into()))
    }

    /// A float value; non-finite results are `ArithmeticError` (floats are always finite).
    pub fn float(f: f64) -> VResult {
        if f.is_finite() {
            Ok(Value::Float(f))
        } else {
            Err(Fault::arith("the result is not a finite number"))
        }
    }

    /// A list value.
    pub fn list(items: Vec<Value>) -> Value {
        Value::List(List::from_vec(items))
    }

    /// A map value from `(key, value)` pairs (a repeated key keeps its first position and
    /// its last value).
    pub fn map<K: Into<Str>>(pairs: impl IntoIterator<Item = (K, Value)>) -> Value {
        let mut m = Entries::default();
        for (k, v) in pairs {
            m.insert(k.into(), v);
        }
        Value::Map(Map::from_entries(m))
    }

    /// A secret wrapping a string or map.
    pub fn secret(inner: Value) -> Value {
        let depth = inner.depth() + 1;
        Value::Secret(Arc::new(Secret { inner, depth }))
    }

    /// Truthiness (GRAMMAR 4.2).
    pub fn truthy(&self) -> bool {
        match self {
            Value::Null => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) => !s.is_empty(),
            Value::List(l) => !l.is_empty(),
            Value::Map(m) => !m.is_empty(),
            _ => true,
        }
    }

    /// Whether this is null.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The string, if this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s.as_str()),
            _ => None,
        }
    }

    /// The int, if this is an int.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// Nesting depth: 0 for scalars and strings, 1 + the deepest element for containers.
    #[inline]
    pub fn depth(&self) -> u32 {
        match self {
            Value::List(l) => l.0.depth,
            Value::Map(m) => m.0.depth,
            Value::Lambda(l) => l.depth,
            Value::Secret(s) => s.depth,
            Value::Error(e) => e.depth,
            _ => 0,
        }
    }

    /// `StackOverflow` if the value is nested deeper than [`MAX_DEPTH`].
    #[inline]
    pub fn check_depth(&self) -> VResult<()> {
        if self.depth() > MAX_DEPTH {
            Err(Fault::new(
                crate::error::ErrorKind::StackOverflow,
                format!("value nested deeper than {MAX_DEPTH} levels"),
            ))
        } else {
            Ok(())
        }
    }

    /// Structural equality (GRAMMAR 4.5.2).
    pub fn equals(&self, other: &Value) -> bool {
        values_equal(self, other)
    }

    /// Length of a string (scalar values), list or map.
    pub fn len(&self) -> Option<usize> {
        match self {
            Value::Str(s) => Some(s.char_len()),
            Value::List(l) => Some(l.len()),
            Value::Map(m) => Some(m.len()),
            _ => None,
        }
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Str(s) => write!(f, "{:?}", s.as_str()),
            Value::Secret(_) => f.write_str("[REDACTED]"),
            Value::Lambda(_) => f.write_str("<lambda>"),
            Value::Ref(r) => write!(f, "<ref {}>", r.as_str()),
            Value::Error(e) => write!(f, "<error {}: {}>", e.kind.as_str(), e.message.as_str()),
            other => f.write_str(&render(other)),
        }
    }
}

impl PartialEq for Value {
    fn eq(&self, other: &Value) -> bool {
        values_equal(self, other)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}
impl From<i64> for Value {
    fn from(i: i64) -> Value {
        Value::Int(i)
    }
}
impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::str(s)
    }
}
impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::str(s)
    }
}
impl From<Str> for Value {
    fn from(s: Str) -> Value {
        Value::Str(s)
    }
}

// ---------------------------------------------------------------------------------------
// Strings
// ---------------------------------------------------------------------------------------

/// A shared, copy-on-write string.
#[derive(Clone)]
pub struct Str(Arc<StrBuf>);

struct StrBuf {
    tag: u32,
    s: String,
}

impl Clone for StrBuf {
    fn clone(&self) -> StrBuf {
        let s = self.s.clone();
        StrBuf {
            tag: heap::alloc(heap::str_cost(s.capacity())),
            s,
        }
    }
}

impl Drop for StrBuf {
    fn drop(&mut self) {
        heap::free(self.tag, heap::str_cost(self.s.capacity()));
    }
}

impl Str {
    /// The text.
    #[inline]
    pub fn as_str(&self) -> &str {
        &self.0.s
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.0.s.is_empty()
    }

    /// Number of Unicode scalar values (GRAMMAR 4.2 "Characters").
    pub fn char_len(&self) -> usize {
        let s = self.as_str();
        if s.is_ascii() {
            s.len()
        } else {
            s.chars().count()
        }
    }

    /// Appends text in place (copying first if shared), with heap accounting.
    pub fn push_str(&mut self, t: &str) {
        let b = Arc::make_mut(&mut self.0);
        let before = b.s.capacity();
        b.s.push_str(t);
        let after = b.s.capacity();
        if after != before || b.tag == 0 {
            b.tag = heap::resize(b.tag, heap::str_cost(before), heap::str_cost(after));
        }
    }

    /// Whether two handles share storage.
    pub fn ptr_eq(a: &Str, b: &Str) -> bool {
        Arc::ptr_eq(&a.0, &b.0)
    }
}

impl From<String> for Str {
    fn from(s: String) -> Str {
        Str(Arc::new(StrBuf {
            tag: heap::alloc(heap::str_cost(s.capacity())),
            s,
        }))
    }
}
impl From<&str> for Str {
    fn from(s: &str) -> Str {
        Str::from(s.to_string())
    }
}
impl From<&String> for Str {
    fn from(s: &String) -> Str {
        Str::from(s.clone())
    }
}
impl Borrow<str> for Str {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}
impl std::ops::Deref for Str {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}
impl PartialEq for Str {
    fn eq(&self, o: &Str) -> bool {
        Arc::ptr_eq(&self.0, &o.0) || self.as_str() == o.as_str()
    }
}
impl Eq for Str {}
impl Hash for Str {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.as_str().hash(h)
    }
}
impl fmt::Debug for Str {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}
impl fmt::Display for Str {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// ---------------------------------------------------------------------------------------
// Lists
// ---------------------------------------------------------------------------------------

/// A shared, copy-on-write list.
#[derive(Clone)]
pub struct List(Arc<ListBuf>);

struct ListBuf {
    tag: u32,
    depth: u32,
    items: Vec<Value>,
}

impl Clone for ListBuf {
    fn clone(&self) -> ListBuf {
        let items = self.items.clone();
        ListBuf {
            tag: heap::alloc(heap::list_cost(items.capacity())),
            depth: self.depth,
            items,
        }
    }
}

impl Drop for ListBuf {
    fn drop(&mut self) {
        heap::free(self.tag, heap::list_cost(self.items.capacity()));
    }
}

/// Mutable access to a list's elements; fixes up accounting and depth when dropped.
pub struct ListMut<'a> {
    buf: &'a mut ListBuf,
    cap_before: usize,
}

impl std::ops::Deref for ListMut<'_> {
    type Target = Vec<Value>;
    fn deref(&self) -> &Vec<Value> {
        &self.buf.items
    }
}
impl std::ops::DerefMut for ListMut<'_> {
    fn deref_mut(&mut self) -> &mut Vec<Value> {
        &mut self.buf.items
    }
}
impl Drop for ListMut<'_> {
    fn drop(&mut self) {
        let after = self.buf.items.capacity();
        if after != self.cap_before || self.buf.tag == 0 {
            self.buf.tag = heap::resize(
                self.buf.tag,
                heap::list_cost(self.cap_before),
                heap::list_cost(after),
            );
        }
    }
}

impl ListMut<'_> {
    /// Records that an element of depth `d` was stored (depth only grows: conservative).
    #[inline]
    pub fn note_depth(&mut self, d: u32) {
        if d + 1 > self.buf.depth {
            self.buf.depth = d + 1;
        }
    }

    /// Pushes a value, keeping the depth up to date.
    #[inline]
    pub fn push(&mut self, v: Value) {
        let d = v.depth();
        self.buf.items.push(v);
        self.note_depth(d);
    }
}

impl List {
    /// A list from a vector.
    pub fn from_vec(items: Vec<Value>) -> List {
        let depth = 1 + items.iter().map(Value::depth).max().unwrap_or(0);
        List(Arc::new(ListBuf {
            tag: heap::alloc(heap::list_cost(items.capacity())),
            depth,
            items,
        }))
    }

    /// An empty list.
    pub fn new() -> List {
        List::from_vec(Vec::new())
    }

    /// The elements.
    #[inline]
    pub fn as_slice(&self) -> &[Value] {
        &self.0.items
    }

    /// Number of elements.
    #[inline]
    pub fn len(&self) -> usize {
        self.0.items.len()
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.0.items.is_empty()
    }

    /// Mutable access (copy on write).
    pub fn make_mut(&mut self) -> ListMut<'_> {
        let buf = Arc::make_mut(&mut self.0);
        let cap_before = buf.items.capacity();
        ListMut { buf, cap_before }
    }

    /// The elements as an owned vector (moved out when unshared).
    pub fn into_vec(self) -> Vec<Value> {
        match Arc::try_unwrap(self.0) {
            Ok(mut buf) => std::mem::take(&mut buf.items),
            Err(shared) => shared.items.clone(),
        }
    }

    /// Whether two handles share storage.
    pub fn ptr_eq(a: &List, b: &List) -> bool {
        Arc::ptr_eq(&a.0, &b.0)
    }
}

impl Default for List {
    fn default() -> List {
        List::new()
    }
}

// ---------------------------------------------------------------------------------------
// Maps
// ---------------------------------------------------------------------------------------

/// A shared, copy-on-write map with string keys in insertion order.
#[derive(Clone)]
pub struct Map(Arc<MapBuf>);

struct MapBuf {
    tag: u32,
    depth: u32,
    entries: Entries,
}

impl Clone for MapBuf {
    fn clone(&self) -> MapBuf {
        let entries = self.entries.clone();
        MapBuf {
            tag: heap::alloc(heap::map_cost(entries.capacity())),
            depth: self.depth,
            entries,
        }
    }
}

impl Drop for MapBuf {
    fn drop(&mut self) {
        heap::free(self.tag, heap::map_cost(self.entries.capacity()));
    }
}

/// Mutable access to a map's entries; fixes up accounting when dropped.
pub struct MapMut<'a> {
    buf: &'a mut MapBuf,
    cap_before: usize,
}

impl std::ops::Deref for MapMut<'_> {
    type Target = Entries;
    fn deref(&self) -> &Entries {
        &self.buf.entries
    }
}
impl std::ops::DerefMut for MapMut<'_> {
    fn deref_mut(&mut self) -> &mut Entries {
        &mut self.buf.entries
    }
}
impl Drop for MapMut<'_> {
    fn drop(&mut self) {
        let after = self.buf.entries.capacity();
        if after != self.cap_before || self.buf.tag == 0 {
            self.buf.tag = heap::resize(
                self.buf.tag,
                heap::map_cost(self.cap_before),
                heap::map_cost(after),
            );
        }
    }
}

impl MapMut<'_> {
    /// Records that a value of depth `d` was stored.
    #[inline]
    pub fn note_depth(&mut self, d: u32) {
        if d + 1 > self.buf.depth {
            self.buf.depth = d + 1;
        }
    }

    /// Inserts or replaces (an existing key keeps its position).
    #[inline]
    pub fn set(&mut self, k: Str, v: Value) {
        let d = v.depth();
        self.buf.entries.insert(k, v);
        self.note_depth(d);
    }
}

impl Map {
    /// A map from entries.
    pub fn from_entries(entries: Entries) -> Map {
        let depth = 1 + entries.values().map(Value::depth).max().unwrap_or(0);
        Map(Arc::new(MapBuf {
            tag: heap::alloc(heap::map_cost(entries.capacity())),
            depth,
            entries,
        }))
    }

    /// An empty map.
    pub fn new() -> Map {
        Map::from_entries(Entries::default())
    }

    /// The entries.
    #[inline]
    pub fn entries(&self) -> &Entries {
        &self.0.entries
    }

    /// The value under `k`.
    #[inline]
    pub fn get(&self, k: &str) -> Option<&Value> {
        self.0.entries.get(k)
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.0.entries.len()
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.0.entries.is_empty()
    }

    /// Mutable access (copy on write).
    pub fn make_mut(&mut self) -> MapMut<'_> {
        let buf = Arc::make_mut(&mut self.0);
        let cap_before = buf.entries.capacity();
        MapMut { buf, cap_before }
    }

    /// Iterates `(key, value)` in map order.
    pub fn iter(&self) -> indexmap::map::Iter<'_, Str, Value> {
        self.0.entries.iter()
    }
}

impl Default for Map {
    fn default() -> Map {
        Map::new()
    }
}

// ---------------------------------------------------------------------------------------
// Lambdas, errors, secrets
// ---------------------------------------------------------------------------------------

/// A lambda value: compiled code plus the captured variables (by value).
pub struct Lambda {
    pub(crate) code: Arc<crate::interp::ir::LambdaCode>,
    pub(crate) captures: Box<[Option<Value>]>,
    pub(crate) depth: u32,
    tag: u32,
}

impl Lambda {
    pub(crate) fn new(
        code: Arc<crate::interp::ir::LambdaCode>,
        captures: Box<[Option<Value>]>,
    ) -> Lambda {
        let depth = 1 + captures
            .iter()
            .flatten()
            .map(Value::depth)
            .max()
            .unwrap_or(0);
        let tag = heap::alloc(64 + captures.len() * 16);
        Lambda {
            code,
            captures,
            depth,
            tag,
        }
    }
}

impl Drop for Lambda {
    fn drop(&mut self) {
        heap::free(self.tag, 64 + self.captures.len() * 16);
    }
}

/// An error value (GRAMMAR 4.9): what `catch (e)` binds.
#[derive(Clone, Debug)]
pub struct ErrorValue {
    /// The kind (`TypeError`, `ValidationError`, …).
    pub kind: crate::error::ErrorKind,
    /// The message.
    pub message: Str,
    /// Structured details or null.
    pub details: Value,
    /// The action name, for action failures.
    pub action: Option<Str>,
    /// `file:line:col` of the expression that raised it.
    pub location: Option<Str>,
    /// The DSL call stack when it was raised, innermost first.
    pub stack: Arc<[crate::interp::StackFrame]>,
    pub(crate) depth: u32,
}

impl ErrorValue {
    /// Builds an error value.
    pub fn new(
        kind: crate::error::ErrorKind,
        message: impl Into<Str>,
        details: Value,
        action: Option<Str>,
        location: Option<Str>,
        stack: Arc<[crate::interp::StackFrame]>,
    ) -> ErrorValue {
        let depth = details.depth() + 1;
        ErrorValue {
            kind,
            message: message.into(),
            details,
            action,
            location,
            stack,
            depth,
        }
    }

    /// The value of a member of an error (`e.kind`, `e.message`, …; null for others).
    pub fn member(&self, name: &str) -> Value {
        match name {
            "kind" => Value::str(self.kind.as_str()),
            "message" => Value::Str(self.message.clone()),
            "details" => self.details.clone(),
            "action" => self.action.clone().map(Value::Str).unwrap_or(Value::Null),
            "location" => self.location.clone().map(Value::Str).unwrap_or(Value::Null),
            _ => Value::Null,
        }
    }
}

/// A secret: a string or map from a vault.
pub struct Secret {
    inner: Value,
    depth: u32,
}

impl Secret {
    /// The secret's real content. Only the host (executing an action that needs the
    /// secret, e.g. an HTTP header) should look at it; it never reaches logs or results.
    pub fn reveal(&self) -> &Value {
        &self.inner
    }
}

// ---------------------------------------------------------------------------------------
// Crate-internal helpers
// ---------------------------------------------------------------------------------------

pub(crate) use ops::contains as ops_contains;

pub(crate) fn render_len_hint_pub(v: &Value) -> usize {
    text::render_len_hint(v)
}

pub(crate) fn heap_fault_pub() -> Fault {
    ops::heap_fault()
}

/// JSON for logs and policy requests: never fails (lambdas and refs become descriptive
/// strings, secrets `"[REDACTED]"`).
pub fn to_json_lossy(v: &Value) -> serde_json::Value {
    match v {
        Value::Lambda(_) => serde_json::Value::String("<lambda>".into()),
        Value::Ref(r) => serde_json::Value::String(format!("<ref {}>", r.as_str())),
        Value::List(l) => {
            serde_json::Value::Array(l.as_slice().iter().map(to_json_lossy).collect())
        }
        Value::Map(m) => serde_json::Value::Object(
            m.iter()
                .map(|(k, x)| (k.as_str().to_string(), to_json_lossy(x)))
                .collect(),
        ),
        other => to_json(other).unwrap_or(serde_json::Value::Null),
    }
}

/// As [`to_json_lossy`] but with secrets revealed: only for executing an action.
pub fn to_json_revealed_lossy(v: &Value) -> serde_json::Value {
    match v {
        Value::Secret(s) => to_json_revealed_lossy(s.reveal()),
        Value::List(l) => {
            serde_json::Value::Array(l.as_slice().iter().map(to_json_revealed_lossy).collect())
        }
        Value::Map(m) => serde_json::Value::Object(
            m.iter()
                .map(|(k, x)| (k.as_str().to_string(), to_json_revealed_lossy(x)))
                .collect(),
        ),
        other => to_json_lossy(other),
    }
}

/// Brings the unshared heap objects of a value made outside the execution (an action's
/// result) under the current heap meter, so that they count against the budget.
pub(crate) fn adopt(v: &mut Value) {
    match v {
        Value::Str(s) => {
            if let Some(b) = Arc::get_mut(&mut s.0) {
                if b.tag == 0 {
                    b.tag = heap::alloc(heap::str_cost(b.s.capacity()));
                }
            }
        }
        Value::List(l) => {
            if let Some(b) = Arc::get_mut(&mut l.0) {
                if b.tag == 0 {
                    b.tag = heap::alloc(heap::list_cost(b.items.capacity()));
                }
                b.items.iter_mut().for_each(adopt);
            }
        }
        Value::Map(m) => {
            if let Some(b) = Arc::get_mut(&mut m.0) {
                if b.tag == 0 {
                    b.tag = heap::alloc(heap::map_cost(b.entries.capacity()));
                }
                for (_, x) in b.entries.iter_mut() {
                    adopt(x);
                }
            }
        }
        _ => {}
    }
}
