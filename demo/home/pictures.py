"""Sample pictures for the demo's image library, drawn with Pillow (no files
in the repository, nothing downloaded), so that "Describe with AI" and
``manage.py describe_images`` have images to describe. Their descriptions
are left empty: that is the editor's (or the AI's) job."""

from __future__ import annotations

import io

from django.core.files.images import ImageFile
from PIL import Image, ImageDraw

COLLECTION = "Demo pictures"
SIZE = (640, 420)


def _tomatoes(draw: ImageDraw.ImageDraw) -> None:
    draw.rectangle((0, 0, *SIZE), fill="#cfe8b0")
    draw.line((0, 120, 640, 150), fill="#3b7d23", width=10)
    for x, y in ((120, 220), (260, 250), (400, 215), (520, 260)):
        draw.ellipse((x - 55, y - 55, x + 55, y + 55), fill="#d62b1f")
        draw.line((x, y - 55, x, 135), fill="#3b7d23", width=6)


def _night_sky(draw: ImageDraw.ImageDraw) -> None:
    draw.rectangle((0, 0, *SIZE), fill="#0b1535")
    for number in range(90):
        x, y = (number * 137) % SIZE[0], (number * 71) % 330
        radius = 1 + number % 3
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill="white")
    draw.polygon(
        ((0, 420), (200, 300), (380, 380), (640, 290), (640, 420)), fill="#111"
    )


def _bicycle(draw: ImageDraw.ImageDraw) -> None:
    draw.rectangle((0, 0, *SIZE), fill="#9aa5ad")
    for x in (170, 470):
        draw.ellipse((x - 110, 170, x + 110, 390), outline="#222", width=12)
    draw.line(
        ((170, 280), (300, 280), (400, 170), (470, 280)), fill="#1d5fa8", width=12
    )
    draw.line(((300, 280), (250, 170), (400, 170)), fill="#1d5fa8", width=12)


PICTURES = {
    "Tomatoes on the vine": _tomatoes,
    "Stars over the hills": _night_sky,
    "A bicycle in the rain": _bicycle,
}


def ensure_pictures() -> int:
    """Add the sample pictures missing from the image library (matched by
    title); return how many were added."""
    from wagtail.images import get_image_model
    from wagtail.models import Collection

    root = Collection.get_first_root_node()
    collection = root.get_children().filter(name=COLLECTION).first()
    if collection is None:
        collection = root.add_child(name=COLLECTION)
    model = get_image_model()
    created = 0
    for title, paint in PICTURES.items():
        if model.objects.filter(title=title).exists():
            continue
        picture = Image.new("RGB", SIZE)
        paint(ImageDraw.Draw(picture))
        data = io.BytesIO()
        picture.save(data, "PNG")
        name = title.lower().replace(" ", "-") + ".png"
        model.objects.create(
            title=title, file=ImageFile(data, name=name), collection=collection
        )
        created += 1
    return created
