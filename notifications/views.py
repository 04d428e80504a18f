"""Push REST endpoints: registrations of this device, notification settings, VAPID key."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import request_device, request_user
from chatproject.api.input import accepts
from chatproject.errors import ServiceError

from . import registrations as push_registrations
from . import vapid
from .models import NotificationSettings, PushKind, PushRegistration
from .serializers import (
    NotificationSettingsSerializer,
    RegisterSerializer,
    RegistrationSerializer,
    VapidKeySerializer,
)


def _registration(registration: PushRegistration, current_device_id: int | None) -> Any:
    return RegistrationSerializer(
        {
            "id": registration.pk,
            "device_id": registration.device_id,
            "kind": registration.kind,
            "address": registration.address,
            "current": registration.device_id == current_device_id,
            "created_at": registration.created_at,
            "updated_at": registration.updated_at,
        }
    ).data


def _settings(preferences: NotificationSettings) -> Any:
    return NotificationSettingsSerializer(
        {"do_not_disturb": preferences.do_not_disturb, "show_preview": preferences.show_preview}
    ).data


class VapidKeyView(APIView):
    permission_classes = [AllowAny]
    authentication_classes = []

    @extend_schema(responses={200: VapidKeySerializer})
    def get(self, request: Request) -> Response:
        """The Web Push VAPID public key."""
        return Response({"public_key": vapid.public_key()})


class RegistrationListView(APIView):
    @extend_schema(responses={200: RegistrationSerializer(many=True)})
    def get(self, request: Request) -> Response:
        """Your devices' push registrations."""
        device = request_device(request)
        current = device.pk if device else None
        registrations = push_registrations.registrations_of(request_user(request))
        return Response([_registration(r, current) for r in registrations])

    @accepts(
        RegisterSerializer, responses={200: RegistrationSerializer, 201: RegistrationSerializer}
    )
    def post(self, request: Request, values: dict[str, Any]) -> Response:
        """Register (or replace) this device's FCM token or Web Push subscription."""
        device = request_device(request)
        if device is None:
            raise ServiceError("Push registrations belong to a logged-in device.", code="no_device")
        existed = PushRegistration.objects.filter(device=device).exists()
        if values["kind"] == PushKind.FCM:
            registration = push_registrations.register(
                device, kind=PushKind.FCM, address=values["token"]
            )
        else:
            subscription = values["subscription"]
            registration = push_registrations.register(
                device,
                kind=PushKind.WEBPUSH,
                address=subscription["endpoint"],
                p256dh=subscription["keys"]["p256dh"],
                auth=subscription["keys"]["auth"],
            )
        return Response(
            _registration(registration, device.pk),
            status=status.HTTP_200_OK if existed else status.HTTP_201_CREATED,
        )


class RegistrationDetailView(APIView):
    @extend_schema(request=None, responses={204: None})
    def delete(self, request: Request, registration_id: int) -> Response:
        """Remove a push registration."""
        push_registrations.unregister(request_user(request), registration_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class SettingsView(APIView):
    @extend_schema(responses={200: NotificationSettingsSerializer})
    def get(self, request: Request) -> Response:
        """Push settings."""
        return Response(_settings(push_registrations.settings_of(request_user(request))))

    @accepts(NotificationSettingsSerializer, responses={200: NotificationSettingsSerializer})
    def patch(self, request: Request, values: dict[str, Any]) -> Response:
        """Change do-not-disturb and text previews."""
        preferences = push_registrations.update_settings(
            request_user(request),
            do_not_disturb=values.get("do_not_disturb"),
            show_preview=values.get("show_preview"),
        )
        return Response(_settings(preferences))
