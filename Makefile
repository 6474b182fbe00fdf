# Two commands for a fresh clone: `make demo` and `make test`. Both build .venv when it is absent.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.radflow-installed
CORES  ?= all
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: install demo test test-fast lint format clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

# The demo scenario (.test/demo/config.yaml; a study's own config is config/config.yaml): its demo_cohort rule writes
# the synthetic cohort to data/demo first when it is absent.
DEMO_CONFIG := .test/demo/config.yaml
demo: install
	$(BIN)/snakemake --profile profiles/local --cores $(CORES) --configfile $(DEMO_CONFIG)
	@echo
	@echo "radflow: done. Results are in $(abspath results)/:"
	@echo "  features.parquet / features.csv   one row per patient x series x ROI"
	@echo "  clinical.csv                      one row per patient (OS)"
	@echo "  modelling_table.csv, cohort.tsv   features joined with outcomes, and every patient accounted for"
	@echo "  index/problems.tsv                what was left out, and why"
	@echo "  qc/                               ROI outlines, feature distributions, counts"
	@echo "  robustness/, negative_controls/,  which features to trust: ICC under perturbation, negative controls,"
	@echo "  harmonised/                       the modelling table harmonised across sites (README)"
	@echo "  provenance/                       the settings behind the numbers; radflow verify results/ checks the folder"
	@echo "  $(BIN)/snakemake --report report.html --configfile $(DEMO_CONFIG)   puts them all into one HTML report"

# Two workers (pytest-xdist), a test file each at a time; the demo run and the demo cohort are made once for both
# (tests/conftest.py shared_folder).
test: install
	$(BIN)/python -m pytest -q -n 2 --dist loadfile --no-loadscope-reorder --durations=15 tests

# The unit tests alone (no snakemake run): a minute or two.
test-fast: install
	$(BIN)/python -m pytest -q -m "not workflow" tests

# What CI checks before the tests: ruff (lint and format), snakefmt, snakemake's own linter.
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/snakefmt --check workflow/Snakefile workflow/rules
	$(BIN)/snakemake --lint --configfile $(DEMO_CONFIG)

# Apply the formatters.
format: install
	$(BIN)/ruff format .
	$(BIN)/snakefmt workflow/Snakefile workflow/rules

clean:
	rm -rf results .snakemake
