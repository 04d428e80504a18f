"""Limits of the protocol, defined once and imported by every layer that checks them
(the ``<id:...>`` path converter, the WebSocket frames in chat/protocol.py, the REST
serializers and query parameters, the send service, the message store's columns).

Plain constants with no Django import, so settings.py and any app can use them.
"""

from __future__ import annotations

# Ids (users, conversations, messages, seqs) are 64-bit signed integers in every database:
# a larger number names nothing, and SQLite cannot even bind it.
MAX_ID = 2**63 - 1

# A client's idempotency key for a send: 1 to 64 characters.
MAX_CLIENT_MSG_ID_LENGTH = 64

# A page of sync events (the ``sync`` frame and GET /api/v1/sync).
SYNC_PAGE_DEFAULT = 200
SYNC_PAGE_MAX = 500

# A page of history (GET /api/v1/conversations/{id}/messages), newest first.
HISTORY_PAGE_DEFAULT = 50
HISTORY_PAGE_MAX = 100

# A page of the conversation list (GET /api/v1/conversations), by limit and offset.
CONVERSATION_PAGE_DEFAULT = 50
CONVERSATION_PAGE_MAX = 200
