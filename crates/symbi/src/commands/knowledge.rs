//! `symbi knowledge …`: the shared knowledge base under `--data-dir` — ingest documents,
//! search them, ask a question (RAG with citations).
//!
//! These are operator commands on the operator's own data directory: they use the
//! knowledge base directly, without an agent principal. Agents reach the same knowledge
//! only through `knowledge_search` / `knowledge_add` / `rag_query`, which are policy-gated.

use super::Globals;
use crate::cli::Format;
use anyhow::Context as _;
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use symbi_context::ContextManager;
use symbi_context::knowledge::IngestProgress;
use symbi_context::rag::{RagOptions, answer};

/// `symbi knowledge …`.
#[derive(Subcommand, Debug)]
pub enum KnowledgeCommand {
    /// Ingest a text (.txt), Markdown (.md) or JSON (.json) file, or every such file under a
    /// directory. Re-ingesting a file replaces its earlier version.
    Ingest(IngestArgs),
    /// Hybrid search (BM25 + dense when configured): document, chunk text, score.
    Search(SearchArgs),
    /// Answer a question from the knowledge base, with citations (LLM when `[llm]` is
    /// configured, otherwise an extractive answer).
    Ask(AskArgs),
}

/// `symbi knowledge ingest`.
#[derive(Args, Debug)]
pub struct IngestArgs {
    /// A file or directory.
    pub path: PathBuf,
    /// Output format of the summary.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

/// `symbi knowledge search`.
#[derive(Args, Debug)]
pub struct SearchArgs {
    /// The query.
    pub query: String,
    /// Results to show.
    #[arg(long, default_value_t = 5)]
    pub limit: usize,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

/// `symbi knowledge ask`.
#[derive(Args, Debug)]
pub struct AskArgs {
    /// The question (`source:FILE` and `meta.KEY:VALUE` tokens filter).
    pub question: String,
    /// Passages to cite at most.
    #[arg(long, default_value_t = 5)]
    pub limit: usize,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

pub fn run(g: &Globals, cmd: KnowledgeCommand) -> anyhow::Result<ExitCode> {
    let loaded = g.load(None)?;
    crate::logging::init(&loaded.config.log, "warn");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        // Operator commands: no agent principal, so no policy requests are made; the
        // knowledge base is used directly.
        let ctx = ContextManager::open(
            &loaded.config,
            Arc::new(symbi_types::policy::DenyAll),
            Arc::new(symbi_types::event::NullSink),
        )
        .await
        .context("opening the knowledge base")?;
        match cmd {
            KnowledgeCommand::Ingest(a) => ingest(&ctx, a).await,
            KnowledgeCommand::Search(a) => search(&ctx, a).await,
            KnowledgeCommand::Ask(a) => ask(&ctx, a).await,
        }
    })
}

async fn ingest(ctx: &ContextManager, a: IngestArgs) -> anyhow::Result<ExitCode> {
    if !a.path.exists() {
        return Err(crate::exit::usage(format!(
            "{}: no such file or directory",
            a.path.display()
        )));
    }
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} files {msg}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    if a.format == Format::Json {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let b = bar.clone();
    let report = ctx
        .knowledge()
        .ingest_path(&a.path, &move |p| match p {
            IngestProgress::Found { files } => b.set_length(files as u64),
            IngestProgress::File { path, chunks } => {
                b.set_message(format!("{} ({chunks} chunks)", path.display()));
                b.inc(1);
            }
            IngestProgress::Skipped { path, reason } => {
                b.println(format!("skipped {}: {reason}", path.display()));
                b.inc(1);
            }
        })
        .await?;
    bar.finish_and_clear();
    let total = ctx.knowledge().chunk_count().await?;
    match a.format {
        Format::Json => {
            let mut v = serde_json::to_value(&report)?;
            v["total_chunks"] = total.into();
            v["backend"] = ctx.vector_store().backend().into();
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        Format::Text => {
            println!(
                "ingested {} document(s), {} chunk(s); {} skipped; knowledge base now holds {total} chunk(s) ({})",
                report.documents,
                report.chunks,
                report.skipped.len(),
                ctx.vector_store().backend()
            );
            for s in &report.skipped {
                println!("  skipped: {s}");
            }
        }
    }
    Ok(if report.skipped.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

async fn search(ctx: &ContextManager, a: SearchArgs) -> anyhow::Result<ExitCode> {
    let hits = ctx.knowledge().search(&a.query, a.limit, None).await?;
    match a.format {
        Format::Json => {
            let v: Vec<serde_json::Value> = hits
                .iter()
                .map(|h| {
                    serde_json::json!({"document": h.id, "chunk": h.chunk, "score": h.score as f64, "text": h.text, "metadata": h.metadata})
                })
                .collect();
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        Format::Text => {
            if hits.is_empty() {
                println!("no results");
            }
            for (i, h) in hits.iter().enumerate() {
                println!("{}. {} #{}  score {:.3}", i + 1, h.id, h.chunk, h.score);
                for line in h.text.lines() {
                    println!("   {line}");
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn ask(ctx: &ContextManager, a: AskArgs) -> anyhow::Result<ExitCode> {
    let client = ctx.llm().map(|e| e.client());
    let r = answer(
        ctx.knowledge(),
        client,
        &a.question,
        RagOptions {
            limit: a.limit.max(1),
            rerank: true,
        },
    )
    .await?;
    match a.format {
        Format::Json => {
            let mut v = r.to_dsl();
            v["generated_by"] = r.generated_by.into();
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        Format::Text => {
            println!("{}\n", r.answer);
            for c in &r.citations {
                println!(
                    "[{}] {} #{} (score {:.3})",
                    c.n, c.document, c.chunk, c.score
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
