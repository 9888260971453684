"""The API's JSON parser: orjson, and no NUL characters (PostgreSQL cannot store them)."""

from __future__ import annotations

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from conversations.edge.bodies import NUL_MESSAGE, has_nul


class StrictJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        data = super().parse(stream, media_type, parser_context)
        if has_nul(data):
            raise ParseError(NUL_MESSAGE)
        return data
