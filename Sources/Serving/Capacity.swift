import Estimator
import Foundation
import Hardware
import ModelSpec
import Planner

/// "How many GPUs, cut how": the fewest GPUs that serve a load within latency targets.
public struct CapacityRequest: Sendable {
    public enum Load: Sendable, Equatable {
        /// Users each with one request in flight (a closed loop of that concurrency).
        case users(Int)
        /// Requests per second arriving at random (Poisson).
        case rate(Double)
    }

    /// Model, GPU kind (its count is searched), formats, lengths, scheduler, MTP; concurrency,
    /// layout and pools are chosen by the search.
    public var serving: ServingRequest
    public var load: Load
    public var maxTTFT: Double
    public var maxTPOT: Double
    /// The percentile at which the targets must hold (90: p90).
    public var percentile: Double
    public var maxGPUs: Int
    /// Also try prefill and decode on separate pools.
    public var disaggregation: Bool
    /// Requests simulated per candidate under a rate.
    public var requestsPerTrial: Int

    public init(serving: ServingRequest, load: Load, maxTTFT: Double, maxTPOT: Double, percentile: Double = 90,
                maxGPUs: Int = 1024, disaggregation: Bool = true, requestsPerTrial: Int = 2_000) {
        self.serving = serving
        self.load = load
        self.maxTTFT = maxTTFT
        self.maxTPOT = maxTPOT
        self.percentile = percentile
        self.maxGPUs = maxGPUs
        self.disaggregation = disaggregation
        self.requestsPerTrial = requestsPerTrial
    }

    /// GPUs come in whole nodes: an HGX board of 8, or 8 GPUs (two compute trays) of an NVL72 rack.
    public var granularity: Int { min(serving.base.cluster.gpu.scaleUpDomain, 8) }
}

public struct CapacityAnswer: Sendable {
    public var gpus: Int
    /// The serving estimate of the answer (its layout or pools, rates, percentiles, cost).
    public var estimate: ServingEstimate
    public var ttft: Double
    public var tpot: Double
    /// Requests completed per second in the steady state (the rate, or users over the mean
    /// end-to-end latency) and the output tokens per GPU that makes.
    public var requestsPerSecond: Double
    public var outputTokensPerSecondPerGPU: Double
    public var costPerMillionOutputTokens: Double?
    public var costPerRequest: Double?
    /// GPU counts and configurations simulated on the way.
    public var trials: Int
}

public enum Capacity {
    /// The GPU counts a capacity answer may have: whole nodes of `granularity` up to one scale-up
    /// domain, then whole domains (an NVL72 rack is one domain of 72: 8, 16, …, 72, 144, …), at
    /// most `maxGPUs`, and at least what holds the weights.
    public static func candidateCounts(_ request: CapacityRequest) -> [Int] {
        let g = request.granularity, domain = request.serving.base.cluster.gpu.scaleUpDomain
        let least = weightsInGPUs(request)
        var counts = Array(stride(from: g, through: min(domain, request.maxGPUs), by: g))
        if domain < request.maxGPUs { counts += Array(stride(from: 2 * domain, through: request.maxGPUs, by: domain)) }
        return counts.filter { Double($0) >= least.rounded(.down) }
    }

    /// Gallops over the candidate counts (the 1st, 2nd, 4th, …) until one meets the targets,
    /// then bisects between the last that did not and the first that did. Meeting the targets is
    /// taken to be monotone in the GPU count (more GPUs never serve the same load worse when the
    /// layout is free to change); `capacity` is checked against a linear scan in the tests.
    public static func fewestGPUs(_ request: CapacityRequest) throws -> CapacityAnswer? {
        try check(request)
        let counts = candidateCounts(request)
        guard !counts.isEmpty else { return nil }
        var trials = 0
        var cache: [Int: ServingEstimate?] = [:]
        func meets(_ index: Int) throws -> ServingEstimate? {
            if let known = cache[index] { return known }
            let (answer, tried) = try evaluate(request, gpus: counts[index])
            trials += tried
            cache[index] = answer
            return answer
        }
        var low = -1, high = 0
        while high < counts.count, try meets(high) == nil {
            low = high
            high = 2 * high + 1
        }
        if high >= counts.count {
            let last = counts.count - 1
            guard last > low, try meets(last) != nil else { return nil }
            high = last
        }
        while high - low > 1 {
            let mid = (low + high) / 2
            if try meets(mid) != nil { high = mid } else { low = mid }
        }
        guard let found = try meets(high) else { return nil }
        let q = request.percentile
        let price = found.gpuHourPrice
        // The load is served (the targets hold), so in the steady state the deployment completes
        // what arrives: users / (mean end-to-end latency) requests per second, or the rate.
        var served = found.requestsPerSecond
        if case let .rate(rate) = request.load { served = rate }
        // No served request (cannot happen for a found answer, but never print an infinite cost).
        let dollarsPerSecond = served > 0 ? price.map { $0 * Double(found.gpus) / 3600 } : nil
        let answer = request.serving.outputRange.meanTokens(request.serving.base.outputTokens)
        return CapacityAnswer(gpus: counts[high], estimate: found, ttft: quantile(found.ttft, q), tpot: quantile(found.tpot, q),
                              requestsPerSecond: served,
                              outputTokensPerSecondPerGPU: served * answer / Double(found.gpus),
                              costPerMillionOutputTokens: dollarsPerSecond.map { $0 / (served * answer) * 1e6 },
                              costPerRequest: dollarsPerSecond.map { $0 / served }, trials: trials)
    }

    static func check(_ request: CapacityRequest) throws {
        var serving = request.serving
        serving.concurrency = 1
        try ServingEstimator.check(serving)
        guard request.maxTTFT > 0, request.maxTPOT > 0, request.maxTTFT.isFinite, request.maxTPOT.isFinite else {
            throw ServingError.invalid("the TTFT and TPOT targets must be positive and finite")
        }
        guard [50.0, 90, 99].contains(request.percentile) else { throw ServingError.invalid("the percentile must be 50, 90 or 99") }
        guard request.maxGPUs >= request.granularity, request.maxGPUs <= 65_536 else {
            throw ServingError.invalid("the GPU limit must be \(request.granularity) to 65,536")
        }
        switch request.load {
        case let .users(n): guard (1...1_000_000).contains(n) else { throw ServingError.invalid("users must be 1 to 1,000,000") }
        case let .rate(r): guard (1e-6...1e6).contains(r) else { throw ServingError.invalid("the rate must be 10^-6 to 10^6 requests/s, got \(r)") }
        }
    }

    static func quantile(_ p: Percentiles, _ q: Double) -> Double { q == 50 ? p.median : (q == 99 ? p.p99 : p.p90) }

    /// The best configuration of `gpus` GPUs that meets the targets, if one does: the layouts
    /// the steady state ranks best (aggregated), and prefill:decode splits (disaggregated, workers
    /// of `workerGPUs`, layouts chosen per pool). Among those that meet the
    /// targets, the one of highest output tokens/s per GPU (the most headroom).
    public static func evaluate(_ request: CapacityRequest, gpus: Int) throws -> (ServingEstimate?, Int) {
        var base = request.serving
        base.base.cluster = try Cluster(gpu: request.serving.base.cluster.gpu, gpuCount: gpus)
        base.base.layout = nil
        base.disaggregation = nil
        var candidates: [ServingRequest] = []
        // Under a rate, layouts are ranked at the largest batch that fits.
        if case let .users(n) = request.load { base.concurrency = n } else { base.concurrency = 1_000_000 }
        // The layouts the steady state ranks best, one of each kind first (`simulationCandidates`).
        let layouts = ServingEstimator.simulationCandidates(ServingEstimator.rankedLayouts(base), model: base.base.model)
        for layout in layouts {
            var r = base
            r.base.layout = layout
            candidates.append(r)
        }
        let worker = workerGPUs(request)
        if request.disaggregation, gpus >= 2 * worker {
            var splits = Set<Int>()
            for fraction in [0.125, 0.25, 1.0 / 3, 0.5] {
                let p = max(worker, Int((Double(gpus) * fraction / Double(worker)).rounded()) * worker)
                if p < gpus, (gpus - p) % worker == 0 { splits.insert(p) }
            }
            for p in splits.sorted() {
                var r = base
                r.disaggregation = Disaggregation(prefill: .init(gpus: p, workers: p / worker, layout: nil),
                                                  decode: .init(gpus: gpus - p, workers: (gpus - p) / worker, layout: nil))
                candidates.append(r)
            }
        }
        var best: ServingEstimate? = nil
        var tried = 0
        for r in candidates {
            tried += 1
            guard let e = try? run(r, request) else { continue }
            guard quantile(e.ttft, request.percentile) <= request.maxTTFT, quantile(e.tpot, request.percentile) <= request.maxTPOT else {
                continue
            }
            if best == nil || e.outputTokensPerSecondPerGPU > (best?.outputTokensPerSecondPerGPU ?? 0) { best = e }
        }
        return (best, tried)
    }

    /// GPUs of one worker of a disaggregated pool: whole nodes that hold the weights with as
    /// much memory again for the KV cache (twice the weights-only minimum, rounded up to nodes).
    static func workerGPUs(_ request: CapacityRequest) -> Int {
        let g = request.granularity
        let gpus = max(1, Int((2 * weightsInGPUs(request)).rounded(.up)))
        return (gpus + g - 1) / g * g
    }

    /// The model's weights over one GPU's usable memory (what the planner leaves after its reserve).
    static func weightsInGPUs(_ request: CapacityRequest) -> Double {
        let base = request.serving.base
        return Double(base.model.weightBytes(base.weights)) / (Double(base.cluster.gpu.memoryBytes) * (1 - base.memoryReserve))
    }

    static func run(_ r: ServingRequest, _ request: CapacityRequest) throws -> ServingEstimate {
        switch request.load {
        case .users:
            return try ServingEstimator.estimate(r)
        case let .rate(rate):
            let open = OpenLoopRequest(serving: r, arrivals: .process(.poisson(rate: rate), count: request.requestsPerTrial), seriesPoints: 0)
            return try ServingEstimator.serve(open).estimate
        }
    }
}
