"""Models for the 0.10.0 column of ``benchmarks/indexes.py`` (``--with-old``).

Loaded only by ``benchmarks/old_indexes.py`` in the venv holding
wagtail-vector-index 0.10.0: they use that release's mixins.
"""
