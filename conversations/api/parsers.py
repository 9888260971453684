"""The API's JSON parser: DRF's, refusing what PostgreSQL cannot store and nesting past the limit.

The same rule as the turn endpoints' bodies (:func:`conversations.edge.bodies.json_refusal`): no
NUL character or lone surrogate in any key or string (the standard library's decoder lets
``"\\ud800"`` through; JSONB refuses it), no nesting deeper than ``MAX_JSON_DEPTH``. Refused with
400 and the rule's own code (``invalid_input``, ``body_too_deep``), before any view runs.
"""

from __future__ import annotations

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from conversations.edge.bodies import DEPTH_MESSAGE, json_refusal


class BodyRefused(ParseError):
    """A body that parsed but cannot be taken; ``error_code`` names why (the exception handler)."""

    def __init__(self, error_code: str, message: str) -> None:
        super().__init__(message)
        self.error_code = error_code


class StrictJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:  # the standard library's decoder recurses: ~1,000 levels exhaust it
            raise BodyRefused("body_too_deep", DEPTH_MESSAGE) from None
        refusal = json_refusal(data)
        if refusal is not None:
            raise BodyRefused(refusal.code, refusal.message)
        return data
