import Benchmark
import ModelSpec
import CPURuntime
import TensorCore

// The CPU runtime: one decode step and one 512-token prefill of Kimi K2 scaled down (÷8 widths,
// 4 layers, seeded random weights, f32). The malloc counter shows the allocations of a decode
// step (the target is none).

let benchmarks: @Sendable () -> Void = {
    BLASCore.reexecWithOptimizedKernelsIfNeeded()
    guard let spec = try? ModelCatalog.load("kimi-k2").scaled(by: 8, layers: 4),
          let model = try? CPUModel(spec: spec, source: .random(seed: 1)) else {
        print("presets not found: run from the repository (or set MOESIM_CONFIGS)")
        return
    }
    var rng = SplitMix64(seed: 2)
    let prompt = (0..<512).map { _ in Int(rng.next() % UInt64(spec.vocabSize)) }
    Benchmark("Decode step, kimi-k2 /8 4 layers, batch 1, context 512",
              configuration: .init(metrics: [.wallClock, .mallocCountTotal], timeUnits: .milliseconds,
                                   warmupIterations: 2, maxDuration: .seconds(5), maxIterations: 100)) { benchmark in
        var caches = [model.newCache(reserve: 1024)]
        guard var logits = try? model.forward([prompt], caches: &caches) else { return }
        var tokens = [model.argmax(logits, row: 0)]
        // Two unmeasured steps size the workspace for a batch of one.
        for _ in 0..<2 { try? model.decode(tokens, caches: &caches, into: &logits) }
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            try? model.decode(tokens, caches: &caches, into: &logits)
            tokens[0] = model.argmax(logits, row: 0)
        }
        benchmark.stopMeasurement()
    }
    Benchmark("Prefill 512 tokens, kimi-k2 /8 4 layers",
              configuration: .init(metrics: [.wallClock, .mallocCountTotal], timeUnits: .milliseconds,
                                   warmupIterations: 1, maxDuration: .seconds(5), maxIterations: 20)) { benchmark in
        var caches = [model.newCache(reserve: 1024)]
        benchmark.startMeasurement()
        blackHole(try? model.forward([prompt], caches: &caches))
        benchmark.stopMeasurement()
    }
}
