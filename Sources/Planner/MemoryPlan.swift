import ConfigFile
import Foundation
import Hardware
import ModelSpec

/// Memory of one GPU, in bytes. `free` is what is left after everything else (negative when the
/// request does not fit).
public struct GPUMemory: Sendable, Equatable {
    public var weights: Double
    public var kvCache: Double
    public var activations: Double
    public var reserved: Double
    public var total: Double

    public var free: Double { total - weights - kvCache - activations - reserved }
}

/// What a plan is asked to hold.
public struct Workload: Sendable, Equatable {
    public var weights: WeightFormat
    public var kvCache: KVCacheFormat
    /// Tokens of context each sequence may reach.
    public var context: Int
    /// Sequences of that context to hold at once, across the cluster.
    public var concurrency: Int
    /// Tokens one GPU processes in one prefill step (chunked prefill), which sizes activations.
    public var prefillChunk: Int
    /// Share of each GPU's memory the engine keeps back from weights, KV cache and activations
    /// (see `MemoryModel.reservedFraction`, the default).
    public var memoryReserve: Double

    public init(weights: WeightFormat = .fp8, kvCache: KVCacheFormat = .bf16, context: Int = 131_072,
                concurrency: Int = 1, prefillChunk: Int = MemoryModel.defaultPrefillChunk,
                memoryReserve: Double = MemoryModel.reservedFraction) {
        self.weights = weights
        self.kvCache = kvCache
        self.context = context
        self.concurrency = concurrency
        self.prefillChunk = prefillChunk
        self.memoryReserve = memoryReserve
    }
}

extension Workload {
    /// The largest context moesim plans (2^24 tokens: 16 × DeepSeek-V4's million) and the most
    /// sequences (2^40): within them every size in bytes stays inside 64-bit integers.
    public static let maxContext = 16_777_216
    public static let maxConcurrency = 1 << 40

    public func check() throws {
        guard (0...MemoryModel.maxReserve).contains(memoryReserve) else {
            throw ConfigError(source: "workload", field: "memory reserve",
                              message: "must be 0 to \(MemoryModel.maxReserve) of each GPU's memory, got \(memoryReserve)")
        }
        guard (1...Self.maxContext).contains(context) else {
            throw ConfigError(source: "workload", field: "context", message: "must be 1 to \(Self.maxContext.formatted()) tokens, got \(context)")
        }
        guard (0...Self.maxConcurrency).contains(concurrency) else {
            throw ConfigError(source: "workload", field: "concurrency", message: "must be 0 to 2^40 sequences, got \(concurrency)")
        }
        guard (1...Self.maxContext).contains(prefillChunk) else {
            throw ConfigError(source: "workload", field: "prefill chunk", message: "must be 1 to \(Self.maxContext.formatted()) tokens, got \(prefillChunk)")
        }
    }
}

/// The memory model: how weights, KV cache and activations of a layout land on each GPU.
public enum MemoryModel {
    /// Share of each GPU's memory kept back for the CUDA context, cuBLAS and attention workspaces,
    /// NCCL / DeepEP communication buffers and allocator fragmentation: vLLM's default
    /// `gpu_memory_utilization` of 0.9 leaves 10%. An engine told otherwise (`--memory-reserve`:
    /// 1 − SGLang's `--mem-fraction-static`, 1 − vLLM's `--gpu-memory-utilization`) replaces it.
    public static let reservedFraction = 0.10
    /// The largest reserve a workload may ask for: past it little is left to plan.
    public static let maxReserve = 0.9
    /// Chunked prefill of 8,192 tokens per GPU (SGLang's and vLLM's default chunk size order).
    public static let defaultPrefillChunk = 8192
    /// Live activations per token in a layer, in hidden-size units: residual stream, normed input,
    /// q/k/v and attention output, and the FFN input (about 16 × hidden in bf16 with one layer's
    /// temporaries alive at a time).
    public static let activationWidthPerToken = 16

    /// Layers of each stage: contiguous, the first `L mod pp` stages one layer longer.
    static func stageLayers(_ model: ModelSpec, pp: Int) -> [[Layer]] {
        let count = model.layerCount
        var stages: [[Layer]] = []
        var start = 0
        for s in 0..<pp {
            let size = count / pp + (s < count % pp ? 1 : 0)
            stages.append(Array(model.layers[start..<(start + size)]))
            start += size
        }
        return stages
    }

    /// Weight bytes on one GPU of stage `stage`.
    public static func weightBytesPerGPU(_ model: ModelSpec, layout: Layout, stage: Int, format: WeightFormat,
                                         experts expertsOnGPU: Int? = nil) -> Double {
        let stages = stageLayers(model, pp: layout.pp)
        let mine = stages[stage]
        let layersHere = Double(mine.count), moeHere = Double(mine.filter(\.isMoE).count)
        let denseHere = layersHere - moeHere
        let denseTotal = Double(model.layerCount - model.moeLayerCount), moeTotal = Double(model.moeLayerCount)
        let tp = Double(layout.attentionGroup)
        var kvDivisor = tp
        if case let .grouped(a) = model.attention { kvDivisor = min(tp, Double(a.kvHeads)) }
        let perGPUExperts = Double(expertsOnGPU ?? (model.moe.map { $0.routedExperts / layout.ep } ?? 0))
        var total = 0.0
        for tensor in model.weightTensors where tensor.category != .mtp {
            let bytes = Double(model.storedFormat(tensor, format).bytes(rows: tensor.rows, cols: tensor.cols)) * Double(tensor.copies)
            let share: Double
            switch tensor.category {
            case .embeddings: share = stage == 0 ? 1 / tp : 0
            case .head: share = stage == layout.pp - 1 ? 1 / tp : 0
            case .norms:
                share = tensor.copies == 1 ? (stage == layout.pp - 1 ? 1 : 0) : layersHere / Double(model.layerCount)
            case .attention:
                share = layersHere / Double(model.layerCount) / attentionDivisor(tensor.split, tp: tp, kv: kvDivisor)
            case .denseFFN: share = denseTotal > 0 ? denseHere / denseTotal / tp : 0
            case .sharedExperts: share = moeTotal > 0 ? moeHere / moeTotal / tp : 0
            case .router: share = moeTotal > 0 ? moeHere / moeTotal : 0
            case .routedExperts:
                let experts = Double(model.moe?.routedExperts ?? 1)
                share = moeTotal > 0 ? moeHere / moeTotal * perGPUExperts / experts / Double(layout.moeTP) : 0
            case .mtp: share = 0
            }
            total += bytes * share
        }
        return total
    }

    /// Weight bytes of the multi-token-prediction modules on one GPU: the main model's per-GPU
    /// share of its weights (one stage's worth with pp = 1) applied to the MTP modules, which
    /// SGLang and TensorRT-LLM shard with the same tensor and expert parallelism.
    public static func mtpBytesPerGPU(_ model: ModelSpec, layout: Layout, format: WeightFormat, experts: Int?) -> Double {
        let mtp = Double(model.weightBytes(format, where: { $0.category == .mtp }))
        guard mtp > 0 else { return 0 }
        let whole = Layout(attention: layout.attention, tp: layout.tp, ep: layout.ep, pp: 1, moeTP: layout.moeTP)
        let share = weightBytesPerGPU(model, layout: whole, stage: 0, format: format, experts: experts)
            / max(Double(model.weightBytes(format)), 1)
        return mtp * share
    }

    /// How attention tensors split under tensor parallelism (each tensor's `split`): query,
    /// output and MLA up-projections by tp; key and value projections by min(tp, kv heads)
    /// (replicated past that); down-projections, the indexer and the norms are replicated (vLLM
    /// and SGLang load them whole).
    static func attentionDivisor(_ split: WeightTensor.Split, tp: Double, kv: Double) -> Double {
        switch split {
        case .heads: tp
        case .kvHeads: kv
        case .replicated: 1
        }
    }

    /// KV-cache bytes one sequence of `context` tokens puts on each GPU of stage `stage` of its
    /// attention group: GQA heads split over min(tp, kv heads); MLA's latent and the sparse
    /// indexer's keys are replicated on every tensor-parallel rank (they have no heads to split);
    /// a linear-attention layer's state splits over min(tp, its value heads).
    public static func kvBytesPerSequencePerGPU(_ model: ModelSpec, layout: Layout, stage: Int, context: Int,
                                                format: KVCacheFormat) -> Double {
        let mine = stageLayers(model, pp: layout.pp)[stage]
        let tp = Double(layout.attentionGroup)
        let stateDivisor = min(tp, Double(model.linearAttention?.valueHeads ?? 1))
        let bytes = Double(format.bytesPerValue)
        return mine.reduce(0.0) { total, layer in
            let values = Double(model.cachedValues(layer, context: context))
            // Only GQA's own KV splits over the group; MLA, the indexer and V4's single head do not.
            var attention = 0.0, divisor = 1.0
            if layer.mixer == .attention, case let .grouped(a) = model.attention(for: layer) {
                attention = Double(layer.span.cachedTokens(context: context) * a.kvHeads * (a.headDim + a.vDim))
                divisor = min(tp, Double(a.kvHeads))
            }
            return total + (values - attention + attention / divisor) * bytes + Double(model.stateBytesPerSequence(layer)) / stateDivisor
        }
    }

    /// Activation workspace of one GPU: a prefill chunk's live activations, its MoE dispatch
    /// buffers (k copies of each token's hidden state) and its widest FFN intermediate, in bf16.
    public static func activationBytesPerGPU(_ model: ModelSpec, layout: Layout, chunk: Int) -> Double {
        let h = Double(model.hiddenSize)
        let k = Double(model.moe?.expertsPerToken ?? 0)
        var widest = 0.0
        for layer in model.layers {
            if case let .dense(size) = layer.feedForward { widest = max(widest, 2 * Double(size) / Double(layout.attentionGroup)) }
        }
        if let moe = model.moe { widest = max(widest, 2 * k * Double(moe.expertIntermediateSize) / Double(layout.moeTP)) }
        let perToken = Double(activationWidthPerToken) * h + k * h + widest
        return 2 * Double(chunk) * perToken
    }
}
