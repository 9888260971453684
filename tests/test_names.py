"""Names and rooms (docs/architecture.md): the WebSockets live in one package, and no two modules of
the app share a stem (singular or plural) unless the pair is a deliberate parallel named below — so a
reader never opens one module when they were looking for the other."""

from __future__ import annotations

import ast

from tests.test_imports import ROOT, project_modules

# Stems several packages hold on purpose: the framework's conventions (one per app or floor), and
# one protocol's module on each floor it crosses (its codec, its mount, its encoder, its adapter,
# its views, its socket); a rule beside its page (first_user), a package's own OpenAPI part
# (schema), WebSocket authentication beside WebSocket frames (websocket).
PARALLEL_STEMS = {
    "admin", "app", "base", "check", "model", "url", "schema",
    "ai_sdk", "chat_api", "coding_agent", "gemini_gateway", "layercode", "openai_chat",
    "openai_response", "zai",
    "first_user", "websocket",
    "store",  # a package's persistence: the turn's writes (turns), the kept files (attachments)
    "attachment",  # the package, its views, its protocol readers (codecs)
}  # fmt: skip


def stem(module: str) -> str:
    name = module.rpartition(".")[2]
    return name[:-1] if name.endswith("s") else name


def test_no_two_modules_share_a_stem_but_the_deliberate_parallels():
    seen: dict[str, list[str]] = {}
    for module, path in project_modules().items():
        if path.name != "__init__.py":
            seen.setdefault(stem(module), []).append(module)
    clashes = {key: sorted(mods) for key, mods in seen.items() if len(mods) > 1 and key not in PARALLEL_STEMS}
    assert clashes == {}


def test_the_websocket_parts_live_in_one_package():
    """A Channels consumer or WebSocket middleware outside conversations/sockets/ (accounts/websocket.py
    is API-key authentication, which belongs with the keys) is a socket part out of its room."""
    outside = []
    for module, path in project_modules().items():
        if module.startswith("conversations.sockets") or module == "accounts.websocket":
            continue
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ClassDef) and any(
                isinstance(base, ast.Name | ast.Attribute)
                and ast.unparse(base).rpartition(".")[2].endswith(("WebsocketConsumer", "BaseMiddleware"))
                for base in node.bases
            ):
                outside.append(f"{module}.{node.name}")
    assert outside == []
    assert (ROOT / "conversations/sockets/routing.py").exists()
