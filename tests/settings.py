"""Settings for the test suite: the project's settings, read from the same environment.

Only what a test run needs differs: a throwaway SECRET_KEY when none is set, no
HTTPS redirect (the test client speaks plain HTTP), and a fast password hasher.
DATABASE_URL / REDIS_URL come from the environment as usual (CI sets both).
"""

import os
import tempfile

os.environ["ENV_FILE"] = ""  # a developer's .env never reaches a test run (nor its server processes)
os.environ.setdefault("SECRET_KEY", "test-suite-only-insecure-key")
os.environ.setdefault("SECURE_SSL_REDIRECT", "false")
os.environ.setdefault("SECURE_COOKIES", "false")
os.environ.setdefault("ALLOW_ANONYMOUS", "true")
os.environ.setdefault("RATE_LIMIT_TURNS", "")  # the rate-limit tests turn it on
os.environ.setdefault("API_DOCS", "public")  # tests read /api/schema/ anonymously; test_api_docs.py the rest
# The seed mounts open, as a deployment for their clients opens them (closed is the default).
# Attachments the suite stores (the filesystem storage) go to a directory of its own, shared with
# the live servers tests start (they inherit this environment).
os.environ.setdefault("MEDIA_ROOT", os.path.join(tempfile.gettempdir(), "chatproject-test-media"))
for _mount in ("GEMINI_GATEWAY", "CODING_AGENT", "ZAI", "CHAT_API"):
    os.environ.setdefault(f"COMPAT_{_mount}_ACCESS", "anonymous")

from chatproject.settings import *  # noqa: F403, E402

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# The suite (DEBUG off) plays with the demo provider; the test of production's refusal turns it off.
DEMO_PROVIDER_ALLOWED = os.environ.get("DEMO_PROVIDER_ALLOWED", "true") == "true"

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    # A file, not :memory:, so live server processes started by tests share it.
    # TEST_SQLITE_NAME lets two runs in one checkout keep apart.
    DATABASES["default"]["TEST"] = {  # noqa: F405
        "NAME": os.environ.get("TEST_SQLITE_NAME") or str(BASE_DIR / "test-db.sqlite3")  # noqa: F405
    }
