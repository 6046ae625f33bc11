import Planner

/// Searches layouts and batch sizes for the highest throughput per GPU under latency limits.
public enum LayoutSearch {
    public struct Result: Sendable {
        /// The highest output tokens/s per GPU that meets the limits, if any does.
        public var best: Estimate?
        /// Estimates no other beats on both throughput per GPU and tokens/s per user, by
        /// increasing tokens/s per user: the curve a capacity planner reads.
        public var pareto: [Estimate]
        /// Every point evaluated, by layout then batch.
        public var all: [Estimate]
        public var evaluated: Int { all.count }
    }

    /// The layouts a search tries: every valid one up to 8 pipeline stages, with and without the
    /// request's EPLB slots, sorted so that ties go the same way on every run.
    public static func candidates(_ request: EstimateRequest) -> [Layout] {
        let gpus = request.cluster.gpuCount
        return Array(Set(
            Layout.enumerate(for: request.model, gpus: gpus, maxStages: 8)
                + Layout.enumerate(for: request.model, gpus: gpus, maxStages: 8,
                                   redundantExperts: request.redundantExperts(ep: gpus))
        )).sorted { $0.description < $1.description }
    }

    /// The largest decode batch per GPU that fits any layout of the request, and that layout.
    public static func largestFittingBatch(_ request: EstimateRequest) -> (batch: Int, layout: Layout)? {
        guard (try? Estimator.check(request)) != nil else { return nil }
        var best: (Int, Layout)? = nil
        for layout in request.layout.map({ [$0] }) ?? candidates(request) {
            guard let p = try? Estimator.prepare(request, layout: layout), p.plan.fits else { continue }
            if p.largestFit > (best?.0 ?? 0) { best = (p.largestFit, layout) }
        }
        return best
    }

    /// Every fitting layout at decode batches 1, 2, 4, … up to the largest that fits (at most
    /// `Estimator.maxBatchPerGPU`), or at the request's batch when it gives one.
    public static func search(_ request: EstimateRequest, maxTTFT: Double? = nil, maxTPOT: Double? = nil) -> Result {
        guard (try? Estimator.check(request)) != nil else { return Result(best: nil, pareto: [], all: []) }
        let layouts = request.layout.map { [$0] } ?? candidates(request)
        var all: [Estimate] = []
        for layout in layouts {
            // The plan, prefill and TTFT do not depend on the decode batch: priced once per layout.
            guard let prepared = try? Estimator.prepare(request, layout: layout), prepared.plan.fits,
                  prepared.largestBatch >= 1 else { continue }
            var batches: [Int] = []
            if let fixed = request.decodeBatchPerGPU {
                // A batch that does not fit this layout is not priced on it.
                guard fixed <= prepared.largestFit else { continue }
                batches = [fixed]
            } else {
                var b = 1
                while b <= prepared.largestBatch { batches.append(b); b *= 2 }
                if let last = batches.last, last < prepared.largestBatch { batches.append(prepared.largestBatch) }
            }
            all += batches.map { Estimator.finish(prepared, batch: Double($0)) }
        }
        let allowed = all.filter { e in
            (maxTTFT.map { e.timeToFirstToken <= $0 } ?? true) && (maxTPOT.map { e.timePerOutputToken <= $0 } ?? true)
        }
        let best = allowed.max { $0.outputTokensPerSecondPerGPU < $1.outputTokensPerSecondPerGPU }
        let front = paretoFront(all, perUser: \.outputTokensPerSecondPerUser, perGPU: \.outputTokensPerSecondPerGPU)
        return Result(best: best, pareto: front, all: all)
    }

    /// The points no other point beats on both tokens/s per user and per GPU, by increasing
    /// tokens/s per user: by per-user speed descending, those that raise per-GPU throughput.
    public static func paretoFront<Point>(_ points: [Point], perUser: (Point) -> Double, perGPU: (Point) -> Double) -> [Point] {
        var front: [Point] = []
        var bestThroughput = -Double.infinity
        for p in points.sorted(by: { perUser($0) > perUser($1) }) where perGPU(p) > bestThroughput {
            front.append(p)
            bestThroughput = perGPU(p)
        }
        return front.reversed()
    }
}
