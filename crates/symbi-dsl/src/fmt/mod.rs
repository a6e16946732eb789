//! The formatter (GRAMMAR §6.4): canonical layout, every comment kept, idempotent, never
//! changes meaning.
//!
//! Style: four-space indentation, at most 100 columns where a construct can break; one
//! blank line between top-level items; blank lines between statements, agent items,
//! rules, properties and arms are kept (at most one); `key: value,` in metadata,
//! schedules and channels; `key value` with aligned values in memory and webhook blocks;
//! `capabilities = [a, b]`; `with a = 1, b = 2 {` on one line when it fits, otherwise one
//! attribute per line after `with`; one rule per line in policies; records, arrays,
//! argument and parameter lists flat when they fit, otherwise one element per line with a
//! trailing comma (a last argument that is a record, array or lambda may stay on the call's
//! line: `f(x, {` … `})`). Literals are printed exactly as written.
//!
//! Comments attach positionally (see [`crate::ast`]): a comment on the same line after an
//! element stays there; any other comment goes on its own line before the next element.
//!
//! Safety: [`format_source`] re-parses its output and checks that the program is the same
//! modulo spans and that every comment is still there; otherwise it returns
//! [`FormatError::ChangedMeaning`] and the caller keeps the file as it was.
//!
//! ```
//! let out = symbi_dsl::fmt::format_source("agent a{with timeout=1s{return 1+2;}}").unwrap();
//! assert_eq!(out, "agent a {\n    with timeout = 1s {\n        return 1 + 2;\n    }\n}\n");
//! ```

pub mod doc;

use crate::ast::*;
use crate::diagnostic::Diagnostic;
use crate::span::Span;
use doc::{Doc, concat, group, nest, text};

/// The line width the formatter aims for.
pub const WIDTH: usize = 100;

/// Why a file was not formatted.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// The file has syntax errors; only valid files are formatted.
    #[error("the file has {} syntax error(s); fix them before formatting", .diagnostics.iter().filter(|d| d.is_error()).count())]
    Syntax {
        /// The parser's diagnostics.
        diagnostics: Vec<Diagnostic>,
    },
    /// The formatted text would not parse to the same program (a formatter bug; the
    /// input is left untouched).
    #[error(
        "internal formatter error: the formatted text would change the program ({0}); the file was left unchanged"
    )]
    ChangedMeaning(&'static str),
}

/// Formats a source text: parses it, prints it canonically and verifies the result.
pub fn format_source(source: &str) -> Result<String, FormatError> {
    let (program, diagnostics) = crate::parser::parse_text(source);
    if diagnostics.iter().any(Diagnostic::is_error) {
        return Err(FormatError::Syntax { diagnostics });
    }
    let out = format_program(&program, source);
    let (again, diags) = crate::parser::parse_text(&out);
    if diags.iter().any(Diagnostic::is_error) {
        return Err(FormatError::ChangedMeaning("output does not parse"));
    }
    if again.comments.len() != program.comments.len() {
        return Err(FormatError::ChangedMeaning("a comment was lost"));
    }
    if !again.eq_modulo_spans(&program) {
        return Err(FormatError::ChangedMeaning("the syntax tree differs"));
    }
    Ok(out)
}

/// Prints `program`, which must have been parsed from `source` without errors (the text
/// of literals and comments is taken from `source`).
pub fn format_program(program: &Program, source: &str) -> String {
    let mut p = Printer {
        src: source,
        comments: &program.comments,
        next: 0,
    };
    let d = p.program(program);
    let mut out = doc::render(&d, WIDTH);
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    out
}

struct Printer<'a> {
    src: &'a str,
    comments: &'a [Comment],
    /// Next comment not yet printed.
    next: usize,
}

/// How a statement-like list separates its elements.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Blank {
    /// Keep one blank line where the source had one or more.
    Preserve,
    /// Always one blank line between elements (top-level items).
    Always,
}

/// Builds the lines of a block-like list: elements, leading and trailing comments,
/// blank lines. Every element starts on its own line.
struct Lines<'a> {
    parts: Vec<Doc<'a>>,
    last_end: u32,
    /// Comments and elements emitted so far.
    things: usize,
    elems: usize,
    /// Whether the first thing needs a newline before it (inside `{ … }`).
    newline_first: bool,
    blank: Blank,
}

impl<'a> Lines<'a> {
    fn new(open_end: u32, newline_first: bool, blank: Blank) -> Self {
        Lines {
            parts: Vec::new(),
            last_end: open_end,
            things: 0,
            elems: 0,
            newline_first,
            blank,
        }
    }

    fn line_before(&mut self, p: &Printer<'a>, start: u32, first_of_elem: bool) {
        if self.things > 0 || self.newline_first {
            self.parts.push(Doc::HardLine);
        }
        let blank = match self.blank {
            Blank::Always if first_of_elem && self.elems > 0 => true,
            _ => self.things > 0 && p.blank_between(self.last_end, start),
        };
        if blank {
            self.parts.push(Doc::HardLine);
        }
    }

    /// Leading comments of the element at `start`, then the line for the element.
    fn before(&mut self, p: &mut Printer<'a>, start: u32) {
        let mut first = true;
        while let Some(c) = p.comment_before(start) {
            self.line_before(p, c.span.start, first);
            self.parts.push(text(c.text.as_str()));
            self.last_end = c.span.end;
            self.things += 1;
            first = false;
        }
        self.line_before(p, start, first);
    }

    fn push(&mut self, d: Doc<'a>) {
        self.parts.push(d);
        self.things += 1;
        self.elems += 1;
    }

    /// Same-line comments after the element that ended at `end`.
    fn after(&mut self, p: &mut Printer<'a>, end: u32) {
        self.last_end = end;
        while let Some(c) = p.trailing_comment(self.last_end) {
            self.parts.push(text(" "));
            self.parts.push(text(c.text.as_str()));
            if c.kind != CommentKind::Block {
                self.parts.push(Doc::BreakParent);
            }
            self.last_end = c.span.end;
        }
    }

    /// Comments before the closer at `close`; returns the lines.
    fn finish(mut self, p: &mut Printer<'a>, close: u32) -> (Doc<'a>, bool) {
        while let Some(c) = p.comment_before(close) {
            self.line_before(p, c.span.start, false);
            self.parts.push(text(c.text.as_str()));
            self.last_end = c.span.end;
            self.things += 1;
        }
        let any = self.things > 0;
        (concat(self.parts), any)
    }
}

impl<'a> Printer<'a> {
    // --- comments ----------------------------------------------------------------------

    /// The next comment if it starts before `pos` (and consumes it).
    fn comment_before(&mut self, pos: u32) -> Option<&'a Comment> {
        let c = self.comments.get(self.next)?;
        if c.span.start < pos {
            self.next += 1;
            Some(c)
        } else {
            None
        }
    }

    /// The next comment if it is on the same line after `end`, separated only by spaces,
    /// tabs, `,` or `;` (and consumes it).
    fn trailing_comment(&mut self, end: u32) -> Option<&'a Comment> {
        let c = self.comments.get(self.next)?;
        if c.span.start < end {
            return None;
        }
        let between = self.src.get(end as usize..c.span.start as usize)?;
        if between
            .bytes()
            .all(|b| matches!(b, b' ' | b'\t' | b',' | b';'))
        {
            self.next += 1;
            Some(c)
        } else {
            None
        }
    }

    fn blank_between(&self, from: u32, to: u32) -> bool {
        let Some(s) = self.src.get(from as usize..to as usize) else {
            return false;
        };
        let mut newlines = 0;
        let b = s.as_bytes();
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'\n' => newlines += 1,
                b'\r' => {
                    newlines += 1;
                    if b.get(i + 1) == Some(&b'\n') {
                        i += 1;
                    }
                }
                b' ' | b'\t' | b'\x0C' => {}
                _ => newlines = 0,
            }
            if newlines >= 2 {
                return true;
            }
            i += 1;
        }
        false
    }

    /// Comments before `pos` inside an expression: each on its own line (line comments,
    /// or block comments followed by a newline in the source) or inline.
    fn leading(&mut self, pos: u32) -> Doc<'a> {
        let mut v = Vec::new();
        while let Some(c) = self.comment_before(pos) {
            v.push(text(c.text.as_str()));
            let after = self
                .src
                .get(c.span.end as usize..pos as usize)
                .unwrap_or("");
            if c.kind != CommentKind::Block || after.contains(['\n', '\r']) {
                v.push(Doc::HardLine);
            } else {
                v.push(text(" "));
            }
        }
        if v.is_empty() { Doc::Nil } else { concat(v) }
    }

    /// Same-line comments after an element of a soft list.
    fn trailing_soft(&mut self, end: u32) -> Doc<'a> {
        let mut v = Vec::new();
        while let Some(c) = self.trailing_comment(end) {
            v.push(text(" "));
            v.push(text(c.text.as_str()));
            if c.kind != CommentKind::Block {
                v.push(Doc::BreakParent);
            }
        }
        if v.is_empty() { Doc::Nil } else { concat(v) }
    }

    fn has_comment_before(&self, pos: u32) -> bool {
        self.comments
            .get(self.next)
            .is_some_and(|c| c.span.start < pos)
    }

    fn src_text(&self, s: Span) -> &'a str {
        s.text(self.src)
    }

    // --- layout helpers ----------------------------------------------------------------

    /// `{` lines `}` for block-like lists. `items` yields (span, doc) in order through the
    /// callback so that comments are consumed in source order.
    fn braced<T>(
        &mut self,
        open: Span,
        close: u32,
        blank: Blank,
        items: &[T],
        span_of: impl Fn(&T) -> Span,
        mut doc_of: impl FnMut(&mut Self, &T) -> Doc<'a>,
    ) -> Doc<'a> {
        let mut head = vec![text("{")];
        let trailing = self.trailing_soft(open.end);
        let trailing_nonempty = !matches!(trailing, Doc::Nil);
        head.push(trailing);
        let mut lines = Lines::new(open.end, true, blank);
        for it in items {
            let s = span_of(it);
            lines.before(self, s.start);
            let d = doc_of(self, it);
            lines.push(d);
            lines.after(self, s.end);
        }
        let (body, any) = lines.finish(self, close);
        if !any && !trailing_nonempty {
            return text("{}");
        }
        head.push(nest(body));
        head.push(Doc::HardLine);
        head.push(text("}"));
        concat(head)
    }

    /// A group `open elems close` with `sep`-separated elements, flat if it fits, else
    /// one per line with a trailing comma. `pad` puts spaces inside the delimiters when
    /// flat (records).
    #[allow(clippy::too_many_arguments)]
    fn soft_list<T>(
        &mut self,
        open: &'static str,
        close: &'static str,
        outer: Span,
        pad: bool,
        items: &[T],
        span_of: impl Fn(&T) -> Span,
        mut doc_of: impl FnMut(&mut Self, &T) -> Doc<'a>,
    ) -> Doc<'a> {
        let close_pos = outer.end.saturating_sub(close.len() as u32);
        if items.is_empty() {
            // Only comments can be inside.
            let mut v = vec![text(open)];
            let mut any_line = false;
            while let Some(c) = self.comment_before(close_pos) {
                v.push(text(" "));
                v.push(text(c.text.as_str()));
                if c.kind != CommentKind::Block {
                    v.push(Doc::BreakParent);
                    any_line = true;
                }
            }
            if any_line {
                v.push(Doc::SoftLine);
            } else if v.len() > 1 {
                v.push(text(" "));
            }
            v.push(text(close));
            return group(concat(v));
        }
        let line = if pad { Doc::Line } else { Doc::SoftLine };
        let mut inner = vec![line.clone()];
        let n = items.len();
        for (i, it) in items.iter().enumerate() {
            let s = span_of(it);
            inner.push(self.leading(s.start));
            inner.push(doc_of(self, it));
            if i + 1 < n {
                inner.push(text(","));
            } else {
                inner.push(Doc::IfBreak(Box::new(text(",")), Box::new(Doc::Nil)));
            }
            inner.push(self.trailing_soft(s.end));
            if i + 1 < n {
                inner.push(Doc::Line);
            }
        }
        while let Some(c) = self.comment_before(close_pos) {
            inner.push(Doc::Line);
            inner.push(text(c.text.as_str()));
            if c.kind != CommentKind::Block {
                inner.push(Doc::BreakParent);
            }
        }
        group(concat(vec![
            text(open),
            nest(concat(inner)),
            line,
            text(close),
        ]))
    }

    // --- program and items -------------------------------------------------------------

    fn program(&mut self, prog: &Program) -> Doc<'a> {
        let mut lines = Lines::new(0, false, Blank::Always);
        for item in &prog.items {
            let s = item.span();
            lines.before(self, s.start);
            let d = self.item(item);
            lines.push(d);
            lines.after(self, s.end);
        }
        let (d, _) = lines.finish(self, u32::MAX);
        d
    }

    fn item(&mut self, item: &Item) -> Doc<'a> {
        match item {
            Item::Metadata(m) => {
                let body = self.props_braced(m.span, &m.pairs, PropStyle::Colon);
                concat(vec![text("metadata "), body])
            }
            Item::Agent(a) => self.agent(a),
            Item::Policy(p) => self.policy(p),
            Item::Type(t) => self.type_def(t),
            Item::Function(f) => self.function(f),
            Item::Schedule(s) => {
                let body = self.props_braced(s.span, &s.props, PropStyle::Colon);
                concat(vec![
                    text("schedule "),
                    self.ident(&s.name),
                    text(" "),
                    body,
                ])
            }
            Item::Channel(c) => self.channel(c),
            Item::Memory(m) => self.memory(m),
            Item::Webhook(w) => self.webhook(w),
        }
    }

    fn ident(&self, i: &Ident) -> Doc<'a> {
        text(i.name.to_string())
    }

    /// The `{` after a header: the first `{` at or after `from` (only spaces, comments
    /// and the header's own tokens precede it).
    fn open_brace_after(&self, from: u32, to: u32) -> Span {
        // Header tokens cannot contain `{`; skip comments.
        let mut i = from as usize;
        let b = self.src.as_bytes();
        let to = (to as usize).min(b.len());
        while i < to {
            match b[i] {
                b'{' => return Span::new(i as u32, i as u32 + 1),
                b'#' => {
                    while i < to && b[i] != b'\n' && b[i] != b'\r' {
                        i += 1;
                    }
                }
                b'/' if b.get(i + 1) == Some(&b'/') => {
                    while i < to && b[i] != b'\n' && b[i] != b'\r' {
                        i += 1;
                    }
                }
                b'/' if b.get(i + 1) == Some(&b'*') => {
                    i = self.src[i + 2..to].find("*/").map_or(to, |p| i + 2 + p + 2);
                    continue;
                }
                _ => {}
            }
            i += 1;
        }
        Span::point(from)
    }

    fn props_braced(&mut self, item_span: Span, props: &[Property], style: PropStyle) -> Doc<'a> {
        let first = props.first().map_or(item_span.end, |p| p.span.start);
        let open = self.open_brace_after(item_span.start, first);
        let width = props.iter().map(|p| p.key.name.len()).max().unwrap_or(0);
        self.braced(
            open,
            item_span.end - 1,
            Blank::Preserve,
            props,
            |p| p.span,
            |s, p| s.property(p, style, width),
        )
    }

    fn property(&mut self, p: &Property, style: PropStyle, width: usize) -> Doc<'a> {
        let value = self.prop_value(&p.value);
        match style {
            PropStyle::Colon => concat(vec![self.ident(&p.key), text(": "), value, text(",")]),
            PropStyle::Aligned => {
                let pad = width.saturating_sub(p.key.name.len()) + 1;
                concat(vec![self.ident(&p.key), text(" ".repeat(pad)), value])
            }
        }
    }

    fn prop_value(&mut self, v: &PropValue) -> Doc<'a> {
        match v {
            PropValue::Value(v) => {
                let lead = self.leading(v.span().start);
                concat(vec![lead, text(self.src_text(v.span()))])
            }
            PropValue::Array(a) => self.array(&a.elems, a.span),
            PropValue::Record(r) => self.record(&r.fields, r.span),
        }
    }

    fn agent(&mut self, a: &Agent) -> Doc<'a> {
        let mut head = vec![text("agent "), self.ident(&a.name)];
        let mut header_end = a.name.span.end;
        if let Some(params) = &a.params {
            let (d, end) = self.params(params, a.name.span.end, a.span.end);
            head.push(d);
            header_end = end;
        }
        if let Some(r) = &a.ret {
            head.push(text(" -> "));
            head.push(self.type_expr(r));
            header_end = r.span.end;
        }
        let first = a.items.first().map_or(a.span.end, |i| i.span().start);
        let open = self.open_brace_after(header_end, first);
        head.push(text(" "));
        head.push(self.braced(
            open,
            a.span.end - 1,
            Blank::Preserve,
            &a.items,
            AgentItem::span,
            |s, it| s.agent_item(it),
        ));
        concat(head)
    }

    /// `(p: T, …)`; returns the doc and the end offset of `)`.
    fn params(&mut self, params: &[Param], after: u32, limit: u32) -> (Doc<'a>, u32) {
        // The `(` follows the name; the `)` is the first `)` after the last parameter.
        let open = self.src[after as usize..limit as usize]
            .find('(')
            .map_or(after, |p| after + p as u32);
        let last = params.last().map_or(open + 1, |p| p.span.end);
        let close = self.src[last as usize..limit as usize]
            .find(')')
            .map_or(last, |p| last + p as u32)
            + 1;
        let d = self.soft_list(
            "(",
            ")",
            Span::new(open, close),
            false,
            params,
            |p| p.span,
            |s, p| concat(vec![s.ident(&p.name), text(": "), s.type_expr(&p.ty)]),
        );
        (d, close)
    }

    fn agent_item(&mut self, it: &AgentItem) -> Doc<'a> {
        match it {
            AgentItem::Capabilities(c) => concat(vec![
                text("capabilities = "),
                self.array(&c.list.elems, c.list.span),
            ]),
            AgentItem::Policy(p) => self.policy(p),
            AgentItem::Function(f) => self.function(f),
            AgentItem::With(w) => self.with_block(w),
        }
    }

    fn with_block(&mut self, w: &WithBlock) -> Doc<'a> {
        if w.attrs.is_empty() {
            let lead = self.leading(w.body.span.start);
            let body = self.block(&w.body);
            return concat(vec![text("with "), lead, body]);
        }
        let mut inner = vec![Doc::Line];
        let n = w.attrs.len();
        for (i, a) in w.attrs.iter().enumerate() {
            inner.push(self.leading(a.span.start));
            inner.push(self.ident(&a.name));
            inner.push(text(" = "));
            inner.push(self.prop_value(&a.value));
            if i + 1 < n {
                inner.push(text(","));
            } else {
                inner.push(Doc::IfBreak(Box::new(text(",")), Box::new(Doc::Nil)));
            }
            inner.push(self.trailing_soft(a.span.end));
            if i + 1 < n {
                inner.push(Doc::Line);
            }
        }
        // Comments between the last attribute and `{` go before the body.
        let lead = self.leading(w.body.span.start);
        let header = group(concat(vec![text("with"), nest(concat(inner)), Doc::Line]));
        let body = self.block(&w.body);
        concat(vec![header, lead, body])
    }

    fn policy(&mut self, p: &Policy) -> Doc<'a> {
        let first = p.rules.first().map_or(p.span.end, |r| r.span.start);
        let open = self.open_brace_after(p.name.span.end, first);
        let body = self.braced(
            open,
            p.span.end - 1,
            Blank::Preserve,
            &p.rules,
            |r| r.span,
            |s, r| s.rule(r),
        );
        concat(vec![text("policy "), self.ident(&p.name), text(" "), body])
    }

    fn rule(&mut self, r: &Rule) -> Doc<'a> {
        let mut v = vec![text(r.kind.as_str()), text(": "), self.expr(&r.expr)];
        if let Some(g) = &r.guard {
            v.push(text(" if "));
            v.push(self.expr(g));
        }
        concat(v)
    }

    fn type_def(&mut self, t: &TypeDef) -> Doc<'a> {
        let rhs = match &t.def {
            TypeDefKind::Alias(a) => concat(vec![self.leading(a.span.start), self.ident(a)]),
            TypeDefKind::Struct(s) => {
                let open = Span::new(s.span.start, s.span.start + 1);
                self.braced(
                    open,
                    s.span.end - 1,
                    Blank::Preserve,
                    &s.fields,
                    |f| f.span,
                    |p, f| {
                        concat(vec![
                            p.ident(&f.name),
                            text(": "),
                            p.type_expr(&f.ty),
                            text(","),
                        ])
                    },
                )
            }
        };
        concat(vec![text("type "), self.ident(&t.name), text(" = "), rhs])
    }

    fn function(&mut self, f: &Function) -> Doc<'a> {
        let (params, _) = self.params(&f.params, f.name.span.end, f.body.span.start);
        let mut v = vec![text("function "), self.ident(&f.name), params];
        if let Some(r) = &f.ret {
            v.push(text(" -> "));
            v.push(self.type_expr(r));
        }
        v.push(text(" "));
        v.push(self.block(&f.body));
        concat(v)
    }

    fn type_expr(&mut self, t: &TypeExpr) -> Doc<'a> {
        let lead = self.leading(t.span.start);
        if t.args.is_empty() {
            return concat(vec![lead, self.ident(&t.name)]);
        }
        let mut v = vec![lead, self.ident(&t.name), text("<")];
        for (i, a) in t.args.iter().enumerate() {
            if i > 0 {
                v.push(text(", "));
            }
            v.push(self.type_expr(a));
        }
        v.push(text(">"));
        concat(v)
    }

    fn channel(&mut self, c: &Channel) -> Doc<'a> {
        let first = c.entries.first().map_or(c.span.end, |e| e.span().start);
        let open = self.open_brace_after(c.name.span.end, first);
        let body = self.braced(
            open,
            c.span.end - 1,
            Blank::Preserve,
            &c.entries,
            ChannelEntry::span,
            |s, e| match e {
                ChannelEntry::Prop(p) => s.property(p, PropStyle::Colon, 0),
                ChannelEntry::Policy(p) => s.policy(p),
                ChannelEntry::DataClassification(d) => {
                    let first = d.rules.first().map_or(d.span.end, |r| r.span.start);
                    let open = s.open_brace_after(d.span.start, first);
                    let body = s.braced(
                        open,
                        d.span.end - 1,
                        Blank::Preserve,
                        &d.rules,
                        |r| r.span,
                        |s, r| {
                            concat(vec![
                                s.ident(&r.category),
                                text(": "),
                                s.ident(&r.action),
                                text(","),
                            ])
                        },
                    );
                    concat(vec![text("data_classification "), body])
                }
            },
        );
        concat(vec![text("channel "), self.ident(&c.name), text(" "), body])
    }

    fn memory(&mut self, m: &Memory) -> Doc<'a> {
        let first = m.entries.first().map_or(m.span.end, mem_span);
        let open = self.open_brace_after(m.name.span.end, first.min(m.span.end));
        let width = m
            .entries
            .iter()
            .filter_map(|e| match e {
                MemoryEntry::Prop(p) => Some(p.key.name.len()),
                MemoryEntry::Search(_) => None,
            })
            .max()
            .unwrap_or(0);
        let body = self.braced(
            open,
            m.span.end - 1,
            Blank::Preserve,
            &m.entries,
            |e| Span::new(mem_span(e), mem_end(e)),
            |s, e| match e {
                MemoryEntry::Prop(p) => s.property(p, PropStyle::Aligned, width),
                MemoryEntry::Search(b) => s.sub_block("search", b),
            },
        );
        concat(vec![text("memory "), self.ident(&m.name), text(" "), body])
    }

    fn webhook(&mut self, w: &Webhook) -> Doc<'a> {
        let span_of = |e: &WebhookEntry| match e {
            WebhookEntry::Prop(p) => p.span,
            WebhookEntry::Filter(b) => b.span,
        };
        let first = w.entries.first().map_or(w.span.end, |e| span_of(e).start);
        let open = self.open_brace_after(w.name.span.end, first);
        let width = w
            .entries
            .iter()
            .filter_map(|e| match e {
                WebhookEntry::Prop(p) => Some(p.key.name.len()),
                WebhookEntry::Filter(_) => None,
            })
            .max()
            .unwrap_or(0);
        let body = self.braced(
            open,
            w.span.end - 1,
            Blank::Preserve,
            &w.entries,
            span_of,
            |s, e| match e {
                WebhookEntry::Prop(p) => s.property(p, PropStyle::Aligned, width),
                WebhookEntry::Filter(b) => s.sub_block("filter", b),
            },
        );
        concat(vec![text("webhook "), self.ident(&w.name), text(" "), body])
    }

    fn sub_block(&mut self, kw: &'static str, b: &SubBlock) -> Doc<'a> {
        let first = b.props.first().map_or(b.span.end, |p| p.span.start);
        let open = self.open_brace_after(b.span.start, first);
        let width = b.props.iter().map(|p| p.key.name.len()).max().unwrap_or(0);
        let body = self.braced(
            open,
            b.span.end - 1,
            Blank::Preserve,
            &b.props,
            |p| p.span,
            |s, p| s.property(p, PropStyle::Aligned, width),
        );
        concat(vec![text(kw), text(" "), body])
    }

    // --- blocks and statements ---------------------------------------------------------

    /// A statement block: always broken (`{}` when empty).
    fn block(&mut self, b: &Block) -> Doc<'a> {
        crate::parser::with_stack(|| self.block_inner(b))
    }

    fn block_inner(&mut self, b: &Block) -> Doc<'a> {
        let open = Span::new(b.span.start, b.span.start + 1);
        let mut lines = Lines::new(open.end, true, Blank::Preserve);
        let mut head = vec![text("{")];
        let trailing = self.trailing_soft(open.end);
        let has_trailing = !matches!(trailing, Doc::Nil);
        head.push(trailing);
        for s in &b.stmts {
            let sp = s.span();
            lines.before(self, sp.start);
            let d = self.stmt(s);
            lines.push(d);
            lines.after(self, sp.end);
        }
        if let Some(t) = &b.tail {
            lines.before(self, t.span.start);
            let d = self.expr(t);
            lines.push(d);
            lines.after(self, t.span.end);
        }
        let (body, any) = lines.finish(self, b.span.end - 1);
        if !any && !has_trailing {
            return text("{}");
        }
        head.push(nest(body));
        head.push(Doc::HardLine);
        head.push(text("}"));
        concat(head)
    }

    fn stmt(&mut self, s: &Stmt) -> Doc<'a> {
        match s {
            Stmt::Let(l) => {
                let mut v = vec![text("let "), self.ident(&l.binder)];
                if let Some(t) = &l.ty {
                    v.push(text(": "));
                    v.push(self.type_expr(t));
                }
                v.push(text(" = "));
                v.push(self.expr(&l.value));
                v.push(text(";"));
                concat(v)
            }
            Stmt::If(i) => self.if_stmt(i),
            Stmt::For(f) => concat(vec![
                text("for "),
                self.ident(&f.binder),
                text(" in "),
                self.expr(&f.iter),
                text(" "),
                self.block(&f.body),
            ]),
            Stmt::While(w) => concat(vec![
                text("while "),
                self.expr(&w.cond),
                text(" "),
                self.block(&w.body),
            ]),
            Stmt::Match(m) => {
                let head = vec![text("match "), self.expr(&m.scrutinee), text(" ")];
                let first = m.arms.first().map_or(m.span.end, |a| a.span.start);
                let open = self.open_brace_after(m.scrutinee.span.end, first);
                let body = self.braced(
                    open,
                    m.span.end - 1,
                    Blank::Preserve,
                    &m.arms,
                    |a| a.span,
                    |s, a| s.arm(a),
                );
                concat(vec![concat(head), body])
            }
            Stmt::Try(t) => {
                let mut v = vec![text("try "), self.block(&t.body)];
                for c in &t.catches {
                    v.push(text(" catch ("));
                    if let Some(k) = &c.kind {
                        v.push(self.ident(k));
                        v.push(text(" "));
                    }
                    v.push(self.ident(&c.binding));
                    v.push(text(") "));
                    v.push(self.block(&c.body));
                }
                concat(v)
            }
            Stmt::Return(r) => match &r.value {
                Some(e) => concat(vec![text("return "), self.expr(e), text(";")]),
                None => text("return;"),
            },
            Stmt::Break(_) => text("break;"),
            Stmt::Continue(_) => text("continue;"),
            Stmt::Assign(a) => concat(vec![
                self.expr(&a.target),
                text(" "),
                text(a.op.as_str()),
                text(" "),
                self.expr(&a.value),
                text(";"),
            ]),
            Stmt::Expr(e) => concat(vec![self.expr(&e.expr), text(";")]),
        }
    }

    fn if_stmt(&mut self, i: &IfStmt) -> Doc<'a> {
        let cond = match &i.cond {
            Cond::Expr(e) => self.expr(e),
            Cond::Let { pattern, value, .. } => concat(vec![
                text("let "),
                self.pattern(pattern),
                text(" = "),
                self.expr(value),
            ]),
        };
        let mut v = vec![text("if "), cond, text(" "), self.block(&i.then_block)];
        if let Some(branch) = &i.else_branch {
            // A comment between `}` and `else` stays after the `}`; a line comment then
            // puts `else` on the next line (D10 allows it).
            let mut line_comment = false;
            while let Some(c) = self.trailing_comment(i.then_block.span.end) {
                v.push(text(" "));
                v.push(text(c.text.as_str()));
                line_comment |= c.kind != CommentKind::Block;
            }
            v.push(if line_comment {
                concat(vec![Doc::HardLine, text("else ")])
            } else {
                text(" else ")
            });
            match branch {
                ElseBranch::If(e) => v.push(self.if_stmt(e)),
                ElseBranch::Block(b) => v.push(self.block(b)),
            }
        }
        concat(v)
    }

    fn pattern(&mut self, p: &Pattern) -> Doc<'a> {
        match p {
            Pattern::Wildcard(_) => text("_"),
            Pattern::Binding(i) => self.ident(i),
            Pattern::Ctor { name, args, span } => {
                let inner = self.soft_list(
                    "(",
                    ")",
                    Span::new(name.span.end, span.end),
                    false,
                    args,
                    Pattern::span,
                    |s, a| s.pattern(a),
                );
                concat(vec![self.ident(name), inner])
            }
        }
    }

    fn arm(&mut self, a: &Arm) -> Doc<'a> {
        let pat = match &a.pattern {
            ArmPattern::Lit(l) => text(self.src_text(l.span)),
            ArmPattern::Wildcard(_) => text("_"),
            ArmPattern::Binding(i) => self.ident(i),
        };
        match &a.body {
            ArmBody::Block(b) => concat(vec![pat, text(" => "), self.block(b)]),
            ArmBody::Expr(e) => concat(vec![pat, text(" => "), self.expr(e), text(",")]),
        }
    }

    // --- expressions -------------------------------------------------------------------

    fn expr(&mut self, e: &Expr) -> Doc<'a> {
        crate::parser::with_stack(|| self.expr_inner(e))
    }

    fn expr_inner(&mut self, e: &Expr) -> Doc<'a> {
        let lead = if self.has_comment_before(e.span.start) {
            self.leading(e.span.start)
        } else {
            Doc::Nil
        };
        let d = match &e.kind {
            ExprKind::Lit(_) | ExprKind::Vault(_) => text(self.src_text(e.span)),
            ExprKind::Var(n) => text(n.to_string()),
            ExprKind::TypeLit { name, fields } => {
                let rec = self.record(fields, Span::new(name.span.end, e.span.end));
                concat(vec![self.ident(name), text(" "), rec])
            }
            ExprKind::Record(fields) => self.record(fields, e.span),
            ExprKind::Array(elems) => self.array(elems, e.span),
            ExprKind::Lambda { param, body } => {
                concat(vec![self.ident(param), text(" => "), self.expr(body)])
            }
            ExprKind::If(i) => group(self.if_expr(i)),
            ExprKind::Paren(inner) => {
                let d = self.expr(inner);
                let close_lead = self.leading(e.span.end - 1);
                concat(vec![text("("), d, close_lead, text(")")])
            }
            ExprKind::Unary { op, operand } => {
                let sep = if *op == UnaryOp::Not { " " } else { "" };
                concat(vec![text(op.as_str()), text(sep), self.expr(operand)])
            }
            ExprKind::Binary { .. } => self.binary(e),
            ExprKind::Member { object, name } => {
                let obj = self.expr(object);
                // `1 .seconds` must not become the duration `1.seconds`, nor `vault://a .b`
                // a longer vault path.
                let sep = match &object.kind {
                    ExprKind::Lit(LitKind::Int(_)) | ExprKind::Vault(_) => " ",
                    _ => "",
                };
                let lead = self.leading(name.span.start);
                concat(vec![obj, text(sep), text("."), lead, self.ident(name)])
            }
            ExprKind::Index { object, index } => {
                let obj = self.expr(object);
                let idx = self.expr(index);
                let close_lead = self.leading(e.span.end - 1);
                concat(vec![obj, text("["), idx, close_lead, text("]")])
            }
            ExprKind::Call { callee, args } => self.call(callee, args, e.span),
        };
        if matches!(lead, Doc::Nil) {
            d
        } else {
            concat(vec![lead, d])
        }
    }

    /// A left-deep chain of operators of one precedence, breakable before each operator.
    fn binary(&mut self, e: &Expr) -> Doc<'a> {
        let ExprKind::Binary { op, .. } = &e.kind else {
            return Doc::Nil;
        };
        let prec = op.precedence();
        let mut rhs: Vec<(BinaryOp, &Expr)> = Vec::new();
        let mut cur = e;
        while let ExprKind::Binary { op, lhs, rhs: r } = &cur.kind {
            if op.precedence() != prec {
                break;
            }
            rhs.push((*op, r));
            cur = lhs;
        }
        let first = self.expr(cur);
        let mut tail = Vec::new();
        for (op, r) in rhs.into_iter().rev() {
            tail.push(Doc::Line);
            tail.push(text(op.as_str()));
            tail.push(text(" "));
            tail.push(self.expr(r));
        }
        group(concat(vec![first, nest(concat(tail))]))
    }

    fn if_expr(&mut self, i: &IfExpr) -> Doc<'a> {
        let cond = self.expr(&i.cond);
        let then = self.value_block(&i.then_block);
        let els = match &i.else_branch {
            ElseExpr::If(e) => self.if_expr(e),
            ElseExpr::Block(b) => self.value_block(b),
        };
        concat(vec![
            text("if "),
            cond,
            text(" "),
            then,
            text(" else "),
            els,
        ])
    }

    /// A block inside an if-expression: `{ value }` when it fits and has only a value.
    fn value_block(&mut self, b: &Block) -> Doc<'a> {
        let simple = b.stmts.is_empty() && !self.has_comment_before(b.span.end);
        match (&b.tail, simple) {
            (Some(t), true) => {
                let d = self.expr(t);
                concat(vec![
                    text("{"),
                    nest(concat(vec![Doc::Line, d])),
                    Doc::Line,
                    text("}"),
                ])
            }
            _ => self.block(b),
        }
    }

    fn record(&mut self, fields: &[Field], span: Span) -> Doc<'a> {
        self.soft_list(
            "{",
            "}",
            span,
            true,
            fields,
            |f| f.span,
            |s, f| {
                let key = match &f.key {
                    FieldKey::Name(i) => s.ident(i),
                    FieldKey::Str { span, .. } => text(s.src_text(*span)),
                };
                concat(vec![key, text(": "), s.expr(&f.value)])
            },
        )
    }

    fn array(&mut self, elems: &[Expr], span: Span) -> Doc<'a> {
        self.soft_list("[", "]", span, false, elems, |e| e.span, |s, e| s.expr(e))
    }

    fn arg(&mut self, a: &Arg) -> Doc<'a> {
        match &a.name {
            Some(n) => concat(vec![self.ident(n), text(": "), self.expr(&a.value)]),
            None => self.expr(&a.value),
        }
    }

    fn call(&mut self, callee: &Expr, args: &[Arg], span: Span) -> Doc<'a> {
        let c = self.expr(callee);
        let list_span = Span::new(callee.span.end, span.end);
        let overflowable = args.last().is_some_and(|a| {
            matches!(
                a.value.kind,
                ExprKind::Record(_)
                    | ExprKind::TypeLit { .. }
                    | ExprKind::Array(_)
                    | ExprKind::Lambda { .. }
            )
        });
        if !overflowable || self.has_comment_before(span.end) {
            let list = self.soft_list(
                "(",
                ")",
                list_span,
                false,
                args,
                |a| a.span,
                |s, a| s.arg(a),
            );
            return concat(vec![c, list]);
        }
        // No comment inside the call: two layouts of the same argument documents, built
        // once (building them per layout would be exponential in nested calls):
        // `f(a, {` … `})` and one argument per line.
        let docs: Vec<Doc<'a>> = args
            .iter()
            .map(|a| Doc::Shared(std::rc::Rc::new(self.arg(a))))
            .collect();
        let n = docs.len();
        let mut prefix = Vec::new();
        for (i, d) in docs[..n - 1].iter().enumerate() {
            if i > 0 {
                prefix.push(text(", "));
            }
            prefix.push(d.clone());
        }
        if n > 1 {
            prefix.push(text(", "));
        }
        let overflow = concat(vec![
            text("("),
            Doc::Flat(Box::new(concat(prefix))),
            docs[n - 1].clone(),
            text(")"),
        ]);
        let mut inner = vec![Doc::SoftLine];
        for (i, d) in docs.into_iter().enumerate() {
            inner.push(d);
            if i + 1 < n {
                inner.push(text(","));
                inner.push(Doc::Line);
            } else {
                inner.push(Doc::IfBreak(Box::new(text(",")), Box::new(Doc::Nil)));
            }
        }
        let list = concat(vec![
            text("("),
            nest(concat(inner)),
            Doc::SoftLine,
            text(")"),
        ]);
        concat(vec![
            c,
            group(Doc::Overflow(Box::new(overflow), Box::new(list))),
        ])
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum PropStyle {
    /// `key: value,`
    Colon,
    /// `key   value` (memory, webhook)
    Aligned,
}

fn mem_span(e: &MemoryEntry) -> u32 {
    match e {
        MemoryEntry::Prop(p) => p.span.start,
        MemoryEntry::Search(b) => b.span.start,
    }
}

fn mem_end(e: &MemoryEntry) -> u32 {
    match e {
        MemoryEntry::Prop(p) => p.span.end,
        MemoryEntry::Search(b) => b.span.end,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(s: &str) -> String {
        format_source(s).unwrap_or_else(|e| panic!("{e}: {s}"))
    }

    #[test]
    fn idempotent_on_small_inputs() {
        for s in [
            "agent a { with { let x = [1, 2, 3]; return x; } }",
            "metadata { version = \"1\" tags = [\"a\"] }",
            "# only a comment\n",
            "",
            "agent a(x: int y: int) -> Map<String, Array<int>> { capabilities: [a, \"b\"] }",
            "memory m { store markdown\n path \"/x\" search { vector_weight 0.4 } }",
        ] {
            let once = fmt(s);
            assert_eq!(fmt(&once), once, "not idempotent for {s:?}:\n{once}");
        }
    }

    #[test]
    fn comments_stay_where_they_are() {
        let src = "// head\n\nagent a { // after brace\n    with {\n        x = 1; // trailing\n        // before y\n        y = f(a, // in args\n            b);\n    }\n    # end of agent\n}\n/* tail */\n";
        let out = fmt(src);
        assert_eq!(
            out,
            "// head\n\nagent a { // after brace\n    with {\n        x = 1; // trailing\n        // before y\n        y = f(\n            a, // in args\n            b,\n        );\n    }\n    # end of agent\n}\n/* tail */\n"
        );
    }

    #[test]
    fn overflow_last_argument() {
        let src = "agent a { with { let id = memory_write(ticket_log, { subject: ticket.subject, customer: ticket.customer, urgent: urgent, received_at: now() }); } }";
        let out = fmt(src);
        assert!(
            out.contains(
                "let id = memory_write(ticket_log, {\n            subject: ticket.subject,\n"
            ),
            "{out}"
        );
    }

    #[test]
    fn spelled_duration_is_not_created() {
        let out = fmt("agent a { with { x = (1) .seconds; y = 1 .seconds; z = vault://a .b; } }");
        assert!(out.contains("x = (1).seconds;"));
        assert!(out.contains("y = 1 .seconds;"));
        assert!(out.contains("z = vault://a .b;"));
    }

    #[test]
    fn with_header_breaks_one_attribute_per_line() {
        let src = "agent a { with sandbox = \"Tier1\", timeout = 15s, network_policy = \"allow_list\", privacy = \"strict\", security = \"high\" { } }";
        let out = fmt(src);
        assert!(
            out.contains("    with\n        sandbox = \"Tier1\",\n        timeout = 15s,\n"),
            "{out}"
        );
        assert!(
            out.contains("        security = \"high\",\n    {}\n"),
            "{out}"
        );
    }

    #[test]
    fn comments_in_with_headers_and_before_else_stay_in_place() {
        let out = fmt(
            "agent a { with a = 1, # after a\n b = 2 { # body\n if x { } // after if\n else { y(); } } }",
        );
        assert_eq!(
            out,
            "agent a {\n    with\n        a = 1, # after a\n        b = 2,\n    { # body\n        if x {} // after if\n        else {\n            y();\n        }\n    }\n}\n"
        );
        assert_eq!(fmt(&out), out);
        let out = fmt("function f() { if x { } /* c */ else { } }");
        assert_eq!(out, "function f() {\n    if x {} /* c */ else {}\n}\n");
    }

    #[test]
    fn nested_overflowable_calls_stay_linear() {
        // Each call offers two layouts; without sharing this would be 2^40 documents.
        let depth = 40;
        let src = format!(
            "function f() {{ let v = {}1{}; }}",
            "g(a, x => ".repeat(depth),
            ")".repeat(depth)
        );
        let p = crate::parse(&src, "t");
        assert!(!p.has_errors(), "{}", p.render_diagnostics());
        let out = fmt(&src);
        assert_eq!(fmt(&out), out);
    }

    #[test]
    fn syntax_errors_are_not_formatted() {
        assert!(matches!(
            format_source("agent {"),
            Err(FormatError::Syntax { .. })
        ));
    }
}
