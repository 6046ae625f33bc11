import Estimator
import Foundation
import Hardware
import ModelSpec
import Planner

/// An open-loop run: requests arrive at their own times, whatever the deployment's state (the
/// question a capacity planner asks: this load, these latencies?).
public struct OpenLoopRequest: Sendable {
    public enum Arrivals: Sendable, Equatable {
        /// `count` synthetic requests: prompts and answers uniform in the serving request's input
        /// and output ranges (drawn on their own stream, so the gaps stay those of the seed).
        case process(ArrivalProcess, count: Int)
        /// A trace file (JSON lines or CSV, see `TraceReader`).
        case trace(path: String)
    }

    /// Deployment, formats, lengths, scheduler, MTP and disaggregation; its concurrency is unused.
    public var serving: ServingRequest
    public var arrivals: Arrivals
    /// Service-level targets for goodput: a request is good when its TTFT and TPOT meet both.
    public var slo: (ttft: Double, tpot: Double)?
    /// Points of the time series (queue, running, KV use); 0: none.
    public var seriesPoints: Int

    public init(serving: ServingRequest, arrivals: Arrivals, slo: (ttft: Double, tpot: Double)? = nil, seriesPoints: Int = 200) {
        self.serving = serving
        self.arrivals = arrivals
        self.slo = slo
        self.seriesPoints = seriesPoints
    }
}

/// What an open-loop run measured.
public struct OpenLoopResult: Sendable {
    /// Rates, percentiles, pools and cost, as a closed-loop estimate reports them.
    public var estimate: ServingEstimate
    public var completed: Int
    public var simulatedSeconds: Double
    public var goodputRequestsPerSecond: Double?
    public var kvUtilizationMean: Double
    public var kvUtilizationMax: Double
    /// Prompt tokens served by the prefix cache over all prompt tokens.
    public var prefixCacheHitRate: Double
    public var preemptions: Int
    public var series: [ServingSeriesPoint]
}

extension ServingEstimator {
    /// The layout an open-loop run uses when none is given: the steady state's best (highest
    /// output tokens/s per GPU at the largest batch that fits).
    public static func openLoopLayout(_ request: ServingRequest) throws -> Layout {
        if let layout = request.base.layout { return layout }
        var largest = request
        largest.concurrency = 1_000_000
        guard let best = rankedLayouts(largest).first else {
            throw ServingError.doesNotFit("no layout of \(request.base.model.id) fits \(request.base.cluster.gpuCount) × "
                + "\(request.base.cluster.gpu.id) at \(request.maxContext) tokens of context (see moesim plan)")
        }
        return best
    }

    /// Simulates the arrivals request by request on every worker of the deployment.
    public static func serve(_ open: OpenLoopRequest, progress: ((Int, Double) -> Void)? = nil) throws -> OpenLoopResult {
        var request = open.serving
        request.concurrency = 1
        try check(request)
        if case let .process(process, count) = open.arrivals {
            guard count >= 1, count <= 100_000_000 else { throw ServingError.invalid("requests must be 1 to 100,000,000, got \(count)") }
            // Below 10^-6/s the simulated clock outgrows a step's time in Float64; above 10^6/s
            // no deployment keeps up.
            guard (1e-6...1e6).contains(process.rate) else {
                throw ServingError.invalid("the arrival rate must be 10^-6 to 10^6 requests/s, got \(process.rate)")
            }
            if case let .gamma(_, cv) = process, !(cv >= 0.01 && cv <= 100) {
                throw ServingError.invalid("the burst coefficient of variation must be in [0.01, 100], got \(cv)")
            }
        }
        if let slo = open.slo, !(slo.ttft > 0 && slo.tpot > 0 && slo.ttft.isFinite && slo.tpot.isFinite) {
            throw ServingError.invalid("SLO targets must be positive and finite")
        }

        // Every worker: all replicas of an aggregated layout, or both pools.
        var d: ServingDeployment
        if let asked = request.disaggregation {
            var sized = request
            sized.concurrency = 1_000_000  // pool layouts for the largest decode batch that fits
            d = try ServingDeployment.disaggregated(sized, asked)
        } else {
            d = try ServingDeployment.aggregated(request, layout: try openLoopLayout(request))
        }
        let source: ArrivalSource
        var span: Double? = nil
        switch open.arrivals {
        case let .process(process, count):
            // Lengths on their own stream (the seed's complement), so the gaps stay those of the seed.
            source = .synthetic(process: process, count: count, lengths: requestLengths(request, seed: ~request.seed),
                                random: SeededRandom(state: request.seed), time: 0, made: 0)
            span = Double(count) / process.rate
        case let .trace(path):
            source = .trace(try TraceReader(path: path))
        }
        var options = options(request)
        options.slo = open.slo
        options.progress = progress
        // An open loop ends when its arrivals are served; a stall is detected, not a step count.
        options.maxSteps = Int.max
        options.seriesPoints = max(0, open.seriesPoints)
        if let span { options.sampleInterval = span / Double(max(open.seriesPoints, 1)) }
        let transfer = d.transfer
        var sim = ServingSimulation(workers: d.workers, entry: d.entry, exit: d.exit, transferSeconds: { transfer?.seconds($0) ?? 0 },
                                    mode: .open(source), options: options)
        let outcome = try run(&sim)
        guard outcome.completions > 0 else { throw ServingError.invalid("no request completed") }
        d.record(outcome)

        let window = max(outcome.windowSeconds, 1e-30)
        var summaryRequest = request
        summaryRequest.concurrency = 0
        let estimate = summarize(summaryRequest, runs: [(outcome, 1)], pools: d.pools, steps: outcome.steps,
                                 transfer: transfer?.seconds(request.base.inputTokens))
        return OpenLoopResult(
            estimate: estimate, completed: outcome.completions, simulatedSeconds: outcome.windowEnd,
            goodputRequestsPerSecond: open.slo.map { _ in Double(outcome.goodCompletions) / window },
            kvUtilizationMean: outcome.busySeconds > 0 ? outcome.kvUtilizationSeconds / outcome.busySeconds : 0,
            kvUtilizationMax: outcome.kvUtilizationMax,
            prefixCacheHitRate: outcome.promptTokens > 0 ? outcome.cachedTokens / outcome.promptTokens : 0,
            preemptions: outcome.preemptions,
            series: outcome.series)
    }
}
