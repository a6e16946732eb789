//! The OpenAPI 3.1 document, generated from the handlers' `#[utoipa::path]` annotations and
//! the types of [`crate::model`]. Every operation additionally documents the framework-level
//! error answers of API-CONTRACT §2.3 (400, 401, 403, 404, 405, 408, 413, 415, 422, 429,
//! 500) with the `ErrorResponse` body, so a generated client (or schemathesis) knows every
//! status the server can answer.

use crate::model::ErrorResponse;
use crate::routes::{agents, approvals, channels, schedules, system};
use std::sync::OnceLock;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
use utoipa::{Modify, OpenApi};

/// The document.
#[derive(OpenApi)]
#[openapi(
    info(title = "symbi runtime API", description = "Symbiont runtime API v1 compatible REST API of symbi (API-CONTRACT.md)."),
    paths(
        system::health, system::live, system::ready, system::scheduler_health, system::status, system::metrics_json,
        system::prometheus, system::openapi, system::agents_md,
        agents::list, agents::create, agents::update, agents::delete, agents::status, agents::execute, agents::history,
        agents::heartbeat, agents::push_event, agents::send_message, agents::drain_messages, agents::message_status,
        agents::workflow,
        schedules::list, schedules::create, schedules::get, schedules::update, schedules::delete, schedules::pause,
        schedules::resume, schedules::trigger, schedules::history, schedules::next_runs,
        channels::list, channels::register, channels::get, channels::update, channels::delete, channels::start,
        channels::stop, channels::health, channels::mappings, channels::add_mapping, channels::remove_mapping,
        channels::audit,
        approvals::list, approvals::approve, approvals::deny,
    ),
    components(schemas(ErrorResponse)),
    modifiers(&Common),
    security(("bearer" = [])),
)]
pub struct ApiDoc;

struct Common;

impl Modify for Common {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        let err = |desc: &str| {
            ResponseBuilder::new()
                .description(desc)
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("ErrorResponse")))
                        .build(),
                )
                .build()
        };
        const COMMON: &[(&str, &str)] = &[
            ("400", "Invalid request (bad JSON, bad id, bad value)"),
            ("401", "Missing or invalid bearer token"),
            ("403", "Scoped key not allowed"),
            ("404", "Not found"),
            ("405", "Method not allowed"),
            ("408", "Request timeout"),
            ("409", "Conflict"),
            ("413", "Body too large"),
            ("415", "Body is not application/json"),
            ("422", "JSON of the wrong shape"),
            ("429", "Rate limited"),
            ("500", "Internal failure"),
            ("503", "Unavailable"),
        ];
        for item in doc.paths.paths.values_mut() {
            for op in [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.delete,
            ]
            .into_iter()
            .flatten()
            {
                for (code, desc) in COMMON {
                    op.responses
                        .responses
                        .entry(code.to_string())
                        .or_insert_with(|| err(desc).into());
                }
            }
        }
    }
}

/// The document as JSON text (built once).
pub fn document_json() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| {
        ApiDoc::openapi()
            .to_pretty_json()
            .expect("the OpenAPI document serialises")
    })
}
