from django.apps import AppConfig


class MessageStoreConfig(AppConfig):
    """The Django-database backend of the message store, as its own app so that a database
    router can later place its tables (messages, sync queues) on other databases."""

    name = "chat.store"
    label = "message_store"
    verbose_name = "Message store"
    default_auto_field = "django.db.models.BigAutoField"
