//! Dense embeddings from an OpenAI-compatible `/v1/embeddings` endpoint.

use super::*;
use symbi_llm::LlmClient;

/// Most inputs sent in one request (OpenAI accepts 2048; smaller batches fail faster).
const BATCH: usize = 256;

/// Dense embeddings through `symbi-llm`'s client (retries, timeouts, token accounting).
pub struct OpenAiEmbedder {
    client: LlmClient,
    dim: usize,
}

impl OpenAiEmbedder {
    /// Embeds with `client`'s embedding model; every vector must have `dim` dimensions.
    pub fn new(client: LlmClient, dim: usize) -> Self {
        Self { client, dim }
    }
}

#[async_trait]
impl Embedder for OpenAiEmbedder {
    fn name(&self) -> String {
        format!("openai:{}", self.client.config().embedding_model)
    }
    fn kind(&self) -> EmbeddingKind {
        EmbeddingKind::Dense(self.dim)
    }
    async fn embed(
        &self,
        texts: &[String],
        _purpose: Purpose,
    ) -> Result<Vec<Embedding>, ContextError> {
        let mut out = Vec::with_capacity(texts.len());
        for batch in texts.chunks(BATCH) {
            let (vectors, _record) = self.client.embed(batch).await?;
            for v in vectors {
                if v.len() != self.dim {
                    return Err(ContextError::Embedding(format!(
                        "model {} returned {}-dimensional vectors but [context] embedding_dimension is {}",
                        self.client.config().embedding_model,
                        v.len(),
                        self.dim
                    )));
                }
                out.push(Embedding::Dense(v));
            }
        }
        Ok(out)
    }
}
