from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from checkout.gallery import SAMPLES, sample_render


@require_GET
def gallery(request: HttpRequest) -> HttpResponse:
    """Every panel in every language, side by side (DEBUG, or staff): edit a template, reload."""
    if not (settings.DEBUG or request.user.is_staff):
        raise Http404("No gallery here.")
    rows = [
        {
            "sample": sample,
            "panels": [
                (code, name, sample_render(sample, code)) for code, name in settings.LANGUAGES
            ],
        }
        for sample in SAMPLES
    ]
    return render(request, "checkout/gallery.html", {"rows": rows})
