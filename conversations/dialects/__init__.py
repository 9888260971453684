"""Seed dialects: this project standing in for five existing chat backends, one module each.

A client written for one of those backends works unchanged against ``/compat/<name>/`` (or the
root, see ``COMPAT_ROOT_DIALECT``): each module decodes that backend's requests into a
:class:`~conversations.turns.TurnRequest` and encodes the turn's events into its wire format. Like
every edge, a dialect calls only the turn service (``turn_start``/``follow``) and reads through
:mod:`conversations.dialects.sessions`; it never touches a provider or the ORM.

| name | seed | module |
|---|---|---|
| ``gemini-gateway`` | 000, Gemini behind an AI gateway | :mod:`.gemini_gateway` |
| ``coding-agent`` | 001, Claude-style coding agent | :mod:`.coding_agent` |
| ``zai`` | 002, Z.AI backend | :mod:`.zai` |
| ``layercode`` | 003, Layercode voice agent | :mod:`.layercode` |
| ``chat-api`` | 004, extensible AI chat API | :mod:`.chat_api` |
"""
