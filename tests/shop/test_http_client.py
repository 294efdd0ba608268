import sys

import httpcore


async def test_the_http_client_finds_its_async_library_without_searching_for_modules(
    monkeypatch,
) -> None:
    """httpcore asks sniffio which async library runs on every lock and event of a request; with
    sniffio missing, each ask searched sys.path for it again (bench/profile_notes.md)."""
    searched: list[str] = []

    class Spy:
        def find_spec(self, name, path=None, target=None):
            searched.append(name)

    monkeypatch.setattr(sys, "meta_path", [Spy(), *sys.meta_path])
    assert httpcore._synchronization.current_async_library() == "asyncio"
    assert searched == []
