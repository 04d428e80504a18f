"""Keeping the garbage collector's full passes short in a serving process.

CPython's cyclic garbage collector scans every tracked object of the oldest generation on
a full pass. After start-up that generation holds Django, DRF, Celery, the push SDKs and
our modules: full passes of 100-180 ms stopped the event loop, and so every socket of the
process, often enough to be the p99 of 1:1 delivery at a few hundred messages a second.
Those objects live as long as the process: ``gc.freeze()`` moves them to a generation the
collector never scans (what Instagram described for their Django servers), so a full pass
looks only at what was made since.
Done after the URL configuration (and the views it imports) is loaded, so that lazily
imported modules are frozen too.
"""

from __future__ import annotations

import gc

from django.urls import get_resolver


def freeze_startup_heap() -> int:
    """Load the URL configuration, collect what start-up left as garbage, and freeze
    everything alive; the number of objects now outside the collector's scans."""
    get_resolver().url_patterns  # noqa: B018 (imports every view module)
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
