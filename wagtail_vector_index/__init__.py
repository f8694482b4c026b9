"""AI chat and embedding backends, configured in Django settings, for Wagtail."""

__version__ = "1.0.0a1"
