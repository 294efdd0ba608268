# The two commands of the README: `make run` and `make test`; `make prod` for production.
HOST ?= 127.0.0.1
PORT ?= 8000
# `make prod`: SERVERS daphne processes on PROD_PORT, PROD_PORT+1, ... (deploy/supervisord.conf).
SERVERS ?= 2
PROD_PORT ?= 8001
VENV := .venv
PY := $(VENV)/bin/python
# Settings files honcho reads for `make run` (KEY=value lines; a missing one is skipped):
# `make run ENV_FILES=.env,.fakes/env` takes payments through the fakes of `make fakes`.
ENV_FILES ?= .env
export HOST PORT

.PHONY: run test prod bench bench-quick install clean messages

$(VENV)/.installed: pyproject.toml
	@python3 -c 'import sys; sys.exit(sys.version_info < (3, 12))' || \
		{ echo "Python >= 3.12 is needed; .python-version names $$(cat .python-version)"; exit 1; }
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,bench]'
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

install: $(VENV)/.installed node_modules/.installed

# The embedded defaults (settings need DEBUG=1 for them): the server, the reconciler and the
# sandbox's deliveries, as the Procfile lists them, under honcho; Ctrl-C stops all three. honcho
# runs each command through a shell, so the venv's bin goes first on PATH; and it gives each process
# type a PORT of its own (PORT, PORT+100, ...), so all of them get the shop's address as SITE_URL.
run: export DEBUG := 1
run: export SITE_URL ?= http://$(HOST):$(PORT)
run: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo
	@echo
	@echo "  Shop: http://$(HOST):$(PORT)/"
	@echo "  Try it: buy a product, press Pay, open the cashier link (or scan the QR code) and approve."
	@echo
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" exec $(VENV)/bin/honcho -e $(ENV_FILES) start

# Local fakes of Alipay, WeChat Pay and Stripe (tests/fakes/serve.py) on 8301, 8302 and 8303, for
# trying every provider by hand: keys made once in .fakes/, and the shop's settings for the fakes
# written to .fakes/env once they listen (honcho's `-e .fakes/env` reads it). Their pages stand in
# for the shopper's apps; Stripe's events go to $(SITE_URL)/payments/notify/stripe/. Ctrl-C stops.
.PHONY: fakes
fakes: export SITE_URL ?= http://$(HOST):$(PORT)
fakes: $(VENV)/.installed
	$(PY) -m tests.fakes.serve --dir .fakes --host $(HOST) $(FAKES_ARGS)

# Production in the foreground: daphne processes and the reconciler under supervisor, configured by
# the environment (deploy/supervisord.conf; README "Production").
prod: install
	$(PY) manage.py collectstatic --noinput
	$(PY) manage.py migrate --noinput
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" PORT=$(PROD_PORT) SERVERS=$(SERVERS) \
		exec $(VENV)/bin/supervisord -n -c deploy/supervisord.conf

test: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest $(PYTEST_ARGS)

# After editing the code's texts or locale/*/LC_MESSAGES/django.po (needs GNU gettext); commit the .po and .mo.
messages: install
	$(PY) manage.py makemessages -l zh_Hans --no-location -i '.venv/*' -i 'node_modules/*' -i 'sandbox/*' -i 'tests/*' -i 'templates/sandbox/*' -i 'templates/checkout/gallery.html'
	$(PY) manage.py compilemessages -l zh_Hans -i '.venv/*' -i 'node_modules/*'

# Writes BENCHMARKS.md and docs/bench/*.png; set DATABASE_URL (PostgreSQL) and REDIS_URL first.
bench: install
	$(PY) -m bench.run $(BENCH_ARGS)

# The same harness at tiny sizes, as `make test` runs it (tests/bench/).
bench-quick: install
	$(PY) -m pytest tests/bench $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) node_modules db.sqlite3
