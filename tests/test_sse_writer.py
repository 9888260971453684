"""SSE frames are written in one module (``conversations/wire/sse.py``): no other module's code
holds a string that starts or continues an SSE ``data:``/``event:``/``id:`` line."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WRITER = ROOT / "conversations" / "wire" / "sse.py"
SSE_LINE = re.compile(r"(^|\n)(data|event|id): ")


def hand_built_lines(source: str) -> list[int]:
    """Line numbers of string or bytes literals (docstrings aside) that write an SSE field."""
    tree = ast.parse(source)
    docstrings = {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
    }
    found = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str | bytes)
            and id(node) not in docstrings
        ):
            text = node.value.decode("latin-1") if isinstance(node.value, bytes) else node.value
            if SSE_LINE.search(text):
                found.append(node.lineno)
    return found


def test_only_the_sse_writer_builds_sse_lines():
    writers = [
        f"{path.relative_to(ROOT)}:{line}"
        for path in sorted((ROOT / "conversations").rglob("*.py"))
        if path != WRITER
        for line in hand_built_lines(path.read_text())
    ]
    assert writers == []


def test_the_check_sees_a_hand_built_frame_but_not_a_docstring():
    assert hand_built_lines('def f(p):\n    """``data: x``"""\n    return b"data: " + p\n') == [3]
    assert hand_built_lines("x = 'event: done\\n'\ny = 'a\\nid: 3'\n") == [1, 2]
    assert hand_built_lines('"""data: in a module docstring"""\n') == []
