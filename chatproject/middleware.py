"""Django's own middleware, without a thread hop per hook under ASGI.

Django's ``MiddlewareMixin`` runs every ``process_request``/``process_view``/``process_response``
through ``sync_to_async(thread_sensitive=True)`` when the stack is async: about a dozen trips per
request to one shared thread, which every request of the process queues for. These hooks do no
I/O (headers, cookies, redirects, lazy objects) except a session save and message storage backed
by the session; those still go to a thread, only when they have something to write. Behaviour is
otherwise Django's: each class below is Django's class with ``__acall__`` (and ``process_view``)
running the same methods inline on the event loop. Under a sync handler (the test client) nothing
changes.

``LoginThrottleMiddleware`` is django-axes' middleware the same way: it only reads a flag the login
backend set, and its lockout response (``accounts.login_throttle.lockout_response``) does no I/O,
so it is built inline instead of on the shared thread.

``ContentSecurityPolicyMiddleware`` is django-csp's the same way: it only builds a header from
settings (``CONTENT_SECURITY_POLICY``), and adds the page's own WebSocket origin to ``connect-src``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from axes import middleware as axes
from axes.helpers import get_lockout_response
from csp import middleware as csp
from csp.middleware import PolicyParts
from django.conf import settings
from django.contrib.auth import middleware as auth
from django.contrib.messages import middleware as messages
from django.contrib.sessions import middleware as sessions
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.middleware import clickjacking, common, csrf, security


class InlineAsyncMixin:
    """Run a middleware's hooks inline when the stack is async (they do no I/O)."""

    get_response: Callable[[HttpRequest], Awaitable[HttpResponseBase]]

    def needs_thread(self, request: HttpRequest) -> bool:
        """True when ``process_response`` may do I/O for this request."""
        return False

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        response = None
        if hasattr(self, "process_request"):
            response = self.process_request(request)  # type: ignore[attr-defined]
        response = response or await self.get_response(request)
        if hasattr(self, "process_response"):
            if self.needs_thread(request):
                response = await sync_to_async(self.process_response, thread_sensitive=True)(  # type: ignore[attr-defined]
                    request, response
                )
            else:
                response = self.process_response(request, response)  # type: ignore[attr-defined]
        return response


class SecurityMiddleware(InlineAsyncMixin, security.SecurityMiddleware):
    pass


class CommonMiddleware(InlineAsyncMixin, common.CommonMiddleware):
    pass


class XFrameOptionsMiddleware(InlineAsyncMixin, clickjacking.XFrameOptionsMiddleware):
    pass


class AuthenticationMiddleware(InlineAsyncMixin, auth.AuthenticationMiddleware):
    pass  # request.user stays lazy; async code uses ``await request.auser()``


class SessionMiddleware(InlineAsyncMixin, sessions.SessionMiddleware):
    def needs_thread(self, request: HttpRequest) -> bool:
        session = getattr(request, "session", None)
        return session is not None and (session.modified or settings.SESSION_SAVE_EVERY_REQUEST)


class MessageMiddleware(InlineAsyncMixin, messages.MessageMiddleware):
    def needs_thread(self, request: HttpRequest) -> bool:
        storage = getattr(request, "_messages", None)
        return storage is not None and (storage.used or storage.added_new)


class CsrfViewMiddleware(InlineAsyncMixin, csrf.CsrfViewMiddleware):
    """Reads the token from the cookie and the already-read body; with CSRF_USE_SESSIONS, Django's hops."""

    def __init__(self, get_response: Any) -> None:
        super().__init__(get_response)
        self._inline = not settings.CSRF_USE_SESSIONS and iscoroutinefunction(get_response)
        if self._inline:
            # an async process_view: the handler awaits it instead of sending it to a thread
            sync_view = self.process_view

            async def process_view(request, callback, callback_args, callback_kwargs):
                return sync_view(request, callback, callback_args, callback_kwargs)

            self.process_view = markcoroutinefunction(process_view)  # type: ignore[method-assign]

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        if not self._inline:
            return await csrf.CsrfViewMiddleware.__acall__(self, request)
        return await super().__acall__(request)


class LoginThrottleMiddleware(axes.AxesMiddleware):
    """Axes' middleware: a login refused for too many failures becomes ``429 login_locked``."""

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        response = await self.get_response(request)
        if settings.AXES_ENABLED and getattr(request, "axes_locked_out", None):
            response = get_lockout_response(request, response, getattr(request, "axes_credentials", None))
        return response


class ContentSecurityPolicyMiddleware(InlineAsyncMixin, csp.CSPMiddleware):
    """django-csp's ``Content-Security-Policy`` on every response Django builds (docs/browser.md).

    ``connect-src 'self'`` covers ``ws://``/``wss://`` to the page's own host only in browsers that
    follow CSP Level 3; this names that origin outright (the host Django has already checked against
    ``ALLOWED_HOSTS``), so the chat page's WebSocket connects in the others too, and no other host's.
    """

    def get_policy_parts(
        self, request: HttpRequest, response: HttpResponseBase, report_only: bool = False
    ) -> PolicyParts:
        parts = super().get_policy_parts(request, response, report_only)
        try:
            host = request.get_host()
        except DisallowedHost:
            return parts
        update = dict(parts.update or {})
        update["connect-src"] = [*update.get("connect-src", ()), f"ws://{host}", f"wss://{host}"]
        parts.update = update
        return parts
