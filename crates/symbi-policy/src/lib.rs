//! Policy engine: Cedar policies and DSL policy rules combined under deny-overrides, hot reload, batch evaluation
