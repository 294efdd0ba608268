"""The sandbox mounted where the shop mounts it, without the rest of the shop's routes."""

from django.urls import include, path

urlpatterns = [path("sandbox/", include("sandbox.urls"))]
