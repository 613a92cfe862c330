"""Reads shared by views and the API, including who may see and do what (contracts §2)."""

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, IntegerField, QuerySet, Subquery
from django.db.models.functions import Coalesce

from .models import Automation, Role


def user_roles(user: AbstractBaseUser) -> set[str]:
    """The role names a user holds; superusers hold every role."""
    if not user.is_authenticated:
        return set()
    if user.is_superuser:
        return {r.value for r in Role}
    cached = getattr(user, "_handrail_roles", None)
    if cached is None:
        cached = set(user.groups.filter(name__in=Role.values).values_list("name", flat=True))
        user._handrail_roles = cached
    return cached


def has_role(user: AbstractBaseUser, *roles: str) -> bool:
    return bool(user_roles(user) & set(roles))


def automations_visible_to(user: AbstractBaseUser) -> QuerySet[Automation]:
    """Admins and compliance see every automation; owners theirs; reviewers their queues'."""
    roles = user_roles(user)
    if roles & {Role.ADMIN, Role.COMPLIANCE}:
        return Automation.objects.all()
    qs = Automation.objects.none()
    if Role.OWNER in roles:
        qs = qs | Automation.objects.filter(owner=user)
    if Role.REVIEWER in roles:
        qs = qs | Automation.objects.filter(reviewers=user)
    return qs.distinct()


def can_manage(user: AbstractBaseUser, automation: Automation) -> bool:
    """Admins manage everything; owners the automations they own."""
    roles = user_roles(user)
    if Role.ADMIN in roles:
        return True
    return Role.OWNER in roles and automation.owner_id == user.pk


def reviewable_automations(user: AbstractBaseUser) -> QuerySet[Automation]:
    """The automations whose queues a user may work: only those they are assigned to."""
    if Role.REVIEWER not in user_roles(user) and Role.ADMIN not in user_roles(user):
        return Automation.objects.none()
    return Automation.objects.filter(reviewers=user)


def count_per_automation(queryset: QuerySet) -> Coalesce:
    """A correlated COUNT(*) of `queryset` (filtered on OuterRef) as one annotation, 0 if none.

    A subquery per figure rather than a join: counts of several tables never
    multiply each other, and each walks its own index.
    """
    counted = queryset.order_by().values("automation").annotate(n=Count("*")).values("n")[:1]
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)
