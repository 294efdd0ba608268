"""The test knobs over HTTP, so that a test or benchmark in another process can set them."""

from django.http import HttpRequest, HttpResponse, JsonResponse

from sandbox.http import api_view, error, method_not_allowed
from sandbox.knobs import knobs_current, knobs_json, knobs_parse, knobs_reset, knobs_update
from sandbox.parsing import InvalidRequest, json_object


@api_view
def knobs(request: HttpRequest) -> HttpResponse:
    """GET shows the knobs, POST sets any subset of them, DELETE resets them all."""
    if request.method == "GET":
        return JsonResponse(knobs_json(knobs_current()))
    if request.method == "POST":
        try:
            changes = knobs_parse(json_object(request.body))
        except InvalidRequest as exc:
            return error(400, "invalid_request", str(exc))
        return JsonResponse(knobs_json(knobs_update(changes)))
    if request.method == "DELETE":
        return JsonResponse(knobs_json(knobs_reset()))
    return method_not_allowed(["GET", "POST", "DELETE"])
