//! The RAG pipeline: query analysis → hybrid search → document retrieval → ranking →
//! response generation.
//!
//! * **Analysis** splits `field:value` filter tokens (`source:`, `title:`, `section:`,
//!   `doc:`, `format:`, `meta.<key>:`) from the question, extracts keywords (stop words
//!   dropped) and classifies the intent from the question's shape.
//! * **Search** is the knowledge base's hybrid search, three times deeper than needed.
//! * **Retrieval** groups chunks by document and keeps at most two per document, so one
//!   long document cannot crowd out the others.
//! * **Ranking** re-scores by `0.7 × fused score + 0.3 × keyword coverage` (the share of
//!   the question's keywords the chunk contains) when re-ranking is on.
//! * **Generation**: with a model provider, the model answers from the numbered passages and
//!   cites them as `[n]`; without one, an extractive answer quotes the best-matching
//!   sentences of the best passages, each followed by its citation number.

use crate::error::ContextError;
use crate::knowledge::{KnowledgeBase, KnowledgeHit};
use crate::vector::{FieldMatch, MetaFilter};
use serde::Serialize;
use serde_json::{Value, json};
use std::time::Instant;
use symbi_llm::{CallRecord, ChatRequest, LlmClient};

/// English stop words dropped from keywords.
const STOP: &[&str] = &[
    "a", "about", "an", "and", "are", "as", "at", "be", "by", "can", "could", "did", "do", "does",
    "for", "from", "has", "have", "how", "i", "in", "is", "it", "its", "me", "my", "of", "on",
    "or", "should", "tell", "that", "the", "their", "there", "these", "this", "those", "to", "was",
    "we", "were", "what", "when", "where", "which", "who", "whom", "why", "will", "with", "would",
    "you", "your",
];

/// What the question asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Intent {
    /// "What is X", "define X".
    Definition,
    /// "How do I …", "steps to …".
    Procedure,
    /// "X vs Y", "difference between …".
    Comparison,
    /// "List …", "which … are".
    Enumeration,
    /// "Why …".
    Explanation,
    /// "When/where/who …", yes/no questions and everything else.
    Factual,
}

/// The analysed question.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct QueryAnalysis {
    /// The question without filter tokens.
    pub text: String,
    /// Lower-cased keywords without stop words, in order, unique.
    pub keywords: Vec<String>,
    /// Payload filters from `field:value` tokens.
    pub filter: MetaFilter,
    /// The question's intent.
    pub intent: Intent,
}

/// Analyses a question.
///
/// ```
/// use symbi_context::rag::{analyze, Intent};
/// let a = analyze("How do I rotate the audit key? source:ops.md");
/// assert_eq!(a.intent, Intent::Procedure);
/// assert_eq!(a.keywords, vec!["rotate", "audit", "key"]);
/// assert_eq!(a.text, "How do I rotate the audit key?");
/// assert_eq!(a.filter.must.len(), 1);
/// ```
pub fn analyze(question: &str) -> QueryAnalysis {
    let mut filter = MetaFilter::default();
    let mut words = Vec::new();
    for tok in question.split_whitespace() {
        if let Some((field, value)) = tok.split_once(':') {
            let value = value.trim_matches('"');
            let key = match field {
                "source" | "title" | "section" | "format" => Some(field.to_string()),
                "doc" => Some("doc_id".to_string()),
                f if f.starts_with("meta.") && f.len() > 5 => Some(format!("metadata.{}", &f[5..])),
                _ => None,
            };
            if let (Some(k), false) = (key, value.is_empty()) {
                filter
                    .must
                    .push((k, FieldMatch::Eq(Value::String(value.to_string()))));
                continue;
            }
        }
        words.push(tok);
    }
    let text = words.join(" ");
    let mut keywords: Vec<String> = Vec::new();
    for w in text.split(|c: char| !c.is_alphanumeric() && c != '-' && c != '_') {
        let w = w.trim_matches('-').to_lowercase();
        if w.len() > 1 && !STOP.contains(&w.as_str()) && !keywords.contains(&w) {
            keywords.push(w);
        }
    }
    let l = text.to_lowercase();
    let starts = |p: &[&str]| p.iter().any(|x| l.starts_with(x));
    let intent = if l.contains(" vs ")
        || l.contains(" versus ")
        || l.contains("difference between")
        || starts(&["compare"])
    {
        Intent::Comparison
    } else if starts(&[
        "how do",
        "how to",
        "how can",
        "how should",
        "steps",
        "guide",
    ]) {
        Intent::Procedure
    } else if starts(&["why"]) {
        Intent::Explanation
    } else if starts(&[
        "what is",
        "what are",
        "what's",
        "define",
        "meaning of",
        "explain",
    ]) {
        Intent::Definition
    } else if starts(&["list", "which", "name the", "enumerate"]) {
        Intent::Enumeration
    } else {
        Intent::Factual
    };
    QueryAnalysis {
        text,
        keywords,
        filter,
        intent,
    }
}

/// A cited passage.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Citation {
    /// Citation number as used in the answer (`[1]`).
    pub n: usize,
    /// Document id.
    pub document: String,
    /// Chunk index.
    pub chunk: u64,
    /// Final ranking score.
    pub score: f32,
    /// Document title, if any.
    pub title: Option<String>,
    /// The passage text.
    pub text: String,
}

/// The pipeline's answer.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RagAnswer {
    /// The answer text, with `[n]` citation marks.
    pub answer: String,
    /// The passages, in citation order.
    pub citations: Vec<Citation>,
    /// `llm` or `extractive`.
    pub generated_by: &'static str,
    /// The analysed question.
    pub analysis: QueryAnalysis,
    /// Milliseconds spent before generation (analysis, search, retrieval, ranking).
    pub retrieval_ms: f64,
    /// The model call's audit record, when a model answered.
    #[serde(skip)]
    pub llm_record: Option<CallRecord>,
}

impl RagAnswer {
    /// The DSL shape `{answer, citations}`; each citation `{document, chunk, score, text}`
    /// (plus `n` and `title`).
    pub fn to_dsl(&self) -> Value {
        json!({
            "answer": self.answer,
            "citations": self.citations.iter().map(|c| json!({
                "n": c.n, "document": c.document, "chunk": c.chunk, "score": c.score as f64,
                "title": c.title, "text": c.text
            })).collect::<Vec<_>>(),
        })
    }
}

/// Options of one query.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RagOptions {
    /// Passages to cite at most.
    pub limit: usize,
    /// Re-rank by keyword coverage.
    pub rerank: bool,
}

impl Default for RagOptions {
    fn default() -> Self {
        Self {
            limit: 5,
            rerank: true,
        }
    }
}

fn coverage(keywords: &[String], text: &str) -> f32 {
    if keywords.is_empty() {
        return 0.0;
    }
    let t = text.to_lowercase();
    // Prefix match on the first 5 characters tolerates inflection (rotate/rotation).
    let hit = keywords
        .iter()
        .filter(|k| t.contains(&k.chars().take(5).collect::<String>()))
        .count();
    hit as f32 / keywords.len() as f32
}

/// Retrieval and ranking: the passages a question is answered from, best first.
pub async fn retrieve(
    kb: &KnowledgeBase,
    analysis: &QueryAnalysis,
    opts: RagOptions,
) -> Result<Vec<(f32, KnowledgeHit)>, ContextError> {
    let query = if analysis.keywords.is_empty() {
        analysis.text.clone()
    } else {
        analysis.keywords.join(" ")
    };
    let filter = (!analysis.filter.is_empty()).then_some(&analysis.filter);
    let hits = kb.search(&query, opts.limit.max(1) * 3, filter).await?;
    // Document retrieval: at most two chunks per document.
    let mut per_doc: std::collections::HashMap<String, usize> = Default::default();
    let mut ranked: Vec<(f32, KnowledgeHit)> = Vec::new();
    for h in hits {
        let n = per_doc.entry(h.id.clone()).or_insert(0);
        if *n >= 2 {
            continue;
        }
        *n += 1;
        let score = if opts.rerank {
            0.7 * h.score + 0.3 * coverage(&analysis.keywords, &h.text)
        } else {
            h.score
        };
        ranked.push((score, h));
    }
    ranked.sort_by(|a, b| {
        b.0.total_cmp(&a.0)
            .then(a.1.id.cmp(&b.1.id))
            .then(a.1.chunk.cmp(&b.1.chunk))
    });
    ranked.truncate(opts.limit.max(1));
    Ok(ranked)
}

/// Runs the whole pipeline. With `llm`, the model writes the answer; without, the answer
/// is extractive.
pub async fn answer(
    kb: &KnowledgeBase,
    llm: Option<&LlmClient>,
    question: &str,
    opts: RagOptions,
) -> Result<RagAnswer, ContextError> {
    let started = Instant::now();
    let analysis = analyze(question);
    let ranked = retrieve(kb, &analysis, opts).await?;
    let citations: Vec<Citation> = ranked
        .iter()
        .enumerate()
        .map(|(i, (score, h))| Citation {
            n: i + 1,
            document: h.id.clone(),
            chunk: h.chunk,
            score: *score,
            title: h
                .metadata
                .get("title")
                .and_then(Value::as_str)
                .map(str::to_string),
            text: h.text.clone(),
        })
        .collect();
    let retrieval_ms = started.elapsed().as_secs_f64() * 1e3;
    if citations.is_empty() {
        return Ok(RagAnswer {
            answer: format!("No knowledge matches \"{}\".", analysis.text),
            citations,
            generated_by: "extractive",
            analysis,
            retrieval_ms,
            llm_record: None,
        });
    }
    match llm {
        Some(client) => {
            let passages: String = citations
                .iter()
                .map(|c| format!("[{}] {}\n\n", c.n, c.text))
                .collect();
            let system = "Answer the question using only the numbered passages. Cite every claim with the \
                          passage number in square brackets, like [1]. If the passages do not contain the \
                          answer, say so.";
            let user = format!("Passages:\n\n{passages}Question: {}", analysis.text);
            let out = client
                .chat(ChatRequest::simple(Some(system), &user))
                .await?;
            Ok(RagAnswer {
                answer: out.text().to_string(),
                citations,
                generated_by: "llm",
                analysis,
                retrieval_ms,
                llm_record: Some(out.record),
            })
        }
        None => {
            let answer = extractive(&analysis, &citations);
            Ok(RagAnswer {
                answer,
                citations,
                generated_by: "extractive",
                analysis,
                retrieval_ms,
                llm_record: None,
            })
        }
    }
}

/// Up to three sentences from the top passages that cover the most keywords, in passage
/// order, each followed by its citation mark.
fn extractive(analysis: &QueryAnalysis, citations: &[Citation]) -> String {
    let mut candidates: Vec<(f32, usize, usize, String)> = Vec::new();
    for c in citations.iter().take(3) {
        for (j, s) in crate::chunk::sentences(&c.text).into_iter().enumerate() {
            let cov = coverage(&analysis.keywords, &s);
            // Prefer covering sentences, then better passages, then earlier sentences.
            candidates.push((cov + c.score * 0.01, c.n, j, s));
        }
    }
    candidates.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    let best_cov = candidates.first().map(|c| c.0).unwrap_or(0.0);
    let mut picked: Vec<(usize, usize, String)> = candidates
        .into_iter()
        .filter(|c| c.0 > 0.0 && c.0 >= best_cov * 0.5)
        .take(3)
        .map(|(_, n, j, s)| (n, j, s))
        .collect();
    if picked.is_empty() {
        let c = &citations[0];
        let first = crate::chunk::sentences(&c.text)
            .into_iter()
            .next()
            .unwrap_or_default();
        return format!("{first} [{}]", c.n);
    }
    picked.sort_by_key(|(n, j, _)| (*n, *j));
    picked
        .into_iter()
        .map(|(n, _, s)| format!("{s} [{n}]"))
        .collect::<Vec<_>>()
        .join(" ")
}
