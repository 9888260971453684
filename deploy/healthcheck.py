"""The container's health probe: GET /health on the app inside it (port $PORT, 8000), exit 0 on 200.

Django refuses a Host it does not serve, so the probe names one of ALLOWED_HOSTS (a ``.example.com``
pattern becomes ``health.example.com``). /health is exempt from the HTTPS redirect.
"""

import os
import sys
import urllib.request

allowed = [h.strip() for h in os.environ.get("ALLOWED_HOSTS", "").split(",") if h.strip()]
host = allowed[0] if allowed else "localhost"
host = "localhost" if host == "*" else ("health" + host if host.startswith(".") else host)
port = os.environ.get("PORT", "8000")
request = urllib.request.Request(f"http://127.0.0.1:{port}/health", headers={"Host": host})
try:
    with urllib.request.urlopen(request, timeout=5) as response:
        sys.exit(0 if response.status == 200 else 1)
except Exception as exc:  # any failure is "unhealthy"; say why in `docker inspect`
    print(f"unhealthy: {exc}", file=sys.stderr)
    sys.exit(1)
