//! Named memory stores of DSL `memory` items (GRAMMAR.md §4.11.3).
//!
//! Back end `markdown`: every entry is one Markdown file `<path>/<id>.md` under the data
//! directory — a JSON front-matter block (`id`, `store`, `created_at`, `record`) followed by
//! a readable rendering of the record — and is indexed for hybrid search in the vector
//! store (collection `store_<name>_<hash of path>`), fused with the block's
//! `vector_weight` / `keyword_weight`. The files are the source of truth: an index that
//! does not match them (missing, or a different number of entries) is rebuilt from them
//! when the store is opened. Entries older than `retention` are removed by compaction.

use crate::error::ContextError;
use crate::hybrid::{HybridIndex, IndexFactory, Weights};
use crate::state::atomic_write;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Storage back end of a memory store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreBackend {
    /// Markdown files plus a hybrid index.
    Markdown,
}

impl std::str::FromStr for StoreBackend {
    type Err = ContextError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "markdown" => Ok(Self::Markdown),
            other => Err(ContextError::InvalidArgument(format!(
                "memory store back end `{other}` is not supported (supported: markdown)"
            ))),
        }
    }
}

/// A `memory` item as the runtime hands it over.
#[derive(Clone, Debug, PartialEq)]
pub struct MemoryStoreSpec {
    /// Store name (the identifier agents use).
    pub name: String,
    /// Back end.
    pub backend: StoreBackend,
    /// Directory; relative paths are under the data directory (default `data/agents`).
    pub path: PathBuf,
    /// Entries older than this are removed by compaction (default 90 days).
    pub retention: Duration,
    /// Weight of the dense side (default 0.7).
    pub vector_weight: f32,
    /// Weight of the keyword side (default 0.3).
    pub keyword_weight: f32,
}

impl MemoryStoreSpec {
    /// A markdown store with the grammar's defaults.
    pub fn markdown(name: &str) -> Self {
        Self {
            name: name.to_string(),
            backend: StoreBackend::Markdown,
            path: PathBuf::from("data/agents"),
            retention: Duration::from_secs(90 * 86_400),
            vector_weight: 0.7,
            keyword_weight: 0.3,
        }
    }
}

/// An open markdown memory store.
#[derive(Debug)]
pub struct MarkdownStore {
    spec: MemoryStoreSpec,
    dir: PathBuf,
    index: HybridIndex,
}

fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The collection of a store: name plus a short hash of its directory, so two programs'
/// stores with one name but different paths never share an index.
pub fn collection_of(name: &str, dir: &Path) -> String {
    let h = hex::encode(&Sha256::digest(dir.to_string_lossy().as_bytes())[..4]);
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(80)
        .collect();
    format!("store_{clean}_{h}")
}

/// The text indexed for a record: every key and scalar value, nested ones flattened.
fn index_text(record: &Map<String, Value>) -> String {
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::String(s) => out.push(s.clone()),
            Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            Value::Object(m) => m.iter().for_each(|(k, x)| {
                out.push(k.clone());
                walk(x, out)
            }),
            Value::Null => {}
            other => out.push(other.to_string()),
        }
    }
    let mut out = Vec::new();
    walk(&Value::Object(record.clone()), &mut out);
    out.join(" ")
}

/// The Markdown file of an entry.
fn render(store: &str, id: &str, created_at: &str, record: &Map<String, Value>) -> String {
    let front = json!({"id": id, "store": store, "created_at": created_at, "record": record});
    let mut s = format!("---\n{front}\n---\n\n# {store} entry {id}\n\n");
    for (k, v) in record {
        let shown = match v {
            Value::String(t) => t.replace('\n', " "),
            other => other.to_string(),
        };
        s.push_str(&format!("- **{k}**: {shown}\n"));
    }
    s
}

/// Parses the front matter of an entry file.
fn parse(path: &Path, text: &str) -> Result<(String, String, Map<String, Value>), ContextError> {
    let corrupt = |m: &str| ContextError::Corrupt {
        path: path.display().to_string(),
        message: m.to_string(),
    };
    let rest = text
        .strip_prefix("---\n")
        .ok_or_else(|| corrupt("missing front matter"))?;
    let end = rest
        .find("\n---")
        .ok_or_else(|| corrupt("unterminated front matter"))?;
    let front: Value =
        serde_json::from_str(&rest[..end]).map_err(|e| corrupt(&format!("front matter: {e}")))?;
    let id = front["id"]
        .as_str()
        .ok_or_else(|| corrupt("front matter has no id"))?
        .to_string();
    let created = front["created_at"].as_str().unwrap_or_default().to_string();
    let record = front["record"]
        .as_object()
        .cloned()
        .ok_or_else(|| corrupt("front matter has no record"))?;
    Ok((id, created, record))
}

impl MarkdownStore {
    /// Opens the store (creating its directory), rebuilding the index from the files when
    /// it does not match them.
    pub async fn open(
        spec: MemoryStoreSpec,
        data_dir: &Path,
        ctx: &IndexFactory,
    ) -> Result<Self, ContextError> {
        if spec.name.is_empty() {
            return Err(ContextError::InvalidArgument(
                "memory store without a name".into(),
            ));
        }
        for (what, w) in [
            ("vector_weight", spec.vector_weight),
            ("keyword_weight", spec.keyword_weight),
        ] {
            if !(0.0..=1.0).contains(&w) {
                return Err(ContextError::InvalidArgument(format!(
                    "memory store `{}`: {what} must be between 0 and 1, found {w}",
                    spec.name
                )));
            }
        }
        let dir = if spec.path.is_absolute() {
            spec.path.clone()
        } else {
            data_dir.join(&spec.path)
        };
        std::fs::create_dir_all(&dir).map_err(|e| ContextError::io(&dir, e))?;
        let index = ctx.open(&collection_of(&spec.name, &dir)).await?;
        let store = Self { spec, dir, index };
        let files = store.entry_files()?;
        let indexed = store
            .index
            .store()
            .count(store.index.collection(), None)
            .await?;
        if indexed != files.len() {
            tracing::info!(store = %store.spec.name, files = files.len(), indexed, "rebuilding memory store index from its files");
            store.reindex(&files).await?;
        }
        Ok(store)
    }

    /// The store's settings.
    pub fn spec(&self) -> &MemoryStoreSpec {
        &self.spec
    }

    /// The directory of its Markdown files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn entry_files(&self) -> Result<Vec<PathBuf>, ContextError> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(&self.dir).map_err(|e| ContextError::io(&self.dir, e))? {
            let p = e.map_err(|e| ContextError::io(&self.dir, e))?.path();
            let is_entry = p.extension().is_some_and(|x| x == "md")
                && p.file_stem()
                    .and_then(|s| s.to_str())
                    .is_some_and(|s| uuid::Uuid::parse_str(s).is_ok());
            if is_entry {
                out.push(p);
            }
        }
        out.sort();
        Ok(out)
    }

    async fn reindex(&self, files: &[PathBuf]) -> Result<(), ContextError> {
        let all = self
            .index
            .store()
            .scroll(self.index.collection(), None, usize::MAX)
            .await?;
        let ids: Vec<uuid::Uuid> = all.iter().map(|p| p.id).collect();
        self.index.delete(&ids).await?;
        let mut batch = Vec::new();
        for f in files {
            let text = std::fs::read_to_string(f).map_err(|e| ContextError::io(f, e))?;
            let (id, created, record) = parse(f, &text)?;
            let uid = uuid::Uuid::parse_str(&id).map_err(|e| ContextError::Corrupt {
                path: f.display().to_string(),
                message: e.to_string(),
            })?;
            let created_secs = chrono::DateTime::parse_from_rfc3339(&created)
                .map(|d| d.timestamp())
                .unwrap_or_else(|_| now_secs());
            batch.push((uid, index_text(&record), payload(&id, created_secs, record)));
        }
        for chunk in batch.chunks(256) {
            self.index.upsert(chunk.to_vec()).await?;
        }
        Ok(())
    }

    /// `memory_write(store, record)`: stores the record, returns its id.
    pub async fn write(&self, record: Map<String, Value>) -> Result<String, ContextError> {
        let uid = uuid::Uuid::new_v4();
        let id = uid.to_string();
        let now = chrono::Utc::now();
        let created = now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let path = self.dir.join(format!("{id}.md"));
        atomic_write(
            &path,
            render(&self.spec.name, &id, &created, &record).as_bytes(),
        )?;
        let text = index_text(&record);
        if let Err(e) = self
            .index
            .upsert(vec![(uid, text, payload(&id, now.timestamp(), record))])
            .await
        {
            // Keep files and index in step: no entry that search cannot find.
            let _ = std::fs::remove_file(&path);
            return Err(e);
        }
        Ok(id)
    }

    /// `memory_search(store, query, limit)`: the stored maps, best first, each with `id` and
    /// `score` added.
    pub async fn search(&self, query: &str, limit: usize) -> Result<Vec<Value>, ContextError> {
        let weights = Weights {
            vector: self.spec.vector_weight,
            keyword: self.spec.keyword_weight,
        };
        let hits = self.index.search(query, None, limit, weights).await?;
        Ok(hits
            .iter()
            .map(|h| {
                let mut m = h
                    .payload
                    .get("record")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                m.insert("id".into(), h.id.to_string().into());
                m.insert("score".into(), json!(h.score as f64));
                Value::Object(m)
            })
            .collect())
    }

    /// `memory_delete(store, id)`: whether the entry existed.
    pub async fn delete(&self, id: &str) -> Result<bool, ContextError> {
        let Ok(uid) = uuid::Uuid::parse_str(id) else {
            return Ok(false);
        };
        let path = self.dir.join(format!("{uid}.md"));
        let existed = path.exists();
        self.index.delete(&[uid]).await?;
        if existed {
            std::fs::remove_file(&path).map_err(|e| ContextError::io(&path, e))?;
        }
        Ok(existed)
    }

    /// Number of entries.
    pub async fn len(&self) -> Result<usize, ContextError> {
        Ok(self.entry_files()?.len())
    }

    /// Removes entries older than the retention; returns how many.
    pub async fn compact(&self) -> Result<usize, ContextError> {
        let cutoff = now_secs() - self.spec.retention.as_secs() as i64;
        let mut removed = 0;
        for f in self.entry_files()? {
            let text = std::fs::read_to_string(&f).map_err(|e| ContextError::io(&f, e))?;
            let (id, created, _) = parse(&f, &text)?;
            let t = chrono::DateTime::parse_from_rfc3339(&created)
                .map(|d| d.timestamp())
                .unwrap_or(i64::MAX);
            if t < cutoff && self.delete(&id).await? {
                removed += 1;
            }
        }
        Ok(removed)
    }
}

fn payload(id: &str, created_at: i64, record: Map<String, Value>) -> Map<String, Value> {
    let mut p = Map::new();
    p.insert("id".into(), id.into());
    p.insert("created_at".into(), created_at.into());
    p.insert("record".into(), Value::Object(record));
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_files_round_trip() {
        let mut r = Map::new();
        r.insert("subject".into(), "Login outage\nnow".into());
        r.insert("urgent".into(), true.into());
        let text = render("ticket_log", "7f1c", "2026-11-26T08:00:00.000Z", &r);
        assert!(text.contains("- **subject**: Login outage now\n"));
        let (id, created, back) = parse(Path::new("x.md"), &text).unwrap();
        assert_eq!(
            (id.as_str(), created.as_str()),
            ("7f1c", "2026-11-26T08:00:00.000Z")
        );
        assert_eq!(back, r);
        assert!(parse(Path::new("x.md"), "no front matter").is_err());
    }

    #[test]
    fn index_text_flattens_records() {
        let r = json!({"subject": "Outage", "n": 3, "tags": ["a", {"k": "v"}]});
        assert_eq!(
            index_text(r.as_object().unwrap()),
            "subject Outage n 3 tags a k v"
        );
    }
}
