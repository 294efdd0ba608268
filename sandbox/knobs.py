"""The test knobs (README "Knobs"): one database row, so that every process sees the same ones.

Knobs are read when a notification is enqueued and stored with it, so changing them affects the
notifications that come after, never one already on its way.
"""

from typing import Any

from django.db import transaction

from sandbox.models import Knobs
from sandbox.parsing import InvalidRequest, integer

INTEGER_LIMITS = {"delay_ms": 3_600_000, "duplicate": 20, "reorder_ms": 3_600_000}
FLAGS = ("drop", "bad_signature_probes")


def knobs_current() -> Knobs:
    try:
        return Knobs.objects.get(pk=1)
    except Knobs.DoesNotExist:  # nobody has set a knob: the defaults, without writing anything
        return Knobs()


def knobs_parse(data: dict[str, Any]) -> dict[str, int | bool]:
    unknown = sorted(set(data) - set(INTEGER_LIMITS) - set(FLAGS))
    if unknown:
        raise InvalidRequest(f"unknown knobs: {', '.join(unknown)}")
    changes: dict[str, int | bool] = {}
    for key, maximum in INTEGER_LIMITS.items():
        if key in data:
            changes[key] = integer(data, key, minimum=0, maximum=maximum)
    for key in FLAGS:
        if key in data:
            if not isinstance(data[key], bool):
                raise InvalidRequest(f"{key} must be true or false")
            changes[key] = data[key]
    return changes


def knobs_update(changes: dict[str, int | bool]) -> Knobs:
    with transaction.atomic():
        knobs, _ = Knobs.objects.select_for_update().get_or_create(pk=1)
        for key, value in changes.items():
            setattr(knobs, key, value)
        knobs.save()
    return knobs


def knobs_reset() -> Knobs:
    Knobs.objects.filter(pk=1).delete()
    return Knobs()


def knobs_json(knobs: Knobs) -> dict[str, int | bool]:
    return {
        "delay_ms": knobs.delay_ms,
        "duplicate": knobs.duplicate,
        "reorder_ms": knobs.reorder_ms,
        "drop": knobs.drop,
        "bad_signature_probes": knobs.bad_signature_probes,
    }
