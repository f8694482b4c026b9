"""One ASGI view for the async tests: it awaits whatever coroutine the test
put in :data:`work` with the request, and answers its result as JSON.

Used with ``override_settings(ROOT_URLCONF="tests.async_views")`` and
Django's ``AsyncClient``: the view runs on the event loop, where Django's
async-unsafe guard turns any database query into ``SynchronousOnlyOperation``.
"""

from django.db import transaction
from django.http import JsonResponse
from django.urls import path

#: ``{"call": async def call(request) -> JSON-able}``, set by the test.
work: dict = {}


# Django refuses ATOMIC_REQUESTS (the production suite's) for async views.
@transaction.non_atomic_requests
async def run(request):
    return JsonResponse(await work["call"](request), safe=False)


urlpatterns = [path("run/", run)]
