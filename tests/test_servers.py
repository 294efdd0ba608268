"""`tests.servers.ShopServer`, which the browser and multi-process tests stand on: the shop as
`make run` starts it (the server, the sandbox's deliveries, the reconciler), stopped for sure."""

import psutil

from tests.servers import ShopServer


def test_a_shop_server_runs_the_procfile_processes_and_stop_ends_every_one(tmp_path):
    server = ShopServer(name="shop", tmp_dir=tmp_path).start()
    try:
        first = [psutil.Process(process.pid) for process in server.processes]
        commands = [" ".join(process.cmdline()) for process in first]
        assert [command.split("manage.py ")[1].split()[0] for command in commands] == [
            "runserver",
            "sandbox_deliver",
            "reconcile",
        ]
        assert f"runserver --noreload {server.host}:{server.port}" in commands[0]

        assert server.stop() == 0  # runserver exits cleanly on SIGTERM
        assert psutil.wait_procs(first, timeout=1)[1] == []

        server.start()  # again, on the same port and database
        assert len(server.processes) == 3 and server.running
    finally:
        server.stop()
    assert server.processes == [] and not server.running


def test_a_shop_server_without_background_work_runs_only_what_serves(tmp_path):
    server = ShopServer(name="alone", tmp_dir=tmp_path, reconcile=False, deliver=False).start()
    try:
        assert server.processes == [server.process]
    finally:
        server.kill()
    assert not server.running
