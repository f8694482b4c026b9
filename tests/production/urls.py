from django.urls import include, path

from tests.production import views
from tests.urls import urlpatterns as site_urlpatterns

urlpatterns = [
    path("production/chat-then-fail/", views.chat_then_fail),
    path("production/stream/<str:how>/", views.stream),
    path("production/achat/", views.achat),
    path("", include(site_urlpatterns)),
]
