"""The admin report listing vector indexes."""

import pytest
from django.contrib.auth.models import Permission, User
from django.test import override_settings
from django.urls import reverse

from tests.testapp.models import ArticlePage
from tests.utils import ARTICLES, ECHO, OFFLINE
from wagtail_vector_index.views.indexes import index_rows

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def offline():
    with override_settings(WAGTAIL_VECTOR_INDEX=OFFLINE):
        yield


@pytest.fixture
def articles():
    from wagtail.models import Page

    home = Page.get_first_root_node().add_child(
        instance=Page(title="Home", slug="report-home")
    )
    for title, body in ARTICLES.items():
        home.add_child(instance=ArticlePage(title=title, body=f"<p>{body}</p>"))


def test_rows_describe_each_index(articles):
    ArticlePage.vector_index.update()

    rows = {row.name: row for row in index_rows()}

    article = rows["testapp.articlepage"]
    assert (article.objects, article.chunks) == (len(ARTICLES), len(ARTICLES))
    assert (article.model_id, article.dimensions) == ("hashing", 512)
    assert article.storage == "DatabaseStorage"
    assert article.updated_at is not None
    assert article.problem == ""
    assert "Not built yet" in rows["testapp.book"].problem


def test_rows_flag_a_changed_model(articles):
    ArticlePage.vector_index.update()
    other = {
        **OFFLINE,
        "EMBEDDING_BACKENDS": {
            "default": {
                "CLASS": f"{ECHO}.HashingEmbeddingBackend",
                "CONFIG": {"EMBEDDING_OUTPUT_DIMENSIONS": 64},
            }
        },
    }
    with override_settings(WAGTAIL_VECTOR_INDEX=other):
        rows = {row.name: row for row in index_rows()}
    assert "rebuild it" in rows["testapp.articlepage"].problem


def test_report_page(client, articles):
    ArticlePage.vector_index.update()
    user = User.objects.create_user("editor", password="pw")
    user.user_permissions.add(
        Permission.objects.get(codename="access_admin"),
    )
    client.force_login(user)
    url = reverse("wagtail_vector_index:indexes")
    assert client.get(url).status_code == 403
    user.user_permissions.add(Permission.objects.get(codename="use_ai_test_pages"))
    response = client.get(url)
    assert response.status_code == 200
    html = response.content.decode()
    assert "testapp.articlepage" in html and "Not built yet" in html


def test_report_page_says_whether_qdrant_answers(admin_client, articles):
    pytest.importorskip("qdrant_client")
    qdrant = "wagtail_vector_index.index.storage.qdrant.QdrantStorage"
    url = reverse("wagtail_vector_index:indexes")
    memory = {"LOCATION": ":memory:", "COLLECTION_PREFIX": "wvireport"}
    with override_settings(
        WAGTAIL_VECTOR_INDEX={**OFFLINE, "STORAGE": {"CLASS": qdrant, "CONFIG": memory}}
    ):
        html = admin_client.get(url).content.decode()
    assert "Storage: Qdrant local mode (:memory:), collections wvireport_*." in html
    assert "It answers" in html and "QdrantStorage" in html

    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    down = {"URL": f"http://127.0.0.1:{port}", "TIMEOUT": 1}
    with override_settings(
        WAGTAIL_VECTOR_INDEX={**OFFLINE, "STORAGE": {"CLASS": qdrant, "CONFIG": down}}
    ):
        response = admin_client.get(url)
    assert response.status_code == 200
    html = response.content.decode()
    assert "The vector storage does not answer" in html
    assert "could not be reached" in html

    # The database storages: nothing to ask, nothing said.
    assert "The vector storage" not in admin_client.get(url).content.decode()
    assert "It answers" not in admin_client.get(url).content.decode()
