# gancourse: the two commands a newcomer needs are `make course` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: course test lab exercises grade bench clean help

help:
	@echo "make course     set up .venv, then run every lesson on the built-in data (results in runs/)"
	@echo "make test       set up .venv, then run the whole test suite"
	@echo "make lab        JupyterLab on the course"
	@echo "make exercises  regenerate exercises/ from solutions/"
	@echo "make grade LESSON=01_gan_game SUBMISSIONS=path/to/class [OUT=grades.csv]"
	@echo "make bench      DCGAN training throughput: library vs tutorial loop vs pure compute (benchmarks/)"

# The virtual environment is created when missing and re-installed when pyproject.toml changes. The
# wheelhouse is for tests/test_colab.py: Colab's package versions, installed there without the network.
$(STAMP): pyproject.toml tests/colab/preinstalled.txt tests/colab/fetched.txt tests/colab/build.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[course,dev]'
	$(PY) -m pip download --quiet --no-deps --dest $(VENV)/colab-wheels \
	    -r tests/colab/preinstalled.txt -r tests/colab/fetched.txt -r tests/colab/build.txt
	touch $(STAMP)

course: $(STAMP)
	$(PY) -m gancourse run

test: $(STAMP)
	$(PY) -m pytest

lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks/

exercises: $(STAMP)
	$(PY) -m gancourse exercises

OUT ?= grades.csv
grade: $(STAMP)
	$(PY) -m gancourse grade $(LESSON) $(SUBMISSIONS) --out $(OUT)

bench: $(STAMP)
	$(PY) benchmarks/throughput.py
	$(PY) benchmarks/objectives.py

clean:
	rm -rf runs .pytest_cache
