"""The owner console's forms: each validates as the loader does and requires a reason.

A form builds the automation as its change would leave it (a Draft) and shows
each loader problem next to its field (catalog/validation.py); problems the
automation already had are not blamed on an unrelated change.
"""

import copy
import json

from django import forms
from django.contrib.auth import get_user_model
from django.db.models import Q
from django.forms.models import construct_instance

from catalog.models import Automation, Mode, Role, SegmentPolicy
from catalog.validation import Draft, draft_problems, draft_stored, problem_show

# History keeps 100 characters of a reason; a mode or switch change keeps it whole too.
SETTINGS_REASON_LENGTH = 100
GOVERNANCE_REASON_LENGTH = 500
SETTINGS_FIELDS = [
    "purpose",
    "rollback_plan",
    "min_confidence",
    "latency_budget_ms",
    "review_sla_minutes",
    "audit_sample_rate",
    "daily_budget_usd",
    "reviewer_hourly_usd",
    "manual_minutes_per_case",
    "success_metrics",
    "monitoring_plan",
    "labeling_budget",
    "on_call",
    "auto_demote",
    "auto_demote_after",
    "auto_demote_over",
    "notify_url",
    "notify_secret_env",
    "rules",
]
MODE_CHOICES = [("", "inherit the automation's mode"), *Mode.choices]


def reason_field(max_length: int) -> forms.CharField:
    return forms.CharField(
        label="Reason",
        max_length=max_length,
        help_text="Why? Kept with the change in the history and the trail.",
        error_messages={"required": "Say why: every change keeps its reason."},
    )


def override_field() -> forms.BooleanField:
    return forms.BooleanField(
        required=False,
        label="Override the evidence (admin)",
        help_text="Promote without the evidence or the checklist; recorded as an override.",
    )


def reviewer_choices(automation: Automation):
    """Users with the reviewer role, and whoever reviews the automation now."""
    return (
        get_user_model()
        .objects.filter(Q(groups__name=Role.REVIEWER) | Q(review_automations=automation))
        .distinct()
        .order_by("username")
    )


class PrettyJSONField(forms.JSONField):
    """JSON shown indented, so that a person can read and edit it."""

    def prepare_value(self, value):
        if isinstance(value, forms.fields.InvalidJSONInput):
            return value
        return json.dumps(value, ensure_ascii=False, indent=2, cls=self.encoder)


class SettingsForm(forms.ModelForm):
    """Purpose, rollback plan, reviewers, thresholds, budgets, readiness and notifications."""

    reviewers = forms.ModelMultipleChoiceField(
        queryset=get_user_model().objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="People with the reviewer role who work this automation's queue.",
    )
    # Checked as the loader checks it (a URL, and no internal address), not by Django's rules.
    notify_url = forms.CharField(
        required=False,
        max_length=500,
        label="Notify URL",
        help_text="Where governance notifications (automatic demotions) are sent, signed.",
    )
    rules = PrettyJSONField(
        required=False,
        label="Decision rules",
        help_text="The rules provider's rules, a JSON list: the first that matches wins.",
        widget=forms.Textarea(attrs={"rows": 8, "class": "json"}),
    )
    change_reason = reason_field(SETTINGS_REASON_LENGTH)

    class Meta:
        model = Automation
        fields = [*SETTINGS_FIELDS, "reviewers"]
        labels = {
            "min_confidence": "Minimum confidence",
            "latency_budget_ms": "Latency budget (ms)",
            "review_sla_minutes": "Review SLA (minutes)",
            "daily_budget_usd": "Daily model budget (USD)",
            "reviewer_hourly_usd": "Reviewer's hour (USD)",
            "auto_demote": "Demote automatically",
            "auto_demote_after": "Judge over the latest",
            "auto_demote_over": "Demote above this override rate",
            "notify_secret_env": "Notify secret variable",
        }
        help_texts = {
            "min_confidence": "Between 0 and 1; below it, the intent goes to review.",
            "latency_budget_ms": "The model's timeout; past it, the case goes to review.",
            "daily_budget_usd": "The model's spend cap per day; past it, cases go to review.",
            "audit_sample_rate": "Share of autonomous actions sampled for audit, 0 to 1.",
            "notify_secret_env": "The variable holding the notification's signing secret.",
        }
        widgets = {
            "purpose": forms.Textarea(attrs={"rows": 3}),
            "rollback_plan": forms.Textarea(attrs={"rows": 3}),
            "success_metrics": forms.Textarea(attrs={"rows": 3}),
            "monitoring_plan": forms.Textarea(attrs={"rows": 3}),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["reviewers"].queryset = reviewer_choices(self.instance)
        if self.instance.provider != "rules":
            del self.fields["rules"]  # only the rules provider reads them

    def _get_validation_exclusions(self):
        # The loader's checks (clean) are the one validation of these fields: the model's own
        # validators would only say the same again, in other words.
        return {*super()._get_validation_exclusions(), *SETTINGS_FIELDS}

    def clean_rules(self):
        rules = self.cleaned_data.get("rules")
        return [] if rules is None else rules

    def clean(self):
        cleaned_data = super().clean()
        stored = draft_stored(self.instance)
        candidate = copy.copy(self.instance)
        construct_instance(self, candidate, fields=SETTINGS_FIELDS)
        reviewers = cleaned_data.get("reviewers")
        draft = Draft(
            automation=candidate,
            owner=stored.owner,
            reviewers=stored.reviewers
            if reviewers is None
            else [user.get_username() for user in reviewers],
            children=stored.children,
        )
        for problem in draft_problems(draft, before=stored):
            problem_show(problem, form=self, fallback=self)
        return cleaned_data

    def values(self) -> dict:
        """The settings as the form cleaned them, for automation_settings_save."""
        return {name: self.cleaned_data[name] for name in SETTINGS_FIELDS if name in self.fields}


class SegmentForm(forms.Form):
    """A segment policy, new or edited: its switch and its mode, validated within its automation."""

    key = forms.CharField(max_length=100, label="Segment key")
    enabled = forms.BooleanField(required=False, initial=True, label="On")
    mode = forms.ChoiceField(choices=MODE_CHOICES, required=False)
    change_reason = reason_field(GOVERNANCE_REASON_LENGTH)
    override_evidence = override_field()

    def __init__(self, *args, automation: Automation, policy: SegmentPolicy | None = None, **kw):
        super().__init__(*args, **kw)
        self.automation, self.policy = automation, policy
        if policy is not None:
            del self.fields["key"]  # a segment's key is what the runs carry: not renamed

    def clean(self):
        cleaned_data = super().clean()
        key = self.policy.key if self.policy else cleaned_data.get("key")
        if not key:
            return cleaned_data
        stored = draft_stored(self.automation)
        segments = stored.children["segments"]
        index = next((i for i, p in enumerate(segments) if p.pk and p == self.policy), None)
        edited = SegmentPolicy(
            pk=self.policy.pk if self.policy else None,
            automation=self.automation,
            key=key,
            enabled=cleaned_data.get("enabled", True),
            mode=cleaned_data.get("mode", ""),
        )
        if index is None:
            index, segments = len(segments), [*segments, edited]
        else:
            segments = [*segments[:index], edited, *segments[index + 1 :]]
        draft = Draft(
            automation=stored.automation,
            owner=stored.owner,
            reviewers=stored.reviewers,
            children={**stored.children, "segments": segments},
        )
        for problem in draft_problems(draft, before=stored):
            mine = (problem.part, problem.index) == ("segments", index)
            problem_show(problem, form=self if mine else None, fallback=self)
        return cleaned_data


class ReasonForm(forms.Form):
    """Only a reason: removing a segment policy."""

    change_reason = reason_field(GOVERNANCE_REASON_LENGTH)


class GovernanceForm(forms.Form):
    """A mode or switch change for the automation (segment "") or one segment."""

    segment = forms.CharField(max_length=100, required=False)
    change_reason = reason_field(GOVERNANCE_REASON_LENGTH)

    def __init__(self, *args, automation: Automation, **kwargs):
        super().__init__(*args, **kwargs)
        self.automation = automation

    def clean_segment(self):
        """A segment without a policy yet gets one: its key must be one the loader accepts."""
        key = self.cleaned_data["segment"]
        if not key or any(p.key == key for p in self.automation.segments.all()):
            return key
        stored = draft_stored(self.automation)
        segments = [*stored.children["segments"], SegmentPolicy(key=key)]
        draft = Draft(
            automation=stored.automation,
            owner=stored.owner,
            reviewers=stored.reviewers,
            children={**stored.children, "segments": segments},
        )
        problems = [p for p in draft_problems(draft, before=stored) if p.part == "segments"]
        if problems:
            raise forms.ValidationError([p.text for p in problems])
        return key


class ModeForm(GovernanceForm):
    mode = forms.ChoiceField(choices=Mode.choices)
    override_evidence = override_field()


class SwitchForm(GovernanceForm):
    state = forms.ChoiceField(choices=[("off", "off"), ("on", "on")])
    confirmed = forms.BooleanField(required=False, widget=forms.HiddenInput)

    @property
    def on(self) -> bool:
        return self.cleaned_data["state"] == "on"
