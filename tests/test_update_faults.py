"""``update_vector_indexes`` under every embedding fault of the loopback
provider: it exits with an error, stores nothing, and the index as it was
keeps answering (on whichever storage the run uses)."""

import numpy as np
import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings
from wagtail.models import Page

from tests.providers import FAILURE_MODES
from tests.storage import chunk_model, stored_vectors
from tests.testapp.models import ArticlePage
from tests.utils import embedding_backend_settings

pytestmark = pytest.mark.django_db

DIMENSIONS = 16
KEY = "plainUpdateSecret2468"  # Not shaped like sk-...

#: Every mode fails an embedding request, each in its own way.
MODES = sorted(FAILURE_MODES)


@pytest.fixture
def http_index(provider, monkeypatch):
    """Articles indexed over HTTP, then one more article to embed."""
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    provider.state.dimensions = DIMENSIONS
    provider.state.slow_seconds = 1.5
    backends = {
        "EMBEDDING_BACKENDS": {
            "default": embedding_backend_settings(
                provider,
                EMBEDDING_OUTPUT_DIMENSIONS=DIMENSIONS,
                DEFAULT_PARAMETERS={"timeout": 0.5},
            )
        }
    }
    if getattr(settings, "WVI_TEST_STORAGE", None):
        backends["STORAGE"] = settings.WVI_TEST_STORAGE
    with override_settings(WAGTAIL_VECTOR_INDEX=backends):
        home = Page.get_first_root_node().add_child(
            instance=Page(title="Home", slug="faults-home")
        )
        for title in ("Growing tomatoes", "Pruning roses", "Baking bread"):
            home.add_child(
                instance=ArticlePage(title=title, body=f"<p>All about {title}.</p>")
            )
        call_command("update_vector_indexes", "--noinput")
        home.add_child(
            instance=ArticlePage(title="Watching stars", body="<p>At night.</p>")
        )
        yield provider


@pytest.mark.parametrize("mode", MODES)
def test_a_failed_update_stores_nothing_and_the_index_answers(http_index, mode, capsys):
    index = ArticlePage.vector_index
    before = index.storage.state()
    rows_before = chunk_model().objects.count()
    http_index.fail_always(mode)

    with pytest.raises(CommandError) as caught:
        call_command("update_vector_indexes", "--noinput")

    message = str(caught.value)
    assert "keeps answering" in message
    assert KEY not in message + capsys.readouterr().out
    assert "{" not in message and "<" not in message
    after = index.storage.state()
    assert (after.active_build, after.revision) == (
        before.active_build,
        before.revision,
    )
    # Nothing of the failed run is left, and every stored vector is sound.
    assert chunk_model().objects.count() == rows_before
    for _object_id, vector in stored_vectors(index):
        vector = np.asarray(vector)
        assert vector.shape == (DIMENSIONS,) and np.isfinite(vector).all()

    # The old index still answers (the loopback's vectors are hashes, not
    # meanings: what counts is which pages it holds), and the next healthy
    # run completes.
    http_index.fail_always(None)
    assert {page.title for page in index.search("tomatoes")} == {
        "Growing tomatoes",
        "Pruning roses",
        "Baking bread",
    }
    call_command("update_vector_indexes", "--noinput")
    assert "Watching stars" in {page.title for page in index.search("stars")}
