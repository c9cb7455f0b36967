# The two commands of the README:
#   make run   installs what is missing, builds, ingests the sample corpus (first start only)
#              and serves the web page and API on http://127.0.0.1:8080
#   make test  installs what is missing (test tools too), builds and runs every test suite
# Variables: BUILD (build folder), DATA (data folder), PORT, JOBS (parallel build jobs).
BUILD ?= build
DATA ?= data
PORT ?= 8080
HOST ?= 127.0.0.1
JOBS ?= 2
CMAKE_FLAGS ?= -DCMAKE_BUILD_TYPE=RelWithDebInfo
DEFAULT_MODEL ?= models/SmolLM2-135M-Instruct.Q4_1.gguf

.PHONY: run test build setup setup-test configure clean

setup:
	@bash scripts/setup.sh

setup-test:
	@bash scripts/setup.sh --test

configure:
	@cmake -S . -B $(BUILD) $(CMAKE_FLAGS) > $(BUILD).configure.log 2>&1 || (cat $(BUILD).configure.log; exit 1)

build: setup configure
	@cmake --build $(BUILD) -j$(JOBS)

run: build
	@if [ ! -f $(DATA)/.sample-ingested ]; then \
	  ./$(BUILD)/rag ingest corpora/sample --data $(DATA) && touch $(DATA)/.sample-ingested; \
	fi
	@echo "Serving on http://$(HOST):$(PORT) (Ctrl-C to stop)"
	@./$(BUILD)/rag serve --data $(DATA) --host $(HOST) --port $(PORT) \
	  $$(if [ -f $(DEFAULT_MODEL) ]; then echo --model $(DEFAULT_MODEL); fi)

test: setup-test configure
	@cmake --build $(BUILD) -j$(JOBS)
	@cd $(BUILD) && ctest --output-on-failure -j$(JOBS) --timeout 300

clean:
	rm -rf $(BUILD) $(BUILD).configure.log
