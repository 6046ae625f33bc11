#!/usr/bin/env sh
# Prints the OpenBLAS kernel family for this CPU (the same rule as BLASCore.recommendedFamily):
# Debian's OpenBLAS 0.3.21 does not recognise recent Xeons and falls back to SSE3 kernels, 5x
# slower. `moesim` re-executes itself with OPENBLAS_CORETYPE set; a test process cannot, so
# `make test` sets it for the tests from this script. A value already set wins.
if [ -n "${OPENBLAS_CORETYPE:-}" ]; then echo "$OPENBLAS_CORETYPE"; exit 0; fi
flags=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null)
has() { case " $flags " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
if has avx512f && has avx512dq && has avx512bw && has avx512vl && has avx512cd; then echo SkylakeX
elif has avx2 && has fma; then echo Haswell
fi
