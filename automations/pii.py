"""Find and redact personal data in text and JSON-like values. Pure: no database here.

Kinds: email, phone, iban (mod-97 checked), card (Luhn checked), ssn (US).
Candidates come from precompiled regexes built so that no input makes them
backtrack badly (a 256 KB payload takes milliseconds); checksums and shape
rules then drop what is only number-shaped (dates, amounts, order ids).
"""

import re
from bisect import bisect_left
from typing import Any

KINDS = ("email", "phone", "iban", "card", "ssn")
PLACEHOLDERS = {kind: f"[{kind.upper()}]" for kind in KINDS}

# The lookbehind pins each match to the start of a run of local-part
# characters, so a long run without "@" is scanned once, not once per offset.
_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+\-])[A-Za-z0-9._%+\-]{1,64}@"
    r"[A-Za-z0-9](?:[A-Za-z0-9\-]{0,62}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]{0,62}[A-Za-z0-9])?)*\.[A-Za-z]{2,24}\b"
)
# Country code, check digits, then groups of four (optionally spaced); the
# mod-97 check decides, trimming trailing groups picked up from nearby text.
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?")
# 13 to 19 digits, single spaces or dashes between them; each repetition eats
# exactly one digit, so the pattern cannot backtrack exponentially.
_CARD = re.compile(r"(?<![A-Za-z0-9+])(?<!\d[ \-])\d(?:[ \-]?\d){12,18}(?!\d)")
_SSN = re.compile(r"(?<![\w\-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\w\-])")
# Phones: international (+CC), area code in parentheses, national with a
# trunk 0, or the North American 3-3-4 shape. A bare digit run without one of
# these marks is not a phone: that keeps amounts and ids out.
_PHONE = re.compile(
    r"(?<![\w+.,\-/])(?:"
    r"\+[1-9]\d{0,3}(?:[ .\-]?\(\d{1,5}\))?[ .\-]?\d{1,14}(?:[ .\-]\d{1,14}){0,6}"
    r"|\(\d{2,5}\)[ .\-]?\d{2,5}(?:[ .\-]\d{2,5}){0,3}"
    r"|0\d{1,4}(?:[ .\-/]\d{2,8}){1,5}"
    r"|0[1-9]\d{7,12}"
    r"|(?:1[ .\-])?\d{3}[ .\-]\d{3}[ .\-]\d{4}"
    r")(?!\w|[.,\-/]\d)"
)
_DIGIT_GROUPS = re.compile(r"\d+")
_SEPARATOR = re.compile(r"[ \-]")


def _luhn_ok(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        number = int(char)
        if index % 2:
            number = number * 2 - 9 if number > 4 else number * 2
        total += number
    return total % 10 == 0


def _iban_ok(compact: str) -> bool:
    if not 15 <= len(compact) <= 34:
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(char, 36)) for char in rearranged)) % 97 == 1


def _longest_valid(text: str, start: int, end: int, is_valid) -> int | None:
    """The end of the longest prefix of text[start:end], cut at a separator, that is valid."""
    ends = [end] + [m.start() for m in _SEPARATOR.finditer(text, start, end)][::-1]
    for candidate_end in ends:
        if is_valid(text[start:candidate_end]):
            return candidate_end
    return None


def _card_valid(candidate: str) -> bool:
    digits = candidate.replace(" ", "").replace("-", "")
    # A run of one repeated digit (0000 0000 ...) passes Luhn but is filler, not a card.
    return 13 <= len(digits) <= 19 and len(set(digits)) > 1 and _luhn_ok(digits)


def _iban_valid(candidate: str) -> bool:
    return _iban_ok(candidate.replace(" ", ""))


def _looks_like_date(groups: list[str]) -> bool:
    if len(groups) != 3:
        return False
    lengths = [len(g) for g in groups]
    a, b, c = (int(g) for g in groups)
    if lengths == [4, 2, 2]:  # 2024-01-15
        return 1 <= b <= 12 and 1 <= c <= 31
    if lengths in ([2, 2, 4], [2, 2, 2]):  # 15.01.2024, 01-15-2024, 15.01.24
        return (1 <= a <= 31 and 1 <= b <= 12) or (1 <= a <= 12 and 1 <= b <= 31)
    return False


def _phone_valid(candidate: str) -> bool:
    groups = _DIGIT_GROUPS.findall(candidate)
    digit_count = sum(len(g) for g in groups)
    if not 8 <= digit_count <= 15:
        return False
    if candidate.startswith("+") or candidate.startswith("("):
        return True
    return not _looks_like_date(groups)


def _candidates(kind: str, text: str):
    """(start, end) of every valid match of one kind."""
    if kind == "email":
        for m in _EMAIL.finditer(text):
            yield m.start(), m.end()
    elif kind == "iban":
        for m in _IBAN.finditer(text):
            end = _longest_valid(text, m.start(), m.end(), _iban_valid)
            if end is not None:
                yield m.start(), end
    elif kind == "card":
        for m in _CARD.finditer(text):
            end = _longest_valid(text, m.start(), m.end(), _card_valid)
            if end is not None:
                yield m.start(), end
    elif kind == "ssn":
        for m in _SSN.finditer(text):
            yield m.start(), m.end()
    elif kind == "phone":
        for m in _PHONE.finditer(text):
            if _phone_valid(m.group()):
                yield m.start(), m.end()


# Overlaps go to the more specific kind: an email's digits are not a phone,
# an IBAN's digits are not a card.
_PRIORITY = ("email", "iban", "card", "ssn", "phone")


def pii_find(text: str) -> list[tuple[str, int, int]]:
    """Every PII span in `text` as (kind, start, end), sorted by start, never overlapping."""
    starts: list[int] = []
    spans: list[tuple[int, int, str]] = []
    for kind in _PRIORITY:
        for start, end in _candidates(kind, text):
            index = bisect_left(starts, start)
            if index > 0 and spans[index - 1][1] > start:
                continue
            if index < len(spans) and spans[index][0] < end:
                continue
            starts.insert(index, start)
            spans.insert(index, (start, end, kind))
    return [(kind, start, end) for start, end, kind in spans]


def _redact_text(text: str, counts: dict[str, int]) -> str:
    found = pii_find(text)
    if not found:
        return text
    parts = []
    position = 0
    for kind, start, end in found:
        parts.append(text[position:start])
        parts.append(PLACEHOLDERS[kind])
        counts[kind] = counts.get(kind, 0) + 1
        position = end
    parts.append(text[position:])
    return "".join(parts)


def _redact(value: Any, counts: dict[str, int]) -> Any:
    if isinstance(value, str):
        return _redact_text(value, counts)
    if isinstance(value, dict):
        # Keys are left alone: redacting them could merge two keys into one.
        return {key: _redact(item, counts) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_redact(item, counts) for item in value)
    if isinstance(value, int) and not isinstance(value, bool):
        # A card number sent as a JSON number is still a card number.
        found = pii_find(str(value))
        if found and found[0][1] == 0 and found[0][2] == len(str(value)):
            kind = found[0][0]
            counts[kind] = counts.get(kind, 0) + 1
            return PLACEHOLDERS[kind]
    return value


def pii_redact(value: Any) -> tuple[Any, dict[str, int]]:
    """A redacted deep copy of `value` and how many spans of each kind were replaced.

    Strings inside dicts and lists are searched; each span becomes a
    placeholder such as `[EMAIL]`. The input is never modified. Counts hold
    only the kinds found, in KINDS order.
    """
    counts: dict[str, int] = {}
    redacted = _redact(value, counts)
    return redacted, {kind: counts[kind] for kind in KINDS if kind in counts}
