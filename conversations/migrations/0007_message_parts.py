"""A message's typed parts (issue 30: tool calls and results; conversations/turns/parts.py) and the
``tool`` role.

On SQLite the column is added in place (``ALTER TABLE … ADD COLUMN`` with its default): Django's
SQLite editor would rebuild the table for a column with a default, and the rebuild re-creates every
index of the model's state, PostgreSQL's search indexes (0006) included, which SQLite cannot
take. PostgreSQL adds it with its constant default, a change of the catalogue only (no rewrite).
"""

from django.db import migrations, models


class AddFieldInPlace(migrations.AddField):
    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor != "sqlite":
            return super().database_forwards(app_label, schema_editor, from_state, to_state)
        model = to_state.apps.get_model(app_label, self.model_name)
        table = schema_editor.quote_name(model._meta.db_table)
        column = schema_editor.quote_name(model._meta.get_field(self.name).column)
        schema_editor.execute(
            f"ALTER TABLE {table} ADD COLUMN {column} text NOT NULL DEFAULT '[]'"
            f" CHECK ((JSON_VALID({column}) OR {column} IS NULL))"
        )


class Migration(migrations.Migration):
    dependencies = [
        ("conversations", "0006_search_indexes"),
    ]

    operations = [
        AddFieldInPlace(
            model_name="message",
            name="parts",
            field=models.JSONField(
                blank=True,
                default=list,
                help_text="Typed parts (tool calls, tool results), in order; [] when the content is the only part.",
            ),
        ),
        migrations.AlterField(
            model_name="message",
            name="role",
            field=models.CharField(
                choices=[("system", "System"), ("user", "User"), ("assistant", "Assistant"), ("tool", "Tool")],
                max_length=16,
            ),
        ),
    ]
