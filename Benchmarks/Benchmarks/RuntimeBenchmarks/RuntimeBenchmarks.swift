import Benchmark
import ModelSpec
import CPURuntime
import TensorCore

// The CPU runtime: one decode step and one 512-token prefill of scaled-down models (÷8 widths,
// 4 layers, seeded random weights, f32). The malloc counter shows the allocations of a decode
// step (the target is none).

/// A decode step at a 512-token context and a 512-token prefill of `model`, named `label`.
func decodeAndPrefill(_ label: String, _ model: CPUModel, prompt: [Int]) {
    Benchmark("Decode step, \(label), batch 1, context 512",
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
    Benchmark("Prefill 512 tokens, \(label)",
              configuration: .init(metrics: [.wallClock, .mallocCountTotal], timeUnits: .milliseconds,
                                   warmupIterations: 1, maxDuration: .seconds(5), maxIterations: 20)) { benchmark in
        var caches = [model.newCache(reserve: 1024)]
        benchmark.startMeasurement()
        blackHole(try? model.forward([prompt], caches: &caches))
        benchmark.stopMeasurement()
    }
}

let benchmarks: @Sendable () -> Void = {
    BLASCore.reexecWithOptimizedKernelsIfNeeded()
    guard let spec = try? ModelCatalog.load("kimi-k2").scaled(by: 8, layers: 4),
          let model = try? CPUModel(spec: spec, source: .random(seed: 1)) else {
        print("presets not found: run from the repository (or set MOESIM_CONFIGS)")
        return
    }
    var rng = SplitMix64(seed: 2)
    func prompt(_ vocabulary: Int) -> [Int] { (0..<512).map { _ in Int(rng.next() % UInt64(vocabulary)) } }
    let kimiPrompt = prompt(spec.vocabSize)
    decodeAndPrefill("kimi-k2 /8 4 layers", model, prompt: kimiPrompt)
    // The AVX2 kernels on an AVX-512 machine (the path of AVX2-only CPUs).
    if PanelMatrix.Kernels.native == .avx512, let avx2 = try? CPUModel(spec: spec, source: .random(seed: 1), kernels: .avx2) {
        decodeAndPrefill("kimi-k2 /8 4 layers (AVX2 kernels)", avx2, prompt: kimiPrompt)
    }

    // Qwen3.5 scaled down (÷8 widths, 4 layers: three Gated DeltaNet, one gated attention; 8 KV
    // heads instead of 2 so that ÷8 keeps whole heads): the linear attention's chunked prefill and
    // its in-place decode (no allocation expected).
    guard let qwen = try? ModelCatalog.load("qwen3.5-397b-a17b", overrides: [("num_key_value_heads", "8")]).scaled(by: 8, layers: 4),
          let linear = try? CPUModel(spec: qwen, source: .random(seed: 1)) else { return }
    decodeAndPrefill("qwen3.5-397b /8 4 layers (3 GDN)", linear, prompt: prompt(qwen.vocabSize))

    // DeepSeek-V4-Pro scaled down (÷8 widths, 4 layers: HCA, HCA, CSA, HCA with 16 heads of
    // 512 and hyper-connections of 4 streams): compressed attention's decode (window of 128 keys
    // plus the entries, the compressors' state) and prefill (queries in blocks of 32 sharing their
    // gathered keys).
    guard let v4 = try? ModelCatalog.load("deepseek-v4-pro").scaled(by: 8, layers: 4),
          let compressed = try? CPUModel(spec: v4, source: .random(seed: 1)) else { return }
    decodeAndPrefill("deepseek-v4-pro /8 4 layers (CSA/HCA)", compressed, prompt: prompt(v4.vocabSize))

    // Kimi K3 scaled down (÷8 widths, 4 layers: three KDA with the full-rank gate, one gated MLA;
    // LatentMoE experts in 448 of 896 widths, SiTU; attention residuals mixing the embedding's
    // snapshot and the partial sum before every block).
    if let k3 = try? ModelCatalog.load("kimi-k3").scaled(by: 8, layers: 4), let kimi3 = try? CPUModel(spec: k3, source: .random(seed: 1)) {
        decodeAndPrefill("kimi-k3 /8 4 layers (KDA, LatentMoE, AttnRes)", kimi3, prompt: prompt(k3.vocabSize))
    }

    // DeepSeek-V3.2 (the lightning indexer's top-k as a mask on MLA) and gpt-oss-20b (sinks,
    // alternating sliding windows, clamped SwiGLU, expert biases), scaled down the same way.
    for id in ["deepseek-v3.2", "gpt-oss-20b"] {
        guard let spec = try? ModelCatalog.load(id).scaled(by: 8, layers: 4),
              let model = try? CPUModel(spec: spec, source: .random(seed: 1)) else { return }
        decodeAndPrefill("\(id) /8 4 layers", model, prompt: prompt(spec.vocabSize))
    }
}
