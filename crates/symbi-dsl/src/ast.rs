//! The abstract syntax tree of a symbi program (GRAMMAR §2).
//!
//! # Conventions
//!
//! * **Spans.** Every node has a `span: Span` (byte offsets into the file, see
//!   [`crate::span`]) covering the node's first to last token. Names carry their own
//!   span inside [`Ident`].
//! * **Names.** [`Ident`] is used both for `Ident` positions (words that are not reserved)
//!   and for `Name` positions (any word, reserved ones included: member names, record
//!   keys, named arguments, property keys). The parser has already rejected reserved words
//!   in `Ident` positions (P007). The word `_` is an ordinary [`Ident`] whose name is `"_"`
//!   ([`Ident::is_wildcard`]); in a binding position it discards, and reading it as a
//!   variable is for the checker to reject.
//! * **Literals** are decoded: strings have their escapes resolved (CR LF inside a string
//!   is already one LF), durations are milliseconds (`i64`), sizes bytes (`u64`). The
//!   exact source spelling of any node is `span.text(source)`.
//! * **Separators are not kept.** `=` versus `:` in metadata / properties /
//!   `capabilities` / named arguments, optional commas, and the spelling of property
//!   separators carry no meaning and the formatter writes them canonically.
//!   Spelling that *is* kept: `!` versus `not` ([`UnaryOp::Bang`] / [`UnaryOp::Not`],
//!   same meaning), parentheses ([`ExprKind::Paren`], needed for E108), quoted versus bare
//!   record keys ([`FieldKey`]).
//! * **Assignment targets** are stored as a plain [`Expr`]; the parser accepts any
//!   expression there (Appendix A: `f() = 1;` is a *check* error). Use [`Expr::is_place`]
//!   to implement E108.
//! * **Positional after named arguments** (E112) is not a syntax error either: [`Arg`]
//!   keeps the order as written.
//! * **Comments** are in [`Program::comments`], in source order, each with its text. They
//!   attach *positionally*: a comment on the same line after a node's last token trails
//!   that node; any other comment leads the next item / agent item / statement / rule /
//!   property / arm / field that starts after it (or, if none follows inside the same
//!   block, sits before the block's closing `}`). The formatter uses exactly this rule.
//! * **Facts for the checker** that are not tree shape (unknown string escapes → W229,
//!   uses of the [X] extensions → W230 under `--compat`) are in
//!   [`Program::syntax_notes`], so the checker need not rescan the text.
//! * A file with syntax errors still yields a [`Program`]: the items and statements that
//!   parsed. There are no "error" nodes — a construct that failed to parse is left out.
//!
//! Equality: all nodes derive `PartialEq` *including* spans. To compare two trees modulo
//! spans (e.g. formatter round-trips) use [`Program::eq_modulo_spans`], which compares the
//! serde serialisations with every `span` field removed.
//!
//! # Changelog
//!
//! * v1 (initial): complete grammar of GRAMMAR.md version 1.

use crate::span::Span;
use serde::Serialize;
use smol_str::SmolStr;

/// A word used as a name, with its position.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Ident {
    /// The word as written.
    pub name: SmolStr,
    /// Where.
    pub span: Span,
}

impl Ident {
    /// A new identifier.
    pub fn new(name: impl Into<SmolStr>, span: Span) -> Ident {
        Ident {
            name: name.into(),
            span,
        }
    }

    /// The word.
    pub fn as_str(&self) -> &str {
        &self.name
    }

    /// Whether this is the wildcard / discard name `_`.
    pub fn is_wildcard(&self) -> bool {
        self.name == "_"
    }
}

impl std::fmt::Display for Ident {
    /// The word as written (for messages: ``format!("agent `{}`", a.name)``).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)
    }
}

// ---------------------------------------------------------------------------------------
// Program and comments
// ---------------------------------------------------------------------------------------

/// A whole file.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Program {
    /// Top-level items in source order.
    pub items: Vec<Item>,
    /// Every comment of the file, in source order.
    pub comments: Vec<Comment>,
    /// Unknown escapes and uses of the [X] extensions, in source order.
    pub syntax_notes: Vec<SyntaxNote>,
    /// The whole file.
    pub span: Span,
}

/// The three comment forms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum CommentKind {
    /// `// …` to the end of the line.
    Line,
    /// `# …` to the end of the line.
    Hash,
    /// `/* … */` ([X]).
    Block,
}

/// One comment, with its complete text (delimiters included).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Comment {
    /// Which form.
    pub kind: CommentKind,
    /// The text as written, including `//`, `#` or `/*`…`*/`.
    pub text: SmolStr,
    /// Where.
    pub span: Span,
}

/// Something the checker reports without looking at the tree shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum SyntaxNoteKind {
    /// A `\` escape that GRAMMAR §1.4 does not define (kept verbatim; warning W229).
    UnknownEscape,
    /// A `/* … */` comment ([X]).
    BlockComment,
    /// A `while` loop ([X]).
    While,
    /// A `break;` ([X]).
    Break,
    /// A `continue;` ([X]).
    Continue,
    /// A `let x: T = …;` type annotation ([X]).
    TypedLet,
    /// A duration in milliseconds `250ms` ([X]).
    MillisecondDuration,
    /// A size literal `512MB` ([X]).
    SizeLiteral,
}

impl SyntaxNoteKind {
    /// Whether this note is a use of an [X] extension (W230 under `--compat`).
    pub fn is_extension(self) -> bool {
        !matches!(self, SyntaxNoteKind::UnknownEscape)
    }

    /// How the extension is named in a W230 message (`"block comment"`, …).
    pub fn describe(self) -> &'static str {
        match self {
            SyntaxNoteKind::UnknownEscape => "unknown escape",
            SyntaxNoteKind::BlockComment => "block comment",
            SyntaxNoteKind::While => "`while` loop",
            SyntaxNoteKind::Break => "`break`",
            SyntaxNoteKind::Continue => "`continue`",
            SyntaxNoteKind::TypedLet => "type annotation on `let`",
            SyntaxNoteKind::MillisecondDuration => "`ms` duration",
            SyntaxNoteKind::SizeLiteral => "size literal",
        }
    }
}

/// A [`SyntaxNoteKind`] at a position (for an unknown escape: the `\` and the character
/// after it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct SyntaxNote {
    /// What.
    pub kind: SyntaxNoteKind,
    /// Where.
    pub span: Span,
}

// ---------------------------------------------------------------------------------------
// Items
// ---------------------------------------------------------------------------------------

/// A top-level item (GRAMMAR §2.2).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum Item {
    /// `metadata { … }`.
    Metadata(Metadata),
    /// `agent name(…) -> T { … }`.
    Agent(Agent),
    /// `policy name { … }` (top level).
    Policy(Policy),
    /// `type Name = …`.
    Type(TypeDef),
    /// `function name(…) -> T { … }` (top level).
    Function(Function),
    /// `schedule name { … }`.
    Schedule(Schedule),
    /// `channel name { … }`.
    Channel(Channel),
    /// `memory name { … }`.
    Memory(Memory),
    /// `webhook name { … }`.
    Webhook(Webhook),
}

impl Item {
    /// The item's span.
    pub fn span(&self) -> Span {
        match self {
            Item::Metadata(x) => x.span,
            Item::Agent(x) => x.span,
            Item::Policy(x) => x.span,
            Item::Type(x) => x.span,
            Item::Function(x) => x.span,
            Item::Schedule(x) => x.span,
            Item::Channel(x) => x.span,
            Item::Memory(x) => x.span,
            Item::Webhook(x) => x.span,
        }
    }

    /// The item's name (`None` for metadata).
    pub fn name(&self) -> Option<&Ident> {
        match self {
            Item::Metadata(_) => None,
            Item::Agent(x) => Some(&x.name),
            Item::Policy(x) => Some(&x.name),
            Item::Type(x) => Some(&x.name),
            Item::Function(x) => Some(&x.name),
            Item::Schedule(x) => Some(&x.name),
            Item::Channel(x) => Some(&x.name),
            Item::Memory(x) => Some(&x.name),
            Item::Webhook(x) => Some(&x.name),
        }
    }

    /// The keyword that starts the item (`"agent"`, …).
    pub fn keyword(&self) -> &'static str {
        match self {
            Item::Metadata(_) => "metadata",
            Item::Agent(_) => "agent",
            Item::Policy(_) => "policy",
            Item::Type(_) => "type",
            Item::Function(_) => "function",
            Item::Schedule(_) => "schedule",
            Item::Channel(_) => "channel",
            Item::Memory(_) => "memory",
            Item::Webhook(_) => "webhook",
        }
    }
}

/// `metadata { key = value … }` (GRAMMAR §2.3).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Metadata {
    /// The pairs in source order (repeats are kept; W221 is the checker's).
    pub pairs: Vec<Property>,
    /// From `metadata` to `}`.
    pub span: Span,
}

/// A `key value`, `key = value` or `key: value` entry of metadata, schedules, channels,
/// memory stores, webhooks and their sub-blocks. Which [`PropValue`] forms occur depends
/// on the block (metadata: value, array, record; channel: value, array; the others:
/// value only).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Property {
    /// The key (any word).
    pub key: Ident,
    /// The value.
    pub value: PropValue,
    /// From the key to the end of the value.
    pub span: Span,
}

/// The value of a property or `with` attribute: never a general expression (D6).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum PropValue {
    /// Exactly one token.
    Value(Value),
    /// `[ e, … ]` (elements are expressions).
    Array(ArrayLit),
    /// `{ k: e, … }` (metadata only).
    Record(RecordLit),
}

impl PropValue {
    /// The value's span.
    pub fn span(&self) -> Span {
        match self {
            PropValue::Value(v) => v.span(),
            PropValue::Array(a) => a.span,
            PropValue::Record(r) => r.span,
        }
    }
}

/// A one-token value (`Value` of GRAMMAR §2.3): a literal or a bare word.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum Value {
    /// A string, number, duration, size, `true`, `false` or `null`.
    Lit(Literal),
    /// A bare word that is not reserved, used as a symbol (`markdown`, `Tier1`, `redact`).
    Word(Ident),
}

impl Value {
    /// The value's span.
    pub fn span(&self) -> Span {
        match self {
            Value::Lit(l) => l.span,
            Value::Word(w) => w.span,
        }
    }
}

/// `agent name(params) -> T { items }` (GRAMMAR §2.4).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Agent {
    /// The agent's name.
    pub name: Ident,
    /// `None` when written without parentheses (`agent a { … }`), else the parameters.
    pub params: Option<Vec<Param>>,
    /// The declared return type.
    pub ret: Option<TypeExpr>,
    /// Body items in source order.
    pub items: Vec<AgentItem>,
    /// From `agent` to `}`.
    pub span: Span,
}

impl Agent {
    /// The parameters (empty when there are none or no parentheses).
    pub fn params(&self) -> &[Param] {
        self.params.as_deref().unwrap_or(&[])
    }

    /// The `with` blocks, in source order.
    pub fn with_blocks(&self) -> impl Iterator<Item = &WithBlock> {
        self.items.iter().filter_map(|i| match i {
            AgentItem::With(w) => Some(w),
            _ => None,
        })
    }
}

/// `name: Type`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Param {
    /// The parameter name.
    pub name: Ident,
    /// Its type.
    pub ty: TypeExpr,
    /// From name to type.
    pub span: Span,
}

/// An item inside an agent body.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum AgentItem {
    /// `capabilities = [ … ]`.
    Capabilities(Capabilities),
    /// `policy name { … }`.
    Policy(Policy),
    /// `function name(…) { … }`.
    Function(Function),
    /// `with attrs { … }`.
    With(WithBlock),
}

impl AgentItem {
    /// The item's span.
    pub fn span(&self) -> Span {
        match self {
            AgentItem::Capabilities(x) => x.span,
            AgentItem::Policy(x) => x.span,
            AgentItem::Function(x) => x.span,
            AgentItem::With(x) => x.span,
        }
    }
}

/// `capabilities = [ … ]` (elements are any expressions, D19; E120 is the checker's).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Capabilities {
    /// The array.
    pub list: ArrayLit,
    /// From `capabilities` to `]`.
    pub span: Span,
}

/// `with a = v, b = [..] { body }`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WithBlock {
    /// Attributes in source order (repeats kept; E106 is the checker's).
    pub attrs: Vec<WithAttr>,
    /// The body.
    pub body: Block,
    /// From `with` to the body's `}`.
    pub span: Span,
}

/// One `name = value` of a `with` header. The value is a [`PropValue::Value`] or
/// [`PropValue::Array`] (D6).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WithAttr {
    /// The attribute name (any word).
    pub name: Ident,
    /// The value.
    pub value: PropValue,
    /// From name to value.
    pub span: Span,
}

/// `policy name { rules }` (GRAMMAR §2.5), at top level, in an agent or in a channel.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Policy {
    /// The policy name.
    pub name: Ident,
    /// Rules in source order.
    pub rules: Vec<Rule>,
    /// From `policy` to `}`.
    pub span: Span,
}

/// `kind: expr [if guard]`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Rule {
    /// allow, deny, require or audit.
    pub kind: RuleKind,
    /// The span of the rule-kind word.
    pub kind_span: Span,
    /// The rule expression (an action pattern for allow/deny; see GRAMMAR 4.10).
    pub expr: Expr,
    /// The guard after `if`.
    pub guard: Option<Expr>,
    /// From the kind word to the end of the expression or guard.
    pub span: Span,
}

/// The four rule kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum RuleKind {
    /// `allow:`
    Allow,
    /// `deny:`
    Deny,
    /// `require:`
    Require,
    /// `audit:`
    Audit,
}

impl RuleKind {
    /// The keyword.
    pub const fn as_str(self) -> &'static str {
        match self {
            RuleKind::Allow => "allow",
            RuleKind::Deny => "deny",
            RuleKind::Require => "require",
            RuleKind::Audit => "audit",
        }
    }
}

/// `function name(params) -> T { body }` (GRAMMAR §2.6).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Function {
    /// The function name.
    pub name: Ident,
    /// Parameters (possibly empty).
    pub params: Vec<Param>,
    /// Declared return type.
    pub ret: Option<TypeExpr>,
    /// The body.
    pub body: Block,
    /// From `function` to `}`.
    pub span: Span,
}

/// `type Name = { fields }` or `type Name = Other`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TypeDef {
    /// The type's name.
    pub name: Ident,
    /// Struct or alias.
    pub def: TypeDefKind,
    /// From `type` to the end of the definition.
    pub span: Span,
}

/// The right-hand side of a [`TypeDef`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum TypeDefKind {
    /// `{ name: Type, … }`.
    Struct(StructType),
    /// A single identifier (no generic arguments).
    Alias(Ident),
}

/// `{ name: Type, … }`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StructType {
    /// Fields in source order (repeats kept; E104 is the checker's).
    pub fields: Vec<StructField>,
    /// From `{` to `}`.
    pub span: Span,
}

/// `name: Type` in a struct type.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StructField {
    /// Field name (any word).
    pub name: Ident,
    /// Field type.
    pub ty: TypeExpr,
    /// From name to type.
    pub span: Span,
}

/// A type in a type position: `Name` or `Name<T, …>`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TypeExpr {
    /// The type name (`String`, `int`, `Array`, a `type` item, …).
    pub name: Ident,
    /// Generic arguments (empty when there are none).
    pub args: Vec<TypeExpr>,
    /// From the name to `>`.
    pub span: Span,
}

/// `schedule name { key: value … }`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Schedule {
    /// The schedule's name.
    pub name: Ident,
    /// Properties (values are single tokens).
    pub props: Vec<Property>,
    /// From `schedule` to `}`.
    pub span: Span,
}

/// `channel name { … }`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Channel {
    /// The channel's name.
    pub name: Ident,
    /// Entries in source order.
    pub entries: Vec<ChannelEntry>,
    /// From `channel` to `}`.
    pub span: Span,
}

/// An entry of a channel block.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum ChannelEntry {
    /// `key: value` (value or array).
    Prop(Property),
    /// `policy name { … }`.
    Policy(Policy),
    /// `data_classification { category: action … }`.
    DataClassification(DataClassification),
}

impl ChannelEntry {
    /// The entry's span.
    pub fn span(&self) -> Span {
        match self {
            ChannelEntry::Prop(p) => p.span,
            ChannelEntry::Policy(p) => p.span,
            ChannelEntry::DataClassification(d) => d.span,
        }
    }
}

/// `data_classification { pii: redact … }`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DataClassification {
    /// Rules in source order.
    pub rules: Vec<DataClassRule>,
    /// From `data_classification` to `}`.
    pub span: Span,
}

/// `category: action`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DataClassRule {
    /// The detected category (`pii`, `api_key`, …).
    pub category: Ident,
    /// The action (`redact`, `block`, `allow`; others are E129).
    pub action: Ident,
    /// From category to action.
    pub span: Span,
}

/// `memory name { key value … search { … } }`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Memory {
    /// The store's name.
    pub name: Ident,
    /// Entries in source order.
    pub entries: Vec<MemoryEntry>,
    /// From `memory` to `}`.
    pub span: Span,
}

/// An entry of a memory block.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum MemoryEntry {
    /// `key value`.
    Prop(Property),
    /// `search { key value … }`.
    Search(SubBlock),
}

/// `webhook name { key value … filter { … } }`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Webhook {
    /// The webhook's name.
    pub name: Ident,
    /// Entries in source order.
    pub entries: Vec<WebhookEntry>,
    /// From `webhook` to `}`.
    pub span: Span,
}

/// An entry of a webhook block.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum WebhookEntry {
    /// `key value`.
    Prop(Property),
    /// `filter { key value … }`.
    Filter(SubBlock),
}

/// The `search { … }` of a memory block or the `filter { … }` of a webhook block.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SubBlock {
    /// `key value` properties.
    pub props: Vec<Property>,
    /// From the keyword to `}`.
    pub span: Span,
}

// ---------------------------------------------------------------------------------------
// Blocks and statements
// ---------------------------------------------------------------------------------------

/// `{ stmts [tail] }` (GRAMMAR §2.8).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Block {
    /// Statements in order.
    pub stmts: Vec<Stmt>,
    /// The trailing expression without `;` (the block's value, GRAMMAR 4.4).
    pub tail: Option<Box<Expr>>,
    /// From `{` to `}`.
    pub span: Span,
}

/// A statement.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum Stmt {
    /// `let x [: T] = e;`
    Let(LetStmt),
    /// `if c { … } [else …]`
    If(IfStmt),
    /// `for x in e { … }`
    For(ForStmt),
    /// `while c { … }` ([X])
    While(WhileStmt),
    /// `match e { arms }`
    Match(MatchStmt),
    /// `try { … } catch (…) { … }`
    Try(TryStmt),
    /// `return [e];`
    Return(ReturnStmt),
    /// `break;` ([X]); the span covers `break;`.
    Break(Span),
    /// `continue;` ([X]); the span covers `continue;`.
    Continue(Span),
    /// `place op= e;`
    Assign(AssignStmt),
    /// `e;`
    Expr(ExprStmt),
}

impl Stmt {
    /// The statement's span (including its `;`).
    pub fn span(&self) -> Span {
        match self {
            Stmt::Let(s) => s.span,
            Stmt::If(s) => s.span,
            Stmt::For(s) => s.span,
            Stmt::While(s) => s.span,
            Stmt::Match(s) => s.span,
            Stmt::Try(s) => s.span,
            Stmt::Return(s) => s.span,
            Stmt::Break(s) | Stmt::Continue(s) => *s,
            Stmt::Assign(s) => s.span,
            Stmt::Expr(s) => s.span,
        }
    }
}

/// `let binder [: T] = value;` — `binder` may be `_` ([`Ident::is_wildcard`]).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LetStmt {
    /// The bound name or `_`.
    pub binder: Ident,
    /// The [X] type annotation.
    pub ty: Option<TypeExpr>,
    /// The initialiser.
    pub value: Expr,
    /// From `let` to `;`.
    pub span: Span,
}

/// `if cond { … } [else …]` as a statement.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct IfStmt {
    /// The condition.
    pub cond: Cond,
    /// The then-block.
    pub then_block: Block,
    /// The optional else branch.
    pub else_branch: Option<ElseBranch>,
    /// From `if` to the last `}`.
    pub span: Span,
}

/// The condition of an `if` statement.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum Cond {
    /// A plain expression.
    Expr(Expr),
    /// `let pattern = value`.
    Let {
        /// The pattern.
        pattern: Pattern,
        /// The matched value.
        value: Expr,
        /// From `let` to the end of the value.
        span: Span,
    },
}

/// What follows `else` in an `if` statement.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum ElseBranch {
    /// `else if …`
    If(Box<IfStmt>),
    /// `else { … }`
    Block(Block),
}

/// `for binder in iter { body }`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ForStmt {
    /// The loop variable or `_`.
    pub binder: Ident,
    /// The iterated expression.
    pub iter: Expr,
    /// The body.
    pub body: Block,
    /// From `for` to `}`.
    pub span: Span,
}

/// `while cond { body }` ([X]).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WhileStmt {
    /// The condition.
    pub cond: Expr,
    /// The body.
    pub body: Block,
    /// From `while` to `}`.
    pub span: Span,
}

/// `match scrutinee { arms }`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MatchStmt {
    /// The matched value.
    pub scrutinee: Expr,
    /// Arms in order.
    pub arms: Vec<Arm>,
    /// From `match` to `}`.
    pub span: Span,
}

/// `pattern => body`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Arm {
    /// The arm pattern.
    pub pattern: ArmPattern,
    /// The body.
    pub body: ArmBody,
    /// From pattern to the end of the body.
    pub span: Span,
}

/// An arm pattern: one token.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum ArmPattern {
    /// A string, int, float, `true`, `false` or `null` literal.
    Lit(Literal),
    /// `_`.
    Wildcard(Span),
    /// Any other word: binds the value (`None` matches null, GRAMMAR 4.5.6).
    Binding(Ident),
}

impl ArmPattern {
    /// The pattern's span.
    pub fn span(&self) -> Span {
        match self {
            ArmPattern::Lit(l) => l.span,
            ArmPattern::Wildcard(s) => *s,
            ArmPattern::Binding(i) => i.span,
        }
    }
}

/// The body of a match arm (D3).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum ArmBody {
    /// `{ statements }`.
    Block(Block),
    /// One expression (a record if `{` is followed by `Name :` or `STRING :`).
    Expr(Expr),
}

impl ArmBody {
    /// The body's span.
    pub fn span(&self) -> Span {
        match self {
            ArmBody::Block(b) => b.span,
            ArmBody::Expr(e) => e.span,
        }
    }
}

/// `try { … } catch … catch …`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TryStmt {
    /// The protected block.
    pub body: Block,
    /// Catch clauses in order (possibly none; W217 is the checker's).
    pub catches: Vec<Catch>,
    /// From `try` to the last `}`.
    pub span: Span,
}

/// `catch (Kind binding) { … }` or `catch (binding) { … }` (D18).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Catch {
    /// The error kind filter, if two words were written.
    pub kind: Option<Ident>,
    /// The bound error.
    pub binding: Ident,
    /// The handler.
    pub body: Block,
    /// From `catch` to `}`.
    pub span: Span,
}

/// `return [value];`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ReturnStmt {
    /// The returned value.
    pub value: Option<Expr>,
    /// From `return` to `;`.
    pub span: Span,
}

/// `target op value;` — `target` is any expression (see [`Expr::is_place`]).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AssignStmt {
    /// The assigned place.
    pub target: Expr,
    /// `=`, `+=`, …
    pub op: AssignOp,
    /// The assigned value.
    pub value: Expr,
    /// From target to `;`.
    pub span: Span,
}

/// Assignment operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum AssignOp {
    /// `=`
    Assign,
    /// `+=`
    Add,
    /// `-=`
    Sub,
    /// `*=`
    Mul,
    /// `/=`
    Div,
    /// `%=`
    Rem,
}

impl AssignOp {
    /// The operator's spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            AssignOp::Assign => "=",
            AssignOp::Add => "+=",
            AssignOp::Sub => "-=",
            AssignOp::Mul => "*=",
            AssignOp::Div => "/=",
            AssignOp::Rem => "%=",
        }
    }

    /// The binary operator of a compound assignment (`+=` → `+`).
    pub const fn binary(self) -> Option<BinaryOp> {
        match self {
            AssignOp::Assign => None,
            AssignOp::Add => Some(BinaryOp::Add),
            AssignOp::Sub => Some(BinaryOp::Sub),
            AssignOp::Mul => Some(BinaryOp::Mul),
            AssignOp::Div => Some(BinaryOp::Div),
            AssignOp::Rem => Some(BinaryOp::Rem),
        }
    }
}

/// `expr;`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ExprStmt {
    /// The expression.
    pub expr: Expr,
    /// From the expression to `;`.
    pub span: Span,
}

/// An `if let` pattern (GRAMMAR §2.8 `Pattern`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum Pattern {
    /// `_`.
    Wildcard(Span),
    /// A word: binds, or (`None`) matches null (4.5.6).
    Binding(Ident),
    /// `Name(p, …)`.
    Ctor {
        /// Constructor name (`Some`, `Ok`, any other word).
        name: Ident,
        /// Sub-patterns.
        args: Vec<Pattern>,
        /// From name to `)`.
        span: Span,
    },
}

impl Pattern {
    /// The pattern's span.
    pub fn span(&self) -> Span {
        match self {
            Pattern::Wildcard(s) => *s,
            Pattern::Binding(i) => i.span,
            Pattern::Ctor { span, .. } => *span,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Expressions
// ---------------------------------------------------------------------------------------

/// An expression with its span.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Expr {
    /// What kind.
    pub kind: ExprKind,
    /// From first to last token (parentheses included for [`ExprKind::Paren`]).
    pub span: Span,
}

/// Expression forms (GRAMMAR §2.9).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum ExprKind {
    /// A literal.
    Lit(LitKind),
    /// `vault://path` — the path after `vault://`.
    Vault(SmolStr),
    /// A variable or function name (a bare `Ident`).
    Var(SmolStr),
    /// `Name { field: e, … }` (D2).
    TypeLit {
        /// The type name.
        name: Ident,
        /// Fields in order.
        fields: Vec<Field>,
    },
    /// `{ key: e, … }`.
    Record(Vec<Field>),
    /// `[ e, … ]`.
    Array(Vec<Expr>),
    /// `param => body`.
    Lambda {
        /// The single parameter.
        param: Ident,
        /// The body.
        body: Box<Expr>,
    },
    /// `if c { … } else …` as an expression.
    If(Box<IfExpr>),
    /// `( e )`.
    Paren(Box<Expr>),
    /// `op operand`.
    Unary {
        /// The operator.
        op: UnaryOp,
        /// The operand.
        operand: Box<Expr>,
    },
    /// `lhs op rhs`.
    Binary {
        /// The operator.
        op: BinaryOp,
        /// Left operand.
        lhs: Box<Expr>,
        /// Right operand.
        rhs: Box<Expr>,
    },
    /// `object.name`.
    Member {
        /// The object.
        object: Box<Expr>,
        /// The member name (any word).
        name: Ident,
    },
    /// `callee(args)`.
    Call {
        /// The callee.
        callee: Box<Expr>,
        /// Arguments in written order.
        args: Vec<Arg>,
    },
    /// `object[index]`.
    Index {
        /// The indexed value.
        object: Box<Expr>,
        /// The index.
        index: Box<Expr>,
    },
}

impl Expr {
    /// Whether this expression is a place (D13): a variable, or a member access or index
    /// whose base is itself a place. Parentheses make a non-place.
    pub fn is_place(&self) -> bool {
        match &self.kind {
            ExprKind::Var(_) => true,
            ExprKind::Member { object, .. } | ExprKind::Index { object, .. } => object.is_place(),
            _ => false,
        }
    }

    /// The variable name if this is a bare [`ExprKind::Var`].
    pub fn as_var(&self) -> Option<&str> {
        match &self.kind {
            ExprKind::Var(n) => Some(n),
            _ => None,
        }
    }
}

/// A record or type-literal field.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Field {
    /// The key.
    pub key: FieldKey,
    /// The value.
    pub value: Expr,
    /// From key to value.
    pub span: Span,
}

/// A field key as written.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum FieldKey {
    /// A bare word (any word).
    Name(Ident),
    /// A string literal key (`"b c": 2`); `value` is decoded.
    Str {
        /// The decoded key.
        value: SmolStr,
        /// The literal's span.
        span: Span,
    },
}

impl FieldKey {
    /// The key text.
    pub fn as_str(&self) -> &str {
        match self {
            FieldKey::Name(i) => &i.name,
            FieldKey::Str { value, .. } => value,
        }
    }

    /// The key's span.
    pub fn span(&self) -> Span {
        match self {
            FieldKey::Name(i) => i.span,
            FieldKey::Str { span, .. } => *span,
        }
    }
}

/// `[ e, … ]` where a literal array is needed outside expressions (properties,
/// capabilities).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ArrayLit {
    /// Elements.
    pub elems: Vec<Expr>,
    /// From `[` to `]`.
    pub span: Span,
}

/// `{ k: e, … }` where a literal record is needed outside expressions (metadata).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RecordLit {
    /// Fields.
    pub fields: Vec<Field>,
    /// From `{` to `}`.
    pub span: Span,
}

/// A call argument: positional (`name` is `None`) or named (`n: v` / `n = v`, D4).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Arg {
    /// The name of a named argument.
    pub name: Option<Ident>,
    /// The value.
    pub value: Expr,
    /// From name (or value) to value.
    pub span: Span,
}

/// `if cond { … } else { … }` as an expression (the `else` is required).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct IfExpr {
    /// The condition.
    pub cond: Expr,
    /// The then-block.
    pub then_block: Block,
    /// The else branch.
    pub else_branch: ElseExpr,
    /// From `if` to the last `}`.
    pub span: Span,
}

/// What follows `else` in an if-expression.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum ElseExpr {
    /// `else if …`.
    If(Box<IfExpr>),
    /// `else { … }`.
    Block(Block),
}

/// Prefix operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum UnaryOp {
    /// `-`
    Neg,
    /// `!` (same meaning as [`UnaryOp::Not`])
    Bang,
    /// `not`
    Not,
}

impl UnaryOp {
    /// The spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            UnaryOp::Neg => "-",
            UnaryOp::Bang => "!",
            UnaryOp::Not => "not",
        }
    }
}

/// Binary operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum BinaryOp {
    /// `||`
    Or,
    /// `&&`
    And,
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `in`
    In,
    /// `<`
    Lt,
    /// `>`
    Gt,
    /// `<=`
    Le,
    /// `>=`
    Ge,
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

impl BinaryOp {
    /// The spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            BinaryOp::Or => "||",
            BinaryOp::And => "&&",
            BinaryOp::Eq => "==",
            BinaryOp::Ne => "!=",
            BinaryOp::In => "in",
            BinaryOp::Lt => "<",
            BinaryOp::Gt => ">",
            BinaryOp::Le => "<=",
            BinaryOp::Ge => ">=",
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
            BinaryOp::Rem => "%",
        }
    }

    /// Binding power: 1 (`||`, loosest) … 6 (`*` `/` `%`), GRAMMAR §2.9. All are left
    /// associative.
    pub const fn precedence(self) -> u8 {
        match self {
            BinaryOp::Or => 1,
            BinaryOp::And => 2,
            BinaryOp::Eq | BinaryOp::Ne | BinaryOp::In => 3,
            BinaryOp::Lt | BinaryOp::Gt | BinaryOp::Le | BinaryOp::Ge => 4,
            BinaryOp::Add | BinaryOp::Sub => 5,
            BinaryOp::Mul | BinaryOp::Div | BinaryOp::Rem => 6,
        }
    }

    /// Whether this is one of `<` `>` `<=` `>=` (W214 chained comparisons).
    pub const fn is_comparison(self) -> bool {
        matches!(
            self,
            BinaryOp::Lt | BinaryOp::Gt | BinaryOp::Le | BinaryOp::Ge
        )
    }
}

/// A literal with its span.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Literal {
    /// The value.
    pub kind: LitKind,
    /// Where.
    pub span: Span,
}

/// Literal values, decoded.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum LitKind {
    /// `null`
    Null,
    /// `true` / `false`
    Bool(bool),
    /// An integer (fits i64).
    Int(i64),
    /// A float (finite).
    Float(f64),
    /// A string with escapes resolved.
    Str(SmolStr),
    /// A duration in milliseconds (`30s` → 30000).
    Duration(i64),
    /// A size in bytes (`1KB` → 1024).
    Size(u64),
}

// ---------------------------------------------------------------------------------------
// Equality modulo spans
// ---------------------------------------------------------------------------------------

impl Program {
    /// Whether two programs are the same tree, ignoring every span (used to check that the
    /// formatter never changes meaning). Comments are compared by kind and text.
    pub fn eq_modulo_spans(&self, other: &Program) -> bool {
        span_free_json(self) == span_free_json(other)
    }

    /// The program as JSON with every `span`/`kind_span` field removed: a normal form for
    /// comparing trees modulo positions, and a readable dump (`symbi dsl parse --ast`).
    pub fn without_spans(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or(serde_json::Value::Null);
        strip_spans(&mut v);
        v
    }
}

/// The compact JSON of `p` with every span object `{"start":N,"end":M}` replaced by `{}`.
/// Textual replacement is exact here: inside JSON string values every `"` is escaped, so
/// the unescaped pattern only occurs as a serialised [`Span`]. Much faster than building
/// a `serde_json::Value` (this check runs on every formatted file).
fn span_free_json(p: &Program) -> String {
    let json = serde_json::to_string(p).unwrap_or_default();
    let b = json.as_bytes();
    let mut out = String::with_capacity(json.len());
    let mut i = 0;
    let mut run = 0;
    const PAT: &[u8] = b"{\"start\":";
    while let Some(off) = json[i..].find("{\"start\":") {
        let at = i + off;
        let mut j = at + PAT.len();
        let digits = |j: &mut usize| {
            let s = *j;
            while *j < b.len() && b[*j].is_ascii_digit() {
                *j += 1;
            }
            *j > s
        };
        let ok = digits(&mut j)
            && b[j..].starts_with(b",\"end\":")
            && {
                j += 7;
                digits(&mut j)
            }
            && b.get(j) == Some(&b'}');
        if ok {
            out.push_str(&json[run..at]);
            out.push_str("{}");
            run = j + 1;
            i = j + 1;
        } else {
            i = at + 1;
        }
    }
    out.push_str(&json[run..]);
    out
}

fn strip_spans(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(m) => {
            m.retain(|k, _| k != "span" && k != "kind_span");
            // Spans that are the only payload of a variant (`Break(Span)`,
            // `Wildcard(Span)`) serialise as `{"start":…,"end":…}`: blank them too.
            if m.len() == 2 && m.contains_key("start") && m.contains_key("end") {
                m.clear();
            }
            for x in m.values_mut() {
                strip_spans(x);
            }
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(strip_spans),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn var(name: &str, at: u32) -> Expr {
        Expr {
            kind: ExprKind::Var(name.into()),
            span: Span::new(at, at + name.len() as u32),
        }
    }

    #[test]
    fn places() {
        let a = var("a", 0);
        assert!(a.is_place());
        let m = Expr {
            kind: ExprKind::Member {
                object: Box::new(a.clone()),
                name: Ident::new("b", Span::new(2, 3)),
            },
            span: Span::new(0, 3),
        };
        assert!(m.is_place());
        let call = Expr {
            kind: ExprKind::Call {
                callee: Box::new(a.clone()),
                args: vec![],
            },
            span: Span::new(0, 3),
        };
        assert!(!call.is_place());
        let paren = Expr {
            kind: ExprKind::Paren(Box::new(a)),
            span: Span::new(0, 3),
        };
        assert!(!paren.is_place());
    }

    #[test]
    fn modulo_spans_ignores_positions_only() {
        let p = |at: u32, name: &str| Program {
            items: vec![],
            comments: vec![Comment {
                kind: CommentKind::Line,
                text: name.into(),
                span: Span::new(at, at + 3),
            }],
            syntax_notes: vec![SyntaxNote {
                kind: SyntaxNoteKind::Break,
                span: Span::new(at, at),
            }],
            span: Span::new(0, at),
        };
        assert!(p(1, "//a").eq_modulo_spans(&p(7, "//a")));
        assert!(!p(1, "//a").eq_modulo_spans(&p(1, "//b")));
        // Span-looking text inside a string value is not a span.
        assert!(!p(1, "{\"start\":1,\"end\":2}").eq_modulo_spans(&p(1, "{\"start\":3,\"end\":4}")));
        assert_eq!(p(1, "x").without_spans(), p(9, "x").without_spans());
    }
}
