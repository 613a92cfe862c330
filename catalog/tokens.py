"""Ingestion API tokens: issue a secret once, store only its SHA-256, authenticate by hash."""

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from .models import ApiToken, Automation

TOKEN_PREFIX = "hr_"  # noqa: S105 -- a marker, not a secret
PREFIX_LENGTH = 10
# A real token is about 46 characters; anything far longer is not worth hashing.
MAX_TOKEN_LENGTH = 200
LAST_USED_RESOLUTION = timedelta(minutes=1)


def token_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8", "surrogateescape")).hexdigest()


@transaction.atomic
def token_issue(*, name: str, automations: Iterable[Automation] = ()) -> tuple[ApiToken, str]:
    """Create a token limited to `automations` (none: every automation); return it and its secret.

    The secret is returned only here: the database keeps its SHA-256 and first characters.
    """
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        name=name, token_hash=token_hash(raw), prefix=raw[:PREFIX_LENGTH]
    )
    automations = list(automations)
    if automations:
        token.automations.add(*automations)
    return token, raw


def token_authenticate(raw: str) -> ApiToken | None:
    """The live (not revoked) token whose secret is `raw`, else None; notes when it was used."""
    if not raw or len(raw) > MAX_TOKEN_LENGTH:
        return None
    token = _live_tokens(raw).first()
    return None if token is None else _token_used(token)


@dataclass(frozen=True)
class TokenGrant:
    """A live token, the automation a request names (its id), and whether the token may use it."""

    token: ApiToken
    automation_id: int | None
    allowed: bool


def token_authenticate_for(raw: str, slug: str) -> TokenGrant | None:
    """token_authenticate, plus the automation called `slug` and the token's right to it.

    None when the token is not live; `automation_id` is None when no automation
    has that slug. Every event the API takes starts here: the token and the
    automation's id are read with one plain statement (the same on PostgreSQL and
    SQLite), since building them as querysets cost the API view more than half its CPU.
    """
    if not raw or len(raw) > MAX_TOKEN_LENGTH:
        return None
    token = next(iter(ApiToken.objects.raw(_GRANT_SQL, [slug, token_hash(raw)])), None)
    if token is None:
        return None
    return TokenGrant(
        token=_token_used(token),
        automation_id=token.automation_id,
        allowed=token.automation_id is not None and bool(token.listed or not token.limited),
    )


_LINKS = ApiToken.automations.through._meta.db_table
# The live token, the id of the automation called %s (NULL if none), and whether the
# token is limited to some automations, and to this one.
_GRANT_SQL = (
    'SELECT t."id", t."name", t."last_used_at", a."id" AS automation_id,'  # noqa: S608 (model names)
    f' EXISTS (SELECT 1 FROM "{_LINKS}" l WHERE l."apitoken_id" = t."id") AS limited,'
    f' EXISTS (SELECT 1 FROM "{_LINKS}" l'
    ' WHERE l."apitoken_id" = t."id" AND l."automation_id" = a."id") AS listed'
    f' FROM "{ApiToken._meta.db_table}" t'
    f' LEFT JOIN "{Automation._meta.db_table}" a ON a."slug" = %s'
    ' WHERE t."token_hash" = %s AND t."revoked_at" IS NULL'
)


def _live_tokens(raw: str):
    return ApiToken.objects.filter(token_hash=token_hash(raw), revoked_at__isnull=True)


def _token_used(token: ApiToken) -> ApiToken:
    now = timezone.now()
    # Writing on every request would turn each API call into two writes; a minute is enough.
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


def token_automation_ids(token: ApiToken) -> set[int]:
    """The automations a token is limited to; empty means every automation."""
    # Straight from the link table: no join, no related manager (a third of the cost).
    links = ApiToken.automations.through.objects.filter(apitoken_id=token.pk)
    return set(links.values_list("automation_id", flat=True))


def token_allows(token: ApiToken, automation_id: int) -> bool:
    """True when the token may post to and read runs of this automation."""
    allowed = token_automation_ids(token)
    return not allowed or automation_id in allowed
