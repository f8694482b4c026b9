"""Drive the demo site as a visitor and an editor would, offline.

    python demo/smoke_test.py

Run by CI after ``migrate`` and ``setup_demo`` (what ``make demo`` does before
serving): the pages render, similar articles and answers come from the index,
an editor's "Generate summary" stores a summary on the page, the admin
test pages answer on the offline backends, and, with a provider on 127.0.0.1
failing in several ways, the public pages still render without provider text.
"""

import os
import sys
from pathlib import Path

DEMO = Path(__file__).resolve().parent
sys.path[:0] = [str(DEMO), str(DEMO.parent)]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo.settings")
for name in ("OPENAI_API_KEY", "OLLAMA_BASE_URL"):
    os.environ[name] = ""  # Offline, whatever .env says.

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.test import Client  # noqa: E402
from home.models import ArticlePage  # noqa: E402


def check(condition: bool, message: str) -> None:
    if not condition:
        raise SystemExit(f"FAILED: {message}")
    print(f"ok: {message}")


visitor = Client(HTTP_HOST="127.0.0.1")
home = visitor.get("/")
check(home.status_code == 200, "the home page renders")
tomatoes = ArticlePage.objects.get(slug="tomatoes-on-a-balcony")
article = visitor.get(tomatoes.url)
html = article.content.decode()
check(article.status_code == 200, "an article renders")
# Which garden article comes first depends on the embedding model: any will do.
GARDEN = (
    "A compost heap that works",
    "Starting vegetable seeds indoors in early spring",
    "Watering the garden through a dry summer",
)
check(
    "Similar articles" in html and any(title in html for title in GARDEN),
    "the article lists similar articles from the index",
)
answer = visitor.get("/ask/", {"q": "How do I grow tomatoes on my balcony?"})
html = answer.content.decode()
check(answer.status_code == 200, "the ask page renders")
check(
    html.index("Growing tomatoes on a balcony") < html.index("</ol>"),
    "the answer's first source is the tomato article",
)
check("best matching source says" in html, "the offline answer quotes its source")
check('class="citation"' in html, "the answer cites its source as a link")
follow_up = visitor.get("/ask/", {"q": "And how often do I water them?"})
html = follow_up.content.decode()
check(
    "Earlier in this conversation" in html
    and "How do I grow tomatoes on my balcony?" in html,
    "the ask page keeps the conversation",
)
check(
    visitor.get("/ask/", {"new": "1"}).status_code == 302
    and "Earlier in this conversation" not in visitor.get("/ask/").content.decode(),
    "a new conversation starts empty",
)

editor = Client(HTTP_HOST="127.0.0.1")
editor.force_login(get_user_model().objects.get(username="admin"))
url = f"/admin/demo/summary/{tomatoes.pk}/"
check(editor.get(url).status_code == 200, "the summary confirmation page renders")
response = editor.post(url)
check(response.status_code == 302, "generating a summary redirects to the editor")
tomatoes.refresh_from_db()
draft = tomatoes.get_latest_revision_as_object()
check("[offline echo]" in draft.summary, "the summary is stored in a draft revision")
edit = editor.get(f"/admin/pages/{tomatoes.pk}/edit/")
check("Generate summary" in edit.content.decode(), "the editor shows the action")
check(
    "Suggest related pages" in edit.content.decode()
    and "Check for similar published pages" in edit.content.decode(),
    "the editor shows the related pages and already-published panels",
)
related = editor.post(
    "/admin/ai/editor/related-pages/",
    {
        "title": tomatoes.title,
        "intro": tomatoes.intro,
        "wvi-page": tomatoes.pk,
        "wvi-relation": "related_pages",
        "wvi-page-field": "page",
    },
).json()
check(
    related["ok"]
    and any(result["title"] in GARDEN for result in related["results"])
    and all(result["id"] != tomatoes.pk for result in related["results"]),
    "related pages are suggested offline from the index, never the page itself",
)

# Field suggestions (AIFieldPanel) on the article's title, offline.
check(
    'data-controller="wvi-field-suggestions"' in edit.content.decode(),
    "the editor shows the Suggest button beside the title",
)
suggestions = editor.post(
    "/admin/ai/editor/field-suggestions/",
    {
        "title": "Tomatoes on a balcony",
        "wvi-field": "title",
        "wvi-model": "home.articlepage",
        "wvi-object": str(tomatoes.pk),
    },
).json()
check(
    suggestions.get("ok")
    and len(suggestions["alternatives"]) == 3
    and all(a.startswith("[offline echo]") for a in suggestions["alternatives"]),
    "the title gets three offline suggestions",
)

# The admin test pages, on the offline backends (no credentials).
chat = editor.get("/admin/ai/chat/")
check(chat.status_code == 200, "the chat test page renders")
stream = editor.post(
    "/admin/ai/chat/stream/",
    {
        "site": "",
        "system_prompt": "",
        "message": "Hello from the demo",
        "side": "a",
        "a-alias": "default",
    },
)
streamed = b"".join(stream.streaming_content).decode()
check(
    stream["Content-Type"] == "application/x-ndjson"
    and '"type": "part"' in streamed
    and '"type": "done"' in streamed,
    "the chat test page streams an answer from the offline backend",
)
embeddings = editor.post(
    "/admin/ai/embeddings/",
    {
        "alias": "default",
        "texts": "Tomatoes on a balcony\nBread in the oven",
        "query": "balcony tomatoes",
    },
)
html = embeddings.content.decode()
check(
    embeddings.status_code == 200
    and "<dt>Dimensions</dt>" in html
    and "wvi-embeddings-matrix" in html,
    "the embeddings test page embeds and compares texts offline",
)

# A quiet browser console offline: no update check, no Gravatar, a favicon.
dashboard = editor.get("/admin/").content.decode()
check(
    'data-controller="w-upgrade' not in dashboard and "gravatar.com" not in dashboard,
    "the dashboard asks neither Wagtail's release feed nor Gravatar",
)
check(
    'rel="icon"' in home.content.decode()
    and visitor.get("/favicon.ico")["Location"] == "/static/home/favicon.svg",
    "the site links its favicon and /favicon.ico leads to it",
)

# The demo's pictures described offline, from the image editor's endpoint
# (the admin is a superuser: it has use_ai_in_editor).
from wagtail.images import get_image_model  # noqa: E402

picture = get_image_model().objects.get(title="Tomatoes on the vine")
status = editor.get(f"/admin/ai/editor/images/{picture.pk}/describe/status/").json()
check(status["available"], "the image editor offers Describe with AI")
described = editor.post(status["url"]).json()
check(
    described["ok"]
    and described["offline"]
    and described["description"].startswith(
        '(offline) An image named "Tomatoes on the vine"'
    ),
    "an image is described offline, labelled as such",
)

# Public pages with the provider failing: they render without the AI part and
# never show the provider's words (which may quote the key) to a visitor.
from django.test import override_settings  # noqa: E402

from tests.providers import ProviderServer  # noqa: E402

KEY = "demoPlainSecret4321"  # Not shaped like sk-...: hidden all the same.
os.environ["OPENAI_API_KEY"] = KEY
provider = ProviderServer().start()
provider.state.dimensions = 384
provider.state.slow_seconds = 1.5
parameters = {"api_base": provider.openai_base, "timeout": 0.5}
backends = "wagtail_vector_index.ai_utils.backends.litellm"
failing = {
    "CHAT_BACKENDS": {
        "default": {
            "CLASS": f"{backends}.LiteLLMChatBackend",
            "CONFIG": {
                "MODEL_ID": "openai/demo-chat",
                "TOKEN_LIMIT": 4096,
                "DEFAULT_PARAMETERS": parameters,
            },
        }
    },
    "EMBEDDING_BACKENDS": {
        "default": {
            "CLASS": f"{backends}.LiteLLMEmbeddingBackend",
            "CONFIG": {
                "MODEL_ID": "openai/demo-embed",
                "TOKEN_LIMIT": 8191,
                "EMBEDDING_OUTPUT_DIMENSIONS": 384,
                "DEFAULT_PARAMETERS": parameters,
            },
        }
    },
}
with override_settings(WAGTAIL_VECTOR_INDEX=failing):
    # The index built by the (healthy) loopback provider, then every fault.
    ArticlePage.vector_index.update()
    for mode in ("echo-400", "401", "html-200", "500", "emb-short", "reset", "slow"):
        provider.fail_always(mode)
        article = visitor.get(tomatoes.url)
        answer = visitor.get("/ask/", {"q": "How do I grow tomatoes?"})
        pages = article.content.decode() + answer.content.decode()
        check(
            article.status_code == 200 and answer.status_code == 200,
            f"provider failing ({mode}): the article and ask pages render",
        )
        check(
            "no answer can be given right now" in pages
            and KEY not in pages
            and "key" not in answer.content.decode().lower()
            and "Something went wrong" not in pages
            and "HTTP" not in pages,
            f"provider failing ({mode}): a plain apology, no provider text",
        )
    provider.fail_always(None)
provider.stop()
ArticlePage.vector_index.update()  # Back to the demo's own backends.
print("demo smoke test passed")
