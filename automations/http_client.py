"""The HTTP client library the OpenAI SDK brings, for the adapters and the provider.

Recent SDK releases bring httpx2 (the httpx API under a new name); older ones bring
httpx. The provider must hand the SDK this very module's Response class.
"""

try:
    import httpx2 as httpx
except ImportError:  # pragma: no cover
    import httpx

__all__ = ["httpx"]
