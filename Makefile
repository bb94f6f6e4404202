# Tether: the two commands a newcomer needs are `make dev` and `make test`.
# Everything else here is what those two are made of.

PYTHON ?= python3
VENV   := .venv
TOOLS  := .tools
UV     := $(TOOLS)/bin/uv
PY     := $(VENV)/bin/python
UV_VERSION := 0.13.8
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: dev test install lint typecheck unit integration infra-test browser-deps browser-test \
	bench synth clean

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet "uv==$(UV_VERSION)"

$(VENV)/.installed: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --all-extras --python $(PYTHON)
	@touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

install: $(VENV)/.installed node_modules/.installed

## Run Tether locally (see README: what runs today).
dev: $(VENV)/.installed
	$(VENV)/bin/tether dev

## Set up and run every check: lint, types, unit, integration, infra and browser tests.
test: $(VENV)/.installed browser-deps lint typecheck
	$(PY) -m pytest -n 2 --dist load

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(VENV)/.installed
	$(VENV)/bin/mypy shared functions infra tests

unit: $(VENV)/.installed
	$(PY) -m pytest tests/unit

integration: $(VENV)/.installed
	$(PY) -m pytest tests/integration

infra-test: $(VENV)/.installed
	$(PY) -m pytest tests/infra

## The web console's browser tests need Debian's chromium and its driver (never a downloaded
## browser): installed with apt-get when missing (as root, as CI runs), a no-op once there.
CHROMIUM := /usr/bin/chromium
CHROMEDRIVER := /usr/bin/chromedriver
browser-deps:
	@if [ -x $(CHROMIUM) ] && [ -x $(CHROMEDRIVER) ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing chromium and chromium-driver (Debian) for the browser tests"; \
		DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			chromium chromium-driver >/dev/null; \
	else \
		echo "browser tests need chromium: sudo apt-get install chromium chromium-driver"; \
	fi

browser-test: $(VENV)/.installed browser-deps
	$(PY) -m pytest -m browser tests/browser

## Print what Tether costs on AWS per operation (DynamoDB requests), measured on moto, and how
## fast the local stack starts and delivers (wall clock: figures, not assertions).
bench: $(VENV)/.installed
	$(PY) -m tests.bench.store_costs
	$(PY) -m tests.bench.replay_costs
	$(PY) -m tests.bench.local_stack


## Synthesize the CloudFormation templates into cdk.out/ (no Docker, no AWS account).
synth: install
	$(PY) -m infra.app
	@ls -1 cdk.out/*.template.json

clean:
	rm -rf $(VENV) $(TOOLS) node_modules cdk.out .pytest_cache .mypy_cache .ruff_cache
