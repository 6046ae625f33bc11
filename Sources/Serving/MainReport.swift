import Estimator
import Hardware
import ModelSpec
import Planner

/// `moesim report`'s answers, computed once for the table and the JSON alike: the fewest GPUs
/// for one sequence and for `concurrency` of them at `context` tokens, the cluster planned (whole
/// nodes), its memory, the steady state's best layouts, the serving view at 1, 4, 16 and 64
/// requests in flight per GPU, and the capacity for `users` within the latency targets.
public struct MainReport: Sendable {
    public var minimumGPUs: Int?
    public var minimumGPUsForConcurrency: Int?
    /// The GPUs planned on (given, or the fewest whole nodes for the concurrency).
    public var gpus: Int?
    public var plan: Plan?
    public var request: EstimateRequest?
    public var search: LayoutSearch.Result?
    /// Closed-loop estimates on the best layout, by concurrency.
    public var serving: [ServingEstimate] = []
    /// The concurrencies of the serving view that could not be estimated, with why.
    public var servingSkipped: [(concurrency: Int, reason: String)] = []
    public var capacity: CapacityAnswer?
    public var capacityTargets: (ttft: Double, tpot: Double) = (2, 0.05)
    /// Why there is no capacity answer, when the search failed.
    public var capacityError: String?
    /// One request that fills the context, priced fresh and with its prefix cached.
    public var longRequest: LongRequest?

    /// A prompt of `promptTokens` (262,144, or the model's whole context if shorter, less the
    /// answer) priced on the planned cluster's best layout, fresh and with all but its last
    /// `newTokens` served from the prefix cache (a long document asked a new question): GPU
    /// time, facility energy and price of the request.
    public struct LongRequest: Sendable {
        public var promptTokens: Int
        public var cachedTokens: Int
        public var outputTokens: Int
        public var fresh: Estimate
        public var cached: Estimate
    }

    /// The report's serving view drives the deployment as InferenceX's client does: prompt and
    /// answer lengths each drawn from 0.8–1.0 of the nominal (`--random-range-ratio 0.8`).
    public static let clientRange = LengthRange(lower: 0.8, upper: 1)

    /// `makeRequest` turns the planned cluster into the estimate request (workload options).
    public static func build(_ spec: ModelSpec, gpu: HardwareSpec, gpus: Int?, weights: WeightFormat, kvCache: KVCacheFormat,
                             context: Int, concurrency: Int, users: Int, maxTTFT: Double?, maxTPOT: Double?,
                             hosted: HostedPrice? = nil, makeRequest: (Cluster) throws -> EstimateRequest) throws -> MainReport {
        var report = MainReport()
        let one = Workload(weights: weights, kvCache: kvCache, context: context, concurrency: 1)
        report.minimumGPUs = try Planner.minimumGPUs(spec, gpu: gpu, workload: one)
        guard report.minimumGPUs != nil else { return report }
        var load = one
        load.concurrency = concurrency
        report.minimumGPUsForConcurrency = try Planner.minimumGPUs(spec, gpu: gpu, workload: load)
        let perNode = gpu.scaleUpDomain
        report.gpus = gpus ?? report.minimumGPUsForConcurrency.map { $0 <= perNode ? $0 : ($0 + perNode - 1) / perNode * perNode }
        guard let chosen = report.gpus else { return report }
        let cluster = try Cluster(gpu: gpu, gpuCount: chosen)
        report.plan = try Planner.plan(spec, cluster: cluster, workload: load, alternatives: [])
        let request = try makeRequest(cluster)
        report.request = request
        let search = LayoutSearch.search(request, maxTTFT: maxTTFT, maxTPOT: maxTPOT)
        report.search = search
        guard let best = search.best else { return report }
        for perGPU in [1, 4, 16, 64] {
            var base = request
            base.layout = best.plan.layout
            let r = ServingRequest(base: base, concurrency: perGPU * chosen, inputRange: Self.clientRange, outputRange: Self.clientRange)
            do { report.serving.append(try ServingEstimator.estimate(r)) } catch {
                report.servingSkipped.append((r.concurrency, "\(error)"))
            }
        }
        report.longRequest = longRequest(request, spec: spec, hosted: hosted)
        var base = request
        base.layout = nil
        report.capacityTargets = (maxTTFT ?? 2, maxTPOT ?? 0.05)
        let capacity = CapacityRequest(serving: ServingRequest(base: base, concurrency: users, inputRange: Self.clientRange,
                                                               outputRange: Self.clientRange),
                                       load: .users(users), maxTTFT: report.capacityTargets.ttft, maxTPOT: report.capacityTargets.tpot)
        do {
            report.capacity = try Capacity.fewestGPUs(capacity)
            if report.capacity == nil { report.capacityError = "no deployment of up to \(capacity.maxGPUs.formatted()) \(gpu.id) GPUs meets the targets" }
        } catch {
            report.capacityError = "\(error)"
        }
        return report
    }

    /// The prompt stays within the model's context and the hosted price's longest tier.
    static func longRequest(_ request: EstimateRequest, spec: ModelSpec, hosted: HostedPrice?) -> LongRequest? {
        let output = request.outputTokens
        var prompt = min(262_144, spec.maxPositionEmbeddings) - output
        if let bound = hosted?.tiers.last?.maxPromptTokens { prompt = min(prompt, bound) }
        let new = min(request.inputTokens, prompt)
        guard prompt > new else { return nil }
        var fresh = request
        fresh.inputTokens = prompt
        fresh.decodeBatchPerGPU = nil
        fresh.prefixCacheHitRate = 0
        var cached = fresh
        cached.prefixCacheHitRate = Double(prompt - new) / Double(prompt)
        guard let f = LayoutSearch.search(fresh).best, let c = try? Estimator.estimate(cached, layout: f.plan.layout),
              f.gpuSeconds(prompt: prompt, output: output) != nil, c.gpuSeconds(prompt: prompt, output: output) != nil else { return nil }
        return LongRequest(promptTokens: prompt, cachedTokens: prompt - new, outputTokens: output, fresh: f, cached: c)
    }
}
