# The two commands of the README: `make run` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-timezones lint pytest bench bench-intake bench-drain setup clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

## Start the Temporal dev server, the worker and the API; Ctrl-C stops them.
run: $(STAMP)
	$(BIN)/reactor dev

## Lint, type-check, and run every test against a real Temporal dev server.
test: lint pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest

## The tests that touch local time, again with the machine in two far-apart time zones
## (UTC+14 and UTC-10/-9): nothing may depend on the machine's own zone. CI runs it.
CLOCK_TESTS := tests/test_guest_journey.py tests/test_housekeeping.py tests/test_sample_stay.py \
	tests/test_templates.py tests/test_cli.py
test-timezones: $(STAMP)
	TZ=Pacific/Kiritimati $(BIN)/pytest -q $(CLOCK_TESTS)
	TZ=America/Adak $(BIN)/pytest -q $(CLOCK_TESTS)

## Webhook ack latency and throughput against raw start_workflow (see bench/README.md).
bench: $(STAMP)
	command -v wrk >/dev/null || (apt-get update && apt-get install -y wrk)
	$(BIN)/python bench/webhook.py

## Queued acks/s and p99 with Temporal killed, against accepted with Temporal up (bench/README.md).
bench-intake: $(STAMP)
	command -v wrk >/dev/null || (apt-get update && apt-get install -y wrk)
	$(BIN)/python bench/intake.py $(BENCH_ARGS)

## The minimal Temporal unit against reactor's check-in, task and message, drained by a fresh
## worker from a backlog on one dev server (bench/README.md).
bench-drain: $(STAMP)
	$(BIN)/python bench/drain.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var build *.egg-info
