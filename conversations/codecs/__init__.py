"""One codec per protocol: decode a request into a ``TurnRequest``, encode a turn's events,
render a rejection the way the protocol's clients expect (see :mod:`conversations.codecs.base`)."""
