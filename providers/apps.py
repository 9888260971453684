from django.apps import AppConfig


class ProvidersConfig(AppConfig):
    """LLM provider adapters; registers the provider settings check."""

    name = "providers"
    verbose_name = "LLM providers"

    def ready(self) -> None:
        from django.core import checks

        from .checks import check_llm_provider

        checks.register(check_llm_provider)
