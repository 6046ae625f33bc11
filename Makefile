# Entry points of the README's quick start. Each installs OpenBLAS first when it is missing.
.PHONY: deps build report test bench

deps:
	./scripts/install-deps.sh

build: deps
	swift build -c release

# The main job: Kimi K2 (1 T parameters) on H200 nodes, and a short measurement of this CPU.
report: build
	.build/release/moesim report

# Every test in debug mode, then the CPU check (estimator vs a measured run), whose timings need a
# release build: its own build folder, so it never invalidates the one `make report` uses.
test: deps
	swift test
	OPENBLAS_CORETYPE=$$(./scripts/openblas-coretype.sh) swift test -c release -Xswiftc -enable-testing \
		--scratch-path .build-check --filter CPUCheckTests

# Speed figures (release build, package-benchmark); see docs/performance.md.
bench: deps
	cd Benchmarks && swift package benchmark
