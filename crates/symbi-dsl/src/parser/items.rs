//! Items: program, metadata, agents, policies, functions, types, schedules, channels,
//! memory stores, webhooks (GRAMMAR §2.2–§2.7).

use super::{PResult, Parser};
use crate::ast::*;
use crate::diagnostic::Diagnostic;
use crate::lexer::{Kw, TokenKind};
use crate::span::Span;

const TOP_LEVEL: &str = "a top-level item (metadata, agent, policy, type, function, schedule, channel, memory, webhook)";

/// Which separator a property list uses between key and value.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Sep {
    /// `=` or `:` (metadata, schedule, channel).
    Required,
    /// None (memory, webhook, D7).
    None,
}

/// Which value forms a property accepts.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Vals {
    /// One token (schedule, memory, webhook).
    Value,
    /// One token or an array (channel, `with`).
    ValueOrArray,
    /// One token, an array or a record (metadata).
    Meta,
}

impl<'s> Parser<'s> {
    /// `Program ::= { Item } EOF`
    pub(super) fn program(&mut self) -> Vec<Item> {
        let mut items = Vec::new();
        while !self.at_eof() && !self.aborted {
            self.unwinding = false;
            let before = self.pos;
            match self.item() {
                Ok(Some(item)) => items.push(item),
                Ok(None) => {}
                Err(_) => self.recover_top(),
            }
            if self.pos == before && !self.at_eof() {
                self.bump();
            }
        }
        items
    }

    /// Skips to the next token that starts a top-level item (outside brackets, or at
    /// column 1 anywhere).
    fn recover_top(&mut self) {
        self.unwinding = false;
        let mut depth = 0i32;
        let mut first = true;
        loop {
            let t = self.tok();
            match t.kind {
                TokenKind::Eof => return,
                TokenKind::Word
                    if !first
                        && ((depth == 0 && self.at_item_start()) || self.at_item_restart()) =>
                {
                    return;
                }
                TokenKind::LBrace | TokenKind::LParen | TokenKind::LBracket => depth += 1,
                TokenKind::RBrace | TokenKind::RParen | TokenKind::RBracket => {
                    depth = (depth - 1).max(0)
                }
                _ => {}
            }
            first = false;
            self.bump();
        }
    }

    fn item(&mut self) -> PResult<Option<Item>> {
        let t = self.tok();
        let kw = if t.kind == TokenKind::Word {
            t.kw
        } else {
            Kw::None
        };
        Ok(Some(match kw {
            Kw::Metadata => Item::Metadata(self.metadata()?),
            Kw::Agent => Item::Agent(self.agent()?),
            Kw::Policy => Item::Policy(self.policy()?),
            Kw::Type => Item::Type(self.type_def()?),
            Kw::Function => Item::Function(self.function()?),
            Kw::Schedule => Item::Schedule(self.schedule()?),
            Kw::Channel => Item::Channel(self.channel()?),
            Kw::Memory => Item::Memory(self.memory()?),
            Kw::Webhook => Item::Webhook(self.webhook()?),
            _ => {
                let msg = format!("expected {TOP_LEVEL}, found {}", self.found());
                let mut d = Diagnostic::error("P005", msg, t.span);
                let text = self.text(t);
                d = match (t.kind, text) {
                    (TokenKind::Semi, _) => d.with_help("items do not end with `;`"),
                    (_, "struct") => {
                        d.with_help("declare a record type with `type Name = { field: Type }`")
                    }
                    (_, "behavior" | "import" | "use" | "module") => {
                        d.with_help("this is not part of the symbi language (GRAMMAR Appendix A)")
                    }
                    (TokenKind::Word, _)
                        if t.kw.is_reserved()
                            || self.nth_kind(1) == TokenKind::Eq
                            || self.nth_kind(1) == TokenKind::Semi
                            || self.nth_kind(1) == TokenKind::LParen =>
                    {
                        d.with_help(
                            "statements must be inside a `with` block of an agent or a function",
                        )
                    }
                    _ => d,
                };
                return Err(self.report(d));
            }
        }))
    }

    /// The name after an item keyword (every item must have one).
    fn item_name(&mut self, keyword: &str) -> PResult<Ident> {
        if self.tok().kind == TokenKind::Word {
            return self.ident("a name");
        }
        Err(self.unexpected(&format!("a name after `{keyword}`")))
    }

    // --- metadata ----------------------------------------------------------------------

    /// `Metadata ::= 'metadata' '{' { MetaPair } '}'`
    fn metadata(&mut self) -> PResult<Metadata> {
        let kw = self.bump();
        let open = self.expect(TokenKind::LBrace, "after `metadata`")?.span;
        let pairs = self.property_list(open, "the metadata block", Sep::Required, Vals::Meta);
        let end = self.close(TokenKind::RBrace, open, "the metadata block")?;
        Ok(Metadata {
            pairs,
            span: kw.span.to(end),
        })
    }

    /// `{ Name sep Value [','] }` up to (not including) `}`.
    fn property_list(&mut self, open: Span, what: &str, sep: Sep, vals: Vals) -> Vec<Property> {
        let _ = open;
        let mut props = Vec::new();
        self.list(what, |p| {
            props.push(p.property(sep, vals)?);
            Ok(())
        });
        props
    }

    /// Runs `entry` until `}` with D21 recovery after each failure.
    fn list(&mut self, what: &str, entry: impl FnMut(&mut Self) -> PResult<()>) {
        self.list_with(what, &[], entry);
    }

    /// [`Self::list`] in a block whose entries may start with the item words `local`.
    fn list_with(
        &mut self,
        _what: &str,
        local: &'static [Kw],
        mut entry: impl FnMut(&mut Self) -> PResult<()>,
    ) {
        if self.enter().is_err() {
            self.recover(self.pos);
            return;
        }
        let saved = std::mem::replace(&mut self.local_items, local);
        while !self.list_done(TokenKind::RBrace) {
            if self.at_item_restart() {
                break; // `close` reports the unclosed block
            }
            let start = self.pos;
            if entry(self).is_err() {
                self.recover(start);
            }
            self.ensure_progress(start, TokenKind::RBrace);
        }
        self.local_items = saved;
        self.leave();
    }

    /// One property: `Name ( '=' | ':' ) value [',']` or `Name value [',']`.
    fn property(&mut self, sep: Sep, vals: Vals) -> PResult<Property> {
        let key = if self.tok().kind == TokenKind::Word {
            self.name("a property name")?
        } else {
            return Err(self.unexpected("a property name or `}`"));
        };
        match sep {
            Sep::Required => {
                if self.eat(TokenKind::Eq).is_none() && self.eat(TokenKind::Colon).is_none() {
                    return Err(self.missing("`:` or `=`", &format!("after `{}`", key.name)));
                }
            }
            Sep::None => {
                if self.at(TokenKind::Colon) || self.at(TokenKind::Eq) {
                    let msg = format!(
                        "expected a value after `{}`, found {}",
                        key.name,
                        self.found()
                    );
                    let d = Diagnostic::error("P001", msg, self.tok().span).with_help(format!(
                        "memory and webhook properties have no separator: write `{} value`",
                        key.name
                    ));
                    return Err(self.report(d));
                }
            }
        }
        let value = self.prop_value(vals, &key)?;
        self.eat(TokenKind::Comma);
        let span = key.span.to(value.span());
        Ok(Property { key, value, span })
    }

    /// A property or `with` attribute value (D6: never a general expression).
    fn prop_value(&mut self, vals: Vals, key: &Ident) -> PResult<PropValue> {
        match self.kind() {
            TokenKind::LBracket if vals != Vals::Value => {
                return Ok(PropValue::Array(self.array_lit()?));
            }
            TokenKind::LBrace if vals == Vals::Meta => {
                return Ok(PropValue::Record(self.record_lit()?));
            }
            _ => {}
        }
        if let Some(v) = self.value_token() {
            return Ok(PropValue::Value(v));
        }
        let what = match vals {
            Vals::Value => {
                "a value (a string, number, duration, size, `true`, `false`, `null` or a name)"
            }
            Vals::ValueOrArray => {
                "a value (a string, number, duration, size, `true`, `false`, `null`, a name or an array)"
            }
            Vals::Meta => {
                "a value (a string, number, duration, size, `true`, `false`, `null`, a name, an array or a record)"
            }
        };
        let what = format!("{what} after `{}`", key.name);
        let help = match self.kind() {
            TokenKind::Minus => Some(
                "a value here is exactly one token: negative numbers and expressions are not allowed",
            ),
            TokenKind::Vault => Some("write a vault reference here as a string: `\"vault://…\"`"),
            TokenKind::LBracket | TokenKind::LBrace => {
                Some("values here are single tokens (no arrays or blocks)")
            }
            _ => None,
        };
        Err(match help {
            Some(h) => self.unexpected_help(&what, h),
            None => self.unexpected(&what),
        })
    }

    /// `Value ::= STRING | INT | FLOAT | DURATION | SIZE | 'true' | 'false' | 'null' | Ident`
    /// — consumes it, or returns `None` without consuming.
    pub(super) fn value_token(&mut self) -> Option<Value> {
        let t = self.tok();
        match t.kind {
            TokenKind::Str
            | TokenKind::Int
            | TokenKind::Float
            | TokenKind::Duration
            | TokenKind::Size => Some(Value::Lit(self.literal_token())),
            TokenKind::Word => match t.kw {
                Kw::True | Kw::False | Kw::Null => Some(Value::Lit(self.literal_token())),
                kw if kw.is_reserved() => None,
                _ => {
                    self.bump();
                    Some(Value::Word(Ident::new(self.text(t), t.span)))
                }
            },
            _ => None,
        }
    }

    /// `[ e, … ]` as a literal array.
    fn array_lit(&mut self) -> PResult<ArrayLit> {
        let e = self.array_expr()?;
        match e.kind {
            ExprKind::Array(elems) => Ok(ArrayLit {
                elems,
                span: e.span,
            }),
            _ => unreachable_expr(),
        }
    }

    /// `{ k: e, … }` as a literal record.
    fn record_lit(&mut self) -> PResult<RecordLit> {
        let e = self.record_expr()?;
        match e.kind {
            ExprKind::Record(fields) => Ok(RecordLit {
                fields,
                span: e.span,
            }),
            _ => unreachable_expr(),
        }
    }

    // --- agents ------------------------------------------------------------------------

    /// `Agent ::= 'agent' Ident [ '(' [ ParamList ] ')' ] [ '->' Type ] '{' { AgentItem } '}'`
    fn agent(&mut self) -> PResult<Agent> {
        let kw = self.bump();
        let name = self.item_name("agent")?;
        let params = if self.at(TokenKind::LParen) {
            Some(self.params())
        } else {
            None
        };
        let ret = if self.eat(TokenKind::Arrow).is_some() {
            Some(self.type_expr()?)
        } else {
            None
        };
        if !self.at(TokenKind::LBrace) {
            let ctx = if ret.is_some() {
                "after the return type"
            } else {
                "to start the agent body"
            };
            return Err(self.missing("`{`", ctx));
        }
        let open = self.bump().span;
        let mut items = Vec::new();
        self.list_with("the agent body", &[Kw::Policy, Kw::Function], |p| {
            if let Some(item) = p.agent_item()? {
                items.push(item);
            }
            Ok(())
        });
        let end = self.close(TokenKind::RBrace, open, &format!("agent `{}`", name.name))?;
        Ok(Agent {
            name,
            params,
            ret,
            items,
            span: kw.span.to(end),
        })
    }

    /// `AgentItem ::= Capabilities | Policy | Function | With`
    fn agent_item(&mut self) -> PResult<Option<AgentItem>> {
        let t = self.tok();
        let kw = if t.kind == TokenKind::Word {
            t.kw
        } else {
            Kw::None
        };
        match kw {
            Kw::Capabilities => return Ok(Some(AgentItem::Capabilities(self.capabilities()?))),
            Kw::Policy => return Ok(Some(AgentItem::Policy(self.policy()?))),
            Kw::Function => return Ok(Some(AgentItem::Function(self.function()?))),
            Kw::With => return Ok(Some(AgentItem::With(self.with_block()?))),
            Kw::Let
            | Kw::If
            | Kw::For
            | Kw::While
            | Kw::Match
            | Kw::Try
            | Kw::Return
            | Kw::Break
            | Kw::Continue => {
                let d = Diagnostic::error(
                    "P004",
                    "statements must be inside a `with` block or a function",
                    t.span,
                )
                .with_primary_label(format!("`{}` statement in the agent body", self.text(t)))
                .with_help("put the statement inside `with { … }`");
                self.report(d);
                // Parse the statement so that exactly it is skipped.
                let start = self.pos;
                if self.stmt().is_err() {
                    self.recover(start);
                }
                return Ok(None);
            }
            _ => {}
        }
        let text = match t.kind {
            TokenKind::Eof => "end of file".to_string(),
            _ => self.text(t).chars().take(32).collect(),
        };
        let msg = format!(
            "`{text}` is not allowed in an agent body (expected capabilities, policy, function or with)"
        );
        let mut d = Diagnostic::error("P006", msg, t.span);
        if t.kind == TokenKind::Word && matches!(self.nth_kind(1), TokenKind::Colon | TokenKind::Eq)
        {
            d = d.with_help(
                "an agent body holds only capabilities, policy, function and with items; settings go in a `with` header (`with memory = \"persistent\" { … }`) or in `metadata`",
            );
            self.report(d);
            // Skip `key sep value` so the following items are still read.
            self.bump();
            self.bump();
            self.skip_group_or_token();
            return Ok(None);
        }
        if t.kind == TokenKind::Word && self.nth_kind(1) == TokenKind::LBrace {
            self.report(d);
            self.bump();
            self.skip_group_or_token();
            return Ok(None);
        }
        Err(self.report(d))
    }

    /// `Capabilities ::= 'capabilities' ( '=' | ':' ) Array`
    fn capabilities(&mut self) -> PResult<Capabilities> {
        let kw = self.bump();
        if self.eat(TokenKind::Eq).is_none() && self.eat(TokenKind::Colon).is_none() {
            return Err(self.missing("`=` or `:`", "after `capabilities`"));
        }
        if !self.at(TokenKind::LBracket) {
            return Err(self.unexpected("an array `[ … ]` of capabilities"));
        }
        let list = self.array_lit()?;
        Ok(Capabilities {
            span: kw.span.to(list.span),
            list,
        })
    }

    /// `With ::= 'with' { WithAttr [ ',' ] } Block`, `WithAttr ::= Name '=' ( Value | Array )`
    fn with_block(&mut self) -> PResult<WithBlock> {
        let kw = self.bump();
        let mut attrs = Vec::new();
        let mut header_ok = true;
        let mut first = true;
        while !self.at(TokenKind::LBrace) {
            if self.at(TokenKind::Comma) && !first {
                // A comma right after another comma or at the start (D17).
                header_ok = false;
                self.unexpected("an attribute or `{`");
                break;
            }
            if self.tok().kind != TokenKind::Word {
                header_ok = false;
                let what = if first {
                    "an attribute or `{` after `with`"
                } else {
                    "`,`, another attribute or `{`"
                };
                let help = "`with` attribute values are single values (D6): `with timeout = 30s, sandbox = \"Tier1\" { … }`";
                self.unexpected_help(what, help);
                break;
            }
            first = false;
            let name = self.name("an attribute name")?;
            if self.eat(TokenKind::Eq).is_none() {
                header_ok = false;
                self.missing("`=`", &format!("after attribute `{}`", name.name));
                break;
            }
            let value = match self.prop_value(Vals::ValueOrArray, &name) {
                Ok(v) => v,
                Err(_) => {
                    header_ok = false;
                    break;
                }
            };
            let span = name.span.to(value.span());
            attrs.push(WithAttr { name, value, span });
            if self.eat(TokenKind::Comma).is_some() && self.at(TokenKind::Comma) {
                header_ok = false;
                self.unexpected("an attribute or `{`");
                break;
            }
        }
        if !header_ok {
            // Recover inside the header: skip to the body's `{` and still read the body.
            let mut depth = 0i32;
            loop {
                match self.kind() {
                    TokenKind::LBrace if depth == 0 => break,
                    TokenKind::Eof | TokenKind::Semi => return Err(super::Fail),
                    TokenKind::RBrace if depth == 0 => return Err(super::Fail),
                    TokenKind::LParen | TokenKind::LBracket => depth += 1,
                    TokenKind::RParen | TokenKind::RBracket => depth = (depth - 1).max(0),
                    _ => {}
                }
                self.bump();
            }
            let _ = self.block("to start the `with` body")?;
            return Err(super::Fail);
        }
        let body = self.block("to start the `with` body")?;
        Ok(WithBlock {
            attrs,
            span: kw.span.to(body.span),
            body,
        })
    }

    /// `'(' [ ParamList ] ')'` — commas optional between parameters (D17). Errors skip
    /// to the `)` so that the item header goes on.
    fn params(&mut self) -> Vec<Param> {
        let open = self.bump().span;
        let mut params = Vec::new();
        let mut first = true;
        loop {
            if self.at(TokenKind::RParen) {
                self.bump();
                break;
            }
            if self.at_eof() {
                let _ = self.close(TokenKind::RParen, open, "the parameter list");
                break;
            }
            if self.at(TokenKind::Comma) {
                self.unexpected(if first {
                    "a parameter or `)`"
                } else {
                    "a parameter or `)` (only one `,` between parameters)"
                });
                self.skip_past_closer(TokenKind::RParen);
                break;
            }
            first = false;
            match self.param() {
                Ok(p) => params.push(p),
                Err(_) => {
                    self.skip_past_closer(TokenKind::RParen);
                    break;
                }
            }
            if self.eat(TokenKind::Comma).is_none()
                && !self.at(TokenKind::RParen)
                && self.tok().kind != TokenKind::Word
            {
                self.unexpected("`,`, `)` or another parameter");
                self.skip_past_closer(TokenKind::RParen);
                break;
            }
        }
        params
    }

    /// `Param ::= Ident ':' Type`
    fn param(&mut self) -> PResult<Param> {
        let name = self.ident("a parameter name")?;
        self.expect(
            TokenKind::Colon,
            &format!("and a type after parameter `{}`", name.name),
        )?;
        let ty = self.type_expr()?;
        Ok(Param {
            span: name.span.to(ty.span),
            name,
            ty,
        })
    }

    // --- types -------------------------------------------------------------------------

    /// `Type ::= TypeName [ '<' Type { ',' Type } '>' ]` (D12: `<` `>` are brackets here).
    pub(super) fn type_expr(&mut self) -> PResult<TypeExpr> {
        if self.tok().kind != TokenKind::Word {
            return Err(self.unexpected("a type"));
        }
        let name = self.ident("a type")?;
        let mut args = Vec::new();
        let mut end = name.span;
        if self.at(TokenKind::Lt) {
            self.enter()?;
            let lt = self.bump().span;
            let r = (|| -> PResult<Span> {
                loop {
                    args.push(super::with_stack(|| self.type_expr())?);
                    if self.eat(TokenKind::Comma).is_some() {
                        continue;
                    }
                    if let Some(gt) = self.eat_gt() {
                        return Ok(gt);
                    }
                    if self.at_eof() {
                        let d = Diagnostic::error(
                            "P003",
                            "unclosed `<`: expected `>`, found end of file",
                            Span::point(self.src.len() as u32),
                        )
                        .with_label(lt, "unclosed `<` opened here");
                        return Err(self.report(d));
                    }
                    return Err(self.unexpected("`,` or `>` in the type arguments"));
                }
            })();
            self.leave();
            end = r?;
        }
        Ok(TypeExpr {
            span: name.span.to(end),
            name,
            args,
        })
    }

    /// Consumes a `>`; splits `>=` into `>` and `=` (as in `let a: Array<int>= [];`).
    fn eat_gt(&mut self) -> Option<Span> {
        match self.kind() {
            TokenKind::Gt => Some(self.bump().span),
            TokenKind::Ge => {
                let t = self.tok();
                let gt = Span::new(t.span.start, t.span.start + 1);
                self.toks[self.pos].kind = TokenKind::Eq;
                self.toks[self.pos].span.start += 1;
                Some(gt)
            }
            _ => None,
        }
    }

    /// `TypeDef ::= 'type' Ident '=' ( StructType | Ident )`
    fn type_def(&mut self) -> PResult<TypeDef> {
        let kw = self.bump();
        let name = self.item_name("type")?;
        self.expect(TokenKind::Eq, &format!("after `type {}`", name.name))?;
        let def = if self.at(TokenKind::LBrace) {
            TypeDefKind::Struct(self.struct_type()?)
        } else if self.tok().kind == TokenKind::Word {
            let alias = self.ident("a type name")?;
            if self.at(TokenKind::Lt) {
                return Err(self.unexpected_help(
                    "a top-level item after the type alias",
                    "a type alias names a single identifier; generic types cannot be aliased",
                ));
            }
            TypeDefKind::Alias(alias)
        } else {
            return Err(self.unexpected("`{` or a type name"));
        };
        let end = match &def {
            TypeDefKind::Struct(s) => s.span,
            TypeDefKind::Alias(a) => a.span,
        };
        if self.at(TokenKind::Semi) {
            let d = Diagnostic::error(
                "P001",
                format!("expected {TOP_LEVEL}, found `;`"),
                self.tok().span,
            )
            .with_help("items do not end with `;`");
            self.report(d);
            self.bump();
        }
        Ok(TypeDef {
            name,
            def,
            span: kw.span.to(end),
        })
    }

    /// `StructType ::= '{' { Name ':' Type [ ',' ] } '}'`
    fn struct_type(&mut self) -> PResult<StructType> {
        let open = self.bump().span;
        let mut fields = Vec::new();
        self.list("the struct type", |p| {
            let name = p.name("a field name or `}`")?;
            p.expect(TokenKind::Colon, &format!("after field `{}`", name.name))?;
            let ty = p.type_expr()?;
            p.eat(TokenKind::Comma);
            fields.push(StructField {
                span: name.span.to(ty.span),
                name,
                ty,
            });
            Ok(())
        });
        let end = self.close(TokenKind::RBrace, open, "the struct type")?;
        Ok(StructType {
            fields,
            span: open.to(end),
        })
    }

    // --- functions and policies --------------------------------------------------------

    /// `Function ::= 'function' Ident '(' [ ParamList ] ')' [ '->' Type ] Block`
    fn function(&mut self) -> PResult<Function> {
        let kw = self.bump();
        let name = self.item_name("function")?;
        let params = if self.at(TokenKind::LParen) {
            self.params()
        } else {
            return Err(self.missing("`(`", &format!("after `function {}`", name.name)));
        };
        let ret = if self.eat(TokenKind::Arrow).is_some() {
            Some(self.type_expr()?)
        } else {
            None
        };
        let body = self.block("to start the function body")?;
        Ok(Function {
            name,
            params,
            ret,
            span: kw.span.to(body.span),
            body,
        })
    }

    /// `Policy ::= 'policy' Ident '{' { Rule } '}'`
    fn policy(&mut self) -> PResult<Policy> {
        let kw = self.bump();
        let name = self.item_name("policy")?;
        let open = self
            .expect(TokenKind::LBrace, &format!("after `policy {}`", name.name))?
            .span;
        let mut rules = Vec::new();
        let saved = std::mem::take(&mut self.local_items);
        if self.enter().is_ok() {
            while !self.list_done(TokenKind::RBrace) && !self.at_item_restart() {
                let start = self.pos;
                match self.rule() {
                    Ok(r) => rules.push(r),
                    Err(_) => self.recover_rule(),
                }
                self.ensure_progress(start, TokenKind::RBrace);
            }
            self.leave();
        }
        self.local_items = saved;
        let end = self.close(TokenKind::RBrace, open, &format!("policy `{}`", name.name))?;
        Ok(Policy {
            name,
            rules,
            span: kw.span.to(end),
        })
    }

    fn at_rule_start(&self) -> bool {
        let t = self.tok();
        t.kind == TokenKind::Word
            && matches!(t.kw, Kw::Allow | Kw::Deny | Kw::Require | Kw::Audit)
            && self.nth_kind(1) == TokenKind::Colon
    }

    /// `Rule ::= RuleKind ':' Expr [ 'if' Expr ]` (D8).
    fn rule(&mut self) -> PResult<Rule> {
        let t = self.tok();
        let kind = match (t.kind, t.kw) {
            (TokenKind::Word, Kw::Allow) => RuleKind::Allow,
            (TokenKind::Word, Kw::Deny) => RuleKind::Deny,
            (TokenKind::Word, Kw::Require) => RuleKind::Require,
            (TokenKind::Word, Kw::Audit) => RuleKind::Audit,
            _ => {
                return Err(
                    self.unexpected("a rule (`allow:`, `deny:`, `require:` or `audit:`) or `}`")
                );
            }
        };
        self.bump();
        self.expect(TokenKind::Colon, &format!("after `{}`", kind.as_str()))?;
        let expr = self.expr(false)?;
        let guard = if self.at_kw(Kw::If) {
            self.bump();
            Some(self.expr(false)?)
        } else {
            None
        };
        let end = guard.as_ref().map_or(expr.span, |g| g.span);
        if !self.at(TokenKind::RBrace) && !self.at_rule_start() && !self.at_eof() {
            let help = if self.at_kw(Kw::If) {
                "a rule has at most one `if` guard; combine conditions with `&&`"
            } else {
                "a rule ends after its expression or `if` guard; the next rule starts with `allow:`, `deny:`, `require:` or `audit:`"
            };
            return Err(self.unexpected_help(
                "the next rule (`allow:`, `deny:`, `require:` or `audit:`) or `}`",
                help,
            ));
        }
        Ok(Rule {
            kind,
            kind_span: t.span,
            expr,
            guard,
            span: t.span.to(end),
        })
    }

    /// Policy recovery: skip to the next rule start or the closing `}`.
    fn recover_rule(&mut self) {
        let mut depth = 0i32;
        loop {
            match self.kind() {
                TokenKind::Eof => return,
                TokenKind::RBrace if depth == 0 => return,
                TokenKind::Word if depth == 0 && self.at_rule_start() => return,
                TokenKind::Word if self.at_item_restart() => {
                    self.unwinding = true;
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

    // --- schedules, channels, memory, webhooks -----------------------------------------

    /// `Schedule ::= 'schedule' Ident '{' { SchedProp } '}'`
    fn schedule(&mut self) -> PResult<Schedule> {
        let kw = self.bump();
        let name = self.item_name("schedule")?;
        let open = self
            .expect(
                TokenKind::LBrace,
                &format!("after `schedule {}`", name.name),
            )?
            .span;
        let props = self.property_list(open, "the schedule", Sep::Required, Vals::Value);
        let end = self.close(
            TokenKind::RBrace,
            open,
            &format!("schedule `{}`", name.name),
        )?;
        Ok(Schedule {
            name,
            props,
            span: kw.span.to(end),
        })
    }

    /// `Channel ::= 'channel' Ident '{' { ChanProp | Policy | DataClass } '}'`
    fn channel(&mut self) -> PResult<Channel> {
        let kw = self.bump();
        let name = self.item_name("channel")?;
        let open = self
            .expect(TokenKind::LBrace, &format!("after `channel {}`", name.name))?
            .span;
        let mut entries = Vec::new();
        self.list_with("the channel", &[Kw::Policy], |p| {
            let e = if p.at_kw(Kw::Policy) {
                ChannelEntry::Policy(p.policy()?)
            } else if p.at_kw(Kw::DataClassification) {
                ChannelEntry::DataClassification(p.data_classification()?)
            } else {
                ChannelEntry::Prop(p.property(Sep::Required, Vals::ValueOrArray)?)
            };
            entries.push(e);
            Ok(())
        });
        let end = self.close(TokenKind::RBrace, open, &format!("channel `{}`", name.name))?;
        Ok(Channel {
            name,
            entries,
            span: kw.span.to(end),
        })
    }

    /// `DataClass ::= 'data_classification' '{' { Ident ':' Ident [ ',' ] } '}'`
    fn data_classification(&mut self) -> PResult<DataClassification> {
        let kw = self.bump();
        let open = self
            .expect(TokenKind::LBrace, "after `data_classification`")?
            .span;
        let mut rules = Vec::new();
        self.list("the data classification", |p| {
            let category = p.ident("a category name or `}`")?;
            p.expect(TokenKind::Colon, &format!("after `{}`", category.name))?;
            let action = p.ident("an action (`redact`, `block` or `allow`)")?;
            p.eat(TokenKind::Comma);
            rules.push(DataClassRule {
                span: category.span.to(action.span),
                category,
                action,
            });
            Ok(())
        });
        let end = self.close(TokenKind::RBrace, open, "the data classification")?;
        Ok(DataClassification {
            rules,
            span: kw.span.to(end),
        })
    }

    /// `Memory ::= 'memory' Ident '{' { MemProp | MemSearch } '}'`
    fn memory(&mut self) -> PResult<Memory> {
        let kw = self.bump();
        let name = self.item_name("memory")?;
        let open = self
            .expect(TokenKind::LBrace, &format!("after `memory {}`", name.name))?
            .span;
        let mut entries = Vec::new();
        self.list("the memory block", |p| {
            let e = if p.at_kw(Kw::Search) {
                MemoryEntry::Search(p.sub_block("search")?)
            } else {
                MemoryEntry::Prop(p.property(Sep::None, Vals::Value)?)
            };
            entries.push(e);
            Ok(())
        });
        let end = self.close(TokenKind::RBrace, open, &format!("memory `{}`", name.name))?;
        Ok(Memory {
            name,
            entries,
            span: kw.span.to(end),
        })
    }

    /// `Webhook ::= 'webhook' Ident '{' { HookProp | HookFilter } '}'`
    fn webhook(&mut self) -> PResult<Webhook> {
        let kw = self.bump();
        let name = self.item_name("webhook")?;
        let open = self
            .expect(TokenKind::LBrace, &format!("after `webhook {}`", name.name))?
            .span;
        let mut entries = Vec::new();
        self.list("the webhook block", |p| {
            let e = if p.at_kw(Kw::Filter) {
                WebhookEntry::Filter(p.sub_block("filter")?)
            } else {
                WebhookEntry::Prop(p.property(Sep::None, Vals::Value)?)
            };
            entries.push(e);
            Ok(())
        });
        let end = self.close(TokenKind::RBrace, open, &format!("webhook `{}`", name.name))?;
        Ok(Webhook {
            name,
            entries,
            span: kw.span.to(end),
        })
    }

    /// `'search' '{' { Name Value [','] } '}'` / `'filter' '{' … '}'` (D7).
    fn sub_block(&mut self, keyword: &str) -> PResult<SubBlock> {
        let kw = self.bump();
        let open = self
            .expect(TokenKind::LBrace, &format!("after `{keyword}`"))?
            .span;
        let props = self.property_list(open, keyword, Sep::None, Vals::Value);
        let end = self.close(TokenKind::RBrace, open, &format!("the `{keyword}` block"))?;
        Ok(SubBlock {
            props,
            span: kw.span.to(end),
        })
    }
}

/// `array_expr` / `record_expr` only return their own kind; this keeps the match total
/// without a panic path.
fn unreachable_expr<T>() -> PResult<T> {
    Err(super::Fail)
}
