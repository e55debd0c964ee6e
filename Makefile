# Thin wrapper around CMake.
#   make            build (Release) into build/
#   make test       build and run every test (CTest)
#   make main       build and run the main job: NAM versus joint on MNIST
#   make bench      build and print the throughput figures (bench/README.md)
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?= -DANAMO_WERROR=ON
MAIN_CONFIG ?= experiments/mnist-nam-vs-joint.ini
MAIN_OUT ?= results/mnist-nam-vs-joint

.PHONY: all configure test main bench clean
all: configure
	cmake --build $(BUILD) -j $(JOBS)

configure:
	@test -f $(BUILD)/CMakeCache.txt || cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS)

test: all
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

main: all
	rm -rf $(MAIN_OUT)
	$(BUILD)/anamo compare $(MAIN_CONFIG) -o $(MAIN_OUT)

bench: all
	$(BUILD)/bench_dense

clean:
	rm -rf $(BUILD)
