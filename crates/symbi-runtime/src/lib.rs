//! The symbi runtime.
pub mod gateway;
