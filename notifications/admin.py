"""Push registrations and delivery claims in the admin: to answer "why did my phone not
ring" (is the device registered, was the message claimed and accepted by the service)."""

from __future__ import annotations

from django.contrib import admin

from .models import NotificationSettings, PushDelivery, PushRegistration


@admin.register(PushRegistration)
class PushRegistrationAdmin(admin.ModelAdmin[PushRegistration]):
    list_display = ("id", "user", "device", "kind", "created_at", "updated_at")
    list_filter = ("kind",)
    search_fields = ("user__username", "=device__id")
    raw_id_fields = ("user", "device")
    readonly_fields = ("address_hash", "created_at", "updated_at")


@admin.register(PushDelivery)
class PushDeliveryAdmin(admin.ModelAdmin[PushDelivery]):
    list_display = ("id", "registration", "message_id", "created_at", "sent_at")
    search_fields = ("=message_id", "=registration__id")
    raw_id_fields = ("registration",)
    readonly_fields = ("registration", "message_id", "claim", "created_at", "sent_at")


@admin.register(NotificationSettings)
class NotificationSettingsAdmin(admin.ModelAdmin[NotificationSettings]):
    list_display = ("user", "do_not_disturb", "show_preview", "updated_at")
    raw_id_fields = ("user",)
