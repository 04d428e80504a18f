from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "Notifications"

    def ready(self) -> None:
        # Chat publishes post-commit hooks instead of calling this app (apps depend in one
        # direction: chat <- notifications).
        # The tasks register by import; the runner reaches them by name (never importing them).
        from . import subscribers, tasks  # noqa: F401

        subscribers.connect()
