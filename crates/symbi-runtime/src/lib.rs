//! The symbi runtime.
