"""A process holding the default storage, for tests/test_database_journal.py.

    DJANGO_SETTINGS_MODULE=tests.settings_subprocess WVI_TEST_DATABASE=... \\
        python -m tests.journal_worker

reads one JSON command per line on stdin and answers each with one JSON line:

- ``{"op": "fill", "count": N, "dimensions": D}``: a build of N random
  objects ``o0``... plus ``gen0``, whose one chunk is the marker vector;
- ``{"op": "apply", "generation": G, "others": [...]}``: in one
  ``apply_changes``, ``gen{G-1}`` removed, ``gen{G}`` added with the marker
  vector, and the objects ``others`` given new random vectors;
- ``{"op": "search"}``: the marker searched once (hits, and how many full
  loads this process has made);
- ``{"op": "start", "threads": T}`` / ``{"op": "stop"}``: T threads searching
  the marker until stopped; every search must find exactly one generation,
  with its own text (no change half applied), unless its rows were replaced
  before their texts were read in every attempt (counted as ``vanished``).
"""

import json
import sys
import threading

INDEX = "journal.process"


def main() -> None:
    import django

    django.setup()
    import numpy as np
    from django.contrib.contenttypes.models import ContentType
    from django.db import connection

    from tests.storage import fill
    from wagtail_vector_index.index.storage import ChunkRow, DatabaseStorage, to_bytes
    from wagtail_vector_index.index.storage.database import SEARCH_ATTEMPTS
    from wagtail_vector_index.models import IndexState

    storage = DatabaseStorage(INDEX)
    loads: list[int] = []
    load = storage._load

    def counted_load(state):
        loads.append(1)
        return load(state)

    storage._load = counted_load
    content_type = ContentType.objects.get_for_model(IndexState).pk
    rng = np.random.default_rng()
    dimensions = 16
    stop = threading.Event()
    threads: list[threading.Thread] = []
    problems: list[str] = []
    searches = [0]
    vanished = [0]

    def marker() -> np.ndarray:
        vector = np.zeros(dimensions, dtype=np.float32)
        vector[0] = 1.0
        return vector

    texts = storage._texts
    local = threading.local()

    def counted_texts(pks):
        found = texts(pks)
        local.short += len(found) < len(pks)
        return found

    storage._texts = counted_texts

    def search() -> list[list]:
        local.short = 0
        hits = storage.search(storage.state(), marker(), 3)
        return [[h.object_id, h.position, h.text, h.score] for h in hits]

    def check(hits: list[list]) -> str | None:
        found = [hit for hit in hits if hit[3] > 0.999]
        if len(found) != 1:
            return f"{len(found)} generations: {found}"
        object_id, _position, text, _score = found[0]
        if not object_id.startswith("gen") or text != f"text {object_id}":
            return f"wrong hit: {found[0]}"
        return None

    def searcher() -> None:
        try:
            while not stop.is_set():
                problem = check(search())
                searches[0] += 1
                if problem and local.short < SEARCH_ATTEMPTS:
                    problems.append(problem)
                elif problem:
                    vanished[0] += 1
        except Exception as error:  # Reported to the test.
            problems.append(f"{type(error).__name__}: {error}")
        finally:
            connection.close()

    def row(object_id: str, vector: np.ndarray) -> ChunkRow:
        return ChunkRow(
            content_type,
            object_id,
            0,
            f"text {object_id}",
            f"{object_id}:{rng.integers(1 << 60)}",
            to_bytes(vector),
        )

    for line in sys.stdin:
        command = json.loads(line)
        op = command["op"]
        reply: dict = {}
        if op == "fill":
            dimensions = command["dimensions"]
            vectors = rng.standard_normal((command["count"], dimensions))
            fill(storage, content_type, vectors.astype(np.float32))
            storage.apply_changes(
                storage.state(), {(content_type, "gen0"): [row("gen0", marker())]}
            )
        elif op == "apply":
            generation = command["generation"]
            changes = {
                (content_type, f"gen{generation - 1}"): [],
                (content_type, f"gen{generation}"): [row(f"gen{generation}", marker())],
            }
            for object_id in command.get("others", []):
                changes[(content_type, object_id)] = [
                    row(object_id, rng.standard_normal(dimensions))
                ]
            storage.apply_changes(storage.state(), changes)
        elif op == "search":
            reply["hits"] = search()
            reply["problem"] = check(reply["hits"])
        elif op == "start":
            stop.clear()
            threads = [
                threading.Thread(target=searcher) for _ in range(command["threads"])
            ]
            for thread in threads:
                thread.start()
        elif op == "count":
            reply["searches"] = searches[0]
        elif op == "stop":
            stop.set()
            for thread in threads:
                thread.join(timeout=60)
            reply["searches"] = searches[0]
            reply["problems"] = problems[:5]
            reply["vanished"] = vanished[0]
        reply["loads"] = len(loads)
        print(json.dumps(reply), flush=True)


if __name__ == "__main__":
    main()
