# kop: developer entry points. `make` alone lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV   := .venv
# The stamp carries a hash of pyproject.toml, setup.py and the compiled codec's source: editing the
# dependencies or the C codec reinstalls (and rebuilds it), nothing else does (the package itself is
# installed editable).
PYPROJECT_HASH := $(shell cat pyproject.toml setup.py kop/_batch_codec.c 2>/dev/null | sha256sum | cut -c1-12)
STAMP  := $(VENV)/.installed-$(PYPROJECT_HASH)
# Extra arguments for pytest (`make test PYTEST_ARGS='-k fetch -x'`) and for `kop serve` (`make run ARGS='--config kop.toml'`).
PYTEST_ARGS ?=
ARGS ?=
BENCH_ARGS ?=
# `make conformance CONFORMANCE_ARGS='--targets kop-pulsar --suites franz-go --no-write'` narrows it down.
CONFORMANCE_ARGS ?=
BENCH_STAMP := $(VENV)/.bench-installed-$(PYPROJECT_HASH)

.PHONY: help install pulsar-fetch pulsar-start pulsar-stop kafka-tools kafka-apps run run-secure test test-faults test-apps test-unit conformance bench clean

help: ## list the targets
	@echo "kop make targets:"
	@grep -E '^[a-z][a-zA-Z_-]*:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN { FS = ":.*## " } { printf "  %-14s %s\n", $$1, $$2 }'

install: $(STAMP) ## create .venv and pip install -e '.[test]' (only when pyproject.toml changed)

$(STAMP): pyproject.toml setup.py kop/_batch_codec.c
	@test -x $(VENV)/bin/python || { echo "creating $(VENV)"; $(PYTHON) -m venv $(VENV); }
	$(VENV)/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'
	@rm -f $(VENV)/.installed-*
	@touch $@

pulsar-fetch: ## download Pulsar 4.0.8 from Maven Central into ~/.cache/kop (cached)
	scripts/pulsar.sh fetch

pulsar-start: ## start a Pulsar standalone in the background (reuses one already answering)
	scripts/pulsar.sh start

pulsar-stop: ## stop the Pulsar started by `make pulsar-start` (run dir .run/pulsar)
	scripts/pulsar.sh stop

kafka-tools: ## fetch Apache Kafka 4.1.2's Java tools into ~/.cache/kop (cached)
	scripts/kafka-tools.sh fetch

kafka-apps: ## fetch Kafka Streams and Kafka Connect 4.1.2 into ~/.cache/kop and compile tests/clients/apps/java (cached)
	scripts/kafka-apps.sh compile >/dev/null

run: ## run the gateway on 127.0.0.1:9092 (starts Pulsar if none answers; Ctrl-C stops both)
	scripts/run.sh $(ARGS)

run-secure: ## Pulsar with token auth + kop with SASL_PLAINTEXT :9093 and SASL_SSL :9094 (README)
	KOP_SECURE=1 scripts/run.sh $(ARGS)

test: install kafka-tools kafka-apps ## all tests against a real Pulsar (started for the run if none answers)
	scripts/test.sh $(PYTEST_ARGS)

bench: install kafka-tools $(BENCH_STAMP) ## native Pulsar vs kop vs Kafka vs KoP (benchmarks/README.md; ~1 h, BENCH_ARGS=--quick ~10 min)
	scripts/pulsar.sh fetch
	$(VENV)/bin/python benchmarks/bench.py $(BENCH_ARGS)

$(BENCH_STAMP): pyproject.toml setup.py kop/_batch_codec.c
	$(VENV)/bin/python -m pip install -q --disable-pip-version-check -e '.[test,bench]'
	@rm -f $(VENV)/.bench-installed-*
	@touch $@

test-faults: install kafka-tools ## the fault tests alone, in full: kill -9/SIGTERM, Pulsar restart, unloads, 1,000,000 fuzzed frames (~20-60 min)
	FUZZ_FRAMES=$${FUZZ_FRAMES:-1000000} scripts/test.sh -s tests/faults $(PYTEST_ARGS)

conformance: install kafka-tools ## clients' own suites (franz-go, librdkafka, kafka-python, Kafka's) vs kop and Kafka 4.1.2: docs/compatibility.md (~30 min)
	PYTHONPATH=scripts $(VENV)/bin/python -m conformance run $(CONFORMANCE_ARGS)

test-apps: install kafka-tools kafka-apps ## Kafka Streams and Kafka Connect through kop in full: both entry formats, two restarts each (~4 min)
	APPS_FULL=1 scripts/test.sh -s tests/clients/apps $(PYTEST_ARGS)

test-unit: install ## unit tests only (tests/unit, no Pulsar)
	$(VENV)/bin/pytest -ra tests/unit $(PYTEST_ARGS)

clean: ## remove .run/ and the repo's caches (not .venv, not ~/.cache/kop)
	@for pid_file in .run/*/pulsar.pid; do \
	  if [ -f "$$pid_file" ] && kill -0 "$$(cat "$$pid_file")" 2>/dev/null; then \
	    echo "a Pulsar started from $$(dirname "$$pid_file") is running (pid $$(cat "$$pid_file")): stop it first" \
	         "(make pulsar-stop, or KOP_RUN_DIR=$$(dirname "$$pid_file") scripts/pulsar.sh stop)" >&2; exit 1; \
	  fi; \
	done
	rm -rf .run .pytest_cache .hypothesis build
	find . \( -path ./.venv -o -path ./.git \) -prune -o -name __pycache__ -prune -exec rm -rf {} +
