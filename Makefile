# Thin wrapper around CMake.  make | make test | make bench | make clean
BUILD ?= build
JOBS ?= $(shell nproc)

.PHONY: all deps configure test bench clean
all: configure
	cmake --build $(BUILD) -j $(JOBS)

configure:
	@test -f $(BUILD)/CMakeCache.txt || cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS)

deps:
	./scripts/install-deps.sh

test: all
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

bench: all
	$(BUILD)/bench_dense

clean:
	rm -rf $(BUILD)
