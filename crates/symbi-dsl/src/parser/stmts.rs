//! Blocks and statements (GRAMMAR §2.8; D9, D10, D11, D14, D18, D20).

use super::{PResult, Parser};
use crate::ast::*;
use crate::diagnostic::Diagnostic;
use crate::lexer::{Kw, TokenKind};

/// A statement, or the trailing expression of a block (D11).
pub(super) enum StmtOrTail {
    Stmt(Stmt),
    Tail(Expr),
}

impl<'s> Parser<'s> {
    /// `Block ::= '{' { Stmt } [ Expr ] '}'`. `context` completes "expected `{` …".
    pub(super) fn block(&mut self, context: &str) -> PResult<Block> {
        super::with_stack(|| self.block_inner(context))
    }

    fn block_inner(&mut self, context: &str) -> PResult<Block> {
        if !self.at(TokenKind::LBrace) {
            return Err(self.missing("`{`", context));
        }
        let open = self.bump().span;
        self.enter()?;
        let saved = std::mem::take(&mut self.local_items);
        let mut stmts = Vec::new();
        let mut tail = None;
        while !self.list_done(TokenKind::RBrace) && !self.at_item_restart() {
            let start = self.pos;
            match self.stmt() {
                Ok(StmtOrTail::Stmt(s)) => stmts.push(s),
                Ok(StmtOrTail::Tail(e)) => {
                    tail = Some(Box::new(e));
                    break;
                }
                Err(_) => self.recover(start),
            }
            self.ensure_progress(start, TokenKind::RBrace);
        }
        self.leave();
        let end = self.close(TokenKind::RBrace, open, "the block");
        self.local_items = saved;
        let end = end?;
        Ok(Block {
            stmts,
            tail,
            span: open.to(end),
        })
    }

    /// One statement (D1: keywords by position at a statement start; D11 otherwise).
    pub(super) fn stmt(&mut self) -> PResult<StmtOrTail> {
        let t = self.tok();
        if t.kind == TokenKind::Word {
            match t.kw {
                Kw::Let => return self.let_stmt().map(|s| StmtOrTail::Stmt(Stmt::Let(s))),
                Kw::If => return self.if_stmt().map(|s| StmtOrTail::Stmt(Stmt::If(s))),
                Kw::For => return self.for_stmt().map(|s| StmtOrTail::Stmt(Stmt::For(s))),
                Kw::While => return self.while_stmt().map(|s| StmtOrTail::Stmt(Stmt::While(s))),
                Kw::Match => return self.match_stmt().map(|s| StmtOrTail::Stmt(Stmt::Match(s))),
                Kw::Try => return self.try_stmt().map(|s| StmtOrTail::Stmt(Stmt::Try(s))),
                Kw::Return => {
                    return self
                        .return_stmt()
                        .map(|s| StmtOrTail::Stmt(Stmt::Return(s)));
                }
                Kw::Break | Kw::Continue => {
                    let kw = self.bump();
                    let word = self.text(kw);
                    let semi = self.expect_semi(&format!("`{word}`"))?;
                    let span = kw.span.to(semi.span);
                    return Ok(StmtOrTail::Stmt(if t.kw == Kw::Break {
                        self.note(SyntaxNoteKind::Break, kw.span);
                        Stmt::Break(span)
                    } else {
                        self.note(SyntaxNoteKind::Continue, kw.span);
                        Stmt::Continue(span)
                    }));
                }
                Kw::Else => {
                    return Err(self.unexpected_help(
                        "a statement",
                        "`else` must follow the closing `}` of an `if` block",
                    ));
                }
                Kw::Catch => {
                    return Err(self.unexpected_help(
                        "a statement",
                        "`catch` must follow the block of a `try`",
                    ));
                }
                Kw::With => {
                    return Err(self.unexpected_help(
                        "a statement",
                        "`with` blocks cannot nest: a `with` block belongs directly in an agent body",
                    ));
                }
                Kw::Function
                    if self.nth_kind(1) == TokenKind::Word
                        && self.nth_kind(2) == TokenKind::LParen =>
                {
                    return Err(self.unexpected_help(
                        "a statement",
                        "functions are declared at the top level or in an agent body, not inside blocks",
                    ));
                }
                _ => {}
            }
        }
        if self.at(TokenKind::Semi) {
            return Err(self.unexpected_help(
                "a statement",
                "there is no empty statement: remove this `;` (if/for/while/match/try statements take no `;`)",
            ));
        }
        // D11: an expression, then `;`, an assignment operator or the block's `}`.
        let expr = self.expr(false)?;
        if let Some(semi) = self.eat(TokenKind::Semi) {
            return Ok(StmtOrTail::Stmt(Stmt::Expr(ExprStmt {
                span: expr.span.to(semi.span),
                expr,
            })));
        }
        if let Some(op) = self.assign_op() {
            self.bump();
            let value = self.expr(false)?;
            if self.at(TokenKind::Eq) || self.assign_op().is_some() {
                return Err(self.unexpected_help(
                    "`;` after the assignment",
                    "there is no assignment expression: `a = b = c` is not allowed; assign one at a time",
                ));
            }
            let semi = self.expect_semi("the assignment")?;
            return Ok(StmtOrTail::Stmt(Stmt::Assign(AssignStmt {
                span: expr.span.to(semi.span),
                target: expr,
                op,
                value,
            })));
        }
        if self.at(TokenKind::RBrace) {
            return Ok(StmtOrTail::Tail(expr));
        }
        // Not `;` (checked above): this reports P002.
        let _ = self.expect_semi("the expression");
        Err(super::Fail)
    }

    fn assign_op(&self) -> Option<AssignOp> {
        Some(match self.kind() {
            TokenKind::Eq => AssignOp::Assign,
            TokenKind::PlusEq => AssignOp::Add,
            TokenKind::MinusEq => AssignOp::Sub,
            TokenKind::StarEq => AssignOp::Mul,
            TokenKind::SlashEq => AssignOp::Div,
            TokenKind::PercentEq => AssignOp::Rem,
            _ => return None,
        })
    }

    /// `Binder ::= Ident | '_'`
    fn binder(&mut self, what: &str) -> PResult<Ident> {
        self.ident(what)
    }

    /// `LetStmt ::= 'let' Binder [ ':' Type ] '=' Expr ';'`
    fn let_stmt(&mut self) -> PResult<LetStmt> {
        let kw = self.bump();
        let binder = self.binder("a name after `let`")?;
        let ty = if self.at(TokenKind::Colon) {
            let colon = self.bump();
            let ty = self.type_expr()?;
            self.note(SyntaxNoteKind::TypedLet, colon.span.to(ty.span));
            Some(ty)
        } else {
            None
        };
        if self.eat(TokenKind::Eq).is_none() {
            if self.at(TokenKind::EqEq) || self.assign_op().is_some() {
                return Err(self.unexpected("`=`"));
            }
            return Err(self.missing("`=`", &format!("after `let {}`", binder.name)));
        }
        let value = self.expr(false)?;
        let semi = self.expect_semi("the `let` statement")?;
        Ok(LetStmt {
            binder,
            ty,
            value,
            span: kw.span.to(semi.span),
        })
    }

    /// `IfStmt ::= 'if' Cond Block [ 'else' ( IfStmt | Block ) ]` (D9, D10).
    fn if_stmt(&mut self) -> PResult<IfStmt> {
        let kw = self.bump();
        self.enter()?;
        let r = self.if_stmt_rest(kw.span);
        self.leave();
        r
    }

    fn if_stmt_rest(&mut self, start: crate::span::Span) -> PResult<IfStmt> {
        let cond = if self.at_kw(Kw::Let) {
            let l = self.bump();
            let pattern = self.pattern()?;
            self.expect(TokenKind::Eq, "after the pattern of `if let`")?;
            let value = self.expr(true)?;
            Cond::Let {
                span: l.span.to(value.span),
                pattern,
                value,
            }
        } else {
            Cond::Expr(self.expr(true)?)
        };
        let then_block = self.block("after the condition of `if`")?;
        let mut end = then_block.span;
        let else_branch = if self.at_kw(Kw::Else) {
            self.bump();
            if self.at_kw(Kw::If) {
                let kw = self.bump();
                self.enter()?;
                let r = super::with_stack(|| self.if_stmt_rest(kw.span));
                self.leave();
                let nested = r?;
                end = nested.span;
                Some(ElseBranch::If(Box::new(nested)))
            } else if self.at(TokenKind::LBrace) {
                let b = self.block("after `else`")?;
                end = b.span;
                Some(ElseBranch::Block(b))
            } else {
                return Err(self.unexpected("`if` or `{` after `else`"));
            }
        } else {
            None
        };
        Ok(IfStmt {
            cond,
            then_block,
            else_branch,
            span: start.to(end),
        })
    }

    /// `Pattern ::= '_' | Ident | Ident '(' { Pattern [ ',' ] } ')'`
    fn pattern(&mut self) -> PResult<Pattern> {
        let t = self.tok();
        if t.kind != TokenKind::Word {
            return Err(self.unexpected("a pattern (`_`, a name or `Name(…)`)"));
        }
        if t.kw == Kw::Underscore {
            self.bump();
            return Ok(Pattern::Wildcard(t.span));
        }
        let name = self.ident("a pattern")?;
        if !self.at(TokenKind::LParen) {
            return Ok(Pattern::Binding(name));
        }
        let open = self.bump().span;
        self.enter()?;
        let mut args = Vec::new();
        let r = (|| -> PResult<crate::span::Span> {
            loop {
                if let Some(c) = self.eat(TokenKind::RParen) {
                    return Ok(c.span);
                }
                if self.at_eof() {
                    return self.close(TokenKind::RParen, open, "the pattern");
                }
                args.push(super::with_stack(|| self.pattern())?);
                if self.eat(TokenKind::Comma).is_none()
                    && !self.at(TokenKind::RParen)
                    && self.tok().kind != TokenKind::Word
                {
                    return Err(self.unexpected("`,`, `)` or another pattern"));
                }
            }
        })();
        self.leave();
        let end = r?;
        Ok(Pattern::Ctor {
            span: name.span.to(end),
            name,
            args,
        })
    }

    /// `ForStmt ::= 'for' Binder 'in' Expr‹nostruct› Block` (D14).
    fn for_stmt(&mut self) -> PResult<ForStmt> {
        let kw = self.bump();
        let binder = self.binder("a loop variable after `for`")?;
        if !self.at_kw(Kw::In) {
            return Err(self.missing("`in`", "after the loop variable"));
        }
        self.bump();
        let iter = self.expr(true)?;
        let body = self.block("to start the loop body")?;
        Ok(ForStmt {
            binder,
            iter,
            span: kw.span.to(body.span),
            body,
        })
    }

    /// `WhileStmt ::= 'while' Expr‹nostruct› Block` ([X], D20).
    fn while_stmt(&mut self) -> PResult<WhileStmt> {
        let kw = self.bump();
        self.note(SyntaxNoteKind::While, kw.span);
        let cond = self.expr(true)?;
        let body = self.block("to start the loop body")?;
        Ok(WhileStmt {
            cond,
            span: kw.span.to(body.span),
            body,
        })
    }

    /// `MatchStmt ::= 'match' Expr‹nostruct› '{' { Arm } '}'`
    fn match_stmt(&mut self) -> PResult<MatchStmt> {
        let kw = self.bump();
        let scrutinee = self.expr(true)?;
        if !self.at(TokenKind::LBrace) {
            return Err(self.missing("`{`", "after the value of `match`"));
        }
        let open = self.bump().span;
        self.enter()?;
        let saved = std::mem::take(&mut self.local_items);
        let mut arms = Vec::new();
        while !self.list_done(TokenKind::RBrace) && !self.at_item_restart() {
            let start = self.pos;
            match self.arm() {
                Ok(a) => arms.push(a),
                Err(_) => self.recover(start),
            }
            self.ensure_progress(start, TokenKind::RBrace);
        }
        self.local_items = saved;
        self.leave();
        let end = self.close(TokenKind::RBrace, open, "the `match`")?;
        Ok(MatchStmt {
            scrutinee,
            arms,
            span: kw.span.to(end),
        })
    }

    /// `Arm ::= ArmPattern '=>' ( Block | Expr ) [ ',' ]` (D3, D5).
    fn arm(&mut self) -> PResult<Arm> {
        let t = self.tok();
        let pattern = match t.kind {
            TokenKind::Str | TokenKind::Int | TokenKind::Float => {
                ArmPattern::Lit(self.literal_token())
            }
            TokenKind::Word => match t.kw {
                Kw::True | Kw::False | Kw::Null => ArmPattern::Lit(self.literal_token()),
                Kw::Underscore => {
                    self.bump();
                    ArmPattern::Wildcard(t.span)
                }
                _ => ArmPattern::Binding(self.ident("a pattern")?),
            },
            _ => {
                let what =
                    "a match arm (a string, number, `true`, `false`, `null`, `_` or a name) or `}`";
                return Err(if self.at(TokenKind::Minus) {
                    self.unexpected_help(
                        what,
                        "negative numbers cannot be arm patterns; bind the value and compare",
                    )
                } else {
                    self.unexpected(what)
                });
            }
        };
        self.expect(TokenKind::FatArrow, "after the arm pattern")?;
        // D3: `{` followed by `Name :` or `STRING :` is a record, otherwise a block.
        let body = if self.at(TokenKind::LBrace)
            && !(matches!(self.nth_kind(1), TokenKind::Word | TokenKind::Str)
                && self.nth_kind(2) == TokenKind::Colon)
        {
            ArmBody::Block(self.block("")?)
        } else {
            if self.at_kw(Kw::Return)
                || self.at_kw(Kw::Let)
                || self.at_kw(Kw::Break)
                || self.at_kw(Kw::Continue)
            {
                return Err(self.unexpected_help(
                    "an expression or a block",
                    "an arm body is one expression or one block: write `=> { … }` around statements",
                ));
            }
            ArmBody::Expr(self.expr(false)?)
        };
        let span = pattern.span().to(body.span());
        self.eat(TokenKind::Comma);
        Ok(Arm {
            pattern,
            body,
            span,
        })
    }

    /// `TryStmt ::= 'try' Block { Catch }`
    fn try_stmt(&mut self) -> PResult<TryStmt> {
        let kw = self.bump();
        let body = self.block("after `try`")?;
        let mut end = body.span;
        let mut catches = Vec::new();
        while self.at_kw(Kw::Catch) {
            let c = self.catch()?;
            end = c.span;
            catches.push(c);
        }
        Ok(TryStmt {
            body,
            catches,
            span: kw.span.to(end),
        })
    }

    /// `Catch ::= 'catch' '(' Ident [ Ident ] ')' Block` (D18).
    fn catch(&mut self) -> PResult<Catch> {
        let kw = self.bump();
        if !self.at(TokenKind::LParen) {
            let msg = format!("expected `(` after `catch`, found {}", self.found());
            let d = Diagnostic::error("P001", msg, crate::span::Span::point(self.prev_end()))
                .with_primary_label("expected `(`")
                .with_help("write `catch (e) { … }` or `catch (Kind e) { … }`");
            return Err(self.report(d));
        }
        self.bump();
        let first = self.ident("an error variable")?;
        let (kind, binding) = if self.tok().kind == TokenKind::Word {
            let second = self.ident("an error variable")?;
            (Some(first), second)
        } else {
            (None, first)
        };
        self.expect(TokenKind::RParen, "after the caught error")?;
        let body = self.block("after `catch (…)`")?;
        Ok(Catch {
            kind,
            binding,
            span: kw.span.to(body.span),
            body,
        })
    }

    /// `ReturnStmt ::= 'return' [ Expr ] ';'`
    fn return_stmt(&mut self) -> PResult<ReturnStmt> {
        let kw = self.bump();
        let value = if self.at(TokenKind::Semi) || !self.at_expr_start() {
            None
        } else {
            Some(self.expr(false)?)
        };
        let semi = self.expect_semi("the `return` statement")?;
        Ok(ReturnStmt {
            value,
            span: kw.span.to(semi.span),
        })
    }
}
