//! The HTTP edge of symbi: the Symbiont-compatible REST API (API-CONTRACT.md), bearer
//! authentication, webhooks, metrics and the OpenAPI document.

pub mod auth;
pub mod error;
pub mod webhook;
