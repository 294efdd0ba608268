# The two commands of the README: `make run` and `make test`.
HOST ?= 127.0.0.1
PORT ?= 8000
WORKERS ?= 2
PROD_PORT ?= 8001
VENV := .venv
PY := $(VENV)/bin/python
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

run: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo
	@echo
	@echo "  Shop: http://$(HOST):$(PORT)/"
	@echo "  Try it: buy a product, press Pay, open the cashier link (or scan the QR code) and approve."
	@echo
	$(PY) manage.py serve

# Production: N server processes on PROD_PORT.. and the reconciler (deploy/run; README "Production").
prod: install
	$(PY) manage.py collectstatic --noinput
	$(PY) deploy/run --workers $(WORKERS) --port $(PROD_PORT)

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
