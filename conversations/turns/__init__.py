"""The turn core: one chat turn from the user's message to exactly one stored terminal state.

- ``service``: :func:`~conversations.turns.service.turn_start` (validate, choose the provider, rate
  limit, the opening write); ``request``: the decoded :class:`TurnRequest`.
- ``live``: the running answer (``LiveTurn``) and a repeated message's stored one (``ReplayedTurn``);
  ``transcript``, ``retry`` (candidates: retries and fallbacks), ``relay`` (the provider in a task).
- ``rules``: each write's rules, defined once; ``store`` picks the path: ``pg_writes`` (native
  PostgreSQL, ``pg_pool``) or ``orm_writes`` (the reference).
- ``jobs``: a turn as a job that outlives its connection; ``running`` (jobs, accepting, drain);
  ``replay_buffer`` (a running turn's events, Redis or memory); ``resume`` and ``stored_replay``
  (a stored answer as events); ``recovery`` (answers left ``streaming`` by a dead process).
"""
