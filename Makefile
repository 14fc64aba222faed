# One command each, from a fresh clone (README, "Quick start"):
#
#   make quickstart [ARGS="--duration 30"]   the main job: the ad_ctr online-learning demo
#   make test [ARGS="tests/web -x"]          everything the tests need, the linters, the suite
#   make coverage [ARGS="tests/serving"]     the suite under branch coverage, then its total
#
# Both set up only what is missing: a second run starts at once. The manual steps are in
# docs/development.md.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
FLINK_VENV := .venv-flink
ARGS ?=

.PHONY: quickstart test coverage setup flink-env chromium clean-env

quickstart: $(VENV)/.installed-ml
	$(BIN)/tideflow quickstart $(ARGS)

test: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" scripts/test $(ARGS)

# The suite (or ARGS) under branch coverage, servers and jobs included (docs/development.md).
coverage: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" PYTHON="$(CURDIR)/$(BIN)/python" scripts/coverage $(ARGS)

# What the tests need, without running them.
setup: $(VENV)/.installed-dev flink-env chromium

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# A stamp per extra: pip runs again only when pyproject.toml changed.
$(VENV)/.installed-ml: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -e '.[ml]'
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -e '.[dev]'
	touch $@ $(VENV)/.installed-ml

# PyFlink lives in its own environment (docs/engines.md); a complete one is reused in ~1 s.
flink-env: $(VENV)/.installed-dev
	$(BIN)/tideflow engines setup flink --path $(FLINK_VENV)

# The browser tests (marker "browser") drive Debian's Chromium.
chromium:
	@if [ ! -x /usr/bin/chromium ]; then \
		as_root=""; [ "$$(id -u)" -eq 0 ] || as_root="sudo"; \
		$$as_root apt-get update && $$as_root apt-get install -y chromium; \
	fi

# Remove the environments (the next make sets them up again).
clean-env:
	rm -rf $(VENV) $(FLINK_VENV)
