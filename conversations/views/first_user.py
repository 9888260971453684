"""``/accounts/first-user/``: the login page's way in on a fresh local install (accounts/first_user.py).

Answers 404 whenever the rule says no (production, another machine, a user exists), so the page
does not exist for anyone who may not use it.
"""

from __future__ import annotations

from django.contrib.auth import login
from django.contrib.auth.forms import UserCreationForm
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from accounts.first_user import FirstUserTaken, first_user_create, first_user_open


def first_user(request: HttpRequest) -> HttpResponse:
    if not first_user_open(request):
        raise Http404("No first account to create here.")
    form = UserCreationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = first_user_create(
                username=form.cleaned_data["username"], password=form.cleaned_data["password1"]
            )
        except FirstUserTaken:
            raise Http404("An account exists now: log in.") from None
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect("chat-page")
    return render(request, "chat/first_user.html", {"form": form})
