from django.apps import AppConfig


class ChatprojectConfig(AppConfig):
    """The project itself: its deployment checks (see :mod:`chatproject.checks`)."""

    name = "chatproject"
    verbose_name = "Chat project"

    def ready(self) -> None:
        import chatproject.checks  # noqa: F401 - registers the middleware-aware deploy checks
