"""DRF authentication by API key (``X-API-Key`` or ``Authorization: Bearer``)."""

from __future__ import annotations

from django.conf import settings
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from accounts.callers import AuthenticationError, caller_from_key, client_ip
from accounts.keys import raw_key_from_headers
from accounts.models import ApiKey


class ApiKeyAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request: Request):
        raw = raw_key_from_headers(request.headers, lenient_bearer=bool(settings.ALLOW_ANONYMOUS))
        if raw is None:
            return None
        try:
            caller = caller_from_key(raw, client_ip(request))
        except AuthenticationError as exc:
            raise exceptions.AuthenticationFailed(exc.message, code=exc.code) from None
        if caller.owner_id is None:  # the shared API_KEY: anonymous namespace
            return (None, caller)
        key = ApiKey.objects.select_related("owner").get(pk=caller.api_key_id)
        return (key.owner, caller)

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'
