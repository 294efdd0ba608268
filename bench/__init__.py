"""`make bench`: what the callback mode buys, measured side by side (see BENCHMARKS.md).

`bench.run` starts the servers and writes the report; `bench.load` is the load generator, always a
process of its own; `bench.settings`, `bench.urls` and `bench.views` are the bench-only pieces the
servers need (the old synchronous Pay view and a polling endpoint), never in the shop's URLs.
"""
