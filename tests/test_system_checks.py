"""The system checks refuse production-only mistakes at start-up."""

from __future__ import annotations

from typing import Any

from chatproject.checks import check_production_mistakes


def _ids() -> set[str]:
    return {problem.id for problem in check_production_mistakes() if problem.id}


def test_a_sound_production_configuration_passes(settings: Any) -> None:
    settings.DEBUG = False
    settings.ALLOWED_HOSTS = ["chat.example.com"]
    settings.REDIS_URL = "redis://127.0.0.1:6379/9"
    settings.REDIS_CLUSTER = False
    settings.SERVER_PROCESSES = 4
    settings.EMBEDDED_DATABASE = False
    settings.SECRET_KEY = "x" * 60
    assert _ids() == set()


def test_debug_with_a_public_host_is_refused(settings: Any) -> None:
    settings.DEBUG = True
    settings.ALLOWED_HOSTS = ["chat.example.com"]
    assert "chatproject.E001" in _ids()


def test_several_processes_without_redis_are_refused(settings: Any) -> None:
    settings.SERVER_PROCESSES = 2
    settings.REDIS_URL = ""
    assert "chatproject.E002" in _ids()


def test_an_insecure_key_with_a_public_host_is_refused(settings: Any) -> None:
    settings.ALLOWED_HOSTS = ["chat.example.com"]
    settings.SECRET_KEY = "django-insecure-abc"
    assert "chatproject.E003" in _ids()


def test_a_sound_cluster_configuration_passes(settings: Any) -> None:
    settings.REDIS_CLUSTER = True
    settings.REDIS_URL = "redis://node-1:6379/0"
    settings.CELERY_BROKER_URL = "redis://broker:6379/1"
    assert not {"chatproject.E004", "chatproject.E005", "chatproject.E006"} & _ids()


def test_cluster_mistakes_are_refused(settings: Any) -> None:
    settings.REDIS_CLUSTER = True
    settings.REDIS_URL = ""
    assert "chatproject.E004" in _ids()
    settings.REDIS_URL = "redis://node-1:6379/3"
    assert "chatproject.E005" in _ids()
    settings.REDIS_URL = "redis://node-1:6379"
    settings.CELERY_BROKER_URL = "redis://node-1:6379/1"  # Celery cannot use the cluster
    assert _ids() >= {"chatproject.E006"}
