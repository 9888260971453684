"""Model-name patterns in settings (``OPENAI_COMPATIBLE_ATTACHMENT_MODELS``, ``ZAI_VISION_MODELS``):
comma-separated names where ``*`` and ``?`` are globs (:func:`fnmatch.fnmatchcase`), matched
without regard to case; an empty value matches no model."""

from __future__ import annotations

from collections.abc import Iterable
from fnmatch import fnmatchcase


def parse_globs(value: str | Iterable[str]) -> tuple[str, ...]:
    """The patterns of a setting (a comma-separated string or a list), lower-cased, blanks dropped."""
    names = value.split(",") if isinstance(value, str) else value
    return tuple(name.strip().lower() for name in names if name.strip())


def matches(model: str, globs: Iterable[str]) -> bool:
    """Whether ``model`` matches one of ``globs`` (already parsed by :func:`parse_globs`)."""
    name = model.lower()
    return any(fnmatchcase(name, glob) for glob in globs)
