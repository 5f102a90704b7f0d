# Every target sets up what it needs: a fresh clone needs nothing but python3.11 and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DEMO_START ?= 2025-07-01
DEMO_END ?= 2025-07-31
DEMO_QUARTER ?= 2025Q3
DEMO_YEAR ?= 2025
DEMO_MONTH ?= 2025-07

.PHONY: install demo test lint bench clean-data

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "kesu needs Python 3.11, found " + sys.version' 
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

# The main job on sample data: a month of a small bank's drops, ingested into ./data/warehouse,
# then the quarterly and annual reports over what was ingested.
demo: $(STAMP)
	$(BIN)/kesu sample --start $(DEMO_START) --end $(DEMO_END) --profile small --seed 7
	$(BIN)/kesu backfill --start $(DEMO_START) --end $(DEMO_END)
	$(BIN)/kesu report quarterly $(DEMO_QUARTER)
	$(BIN)/kesu report annual $(DEMO_YEAR)
	$(BIN)/kesu report monthly $(DEMO_MONTH)
	$(BIN)/kesu watch
	@echo
	@echo "landing zone : $(CURDIR)/data/landing"
	@echo "warehouse    : $(CURDIR)/data/warehouse  (stg_hotline, stg_complaints, stg_regulator_transfers, quarantine/<feed>)"
	@echo "raw zone     : $(CURDIR)/data/warehouse/_raw  (owner-only)"
	@echo "run ledger   : $(CURDIR)/data/warehouse/_ledger/runs"
	@echo "reports      : $(CURDIR)/data/reports/quarterly/$(DEMO_QUARTER)  $(CURDIR)/data/reports/annual/$(DEMO_YEAR)"
	@echo "monthly, watch: $(CURDIR)/data/reports/monthly/$(DEMO_MONTH)  $(CURDIR)/data/reports/watch/$(DEMO_END)"

test: $(STAMP)
	bash scripts/system-deps.sh
	$(BIN)/python -m pytest

# mypy cannot follow the package-dir mapping of the editable install: it checks a tree of links
# laid out as the installed package (kesu/flows -> flows, ...); the benchmarks are checked against it.
KESU_DIRS := flows transforms expectations warehouse reports samplegen reference
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	rm -rf build/mypy && mkdir -p build/mypy/kesu && cp kesu/__init__.py build/mypy/kesu/
	for d in $(KESU_DIRS); do ln -s $(CURDIR)/$$d build/mypy/kesu/$$d; done
	cd build/mypy && $(CURDIR)/$(BIN)/mypy --config-file $(CURDIR)/pyproject.toml -p kesu
	cd build/mypy && $(CURDIR)/$(BIN)/mypy --config-file $(CURDIR)/pyproject.toml $(CURDIR)/bench/*.py

bench: $(STAMP)
	$(BIN)/python bench/ingest_bank_day.py

clean-data:
	rm -rf data
