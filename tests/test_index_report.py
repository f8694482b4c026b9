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
