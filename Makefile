# tapbridge - the commands a newcomer needs; CMake does the building.
#   make demo    install what is missing, build, run the main job
#   make check   install what is missing, build from scratch, run every test
#                (once with gcc -Werror, once with clang ASan+UBSan and fuzz smoke runs)
#   make deps    install the Debian packages alone
#   make fuzz    run each libFuzzer target for FUZZ_SECONDS (default 60)
#   make bench   build, then run every benchmark (one line each: ours, reference, ratio),
#                the tap flows through a 25 ms gateway last (tools/bench-taps.sh)

JOBS ?= $(shell nproc 2>/dev/null || echo 2)
FUZZ_SECONDS ?= 60

.PHONY: all deps build demo bench check check-plain check-asan fuzz clean

all: build

deps:
	@bash tools/deps.sh

build: deps
	cmake -S . -B build/release -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build build/release -j$(JOBS)

# The flows end to end on loopback (tools/demo.sh); DELAY_MS: the gateway's delay each way.
DELAY_MS ?= 0
demo: build
	DELAY_MS=$(DELAY_MS) bash tools/demo.sh build/release/tapbridge

bench: build
	./build/release/tapbridge bench
	./build/release/tapbridge bench taps

check: deps
	$(MAKE) --no-print-directory check-plain
	$(MAKE) --no-print-directory check-asan

check-plain:
	rm -rf build/check
	cmake -S . -B build/check -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTB_WERROR=ON >/dev/null
	cmake --build build/check -j$(JOBS)
	ctest --test-dir build/check --output-on-failure -j$(JOBS)

check-asan:
	rm -rf build/asan
	CC=clang cmake -S . -B build/asan -DCMAKE_BUILD_TYPE=Debug -DTB_WERROR=ON \
		-DTB_SANITIZE=ON -DTB_FUZZ=ON >/dev/null
	cmake --build build/asan -j$(JOBS)
	ctest --test-dir build/asan --output-on-failure -j$(JOBS)

fuzz: deps
	CC=clang cmake -S . -B build/fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo \
		-DTB_SANITIZE=ON -DTB_FUZZ=ON >/dev/null
	cmake --build build/fuzz -j$(JOBS)
	bash tools/fuzz.sh build/fuzz $(FUZZ_SECONDS)

clean:
	rm -rf build
