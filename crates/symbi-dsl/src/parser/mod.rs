//! The parser (GRAMMAR §2, §3): tokens → [`Program`], with error recovery.
//!
//! Hand-written recursive descent with precedence climbing for binary operators, in the
//! style of rust-analyzer: every production of §2 is one method, every ambiguity rule
//! D1–D21 is implemented where the production needs it and cited there. At most three
//! tokens of lookahead are used.
//!
//! **Errors.** A failing construct reports one diagnostic (P00x, see §6.1 for positions)
//! and returns [`Fail`]; the innermost list that contains it (statements of a block, items
//! of an agent, rules of a policy, top-level items) then skips ahead (D21): to the next
//! `;`, to the `}` that closes the current block, or to a word that starts a top-level
//! item at column 1, and goes on. Errors are capped at [`MAX_ERRORS`]. The partial program
//! keeps every construct that parsed. Diagnostics caused by a token the lexer already
//! reported (an unexpected character, an unterminated string) are not repeated.
//!
//! **Limits.** Nesting (blocks, parentheses, operator chains) is limited to
//! [`MAX_NESTING`] levels so that no later recursive pass can overflow a thread stack;
//! deeper input is error P001 "nesting too deep".
//!
//! ```
//! let parsed = symbi_dsl::parse("agent a { with { return 1 + 2; } }", "a.symbi");
//! assert!(parsed.diagnostics.is_empty());
//! assert_eq!(parsed.program.items.len(), 1);
//! ```

mod exprs;
mod items;
mod stmts;

use crate::ast::{Ident, Program, SyntaxNote, SyntaxNoteKind};
use crate::diagnostic::{Diagnostic, SourceFile};
use crate::lexer::{self, Kw, Token, TokenKind};
use crate::span::{MAX_SOURCE_LEN, Span};
use smol_str::SmolStr;
use std::sync::Arc;

/// At most this many errors are reported for one file (D21).
pub const MAX_ERRORS: usize = 50;

/// Maximum nesting depth of blocks, parentheses and operator chains. Later passes over
/// the tree (checker, interpreter, formatter) may rely on it: an AST is never deeper.
pub const MAX_NESTING: u32 = 128;

/// Runs `f` with at least 128 KiB of stack left, switching to a fresh 2 MiB segment when
/// the current one runs low (debug builds use several KiB per nesting level). Recursive
/// passes over the AST should wrap their recursion in it too.
#[inline]
pub fn with_stack<R>(f: impl FnOnce() -> R) -> R {
    stacker::maybe_grow(128 * 1024, 2 * 1024 * 1024, f)
}

/// The result of parsing one file.
#[derive(Clone, Debug)]
pub struct Parsed {
    /// The (possibly partial) program.
    pub program: Program,
    /// Lexical and syntax diagnostics, in source order.
    pub diagnostics: Vec<Diagnostic>,
    /// The file (name, text, line index) the spans refer to.
    pub source: Arc<SourceFile>,
}

impl Parsed {
    /// Whether any diagnostic is an error (then the program must not be loaded).
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    /// All diagnostics in the human form of GRAMMAR §6.1, concatenated.
    pub fn render_diagnostics(&self) -> String {
        self.diagnostics
            .iter()
            .map(|d| self.source.render(d))
            .collect()
    }
}

/// Parses `source`, naming it `file` in diagnostics.
///
/// ```
/// let p = symbi_dsl::parse("agent a { let x = 1; }", "bad.symbi");
/// assert_eq!(p.diagnostics[0].code, "P004");
/// assert!(p.render_diagnostics().starts_with("bad.symbi:1:11: error: "));
/// ```
pub fn parse(source: &str, file: &str) -> Parsed {
    parse_source(Arc::new(SourceFile::new(file, source)))
}

/// Parses an already loaded [`SourceFile`] (no copy of the text).
pub fn parse_source(source: Arc<SourceFile>) -> Parsed {
    let (program, diagnostics) = parse_text(source.text());
    Parsed {
        program,
        diagnostics,
        source,
    }
}

/// Parses raw file bytes: invalid UTF-8 is error L001 at the first bad byte (and nothing
/// else is parsed).
pub fn parse_bytes(bytes: &[u8], file: &str) -> Parsed {
    match std::str::from_utf8(bytes) {
        Ok(text) => parse(text, file),
        Err(e) => {
            let good = e.valid_up_to();
            // Keep the valid prefix as the text so the position can be shown.
            let text = std::str::from_utf8(&bytes[..good]).unwrap_or("");
            let source = Arc::new(SourceFile::new(file, text));
            let d = Diagnostic::error("L001", "invalid UTF-8", Span::point(good as u32)).with_help(
                format!("byte {good} of the file is not valid UTF-8; symbi source files are UTF-8"),
            );
            let program = empty_program(text.len() as u32);
            Parsed {
                program,
                diagnostics: vec![d],
                source,
            }
        }
    }
}

fn empty_program(len: u32) -> Program {
    Program {
        items: Vec::new(),
        comments: Vec::new(),
        syntax_notes: Vec::new(),
        span: Span::new(0, len),
    }
}

/// Parses `source` into a program and its diagnostics (no [`SourceFile`] is built).
pub fn parse_text(source: &str) -> (Program, Vec<Diagnostic>) {
    if source.len() > MAX_SOURCE_LEN {
        let d = Diagnostic::error(
            "L008",
            "source file too large (more than 4 GiB)",
            Span::point(0),
        );
        return (empty_program(0), vec![d]);
    }
    let lexed = lexer::lex(source);
    let mut p = Parser {
        src: source,
        toks: lexed.tokens,
        pos: 0,
        diags: Vec::new(),
        errors: lexed.diagnostics.len(),
        notes: Vec::new(),
        eof_error: lexed.eof_error,
        unwinding: false,
        aborted: lexed.diagnostics.len() >= MAX_ERRORS,
        depth: 0,
        local_items: &[],
    };
    let items = p.program();
    let mut diagnostics = lexed.diagnostics;
    diagnostics.extend(p.diags);
    diagnostics.sort_by_key(|d| d.span.start);
    // Parse-stage diagnostics are all errors; a file full of bad characters is capped too.
    diagnostics.truncate(MAX_ERRORS);
    let mut notes = lexed.notes;
    notes.extend(p.notes);
    notes.sort_by_key(|n| n.span.start);
    let program = Program {
        items,
        comments: lexed.comments,
        syntax_notes: notes,
        span: Span::new(0, source.len() as u32),
    };
    (program, diagnostics)
}

/// Marker: the construct failed and its error was reported (or suppressed as a
/// consequence of an earlier one).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fail;

pub(crate) type PResult<T> = Result<T, Fail>;

pub(crate) struct Parser<'s> {
    src: &'s str,
    toks: Vec<Token>,
    pos: usize,
    diags: Vec<Diagnostic>,
    /// Errors so far, lexical ones included.
    errors: usize,
    notes: Vec<SyntaxNote>,
    /// The lexer ran into EOF inside a string or comment: EOF errors are consequences.
    eof_error: bool,
    /// Recovery stopped at a top-level item word at column 1: every open construct
    /// closes silently until the top-level loop takes over.
    unwinding: bool,
    /// [`MAX_ERRORS`] reached: stop.
    aborted: bool,
    depth: u32,
    /// Item keywords that are valid entries of the list being parsed (`policy` and
    /// `function` in an agent body, `policy` in a channel): at column 1 they are not
    /// taken as the start of a new top-level item.
    local_items: &'static [Kw],
}

/// Help line of P002.
const SEMI_HELP: &str = "statements other than if/for/while/match/try end with a semicolon";

impl<'s> Parser<'s> {
    // --- token access ------------------------------------------------------------------

    #[inline]
    fn tok(&self) -> Token {
        self.toks[self.pos]
    }

    #[inline]
    fn nth(&self, n: usize) -> Token {
        self.toks[(self.pos + n).min(self.toks.len() - 1)]
    }

    #[inline]
    fn kind(&self) -> TokenKind {
        self.toks[self.pos].kind
    }

    #[inline]
    fn nth_kind(&self, n: usize) -> TokenKind {
        self.nth(n).kind
    }

    #[inline]
    fn at(&self, k: TokenKind) -> bool {
        self.kind() == k
    }

    /// Whether the current token is the word with keyword tag `kw`.
    #[inline]
    fn at_kw(&self, kw: Kw) -> bool {
        let t = self.tok();
        t.kind == TokenKind::Word && t.kw == kw
    }

    #[inline]
    fn at_eof(&self) -> bool {
        self.kind() == TokenKind::Eof
    }

    #[inline]
    fn bump(&mut self) -> Token {
        let t = self.toks[self.pos];
        if t.kind != TokenKind::Eof {
            self.pos += 1;
        }
        t
    }

    #[inline]
    fn eat(&mut self, k: TokenKind) -> Option<Token> {
        if self.at(k) { Some(self.bump()) } else { None }
    }

    /// End offset of the previous token (position of a missing token, §6.1).
    fn prev_end(&self) -> u32 {
        if self.pos == 0 {
            self.toks[0].span.start
        } else {
            self.toks[self.pos - 1].span.end
        }
    }

    #[inline]
    fn text(&self, t: Token) -> &'s str {
        t.span.text(self.src)
    }

    /// Whether the token starts at column 1.
    fn at_column_1(&self, t: Token) -> bool {
        let s = t.span.start as usize;
        s == 0
            || (s == 3 && self.src.starts_with('\u{feff}'))
            || matches!(
                self.src.as_bytes().get(s.wrapping_sub(1)),
                Some(b'\n' | b'\r')
            )
    }

    /// A word that starts a top-level item, followed by what such an item needs next
    /// (a name, or `{` after `metadata`).
    fn at_item_start(&self) -> bool {
        let t = self.tok();
        if t.kind != TokenKind::Word || !t.kw.is_item_start() {
            return false;
        }
        match t.kw {
            Kw::Metadata => self.nth_kind(1) == TokenKind::LBrace,
            _ => self.nth_kind(1) == TokenKind::Word,
        }
    }

    /// [`Self::at_item_start`] at column 1: a recovery point and the sign of an unclosed
    /// block before it (D21).
    fn at_item_restart(&self) -> bool {
        self.at_item_start()
            && self.at_column_1(self.tok())
            && !self.local_items.contains(&self.tok().kw)
    }

    // --- diagnostics -------------------------------------------------------------------

    /// Source spelling of a token for "found …".
    fn describe(&self, t: Token) -> String {
        match t.kind {
            TokenKind::Eof => "end of file".to_string(),
            _ => {
                let text = self.text(t);
                let mut shown: String = text.chars().take(32).collect();
                if let Some(i) = shown.find(['\n', '\r']) {
                    shown.truncate(i);
                    shown.push('…');
                } else if shown.len() < text.len() {
                    shown.push('…');
                }
                format!("`{shown}`")
            }
        }
    }

    fn found(&self) -> String {
        self.describe(self.tok())
    }

    /// Records an error unless it is a consequence of an already reported one.
    fn report(&mut self, d: Diagnostic) -> Fail {
        let t = self.tok();
        let consequence =
            t.kind == TokenKind::Error || (t.kind == TokenKind::Eof && self.eof_error);
        if consequence || self.aborted {
            return Fail;
        }
        self.errors += 1;
        self.diags.push(d);
        if self.errors >= MAX_ERRORS {
            self.aborted = true;
        }
        Fail
    }

    /// P001 at the current token: "expected {what}, found …".
    fn unexpected(&mut self, what: &str) -> Fail {
        let span = self.tok().span;
        let msg = format!("expected {what}, found {}", self.found());
        self.report(Diagnostic::error("P001", msg, span))
    }

    /// P001 at the current token with a help line.
    fn unexpected_help(&mut self, what: &str, help: &str) -> Fail {
        let span = self.tok().span;
        let msg = format!("expected {what}, found {}", self.found());
        self.report(Diagnostic::error("P001", msg, span).with_help(help))
    }

    /// A missing token: reported just after the previous token (§6.1).
    fn missing(&mut self, what: &str, context: &str) -> Fail {
        let msg = format!("expected {what} {context}, found {}", self.found());
        let d = Diagnostic::error("P001", msg, Span::point(self.prev_end()))
            .with_primary_label(format!("expected {what}"));
        self.report(d)
    }

    /// Expects token `k` (reported as missing after the previous token).
    fn expect(&mut self, k: TokenKind, context: &str) -> PResult<Token> {
        if let Some(t) = self.eat(k) {
            return Ok(t);
        }
        let what = format!("`{}`", k.spelling().unwrap_or("?"));
        Err(self.missing(&what, context))
    }

    /// P002 "expected `;` after …".
    fn expect_semi(&mut self, after: &str) -> PResult<Token> {
        if let Some(t) = self.eat(TokenKind::Semi) {
            return Ok(t);
        }
        let mut d = Diagnostic::error(
            "P002",
            format!("expected `;` after {after}"),
            Span::point(self.prev_end()),
        )
        .with_primary_label("add `;` here");
        // D16: `a not in b` has no operator `not in`.
        if self.at_kw(Kw::Not) && self.nth(1).kind == TokenKind::Word && self.nth(1).kw == Kw::In {
            d = d.with_help("there is no `not in` operator; write `!(a in b)`");
        } else {
            d = d.with_help(SEMI_HELP);
        }
        Err(self.report(d))
    }

    /// Consumes the `closer` of a group opened at `open`; at end of file reports P003
    /// with the opener as a secondary label. While unwinding, closes silently.
    fn close(&mut self, closer: TokenKind, open: Span, what: &str) -> PResult<Span> {
        if let Some(t) = self.eat(closer) {
            return Ok(t.span);
        }
        let c = closer.spelling().unwrap_or("}");
        let o = self.text_at(open);
        if self.unwinding || self.aborted {
            return Ok(Span::point(self.prev_end()));
        }
        if self.at_eof() {
            let end = self.src.len() as u32;
            let d = Diagnostic::error(
                "P003",
                format!("unclosed `{o}`: expected `{c}`, found end of file"),
                Span::point(end),
            )
            .with_primary_label(format!("expected `{c}`"))
            .with_label(open, format!("unclosed `{o}` opened here"));
            self.report(d);
            self.unwinding = true;
            return Ok(Span::point(end));
        }
        if self.at_item_restart() {
            // A new item at column 1 inside an open block: the block was not closed.
            let d = Diagnostic::error(
                "P003",
                format!(
                    "unclosed `{o}`: expected `{c}` to close {what}, found {}",
                    self.found()
                ),
                Span::point(self.prev_end()),
            )
            .with_primary_label(format!("expected `{c}`"))
            .with_label(open, format!("unclosed `{o}` opened here"));
            self.report(d);
            self.unwinding = true;
            return Ok(Span::point(self.prev_end()));
        }
        let span = self.tok().span;
        let msg = format!("expected `{c}` to close {what}, found {}", self.found());
        let d = Diagnostic::error("P001", msg, span).with_label(open, format!("`{o}` opened here"));
        Err(self.report(d))
    }

    fn text_at(&self, s: Span) -> &'s str {
        s.text(self.src)
    }

    // --- names -------------------------------------------------------------------------

    /// An `Ident` (a word that is not reserved). A reserved word is reported (P007) and
    /// accepted so parsing goes on with the intended structure.
    fn ident(&mut self, what: &str) -> PResult<Ident> {
        let t = self.tok();
        if t.kind != TokenKind::Word {
            return Err(self.unexpected(what));
        }
        if t.kw.is_reserved() {
            let text = self.text(t);
            let d = Diagnostic::error(
                "P007",
                format!("reserved word `{text}` cannot be used as a name"),
                t.span,
            )
            .with_help(reserved_help(t.kw));
            self.report(d);
        }
        self.bump();
        Ok(Ident::new(SmolStr::new(self.text(t)), t.span))
    }

    /// A `Name` (any word, D1).
    fn name(&mut self, what: &str) -> PResult<Ident> {
        let t = self.tok();
        if t.kind != TokenKind::Word {
            return Err(self.unexpected(what));
        }
        self.bump();
        Ok(Ident::new(SmolStr::new(self.text(t)), t.span))
    }

    fn note(&mut self, kind: SyntaxNoteKind, span: Span) {
        self.notes.push(SyntaxNote { kind, span });
    }

    // --- nesting -----------------------------------------------------------------------

    fn enter(&mut self) -> PResult<()> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            let span = self.tok().span;
            let d = Diagnostic::error(
                "P001",
                format!("nesting too deep (more than {MAX_NESTING} levels)"),
                span,
            )
            .with_help("split the expression or block into smaller functions or variables");
            // Report once: the whole nest unwinds with this error.
            let already = self
                .diags
                .last()
                .is_some_and(|l| l.message.starts_with("nesting too deep"));
            if !already {
                self.report(d);
            }
            self.depth -= 1;
            return Err(Fail);
        }
        Ok(())
    }

    #[inline]
    fn leave(&mut self) {
        self.depth -= 1;
    }

    // --- recovery (D21) ----------------------------------------------------------------

    /// Skips ahead after an error in a construct that started at token `start`: to just
    /// after the next `;`, to (not past) the `}` closing the current block, or to a
    /// top-level item word at column 1 (then unwinding). Braces are balanced, counting
    /// from `start` so that a `{` opened inside the failed construct is skipped whole.
    fn recover(&mut self, start: usize) {
        // Only braces count: `(`/`[` groups cannot contain a statement's `;` except
        // inside a brace group of their own, so an unclosed `(` never hides the `;`.
        let mut depth: i32 = 0;
        for t in &self.toks[start.min(self.pos)..self.pos] {
            match t.kind {
                TokenKind::LBrace => depth += 1,
                TokenKind::RBrace => depth = (depth - 1).max(0),
                _ => {}
            }
        }
        loop {
            let t = self.tok();
            match t.kind {
                TokenKind::Eof => return,
                TokenKind::Semi if depth == 0 => {
                    self.bump();
                    return;
                }
                TokenKind::RBrace if depth == 0 => return,
                TokenKind::LBrace => depth += 1,
                TokenKind::RBrace => depth -= 1,
                TokenKind::Word if self.at_item_restart() => {
                    self.unwinding = true;
                    return;
                }
                _ => {}
            }
            self.bump();
        }
    }

    /// Skips a balanced group starting at the current opener (or one token).
    fn skip_group_or_token(&mut self) {
        let open = self.kind();
        if !matches!(
            open,
            TokenKind::LBrace | TokenKind::LParen | TokenKind::LBracket
        ) {
            self.bump();
            return;
        }
        let mut depth = 0i32;
        loop {
            match self.kind() {
                TokenKind::Eof => return,
                TokenKind::LBrace | TokenKind::LParen | TokenKind::LBracket => depth += 1,
                TokenKind::RBrace | TokenKind::RParen | TokenKind::RBracket => {
                    depth -= 1;
                    if depth <= 0 {
                        self.bump();
                        return;
                    }
                }
                _ => {}
            }
            self.bump();
        }
    }

    /// Skips to just after the closer matching an already consumed opener (used inside
    /// parameter and argument lists).
    fn skip_past_closer(&mut self, closer: TokenKind) {
        let mut depth = 0i32;
        loop {
            let k = self.kind();
            match k {
                TokenKind::Eof => return,
                TokenKind::RBrace if depth == 0 && closer != TokenKind::RBrace => return,
                TokenKind::Semi if depth == 0 => return,
                _ if k == closer && depth == 0 => {
                    self.bump();
                    return;
                }
                TokenKind::LBrace | TokenKind::LParen | TokenKind::LBracket => depth += 1,
                TokenKind::RBrace | TokenKind::RParen | TokenKind::RBracket => {
                    depth = (depth - 1).max(0)
                }
                _ => {}
            }
            self.bump();
        }
    }

    /// Whether a list loop must stop (closing brace, end, unwinding, too many errors).
    fn list_done(&self, closer: TokenKind) -> bool {
        self.at(closer) || self.at_eof() || self.unwinding || self.aborted
    }

    /// Safety net of every list loop: if an iteration consumed nothing and nothing stops
    /// the loop, skip one token so that the loop always terminates.
    fn ensure_progress(&mut self, before: usize, closer: TokenKind) {
        if self.pos == before && !self.list_done(closer) && !self.at_item_restart() {
            self.bump();
        }
    }
}

fn reserved_help(kw: Kw) -> &'static str {
    match kw {
        Kw::While | Kw::Break | Kw::Continue => {
            "`while`, `break` and `continue` are reserved in symbi (extension [X]); choose another name"
        }
        _ => {
            "reserved words (if, else, for, in, match, try, catch, return, let, true, false, not, null, with, while, break, continue) cannot name variables, parameters or items"
        }
    }
}
