"""Common-ID: the service payment providers call to verify and reuse identities."""

__version__ = "0.1.0"
