"""`bench.logs`: the faults a run's logs hold, in each server's format."""

from bench.logs import faults

SHOP = """\
--- [10:32:23] uvicorn-redis: manage.py serve --workers 1 on http://127.0.0.1:40001
2026-11-28 18:32:25,589 INFO checkout.services.notifications notification id=1 verdict=accepted
2026-11-28 18:32:25,590 INFO uvicorn.access 127.0.0.1 - "GET /orders/ab/ HTTP/1.1" 200 ERROR page
2026-11-28 18:32:26,001 WARNING checkout.push push failed biz=ab error=TimeoutError()
2026-11-28 18:32:27,002 ERROR uvicorn.error Exception in ASGI application
Traceback (most recent call last):
  File "x.py", line 1, in <module>
RuntimeError: boom
2026-11-28 18:32:28,000 INFO uvicorn.error Shutting down
"""
SANDBOX = """\
Task exception was never retrieved
Traceback (most recent call last):
  File "y.py", line 2, in poll
ValueError: nope
"""
DAPHNE = "2026-11-28 10:32:27,123 CRITICAL Listen failure: [Errno 98] Address in use\n"
GUNICORN = "[2026-11-28 10:32:27 +0000] [4242] [ERROR] Worker (pid:4243) was sent SIGKILL!\n"
CLEAN = "2026-11-28 18:32:25,589 INFO django.request fine\n"


def test_every_warning_error_and_traceback_is_a_fault_once(tmp_path):
    for name, text in [
        ("uvicorn-redis", SHOP),
        ("sandbox", SANDBOX),
        ("daphne-local", DAPHNE),
        ("gunicorn-local", GUNICORN),
        ("load", CLEAN),
    ]:
        (tmp_path / f"{name}.log").write_text(text)
    (tmp_path / "results.json").write_text("ERROR is not a log\n")

    found = [(fault.log, fault.line, fault.text.split()[-1]) for fault in faults(tmp_path)]

    assert found == [
        ("daphne-local.log", 1, "use"),
        ("gunicorn-local.log", 1, "SIGKILL!"),
        ("sandbox.log", 2, "nope"),  # a traceback with no record before it: its exception
        ("uvicorn-redis.log", 4, "error=TimeoutError()"),
        ("uvicorn-redis.log", 5, "application"),  # its traceback, on the next line, is this one
    ]


def test_clean_logs_have_no_fault(tmp_path):
    (tmp_path / "uvicorn-local.log").write_text(CLEAN * 3)
    assert faults(tmp_path) == []
