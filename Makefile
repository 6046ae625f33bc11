# Entry points of the README's quick start. Each installs OpenBLAS first when it is missing.
.PHONY: deps build report test bench

deps:
	./scripts/install-deps.sh

build: deps
	swift build -c release

# The main job. Until `moesim report` exists this measures the CPU.
report: build
	.build/release/moesim calibrate

test: deps
	swift test

# Speed figures (release build, package-benchmark); see docs/performance.md.
bench: deps
	cd Benchmarks && swift package benchmark
