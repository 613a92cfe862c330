import copy
import time

import pytest

from automations.pii import pii_find, pii_redact


def kinds(text):
    return [(kind, text[start:end]) for kind, start, end in pii_find(text)]


def test_emails_are_found():
    text = "Write to jane.doe+billing@example.co.uk or ops@corp.io."
    assert kinds(text) == [
        ("email", "jane.doe+billing@example.co.uk"),
        ("email", "ops@corp.io"),
    ]


@pytest.mark.parametrize(
    "phone",
    [
        "+44 20 7946 0958",
        "(555) 123-4567",
        "555-123-4567",
        "+1 (555) 123-4567",
        "+1-202-555-0143",
        "+49 (0)30 123456",
        "+33 1 23 45 67 89",
        "020 7946 0958",
        "07700 900123",
    ],
)
def test_phone_numbers_are_found(phone):
    assert kinds(f"Call me on {phone}, thanks") == [("phone", phone)]


@pytest.mark.parametrize(
    "text",
    [
        "Due 2024-01-15, paid 15.01.2024 and 01.02.2024, shipped 01/15/2024",
        "Logged at 2024-01-15T10:30:00Z",
        "Total $1,234,567.89 or EUR 12.345.678,90",
        "Order 12345678 for 1 234 567 890 units",
        "Version 1.2.3, build 20240115, 10:30, price 19.99",
    ],
)
def test_dates_amounts_and_ids_are_not_pii(text):
    assert pii_find(text) == []


@pytest.mark.parametrize("iban", ["GB82 WEST 1234 5698 7654 32", "DE89370400440532013000"])
def test_valid_ibans_are_found(iban):
    assert kinds(f"Pay to {iban} today") == [("iban", iban)]


def test_iban_with_a_wrong_checksum_is_not_flagged():
    assert pii_find("Pay to GB83 WEST 1234 5698 7654 32 today") == []
    assert pii_find("Pay to DE89370400440532013001") == []


def test_iban_stops_before_uppercase_words_that_follow_it():
    assert kinds("IBAN GB82 WEST 1234 5698 7654 32 AND NOTHING ELSE") == [
        ("iban", "GB82 WEST 1234 5698 7654 32")
    ]


@pytest.mark.parametrize("card", ["4111 1111 1111 1111", "4111-1111-1111-1111", "378282246310005"])
def test_luhn_valid_card_numbers_are_found(card):
    assert kinds(f"card {card} exp 12/27") == [("card", card)]


def test_card_numbers_failing_luhn_are_not_flagged():
    assert pii_find("ref 4111 1111 1111 1112") == []
    assert pii_find("tracking 1234567812345678") == []


def test_a_card_number_followed_by_other_digits_is_still_found():
    assert kinds("4111 1111 1111 1111 123") == [("card", "4111 1111 1111 1111")]


def test_us_social_security_numbers_are_found():
    assert kinds("SSN 123-45-6789 on file") == [("ssn", "123-45-6789")]


def test_redact_replaces_every_kind_with_its_placeholder():
    text = (
        "jane@example.com, +44 20 7946 0958, GB82 WEST 1234 5698 7654 32, "
        "4111 1111 1111 1111, 123-45-6789"
    )
    redacted, counts = pii_redact(text)
    assert redacted == "[EMAIL], [PHONE], [IBAN], [CARD], [SSN]"
    assert counts == {"email": 1, "phone": 1, "iban": 1, "card": 1, "ssn": 1}


def test_redact_walks_nested_structures_and_counts_per_kind():
    payload = {
        "subject": "Refund to DE89370400440532013000",
        "body": "From a@example.com, cc b@example.com",
        "thread": [{"from": "c@example.com", "phone": "(555) 123-4567"}, 42, None, True],
        "card": 4111111111111111,
    }
    original = copy.deepcopy(payload)
    redacted, counts = pii_redact(payload)
    assert redacted == {
        "subject": "Refund to [IBAN]",
        "body": "From [EMAIL], cc [EMAIL]",
        "thread": [{"from": "[EMAIL]", "phone": "[PHONE]"}, 42, None, True],
        "card": "[CARD]",
    }
    assert counts == {"email": 3, "phone": 1, "iban": 1, "card": 1}
    assert payload == original


def test_redact_without_pii_returns_an_equal_copy_and_no_counts():
    payload = {"body": "Where is my invoice?", "amount": 12.5}
    assert pii_redact(payload) == (payload, {})


@pytest.mark.parametrize(
    "chunk",
    [
        "a",
        "1",
        "1 ",
        "+1",
        "a@",
        "a.",
        "0-",
        "(1",
        "GB82 ",
        "x@y.com 4111 1111 1111 1111 +44 20 7946 0958 ",
    ],
)
def test_a_256_kb_payload_is_redacted_quickly(chunk):
    text = chunk * (262144 // len(chunk))
    started = time.perf_counter()
    pii_redact({"body": text})
    assert time.perf_counter() - started < 2.0
