# Valohai Hybrid on AWS: every developer and maintainer task starts here.
# `make help` lists the targets. Tools that pin their own boto3 (aws-sam-cli,
# checkov) get virtual environments of their own under .tools/.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TOOLS := .tools
SAM := $(TOOLS)/sam/bin/sam
CHECKOV := $(TOOLS)/checkov/bin/checkov
SAM_CLI_VERSION := 1.170.0
CHECKOV_VERSION := 3.3.30
PIP_QUIET := --quiet --disable-pip-version-check
# pytest workers for `make test` (pytest-xdist): most of the suite waits on servers, Lambda
# workers and redelivery intervals (two workers kept two cores at a load of about 2), so three
# finish sooner even on two cores.
TEST_WORKERS ?= 3

# Every tool run uses fake credentials and a region: nothing here may reach a real account
# unless a maintainer runs `make publish` with their own credentials.
LOCAL_ENV := AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_SESSION_TOKEN=testing \
	AWS_DEFAULT_REGION=eu-west-1 AWS_REGION=eu-west-1 AWS_CONFIG_FILE=/dev/null \
	AWS_SHARED_CREDENTIALS_FILE=/dev/null SAM_CLI_TELEMETRY=0

.DEFAULT_GOAL := help
.PHONY: help install tools test test-fast lint demo bench publish clean

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-9s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# The local AWS is a distribution of its own (local-aws/); the console command's extras need it.
$(VENV)/.installed: pyproject.toml local-aws/pyproject.toml | $(BIN)/python
	$(BIN)/pip install $(PIP_QUIET) -e ./local-aws -e '.[dev]'
	@touch $@

# The local AWS's IAM policy engine (Node 20+): installed from its lockfile, again only when the
# lockfile changes.
IAM_ENGINE := local-aws/src/localaws/iam/node
$(IAM_ENGINE)/node_modules/.installed: $(IAM_ENGINE)/package-lock.json
	cd $(IAM_ENGINE) && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

install: $(VENV)/.installed $(IAM_ENGINE)/node_modules/.installed ## Create .venv with the tooling, the functions' libraries, the test tools and the IAM engine

$(SAM):
	$(PYTHON) -m venv $(TOOLS)/sam
	$(TOOLS)/sam/bin/pip install $(PIP_QUIET) aws-sam-cli==$(SAM_CLI_VERSION)

$(CHECKOV):
	$(PYTHON) -m venv $(TOOLS)/checkov
	$(TOOLS)/checkov/bin/pip install $(PIP_QUIET) checkov==$(CHECKOV_VERSION)

tools: $(SAM) $(CHECKOV) ## Create the aws-sam-cli and checkov environments under .tools/

# The doctor tests talk to a real Redis over TLS: Debian's redis-server is built with TLS. It is
# installed here (as root, or with sudo) so that `make test` is the whole set-up.
test: install tools ## Run every test (unit, templates, local AWS, integration, end to end)
	@command -v redis-server >/dev/null || { \
		as_root=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
		echo "installing Debian's redis-server (the doctor tests need a TLS-capable Redis)"; \
		$$as_root apt-get update -qq && \
		$$as_root env DEBIAN_FRONTEND=noninteractive \
			apt-get install -y -qq --no-install-recommends redis-server; }
	$(LOCAL_ENV) PATH="$(CURDIR)/$(TOOLS)/sam/bin:$$PATH" $(BIN)/python -m pytest \
		-n $(TEST_WORKERS) --dist loadgroup $(PYTEST_ARGS); \
	status=$$?; if [ $$status -eq 5 ]; then echo "pytest collected no tests: that is a failure here"; exit 1; fi; exit $$status

# The tests that need no server (`-m "not localaws"`: the local AWS's pytest plugin marks every
# test that uses it): the templates, the functions, the tooling; about 150 s of CPU.
test-fast: install tools ## Run the tests that need no server (no local AWS, no launches)
	$(LOCAL_ENV) PATH="$(CURDIR)/$(TOOLS)/sam/bin:$$PATH" $(BIN)/python -m pytest \
		-m "not localaws" -n $(TEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

lint: install tools ## ruff, mypy, import contracts, sam validate, cfn-lint, checkov, shellcheck
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(LOCAL_ENV) $(BIN)/mypy
# The three layers (pyproject.toml [tool.importlinter]): product, console command, local AWS.
	PYTHONPATH=functions $(BIN)/lint-imports --no-cache
# Product templates in every region's schema, informational rules on, plus our rules
# (E9004 runs shellcheck on the boot scripts). W3002 flags the local TemplateURLs that
# packaging rewrites to S3 URLs.
	$(BIN)/cfn-lint --include-checks I --regions ALL_REGIONS --ignore-checks W3002 \
		--append-rules valohai_hybrid/cfnlint_rules -- cfn/*.yml
	$(LOCAL_ENV) $(CHECKOV) -d cfn --framework cloudformation --skip-download --quiet --compact
# The platform stack: sam validate --lint (cfn-lint where sam deploys, which also proves every
# resource type exists), cfn-lint in every region but E3006 (Service Catalog is not in every
# region; the platform installs where it is), and checkov on the template and on its SAM
# translation, where the roles and event resources SAM generates exist.
	$(LOCAL_ENV) $(SAM) validate --lint --template-file template.yaml
	$(BIN)/cfn-lint --include-checks I --regions ALL_REGIONS --ignore-checks E3006 -- template.yaml
	$(LOCAL_ENV) $(BIN)/python -m valohai_hybrid.local.sam_translation build/platform/translated.json
	$(LOCAL_ENV) $(CHECKOV) -f template.yaml -f build/platform/translated.json \
		--framework cloudformation --skip-download --quiet --compact

demo: install $(SAM) ## Publish, launch, update and terminate the whole product on a local AWS (DEMO_ARGS="--timings FILE")
	$(LOCAL_ENV) $(BIN)/valohai-hybrid demo $(DEMO_ARGS)

bench: install tools ## Run the benchmarks and write bench/results/
	$(LOCAL_ENV) $(BIN)/python -m bench

publish: install tools ## Package and publish the platform stack to real AWS (your credentials, samconfig.toml)
	$(BIN)/valohai-hybrid publish $(PUBLISH_ARGS)

clean: ## Remove environments, caches and build output
	rm -rf $(VENV) $(TOOLS) $(IAM_ENGINE)/node_modules .cache .localaws .aws-sam build *.egg-info .pytest_cache .mypy_cache .ruff_cache
