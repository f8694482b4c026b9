"""Reports › AI usage and the dashboard panel in Chromium: the chart is drawn,
a filter refreshes the totals, chart and list; screenshots for the docs."""

import datetime
import random
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.utils import timezone
from wagtail.models import Page, Site

from tests.utils import PASSWORD, root_page
from wagtail_vector_index.models import AISettings, AIUsageRecord, AIUsageTotal
from wagtail_vector_index.views.usage_panel import month_start

pytestmark = [
    pytest.mark.browser,
    # Transactional (the live server is another thread); serialized_rollback
    # restores the root page and locale that Wagtail's migrations create.
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


#: (kind, alias, model, feature, prompt tokens, completion tokens, USD per call)
CALLS = [
    ("chat", "default", "gpt-4o", "chat test page", 900, 300, "0.0053"),
    ("chat", "writer", "gpt-4o-mini", "page summary", 1500, 400, "0.0005"),
    ("embedding", "default", "text-embedding-3-small", "index update", 3000, 0, ""),
    ("chat", "default", "gpt-4o", "question answering", 2400, 350, "0.0095"),
]


@pytest.fixture
def sites():
    root = root_page()
    home = root.add_child(instance=Page(title="Main", slug="usage-main"))
    blog = root.add_child(instance=Page(title="Blog", slug="usage-blog"))
    Site.objects.all().delete()
    main_site = Site.objects.create(
        hostname="localhost",
        port=80,
        root_page=home,
        is_default_site=True,
        site_name="Main",
    )
    blog_site = Site.objects.create(
        hostname="blog.example", port=80, root_page=blog, site_name="Blog"
    )
    return main_site, blog_site


@pytest.fixture
def reader():
    group = Group.objects.create(name="AI usage readers")
    group.permissions.add(
        Permission.objects.get(codename="access_admin"),
        Permission.objects.get(codename="view_ai_usage_report"),
    )
    user = User.objects.create_user("reader", "reader@example.com", PASSWORD)
    user.groups.add(group)
    return user


@pytest.fixture
def ledger(sites, reader):
    """Two weeks of calls (a seeded random mix), and this month's totals
    behind the dashboard panel."""
    main, blog = sites
    rng = random.Random(13)
    today = timezone.localdate()
    records = []
    for days_ago in range(13, -1, -1):
        day = today - datetime.timedelta(days=days_ago)
        for _ in range(rng.randint(2, 9)):
            kind, alias, model, feature, prompt, completion, price = rng.choice(CALLS)
            failed = rng.random() < 0.1
            hour = datetime.time(rng.randint(8, 18))
            records.append(
                AIUsageRecord(
                    created_at=timezone.make_aware(
                        datetime.datetime.combine(day, hour)
                    ),
                    kind=kind,
                    alias=alias,
                    model_id=model,
                    feature=feature,
                    site=rng.choice([main, main, blog, None]),
                    user=reader if feature == "chat test page" else None,
                    prompt_tokens=prompt,
                    completion_tokens=0 if failed else completion,
                    cost=Decimal(price) if price and not failed else None,
                    latency_ms=rng.randint(150, 2500),
                    outcome="AIRateLimitError" if failed else "success",
                )
            )
    AIUsageRecord.objects.bulk_create(records)
    AISettings.objects.create(
        site=main, monthly_budget_usd=Decimal("25"), monthly_budget_tokens=2_000_000
    )
    for scope, cost, tokens, calls in [
        (f"site:{main.pk}", "21.40", 1_250_000, 412),
        (f"site:{blog.pk}", "3.10", 180_000, 77),
        ("site:none", "0.85", 96_000, 35),
    ]:
        AIUsageTotal.objects.create(
            period="month",
            start=month_start(),
            scope=scope,
            calls=calls,
            tokens=tokens,
            cost=Decimal(cost),
        )
    return records


def test_the_report_draws_the_chart_and_filters(
    page, live_server, log_in, ledger, settings, screenshots
):
    settings.WAGTAIL_VECTOR_INDEX = {"USAGE": {"MONTHLY_BUDGET_USD": 10}}
    log_in("reader")
    page.set_viewport_size({"width": 1400, "height": 1200})

    # The dashboard panel: this month against each site's budget.
    panel = page.locator("section[id^='wvi-ai-usage']")
    panel.wait_for()
    assert "86% of $25.00" in panel.text_content()  # Main: $21.40 of its own $25.
    assert "31% of $10.00" in panel.text_content()  # Blog: the default budget.
    panel.screenshot(path=str(screenshots / "usage-dashboard-panel.png"))

    page.goto(f"{live_server.url}/admin/ai/usage/")
    calls = page.locator("[data-wvi-total=calls]")
    assert calls.text_content().split() == [str(len(ledger)), "calls"]

    chart = page.locator("[data-wvi-chart=cost] svg")
    chart.wait_for(state="visible")
    box = chart.bounding_box()
    assert box["width"] > 300 and box["height"] > 100
    # One bar per day of the two weeks, drawn with a height.
    assert chart.locator("rect").count() == 14
    heights = [
        float(rect.get_attribute("height")) for rect in chart.locator("rect").all()
    ]
    assert max(heights) == 100 and all(h > 0 for h in heights)
    fill = chart.locator("rect").first.evaluate("el => getComputedStyle(el).fill")
    assert fill not in ("", "none", "rgb(0, 0, 0)")  # The stylesheet is applied.

    page.screenshot(path=str(screenshots / "usage-report.png"), full_page=False)

    # Filter on embeddings through the filter drawer: Wagtail swaps in the
    # results, with their totals, chart and breakdowns.
    embeddings = sum(1 for row in ledger if row.kind == "embedding")
    page.click("button[aria-label='Show filters']")
    page.click("button.w-drilldown__toggle:has-text('Kind')")
    page.select_option("select[name=kind]", "embedding")
    page.wait_for_function(
        "n => document.querySelector('[data-wvi-total=calls]')"
        ".textContent.trim().startsWith(n + ' call')",
        arg=str(embeddings),
        timeout=10_000,
    )
    assert "kind=embedding" in page.url
    kinds = page.locator("#listing-results table.listing:not(.wvi-chart__table) td")
    assert page.locator(
        "[data-wvi-breakdown=model_id] tbody th"
    ).all_text_contents() == ["text-embedding-3-small"]
    assert "Chat" not in [text.strip() for text in kinds.all_text_contents()]
    assert page.locator("[data-wvi-chart=cost] svg").is_visible()
