from django.urls import path

from chatproject import converters  # noqa: F401  (registers the <id:...> path converter)

from . import views

urlpatterns = [
    path("auth/signup", views.SignUpView.as_view(), name="signup"),
    path("auth/login", views.LoginView.as_view(), name="login"),
    path("auth/logout", views.LogoutView.as_view(), name="logout"),
    path("auth/password", views.PasswordChangeView.as_view(), name="password-change"),
    path("me", views.MeView.as_view(), name="me"),
    path("devices", views.DeviceListView.as_view(), name="devices"),
    path("devices/<id:device_id>", views.DeviceRevokeView.as_view(), name="device-revoke"),
    path("users", views.UserSearchView.as_view(), name="users"),
    path("users/<id:user_id>", views.UserDetailView.as_view(), name="user-detail"),
    path("contacts", views.ContactListView.as_view(), name="contacts"),
    path("contacts/<id:user_id>", views.ContactDetailView.as_view(), name="contact-detail"),
]
