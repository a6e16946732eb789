//! Document chunking for ingestion: text by sentences, Markdown by section then
//! sentences, JSON by record then `path: value` lines. Chunks hold at most
//! `max_tokens` tokens (whitespace-separated words, a close and cheap proxy for model
//! tokens) and repeat up to `overlap_tokens` of the previous chunk's tail so that a fact
//! spanning a boundary is found whole in one of them.

use crate::error::ContextError;
use serde_json::Value;
use std::path::Path;

/// A document's format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DocFormat {
    /// Plain text.
    Text,
    /// Markdown (sections by ATX headings).
    Markdown,
    /// JSON (a record, or an array of records).
    Json,
}

impl DocFormat {
    /// The format of a file by its extension; `None` for files ingestion skips.
    pub fn from_path(p: &Path) -> Option<Self> {
        match p.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "txt" | "text" | "log" | "rst" => Some(Self::Text),
            "md" | "markdown" => Some(Self::Markdown),
            "json" => Some(Self::Json),
            _ => None,
        }
    }
}

/// Chunk size and overlap, in tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkOptions {
    /// Most tokens in one chunk.
    pub max_tokens: usize,
    /// Tokens of the previous chunk repeated at the start of the next.
    pub overlap_tokens: usize,
}

impl Default for ChunkOptions {
    fn default() -> Self {
        Self {
            max_tokens: 200,
            overlap_tokens: 40,
        }
    }
}

/// One chunk of a document.
#[derive(Clone, Debug, PartialEq)]
pub struct Chunk {
    /// Position in the document (0-based).
    pub index: usize,
    /// The text (for Markdown, prefixed with its section heading).
    pub text: String,
    /// Heading path for Markdown (`Install > Linux`), JSON path for JSON records.
    pub section: Option<String>,
}

fn tokens(s: &str) -> usize {
    s.split_whitespace().count()
}

/// Splits text into sentences: at `.`, `!` or `?` followed by whitespace, at blank lines,
/// and after a paragraph's heading line. Other line breaks inside a paragraph become spaces.
pub fn sentences(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for para in text.split("\n\n") {
        // A short first line without sentence punctuation, followed by a line that does not
        // continue it in lower case, is a heading (chunks of Markdown start with their section title): its own unit, so an
        // extractive answer does not run it into the next sentence.
        let para = match para.trim_start().split_once('\n') {
            Some((first, rest))
                if rest
                    .trim_start()
                    .chars()
                    .next()
                    .is_some_and(|c| !c.is_lowercase())
                    && first.split_whitespace().count() <= 12
                    && !first.contains(['.', '!', '?', ':', ';', ',']) =>
            {
                let heading = first.split_whitespace().collect::<Vec<_>>().join(" ");
                if !heading.is_empty() {
                    out.push(heading);
                }
                rest
            }
            _ => para,
        };
        let para = para.split_whitespace().collect::<Vec<_>>().join(" ");
        let mut start = 0;
        let bytes = para.as_bytes();
        for (i, &b) in bytes.iter().enumerate() {
            if matches!(b, b'.' | b'!' | b'?') && bytes.get(i + 1).is_some_and(|c| *c == b' ') {
                let s = para[start..=i].trim();
                if !s.is_empty() {
                    out.push(s.to_string());
                }
                start = i + 1;
            }
        }
        let rest = para[start..].trim();
        if !rest.is_empty() {
            out.push(rest.to_string());
        }
    }
    out
}

/// Packs units (sentences, lines) into chunks of at most `max_tokens`, with overlap.
/// A unit longer than a chunk is cut into word windows.
fn pack(units: Vec<String>, opts: ChunkOptions, sep: &str) -> Vec<String> {
    let max = opts.max_tokens.max(1);
    let overlap = opts.overlap_tokens.min(max / 2);
    let mut pieces = Vec::new();
    for u in units {
        let n = tokens(&u);
        if n <= max {
            pieces.push(u);
        } else {
            let words: Vec<&str> = u.split_whitespace().collect();
            for w in words.chunks(max - overlap.min(max - 1)) {
                pieces.push(w.join(" "));
            }
        }
    }
    let mut chunks = Vec::new();
    let mut cur: Vec<String> = Vec::new();
    let mut cur_tokens = 0;
    let mut fresh = 0; // units in `cur` not carried over from the previous chunk
    for p in pieces {
        let n = tokens(&p);
        if cur_tokens + n > max && fresh > 0 {
            chunks.push(cur.join(sep));
            // Carry the tail (whole units) up to `overlap` tokens.
            let mut tail = Vec::new();
            let mut t = 0;
            for u in cur.iter().rev() {
                let k = tokens(u);
                if t + k > overlap || t + k + n > max {
                    break;
                }
                t += k;
                tail.push(u.clone());
            }
            tail.reverse();
            cur = tail;
            cur_tokens = t;
            fresh = 0;
        }
        cur_tokens += n;
        cur.push(p);
        fresh += 1;
    }
    if fresh > 0 {
        chunks.push(cur.join(sep));
    }
    chunks
}

/// Chunks a document. `name` is used in error messages (`name:line:column: …`).
///
/// ```
/// use symbi_context::chunk::{chunk, ChunkOptions, DocFormat};
/// let text = "# Setup\nInstall it. Run it.\n\n# Usage\nCall the API.";
/// let chunks = chunk("guide.md", text, DocFormat::Markdown, ChunkOptions::default()).unwrap();
/// assert_eq!(chunks.len(), 2);
/// assert_eq!(chunks[1].section.as_deref(), Some("Usage"));
/// assert_eq!(chunks[1].text, "Usage\nCall the API.");
/// ```
pub fn chunk(
    name: &str,
    text: &str,
    format: DocFormat,
    opts: ChunkOptions,
) -> Result<Vec<Chunk>, ContextError> {
    let mut out: Vec<Chunk> = Vec::new();
    let mut push = |section: Option<String>, body: String| {
        let index = out.len();
        out.push(Chunk {
            index,
            text: body,
            section,
        });
    };
    match format {
        DocFormat::Text => {
            for c in pack(sentences(text), opts, " ") {
                push(None, c);
            }
        }
        DocFormat::Markdown => {
            for (path, body) in markdown_sections(text) {
                let heading = path.last().cloned();
                let section = if path.is_empty() {
                    None
                } else {
                    Some(path.join(" > "))
                };
                for c in pack(sentences(&body), opts, " ") {
                    let text = match &heading {
                        Some(h) => format!("{h}\n{c}"),
                        None => c,
                    };
                    push(section.clone(), text);
                }
            }
        }
        DocFormat::Json => {
            let v: Value = serde_json::from_str(text).map_err(|e| {
                ContextError::InvalidArgument(format!(
                    "{name}:{}:{}: invalid JSON: {e}",
                    e.line(),
                    e.column()
                ))
            })?;
            let records: Vec<(String, &Value)> = match &v {
                Value::Array(items) => items
                    .iter()
                    .enumerate()
                    .map(|(i, x)| (format!("[{i}]"), x))
                    .collect(),
                other => vec![("$".to_string(), other)],
            };
            for (path, record) in records {
                let mut lines = Vec::new();
                flatten("", record, &mut lines);
                for c in pack(lines, opts, "\n") {
                    push(Some(path.clone()), c);
                }
            }
        }
    }
    Ok(out)
}

/// `(heading path, body)` per section; text before the first heading has an empty path.
fn markdown_sections(text: &str) -> Vec<(Vec<String>, String)> {
    let mut out: Vec<(Vec<String>, String)> = Vec::new();
    let mut path: Vec<(usize, String)> = Vec::new();
    let mut body = String::new();
    let mut in_fence = false;
    let flush =
        |out: &mut Vec<(Vec<String>, String)>, path: &[(usize, String)], body: &mut String| {
            if !body.trim().is_empty() {
                out.push((
                    path.iter().map(|(_, h)| h.clone()).collect(),
                    std::mem::take(body),
                ));
            }
            body.clear();
        };
    for line in text.lines() {
        let t = line.trim_start();
        if t.starts_with("```") || t.starts_with("~~~") {
            in_fence = !in_fence;
        }
        let level = t.chars().take_while(|c| *c == '#').count();
        if !in_fence && (1..=6).contains(&level) && t[level..].starts_with(' ') {
            flush(&mut out, &path, &mut body);
            let title = t[level..].trim().trim_end_matches('#').trim().to_string();
            while path.last().is_some_and(|(l, _)| *l >= level) {
                path.pop();
            }
            path.push((level, title));
        } else {
            body.push_str(line);
            body.push('\n');
        }
    }
    flush(&mut out, &path, &mut body);
    out
}

/// `a.b[0].c: value` lines of a JSON value.
fn flatten(prefix: &str, v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&p, x, out);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                flatten(&format!("{prefix}[{i}]"), x, out);
            }
        }
        Value::String(s) => out.push(if prefix.is_empty() {
            s.clone()
        } else {
            format!("{prefix}: {s}")
        }),
        other => out.push(if prefix.is_empty() {
            other.to_string()
        } else {
            format!("{prefix}: {other}")
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_split_on_terminators_and_paragraphs() {
        let s = sentences("One. Two!  Three?\nstill three.\n\nFour");
        assert_eq!(s, vec!["One.", "Two!", "Three?", "still three.", "Four"]);
        assert_eq!(sentences("v1.2 is out"), vec!["v1.2 is out"]);
        // A heading line is a unit of its own; a wrapped sentence line is not.
        assert_eq!(
            sentences("The audit log\nEvery event is signed. It is chained."),
            vec!["The audit log", "Every event is signed.", "It is chained."]
        );
        assert_eq!(
            sentences("Every action goes through the\npolicy engine."),
            vec!["Every action goes through the policy engine."]
        );
    }

    #[test]
    fn chunks_respect_the_budget_and_overlap() {
        let text: String = (0..30)
            .map(|i| format!("Sentence number {i} has six words. "))
            .collect();
        let opts = ChunkOptions {
            max_tokens: 20,
            overlap_tokens: 6,
        };
        let chunks = chunk("t", &text, DocFormat::Text, opts).unwrap();
        assert!(chunks.len() > 5);
        for c in &chunks {
            assert!(tokens(&c.text) <= 20, "{}", c.text);
        }
        // Each chunk after the first starts with the last sentence of the previous one.
        for w in chunks.windows(2) {
            let last_sentence = sentences(&w[0].text).pop().unwrap();
            assert!(
                w[1].text.starts_with(&last_sentence),
                "{:?} / {:?}",
                w[0].text,
                w[1].text
            );
        }
        // No sentence is lost.
        for i in 0..30 {
            assert!(
                chunks
                    .iter()
                    .any(|c| c.text.contains(&format!("number {i} ")))
            );
        }
    }

    #[test]
    fn overlong_sentences_are_cut() {
        let text = (0..50)
            .map(|i| format!("w{i}"))
            .collect::<Vec<_>>()
            .join(" ");
        let chunks = chunk(
            "t",
            &text,
            DocFormat::Text,
            ChunkOptions {
                max_tokens: 10,
                overlap_tokens: 0,
            },
        )
        .unwrap();
        assert_eq!(chunks.len(), 5);
        assert!(chunks.iter().all(|c| tokens(&c.text) == 10));
    }

    #[test]
    fn markdown_sections_nest_and_ignore_fenced_hashes() {
        let md = "Intro text.\n# A\nalpha.\n## B\nbeta.\n```\n# not a heading\n```\n# C\ngamma.";
        let chunks = chunk("d.md", md, DocFormat::Markdown, ChunkOptions::default()).unwrap();
        let sections: Vec<_> = chunks.iter().map(|c| c.section.clone()).collect();
        assert_eq!(
            sections,
            vec![
                None,
                Some("A".into()),
                Some("A > B".into()),
                Some("C".into())
            ]
        );
        assert!(chunks[2].text.contains("# not a heading"));
    }

    #[test]
    fn json_records_flatten_and_bad_json_has_a_position() {
        let j = r#"[{"name": "kim", "tags": ["a", "b"]}, {"name": "lee", "age": 3}]"#;
        let chunks = chunk("p.json", j, DocFormat::Json, ChunkOptions::default()).unwrap();
        assert_eq!(chunks.len(), 2);
        assert_eq!(chunks[0].text, "name: kim\ntags[0]: a\ntags[1]: b");
        assert_eq!(chunks[1].section.as_deref(), Some("[1]"));
        let err = chunk(
            "p.json",
            "{\n  \"a\": ,\n}",
            DocFormat::Json,
            ChunkOptions::default(),
        )
        .unwrap_err();
        assert!(
            err.to_string().starts_with("p.json:2:8: invalid JSON"),
            "{err}"
        );
    }
}
