"""Real JavaScript client libraries (tests/js, pinned by its lockfile) run by Node against a live server.

:func:`run_js` runs one driver script of tests/js with a JSON argument and returns the JSON line it
prints. The packages are installed with ``npm ci`` on first use when missing or older than the
lockfile. Without Node the tests that need it are skipped, unless ``JS_CLIENTS_REQUIRED`` is set
(CI sets it: there a missing Node is a failure).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

JS_DIR = Path(__file__).resolve().parent / "js"


def _unavailable(reason: str) -> None:
    if os.environ.get("JS_CLIENTS_REQUIRED"):
        pytest.fail(f"{reason} (JS_CLIENTS_REQUIRED is set)")
    pytest.skip(reason)


def ensure_js_clients() -> str:
    """The path of ``node`` once tests/js's packages are installed."""
    node = shutil.which("node")
    if node is None:
        _unavailable("Node.js is not installed: the JavaScript client tests need it")
    installed = JS_DIR / "node_modules" / ".package-lock.json"
    lock = JS_DIR / "package-lock.json"
    if not installed.exists() or installed.stat().st_mtime < lock.stat().st_mtime:
        npm = shutil.which("npm")
        if npm is None:
            _unavailable("npm is not installed: it installs tests/js's packages")
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=JS_DIR,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if done.returncode != 0:
            _unavailable(f"npm ci failed in tests/js: {done.stderr.strip()[-500:]}")
    return node  # type: ignore[return-value]


def run_js(script: str, args: dict[str, Any], *, timeout: float = 60) -> dict[str, Any]:
    node = ensure_js_clients()
    done = subprocess.run(
        [node, script, json.dumps(args)], cwd=JS_DIR, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, f"node {script} failed:\n{done.stderr}"
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert lines, f"node {script} printed no result:\nstdout: {done.stdout}\nstderr: {done.stderr}"
    return json.loads(lines[-1])
