# The two commands a newcomer needs:  make demo   and   make test
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PLUGINS := $(wildcard plugins/*/pyproject.toml)
EDITABLES := -e '.[dev]' -e examples/crmcore-example $(foreach p,$(PLUGINS),-e $(dir $(p)))
# Plugins that declare a `test` extra (test data, type stubs) get it installed for the tests.
TEST_EXTRAS := $(foreach p,$(shell grep -l '^test *=' $(PLUGINS)),-e '$(dir $(p))[test]')

.PHONY: install demo test pytest lint typecheck docs bench bench-ingest bench-segmentation bench-memory bench-startup bench-duplicates clean

$(STAMP): pyproject.toml examples/crmcore-example/pyproject.toml $(PLUGINS)
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "crmcore needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(EDITABLES)
	$(if $(TEST_EXTRAS),$(BIN)/python -m pip install --quiet $(TEST_EXTRAS))
	@touch $(STAMP)

install: $(STAMP) ## Create .venv with crmcore, its plugins and the dev tools

# The example plugin (crmcore-example, installed for the tests) is left out of the demo's
# report; the db upgrade after it adds its tables so that the demo database takes writes.
demo: $(STAMP) ## Load the demo data set into crm-demo.db (SQLite) and print the summary
	CRM_DISABLE_PLUGINS=example $(BIN)/crm demo
	@$(BIN)/crm --db crm-demo.db db upgrade >/dev/null

pytest: $(STAMP) ## Run the test suite on SQLite and PostgreSQL
	$(BIN)/pytest -q

lint: $(STAMP) ## ruff (lint + format check) and the import graph (no cycle, layers one way)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: $(STAMP) ## mypy --strict on crmcore, the example plugin and every plugin
	$(BIN)/mypy crmcore examples/crmcore-example/crmcore_example $(wildcard plugins/*/crmcore_*)

test: lint typecheck pytest ## Everything CI checks

bench: $(STAMP) ## Core write throughput against raw executemany (SQLite and PostgreSQL)
	$(BIN)/python benchmarks/bench_core.py

bench-ingest: $(STAMP) ## 1M customers + 5M interactions, API and CSV, all plugins, vs raw executemany/COPY
	$(BIN)/python benchmarks/bench_ingest.py

bench-duplicates: $(STAMP) ## Probable duplicates: precision, recall, time on 100k and 1M generated customers
	$(BIN)/python benchmarks/bench_duplicates.py

bench-segmentation: $(STAMP) ## RFM + tiers + churn in SQL vs pandas, 1M customers / 10M purchases
	$(BIN)/python -m pip install --quiet -e 'plugins/segmentation[bench]'
	$(BIN)/python benchmarks/bench_segmentation.py

.PHONY: bench-sales
bench-sales: $(STAMP) ## Forecast, funnel, ageing in SQL vs pandas, 1M deals / 5M stage changes
	$(BIN)/python -m pip install --quiet -e 'plugins/sales[bench]'
	$(BIN)/python benchmarks/bench_sales.py

.PHONY: bench-activities
bench-activities: $(STAMP) ## plan over 1M customers x 50 rules, set-based in SQL: time, peak memory
	$(BIN)/python benchmarks/bench_activities.py

.PHONY: bench-campaigns
bench-campaigns: $(STAMP) ## Campaign results: SQL aggregates vs rows into Python, 200k recipients
	$(BIN)/python benchmarks/bench_campaigns.py
	$(BIN)/python benchmarks/bench_campaigns.py --backend sqlite

.PHONY: bench-predictive
bench-predictive: $(STAMP) ## BG/NBD + Gamma-Gamma vs lifetimes (CDNOW, 1M), basket rules vs mlxtend (1M)
	$(BIN)/python -m pip install --quiet -e 'plugins/segmentation[bench]'
	$(BIN)/python benchmarks/bench_predictive.py

.PHONY: bench-messaging
bench-messaging: $(STAMP) ## Messages/s to a local SMTP server and HTTP gateway vs bare smtplib/urllib loops
	$(BIN)/python benchmarks/bench_messaging.py

bench-memory: $(STAMP) ## Peak RSS + time of the segmentation CLI, 200k customers / 1M interactions (SQLite)
	$(BIN)/python benchmarks/bench_memory.py

bench-startup: $(STAMP) ## Start-up time of crm --version / --help against bare Python
	$(BIN)/python benchmarks/bench_startup.py

docs: $(STAMP) ## Regenerate docs/hooks.md from the hook specifications
	$(BIN)/python -m crmcore.hooks.docgen --write

clean:
	rm -rf $(VENV) crm-demo.db crm-demo.db-wal crm-demo.db-shm .pytest_cache .mypy_cache .ruff_cache

.PHONY: bench-acsi
bench-acsi: ## ACSI model by PLS vs plspm on the same data (own venv: plspm needs pandas < 3)
	$(PYTHON) -m venv $(VENV)/bench-acsi
	$(VENV)/bench-acsi/bin/python -m pip install --quiet -e . -e 'plugins/surveys[bench]'
	$(VENV)/bench-acsi/bin/python benchmarks/bench_acsi.py
