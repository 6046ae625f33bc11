// Estimator: step times, tokens/s, TTFT/TPOT and cost (issue "Throughput estimator").
// Not built yet; the target exists so that the package layout matches DESIGN.md.
