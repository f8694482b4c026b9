"""Scoped searches filtered inside Qdrant: what ``QdrantStorage`` stores with
each point (``path``, ``ancestors``, ``locale``), how a ``Where`` becomes a
Qdrant filter, and an index searched by site and locale without the keys it
may return ever being loaded.

Qdrant's local mode (``:memory:``), no server needed.
"""

from __future__ import annotations

import random
import uuid

import numpy as np
import pytest
from django.test import override_settings
from django.utils import translation
from wagtail.models import Locale, Page, Site

from tests.storage import unit
from tests.testapp.models import ArticlePage
from tests.utils import OFFLINE, root_page
from wagtail_vector_index.index import scope
from wagtail_vector_index.index.storage import ChunkRow, to_bytes
from wagtail_vector_index.index.storage.types import Where

pytest.importorskip("qdrant_client")

from wagtail_vector_index.index.storage.qdrant import (  # noqa: E402
    NO_LOCALE,
    NO_PATH,
    STEPLEN,
    QdrantStorage,
    ancestors,
)

pytestmark = pytest.mark.django_db

QDRANT = "wagtail_vector_index.index.storage.qdrant.QdrantStorage"

# Two sites' root pages, a section of site A, and an object that is no page.
SITE_A = "00010001"
SITE_B = "00010002"
SECTION = "000100010005"


def _config() -> dict:
    return {"LOCATION": ":memory:", "COLLECTION_PREFIX": f"wvit{uuid.uuid4().hex[:10]}"}


@pytest.fixture
def storage():
    made = QdrantStorage(f"scopes-{uuid.uuid4().hex[:8]}", config=_config())
    yield made
    for build in made.builds():
        made._drop_collection(build)


def _row(content_type, object_id, vector, path="", locale_id=None, position=0):
    vector = np.asarray(vector, dtype=np.float32)
    return ChunkRow(
        content_type,
        object_id,
        position,
        f"text {object_id}",
        f"{object_id}:{position}:{vector.tobytes().hex()[:16]}",
        to_bytes(vector),
        path=path,
        locale_id=locale_id,
    )


def _build(storage, rows):
    """Write and activate one build of ``rows``; its ``IndexState``."""
    build = storage.next_build()
    storage.write_build(build, rows)
    return storage.activate(
        build,
        model_id="test-model",
        dimensions=len(rows[0].vector) // 4,
        object_count=len({(r.content_type_id, r.object_id) for r in rows}),
    )


def _found(storage, state, query, where=None, limit=1000, **kwargs):
    hits = storage.search(state, query, limit, where=where, **kwargs)
    return [hit.object_id for hit in hits]


# -- what is stored ---------------------------------------------------------


def test_ancestors_are_the_paths_prefixes_in_wagtails_steps():
    assert STEPLEN == Page.steplen
    assert ancestors("000100020003") == ["0001", "00010002", "000100020003"]
    assert ancestors("0001") == ["0001"]
    assert ancestors("") == [NO_PATH]


def test_points_carry_path_ancestors_and_locale(storage, content_type):
    state = _build(
        storage,
        [
            _row(content_type, "page", [1, 0], SECTION, 3),
            _row(content_type, "snippet", [0, 1]),
        ],
    )
    points, _ = storage.client.scroll(
        storage.collection_name(state.active_build),
        with_payload=["object_id", "path", "ancestors", "locale"],
    )
    payloads = {p.payload["object_id"]: p.payload for p in points}
    assert payloads["page"] == {
        "object_id": "page",
        "path": SECTION,
        "ancestors": ["0001", SITE_A, SECTION],
        "locale": 3,
    }
    assert payloads["snippet"] == {
        "object_id": "snippet",
        "path": "",
        "ancestors": [NO_PATH],
        "locale": NO_LOCALE,
    }


def test_the_storage_filters_in_its_engine():
    assert QdrantStorage.filters_in_engine is True


# -- each condition ------------------------------------------------------------


@pytest.fixture
def mixed(storage, content_type):
    """Pages of two sites and two locales, a section, and non-pages."""
    rows = [
        _row(content_type, "a-en", [1, 0.10], SITE_A + "0001", 1),
        _row(content_type, "a-fr", [1, 0.20], SITE_A + "0002", 2),
        _row(content_type, "a-section", [1, 0.30], SECTION, 1),
        _row(content_type, "a-section-child", [1, 0.35], SECTION + "0001", 1),
        _row(content_type, "a-home", [1, 0.37], SITE_A, 1),
        _row(content_type, "b-en", [1, 0.40], SITE_B + "0001", 1),
        _row(content_type, "b-fr", [1, 0.50], SITE_B + "0002", 2),
        _row(content_type, "snippet-en", [1, 0.60], "", 1),
        _row(content_type, "document", [1, 0.70]),
    ]
    # A second chunk for one object: both chunks carry its attributes.
    rows.append(_row(content_type, "b-en", [1, 0.45], SITE_B + "0001", 1, 1))
    return storage, _build(storage, rows), content_type


def test_paths_keep_the_pages_below_them_and_every_non_page(mixed):
    storage, state, _ = mixed
    found = _found(storage, state, [1, 0], Where(paths=(SITE_A,)))
    assert found == [
        "a-en",
        "a-fr",
        "a-section",
        "a-section-child",
        "a-home",
        "snippet-en",
        "document",
    ]
    found = _found(storage, state, [1, 0], Where(paths=(SECTION, SITE_B)))
    assert set(found) == {
        "a-section",
        "a-section-child",
        "b-en",
        "b-fr",
        "snippet-en",
        "document",
    }
    # No path at all: only what is no page.
    assert set(_found(storage, state, [1, 0], Where(paths=()))) == {
        "snippet-en",
        "document",
    }


def test_excluded_paths_leave_out_their_pages_not_the_non_pages(mixed):
    storage, state, _ = mixed
    found = _found(storage, state, [1, 0], Where(excluded_paths=(SECTION, SITE_B)))
    assert found == ["a-en", "a-fr", "a-home", "snippet-en", "document"]


def test_a_locale_keeps_its_objects_and_those_of_no_locale(mixed):
    storage, state, _ = mixed
    assert _found(storage, state, [1, 0], Where(locale_id=2)) == [
        "a-fr",
        "b-fr",
        "document",
    ]


def test_keys_keep_those_objects(mixed):
    storage, state, ct = mixed
    where = Where(keys=frozenset({(ct, "b-en"), (ct, "document"), (ct + 1, "a-en")}))
    assert _found(storage, state, [1, 0], where) == ["b-en", "b-en", "document"]
    assert _found(storage, state, [1, 0], Where(keys=frozenset())) == []
    # keys= as before, and with a Where: both hold.
    assert _found(storage, state, [1, 0], keys=[(ct, "a-fr")]) == ["a-fr"]
    assert _found(storage, state, [1, 0], Where(locale_id=1), keys=[(ct, "a-fr")]) == []


def test_conditions_combine(mixed):
    storage, state, ct = mixed
    where = Where(paths=(SITE_A,), excluded_paths=(SECTION,), locale_id=1)
    assert _found(storage, state, [1, 0], where) == [
        "a-en",
        "a-home",
        "snippet-en",
        "document",
    ]
    where = Where(
        paths=(SITE_A, SITE_B),
        excluded_paths=(SITE_A + "0001",),
        locale_id=1,
        keys=frozenset({(ct, "a-en"), (ct, "a-section"), (ct, "b-fr")}),
    )
    assert _found(storage, state, [1, 0], where) == ["a-section"]


def test_paths_not_made_of_whole_steps_let_more_through_never_less(mixed):
    storage, state, _ = mixed
    # "0001000" is no tree path: cut to "0001", every page passes; an
    # exclusion of one is dropped. The index checks the objects found again.
    assert len(set(_found(storage, state, [1, 0], Where(paths=("0001000",))))) == 9
    found = _found(storage, state, [1, 0], Where(excluded_paths=("0001000", "")))
    assert len(set(found)) == 9


# -- the best limit within the filter -------------------------------------


def test_the_best_limit_within_the_filter_not_the_best_overall_filtered(
    storage, content_type
):
    generator = np.random.default_rng(7)
    query = np.array([1, 0, 0, 0], dtype=np.float32)
    near = unit(query + generator.normal(0, 0.05, (90, 4))).astype(np.float32)
    far = unit(-query + generator.normal(0, 0.3, (10, 4))).astype(np.float32)
    rows = [
        _row(content_type, f"near{i}", v, f"{SITE_B}{i:04d}", 1)
        for i, v in enumerate(near)
    ] + [
        _row(content_type, f"far{i}", v, f"{SITE_A}{i:04d}", 1)
        for i, v in enumerate(far)
    ]
    state = _build(storage, rows)
    assert all(o.startswith("near") for o in _found(storage, state, query, limit=20))

    hits = storage.search(state, query, 3, where=Where(paths=(SITE_A,)))

    scores = far @ query
    best = np.argsort(-scores, kind="stable")[:3]
    assert [hit.object_id for hit in hits] == [f"far{i}" for i in best]
    assert [hit.score for hit in hits] == pytest.approx(scores[best], abs=1e-5)


# -- agreeing with Where.allows -----------------------------------------------


def _random_path(generator: random.Random) -> str:
    depth = generator.choice([0, 1, 2, 2, 3, 3, 4])
    return "".join(f"{generator.randint(1, 3):04d}" for _ in range(depth))


def test_the_filter_agrees_with_where_allows_on_random_data(storage, content_type):
    generator = random.Random(20240611)
    rows = [
        _row(
            content_type,
            f"o{i}",
            [generator.uniform(0.1, 1) for _ in range(3)],
            _random_path(generator),
            generator.choice([None, 1, 2, 3]),
        )
        for i in range(300)
    ]
    state = _build(storage, rows)
    every_prefix = sorted({p for row in rows for p in ancestors(row.path)} - {NO_PATH})
    nonempty = 0
    for _ in range(60):
        where = Where(
            paths=generator.choice(
                [
                    None,
                    (),
                    tuple(generator.sample(every_prefix, generator.randint(1, 3))),
                ]
            ),
            excluded_paths=tuple(
                generator.sample(every_prefix, generator.randint(0, 3))
            ),
            locale_id=generator.choice([None, 1, 2, 3, 4]),
            keys=generator.choice(
                [None, frozenset((content_type, f"o{i}") for i in range(0, 300, 3))]
            ),
        )
        expected = {
            row.object_id
            for row in rows
            if where.allows(row.path, row.locale_id)
            and (where.keys is None or (content_type, row.object_id) in where.keys)
        }
        found = _found(storage, state, [0.5, 0.5, 0.5], where, limit=len(rows))
        assert len(found) == len(set(found))
        assert set(found) == expected, where
        nonempty += bool(expected) and len(expected) < len(rows)
    assert nonempty > 30  # The conditions left out some rows, not all, often.


# -- inspect and changes in place -----------------------------------------------


def test_inspect_reports_each_objects_stored_attributes(mixed):
    storage, state, ct = mixed
    attributes = storage.inspect(state).attributes
    assert attributes[(ct, "a-fr")] == (SITE_A + "0002", 2)
    assert attributes[(ct, "b-en")] == (SITE_B + "0001", 1)
    assert attributes[(ct, "snippet-en")] == ("", 1)
    assert attributes[(ct, "document")] == ("", None)
    assert len(attributes) == 9


def test_points_written_before_are_reported_without_attributes(mixed):
    storage, state, ct = mixed
    name = storage.collection_name(state.active_build)
    points, _ = storage.client.scroll(name, with_payload=["object_id", "position"])
    # What an earlier version wrote: no path, ancestors nor locale; and one
    # chunk of two carrying them.
    old = [
        p.id
        for p in points
        if p.payload["object_id"] == "a-en"
        or (p.payload["object_id"] == "b-en" and p.payload["position"] == 1)
    ]
    storage.client.delete_payload(
        name, keys=["path", "ancestors", "locale"], points=old
    )

    attributes = storage.inspect(state).attributes
    assert attributes[(ct, "a-en")] is None
    assert attributes[(ct, "b-en")] is None
    assert attributes[(ct, "a-fr")] == (SITE_A + "0002", 2)
    # Left out of searches by site or locale until they are written again.
    assert "a-en" not in _found(storage, state, [1, 0], Where(paths=(SITE_A,)))
    assert "a-en" not in _found(storage, state, [1, 0], Where(locale_id=1))


def test_apply_changes_writes_the_new_attributes(mixed):
    storage, state, ct = mixed
    moved = _row(ct, "a-en", [1, 0.10], SITE_B + "0003", 2)
    state = storage.apply_changes(state, {(ct, "a-en"): [moved]})

    assert storage.inspect(state).attributes[(ct, "a-en")] == (SITE_B + "0003", 2)
    assert "a-en" not in _found(storage, state, [1, 0], Where(paths=(SITE_A,)))
    assert "a-en" in _found(storage, state, [1, 0], Where(paths=(SITE_B,)))
    assert _found(storage, state, [1, 0], Where(locale_id=2))[:1] == ["a-en"]


# -- an index on Qdrant ----------------------------------------------------------


@pytest.fixture
def on_qdrant():
    setting = {**OFFLINE, "STORAGE": {"CLASS": QDRANT, "CONFIG": _config()}}
    with override_settings(WAGTAIL_VECTOR_INDEX=setting):
        yield ArticlePage.vector_index
        storage = ArticlePage.vector_index.storage
        for build in storage.builds():
            storage._drop_collection(build)


@pytest.fixture
def no_allowed_keys(monkeypatch):
    def refused(*args, **kwargs):
        raise AssertionError("scope.allowed_keys was called")

    monkeypatch.setattr(scope, "allowed_keys", refused)


def _article(parent, title, body, **kwargs):
    return parent.add_child(
        instance=ArticlePage(title=title, body=f"<p>{body}</p>", **kwargs)
    )


@pytest.fixture
def two_sites(on_qdrant):
    root = root_page()
    home_a = root.add_child(instance=Page(title="A", slug="qsite-a"))
    home_b = root.add_child(instance=Page(title="B", slug="qsite-b"))
    Site.objects.all().delete()
    site_a = Site.objects.create(
        hostname="a.example", root_page=home_a, is_default_site=True
    )
    site_b = Site.objects.create(hostname="b.example", root_page=home_b)
    pages = {
        "a": _article(home_a, "Tomatoes in A", "tomatoes need sun and water"),
        "b": _article(home_b, "Tomatoes in B", "tomatoes need sun and water too"),
    }
    for number in range(20):  # B's pages crowd the unscoped answer.
        _article(home_b, f"More tomatoes {number}", "tomatoes tomatoes sun water")
    on_qdrant.update()
    return on_qdrant, site_a, site_b, pages


@pytest.fixture
def answered(monkeypatch):
    """The ids of the objects Qdrant returned to searches."""
    found = []
    search = QdrantStorage.search

    def spy(self, *args, **kwargs):
        hits = search(self, *args, **kwargs)
        found.extend(int(hit.object_id) for hit in hits)
        return hits

    monkeypatch.setattr(QdrantStorage, "search", spy)
    return found


def test_a_site_search_on_qdrant_filters_in_the_engine(
    two_sites, no_allowed_keys, rf, answered
):
    index, site_a, site_b, pages = two_sites
    assert isinstance(index.storage, QdrantStorage)

    assert index.search("tomatoes", limit=5, site=site_a) == [pages["a"]]
    # Qdrant itself returned nothing of site B.
    assert set(answered) == {pages["a"].pk}
    found = index.search("tomatoes", limit=30, site=site_b)
    assert pages["b"] in found and pages["a"] not in found and len(found) == 21
    request = rf.get("/", HTTP_HOST="a.example")
    assert index.search("tomatoes", limit=5, request=request) == [pages["a"]]


def test_a_page_moved_to_another_site_is_written_again(two_sites, no_allowed_keys):
    index, site_a, site_b, pages = two_sites
    pages["a"].move(site_b.root_page, pos="last-child")

    report = index.update()

    assert report.in_place and report.changed == 1
    assert index.search("tomatoes", limit=5, site=site_a) == []
    assert pages["a"] in index.search("tomatoes", limit=30, site=site_b)


def test_an_update_writes_again_the_points_of_an_earlier_version(
    two_sites, no_allowed_keys
):
    index, site_a, _, pages = two_sites
    storage = index.storage
    state = storage.state()
    name = storage.collection_name(state.active_build)
    storage.client.delete_payload(
        name, keys=["path", "ancestors", "locale"], points=_every_point(storage, name)
    )
    assert index.search("tomatoes", limit=5, site=site_a) == []

    report = index.update()

    assert report.changed == 22 and report.embedded == 0  # Vectors reused.
    assert index.search("tomatoes", limit=5, site=site_a) == [pages["a"]]
    assert None not in storage.inspect(storage.state()).attributes.values()
    report = index.update()
    assert report.unchanged


def _every_point(storage, name):
    points, _ = storage.client.scroll(name, limit=10_000, with_payload=False)
    return [point.id for point in points]


def test_a_locale_search_on_qdrant_filters_in_the_engine(
    on_qdrant, settings, no_allowed_keys, answered
):
    settings.WAGTAIL_I18N_ENABLED = True
    settings.LANGUAGE_CODE = "en"
    settings.WAGTAIL_CONTENT_LANGUAGES = settings.LANGUAGES = [
        ("en", "English"),
        ("fr", "French"),
    ]
    english = Locale.objects.get_or_create(language_code="en")[0]
    french = Locale.objects.get_or_create(language_code="fr")[0]
    home = root_page().add_child(instance=Page(title="Home", slug="qscope-home"))
    pages = {"en": _article(home, "Bread", "flour water salt yeast", locale=english)}
    french_home = home.copy_for_translation(french)
    pages["fr"] = _article(french_home, "Pain", "flour water salt yeast", locale=french)
    index = on_qdrant
    index.update()

    with translation.override("en"):
        assert index.search("flour yeast") == [pages["en"]]
    assert set(answered) == {pages["en"].pk}  # Qdrant left "fr" out.
    with translation.override("fr"):
        assert index.search("flour yeast") == [pages["fr"]]
    assert index.search("flour yeast", locale="fr") == [pages["fr"]]
    everywhere = index.search("flour yeast", locale=scope.ALL_LOCALES)
    assert set(everywhere) == set(pages.values())
