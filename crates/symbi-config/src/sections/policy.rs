//! `[policy]`: Cedar policy files.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// `[policy]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolicySection {
    /// Directory of `*.cedar` files; default `<data dir>/policies`, seeded with the shipped
    /// default policy set on first start.
    pub dir: Option<PathBuf>,
    /// Watch the directory and reload on change.
    pub watch: bool,
}

impl Default for PolicySection {
    fn default() -> Self {
        Self {
            dir: None,
            watch: true,
        }
    }
}
