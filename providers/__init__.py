"""LLM provider adapters behind one async streaming interface (see base.py)."""
