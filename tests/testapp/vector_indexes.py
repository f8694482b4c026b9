"""A custom index across two models, found by update_vector_indexes."""

from wagtail_vector_index.index import VectorIndex, register_index


@register_index
class EverythingIndex(VectorIndex):
    name = "everything"

    def get_querysets(self):
        from tests.testapp.models import ArticlePage, Book

        return [ArticlePage.objects.all(), Book.objects.all()]
