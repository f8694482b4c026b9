"""Retries, fallbacks across aliases and the circuit breaker, over real HTTP.

The loopback providers fail on demand; the clock the retries wait on is
controlled (``FakeClock``): waits are asserted, never slept through.
"""

import asyncio
import socket
import time

import pytest
from django.core.checks import Error
from wagtail.models import Page, Site

from tests.providers import ProviderServer, fake_vector
from tests.utils import chat_backend_settings, embedding_backend_settings
from wagtail_vector_index import ai, resilience
from wagtail_vector_index.checks import check_settings
from wagtail_vector_index.exceptions import (
    AIAuthenticationError,
    AIBadRequestError,
    AICircuitOpenError,
    AIConnectionError,
    AIContextWindowExceededError,
    AIInvalidResponseError,
    AIRateLimitError,
    AIServiceUnavailableError,
    AITimeoutError,
)
from wagtail_vector_index.models import AISettings, AIUsageRecord
from wagtail_vector_index.parameters import ALL_ALIASES

MESSAGES = [{"role": "user", "content": "Hello?"}]
CHAT = "/v1/chat/completions"
EMBEDDINGS = "/v1/embeddings"


class FakeClock(resilience.Clock):
    """Real time, plus the waits the retries asked for (not slept)."""

    def __init__(self) -> None:
        self.offset = 0.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return time.monotonic() + self.offset

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 6))
        self.offset += seconds

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)

    def random(self) -> float:
        return 0.5  # The jitter: waits are 3/4 of the backoff.


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(resilience, "clock", fake)
    resilience.reset_breakers()
    yield fake
    resilience.reset_breakers()


@pytest.fixture(scope="module")
def _more_servers():
    servers = [ProviderServer().start(), ProviderServer().start()]
    yield servers
    for server in servers:
        server.stop()


@pytest.fixture
def servers(provider, _more_servers):
    """Three loopback providers: the primary, a backup and a third."""
    for server in _more_servers:
        server.reset()
    yield [provider, *_more_servers]
    for server in _more_servers:
        server.reset()


def dead_port() -> int:
    """A port on 127.0.0.1 where nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def configure(settings, chat=None, embedding=None, **extra):
    """``WAGTAIL_VECTOR_INDEX`` with these backends (the defaults for a kind
    not given)."""
    value = dict(extra)
    if chat is not None:
        value["CHAT_BACKENDS"] = chat
    if embedding is not None:
        value["EMBEDDING_BACKENDS"] = embedding
    settings.WAGTAIL_VECTOR_INDEX = value


def chat_settings(server, **config):
    return chat_backend_settings(server, **config)


def count(server, path=CHAT):
    return len(server.requests_to(path))


# -- retries -------------------------------------------------------------------


@pytest.mark.parametrize(
    "mode", ["500", "502", "503", "429-bare", "reset", "malformed"]
)
def test_retryable_failures_are_retried_with_exponential_backoff(
    settings, provider, clock, mode
):
    configure(settings, chat={"default": chat_settings(provider, MAX_RETRIES=2)})
    provider.fail(mode, times=2)

    response = ai.get_chat_backend().chat(messages=MESSAGES)

    assert response.text
    assert count(provider) == 3
    # 0.5 s doubling, with half of each wait random (0.5 here): 3/4 of it.
    assert clock.sleeps == [0.375, 0.75]


def test_the_wait_is_what_retry_after_asks(settings, provider, clock):
    configure(settings, chat={"default": chat_settings(provider, MAX_RETRIES=2)})
    provider.state.retry_after = "1"
    provider.fail("429")

    ai.get_chat_backend().chat(messages=MESSAGES)

    assert count(provider) == 2
    assert clock.sleeps == [1.0]


def test_a_retry_after_beyond_the_calls_timeout_is_not_waited_for(
    settings, provider, clock
):
    # timeout=2 (tests.utils) bounds the whole call; the provider asks for 30 s.
    configure(settings, chat={"default": chat_settings(provider, MAX_RETRIES=2)})
    provider.fail("429")

    with pytest.raises(AIRateLimitError) as raised:
        ai.get_chat_backend().chat(messages=MESSAGES)

    assert raised.value.retry_after == 30
    assert raised.value.attempts == 1
    assert count(provider) == 1
    assert clock.sleeps == []


def test_a_long_retry_after_within_the_timeout_is_honoured(settings, provider, clock):
    backend = chat_settings(
        provider, MAX_RETRIES=1, DEFAULT_PARAMETERS={"timeout": 600}
    )
    configure(settings, chat={"default": backend})
    provider.state.retry_after = "120"
    provider.fail("429")

    ai.get_chat_backend().chat(messages=MESSAGES)

    assert clock.sleeps == [120.0]
    assert count(provider) == 2


def test_retries_stop_after_max_retries(settings, provider, clock):
    configure(settings, chat={"default": chat_settings(provider, MAX_RETRIES=2)})
    provider.fail_always("500")

    with pytest.raises(AIServiceUnavailableError) as raised:
        ai.get_chat_backend().chat(messages=MESSAGES)

    assert raised.value.attempts == 3
    assert count(provider) == 3
    assert clock.sleeps == [0.375, 0.75]


@pytest.mark.parametrize(
    ("mode", "error"),
    [
        ("401", AIAuthenticationError),
        ("403", AIAuthenticationError),
        ("400", AIBadRequestError),
        ("404", AIBadRequestError),
        ("context", AIContextWindowExceededError),
    ],
)
def test_credentials_and_bad_requests_are_never_retried(
    settings, provider, clock, mode, error
):
    configure(settings, chat={"default": chat_settings(provider, MAX_RETRIES=2)})
    provider.fail(mode)

    with pytest.raises(error):
        ai.get_chat_backend().chat(messages=MESSAGES)

    assert count(provider) == 1
    assert clock.sleeps == []


def test_a_slow_request_is_cut_at_attempt_timeout_and_retried(
    settings, provider, clock
):
    backend = chat_settings(
        provider,
        MAX_RETRIES=1,
        ATTEMPT_TIMEOUT=0.5,
        DEFAULT_PARAMETERS={"timeout": 10},
    )
    configure(settings, chat={"default": backend})
    provider.fail("slow")

    started = time.monotonic()
    response = ai.get_chat_backend().chat(messages=MESSAGES)

    assert response.text
    assert count(provider) == 2
    assert time.monotonic() - started < 2.5  # Not the server's 3 s.


def test_a_slow_request_is_not_retried_past_the_calls_timeout(
    settings, provider, clock
):
    # Without ATTEMPT_TIMEOUT the request may take the call's whole timeout,
    # after which no time is left for another.
    backend = chat_settings(
        provider, MAX_RETRIES=2, DEFAULT_PARAMETERS={"timeout": 0.5}
    )
    configure(settings, chat={"default": backend})
    provider.fail("slow")

    from wagtail_vector_index.exceptions import AITimeoutError

    with pytest.raises(AITimeoutError):
        ai.get_chat_backend().chat(messages=MESSAGES)
    assert count(provider) == 1


def test_a_dead_port_is_retried_then_raised(settings, provider, clock):
    backend = chat_settings(
        provider,
        MAX_RETRIES=1,
        DEFAULT_PARAMETERS={"api_base": f"http://127.0.0.1:{dead_port()}/v1"},
    )
    configure(settings, chat={"default": backend})

    with pytest.raises(AIConnectionError) as raised:
        ai.get_chat_backend().chat(messages=MESSAGES)

    assert raised.value.attempts == 2
    assert clock.sleeps == [0.375]


def test_async_calls_retry_on_the_event_loop_without_blocking(
    settings, provider, clock
):
    configure(settings, chat={"default": chat_settings(provider, MAX_RETRIES=1)})
    provider.fail("503")

    response = asyncio.run(ai.get_chat_backend().achat(messages=MESSAGES))

    assert response.text
    assert count(provider) == 2
    assert clock.sleeps == [0.375]


# -- streams -------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["500", "stream-garbage", "no-answer"])
def test_a_stream_failing_before_its_first_part_is_retried(
    settings, provider, clock, mode
):
    configure(settings, chat={"default": chat_settings(provider, MAX_RETRIES=1)})
    provider.fail(mode)

    response = ai.get_chat_backend().chat(messages=MESSAGES, stream=True)

    assert response.text() == provider.state.reply
    assert count(provider) == 2


def test_an_async_stream_failing_before_its_first_part_is_retried(
    settings, provider, clock
):
    configure(settings, chat={"default": chat_settings(provider, MAX_RETRIES=1)})
    provider.fail("stream-garbage")

    async def read():
        response = await ai.get_chat_backend().achat(messages=MESSAGES, stream=True)
        return "".join([part["content"] async for part in response])

    assert asyncio.run(read()) == provider.state.reply
    assert count(provider) == 2


def test_a_stream_cut_after_its_first_part_is_not_retried(settings, provider, clock):
    configure(settings, chat={"default": chat_settings(provider, MAX_RETRIES=2)})
    provider.fail("cut")

    response = ai.get_chat_backend().chat(messages=MESSAGES, stream=True)
    parts = iter(response)
    first = next(parts)
    with pytest.raises(AIInvalidResponseError):
        list(parts)

    assert first["content"]
    assert count(provider) == 1
    assert clock.sleeps == []


# -- fallbacks -----------------------------------------------------------------


def test_fallback_to_a_second_server_then_a_third(settings, servers, clock):
    primary, backup, third = servers
    configure(
        settings,
        chat={
            "default": chat_settings(
                primary,
                MAX_RETRIES=1,
                FALLBACKS=["backup", "third"],
                DEFAULT_PARAMETERS={"temperature": 0.1},
            ),
            "backup": chat_settings(
                backup, MAX_RETRIES=1, DEFAULT_PARAMETERS={"temperature": 0.5}
            ),
            "third": chat_settings(
                third,
                model="openai/third-model",
                MAX_RETRIES=0,
                DEFAULT_PARAMETERS={"temperature": 0.9},
            ),
        },
    )
    primary.fail_always("500")
    backup.fail_always("reset")

    response = ai.get_chat_backend().chat(messages=MESSAGES, max_tokens=7)

    assert response.alias == "third"
    assert response.model_id == "openai/third-model"
    assert (count(primary), count(backup), count(third)) == (2, 2, 1)
    # Each alias sends its own parameters, and the call's keyword arguments.
    sent = [server.requests_to(CHAT)[-1].json for server in (primary, backup, third)]
    assert [body["temperature"] for body in sent] == [0.1, 0.5, 0.9]
    assert {body["max_tokens"] for body in sent} == {7}
    assert {body["model"] for body in sent} == {
        "test-chat",
        "third-model",
    }
    # Waits between retries of one alias; none between aliases.
    assert clock.sleeps == [0.375, 0.375]


def test_a_context_window_too_small_falls_back_at_once(settings, servers, clock):
    primary, backup, _ = servers
    configure(
        settings,
        chat={
            "default": chat_settings(primary, MAX_RETRIES=2, FALLBACKS=["large"]),
            "large": chat_settings(backup, model="openai/large-context"),
        },
    )
    primary.fail("context")

    response = ai.get_chat_backend().chat(messages=MESSAGES)

    assert response.alias == "large"
    assert (count(primary), count(backup)) == (1, 1)
    assert clock.sleeps == []


def test_a_bad_request_does_not_fall_back(settings, servers, clock):
    primary, backup, _ = servers
    configure(
        settings,
        chat={
            "default": chat_settings(primary, FALLBACKS=["backup"]),
            "backup": chat_settings(backup),
        },
    )
    primary.fail("400")

    with pytest.raises(AIBadRequestError):
        ai.get_chat_backend().chat(messages=MESSAGES)
    assert count(backup) == 0


def test_a_stream_falls_back_before_its_first_part(settings, servers, clock):
    primary, backup, _ = servers
    configure(
        settings,
        chat={
            "default": chat_settings(primary, FALLBACKS=["backup"]),
            "backup": chat_settings(backup),
        },
    )
    primary.fail("503")

    response = ai.get_chat_backend().chat(messages=MESSAGES, stream=True)

    assert response.alias == "backup"
    assert response.text() == backup.state.reply


@pytest.mark.django_db
def test_fallbacks_use_the_sites_overrides_for_their_alias(settings, servers, clock):
    primary, backup, _ = servers
    configure(
        settings,
        chat={
            "default": chat_settings(primary, FALLBACKS=["backup"]),
            "backup": chat_settings(backup),
        },
    )
    root = Page.get_first_root_node()
    home = root.add_child(instance=Page(title="Home", slug="resilience-home"))
    Site.objects.all().delete()
    site = Site.objects.create(
        hostname="a.example", port=80, root_page=home, is_default_site=True
    )
    overrides = AISettings.for_site(site)
    overrides.set_overrides("chat", ALL_ALIASES, {"temperature": 0.3})
    overrides.set_overrides("chat", "backup", {"temperature": 1.1})
    overrides.save()
    primary.fail("500")

    response = ai.get_chat_backend(site=site).chat(messages=MESSAGES)

    assert response.alias == "backup"
    assert primary.requests_to(CHAT)[-1].json["temperature"] == 0.3
    assert backup.requests_to(CHAT)[-1].json["temperature"] == 1.1


def test_backends_built_without_settings_do_not_follow_fallbacks(
    settings, servers, clock
):
    from wagtail_vector_index.ai_utils.backends import get_chat_backend

    primary, backup, _ = servers
    configure(settings, chat={"backup": chat_settings(backup)})
    backend = get_chat_backend(
        backend_dict=chat_settings(primary, FALLBACKS=["backup"]), backend_id="solo"
    )
    primary.fail("500")

    with pytest.raises(AIServiceUnavailableError):
        backend.chat(messages=MESSAGES)
    assert count(backup) == 0


# -- one deadline for the whole call ----------------------------------------------


def slow_chain(settings, servers, **primary_config):
    """Three aliases, each on a server that answers after 3 s."""
    primary, backup, third = servers
    configure(
        settings,
        chat={
            "default": chat_settings(
                primary, FALLBACKS=["backup", "third"], **primary_config
            ),
            "backup": chat_settings(backup),
            "third": chat_settings(third),
        },
    )
    # LiteLLM's first call in a process loads much of it (seconds): not what
    # is measured here.
    # Its first async call builds the async clients: warm both paths.
    ai.get_chat_backend().chat(messages=MESSAGES)
    asyncio.run(ai.get_chat_backend().achat(messages=MESSAGES))
    for server in servers:
        server.reset()
        server.fail_always("slow")


def call_chat(style, **kwargs):
    backend = ai.get_chat_backend()
    if style == "sync":
        return backend.chat(messages=MESSAGES, **kwargs)
    return asyncio.run(backend.achat(messages=MESSAGES, **kwargs))


@pytest.mark.parametrize("style", ["sync", "async"])
def test_the_timeout_bounds_the_call_fallbacks_included(
    settings, servers, clock, style
):
    slow_chain(settings, servers)

    started = time.monotonic()
    with pytest.raises(AITimeoutError) as raised:
        call_chat(style, timeout=1)

    assert time.monotonic() - started < 1.5  # Not 1 s per alias.
    # The first request took the whole second: no fallback was tried.
    assert [count(server) for server in servers] == [1, 0, 0]
    message = str(raised.value)
    assert "timeout of 1 s ran out after 1 request" in message
    assert '"backup", "third"' in message
    assert raised.value.attempts == 1
    assert isinstance(raised.value.__cause__, AITimeoutError)


@pytest.mark.parametrize("style", ["sync", "async"])
def test_fallbacks_are_tried_or_skipped_as_the_time_left_says(
    settings, servers, clock, style
):
    # The first request is cut at 0.3 s; the backup, with no cap of its own,
    # gets what is left of the two seconds (no time for the third). Two
    # seconds, not one: on a loaded machine the cut first request can take
    # most of a second to give up, and the backup must still get its turn.
    slow_chain(settings, servers, ATTEMPT_TIMEOUT=0.3)

    started = time.monotonic()
    with pytest.raises(AITimeoutError) as raised:
        call_chat(style, timeout=2)

    assert time.monotonic() - started < 2.5
    assert [count(server) for server in servers] == [1, 1, 0]
    assert raised.value.attempts == 2
    assert 'not tried: "third"' in str(raised.value)


def test_a_fallback_answers_within_the_time_left(settings, servers, clock):
    slow_chain(settings, servers, ATTEMPT_TIMEOUT=0.3)
    servers[1].fail_always(None)  # The backup answers at once.

    response = call_chat("sync", timeout=2)

    assert response.alias == "backup"
    assert [count(server) for server in servers] == [1, 1, 0]


def test_a_timeout_in_the_settings_is_the_calls_deadline(settings, servers, clock):
    slow_chain(settings, servers, DEFAULT_PARAMETERS={"timeout": 1})

    started = time.monotonic()
    with pytest.raises(AITimeoutError):
        call_chat("async")

    assert time.monotonic() - started < 1.5
    assert [count(server) for server in servers] == [1, 0, 0]


@pytest.mark.parametrize("style", ["embed", "embed_matrix", "aembed", "aembed_matrix"])
def test_embedding_batches_share_the_calls_deadline(settings, provider, clock, style):
    configure(
        settings,
        embedding={
            "default": embedding_backend_settings(
                provider, BATCH_SIZE=1, MAX_CONCURRENCY=1
            )
        },
    )
    backend = ai.get_embedding_backend()
    backend.embed_matrix(["warm"])  # LiteLLM's first call loads much of it.
    provider.reset()
    provider.state.latency = 0.4  # Each batch: 0.4 s; the third has 0.2 s left.
    texts = ["one", "two", "three", "four"]

    started = time.monotonic()
    with pytest.raises(AITimeoutError):
        result = getattr(backend, style)(texts, timeout=1)
        if asyncio.iscoroutine(result):
            asyncio.run(result)
        else:
            list(result)

    assert time.monotonic() - started < 1.5  # Not 4 x 0.4 s.
    assert count(provider, EMBEDDINGS) == 3  # The fourth never started.


# -- the circuit breaker -------------------------------------------------------

BREAKER = {"FAILURE_THRESHOLD": 2, "COOLDOWN_SECONDS": 30}


def test_the_circuit_opens_skips_and_closes_after_the_cooldown(
    settings, provider, clock
):
    configure(
        settings,
        chat={"default": chat_settings(provider)},
        CIRCUIT_BREAKER=BREAKER,
    )
    backend = ai.get_chat_backend()
    provider.fail_always("500")
    for _ in range(2):
        with pytest.raises(AIServiceUnavailableError):
            backend.chat(messages=MESSAGES)
    state = resilience.breaker_state("chat", "default")
    assert (state.state, state.failures) == ("open", 2)
    assert 29 < state.retry_in <= 30
    assert "reported an internal error" in state.last_error

    # Open: refused at once, without a request.
    with pytest.raises(AICircuitOpenError) as raised:
        backend.chat(messages=MESSAGES)
    assert raised.value.retryable
    assert raised.value.attempts == 0
    assert "paused" in str(raised.value)
    assert count(provider) == 2

    # After the cooldown one call tries again; its success closes the circuit.
    clock.offset += 31
    assert resilience.breaker_state("chat", "default").state == "half_open"
    provider.fail_always(None)
    assert backend.chat(messages=MESSAGES).text
    assert resilience.breaker_state("chat", "default").state == "closed"
    assert count(provider) == 3


def test_a_failed_trial_opens_the_circuit_again(settings, provider, clock):
    configure(
        settings, chat={"default": chat_settings(provider)}, CIRCUIT_BREAKER=BREAKER
    )
    backend = ai.get_chat_backend()
    provider.fail_always("502")
    for _ in range(2):
        with pytest.raises(AIServiceUnavailableError):
            backend.chat(messages=MESSAGES)
    clock.offset += 31

    with pytest.raises(AIServiceUnavailableError):
        backend.chat(messages=MESSAGES)  # The trial call.
    with pytest.raises(AICircuitOpenError):
        backend.chat(messages=MESSAGES)
    assert count(provider) == 3


def test_an_open_circuit_goes_straight_to_the_fallbacks(settings, servers, clock):
    primary, backup, _ = servers
    configure(
        settings,
        chat={
            "default": chat_settings(primary, FALLBACKS=["backup"]),
            "backup": chat_settings(backup),
        },
        CIRCUIT_BREAKER=BREAKER,
    )
    primary.fail_always("500")
    backend = ai.get_chat_backend()
    for _ in range(2):
        assert backend.chat(messages=MESSAGES).alias == "backup"
    assert count(primary) == 2

    assert backend.chat(messages=MESSAGES).alias == "backup"
    assert count(primary) == 2  # Skipped.
    assert count(backup) == 3


def test_credentials_refused_do_not_open_the_circuit(settings, provider, clock):
    configure(
        settings, chat={"default": chat_settings(provider)}, CIRCUIT_BREAKER=BREAKER
    )
    provider.fail_always("401")
    for _ in range(3):
        with pytest.raises(AIAuthenticationError):
            ai.get_chat_backend().chat(messages=MESSAGES)
    assert resilience.breaker_state("chat", "default").state == "closed"


def test_a_threshold_of_zero_turns_the_breaker_off(settings, provider, clock):
    configure(
        settings,
        chat={"default": chat_settings(provider)},
        CIRCUIT_BREAKER={"FAILURE_THRESHOLD": 0},
    )
    provider.fail_always("500")
    for _ in range(4):
        with pytest.raises(AIServiceUnavailableError):
            ai.get_chat_backend().chat(messages=MESSAGES)
    assert count(provider) == 4


def test_check_connection_reaches_an_open_circuit_and_closes_it(
    settings, provider, clock
):
    configure(
        settings, chat={"default": chat_settings(provider)}, CIRCUIT_BREAKER=BREAKER
    )
    provider.fail_always("500")
    for _ in range(2):
        with pytest.raises(AIServiceUnavailableError):
            ai.get_chat_backend().chat(messages=MESSAGES)
    provider.fail_always(None)

    assert ai.get_chat_backend().check_connection() > 0
    assert resilience.breaker_state("chat", "default").state == "closed"


# -- embeddings ----------------------------------------------------------------


def test_embedding_batches_are_retried_one_by_one(settings, provider, clock):
    configure(
        settings,
        embedding={
            "default": embedding_backend_settings(provider, MAX_RETRIES=1, BATCH_SIZE=2)
        },
    )
    texts = [f"text {n}" for n in range(6)]
    provider.fail("500")

    vectors = asyncio.run(ai.get_embedding_backend().aembed(texts))

    assert vectors == [fake_vector(text) for text in texts]
    assert count(provider, EMBEDDINGS) == 4  # Three batches, one sent twice.
    assert clock.sleeps == [0.375]


def test_embedding_fallback_to_the_same_model_elsewhere(settings, servers, clock):
    primary, backup, _ = servers
    configure(
        settings,
        embedding={
            "default": embedding_backend_settings(primary, FALLBACKS=["region-2"]),
            "region-2": embedding_backend_settings(backup),
        },
    )
    primary.fail_always("503")
    texts = ["one", "two"]

    matrix = ai.get_embedding_backend().embed_matrix(texts)

    assert matrix.tolist() == [fake_vector(text) for text in texts]
    assert count(backup, EMBEDDINGS) == 1


def test_embedding_fallbacks_to_another_model_are_refused(settings, servers, clock):
    primary, backup, _ = servers
    configure(
        settings,
        embedding={
            "default": embedding_backend_settings(primary, FALLBACKS=["other"]),
            "other": embedding_backend_settings(backup, model="openai/other-embed"),
        },
    )
    primary.fail_always("503")

    with pytest.raises(AIServiceUnavailableError):
        list(ai.get_embedding_backend().embed(["one"]))
    assert count(backup, EMBEDDINGS) == 0
    assert [m.id for m in check_settings()] == ["wagtail_vector_index.E026"]


# -- the usage ledger ----------------------------------------------------------


def test_the_ledger_records_each_attempt(settings, servers, clock, empty_ledger):
    primary, backup, _ = servers
    configure(
        settings,
        chat={
            "default": chat_settings(primary, MAX_RETRIES=1, FALLBACKS=["backup"]),
            "backup": chat_settings(backup),
        },
    )
    primary.fail_always("500")

    ai.get_chat_backend().chat(messages=MESSAGES)

    rows = list(
        AIUsageRecord.objects.order_by("attempt").values_list(
            "alias", "attempt", "outcome"
        )
    )
    assert rows == [
        ("default", 1, "AIServiceUnavailableError"),
        ("default", 2, "AIServiceUnavailableError"),
        ("backup", 3, "success"),
    ]


def test_the_ledger_records_each_embedding_attempt(
    settings, provider, clock, empty_ledger
):
    configure(
        settings,
        embedding={"default": embedding_backend_settings(provider, MAX_RETRIES=2)},
    )
    provider.fail("429-bare", times=2)

    list(ai.get_embedding_backend().embed(["one", "two"]))

    rows = list(
        AIUsageRecord.objects.order_by("attempt").values_list(
            "attempt", "outcome", "input_count"
        )
    )
    assert rows == [
        (1, "AIRateLimitError", 2),
        (2, "AIRateLimitError", 2),
        (3, "success", 2),
    ]


def test_a_failed_call_records_its_last_attempt_once(
    settings, provider, clock, empty_ledger
):
    configure(settings, chat={"default": chat_settings(provider, MAX_RETRIES=1)})
    provider.fail_always("503")

    with pytest.raises(AIServiceUnavailableError):
        ai.get_chat_backend().chat(messages=MESSAGES)

    assert list(
        AIUsageRecord.objects.order_by("attempt").values_list("attempt", flat=True)
    ) == [1, 2]


# -- checks --------------------------------------------------------------------


def _errors():
    return [(m.id, m.msg) for m in check_settings() if isinstance(m, Error)]


def test_check_reports_fallback_loops_and_unknown_aliases(settings, provider):
    configure(
        settings,
        chat={
            "default": chat_settings(provider, FALLBACKS=["a"]),
            "a": chat_settings(provider, FALLBACKS=["b", "missing"]),
            "b": chat_settings(provider, FALLBACKS=["default"]),
            "self": chat_settings(provider, FALLBACKS=["self"]),
            "text": chat_settings(provider, FALLBACKS="a"),
        },
    )
    where = 'WAGTAIL_VECTOR_INDEX["CHAT_BACKENDS"]["{}"]["CONFIG"]["FALLBACKS"]'
    assert sorted(_errors()) == sorted(
        [
            (
                "wagtail_vector_index.E025",
                f"{where.format('a')} names 'missing', which is not a configured "
                "alias.",
            ),
            (
                "wagtail_vector_index.E025",
                f"{where.format('text')} must be a list of aliases, not str.",
            ),
            *[
                (
                    "wagtail_vector_index.E025",
                    f'{where.format(alias)} leads back to "{alias}": {loop}.',
                )
                for alias, loop in [
                    ("a", "a → b → default → a"),
                    ("b", "b → default → a → b"),
                    ("default", "default → a → b → default"),
                    ("self", "self → self"),
                ]
            ],
        ]
    )


@pytest.mark.parametrize(
    ("config", "extra", "expected"),
    [
        ({"MAX_RETRIES": -1}, {}, "E024"),
        ({"MAX_RETRIES": "2"}, {}, "E024"),
        ({"ATTEMPT_TIMEOUT": 0}, {}, "E027"),
        ({}, {"CIRCUIT_BREAKER": []}, "E028"),
        ({}, {"CIRCUIT_BREAKER": {"FAILURE_THRESHOLD": -1}}, "E028"),
        ({}, {"CIRCUIT_BREAKER": {"COOLDOWN_SECONDS": "30"}}, "E028"),
        ({}, {"CIRCUIT_BREAKER": {"COOLDOWN": 30}}, "W011"),
    ],
)
def test_check_reports_malformed_resilience_settings(
    settings, provider, config, extra, expected
):
    configure(settings, chat={"default": chat_settings(provider, **config)}, **extra)
    messages = check_settings()
    assert [m.id for m in messages] == [f"wagtail_vector_index.{expected}"]
    assert messages[0].hint


def test_well_formed_resilience_settings_pass_the_checks(settings, servers):
    primary, backup, _ = servers
    configure(
        settings,
        chat={
            "default": chat_settings(
                primary, MAX_RETRIES=0, ATTEMPT_TIMEOUT=5, FALLBACKS=["backup"]
            ),
            "backup": chat_settings(backup, MAX_RETRIES=3),
        },
        embedding={
            "default": embedding_backend_settings(primary, FALLBACKS=["backup"]),
            "backup": embedding_backend_settings(backup),
        },
        CIRCUIT_BREAKER={"FAILURE_THRESHOLD": 3, "COOLDOWN_SECONDS": 12.5},
    )
    assert check_settings() == []
