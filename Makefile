# The two commands a newcomer runs.  Both first install the Debian packages
# they need (as root), or print the apt-get line to run.
#
#   make demo   build, then run the tutorial's program (examples/seed.c),
#               then the chime command on examples/chime.conf for a few
#               seconds, and show the history it recorded
#   make test   build with AddressSanitizer and UndefinedBehaviorSanitizer,
#               then run every test, on both backends, through ctest

JOBS ?= $(shell nproc 2>/dev/null || echo 2)
BUILD ?= build
TEST_BUILD ?= build-test
DEMO_SECONDS ?= 8
DEMO_DB ?= $(BUILD)/demo-history.db

.PHONY: demo test build deb clean

demo: build
	$(BUILD)/examples/seed
	@echo
	@echo "== chime run examples/chime.conf, stopped by SIGINT after $(DEMO_SECONDS) s (log on stderr)"
	@rm -f $(DEMO_DB) $(DEMO_DB)-wal $(DEMO_DB)-shm
	timeout --preserve-status -s INT $(DEMO_SECONDS) $(BUILD)/cli/chime run examples/chime.conf --db $(DEMO_DB)
	@echo
	@echo "== chime history: what it recorded"
	$(BUILD)/cli/chime history --db $(DEMO_DB) --limit 12

build:
	@scripts/deps.sh demo
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCHIME_WERROR=ON -DCHIME_BUILD_BENCH=ON
	cmake --build $(BUILD) -j $(JOBS)

test:
	@scripts/deps.sh test
	cmake -S . -B $(TEST_BUILD) -DCMAKE_BUILD_TYPE=Debug -DCHIME_BUILD_TESTS=ON -DCHIME_TESTING=ON \
	  -DCHIME_ASAN=ON -DCHIME_UBSAN=ON -DCHIME_WERROR=ON
	cmake --build $(TEST_BUILD) -j $(JOBS)
	ctest --test-dir $(TEST_BUILD) --output-on-failure -j $(JOBS)

# The Debian packages libchime0, libchime-dev and chime, in build-deb/
# (dpkg-buildpackage over debian/, with debhelper: see scripts/deb.sh).
deb:
	@scripts/deps.sh deb
	@scripts/deb.sh build-deb

clean:
	rm -rf $(BUILD) $(TEST_BUILD) build-deb
