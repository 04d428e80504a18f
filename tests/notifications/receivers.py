"""The local push services live in bench/push_receivers.py (the fault-injection runner uses
them too); the push tests import them from here."""

from bench.push_receivers import PushServices, Received, Subscription

__all__ = ["PushServices", "Received", "Subscription"]
