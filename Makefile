# Everyday commands. `make run` and `make test` set up .venv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: run superuser test test-embedded lint format upstream bench reliability-soak check-deploy clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.runtime: requirements.txt | $(BIN)/python
	$(BIN)/pip install -q -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install -q -r requirements-dev.txt
	touch $@ $(VENV)/.runtime

## run: install, migrate and serve ASGI (daphne) on the embedded defaults (SQLite, in-memory layer, demo provider)
run: $(VENV)/.runtime
	DEBUG=$${DEBUG:-true} $(BIN)/python manage.py migrate --noinput
	DEBUG=$${DEBUG:-true} $(BIN)/python manage.py runserver $(HOST):$(PORT)

## superuser: create an administrator account (DEBUG on unless set, like run)
superuser: $(VENV)/.runtime
	DEBUG=$${DEBUG:-true} $(BIN)/python manage.py migrate --noinput
	DEBUG=$${DEBUG:-true} $(BIN)/python manage.py createsuperuser

## test: the whole suite (uses DATABASE_URL / REDIS_URL when set; SQLite and in-memory otherwise)
test: $(VENV)/.dev
	$(BIN)/pytest

## test-embedded: the suite on the embedded defaults only (SQLite, in-memory layer), whatever the
## environment says; without the live-server reliability scenarios, the browser and the bench scripts
test-embedded: $(VENV)/.dev
	env -u DATABASE_URL -u REDIS_URL -u E2E_REQUIRED SKIP_BENCH_TESTS=1 \
	  $(BIN)/pytest --ignore=tests/reliability --ignore=tests/e2e -p no:cacheprovider

## lint: ruff lint and format check
lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## upstream: the local fake provider upstream (OpenAI, Gemini, Z.AI wire formats) on port 8765
upstream: $(VENV)/.dev
	$(BIN)/python -m tests.fake_upstream --port 8765

## bench: the four benchmark scripts (PostgreSQL and Redis on 127.0.0.1; see bench/README.md)
bench: $(VENV)/.dev
	$(BIN)/python bench/ttft.py
	$(BIN)/python bench/throughput.py
	$(BIN)/python bench/open_streams.py
	$(BIN)/python bench/db_roundtrips.py

## reliability-soak: the reliability suite with ten times the load (run by hand)
reliability-soak: $(VENV)/.dev
	RELIABILITY_SOAK=10 $(BIN)/pytest tests/reliability

## check-deploy: Django's deployment checklist with production-like settings
check-deploy: $(VENV)/.runtime
	DEBUG=false LLM_PROVIDER=$${LLM_PROVIDER:-demo} REDIS_URL=$${REDIS_URL:-redis://127.0.0.1:6379/0} \
	  SECRET_KEY=$${SECRET_KEY:-$$(head -c 48 /dev/urandom | base64)} SECURE_HSTS_SECONDS=31536000 \
	  SECURE_HSTS_INCLUDE_SUBDOMAINS=true SECURE_HSTS_PRELOAD=true ALLOWED_HOSTS=chat.example.com \
	  $(BIN)/python manage.py check --deploy --fail-level WARNING

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache staticfiles
