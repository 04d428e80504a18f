"""Moderation of users and devices. Deactivating a user revokes every token they hold."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest

from . import services
from .models import Contact, Device, User


@admin.register(User)
class UserAdmin(BaseUserAdmin[User]):
    list_display = ("username", "display_name", "is_active", "is_staff", "created_at", "last_login")
    search_fields = ("username", "display_name", "email")
    list_filter = ("is_active", "is_staff")
    fieldsets = (*(BaseUserAdmin.fieldsets or ()), ("Profile", {"fields": ("display_name",)}))
    actions = ["deactivate_users"]

    @admin.action(description="Deactivate selected users (revokes all their devices)")
    def deactivate_users(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        for user in queryset:
            services.deactivate_user(user)
        self.message_user(request, f"Deactivated {queryset.count()} user(s).", messages.SUCCESS)

    def save_model(self, request: HttpRequest, obj: User, form: Any, change: bool) -> None:
        was_active = change and User.objects.filter(pk=obj.pk, is_active=True).exists()
        super().save_model(request, obj, form, change)
        if was_active and not obj.is_active:
            services.revoke_all_devices(obj)

    def delete_model(self, request: HttpRequest, obj: User) -> None:
        services.delete_user(obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        for user in queryset:
            services.delete_user(user)


@admin.register(Device)
class DeviceAdmin(admin.ModelAdmin[Device]):
    list_display = (
        "user",
        "name",
        "platform",
        "token_prefix",
        "created_at",
        "last_used_at",
        "revoked_at",
    )
    search_fields = ("user__username", "name", "token_prefix")
    list_filter = ("platform",)
    readonly_fields = (
        "user",
        "token_hash",
        "token_prefix",
        "created_at",
        "last_used_at",
        "revoked_at",
    )
    actions = ["revoke_devices"]

    @admin.action(description="Revoke selected devices")
    def revoke_devices(self, request: HttpRequest, queryset: QuerySet[Device]) -> None:
        for device in queryset.filter(revoked_at__isnull=True):
            services.revoke_device(device)
        self.message_user(request, "Revoked.", messages.SUCCESS)

    def delete_model(self, request: HttpRequest, obj: Device) -> None:
        services.delete_device(obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Device]) -> None:
        for device in queryset:
            services.delete_device(device)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(Contact)
class ContactAdmin(admin.ModelAdmin[Contact]):
    list_display = ("owner", "contact", "created_at")
    search_fields = ("owner__username", "contact__username")
    raw_id_fields = ("owner", "contact")
