"""`make bench`: the stock stack measured against the last committed run (see BENCHMARKS.md).

`bench.run` starts the servers, drives each cell through `bench.load` (always a process of its own)
and has `bench.report` write BENCHMARKS.md. `bench.settings`, `bench.urls`, `bench.views` and
`bench.wsgi` serve the old synchronous Pay under gunicorn, the "sync" side of the comparison.
"""
