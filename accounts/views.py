"""Accounts REST endpoints. Each view parses input, calls accounts.services, shapes output."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import login, logout, update_session_auth_hash
from django.db import transaction
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from chatproject.api.input import accepts, validated
from chatproject.api.schema import errors

from . import hooks, services
from .authentication import SESSION_DEVICE_KEY, request_device, request_user
from .models import Device, User
from .origins import NotCrossSite
from .serializers import (
    AddContactSerializer,
    ContactSerializer,
    DeviceSerializer,
    LoginSerializer,
    MeSerializer,
    PasswordChangeSerializer,
    SignUpSerializer,
    TokenResponseSerializer,
    UserSearchQuerySerializer,
    UserSerializer,
)
from .throttles import LoginThrottle, SignUpThrottle


def _token_response(
    request: Request, issued: services.IssuedToken, *, session: bool, status_code: int
) -> Response:
    if session:
        login(
            request._request,
            issued.device.user,
            backend="django.contrib.auth.backends.ModelBackend",
        )
        request._request.session[SESSION_DEVICE_KEY] = issued.device.pk
    body = {
        "token": issued.token,
        "device": DeviceSerializer(
            issued.device, context={"current_device_id": issued.device.pk}
        ).data,
        "user": MeSerializer(issued.device.user).data,
        "ws_url": hooks.suggested_socket_url(request._request),
    }
    return Response(body, status=status_code)


class SignUpView(APIView):
    permission_classes = [AllowAny, NotCrossSite]
    authentication_classes: list[type] = []
    throttle_classes = [SignUpThrottle]

    @accepts(SignUpSerializer, responses={201: TokenResponseSerializer, **errors(403, 409)})
    def post(self, request: Request, values: dict[str, Any]) -> Response:
        """Create an account and log in."""
        with transaction.atomic():
            user = services.sign_up(
                username=values["username"],
                password=values["password"],
                display_name=values["display_name"],
            )
            issued = services.issue_device_token(
                user, device_name=values["device_name"], platform=values["platform"]
            )
        return _token_response(
            request, issued, session=values["session"], status_code=status.HTTP_201_CREATED
        )


class LoginView(APIView):
    permission_classes = [AllowAny, NotCrossSite]
    authentication_classes: list[type] = []
    throttle_classes = [LoginThrottle]

    def get_throttles(self) -> list[Any]:
        # Kept so that post() can hand back the attempt's slot when it was no failed guess.
        self.login_throttles: list[Any] = super().get_throttles()
        return self.login_throttles

    @extend_schema(
        request=LoginSerializer, responses={200: TokenResponseSerializer, **errors(401, 403)}
    )
    def post(self, request: Request) -> Response:
        """Log in and get a device token."""
        wrong_password = False
        try:
            values = validated(LoginSerializer, request.data)
            user = services.check_credentials(
                username=values["username"], password=values["password"]
            )
        except services.InvalidCredentials:
            wrong_password = True
            raise
        finally:
            if not wrong_password:
                for throttle in self.login_throttles:
                    throttle.forgive()
        issued = services.issue_device_token(
            user, device_name=values["device_name"], platform=values["platform"]
        )
        return _token_response(
            request, issued, session=values["session"], status_code=status.HTTP_200_OK
        )


class LogoutView(APIView):
    @extend_schema(request=None, responses={204: None})
    def post(self, request: Request) -> Response:
        """Log out this device (revokes its token)."""
        device = request_device(request)
        if device is not None:
            services.revoke_device(device)
        logout(request._request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class PasswordChangeView(APIView):
    @accepts(PasswordChangeSerializer, responses={204: None})
    def post(self, request: Request, values: dict[str, Any]) -> Response:
        """Change password (logs out other devices)."""
        device = request_device(request)
        user = request_user(request)
        services.change_password(
            user,
            old_password=values["old_password"],
            new_password=values["new_password"],
            current_device_id=device.pk if device else None,
        )
        if device is not None and request._request.session.get(SESSION_DEVICE_KEY) == device.pk:
            # Keep this browser logged in under the new password hash.
            update_session_auth_hash(request._request, user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeView(generics.RetrieveUpdateAPIView[User]):
    serializer_class = MeSerializer
    http_method_names = ["get", "patch", "head", "options"]

    def get_object(self) -> User:
        return request_user(self.request)

    def perform_update(self, serializer: MeSerializer) -> None:  # type: ignore[override]
        services.update_profile(
            request_user(self.request), display_name=serializer.validated_data.get("display_name")
        )


class DeviceListView(generics.ListAPIView[Device]):
    serializer_class = DeviceSerializer
    pagination_class = None

    def get_queryset(self) -> Any:
        return Device.objects.filter(
            user=request_user(self.request), revoked_at__isnull=True
        ).order_by("-last_used_at")

    def get_serializer_context(self) -> dict[str, Any]:
        device = request_device(self.request)
        return {
            **super().get_serializer_context(),
            "current_device_id": device.pk if device else None,
        }


class DeviceRevokeView(APIView):
    @extend_schema(request=None, responses={204: None})
    def delete(self, request: Request, device_id: int) -> Response:
        """Revoke a device: its token stops working at once."""
        services.revoke_user_device(request_user(request), device_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class UserSearchView(generics.ListAPIView[User]):
    serializer_class = UserSerializer

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "search",
                str,
                description="Part of a username or display name (the first 100 characters).",
            )
        ]
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self) -> Any:
        query = validated(UserSearchQuerySerializer, self.request.query_params)
        return services.search_users(query["search"][:100])


class UserDetailView(APIView):
    @extend_schema(responses={200: UserSerializer})
    def get(self, request: Request, user_id: int) -> Response:
        """A user's public profile."""
        return Response(UserSerializer(services.get_active_user(user_id)).data)


class ContactListView(APIView):
    @extend_schema(responses={200: ContactSerializer(many=True)})
    def get(self, request: Request) -> Response:
        """List contacts."""
        contacts = services.list_contacts(request_user(request))
        return Response(ContactSerializer(contacts, many=True).data)

    @accepts(AddContactSerializer, responses={201: ContactSerializer, **errors(404)})
    def post(self, request: Request, values: dict[str, Any]) -> Response:
        """Add a contact."""
        link = services.add_contact(request_user(request), values["user_id"])
        return Response(ContactSerializer(link).data, status=status.HTTP_201_CREATED)


class ContactDetailView(APIView):
    @extend_schema(request=None, responses={204: None})
    def delete(self, request: Request, user_id: int) -> Response:
        """Remove a contact."""
        services.remove_contact(request_user(request), user_id)
        return Response(status=status.HTTP_204_NO_CONTENT)
