//! OpenAI-compatible model provider: chat completions (streaming, tool calls) and embeddings
