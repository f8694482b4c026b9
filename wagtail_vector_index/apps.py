from django.apps import AppConfig


class WagtailVectorIndexAppConfig(AppConfig):
    name = "wagtail_vector_index"
    label = "wagtail_vector_index"
    verbose_name = "Wagtail vector index"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers the system checks, the settings-change receivers and the
        # invalidation of cached site overrides; all light (LiteLLM is only
        # imported when a check needs it).
        from wagtail_vector_index import ai, checks, conf, site_overrides  # noqa: F401
        from wagtail_vector_index.index import signals

        signals.connect()
