# The usage ledger (AIUsageRecord, AIUsageTotal) and the sites' monthly budgets.

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("wagtail_vector_index", "0002_replace_0_10_tables"),
        ("wagtailcore", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="aisettings",
            name="monthly_budget_tokens",
            field=models.PositiveBigIntegerField(
                blank=True,
                help_text="For models whose cost is unknown. Empty: the default from the project's settings.",
                null=True,
                verbose_name="monthly budget (tokens)",
            ),
        ),
        migrations.AddField(
            model_name="aisettings",
            name="monthly_budget_usd",
            field=models.DecimalField(
                blank=True,
                decimal_places=2,
                help_text="Empty: the default budget from the project's settings.",
                max_digits=12,
                null=True,
                verbose_name="monthly budget (USD)",
            ),
        ),
        migrations.CreateModel(
            name="AIUsageTotal",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True,
                        primary_key=True,
                        serialize=False,
                        verbose_name="ID",
                    ),
                ),
                (
                    "period",
                    models.CharField(
                        choices=[("month", "Month"), ("day", "Day")], max_length=8
                    ),
                ),
                ("start", models.DateField()),
                ("scope", models.CharField(max_length=64)),
                ("calls", models.PositiveIntegerField(default=0)),
                ("errors", models.PositiveIntegerField(default=0)),
                ("tokens", models.PositiveBigIntegerField(default=0)),
                (
                    "cost",
                    models.DecimalField(decimal_places=8, default=0, max_digits=16),
                ),
            ],
            options={
                "verbose_name": "AI usage total",
                "constraints": [
                    models.UniqueConstraint(
                        fields=("period", "start", "scope"),
                        name="wvi_usage_total_unique",
                    )
                ],
            },
        ),
        migrations.CreateModel(
            name="AIUsageRecord",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True,
                        primary_key=True,
                        serialize=False,
                        verbose_name="ID",
                    ),
                ),
                (
                    "created_at",
                    models.DateTimeField(
                        default=django.utils.timezone.now, verbose_name="when"
                    ),
                ),
                (
                    "kind",
                    models.CharField(
                        choices=[("chat", "Chat"), ("embedding", "Embedding")],
                        max_length=16,
                        verbose_name="kind",
                    ),
                ),
                ("alias", models.CharField(max_length=255, verbose_name="alias")),
                ("model_id", models.CharField(max_length=255, verbose_name="model")),
                (
                    "feature",
                    models.CharField(
                        blank=True, max_length=100, verbose_name="feature"
                    ),
                ),
                (
                    "prompt_tokens",
                    models.PositiveIntegerField(
                        default=0, verbose_name="prompt tokens"
                    ),
                ),
                (
                    "completion_tokens",
                    models.PositiveIntegerField(
                        default=0, verbose_name="completion tokens"
                    ),
                ),
                (
                    "cost",
                    models.DecimalField(
                        blank=True,
                        decimal_places=8,
                        max_digits=14,
                        null=True,
                        verbose_name="cost (USD)",
                    ),
                ),
                (
                    "latency_ms",
                    models.PositiveIntegerField(
                        blank=True, null=True, verbose_name="latency (ms)"
                    ),
                ),
                (
                    "time_to_first_token_ms",
                    models.PositiveIntegerField(
                        blank=True, null=True, verbose_name="time to first token (ms)"
                    ),
                ),
                (
                    "streamed",
                    models.BooleanField(default=False, verbose_name="streamed"),
                ),
                (
                    "stopped_early",
                    models.BooleanField(default=False, verbose_name="stopped early"),
                ),
                (
                    "input_count",
                    models.PositiveIntegerField(default=0, verbose_name="inputs"),
                ),
                (
                    "attempt",
                    models.PositiveSmallIntegerField(default=1, verbose_name="attempt"),
                ),
                (
                    "outcome",
                    models.CharField(
                        default="success", max_length=100, verbose_name="outcome"
                    ),
                ),
                ("error_message", models.TextField(blank=True, verbose_name="error")),
                ("prompt", models.TextField(blank=True, verbose_name="prompt")),
                ("response", models.TextField(blank=True, verbose_name="response")),
                (
                    "site",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="wagtailcore.site",
                        verbose_name="site",
                    ),
                ),
                (
                    "user",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                        verbose_name="user",
                    ),
                ),
            ],
            options={
                "verbose_name": "AI usage record",
                "verbose_name_plural": "AI usage records",
                "permissions": [
                    ("view_ai_usage_report", "Can view the AI usage report")
                ],
                "indexes": [
                    models.Index(fields=["created_at"], name="wvi_usage_created"),
                    models.Index(fields=["site", "created_at"], name="wvi_usage_site"),
                ],
            },
        ),
    ]
