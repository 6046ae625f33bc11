import ModelSpec
import TensorCore

/// What `moesim bench` measures: a batched prefill of random prompts, then decode steps.
public struct BenchResult: Sendable {
    public var batch: Int
    public var promptTokens: Int
    public var generatedTokens: Int
    public var prefillSeconds: Double
    public var decodeSeconds: Double
    /// FLOPs of the operator list of ModelSpec for the steps that ran.
    public var prefillFLOPs: Double
    /// The prefill's FLOPs and measured seconds per part of the model (`Operator.Block`).
    public var prefillBlockFLOPs: [Operator.Block: Double]
    public var prefillBlockSeconds: [Operator.Block: Double]
    public var decodeFLOPs: Double
    /// Bytes the decode steps read: every weight a step touches (only the experts its tokens
    /// chose) plus the KV cache, as stored (Float32 cache).
    public var decodeBytes: Double
    /// Tokens routed to each expert over the whole run, summed over MoE layers.
    public var expertLoad: [Int]
    public var weightBytes: Int
    public var kvCacheBytes: Int

    public var prefillTokensPerSecond: Double { Double(batch * promptTokens) / prefillSeconds }
    public var decodeTokensPerSecond: Double { Double(batch * generatedTokens) / decodeSeconds }
    public var gflops: Double { (prefillFLOPs + decodeFLOPs) / (prefillSeconds + decodeSeconds) / 1e9 }
    public var prefillGFLOPs: Double { prefillFLOPs / prefillSeconds / 1e9 }
    /// The MoE layers' own rate in prefill (router, top-k, routed and shared experts).
    public var prefillMoEGFLOPs: Double? {
        guard let seconds = prefillBlockSeconds[.moe], seconds > 0 else { return nil }
        return (prefillBlockFLOPs[.moe] ?? 0) / seconds / 1e9
    }
    public var decodeMemoryGBPerSecond: Double { decodeBytes / decodeSeconds / 1e9 }
}

public enum RuntimeBench {
    /// Prefills `batch` prompts of `promptTokens` random tokens, then decodes `generate` tokens
    /// each greedily. `progress` receives a line after the prefill and every few decode steps.
    public static func run(_ model: CPUModel, batch: Int, promptTokens: Int, generate: Int, seed: UInt64,
                           progress: (String) -> Void = { _ in }) throws -> BenchResult {
        guard (1...65_536).contains(batch), (1...1_048_576).contains(promptTokens), (1...1_048_576).contains(generate) else {
            throw RuntimeError.unsupported("batch must be 1 to 65,536, prompt and generate 1 to 1,048,576 tokens each")
        }
        let spec = model.spec
        // The f32 KV cache of every sequence at its full length, and the prefill's activations
        // (about 24 hidden-size rows of f32 per prompt token).
        let context = Double(promptTokens + generate)
        try CPUModel.checkMemory(bytes: Double(batch) * context * Double(spec.kvCacheBytesPerToken(.f32))
                                    + Double(batch) * Double(promptTokens) * Double(spec.hiddenSize) * 4 * 24,
                                 what: "the KV cache and activations of \(batch) × \(promptTokens + generate) tokens")
        var rng = SplitMix64(seed: seed)
        let prompts = (0..<batch).map { _ in (0..<promptTokens).map { _ in Int(rng.next() % UInt64(spec.vocabSize)) } }
        model.recordRouting = false
        // Warm-up: one untimed prefill and decode step of the same shape, so that the timed run
        // measures steady state (buffers already paged in, OpenBLAS threads started) as a server sees it.
        var warm = prompts.map { _ in model.newCache(reserve: promptTokens + 1) }
        let warmLogits = try model.forward(prompts, caches: &warm)
        var logits = try Tensor(zeros: [0, 0])
        try model.decode(model.argmaxRows(warmLogits), caches: &warm, into: &logits)
        model.resetExpertLoad()
        var caches = prompts.map { _ in model.newCache(reserve: promptTokens + generate) }

        let before = model.blockSeconds
        let prefillSeconds = try Calibration.time { logits = try model.forward(prompts, caches: &caches) }
        let prefillBlockSeconds = model.blockSeconds.merging(before) { after, before in after - before }
        let prefillOps = spec.operators(step: .prefill(sequences: batch, promptTokens: promptTokens),
                                        options: CostOptions(weights: model.format.weightFormat, kvCache: .f32))
        progress("prefill: \(batch) × \(promptTokens) tokens in \(String(format: "%.2f", prefillSeconds)) s")

        // Decode: greedy, one token per sequence per step.
        var decodeSeconds = 0.0, decodeFLOPs = 0.0, decodeBytes = 0.0
        let dense = Double(model.denseWeightBytes)
        let expertBytes = Double(model.bytesPerExpert)
        var next = model.argmaxRows(logits)
        for step in 0..<generate {
            let context = caches[0].length
            // What a step reads of each cache: the spec's figure (sliding windows, compressed
            // entries, linear state), not every key the runtime happens to keep.
            let kvBefore = batch * spec.kvCacheBytes(context: context, format: .f32)
            let seconds = try Calibration.time { try model.decode(next, caches: &caches, into: &logits) }
            decodeSeconds += seconds
            let touched = model.lastTouchedExperts
            decodeBytes += dense + Double(touched) * expertBytes + Double(kvBefore) + Double(batch * spec.hiddenSize * 4)
            decodeFLOPs += StepCost(spec.operators(step: .decode(sequences: batch, context: context),
                                                   options: CostOptions(weights: .f32, kvCache: .f32))).flops
            for s in 0..<batch { next[s] = model.argmax(logits, row: s) }
            if (step + 1) % max(1, generate / 4) == 0 && step + 1 < generate {
                progress("decode: \(step + 1) of \(generate) steps, \(String(format: "%.1f", Double(batch * (step + 1)) / decodeSeconds)) tokens/s")
            }
        }
        return BenchResult(batch: batch, promptTokens: promptTokens, generatedTokens: generate,
                           prefillSeconds: prefillSeconds, decodeSeconds: decodeSeconds,
                           prefillFLOPs: StepCost(prefillOps).flops,
                           prefillBlockFLOPs: Dictionary(grouping: prefillOps, by: \.block).mapValues { StepCost($0).flops },
                           prefillBlockSeconds: prefillBlockSeconds, decodeFLOPs: decodeFLOPs, decodeBytes: decodeBytes,
                           expertLoad: model.expertLoad, weightBytes: model.weightBytes,
                           kvCacheBytes: caches.reduce(0) { $0 + $1.byteCount })
    }
}

extension CPUModel {
    /// Bytes of the weights every decode step reads in full: all but the routed experts (router
    /// included) and the embedding table, of which a step reads one row per token.
    var denseWeightBytes: Int {
        weights.byteCount - routedExpertBytes - weights.embedding.count * 4
    }

    var routedExpertBytes: Int {
        weights.layers.reduce(0) { sum, layer in
            if case let .moe(m) = layer.feedForward {
                return sum + m.experts.reduce(0) { $0 + $1.gateUp.byteCount + $1.down.byteCount }
            }
            return sum
        }
    }

    /// Bytes of one routed expert of one layer.
    var bytesPerExpert: Int {
        guard let moe = spec.moe, spec.moeLayerCount > 0 else { return 0 }
        return routedExpertBytes / (moe.routedExperts * spec.moeLayerCount)
    }
}
