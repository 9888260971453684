"""What the login throttle (django-axes) adds to a request in the async middleware chain.

In process, no server: the project's MIDDLEWARE wrapped around a trivial async view, driven by
Django's AsyncRequestFactory on one event loop, with and without ``LoginThrottleMiddleware``
(and with axes' stock class for reference). A second table times the lockout answer itself:
ours is built inline, axes' own goes to the shared ``sync_to_async`` thread. Prints microseconds
per request and writes ``bench/results/middleware_cost.json``.

    .venv/bin/python bench/middleware_cost.py [--quick] [--requests N]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatproject.settings")
os.environ.setdefault("SECRET_KEY", "bench-only-insecure-key")
os.environ.setdefault("SECURE_SSL_REDIRECT", "false")
os.environ.setdefault("LOG_LEVEL", "WARNING")
os.environ.pop("DATABASE_URL", None)  # nothing here touches the database
os.environ.pop("REDIS_URL", None)

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.core.handlers.base import BaseHandler  # noqa: E402
from django.http import HttpResponse  # noqa: E402
from django.test import AsyncRequestFactory, override_settings  # noqa: E402

from bench._common import machine_info, print_table, write_json  # noqa: E402

THROTTLE = "chatproject.middleware.LoginThrottleMiddleware"
STOCK = "axes.middleware.AxesMiddleware"


async def view(request):
    if getattr(request, "lock_me", False):
        request.axes_locked_out = True
    return HttpResponse(b"ok")


class ViewOnly(BaseHandler):
    """Django's own middleware loading (async mode, its adapters) around ``view`` (no URL routing)."""

    async def _get_response_async(self, request):
        return await view(request)


def chain(paths: list[str]):
    with override_settings(MIDDLEWARE=paths):
        handler = ViewOnly()
        handler.load_middleware(is_async=True)
    return handler._middleware_chain


async def per_request_us(handler, requests: int, *, locked: bool = False) -> float:
    factory = AsyncRequestFactory()
    built = []
    for _ in range(requests):
        request = factory.get("/x", HTTP_ACCEPT="application/json", HTTP_HOST="localhost")
        request.lock_me = locked
        built.append(request)
    for _ in range(min(200, requests)):  # warm up
        await handler(factory.get("/x", HTTP_HOST="localhost"))
    started = time.perf_counter()
    for request in built:
        await handler(request)
    return (time.perf_counter() - started) / requests * 1e6


async def run(requests: int) -> dict:
    without = [m for m in settings.MIDDLEWARE if m != THROTTLE]
    variants = {
        "without the throttle": without,
        "LoginThrottleMiddleware (ours)": [*without, THROTTLE],
        "axes.middleware.AxesMiddleware (stock)": [*without, STOCK],
    }
    chains = {name: chain(paths) for name, paths in variants.items()}
    rows: dict[str, float] = {}
    for _ in range(5):  # interleaved, best of 5: the machine is shared
        for name, handler in chains.items():
            rows[name] = min(rows.get(name, float("inf")), await per_request_us(handler, requests))
    lockout = {}
    for name in ("LoginThrottleMiddleware (ours)", "axes.middleware.AxesMiddleware (stock)"):
        handler = chain([variants[name][-1]])
        lockout[name] = min([await per_request_us(handler, requests // 4, locked=True) for _ in range(3)])
    return {"chain_us_per_request": rows, "lockout_answer_us": lockout}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few thousand requests")
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    requests = 2_000 if args.quick else args.requests
    results = asyncio.run(run(requests))
    base = results["chain_us_per_request"]["without the throttle"]
    print_table(
        f"Middleware chain, µs per request ({requests} requests, best of 5)",
        ["chain", "µs/request", "added"],
        [(n, f"{v:.1f}", f"{v - base:+.1f}") for n, v in results["chain_us_per_request"].items()],
    )
    print_table(
        "The lockout answer alone (the middleware on its own), µs",
        ["middleware", "µs/answer"],
        [(n, f"{v:.1f}") for n, v in results["lockout_answer_us"].items()],
    )
    write_json(
        "middleware_cost",
        {"script": "middleware_cost.py", "machine": machine_info(), "quick": args.quick, **results},
        args.out,
    )


if __name__ == "__main__":
    main()
