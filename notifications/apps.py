from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "Notifications"

    def ready(self) -> None:
        # Chat publishes post-commit hooks instead of calling this app (apps depend in one
        # direction: chat <- notifications).
        from . import subscribers

        subscribers.connect()
