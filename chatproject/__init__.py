"""The chat server's Django project: settings, URL and ASGI routing, Celery app."""

from .celery import app as celery_app

__all__ = ["celery_app"]
