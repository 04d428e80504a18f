"""Per-user presence settings and the lazily persisted last activity.

The live state (who is connected right now) is not here: it is in the presence backend
(presence.backends). This row is written only on an offline transition (``last_active_at``)
and when the user changes a setting, never per heartbeat.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Presence(models.Model):
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    # Others see neither status nor last activity of a user who hides their presence.
    hidden = models.BooleanField(default=False)
    # When the user was last seen (their last device went offline); null: never seen.
    last_active_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"presence of {self.user_id}"
