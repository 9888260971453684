"""Full-text search of sessions on PostgreSQL, one expression for the index and the query.

PostgreSQL uses an expression index only for a query that spells the very same expression, so the
index (``conversations.Message.Meta.indexes``, built by migration 0006) and every query
(``selectors.session_list_for_owner``, the admin) take theirs from here:
``to_tsvector(<config>, COALESCE(content, ''))`` matched with ``websearch_to_tsquery(<config>, q)``.

The index is built for one text search configuration, ``INDEX_CONFIG``. ``TEXT_SEARCH_CONFIG``
chooses the configuration queries use; set to another one, queries still answer, but through a
scan of every message: the check below warns, and moving to another configuration means a new
migration that builds the index for it (concurrently) and a new ``INDEX_CONFIG``.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Warning, register

# English: stems ("baking" finds "bake") and skips stop words, which is what PostgreSQL's default
# configuration gave `q` before the index (`default_text_search_config` is `pg_catalog.english`
# under an English locale, as in the official image). 'simple' suits mixed-language history.
INDEX_CONFIG = "english"
MESSAGE_CONTENT_INDEX = "message_content_search"
CONVERSATION_TITLE_INDEX = "conversation_title_trgm"
SESSION_KEY_INDEX = "conversation_session_key"


def search_config() -> str:
    return getattr(settings, "TEXT_SEARCH_CONFIG", INDEX_CONFIG) or INDEX_CONFIG


def content_vector(config: str | None = None):
    """``to_tsvector(config, COALESCE(content, ''))``: the indexed expression when ``config`` is
    the index's."""
    from django.contrib.postgres.search import SearchVector

    return SearchVector("content", config=config or search_config())


def websearch_query(q: str, config: str | None = None):
    """``websearch_to_tsquery(config, q)``: quoted phrases, ``or``, ``-word``; never a syntax error."""
    from django.contrib.postgres.search import SearchQuery

    return SearchQuery(q, config=config or search_config(), search_type="websearch")


@register()
def check_search_config_matches_index(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    on_postgresql = settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
    if not on_postgresql or search_config() == INDEX_CONFIG:
        return []
    return [
        Warning(
            f"TEXT_SEARCH_CONFIG is {search_config()!r} but the message search index is built for "
            f"{INDEX_CONFIG!r}: every `q` search reads every message.",
            hint=f"Unset TEXT_SEARCH_CONFIG (or set it to {INDEX_CONFIG!r}), or add a migration that "
            "rebuilds the index for the new configuration (see docs/configuration.md).",
            id="conversations.W001",
        )
    ]
