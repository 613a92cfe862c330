"""Admin for the configuration people govern; every change keeps its history (who, when, why).

Who may do what is catalog.admin_access: the console's rule (contracts §2) at
every entry point. Secrets never appear: only the names of the environment
variables that hold them, and only the hash of an API token.
"""

import importlib

from django import forms
from django.apps import apps
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group
from django.db import models
from django.utils import timezone
from simple_history.admin import SimpleHistoryAdmin

from .admin_access import (
    AdminChangesMixin,
    ConfigAccessMixin,
    LoginRecordsMixin,
    ReadOnlyMixin,
    admin_is_admin,
)
from .admin_forms import AutomationForm, AutomationInlineFormSet, ChildForm
from .models import (
    ApiToken,
    AuditSample,
    AuditSampleItem,
    Automation,
    DoNotAutomateRule,
    Intent,
    SegmentPolicy,
)

admin.site.site_header = "Handrail administration"
admin.site.site_title = "Handrail admin"
admin.site.index_title = "Configuration and trail"

DEFAULT_CHANGE_REASON = "edited in admin"


class ChangeReasonForm(forms.ModelForm):
    """A model form with an optional reason that the history records with the change."""

    change_reason = forms.CharField(
        required=False,
        max_length=100,
        help_text="Why this change? Kept in the configuration history.",
    )


class ChangeReasonMixin:
    """Record the form's change reason (or a default) on the object and its inlines."""

    form = ChangeReasonForm

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if self.has_change_permission(request, obj):
            return fieldsets
        # Read-only viewers have nothing to explain.
        return [
            (name, {**opts, "fields": [f for f in opts["fields"] if f != "change_reason"]})
            for name, opts in fieldsets
        ]

    def _change_reason(self, form) -> str:
        return (form.cleaned_data.get("change_reason") or "").strip() or DEFAULT_CHANGE_REASON

    def save_model(self, request, obj, form, change):
        obj._change_reason = self._change_reason(form)
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        reason = self._change_reason(form)
        for formset in formsets:
            for inline_form in formset.forms:
                inline_form.instance._change_reason = reason
        super().save_related(request, form, formsets, change)

    def delete_model(self, request, obj):
        obj._change_reason = "deleted in admin"
        super().delete_model(request, obj)


class ConfigInlineMixin(ConfigAccessMixin):
    formset = AutomationInlineFormSet
    extra = 0
    show_change_link = True


class IntentInline(ConfigInlineMixin, admin.StackedInline):
    model = Intent
    fields = [
        ("name", "position", "risk"),
        "description",
        "arguments_schema",
        ("action_adapter", "action_config"),
    ]


# Modes and kill switches change only through the owner console or set_mode/set_switch
# (catalog/governance/changes.py): promotion evidence, a reason, the policy lock, the trail.
GOVERNED_FIELDS = ["mode", "enabled"]


class SegmentPolicyInline(ConfigInlineMixin, admin.TabularInline):
    model = SegmentPolicy
    fields = ["key", "position", "enabled", "mode"]
    readonly_fields = GOVERNED_FIELDS


class DoNotAutomateRuleInline(ConfigInlineMixin, admin.TabularInline):
    model = DoNotAutomateRule
    fields = ["name", "position", "field", "operator", "value", "effect"]


@admin.register(Automation)
class AutomationAdmin(ChangeReasonMixin, ConfigAccessMixin, SimpleHistoryAdmin):
    form = AutomationForm
    owner_lookup = "owner"
    list_display = ["slug", "name", "owner", "mode", "risk_tier", "data_classification", "provider"]
    list_filter = ["mode", "risk_tier", "data_classification", "provider"]
    list_select_related = ["owner"]
    search_fields = ["slug", "name", "purpose", "owner__username"]
    filter_horizontal = ["reviewers"]
    readonly_fields = [*GOVERNED_FIELDS, "created_at", "updated_at"]
    inlines = [IntentInline, SegmentPolicyInline, DoNotAutomateRuleInline]
    history_list_display = ["history_change_reason"]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    fieldsets = [
        (None, {"fields": ["slug", "name", "owner", "reviewers", "purpose", "rollback_plan"]}),
        ("Risk", {"fields": ["risk_tier", "data_classification"]}),
        (
            "Mode and budgets",
            {
                "fields": [
                    "mode",
                    "enabled",
                    "min_confidence",
                    "latency_budget_ms",
                    "daily_budget_usd",
                    "audit_sample_rate",
                    "review_sla_minutes",
                    "reviewer_hourly_usd",
                    "manual_minutes_per_case",
                ]
            },
        ),
        (
            "Decision",
            {
                "description": "The API key is read from the named environment variable; "
                "it is never stored here.",
                "fields": [
                    "provider",
                    "model",
                    "base_url",
                    "api_key_env",
                    "instructions",
                    "rules",
                    "prompt_version",
                ],
            },
        ),
        ("Record", {"classes": ["collapse"], "fields": ["created_at", "updated_at"]}),
        ("Why", {"fields": ["change_reason"]}),
    ]

    def has_delete_permission(self, request, obj=None):
        # Owners retire an automation by its mode or kill switches; deleting is for admins.
        return admin_is_admin(request.user)


class ChildConfigAdmin(ChangeReasonMixin, ConfigAccessMixin, SimpleHistoryAdmin):
    form = ChildForm
    list_select_related = ["automation"]
    search_fields = ["automation__slug", "name"]
    history_list_display = ["history_change_reason"]


@admin.register(Intent)
class IntentAdmin(ChildConfigAdmin):
    list_display = ["automation", "name", "risk", "action_adapter", "position"]
    list_filter = ["risk", "action_adapter", "automation"]


@admin.register(SegmentPolicy)
class SegmentPolicyAdmin(ChildConfigAdmin):
    readonly_fields = GOVERNED_FIELDS
    list_display = ["automation", "key", "enabled", "mode", "position"]
    list_filter = ["enabled", "mode", "automation"]
    search_fields = ["automation__slug", "key"]


@admin.register(DoNotAutomateRule)
class DoNotAutomateRuleAdmin(ChildConfigAdmin):
    list_display = ["automation", "name", "field", "operator", "effect", "position"]
    list_filter = ["effect", "operator", "automation"]


@admin.register(ApiToken)
class ApiTokenAdmin(ChangeReasonMixin, AdminChangesMixin, SimpleHistoryAdmin):
    """Tokens are issued by `manage.py issue_api_token`; here admins scope and revoke them."""

    list_display = ["name", "prefix", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["revoked_at"]
    search_fields = ["name", "prefix"]
    filter_horizontal = ["automations"]
    fields = [
        "name",
        "prefix",
        "token_hash",
        "automations",
        "created_at",
        "last_used_at",
        "revoked_at",
        "change_reason",
    ]
    readonly_fields = ["prefix", "token_hash", "created_at", "last_used_at"]
    history_list_display = ["history_change_reason"]
    actions = ["revoke"]

    def has_add_permission(self, request, *args):
        # Only the command can issue a token: it prints the secret once and keeps its hash.
        return False

    @admin.action(description="Revoke selected tokens", permissions=["change"])
    def revoke(self, request, queryset):
        revoked = 0
        for token in queryset.filter(revoked_at__isnull=True):
            token.revoked_at = timezone.now()
            token._change_reason = "revoked in admin"
            token.save(update_fields=["revoked_at"])
            revoked += 1
        self.message_user(request, f"Revoked {revoked} token(s).", messages.SUCCESS)


class AuditSampleItemInline(ReadOnlyMixin, admin.TabularInline):
    """The sampled runs, read only: verdicts are recorded on the audit pages (and the trail)."""

    model = AuditSampleItem
    extra = 0
    can_delete = False
    fields = ["position", "run", "outcome", "stratum", "verdict", "category", "verdict_by"]
    readonly_fields = fields


@admin.register(AuditSample)
class AuditSampleAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """Samples are drawn by the sampling service and worked on the audit pages; read only here."""

    list_display = ["name", "kind", "automation", "seed", "since", "until", "created_by"]
    list_filter = ["kind"]
    list_select_related = ["automation", "created_by"]
    search_fields = ["name", "seed"]
    readonly_fields = [
        "name",
        "kind",
        "automation",
        "seed",
        "since",
        "until",
        "arguments",
        "cursor_run_id",
        "created_by",
        "created_at",
    ]
    inlines = [AuditSampleItemInline]


@admin.register(AuditSampleItem)
class AuditSampleItemAdmin(ReadOnlyMixin, SimpleHistoryAdmin):
    """Read-only list of sampled runs with their verdict history."""

    list_display = ["sample", "run", "outcome", "verdict", "category", "verdict_by", "verdict_at"]
    list_filter = ["verdict", "outcome"]
    list_select_related = ["sample", "run", "verdict_by"]
    readonly_fields = [
        "sample",
        "stratum",
        "run",
        "position",
        "outcome",
        "blind_intent",
        "blind_by",
        "blind_at",
        "revealed_at",
        "verdict",
        "category",
        "note",
        "verdict_by",
        "verdict_at",
    ]


# Django's own: admins manage people and their roles; compliance reads who holds which.
admin.site.unregister(get_user_model())
admin.site.unregister(Group)


@admin.register(get_user_model())
class RoleUserAdmin(AdminChangesMixin, UserAdmin):
    """Django's user admin by role: only admins add, change or delete users and their groups."""


@admin.register(Group)
class RoleGroupAdmin(AdminChangesMixin, GroupAdmin):
    """Django's group admin by role: the role groups are changed by admins only."""


# django-axes (log-in throttling), when installed, registers its records of log-ins: they
# follow the roles too. Importing its admin registers them now, whatever the app order.
if apps.is_installed("axes"):
    importlib.import_module("axes.admin")
    for model in [m for m in admin.site._registry if m._meta.app_label == "axes"]:
        given = type(admin.site._registry[model])
        admin.site.unregister(model)
        admin.site.register(model, type(given.__name__, (LoginRecordsMixin, given), {}))
