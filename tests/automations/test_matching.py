from automations.matching import condition_matches

DOC = {"payload": {"body": "My lawyer will call", "tags": ["vip"], "amount": 5}, "segment": "smb"}


def test_regex_searches_the_text():
    assert condition_matches(DOC, "payload.body", "matches", "(?i)LAWYER|lawsuit")


def test_missing_field_never_matches():
    assert not condition_matches(DOC, "payload.subject", "contains", "x")


def test_contains_works_on_lists_and_in_on_scalars():
    assert condition_matches(DOC, "payload.tags", "contains", "vip")
    assert condition_matches(DOC, "segment", "in", ["smb", "enterprise"])
    assert not condition_matches(DOC, "payload.amount", "equals", "5")
