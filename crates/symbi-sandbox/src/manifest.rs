//! Command-tool manifests (TOML) and the registry that loads a directory of them.
//!
//! ```toml
//! name = "word_count"
//! description = "Counts the words of a text."
//! image = "busybox"                 # a locally built image: busybox | debian
//! command = ["wc", "-w"]            # template: one element = one argv element
//! stdin = "{{text}}"                # optional stdin template
//! output = "text"                   # text | json
//! tier = "Tier1"                    # minimum tier (optional)
//! category = "invoke_tool"          # or execute_code
//! capabilities = []                 # capabilities the calling agent must declare
//! network = false                   # the tool needs the network (policy must grant it)
//!
//! [input]                           # JSON Schema of the input object
//! type = "object"
//! required = ["text"]
//! properties.text = { type = "string", maxLength = 1048576 }
//!
//! [limits]                          # each optional; the agent's budget caps them
//! timeout = "10s"
//! memory = "32MB"
//! cpus = 0.5
//! pids = 16
//! output = "64KB"
//!
//! [risk]                            # inputs of the risk assessment (optional)
//! code_trust = "trusted"            # trusted | reviewed | untrusted
//! data_sensitivity = "public"       # public | internal | confidential | restricted
//! filesystem = "none"               # none | read | write
//! external_integrations = 0
//! ```
//!
//! Every error carries `file:line:column` ([`ManifestError`]).

use crate::risk::{CodeTrust, DataSensitivity, FileSystemAccess};
use crate::template::{Piece, TemplateString};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use symbi_types::{ActionCategory, ByteSize, HumanDuration, SandboxTier};
use toml::Spanned;

/// Output format of a tool.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    /// Stdout as a UTF-8 string (invalid sequences replaced).
    Text,
    /// Stdout parsed as one JSON value.
    Json,
}

/// Per-tool limits from the manifest; unset ones come from the agent's budget and the
/// sandbox defaults (see [`crate::limits`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct ToolLimits {
    /// Wall-clock limit.
    pub timeout: Option<Duration>,
    /// Memory limit in bytes.
    pub memory_bytes: Option<u64>,
    /// CPU quota in thousandths of a core.
    pub cpu_millicores: Option<u32>,
    /// Process (and thread) count limit.
    pub pids: Option<u32>,
    /// Output cap per stream in bytes.
    pub output_bytes: Option<u64>,
}

/// Risk-assessment inputs a manifest declares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ToolRisk {
    /// Code trust (`execute_code` tools are always untrusted).
    pub code_trust: CodeTrust,
    /// Sensitivity of the data the tool handles, when the tool itself implies one.
    pub data_sensitivity: Option<DataSensitivity>,
    /// File-system access.
    pub filesystem: FileSystemAccess,
    /// External services it talks to.
    pub external_integrations: u32,
}

/// A loaded, validated command-tool manifest.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ToolManifest {
    /// Tool name (the DSL calls it by this name).
    pub name: String,
    /// Description.
    pub description: String,
    /// Action category: `invoke_tool` (default) or `execute_code`.
    pub category: ActionCategory,
    /// Image name (`busybox`, `debian`).
    pub image: String,
    /// The command as written.
    pub command: Vec<String>,
    /// The stdin template as written.
    pub stdin: Option<String>,
    /// Output format.
    pub output: OutputFormat,
    /// Minimum tier.
    pub min_tier: Option<SandboxTier>,
    /// Capabilities the calling agent must declare.
    pub capabilities: Vec<String>,
    /// Whether the tool needs the network (it gets it only when policy grants it).
    pub network: bool,
    /// The input JSON schema.
    pub input_schema: Value,
    /// Limits.
    pub limits: ToolLimits,
    /// Risk inputs.
    pub risk: ToolRisk,
    /// The file it came from.
    pub path: PathBuf,
    /// SHA-256 of the manifest file (hex), for the audit record.
    pub digest: String,
    #[serde(skip)]
    pub(crate) argv_template: Vec<TemplateString>,
    #[serde(skip)]
    pub(crate) stdin_template: Option<TemplateString>,
    #[serde(skip)]
    pub(crate) validator: Arc<jsonschema::Validator>,
}

/// One manifest problem with its position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestError {
    /// The manifest file.
    pub path: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column (in characters).
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: error: {}",
            self.path.display(),
            self.line,
            self.column,
            self.message
        )
    }
}

/// All problems found while loading manifests (never empty when returned as an error).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestErrors(pub Vec<ManifestError>);

impl fmt::Display for ManifestErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ManifestErrors {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    name: Spanned<String>,
    description: String,
    #[serde(default)]
    category: Option<Spanned<String>>,
    image: Spanned<String>,
    command: Spanned<Vec<Spanned<String>>>,
    #[serde(default)]
    stdin: Option<Spanned<String>>,
    #[serde(default)]
    output: Option<Spanned<String>>,
    #[serde(default)]
    tier: Option<Spanned<String>>,
    #[serde(default)]
    capabilities: Vec<String>,
    #[serde(default)]
    network: bool,
    input: Spanned<toml::Table>,
    #[serde(default)]
    limits: Option<RawLimits>,
    #[serde(default)]
    risk: Option<RawRisk>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    timeout: Option<Spanned<String>>,
    memory: Option<Spanned<String>>,
    cpus: Option<Spanned<f64>>,
    pids: Option<Spanned<i64>>,
    output: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRisk {
    code_trust: Option<CodeTrust>,
    data_sensitivity: Option<DataSensitivity>,
    filesystem: Option<FileSystemAccess>,
    external_integrations: Option<u32>,
}

/// Names of images the crate builds ([`crate::images`]).
pub const KNOWN_IMAGES: [&str; 2] = ["busybox", "debian"];

fn line_col(text: &str, at: usize) -> (usize, usize) {
    let at = at.min(text.len());
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rsplit('\n')
        .next()
        .map(|l| l.chars().count())
        .unwrap_or(0)
        + 1;
    (line, col)
}

struct Ctx<'a> {
    path: &'a Path,
    text: &'a str,
    errors: Vec<ManifestError>,
}

impl Ctx<'_> {
    fn err(&mut self, at: usize, message: impl Into<String>) {
        let (line, column) = line_col(self.text, at);
        self.errors.push(ManifestError {
            path: self.path.to_path_buf(),
            line,
            column,
            message: message.into(),
        });
    }
}

fn toml_to_json(v: &toml::Value) -> Result<Value, String> {
    Ok(match v {
        toml::Value::String(s) => Value::String(s.clone()),
        toml::Value::Integer(i) => Value::from(*i),
        toml::Value::Float(f) => serde_json::Number::from_f64(*f)
            .map(Value::Number)
            .ok_or_else(|| format!("{f} is not a JSON number"))?,
        toml::Value::Boolean(b) => Value::Bool(*b),
        toml::Value::Datetime(d) => {
            return Err(format!(
                "date-time `{d}` has no JSON form; write it as a string"
            ));
        }
        toml::Value::Array(a) => {
            Value::Array(a.iter().map(toml_to_json).collect::<Result<_, _>>()?)
        }
        toml::Value::Table(t) => {
            let mut m = serde_json::Map::new();
            for (k, v) in t {
                m.insert(k.clone(), toml_to_json(v)?);
            }
            Value::Object(m)
        }
    })
}

fn is_tool_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-')
}

/// The schema type(s) of a property, when declared.
fn property_types(schema: &Value, name: &str) -> Option<Vec<String>> {
    let t = schema.get("properties")?.get(name)?.get("type")?;
    match t {
        Value::String(s) => Some(vec![s.clone()]),
        Value::Array(a) => Some(
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
        ),
        _ => None,
    }
}

impl ToolManifest {
    /// Parses and validates one manifest. `path` is used for positions only.
    pub fn parse(path: &Path, text: &str) -> Result<ToolManifest, ManifestErrors> {
        let mut cx = Ctx {
            path,
            text,
            errors: Vec::new(),
        };
        let raw: RawManifest = match toml::from_str(text) {
            Ok(r) => r,
            Err(e) => {
                let at = e.span().map(|s| s.start).unwrap_or(0);
                cx.err(at, e.message().trim().to_string());
                return Err(ManifestErrors(cx.errors));
            }
        };

        let name = raw.name.get_ref().clone();
        if !is_tool_name(&name) {
            cx.err(raw.name.span().start, format!("tool name `{name}` must start with a letter and contain only letters, digits, `_`, `.` and `-`"));
        }
        let category = match &raw.category {
            None => ActionCategory::InvokeTool,
            Some(c) => match c.get_ref().as_str() {
                "invoke_tool" => ActionCategory::InvokeTool,
                "execute_code" => ActionCategory::ExecuteCode,
                other => {
                    cx.err(
                        c.span().start,
                        format!("category `{other}` must be `invoke_tool` or `execute_code`"),
                    );
                    ActionCategory::InvokeTool
                }
            },
        };
        let image = raw.image.get_ref().clone();
        if !KNOWN_IMAGES.contains(&image.as_str()) {
            cx.err(
                raw.image.span().start,
                format!(
                    "unknown image `{image}` (images built by `symbi tools build-images`: {})",
                    KNOWN_IMAGES.join(", ")
                ),
            );
        }
        let output = match &raw.output {
            None => OutputFormat::Text,
            Some(o) => match o.get_ref().as_str() {
                "text" => OutputFormat::Text,
                "json" => OutputFormat::Json,
                other => {
                    cx.err(
                        o.span().start,
                        format!("output `{other}` must be `text` or `json`"),
                    );
                    OutputFormat::Text
                }
            },
        };
        let min_tier = raw
            .tier
            .as_ref()
            .and_then(|t| match t.get_ref().parse::<SandboxTier>() {
                Ok(SandboxTier::None) => {
                    cx.err(
                        t.span().start,
                        "a tool cannot ask for tier `none`: command tools always run in a sandbox",
                    );
                    None
                }
                Ok(tier) => Some(tier),
                Err(e) => {
                    cx.err(t.span().start, e);
                    None
                }
            });

        // Input schema.
        let schema_span = raw.input.span().start;
        let input_schema = match toml_to_json(&toml::Value::Table(raw.input.get_ref().clone())) {
            Ok(v) => v,
            Err(e) => {
                cx.err(schema_span, format!("input schema: {e}"));
                Value::Null
            }
        };
        if input_schema.get("type").and_then(Value::as_str) != Some("object") {
            cx.err(schema_span, "input schema must have `type = \"object\"` (the DSL packs call arguments into an object)");
        }
        let validator = match jsonschema::meta::validate(&input_schema) {
            Err(e) => {
                cx.err(
                    schema_span,
                    format!(
                        "input schema is not a valid JSON Schema: {e} (at {})",
                        e.instance_path()
                    ),
                );
                None
            }
            Ok(()) => match jsonschema::validator_for(&input_schema) {
                Ok(v) => Some(Arc::new(v)),
                Err(e) => {
                    cx.err(schema_span, format!("input schema cannot be compiled: {e}"));
                    None
                }
            },
        };
        let known_props: Vec<String> = input_schema
            .get("properties")
            .and_then(Value::as_object)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();

        // Command template.
        let mut argv_template = Vec::new();
        if raw.command.get_ref().is_empty() {
            cx.err(raw.command.span().start, "command must name a program");
        }
        for (i, el) in raw.command.get_ref().iter().enumerate() {
            match TemplateString::parse(el.get_ref()) {
                Err(e) => cx.err(el.span().start + 1 + e.offset, e.message),
                Ok(t) => {
                    if i == 0 && !t.pieces.iter().all(|p| matches!(p, Piece::Lit(_))) {
                        cx.err(el.span().start, "the program (first element of command) must be literal, never a placeholder");
                    }
                    for p in &t.pieces {
                        match p {
                            Piece::Input => cx.err(el.span().start, "`{{$input}}` may only appear in the stdin template"),
                            Piece::Var(v) if !known_props.contains(v) => {
                                cx.err(el.span().start, format!("placeholder `{{{{{v}}}}}` names no property of the input schema"))
                            }
                            Piece::Var(v) => {
                                if let Some(types) = property_types(&input_schema, v) {
                                    if let Some(bad) = types.iter().find(|t| !matches!(t.as_str(), "string" | "integer" | "number" | "boolean" | "null")) {
                                        cx.err(el.span().start, format!("property `{v}` has type `{bad}`; argv placeholders take scalars only (pass arrays and objects through stdin)"));
                                    }
                                } else {
                                    cx.err(el.span().start, format!("property `{v}` used in the command must declare a scalar `type` in the schema"));
                                }
                            }
                            Piece::Lit(_) => {}
                        }
                    }
                    argv_template.push(t);
                }
            }
        }
        let stdin_template = raw.stdin.as_ref().and_then(|s| match TemplateString::parse(s.get_ref()) {
            Err(e) => {
                cx.err(s.span().start + 1 + e.offset, e.message);
                None
            }
            Ok(t) => {
                for v in t.vars() {
                    if !known_props.iter().any(|k| k == v) {
                        cx.err(s.span().start, format!("placeholder `{{{{{v}}}}}` names no property of the input schema"));
                    }
                }
                Some(t)
            }
        });

        // Limits.
        let mut limits = ToolLimits::default();
        if let Some(l) = &raw.limits {
            if let Some(t) = &l.timeout {
                match t.get_ref().parse::<HumanDuration>() {
                    Ok(d) if !d.0.is_zero() => limits.timeout = Some(d.0),
                    Ok(_) => cx.err(t.span().start, "timeout must be positive"),
                    Err(e) => cx.err(t.span().start, e),
                }
            }
            for (field, target) in [
                (&l.memory, &mut limits.memory_bytes),
                (&l.output, &mut limits.output_bytes),
            ] {
                if let Some(s) = field {
                    match s.get_ref().parse::<ByteSize>() {
                        Ok(b) if b.0 > 0 => *target = Some(b.0),
                        Ok(_) => cx.err(s.span().start, "size must be positive"),
                        Err(e) => cx.err(s.span().start, e),
                    }
                }
            }
            if let Some(c) = &l.cpus {
                let v = *c.get_ref();
                if v.is_finite() && (0.01..=1024.0).contains(&v) {
                    limits.cpu_millicores = Some((v * 1000.0).round() as u32);
                } else {
                    cx.err(c.span().start, "cpus must be between 0.01 and 1024");
                }
            }
            if let Some(p) = &l.pids {
                let v = *p.get_ref();
                if (1..=65_536).contains(&v) {
                    limits.pids = Some(v as u32);
                } else {
                    cx.err(p.span().start, "pids must be between 1 and 65536");
                }
            }
        }
        if limits
            .memory_bytes
            .is_some_and(|m| m < crate::limits::MIN_MEMORY_BYTES)
        {
            let at = raw
                .limits
                .as_ref()
                .and_then(|l| l.memory.as_ref())
                .map(|m| m.span().start)
                .unwrap_or(0);
            cx.err(
                at,
                format!(
                    "memory must be at least {} (the gVisor sandbox alone needs about that much)",
                    ByteSize(crate::limits::MIN_MEMORY_BYTES)
                ),
            );
        }

        let raw_risk = raw.risk.as_ref();
        let mut code_trust = raw_risk.and_then(|r| r.code_trust).unwrap_or_default();
        if category == ActionCategory::ExecuteCode {
            // Code supplied at run time is untrusted whatever the manifest says.
            code_trust = CodeTrust::Untrusted;
        }
        let risk = ToolRisk {
            code_trust,
            data_sensitivity: raw_risk.and_then(|r| r.data_sensitivity),
            filesystem: raw_risk.and_then(|r| r.filesystem).unwrap_or_default(),
            external_integrations: raw_risk.and_then(|r| r.external_integrations).unwrap_or(0),
        };

        if !cx.errors.is_empty() {
            return Err(ManifestErrors(cx.errors));
        }
        use sha2::Digest;
        Ok(ToolManifest {
            name,
            description: raw.description,
            category,
            image,
            command: raw
                .command
                .get_ref()
                .iter()
                .map(|s| s.get_ref().clone())
                .collect(),
            stdin: raw.stdin.map(|s| s.into_inner()),
            output,
            min_tier,
            capabilities: raw.capabilities,
            network: raw.network,
            input_schema,
            limits,
            risk,
            path: path.to_path_buf(),
            digest: hex::encode(sha2::Sha256::digest(text.as_bytes())),
            argv_template,
            stdin_template,
            validator: validator.expect("no errors means the schema compiled"),
        })
    }

    /// Reads and parses a manifest file.
    pub fn load(path: &Path) -> Result<ToolManifest, ManifestErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ManifestErrors(vec![ManifestError {
                path: path.to_path_buf(),
                line: 1,
                column: 1,
                message: format!("cannot read: {e}"),
            }])
        })?;
        Self::parse(path, &text)
    }

    /// Validates `input` against the schema, then renders argv and stdin.
    ///
    /// Returns every problem (schema violations with their JSON pointer, then template
    /// rule violations such as a leading `-`).
    pub fn render(&self, input: &Value) -> Result<Rendered, Vec<String>> {
        let problems: Vec<String> = self
            .validator
            .iter_errors(input)
            .map(|e| {
                let at = e.instance_path().to_string();
                format!("{}: {e}", if at.is_empty() { "/".to_string() } else { at })
            })
            .collect();
        if !problems.is_empty() {
            return Err(problems);
        }
        let argv = crate::template::render_argv(&self.argv_template, input)
            .map_err(|es| es.iter().map(ToString::to_string).collect::<Vec<_>>())?;
        let stdin = self
            .stdin_template
            .as_ref()
            .map(|t| crate::template::render_stdin(t, input));
        Ok(Rendered { argv, stdin })
    }
}

/// A validated input rendered for execution.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rendered {
    /// The argv (one element per command element, absent optionals dropped).
    pub argv: Vec<String>,
    /// Stdin bytes, when the manifest has a stdin template.
    pub stdin: Option<Vec<u8>>,
}

/// The command tools of a directory, by name.
#[derive(Clone, Debug, Default)]
pub struct ToolRegistry {
    tools: BTreeMap<String, Arc<ToolManifest>>,
    dir: Option<PathBuf>,
}

impl ToolRegistry {
    /// Loads every `*.toml` file of `dir` (not recursive). A missing directory is an empty
    /// registry; any bad manifest, or two manifests with the same name, fails the whole load
    /// with every problem found (so a half-loaded tool set is never used).
    pub fn load(dir: &Path) -> Result<ToolRegistry, ManifestErrors> {
        let mut reg = ToolRegistry {
            tools: BTreeMap::new(),
            dir: Some(dir.to_path_buf()),
        };
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(reg),
            Err(e) => {
                return Err(ManifestErrors(vec![ManifestError {
                    path: dir.to_path_buf(),
                    line: 1,
                    column: 1,
                    message: format!("cannot read tools directory: {e}"),
                }]));
            }
        };
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml") && p.is_file())
            .collect();
        paths.sort();
        let mut errors = Vec::new();
        for p in paths {
            match ToolManifest::load(&p) {
                Ok(m) => {
                    if let Some(prev) = reg.tools.get(&m.name) {
                        errors.push(ManifestError {
                            path: p.clone(),
                            line: 1,
                            column: 1,
                            message: format!(
                                "tool `{}` is also defined in {}",
                                m.name,
                                prev.path.display()
                            ),
                        });
                    } else {
                        reg.tools.insert(m.name.clone(), Arc::new(m));
                    }
                }
                Err(ManifestErrors(es)) => errors.extend(es),
            }
        }
        if errors.is_empty() {
            Ok(reg)
        } else {
            Err(ManifestErrors(errors))
        }
    }

    /// The directory loaded from.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// A tool by name.
    pub fn get(&self, name: &str) -> Option<&Arc<ToolManifest>> {
        self.tools.get(name)
    }

    /// All tools, by name.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<ToolManifest>> {
        self.tools.values()
    }

    /// Number of tools.
    pub fn len(&self) -> usize {
        self.tools.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.tools.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const WC: &str = r#"name = "word_count"
description = "Counts words."
image = "busybox"
command = ["wc", "-w"]
stdin = "{{text}}"
output = "text"

[input]
type = "object"
required = ["text"]
properties.text = { type = "string" }

[limits]
timeout = "5s"
memory = "32MB"
cpus = 0.5
pids = 16
output = "64KB"
"#;

    #[test]
    fn parses_a_manifest() {
        let m = ToolManifest::parse(Path::new("wc.toml"), WC).unwrap();
        assert_eq!(m.name, "word_count");
        assert_eq!(m.category, ActionCategory::InvokeTool);
        assert_eq!(m.limits.timeout, Some(Duration::from_secs(5)));
        assert_eq!(m.limits.memory_bytes, Some(32 << 20));
        assert_eq!(m.limits.cpu_millicores, Some(500));
        assert_eq!(m.limits.pids, Some(16));
        assert_eq!(m.limits.output_bytes, Some(64 << 10));
        let super::Rendered { argv, stdin } = m.render(&json!({"text": "a b c"})).unwrap();
        assert_eq!(argv, vec!["wc", "-w"]);
        assert_eq!(stdin.unwrap(), b"a b c");
        let e = m.render(&json!({"text": 5})).unwrap_err();
        assert!(e[0].starts_with("/text"), "{e:?}");
        let e = m.render(&json!({})).unwrap_err();
        assert!(e[0].contains("text"), "{e:?}");
    }

    fn errs(text: &str) -> Vec<String> {
        ToolManifest::parse(Path::new("t.toml"), text)
            .unwrap_err()
            .0
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn positioned_errors() {
        let e = errs(&WC.replace(
            "command = [\"wc\", \"-w\"]",
            "command = [\"wc\", \"{{nope}}\"]",
        ));
        assert_eq!(
            e,
            vec![
                "t.toml:4:18: error: placeholder `{{nope}}` names no property of the input schema"
            ]
        );
        let e = errs(&WC.replace("image = \"busybox\"", "image = \"alpine\""));
        assert!(
            e[0].starts_with("t.toml:3:9: error: unknown image `alpine`"),
            "{e:?}"
        );
        let e = errs(&WC.replace("output = \"text\"", "output = \"xml\"\nbogus = 1"));
        assert!(
            e[0].starts_with("t.toml:7:1: error: unknown field `bogus`"),
            "{e:?}"
        );
        let e = errs(&WC.replace("timeout = \"5s\"", "timeout = \"soon\""));
        assert!(
            e[0].starts_with("t.toml:14:11: error: invalid duration"),
            "{e:?}"
        );
        let e = errs(&WC.replace("command = [\"wc\", \"-w\"]", "command = [\"{{text}}\"]"));
        assert!(e[0].contains("must be literal"), "{e:?}");
        let e = errs(&WC.replace(
            "command = [\"wc\", \"-w\"]",
            "command = [\"wc\", \"{{ text\"]",
        ));
        assert!(
            e[0].starts_with("t.toml:4:19: error: `{{` without"),
            "{e:?}"
        );
        let e = errs(&WC.replace(
            "properties.text = { type = \"string\" }",
            "properties.text = { type = \"strnig\" }",
        ));
        assert!(e[0].contains("not a valid JSON Schema"), "{e:?}");
        let e = errs(&WC.replace("memory = \"32MB\"", "memory = \"1MB\""));
        assert!(e[0].contains("memory must be at least"), "{e:?}");
    }

    #[test]
    fn compound_properties_not_in_argv() {
        let text = WC
            .replace(
                "command = [\"wc\", \"-w\"]",
                "command = [\"wc\", \"{{text}}\"]",
            )
            .replace(
                "properties.text = { type = \"string\" }",
                "properties.text = { type = \"array\" }",
            );
        let e = errs(&text);
        assert!(e[0].contains("scalars only"), "{e:?}");
    }

    #[test]
    fn execute_code_is_untrusted() {
        let text = WC.replace(
            "output = \"text\"",
            "output = \"text\"\ncategory = \"execute_code\"\n[risk]\ncode_trust = \"trusted\"",
        );
        let m = ToolManifest::parse(Path::new("t.toml"), &text).unwrap();
        assert_eq!(m.category, ActionCategory::ExecuteCode);
        assert_eq!(m.risk.code_trust, CodeTrust::Untrusted);
    }

    #[test]
    fn registry_rejects_duplicates_and_reports_all() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.toml"), WC).unwrap();
        std::fs::write(dir.path().join("b.toml"), WC).unwrap();
        std::fs::write(dir.path().join("c.toml"), "name = 1").unwrap();
        std::fs::write(dir.path().join("readme.md"), "ignored").unwrap();
        let e = ToolRegistry::load(dir.path()).unwrap_err();
        assert_eq!(e.0.len(), 2, "{e}");
        std::fs::remove_file(dir.path().join("b.toml")).unwrap();
        std::fs::remove_file(dir.path().join("c.toml")).unwrap();
        let r = ToolRegistry::load(dir.path()).unwrap();
        assert_eq!(r.len(), 1);
        assert!(r.get("word_count").is_some());
        assert!(
            ToolRegistry::load(&dir.path().join("missing"))
                .unwrap()
                .is_empty()
        );
    }
}
