"""Every provider call through the package leaves one AIUsageRecord row, with
the right labels, and the month's AIUsageTotal rows follow; recording never
breaks a call."""

import asyncio
import logging
import os
from decimal import Decimal

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.management import call_command
from django.test import override_settings
from wagtail.models import Page, Site

from tests.testapp.models import ArticlePage
from tests.utils import (
    ECHO_CHAT,
    HASHING_EMBEDDING,
    OFFLINE,
    TEST_API_KEY,
    chat_backend_settings,
    chat_requests,
    embedding_backend_settings,
    make_user,
    run_async,
)
from wagtail_vector_index import ai, usage
from wagtail_vector_index.exceptions import AIServiceUnavailableError
from wagtail_vector_index.models import AIUsageRecord, AIUsageTotal

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("empty_ledger")]


HELLO = [{"role": "user", "content": "Hello there"}]


def run(make_coroutine):
    """``run_async`` for a function returning a coroutine."""

    async def call():
        return await make_coroutine()

    return run_async(call)


def http_settings(provider, **usage_settings):
    return {
        "CHAT_BACKENDS": {"default": chat_backend_settings(provider)},
        "EMBEDDING_BACKENDS": {"default": embedding_backend_settings(provider)},
        "USAGE": usage_settings,
    }


@pytest.fixture
def http(provider):
    with override_settings(WAGTAIL_VECTOR_INDEX=http_settings(provider)):
        yield provider


def only_record(**expected):
    (record,) = AIUsageRecord.objects.all()
    for name, value in expected.items():
        assert getattr(record, name) == value, name
    return record


def month_total(scope="site:none"):
    return AIUsageTotal.objects.get(
        period="month", start=usage.period_start("month"), scope=scope
    )


# -- the kinds of call -----------------------------------------------------------


def test_chat_is_recorded_with_tokens_cost_and_latency(http):
    response = ai.get_chat_backend().chat(messages=HELLO)

    record = only_record(
        kind="chat",
        alias="default",
        model_id="openai/test-chat",
        site=None,
        user=None,
        feature="",
        prompt_tokens=response.usage.prompt_tokens,
        completion_tokens=response.usage.completion_tokens,
        streamed=False,
        stopped_early=False,
        input_count=1,
        attempt=1,
        outcome="success",
        error_message="",
        prompt="",  # STORE_PROMPTS is off by default.
        response="",
    )
    assert record.prompt_tokens == 2 and record.completion_tokens > 0
    assert record.latency_ms is not None
    # LiteLLM has no prices for openai/test-chat: the cost is unknown.
    assert record.cost is None
    total = month_total()
    assert (total.calls, total.errors, total.tokens) == (1, 0, record.total_tokens)
    assert not total.reservations.exists()


def test_a_known_price_is_recorded(provider):
    settings = http_settings(provider)
    settings["CHAT_BACKENDS"]["default"] = chat_backend_settings(
        provider, model="openai/gpt-4o"
    )
    with override_settings(WAGTAIL_VECTOR_INDEX=settings):
        response = ai.get_chat_backend().chat(messages=HELLO)
    record = only_record(model_id="openai/gpt-4o")
    assert response.cost and record.cost == Decimal(repr(response.cost)).quantize(
        Decimal("1e-8")
    )
    assert month_total().cost == record.cost


def test_a_stream_read_to_its_end(http):
    response = ai.get_chat_backend().chat(messages=HELLO, stream=True)
    text = response.text()
    record = only_record(streamed=True, stopped_early=False, outcome="success")
    assert text
    assert record.time_to_first_token_ms is not None
    assert record.completion_tokens > 0


def test_a_stream_stopped_early(http):
    response = ai.get_chat_backend().chat(messages=HELLO, stream=True)
    next(iter(response))
    assert not AIUsageRecord.objects.exists()  # Still going.
    response.close()
    only_record(streamed=True, stopped_early=True, outcome="success")


def test_a_stream_closed_before_reading(http):
    response = ai.get_chat_backend().chat(messages=HELLO, stream=True)
    response.close()
    response.close()  # Recorded once.
    only_record(streamed=True, stopped_early=True)


def test_an_offline_stream(settings):
    with override_settings(WAGTAIL_VECTOR_INDEX=OFFLINE):
        response = ai.get_chat_backend().chat(messages=HELLO, stream=True)
        list(response)
    record = only_record(model_id="echo", streamed=True, cost=Decimal(0))
    assert record.prompt_tokens == 2


def test_async_chat_and_stream(http):
    async def calls():
        backend = ai.get_chat_backend()
        await backend.achat(messages=HELLO)
        stream = await backend.achat(messages=HELLO, stream=True)
        async for _part in stream:
            break
        await stream.aclose()
        stream = await backend.achat(messages=HELLO, stream=True)
        async for _part in stream:
            pass

    run_async(calls)
    records = list(AIUsageRecord.objects.order_by("pk"))
    assert [(r.streamed, r.stopped_early) for r in records] == [
        (False, False),
        (True, True),
        (True, False),
    ]
    assert month_total().calls == 3


def test_embeddings_sync_and_async(http):
    backend = ai.get_embedding_backend()
    list(backend.embed(["one two three", "four five"]))
    backend.embed_matrix(["six"])
    run(lambda: backend.aembed(["seven eight"]))
    run(lambda: backend.aembed_matrix(["nine ten eleven"]))
    records = list(AIUsageRecord.objects.order_by("pk"))
    assert [(r.kind, r.input_count, r.prompt_tokens) for r in records] == [
        # The loopback provider counts words as tokens.
        ("embedding", 2, 5),
        ("embedding", 1, 1),
        ("embedding", 1, 2),
        ("embedding", 1, 3),
    ]
    assert month_total().tokens == 11


def test_an_embedding_call_of_many_batches_is_one_record(provider):
    settings = http_settings(provider)
    settings["EMBEDDING_BACKENDS"]["default"] = embedding_backend_settings(
        provider, BATCH_SIZE=2
    )
    with override_settings(WAGTAIL_VECTOR_INDEX=settings):
        list(ai.get_embedding_backend().embed(["a", "b", "c", "d", "e"]))
        run(lambda: ai.get_embedding_backend().aembed(["a", "b", "c"]))
    assert len(provider.requests_to("/v1/embeddings")) == 5
    assert [r.input_count for r in AIUsageRecord.objects.order_by("pk")] == [5, 3]


def test_a_subclass_calling_super_is_recorded_once(settings):
    from wagtail_vector_index.ai_utils.backends.offline import (
        HashingEmbeddingBackend,
    )

    class Logged(HashingEmbeddingBackend):
        def embed(self, inputs, **kwargs):
            return super().embed(inputs, **kwargs)

    backend = Logged.from_settings("custom", {})
    backend.embed_matrix(["one", "two"])
    only_record(alias="custom", input_count=2, kind="embedding")


# -- failures ----------------------------------------------------------------------


def test_a_provider_error_is_recorded_by_class_without_the_key(http):
    http.fail("echo-400")
    with pytest.raises(Exception) as caught:
        ai.get_chat_backend().chat(messages=HELLO)
    record = only_record(outcome=type(caught.value).__name__)
    assert record.outcome != "success" and record.error_message
    assert TEST_API_KEY not in record.error_message
    total = month_total()
    assert (total.calls, total.errors) == (1, 1)


def test_a_failed_stream_is_recorded(http):
    http.fail("500")
    with pytest.raises(AIServiceUnavailableError):
        list(ai.get_chat_backend().chat(messages=HELLO, stream=True))
    only_record(outcome="AIServiceUnavailableError", streamed=True)


def test_a_stream_cut_midway_is_recorded_as_failed(http):
    http.fail("cut")
    response = ai.get_chat_backend().chat(messages=HELLO, stream=True)
    with pytest.raises(Exception) as caught:
        list(response)
    only_record(outcome=type(caught.value).__name__, streamed=True)


def test_a_failed_embedding_call_is_recorded(http):
    http.fail("500")
    with pytest.raises(AIServiceUnavailableError):
        list(ai.get_embedding_backend().embed(["one"]))
    only_record(outcome="AIServiceUnavailableError", kind="embedding")


def test_a_failing_ledger_write_does_not_fail_the_call(http, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("the ledger table is gone")

    monkeypatch.setattr(usage, "insert_records", broken)
    with caplog.at_level(logging.ERROR, logger="wagtail_vector_index.usage"):
        response = ai.get_chat_backend().chat(messages=HELLO)
        list(ai.get_embedding_backend().embed(["one"]))
        list(ai.get_chat_backend().chat(messages=HELLO, stream=True))
    assert response.text
    assert len(chat_requests(http)) == 2
    messages = [r.getMessage() for r in caplog.records]
    assert sum("Could not record 1 AI usage records" in m for m in messages) == 3
    # The totals were written in the same transaction: rolled back with it.
    assert not AIUsageTotal.objects.filter(calls__gt=0).exists()


def test_a_missing_table_does_not_fail_the_call(http, monkeypatch, caplog):
    # As if the migration had not run: the INSERT fails in the database.
    monkeypatch.setattr(AIUsageRecord._meta, "db_table", "wvi_no_such_table")
    with caplog.at_level(logging.ERROR, logger="wagtail_vector_index.usage"):
        assert ai.get_chat_backend().chat(messages=HELLO).text
        assert run(lambda: ai.get_chat_backend().achat(messages=HELLO)).text
    logged = [r for r in caplog.records if "Could not record" in r.getMessage()]
    assert len(logged) == 2
    assert not AIUsageTotal.objects.filter(calls__gt=0).exists()


def test_recording_can_be_turned_off(provider):
    with override_settings(WAGTAIL_VECTOR_INDEX=http_settings(provider, ENABLED=False)):
        ai.get_chat_backend().chat(messages=HELLO)
        list(ai.get_embedding_backend().embed(["one"]))
    assert not AIUsageRecord.objects.exists()
    assert not AIUsageTotal.objects.exists()


def test_prompts_are_stored_only_when_asked_and_never_keys(provider):
    secret_message = [{"role": "user", "content": f"my key is {TEST_API_KEY}"}]
    with override_settings(
        WAGTAIL_VECTOR_INDEX=http_settings(provider, STORE_PROMPTS=True)
    ):
        ai.get_chat_backend().chat(messages=secret_message)
        stream = ai.get_chat_backend().chat(messages=HELLO, stream=True)
        streamed_text = stream.text()
        list(ai.get_embedding_backend().embed(["first text", "second text"]))
    chat, stream_record, embedding = AIUsageRecord.objects.order_by("pk")
    assert "my key is" in chat.prompt and TEST_API_KEY not in chat.prompt
    assert chat.response == provider.state.reply
    assert stream_record.response == streamed_text
    assert embedding.prompt == "first text\n\nsecond text"
    assert embedding.response == ""


# -- who and what -------------------------------------------------------------------


@pytest.fixture
def two_sites():
    root = Page.get_first_root_node()
    default = Site.objects.get(is_default_site=True)
    other_root = root.add_child(instance=Page(title="Other", slug="usage-other"))
    other = Site.objects.create(hostname="other.example", root_page=other_root)
    return default, other


def test_a_backend_got_with_a_site_or_request(http, two_sites, rf):
    default, other = two_sites
    user = make_user("caller")
    ai.get_chat_backend(site=other).chat(messages=HELLO)
    request = rf.get("/", HTTP_HOST="other.example")
    request.user = user
    ai.get_embedding_backend(request=request).embed(["one"])
    anonymous = rf.get("/")
    anonymous.user = AnonymousUser()
    ai.get_chat_backend(request=anonymous).chat(messages=HELLO)
    first, second, third = AIUsageRecord.objects.order_by("pk")
    assert (first.site, first.user) == (other, None)
    assert (second.site, second.user) == (other, user)
    assert (third.site, third.user) == (default, None)
    assert month_total(f"site:{other.pk}").calls == 2
    assert month_total(f"site:{default.pk}").calls == 1
    day = AIUsageTotal.objects.get(period="day", scope=f"user:{user.pk}")
    assert day.start == usage.period_start("day") and day.calls == 1


def test_usage_context_labels_calls_and_the_outer_label_wins(http, two_sites):
    _default, other = two_sites
    user = make_user("labeller")
    with usage.usage_context(feature="newsletter", site=other, user=user):
        ai.get_chat_backend().chat(messages=HELLO)
        with usage.usage_context(feature="inner"):
            ai.get_chat_backend().chat(messages=HELLO)
    ai.get_chat_backend().chat(messages=HELLO)
    records = list(AIUsageRecord.objects.order_by("pk"))
    assert [(r.feature, r.site, r.user) for r in records] == [
        ("newsletter", other, user),
        ("newsletter", other, user),
        ("", None, None),
    ]


def test_usage_context_reaches_asyncio_tasks(http):
    async def calls():
        with usage.usage_context(feature="async job"):
            backend = ai.get_chat_backend()
            await asyncio.gather(
                backend.achat(messages=HELLO), backend.achat(messages=HELLO)
            )

    run_async(calls)
    assert list(AIUsageRecord.objects.values_list("feature", flat=True)) == [
        "async job",
        "async job",
    ]


def test_with_usage(http, two_sites):
    _default, other = two_sites
    backend = ai.get_chat_backend().with_usage(feature="my feature", site=other)
    backend.chat(messages=HELLO)
    only_record(feature="my feature", site=other)
    # The shared backend is unchanged.
    assert ai.get_chat_backend().attribution == usage.EMPTY


# -- the package's own callers ----------------------------------------------------


@pytest.fixture
def offline_index():
    with override_settings(WAGTAIL_VECTOR_INDEX={**OFFLINE, "AUTO_UPDATE": True}):
        yield


def features():
    return list(AIUsageRecord.objects.order_by("pk").values_list("kind", "feature"))


def test_page_helpers_record_the_pages_site(offline_index, two_sites):
    _default, other = two_sites
    page = other.root_page.add_child(
        instance=ArticlePage(title="Helped", slug="helped", live=True)
    )
    page.get_chat_backend().chat(messages=HELLO)
    page.get_embedding_backend().embed(["text"])
    records = list(AIUsageRecord.objects.order_by("pk"))
    assert [(r.kind, r.feature, r.site) for r in records] == [
        ("chat", "page helper", other),
        ("embedding", "page helper", other),
    ]


def test_index_update_query_search_and_publish(
    offline_index, two_sites, django_capture_on_commit_callbacks
):
    _default, other = two_sites
    with django_capture_on_commit_callbacks(execute=True):
        page = other.root_page.add_child(
            instance=ArticlePage(title="Tomatoes", body="<p>Sun and water.</p>")
        )
        page.save_revision().publish()
    # Two indexes cover the page (its own and "everything"): one call each.
    assert features() == [("embedding", "publish-time update")] * 2

    AIUsageRecord.objects.all().delete()
    call_command("update_vector_indexes", "--noinput", "--force")
    page.body = "<p>Rich soil.</p>"
    page.save()  # Not published: update() embeds the new text.
    ArticlePage.vector_index.update()
    assert set(features()) <= {("embedding", "index update")}

    AIUsageRecord.objects.all().delete()
    ArticlePage.vector_index.search("tomatoes")
    ArticlePage.vector_index.query("How do tomatoes grow?", site=other)
    assert features() == [
        ("embedding", "index search"),
        ("embedding", "index query"),
        ("chat", "index query"),
    ]
    chat = AIUsageRecord.objects.get(kind="chat")
    query_embedding = AIUsageRecord.objects.filter(feature="index query").first()
    assert chat.site == other and query_embedding.site == other

    AIUsageRecord.objects.all().delete()
    run(lambda: ArticlePage.vector_index.aquery("Tomatoes?", site=other))
    assert features() == [("embedding", "index query"), ("chat", "index query")]


def test_test_pages_record_the_user_and_site(backends, client):
    from django.urls import reverse

    from tests.utils import chat_data, lines

    user = make_user("tester", "use_ai_test_pages")
    client.force_login(user)
    site = Site.objects.get(is_default_site=True)
    response = client.post(
        reverse("wagtail_vector_index:chat_stream"), chat_data(site=site)
    )
    assert lines(response)[-1]["type"] == "done"
    client.post(
        reverse("wagtail_vector_index:embeddings"),
        {"site": site.pk, "alias": "default", "texts": "one\ntwo", "query": ""},
    )
    records = list(AIUsageRecord.objects.order_by("pk"))
    assert [(r.kind, r.feature, r.site, r.user) for r in records] == [
        ("chat", "chat test page", site, user),
        ("embedding", "embeddings test page", site, user),
    ]


# -- pruning -------------------------------------------------------------------------


def test_prune_ai_usage(provider, capsys):
    import datetime

    from django.utils import timezone

    now = timezone.now()

    def record(days, prompt=""):
        return AIUsageRecord.objects.create(
            created_at=now - datetime.timedelta(days=days),
            kind="chat",
            alias="default",
            model_id="m",
            prompt=prompt,
            response="answer" if prompt else "",
        )

    old = record(400)
    old_prompt = record(40, prompt="hello")
    recent_prompt = record(5, prompt="hi")
    recent = record(1)
    AIUsageTotal.objects.create(period="month", start="2020-01-01", scope="site:none")

    call_command("prune_ai_usage", "--dry-run")
    assert capsys.readouterr().out.strip() == (
        "Dry run: would delete 1 usage records older than 365 days and blank the "
        "prompts and answers of 1 records older than 30 days."
    )
    assert AIUsageRecord.objects.count() == 4

    call_command("prune_ai_usage")
    assert "Deleted 1 usage records" in capsys.readouterr().out
    assert not AIUsageRecord.objects.filter(pk=old.pk).exists()
    old_prompt.refresh_from_db()
    recent_prompt.refresh_from_db()
    assert (old_prompt.prompt, old_prompt.response) == ("", "")
    assert (recent_prompt.prompt, recent_prompt.response) == ("hi", "answer")
    assert AIUsageRecord.objects.filter(pk=recent.pk).exists()
    # Totals of old periods stay (the budgets and the report read them).
    assert AIUsageTotal.objects.filter(start="2020-01-01").exists()


def test_prune_with_other_retention():
    from django.core.management.base import CommandError

    with override_settings(
        WAGTAIL_VECTOR_INDEX={**OFFLINE, "USAGE": {"RETENTION_DAYS": -1}}
    ):
        with pytest.raises(CommandError, match="RETENTION_DAYS"):
            call_command("prune_ai_usage")


def test_echo_and_hashing_backends_are_recorded_too():
    with override_settings(
        WAGTAIL_VECTOR_INDEX={
            "CHAT_BACKENDS": {"default": {"CLASS": ECHO_CHAT, "CONFIG": {}}},
            "EMBEDDING_BACKENDS": {
                "default": {"CLASS": HASHING_EMBEDDING, "CONFIG": {}}
            },
        }
    ):
        ai.get_chat_backend().chat(messages=HELLO)
        list(ai.get_embedding_backend().embed(["hello world"]))
    assert [(r.kind, r.cost) for r in AIUsageRecord.objects.order_by("pk")] == [
        ("chat", Decimal(0)),
        ("embedding", Decimal(0)),
    ]


def test_the_chat_page_under_asgi_records_the_stream(backends):
    from django.test import AsyncClient
    from django.urls import reverse

    from tests.utils import chat_data

    user = make_user("asgi-tester", "use_ai_test_pages")

    async def post():
        client = AsyncClient()
        await client.aforce_login(user)
        response = await client.post(
            reverse("wagtail_vector_index:chat_stream"), chat_data()
        )
        return b"".join([chunk async for chunk in response.streaming_content])

    assert b'"done"' in run_async(post)
    only_record(
        kind="chat",
        feature="chat test page",
        user=user,
        streamed=True,
        stopped_early=False,
        outcome="success",
    )


def test_backends_without_django_settings_record_nothing_and_work():
    """A script using the backends alone (no Django settings, so no database)
    still gets its answers; nothing is recorded."""
    import subprocess
    import sys

    code = (
        "from wagtail_vector_index.ai_utils.backends import get_embedding_backend\n"
        "backend = get_embedding_backend(backend_dict={'CLASS': "
        "'wagtail_vector_index.ai_utils.backends.offline.HashingEmbeddingBackend',"
        " 'CONFIG': {'EMBEDDING_OUTPUT_DIMENSIONS': 16}}, backend_id='default')\n"
        "print(backend.embed_matrix(['one', 'two']).shape)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "(2, 16)"
