"""Bench-only settings: the project's settings plus Django's psycopg connection pool.

Tries the "psycopg pool" lever without touching the application: ``--settings bench.settings_pool``
(``conversations.db.run_db`` already calls ``connection.close()`` after each hop, which hands a pooled
connection back instead of logging out). Pool size from ``BENCH_POOL_MIN``/``BENCH_POOL_MAX``.
"""

import os

from chatproject.settings import *  # noqa: F403

if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":  # noqa: F405
    DATABASES["default"]["CONN_MAX_AGE"] = 0  # noqa: F405 - Django's pool requires it
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {  # noqa: F405
        "min_size": int(os.environ.get("BENCH_POOL_MIN", "4")),
        "max_size": int(os.environ.get("BENCH_POOL_MAX", "16")),
        "timeout": 10,
    }
    # With a pool, health checks cost an empty query (a round trip) at every checkout.
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = os.environ.get("BENCH_HEALTH_CHECKS", "true") == "true"  # noqa: F405
