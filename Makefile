# The README's two commands: `make demo` (set up, then run the main job) and `make test`.
# Both create .venv in the repo root and install everything on a fresh machine.
VENV    ?= .venv
PY      := $(VENV)/bin/python
PIP     := $(PY) -m pip
export CUDA_HOME ?= /usr/local/cuda

# torch and torchvision are pinned: other versions are unavailable or break torchvision.
RUNTIME_DEPS := torch==2.14.1 torchvision==0.29.1 numpy scikit-image pypng pluggy tqdm matplotlib
# Optional, installed here so the demo and tests use it: the CPU Wiener filter's faster FFT (GPL-2.0-or-later).
OPTIONAL_DEPS := ducc0
BUILD_DEPS   := setuptools wheel ninja pybind11
TEST_DEPS    := pytest hypothesis bm3d
DOCS_DEPS    := sphinx myst-parser
SOURCES      := setup.py $(wildcard csrc/*.cpp csrc/*.h csrc/cuda/*.cu csrc/cuda/*.cuh) \
                $(wildcard examples/restorekit-skimage/pyproject.toml)
STAMP        := $(VENV)/.restorekit-installed

.PHONY: demo test install build clean-build help weights docs
help:
	@echo "make demo   - set up .venv and run 'restorekit demo' on scikit-image's bundled photos"
	@echo "make test   - set up .venv and run the test suite"
	@echo "make build  - rebuild the compiled extension in place after editing csrc/"
	@echo "make docs   - build the API reference and guides with Sphinx (warnings are errors) into docs/_build/html"

$(PY):
	python3 -m venv $(VENV)

$(STAMP): $(PY) $(SOURCES)
	$(PIP) install --upgrade pip
	$(PIP) install $(RUNTIME_DEPS) $(OPTIONAL_DEPS) $(BUILD_DEPS) $(TEST_DEPS) $(DOCS_DEPS)
	$(PIP) install --no-build-isolation -e . -e examples/restorekit-skimage
	touch $(STAMP)

install: $(STAMP)

build: $(STAMP)
	$(PY) setup.py build_ext --inplace

demo: $(STAMP)
	$(VENV)/bin/restorekit demo

test: $(STAMP)
	$(PY) -m pytest

# The API reference is built from the docstrings; any Sphinx warning fails the build.
docs: $(STAMP)
	rm -rf docs/_build
	$(PY) -m sphinx -W --keep-going -b html docs docs/_build/html

clean-build:
	rm -rf build restorekit/_C*.so $(STAMP)

# Re-train every shipped model from ../shared/data with the command recorded in its weights' JSON.
weights: $(STAMP)
	$(PY) benchmarks/retrain_weights.py
