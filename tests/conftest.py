import pytest

from tests.factories import UserFactory


@pytest.fixture
def reviewer(db):
    return UserFactory(username="ravi", roles=["reviewer"])


@pytest.fixture
def owner(db):
    return UserFactory(username="olivia", roles=["owner"])


@pytest.fixture
def compliance(db):
    return UserFactory(username="carla", roles=["compliance"])


@pytest.fixture
def admin_user(db):
    return UserFactory(username="ada", roles=["admin"], is_staff=True)
