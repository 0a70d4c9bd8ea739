# The two README commands: `make demo` and `make test`. `make bench` measures against peers.
SHELL := /bin/bash
MODELS ?= $(or $(LOQUAT_MODELS),$(or $(XDG_CACHE_HOME),$(HOME)/.cache)/loquat/models)
RELEASE_BIN := .build/release/loquatd
export LOQUAT_MODELS := $(MODELS)

.PHONY: all bootstrap build release models test demo bench clean

all: release

bootstrap:
	@scripts/bootstrap

release: bootstrap
	swift build -c release --product loquatd

models:
	@scripts/fetch-models >/dev/null

# Unit and property tests (debug build), then end-to-end tests against the release daemon and
# the shell and Python clients against the same binary.
test: bootstrap release models
	swift build --build-tests
	LOQUATD=$(CURDIR)/$(RELEASE_BIN) swift test --skip-build
	LOQUATD=$(CURDIR)/$(RELEASE_BIN) bash clients/shell/test.sh
	LOQUATD=$(CURDIR)/$(RELEASE_BIN) PYTHONPATH=clients/python python3 -m unittest discover -s clients/python/tests -t clients/python

demo: bootstrap release models
	LOQUATD=$(CURDIR)/$(RELEASE_BIN) scripts/demo

bench: bootstrap release models
	swift build -c release --product LoquatBench
	LOQUATD=$(CURDIR)/$(RELEASE_BIN) scripts/bench/run

clean:
	rm -rf .build
