//! Loading policy files: parse, name, validate against the schema, index by action.
//!
//! A policy set is compiled as a whole: if any file has an error, nothing of it is used and
//! every problem is reported with its `file:line:column`.

use crate::conditions;
use crate::error::{Diagnostic, PolicyError, Severity};
use crate::model::{self, Model};
use cedar_policy::{
    ActionConstraint, Effect, EntityUid, Policy, PolicyId, PolicySet, PrincipalConstraint,
    ResourceConstraint, ValidationMode,
};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use symbi_types::{ActionCategory, Condition};

/// One policy file's text and the name it is known by.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicySource {
    /// Name used in policy ids and reasons: the path relative to the policy directory
    /// (`default/10-network.cedar`), or any name an API caller gives.
    pub name: String,
    /// How diagnostics name the file (the full path when loaded from disk).
    pub display: String,
    /// The Cedar text.
    pub text: String,
}

impl PolicySource {
    /// A source named `name` (also used in diagnostics).
    ///
    /// ```
    /// let s = symbi_policy::PolicySource::new("extra.cedar", "permit(principal, action, resource);");
    /// assert_eq!(s.display, "extra.cedar");
    /// ```
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Self {
        let name = name.into();
        Self {
            display: name.clone(),
            name,
            text: text.into(),
        }
    }
}

/// Facts about one loaded policy.
#[derive(Clone, Debug)]
pub struct PolicyInfo {
    /// The Cedar policy id: the `@id` annotation, or `file:line:column` of the policy.
    pub id: String,
    /// The source name (relative path).
    pub file: String,
    /// 1-based line of the policy's first character (its first annotation).
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// `permit` or `forbid`.
    pub effect: Effect,
    /// Conditions the permit's annotations attach (empty for forbids).
    pub conditions: Vec<Condition>,
    /// `@reason` annotation, if any (quoted in deny reasons).
    pub reason: Option<String>,
    /// Precomputed reason text used in decisions.
    pub(crate) decision_text: String,
}

impl PolicyInfo {
    /// `"id" (file:line:col)` when the policy has an `@id`, else `file:line:col`.
    pub fn label(&self) -> String {
        let pos = format!("{}:{}:{}", self.file, self.line, self.column);
        if self.id == pos {
            pos
        } else {
            format!("\"{}\" ({pos})", self.id)
        }
    }
}

/// A compiled policy set: the whole set, one slice per action, facts per policy.
pub(crate) struct Compiled {
    pub(crate) all: PolicySet,
    /// Policies that can apply to each action, indexed by [`model::action_index`]. Cedar's
    /// authorizer evaluates every policy of the set it is given; slicing by action, then by
    /// the principal and resource a policy's scope names, keeps a decision's cost
    /// proportional to the policies that can apply to that request only.
    pub(crate) slices: Vec<ActionIndex>,
    pub(crate) info: HashMap<PolicyId, PolicyInfo>,
    pub(crate) warnings: Vec<Diagnostic>,
    pub(crate) files: Vec<String>,
    pub(crate) digest: String,
}

/// Reads every `*.cedar` file under `dir` (recursively, sorted by relative path; hidden
/// files and editor leftovers are skipped).
pub fn read_dir_sources(dir: &Path) -> Result<Vec<PolicySource>, PolicyError> {
    if !dir.is_dir() {
        return Err(PolicyError::MissingDirectory(dir.to_path_buf()));
    }
    let mut files = Vec::new();
    collect(dir, dir, 0, &mut files)?;
    files.sort();
    files
        .into_iter()
        .map(|(rel, path)| {
            let text = std::fs::read_to_string(&path).map_err(|source| PolicyError::Io {
                path: path.clone(),
                source,
            })?;
            Ok(PolicySource {
                name: rel,
                display: path.display().to_string(),
                text,
            })
        })
        .collect()
}

fn collect(
    root: &Path,
    dir: &Path,
    depth: usize,
    out: &mut Vec<(String, PathBuf)>,
) -> Result<(), PolicyError> {
    if depth > 16 {
        return Ok(());
    }
    let io = |source| PolicyError::Io {
        path: dir.to_path_buf(),
        source,
    };
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let name = entry.file_name().to_string_lossy().to_string();
        if name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        if path.is_dir() {
            collect(root, &path, depth + 1, out)?;
        } else if name.ends_with(".cedar") && path.is_file() {
            let rel = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .to_string_lossy()
                .replace('\\', "/");
            out.push((rel, path));
        }
    }
    Ok(())
}

/// Whether a path is one the loader reads (used by the watcher to ignore other files).
pub(crate) fn is_policy_path(p: &Path) -> bool {
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    name.ends_with(".cedar") && !name.starts_with('.')
}

struct Located {
    policy: Policy,
    source: usize,
    offset: usize,
}

/// Compiles sources into a policy set. On failure, the diagnostics (errors and warnings).
pub(crate) fn compile(m: &Model, sources: &[PolicySource]) -> Result<Compiled, Vec<Diagnostic>> {
    let mut diags: Vec<Diagnostic> = Vec::new();
    let mut located: Vec<Located> = Vec::new();
    for (si, src) in sources.iter().enumerate() {
        let pset = match PolicySet::from_str(&src.text) {
            Ok(p) => p,
            Err(errs) => {
                for e in errs.iter() {
                    push_miette(&mut diags, src, e, None, Severity::Error);
                }
                continue;
            }
        };
        if let Some(t) = pset.templates().next() {
            let off = src.text.find(&t.to_cedar()).unwrap_or(0);
            diags.push(Diagnostic::at(
                &src.display,
                &src.text,
                off,
                Severity::Error,
                "policy templates (`?principal`, `?resource`) are not supported in policy files; write a static policy",
            ));
            continue;
        }
        // Cedar names the policies of one text policy0, policy1, … in source order; find
        // each one's text to know its position.
        let mut policies: Vec<&Policy> = pset.policies().collect();
        policies.sort_by_key(|p| {
            p.id()
                .to_string()
                .trim_start_matches("policy")
                .parse::<usize>()
                .unwrap_or(usize::MAX)
        });
        let mut cursor = 0;
        for p in policies {
            let text = p.to_cedar().unwrap_or_default();
            let offset = match src.text[cursor..].find(&text) {
                Some(i) if !text.is_empty() => cursor + i,
                _ => cursor,
            };
            cursor = offset + text.len().min(src.text.len() - offset);
            located.push(Located {
                policy: p.clone(),
                source: si,
                offset,
            });
        }
    }

    let mut all = PolicySet::new();
    let mut info: HashMap<PolicyId, PolicyInfo> = HashMap::new();
    let mut where_id: HashMap<String, (usize, usize)> = HashMap::new();
    for loc in located {
        let src = &sources[loc.source];
        let (line, column) = crate::error::line_col(&src.text, loc.offset);
        let pos = format!("{}:{line}:{column}", src.name);
        let id = match loc.policy.annotation("id") {
            Some(id) if id.trim().is_empty() => {
                diags.push(annotation_diag(src, &loc, "id", "`@id` must not be empty"));
                continue;
            }
            Some(id) => id.trim().to_string(),
            None => pos.clone(),
        };
        if let Some((s, off)) = where_id.get(&id) {
            let other = &sources[*s];
            let (l, c) = crate::error::line_col(&other.text, *off);
            diags.push(annotation_diag(
                src,
                &loc,
                "id",
                &format!(
                    "duplicate policy id \"{id}\" (first used at {}:{l}:{c})",
                    other.display
                ),
            ));
            continue;
        }
        where_id.insert(id.clone(), (loc.source, loc.offset));
        let effect = loc.policy.effect();
        let mut conditions = Vec::new();
        match effect {
            Effect::Permit => match conditions::from_annotations(loc.policy.annotations()) {
                Ok(parsed) => {
                    for k in &parsed.opaque_keys {
                        let mut d = annotation_diag(
                            src,
                            &loc,
                            k,
                            &format!(
                                "`@{k}` is not a known requirement; it attaches an opaque condition that the runtime cannot enforce (refused in production mode). Informational annotations: {}",
                                conditions::INFORMATIONAL.join(", ")
                            ),
                        );
                        d.severity = Severity::Warning;
                        diags.push(d);
                    }
                    conditions = parsed.conditions;
                }
                Err(errs) => {
                    for e in errs {
                        diags.push(annotation_diag(
                            src,
                            &loc,
                            &e.key,
                            &format!("invalid `@{}`: {}", e.key, e.message),
                        ));
                    }
                    continue;
                }
            },
            Effect::Forbid => {
                for (k, _) in loc.policy.annotations() {
                    if conditions::is_known_requirement(k) {
                        let mut d = annotation_diag(
                            src,
                            &loc,
                            k,
                            &format!(
                                "`@{k}` has no effect on a forbid policy (conditions attach to permits)"
                            ),
                        );
                        d.severity = Severity::Warning;
                        diags.push(d);
                    }
                }
            }
        }
        let reason = loc.policy.annotation("reason").map(|s| s.to_string());
        let pid = PolicyId::new(&id);
        let mut pinfo = PolicyInfo {
            id: id.clone(),
            file: src.name.clone(),
            line,
            column,
            effect,
            conditions,
            reason,
            decision_text: String::new(),
        };
        pinfo.decision_text = match effect {
            Effect::Permit => format!("permitted by Cedar policy {}", pinfo.label()),
            Effect::Forbid => match &pinfo.reason {
                Some(r) => format!("forbidden by Cedar policy {}: {r}", pinfo.label()),
                None => format!("forbidden by Cedar policy {}", pinfo.label()),
            },
        };
        if let Err(e) = all.add(loc.policy.new_id(pid.clone())) {
            diags.push(Diagnostic::at(
                &src.display,
                &src.text,
                loc.offset,
                Severity::Error,
                e.to_string(),
            ));
            continue;
        }
        info.insert(pid, pinfo);
    }

    // `where_id` also tells validation diagnostics where each policy starts.
    let offsets = where_id;
    if !diags.iter().any(|d| d.severity == Severity::Error) {
        let result = m.validator.validate(&all, ValidationMode::Strict);
        for e in result.validation_errors() {
            push_validation(
                &mut diags,
                sources,
                &offsets,
                e.policy_id(),
                e,
                Severity::Error,
            );
        }
        for w in result.validation_warnings() {
            push_validation(
                &mut diags,
                sources,
                &offsets,
                w.policy_id(),
                w,
                Severity::Warning,
            );
        }
    }
    if diags.iter().any(|d| d.severity == Severity::Error) {
        diags.sort_by(|a, b| {
            (a.severity as u8, &a.file, a.line, a.column).cmp(&(
                b.severity as u8,
                &b.file,
                b.line,
                b.column,
            ))
        });
        return Err(diags);
    }

    let slices = ActionCategory::ALL
        .into_iter()
        .map(|c| {
            let targets = model::action_and_groups(m, c);
            let members = all.policies().filter(|p| match p.action_constraint() {
                ActionConstraint::Any => true,
                ActionConstraint::Eq(a) => targets.contains(&a),
                ActionConstraint::In(list) => list.iter().any(|a| targets.contains(a)),
            });
            ActionIndex::build(members.cloned().collect())
        })
        .collect();

    let mut h = Sha256::new();
    for s in sources {
        h.update(s.name.as_bytes());
        h.update([0]);
        h.update(s.text.as_bytes());
        h.update([0]);
    }
    Ok(Compiled {
        all,
        slices,
        info,
        warnings: diags,
        files: sources.iter().map(|s| s.name.clone()).collect(),
        digest: hex::encode(h.finalize()),
    })
}

fn annotation_diag(src: &PolicySource, loc: &Located, key: &str, message: &str) -> Diagnostic {
    let text = loc.policy.to_cedar().unwrap_or_default();
    let off = loc.offset + text.find(&format!("@{key}")).unwrap_or(0);
    Diagnostic::at(&src.display, &src.text, off, Severity::Error, message)
}

fn message_of(d: &dyn miette::Diagnostic) -> String {
    let mut msg = d.to_string();
    if let Some(h) = d.help() {
        msg.push_str(&format!(" (help: {h})"));
    }
    msg
}

fn push_miette(
    out: &mut Vec<Diagnostic>,
    src: &PolicySource,
    d: &dyn miette::Diagnostic,
    fallback: Option<usize>,
    sev: Severity,
) {
    let off = d
        .labels()
        .and_then(|mut l| l.next())
        .map(|l| l.offset())
        .or(fallback)
        .unwrap_or(0);
    out.push(Diagnostic::at(
        &src.display,
        &src.text,
        off,
        sev,
        message_of(d),
    ));
}

fn push_validation(
    out: &mut Vec<Diagnostic>,
    sources: &[PolicySource],
    offsets: &HashMap<String, (usize, usize)>,
    id: &PolicyId,
    d: &dyn miette::Diagnostic,
    sev: Severity,
) {
    let Some((si, start)) = offsets.get(AsRef::<str>::as_ref(id)) else {
        out.push(Diagnostic {
            file: "<policies>".into(),
            line: 1,
            column: 1,
            severity: sev,
            message: message_of(d),
            source_line: None,
        });
        return;
    };
    let src = &sources[*si];
    // Label offsets are relative to the file the policy was parsed from.
    let off = d
        .labels()
        .and_then(|mut l| l.next())
        .map(|l| l.offset())
        .filter(|o| *o >= *start && *o < src.text.len())
        .unwrap_or(*start);
    out.push(Diagnostic::at(
        &src.display,
        &src.text,
        off,
        sev,
        message_of(d),
    ));
}

/// The policies of one action, bucketed by whether their scope names exactly one principal
/// (`principal == X`) and/or exactly one resource (`resource == Y`). A request evaluates
/// the general bucket plus the buckets of its own principal and resource; every other
/// policy's scope cannot match it, so skipping them cannot change the decision.
#[derive(Default)]
pub(crate) struct ActionIndex {
    general: Option<PolicySet>,
    by_principal: HashMap<EntityUid, PolicySet>,
    by_resource: HashMap<EntityUid, PolicySet>,
    by_both: HashMap<EntityUid, HashMap<EntityUid, PolicySet>>,
}

impl ActionIndex {
    fn build(policies: Vec<Policy>) -> Self {
        let set = |v: Vec<Policy>| {
            PolicySet::from_policies(v).expect("ids are unique within a valid set")
        };
        let mut general = Vec::new();
        let mut by_p: HashMap<EntityUid, Vec<Policy>> = HashMap::new();
        let mut by_r: HashMap<EntityUid, Vec<Policy>> = HashMap::new();
        let mut by_pr: HashMap<EntityUid, HashMap<EntityUid, Vec<Policy>>> = HashMap::new();
        for pol in policies {
            let pu = match pol.principal_constraint() {
                PrincipalConstraint::Eq(u) => Some(u),
                _ => None,
            };
            let ru = match pol.resource_constraint() {
                ResourceConstraint::Eq(u) => Some(u),
                _ => None,
            };
            match (pu, ru) {
                (None, None) => general.push(pol),
                (Some(p), None) => by_p.entry(p).or_default().push(pol),
                (None, Some(r)) => by_r.entry(r).or_default().push(pol),
                (Some(p), Some(r)) => by_pr.entry(p).or_default().entry(r).or_default().push(pol),
            }
        }
        ActionIndex {
            general: (!general.is_empty()).then(|| set(general)),
            by_principal: by_p.into_iter().map(|(k, v)| (k, set(v))).collect(),
            by_resource: by_r.into_iter().map(|(k, v)| (k, set(v))).collect(),
            by_both: by_pr
                .into_iter()
                .map(|(k, m)| (k, m.into_iter().map(|(k2, v)| (k2, set(v))).collect()))
                .collect(),
        }
    }

    /// The policy sets that can apply to a request of this action by `p` on `r`.
    pub(crate) fn sets<'a>(
        &'a self,
        p: &EntityUid,
        r: &EntityUid,
    ) -> impl Iterator<Item = &'a PolicySet> + 'a {
        let both = self.by_both.get(p).and_then(|m| m.get(r));
        self.general
            .iter()
            .chain(self.by_principal.get(p))
            .chain(self.by_resource.get(r))
            .chain(both)
    }
}
