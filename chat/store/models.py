"""Tables of the Django-database message store backend (``chat.store.django_store``).

Nothing here has a foreign key: messages and sync queues must be movable to other
databases (split by conversation or by user) without the relational chat tables.
Only ``DjangoMessageStore`` reads or writes these models; everything else goes through
the ``MessageStore`` interface.
"""

from __future__ import annotations

from django.db import models

from chatproject.limits import MAX_CLIENT_MSG_ID_LENGTH


class StoredMessageRecord(models.Model):
    # Assigned by the caller (chat.ids): a 64-bit time-sortable snowflake id.
    id = models.BigIntegerField(primary_key=True)
    conversation_id = models.BigIntegerField()
    sender_id = models.BigIntegerField()
    client_msg_id = models.CharField(max_length=MAX_CLIENT_MSG_ID_LENGTH)
    text = models.TextField()
    created_at = models.DateTimeField()
    edited_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    # The sender's sequence number of this message's ``message.new`` entry (null when the
    # sender was not a recipient). Kept on the row so a retried send is acknowledged with a
    # single lookup by the (sender_id, client_msg_id) index instead of a scan of the sender's
    # sync queue.
    sender_seq = models.BigIntegerField(null=True, blank=True)

    class Meta:
        db_table = "message_store_message"
        constraints = [
            models.UniqueConstraint(
                fields=["sender_id", "client_msg_id"], name="message_store_msg_client_id_unique"
            ),
        ]
        # History paging is a range scan of one conversation by id, in either direction.
        indexes = [models.Index(fields=["conversation_id", "id"], name="message_store_msg_conv_id")]

    def __str__(self) -> str:
        return f"message {self.id} in {self.conversation_id}"


class SyncEntryRecord(models.Model):
    """One entry of a user's sync queue; (user_id, seq) is its real key."""

    id = models.BigAutoField(primary_key=True)
    user_id = models.BigIntegerField()
    seq = models.BigIntegerField()
    kind = models.CharField(max_length=32)
    conversation_id = models.BigIntegerField()
    message_id = models.BigIntegerField(null=True, blank=True)
    payload = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        db_table = "message_store_sync"
        # The unique index also serves read_sync's "seq > n ORDER BY seq" range scans.
        constraints = [
            models.UniqueConstraint(fields=["user_id", "seq"], name="message_store_sync_user_seq")
        ]
        # Retention (prune_sync) deletes the oldest entries first.
        indexes = [models.Index(fields=["created_at"], name="message_store_sync_created")]

    def __str__(self) -> str:
        return f"{self.kind} #{self.seq} for user {self.user_id}"


class SyncCounter(models.Model):
    """A user's highest assigned sequence number. Its row lock serialises seq assignment."""

    user_id = models.BigIntegerField(primary_key=True)
    last_seq = models.BigIntegerField()

    class Meta:
        db_table = "message_store_counter"

    def __str__(self) -> str:
        return f"user {self.user_id} at seq {self.last_seq}"
