# The two README commands: `make demo` and `make test`. `make bench` measures against peers.
SHELL := /bin/bash
MODELS ?= $(or $(LOQUAT_MODELS),$(or $(XDG_CACHE_HOME),$(HOME)/.cache)/loquat/models)
RELEASE_BIN := .build/release/loquatd
# The Python client's tests run in their own venv (Debian's system Python refuses pip, PEP 668).
PYTHON_VENV := .build/python-venv
export LOQUAT_MODELS := $(MODELS)

.PHONY: all bootstrap build release models test demo bench clean

all: release

bootstrap:
	@scripts/bootstrap

release: bootstrap
	swift build -c release --product loquatd

models:
	@scripts/fetch-models >/dev/null

# Unit and property tests (debug build), then end-to-end tests against the release daemon; the
# shell CLI, the Neovim plugin (headless), the Python client (with the notebook executed) and the
# OpenRPC schema checks against the same binary.
test: bootstrap release models
	swift build --build-tests
	LOQUATD=$(CURDIR)/$(RELEASE_BIN) swift test --skip-build
	LOQUATD=$(CURDIR)/$(RELEASE_BIN) bash clients/shell/test.sh
	LOQUATD=$(CURDIR)/$(RELEASE_BIN) bash clients/nvim/test/run.sh
	test -x $(PYTHON_VENV)/bin/python || python3 -m venv $(PYTHON_VENV)
	$(PYTHON_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r clients/python/requirements-test.txt
	LOQUATD=$(CURDIR)/$(RELEASE_BIN) PYTHONPATH=clients/python $(PYTHON_VENV)/bin/python -m unittest discover -s clients/python/tests -t clients/python
	LOQUATD=$(CURDIR)/$(RELEASE_BIN) $(PYTHON_VENV)/bin/python -m unittest discover -s protocol/tests

demo: bootstrap release models
	LOQUATD=$(CURDIR)/$(RELEASE_BIN) scripts/demo

bench: bootstrap release models
	swift build -c release --product LoquatBench
	LOQUATD=$(CURDIR)/$(RELEASE_BIN) scripts/bench/run

clean:
	rm -rf .build
