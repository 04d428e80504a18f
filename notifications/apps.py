from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "Notifications"

    def ready(self) -> None:
        # Chat publishes post-commit hooks instead of calling this app (apps depend in one
        # direction: chat <- notifications).
        # The tasks register by import; the runner reaches them by name (never importing them).
        from chatproject import lifecycle

        from . import runner, subscribers, tasks  # noqa: F401

        subscribers.connect()
        # Embedded, periodic tasks (CELERY_BEAT_SCHEDULE: sync retention, push claims) run
        # on this process's timers from the moment it serves.
        lifecycle.on_serving(runner.start_embedded_schedule_if_eager)
