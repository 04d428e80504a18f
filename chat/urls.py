from django.urls import path

from chatproject import converters  # noqa: F401  (registers the <id:...> path converter)

from . import views
from .registry.views import BestChatServerView

# Every id in a path is an <id:...>: 1 to 2**63-1, or 404 (chatproject/converters.py).
CONVERSATION = "conversations/<id:conversation_id>"

urlpatterns = [
    path("conversations", views.ConversationListView.as_view(), name="conversations"),
    path(CONVERSATION, views.ConversationDetailView.as_view(), name="conversation-detail"),
    path(f"{CONVERSATION}/members", views.MemberListView.as_view(), name="conversation-members"),
    path(
        f"{CONVERSATION}/members/<id:user_id>",
        views.MemberDetailView.as_view(),
        name="conversation-member",
    ),
    path(f"{CONVERSATION}/messages", views.MessageListView.as_view(), name="conversation-messages"),
    path(f"{CONVERSATION}/read", views.ReadView.as_view(), name="conversation-read"),
    path("messages/<id:message_id>", views.MessageDetailView.as_view(), name="message-detail"),
    path("sync", views.SyncView.as_view(), name="sync"),
    path("chat-servers/best", BestChatServerView.as_view(), name="chat-server-best"),
]
