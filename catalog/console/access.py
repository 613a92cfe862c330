"""Who reaches the owner console's pages: those who manage the automation (contracts §2)."""

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404

from catalog.models import Automation
from catalog.selectors import automations_visible_to, can_manage


def automation_seen(user: AbstractBaseUser, slug: str) -> Automation:
    """The automation if `user` may see it; Http404 otherwise (a stranger learns nothing)."""
    return get_object_or_404(
        automations_visible_to(user).select_related("owner").prefetch_related("segments"),
        slug=slug,
    )


def automation_managed(user: AbstractBaseUser, slug: str) -> Automation:
    """The automation if `user` manages it; 404 if they cannot see it, 403 if they only see it."""
    automation = automation_seen(user, slug)
    if not can_manage(user, automation):
        raise PermissionDenied(f"only the owner of {automation.slug} and admins may change it")
    return automation
