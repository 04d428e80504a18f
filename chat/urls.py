from django.urls import path

from chatproject import converters  # noqa: F401  (registers the <id:...> path converter)

from . import views

urlpatterns = [
    path("conversations", views.ConversationListView.as_view(), name="conversations"),
    path(
        "conversations/<id:conversation_id>",
        views.ConversationDetailView.as_view(),
        name="conversation-detail",
    ),
    path(
        "conversations/<id:conversation_id>/members",
        views.MemberListView.as_view(),
        name="conversation-members",
    ),
    path(
        "conversations/<id:conversation_id>/members/<id:user_id>",
        views.MemberDetailView.as_view(),
        name="conversation-member",
    ),
    path(
        "conversations/<id:conversation_id>/messages",
        views.MessageListView.as_view(),
        name="conversation-messages",
    ),
    path(
        "conversations/<id:conversation_id>/read",
        views.ReadView.as_view(),
        name="conversation-read",
    ),
    path("messages/<id:message_id>", views.MessageDetailView.as_view(), name="message-detail"),
    path("sync", views.SyncView.as_view(), name="sync"),
]
