"""Per-site parameter overrides, edited under Settings in the Wagtail admin."""

from __future__ import annotations

import uuid
from typing import Any

from django.db import models
from django.utils.translation import gettext_lazy as _
from wagtail.contrib.settings.models import BaseSiteSetting, register_setting

from wagtail_vector_index import conf
from wagtail_vector_index.ai_settings_form import (
    AISettingsForm,
    AISettingsObjectList,
    ParameterOverridesPanel,
)
from wagtail_vector_index.parameters import clean_stored_overrides

# Where reading a site's overrides (and their cache) lives; kept importable
# from here as before.
from wagtail_vector_index.site_overrides import (  # noqa: F401
    CACHE_KEY,
    get_site_overrides,
)


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
    edit_handler = AISettingsObjectList([ParameterOverridesPanel()])

    class Meta:
        verbose_name = _("AI settings")
        verbose_name_plural = _("AI settings")
        permissions = [("use_ai_test_pages", _("Can use the AI test pages"))]

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


def new_revision() -> str:
    return uuid.uuid4().hex


class IndexState(models.Model):
    """What a vector index holds: model, dimensions, and which build answers.

    ``revision`` changes (to a new random value) on every change, so that
    processes holding vectors in memory know when to reload them.
    """

    index_name = models.CharField(max_length=255, unique=True)
    model_id = models.CharField(max_length=255)
    dimensions = models.PositiveIntegerField()
    active_build = models.PositiveIntegerField(default=0)
    revision = models.CharField(max_length=32, default=new_revision)
    chunk_count = models.PositiveIntegerField(default=0)
    object_count = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("vector index state")

    def __str__(self) -> str:
        return f"{self.index_name} ({self.model_id}, {self.dimensions} dimensions)"


class EmbeddingChunk(models.Model):
    """One chunk of an object's text and its vector (float32 bytes)."""

    index_name = models.CharField(max_length=255)
    build = models.PositiveIntegerField()
    content_type = models.ForeignKey(
        "contenttypes.ContentType", on_delete=models.CASCADE, related_name="+"
    )
    object_id = models.CharField(max_length=255)
    position = models.PositiveIntegerField()
    text = models.TextField()
    content_hash = models.CharField(max_length=64)
    vector = models.BinaryField()

    class Meta:
        verbose_name = _("embedding chunk")
        indexes = [
            models.Index(fields=["index_name", "build"], name="wvi_chunk_build"),
            models.Index(
                fields=["index_name", "build", "content_type", "object_id"],
                name="wvi_chunk_object",
            ),
        ]

    def __str__(self) -> str:
        where = f"{self.content_type_id}/{self.object_id}#{self.position}"
        return f"{self.index_name}: {where}"


class IndexUpdateLease(models.Model):
    """Who may update an index now: one row per index, kept between updates.

    An update takes the lease (``owner`` set to its own token) by inserting
    the row or by a conditional update of a free or expired one, refreshes
    ``expires_at`` as it goes and frees it when done; a process that dies
    holding it blocks the index only until ``expires_at`` (or, on the same
    host, until another process sees it is gone). ``last_build`` is the last
    build number handed out, so that no two updates ever write the same
    build. See ``wagtail_vector_index.index.lease``.
    """

    index_name = models.CharField(max_length=255, unique=True)
    #: The holder's random token; empty when the lease is free.
    owner = models.CharField(max_length=32, blank=True)
    #: ``host:pid`` of the holder, for messages and to notice a dead holder.
    holder = models.CharField(max_length=255, blank=True)
    acquired_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_build = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = _("vector index update lease")

    def __str__(self) -> str:
        return f"{self.index_name}: {self.holder or 'free'}"


class PendingIndexUpdate(models.Model):
    """An object to re-index (or remove) once the index's lease is free.

    Written by publish-time updates that find an update of the index running;
    whoever holds the lease applies these before letting it go.
    """

    index_name = models.CharField(max_length=255)
    content_type = models.ForeignKey(
        "contenttypes.ContentType", on_delete=models.CASCADE, related_name="+"
    )
    object_id = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("pending vector index update")
        indexes = [models.Index(fields=["index_name", "id"], name="wvi_pending")]

    def __str__(self) -> str:
        return f"{self.index_name}: {self.content_type_id}/{self.object_id}"
