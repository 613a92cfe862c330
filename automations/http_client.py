"""The HTTP client library the OpenAI SDK brings, for the adapters and the provider.

Recent SDK releases bring httpx2 (the httpx API under a new name) with its connection
layer httpcore2; older ones bring httpx and httpcore. The provider must hand the SDK
this very module's Response class. automations/outbound.py builds the transports.
"""

try:
    import httpcore2 as httpcore
    import httpx2 as httpx
except ImportError:  # pragma: no cover
    import httpcore
    import httpx

__all__ = ["httpcore", "httpx"]
