from django.conf import settings
from django.templatetags.static import static as static_url
from django.urls import include, path
from django.views.generic.base import RedirectView
from home.views import ask
from wagtail import urls as wagtail_urls
from wagtail.admin import urls as wagtailadmin_urls
from wagtail.documents import urls as wagtaildocs_urls

urlpatterns = [
    path("admin/", include(wagtailadmin_urls)),
    path("ask/", ask, name="ask"),
    # Browsers ask for /favicon.ico whatever the page links to (the admin's
    # JSON and file views, say): not a 404 for Wagtail's page tree.
    path(
        "favicon.ico",
        RedirectView.as_view(url=static_url("home/favicon.svg"), permanent=True),
    ),
    path("documents/", include(wagtaildocs_urls)),
]

if settings.DEBUG:
    from django.conf.urls.static import static

    # Static files are served by runserver itself (django.contrib.staticfiles);
    # uploaded images and documents need this.
    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)

# Wagtail serves every other URL from the page tree: keep it last.
urlpatterns += [path("", include(wagtail_urls))]
