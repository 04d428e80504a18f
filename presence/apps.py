from django.apps import AppConfig


class PresenceConfig(AppConfig):
    name = "presence"
    verbose_name = "Presence"

    def ready(self) -> None:
        # Chat sits below presence and cannot import it: every chat connection gets a
        # presence session, and the protocol presence's frames, through chat's extension
        # point.
        from chat.connection.extensions import register_extension

        from .frames import CLIENT_FRAMES, SERVER_FRAMES
        from .session import PresenceSession

        register_extension(
            "presence",
            PresenceSession,
            client_frames=CLIENT_FRAMES,
            server_frames=SERVER_FRAMES,
        )
