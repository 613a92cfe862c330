"""Read-only admin over the run trail: evidence is looked at here, never added, edited or deleted.

Admins and compliance read it (contracts §2, catalog.admin_access); nobody,
superusers included, gets add, change or delete. What a webhook receiver
answered is shown to admins only.
"""

from django.contrib import admin

from automations.services.recovery import runs_overdue
from catalog.admin_access import ReadOnlyMixin, admin_is_admin

from .models import (
    Action,
    ActionAttempt,
    Event,
    Label,
    ModelCall,
    ReviewTask,
    Run,
    RunTransition,
)


class TrailAdmin(ReadOnlyMixin, admin.ModelAdmin):
    # The trail grows without bound: skip the unfiltered COUNT(*) on every page.
    show_full_result_count = False
    list_per_page = 50


class TrailInline(ReadOnlyMixin, admin.TabularInline):
    extra = 0
    can_delete = False


class RunTransitionInline(TrailInline):
    model = RunTransition
    fields = ["at", "from_state", "to_state", "actor", "reason"]
    readonly_fields = fields


class ActionAttemptInline(TrailInline):
    model = ActionAttempt
    fields = [
        "number",
        "started_at",
        "duration_ms",
        "status_code",
        "retryable",
        "error",
        "response_excerpt",
    ]
    readonly_fields = fields

    def get_fields(self, request, obj=None):
        # A receiver's answer may carry anything it chose to send back: admins only.
        if admin_is_admin(request.user):
            return self.fields
        return [name for name in self.fields if name != "response_excerpt"]


@admin.register(Event)
class EventAdmin(TrailAdmin):
    list_display = ["id", "automation", "idempotency_key", "segment", "source", "received_at"]
    list_filter = ["automation", "source"]
    list_select_related = ["automation"]
    search_fields = ["idempotency_key", "trace_id"]
    date_hierarchy = "received_at"


class RecoveryFilter(admin.SimpleListFilter):
    """Runs a worker should have moved on by now: the sweep hands them on again."""

    title = "recovery"
    parameter_name = "recovery"

    def lookups(self, request, model_admin):
        return [("waiting", "waiting for recovery")]

    def queryset(self, request, queryset):
        if self.value() == "waiting":
            return queryset.filter(pk__in=runs_overdue().values("pk"))
        return queryset


@admin.register(Run)
class RunAdmin(TrailAdmin):
    list_display = [
        "id",
        "automation",
        "segment",
        "state",
        "effective_mode",
        "decided_by",
        "held_by",
        "due_at",
        "created_at",
    ]
    list_filter = [RecoveryFilter, "state", "effective_mode", "decided_by", "automation"]
    list_select_related = ["automation"]
    search_fields = ["trace_id", "event__idempotency_key"]
    date_hierarchy = "created_at"
    inlines = [RunTransitionInline]


@admin.register(RunTransition)
class RunTransitionAdmin(TrailAdmin):
    list_display = ["id", "run", "from_state", "to_state", "actor", "at"]
    list_filter = ["to_state"]
    list_select_related = ["run"]
    search_fields = ["actor", "run__trace_id"]
    date_hierarchy = "at"


@admin.register(ModelCall)
class ModelCallAdmin(TrailAdmin):
    list_display = [
        "id",
        "automation",
        "run",
        "provider",
        "model",
        "input_tokens",
        "output_tokens",
        "cost_usd",
        "latency_ms",
        "has_error",
        "created_at",
    ]
    list_filter = ["provider", "model", "automation"]
    list_select_related = ["automation", "run"]
    search_fields = ["request_id", "run__trace_id"]
    date_hierarchy = "created_at"

    @admin.display(boolean=True, description="error")
    def has_error(self, obj):
        return bool(obj.error)


@admin.register(ReviewTask)
class ReviewTaskAdmin(TrailAdmin):
    list_display = [
        "id",
        "automation",
        "run",
        "kind",
        "state",
        "outcome",
        "claimed_by",
        "decided_by",
        "review_ms",
        "created_at",
    ]
    list_filter = ["state", "kind", "outcome", "automation"]
    list_select_related = ["automation", "run", "claimed_by", "decided_by"]
    search_fields = ["run__trace_id", "reject_reason", "note"]
    date_hierarchy = "created_at"


@admin.register(Label)
class LabelAdmin(TrailAdmin):
    list_display = ["id", "automation", "run", "outcome", "reviewer", "created_at"]
    list_filter = ["outcome", "automation"]
    list_select_related = ["automation", "run", "reviewer"]
    search_fields = ["run__trace_id", "reviewer__username"]
    date_hierarchy = "created_at"


@admin.register(Action)
class ActionAdmin(TrailAdmin):
    list_display = [
        "id",
        "automation",
        "run",
        "adapter",
        "state",
        "attempt_count",
        "created_at",
        "completed_at",
    ]
    list_filter = ["state", "adapter", "automation"]
    list_select_related = ["automation", "run"]
    search_fields = ["idempotency_key", "run__trace_id"]
    date_hierarchy = "created_at"
    inlines = [ActionAttemptInline]
