//! Expressions (GRAMMAR §2.9; D2, D3, D4, D5, D12, D15, D16).
//!
//! Precedence climbing over the table of §2.9; every binary level is left associative.
//! `ns` ("no struct") is the condition-position flag of D2.

use super::{PResult, Parser};
use crate::ast::*;
use crate::lexer::{Kw, Number, TokenKind, decode_number, decode_string};
use crate::span::Span;
use smol_str::SmolStr;

impl<'s> Parser<'s> {
    /// `Expr` (`ns`: in a condition position, D2).
    pub(super) fn expr(&mut self, ns: bool) -> PResult<Expr> {
        super::with_stack(|| {
            self.enter()?;
            let r = self.expr_bp(0, ns);
            self.leave();
            r
        })
    }

    fn binop(&self) -> Option<BinaryOp> {
        let t = self.tok();
        Some(match t.kind {
            TokenKind::OrOr => BinaryOp::Or,
            TokenKind::AndAnd => BinaryOp::And,
            TokenKind::EqEq => BinaryOp::Eq,
            TokenKind::NotEq => BinaryOp::Ne,
            TokenKind::Word if t.kw == Kw::In => BinaryOp::In,
            TokenKind::Lt => BinaryOp::Lt,
            TokenKind::Gt => BinaryOp::Gt,
            TokenKind::Le => BinaryOp::Le,
            TokenKind::Ge => BinaryOp::Ge,
            TokenKind::Plus => BinaryOp::Add,
            TokenKind::Minus => BinaryOp::Sub,
            TokenKind::Star => BinaryOp::Mul,
            TokenKind::Slash => BinaryOp::Div,
            TokenKind::Percent => BinaryOp::Rem,
            _ => return None,
        })
    }

    /// Operators binding tighter than `min`; a left-deep chain counts toward the
    /// nesting limit (the tree it builds is that deep).
    fn expr_bp(&mut self, min: u8, ns: bool) -> PResult<Expr> {
        let mut lhs = self.unary(ns)?;
        let mut chain = 0u32;
        let r = loop {
            let Some(op) = self.binop() else {
                break Ok(lhs);
            };
            let prec = op.precedence();
            if prec <= min {
                break Ok(lhs);
            }
            if let Err(f) = self.enter() {
                break Err(f);
            }
            chain += 1;
            self.bump();
            let rhs = match self.expr_bp(prec, ns) {
                Ok(r) => r,
                Err(f) => break Err(f),
            };
            let span = lhs.span.to(rhs.span);
            lhs = Expr {
                kind: ExprKind::Binary {
                    op,
                    lhs: Box::new(lhs),
                    rhs: Box::new(rhs),
                },
                span,
            };
        };
        self.depth -= chain;
        r
    }

    /// `Unary ::= ( '!' | 'not' | '-' ) Unary | Postfix` (D15, D16).
    fn unary(&mut self, ns: bool) -> PResult<Expr> {
        let t = self.tok();
        let op = match t.kind {
            TokenKind::Bang => UnaryOp::Bang,
            TokenKind::Minus => UnaryOp::Neg,
            TokenKind::Word if t.kw == Kw::Not => UnaryOp::Not,
            _ => return self.postfix(ns),
        };
        self.bump();
        self.enter()?;
        let operand = super::with_stack(|| self.unary(ns));
        self.leave();
        let operand = operand?;
        let span = t.span.to(operand.span);
        Ok(Expr {
            kind: ExprKind::Unary {
                op,
                operand: Box::new(operand),
            },
            span,
        })
    }

    /// `Postfix ::= Primary { '.' Name | '(' [ ArgList ] ')' | '[' Expr ']' }`
    fn postfix(&mut self, ns: bool) -> PResult<Expr> {
        let mut e = self.primary(ns)?;
        let mut chain = 0u32;
        let r = loop {
            match self.kind() {
                TokenKind::Dot => {
                    self.bump();
                    if self.tok().kind != TokenKind::Word {
                        let help = if matches!(self.kind(), TokenKind::Int | TokenKind::Float) {
                            "a member name must be a word (`x.0` is not allowed; use `x[0]`)"
                        } else {
                            "write a member name after `.`"
                        };
                        break Err(self.unexpected_help("a member name after `.`", help));
                    }
                    let name = match self.name("a member name") {
                        Ok(n) => n,
                        Err(f) => break Err(f),
                    };
                    let span = e.span.to(name.span);
                    e = Expr {
                        kind: ExprKind::Member {
                            object: Box::new(e),
                            name,
                        },
                        span,
                    };
                }
                TokenKind::LParen => {
                    let (args, end) = match self.args() {
                        Ok(x) => x,
                        Err(f) => break Err(f),
                    };
                    let span = e.span.to(end);
                    e = Expr {
                        kind: ExprKind::Call {
                            callee: Box::new(e),
                            args,
                        },
                        span,
                    };
                }
                TokenKind::LBracket => {
                    let open = self.bump().span;
                    let index = match self.expr(false) {
                        Ok(i) => i,
                        Err(f) => break Err(f),
                    };
                    let end = match self.close(TokenKind::RBracket, open, "the index") {
                        Ok(s) => s,
                        Err(f) => break Err(f),
                    };
                    let span = e.span.to(end);
                    e = Expr {
                        kind: ExprKind::Index {
                            object: Box::new(e),
                            index: Box::new(index),
                        },
                        span,
                    };
                }
                _ => break Ok(e),
            }
            if let Err(f) = self.enter() {
                break Err(f);
            }
            chain += 1;
        };
        self.depth -= chain;
        r
    }

    /// `'(' [ Arg { ',' Arg } [ ',' ] ] ')'` with D4 for named arguments.
    fn args(&mut self) -> PResult<(Vec<Arg>, Span)> {
        let open = self.bump().span;
        let mut args = Vec::new();
        loop {
            if let Some(c) = self.eat(TokenKind::RParen) {
                return Ok((args, c.span));
            }
            if self.at_eof() {
                let end = self.close(TokenKind::RParen, open, "the argument list")?;
                return Ok((args, end));
            }
            if self.at(TokenKind::Comma) {
                return Err(self.unexpected(if args.is_empty() {
                    "an argument or `)`"
                } else {
                    "an argument or `)` (only one `,` between arguments)"
                }));
            }
            // D4: `Name =` (single `=`) or `Name :` starts a named argument.
            let t = self.tok();
            let arg = if t.kind == TokenKind::Word
                && matches!(self.nth_kind(1), TokenKind::Eq | TokenKind::Colon)
            {
                let name = self.name("an argument name")?;
                self.bump();
                let value = self.expr(false)?;
                Arg {
                    span: name.span.to(value.span),
                    name: Some(name),
                    value,
                }
            } else {
                let value = self.expr(false)?;
                Arg {
                    span: value.span,
                    name: None,
                    value,
                }
            };
            args.push(arg);
            if self.eat(TokenKind::Comma).is_some() {
                continue;
            }
            if let Some(c) = self.eat(TokenKind::RParen) {
                return Ok((args, c.span));
            }
            if self.at_eof() {
                let end = self.close(TokenKind::RParen, open, "the argument list")?;
                return Ok((args, end));
            }
            return Err(self.unexpected("`,` or `)` after the argument"));
        }
    }

    /// Whether the current token can start an expression.
    pub(super) fn at_expr_start(&self) -> bool {
        let t = self.tok();
        match t.kind {
            TokenKind::Str
            | TokenKind::Int
            | TokenKind::Float
            | TokenKind::Duration
            | TokenKind::Size
            | TokenKind::Vault
            | TokenKind::LBrace
            | TokenKind::LBracket
            | TokenKind::LParen
            | TokenKind::Minus
            | TokenKind::Bang => true,
            TokenKind::Word => {
                !t.kw.is_reserved()
                    || matches!(t.kw, Kw::True | Kw::False | Kw::Null | Kw::If | Kw::Not)
            }
            _ => false,
        }
    }

    /// A literal token (string, number, duration, size, `true`, `false`, `null`);
    /// the caller has checked the kind.
    pub(super) fn literal_token(&mut self) -> Literal {
        let t = self.bump();
        let text = self.text(t);
        let kind = match t.kind {
            TokenKind::Str => LitKind::Str(decode_string(text)),
            TokenKind::Word => match t.kw {
                Kw::True => LitKind::Bool(true),
                Kw::False => LitKind::Bool(false),
                _ => LitKind::Null,
            },
            // Invalid numbers were reported by the lexer (L006, L007); their value is 0.
            _ => match decode_number(text) {
                Ok(Number::Int(i)) => LitKind::Int(i),
                Ok(Number::Float(f)) => LitKind::Float(f),
                Ok(Number::Duration { millis, .. }) => LitKind::Duration(millis),
                Ok(Number::Size(b)) => LitKind::Size(b),
                Err(_) => match t.kind {
                    TokenKind::Float => LitKind::Float(0.0),
                    TokenKind::Duration => LitKind::Duration(0),
                    TokenKind::Size => LitKind::Size(0),
                    _ => LitKind::Int(0),
                },
            },
        };
        Literal { kind, span: t.span }
    }

    /// `Primary ::= Literal | VAULT | Ident | TypeLit | Record | Array | Lambda | IfExpr
    /// | '(' Expr ')'`
    fn primary(&mut self, ns: bool) -> PResult<Expr> {
        let t = self.tok();
        match t.kind {
            TokenKind::Str
            | TokenKind::Int
            | TokenKind::Float
            | TokenKind::Duration
            | TokenKind::Size => {
                let l = self.literal_token();
                Ok(Expr {
                    kind: ExprKind::Lit(l.kind),
                    span: l.span,
                })
            }
            TokenKind::Vault => {
                self.bump();
                let path = &self.text(t)["vault://".len()..];
                if path.is_empty() {
                    let d = crate::diagnostic::Diagnostic::error(
                        "P001",
                        format!("expected a path after `vault://`, found {}", self.found()),
                        Span::point(t.span.end),
                    )
                    .with_help("a vault reference is `vault://` followed by letters, digits, `_`, `.`, `/` or `-`");
                    return Err(self.report(d));
                }
                Ok(Expr {
                    kind: ExprKind::Vault(SmolStr::new(path)),
                    span: t.span,
                })
            }
            TokenKind::LBrace => self.record_expr(),
            TokenKind::LBracket => self.array_expr(),
            TokenKind::LParen => {
                let open = self.bump().span;
                let inner = self.expr(false)?;
                let end = self.close(TokenKind::RParen, open, "the parenthesised expression")?;
                Ok(Expr {
                    kind: ExprKind::Paren(Box::new(inner)),
                    span: open.to(end),
                })
            }
            TokenKind::Word => match t.kw {
                Kw::True | Kw::False | Kw::Null => {
                    let l = self.literal_token();
                    Ok(Expr {
                        kind: ExprKind::Lit(l.kind),
                        span: l.span,
                    })
                }
                Kw::If => {
                    let e = self.if_expr()?;
                    Ok(Expr {
                        span: e.span,
                        kind: ExprKind::If(Box::new(e)),
                    })
                }
                kw if kw.is_reserved() => Err(self.unexpected("an expression")),
                _ => self.ident_expr(ns),
            },
            _ => Err(self.unexpected("an expression")),
        }
    }

    /// An expression starting with an `Ident`: lambda (D5), type literal (D2) or variable.
    fn ident_expr(&mut self, ns: bool) -> PResult<Expr> {
        let t = self.bump();
        let name = SmolStr::new(self.text(t));
        match self.kind() {
            TokenKind::FatArrow => {
                self.bump();
                let body = self.expr(ns)?;
                let span = t.span.to(body.span);
                Ok(Expr {
                    kind: ExprKind::Lambda {
                        param: Ident::new(name, t.span),
                        body: Box::new(body),
                    },
                    span,
                })
            }
            TokenKind::LBrace => {
                // D2: `Ident {` opens a type literal if `Name :`/`STRING :` follows, or
                // if `}` follows outside a condition position.
                let k1 = self.nth_kind(1);
                let is_lit = (matches!(k1, TokenKind::Word | TokenKind::Str)
                    && self.nth_kind(2) == TokenKind::Colon)
                    || (k1 == TokenKind::RBrace && !ns);
                if !is_lit {
                    return Ok(Expr {
                        kind: ExprKind::Var(name),
                        span: t.span,
                    });
                }
                let (fields, end) = self.fields()?;
                Ok(Expr {
                    kind: ExprKind::TypeLit {
                        name: Ident::new(name, t.span),
                        fields,
                    },
                    span: t.span.to(end),
                })
            }
            _ => Ok(Expr {
                kind: ExprKind::Var(name),
                span: t.span,
            }),
        }
    }

    /// `Record ::= '{' { Field [ ',' ] } '}'` (D3).
    pub(super) fn record_expr(&mut self) -> PResult<Expr> {
        let start = self.tok().span;
        let (fields, end) = self.fields()?;
        Ok(Expr {
            kind: ExprKind::Record(fields),
            span: start.to(end),
        })
    }

    /// `'{' { ( Name | STRING ) ':' Expr [ ',' ] } '}'` — commas optional (D17).
    fn fields(&mut self) -> PResult<(Vec<Field>, Span)> {
        let open = self.bump().span;
        self.enter()?;
        let r = self.fields_rest(open);
        self.leave();
        r
    }

    fn fields_rest(&mut self, open: Span) -> PResult<(Vec<Field>, Span)> {
        let mut fields = Vec::new();
        loop {
            if let Some(c) = self.eat(TokenKind::RBrace) {
                return Ok((fields, c.span));
            }
            if self.at_eof() {
                let end = self.close(TokenKind::RBrace, open, "the record")?;
                return Ok((fields, end));
            }
            let t = self.tok();
            let key = match t.kind {
                TokenKind::Word => FieldKey::Name(self.name("a field name")?),
                TokenKind::Str => {
                    self.bump();
                    FieldKey::Str {
                        value: decode_string(self.text(t)),
                        span: t.span,
                    }
                }
                _ => {
                    let what = if fields.is_empty() {
                        "a field name or `}`"
                    } else {
                        "`,`, a field name or `}`"
                    };
                    return Err(if self.at(TokenKind::Comma) {
                        self.unexpected_help(what, "only one `,` may stand between two fields")
                    } else {
                        self.unexpected(what)
                    });
                }
            };
            if self.eat(TokenKind::Colon).is_none() {
                let help = "record fields are written `name: value`";
                let msg = format!(
                    "expected `:` after field `{}`, found {}",
                    key.as_str(),
                    self.found()
                );
                let d =
                    crate::diagnostic::Diagnostic::error("P001", msg, Span::point(self.prev_end()))
                        .with_primary_label("expected `:`")
                        .with_help(help);
                return Err(self.report(d));
            }
            let value = self.expr(false)?;
            fields.push(Field {
                span: key.span().to(value.span),
                key,
                value,
            });
            self.eat(TokenKind::Comma);
        }
    }

    /// `Array ::= '[' [ Expr { ',' Expr } [ ',' ] ] ']'` — commas required.
    pub(super) fn array_expr(&mut self) -> PResult<Expr> {
        let open = self.bump().span;
        self.enter()?;
        let r = self.array_rest(open);
        self.leave();
        r
    }

    fn array_rest(&mut self, open: Span) -> PResult<Expr> {
        let mut elems = Vec::new();
        loop {
            if let Some(c) = self.eat(TokenKind::RBracket) {
                return Ok(Expr {
                    kind: ExprKind::Array(elems),
                    span: open.to(c.span),
                });
            }
            if self.at_eof() {
                let end = self.close(TokenKind::RBracket, open, "the array")?;
                return Ok(Expr {
                    kind: ExprKind::Array(elems),
                    span: open.to(end),
                });
            }
            if self.at(TokenKind::Comma) {
                return Err(self.unexpected(if elems.is_empty() {
                    "an element or `]`"
                } else {
                    "an element or `]` (only one `,` between elements)"
                }));
            }
            elems.push(self.expr(false)?);
            if self.eat(TokenKind::Comma).is_some() {
                continue;
            }
            if let Some(c) = self.eat(TokenKind::RBracket) {
                return Ok(Expr {
                    kind: ExprKind::Array(elems),
                    span: open.to(c.span),
                });
            }
            if self.at_eof() {
                let end = self.close(TokenKind::RBracket, open, "the array")?;
                return Ok(Expr {
                    kind: ExprKind::Array(elems),
                    span: open.to(end),
                });
            }
            return Err(self.unexpected_help(
                "`,` or `]` after the array element",
                "array elements are separated by `,`",
            ));
        }
    }

    /// `IfExpr ::= 'if' Expr‹nostruct› Block 'else' ( IfExpr | Block )`
    fn if_expr(&mut self) -> PResult<IfExpr> {
        let kw = self.bump();
        self.enter()?;
        let r = super::with_stack(|| self.if_expr_rest(kw.span));
        self.leave();
        r
    }

    fn if_expr_rest(&mut self, start: Span) -> PResult<IfExpr> {
        let cond = self.expr(true)?;
        let then_block = self.block("after the condition of `if`")?;
        if !self.at_kw(Kw::Else) {
            let msg = format!(
                "expected `else` after the block of an `if` expression, found {}",
                self.found()
            );
            let d = crate::diagnostic::Diagnostic::error("P001", msg, Span::point(self.prev_end()))
                .with_primary_label("expected `else`")
                .with_help("an `if` used as a value needs an `else` branch");
            return Err(self.report(d));
        }
        self.bump();
        let else_branch = if self.at_kw(Kw::If) {
            ElseExpr::If(Box::new(self.if_expr()?))
        } else if self.at(TokenKind::LBrace) {
            ElseExpr::Block(self.block("after `else`")?)
        } else {
            return Err(self.unexpected("`if` or `{` after `else`"));
        };
        let end = match &else_branch {
            ElseExpr::If(i) => i.span,
            ElseExpr::Block(b) => b.span,
        };
        Ok(IfExpr {
            cond,
            then_block,
            else_branch,
            span: start.to(end),
        })
    }
}
