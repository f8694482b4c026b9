"""AI chat and embedding backends, configured in Django settings, for Wagtail."""

__version__ = "0.1.0"
