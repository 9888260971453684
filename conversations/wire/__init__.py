"""Encoders: one module per wire format, each a pure function of the turn's events."""
