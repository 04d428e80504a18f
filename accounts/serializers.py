"""Request and response shapes of the accounts API."""

from __future__ import annotations

from rest_framework import serializers

from chatproject.text import validate_name

from . import usernames
from .models import Contact, Device, Platform, User


class UserSerializer(serializers.ModelSerializer[User]):
    class Meta:
        model = User
        fields = ["id", "username", "display_name"]
        read_only_fields = fields


class MeSerializer(serializers.ModelSerializer[User]):
    class Meta:
        model = User
        fields = ["id", "username", "display_name", "created_at"]
        read_only_fields = ["id", "username", "created_at"]


class DeviceSerializer(serializers.ModelSerializer[Device]):
    current = serializers.SerializerMethodField()

    class Meta:
        model = Device
        fields = ["id", "name", "platform", "token_prefix", "created_at", "last_used_at", "current"]
        read_only_fields = fields

    def get_current(self, device: Device) -> bool:
        return device.pk == self.context.get("current_device_id")


class _NewDeviceSerializer(serializers.Serializer[None]):
    """What signing up and logging in share: the password and the device they create."""

    password = serializers.CharField(max_length=128, write_only=True, trim_whitespace=False)
    device_name = serializers.CharField(
        max_length=100, required=False, allow_blank=True, default=""
    )
    platform = serializers.ChoiceField(
        choices=Platform.choices, required=False, default=Platform.OTHER
    )
    session = serializers.BooleanField(
        required=False, default=False, help_text="Also start a browser session (cookie)."
    )


class SignUpSerializer(_NewDeviceSerializer):
    username = serializers.CharField(
        max_length=usernames.MAX_LENGTH,
        validators=[usernames.validate_username],
        help_text="Letters, digits and @/./+/-/_ in one script. Case and width do not matter: "
        "'Alice' and 'alice' are one account, and names that look like an existing one are "
        "refused (409 username_confusable).",
    )
    display_name = serializers.CharField(
        max_length=100, required=False, allow_blank=True, default="", validators=[validate_name]
    )


class LoginSerializer(_NewDeviceSerializer):
    username = serializers.CharField(max_length=150)


class TokenResponseSerializer(serializers.Serializer[None]):
    token = serializers.CharField(help_text="Shown once. Send as 'Authorization: Bearer <token>'.")
    device = DeviceSerializer()
    user = MeSerializer()
    ws_url = serializers.CharField(
        allow_null=True,
        help_text="Open the WebSocket here (the least loaded chat server, as "
        "GET /api/v1/chat-servers/best says); if it cannot be reached, use /ws/ on this host.",
    )


class PasswordChangeSerializer(serializers.Serializer[None]):
    old_password = serializers.CharField(max_length=128, trim_whitespace=False)
    new_password = serializers.CharField(max_length=128, trim_whitespace=False)


class ContactSerializer(serializers.ModelSerializer[Contact]):
    user = UserSerializer(source="contact", read_only=True)

    class Meta:
        model = Contact
        fields = ["user", "created_at"]


class AddContactSerializer(serializers.Serializer[None]):
    user_id = serializers.IntegerField(min_value=1)


class UserSearchQuerySerializer(serializers.Serializer[None]):
    # CharField refuses NUL and lone surrogates (one 400 on both databases: PostgreSQL
    # cannot store NUL and SQLite matched everything with it).
    search = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        trim_whitespace=True,
        help_text="Part of a username or display name; only the first 100 characters count.",
    )
