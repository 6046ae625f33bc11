# Entry points of the README's quick start. Each installs OpenBLAS first when it is missing.
.PHONY: deps build report test bench

deps:
	./scripts/install-deps.sh

build: deps
	swift build -c release

# The main job. Until `moesim report` exists: measure the CPU and inspect the default 1 T model.
report: build
	.build/release/moesim calibrate
	.build/release/moesim inspect kimi-k2

test: deps
	swift test

# Speed figures (release build, package-benchmark); see docs/performance.md.
bench: deps
	cd Benchmarks && swift package benchmark
