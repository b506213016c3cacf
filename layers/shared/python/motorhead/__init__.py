"""Motorhead Serverless: the shared layer (settings, models, Redis keys and store, memory service, HTTP glue)."""

__version__ = "0.1.0"
