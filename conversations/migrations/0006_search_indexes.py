"""Search indexes, built without locking writes (issue 21).

- ``pg_trgm`` (CREATE EXTENSION needs the CREATE privilege on the database, or a superuser before
  PostgreSQL 13's trusted extensions; a managed database may need an administrator to run
  ``CREATE EXTENSION pg_trgm`` once: this step skips it when it already exists);
- a GIN expression index over ``to_tsvector('english', COALESCE(content, ''))`` of the messages
  (conversations/search.py: the queries spell the same expression);
- a trigram GIN index over ``UPPER(title)`` (``title__icontains``) and a pattern btree over
  ``session_key`` (the admin's exact and prefix search).

``CREATE INDEX CONCURRENTLY`` takes no lock that blocks reads or writes, so the migration is not
atomic (PostgreSQL refuses it inside a transaction). An interrupted build leaves an INVALID index
behind; running ``migrate`` again drops it and builds it again. Nothing is done on SQLite.
"""

from django.contrib.postgres.indexes import GinIndex, OpClass
from django.contrib.postgres.operations import AddIndexConcurrently, TrigramExtension
from django.contrib.postgres.search import SearchVector
from django.db import migrations, models
from django.db.models.functions import Upper


class AddPostgresIndexConcurrently(AddIndexConcurrently):
    """CREATE INDEX CONCURRENTLY on PostgreSQL (after dropping an invalid leftover of an
    interrupted build); nothing elsewhere."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor != "postgresql":
            return
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(
                "SELECT NOT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                "WHERE c.relname = %s AND pg_table_is_visible(c.oid)",
                [self.index.name],
            )
            row = cursor.fetchone()
        if row and row[0]:
            schema_editor.execute(
                f"DROP INDEX CONCURRENTLY IF EXISTS {schema_editor.quote_name(self.index.name)}"
            )
        super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor != "postgresql":
            return
        super().database_backwards(app_label, schema_editor, from_state, to_state)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("conversations", "0005_session_counters"),
    ]

    operations = [
        TrigramExtension(),
        AddPostgresIndexConcurrently(
            model_name="message",
            index=GinIndex(SearchVector("content", config="english"), name="message_content_search"),
        ),
        AddPostgresIndexConcurrently(
            model_name="conversation",
            index=GinIndex(OpClass(Upper("title"), name="gin_trgm_ops"), name="conversation_title_trgm"),
        ),
        AddPostgresIndexConcurrently(
            model_name="conversation",
            index=models.Index(
                OpClass("session_key", name="varchar_pattern_ops"), name="conversation_session_key"
            ),
        ),
    ]
