"""Chat actions. Consumers, views, the admin and tasks call these; nothing else writes chat
state or publishes chat events.

Naming follows Zulip: ``access_*`` fetches and checks permission in one step, ``do_*``-like
verbs (``send_message``, ``add_members``) change state and notify after commit.
"""
