//! Context manager, knowledge base, vector stores (Qdrant Edge / Qdrant server), embedders and RAG
