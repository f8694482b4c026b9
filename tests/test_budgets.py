"""Budgets: checked before a call (nothing reaches the provider when one is
used up), per site, for calls without a site and per user on the test pages;
the alert at ALERT_THRESHOLD; concurrent calls; update_vector_indexes."""

import asyncio
import logging
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings
from django.urls import reverse
from wagtail.models import Page, Site

from tests.testapp.models import Book
from tests.utils import (
    ECHO,
    chat_backend_settings,
    chat_data,
    chat_requests,
    embedding_backend_settings,
    lines,
    make_user,
    run_async,
)
from wagtail_vector_index import ai, usage
from wagtail_vector_index.exceptions import (
    AIBudgetExceededError,
    WagtailVectorIndexError,
)
from wagtail_vector_index.models import AISettings, AIUsageRecord, AIUsageTotal

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("empty_ledger")]


HELLO = [{"role": "user", "content": "Hello there"}]


def http_settings(provider, **usage_settings):
    return {
        "CHAT_BACKENDS": {"default": chat_backend_settings(provider)},
        "EMBEDDING_BACKENDS": {"default": embedding_backend_settings(provider)},
        "USAGE": usage_settings,
    }


@pytest.fixture
def two_sites():
    root = Page.get_first_root_node()
    default = Site.objects.get(is_default_site=True)
    other_root = root.add_child(instance=Page(title="Other", slug="budget-other"))
    other = Site.objects.create(hostname="other.example", root_page=other_root)
    return default, other


def spend(scope, *, tokens=0, cost=0, period="month", calls=1):
    """Write this period's totals as if ``calls`` calls had spent that much
    (a call reserves at least the average of the period's calls)."""
    AIUsageTotal.objects.update_or_create(
        period=period,
        start=usage.period_start(period),
        scope=scope,
        defaults={"tokens": tokens, "cost": Decimal(cost), "calls": calls},
    )


def set_budget(site, **budgets):
    settings = AISettings.for_site(site)
    for name, value in budgets.items():
        setattr(settings, name, value)
    settings.save()


# -- per site --------------------------------------------------------------------


def test_two_sites_one_exhausted_the_other_unaffected(provider, two_sites):
    default, other = two_sites
    set_budget(other, monthly_budget_tokens=100)
    set_budget(default, monthly_budget_tokens=100_000)
    spend(f"site:{other.pk}", tokens=100)
    with override_settings(WAGTAIL_VECTOR_INDEX=http_settings(provider)):
        with pytest.raises(AIBudgetExceededError) as caught:
            ai.get_chat_backend(site=other).chat(messages=HELLO)
        with pytest.raises(AIBudgetExceededError):
            list(ai.get_embedding_backend(site=other).embed(["one"]))
        assert provider.requests == []  # Refused before any request.

        assert ai.get_chat_backend(site=default).chat(messages=HELLO).text
        assert ai.get_chat_backend().chat(messages=HELLO).text  # No site.
    error = caught.value
    assert isinstance(error, WagtailVectorIndexError)
    assert (error.site, error.limit, error.spent, error.unit, error.period) == (
        other,
        100,
        100,
        "tokens",
        "month",
    )
    assert str(error) == (
        "The monthly AI budget of site other.example is used up (100 tokens of "
        "100 tokens spent, including calls in progress). Ask an administrator "
        "to raise it under Settings › AI settings."
    )
    assert len(chat_requests(provider)) == 2
    # A refused call spends nothing and leaves no record.
    assert AIUsageRecord.objects.filter(site=other).count() == 0


def test_the_settings_default_applies_to_sites_without_their_own(provider, two_sites):
    default, other = two_sites
    set_budget(other, monthly_budget_usd=Decimal("20.00"))
    spend(f"site:{default.pk}", cost="5.00")
    spend(f"site:{other.pk}", cost="5.00")
    with override_settings(
        WAGTAIL_VECTOR_INDEX=http_settings(provider, MONTHLY_BUDGET_USD=5)
    ):
        with pytest.raises(AIBudgetExceededError) as caught:
            ai.get_chat_backend(site=default).chat(messages=HELLO)
        assert ai.get_chat_backend(site=other).chat(messages=HELLO).text
    assert (caught.value.unit, caught.value.limit) == ("USD", Decimal(5))
    assert "$5.00 of $5.00" in str(caught.value)


def test_a_saved_budget_applies_at_once(provider, two_sites):
    _default, other = two_sites
    spend(f"site:{other.pk}", tokens=50)
    with override_settings(WAGTAIL_VECTOR_INDEX=http_settings(provider)):
        assert ai.get_chat_backend(site=other).chat(messages=HELLO).text  # Cached.
        set_budget(other, monthly_budget_tokens=10)
        with pytest.raises(AIBudgetExceededError):
            ai.get_chat_backend(site=other).chat(messages=HELLO)
        set_budget(other, monthly_budget_tokens=None)
        assert ai.get_chat_backend(site=other).chat(messages=HELLO).text


def test_calls_without_a_site(provider, two_sites):
    default, _other = two_sites
    spend("site:none", tokens=10)
    with override_settings(
        WAGTAIL_VECTOR_INDEX=http_settings(provider, NO_SITE_MONTHLY_BUDGET_TOKENS=10)
    ):
        with pytest.raises(AIBudgetExceededError) as caught:
            ai.get_chat_backend().chat(messages=HELLO)

        async def embed():
            return await ai.get_embedding_backend().aembed_matrix(["one"])

        with pytest.raises(AIBudgetExceededError):
            run_async(embed)
        assert ai.get_chat_backend(site=default).chat(messages=HELLO).text
    assert caught.value.site is None
    assert str(caught.value).startswith(
        "The monthly AI budget for calls without a site is used up"
    )
    assert len(provider.requests) == 1


@pytest.mark.parametrize("style", ["sync", "async"])
def test_a_call_is_let_in_only_if_its_estimate_fits(provider, style):
    """99 of 100 tokens spent: an embedding call estimated at thousands of
    tokens is refused (not let in because something is left), and the
    refusal says what was spent and what the call needed."""
    spend("site:none", tokens=99, calls=99)
    texts = ["many words " * 500, "more words " * 500]
    with override_settings(
        WAGTAIL_VECTOR_INDEX=http_settings(provider, NO_SITE_MONTHLY_BUDGET_TOKENS=100)
    ):
        backend = ai.get_embedding_backend()
        needed = sum(backend.count_tokens(text) for text in texts)

        async def embed():
            return await backend.aembed_matrix(texts)

        with pytest.raises(AIBudgetExceededError) as caught:
            if style == "sync":
                backend.embed_matrix(texts)
            else:
                run_async(embed)
        # One token's room is enough for a call estimated at one token.
        assert ai.get_embedding_backend().embed_matrix(["one"]).shape[0] == 1
    assert (caught.value.spent, caught.value.limit) == (99, 100)
    assert caught.value.needed == needed > 1000
    assert str(caught.value).endswith(
        f"(99 tokens of 100 tokens spent, including calls in progress). "
        f"This call would need about {needed} tokens."
    )
    assert len(provider.requests) == 1


def test_streams_and_async_calls_are_refused_before_the_request(provider):
    spend("site:none", tokens=10)

    async def calls():
        backend = ai.get_chat_backend()
        for stream in (False, True):
            with pytest.raises(AIBudgetExceededError):
                await backend.achat(messages=HELLO, stream=stream)
        with pytest.raises(AIBudgetExceededError):
            await ai.get_embedding_backend().aembed(["one"])

    with override_settings(
        WAGTAIL_VECTOR_INDEX=http_settings(provider, NO_SITE_MONTHLY_BUDGET_TOKENS=10)
    ):
        with pytest.raises(AIBudgetExceededError):
            ai.get_chat_backend().chat(messages=HELLO, stream=True)
        run_async(calls)
    assert provider.requests == []


def test_query_and_page_helpers_raise_for_the_site_to_handle(two_sites):
    from tests.testapp.models import ArticlePage
    from tests.utils import OFFLINE

    _default, other = two_sites
    page = other.root_page.add_child(instance=ArticlePage(title="Budgeted"))
    set_budget(other, monthly_budget_tokens=1)
    spend(f"site:{other.pk}", tokens=1)
    with override_settings(WAGTAIL_VECTOR_INDEX=OFFLINE):
        with pytest.raises(AIBudgetExceededError):
            page.get_chat_backend().chat(messages=HELLO)
        with pytest.raises(AIBudgetExceededError):
            ArticlePage.vector_index.query("Anything?", site=other)


# -- the test pages -------------------------------------------------------------


def test_the_user_daily_budget_on_the_test_pages(backends, client):
    tired = make_user("tired", "use_ai_test_pages")
    fresh = make_user("fresh", "use_ai_test_pages")
    spend(f"user:{tired.pk}", tokens=500, period="day")
    settings = http_settings(backends, USER_DAILY_BUDGET_TOKENS=500)
    settings["CHAT_BACKENDS"]["offline"] = {
        "CLASS": f"{ECHO}.EchoChatBackend",
        "CONFIG": {},
    }
    with override_settings(WAGTAIL_VECTOR_INDEX=settings):
        client.force_login(tired)
        answer = lines(
            client.post(reverse("wagtail_vector_index:chat_stream"), chat_data())
        )
        assert answer == [
            {
                "type": "error",
                "message": "Your daily AI budget is used up (500 tokens of 500 "
                "tokens spent). Try again tomorrow.",
            }
        ]
        page = client.post(
            reverse("wagtail_vector_index:embeddings"),
            {"site": "", "alias": "default", "texts": "one\ntwo", "query": ""},
        )
        assert "Your daily AI budget is used up" in page.content.decode()
        assert backends.requests == []
        # The same calls from code are not under the user's budget.
        assert ai.get_chat_backend().chat(messages=HELLO).text

        client.force_login(fresh)
        answer = lines(
            client.post(reverse("wagtail_vector_index:chat_stream"), chat_data())
        )
        assert answer[-1]["type"] == "done"


def test_the_test_pages_warn_at_the_threshold(backends, client):
    site = Site.objects.get(is_default_site=True)
    set_budget(site, monthly_budget_usd=Decimal("10.00"))
    spend(f"site:{site.pk}", cost="8.50")
    client.force_login(make_user("watcher", "use_ai_test_pages"))
    for name in ("chat", "embeddings"):
        response = client.get(reverse(f"wagtail_vector_index:{name}"))
        messages = [str(m) for m in response.context["messages"]]
        assert messages == [
            "85% of the monthly AI budget of site localhost ($8.50 of $10.00) "
            "is spent. Calls stop when it is used up."
        ]
    spend(f"site:{site.pk}", cost="1.00")
    response = client.get(reverse("wagtail_vector_index:chat"))
    assert not list(response.context["messages"])


# -- the alert -----------------------------------------------------------------


def test_the_threshold_signal_is_sent_once_per_budget_and_period(provider, caplog):
    received = []

    def receiver(sender, **kwargs):
        received.append(kwargs)

    usage.budget_threshold_reached.connect(receiver)
    spend("site:none", tokens=158, calls=20)
    try:
        with override_settings(
            WAGTAIL_VECTOR_INDEX=http_settings(
                provider, NO_SITE_MONTHLY_BUDGET_TOKENS=200
            )
        ):
            with caplog.at_level(logging.WARNING, logger="wagtail_vector_index"):
                for _ in range(3):
                    ai.get_chat_backend().chat(messages=HELLO)
    finally:
        usage.budget_threshold_reached.disconnect(receiver)
    assert len(received) == 1
    alert = received[0]
    assert (alert["site"], alert["limit"], alert["unit"], alert["period"]) == (
        None,
        200,
        "tokens",
        "month",
    )
    assert alert["spent"] >= 160 and alert["scope"] == "site:none"
    warnings = [r for r in caplog.records if "AI budget alert" in r.getMessage()]
    assert len(warnings) == 1
    assert AIUsageTotal.objects.get(scope="site:none").tokens_alert_sent


# -- concurrency -----------------------------------------------------------------


def test_twenty_concurrent_calls_against_a_budget_for_five(provider):
    """Each call reserves its estimate (prompt estimate + max_tokens) before
    it starts; a call starts only while spent + reserved is below the limit.
    20 calls start at once against a budget of 5 reservations: 5 reach the
    provider, 15 are refused before any request.

    The reply is as long as the reservation allows, so that a call ending
    adds what it had reserved: 5 whatever the order in which they end."""
    backend_settings = http_settings(provider)
    provider.state.reply = " ".join(["word"] * 14)
    with override_settings(WAGTAIL_VECTOR_INDEX=backend_settings):
        backend = ai.get_chat_backend()
        per_call = backend.estimate_prompt_tokens(HELLO) + 10
    backend_settings["USAGE"] = {"NO_SITE_MONTHLY_BUDGET_TOKENS": 5 * per_call}

    async def twenty():
        backend = ai.get_chat_backend()
        return await asyncio.gather(
            *(backend.achat(messages=HELLO, max_tokens=10) for _ in range(20)),
            return_exceptions=True,
        )

    with override_settings(WAGTAIL_VECTOR_INDEX=backend_settings):
        results = run_async(twenty)
    refused = [r for r in results if isinstance(r, AIBudgetExceededError)]
    answered = [r for r in results if not isinstance(r, BaseException)]
    assert (len(answered), len(refused)) == (5, 15)
    assert len(chat_requests(provider)) == 5
    total = AIUsageTotal.objects.get(scope="site:none")
    assert total.calls == 5 and not total.reservations.exists()
    assert total.tokens == 5 * per_call


# -- update_vector_indexes -------------------------------------------------------


@pytest.fixture
def books():
    offline = {
        "CHAT_BACKENDS": {
            "default": {"CLASS": f"{ECHO}.EchoChatBackend", "CONFIG": {}}
        },
        "EMBEDDING_BACKENDS": {
            "default": {"CLASS": f"{ECHO}.HashingEmbeddingBackend", "CONFIG": {}}
        },
    }
    with override_settings(WAGTAIL_VECTOR_INDEX=offline):
        Book.objects.create(title="Tomatoes", blurb="Sun, water and soil.")
        call_command("update_vector_indexes", Book.vector_index.name, "--noinput")
        # 300 new chunks: two batches of the update (256 a batch).
        Book.objects.bulk_create(
            Book(title=f"Book {n}", blurb=f"About topic {n}.") for n in range(300)
        )
        yield offline


def test_update_refuses_when_the_estimate_exceeds_what_is_left(
    books, capsys, monkeypatch
):
    index = Book.vector_index
    before = index.storage.state()
    AIUsageRecord.objects.all().delete()
    with override_settings(
        WAGTAIL_VECTOR_INDEX={**books, "USAGE": {"NO_SITE_MONTHLY_BUDGET_TOKENS": 100}}
    ):
        with pytest.raises(CommandError) as caught:
            call_command("update_vector_indexes", index.name, "--noinput")
        spent = AIUsageTotal.objects.get(scope="site:none").tokens
        needed = index.estimate().tokens_to_embed
        assert (
            f"The update would spend about {needed} tokens, but what is left of this "
            f"month's AI budget for calls without a site is {100 - spent} tokens."
        ) in str(caught.value)
        assert "--force" in str(caught.value)
        # From the command line: a message and exit status 1. (The command
        # line closes the database connections when it ends, which would end
        # the test's transaction on PostgreSQL.)
        monkeypatch.setattr(
            "django.core.management.base.connections.close_all", lambda: None
        )
        with pytest.raises(SystemExit) as exited:
            from django.core.management import ManagementUtility

            ManagementUtility(
                ["manage.py", "update_vector_indexes", index.name, "--noinput"]
            ).execute()
        assert exited.value.code == 1
    assert not AIUsageRecord.objects.exists()  # Nothing was embedded.
    assert index.storage.state().revision == before.revision


def test_update_stops_when_the_budget_runs_out_midway(books):
    index = Book.vector_index
    before = index.storage.state()
    # Room for the first batch (256 of the 300 new chunks), not the second:
    # a call is let in only if its estimate fits.
    needed = index.estimate().tokens_to_embed
    budget = AIUsageTotal.objects.get(scope="site:none").tokens + int(needed * 0.93)
    AIUsageRecord.objects.all().delete()
    with override_settings(
        WAGTAIL_VECTOR_INDEX={
            **books,
            "USAGE": {"NO_SITE_MONTHLY_BUDGET_TOKENS": budget},
        }
    ):
        with pytest.raises(CommandError) as caught:
            call_command("update_vector_indexes", index.name, "--noinput", "--force")
        message = str(caught.value)
        assert message.startswith(f"Updating {index.name} stopped: The monthly AI")
        assert "keeps answering" in message
        # The first batch ran (the budget had room when it started), the
        # second was refused.
        updates = AIUsageRecord.objects.filter(feature="index update")
        assert [r.input_count for r in updates] == [256]
        # The index as it was keeps answering.
        after = index.storage.state()
        assert (after.active_build, after.revision) == (
            before.active_build,
            before.revision,
        )
    assert [b.title for b in index.search("tomatoes sun", limit=1)] == ["Tomatoes"]
