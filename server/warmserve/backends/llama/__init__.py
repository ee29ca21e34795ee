"""The llama.cpp engine: GGUF models, continuous batching over llama-cpp-python's C API (native.py)."""
