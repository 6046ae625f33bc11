import Benchmark
import Estimator
import Hardware
import ModelSpec
import Planner
import Serving

// Speed of the serving model: a closed-loop estimate at a concurrency, aggregated and
// disaggregated, and the layout search with a concurrency (presets from configs/).

let benchmarks: @Sendable () -> Void = {
    guard let r1 = try? ModelCatalog.load("deepseek-r1"), let kimi = try? ModelCatalog.load("kimi-k2"),
          let h200 = try? HardwareCatalog.load("h200-sxm"), let eight = try? Cluster(gpu: h200, gpuCount: 8),
          let pools = try? Cluster(gpu: h200, gpuCount: 56), let large = try? Cluster(gpu: h200, gpuCount: 1024) else {
        print("presets not found: run from the repository (or set MOESIM_CONFIGS)")
        return
    }
    let configuration = Benchmark.Configuration(metrics: [.wallClock, .mallocCountTotal], timeUnits: .microseconds,
                                                warmupIterations: 1, maxDuration: .seconds(5), maxIterations: 50)
    let tp8 = EstimateRequest(model: r1, cluster: eight, layout: Layout(attention: .tensor, tp: 8, ep: 1, pp: 1, moeTP: 8),
                              weights: .fp8, inputTokens: 1024, outputTokens: 1024)
    let aggregated = ServingRequest(base: tp8, concurrency: 64, inputRange: LengthRange(lower: 0.8, upper: 1))
    Benchmark("Serving estimate, deepseek-r1 TP8 on 8 x H200, 1K/1K at concurrency 64", configuration: configuration) { benchmark in
        for _ in benchmark.scaledIterations { blackHole(try? ServingEstimator.estimate(aggregated)) }
    }
    let dp8 = Layout(attention: .data, tp: 1, ep: 8, pp: 1)
    var split = ServingRequest(base: EstimateRequest(model: r1, cluster: pools, weights: .fp8, inputTokens: 1024, outputTokens: 1024),
                               concurrency: 512, inputRange: LengthRange(lower: 0.8, upper: 1))
    split.disaggregation = Disaggregation(prefill: .init(gpus: 8, workers: 1, layout: dp8), decode: .init(gpus: 48, workers: 6, layout: dp8))
    Benchmark("Serving estimate, deepseek-r1 disaggregated 8P + 48D x H200 at concurrency 512", configuration: configuration) { benchmark in
        for _ in benchmark.scaledIterations { blackHole(try? ServingEstimator.estimate(split)) }
    }
    // Issue 11's targets: a million requests of a 1K/1K workload in under 10 s, memory bounded by
    // the requests in flight; capacity for Kimi K2 on up to 1,024 GPUs in under 5 s.
    let open = OpenLoopRequest(serving: aggregated, arrivals: .process(.poisson(rate: 1.2), count: 1_000_000), seriesPoints: 0)
    Benchmark("serve, 1,000,000 requests 1K/1K at 1.2/s, deepseek-r1 TP8 on 8 x H200",
              configuration: .init(metrics: [.wallClock, .peakMemoryResident], timeUnits: .seconds, warmupIterations: 0,
                                   maxDuration: .seconds(30), maxIterations: 1)) { benchmark in
        blackHole(try? ServingEstimator.serve(open))
    }
    var kimiServing = ServingRequest(base: EstimateRequest(model: kimi, cluster: eight, weights: .fp8, inputTokens: 4096, outputTokens: 1024),
                                     concurrency: 1024)
    kimiServing.inputRange = LengthRange(lower: 0.8, upper: 1)
    let capacity = CapacityRequest(serving: kimiServing, load: .users(1024), maxTTFT: 2, maxTPOT: 0.05, maxGPUs: 1024)
    Benchmark("capacity, kimi-k2 for 1,024 users within p90 TTFT 2 s / TPOT 50 ms on up to 1,024 x H200",
              configuration: .init(metrics: [.wallClock], timeUnits: .milliseconds, warmupIterations: 0,
                                   maxDuration: .seconds(30), maxIterations: 3)) { benchmark in
        blackHole(try? Capacity.fewestGPUs(capacity))
    }
    let search = ServingRequest(base: EstimateRequest(model: kimi, cluster: large, weights: .fp8, inputTokens: 4096, outputTokens: 1024),
                                concurrency: 16_384, inputRange: LengthRange(lower: 0.8, upper: 1))
    Benchmark("Serving layout search, kimi-k2 on 1024 x H200 at concurrency 16384",
              configuration: .init(metrics: [.wallClock], timeUnits: .milliseconds, warmupIterations: 0,
                                   maxDuration: .seconds(20), maxIterations: 3)) { benchmark in
        blackHole(try? ServingEstimator.best(search, maxTTFT: nil, maxTPOT: nil))
    }
}
