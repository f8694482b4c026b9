"""The default storage's in-memory copy: loaded once per revision into a
normalised matrix, whatever happens to the table while it is read."""

import numpy as np
import pytest
from django.db.models import QuerySet

from tests.storage import brute_force, fill
from wagtail_vector_index.index.storage import DatabaseStorage

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("miscount", [-3, 0, 4])
def test_loading_survives_rows_added_or_removed_after_the_count(
    content_type, monkeypatch, miscount
):
    # The matrix is sized by a COUNT before the rows are read; an object
    # updated in between changes the number of rows actually read.
    rng = np.random.default_rng(5)
    vectors = rng.standard_normal((12, 16)).astype(np.float32)
    vectors[7] = 0.0  # No direction: scores 0, never NaN.
    storage = DatabaseStorage("storage.miscount")
    state = fill(storage, content_type, vectors)
    real_count = QuerySet.count
    monkeypatch.setattr(QuerySet, "count", lambda qs: real_count(qs) + miscount)

    query = rng.standard_normal(16)
    hits = storage.search(state, query, 12)

    assert [hit.object_id for hit in hits] == brute_force(vectors, query, 12)[0]
    matrix = storage._cache[storage.index_name].matrix
    assert matrix.shape == (12, 16) and matrix.dtype == np.float32
    assert np.allclose(np.linalg.norm(matrix[[0, 1, 11]], axis=1), 1.0)
    assert not np.isnan([hit.score for hit in hits]).any()
    assert [h.score for h in hits if h.object_id == "o7"] == [0.0]


def test_an_empty_build_loads_and_finds_nothing(content_type):
    storage = DatabaseStorage("storage.empty")
    state = fill(storage, content_type, np.zeros((0, 8), dtype=np.float32))
    assert storage.search(state, np.ones(8), 5) == []
