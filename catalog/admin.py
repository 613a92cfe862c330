"""Admin for the configuration people govern; every change keeps its history (who, when, why).

Access follows the roles of contracts §2 on top of Django's own permissions:
admins change everything, owners the automations they own, compliance reads
everything and records audit verdicts. Secrets never appear: only the names of
the environment variables that hold them, and only the hash of an API token.
"""

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.db import models
from django.utils import timezone
from simple_history.admin import SimpleHistoryAdmin

from .admin_forms import AutomationForm, AutomationInlineFormSet, ChildForm
from .models import (
    ApiToken,
    AuditSample,
    AuditSampleItem,
    Automation,
    DoNotAutomateRule,
    Intent,
    Role,
    SegmentPolicy,
)
from .selectors import user_roles

admin.site.site_header = "Handrail administration"
admin.site.site_title = "Handrail admin"
admin.site.index_title = "Configuration and trail"

DEFAULT_CHANGE_REASON = "edited in admin"
READERS = {Role.ADMIN, Role.COMPLIANCE}


def _roles(request) -> set[str]:
    return user_roles(request.user)


def _automation_of(obj) -> Automation | None:
    if obj is None:
        return None
    return obj if isinstance(obj, Automation) else obj.automation


def _owns(request, obj) -> bool:
    automation = _automation_of(obj)
    return automation is not None and automation.owner_id == request.user.pk


class ChangeReasonForm(forms.ModelForm):
    """A model form with an optional reason that the history records with the change."""

    change_reason = forms.CharField(
        required=False,
        max_length=100,
        help_text="Why this change? Kept in the configuration history.",
    )


class RoleAccessMixin:
    """Admins change all; owners only what belongs to their automations; compliance reads."""

    # Lookup from this model to the automation's owner; "" for models without one.
    owner_lookup = "automation__owner"

    def has_module_permission(self, request):
        roles = _roles(request)
        if roles & READERS or (Role.OWNER in roles and self.owner_lookup):
            return True
        return super().has_module_permission(request)

    def has_view_permission(self, request, obj=None):
        roles = _roles(request)
        if roles & READERS:
            return True
        if Role.OWNER in roles and self.owner_lookup:
            return obj is None or _owns(request, obj)
        return super().has_view_permission(request, obj)

    def has_add_permission(self, request, *args):
        roles = _roles(request)
        if Role.ADMIN in roles:
            return True
        if Role.OWNER in roles and self.owner_lookup:
            return True
        return super().has_add_permission(request, *args)

    def has_change_permission(self, request, obj=None):
        roles = _roles(request)
        if Role.ADMIN in roles:
            return True
        if Role.OWNER in roles and self.owner_lookup:
            return obj is None or _owns(request, obj)
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        roles = _roles(request)
        if Role.ADMIN in roles:
            return True
        if Role.OWNER in roles and self.owner_lookup:
            return obj is None or _owns(request, obj)
        return super().has_delete_permission(request, obj)

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        roles = _roles(request)
        if roles & READERS or Role.OWNER not in roles or not self.owner_lookup:
            return qs
        return qs.filter(**{self.owner_lookup: request.user})

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        # An owner may only attach things to, or hand automations to, themselves.
        if Role.ADMIN not in _roles(request):
            if db_field.name == "automation":
                kwargs["queryset"] = Automation.objects.filter(owner=request.user)
            elif db_field.name == "owner":
                kwargs["queryset"] = get_user_model().objects.filter(pk=request.user.pk)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


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


class ConfigInlineMixin(RoleAccessMixin):
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


class SegmentPolicyInline(ConfigInlineMixin, admin.TabularInline):
    model = SegmentPolicy
    fields = ["key", "position", "enabled", "mode"]


class DoNotAutomateRuleInline(ConfigInlineMixin, admin.TabularInline):
    model = DoNotAutomateRule
    fields = ["name", "position", "field", "operator", "value", "effect"]


@admin.register(Automation)
class AutomationAdmin(ChangeReasonMixin, RoleAccessMixin, SimpleHistoryAdmin):
    form = AutomationForm
    owner_lookup = "owner"
    list_display = ["slug", "name", "owner", "mode", "risk_tier", "data_classification", "provider"]
    list_filter = ["mode", "risk_tier", "data_classification", "provider"]
    list_select_related = ["owner"]
    search_fields = ["slug", "name", "purpose", "owner__username"]
    filter_horizontal = ["reviewers"]
    readonly_fields = ["created_at", "updated_at"]
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
        if Role.ADMIN in _roles(request):
            return True
        return super(RoleAccessMixin, self).has_delete_permission(request, obj)


class ChildConfigAdmin(ChangeReasonMixin, RoleAccessMixin, SimpleHistoryAdmin):
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
    list_display = ["automation", "key", "enabled", "mode", "position"]
    list_filter = ["enabled", "mode", "automation"]
    search_fields = ["automation__slug", "key"]


@admin.register(DoNotAutomateRule)
class DoNotAutomateRuleAdmin(ChildConfigAdmin):
    list_display = ["automation", "name", "field", "operator", "effect", "position"]
    list_filter = ["effect", "operator", "automation"]


@admin.register(ApiToken)
class ApiTokenAdmin(ChangeReasonMixin, RoleAccessMixin, SimpleHistoryAdmin):
    """Tokens are issued by `manage.py issue_api_token`; here they are scoped and revoked."""

    owner_lookup = ""  # tokens are not owned: admins only change them
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


class AuditSampleItemInline(admin.TabularInline):
    """The sampled runs, read only: verdicts are recorded on the audit pages (and the trail)."""

    model = AuditSampleItem
    extra = 0
    can_delete = False
    fields = ["position", "run", "outcome", "stratum", "verdict", "category", "verdict_by"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_view_permission(self, request, obj=None):
        return bool(_roles(request) & READERS) or super().has_view_permission(request, obj)


@admin.register(AuditSample)
class AuditSampleAdmin(admin.ModelAdmin):
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

    def has_module_permission(self, request):
        return bool(_roles(request) & READERS) or super().has_module_permission(request)

    def has_view_permission(self, request, obj=None):
        return bool(_roles(request) & READERS) or super().has_view_permission(request, obj)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(AuditSampleItem)
class AuditSampleItemAdmin(SimpleHistoryAdmin):
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

    def has_module_permission(self, request):
        return bool(_roles(request) & READERS) or super().has_module_permission(request)

    def has_view_permission(self, request, obj=None):
        return bool(_roles(request) & READERS) or super().has_view_permission(request, obj)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
