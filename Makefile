# The two commands: `make demo` runs the whole system, `make test` runs the tests.
# Both set everything up on a fresh Debian machine (venv, Python and system packages).

VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test install serve bench bench-quick bench-50k soak fuzz chaos audit clean

$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -c requirements.lock -e '.[dev]'
	touch $@

install: $(STAMP)

demo: $(STAMP)
	scripts/install-system-deps.sh mosquitto
	$(BIN)/pers demo

test: $(STAMP)
	scripts/install-system-deps.sh mosquitto chromium postgresql
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/pytest

serve: $(STAMP)
	scripts/install-system-deps.sh mosquitto
	$(BIN)/pers serve

bench: $(STAMP)
	scripts/install-system-deps.sh mosquitto postgresql
	$(BIN)/python bench/run_all.py

bench-quick: $(STAMP)
	scripts/install-system-deps.sh mosquitto postgresql
	$(BIN)/python bench/run_all.py --quick

bench-50k: $(STAMP)
	scripts/install-system-deps.sh mosquitto
	$(BIN)/python bench/connections_50k_bench.py

soak: $(STAMP)
	scripts/install-system-deps.sh mosquitto
	$(BIN)/python bench/soak_bench.py --minutes 10

chaos: $(STAMP)
	scripts/install-system-deps.sh mosquitto
	$(BIN)/python -m bench.chaos.run --alerts 1000 --twins 100 --spread 180 --outage 120

fuzz: $(STAMP)
	scripts/install-system-deps.sh mosquitto postgresql
	$(BIN)/python scripts/fuzz.py

audit: $(STAMP)
	$(BIN)/python scripts/audit.py

clean:
	rm -rf var test-artifacts .pytest_cache
