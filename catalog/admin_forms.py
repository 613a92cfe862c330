"""Admin forms for the catalog: every save runs the loader's validation (catalog/validation.py).

The automation page validates its form and its inline formsets as one
automation. Django builds the inline formsets before it validates the form,
on the same automation instance, so each formset registers itself there and
the form's clean() sees the whole page. The stand-alone intent, segment
policy and do-not-automate rule pages validate their automation with that
one child replaced. django-simple-history's revert form is the admin's
get_form(), so a revert is validated the same way.
"""

import copy

from django import forms
from django.forms.formsets import DELETION_FIELD_NAME
from django.forms.models import construct_instance

from .models import Automation, DoNotAutomateRule, Intent, SegmentPolicy
from .validation import PARTS, Draft, draft_problems, draft_stored, problem_show

PART_OF = {Intent: "intents", SegmentPolicy: "segments", DoNotAutomateRule: "do_not_automate"}
# Where an automation instance keeps the inline formsets of the page it is on.
PAGE_FORMSETS = "_admin_page_formsets"


class ConfigForm(forms.ModelForm):
    """A model form with an optional reason that the history records with the change."""

    change_reason = forms.CharField(
        required=False,
        max_length=100,
        help_text="Why this change? Kept in the configuration history.",
    )

    def candidate(self):
        """A copy of the instance with this form's cleaned values, the instance left as it is."""
        instance = copy.copy(self.instance)
        construct_instance(self, instance)
        return instance


class AutomationInlineFormSet(forms.BaseInlineFormSet):
    """An inline of the automation page: the automation's form validates it with the rest."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.instance.__dict__.setdefault(PAGE_FORMSETS, {})[PART_OF[self.model]] = self


class AutomationForm(ConfigForm):
    """The automation page: its fields and every inline on it, validated as one automation."""

    def clean(self):
        cleaned_data = super().clean()
        formsets = self.instance.__dict__.get(PAGE_FORMSETS, {})
        children, forms_at = {}, {}
        for part in PARTS:
            if part not in formsets:
                # Not on this page (the history revert form): as stored.
                stored = getattr(self.instance, part).all() if self.instance.pk else []
                children[part] = list(stored)
                continue
            kept = formset_kept(formsets[part])
            children[part] = [form.instance for form in kept]
            forms_at.update({(part, index): form for index, form in enumerate(kept)})
        automation = self.candidate()
        draft = Draft(
            automation=automation,
            owner=automation.owner.get_username() if automation.owner_id else "",
            reviewers=self._reviewers(),
            children=children,
        )
        for problem in draft_problems(draft, before=stored_draft(self.instance.pk)):
            form = self if problem.part is None else forms_at.get((problem.part, problem.index))
            problem_show(problem, form=form, fallback=self)
        return cleaned_data

    def _reviewers(self) -> list[str]:
        if "reviewers" in self.cleaned_data:
            users = self.cleaned_data["reviewers"]
        else:
            users = self.instance.reviewers.all() if self.instance.pk else []
        return [user.get_username() for user in users]


class ChildForm(ConfigForm):
    """An intent, segment policy or do-not-automate rule: validated within its automation."""

    def clean(self):
        cleaned_data = super().clean()
        child = self.candidate()
        automation = Automation.objects.filter(pk=child.automation_id).first()
        if automation is None:
            return cleaned_data  # the automation field says why
        part = PART_OF[self._meta.model]
        stored = draft_stored(automation)
        siblings = stored.children[part]
        index = next(
            (i for i, s in enumerate(siblings) if s.pk and s.pk == self.instance.pk), len(siblings)
        )
        children = {**stored.children, part: [*siblings[:index], child, *siblings[index + 1 :]]}
        draft = Draft(
            automation=stored.automation,
            owner=stored.owner,
            reviewers=stored.reviewers,
            children=children,
        )
        for problem in draft_problems(draft, before=stored):
            mine = (problem.part, problem.index) == (part, index)
            problem_show(problem, form=self if mine else None, fallback=self, label=automation.slug)
        self._check_left_behind(part, automation)
        return cleaned_data

    def _check_left_behind(self, part: str, automation: Automation) -> None:
        """A child moved to another automation must not leave its old one invalid."""
        model = self._meta.model
        moved_from = (
            model.objects.filter(pk=self.instance.pk)
            .exclude(automation=automation)
            .values_list("automation", flat=True)
            .first()
        )
        if moved_from is None:
            return
        old = draft_stored(Automation.objects.get(pk=moved_from))
        rest = [sibling for sibling in old.children[part] if sibling.pk != self.instance.pk]
        left = Draft(
            automation=old.automation,
            owner=old.owner,
            reviewers=old.reviewers,
            children={**old.children, part: rest},
        )
        field = "automation" if "automation" in self.fields else None
        for problem in draft_problems(left, before=old):
            message = f"{old.automation.slug} would be left with {problem.path}: {problem.message}"
            self.add_error(field, message)


def stored_draft(pk) -> Draft | None:
    automation = Automation.objects.filter(pk=pk).first() if pk else None
    return draft_stored(automation) if automation is not None else None


def formset_kept(formset) -> list[forms.ModelForm]:
    """The forms whose rows a save leaves: neither deleted nor untouched extra forms."""
    formset.is_valid()  # cleans every form, once
    kept = []
    for index, form in enumerate(formset.forms):
        if index >= formset.initial_form_count() and not form.has_changed():
            continue
        if formset.can_delete and form.cleaned_data.get(DELETION_FIELD_NAME):
            continue
        kept.append(form)
    return kept
