# Entry points of the README's quick start. Each installs OpenBLAS first when it is missing.
.PHONY: deps build report test check-cpu bench adversarial

deps:
	./scripts/install-deps.sh

build: deps
	swift build -c release

# The main job: Kimi K2 (1 T parameters) on H200 nodes, and a short measurement of this CPU.
report: build
	.build/release/moesim report

# OpenBLAS's kernel family for this CPU (scripts/openblas-coretype.sh), exported only when the
# script names one: an empty OPENBLAS_CORETYPE would make OpenBLAS look for a core called "".
CORETYPE = CT=$$(./scripts/openblas-coretype.sh); if [ -n "$$CT" ]; then export OPENBLAS_CORETYPE="$$CT"; fi;

# Every test, in debug mode. Deterministic: no test depends on how fast this machine is.
test: deps
	$(CORETYPE) swift test

# The CPU check: calibrate this host, run the ÷8 Kimi K2 for real (one 512-token prompt, 32 decode
# steps) and require the estimator's prefill and decode tokens/s within 25% of the measured ones.
# A timing, so it is not part of `make test`: it says how well the estimator knows this machine.
check-cpu: build
	.build/release/moesim bench kimi-k2 --batch 1 --prompt 512 --generate 32 --check 0.25

# Speed figures (release build, package-benchmark); see docs/performance.md.
bench: deps
	cd Benchmarks && swift package benchmark

# The larger adversarial run (hostile flags and files; see Tests/CLITests/AdversarialTests.swift).
adversarial: deps
	$(CORETYPE) MOESIM_ADVERSARIAL_CASES=2000 swift test --filter AdversarialTests
