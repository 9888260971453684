"""LLM provider adapters behind one async streaming interface (see :mod:`providers.base`).

Get a provider through :func:`providers.registry.get_registry`; adapters import their SDK, so they
are loaded only when a provider that needs them is first used.
"""
