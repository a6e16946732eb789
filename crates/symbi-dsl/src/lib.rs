//! The symbi DSL: lexer, parser, diagnostics, formatter, static checker and metered interpreter
