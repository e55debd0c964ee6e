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

# ctest runs each test from build/tests: a relative ANAMO_DATA (the README's ../shared/data)
# is made absolute here, so that it names the same folder there.
ifneq ($(ANAMO_DATA),)
export ANAMO_DATA := $(abspath $(ANAMO_DATA))
endif

.PHONY: all configure test main bench clean
all: configure
	cmake --build $(BUILD) -j $(JOBS)

configure:
	@test -f $(BUILD)/CMakeCache.txt || cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS)

test: all
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# Earlier results are moved aside (one generation kept), never deleted: a rerun starts fresh,
# and `anamo compare $(MAIN_CONFIG) -o $(MAIN_OUT)` itself continues a stopped one.
main: all
	@if [ -e $(MAIN_OUT) ]; then rm -rf $(MAIN_OUT).previous && mv $(MAIN_OUT) $(MAIN_OUT).previous && \
	  echo "make main: earlier results moved to $(MAIN_OUT).previous"; fi
	$(BUILD)/anamo compare $(MAIN_CONFIG) -o $(MAIN_OUT)

bench: all
	$(BUILD)/bench_dense

clean:
	rm -rf $(BUILD)
