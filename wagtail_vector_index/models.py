"""Per-site parameter overrides, edited under Settings in the Wagtail admin."""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from wagtail.admin.panels import FieldPanel, MultiFieldPanel
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
    #: This site's spending limits per calendar month (UTC); empty: the
    #: default from ``WAGTAIL_VECTOR_INDEX["USAGE"]``.
    monthly_budget_usd = models.DecimalField(
        _("monthly budget (USD)"),
        max_digits=12,
        decimal_places=2,
        null=True,
        blank=True,
        help_text=_("Empty: the default budget from the project's settings."),
    )
    monthly_budget_tokens = models.PositiveBigIntegerField(
        _("monthly budget (tokens)"),
        null=True,
        blank=True,
        help_text=_(
            "For models whose cost is unknown. Empty: the default from the "
            "project's settings."
        ),
    )

    #: This site's editor prompts (``wagtail_vector_index.panels``), by name:
    #: ``{name: {"text": ..., "alias": ...}}``. A built-in prompt stored
    #: here replaces its translatable default for this site.
    editor_prompts = models.JSONField(
        _("editor prompts"), default=dict, blank=True
    )

    base_form_class = AISettingsForm
    edit_handler = AISettingsObjectList(
        [
            MultiFieldPanel(
                [
                    FieldPanel("monthly_budget_usd"),
                    FieldPanel("monthly_budget_tokens"),
                ],
                heading=_("Monthly budget"),
                help_text=_(
                    "Calls for this site stop when this month's spending (UTC) "
                    "reaches a limit."
                ),
            ),
            ParameterOverridesPanel(),
        ]
    )

    class Meta:
        verbose_name = _("AI settings")
        verbose_name_plural = _("AI settings")
        permissions = [
            ("use_ai_test_pages", _("Can use the AI test pages")),
            ("use_ai_in_editor", _("Can use AI suggestions in the editor")),
        ]

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
    #: How the active build's texts were cut into chunks (the index's
    #: ``chunking_signature()``): another one needs a complete new build.
    #: Empty for builds made before it was recorded.
    chunking = models.CharField(max_length=64, blank=True, default="")
    #: The highest ``IndexChange`` id pruned away for this index: a process
    #: whose copy is older has lost the journal and reloads the whole index.
    journal_floor = models.PositiveBigIntegerField(default=0)
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
    #: What scoped searches filter on: the object's tree path (pages; ``""``
    #: otherwise) and its locale's id (translatable objects), see
    #: ``wagtail_vector_index.index.storage.types.Where``.
    path = models.CharField(max_length=255, blank=True, default="")
    locale_id = models.IntegerField(null=True, blank=True)

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


class IndexChange(models.Model):
    """One object whose chunks changed in an index's build: the journal that
    lets the default storage's processes apply changes to the vectors they
    hold instead of reloading them all.

    Written by ``DatabaseStorage`` inside the transaction that replaces the
    object's rows, one row per object per change; ``parent`` is the index's
    revision the change was made on, so that a process can tell that the
    journal it reads follows on from its copy. Pruned to the newest entries
    per index (``IndexState.journal_floor`` records how far); cleared when a
    new build is activated.
    """

    index_name = models.CharField(max_length=255)
    build = models.PositiveIntegerField()
    content_type = models.ForeignKey(
        "contenttypes.ContentType", on_delete=models.CASCADE, related_name="+"
    )
    object_id = models.CharField(max_length=255)
    #: The index's revision before the change.
    parent = models.CharField(max_length=32)

    class Meta:
        verbose_name = _("vector index change")
        indexes = [models.Index(fields=["index_name", "id"], name="wvi_change")]

    def __str__(self) -> str:
        return f"{self.index_name}: {self.content_type_id}/{self.object_id}"


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


class AIUsageRecord(models.Model):
    """One provider call (one attempt) made through the package.

    Written by :mod:`wagtail_vector_index.usage` when the call ends (a stream:
    when it ends, is stopped or fails). Prompts and answers are kept only
    when ``WAGTAIL_VECTOR_INDEX["USAGE"]["STORE_PROMPTS"]`` asks for it;
    credentials never.
    """

    class Kind(models.TextChoices):
        CHAT = "chat", _("Chat")
        EMBEDDING = "embedding", _("Embedding")

    #: ``outcome`` of a call that succeeded; otherwise the exception's class.
    SUCCESS = "success"

    created_at = models.DateTimeField(_("when"), default=timezone.now)
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    alias = models.CharField(_("alias"), max_length=255)
    model_id = models.CharField(_("model"), max_length=255)
    site = models.ForeignKey(
        "wagtailcore.Site",
        verbose_name=_("site"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    #: Who in the code made the call: "chat test page", "index update", ...
    feature = models.CharField(_("feature"), max_length=100, blank=True)
    prompt_tokens = models.PositiveIntegerField(_("prompt tokens"), default=0)
    completion_tokens = models.PositiveIntegerField(_("completion tokens"), default=0)
    #: USD; ``None`` where LiteLLM does not know the model's price.
    cost = models.DecimalField(
        _("cost (USD)"), max_digits=14, decimal_places=8, null=True, blank=True
    )
    latency_ms = models.PositiveIntegerField(_("latency (ms)"), null=True, blank=True)
    time_to_first_token_ms = models.PositiveIntegerField(
        _("time to first token (ms)"), null=True, blank=True
    )
    streamed = models.BooleanField(_("streamed"), default=False)
    stopped_early = models.BooleanField(_("stopped early"), default=False)
    #: Inputs embedded (embeddings) or messages sent (chat).
    input_count = models.PositiveIntegerField(_("inputs"), default=0)
    #: 1 for the first attempt; retries and fallbacks count up.
    attempt = models.PositiveSmallIntegerField(_("attempt"), default=1)
    outcome = models.CharField(_("outcome"), max_length=100, default=SUCCESS)
    #: The error as an editor may read it (redacted); empty on success.
    error_message = models.TextField(_("error"), blank=True)
    prompt = models.TextField(_("prompt"), blank=True)
    response = models.TextField(_("response"), blank=True)

    class Meta:
        verbose_name = _("AI usage record")
        verbose_name_plural = _("AI usage records")
        permissions = [("view_ai_usage_report", _("Can view the AI usage report"))]
        indexes = [
            models.Index(fields=["created_at"], name="wvi_usage_created"),
            models.Index(fields=["site", "created_at"], name="wvi_usage_site"),
        ]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.kind} {self.alias}"

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def succeeded(self) -> bool:
        return self.outcome == self.SUCCESS


class AIUsageTotal(models.Model):
    """Running totals of :class:`AIUsageRecord` per period, kept up to date as
    rows are written, so that budget checks never scan the ledger.

    One row per (period, start, scope). ``scope`` is ``"site:<id>"`` (the
    monthly totals behind the site budgets), ``"site:none"`` (calls made
    without a site) or ``"user:<id>"`` (the daily totals behind the per-user
    budgets of the test pages).
    """

    class Period(models.TextChoices):
        MONTH = "month", _("Month")
        DAY = "day", _("Day")

    period = models.CharField(max_length=8, choices=Period.choices)
    #: The first day of the month, or the day (UTC).
    start = models.DateField()
    scope = models.CharField(max_length=64)
    calls = models.PositiveIntegerField(default=0)
    errors = models.PositiveIntegerField(default=0)
    tokens = models.PositiveBigIntegerField(default=0)
    cost = models.DecimalField(max_digits=16, decimal_places=8, default=0)
    #: Set once the budget alert (``ALERT_THRESHOLD``) went out for this
    #: period, by a conditional update, so that one process sends it.
    usd_alert_sent = models.BooleanField(default=False)
    tokens_alert_sent = models.BooleanField(default=False)

    class Meta:
        verbose_name = _("AI usage total")
        constraints = [
            models.UniqueConstraint(
                fields=["period", "start", "scope"], name="wvi_usage_total_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.period} {self.start} {self.scope}"


class AIBudgetReservation(models.Model):
    """What one call in flight under a budget is expected to spend.

    Inserted before the call starts (on a connection of its own, so that
    the caller's transaction can neither undo it nor hold its lock),
    deleted when the call's spending is added to its ``AIUsageTotal``.
    Deleting by primary key cannot go below zero or count twice, and a
    reservation whose call never ended (a process killed, a forked child
    ending with ``os._exit``) stops counting at ``expires_at``.
    """

    total = models.ForeignKey(
        AIUsageTotal, on_delete=models.CASCADE, related_name="reservations"
    )
    tokens = models.BigIntegerField(default=0)
    cost = models.DecimalField(max_digits=16, decimal_places=8, default=0)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()

    class Meta:
        verbose_name = _("AI budget reservation")
        indexes = [
            models.Index(fields=["total", "expires_at"], name="wvi_reservation_live")
        ]

    def __str__(self) -> str:
        return f"{self.total}: {self.tokens} tokens, {self.cost} USD"


class EmbeddingCacheEntry(models.Model):
    """One vector in the embedding cache, shared by every index and by
    ``backend.with_cache()`` callers: the same text embedded with the same
    model and dimensions is never sent to the provider twice.

    Written and read by :mod:`wagtail_vector_index.embedding_cache` (through
    the app registry); bounded by ``EMBEDDING_CACHE["MAX_ENTRIES"]``, the
    least recently used going first.
    """

    model_id = models.CharField(_("model"), max_length=255)
    dimensions = models.PositiveIntegerField(_("dimensions"))
    #: SHA-256 of the text (hex), as chunks' ``content_hash``.
    content_hash = models.CharField(_("content hash"), max_length=64)
    #: ``dimensions`` float32 values, little-endian.
    vector = models.BinaryField(_("vector"))
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    #: Refreshed by lookups (at most every few minutes per entry): what
    #: eviction orders by.
    last_used_at = models.DateTimeField(_("last used"), default=timezone.now)

    class Meta:
        verbose_name = _("embedding cache entry")
        verbose_name_plural = _("embedding cache entries")
        constraints = [
            # Its index serves the lookups (model, dimensions, hash IN ...)
            # and clearing one model's entries.
            models.UniqueConstraint(
                fields=["model_id", "dimensions", "content_hash"],
                name="wvi_embedding_cache_key",
            )
        ]
        indexes = [
            models.Index(fields=["last_used_at", "id"], name="wvi_embedding_cache_lru")
        ]

    def __str__(self) -> str:
        return f"{self.model_id} ({self.dimensions}): {self.content_hash[:12]}"
