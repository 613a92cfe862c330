import pytest


@pytest.fixture(params=["httpx", "curl"])
def http_transport(request, settings):
    """Runs the test on each outbound transport: httpx's own (the default) and libcurl's."""
    settings.HANDRAIL_HTTP_TRANSPORT = request.param
    return request.param
