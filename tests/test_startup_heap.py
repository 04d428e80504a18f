"""A serving process's start-up heap is out of the garbage collector's full passes
(chatproject/startup_heap.py): what a pass scans is what was made after start-up."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Imports the ASGI application as every ASGI server does, then reports what a full pass
# would scan and whether the views (imported lazily by the URL configuration) are loaded.
_PROBE = """
import gc, sys
import chatproject.asgi
print(gc.get_freeze_count(), len(gc.get_objects()), "chat.views" in sys.modules)
"""


def test_loading_the_asgi_application_freezes_django_and_the_views() -> None:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "chatproject.settings"}
    out = subprocess.run(
        [sys.executable, "-c", _PROBE],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout.split()
    frozen, scanned, views_loaded = int(out[0]), int(out[1]), out[2] == "True"
    assert views_loaded
    # Django, DRF, Channels and the app: over a hundred thousand objects frozen; a full
    # pass right after start-up scans almost nothing.
    assert frozen > 50_000
    assert scanned < frozen / 20
