"""The cycle collector under thousands of sockets: what survives a full collection is frozen.

Each open socket keeps about 80 objects the collector tracks (its consumer, the coroutines of the
ASGI stack, their lists and dicts). Python 3.13 walks every tracked object that is not frozen in
each full collection, and runs one whenever the objects that survived since the last reach a
quarter of those it kept then: with 5,000 sockets coming and going, a pause of 0.2-0.35 s that
stops every socket and request in the process (bench/profile_notes.md, "The collector while
sockets come and go").

After each full collection, `freeze_survivors` freezes what it kept, so the next one walks only
what came since. A frozen object is still freed the usual way once nothing refers to it; only
objects in reference cycles that die frozen stay (a few per closed socket, as measured). Once the
frozen objects have grown by a quarter since the last time, the next full collection walks
everything again, as Python's own rule would have had it do, and frees them.
"""

import gc


def freeze_survivors() -> None:
    """From now on, freeze what each full collection keeps (see the module's docstring)."""
    walked_all_at = gc.get_freeze_count()  # frozen objects after the last pass that walked all
    walk_all = False

    def after_collection(phase: str, info: dict) -> None:
        nonlocal walked_all_at, walk_all
        if phase != "stop" or info["generation"] != 2:
            return
        gc.freeze()
        frozen = gc.get_freeze_count()
        if walk_all:  # this pass walked everything
            walked_all_at, walk_all = frozen, False
        elif frozen > walked_all_at * 5 / 4:
            gc.unfreeze()  # the next full collection walks everything
            walk_all = True

    gc.callbacks.append(after_collection)
