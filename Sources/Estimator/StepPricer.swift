import Hardware
import ModelSpec
import Planner

/// The step model of one layout, ready to price any batch: what the serving model (continuous
/// batching, disaggregated pools, MTP) calls once per simulated step shape.
public struct StepPricer: Sendable {
    public var model: ModelSpec
    public var cluster: Cluster
    public var layout: Layout
    public var weights: WeightFormat
    public var kvCache: KVCacheFormat
    public var overlap: Bool
    /// Steps with prompt tokens run without CUDA graphs (`EstimateRequest.Feature.eagerPrefill`).
    public var eagerPrefill: Bool
    /// The plan of the layout: memory per GPU, the sequences that fit, expert placement.
    public var plan: LayoutPlan
    var imbalance: Double
    var localExperts: Int

    /// Evaluates the layout for sequences of `context` tokens (which sizes the KV cache that must fit).
    /// `loadMTP` adds the multi-token-prediction modules' weights (speculative decoding).
    public init(_ request: EstimateRequest, layout: Layout, context: Int, loadMTP: Bool = false) throws {
        let redundant = request.redundantExperts(ep: layout.ep)
        let workload = Workload(weights: request.weights, kvCache: request.kvCache, context: context, concurrency: 1,
                                prefillChunk: request.prefillTokensPerGPU ?? MemoryModel.defaultPrefillChunk,
                                memoryReserve: request.memoryReserve)
        var options = PlanOptions(layout: layout, expertLoad: request.expertSkew > 0 ? .zipf(request.expertSkew) : .uniform,
                                  redundantExperts: redundant)
        options.loadMTP = loadMTP
        plan = try Planner.evaluate(request.model, cluster: request.cluster, workload: workload, layout: layout, options: options)
        model = request.model
        cluster = request.cluster
        self.layout = layout
        weights = request.weights
        kvCache = request.kvCache
        overlap = request.features.contains(.twoBatchOverlap)
        eagerPrefill = request.features.contains(.eagerPrefill)
        imbalance = plan.placement?.imbalance ?? 1
        localExperts = plan.placement?.experts.map(\.count).max() ?? 0
    }

    /// One pipeline stage's step on the busiest GPU for a batch of `parts`.
    public func stageTime(_ parts: [StepShapeOnGPU]) -> StepTime {
        Estimator.stepTime(model, cluster: cluster, layout: layout, parts: parts, weights: weights, kvCache: kvCache,
                           imbalance: imbalance, localExperts: localExperts, overlap: overlap,
                           eager: eagerPrefill && parts.contains { $0.phase == .prefill })
    }
}
