"""Account actions: sign-up, log-in (issuing a device token), log-out, password change,
device revocation, deactivation, profile, contacts and user search.

Views, the admin and the WebSocket layer call these; none of them write accounts state
themselves. Revoking a device also closes its live connections: chat subscribes to the
post-commit hook this publishes (accounts.hooks).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth import authenticate
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from chatproject.errors import Conflict, NotFound, ServiceError
from chatproject.text import name_problem

from . import hooks, usernames
from .models import USERNAME_CONFLICT_MESSAGES, Contact, Device, Platform, User, UsernameConflict
from .tokens import hash_token, new_token


@dataclass(frozen=True)
class IssuedToken:
    device: Device
    token: str


class InvalidCredentials(ServiceError):
    code = "invalid_credentials"
    status = 401


def _password_errors(password: str, user: User | None = None) -> list[str]:
    try:
        validate_password(password, user=user)
    except DjangoValidationError as exc:
        return list(exc.messages)
    return []


def _username_conflict(conflict: UsernameConflict) -> Conflict:
    message = USERNAME_CONFLICT_MESSAGES[conflict]
    code = "username_taken" if conflict == "taken" else "username_confusable"
    return Conflict(message, code=code, fields={"username": [message]})


def _name_error(field: str, problem: str) -> ServiceError:
    return ServiceError(problem, code="invalid_name", fields={field: [problem]})


def sign_up(*, username: str, password: str, display_name: str = "") -> User:
    problem = usernames.username_problem(username)
    if problem:
        raise ServiceError(problem, code="invalid_username", fields={"username": [problem]})
    username = usernames.stored_form(username)
    conflict = User.objects.username_conflict(username)
    if conflict:
        raise _username_conflict(conflict)
    display_name = display_name.strip()
    if problem := name_problem(display_name):
        raise _name_error("display_name", problem)
    candidate = User(username=username, display_name=display_name)
    errors = _password_errors(password, candidate)
    if errors:
        raise ServiceError(
            "The password is too weak.", code="weak_password", fields={"password": errors}
        )
    candidate.set_password(password)
    try:
        with transaction.atomic():
            candidate.save()
    except IntegrityError as exc:  # lost a race with a concurrent sign-up of a like name
        raise _username_conflict(User.objects.username_conflict(username) or "taken") from exc
    return candidate


def check_credentials(*, username: str, password: str) -> User:
    # Any case or width of the username finds the account (UserManager.get_by_natural_key).
    user = authenticate(username=username, password=password)
    if not isinstance(user, User):
        raise InvalidCredentials("Wrong username or password.")
    return user


def issue_device_token(user: User, *, device_name: str, platform: str) -> IssuedToken:
    if platform not in Platform.values:
        platform = Platform.OTHER
    raw = new_token()
    device = Device.objects.create(
        user=user,
        name=(device_name.strip() or platform)[:100],
        platform=platform,
        token_hash=hash_token(raw),
        token_prefix=raw[:10],
    )
    return IssuedToken(device=device, token=raw)


def revoke_device(device: Device) -> None:
    """Revoke one device's token at once: requests with it get 401 and its sockets close."""
    if device.revoked_at is None:
        device.revoked_at = timezone.now()
        Device.objects.filter(pk=device.pk, revoked_at__isnull=True).update(
            revoked_at=device.revoked_at
        )
    hooks.publish_devices_revoked_on_commit(user_id=device.user_id, device_ids=[device.pk])


def revoke_user_device(user: User, device_id: int) -> None:
    device = Device.objects.filter(user=user, pk=device_id, revoked_at__isnull=True).first()
    if device is None:
        raise NotFound("No such device.")
    revoke_device(device)


def revoke_all_devices(user: User, *, except_device_id: int | None = None) -> list[int]:
    active = Device.objects.filter(user=user, revoked_at__isnull=True)
    if except_device_id is not None:
        active = active.exclude(pk=except_device_id)
    ids = list(active.values_list("pk", flat=True))
    if ids:
        Device.objects.filter(pk__in=ids).update(revoked_at=timezone.now())
        hooks.publish_devices_revoked_on_commit(user_id=user.pk, device_ids=ids)
    return ids


def change_password(
    user: User, *, old_password: str, new_password: str, current_device_id: int | None
) -> None:
    if not user.check_password(old_password):
        raise InvalidCredentials(
            "The current password is wrong.", fields={"old_password": ["Wrong password."]}
        )
    errors = _password_errors(new_password, user)
    if errors:
        raise ServiceError(
            "The password is too weak.", code="weak_password", fields={"new_password": errors}
        )
    user.set_password(new_password)
    # Saving a new hash logs out every device (User.save), except the one this is done from.
    user.device_kept_on_password_change = current_device_id
    user.save(update_fields=["password", "updated_at"])


def deactivate_user(user: User) -> None:
    with transaction.atomic():
        User.objects.filter(pk=user.pk).update(is_active=False)
        user.is_active = False
        revoke_all_devices(user)


def delete_user(user: User) -> None:
    """Delete an account outright; its devices' live connections close once it commits."""
    with transaction.atomic():
        revoke_all_devices(user)
        user.delete()


def delete_device(device: Device) -> None:
    with transaction.atomic():
        revoke_device(device)
        device.delete()


def update_profile(user: User, *, display_name: str | None = None) -> User:
    if display_name is not None:
        display_name = display_name.strip()
        if problem := name_problem(display_name):
            raise _name_error("display_name", problem)
        user.display_name = display_name[:100]
        user.save(update_fields=["display_name", "updated_at"])
    return user


def search_users(query: str) -> QuerySet[User]:
    query = query.strip()
    users = User.objects.filter(is_active=True)
    if query:
        users = users.filter(Q(username__icontains=query) | Q(display_name__icontains=query))
    return users.order_by("username")


def get_active_user(user_id: int) -> User:
    user = User.objects.filter(pk=user_id, is_active=True).first()
    if user is None:
        raise NotFound("No such user.", code="unknown_user")
    return user


def add_contact(owner: User, contact_id: int) -> Contact:
    if contact_id == owner.pk:
        raise ServiceError("You cannot add yourself as a contact.", code="invalid_contact")
    contact = get_active_user(contact_id)
    link, _created = Contact.objects.get_or_create(owner=owner, contact=contact)
    return link


def remove_contact(owner: User, contact_id: int) -> None:
    deleted, _ = Contact.objects.filter(owner=owner, contact_id=contact_id).delete()
    if not deleted:
        raise NotFound("That user is not in your contacts.")


def list_contacts(owner: User) -> QuerySet[Contact]:
    return (
        Contact.objects.filter(owner=owner, contact__is_active=True)
        .select_related("contact")
        .order_by("contact__username")
    )
