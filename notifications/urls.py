from django.urls import path

from chatproject import converters  # noqa: F401  (registers the <id:...> path converter)

from . import views

urlpatterns = [
    path("push/vapid-key", views.VapidKeyView.as_view(), name="push-vapid-key"),
    path("push/registrations", views.RegistrationListView.as_view(), name="push-registrations"),
    path(
        "push/registrations/<id:registration_id>",
        views.RegistrationDetailView.as_view(),
        name="push-registration",
    ),
    path("push/settings", views.SettingsView.as_view(), name="push-settings"),
]
