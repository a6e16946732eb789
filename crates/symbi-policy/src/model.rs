//! The entity and action model: the built-in Cedar schema and the translation of a
//! [`PolicyRequest`] into Cedar entities, context and request.
//!
//! Entities are built to conform to the schema by construction (declared attributes are
//! coerced to their declared types; everything else becomes a string-valued entity tag), so
//! no per-request schema validation is needed. A value that cannot be coerced is a
//! [`RequestError`] and the decision fails closed.

use crate::error::PolicyError;
use cedar_policy::{
    Context, Entities, Entity, EntityId, EntityTypeName, EntityUid, Request, RestrictedExpression,
    Schema, Validator,
};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::str::FromStr;
use std::sync::OnceLock;
use symbi_types::{ActionCategory, PolicyRequest, Principal, SandboxTier, SubjectKind};

/// The Cedar schema, as shipped in `policies/symbi.cedarschema`.
pub const SCHEMA_TEXT: &str = include_str!("../../../policies/symbi.cedarschema");

/// The principal attribute that selects the principal's entity type: `"Agent"` (default),
/// `"Client"` (an API client) or `"Operator"`. See [`crate::requests`] for constructors.
pub const PRINCIPAL_TYPE_ATTR: &str = "principal_type";

/// Name of the action group that contains `file_read` and `file_write`.
pub const FILE_ACCESS_GROUP: &str = "file_access";

/// A request that does not fit the model (the decision fails closed with this message).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RequestError(pub String);

/// Declared attribute types (the subset the schema uses).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AttrType {
    Str,
    Bool,
    StrSet,
    OptLong,
}

/// Entity types of the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum EntityKind {
    Agent,
    Client,
    Operator,
    Tool,
    Topic,
    Host,
    File,
    MemoryStore,
    DataSet,
    Secret,
    Model,
    Resource,
}

impl EntityKind {
    const ALL: [EntityKind; 12] = [
        Self::Agent,
        Self::Client,
        Self::Operator,
        Self::Tool,
        Self::Topic,
        Self::Host,
        Self::File,
        Self::MemoryStore,
        Self::DataSet,
        Self::Secret,
        Self::Model,
        Self::Resource,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Agent => "Agent",
            Self::Client => "Client",
            Self::Operator => "Operator",
            Self::Tool => "Tool",
            Self::Topic => "Topic",
            Self::Host => "Host",
            Self::File => "File",
            Self::MemoryStore => "MemoryStore",
            Self::DataSet => "DataSet",
            Self::Secret => "Secret",
            Self::Model => "Model",
            Self::Resource => "Resource",
        }
    }

    pub(crate) fn from_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == s)
    }

    /// Declared attributes other than `name` (which every type has).
    fn attrs(self) -> &'static [(&'static str, AttrType)] {
        use AttrType::*;
        match self {
            Self::Agent => &[
                ("capabilities", StrSet),
                ("sandbox", Str),
                ("id", Str),
                ("registered", Bool),
                ("suspended", Bool),
            ],
            Self::Client | Self::Operator => &[("roles", StrSet)],
            Self::Tool => &[
                ("kind", Str),
                ("server", Str),
                ("schema_verified", Bool),
                ("tier", Str),
            ],
            Self::Host => &[
                ("url", Str),
                ("domain", Str),
                ("scheme", Str),
                ("method", Str),
            ],
            Self::File => &[("path", Str), ("local", Bool), ("in_project", Bool)],
            Self::Secret => &[("path", Str)],
            Self::Model => &[("model", Str), ("provider", Str)],
            Self::Resource => &[("amount", OptLong)],
            Self::Topic | Self::MemoryStore | Self::DataSet => &[],
        }
    }

    /// The attribute that defaults to the entity's name when absent (`Host.domain`, …).
    fn name_alias(self) -> Option<&'static str> {
        match self {
            Self::Host => Some("domain"),
            Self::File | Self::Secret => Some("path"),
            Self::Model => Some("model"),
            _ => None,
        }
    }

    fn of_subject(kind: SubjectKind) -> Self {
        match kind {
            SubjectKind::Tool => Self::Tool,
            SubjectKind::Agent => Self::Agent,
            SubjectKind::Topic => Self::Topic,
            SubjectKind::Url => Self::Host,
            SubjectKind::File => Self::File,
            SubjectKind::MemoryStore => Self::MemoryStore,
            SubjectKind::DataSet => Self::DataSet,
            SubjectKind::Secret => Self::Secret,
            SubjectKind::Llm => Self::Model,
            SubjectKind::Resource | SubjectKind::Other => Self::Resource,
        }
    }
}

/// Everything precomputed about one action.
pub(crate) struct ActionInfo {
    pub(crate) uid: EntityUid,
    /// The action entity with its groups as parents (needed for `action in Action::"file_access"`).
    entity: Entity,
    /// Groups this action belongs to.
    pub(crate) groups: Vec<EntityUid>,
    principals: Vec<EntityKind>,
    resources: Vec<EntityKind>,
}

/// The loaded model: schema, validator, type names and per-action facts.
pub(crate) struct Model {
    pub(crate) validator: Validator,
    type_names: Vec<EntityTypeName>,
    actions: Vec<ActionInfo>,
}

static MODEL: OnceLock<Result<Model, String>> = OnceLock::new();

/// The model, loaded and checked once per process.
pub(crate) fn model() -> Result<&'static Model, PolicyError> {
    MODEL
        .get_or_init(Model::load)
        .as_ref()
        .map_err(|e| PolicyError::Schema(e.clone()))
}

/// The Cedar request and entities the engine evaluates for `req` (for debugging, tools and
/// benchmarks; the engine does this itself on every decision).
pub fn to_cedar(req: &PolicyRequest) -> Result<(Request, Entities), RequestError> {
    model()
        .map_err(|e| RequestError(e.to_string()))?
        .cedar_request(req)
}

/// Index of a category in [`ActionCategory::ALL`].
pub(crate) fn action_index(c: ActionCategory) -> usize {
    c as usize
}

impl Model {
    fn load() -> Result<Model, String> {
        let (schema, warnings) =
            Schema::from_cedarschema_str(SCHEMA_TEXT).map_err(|e| e.to_string())?;
        if let Some(w) = warnings.into_iter().next() {
            return Err(format!("schema warning: {w}"));
        }
        let type_names = EntityKind::ALL
            .iter()
            .map(|k| EntityTypeName::from_str(k.name()).map_err(|e| e.to_string()))
            .collect::<Result<Vec<_>, _>>()?;
        for t in &type_names {
            if !schema.entity_types().any(|x| x == t) {
                return Err(format!("entity type {t} is missing from the schema"));
            }
        }
        let action_entities = schema.action_entities().map_err(|e| e.to_string())?;
        let mut actions = Vec::with_capacity(ActionCategory::ALL.len());
        for (i, c) in ActionCategory::ALL.into_iter().enumerate() {
            debug_assert_eq!(action_index(c), i);
            let uid = action_uid(c.as_str());
            let entity = action_entities
                .get(&uid)
                .cloned()
                .ok_or_else(|| format!("action {} is missing from the schema", c.as_str()))?;
            let groups: Vec<EntityUid> = action_entities
                .ancestors(&uid)
                .into_iter()
                .flatten()
                .cloned()
                .collect();
            let kinds = |it: Option<Box<dyn Iterator<Item = &EntityTypeName> + '_>>| -> Result<Vec<EntityKind>, String> {
                let mut out: Vec<EntityKind> = Vec::new();
                for t in it.ok_or_else(|| format!("action {} has no appliesTo", c.as_str()))? {
                    let k = EntityKind::from_name(&t.to_string())
                        .ok_or_else(|| format!("unknown entity type {t} in appliesTo of {}", c.as_str()))?;
                    if !out.contains(&k) {
                        out.push(k);
                    }
                }
                Ok(out)
            };
            let principals = kinds(
                schema
                    .principals_for_action(&uid)
                    .map(|i| Box::new(i) as Box<dyn Iterator<Item = _>>),
            )?;
            let resources = kinds(
                schema
                    .resources_for_action(&uid)
                    .map(|i| Box::new(i) as Box<dyn Iterator<Item = _>>),
            )?;
            actions.push(ActionInfo {
                uid,
                entity,
                groups,
                principals,
                resources,
            });
        }
        Ok(Model {
            validator: Validator::new(schema),
            type_names,
            actions,
        })
    }

    pub(crate) fn action(&self, c: ActionCategory) -> &ActionInfo {
        &self.actions[action_index(c)]
    }

    fn type_name(&self, k: EntityKind) -> &EntityTypeName {
        &self.type_names[k as usize]
    }

    /// Translates a request into Cedar: request plus the entities it needs.
    pub(crate) fn cedar_request(
        &self,
        req: &PolicyRequest,
    ) -> Result<(Request, Entities), RequestError> {
        let values = self.context_values(req);
        self.cedar_request_with(req, values)
    }

    /// [`Self::cedar_request`] with the context values already computed (errors in them are
    /// reported only after the principal's and resource's, as the full translation does).
    pub(crate) fn cedar_request_with(
        &self,
        req: &PolicyRequest,
        values: Result<ContextValues, RequestError>,
    ) -> Result<(Request, Entities), RequestError> {
        let action = self.action(req.category);
        let pkind = principal_kind(&req.principal)?;
        if !action.principals.contains(&pkind) {
            return Err(RequestError(format!(
                "request does not fit the policy model: a {} cannot be the principal of {} (expected {})",
                pkind.name(),
                req.category,
                names(&action.principals)
            )));
        }
        let mut rkind = EntityKind::of_subject(req.subject.kind);
        if !action.resources.contains(&rkind) && req.subject.kind == SubjectKind::Other {
            // A subject without a kind of its own takes the action's natural resource type.
            rkind = action.resources[0];
        }
        if !action.resources.contains(&rkind) {
            return Err(RequestError(format!(
                "request does not fit the policy model: a {} cannot be the resource of {} (expected {})",
                rkind.name(),
                req.category,
                names(&action.resources)
            )));
        }
        let principal = self.principal_entity(pkind, &req.principal)?;
        let resource = self.subject_entity(rkind, &req.subject.name, &req.subject.attrs)?;
        let context = self.context(req, &values?)?;
        let request = Request::new(
            principal.uid(),
            action.uid.clone(),
            resource.uid(),
            context,
            None,
        )
        .map_err(|e| RequestError(format!("cannot build the Cedar request: {e}")))?;
        let entities = Entities::from_entities([principal, resource, action.entity.clone()], None)
            .map_err(|e| RequestError(format!("cannot build the Cedar entities: {e}")))?;
        Ok((request, entities))
    }

    fn uid(&self, kind: EntityKind, id: &str) -> EntityUid {
        EntityUid::from_type_name_and_id(self.type_name(kind).clone(), EntityId::new(id))
    }

    fn principal_entity(&self, kind: EntityKind, p: &Principal) -> Result<Entity, RequestError> {
        let mut attrs: Vec<(String, RestrictedExpression)> = Vec::with_capacity(6);
        let mut tags: Vec<(String, RestrictedExpression)> = Vec::new();
        attrs.push((
            "name".into(),
            RestrictedExpression::new_string(p.name.clone()),
        ));
        let what = || format!("principal {}::{:?}", kind.name(), p.name);
        for (attr, ty) in kind.attrs() {
            let value = match (kind, *attr) {
                (EntityKind::Agent, "capabilities") => {
                    let mut caps: Vec<String> = p.capabilities.clone();
                    if let Some(v) = p.attributes.get("capabilities") {
                        caps.extend(coerce_set(v).map_err(|e| attr_err(&what(), attr, e))?);
                    }
                    Some(RestrictedExpression::new_set(
                        caps.into_iter().map(RestrictedExpression::new_string),
                    ))
                }
                (EntityKind::Agent, "sandbox") => Some(RestrictedExpression::new_string(
                    match p.attributes.get("sandbox") {
                        None | Some(Value::Null) => String::new(),
                        Some(v) => {
                            let s = coerce_str(v).map_err(|e| attr_err(&what(), attr, e))?;
                            // Canonical tier spelling so policies compare against one word.
                            s.parse::<SandboxTier>()
                                .map(|t| t.as_str().to_string())
                                .unwrap_or(s)
                        }
                    },
                )),
                (EntityKind::Agent, "id") => {
                    Some(RestrictedExpression::new_string(match &p.agent_id {
                        Some(id) => id.to_string(),
                        None => match p.attributes.get("id") {
                            Some(v) if !v.is_null() => {
                                coerce_str(v).map_err(|e| attr_err(&what(), attr, e))?
                            }
                            _ => String::new(),
                        },
                    }))
                }
                (EntityKind::Agent, "registered") => Some(RestrictedExpression::new_bool(match p
                    .attributes
                    .get("registered")
                {
                    Some(v) if !v.is_null() => {
                        coerce_bool(v).map_err(|e| attr_err(&what(), attr, e))?
                    }
                    _ => p.agent_id.is_some(),
                })),
                _ => attr_value(*ty, p.attributes.get(*attr))
                    .map_err(|e| attr_err(&what(), attr, e))?,
            };
            if let Some(v) = value {
                attrs.push(((*attr).to_string(), v));
            }
        }
        for (k, v) in &p.attributes {
            if k == PRINCIPAL_TYPE_ATTR || k == "name" || kind.attrs().iter().any(|(a, _)| a == k) {
                continue;
            }
            tags.push((k.clone(), RestrictedExpression::new_string(tag_string(v))));
        }
        Entity::new_with_tags(self.uid(kind, &p.name), attrs, [], tags)
            .map_err(|e| RequestError(format!("cannot build {}: {e}", what())))
    }

    fn subject_entity(
        &self,
        kind: EntityKind,
        name: &str,
        subject_attrs: &Map<String, Value>,
    ) -> Result<Entity, RequestError> {
        let mut attrs: Vec<(String, RestrictedExpression)> = Vec::with_capacity(6);
        let mut tags: Vec<(String, RestrictedExpression)> = Vec::new();
        attrs.push((
            "name".into(),
            RestrictedExpression::new_string(name.to_string()),
        ));
        let what = || format!("resource {}::{:?}", kind.name(), name);
        for (attr, ty) in kind.attrs() {
            let given = subject_attrs.get(*attr).filter(|v| !v.is_null());
            let value = match (given, kind.name_alias()) {
                (None, Some(alias)) if alias == *attr => {
                    Some(RestrictedExpression::new_string(name.to_string()))
                }
                _ => attr_value(*ty, given).map_err(|e| attr_err(&what(), attr, e))?,
            };
            if let Some(v) = value {
                attrs.push(((*attr).to_string(), v));
            }
        }
        for (k, v) in subject_attrs {
            if k == "name" || kind.attrs().iter().any(|(a, _)| a == k) {
                continue;
            }
            tags.push((k.clone(), RestrictedExpression::new_string(tag_string(v))));
        }
        Entity::new_with_tags(self.uid(kind, name), attrs, [], tags)
            .map_err(|e| RequestError(format!("cannot build {}: {e}", what())))
    }

    /// The context record's values, coerced to their declared types (the cheap part of the
    /// context: no Cedar values are built and the arguments are not hashed yet).
    pub(crate) fn context_values(
        &self,
        req: &PolicyRequest,
    ) -> Result<ContextValues, RequestError> {
        let ctx = &req.context;
        let mut values: Vec<CtxValue> = Vec::with_capacity(CONTEXT_FIELDS.len());
        for (field, _) in CONTEXT_FIELDS {
            let v = match field {
                "action_name" => CtxValue::Str(req.name.clone()),
                // Both come from the arguments; hashed only when a Cedar context is built.
                "args_digest" | "args_size" => CtxValue::Args,
                "has_human_approval" => CtxValue::Bool(match ctx.get("has_human_approval") {
                    Some(v) if !v.is_null() => coerce_bool(v).map_err(|e| ctx_err(field, e))?,
                    _ => false,
                }),
                "initiator" => CtxValue::Str(
                    match ctx
                        .get("initiator")
                        .or_else(|| ctx.get("principal"))
                        .or_else(|| ctx.get("user"))
                    {
                        Some(Value::Object(o)) => o
                            .get("name")
                            .or_else(|| o.get("id"))
                            .map(tag_string)
                            .unwrap_or_default(),
                        Some(Value::Null) | None => String::new(),
                        Some(v) => coerce_str(v).map_err(|e| ctx_err(field, e))?,
                    },
                ),
                "trigger" => CtxValue::Str(match ctx.get("trigger") {
                    // The runtime may pass the whole trigger record; policies see its kind.
                    Some(Value::Object(o)) => o.get("kind").map(tag_string).unwrap_or_default(),
                    Some(Value::Null) | None => String::new(),
                    Some(v) => coerce_str(v).map_err(|e| ctx_err(field, e))?,
                }),
                "execution" => CtxValue::Str(match (&req.execution, ctx.get("execution")) {
                    (Some(id), _) => id.to_string(),
                    (None, Some(v)) if !v.is_null() => {
                        coerce_str(v).map_err(|e| ctx_err(field, e))?
                    }
                    _ => String::new(),
                }),
                other => CtxValue::Str(match ctx.get(other) {
                    Some(v) if !v.is_null() => coerce_str(v).map_err(|e| ctx_err(field, e))?,
                    _ => String::new(),
                }),
            };
            values.push(v);
        }
        Ok(ContextValues(values))
    }

    fn context(
        &self,
        req: &PolicyRequest,
        values: &ContextValues,
    ) -> Result<Context, RequestError> {
        let mut digest: Option<(String, usize)> = None;
        let mut pairs: Vec<(String, RestrictedExpression)> =
            Vec::with_capacity(CONTEXT_FIELDS.len());
        for ((field, _), v) in CONTEXT_FIELDS.iter().zip(&values.0) {
            let e = match v {
                CtxValue::Str(s) => RestrictedExpression::new_string(s.clone()),
                CtxValue::Bool(b) => RestrictedExpression::new_bool(*b),
                CtxValue::Args => {
                    let (d, size) = digest.get_or_insert_with(|| args_digest(req));
                    match *field {
                        "args_size" => RestrictedExpression::new_long(*size as i64),
                        _ => RestrictedExpression::new_string(d.clone()),
                    }
                }
            };
            pairs.push(((*field).to_string(), e));
        }
        Context::from_pairs(pairs)
            .map_err(|e| RequestError(format!("cannot build the Cedar context: {e}")))
    }
}

/// One context field's value before it becomes a Cedar value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum CtxValue {
    Str(String),
    Bool(bool),
    /// `args_digest` / `args_size`: derived from the request's arguments.
    Args,
}

/// The values of [`CONTEXT_FIELDS`], in that order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ContextValues(pub(crate) Vec<CtxValue>);

/// The context record's fields (must match `RequestContext` in the schema; a unit test
/// checks that).
pub(crate) const CONTEXT_FIELDS: [(&str, &str); 8] = [
    ("action_name", "String"),
    ("args_digest", "String"),
    ("args_size", "Long"),
    ("has_human_approval", "Bool"),
    ("trigger", "String"),
    ("session", "String"),
    ("initiator", "String"),
    ("execution", "String"),
];

fn names(kinds: &[EntityKind]) -> String {
    kinds
        .iter()
        .map(|k| k.name())
        .collect::<Vec<_>>()
        .join(" or ")
}

fn attr_err(what: &str, attr: &str, e: String) -> RequestError {
    RequestError(format!("attribute `{attr}` of {what}: {e}"))
}

fn ctx_err(field: &str, e: String) -> RequestError {
    RequestError(format!("context field `{field}`: {e}"))
}

/// Which entity type the principal is ([`PRINCIPAL_TYPE_ATTR`]).
pub(crate) fn principal_kind(p: &Principal) -> Result<EntityKind, RequestError> {
    match p.attributes.get(PRINCIPAL_TYPE_ATTR) {
        None | Some(Value::Null) => Ok(EntityKind::Agent),
        Some(Value::String(s)) => match s.to_ascii_lowercase().as_str() {
            "agent" => Ok(EntityKind::Agent),
            "client" => Ok(EntityKind::Client),
            "operator" => Ok(EntityKind::Operator),
            _ => Err(RequestError(format!(
                "unknown principal type `{s}` (expected Agent, Client or Operator)"
            ))),
        },
        Some(v) => Err(RequestError(format!(
            "principal type must be a string, got {v}"
        ))),
    }
}

/// Value of a declared attribute. Absent values read as "" / false / [] (documented in the
/// schema); optional attributes stay absent.
fn attr_value(ty: AttrType, v: Option<&Value>) -> Result<Option<RestrictedExpression>, String> {
    let v = v.filter(|v| !v.is_null());
    Ok(match ty {
        AttrType::Str => Some(RestrictedExpression::new_string(match v {
            Some(v) => coerce_str(v)?,
            None => String::new(),
        })),
        AttrType::Bool => Some(RestrictedExpression::new_bool(match v {
            Some(v) => coerce_bool(v)?,
            None => false,
        })),
        AttrType::StrSet => Some(RestrictedExpression::new_set(
            match v {
                Some(v) => coerce_set(v)?,
                None => Vec::new(),
            }
            .into_iter()
            .map(RestrictedExpression::new_string),
        )),
        AttrType::OptLong => match v {
            Some(v) => Some(RestrictedExpression::new_long(coerce_long(v)?)),
            None => None,
        },
    })
}

fn coerce_str(v: &Value) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Number(n) => Ok(n.to_string()),
        other => Err(format!("expected a string, got {}", kind_of(other))),
    }
}

fn coerce_bool(v: &Value) -> Result<bool, String> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(false),
        other => Err(format!("expected a boolean, got {other}")),
    }
}

fn coerce_long(v: &Value) -> Result<i64, String> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .ok_or_else(|| format!("expected an integer, got {n}")),
        Value::String(s) => s
            .trim()
            .parse::<i64>()
            .map_err(|_| format!("expected an integer, got {s:?}")),
        other => Err(format!("expected an integer, got {}", kind_of(other))),
    }
}

fn coerce_set(v: &Value) -> Result<Vec<String>, String> {
    match v {
        Value::Array(items) => items
            .iter()
            .map(|i| match i {
                Value::String(s) => Ok(s.clone()),
                Value::Number(_) | Value::Bool(_) => Ok(i.to_string()),
                other => Err(format!(
                    "expected a list of strings, found {} in it",
                    kind_of(other)
                )),
            })
            .collect(),
        Value::String(s) => Ok(vec![s.clone()]),
        other => Err(format!(
            "expected a list of strings, got {}",
            kind_of(other)
        )),
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

/// Tags are strings: strings as they are, anything else as its JSON text.
fn tag_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// SHA-256 (hex) and byte size of `{"args": [...], "named": {...}}` in compact JSON.
pub(crate) fn args_digest(req: &PolicyRequest) -> (String, usize) {
    if req.args.is_empty() && req.named.is_empty() {
        // The empty case is by far the most common (runtime operations); skip hashing.
        static EMPTY: OnceLock<(String, usize)> = OnceLock::new();
        return EMPTY
            .get_or_init(|| digest_of(br#"{"args":[],"named":{}}"#))
            .clone();
    }
    let json = serde_json::to_vec(&serde_json::json!({ "args": req.args, "named": req.named }))
        .unwrap_or_default();
    digest_of(&json)
}

fn digest_of(bytes: &[u8]) -> (String, usize) {
    (hex::encode(Sha256::digest(bytes)), bytes.len())
}

pub(crate) fn action_uid(name: &str) -> EntityUid {
    EntityUid::from_type_name_and_id(
        EntityTypeName::from_str("Action").expect("`Action` is a valid type name"),
        EntityId::new(name),
    )
}

/// Entity ids of every action group an action belongs to, plus the action itself.
pub(crate) fn action_and_groups(m: &Model, c: ActionCategory) -> HashSet<EntityUid> {
    let a = m.action(c);
    let mut out: HashSet<EntityUid> = a.groups.iter().cloned().collect();
    out.insert(a.uid.clone());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use symbi_types::Subject;

    #[test]
    fn schema_loads_and_matches_the_vocabulary() {
        let m = model().expect("schema loads");
        let schema = m.validator.schema();
        let declared: HashSet<String> = schema
            .actions()
            .map(|a| a.id().unescaped().to_string())
            .collect();
        for c in ActionCategory::ALL {
            assert!(
                declared.contains(c.as_str()),
                "schema lacks action {}",
                c.as_str()
            );
        }
        // file_access is a group of exactly the two file categories.
        for c in ActionCategory::ALL {
            let in_group = m
                .action(c)
                .groups
                .iter()
                .any(|g| g.id().unescaped() == FILE_ACCESS_GROUP);
            assert_eq!(in_group, c.matches_word(FILE_ACCESS_GROUP), "{c}");
        }
        // Every subject kind maps to a declared entity type.
        for k in [
            SubjectKind::Tool,
            SubjectKind::Agent,
            SubjectKind::Topic,
            SubjectKind::Url,
            SubjectKind::File,
            SubjectKind::MemoryStore,
            SubjectKind::DataSet,
            SubjectKind::Secret,
            SubjectKind::Llm,
            SubjectKind::Resource,
            SubjectKind::Other,
        ] {
            assert_eq!(EntityKind::of_subject(k).name(), k.cedar_type());
        }
    }

    #[test]
    fn context_fields_match_schema() {
        let text = SCHEMA_TEXT;
        let start = text.find("type RequestContext").unwrap();
        let block = &text[start..start + text[start..].find("};").unwrap()];
        for (f, ty) in CONTEXT_FIELDS {
            assert!(
                block.contains(&format!("{f}: {ty}")),
                "RequestContext lacks {f}: {ty}"
            );
        }
        let declared = block
            .lines()
            .filter(|l| {
                l.trim_start()
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_lowercase())
                    && l.contains(':')
            })
            .count();
        assert_eq!(declared, CONTEXT_FIELDS.len());
    }

    #[test]
    fn bad_attribute_values_are_errors_not_panics() {
        let m = model().unwrap();
        let mut req = PolicyRequest::new(
            Principal::agent("a"),
            ActionCategory::AllocateResource,
            "allocate_resource",
            Subject::named(SubjectKind::Resource, "memory").with("amount", "lots"),
        );
        let err = m.cedar_request(&req).unwrap_err();
        assert!(err.0.contains("amount"), "{err}");
        req.subject = Subject::named(SubjectKind::Resource, "memory")
            .with("amount", serde_json::json!({"x": 1}));
        assert!(m.cedar_request(&req).is_err());
        req.subject = Subject::named(SubjectKind::Resource, "memory")
            .with("amount", 1u64 << 40)
            .with("weird", serde_json::json!([1, {"a": null}]));
        m.cedar_request(&req)
            .expect("large amounts and odd tags are fine");
        req.principal
            .attributes
            .insert(PRINCIPAL_TYPE_ATTR.into(), "robot".into());
        assert!(
            m.cedar_request(&req)
                .unwrap_err()
                .0
                .contains("principal type")
        );
    }

    #[test]
    fn mismatched_resource_type_is_rejected_but_other_adapts() {
        let m = model().unwrap();
        let req = PolicyRequest::new(
            Principal::agent("a"),
            ActionCategory::NetworkAccess,
            "http.get",
            Subject::named(SubjectKind::Topic, "t"),
        );
        assert!(
            m.cedar_request(&req)
                .unwrap_err()
                .0
                .contains("cannot be the resource")
        );
        let req = PolicyRequest::new(
            Principal::agent("a"),
            ActionCategory::Subscribe,
            "subscribe",
            Subject::named(SubjectKind::Other, "t"),
        );
        let (r, _) = m.cedar_request(&req).unwrap();
        assert_eq!(r.resource().unwrap().type_name().to_string(), "Topic");
    }
}
