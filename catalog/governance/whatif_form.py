"""The what-if preview's query parameters: what may be proposed, and the errors when it may not.

    ?min_confidence=0.8
    ?mode=approve                     the automation's mode
    ?mode=approve&segment=trial       one segment's mode
    ?rule_field=payload.body&rule_operator=matches&rule_value=(?i)lawyer&rule_effect=review

Any of them together; empty parameters and others (a whole settings form
sent by htmx) are ignored. A pattern must be one RE2 runs (as the loader
requires) and one the database's engine can run.
"""

from django import forms

from automations.matching import PatternRefused, pattern_compile
from catalog.loader.validate import pattern_problem
from catalog.models import Mode, RuleEffect, slug_validator

from .event_sql import OPERATORS, FieldRefused, field_parts, pattern_unreadable
from .whatif import Proposal, RuleProposal

RULE_FIELDS = ("rule_field", "rule_operator", "rule_value", "rule_effect")


class WhatIfForm(forms.Form):
    min_confidence = forms.FloatField(required=False, min_value=0.0, max_value=1.0)
    mode = forms.ChoiceField(required=False, choices=[("", "unchanged"), *Mode.choices])
    segment = forms.CharField(required=False, max_length=100, validators=[slug_validator])
    rule_field = forms.CharField(required=False, max_length=300)
    rule_operator = forms.ChoiceField(
        required=False, choices=[("", "—"), *((o, o) for o in OPERATORS)]
    )
    rule_value = forms.CharField(required=False, max_length=1000, strip=False)
    rule_effect = forms.ChoiceField(required=False, choices=[("", "—"), *RuleEffect.choices])

    def clean_rule_field(self) -> str:
        value = self.cleaned_data["rule_field"]
        if value:
            try:
                field_parts(value)
            except FieldRefused as refused:
                raise forms.ValidationError(f"{value}: {refused}") from None
        return value

    def clean(self):
        data = super().clean()
        if data.get("segment") and not data.get("mode"):
            self.add_error("mode", "choose the mode to preview for segment " + data["segment"])
        if any(self.data.get(name) for name in RULE_FIELDS):
            for name in RULE_FIELDS:
                if name not in self.errors and not data.get(name):
                    self.add_error(name, "a rule needs a field, an operator, a value and an effect")
        if data.get("rule_operator") == "matches" and data.get("rule_value"):
            problem = _pattern_problem(data["rule_value"])
            if problem:
                self.add_error("rule_value", problem)
        return data

    def proposal(self) -> Proposal:
        """The proposal the valid form describes."""
        data = self.cleaned_data
        rule = None
        if data["rule_field"]:
            rule = RuleProposal(
                field=data["rule_field"],
                operator=data["rule_operator"],
                value=data["rule_value"],
                effect=data["rule_effect"],
            )
        return Proposal(
            min_confidence=data["min_confidence"],
            mode=data["mode"],
            segment=data["segment"] if data["mode"] else "",
            rule=rule,
        )


def _pattern_problem(pattern: str) -> str | None:
    try:
        pattern_compile(pattern)
    except PatternRefused as refused:
        return pattern_problem(pattern, refused)
    unreadable = pattern_unreadable(pattern)
    if unreadable:
        return f"the database cannot run this pattern for the preview: {unreadable}"
    return None
