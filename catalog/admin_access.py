"""Who may do what in the Django admin: the console's rule, at every entry point.

Contracts §2: admins do everything; owners manage the automations they own
(`catalog.selectors.can_manage`, the console's own test); compliance reads
everything and changes nothing but audit verdicts; nobody else gets in. Every
admin of Handrail's models and of Django's users and groups answers from these
roles alone: Django's per-model permissions cannot say "their own automations",
so a granted one would open a door around the rule.

The mixins cover each entry point: the changelist, add, change, delete,
history list, the revert form of django-simple-history (GET and POST),
actions (their permissions ask the same methods, over `get_queryset`) and
inlines (asked with the parent object).
"""

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.shortcuts import get_object_or_404
from simple_history.manager import SIMPLE_HISTORY_REVERSE_ATTR_NAME

from .models import Automation, Role
from .selectors import can_manage, user_roles

READERS = frozenset({Role.ADMIN, Role.COMPLIANCE})


def admin_reads(user) -> bool:
    """Admins and compliance read every row the admin shows."""
    return bool(user_roles(user) & READERS)


def admin_is_admin(user) -> bool:
    """Holds the admin role (superusers hold every role)."""
    return Role.ADMIN in user_roles(user)


def automation_of(obj) -> Automation | None:
    """The automation a configuration row belongs to (an automation is its own)."""
    if obj is None:
        return None
    return obj if isinstance(obj, Automation) else obj.automation


def stored_row(obj):
    """The row as it is stored now; None when it no longer exists.

    The revert form hands the permission methods an old version of the row:
    rights come from the row as it is now, never from what it used to be.
    """
    if getattr(obj, SIMPLE_HISTORY_REVERSE_ATTR_NAME, None) is None:
        return obj
    return type(obj)._default_manager.filter(pk=obj.pk).first()


def config_may_view(user, obj=None) -> bool:
    """Readers see every row; owners the rows of automations they own."""
    if admin_reads(user):
        return True
    if Role.OWNER not in user_roles(user):
        return False
    if obj is None:
        return True
    row = stored_row(obj)
    return row is not None and can_manage(user, automation_of(row))


def config_may_change(user, obj=None) -> bool:
    """can_manage on the stored row; a deleted row is brought back by admins only."""
    if obj is None:
        return bool(user_roles(user) & {Role.ADMIN, Role.OWNER})
    row = stored_row(obj)
    if row is None:
        return admin_is_admin(user)
    return can_manage(user, automation_of(row))


class HistoryRevertGuard:
    """The revert form saves only for users who may change the row as stored, in one transaction.

    simple-history checks view permission only, on the old version; a GET
    still shows the version to readers, without the Revert button.
    """

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        if request.method != "POST":
            return super().history_form_view(request, object_id, version_id, extra_context)
        history_model = self.model._meta.simple_history_manager_attribute
        versions = getattr(self.model, history_model).model
        pk_name = self.model._meta.pk.attname
        version = get_object_or_404(versions, **{pk_name: object_id, "history_id": version_id})
        if not self.has_change_permission(request, version.instance):
            raise PermissionDenied
        with transaction.atomic(using=self.model._default_manager.db):
            return super().history_form_view(request, object_id, version_id, extra_context)


class ConfigAccessMixin(HistoryRevertGuard):
    """Configuration of one automation: readers see it, its managers change it."""

    # Lookup from this model to the automation's owner (owners' lists show only theirs).
    owner_lookup = "automation__owner"

    def has_module_permission(self, request):
        return config_may_view(request.user)

    def has_view_permission(self, request, obj=None):
        return config_may_view(request.user, obj)

    def has_add_permission(self, request, obj=None):
        # Inlines are asked with the parent automation (None on its add page).
        return config_may_change(request.user, obj)

    def has_change_permission(self, request, obj=None):
        return config_may_change(request.user, obj)

    def has_delete_permission(self, request, obj=None):
        return config_may_change(request.user, obj)

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        if admin_reads(request.user):
            return qs
        if Role.OWNER in user_roles(request.user):
            return qs.filter(**{self.owner_lookup: request.user})
        return qs.none()

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        # An owner may only attach things to, or hand automations to, themselves.
        if not admin_is_admin(request.user):
            if db_field.name == "automation":
                kwargs["queryset"] = Automation.objects.filter(owner=request.user)
            elif db_field.name == "owner":
                kwargs["queryset"] = get_user_model().objects.filter(pk=request.user.pk)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request, obj, form, change):
        # The form's choices already keep owners to their own; this holds whatever the form.
        if not can_manage(request.user, automation_of(obj)):
            raise PermissionDenied
        super().save_model(request, obj, form, change)


class AdminChangesMixin(HistoryRevertGuard):
    """Readers see it; only admins add, change or delete (tokens, users, groups)."""

    def has_module_permission(self, request):
        return admin_reads(request.user)

    def has_view_permission(self, request, obj=None):
        return admin_reads(request.user)

    def has_add_permission(self, request, *args):
        return admin_is_admin(request.user)

    def has_change_permission(self, request, obj=None):
        return admin_is_admin(request.user)

    def has_delete_permission(self, request, obj=None):
        return admin_is_admin(request.user)


class ReadOnlyMixin(HistoryRevertGuard):
    """Readers see it; nobody, superusers included, adds, changes or deletes (evidence)."""

    def has_module_permission(self, request):
        return admin_reads(request.user)

    def has_view_permission(self, request, obj=None):
        return admin_reads(request.user)

    def has_add_permission(self, request, *args):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class LoginRecordsMixin:
    """Records of log-ins (django-axes): readers see them; admins delete them, lifting a lock-out.

    Nobody adds or edits one. Axes' own clean-up action asks for no permission
    at all (any viewer could run it): `manage.py axes_reset` does that job.
    """

    actions = []

    def has_module_permission(self, request):
        return admin_reads(request.user)

    def has_view_permission(self, request, obj=None):
        return admin_reads(request.user)

    def has_add_permission(self, request, *args):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return admin_is_admin(request.user)
