# The two commands a newcomer runs.  Both first install the Debian packages
# they need (as root), or print the apt-get line to run.
#
#   make demo   build, then run the tutorial's program (examples/seed.c),
#               then the chime command on examples/chime.conf for a few
#               seconds (serving its status page and metrics on DEMO_HTTP,
#               a few metric lines shown, and asking it its status
#               meanwhile), and show the history it recorded
#   make test   build with AddressSanitizer and UndefinedBehaviorSanitizer,
#               then run every test, on both backends, through ctest
#
# Each phase is told in a line, its output kept whole in a log
# ($(BUILD)/make-demo.log, $(TEST_BUILD)/make-test.log) and shown when it
# fails (scripts/step.sh); V=1 shows everything as it comes, too.

JOBS ?= $(shell nproc 2>/dev/null || echo 2)
BUILD ?= build
TEST_BUILD ?= build-test
DEMO_SECONDS ?= 8
DEMO_STATUS_AT ?= 5.5
DEMO_DB ?= $(BUILD)/demo-history.db
DEMO_HTTP ?= 127.0.0.1:9746
DEMO_METRICS_AT ?= 4
DEMO_LOG = $(BUILD)/make-demo.log
TEST_LOG = $(TEST_BUILD)/make-test.log
STEP = scripts/step.sh
MAKEFLAGS += --no-print-directory

.PHONY: demo test build deb clean

demo: build
	@echo
	@echo "== examples/seed, the tutorial's program (five seconds)"
	@$(BUILD)/examples/seed
	@echo
	@echo "== chime run examples/chime.conf --http $(DEMO_HTTP), stopped by SIGINT after $(DEMO_SECONDS) s (log on stderr);"
	@echo "   after $(DEMO_METRICS_AT) s, its status page's URL and a few lines of its /metrics; after $(DEMO_STATUS_AT) s, chime status"
	@echo "   asks it what it is doing, through its control socket"
	@rm -f $(DEMO_DB) $(DEMO_DB)-wal $(DEMO_DB)-shm
	@( sleep $(DEMO_METRICS_AT); echo; echo "== while it runs: its status page is http://$(DEMO_HTTP)/ and a few lines of its /metrics:"; \
	   curl -s http://$(DEMO_HTTP)/metrics | grep -E '^chime_build_info|outcome="(ok|failed|timeout)"\} [1-9]|reason="(overlap|backoff)"\} [1-9]|_in_progress\{job="slow"'; \
	   echo ) & \
	( sleep $(DEMO_STATUS_AT); echo; echo "== chime status --db $(DEMO_DB), while it runs"; \
	   $(BUILD)/cli/chime status --db $(DEMO_DB); echo ) & \
	timeout --preserve-status -s INT $(DEMO_SECONDS) $(BUILD)/cli/chime run examples/chime.conf --db $(DEMO_DB) --http $(DEMO_HTTP); \
	status=$$?; wait; exit $$status
	@echo
	@echo "== chime history --db $(DEMO_DB): what it recorded"
	@$(BUILD)/cli/chime history --db $(DEMO_DB) --limit 12

build:
	@mkdir -p $(BUILD) && : >$(DEMO_LOG)
	@CHIME_LOG=$(DEMO_LOG) scripts/deps.sh demo
	@$(STEP) $(DEMO_LOG) "configuring $(BUILD)/ (RelWithDebInfo, with the benchmarks)" \
	  cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCHIME_WERROR=ON -DCHIME_BUILD_BENCH=ON
	@$(STEP) $(DEMO_LOG) "building the library, the chime command, the examples and the benchmarks" \
	  cmake --build $(BUILD) -j $(JOBS)
	@echo "chime: built; the whole log: $(DEMO_LOG)"

test:
	@mkdir -p $(TEST_BUILD) && : >$(TEST_LOG)
	@CHIME_LOG=$(TEST_LOG) scripts/deps.sh test
	@$(STEP) $(TEST_LOG) "configuring $(TEST_BUILD)/ (Debug, AddressSanitizer and UndefinedBehaviorSanitizer)" \
	  cmake -S . -B $(TEST_BUILD) -DCMAKE_BUILD_TYPE=Debug -DCHIME_BUILD_TESTS=ON -DCHIME_TESTING=ON \
	  -DCHIME_ASAN=ON -DCHIME_UBSAN=ON -DCHIME_WERROR=ON
	@$(STEP) $(TEST_LOG) "building the library, the chime command and the tests" cmake --build $(TEST_BUILD) -j $(JOBS)
	@$(STEP) --ctest $(TEST_LOG) "running every test in a process of its own, on both backends" \
	  ctest --test-dir $(TEST_BUILD) --output-on-failure -j $(JOBS)
	@echo "chime: the whole log: $(TEST_LOG)"

# The Debian packages libchime0, libchime-dev and chime, in build-deb/
# (dpkg-buildpackage over debian/, with debhelper: see scripts/deb.sh).
deb:
	@scripts/deps.sh deb
	@scripts/deb.sh build-deb

clean:
	rm -rf $(BUILD) $(TEST_BUILD) build-deb
