"""The edge's upper floor: the turn pipeline and the route-table kit. It stands on the codecs and
the HTTP kit (:mod:`conversations.edge`) and imports no view or dialect: the route tables
(``conversations/urls.py``, ``conversations/dialects/urls.py``) hand it each route's codec, caller
rule and lookups."""
