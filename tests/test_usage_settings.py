"""WAGTAIL_VECTOR_INDEX["USAGE"]: its system checks (exact messages) and the
sites' budget fields under Settings › AI settings."""

from decimal import Decimal

import pytest
from django.core.checks import Error, Warning
from django.test import override_settings
from django.urls import reverse
from wagtail.models import Site

from tests.utils import logged_in, make_user
from wagtail_vector_index.checks import check_settings
from wagtail_vector_index.models import AISettings

WHERE = 'WAGTAIL_VECTOR_INDEX["USAGE"]'


def checked(**usage):
    with override_settings(WAGTAIL_VECTOR_INDEX={"USAGE": usage}):
        return check_settings()


def test_valid_usage_settings_pass():
    assert checked() == []
    assert (
        checked(
            ENABLED=False,
            RETENTION_DAYS=90,
            STORE_PROMPTS=True,
            PROMPT_RETENTION_DAYS=0,
            MONTHLY_BUDGET_USD=12.5,
            MONTHLY_BUDGET_TOKENS=1_000_000,
            NO_SITE_MONTHLY_BUDGET_USD=0,
            NO_SITE_MONTHLY_BUDGET_TOKENS=None,
            USER_DAILY_BUDGET_USD=1,
            USER_DAILY_BUDGET_TOKENS=50_000,
            ALERT_THRESHOLD=1,
        )
        == []
    )


def test_e019_usage_is_not_a_dict():
    with override_settings(WAGTAIL_VECTOR_INDEX={"USAGE": ["ENABLED"]}):
        assert check_settings() == [
            Error(
                f"{WHERE} must be a dict, not list.",
                hint='Set it to a dict such as {"MONTHLY_BUDGET_USD": 50}, or '
                "remove it to use the defaults.",
                id="wagtail_vector_index.E019",
            )
        ]


def test_w010_unknown_usage_key():
    assert checked(MONTHLY_BUDGET=5) == [
        Warning(
            f'{WHERE} has an unknown key "MONTHLY_BUDGET".',
            hint='The known keys are "ALERT_THRESHOLD", "ENABLED", '
            '"MONTHLY_BUDGET_TOKENS", "MONTHLY_BUDGET_USD", '
            '"NO_SITE_MONTHLY_BUDGET_TOKENS", "NO_SITE_MONTHLY_BUDGET_USD", '
            '"PROMPT_RETENTION_DAYS", "RETENTION_DAYS", "STORE_PROMPTS", '
            '"USER_DAILY_BUDGET_TOKENS", "USER_DAILY_BUDGET_USD"; check the spelling.',
            id="wagtail_vector_index.W010",
        )
    ]


@pytest.mark.parametrize("value", [-1, "10", True, float("nan")])
def test_e020_budget_not_a_number_of_0_or_more(value):
    assert checked(MONTHLY_BUDGET_USD=value, USER_DAILY_BUDGET_TOKENS=value) == [
        Error(
            f'{WHERE}["MONTHLY_BUDGET_USD"] must be a number of 0 or more, not '
            f"{value!r}.",
            hint="Use a number such as 50 (US dollars or tokens, as the key says), "
            "or None for no limit.",
            id="wagtail_vector_index.E020",
        ),
        Error(
            f'{WHERE}["USER_DAILY_BUDGET_TOKENS"] must be a number of 0 or more, '
            f"not {value!r}.",
            hint="Use a number such as 1000000 (US dollars or tokens, as the key "
            "says), or None for no limit.",
            id="wagtail_vector_index.E020",
        ),
    ]


@pytest.mark.parametrize("value", [0, -0.5, 1.5, "0.8", None])
def test_e021_alert_threshold_outside_0_1(value):
    assert checked(ALERT_THRESHOLD=value) == [
        Error(
            f'{WHERE}["ALERT_THRESHOLD"] must be a fraction of the budget above 0 '
            f"and at most 1, not {value!r}.",
            hint="Use a number such as 0.8 (a warning when 80 percent of a budget "
            "is spent).",
            id="wagtail_vector_index.E021",
        )
    ]


def test_e022_retention_days():
    assert checked(RETENTION_DAYS=-1, PROMPT_RETENTION_DAYS="30") == [
        Error(
            f'{WHERE}["RETENTION_DAYS"] must be a whole number of days, not -1.',
            hint="Use a number such as 365.",
            id="wagtail_vector_index.E022",
        ),
        Error(
            f'{WHERE}["PROMPT_RETENTION_DAYS"] must be a whole number of days, '
            "not '30'.",
            hint="Use a number such as 30.",
            id="wagtail_vector_index.E022",
        ),
    ]


def test_e023_switches_are_bools():
    assert checked(ENABLED="no", STORE_PROMPTS=1) == [
        Error(
            f"{WHERE}[\"ENABLED\"] must be True or False, not 'no'.",
            hint="Set it to True or False.",
            id="wagtail_vector_index.E023",
        ),
        Error(
            f'{WHERE}["STORE_PROMPTS"] must be True or False, not 1.',
            hint="Set it to True or False.",
            id="wagtail_vector_index.E023",
        ),
    ]


# -- Settings › AI settings ----------------------------------------------------------


def edit_url(site):
    return reverse(
        "wagtailsettings:edit", args=["wagtail_vector_index", "aisettings", site.pk]
    )


@pytest.mark.django_db
def test_the_budget_fields_show_and_save():
    site = Site.objects.get(is_default_site=True)
    client = logged_in(make_user("boss", superuser=True))
    html = client.get(edit_url(site)).content.decode()
    assert 'name="monthly_budget_usd"' in html
    assert 'name="monthly_budget_tokens"' in html
    assert "Monthly budget" in html

    response = client.post(
        edit_url(site), {"monthly_budget_usd": "25.50", "monthly_budget_tokens": ""}
    )
    assert response.status_code == 302
    settings = AISettings.objects.get(site=site)
    assert settings.monthly_budget_usd == Decimal("25.50")
    assert settings.monthly_budget_tokens is None


@pytest.mark.django_db
def test_negative_budgets_are_refused():
    site = Site.objects.get(is_default_site=True)
    client = logged_in(make_user("boss", superuser=True))
    response = client.post(
        edit_url(site), {"monthly_budget_usd": "-1", "monthly_budget_tokens": "-5"}
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert html.count("Ensure this value is greater than or equal to 0") == 2
    assert not AISettings.objects.filter(site=site, monthly_budget_usd__lt=0).exists()
