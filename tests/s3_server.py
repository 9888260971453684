"""An S3-compatible server for the tests: moto's standalone server in a child process on loopback.

The tests store attachments in it over real HTTP, through django-storages and boto3 exactly as a
deployment with ``ATTACHMENT_STORAGE=s3`` does: nothing in this process is mocked or patched.

- :class:`S3Server` starts ``python -m moto.server`` on 127.0.0.1 (a free port, retried if taken),
  waits until it answers, and stops it (SIGTERM, then SIGKILL).
- :func:`attachment_storage_config` is what ``chatproject/settings.py`` makes of the ``AWS_*``
  variables for this server (read from the settings in a child process, so the tests use the
  deployment's own options: location, ACL, signed URLs, no overwrite...).
- The fixtures ``s3_server`` (session) and ``s3_attachment_storage`` (one fresh bucket per test,
  ``settings.STORAGES["attachments"]`` pointed at it): a test module that uses them imports
  ``s3_server_fixture`` and ``s3_attachment_storage_fixture``.

moto answers an unsigned GET of a private object with 403, but it does not verify signatures,
credentials or the expiry of a signed URL: the tests check those URLs' parameters instead.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from functools import cache
from typing import Any

import httpx
import pytest

from tests.live_server import ROOT

REGION = "us-east-1"
# Fake credentials: moto accepts any; set explicitly so nothing from the machine's AWS setup is used.
ACCESS_KEY = "AKIATESTATTACHMENTS0"
SECRET_KEY = "test-secret-for-the-attachment-tests"
SETTINGS_BUCKET = "chat-attachments"

# Variables boto3 and django-storages would read from the environment: never from the machine's.
LEAKY_VARIABLES = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_S3_SESSION_PROFILE",
    "AWS_S3_ACCESS_KEY_ID",
    "AWS_S3_SECRET_ACCESS_KEY",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_CA_BUNDLE",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
)


def _clean_environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k not in LEAKY_VARIABLES}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class S3Server:
    """moto's S3-compatible server, a child process listening on 127.0.0.1."""

    def __init__(self) -> None:
        self.port = 0
        self.url = ""
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, attempts: int = 3, timeout: float = 30.0) -> S3Server:
        last_error = ""
        for _ in range(attempts):
            self.port = _free_port()
            self.url = f"http://127.0.0.1:{self.port}"
            self.process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                cwd=ROOT,
                env=_clean_environment(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            deadline = time.monotonic() + timeout
            with httpx.Client(trust_env=False, timeout=1.0) as client:
                while self.process.poll() is None and time.monotonic() < deadline:
                    try:
                        if client.get(self.url + "/moto-api/data.json").status_code == 200:
                            return self
                    except httpx.HTTPError:
                        time.sleep(0.05)
            # It exited (the port was taken between choosing and binding) or never answered.
            last_error = self._stop_process()
        raise RuntimeError(f"moto's S3 server did not start on 127.0.0.1: {last_error[-2000:]}")

    def _stop_process(self) -> str:
        process, self.process = self.process, None
        if process is None:
            return ""
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        # stderr is read only now: werkzeug's request log (a line per request) goes there.
        return process.stderr.read().decode(errors="replace") if process.stderr else ""

    def stop(self) -> None:
        self._stop_process()

    def client(self) -> Any:
        """A boto3 S3 client of this server (to look at the bucket behind the storage's back)."""
        import boto3

        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )

    def create_bucket(self, name: str | None = None) -> str:
        name = name or f"att-{uuid.uuid4().hex[:16]}"
        self.client().create_bucket(Bucket=name)
        return name

    def delete_bucket(self, name: str) -> None:
        client = self.client()
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=name):
            keys = [{"Key": entry["Key"]} for entry in page.get("Contents", ())]
            if keys:
                client.delete_objects(Bucket=name, Delete={"Objects": keys})
        client.delete_bucket(Bucket=name)


def settings_environment(endpoint_url: str, **extra: str) -> dict[str, str]:
    """The environment of a deployment whose attachments are kept in the S3 store ``endpoint_url``."""
    env = _clean_environment()
    for name in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE"):
        env.pop(name, None)
    env.update(
        {
            "ENV_FILE": "",
            "SECRET_KEY": "x" * 50,
            "ATTACHMENT_STORAGE": "s3",
            "AWS_STORAGE_BUCKET_NAME": SETTINGS_BUCKET,
            "AWS_S3_ENDPOINT_URL": endpoint_url,
            "AWS_S3_REGION_NAME": REGION,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            **extra,
        }
    )
    return env


PRINT_ATTACHMENT_STORAGE = (
    "import json, chatproject.settings as s; print(json.dumps(s.STORAGES['attachments']))"
)


def read_settings(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``chatproject.settings`` imported in a child process with ``env``; it prints
    ``STORAGES["attachments"]`` as JSON."""
    return subprocess.run(
        [sys.executable, "-c", PRINT_ATTACHMENT_STORAGE],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@cache
def attachment_storage_config(endpoint_url: str) -> dict[str, Any]:
    """``STORAGES["attachments"]`` as the project's settings make it for the S3 store ``endpoint_url``."""
    result = read_settings(settings_environment(endpoint_url))
    if result.returncode != 0:
        raise RuntimeError(f"chatproject.settings with ATTACHMENT_STORAGE=s3 failed:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session", name="s3_server")
def s3_server_fixture() -> Iterator[S3Server]:
    server = S3Server().start()
    yield server
    server.stop()


@pytest.fixture(name="s3_attachment_storage")
def s3_attachment_storage_fixture(s3_server: S3Server, settings, monkeypatch) -> Iterator[Any]:
    """``storages["attachments"]``: the deployment's S3 storage, in a fresh bucket of the test server.

    ``settings.STORAGES`` is overridden (Django's ``setting_changed`` signal empties the storage
    handler's cache), so code that calls ``storages["attachments"]`` gets this storage; the bucket
    and everything in it are deleted afterwards."""
    from django.core.files.storage import storages

    for name in LEAKY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    config = attachment_storage_config(s3_server.url)
    bucket = s3_server.create_bucket()
    settings.STORAGES = {
        **settings.STORAGES,
        "attachments": {**config, "OPTIONS": {**config["OPTIONS"], "bucket_name": bucket}},
    }
    storage = storages["attachments"]
    yield storage
    s3_server.delete_bucket(bucket)
