"""warmserve: an OpenAI-compatible server for models you run yourself, kept warm in worker processes."""

__version__ = "0.1.0"
