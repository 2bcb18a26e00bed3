# Set-up and checks, one word each (README.md, "Set up"; docs/setup.md). The packages go into the environment of
# $(PYTHON): the active virtual environment's `python` unless you name another (make app PYTHON=python3.11).
PYTHON ?= python
PIP = $(PYTHON) -m pip
STAMPS = build/make
# Without an NVIDIA GPU, torch comes from the CPU-only index first: the same pinned versions as requirements.txt,
# without the ~4 GB of CUDA libraries a CPU never uses.
TORCH_PINS := $(shell grep -E '^torch(vision)?==' requirements.txt | cut -d' ' -f1)
CPU_INDEX = https://download.pytorch.org/whl/cpu
HAS_GPU := $(shell command -v nvidia-smi 2>/dev/null)

.PHONY: app test quick lint docs

app: $(STAMPS)/app  ## the app on the shipped demo model: http://127.0.0.1:7860
	$(PYTHON) app.py

test: $(STAMPS)/dev  ## the full suite
	$(PYTHON) -m pytest -q

quick: $(STAMPS)/dev  ## the quick tier: no browser, nothing slow
	$(PYTHON) -m pytest -q -m "not browser and not slow"

lint: $(STAMPS)/dev  ## the lint, format and type gates of .ci/run
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .
	$(PYTHON) -m mypy

docs: $(STAMPS)/dev  ## the documentation into site/, failing on any warning
	NO_MKDOCS_2_WARNING=1 $(PYTHON) -m mkdocs build --strict

# Each lock is installed when its stamp is older than it: pip installs only what is missing or pinned differently.
$(STAMPS)/app: requirements.txt pyproject.toml
ifeq ($(HAS_GPU),)
	$(PIP) install $(TORCH_PINS) --index-url $(CPU_INDEX) \
	  || echo "note: the CPU-only torch index is not reachable; requirements.txt installs the default torch wheels"
endif
	$(PIP) install -r requirements.txt
	@mkdir -p $(STAMPS) && touch $@

$(STAMPS)/dev: requirements-dev.txt $(STAMPS)/app
	$(PIP) install -r requirements-dev.txt
	@mkdir -p $(STAMPS) && touch $@
