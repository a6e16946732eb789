//! The lexer (GRAMMAR §1): source text → tokens, comments and lexical diagnostics.
//!
//! Built on `logos` (one DFA for all fixed tokens); callbacks handle the rules that need
//! to look further: numbers with unit suffixes (L-a, L-b, L-c), strings with escapes
//! (L004, L005, W229 facts) and block comments (L002). The lexer produces words only
//! (L-f): [`Token::kw`] merely tags the words whose text *could* be a keyword so that the
//! parser compares a byte instead of a string; the parser decides by position.
//!
//! Tokens carry no payload (12 bytes each); literal values are decoded by the parser
//! from the token text with [`decode_number`] and [`decode_string`], the same functions
//! the lexer uses to validate them, so the two never disagree.
//!
//! ```
//! use symbi_dsl::lexer::{lex, TokenKind};
//! let l = lex("let t = 30s; // wait");
//! let kinds: Vec<_> = l.tokens.iter().map(|t| t.kind).collect();
//! assert_eq!(kinds, [TokenKind::Word, TokenKind::Word, TokenKind::Eq, TokenKind::Duration,
//!                    TokenKind::Semi, TokenKind::Eof]);
//! assert_eq!(l.comments.len(), 1);
//! assert!(l.diagnostics.is_empty());
//! ```

use crate::ast::{Comment, CommentKind, SyntaxNote, SyntaxNoteKind};
use crate::diagnostic::Diagnostic;
use crate::span::Span;
use logos::Logos;
use smol_str::SmolStr;

/// Token kinds. Words (identifiers and keywords alike) are [`TokenKind::Word`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum TokenKind {
    /// `[A-Za-z_][A-Za-z0-9_]*`
    Word,
    /// `"…"` (the token includes the quotes)
    Str,
    /// `123`, `1_000`
    Int,
    /// `1.5`
    Float,
    /// `30s`, `6months`, `2.hours`, `250ms`
    Duration,
    /// `512MB`
    Size,
    /// `vault://path`
    Vault,
    /// `{`
    LBrace,
    /// `}`
    RBrace,
    /// `(`
    LParen,
    /// `)`
    RParen,
    /// `[`
    LBracket,
    /// `]`
    RBracket,
    /// `,`
    Comma,
    /// `;`
    Semi,
    /// `:`
    Colon,
    /// `.`
    Dot,
    /// `->`
    Arrow,
    /// `=>`
    FatArrow,
    /// `=`
    Eq,
    /// `+=`
    PlusEq,
    /// `-=`
    MinusEq,
    /// `*=`
    StarEq,
    /// `/=`
    SlashEq,
    /// `%=`
    PercentEq,
    /// `||`
    OrOr,
    /// `&&`
    AndAnd,
    /// `==`
    EqEq,
    /// `!=`
    NotEq,
    /// `<`
    Lt,
    /// `>`
    Gt,
    /// `<=`
    Le,
    /// `>=`
    Ge,
    /// `+`
    Plus,
    /// `-`
    Minus,
    /// `*`
    Star,
    /// `/`
    Slash,
    /// `%`
    Percent,
    /// `!`
    Bang,
    /// A character that starts no token (already reported as L003).
    Error,
    /// End of input (always the last token; its span is empty, at the end of the text).
    Eof,
}

impl TokenKind {
    /// The fixed spelling of punctuation tokens (`None` for words, literals, EOF).
    pub const fn spelling(self) -> Option<&'static str> {
        use TokenKind::*;
        Some(match self {
            LBrace => "{",
            RBrace => "}",
            LParen => "(",
            RParen => ")",
            LBracket => "[",
            RBracket => "]",
            Comma => ",",
            Semi => ";",
            Colon => ":",
            Dot => ".",
            Arrow => "->",
            FatArrow => "=>",
            Eq => "=",
            PlusEq => "+=",
            MinusEq => "-=",
            StarEq => "*=",
            SlashEq => "/=",
            PercentEq => "%=",
            OrOr => "||",
            AndAnd => "&&",
            EqEq => "==",
            NotEq => "!=",
            Lt => "<",
            Gt => ">",
            Le => "<=",
            Ge => ">=",
            Plus => "+",
            Minus => "-",
            Star => "*",
            Slash => "/",
            Percent => "%",
            Bang => "!",
            _ => return None,
        })
    }
}

/// The words the parser may treat as keywords somewhere (GRAMMAR §1.3), pre-classified.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
#[allow(missing_docs)]
pub enum Kw {
    /// Not one of the listed words (or not a word at all).
    None = 0,
    // Reserved words: never an `Ident`.
    If,
    Else,
    For,
    In,
    Match,
    Try,
    Catch,
    Return,
    Let,
    True,
    False,
    Not,
    Null,
    With,
    While,
    Break,
    Continue,
    // Contextual keywords: ordinary identifiers outside their construct.
    Metadata,
    Agent,
    Policy,
    Type,
    Function,
    Schedule,
    Channel,
    Memory,
    Webhook,
    Capabilities,
    Allow,
    Deny,
    Require,
    Audit,
    DataClassification,
    Search,
    Filter,
    /// `_`
    Underscore,
}

impl Kw {
    /// Whether the word is reserved (cannot be an `Ident`, P007).
    pub fn is_reserved(self) -> bool {
        self >= Kw::If && self <= Kw::Continue
    }

    /// Whether the word starts a top-level item.
    pub fn is_item_start(self) -> bool {
        self >= Kw::Metadata && self <= Kw::Webhook
    }

    fn classify(word: &str) -> Kw {
        match word {
            "if" => Kw::If,
            "else" => Kw::Else,
            "for" => Kw::For,
            "in" => Kw::In,
            "match" => Kw::Match,
            "try" => Kw::Try,
            "catch" => Kw::Catch,
            "return" => Kw::Return,
            "let" => Kw::Let,
            "true" => Kw::True,
            "false" => Kw::False,
            "not" => Kw::Not,
            "null" => Kw::Null,
            "with" => Kw::With,
            "while" => Kw::While,
            "break" => Kw::Break,
            "continue" => Kw::Continue,
            "metadata" => Kw::Metadata,
            "agent" => Kw::Agent,
            "policy" => Kw::Policy,
            "type" => Kw::Type,
            "function" => Kw::Function,
            "schedule" => Kw::Schedule,
            "channel" => Kw::Channel,
            "memory" => Kw::Memory,
            "webhook" => Kw::Webhook,
            "capabilities" => Kw::Capabilities,
            "allow" => Kw::Allow,
            "deny" => Kw::Deny,
            "require" => Kw::Require,
            "audit" => Kw::Audit,
            "data_classification" => Kw::DataClassification,
            "search" => Kw::Search,
            "filter" => Kw::Filter,
            "_" => Kw::Underscore,
            _ => Kw::None,
        }
    }
}

/// One token: kind, keyword tag (words only) and span.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Token {
    /// The kind.
    pub kind: TokenKind,
    /// For words: which listed word it is, else [`Kw::None`].
    pub kw: Kw,
    /// Where (byte offsets into the original text, BOM included).
    pub span: Span,
}

/// The lexer's output.
#[derive(Clone, Debug, Default)]
pub struct Lexed {
    /// Tokens without comments, ending with one [`TokenKind::Eof`].
    pub tokens: Vec<Token>,
    /// Comments in source order.
    pub comments: Vec<Comment>,
    /// L00x errors.
    pub diagnostics: Vec<Diagnostic>,
    /// Unknown escapes and the lexical [X] extensions (block comments, `ms`, sizes).
    pub notes: Vec<SyntaxNote>,
    /// Whether an unterminated string or block comment ran to the end of the file (so
    /// that the parser does not pile "unexpected end of file" errors on top).
    pub eof_error: bool,
}

#[derive(Default)]
struct Extras {
    /// Byte offset of the lexed slice inside the original text (3 after a BOM).
    base: u32,
    diagnostics: Vec<Diagnostic>,
    notes: Vec<SyntaxNote>,
    eof_error: bool,
}

impl Extras {
    fn span(&self, r: std::ops::Range<usize>) -> Span {
        Span::new(self.base + r.start as u32, self.base + r.end as u32)
    }
}

#[derive(Logos, Clone, Copy, Debug, PartialEq, Eq)]
#[logos(extras = Extras)]
#[logos(skip r"[ \t\r\n\x0C]+")]
enum Raw {
    #[regex(r"[A-Za-z_][A-Za-z0-9_]*")]
    Word,
    #[regex(r"vault://[A-Za-z0-9_./\-]*")]
    Vault,
    #[regex(r"[0-9]+(_[0-9]+)*", number)]
    Number(TokenKind),
    #[token("\"", string)]
    Str,
    #[regex(r"//[^\r\n]*", allow_greedy = true)]
    LineComment,
    #[regex(r"#[^\r\n]*", allow_greedy = true)]
    HashComment,
    #[token("/*", block_comment)]
    BlockComment,
    #[token("{")]
    LBrace,
    #[token("}")]
    RBrace,
    #[token("(")]
    LParen,
    #[token(")")]
    RParen,
    #[token("[")]
    LBracket,
    #[token("]")]
    RBracket,
    #[token(",")]
    Comma,
    #[token(";")]
    Semi,
    #[token(":")]
    Colon,
    #[token(".")]
    Dot,
    #[token("->")]
    Arrow,
    #[token("=>")]
    FatArrow,
    #[token("=")]
    Eq,
    #[token("+=")]
    PlusEq,
    #[token("-=")]
    MinusEq,
    #[token("*=")]
    StarEq,
    #[token("/=")]
    SlashEq,
    #[token("%=")]
    PercentEq,
    #[token("||")]
    OrOr,
    #[token("&&")]
    AndAnd,
    #[token("==")]
    EqEq,
    #[token("!=")]
    NotEq,
    #[token("<")]
    Lt,
    #[token(">")]
    Gt,
    #[token("<=")]
    Le,
    #[token(">=")]
    Ge,
    #[token("+")]
    Plus,
    #[token("-")]
    Minus,
    #[token("*")]
    Star,
    #[token("/")]
    Slash,
    #[token("%")]
    Percent,
    #[token("!")]
    Bang,
}

#[inline]
fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Number callback: extends the digits with a fraction, a spelled duration or a unit
/// suffix (L-a, L-b, L-c) and validates the whole with [`decode_number`].
fn number(lex: &mut logos::Lexer<Raw>) -> TokenKind {
    let rem = lex.remainder().as_bytes();
    let mut extra = 0usize;
    let mut kind = TokenKind::Int;
    if rem.first() == Some(&b'.') {
        if rem.get(1).is_some_and(u8::is_ascii_digit) {
            extra = 1 + rem[1..].iter().take_while(|b| b.is_ascii_digit()).count();
            kind = TokenKind::Float;
        } else {
            for unit in ["seconds", "minutes", "hours"] {
                let u = unit.as_bytes();
                if rem.len() > u.len()
                    && &rem[1..=u.len()] == u
                    && !rem.get(u.len() + 1).copied().is_some_and(is_word_byte)
                {
                    extra = 1 + u.len();
                    kind = TokenKind::Duration;
                    break;
                }
            }
        }
    }
    // Letters, digits or `_` glued to the number: a unit or an invalid suffix (L-a).
    let suffix = rem[extra..]
        .iter()
        .take_while(|&&b| is_word_byte(b))
        .count();
    if suffix > 0 && kind != TokenKind::Duration {
        extra += suffix;
        if kind == TokenKind::Int {
            let s = &rem[extra - suffix..extra];
            kind = match s {
                b"B" | b"KB" | b"MB" | b"GB" | b"TB" => TokenKind::Size,
                _ => TokenKind::Duration,
            };
        }
    }
    lex.bump(extra);
    let text = lex.slice();
    let span = lex.extras.span(lex.span());
    match decode_number(text) {
        Ok(n) => match n {
            Number::Duration {
                millis_unit: true, ..
            } => lex.extras.notes.push(SyntaxNote {
                kind: SyntaxNoteKind::MillisecondDuration,
                span,
            }),
            Number::Size(_) => lex.extras.notes.push(SyntaxNote {
                kind: SyntaxNoteKind::SizeLiteral,
                span,
            }),
            _ => {}
        },
        Err(e) => lex.extras.diagnostics.push(e.diagnostic(text, span)),
    }
    kind
}

/// String callback: finds the closing quote, validating escapes.
fn string(lex: &mut logos::Lexer<Raw>) {
    let rem = lex.remainder().as_bytes();
    let open = lex.extras.span(lex.span());
    let body_start = open.end;
    let mut i = 0usize;
    loop {
        match rem[i..].iter().position(|&b| b == b'"' || b == b'\\') {
            None => {
                lex.bump(rem.len());
                lex.extras.eof_error = true;
                lex.extras.diagnostics.push(
                    Diagnostic::error("L004", "unterminated string literal", open)
                        .with_primary_label("string starts here")
                        .with_help("add the closing `\"`"),
                );
                return;
            }
            Some(p) => {
                i += p;
                if rem[i] == b'"' {
                    lex.bump(i + 1);
                    return;
                }
                // A backslash: look at the escape.
                let esc_start = body_start + i as u32;
                match rem.get(i + 1) {
                    None => {
                        i += 1;
                        continue; // runs into the unterminated case
                    }
                    Some(b'n' | b't' | b'r' | b'0' | b'\\' | b'"' | b'\'') => i += 2,
                    Some(b'u') => {
                        let (len, ok) = scan_unicode_escape(&rem[i..]);
                        if !ok {
                            lex.extras.diagnostics.push(
                                Diagnostic::error(
                                    "L005",
                                    "invalid `\\u{…}` escape",
                                    Span::new(esc_start, esc_start + len as u32),
                                )
                                .with_help("write 1 to 6 hex digits of a Unicode scalar value, e.g. `\\u{e9}`"),
                            );
                        }
                        i += len;
                    }
                    Some(_) => {
                        let clen = std::str::from_utf8(&rem[i + 1..])
                            .ok()
                            .and_then(|s| s.chars().next())
                            .map(char::len_utf8)
                            .unwrap_or_else(|| utf8_len(rem[i + 1]));
                        lex.extras.notes.push(SyntaxNote {
                            kind: SyntaxNoteKind::UnknownEscape,
                            span: Span::new(esc_start, esc_start + 1 + clen as u32),
                        });
                        i += 1 + clen;
                    }
                }
            }
        }
    }
}

fn utf8_len(first: u8) -> usize {
    match first {
        0x00..=0x7F => 1,
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        _ => 4,
    }
}

/// Scans `\u{…}` at the start of `s`; returns (bytes covered, valid). On an invalid
/// escape the covered length stops before any quote so the string still ends where it
/// should.
fn scan_unicode_escape(s: &[u8]) -> (usize, bool) {
    debug_assert!(s.starts_with(b"\\u"));
    if s.get(2) != Some(&b'{') {
        return (2, false);
    }
    let digits = s[3..].iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if s.get(3 + digits) != Some(&b'}') {
        return (3 + digits, false);
    }
    let len = 4 + digits;
    if digits == 0 || digits > 6 {
        return (len, false);
    }
    let hex = std::str::from_utf8(&s[3..3 + digits]).unwrap_or("");
    let ok = u32::from_str_radix(hex, 16)
        .ok()
        .and_then(char::from_u32)
        .is_some();
    (len, ok)
}

/// Block comment callback: runs to the first `*/` (no nesting).
fn block_comment(lex: &mut logos::Lexer<Raw>) {
    let rem = lex.remainder();
    match rem.find("*/") {
        Some(p) => lex.bump(p + 2),
        None => {
            let open = lex.extras.span(lex.span());
            lex.bump(rem.len());
            lex.extras.eof_error = true;
            lex.extras.diagnostics.push(
                Diagnostic::error("L002", "unterminated block comment", open)
                    .with_primary_label("comment starts here")
                    .with_help("close it with `*/` (block comments do not nest)"),
            );
        }
    }
}

/// Lexes `source` (a BOM at the start is skipped).
pub fn lex(source: &str) -> Lexed {
    let base = if source.starts_with('\u{feff}') { 3 } else { 0 };
    let text = &source[base..];
    let mut lexer = Raw::lexer_with_extras(
        text,
        Extras {
            base: base as u32,
            ..Extras::default()
        },
    );
    let mut tokens = Vec::with_capacity(text.len() / 4 + 1);
    let mut comments = Vec::new();
    while let Some(res) = lexer.next() {
        let span = lexer.extras.span(lexer.span());
        let kind = match res {
            Ok(raw) => match raw {
                Raw::Word => {
                    let kw = Kw::classify(lexer.slice());
                    tokens.push(Token {
                        kind: TokenKind::Word,
                        kw,
                        span,
                    });
                    continue;
                }
                Raw::LineComment | Raw::HashComment | Raw::BlockComment => {
                    let kind = match raw {
                        Raw::LineComment => CommentKind::Line,
                        Raw::HashComment => CommentKind::Hash,
                        _ => {
                            lexer.extras.notes.push(SyntaxNote {
                                kind: SyntaxNoteKind::BlockComment,
                                span,
                            });
                            CommentKind::Block
                        }
                    };
                    comments.push(Comment {
                        kind,
                        text: SmolStr::new(lexer.slice()),
                        span,
                    });
                    continue;
                }
                Raw::Vault => TokenKind::Vault,
                Raw::Number(k) => k,
                Raw::Str => TokenKind::Str,
                Raw::LBrace => TokenKind::LBrace,
                Raw::RBrace => TokenKind::RBrace,
                Raw::LParen => TokenKind::LParen,
                Raw::RParen => TokenKind::RParen,
                Raw::LBracket => TokenKind::LBracket,
                Raw::RBracket => TokenKind::RBracket,
                Raw::Comma => TokenKind::Comma,
                Raw::Semi => TokenKind::Semi,
                Raw::Colon => TokenKind::Colon,
                Raw::Dot => TokenKind::Dot,
                Raw::Arrow => TokenKind::Arrow,
                Raw::FatArrow => TokenKind::FatArrow,
                Raw::Eq => TokenKind::Eq,
                Raw::PlusEq => TokenKind::PlusEq,
                Raw::MinusEq => TokenKind::MinusEq,
                Raw::StarEq => TokenKind::StarEq,
                Raw::SlashEq => TokenKind::SlashEq,
                Raw::PercentEq => TokenKind::PercentEq,
                Raw::OrOr => TokenKind::OrOr,
                Raw::AndAnd => TokenKind::AndAnd,
                Raw::EqEq => TokenKind::EqEq,
                Raw::NotEq => TokenKind::NotEq,
                Raw::Lt => TokenKind::Lt,
                Raw::Gt => TokenKind::Gt,
                Raw::Le => TokenKind::Le,
                Raw::Ge => TokenKind::Ge,
                Raw::Plus => TokenKind::Plus,
                Raw::Minus => TokenKind::Minus,
                Raw::Star => TokenKind::Star,
                Raw::Slash => TokenKind::Slash,
                Raw::Percent => TokenKind::Percent,
                Raw::Bang => TokenKind::Bang,
            },
            Err(()) => {
                // Report each unexpected character once, whole (a multi-byte character
                // may come back as several one-byte errors).
                let r = lexer.span();
                if !text.is_char_boundary(r.start) {
                    continue;
                }
                let c = text[r.start..].chars().next().unwrap_or('\u{fffd}');
                let span = Span::new(span.start, span.start + c.len_utf8() as u32);
                let shown = if c.is_control() {
                    format!("{}", c.escape_default())
                } else {
                    c.to_string()
                };
                let mut d =
                    Diagnostic::error("L003", format!("unexpected character `{shown}`"), span);
                d = match c {
                    '|' | '&' => d.with_help(
                        "the logical operators are `||` and `&&`; there are no bitwise operators",
                    ),
                    '\'' => d.with_help("strings use double quotes"),
                    '?' => d.with_help("there is no `?` operator; use `if … else …`"),
                    c if !c.is_ascii() => {
                        d.with_help("outside strings and comments only ASCII is allowed")
                    }
                    _ => d,
                };
                lexer.extras.diagnostics.push(d);
                if let Some(last) = tokens.last_mut() {
                    // Merge runs of bad characters into one error token.
                    let last: &mut Token = last;
                    if last.kind == TokenKind::Error && last.span.end == span.start {
                        last.span.end = span.end;
                        continue;
                    }
                }
                TokenKind::Error
            }
        };
        tokens.push(Token {
            kind,
            kw: Kw::None,
            span,
        });
    }
    let end = source.len() as u32;
    tokens.push(Token {
        kind: TokenKind::Eof,
        kw: Kw::None,
        span: Span::point(end),
    });
    let Extras {
        diagnostics,
        mut notes,
        eof_error,
        ..
    } = lexer.extras;
    notes.sort_by_key(|n| n.span.start);
    Lexed {
        tokens,
        comments,
        diagnostics,
        notes,
        eof_error,
    }
}

// ---------------------------------------------------------------------------------------
// Literal decoding, shared by lexer (validation) and parser (values)
// ---------------------------------------------------------------------------------------

/// A decoded numeric token.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Number {
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A duration in milliseconds; `millis_unit` when written with `ms` ([X]).
    Duration {
        /// Milliseconds.
        millis: i64,
        /// Written with the `ms` unit.
        millis_unit: bool,
    },
    /// A size in bytes.
    Size(u64),
}

/// Why a numeric token is invalid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NumberError {
    /// L006: does not fit.
    OutOfRange(&'static str),
    /// L007: letters after the number that are no unit.
    InvalidSuffix(String),
    /// L007: a fractional duration (`1.5h`).
    FractionalDuration,
    /// L007: digit separators in a duration (`1_000s`).
    SeparatorInDuration,
    /// L007: a bad digit separator (`1_`, `1__0`).
    BadSeparator,
}

impl NumberError {
    fn diagnostic(&self, text: &str, span: Span) -> Diagnostic {
        match self {
            NumberError::OutOfRange(what) => Diagnostic::error("L006", format!("{what} literal out of range"), span)
                .with_help(match *what {
                    "integer" => "integers are 64-bit signed (at most 9223372036854775807)",
                    "duration" => "a duration must fit in 64-bit signed milliseconds",
                    "size" => "a size must fit in 64-bit unsigned bytes",
                    _ => "floats are 64-bit",
                }),
            NumberError::InvalidSuffix(s) => Diagnostic::error(
                "L007",
                format!("invalid suffix `{s}` on number (durations use s, m, h, d, w, months, y)"),
                span,
            )
            .with_help("durations are written `30s`, `5m`, `2h`, `7d`, `1w`, `6months`, `1y` or `250ms`; sizes `512B`, `8KB`, `64MB`, `1GB`, `2TB`"),
            NumberError::FractionalDuration => Diagnostic::error(
                "L007",
                format!("invalid suffix on number `{text}`: a duration cannot have a fractional part"),
                span,
            )
            .with_help("use a smaller unit, e.g. `90m` instead of `1.5h`"),
            NumberError::SeparatorInDuration => Diagnostic::error(
                "L007",
                format!("invalid duration `{text}`: digit separators are not allowed in durations"),
                span,
            )
            .with_help("write the digits without `_`, e.g. `1000s`"),
            NumberError::BadSeparator => Diagnostic::error(
                "L007",
                format!("invalid digit separator in `{text}`"),
                span,
            )
            .with_help("`_` may only stand between two digits"),
        }
    }
}

const DURATION_UNITS: &[(&str, i64)] = &[
    ("ms", 1),
    ("s", 1_000),
    ("m", 60_000),
    ("h", 3_600_000),
    ("d", 86_400_000),
    ("w", 7 * 86_400_000),
    ("months", 30 * 86_400_000),
    ("y", 365 * 86_400_000),
    (".seconds", 1_000),
    (".minutes", 60_000),
    (".hours", 3_600_000),
];

const SIZE_UNITS: &[(&str, u64)] = &[
    ("B", 1),
    ("KB", 1 << 10),
    ("MB", 1 << 20),
    ("GB", 1 << 30),
    ("TB", 1 << 40),
];

/// Decodes the text of an [`TokenKind::Int`], [`TokenKind::Float`],
/// [`TokenKind::Duration`] or [`TokenKind::Size`] token.
pub fn decode_number(text: &str) -> Result<Number, NumberError> {
    let b = text.as_bytes();
    let int_end = {
        // digits with single `_` between digit groups
        let mut i = 0;
        while i < b.len()
            && (b[i].is_ascii_digit()
                || (b[i] == b'_'
                    && i + 1 < b.len()
                    && b[i + 1].is_ascii_digit()
                    && i > 0
                    && b[i - 1].is_ascii_digit()))
        {
            i += 1;
        }
        i
    };
    let int_part = &text[..int_end];
    let rest = &text[int_end..];
    let has_sep = int_part.contains('_');
    if let Some(frac) = rest
        .strip_prefix('.')
        .filter(|f| f.as_bytes().first().is_some_and(u8::is_ascii_digit))
    {
        let frac_end = frac.bytes().take_while(u8::is_ascii_digit).count();
        if frac_end < frac.len() {
            let suffix = &frac[frac_end..];
            return Err(if DURATION_UNITS.iter().any(|(u, _)| *u == suffix) {
                NumberError::FractionalDuration
            } else {
                NumberError::InvalidSuffix(suffix.to_string())
            });
        }
        let digits: String = int_part.chars().filter(|&c| c != '_').collect();
        let f: f64 = format!("{digits}.{frac}")
            .parse()
            .map_err(|_| NumberError::OutOfRange("float"))?;
        return if f.is_finite() {
            Ok(Number::Float(f))
        } else {
            Err(NumberError::OutOfRange("float"))
        };
    }
    if rest.is_empty() {
        return parse_digits(int_part)
            .map(Number::Int)
            .ok_or(NumberError::OutOfRange("integer"));
    }
    if let Some(after) = rest.strip_prefix('_') {
        return Err(if after.bytes().all(|c| c.is_ascii_digit() || c == b'_') {
            NumberError::BadSeparator
        } else {
            NumberError::InvalidSuffix(rest.to_string())
        });
    }
    if let Some(&(_, mult)) = DURATION_UNITS.iter().find(|(u, _)| *u == rest) {
        if has_sep {
            return Err(NumberError::SeparatorInDuration);
        }
        let n = parse_digits(int_part).ok_or(NumberError::OutOfRange("duration"))?;
        let millis = n
            .checked_mul(mult)
            .ok_or(NumberError::OutOfRange("duration"))?;
        return Ok(Number::Duration {
            millis,
            millis_unit: rest == "ms",
        });
    }
    if let Some(&(_, mult)) = SIZE_UNITS.iter().find(|(u, _)| *u == rest) {
        let digits: String = int_part.chars().filter(|&c| c != '_').collect();
        let n: u64 = digits
            .parse()
            .map_err(|_| NumberError::OutOfRange("size"))?;
        return n
            .checked_mul(mult)
            .map(Number::Size)
            .ok_or(NumberError::OutOfRange("size"));
    }
    Err(NumberError::InvalidSuffix(rest.to_string()))
}

fn parse_digits(s: &str) -> Option<i64> {
    let mut v: i64 = 0;
    for c in s.bytes() {
        if c == b'_' {
            continue;
        }
        v = v.checked_mul(10)?.checked_add((c - b'0') as i64)?;
    }
    Some(v)
}

/// Decodes a [`TokenKind::Str`] token's text (quotes included) to its value: escapes
/// resolved (unknown ones kept verbatim, backslash included; invalid `\u{…}` kept
/// verbatim too — the lexer has reported it), CR LF and lone CR turned into LF.
pub fn decode_string(text: &str) -> SmolStr {
    let body = text.strip_prefix('"').unwrap_or(text);
    let body = body
        .strip_suffix('"')
        .filter(|_| text.len() >= 2)
        .unwrap_or(body);
    if !body.bytes().any(|b| b == b'\\' || b == b'\r') {
        return SmolStr::new(body);
    }
    let mut out = String::with_capacity(body.len());
    let b = body.as_bytes();
    let mut i = 0;
    let mut run = 0; // start of the pending verbatim run
    while i < b.len() {
        match b[i] {
            b'\r' => {
                out.push_str(&body[run..i]);
                out.push('\n');
                i += if b.get(i + 1) == Some(&b'\n') { 2 } else { 1 };
                run = i;
            }
            b'\\' if i + 1 < b.len() => {
                out.push_str(&body[run..i]);
                let simple = match b[i + 1] {
                    b'n' => Some('\n'),
                    b't' => Some('\t'),
                    b'r' => Some('\r'),
                    b'0' => Some('\0'),
                    b'\\' => Some('\\'),
                    b'"' => Some('"'),
                    b'\'' => Some('\''),
                    _ => None,
                };
                if let Some(c) = simple {
                    out.push(c);
                    i += 2;
                } else if b[i + 1] == b'u' {
                    let (len, ok) = scan_unicode_escape(&b[i..]);
                    if ok {
                        let hex = &body[i + 3..i + len - 1];
                        out.push(
                            u32::from_str_radix(hex, 16)
                                .ok()
                                .and_then(char::from_u32)
                                .unwrap_or('\u{fffd}'),
                        );
                    } else {
                        out.push_str(&body[i..i + len]);
                    }
                    i += len;
                } else {
                    // Unknown escape: kept verbatim, backslash included (W229).
                    out.push('\\');
                    i += 1;
                }
                run = i;
            }
            _ => i += 1,
        }
    }
    out.push_str(&body[run..]);
    SmolStr::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(src: &str) -> Vec<TokenKind> {
        lex(src).tokens.iter().map(|t| t.kind).collect()
    }

    fn codes(src: &str) -> Vec<&'static str> {
        lex(src).diagnostics.iter().map(|d| d.code).collect()
    }

    use TokenKind::*;

    #[test]
    fn punctuation_longest_match() {
        assert_eq!(
            kinds("<= => -> == != && || += -= *= /= %= >= < > = !"),
            [
                Le, FatArrow, Arrow, EqEq, NotEq, AndAnd, OrOr, PlusEq, MinusEq, StarEq, SlashEq,
                PercentEq, Ge, Lt, Gt, Eq, Bang, Eof
            ]
        );
        assert_eq!(
            kinds("Map<String,Array<int>>"),
            [Word, Lt, Word, Comma, Word, Lt, Word, Gt, Gt, Eof]
        );
    }

    #[test]
    fn durations_sizes_and_suffixes() {
        assert_eq!(
            kinds("30s 5m 2h 7d 1w 6months 1y 250ms 30.seconds 5.minutes 2.hours"),
            [
                Duration, Duration, Duration, Duration, Duration, Duration, Duration, Duration,
                Duration, Duration, Duration, Eof
            ]
        );
        assert_eq!(
            decode_number("6months"),
            Ok(Number::Duration {
                millis: 30 * 86_400_000 * 6,
                millis_unit: false
            })
        );
        assert_eq!(
            decode_number("10ms"),
            Ok(Number::Duration {
                millis: 10,
                millis_unit: true
            })
        );
        assert_eq!(kinds("512MB 1KB 2B"), [Size, Size, Size, Eof]);
        assert_eq!(decode_number("512MB"), Ok(Number::Size(512 << 20)));
        assert_eq!(codes("5min"), ["L007"]);
        assert_eq!(codes("90_days"), ["L007"]);
        assert_eq!(codes("3px 10mb"), ["L007", "L007"]);
        assert_eq!(codes("1.5h"), ["L007"]);
        assert_eq!(codes("1_000s"), ["L007"]);
        assert_eq!(codes("1_"), ["L007"]);
        assert_eq!(codes("100_000_000 1_0"), Vec::<&str>::new());
        // spelled form vs member access (L-b)
        assert_eq!(kinds("5.days"), [Int, Dot, Word, Eof]);
        assert_eq!(kinds("5.secondsx"), [Int, Dot, Word, Eof]);
    }

    #[test]
    fn floats_and_members() {
        assert_eq!(
            kinds("1.5 1.x x.0"),
            [Float, Int, Dot, Word, Word, Dot, Int, Eof]
        );
        assert_eq!(kinds("1."), [Int, Dot, Eof]);
        assert_eq!(kinds(".5"), [Dot, Int, Eof]);
        assert_eq!(decode_number("1_000.25"), Ok(Number::Float(1000.25)));
    }

    #[test]
    fn out_of_range() {
        assert_eq!(codes("9223372036854775807"), Vec::<&str>::new());
        assert_eq!(codes("9223372036854775808"), ["L006"]);
        assert_eq!(codes("200000000000y"), ["L006"]);
        assert_eq!(codes("99999999999TB"), ["L006"]);
        let big = format!("{}.0", "9".repeat(400));
        assert_eq!(codes(&big), ["L006"]);
    }

    #[test]
    fn strings_and_escapes() {
        let l = lex(r#""a\n\u{e9}\d+" "x"#);
        assert_eq!(l.tokens.len(), 3);
        assert_eq!(
            l.diagnostics.iter().map(|d| d.code).collect::<Vec<_>>(),
            ["L004"]
        );
        assert_eq!(l.diagnostics[0].span, Span::new(15, 16));
        assert!(l.eof_error);
        assert_eq!(
            l.notes,
            [SyntaxNote {
                kind: SyntaxNoteKind::UnknownEscape,
                span: Span::new(10, 12)
            }]
        );
        assert_eq!(decode_string(r#""a\n\u{e9}\d+""#), "a\né\\d+");
        assert_eq!(
            codes(r#""\u{d800}" "\u{110000}" "\u{}" "\u{1234567}" "\u12""#),
            ["L005"; 5]
        );
        assert_eq!(decode_string("\"a\r\nb\rc\""), "a\nb\nc");
        assert_eq!(decode_string(r#""\"\\\'\t\0""#), "\"\\'\t\0");
        assert_eq!(kinds(r##""# not a comment // nor this""##), [Str, Eof]);
    }

    #[test]
    fn comments_are_kept() {
        let l = lex("a # one\n// two\r/* three\n */ b /* x");
        assert_eq!(
            l.tokens.iter().map(|t| t.kind).collect::<Vec<_>>(),
            [Word, Word, Eof]
        );
        let c: Vec<_> = l
            .comments
            .iter()
            .map(|c| (c.kind, c.text.as_str()))
            .collect();
        assert_eq!(
            c,
            [
                (CommentKind::Hash, "# one"),
                (CommentKind::Line, "// two"),
                (CommentKind::Block, "/* three\n */"),
                (CommentKind::Block, "/* x")
            ]
        );
        assert_eq!(
            l.diagnostics.iter().map(|d| d.code).collect::<Vec<_>>(),
            ["L002"]
        );
        assert_eq!(l.diagnostics[0].span.start, 30);
    }

    #[test]
    fn vault_tokens() {
        assert_eq!(
            kinds("vault://api/keys[name]"),
            [Vault, LBracket, Word, RBracket, Eof]
        );
        assert_eq!(
            kinds("{ vault: 1 }"),
            [LBrace, Word, Colon, Int, RBrace, Eof]
        );
        assert_eq!(kinds("vault://llm/openai/api_key-2.x"), [Vault, Eof]);
    }

    #[test]
    fn unexpected_characters() {
        assert_eq!(codes("a | b & c ^ ~ ? 'x' é"), ["L003"; 8]);
        let l = lex("x = é;");
        assert_eq!(l.diagnostics[0].message, "unexpected character `é`");
        assert_eq!(l.diagnostics[0].span, Span::new(4, 6));
        assert_eq!(kinds("a ||| b"), [Word, OrOr, Error, Word, Eof]);
        assert_eq!(kinds("\u{feff}a"), [Word, Eof]);
        assert_eq!(lex("\u{feff}a").tokens[0].span, Span::new(3, 4));
        assert_eq!(codes("a \u{feff}"), ["L003"]);
    }

    #[test]
    fn keyword_tags() {
        let l = lex("let lets _ data_classification");
        let kws: Vec<_> = l.tokens.iter().map(|t| t.kw).collect();
        assert_eq!(
            kws,
            [
                Kw::Let,
                Kw::None,
                Kw::Underscore,
                Kw::DataClassification,
                Kw::None
            ]
        );
        assert!(Kw::Continue.is_reserved() && !Kw::Metadata.is_reserved());
    }
}
