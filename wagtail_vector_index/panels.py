"""Editor features for the Wagtail page editor: ``AIFieldPanel`` and its
siblings, the related pages and "Already published?" panels.

All are shown only to users with the ``use_ai_in_editor`` permission, and
change nothing on the page until the editor chooses.
"""

from wagtail_vector_index.related_panels import (  # re-exported
    AlreadyPublishedPanel,
    RelatedPagesPanel,
)

__all__ = ["AlreadyPublishedPanel", "RelatedPagesPanel"]
