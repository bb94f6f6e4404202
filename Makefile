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
# Python may cache compiled modules: every test worker and every `tether dev` the tests start
# imports boto3, moto and the CDK, which costs seconds each when compiled again every time
# (some machines set PYTHONDONTWRITEBYTECODE for everything).
unexport PYTHONDONTWRITEBYTECODE

.PHONY: dev test pytest install lint typecheck unit integration infra-test browser-deps browser-test \
	bench synth deploy destroy clean aws-calls checkov-lock

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet "uv==$(UV_VERSION)"

$(VENV)/.installed: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --all-extras --python $(PYTHON)
	@touch $@

# The CDK steps (synth, deploy, destroy, and the CDK tests) run on the Node that package.json pins
# (the npm package `node`, a supported LTS), not the machine's: jsii, which runs aws-cdk-lib
# under Python, starts the node JSII_NODE names; `npx cdk` finds it first on its PATH.
export JSII_NODE := $(CURDIR)/node_modules/.bin/node

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# checkov (template checks in tests/infra/test_checkov.py) has its own environment: its
# hundred-odd dependencies stay out of the project's lock and venv. Pinned whole in
# tests/infra/checkov-requirements.txt; `make checkov-lock` re-pins after a version change.
CHECKOV_VERSION := 3.3.30
CHECKOV_ENV := $(TOOLS)/checkov
CHECKOV_REQUIREMENTS := tests/infra/checkov-requirements.txt
$(CHECKOV_ENV)/.installed: $(CHECKOV_REQUIREMENTS) | $(UV)
	$(UV) venv --quiet --allow-existing --python $(PYTHON) $(CHECKOV_ENV)
	$(UV) pip sync --quiet --python $(CHECKOV_ENV)/bin/python $(CHECKOV_REQUIREMENTS)
	@touch $@

checkov-lock: | $(UV)
	echo "checkov==$(CHECKOV_VERSION)" | $(UV) pip compile - --python-version 3.11 --quiet \
		--custom-compile-command "make checkov-lock" -o $(CHECKOV_REQUIREMENTS)

install: $(VENV)/.installed node_modules/.installed $(CHECKOV_ENV)/.installed

## Run Tether locally (see README: what runs today).
dev: $(VENV)/.installed
	$(VENV)/bin/tether dev

## Set up and run every check: lint, types, unit, integration, infra and browser tests.
# mypy runs beside pytest (it is single-threaded, and pytest's workers often wait on sockets);
# --output-sync prints each one's output in one piece when it ends, and either failing fails
# the target. --dist loadscope: each module runs whole and in order on one worker, so a
# module-scoped stack is built once and never torn down between its tests (tests/conftest.py
# orders the scopes). Three workers on two cores: a third of the suite's time is spent waiting
# on sockets, subprocesses and the browser, and a third worker fills it (-n 2: 4 min 05 s of
# pytest; -n 3: 3 min 23 s, same machine).
PYTEST_WORKERS ?= 3
test: install browser-deps lint
	@$(MAKE) --no-print-directory -j2 --output-sync=target typecheck pytest

pytest: $(VENV)/.installed
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadscope

## Add the AWS calls this run's Lambda handlers make to tests/infra/aws_calls.json, which the
# IAM parity test checks against each function's role (tests/aws_calls.py).
aws-calls: $(VENV)/.installed
	TETHER_UPDATE_AWS_CALLS=1 $(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadscope -q

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


## Synthesize the CloudFormation templates of STAGE (dev|prod) into cdk.out/ (no Docker, no AWS
## account): builds the dependencies layer, runs cdk-nag, prints resources per stack, synth
## time, asset sizes.
synth: install
	CDK_CONTEXT_JSON='{"stage": "$(STAGE)"}' $(PY) -m infra.app
	@ls -1 cdk.out/*.template.json

# The CDK CLI pinned in package.json (it must read aws-cdk-lib's cloud-assembly schema).
CDK   := npx --no-install cdk
STAGE ?= dev
# Optional settings, passed as CDK context only when set (README: Deploy to AWS):
#   JWKS_URL ISSUER AUDIENCE TENANT_CLAIM  the token issuer (tether:jwksUrl ...)
#   APNS_ARN APNS_SANDBOX_ARN FCM_ARN      SNS platform applications (tether:apnsArn ...)
CDK_CONTEXT = -c stage=$(STAGE) \
	$(if $(JWKS_URL),-c tether:jwksUrl=$(JWKS_URL)) \
	$(if $(ISSUER),-c tether:issuer=$(ISSUER)) \
	$(if $(AUDIENCE),-c tether:audience=$(AUDIENCE)) \
	$(if $(TENANT_CLAIM),-c tether:tenantClaim=$(TENANT_CLAIM)) \
	$(if $(APNS_ARN),-c tether:apnsArn=$(APNS_ARN)) \
	$(if $(APNS_SANDBOX_ARN),-c tether:apnsSandboxArn=$(APNS_SANDBOX_ARN)) \
	$(if $(FCM_ARN),-c tether:fcmArn=$(FCM_ARN)) \
	$(if $(CORS_ORIGINS),-c tether:corsOrigins=$(CORS_ORIGINS))

## Deploy both stacks of STAGE (dev|prod) to the account of your AWS profile; outputs land in
## cdk.out/outputs-$(STAGE).json. Needs `cdk bootstrap` once per account and region.
deploy: install
	$(CDK) deploy --all $(CDK_CONTEXT) --require-approval broadening \
		--outputs-file cdk.out/outputs-$(STAGE).json

## Delete both stacks of STAGE (dev: everything but a non-empty import bucket; prod: data is
## retained, see README).
destroy: install
	$(CDK) destroy --all $(CDK_CONTEXT)

clean:
	rm -rf $(VENV) $(TOOLS) node_modules cdk.out .pytest_cache .mypy_cache .ruff_cache
