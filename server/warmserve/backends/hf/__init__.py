"""The transformers engine: Hugging Face models (a folder, a hub id or a GGUF file), batched in torch."""
