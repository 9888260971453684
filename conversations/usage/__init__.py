"""Usage and cost read from the conversations' answers: one user's report (``GET /api/usage``), the
staff-wide overview (the admin usage page, ``/admin/usage/``) and each API key's cost in the admin.

These read the history (:mod:`conversations.models`) and billing's budgets, so they stand above
both: billing, below the conversation core, never reads the conversations.
"""
