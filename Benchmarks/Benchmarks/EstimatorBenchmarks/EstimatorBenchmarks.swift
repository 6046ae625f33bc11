import Benchmark
import Estimator
import Hardware
import ModelSpec
import Planner

// Speed of the estimator: one estimate must take under 1 ms and a full layout search of Kimi K2
// on 1,024 GPUs under 1 s (presets are read from the repository's configs/ folder).

let benchmarks: @Sendable () -> Void = {
    guard let kimi = try? ModelCatalog.load("kimi-k2"), let h200 = try? HardwareCatalog.load("h200-sxm"),
          let small = try? Cluster(gpu: h200, gpuCount: 16), let large = try? Cluster(gpu: h200, gpuCount: 1024) else {
        print("presets not found: run from the repository (or set MOESIM_CONFIGS)")
        return
    }
    let configuration = Benchmark.Configuration(metrics: [.wallClock, .mallocCountTotal], timeUnits: .microseconds,
                                                warmupIterations: 2, maxDuration: .seconds(3), maxIterations: 200)
    let one = EstimateRequest(model: kimi, cluster: small, weights: .fp8, inputTokens: 4096, outputTokens: 1024,
                              decodeBatchPerGPU: 64)
    let layout = Layout(attention: .data, tp: 1, ep: 16, pp: 1)
    Benchmark("One estimate, kimi-k2 on 16 x H200", configuration: configuration) { benchmark in
        for _ in benchmark.scaledIterations { blackHole(try? Estimator.estimate(one, layout: layout)) }
    }
    let search = EstimateRequest(model: kimi, cluster: large, weights: .fp8, inputTokens: 4096, outputTokens: 1024)
    Benchmark("Layout search, kimi-k2 on 1024 x H200 (all layouts x batches)",
              configuration: .init(metrics: [.wallClock], timeUnits: .milliseconds, warmupIterations: 1,
                                   maxDuration: .seconds(10), maxIterations: 5)) { benchmark in
        blackHole(LayoutSearch.search(search))
    }
}
