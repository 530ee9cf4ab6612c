# The two README commands. Both set up everything themselves on a fresh machine:
#   make demo   run the whole assessment on the embedded demo estate
#   make test   lint, type-check and run every test (root-only tests run when root, as on CI)
# Set-up is idempotent and quick the second time: stamps record what is installed.

PYTHON  ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
APTSTAMP := .estate-apt-installed
export ESTATE_HOME ?= $(CURDIR)/.estate

.PHONY: demo test lint typecheck pytest setup clean bench fuzz node-npm

setup: $(STAMP) $(APTSTAMP) node-npm

# Python packages: reinstall only when pyproject.toml changes.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip wheel setuptools
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

# npm, with which the Azure archive tests install Azurite (tests/evidence/azurite-npm). Debian's
# nodejs comes without it; NodeSource's nodejs includes it and conflicts with Debian's npm package,
# so it is installed only when no npm is there at all.
node-npm:
	@command -v npm >/dev/null 2>&1 || { if [ "$$(id -u)" = 0 ]; then \
	  echo "installing Debian packages: nodejs npm"; apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null; \
	else echo "note: not root, so not installing npm (the Azure archive tests need it)"; fi; }

# Debian packages: only as root (CI runs as root); otherwise say what is missing and go on.
$(APTSTAMP): deps/apt-packages.txt
	@pkgs="$$(grep -v '^#' deps/apt-packages.txt | tr '\n' ' ')"; \
	missing=""; for p in $$pkgs; do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; done; \
	if [ -z "$$missing" ]; then touch $(APTSTAMP); \
	elif [ "$$(id -u)" = 0 ]; then \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null && touch $(APTSTAMP); \
	else echo "note: not root, so not installing Debian packages:$$missing (root-only tests will be skipped)"; fi

demo: setup
	$(BIN)/estate validate
	$(BIN)/estate assess --fail-on none
	$(BIN)/estate evidence seal
	$(BIN)/estate evidence verify

lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

typecheck: lint

pytest: setup
	$(BIN)/pytest

test: setup lint pytest

bench: setup
	$(BIN)/python -m bench

# Random fuzzing: make test replays the same examples every run; this draws new ones each time.
fuzz: setup
	ESTATE_HYPOTHESIS=explore $(BIN)/pytest -p no:cacheprovider \
	  tests/foundation/test_fuzz_inputs.py tests/foundation/test_bad_input.py tests/compliance/test_debver.py \
	  tests/infra/test_naming.py

clean:
	rm -rf $(VENV) $(APTSTAMP) .estate out .pytest_cache .mypy_cache .ruff_cache
