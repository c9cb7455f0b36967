# The two commands of the README:
#   make run   installs what is missing, builds, ingests the sample corpus (first start only)
#              and serves the web page and API on http://127.0.0.1:8080
#   make test  installs what is missing (test tools too), builds and runs every test suite, then
#              the unit, integration and fuzz-corpus suites again built with AddressSanitizer and
#              UndefinedBehaviorSanitizer in SANITIZE_BUILD (docs/RELIABILITY.md); `make
#              test-sanitize` runs only that stage
# Variables: BUILD (build folder), DATA (data folder), PORT, JOBS (parallel build jobs),
#   SANITIZE=0 (make test without the sanitizer stage).
BUILD ?= build
DATA ?= data
PORT ?= 8080
HOST ?= 127.0.0.1
JOBS ?= 2
CMAKE_FLAGS ?= -DCMAKE_BUILD_TYPE=RelWithDebInfo
DEFAULT_MODEL ?= models/SmolLM2-135M-Instruct.Q4_1.gguf

SANITIZE ?= 1
SANITIZE_BUILD ?= build-asan
SANITIZE_FLAGS ?= -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRAG_CUDA=OFF -DRAG_SANITIZE=address,undefined

.PHONY: run test test-sanitize sanitize-stage build setup setup-test configure clean

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
	@if [ "$(SANITIZE)" != 0 ]; then $(MAKE) --no-print-directory sanitize-stage; fi

test-sanitize: setup-test
	@$(MAKE) --no-print-directory sanitize-stage

# The e2e suites (browser, OpenAI client) are left out: they test the page and the protocol, and
# the unit and integration suites already run the same server code under the sanitizers.
sanitize-stage:
	@echo "Sanitizer build (address, undefined) in $(SANITIZE_BUILD)"
	@cmake -S . -B $(SANITIZE_BUILD) $(SANITIZE_FLAGS) > $(SANITIZE_BUILD).configure.log 2>&1 || (cat $(SANITIZE_BUILD).configure.log; exit 1)
	@cmake --build $(SANITIZE_BUILD) -j$(JOBS)
	@cd $(SANITIZE_BUILD) && ctest --output-on-failure -j$(JOBS) --timeout 600 -L 'unit|integration|fuzz'

clean:
	rm -rf $(BUILD) $(BUILD).configure.log $(SANITIZE_BUILD) $(SANITIZE_BUILD).configure.log
