"""wagtail-vector-index 0.10.0's documented calls, one release on.

Where the meaning is unchanged they work with a ``DeprecationWarning`` naming
the replacement; where it changed they fail with a message saying what
replaces them (docs/upgrading.md has the table).
"""

import pytest
from django.test import override_settings
from wagtail.models import Page

from tests.testapp.models import ArticlePage
from wagtail_vector_index import ai
from wagtail_vector_index.index import UpdateReport

pytestmark = pytest.mark.django_db

OFFLINE = "wagtail_vector_index.ai_utils.backends.echo"
SETTINGS = {
    "CHAT_BACKENDS": {
        "default": {"CLASS": f"{OFFLINE}.EchoChatBackend", "CONFIG": {}},
        "writer": {"CLASS": f"{OFFLINE}.EchoChatBackend", "CONFIG": {}},
    },
    "EMBEDDING_BACKENDS": {
        "default": {"CLASS": f"{OFFLINE}.HashingEmbeddingBackend", "CONFIG": {}}
    },
}


@pytest.fixture(autouse=True)
def offline():
    with override_settings(WAGTAIL_VECTOR_INDEX=SETTINGS):
        yield


@pytest.fixture
def articles():
    home = Page.get_first_root_node().add_child(
        instance=Page(title="Home", slug="upgrade-home")
    )
    for title, body in [
        ("Baking bread", "Flour, water, yeast and salt make bread in a hot oven."),
        ("Pruning roses", "Roses flower better when pruned in spring."),
    ]:
        home.add_child(instance=ArticlePage(title=title, body=f"<p>{body}</p>"))


@pytest.fixture
def chat_aliases(monkeypatch):
    """The aliases the index asks ``ai.get_chat_backend`` for."""
    asked = []
    get_chat_backend = ai.get_chat_backend

    def spy(alias="default", **kwargs):
        asked.append(alias)
        return get_chat_backend(alias, **kwargs)

    monkeypatch.setattr(ai, "get_chat_backend", spy)
    return asked


# -- unchanged meaning: deprecated, working ------------------------------------


def test_rebuild_index_is_update(articles):
    index = ArticlePage.vector_index
    with pytest.warns(
        DeprecationWarning,
        match=r"^VectorIndex\.rebuild_index\(\) is deprecated: call update\(\) "
        r"instead, or run manage\.py update_vector_indexes\.$",
    ):
        report = index.rebuild_index()
    assert isinstance(report, UpdateReport)
    assert report.objects == 2
    assert [page.title for page in index.search("bread oven", limit=1)] == [
        "Baking bread"
    ]


def test_query_with_the_query_keyword(articles, chat_aliases):
    ArticlePage.vector_index.update()
    with pytest.warns(
        DeprecationWarning,
        match=r"^query\(query=\.\.\.\) is deprecated: pass the question as the "
        r"first argument, query\(question\)\.$",
    ):
        result = ArticlePage.vector_index.query(
            query="How do I bake bread?", sources_limit=1
        )
    assert [page.title for page in result.sources] == ["Baking bread"]
    assert "How do I bake bread?" in result.answer
    assert chat_aliases == ["default"]


def test_query_with_chat_backend_alias_uses_that_alias(articles, chat_aliases):
    ArticlePage.vector_index.update()
    with pytest.warns(
        DeprecationWarning,
        match=r"^query\(chat_backend_alias=\.\.\.\) is deprecated: set the index's "
        r'chat alias instead \(vector_index_options = \{"chat_alias": \.\.\.\} on '
        r"the model, or chat_alias on a VectorIndex subclass\)\.$",
    ):
        result = ArticlePage.vector_index.query(
            "bread", sources_limit=1, chat_backend_alias="writer"
        )
    # Chosen as the alias, not passed to the provider as a parameter.
    assert chat_aliases == ["writer"]
    assert result.answer


def test_the_0_10_call_as_documented(articles, chat_aliases):
    ArticlePage.vector_index.update()
    with pytest.warns(DeprecationWarning) as warned:
        result = ArticlePage.vector_index.query(
            query="bread", sources_limit=1, chat_backend_alias="writer"
        )
    assert len(warned) == 2
    assert chat_aliases == ["writer"]
    # 0.10.0's QueryResponse.response was the answer's text; it is now the
    # backend's whole AIResponse, which still reads as the answer.
    assert str(result.response) == result.answer


async def test_aquery_takes_the_same_0_10_keywords(chat_aliases, monkeypatch):
    # The keywords only: no sources (searching would need the ORM in another
    # thread, so a transactional test; tests/test_vector_index.py covers it).
    index = ArticlePage.vector_index
    monkeypatch.setattr(index, "search_results", lambda question, limit, **scope: [])
    with pytest.warns(DeprecationWarning) as warned:
        result = await index.aquery(
            query="bread", sources_limit=1, chat_backend_alias="writer"
        )
    assert [str(w.message).split(" is deprecated")[0] for w in warned] == [
        "aquery(query=...)",
        "aquery(chat_backend_alias=...)",
    ]
    assert "bread" in result.answer
    assert chat_aliases == ["writer"]


def test_question_given_twice_or_not_at_all():
    index = ArticlePage.vector_index
    with pytest.raises(TypeError, match=r"query\(\) got the question twice"):
        index.query("bread", query="bread")
    with pytest.raises(
        TypeError, match=r"^query\(\) missing 1 required argument: 'question'$"
    ):
        index.query(sources_limit=1)


def test_old_import_path_of_the_mixin_and_fields():
    from wagtail_vector_index import index

    with pytest.warns(
        DeprecationWarning,
        match=r"^Importing VectorIndexedMixin from wagtail_vector_index\.storage\."
        r"models is deprecated: use `from wagtail_vector_index\.index import "
        r"VectorIndexedMixin`\.$",
    ):
        from wagtail_vector_index.storage.models import VectorIndexedMixin
    with pytest.warns(DeprecationWarning, match="Importing EmbeddingField"):
        from wagtail_vector_index.storage.models import EmbeddingField
    assert VectorIndexedMixin is index.VectorIndexedMixin
    assert EmbeddingField is index.EmbeddingField


# -- changed meaning: a clear failure ----------------------------------------


def test_0_10_index_building_blocks_fail_with_their_replacement():
    with pytest.raises(
        ImportError,
        match=r"^wagtail_vector_index\.storage\.models\.DefaultStorageVectorIndex "
        r"was removed after wagtail-vector-index 0\.10\.0: subclass "
        r"wagtail_vector_index\.index\.VectorIndex \(get_querysets\(\), "
        r"get_embedding_fields\(\)\) and register it with @register_index, or set "
        r"vector_index_options on a VectorIndexedMixin model \(see "
        r"docs/upgrading\.md\)\.$",
    ):
        from wagtail_vector_index.storage.models import (  # noqa: F401
            DefaultStorageVectorIndex,
        )
    with pytest.raises(ImportError, match="EmbeddableFieldsVectorIndexMixin was"):
        from wagtail_vector_index.storage.models import (  # noqa: F401
            EmbeddableFieldsVectorIndexMixin,
        )
    with pytest.raises(ImportError, match="0.10.0's embeddings are not reused"):
        from wagtail_vector_index.storage.models import Embedding  # noqa: F401


def test_0_10_registry_fails_with_its_replacement():
    with pytest.raises(
        ImportError,
        match=r"^wagtail_vector_index\.storage\.registry was removed after "
        r"wagtail-vector-index 0\.10\.0: register custom indexes with the "
        r"wagtail_vector_index\.index\.register_index decorator \(see "
        r"docs/upgrading\.md\)\.$",
    ):
        from wagtail_vector_index.storage import registry  # noqa: F401


def test_other_names_are_plain_attribute_errors():
    import wagtail_vector_index.storage as storage
    import wagtail_vector_index.storage.models as legacy_models

    assert not hasattr(storage, "anything_else")
    assert not hasattr(legacy_models, "anything_else")
