//! The default policy set shipped with symbi (`policies/default/*.cedar` in the
//! repository, compiled into the binary) and seeding of a data directory with it.

use crate::error::PolicyError;
use crate::load::PolicySource;
use std::io::Write;
use std::path::Path;

/// The shipped default policies: (path relative to the policy directory, text).
pub const DEFAULT_POLICIES: &[(&str, &str)] = &[
    (
        "default/00-runtime.cedar",
        include_str!("../../../policies/default/00-runtime.cedar"),
    ),
    (
        "default/10-egress.cedar",
        include_str!("../../../policies/default/10-egress.cedar"),
    ),
];

/// The shipped defaults as sources (for engines without a directory, and tests).
pub fn default_sources() -> Vec<PolicySource> {
    DEFAULT_POLICIES
        .iter()
        .map(|(n, t)| PolicySource::new(*n, *t))
        .collect()
}

/// Writes the shipped defaults into `dir` (under `default/`) if `dir` does not exist yet.
/// Returns whether it seeded. An existing directory — even an empty one, which then means
/// "deny everything" — is left alone: the operator's choice wins.
pub fn seed_if_missing(dir: &Path) -> Result<bool, PolicyError> {
    if dir.exists() {
        return Ok(false);
    }
    seed(dir)?;
    Ok(true)
}

/// Writes the shipped defaults into `dir`, replacing files of the same names.
pub fn seed(dir: &Path) -> Result<(), PolicyError> {
    for (name, text) in DEFAULT_POLICIES {
        write_atomic(&dir.join(name), text.as_bytes())?;
    }
    Ok(())
}

/// Writes a file atomically: a hidden temporary file next to it (ignored by the loader and
/// the watcher), fsync, rename, fsync of the directory.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), PolicyError> {
    let io = |source| PolicyError::Io {
        path: path.to_path_buf(),
        source,
    };
    let parent = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(io)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let tmp = parent.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(parent)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_without_warnings() {
        let report = crate::PolicyEngine::check(&default_sources()).expect("defaults are valid");
        assert!(report.warnings.is_empty(), "{:?}", report.warnings);
        assert!(report.policies >= 6);
    }

    #[test]
    fn seeding_only_when_missing() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("policies");
        assert!(seed_if_missing(&dir).unwrap());
        assert!(dir.join("default/00-runtime.cedar").is_file());
        std::fs::remove_file(dir.join("default/10-egress.cedar")).unwrap();
        assert!(!seed_if_missing(&dir).unwrap());
        assert!(!dir.join("default/10-egress.cedar").exists());
        // No temporary files left behind.
        let leftovers: Vec<_> = std::fs::read_dir(dir.join("default"))
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
            .collect();
        assert!(leftovers.is_empty());
    }
}
