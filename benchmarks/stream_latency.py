"""Benchmark: from the provider's first streamed token to the browser's page.

    python -m pytest benchmarks/stream_latency.py -m browser -s -q

The loopback
provider stamps the moment it writes the first content chunk
(``time.time()``); a MutationObserver in the chat test page stamps the moment
the first text appears (``performance.timeOrigin + performance.now()``), both
on this machine's clock. The path measured: provider → LiteLLM → the
streaming view → Django → Chromium → the Stimulus controller → the DOM.
Median over several runs; target under 100 ms. Chunks come 20 ms apart
(``CHUNK_DELAY=0.1`` in the environment for 100 ms).
"""

import os
import statistics

import pytest
from django.test import override_settings

from tests.browser.test_admin_pages import editor, log_in, sites  # noqa: F401
from tests.utils import chat_backend_settings

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

RUNS = 9

# evaluate() waits for a returned promise, so the promise is parked on window
# before the click and awaited after it.
OBSERVE = """
el => { window.wviArrival = new Promise(resolve => {
    const observer = new MutationObserver(() => {
        if (el.textContent.length > 0) {
            observer.disconnect();
            resolve(performance.timeOrigin + performance.now());
        }
    });
    observer.observe(el, {childList: true, subtree: true, characterData: true});
}); }
"""


def test_first_token_latency(page, live_server, sites, editor, provider):  # noqa: F811
    provider.state.chunk_delay = float(os.environ.get("CHUNK_DELAY", "0.02"))
    settings = {
        "CHAT_BACKENDS": {"default": chat_backend_settings(provider)},
        "TEST_PAGES_RATE_LIMIT": 0,
    }
    latencies = []
    with override_settings(WAGTAIL_VECTOR_INDEX=settings):
        log_in(page, live_server)
        page.goto(f"{live_server.url}/admin/ai/chat/")
        page.fill("textarea[name=message]", "Hello")
        output = page.locator("[data-wvi-chat-target=output][data-side=a]")
        for run in range(RUNS + 1):
            output.evaluate(OBSERVE)
            page.click("[data-wvi-chat-target=send]")
            arrived_ms = page.evaluate("window.wviArrival")
            sent_ms = provider.state.first_token_times[-1] * 1000
            # The controller marks the output busy from the click until the
            # answer has ended; the next run starts after that.
            page.wait_for_selector(
                "[data-wvi-chat-target=output][data-side=a][aria-busy=false]"
            )
            if run:  # The first run warms up LiteLLM and the page.
                latencies.append(arrived_ms - sent_ms)
    median = statistics.median(latencies)
    print(
        f"\nFirst token, provider to page: median {median:.1f} ms, "
        f"min {min(latencies):.1f} ms, max {max(latencies):.1f} ms "
        f"({RUNS} runs; target < 100 ms)"
    )
    assert len(latencies) == RUNS
