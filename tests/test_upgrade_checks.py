"""The system checks that greet a site upgrading from wagtail-vector-index
0.10.0: its settings and model attributes that no longer apply (W005-W009)
and ``embedding_fields`` names that do not exist (E017).

Like tests/test_checks.py, each test compares exact ``Error``/``Warning``
objects: the ids, messages and hints are public.
"""

import pytest
from django.apps import apps
from django.core.checks import Error, Warning
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.db import models
from django.test import override_settings
from django.test.utils import isolate_apps

from tests.testapp.models import Book
from wagtail_vector_index.checks import check_0_10_settings, check_indexed_models
from wagtail_vector_index.index import EmbeddingField, VectorIndexedMixin

PGVECTOR_HINT = (
    'add "wagtail_vector_index.contrib.pgvector" to INSTALLED_APPS and set '
    'WAGTAIL_VECTOR_INDEX["STORAGE"] = '
    '"wagtail_vector_index.index.storage.pgvector.PgvectorStorage".'
)


QDRANT_FORM = (
    '{"CLASS": "wagtail_vector_index.index.storage.qdrant.QdrantStorage", '
    '"CONFIG": {"URL": "...", "API_KEY": "..."}}'
)
OTHER_HINT = (
    "Remove it. Vectors are stored in the application database by "
    'default; on PostgreSQL, add "wagtail_vector_index.contrib.pgvector" '
    'to INSTALLED_APPS and set WAGTAIL_VECTOR_INDEX["STORAGE"] = '
    '"wagtail_vector_index.index.storage.pgvector.PgvectorStorage"; for Qdrant, '
    f'set WAGTAIL_VECTOR_INDEX["STORAGE"] = {QDRANT_FORM}. Weaviate is no '
    "longer supported."
)


def test_the_test_project_passes():
    assert check_0_10_settings() == []
    assert check_indexed_models() == []


# -- settings (W005-W007) -----------------------------------------------------


@pytest.mark.parametrize(
    ("providers", "hint"),
    [
        (
            {
                "default": {
                    "STORAGE_PROVIDER": "wagtail_vector_index.storage.pgvector."
                    "PgvectorStorageProvider"
                }
            },
            f"Remove it. For pgvector, {PGVECTOR_HINT}",
        ),
        (
            {
                "default": {
                    "STORAGE_PROVIDER": "wagtail_vector_index.storage.numpy."
                    "NumpyStorageProvider"
                }
            },
            "Remove it: vectors are stored in the application database and "
            "searched with NumPy by default.",
        ),
        (
            {
                "default": {
                    "STORAGE_PROVIDER": "wagtail_vector_index.storage.qdrant."
                    "QdrantStorageProvider",
                    "HOST": "https://qdrant.example.com",
                    "API_KEY": "old-qdrant-secret-key",
                }
            },
            'Remove it. For Qdrant, run pip install "wagtail-vector-index[qdrant]" '
            'and set WAGTAIL_VECTOR_INDEX["STORAGE"] = '
            f"{QDRANT_FORM} (the server's URL and API key; see docs/qdrant.md).",
        ),
        (
            {"default": {"BACKEND": "wagtail_vector_index.storage.weaviate.X"}},
            OTHER_HINT,
        ),
        ("not even a dict", OTHER_HINT),
    ],
    ids=["pgvector", "numpy", "qdrant", "weaviate", "malformed"],
)
def test_w005_old_storage_setting(providers, hint):
    with override_settings(WAGTAIL_VECTOR_INDEX_STORAGE_PROVIDERS=providers):
        assert check_0_10_settings() == [
            Warning(
                "WAGTAIL_VECTOR_INDEX_STORAGE_PROVIDERS is a setting of "
                "wagtail-vector-index 0.10.0 and is no longer read.",
                hint=hint,
                id="wagtail_vector_index.W005",
            )
        ]
        # The old provider's API key is never repeated.
        assert "old-qdrant-secret-key" not in str(check_0_10_settings())


@pytest.fixture
def old_pgvector_app(monkeypatch):
    """0.10.0's app in INSTALLED_APPS, as far as the checks can tell (the app
    itself is installed for real by tests/test_upgrade_migrations.py: reloading
    the app registry here would mount Wagtail's API routers twice)."""
    installed = apps.is_installed
    monkeypatch.setattr(
        apps,
        "is_installed",
        lambda name: name == "wagtail_vector_index.storage.pgvector" or installed(name),
    )


def test_w006_old_pgvector_app(old_pgvector_app):
    assert check_0_10_settings() == [
        Warning(
            '"wagtail_vector_index.storage.pgvector" in INSTALLED_APPS is the '
            "pgvector app of wagtail-vector-index 0.10.0: it stores nothing any "
            "more (its migrations drop its old table).",
            hint='Replace it with "wagtail_vector_index.contrib.pgvector" and set '
            'WAGTAIL_VECTOR_INDEX["STORAGE"] = '
            '"wagtail_vector_index.index.storage.pgvector.PgvectorStorage"; manage.py '
            "migrate drops the old table either way.",
            id="wagtail_vector_index.W006",
        )
    ]


@override_settings(WAGTAIL_VECTOR_INDEX_QUERY_PROMPT="You are helpful.")
def test_w007_old_prompt_setting():
    assert check_0_10_settings() == [
        Warning(
            "WAGTAIL_VECTOR_INDEX_QUERY_PROMPT is a setting of wagtail-vector-index "
            "0.10.0 and is no longer read.",
            hint='Set the prompt per index: vector_index_options = {"prompt": '
            '"... {context}"} on the model (or prompt on a VectorIndex subclass), '
            'where "{context}" marks the place of the matching content.',
            id="wagtail_vector_index.W007",
        )
    ]


def test_old_settings_are_warnings_so_migrate_still_runs(settings, old_pgvector_app):
    settings.WAGTAIL_VECTOR_INDEX_STORAGE_PROVIDERS = {
        "default": {"STORAGE_PROVIDER": "wagtail_vector_index.storage.numpy.X"}
    }
    settings.WAGTAIL_VECTOR_INDEX_QUERY_PROMPT = "You are helpful."
    call_command("check")  # Warnings only: no SystemCheckError.


# -- models using VectorIndexedMixin (E017, W008, W009) ----------------------


@pytest.fixture
def check_isolated():
    """Checks the models defined in the test (in a registry of their own)."""
    with isolate_apps("tests.testapp") as apps:
        yield lambda: check_indexed_models(app_configs=[apps.get_app_config("testapp")])


def test_e017_unknown_embedding_field_names(check_isolated):
    class Note(VectorIndexedMixin, models.Model):  # noqa: DJ008
        title = models.CharField(max_length=100)
        body = models.TextField()

        embedding_fields = [
            EmbeddingField("title", important=True),
            EmbeddingField("bdoy"),
            EmbeddingField("summary"),  # A method: fine.
            EmbeddingField("headline"),  # A property: fine.
            EmbeddingField("zzz"),
        ]

        class Meta:
            app_label = "testapp"

        def summary(self):
            return self.body[:100]

        @property
        def headline(self):
            return self.title.upper()

    assert check_isolated() == [
        Error(
            'Note.embedding_fields names "bdoy", which is not a field, '
            "property or method of Note.",
            hint='Did you mean "body"? As it is, the index embeds no text for it.',
            obj=Note,
            id="wagtail_vector_index.E017",
        ),
        Error(
            'Note.embedding_fields names "zzz", which is not a field, '
            "property or method of Note.",
            hint="As it is, the index embeds no text for it.",
            obj=Note,
            id="wagtail_vector_index.E017",
        ),
    ]


def test_a_field_with_its_own_get_text_is_not_checked(check_isolated):
    class Computed(EmbeddingField):
        def get_text(self, obj):
            return "computed"

    class Note(VectorIndexedMixin, models.Model):  # noqa: DJ008
        embedding_fields = [Computed("anything")]

        class Meta:
            app_label = "testapp"

    assert check_isolated() == []


def test_w008_w009_old_attributes(check_isolated):
    class OldIndex:
        pass

    class Note(VectorIndexedMixin, models.Model):  # noqa: DJ008
        body = models.TextField()

        embedding_fields = [EmbeddingField("body")]
        vector_index_class = OldIndex
        embedding_backend_alias = "openai"
        vector_index_options = {"chunk_overlap": 8}

        class Meta:
            app_label = "testapp"

    assert check_isolated() == [
        Warning(
            "Note.vector_index_class is an attribute of wagtail-vector-index "
            "0.10.0 and is ignored.",
            hint="Remove it. Configure the model's index with "
            'vector_index_options = {...} ("embedding_alias", "chat_alias", '
            '"max_chunk_tokens", "chunk_overlap", "prompt", "search_mode", '
            '"hybrid_weights", "rrf_k", "include_restricted"), or subclass '
            "wagtail_vector_index.index.VectorIndex and register it with "
            "@register_index (see docs/upgrading.md).",
            obj=Note,
            id="wagtail_vector_index.W008",
        ),
        Warning(
            "Note.embedding_backend_alias is an attribute of "
            "wagtail-vector-index 0.10.0 and is ignored: the index uses the "
            '"default" embedding backend.',
            hint='Remove it and add "embedding_alias": "openai" to '
            "Note.vector_index_options.",
            obj=Note,
            id="wagtail_vector_index.W009",
        ),
    ]


def test_models_without_the_mixin_are_not_checked(check_isolated):
    class Plain(models.Model):  # noqa: DJ008
        embedding_fields = [EmbeddingField("nothing")]
        vector_index_class = object

        class Meta:
            app_label = "testapp"

    assert check_isolated() == []


def test_e017_fails_manage_py_check(monkeypatch):
    monkeypatch.setattr(
        Book, "embedding_fields", [EmbeddingField("title"), EmbeddingField("blrub")]
    )
    with pytest.raises(SystemCheckError) as raised:
        call_command("check")
    message = str(raised.value)
    assert "testapp.Book: (wagtail_vector_index.E017)" in message
    assert 'Did you mean "blurb"?' in message
