"""The site the concurrent-update tests run their subprocesses against.

    DJANGO_SETTINGS_MODULE=tests.settings_subprocess WVI_TEST_DATABASE=... \\
        python -m tests.concurrent_site PAGES

migrates the database and adds ``PAGES`` live article pages (one chunk each).
"""

import sys


def main(pages: int) -> None:
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import transaction

    call_command("migrate", verbosity=0, interactive=False)

    from wagtail.models import Page

    from tests.testapp.models import ArticlePage

    root = Page.get_first_root_node()
    home = root.add_child(instance=Page(title="Concurrent", slug="concurrent"))
    # Tree paths written directly: add_child() would take seconds per hundred.
    with transaction.atomic():
        for number in range(pages):
            ArticlePage(
                title=f"Article {number}",
                slug=f"article-{number}",
                body=f"<p>Article {number} is about topic {number % 17}.</p>",
                depth=home.depth + 1,
                path=ArticlePage._get_path(home.path, home.depth + 1, number + 1),
            ).save(clean=False)
        Page.objects.filter(pk=home.pk).update(numchild=pages)


if __name__ == "__main__":
    main(int(sys.argv[1]))
