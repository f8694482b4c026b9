"""Reports › AI usage and the dashboard's AI usage panel.

The ledger's rows are written here directly (``record``): the code that
records provider calls is not what these tests are about.
"""

import csv
import datetime
import io
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.db import connection
from django.db.models.query import ModelIterable, QuerySet
from django.test import Client, RequestFactory, override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from openpyxl import load_workbook
from wagtail import hooks
from wagtail.admin.menu import reports_menu
from wagtail.models import Page, Site

from tests.utils import logged_in, make_user
from wagtail_vector_index.models import AISettings, AIUsageRecord, AIUsageTotal
from wagtail_vector_index.views.usage_panel import budget_rows, month_start
from wagtail_vector_index.views.usage_report import (
    BREAKDOWN_SIZE,
    MAX_CHART_DAYS,
    UsageFilterSet,
    chart_of,
    format_usd,
    totals_of,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("empty_ledger")]

REPOSITORY = Path(__file__).resolve().parent.parent
REPORT = "wagtail_vector_index:usage_report"
RESULTS = "wagtail_vector_index:usage_report_results"
UTC = datetime.UTC


def at(day, hour=12):
    """A time on ``day`` of November 2026 (UTC)."""
    return datetime.datetime(2026, 11, day, hour, tzinfo=UTC)


def record(**fields):
    """One ledger row: a successful chat call unless told otherwise."""
    values = {
        "created_at": at(10),
        "kind": AIUsageRecord.Kind.CHAT,
        "alias": "default",
        "model_id": "gpt-4o",
        "feature": "chat test page",
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "cost": Decimal("0.01"),
        "latency_ms": 800,
    }
    values.update(fields)
    return AIUsageRecord.objects.create(**values)


@pytest.fixture
def sites():
    """The default site ("Main") and a second one ("Blog")."""
    main = Site.objects.get(is_default_site=True)
    main.site_name = "Main"
    main.save()
    home = Page.get_first_root_node().add_child(
        instance=Page(title="Blog", slug="usage-blog")
    )
    blog = Site.objects.create(
        hostname="blog.example", port=80, root_page=home, site_name="Blog"
    )
    return main, blog


@pytest.fixture
def reporter():
    """Admin access and the report's permission, through a group."""
    group = Group.objects.create(name="AI usage readers")
    group.permissions.add(
        Permission.objects.get(codename="access_admin"),
        Permission.objects.get(codename="view_ai_usage_report"),
    )
    user = User.objects.create_user("reader", "reader@example.com")
    user.groups.add(group)
    return user


@pytest.fixture
def outsider():
    """Admin access, and even the test pages, but not the report."""
    return make_user("outsider", "use_ai_test_pages")


def report(user, url=REPORT, /, **query):
    response = logged_in(user).get(reverse(url), query)
    assert response.status_code == 200
    return response


def listed(response):
    return sorted(row.pk for row in response.context["object_list"])


# -- permission, menu, URLs ------------------------------------------------------------


def test_urls_are_under_the_admin():
    assert reverse(REPORT) == "/admin/ai/usage/"
    assert reverse(RESULTS) == "/admin/ai/usage/results/"


@pytest.mark.parametrize("url", [REPORT, RESULTS])
@pytest.mark.parametrize("query", [{}, {"export": "csv"}, {"export": "xlsx"}])
def test_forbidden_without_the_permission(outsider, url, query):
    record()
    response = logged_in(outsider).get(reverse(url), query)
    assert response.status_code == 403
    assert b"gpt-4o" not in response.content


def test_anonymous_users_are_sent_to_the_login():
    response = Client().get(reverse(REPORT))
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_granted_through_a_group(reporter):
    record()
    response = report(reporter)
    assert "AI usage" in response.content.decode()
    assert len(response.context["object_list"]) == 1


def test_superusers_have_it():
    assert report(make_user("root", superuser=True)).status_code == 200


def test_the_permission_is_offered_in_the_group_editor():
    registered = Permission.objects.none()
    for hook in hooks.get_hooks("register_permissions"):
        registered = registered | hook()
    assert registered.filter(
        content_type__app_label="wagtail_vector_index",
        codename="view_ai_usage_report",
    ).exists()
    admin = logged_in(make_user("root", superuser=True))
    group = Group.objects.create(name="Readers")
    page = admin.get(reverse("wagtailusers_groups:edit", args=[group.pk]))
    assert "Can view the AI usage report" in page.content.decode()


def _reports_menu_urls(user):
    request = RequestFactory().get("/admin/")
    request.user = user
    return [item.url for item in reports_menu.menu_items_for_request(request)]


def test_the_menu_item_is_shown_only_with_the_permission(reporter, outsider):
    assert reverse(REPORT) in _reports_menu_urls(reporter)
    assert reverse(REPORT) not in _reports_menu_urls(outsider)
    # As rendered in the sidebar.
    assert reverse(REPORT) in logged_in(reporter).get("/admin/").content.decode()
    assert reverse(REPORT) not in logged_in(outsider).get("/admin/").content.decode()


def test_importing_the_report_and_panel_does_not_import_litellm():
    code = (
        "import sys, django\n"
        "django.setup()\n"
        "import wagtail_vector_index.wagtail_hooks\n"
        "import wagtail_vector_index.views.usage_report\n"
        "import wagtail_vector_index.views.usage_panel\n"
        "from django.urls import reverse\n"
        "reverse('wagtail_vector_index:usage_report')\n"
        "print('litellm' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPOSITORY,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == "False", result.stderr


# -- filters ---------------------------------------------------------------------------


@pytest.fixture
def ledger(sites):
    """Rows differing in every filtered field."""
    main, blog = sites
    alice = User.objects.create_user("alice")
    bob = User.objects.create_user("bob")
    # The daily totals the ledger writer keeps beside each user's rows.
    for user, day in ((alice, 2), (alice, 7), (bob, 5)):
        AIUsageTotal.objects.create(
            period="day", start=at(day).date(), scope=f"user:{user.pk}", calls=1
        )
    return {
        "chat": record(site=main, user=alice, created_at=at(2)),
        "embed": record(
            site=blog,
            user=bob,
            kind=AIUsageRecord.Kind.EMBEDDING,
            alias="search",
            model_id="text-embedding-3-small",
            feature="index update",
            completion_tokens=0,
            created_at=at(5),
        ),
        "error": record(
            site=main,
            user=alice,
            alias="writer",
            outcome="AIRateLimitError",
            error_message="Too many requests",
            prompt_tokens=0,
            completion_tokens=0,
            cost=None,
            created_at=at(7),
        ),
        "timeout": record(
            outcome="AITimeoutError",
            model_id="gpt-4o-mini",
            feature="",
            cost=None,
            created_at=at(9),
        ),
    }


def test_no_filter_lists_every_row_newest_first(reporter, ledger):
    response = report(reporter)
    rows = list(response.context["object_list"])
    assert [row.pk for row in rows] == [
        ledger[name].pk for name in ("timeout", "error", "embed", "chat")
    ]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"created_at_from": "2026-11-05"}, ["embed", "error", "timeout"]),
        ({"created_at_to": "2026-11-05"}, ["chat", "embed"]),
        (
            {"created_at_from": "2026-11-03", "created_at_to": "2026-11-07"},
            ["embed", "error"],
        ),
        ({"kind": "embedding"}, ["embed"]),
        ({"kind": "chat"}, ["chat", "error", "timeout"]),
        ({"alias": "writer"}, ["error"]),
        ({"model_id": "gpt-4o-mini"}, ["timeout"]),
        ({"feature": "index update"}, ["embed"]),
        ({"outcome": "success"}, ["chat", "embed"]),
        ({"outcome": "any-error"}, ["error", "timeout"]),
        ({"outcome": "AITimeoutError"}, ["timeout"]),
        ({"site": "null"}, ["timeout"]),
        ({"user": "null"}, ["timeout"]),
        ({"kind": "chat", "outcome": "any-error", "site": "null"}, ["timeout"]),
    ],
)
def test_each_filter(reporter, ledger, query, expected):
    response = report(reporter, **query)
    assert listed(response) == sorted(ledger[name].pk for name in expected)
    assert response.context["summary"].totals.calls == len(expected)


def test_the_site_and_user_filters(reporter, ledger, sites):
    main, blog = sites
    assert listed(report(reporter, site=blog.pk)) == [ledger["embed"].pk]
    assert listed(report(reporter, site=main.pk)) == sorted(
        [ledger["chat"].pk, ledger["error"].pk]
    )
    bob = User.objects.get(username="bob")
    assert listed(report(reporter, user=bob.pk)) == [ledger["embed"].pk]


ECHO = "wagtail_vector_index.ai_utils.backends.offline.EchoChatBackend"
HASHING = "wagtail_vector_index.ai_utils.backends.offline.HashingEmbeddingBackend"
SETTINGS_FOR_CHOICES = {
    "CHAT_BACKENDS": {
        "default": {"CLASS": ECHO, "CONFIG": {"MODEL_ID": "gpt-4o"}},
        "writer": {"CLASS": ECHO, "CONFIG": {"MODEL_ID": "gpt-4o-mini"}},
    },
    "EMBEDDING_BACKENDS": {
        "search": {"CLASS": HASHING, "CONFIG": {"MODEL_ID": "text-embedding-3-small"}},
    },
}


def choices_of(filters, name):
    return [value for value, _ in filters.form.fields[name].choices]


@override_settings(WAGTAIL_VECTOR_INDEX=SETTINGS_FOR_CHOICES)
def test_filter_choices_come_from_the_settings_and_the_totals(reporter, ledger):
    filters = report(reporter).context["filters"]
    assert choices_of(filters, "alias") == ["", "default", "search", "writer"]
    assert choices_of(filters, "model_id") == [
        "",
        "gpt-4o",
        "gpt-4o-mini",
        "text-embedding-3-small",
    ]
    features = choices_of(filters, "feature")
    assert {"chat test page", "index update", "index search"} <= set(features)
    assert "" not in features[1:]  # No label is not a choice of its own.
    outcomes = choices_of(filters, "outcome")
    assert outcomes[:3] == ["", "success", "any-error"]
    assert {"AIRateLimitError", "AITimeoutError"} <= set(outcomes)
    users = [str(label) for _, label in filters.form.fields["user"].choices]
    assert users == ["Anyone", "No user", "alice", "bob"]


def test_a_value_asked_for_in_the_url_is_a_choice(reporter, ledger):
    """A breakdown's link to an alias no longer configured, or a label of the
    site's own code, still filters."""
    ledger["chat"].feature = "newsletter summaries"
    ledger["chat"].save()
    response = report(reporter, feature="newsletter summaries", alias="default")
    assert listed(response) == [ledger["chat"].pk]
    assert "newsletter summaries" in choices_of(response.context["filters"], "feature")


def test_the_filter_choices_do_not_read_the_ledger(reporter, ledger, rf):
    request = rf.get("/", {"user": "", "alias": "writer"})
    request.user = reporter
    with CaptureQueriesContext(connection) as queries:
        filters = UsageFilterSet(request.GET, request=request)
        for field in filters.form.fields.values():
            list(getattr(field, "choices", []))
    table = AIUsageRecord._meta.db_table
    assert queries.captured_queries  # The users, from the totals.
    assert not [q["sql"] for q in queries.captured_queries if table in q["sql"]]


def test_the_no_site_filter_is_named_in_its_pill(reporter, ledger):
    page = report(reporter, RESULTS, site="null").content.decode()
    assert '<b class="w-ml-1">No site</b>' in page
    assert ">null</b>" not in page


def test_nothing_matching(reporter):
    record()
    response = report(reporter, kind="embedding")
    page = response.content.decode()
    assert "No calls match your query." in page
    assert response.context["summary"].totals.calls == 0
    assert response.context["summary"].chart is None
    assert "wvi-chart" not in page and "Breakdowns" not in page
    AIUsageRecord.objects.all().delete()
    assert "There are no calls to display." in report(reporter).content.decode()


def test_the_results_fragment_carries_the_summary(reporter, ledger):
    # Wagtail refreshes the results (not the page) when a filter changes: the
    # totals, chart and breakdowns must be in that fragment.
    response = report(reporter, RESULTS, kind="embedding")
    page = response.content.decode()
    assert "<html" not in page
    assert 'data-wvi-chart="cost"' in page and 'data-wvi-breakdown="alias"' in page
    assert response.context["summary"].totals.calls == 1


# -- totals, chart, breakdowns ---------------------------------------------------------


def test_totals_of_the_filtered_rows_in_one_query(reporter, ledger):
    record(cost=Decimal("0.25"), prompt_tokens=100, completion_tokens=40)
    rows = AIUsageRecord.objects.all()
    with CaptureQueriesContext(connection) as queries:
        totals = totals_of(rows)
    assert len(queries) == 1
    assert totals.calls == 5
    assert totals.errors == 2
    assert totals.prompt_tokens == 10 + 10 + 0 + 10 + 100
    assert totals.completion_tokens == 5 + 0 + 0 + 5 + 40
    assert totals.tokens == 180
    assert totals.cost == Decimal("0.27")  # 0.01 + 0.01 + 0.25; two unknown.
    assert totals.unknown_cost_calls == 2

    response = report(reporter, outcome="success")
    totals = response.context["summary"].totals
    assert (totals.calls, totals.errors, totals.cost) == (3, 0, Decimal("0.27"))
    page = response.content.decode()
    assert "3 calls" in page and "0 errors" in page and "$0.27 spent" in page


def _queries(user, url, **query):
    client = logged_in(user)
    with CaptureQueriesContext(connection) as queries:
        assert client.get(reverse(url), query).status_code == 200
    return len(queries)


def test_queries_do_not_grow_with_the_rows(reporter, sites):
    main, blog = sites
    users = [User.objects.create_user(f"user-{n}") for n in range(3)]
    for n in range(3):
        record(site=main, user=users[n])
    few = _queries(reporter, REPORT)
    for n in range(30):
        record(site=[main, blog][n % 2], user=users[n % 3], created_at=at(n % 9 + 1))
    assert _queries(reporter, REPORT) == few


def test_the_panel_queries_do_not_grow_with_the_sites(reporter, sites):
    main, blog = sites
    AISettings.objects.create(site=main, monthly_budget_usd=Decimal("10"))
    few = _queries(reporter, "wagtailadmin_home")
    root = Page.get_first_root_node()
    for n in range(5):
        home = root.add_child(instance=Page(title=f"S{n}", slug=f"usage-s{n}"))
        site = Site.objects.create(hostname=f"s{n}.example", root_page=home)
        AISettings.objects.create(site=site, monthly_budget_usd=Decimal(n))
        total(f"site:{site.pk}", "1")
    assert _queries(reporter, "wagtailadmin_home") == few


def test_the_report_says_when_costs_are_unknown(reporter, ledger):
    page = report(reporter).content.decode()
    assert "The cost of 2 calls is unknown" in page
    assert "is unknown" not in report(reporter, outcome="success").content.decode()


def test_the_chart_per_day_over_the_chosen_range(reporter):
    # Nov 2: 2 calls ($0.30 + $0.10), one failed; Nov 3: nothing; Nov 4:
    # 1 call ($0.20); Nov 5: one call of unknown cost. Outside: Nov 1, 6.
    record(created_at=at(1), cost=Decimal("5"))
    record(created_at=at(2, 9), cost=Decimal("0.30"))
    record(created_at=at(2, 23), cost=Decimal("0.10"), outcome="AITimeoutError")
    record(created_at=at(4), cost=Decimal("0.20"), prompt_tokens=7)
    record(created_at=at(5), cost=None, completion_tokens=0)
    record(created_at=at(6), cost=Decimal("5"))

    chart = (
        report(reporter, created_at_from="2026-11-02", created_at_to="2026-11-05")
        .context["summary"]
        .chart
    )

    assert [day.day for day in chart.days] == [
        datetime.date(2026, 11, day) for day in (2, 3, 4, 5)
    ]
    assert [day.calls for day in chart.days] == [2, 0, 1, 1]
    assert [day.errors for day in chart.days] == [1, 0, 0, 0]
    assert [day.cost for day in chart.days] == [
        Decimal("0.40"),
        0,
        Decimal("0.20"),
        0,
    ]
    assert [day.tokens for day in chart.days] == [30, 0, 12, 10]
    assert (chart.max_cost, chart.max_calls) == (Decimal("0.40"), 2)
    # Heights are shares of the highest day (100 units); calls stack the
    # errors on the successes.
    assert [day.cost_height for day in chart.days] == [
        "100.00",
        "0.00",
        "50.00",
        "0.00",
    ]
    assert [day.success_height for day in chart.days] == [
        "50.00",
        "0.00",
        "50.00",
        "50.00",
    ]
    assert [day.errors_height for day in chart.days] == [
        "50.00",
        "0.00",
        "0.00",
        "0.00",
    ]
    assert chart.days[0].errors_y == "0.00" and chart.days[0].success_y == "50.00"
    assert [day.x for day in chart.days] == ["1.00", "11.00", "21.00", "31.00"]
    assert chart.width == "40" and not chart.truncated


def test_the_chart_is_accessible_and_escaped(reporter):
    record(created_at=at(2), cost=Decimal("0.40"))
    record(created_at=at(4), cost=Decimal("0.20"))
    page = report(reporter).content.decode()
    # Without a date filter: from the first to the last day with calls.
    assert 'viewBox="0 0 30 100"' in page
    assert 'role="img" aria-labelledby="wvi-chart-cost-caption"' in page
    assert "Cost per day from Nov. 2, 2026 to Nov. 4, 2026 (highest: $0.40)" in page
    # The figures, in a table and in each bar's tooltip.
    assert '<tr data-wvi-day="2026-11-03">' in page
    assert "<title>Nov. 2, 2026: $0.40, 1 call, 0 errors</title>" in page


def test_the_chart_keeps_the_last_days_of_a_long_range():
    record(created_at=at(20))
    start = datetime.date(2024, 1, 1)
    chart = chart_of(AIUsageRecord.objects.all(), start, datetime.date(2026, 11, 20))
    assert chart.truncated and len(chart.days) == MAX_CHART_DAYS
    assert chart.days[-1].day == datetime.date(2026, 11, 20)
    assert chart.days[-1].calls == 1
    assert chart_of(AIUsageRecord.objects.none()) is None


def test_breakdowns_by_site_alias_model_and_feature(reporter, ledger, sites):
    main, blog = sites
    record(site=blog, alias="search", cost=Decimal("1.50"), feature="<b>bold</b>")
    summary = report(reporter).context["summary"]
    by = {breakdown.key: breakdown for breakdown in summary.breakdowns}
    assert list(by) == ["site", "alias", "model_id", "feature"]

    sites_rows = [(g.label, g.calls, g.errors, g.cost) for g in by["site"].groups]
    assert sites_rows == [
        ("Blog", 2, 0, Decimal("1.51")),
        ("Main [default]", 2, 1, Decimal("0.01")),
        ("No site", 1, 1, Decimal("0")),
    ]
    assert [g.url for g in by["site"].groups] == [
        f"/admin/ai/usage/?site={blog.pk}",
        f"/admin/ai/usage/?site={main.pk}",
        "/admin/ai/usage/?site=null",
    ]
    assert [(g.label, g.calls) for g in by["alias"].groups] == [
        ("search", 2),
        ("default", 2),
        ("writer", 1),
    ]
    assert [g.label for g in by["model_id"].groups] == [
        "gpt-4o",
        "text-embedding-3-small",
        "gpt-4o-mini",
    ]
    features = [(g.label, g.url) for g in by["feature"].groups]
    assert features[0] == (
        "<b>bold</b>",
        "/admin/ai/usage/?feature=%3Cb%3Ebold%3C%2Fb%3E",
    )
    # Calls without a feature label cannot be filtered on: no link.
    assert ("(none)", None) in features


def test_breakdown_links_keep_the_other_filters(reporter, ledger):
    summary = report(reporter, kind="chat", p="1").context["summary"]
    (alias,) = [b for b in summary.breakdowns if b.key == "alias"]
    assert alias.groups[0].url == "/admin/ai/usage/?alias=default&kind=chat"


def test_breakdowns_show_the_top_rows(reporter):
    for number in range(BREAKDOWN_SIZE + 2):
        record(alias=f"alias-{number:02}", cost=Decimal(number))
    summary = report(reporter).context["summary"]
    (alias,) = [b for b in summary.breakdowns if b.key == "alias"]
    assert len(alias.groups) == BREAKDOWN_SIZE and alias.more
    assert alias.groups[0].label == f"alias-{BREAKDOWN_SIZE + 1:02}"
    (site,) = [b for b in summary.breakdowns if b.key == "site"]
    assert not site.more


def test_costs_are_shown_in_cents_or_fractions_of_a_cent():
    assert format_usd(Decimal("1234.5")) == "$1,234.50"
    assert format_usd(Decimal("0.000123")) == "$0.000123"
    assert format_usd(Decimal("0.00000001")) == "< $0.000001"
    assert format_usd(Decimal(0)) == "$0.00"
    assert format_usd(None) == "unknown"


# -- escaping --------------------------------------------------------------------------


def test_labels_from_code_and_users_are_escaped(reporter, sites):
    main, _ = sites
    main.site_name = "<i>Main</i>"
    main.save()
    record(site=main, feature="<script>alert(1)</script>", alias="<b>x</b>")
    page = report(reporter).content.decode()
    assert "<script>alert(1)</script>" not in page
    assert "<b>x</b>" not in page and "<i>Main</i>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;b&gt;x&lt;/b&gt;" in page


# -- exports ---------------------------------------------------------------------------

HEADINGS = [
    "When (UTC)",
    "Kind",
    "Alias",
    "Model",
    "Site",
    "User",
    "Feature",
    "Prompt tokens",
    "Completion tokens",
    "Total tokens",
    "Cost (USD)",
    "Latency (ms)",
    "Time to first token (ms)",
    "Streamed",
    "Stopped early",
    "Inputs",
    "Attempt",
    "Outcome",
    "Error",
]


@pytest.fixture
def exported(sites):
    main, _ = sites
    alice = User.objects.create_user("alice")
    record(
        site=main,
        user=alice,
        created_at=datetime.datetime(2026, 11, 3, 14, 5, 6, tzinfo=UTC),
        cost=Decimal("0.0123"),
        time_to_first_token_ms=120,
        streamed=True,
        input_count=2,
        prompt="SECRET PROMPT TEXT",
        response="SECRET ANSWER TEXT",
    )
    record(
        created_at=at(4),
        kind=AIUsageRecord.Kind.EMBEDDING,
        alias="search",
        outcome="AIRateLimitError",
        error_message="Too many requests",
        cost=None,
        latency_ms=None,
        attempt=2,
    )


def test_csv_export(reporter, exported):
    response = report(reporter, export="csv", kind="chat")
    assert response["Content-Type"] == "text/csv"
    assert "ai-usage-" in response["Content-Disposition"]
    content = b"".join(response.streaming_content).decode()
    assert "SECRET" not in content
    rows = list(csv.reader(io.StringIO(content)))
    assert rows == [
        HEADINGS,
        [
            "2026-11-03 14:05:06",
            "chat",
            "default",
            "gpt-4o",
            "Main [default]",
            "alice",
            "chat test page",
            "10",
            "5",
            "15",
            "0.01230000",
            "800",
            "120",
            "True",
            "False",
            "2",
            "1",
            "success",
            "",
        ],
    ]


def test_xlsx_export(reporter, exported):
    response = report(reporter, export="xlsx")
    assert response["Content-Type"] == (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    content = b"".join(response.streaming_content)
    assert b"SECRET" not in content
    sheet = load_workbook(io.BytesIO(content)).active
    rows = [list(row) for row in sheet.iter_rows(values_only=True)]
    assert rows[0] == HEADINGS
    assert len(rows) == 3
    newest, oldest = rows[1], rows[2]
    assert newest[:11] == [
        datetime.datetime(2026, 11, 4, 12),
        "embedding",
        "search",
        "gpt-4o",
        None,
        None,
        "chat test page",
        10,
        5,
        15,
        None,
    ]
    assert newest[11] is None and newest[16:] == [
        2,
        "AIRateLimitError",
        "Too many requests",
    ]
    assert oldest[0] == datetime.datetime(2026, 11, 3, 14, 5, 6)
    assert oldest[4:6] == ["Main [default]", "alice"]
    assert oldest[10] == pytest.approx(0.0123)
    assert oldest[12:16] == [120, True, False, 2]


@pytest.mark.parametrize("export", ["csv", "xlsx"])
def test_exports_read_the_ledger_in_chunks(reporter, exported, monkeypatch, export):
    # Never the whole (filtered) ledger into memory at once: rows are read
    # with QuerySet.iterator(), which fills no result cache.
    fetch_all = QuerySet._fetch_all

    def guarded(queryset):
        if queryset.model is AIUsageRecord and queryset._iterable_class is (
            ModelIterable
        ):
            raise AssertionError("every row of the ledger read at once")
        return fetch_all(queryset)

    monkeypatch.setattr(QuerySet, "_fetch_all", guarded)
    response = report(reporter, export=export)
    content = b"".join(response.streaming_content)
    if export == "csv":
        assert len(content.decode().splitlines()) == 3
    else:
        assert load_workbook(io.BytesIO(content)).active.max_row == 3


def test_export_buttons_carry_the_filters(reporter, exported):
    page = report(reporter, kind="chat").content.decode()
    assert 'href="/admin/ai/usage/?kind=chat&amp;export=xlsx"' in page
    assert 'href="/admin/ai/usage/?kind=chat&amp;export=csv"' in page


# -- the dashboard panel ---------------------------------------------------------------


def total(scope, cost, tokens=0, calls=1, errors=0, start=None):
    return AIUsageTotal.objects.create(
        period=AIUsageTotal.Period.MONTH,
        start=start or month_start(),
        scope=scope,
        calls=calls,
        errors=errors,
        tokens=tokens,
        cost=Decimal(cost),
    )


@pytest.fixture
def budgets(sites):
    """Main: its own budget ($10, 1,000 tokens); Blog: the settings' default
    ($5 and no token limit)."""
    main, blog = sites
    AISettings.objects.create(
        site=main, monthly_budget_usd=Decimal("10"), monthly_budget_tokens=1000
    )
    total(f"site:{main.pk}", "8.50", tokens=900, calls=12, errors=1)
    total(f"site:{blog.pk}", "6", tokens=50_000, calls=3)
    # Last month's spending does not count.
    last_month = month_start() - datetime.timedelta(days=1)
    total(f"site:{blog.pk}", "100", start=last_month.replace(day=1))
    # Another site's daily user totals are not site totals.
    AIUsageTotal.objects.create(
        period=AIUsageTotal.Period.DAY,
        start=datetime.date.today(),
        scope="user:1",
        calls=1,
        cost=Decimal("99"),
    )
    with override_settings(WAGTAIL_VECTOR_INDEX={"USAGE": {"MONTHLY_BUDGET_USD": 5}}):
        yield main, blog


def test_budget_rows(budgets):
    main, blog = budgets
    rows = {row.label: row for row in budget_rows()}
    assert list(rows) == ["Blog", "Main [default]"]

    main_row = rows["Main [default]"]
    assert (main_row.usd.used, main_row.usd.budget, main_row.usd.own) == (
        Decimal("8.5"),
        Decimal("10"),
        True,
    )
    assert main_row.usd.percent == "85%" and main_row.usd.status == "near"
    assert (main_row.tokens.used, main_row.tokens.budget) == (900, 1000)
    assert main_row.tokens.status == "near" and main_row.status == "near"
    assert (main_row.calls, main_row.errors) == (12, 1)

    blog_row = rows["Blog"]
    assert (blog_row.usd.used, blog_row.usd.budget, blog_row.usd.own) == (
        Decimal("6"),
        Decimal("5"),
        False,
    )
    assert blog_row.usd.percent == "120%" and blog_row.status == "over"
    assert blog_row.tokens.budget is None and blog_row.tokens.status == "unlimited"
    assert blog_row.report_url == (
        f"/admin/ai/usage/?created_at_from={month_start().isoformat()}&site={blog.pk}"
    )


def test_no_site_row_only_when_used_or_budgeted(budgets):
    assert "No site" not in [row.label for row in budget_rows()]
    total("site:none", "0.50")
    (row,) = [row for row in budget_rows() if row.label == "No site"]
    assert row.usd.budget is None and row.usd.budget_display == "no limit"
    assert row.report_url.endswith("&site=null")
    AIUsageTotal.objects.filter(scope="site:none").delete()
    with override_settings(
        WAGTAIL_VECTOR_INDEX={"USAGE": {"NO_SITE_MONTHLY_BUDGET_USD": 2}}
    ):
        (row,) = [row for row in budget_rows() if row.label == "No site"]
        assert row.usd.budget == Decimal("2") and row.usd.used == 0


def test_a_site_without_spending_or_budget(sites):
    rows = budget_rows()
    assert [(row.usd.used, row.usd.budget, row.status) for row in rows] == [
        (Decimal(0), None, "unlimited"),
        (Decimal(0), None, "unlimited"),
    ]


def test_the_panel_on_the_dashboard(reporter, budgets):
    page = logged_in(reporter).get("/admin/").content.decode()
    assert 'id="wvi-ai-usage' in page
    assert "AI usage this month" in page
    assert "wagtail-vector-index.css" in page  # The panel's media.
    # Main: $8.50 of its own $10; Blog: $6.00 of the default $5, over it.
    assert "85% of $10.00" in page and "120% of $5.00" in page
    assert page.count("(default)") == 1  # Blog's USD budget.
    assert "Over budget" in page and "Near the budget" in page
    # Main has a token budget: the token columns are shown.
    assert "90% of 1,000" in page and "50,000" in page
    assert 'data-wvi-status="over"' in page


def test_the_panel_hides_tokens_without_token_budgets(reporter, sites):
    main, _ = sites
    total(f"site:{main.pk}", "1", tokens=12_345)
    with override_settings(WAGTAIL_VECTOR_INDEX={"USAGE": {"MONTHLY_BUDGET_USD": 2}}):
        page = logged_in(reporter).get("/admin/").content.decode()
    assert "50% of $2.00" in page
    assert "Token budget" not in page and "12,345" not in page


def test_no_panel_without_the_permission(outsider, budgets):
    page = logged_in(outsider).get("/admin/").content.decode()
    assert "AI usage this month" not in page
    assert "wvi-ai-usage" not in page


def test_the_panel_escapes_site_names(reporter, budgets):
    main, _ = budgets
    main.site_name = "<script>alert(1)</script>"
    main.save()
    page = logged_in(reporter).get("/admin/").content.decode()
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


@override_settings(USE_TZ=False)
def test_a_project_without_time_zones(reporter):
    record(created_at=datetime.datetime(2026, 11, 3, 14, 5, 6))
    record(created_at=datetime.datetime(2026, 11, 5, 9))
    chart = (
        report(reporter, created_at_from="2026-11-02", created_at_to="2026-11-05")
        .context["summary"]
        .chart
    )
    assert [day.calls for day in chart.days] == [0, 1, 0, 1]
    content = b"".join(report(reporter, export="csv").streaming_content).decode()
    assert "2026-11-03 14:05:06" in content
    xlsx = b"".join(report(reporter, export="xlsx").streaming_content)
    sheet = load_workbook(io.BytesIO(xlsx)).active
    assert sheet["A3"].value == datetime.datetime(2026, 11, 3, 14, 5, 6)
    assert month_start(datetime.datetime(2026, 11, 30, 23)) == datetime.date(
        2026, 11, 1
    )
