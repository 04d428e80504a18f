from django.apps import AppConfig


class ChatProjectConfig(AppConfig):
    name = "chatproject"
    verbose_name = "Chat project"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the system checks)
