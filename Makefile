# Two commands do all set-up: `make run` and `make test`. Both create .venv
# (Python 3.10, every package pinned by requirements.lock) when it is missing
# or older than the lock, then do their job.

VENV    := .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
UV      := UV_PYTHON_DOWNLOADS=never $(VENV)/bin/uv
# TFMA 0.47's widgets exist only as classic-notebook extensions (Notebook 7 and JupyterLab 4 load
# none): TFMA's own, and notebooks/tfma_widget_fixes.js, which lets them render after one Run All.
NBEXT   := $(VENV)/share/jupyter/nbextensions/tfma_widget_fixes.js
# The classic notebook's own setting, inside the venv: no banner urging the move to Notebook 7,
# which cannot load TFMA's widgets (notebook 6.5.7's page script then logs one harmless error:
# BANNER_OFF_ERROR in tests/browser_e2e_test.py).
NBCONF  := $(VENV)/etc/jupyter/jupyter_notebook_config.json
# Two pytest-xdist workers. Each test module, and the tests that share the sample's runs, stay
# on one worker (conftest.py), so no run is made twice. `make test TEST_WORKERS=` runs the suite
# in one process.
TEST_WORKERS ?= -n 2 --dist loadgroup --no-loadscope-reorder
export TF_USE_LEGACY_KERAS := 1
export PYTHONHASHSEED := 0

# TFX 1.16 supports Python <3.11 only. On pyenv machines whose global version is
# newer, the bare `python3.10` shim fails, so look for a real 3.10 interpreter.
PYTHON310 ?= $(shell \
  for c in python3.10 "$$(command -v pyenv >/dev/null 2>&1 && ls -d "$$(pyenv root)"/versions/3.10.*/bin/python3.10 2>/dev/null | sort -V | tail -n 1)"; do \
    [ -n "$$c" ] && "$$c" -c 'import sys; assert sys.version_info[:2] == (3, 10)' >/dev/null 2>&1 && { echo "$$c"; break; }; \
  done)

.PHONY: venv run test test-fast lint format notebook lock clean

venv: $(STAMP) $(NBEXT) $(NBCONF)

$(STAMP): requirements.lock setup.py
	@if [ -z "$(PYTHON310)" ]; then \
	  echo "error: Python 3.10 is required (TFX 1.16 supports Python >=3.9,<3.11) and none was found." >&2; \
	  echo "       Install it (e.g. 'pyenv install 3.10.13') or pass PYTHON310=/path/to/python3.10." >&2; \
	  exit 1; fi
	rm -rf $(VENV)
	$(PYTHON310) -m venv $(VENV)
	@# uv (its version pinned by the lock, from the package index) installs the lock in about
	@# half a minute, where pip takes minutes; pip does it where uv cannot be had.
	if $(PY) -m pip install --quiet "$$(grep '^uv==' requirements.lock)"; then \
	  $(UV) pip sync --python $(PY) requirements.lock && \
	  $(UV) pip install --python $(PY) --no-deps --no-build-isolation -e . ; \
	else \
	  echo "uv could not be installed: installing the lock with pip (slower)"; \
	  $(PY) -m pip install --quiet -r requirements.lock && \
	  $(PY) -m pip install --quiet --no-deps --no-build-isolation -e . ; \
	fi
	$(PY) -m pip check
	touch $(STAMP)

# Enabled inside the venv only (--sys-prefix), never in ~/.jupyter or system-wide.
$(NBEXT): notebooks/tfma_widget_fixes.js $(STAMP)
	$(VENV)/bin/jupyter nbextension enable tensorflow_model_analysis/extension --sys-prefix
	$(VENV)/bin/jupyter nbextension install --overwrite notebooks/tfma_widget_fixes.js --sys-prefix
	$(VENV)/bin/jupyter nbextension enable tfma_widget_fixes --sys-prefix
	touch $(NBEXT)

$(NBCONF): $(STAMP)
	mkdir -p $(dir $(NBCONF))
	echo '{"NotebookApp": {"show_banner": false}}' > $(NBCONF)

run: $(STAMP)
	$(VENV)/bin/alexnet-tfx run $(ARGS)

test: $(STAMP) $(NBEXT) $(NBCONF)
	$(PY) -m pytest $(TEST_WORKERS) $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(PY) -m pytest $(TEST_WORKERS) -m "not e2e" $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# The classic UI (notebook 6.5), the one that loads TFMA's widgets.
notebook: $(STAMP) $(NBEXT) $(NBCONF)
	$(VENV)/bin/jupyter notebook notebooks/inspect_evaluation.ipynb \
	  $$([ "$$(id -u)" = 0 ] && echo --allow-root)

# Re-resolve the lock from setup.py under TFX's own test constraints (with pip: the lock is a
# plain requirements file that either installer reads).
lock:
	rm -rf .venv-lock
	$(PYTHON310) -m venv .venv-lock
	.venv-lock/bin/pip install --quiet --upgrade pip==24.2 uv
	.venv-lock/bin/pip install --quiet -c constraints.txt -e ".[dev]"
	.venv-lock/bin/pip check
	@# --all: pip, setuptools and wheel too, which TensorFlow and Jupyter need at run time.
	.venv-lock/bin/pip freeze --all --exclude-editable > requirements.lock
	rm -rf .venv-lock

clean:
	rm -rf $(VENV) tfx_pipeline_output .pytest_cache .ruff_cache
