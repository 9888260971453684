"""The browser chat page and its login/logout: server-rendered shells around the JSON and WebSocket APIs.

The page itself holds no data: its JavaScript (``static/chat/``) reads the history API and streams
answers over ``ws/chat/{session_key}/`` (SSE as the fallback). It sets the CSRF cookie so the
scripts can send ``X-CSRFToken`` on unsafe calls.
"""

from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse, reverse_lazy
from django.views.decorators.csrf import ensure_csrf_cookie

from accounts.first_user import first_user_open


@ensure_csrf_cookie
@login_required(login_url=reverse_lazy("chat-login"))
def chat_page(request: HttpRequest) -> HttpResponse:
    config = {
        "username": request.user.get_username(),
        "apiRoot": "/api",
        "wsRoot": "/ws/chat/",
        "loginUrl": reverse("chat-login"),
    }
    return render(request, "chat/index.html", {"chat_config": config})


class ChatLoginView(auth_views.LoginView):
    template_name = "chat/login.html"
    redirect_authenticated_user = True
    next_page = reverse_lazy("chat-page")

    def get_context_data(self, **kwargs):
        return {**super().get_context_data(**kwargs), "first_user_open": first_user_open(self.request)}


class ChatLogoutView(auth_views.LogoutView):
    """POST only (Django ≥ 5): the page's logout button is a form."""

    next_page = reverse_lazy("chat-login")
