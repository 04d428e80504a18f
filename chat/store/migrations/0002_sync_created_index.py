"""The index sync retention deletes by (chat/services/retention.py).

On PostgreSQL it is built with CREATE INDEX CONCURRENTLY: the sync table is the largest
and busiest one, and a plain CREATE INDEX would block every send until it finished.
"""

from typing import Any

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class AddIndexConcurrentlyOnPostgres(AddIndexConcurrently):
    """``AddIndexConcurrently`` on PostgreSQL, a plain ``AddIndex`` elsewhere (SQLite)."""

    def database_forwards(
        self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any
    ) -> None:
        _operation(schema_editor).database_forwards(
            self, app_label, schema_editor, from_state, to_state
        )

    def database_backwards(
        self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any
    ) -> None:
        _operation(schema_editor).database_backwards(
            self, app_label, schema_editor, from_state, to_state
        )


def _operation(schema_editor: Any) -> type[migrations.AddIndex]:
    if schema_editor.connection.vendor == "postgresql":
        return AddIndexConcurrently
    return migrations.AddIndex


class Migration(migrations.Migration):
    atomic = False  # CONCURRENTLY cannot run inside a transaction

    dependencies = [
        ("message_store", "0001_initial"),
    ]

    operations = [
        AddIndexConcurrentlyOnPostgres(
            model_name="syncentryrecord",
            index=models.Index(fields=["created_at"], name="message_store_sync_created"),
        ),
    ]
