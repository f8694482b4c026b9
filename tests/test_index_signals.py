"""Publishing, unpublishing and deleting keep indexes current (opt-in)."""

import pytest
from django.test import override_settings

from tests.storage import chunk_model
from tests.testapp.models import ArticlePage, Book
from tests.utils import OFFLINE

pytestmark = pytest.mark.django_db

AUTO = {**OFFLINE, "AUTO_UPDATE": True}


@pytest.fixture
def home():
    from wagtail.models import Page

    root = Page.get_first_root_node()
    return root.add_child(instance=Page(title="Home", slug="signals-home"))


def publish(home, title, body):
    page = home.add_child(
        instance=ArticlePage(title=title, body=f"<p>{body}</p>", live=False)
    )
    page.save_revision().publish()
    page.refresh_from_db()
    return page


def indexed_ids():
    return set(chunk_model().objects.values_list("object_id", flat=True))


@override_settings(WAGTAIL_VECTOR_INDEX=AUTO)
def test_publish_unpublish_delete(home, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        page = publish(home, "Comets", "A comet has a tail of dust and gas.")
    assert ArticlePage.vector_index.search("comet tail", limit=1) == [page]

    with django_capture_on_commit_callbacks(execute=True):
        page.body = "<p>Meteors burn up in the atmosphere.</p>"
        page.save_revision()  # A draft: the index keeps the live text.
    assert not chunk_model().objects.filter(text__contains="Meteors").exists()

    with django_capture_on_commit_callbacks(execute=True):
        page.unpublish()
    assert str(page.pk) not in indexed_ids()

    with django_capture_on_commit_callbacks(execute=True):
        page.save_revision().publish()
    assert str(page.pk) in indexed_ids()

    with django_capture_on_commit_callbacks(execute=True):
        page.delete()
    assert str(page.pk) not in indexed_ids()


@override_settings(WAGTAIL_VECTOR_INDEX=AUTO)
def test_nothing_happens_before_commit(home, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        publish(home, "Comets", "A comet tail.")
    assert not chunk_model().objects.exists()
    assert callbacks  # Scheduled for after the commit.


def test_off_by_default(home, django_capture_on_commit_callbacks):
    with override_settings(WAGTAIL_VECTOR_INDEX=OFFLINE):
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            publish(home, "Comets", "A comet tail.")
    assert not callbacks
    assert not chunk_model().objects.exists()


@override_settings(
    WAGTAIL_VECTOR_INDEX=AUTO,
    TASKS={"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}},
)
def test_through_the_tasks_framework(
    home, django_capture_on_commit_callbacks, monkeypatch
):
    from wagtail_vector_index.index import tasks

    def not_inline(*args):
        raise AssertionError("ran inline instead of through the tasks framework")

    monkeypatch.setattr(tasks, "run_inline", not_inline)
    with django_capture_on_commit_callbacks(execute=True):
        page = publish(home, "Comets", "A comet tail.")
    assert str(page.pk) in indexed_ids()


@override_settings(WAGTAIL_VECTOR_INDEX=AUTO)
def test_plain_models_update_on_save_and_delete(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        book = Book.objects.create(title="Night sky", blurb="stars")
    assert Book.vector_index.search("stars", limit=1) == [book]
    with django_capture_on_commit_callbacks(execute=True):
        book.delete()
    assert not chunk_model().objects.filter(index_name="testapp.book").exists()


def test_a_provider_failure_does_not_break_publishing(
    home, provider, django_capture_on_commit_callbacks, caplog
):
    from tests.utils import embedding_backend_settings

    failing = {
        **AUTO,
        "EMBEDDING_BACKENDS": {"default": embedding_backend_settings(provider)},
    }
    provider.fail("401", times=5)
    with override_settings(WAGTAIL_VECTOR_INDEX=failing):
        with django_capture_on_commit_callbacks(execute=True):
            page = publish(home, "Comets", "A comet tail.")
    assert page.live
    assert "Could not update vector index testapp.articlepage" in caplog.text
    assert "sk-" not in caplog.text


def test_a_database_error_does_not_break_publishing(
    home, monkeypatch, django_capture_on_commit_callbacks, caplog
):
    """SQLite's "database is locked" while a rebuild writes, say: the page is
    published, the failure logged, and the next update catches up."""
    from django.db import OperationalError

    from wagtail_vector_index.index import tasks

    def locked(*args):
        raise OperationalError("database is locked")

    monkeypatch.setattr(tasks, "update_object", locked)
    with override_settings(WAGTAIL_VECTOR_INDEX=AUTO):
        with django_capture_on_commit_callbacks(execute=True):
            page = publish(home, "Meteors", "Shooting stars in August.")
    assert page.live
    assert "Could not update vector index testapp.articlepage" in caplog.text
    assert "database is locked" in caplog.text
