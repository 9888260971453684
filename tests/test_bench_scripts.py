"""The bench scripts run end to end in their ``--quick`` form and write their JSON results.

No timing is asserted: only that each script starts what it needs, exits 0 and writes a JSON file
with its expected keys. The scripts need PostgreSQL (they create and migrate ``chat_bench``) and
Redis at 127.0.0.1; the tests are skipped without them. Set SKIP_BENCH_TESTS=1 to skip them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.live_server import listening

ROOT = Path(__file__).resolve().parent.parent


pytestmark = [
    pytest.mark.skipif(
        not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://", "pgsql://")),
        reason="the bench scripts need PostgreSQL: DATABASE_URL is not a postgres:// URL",
    ),
    pytest.mark.skipif(
        not listening(5432), reason="no PostgreSQL on 127.0.0.1:5432 (the bench scripts use it)"
    ),
    pytest.mark.skipif(not listening(6379), reason="no Redis on 127.0.0.1:6379 (the bench scripts use it)"),
    pytest.mark.skipif(bool(os.environ.get("SKIP_BENCH_TESTS")), reason="SKIP_BENCH_TESTS is set"),
]

CASES = {
    "ttft.py": {"script", "machine", "server", "cells", "levels", "litellm"},
    "throughput.py": {"script", "machine", "runs", "endpoint", "chunks"},
    "open_streams.py": {"script", "machine", "server", "phases", "streams", "chunks"},
    "db_roundtrips.py": {"script", "machine", "server", "results", "constant_in_reply_length"},
    "upstream_client.py": {"script", "machine", "args", "results"},
    "history_scale.py": {"script", "machine", "server", "build", "counts", "rows", "plans"},
    "middleware_cost.py": {"script", "machine", "chain_us_per_request", "lockout_answer_us"},
    "waterfall.py": {"script", "machine", "server", "levels", "cells"},
}


def run_quick(script: str, out: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    return subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), "--quick", "--out", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=80,
    )


@pytest.mark.parametrize("script", sorted(CASES))
def test_bench_script_quick_run_writes_its_json(script, tmp_path):
    out = tmp_path / "result.json"
    proc = run_quick(script, out)
    assert proc.returncode == 0, f"{script} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    data = json.loads(out.read_text())
    assert CASES[script] <= data.keys()
    assert data["quick"] is True
    if script == "ttft.py":
        assert {"direct", "native-sse", "openai-compat"} <= {cell["target"] for cell in data["cells"]}
        assert all({"ttft", "total", "turns", "errors"} <= cell.keys() for cell in data["cells"])
    if script == "waterfall.py":  # every turn's stages, arrival to the first delta written
        for cell in data["cells"]:
            assert cell["errors"] == 0 and cell["waterfall"]["records"] == cell["turns"] > 0
            assert [r["mark"] for r in cell["waterfall"]["stages"]][-2:] == ["written", "total"]
        assert "TTFT waterfall, 1 concurrent" in proc.stdout
    if script == "history_scale.py":
        assert {"list", "list_deep", "search_hit", "search_miss", "filters", "messages", "export"} <= {
            row["name"] for row in data["rows"]
        }
        assert {"delete_big", "admin_conversation", "admin_message", "admin_artifact"} <= {
            row["name"] for row in data["rows"]
        }
        assert data["counts"]["conversations_message"] <= 10_000
        assert "History at scale" in proc.stdout
