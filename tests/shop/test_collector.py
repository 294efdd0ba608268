"""The collector policy (shop.collector): what a full collection keeps is frozen, and once the
frozen objects grew by a quarter a full collection walks everything again, which frees the cycles
that died frozen."""

import gc
import weakref

import pytest

from shop.collector import freeze_survivors


class Cycle:
    def __init__(self) -> None:
        self.me = self


@pytest.fixture
def policy():
    """The policy installed on this process's collector; removed afterwards."""
    before = list(gc.callbacks)
    gc.collect()
    gc.freeze()  # as shop.asgi leaves start-up
    freeze_survivors()
    yield
    gc.callbacks[:] = before
    gc.unfreeze()
    gc.collect()


def walked() -> list:
    return gc.get_objects(0) + gc.get_objects(1) + gc.get_objects(2)


def test_what_a_full_collection_keeps_is_frozen(policy):
    kept = Cycle()
    gc.collect()
    assert not any(o is kept for o in walked())  # in the permanent generation, which none walks


def test_a_cycle_that_died_frozen_is_freed_once_the_frozen_objects_grew_by_a_quarter(policy):
    cycle = Cycle()
    alive = weakref.ref(cycle)
    gc.collect()
    del cycle
    gc.collect()
    assert alive() is not None  # garbage, but frozen: no collection walks it

    frozen = gc.get_freeze_count()
    survivors = [[] for _ in range(frozen // 4 + 1)]  # a quarter more, kept alive
    gc.collect()  # freezes them, and lets the next one walk everything
    assert gc.get_freeze_count() == 0
    assert any(o is survivors for o in walked())
    gc.collect()
    assert alive() is None
    assert gc.get_freeze_count() > frozen  # all frozen again, the survivors among them
    assert not any(o is survivors for o in walked())
