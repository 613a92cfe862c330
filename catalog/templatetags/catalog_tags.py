"""Template helpers for the layout: the current user's roles and readable JSON."""

import json

from django import template

from catalog.models import Role
from catalog.selectors import user_roles

register = template.Library()


@register.simple_tag
def roles_of(user) -> list[str]:
    """The user's role names in a fixed order (cached on the user by the selector)."""
    held = user_roles(user)
    return [role.value for role in Role if role.value in held]


@register.filter
def pretty_json(value) -> str:
    """Indented JSON for a <pre>; the template still escapes it."""
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)
