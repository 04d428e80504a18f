from django.urls import path

from . import views

urlpatterns = [
    path("conversations", views.ConversationListView.as_view(), name="conversations"),
    path(
        "conversations/<int:conversation_id>",
        views.ConversationDetailView.as_view(),
        name="conversation-detail",
    ),
    path(
        "conversations/<int:conversation_id>/members",
        views.MemberListView.as_view(),
        name="conversation-members",
    ),
    path(
        "conversations/<int:conversation_id>/members/<int:user_id>",
        views.MemberDetailView.as_view(),
        name="conversation-member",
    ),
    path(
        "conversations/<int:conversation_id>/messages",
        views.MessageListView.as_view(),
        name="conversation-messages",
    ),
    path(
        "conversations/<int:conversation_id>/read",
        views.ReadView.as_view(),
        name="conversation-read",
    ),
    path("messages/<int:message_id>", views.MessageDetailView.as_view(), name="message-detail"),
    path("sync", views.SyncView.as_view(), name="sync"),
]
