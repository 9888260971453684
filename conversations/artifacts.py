"""Fenced code blocks (```lang … ```) found in an answer as it streams.

:class:`FenceScanner` is fed the deltas in order and hands back each block as
soon as its closing fence arrives, whatever way the text was cut into chunks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})\s*([^`]*)$")

EXTENSION_LANGUAGES = {
    "py": "python",
    "js": "javascript",
    "ts": "typescript",
    "tsx": "tsx",
    "jsx": "jsx",
    "html": "html",
    "css": "css",
    "json": "json",
    "sh": "bash",
    "md": "markdown",
    "rs": "rust",
    "go": "go",
    "java": "java",
    "sql": "sql",
    "yml": "yaml",
    "yaml": "yaml",
    "toml": "toml",
}


@dataclass(frozen=True, slots=True)
class CodeBlock:
    position: int
    language: str
    filename: str
    content: str


def parse_info_string(info: str) -> tuple[str, str]:
    """``python``, ``python:app.py``, ``python app.py``, ``python filename=app.py``, ``app.py``."""
    tokens = info.strip().split()
    if not tokens:
        return "", ""
    first, rest = tokens[0], tokens[1:]
    language, filename = first, ""
    if ":" in first:
        language, _, filename = first.partition(":")
    elif "." in first and "=" not in first:
        filename = first
        language = EXTENSION_LANGUAGES.get(first.rsplit(".", 1)[-1].lower(), "")
    for token in rest:
        key, eq, value = token.partition("=")
        if eq and key.lower() in ("filename", "file", "title", "name", "path"):
            filename = value.strip("\"'")
        elif not eq and not filename and "." in token:
            filename = token.strip("\"'")
    return language.lower()[:40], filename[:255]


class FenceScanner:
    """Incremental scanner: ``feed(delta)`` returns the blocks closed by that delta."""

    def __init__(self) -> None:
        self._pending = ""  # text after the last newline, not yet a whole line
        self._open: tuple[str, str, str] | None = None  # (fence, language, filename)
        self._lines: list[str] = []
        self._count = 0

    def feed(self, text: str) -> list[CodeBlock]:
        self._pending += text
        if "\n" not in self._pending:
            return []
        *lines, self._pending = self._pending.split("\n")
        return [block for line in lines if (block := self._line(line)) is not None]

    def finish(self) -> list[CodeBlock]:
        """End of the answer: the last line, and a block left unclosed, count too."""
        blocks: list[CodeBlock] = []
        if self._pending:
            line, self._pending = self._pending, ""
            if (block := self._line(line)) is not None:
                blocks.append(block)
        if self._open is not None and self._lines:
            blocks.append(self._close())
        self._open = None
        return blocks

    def _line(self, line: str) -> CodeBlock | None:
        match = FENCE.match(line.rstrip("\r"))
        if self._open is None:
            if match:
                language, filename = parse_info_string(match.group(2))
                self._open = (match.group(1), language, filename)
                self._lines = []
            return None
        fence = self._open[0]
        if (
            match
            and not match.group(2).strip()
            and match.group(1)[0] == fence[0]
            and len(match.group(1)) >= len(fence)
        ):
            return self._close()
        self._lines.append(line)
        return None

    def _close(self) -> CodeBlock:
        assert self._open is not None
        _, language, filename = self._open
        content = "\n".join(self._lines)
        content = content + "\n" if content else content
        block = CodeBlock(self._count, language, filename, content)
        self._count += 1
        self._open, self._lines = None, []
        return block


def extract_code_blocks(text: str) -> list[CodeBlock]:
    scanner = FenceScanner()
    return scanner.feed(text) + scanner.finish()
