//! The shared knowledge base: documents chunked and indexed for hybrid search in the
//! `knowledge` collection. Every chunk's payload carries `doc_id`, `chunk`, `text`,
//! `title`, `source`, `section`, `format`, `created_at` (unix seconds) and the document's
//! `metadata`. Re-adding a document with the same id replaces its chunks. Chunks older than
//! `knowledge_retention_days` are removed by [`KnowledgeBase::compact`].

use crate::chunk::{ChunkOptions, DocFormat, chunk};
use crate::error::ContextError;
use crate::hybrid::{HybridIndex, Weights};
use crate::vector::{FieldMatch, MetaFilter};
use serde::Serialize;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// The collection of the shared knowledge base.
pub const KNOWLEDGE_COLLECTION: &str = "knowledge";

/// A document to add.
#[derive(Clone, Debug, PartialEq)]
pub struct KnowledgeDocument {
    /// Document id; a new UUID when `None`.
    pub id: Option<String>,
    /// Title.
    pub title: Option<String>,
    /// Where it came from (file path, URL).
    pub source: Option<String>,
    /// Its format (decides chunking).
    pub format: DocFormat,
    /// The content.
    pub text: String,
    /// Free metadata (filterable as `metadata.<key>`).
    pub metadata: Map<String, Value>,
}

impl KnowledgeDocument {
    /// A plain-text document.
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            id: None,
            title: None,
            source: None,
            format: DocFormat::Text,
            text: text.into(),
            metadata: Map::new(),
        }
    }

    /// The document of DSL `knowledge_add(document)`: a string is the text; a map has
    /// `text` (or `content`) and optionally `id`, `title`, `source`, `format`
    /// (`text`/`markdown`/`json`) and `metadata`; other keys join the metadata.
    pub fn from_value(v: &Value) -> Result<Self, ContextError> {
        match v {
            Value::String(s) => Ok(Self::text(s.clone())),
            Value::Object(m) => {
                let text = m
                    .get("text")
                    .or_else(|| m.get("content"))
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        ContextError::InvalidArgument(
                            "knowledge_add: the document needs a `text` (or `content`) string"
                                .into(),
                        )
                    })?;
                let s = |k: &str| m.get(k).and_then(Value::as_str).map(str::to_string);
                let format = match s("format").as_deref() {
                    None | Some("text") => DocFormat::Text,
                    Some("markdown") | Some("md") => DocFormat::Markdown,
                    Some("json") => DocFormat::Json,
                    Some(other) => {
                        return Err(ContextError::InvalidArgument(format!(
                            "knowledge_add: format `{other}` is not one of text, markdown, json"
                        )));
                    }
                };
                let mut metadata = m
                    .get("metadata")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                for (k, x) in m {
                    if !matches!(
                        k.as_str(),
                        "text" | "content" | "id" | "title" | "source" | "format" | "metadata"
                    ) {
                        metadata.insert(k.clone(), x.clone());
                    }
                }
                Ok(Self {
                    id: s("id"),
                    title: s("title"),
                    source: s("source"),
                    format,
                    text: text.to_string(),
                    metadata,
                })
            }
            other => Err(ContextError::InvalidArgument(format!(
                "knowledge_add: a document is a string or a map, found {other}"
            ))),
        }
    }
}

/// One search result (`knowledge_search` returns these as maps).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct KnowledgeHit {
    /// Document id.
    pub id: String,
    /// Chunk index within the document.
    pub chunk: u64,
    /// Chunk text.
    pub text: String,
    /// Fused hybrid score in (0, 1].
    pub score: f32,
    /// `title`, `source`, `section`, `format` and the document's own metadata.
    pub metadata: Map<String, Value>,
}

impl KnowledgeHit {
    /// The DSL shape `{id, text, score, metadata}` (metadata includes `chunk`).
    pub fn to_dsl(&self) -> Value {
        let mut md = self.metadata.clone();
        md.insert("chunk".into(), self.chunk.into());
        json!({"id": self.id, "text": self.text, "score": self.score as f64, "metadata": md})
    }
}

/// Progress of a directory ingestion.
#[derive(Clone, Debug, PartialEq)]
pub enum IngestProgress {
    /// The files to ingest were found.
    Found {
        /// How many.
        files: usize,
    },
    /// One file is done.
    File {
        /// The file.
        path: PathBuf,
        /// Chunks indexed.
        chunks: usize,
    },
    /// One file was skipped (unreadable, or a bad JSON document).
    Skipped {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// What an ingestion did.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct IngestReport {
    /// Documents ingested.
    pub documents: usize,
    /// Chunks indexed.
    pub chunks: usize,
    /// Files skipped with the reason (`path: reason`).
    pub skipped: Vec<String>,
}

/// The shared knowledge base.
#[derive(Clone, Debug)]
pub struct KnowledgeBase {
    index: HybridIndex,
    opts: ChunkOptions,
    retention_days: u32,
}

/// Point id of a chunk: derived from document id and chunk index, so re-ingesting a
/// document overwrites its points.
fn chunk_point(doc_id: &str, chunk: usize) -> uuid::Uuid {
    let d = Sha256::digest(format!("{doc_id}\u{0}{chunk}").as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    uuid::Builder::from_random_bytes(b).into_uuid()
}

impl KnowledgeBase {
    /// A knowledge base over an index.
    pub fn new(index: HybridIndex, opts: ChunkOptions, retention_days: u32) -> Self {
        Self {
            index,
            opts,
            retention_days,
        }
    }

    /// Days knowledge is kept.
    pub fn retention_days(&self) -> u32 {
        self.retention_days
    }

    /// The underlying index.
    pub fn index(&self) -> &HybridIndex {
        &self.index
    }

    /// Adds (or replaces) a document; returns its id.
    pub async fn add(&self, doc: KnowledgeDocument) -> Result<(String, usize), ContextError> {
        let doc_id = doc
            .id
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let name = doc.source.clone().unwrap_or_else(|| doc_id.clone());
        let chunks = chunk(&name, &doc.text, doc.format, self.opts)?;
        // Replace: drop whatever an earlier version of this document left.
        self.index
            .delete_where(&MetaFilter::eq("doc_id", doc_id.clone()))
            .await?;
        let now = chrono::Utc::now().timestamp();
        let format = serde_json::to_value(doc.format).unwrap_or(Value::Null);
        let items: Vec<_> = chunks
            .iter()
            .map(|c| {
                let mut p = Map::new();
                p.insert("doc_id".into(), doc_id.clone().into());
                p.insert("chunk".into(), (c.index as u64).into());
                p.insert("text".into(), c.text.clone().into());
                p.insert(
                    "title".into(),
                    doc.title.clone().map(Value::from).unwrap_or(Value::Null),
                );
                p.insert(
                    "source".into(),
                    doc.source.clone().map(Value::from).unwrap_or(Value::Null),
                );
                p.insert(
                    "section".into(),
                    c.section.clone().map(Value::from).unwrap_or(Value::Null),
                );
                p.insert("format".into(), format.clone());
                p.insert("created_at".into(), now.into());
                p.insert("metadata".into(), Value::Object(doc.metadata.clone()));
                let indexed = match &doc.title {
                    Some(t) => format!("{t}\n{}", c.text),
                    None => c.text.clone(),
                };
                (chunk_point(&doc_id, c.index), indexed, p)
            })
            .collect();
        let n = items.len();
        for batch in items.chunks(256) {
            self.index.upsert(batch.to_vec()).await?;
        }
        Ok((doc_id, n))
    }

    /// Ingests a file or every text/Markdown/JSON file under a directory (recursively, in
    /// path order). A file's document id is its path as given; unreadable files and bad
    /// JSON are skipped and reported, the rest goes on.
    pub async fn ingest_path(
        &self,
        path: &Path,
        progress: &(dyn Fn(IngestProgress) + Send + Sync),
    ) -> Result<IngestReport, ContextError> {
        let mut files = Vec::new();
        let meta = std::fs::metadata(path).map_err(|e| ContextError::io(path, e))?;
        if meta.is_dir() {
            collect_files(path, &mut files)?;
        } else {
            if DocFormat::from_path(path).is_none() {
                return Err(ContextError::InvalidArgument(format!(
                    "{}: not a text (.txt), Markdown (.md) or JSON (.json) file",
                    path.display()
                )));
            }
            files.push(path.to_path_buf());
        }
        progress(IngestProgress::Found { files: files.len() });
        let mut report = IngestReport::default();
        for f in files {
            let format = DocFormat::from_path(&f).expect("filtered by extension");
            let text = match std::fs::read_to_string(&f) {
                Ok(t) => t,
                Err(e) => {
                    let reason = e.to_string();
                    report.skipped.push(format!("{}: {reason}", f.display()));
                    progress(IngestProgress::Skipped { path: f, reason });
                    continue;
                }
            };
            let source = f.display().to_string();
            let title = title_of(&f, &text, format);
            let doc = KnowledgeDocument {
                id: Some(source.clone()),
                title,
                source: Some(source),
                format,
                text,
                metadata: Map::new(),
            };
            match self.add(doc).await {
                Ok((_, n)) => {
                    report.documents += 1;
                    report.chunks += n;
                    progress(IngestProgress::File { path: f, chunks: n });
                }
                Err(ContextError::InvalidArgument(reason)) => {
                    report.skipped.push(reason.clone());
                    progress(IngestProgress::Skipped { path: f, reason });
                }
                Err(e) => return Err(e),
            }
        }
        Ok(report)
    }

    /// Hybrid search (equal weights), best first.
    pub async fn search(
        &self,
        query: &str,
        limit: usize,
        filter: Option<&MetaFilter>,
    ) -> Result<Vec<KnowledgeHit>, ContextError> {
        let hits = self
            .index
            .search(query, filter, limit, Weights::default())
            .await?;
        Ok(hits
            .iter()
            .map(|h| {
                let p = &h.payload;
                let mut metadata = p
                    .get("metadata")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                for k in ["title", "source", "section", "format"] {
                    if let Some(v) = p.get(k).filter(|v| !v.is_null()) {
                        metadata.insert(k.into(), v.clone());
                    }
                }
                KnowledgeHit {
                    id: p
                        .get("doc_id")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                    chunk: p.get("chunk").and_then(Value::as_u64).unwrap_or(0),
                    text: p
                        .get("text")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                    score: h.score,
                    metadata,
                }
            })
            .collect())
    }

    /// Number of chunks stored.
    pub async fn chunk_count(&self) -> Result<usize, ContextError> {
        self.index
            .store()
            .count(self.index.collection(), None)
            .await
    }

    /// Removes chunks older than the retention; returns how many.
    pub async fn compact(&self) -> Result<usize, ContextError> {
        let cutoff = chrono::Utc::now().timestamp() - self.retention_days as i64 * 86_400;
        let f = MetaFilter::default().and(
            "created_at",
            FieldMatch::Range {
                gte: None,
                lt: Some(cutoff as f64),
            },
        );
        let n = self
            .index
            .store()
            .count(self.index.collection(), Some(&f))
            .await?;
        if n > 0 {
            self.index.delete_where(&f).await?;
        }
        Ok(n)
    }
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), ContextError> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| ContextError::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for p in entries {
        let hidden = p
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'));
        if hidden {
            continue;
        }
        if p.is_dir() {
            collect_files(&p, out)?;
        } else if DocFormat::from_path(&p).is_some() {
            out.push(p);
        }
    }
    Ok(())
}

/// A document's title: its first Markdown heading, else the file name.
fn title_of(path: &Path, text: &str, format: DocFormat) -> Option<String> {
    if format == DocFormat::Markdown {
        if let Some(h) = text.lines().find_map(|l| l.strip_prefix("# ")) {
            return Some(h.trim().to_string());
        }
    }
    path.file_stem()
        .and_then(|s| s.to_str())
        .map(str::to_string)
}
