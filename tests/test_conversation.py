"""query() in a conversation (history, a condensed standalone question) and
numbered citations, over the loopback provider."""

import pytest
from django.test import override_settings
from wagtail.models import Page

from tests.testapp.models import ArticlePage
from tests.utils import ARTICLES, OFFLINE, chat_backend_settings, root_page
from wagtail_vector_index.index import conversation

pytestmark = pytest.mark.django_db

CHAT = "/v1/chat/completions"
HISTORY = [
    {"role": "user", "content": "What flowers grow well in my garden?"},
    {"role": "assistant", "content": "Roses grow well in most gardens."},
]


@pytest.fixture
def index(provider):
    settings = {
        **OFFLINE,
        "CHAT_BACKENDS": {"default": chat_backend_settings(provider)},
    }
    with override_settings(WAGTAIL_VECTOR_INDEX=settings):
        home = root_page().add_child(instance=Page(title="Home", slug="talk-home"))
        for title, body in ARTICLES.items():
            home.add_child(instance=ArticlePage(title=title, body=f"<p>{body}</p>"))
        index = ArticlePage.vector_index
        index.update()
        yield index


def chat_requests(provider):
    return [request.json for request in provider.requests_to(CHAT)]


def test_a_follow_up_is_searched_as_a_standalone_question(index, provider):
    provider.state.reply = "When should I prune roses in the garden?"

    response = index.query("And when do I prune them?", history=HISTORY)

    condense, answer = chat_requests(provider)
    assert condense["messages"] == [
        {"role": "system", "content": conversation.CONDENSE_PROMPT},
        *HISTORY,
        {"role": "user", "content": "And when do I prune them?"},
    ]
    assert response.question == "When should I prune roses in the garden?"
    assert response.sources[0].title == "Pruning roses"
    # The answer is written with the whole conversation before the question.
    system, *turns = answer["messages"]
    assert system["role"] == "system"
    assert "[1] Title: Pruning roses" in system["content"]
    assert turns == [*HISTORY, {"role": "user", "content": "And when do I prune them?"}]


def test_without_condensing_the_question_is_searched_as_it_is(index, provider):
    response = index.query("pruning roses", history=HISTORY, condense=False)

    assert len(chat_requests(provider)) == 1
    assert response.question == "pruning roses"
    assert response.sources[0].title == "Pruning roses"


def test_the_index_can_turn_condensing_off(index, provider, monkeypatch):
    monkeypatch.setattr(index, "condense_history", False)
    index.query("pruning roses", history=HISTORY)
    assert len(chat_requests(provider)) == 1


def test_no_history_makes_no_extra_call(index, provider):
    index.query("pruning roses")
    assert len(chat_requests(provider)) == 1


def test_citations_map_to_sources(index, provider):
    provider.state.reply = "Prune them in early spring [2], see also [1] and [9]."

    response = index.query("pruning roses in spring", sources_limit=3)

    assert response.citations == [2, 1]  # [9] names no source.
    assert response.cited_sources == [response.sources[1], response.sources[0]]


def test_citations_of_a_streamed_answer(index, provider):
    provider.state.reply = "Tomatoes [1] like sun; so do roses [2] [1]."

    response = index.query("tomatoes and roses", sources_limit=2, stream=True)
    assert response.citations == []  # Nothing read yet.
    text = "".join(part["content"] for part in response.stream)

    assert text == provider.state.reply
    assert response.citations == [1, 2]
    assert response.cited_sources == response.sources[:2]


def test_the_prompt_asks_for_numbered_citations(index, provider):
    index.query("pruning roses", sources_limit=2)
    system = chat_requests(provider)[0]["messages"][0]["content"]
    assert "square brackets, like [1]" in system
    assert "\n\n[1] " in system and "\n\n[2] " in system


@pytest.mark.parametrize(
    ("history", "error"),
    [
        ("just text", TypeError),
        ([{"role": "system", "content": "x"}], ValueError),
        ([{"role": "user", "content": 3}], TypeError),
        (["hello"], TypeError),
    ],
)
def test_a_malformed_history_is_refused_before_any_call(
    index, provider, history, error
):
    with pytest.raises(error):
        index.query("roses", history=history)
    assert chat_requests(provider) == []


def test_the_offline_echo_backend_keeps_the_question_and_cites(provider):
    with override_settings(WAGTAIL_VECTOR_INDEX=OFFLINE):
        home = root_page().add_child(instance=Page(title="Home", slug="echo-home"))
        for title, body in ARTICLES.items():
            home.add_child(instance=ArticlePage(title=title, body=f"<p>{body}</p>"))
        index = ArticlePage.vector_index
        index.update()
        response = index.query("pruning roses", history=HISTORY)
    assert response.question == "pruning roses"
    assert response.citations == [1]


def test_citations_helper():
    assert conversation.citations("a [3] b [1] c [3] [0] [x]", 3) == [3, 1]
    assert conversation.standalone_question('  "What now?" ', "q") == "What now?"
    assert conversation.standalone_question("", "q") == "q"
