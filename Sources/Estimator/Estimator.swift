import Foundation
import Hardware
import ModelSpec
import Planner

/// One configuration to price.
public struct EstimateRequest: Sendable {
    public enum Feature: String, Sendable, CaseIterable {
        /// Split each step into two half-batches whose communication and computation overlap.
        case twoBatchOverlap = "two-batch-overlap"
        /// Expert-parallel load balancing with redundant copies of hot experts (DeepSeek's EPLB).
        case eplb
        /// Steps that carry prompt tokens run without CUDA graphs, so the host's launch of every
        /// kernel bounds them (`Efficiency.eagerLaunch`): SGLang's prefill without
        /// `--enable-piecewise-cuda-graph` (opt-in through its 2026 releases: issue #18130 still
        /// lists the work to make it the default) and its disaggregated prefill servers, which
        /// run without CUDA graphs (PR #13377). vLLM V1 captures prefill steps piecewise
        /// (`FULL_AND_PIECEWISE`) and is not given it; TensorRT-LLM's context steps run eagerly
        /// unless its piecewise CUDA graphs are turned on (`ServingFramework.tensorrtLLM`).
        case eagerPrefill = "eager-prefill"
    }

    /// The features, comma-separated, for help texts and errors.
    public static let featureList = Feature.allCases.map(\.rawValue).joined(separator: ", ")

    public var model: ModelSpec
    public var cluster: Cluster
    public var layout: Layout?
    public var weights: WeightFormat
    public var kvCache: KVCacheFormat
    public var inputTokens: Int
    public var outputTokens: Int
    /// Decode sequences per GPU; nil: the largest batch that fits (at most `maxBatchPerGPU`).
    public var decodeBatchPerGPU: Int?
    /// New prompt tokens one GPU prefills per step; nil: `MemoryModel.defaultPrefillChunk`.
    public var prefillTokensPerGPU: Int?
    public var features: Set<Feature>
    /// Share of each prompt found in the prefix cache: its prefill compute is skipped.
    public var prefixCacheHitRate: Double
    public var expertSkew: Double
    /// USD per GPU-hour; nil: the hardware file's default.
    public var gpuHourPrice: Double?
    /// PUE and grid intensity for the energy and carbon figures.
    public var energy = EnergySettings()
    /// Price contexts past the model's `max_position_embeddings` (refused otherwise).
    public var allowLongerContext = false
    /// Share of each GPU's memory the engine keeps back (`MemoryModel.reservedFraction`, vLLM's
    /// 10%, unless the engine is told otherwise).
    public var memoryReserve = MemoryModel.reservedFraction

    public init(model: ModelSpec, cluster: Cluster, layout: Layout? = nil, weights: WeightFormat = .fp8,
                kvCache: KVCacheFormat = .bf16, inputTokens: Int = 4096, outputTokens: Int = 1024,
                decodeBatchPerGPU: Int? = nil, prefillTokensPerGPU: Int? = nil, features: Set<Feature> = [],
                prefixCacheHitRate: Double = 0, expertSkew: Double = 0, gpuHourPrice: Double? = nil) {
        self.model = model
        self.cluster = cluster
        self.layout = layout
        self.weights = weights
        self.kvCache = kvCache
        self.inputTokens = inputTokens
        self.outputTokens = outputTokens
        self.decodeBatchPerGPU = decodeBatchPerGPU
        self.prefillTokensPerGPU = prefillTokensPerGPU
        self.features = features
        self.prefixCacheHitRate = prefixCacheHitRate
        self.expertSkew = expertSkew
        self.gpuHourPrice = gpuHourPrice
    }

    /// EPLB's redundant slots: about one per eight experts (DeepSeek-V3 deploys 32 for 256),
    /// rounded up so that the slots divide evenly over the expert-parallel GPUs.
    public func redundantExperts(ep: Int) -> Int {
        guard features.contains(.eplb), let moe = model.moe else { return 0 }
        var extra = (moe.routedExperts + 7) / 8
        while (moe.routedExperts + extra) % max(ep, 1) != 0 { extra += 1 }
        return extra
    }
}

public struct Estimate: Sendable {
    public var plan: LayoutPlan
    public var decodeBatchPerGPU: Int
    public var prefillTokensPerGPU: Int
    public var prefillStep: StepTime
    public var decodeStep: StepTime
    public var inputTokensPerSecondPerGPU: Double
    public var outputTokensPerSecondPerGPU: Double
    public var outputTokensPerSecondPerUser: Double
    public var timeToFirstToken: Double
    public var timePerOutputToken: Double
    public var endToEndLatency: Double
    /// MLPerf-style offline throughput: each sequence prefilled then decoded at this batch.
    public var offlineOutputTokensPerSecondPerGPU: Double
    public var gpuHourPrice: Double?
    public var costPerMillionInputTokens: Double?
    public var costPerMillionOutputTokens: Double?
    /// Power and energy per token; nil when the hardware file gives no power figures.
    public var energy: EnergyEstimate?

    /// GPU-seconds one request of `prompt` and `output` tokens takes at this steady state's
    /// per-GPU rates (prefill, then decode); nil when a rate it needs is zero.
    public func gpuSeconds(prompt: Int, output: Int) -> Double? {
        guard inputTokensPerSecondPerGPU > 0, output == 0 || outputTokensPerSecondPerGPU > 0 else { return nil }
        return Double(prompt) / inputTokensPerSecondPerGPU + (output > 0 ? Double(output) / outputTokensPerSecondPerGPU : 0)
    }
}

public enum EstimateError: Error, CustomStringConvertible {
    case noLayout(String)
    case invalid(String)

    public var description: String {
        switch self {
        case let .noLayout(text), let .invalid(text): text
        }
    }
}

public enum Estimator {
    /// Engines cap the sequences one GPU (one data-parallel rank) decodes at once: vLLM's
    /// `max_num_seqs` and SGLang's CUDA-graph batch limit are 256 by default. A request without a
    /// batch uses the largest that fits, at most this.
    public static let maxBatchPerGPU = 256

    /// Prices the request with its layout, or with the layout of highest decode throughput.
    public static func estimate(_ request: EstimateRequest) throws -> Estimate {
        try check(request)
        if let layout = request.layout { return try estimate(request, layout: layout) }
        var best: Estimate? = nil
        for layout in LayoutSearch.candidates(request) {
            guard let e = try? estimate(request, layout: layout), e.plan.fits else { continue }
            if best == nil || e.outputTokensPerSecondPerGPU > (best?.outputTokensPerSecondPerGPU ?? 0) { best = e }
        }
        guard let best else {
            throw EstimateError.noLayout("no layout of \(request.model.id) fits \(request.cluster.gpuCount) × "
                + "\(request.cluster.gpu.id) at \(request.inputTokens + request.outputTokens) tokens of context "
                + "(see moesim plan)")
        }
        return best
    }

    /// Ranges every request must be in: contexts within `Workload.maxContext`, finite positive
    /// rates and prices.
    public static func check(_ request: EstimateRequest) throws {
        let limit = Workload.maxContext
        guard request.inputTokens >= 1, request.outputTokens >= 0, request.inputTokens <= limit, request.outputTokens <= limit,
              request.inputTokens + request.outputTokens <= limit else {
            throw EstimateError.invalid("input must be 1 to \(limit.formatted()) tokens and output 0 or more, "
                + "together at most \(limit.formatted()); got \(request.inputTokens) and \(request.outputTokens)")
        }
        if let p = request.prefillTokensPerGPU, !(1...limit).contains(p) {
            throw EstimateError.invalid("prefill tokens per GPU must be 1 to \(limit.formatted()), got \(p)")
        }
        if let b = request.decodeBatchPerGPU, !(1...1_000_000_000).contains(b) {
            throw EstimateError.invalid("the decode batch per GPU must be 1 to 10^9, got \(b)")
        }
        guard (0...MemoryModel.maxReserve).contains(request.memoryReserve) else {
            throw EstimateError.invalid("the memory reserve must be 0 to \(MemoryModel.maxReserve) of each GPU's memory, got \(request.memoryReserve)")
        }
        guard request.prefixCacheHitRate >= 0, request.prefixCacheHitRate < 1 else {
            throw EstimateError.invalid("the prefix-cache hit rate must be in [0, 1), got \(request.prefixCacheHitRate)")
        }
        guard request.expertSkew >= 0, request.expertSkew <= 100 else {
            throw EstimateError.invalid("the expert skew must be in [0, 100], got \(request.expertSkew)")
        }
        if let p = request.gpuHourPrice, !(p > 0 && p <= 1e6) {
            throw EstimateError.invalid("the GPU-hour price must be in (0, 10^6] USD, got \(p)")
        }
        try request.energy.check()
        let context = request.inputTokens + request.outputTokens
        if !request.allowLongerContext, context > request.model.maxPositionEmbeddings {
            throw EstimateError.invalid("\(context.formatted()) tokens of context exceed \(request.model.id)'s "
                + "\(request.model.maxPositionEmbeddings.formatted()) (max_position_embeddings); pass --allow-longer-context to price it anyway")
        }
    }

    /// Prices the request on one layout.
    public static func estimate(_ request: EstimateRequest, layout: Layout) throws -> Estimate {
        try check(request)
        let prepared = try prepare(request, layout: layout)
        guard prepared.largestBatch >= 1 else {
            throw EstimateError.noLayout("\(layout) holds \(prepared.plan.maxConcurrentSequences) sequences of "
                + "\(request.inputTokens + request.outputTokens) tokens on \(request.cluster.gpuCount) GPUs: fewer than one per GPU")
        }
        if let batch = request.decodeBatchPerGPU, batch > prepared.largestFit {
            throw EstimateError.invalid("a decode batch of \(batch) per GPU does not fit \(layout) at "
                + "\(request.inputTokens + request.outputTokens) tokens of context: the largest that fits is \(prepared.largestFit) "
                + "(KV cache, activations, weights and the reserve)")
        }
        return finish(prepared, batch: Double(request.decodeBatchPerGPU ?? prepared.largestBatch))
    }

    /// Prices `layout` at a decode batch of `sequencesPerGPU` sequences per GPU that may be a
    /// fraction (sequences of the deployment over its GPUs): a load lighter than the GPUs, or a
    /// tensor-parallel group of tp GPUs holding fewer than tp sequences (long contexts, where
    /// MLA's latent is whole on every rank). The serving layer ranks layouts with it at the load
    /// they would carry; at least one sequence in all, and no more than fit. The estimate's
    /// `decodeBatchPerGPU` is the whole part.
    public static func estimate(_ request: EstimateRequest, layout: Layout, sequencesPerGPU: Double) throws -> Estimate {
        try check(request)
        let prepared = try prepare(request, layout: layout)
        let gpus = Double(max(request.cluster.gpuCount, 1))
        let sequences = sequencesPerGPU * gpus
        guard prepared.plan.fits, sequences.isFinite, sequences >= 1 - 1e-9,
              sequences <= Double(prepared.plan.maxConcurrentSequences) + 1e-9 else {
            throw EstimateError.noLayout("\(layout) holds \(prepared.plan.maxConcurrentSequences) sequences of "
                + "\(request.inputTokens + request.outputTokens) tokens on \(request.cluster.gpuCount) GPUs, not "
                + "\(sequences.formatted())")
        }
        // The busiest attention group holds whole sequences (one, under data-parallel attention,
        // where some ranks are idle); the experts see the mean.
        let group = Double(layout.attentionGroup)
        let busiest = (sequencesPerGPU * group - 1e-9).rounded(.up) / group
        return finish(prepared, batch: max(busiest, sequencesPerGPU), mean: sequencesPerGPU)
    }

    /// What does not depend on the decode batch: the plan, the prefill and the time to first token.
    struct Prepared {
        var request: EstimateRequest
        var layout: Layout
        var plan: LayoutPlan
        var imbalance: Double
        var localExperts: Int
        var prefill: StepTime
        var inputRate: Double
        var ttft: Double
        var chunk: Int
        /// The largest decode batch per GPU that fits, at most `maxBatchPerGPU` (0: not one).
        var largestBatch: Int
        /// The largest decode batch per GPU that fits in memory.
        var largestFit: Int
    }

    static func prepare(_ request: EstimateRequest, layout: Layout) throws -> Prepared {
        let model = request.model, cluster = request.cluster
        let context = request.inputTokens + request.outputTokens
        let redundant = request.redundantExperts(ep: layout.ep)
        let workload = Workload(weights: request.weights, kvCache: request.kvCache, context: context, concurrency: 1,
                                prefillChunk: request.prefillTokensPerGPU ?? MemoryModel.defaultPrefillChunk,
                                memoryReserve: request.memoryReserve)
        let options = PlanOptions(layout: layout, expertLoad: request.expertSkew > 0 ? .zipf(request.expertSkew) : .uniform,
                                  redundantExperts: redundant)
        let plan = try Planner.evaluate(model, cluster: cluster, workload: workload, layout: layout, options: options)
        // "Per GPU": sequences of the whole deployment over its GPUs. Under tensor-parallel
        // attention a batch of B per GPU is B × tp sequences shared by the tp GPUs of a group.
        let fitting = plan.fits ? plan.maxConcurrentSequences / cluster.gpuCount : 0
        let imbalance = plan.placement?.imbalance ?? 1
        let localExperts = plan.placement?.experts.map(\.count).max() ?? 0
        let overlap = request.features.contains(.twoBatchOverlap)
        let eager = request.features.contains(.eagerPrefill)

        // Prefill: P new tokens per GPU per step; the cached share of each prompt is skipped.
        let cached = Int(Double(request.inputTokens) * request.prefixCacheHitRate)
        let newTokens = max(1, request.inputTokens - cached)
        let chunk = request.prefillTokensPerGPU ?? MemoryModel.defaultPrefillChunk
        let prefillShape = StepShapeOnGPU(phase: .prefill, sequencesPerGPU: Double(chunk) / Double(newTokens),
                                          newTokens: newTokens, context: cached)
        let prefill = stepTime(model, cluster: cluster, layout: layout, shape: prefillShape, weights: request.weights,
                               kvCache: request.kvCache, imbalance: imbalance, localExperts: localExperts, overlap: overlap,
                               eager: eager)
        // A pipeline finishes one chunk per stage time but holds pp of them: per GPU, one chunk per
        // pp stage times (the same holds for decode batches).
        let inputRate = Double(chunk) / max(1 - request.prefixCacheHitRate, 1e-9) / (Double(layout.pp) * prefill.total)
        // Time to first token of one request on an idle system: its own prefill, alone on its
        // attention group, through every pipeline stage. The experts see that one prompt spread
        // over the stage's expert group (under data-parallel attention the other ranks are idle).
        let alone = StepShapeOnGPU(phase: .prefill, sequencesPerGPU: 1 / Double(layout.attentionGroup),
                                   newTokens: newTokens, context: cached,
                                   meanSequencesPerGPU: 1 / Double(layout.groupSize(isMoE: model.moe != nil)))
        let ttft = Double(layout.pp) * stepTime(model, cluster: cluster, layout: layout, shape: alone,
                                                weights: request.weights, kvCache: request.kvCache, imbalance: imbalance,
                                                localExperts: localExperts, overlap: overlap, eager: eager).total
        return Prepared(request: request, layout: layout, plan: plan, imbalance: imbalance, localExperts: localExperts,
                        prefill: prefill, inputRate: inputRate, ttft: ttft, chunk: chunk,
                        largestBatch: min(fitting, maxBatchPerGPU), largestFit: fitting)
    }

    /// Adds the decode step at `batch` sequences per GPU.
    /// `batch`: sequences per GPU of the busiest attention group; `mean`, when it differs, the
    /// deployment's (fewer sequences than attention groups leave some idle).
    static func finish(_ p: Prepared, batch: Double, mean: Double? = nil) -> Estimate {
        let request = p.request, layout = p.layout
        // Decode at the mean context of the generation.
        let decodeShape = StepShapeOnGPU(phase: .decode, sequencesPerGPU: batch, newTokens: 1,
                                         context: request.inputTokens + request.outputTokens / 2, meanSequencesPerGPU: mean)
        let decode = stepTime(request.model, cluster: request.cluster, layout: layout, shape: decodeShape,
                              weights: request.weights, kvCache: request.kvCache, imbalance: p.imbalance,
                              localExperts: p.localExperts, overlap: request.features.contains(.twoBatchOverlap),
                              eager: false)  // decode-only: graphed
        let tpot = Double(layout.pp) * decode.total
        let outputRate = (mean ?? batch) / tpot
        let prefillSecondsPerSequence = Double(request.inputTokens) / p.inputRate
        let offline = request.outputTokens > 0
            ? Double(request.outputTokens) / (prefillSecondsPerSequence + Double(request.outputTokens) / outputRate) : 0
        let price = request.gpuHourPrice ?? request.cluster.gpu.gpuHourPrice
        let energy = request.cluster.gpu.power.map { power in
            var e = EnergyEstimate(power: power, settings: request.energy, outputGPUWatts: PowerModel.gpuWatts(decode, power),
                                   inputGPUWatts: PowerModel.gpuWatts(p.prefill, power), outputTokensPerSecondPerGPU: outputRate,
                                   inputTokensPerSecondPerGPU: p.inputRate)
            // A request: its prompt at the prefill step's energy (the input rate already skips the
            // cached share), its answer at the decode step's.
            e.joulesPerRequest = Double(request.inputTokens) * (e.joulesPerInputToken() ?? 0) + Double(request.outputTokens) * (e.joulesPerOutputToken() ?? 0)
            return e
        }
        return Estimate(
            plan: p.plan, decodeBatchPerGPU: Int(mean ?? batch), prefillTokensPerGPU: p.chunk, prefillStep: p.prefill, decodeStep: decode,
            inputTokensPerSecondPerGPU: p.inputRate, outputTokensPerSecondPerGPU: outputRate,
            outputTokensPerSecondPerUser: 1 / tpot, timeToFirstToken: p.ttft, timePerOutputToken: tpot,
            endToEndLatency: p.ttft + Double(request.outputTokens) * tpot,
            offlineOutputTokensPerSecondPerGPU: offline, gpuHourPrice: price,
            costPerMillionInputTokens: price.map { $0 / 3600 / p.inputRate * 1e6 },
            costPerMillionOutputTokens: price.map { $0 / 3600 / outputRate * 1e6 }, energy: energy)
    }
}
