"""Per-site parameter overrides, edited under Settings in the Wagtail admin."""

from __future__ import annotations

from typing import Any

from django.core.cache import cache
from django.db import models
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from wagtail.admin.panels import ObjectList
from wagtail.contrib.settings.models import BaseSiteSetting, register_setting

from wagtail_vector_index import conf
from wagtail_vector_index.forms import AISettingsForm, ParameterOverridesPanel
from wagtail_vector_index.parameters import clean_stored_overrides

#: Site overrides are cached in Django's cache for at most this many seconds.
#: Saving the setting clears the entry; the timeout bounds how long other
#: processes with a per-process cache (the default LocMemCache) may lag.
CACHE_TIMEOUT = 60
CACHE_KEY = "wagtail_vector_index:site-overrides:{}"


@register_setting(icon="cogs", name="ai-settings")
class AISettings(BaseSiteSetting):
    """Parameter overrides for one site, for all backends of a kind or per alias.

    Stored as ``{scope: {parameter: value}}`` where the scope is ``"*"`` (all
    backends of the kind) or an alias. Only allow-listed parameters are kept:
    :meth:`save` drops anything else, whatever reached the instance.
    """

    chat_overrides = models.JSONField(default=dict, blank=True)
    embedding_overrides = models.JSONField(default=dict, blank=True)

    base_form_class = AISettingsForm
    edit_handler = ObjectList([ParameterOverridesPanel()])

    class Meta:
        verbose_name = "AI settings"
        verbose_name_plural = "AI settings"
        permissions = [("use_ai_test_pages", "Can use the AI test pages")]

    def __str__(self) -> str:
        return f"AI settings for {self.site}"

    def overrides(self, kind: str) -> dict[str, dict[str, Any]]:
        """The stored overrides of ``kind`` (``"chat"`` or ``"embedding"``)."""
        stored = self.chat_overrides if kind == conf.CHAT else self.embedding_overrides
        return clean_stored_overrides(kind, stored)

    def set_overrides(self, kind: str, scope: str, values: dict[str, Any]) -> None:
        """Replace the overrides of one scope (validated on :meth:`save`)."""
        field = "chat_overrides" if kind == conf.CHAT else "embedding_overrides"
        stored = dict(getattr(self, field) or {})
        if values:
            stored[scope] = values
        else:
            stored.pop(scope, None)
        setattr(self, field, stored)

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.chat_overrides = clean_stored_overrides(conf.CHAT, self.chat_overrides)
        self.embedding_overrides = clean_stored_overrides(
            conf.EMBEDDING, self.embedding_overrides
        )
        super().save(*args, **kwargs)


def get_site_overrides(site_id: int) -> dict[str, dict[str, dict[str, Any]]]:
    """``{"chat": {scope: {...}}, "embedding": {...}}`` for a site, cached."""
    key = CACHE_KEY.format(site_id)
    overrides = cache.get(key)
    if overrides is None:
        instance = AISettings.objects.filter(site_id=site_id).first()
        overrides = {
            conf.CHAT: instance.overrides(conf.CHAT) if instance else {},
            conf.EMBEDDING: instance.overrides(conf.EMBEDDING) if instance else {},
        }
        cache.set(key, overrides, CACHE_TIMEOUT)
    return overrides


@receiver(post_save, sender=AISettings)
@receiver(post_delete, sender=AISettings)
def _forget_site_overrides(sender: Any, instance: AISettings, **kwargs: Any) -> None:
    cache.delete(CACHE_KEY.format(instance.site_id))
