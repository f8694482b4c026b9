"""Views of a site using the package, as its own code would: under
``ATOMIC_REQUESTS``, some failing after their call."""

from django.db import transaction
from django.http import HttpResponse, JsonResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt

from wagtail_vector_index import ai
from wagtail_vector_index.exceptions import AIBudgetExceededError

HELLO = [{"role": "user", "content": "Hello there"}]


class AfterTheCall(Exception):
    """The site's own code failing after a paid call: the request's
    transaction is rolled back."""


@csrf_exempt
def chat_then_fail(request):
    try:
        ai.get_chat_backend(request=request).chat(messages=HELLO, max_tokens=10)
    except AIBudgetExceededError as error:
        return HttpResponse(str(error), status=429)
    raise AfterTheCall("the view fails after its call")


def stream(request, how):
    response = ai.get_chat_backend(request=request).chat(
        messages=HELLO, stream=True, max_tokens=10
    )
    if how == "read":
        return StreamingHttpResponse(part["content"] for part in response)
    if how == "closed":
        next(iter(response))
        response.close()
        return HttpResponse("closed")
    if how == "dropped":
        del response
        return HttpResponse("dropped")
    if how == "dropped-then-fail":
        del response
        raise AfterTheCall("the view fails after dropping its stream")
    raise ValueError(how)


@transaction.non_atomic_requests  # Django refuses ATOMIC_REQUESTS for async views.
async def achat(request):
    backend = ai.get_chat_backend()
    answer = await backend.achat(messages=HELLO, max_tokens=10)
    stream = await backend.achat(messages=HELLO, stream=True, max_tokens=10)
    del stream
    return JsonResponse({"text": answer.text})
