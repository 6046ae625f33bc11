import Estimator
import Foundation
import Hardware
import ModelSpec
import Planner

/// An open-loop run: requests arrive at their own times, whatever the deployment's state (the
/// question a capacity planner asks: this load, these latencies?).
public struct OpenLoopRequest: Sendable {
    public enum Arrivals: Sendable, Equatable {
        /// `count` synthetic requests: prompts uniform in the serving request's input range,
        /// answers of its output length.
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
    public struct Point: Sendable {
        public var time: Double
        public var queued: Int
        public var running: Int
        public var kvUtilization: Double
    }

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
    public var series: [Point]
}

extension ServingEstimator {
    /// The layout an open-loop run uses when none is given: the steady state's best (highest
    /// output tokens/s per GPU at the largest batch that fits).
    public static func openLoopLayout(_ request: ServingRequest) throws -> Layout {
        if let layout = request.base.layout { return layout }
        var base = request.base
        base.outputTokens = request.maxContext - base.inputTokens
        guard let best = LayoutSearch.search(base).best else {
            throw ServingError.doesNotFit("no layout of \(base.model.id) fits \(base.cluster.gpuCount) × \(base.cluster.gpu.id) "
                + "at \(request.maxContext) tokens of context (see moesim plan)")
        }
        return best.plan.layout
    }

    /// Simulates the arrivals request by request on every worker of the deployment.
    public static func serve(_ open: OpenLoopRequest, progress: ((Int, Double) -> Void)? = nil) throws -> OpenLoopResult {
        var request = open.serving
        request.concurrency = 1
        try check(request)
        if case let .process(process, count) = open.arrivals {
            guard count >= 1, count <= 100_000_000 else { throw ServingError.invalid("requests must be 1 to 100,000,000, got \(count)") }
            guard process.rate > 0, process.rate.isFinite else { throw ServingError.invalid("the arrival rate must be positive") }
            if case let .gamma(_, cv) = process, !(cv >= 0.01 && cv <= 100) {
                throw ServingError.invalid("the burst coefficient of variation must be in [0.01, 100], got \(cv)")
            }
        }
        if let slo = open.slo, !(slo.ttft > 0 && slo.tpot > 0) { throw ServingError.invalid("SLO targets must be positive") }

        // Workers: every replica of an aggregated layout, or both pools.
        var workers: [ServingWorker] = []
        var entry: [Int] = [], exit: [Int] = []
        var pools: [PoolEstimate] = []
        var transfer: KVTransfer? = nil
        if let asked = request.disaggregation {
            var sized = request
            sized.concurrency = 1_000_000
            guard asked.prefill.gpus + asked.decode.gpus == request.base.cluster.gpuCount else {
                throw ServingError.invalid("the prefill (\(asked.prefill.gpus)) and decode (\(asked.decode.gpus)) GPUs must add up to "
                    + "the deployment's \(request.base.cluster.gpuCount)")
            }
            let d = try poolLayouts(sized, asked)
            for (role, pool) in [(ServingWorker.Role.prefill, d.prefill), (.decode, d.decode)] {
                guard let layout = pool.layout, pool.workers >= 1, pool.gpus % pool.workers == 0 else {
                    throw ServingError.invalid("a pool's \(pool.gpus) GPUs do not divide into \(pool.workers) workers")
                }
                let pricer = try pricerThatFits(try workerRequest(request, pool), layout: layout,
                                                pool: "each \(role == .prefill ? "prefill" : "decode") worker")
                guard pricer.plan.replicas == 1 else {
                    throw ServingError.invalid("the layout \(layout) covers \(pool.gpusPerWorker / pricer.plan.replicas) GPUs, "
                        + "not the \(pool.gpusPerWorker) of one worker: give workers = GPUs / layout size")
                }
                let shape = workerShape(request, pricer: pricer, gpusPerWorker: pool.gpusPerWorker)
                let cache = StepCache(pricer: pricer, gpusPerWorker: pool.gpusPerWorker,
                                      speculative: role == .decode ? request.speculative : nil)
                for _ in 0..<pool.workers {
                    if role == .prefill { entry.append(workers.count) } else { exit.append(workers.count) }
                    workers.append(ServingWorker(role: role, steps: cache, budget: shape.budget, groupBudget: shape.groupBudget,
                                                 kvCapacity: shape.kvTokens, maxRunning: shape.maxRunning))
                }
                pools.append(PoolEstimate(gpus: pool.gpus, workers: pool.workers, layout: layout, plan: pricer.plan,
                                          capacityPerWorker: shape.capacity, inputTokensPerSecondPerGPU: 0,
                                          outputTokensPerSecondPerGPU: 0, busy: 0))
            }
            transfer = KVTransfer(request, prefill: d.prefill)
        } else {
            let layout = try openLoopLayout(request)
            let pricer = try pricerThatFits(request, layout: layout, pool: "the deployment")
            let replicas = pricer.plan.replicas
            let gpusPerWorker = request.base.cluster.gpuCount / replicas
            let shape = workerShape(request, pricer: pricer, gpusPerWorker: gpusPerWorker)
            let cache = StepCache(pricer: pricer, gpusPerWorker: gpusPerWorker, speculative: request.speculative)
            for i in 0..<replicas {
                entry.append(i)
                workers.append(ServingWorker(role: .both, steps: cache, budget: shape.budget, groupBudget: shape.groupBudget,
                                             kvCapacity: shape.kvTokens, maxRunning: shape.maxRunning))
            }
            exit = entry
            pools.append(PoolEstimate(gpus: request.base.cluster.gpuCount, workers: replicas, layout: layout, plan: pricer.plan,
                                      capacityPerWorker: shape.capacity, inputTokensPerSecondPerGPU: 0,
                                      outputTokensPerSecondPerGPU: 0, busy: 0))
        }

        let source: ArrivalSource
        var span: Double? = nil
        switch open.arrivals {
        case let .process(process, count):
            let input = Double(request.base.inputTokens)
            source = .synthetic(process: process, count: count,
                                lower: max(1, Int((request.inputRange.lower * input).rounded())),
                                upper: max(1, Int((request.inputRange.upper * input).rounded())),
                                output: request.base.outputTokens, random: SeededRandom(state: request.seed), time: 0, made: 0)
            span = Double(count) / process.rate
        case let .trace(path):
            source = .trace(try TraceReader(path: path))
        }
        var options = ServingSimulation.Options()
        options.tokensPerStep = request.speculative?.acceptance ?? 1
        options.verifiedPerStep = 1 + (request.speculative?.draftTokens ?? 0)
        options.policy = request.scheduler
        options.chunkedPrefill = request.chunkedPrefill
        options.slo = open.slo
        options.progress = progress
        // An open loop ends when its arrivals are served; a stall is detected, not a step count.
        options.maxSteps = Int.max
        options.seriesPoints = max(0, open.seriesPoints)
        if let span { options.sampleInterval = span / Double(max(open.seriesPoints, 1)) }
        let kv = transfer
        var sim = ServingSimulation(workers: workers, entry: entry, exit: exit, transferSeconds: { kv?.seconds($0) ?? 0 },
                                    mode: .open(source), options: options)
        let outcome: ServingSimulation.Outcome
        do { outcome = try sim.run() } catch let ServingSimulation.Failure.stalled(text) { throw ServingError.invalid(text) }
        guard outcome.completions > 0 else { throw ServingError.invalid("no request completed") }

        let window = max(outcome.windowSeconds, 1e-30)
        if pools.count == 2 {
            pools[0].inputTokensPerSecondPerGPU = outcome.inputTokens / window / Double(pools[0].gpus)
            pools[1].outputTokensPerSecondPerGPU = outcome.outputTokens / window / Double(pools[1].gpus)
            pools[0].busy = workers[0..<pools[0].workers].reduce(0) { $0 + $1.busySeconds } / Double(pools[0].workers) / window
            pools[1].busy = workers[pools[0].workers...].reduce(0) { $0 + $1.busySeconds } / Double(pools[1].workers) / window
        } else {
            pools[0].busy = workers.reduce(0) { $0 + $1.busySeconds } / Double(workers.count) / window
        }
        var summaryRequest = request
        summaryRequest.concurrency = 0
        let estimate = summarize(summaryRequest, runs: [(outcome, 1)], pools: pools, steps: outcome.steps,
                                 transfer: transfer.map { $0.seconds(request.base.inputTokens) })
        return OpenLoopResult(
            estimate: estimate, completed: outcome.completions, simulatedSeconds: outcome.windowEnd,
            goodputRequestsPerSecond: open.slo.map { _ in Double(outcome.goodCompletions) / window },
            kvUtilizationMean: outcome.busySeconds > 0 ? outcome.kvUtilizationSeconds / outcome.busySeconds : 0,
            kvUtilizationMax: outcome.kvUtilizationMax,
            prefixCacheHitRate: outcome.promptTokens > 0 ? outcome.cachedTokens / outcome.promptTokens : 0,
            preemptions: outcome.preemptions,
            series: outcome.series.map { OpenLoopResult.Point(time: $0.time, queued: $0.queued, running: $0.running,
                                                              kvUtilization: $0.kvUtilization) })
    }
}
