import Estimator
import Foundation
import Hardware
import ModelSpec
import Planner

/// Median, 90th and 99th percentiles and the mean of a latency, in seconds.
public struct Percentiles: Sendable, Equatable {
    public var median: Double
    public var p90: Double
    public var p99: Double
    public var mean: Double

    init(median: Double, p90: Double, p99: Double, mean: Double) {
        self.median = median
        self.p90 = p90
        self.p99 = p99
        self.mean = mean
    }

    /// From a latency histogram (each within 1% of the exact order statistic); nil when empty.
    init?(_ histogram: LatencyHistogram) {
        guard let median = histogram.quantile(0.5), let p90 = histogram.quantile(0.9), let p99 = histogram.quantile(0.99),
              let mean = histogram.mean else { return nil }
        self.init(median: median, p90: p90, p99: p99, mean: mean)
    }

    static let zero = Percentiles(median: 0, p90: 0, p99: 0, mean: 0)
}

/// One pool of a deployment and what it does per GPU.
public struct PoolEstimate: Sendable {
    public var gpus: Int
    public var workers: Int
    public var layout: Layout
    public var plan: LayoutPlan
    /// Requests of the longest context one worker holds at once (memory), and its running cap.
    public var capacityPerWorker: Int
    public var inputTokensPerSecondPerGPU: Double
    public var outputTokensPerSecondPerGPU: Double
    /// Share of the time the pool's workers spend in steps.
    public var busy: Double
}

/// A closed-loop serving estimate.
public struct ServingEstimate: Sendable {
    public var request: ServingRequest
    public var gpus: Int
    public var requestsPerSecond: Double
    public var outputTokensPerSecondPerGPU: Double
    public var inputTokensPerSecondPerGPU: Double
    public var totalTokensPerSecondPerGPU: Double { outputTokensPerSecondPerGPU + inputTokensPerSecondPerGPU }
    /// 1 / median TPOT, as benchmark clients report it.
    public var outputTokensPerSecondPerUser: Double
    public var ttft: Percentiles
    /// Time per output token after the first, per request.
    public var tpot: Percentiles
    public var endToEnd: Percentiles
    /// Decode sequences per GPU that decodes (all GPUs aggregated, the decode pool's when
    /// disaggregated), averaged over time: the batch the concurrency turns into.
    public var meanDecodeBatchPerDecodeGPU: Double
    /// The aggregated layout, or the two pools of a disaggregated deployment.
    public var pools: [PoolEstimate]
    public var disaggregated: Bool
    /// Seconds to move one nominal prompt's KV cache between pools (disaggregated only).
    public var kvTransferSeconds: Double?
    public var gpuHourPrice: Double?
    public var costPerMillionOutputTokens: Double?
    public var costPerMillionInputTokens: Double?
    /// Average power and energy per token over the window; nil without the GPU's power figures.
    public var energy: EnergyEstimate?
    public var measuredRequests: Int
    public var simulatedSteps: Int

    /// "attention=…" for an aggregated deployment, "P layout × workers / D layout × workers"
    /// for separate pools.
    public var deployment: String {
        disaggregated ? "P \(pools[0].layout) × \(pools[0].workers) / D \(pools[1].layout) × \(pools[1].workers)"
                      : (pools.first?.layout.description ?? "")
    }
}

public enum ServingError: Error, CustomStringConvertible {
    case invalid(String)
    case doesNotFit(String)

    public var description: String {
        switch self {
        case let .invalid(text), let .doesNotFit(text): text
        }
    }
}

public enum ServingEstimator {
    /// The estimate of `request` on its layout (or disaggregated pools), by simulation.
    public static func estimate(_ request: ServingRequest) throws -> ServingEstimate {
        try check(request)
        if let d = request.disaggregation { return try disaggregated(request, d) }
        guard let layout = request.base.layout else {
            return try best(request, maxTTFT: nil, maxTPOT: nil)
        }
        return try aggregated(request, layout: layout)
    }

    /// The layout of highest output tokens/s per GPU whose p90 TTFT and TPOT meet the limits.
    /// Every fitting layout is priced at the batch the concurrency implies by the steady-state
    /// estimator; six of the best by that measure are simulated (`simulationCandidates`; a
    /// simulation costs milliseconds, the steady state microseconds).
    public static func best(_ request: ServingRequest, maxTTFT: Double?, maxTPOT: Double?) throws -> ServingEstimate {
        try check(request)
        let ranked = rankedLayouts(request, maxTPOT: maxTPOT)
        guard !ranked.isEmpty else {
            throw ServingError.doesNotFit("no layout of \(request.base.model.id) fits \(request.base.cluster.gpuCount) × "
                + "\(request.base.cluster.gpu.id) at \(request.maxContext) tokens of context (see moesim plan)")
        }
        var best: ServingEstimate? = nil
        for layout in simulationCandidates(ranked, model: request.base.model) {
            var r = request
            r.base.layout = layout
            guard let e = try? aggregated(r, layout: layout) else { continue }
            if let maxTTFT, e.ttft.p90 > maxTTFT { continue }
            if let maxTPOT, e.tpot.p90 > maxTPOT { continue }
            if best == nil || e.outputTokensPerSecondPerGPU > (best?.outputTokensPerSecondPerGPU ?? 0) { best = e }
        }
        guard let best else { throw ServingError.doesNotFit("no layout meets the latency limits at p90") }
        return best
    }

    /// Six layouts of `ranked` (best first) worth simulating: the best of each replica size (GPUs
    /// of one stage's group × stages), up to four sizes, then the best of each attention width
    /// (the GPUs one prompt's attention is split over: tp, or 1 under data-parallel attention)
    /// not yet among them, then the next best whatever they are. The steady state misses what a
    /// closed loop adds, and most for the widest expert groups (a prompt on one rank of an
    /// expert-parallel group slows the whole group's step: a narrow replica can serve a tight
    /// TPOT they miss) and for narrow attention under long prompts (one GPU or two prefill a
    /// 120K-token prompt that a TP8 group splits eight ways: DeepSeek-R1 for 4 users within a
    /// 15 s TTFT on 8 H200s is served by TP8 alone, which shares its replica size with the
    /// steady state's favourites). Trying both kinds beside the favourites keeps a load that
    /// such a layout serves from going unanswered, and `capacity`'s "meets the targets" from
    /// falling as GPUs are added, which its bisection assumes.
    static func simulationCandidates(_ ranked: [Layout], model: ModelSpec) -> [Layout] {
        let isMoE = model.moe != nil
        var sizes = Set<Int>(), widths = Set<Int>(), layouts: [Layout] = []
        for layout in ranked where layouts.count < 4 {
            if sizes.insert(layout.groupSize(isMoE: isMoE) * layout.pp).inserted { layouts.append(layout) }
        }
        for layout in layouts { widths.insert(layout.attentionGroup) }
        for layout in ranked where layouts.count < 6 && !layouts.contains(layout) {
            if widths.insert(layout.attentionGroup).inserted { layouts.append(layout) }
        }
        return layouts + ranked.filter { !layouts.contains($0) }.prefix(6 - layouts.count)
    }

    /// The layouts that fit at the longest context, best first by the steady state's output
    /// tokens/s per GPU at the batch the concurrency implies (at most what fits and the engines'
    /// cap): how `best`, `capacity` and the open loop's default pick what to simulate. With a
    /// TPOT target, the layouts whose steady-state TPOT meets it come first: the fastest layouts
    /// per GPU are often the widest, whose steps are too slow for the target, and simulating only
    /// those would find nothing where a narrower layout serves the load (and make "meets the
    /// targets" fall as GPUs are added, which the capacity search's bisection assumes it does not).
    static func rankedLayouts(_ r: ServingRequest, maxTPOT: Double? = nil) -> [Layout] {
        let steady = steadyStates(r)
        guard let maxTPOT else { return steady.map(\.layout) }
        return steady.filter { $0.tpot <= maxTPOT }.map(\.layout) + steady.filter { $0.tpot > maxTPOT }.map(\.layout)
    }

    /// Every fitting layout's steady state at the batch the concurrency implies, fastest per GPU
    /// first.
    static func steadyStates(_ r: ServingRequest) -> [(layout: Layout, rate: Double, tpot: Double)] {
        let gpus = max(r.base.cluster.gpuCount, 1)
        return LayoutSearch.candidates(r.base).compactMap { layout in
            steadyState(r, base: r.base, layout: layout, gpus: gpus, sequencesPerGPU: Double(r.concurrency) / Double(gpus),
                        loadMTP: r.speculative != nil).map { (layout, $0.outputTokensPerSecondPerGPU, $0.timePerOutputToken) }
        }.sorted { $0.rate > $1.rate }
    }

    /// The steady state of `layout` for `base` (one worker's GPUs, or the deployment's) at the
    /// longest context with as many sequences as the load puts on its `gpus` (`sequencesPerGPU`
    /// of them per GPU), held to what fits and the engines' cap; nil when not one fits. The batch
    /// may be a fraction per GPU: a load lighter than the GPUs, or a tensor-parallel group that
    /// holds fewer sequences than it has GPUs (long contexts, where MLA's latent is whole on
    /// every rank).
    private static func steadyState(_ r: ServingRequest, base: EstimateRequest, layout: Layout, gpus: Int, sequencesPerGPU: Double,
                                    loadMTP: Bool) -> Estimate? {
        guard let pricer = try? StepPricer(base, layout: layout, context: r.maxContext, loadMTP: loadMTP), pricer.plan.fits,
              pricer.plan.maxConcurrentSequences >= 1 else {
            return nil
        }
        var priced = base
        priced.layout = layout
        priced.decodeBatchPerGPU = nil
        // The longest prompt and answer: the steady state at the longest context.
        priced.inputTokens = r.inputRange.tokens(base.inputTokens).upper
        priced.outputTokens = r.outputRange.tokens(base.outputTokens).upper
        let n = Double(max(gpus, 1))
        let sequences = min(max(sequencesPerGPU * n, 1), Double(pricer.plan.maxConcurrentSequences),
                            Double(r.maxBatchPerGPU ?? Estimator.maxBatchPerGPU) * n)
        return try? Estimator.estimate(priced, layout: layout, sequencesPerGPU: sequences / n)
    }

    static func check(_ request: ServingRequest) throws {
        let base = request.base
        do { try Estimator.check(base) } catch { throw ServingError.invalid("\(error)") }
        guard request.concurrency >= 1 else { throw ServingError.invalid("concurrency must be at least 1, got \(request.concurrency)") }
        guard request.concurrency <= 1_000_000 else {
            throw ServingError.invalid("concurrency \(request.concurrency) is more than this simulation takes (1,000,000)")
        }
        // Estimator.check bounds the lengths; serving also needs an answer.
        guard base.outputTokens >= 1 else { throw ServingError.invalid("serving needs at least 1 output token") }
        for (name, range) in [("input", request.inputRange), ("output", request.outputRange)] where !range.isValid {
            throw ServingError.invalid("the \(name) range must be 0 < lo ≤ hi ≤ 1, got \(range.lower),\(range.upper)")
        }
        if request.disaggregation != nil, request.outputRange.tokens(base.outputTokens).lower < 2 {
            throw ServingError.invalid("disaggregated serving needs at least 2 output tokens per request (the prefill pool emits the first)")
        }
        if let s = request.speculative {
            guard s.draftTokens >= 1, s.draftTokens <= 16 else {
                throw ServingError.invalid("MTP draft tokens must be 1 to 16, got \(s.draftTokens)")
            }
            guard s.acceptance >= 1, s.acceptance <= Double(s.draftTokens + 1), s.acceptance.isFinite else {
                throw ServingError.invalid("MTP acceptance (mean tokens per step) must be in [1, \(s.draftTokens + 1)], got \(s.acceptance)")
            }
        }
        if let n = request.benchmarkPrompts, !(request.concurrency...10_000_000).contains(n) {
            throw ServingError.invalid("a benchmark's prompts must be from the concurrency (\(request.concurrency)) to 10,000,000, got \(n)")
        }
        // Both ways of looking at new prompts less often: SGLang's, and priced for an aggregated engine.
        for (name, steps) in [("continuous decode steps", request.continuousDecodeSteps),
                              ("the scheduler's receive interval", request.schedulerRecvInterval)] {
            guard (1...ServingRequest.maxDecodeRun).contains(steps) else {
                throw ServingError.invalid("\(name) must be 1 to \(ServingRequest.maxDecodeRun) decode steps, got \(steps)")
            }
            guard steps == 1 || request.scheduler == .prefillFirst else {
                throw ServingError.invalid("\(name) is a setting of the prefill-first scheduler (SGLang's)")
            }
            guard steps == 1 || request.disaggregation == nil else {
                throw ServingError.invalid("\(name) is priced for an aggregated engine only, not for disaggregated pools")
            }
        }
        if let cap = request.maxBatchPerGPU, !(1...65_536).contains(cap) {
            throw ServingError.invalid("the engine's batch cap must be 1 to 65,536 requests per GPU, got \(cap)")
        }
        if let budget = request.tokenBudget, !(1...1_048_576).contains(budget) {
            throw ServingError.invalid("the token budget must be 1 to 1,048,576 tokens per step, got \(budget)")
        }
    }

    static func aggregated(_ request: ServingRequest, layout: Layout) throws -> ServingEstimate {
        // One worker's plan and step model, built once; each run gets it with empty state.
        let deployment = try ServingDeployment.aggregated(request, layout: layout, workers: 1)
        let replicas = max(deployment.pools.first?.workers ?? 1, 1)
        // Replicas are independent closed loops: n = N / R requests each (n + 1 on N mod R of them),
        // so one worker of each kind is simulated and weighted by how many there are.
        let n = request.concurrency / replicas, extra = request.concurrency % replicas
        var runs: [(ServingSimulation.Outcome, Double)] = []
        var pools: [PoolEstimate] = []
        var steps = 0
        for (count, weight) in [(n + 1, extra), (n, replicas - extra)] where count > 0 && weight > 0 {
            var d = deployment.fresh()
            var o = options(request, measuring: count)
            // A benchmark's prompts split over the replicas like its requests in flight.
            o.benchmarkPrompts = request.benchmarkPrompts.map {
                max(count, Int((Double($0) * Double(count) / Double(max(request.concurrency, 1))).rounded()))
            }
            var sim = ServingSimulation(workers: d.workers, entry: d.entry, exit: d.exit, transferSeconds: { _ in 0 },
                                        mode: closedLoop(request, requests: count), options: o)
            let outcome = try run(&sim)
            d.record(outcome)
            if pools.isEmpty { pools = d.pools }
            steps += outcome.steps
            runs.append((outcome, Double(weight)))
        }
        return summarize(request, runs: runs, pools: pools, steps: steps, transfer: nil)
    }

    /// The request as one worker of a pool sees it: its GPUs as the cluster.
    static func workerRequest(_ request: ServingRequest, _ pool: Disaggregation.Pool) throws -> ServingRequest {
        var sub = request
        sub.base.cluster = try Cluster(gpu: request.base.cluster.gpu, gpuCount: pool.gpusPerWorker,
                                       gpusPerNode: min(request.base.cluster.gpusPerNode, pool.gpusPerWorker))
        return sub
    }

    /// Layouts for pools that name none: for the prefill pool, the layout of one worker with the
    /// highest steady-state prefill tokens/s per GPU; for the decode pool, the highest decode
    /// tokens/s per GPU at the batch the concurrency puts on it. Only layouts that fill one worker
    /// (no replicas) and fit at the longest context compete.
    public static func poolLayouts(_ request: ServingRequest, _ d: Disaggregation) throws -> Disaggregation {
        var resolved = d
        for (name, isPrefill) in [("prefill", true), ("decode", false)] {
            let pool = isPrefill ? d.prefill : d.decode
            guard pool.layout == nil else { continue }
            let sub = try workerRequest(request, pool)
            var best: (Layout, Double)? = nil
            for layout in LayoutSearch.candidates(sub.base) {
                guard (try? layout.validate(for: sub.base.model, gpus: pool.gpusPerWorker)) == 1,
                      let steady = steadyState(request, base: sub.base, layout: layout, gpus: pool.gpusPerWorker,
                                               sequencesPerGPU: Double(request.concurrency) / Double(max(d.decode.gpus, 1)),
                                               loadMTP: !isPrefill && request.speculative != nil) else { continue }
                let score = isPrefill ? steady.inputTokensPerSecondPerGPU : steady.outputTokensPerSecondPerGPU
                if score > (best?.1 ?? 0) { best = (layout, score) }
            }
            guard let best else {
                throw ServingError.doesNotFit("no layout of \(request.base.model.id) fits one \(name) worker of \(pool.gpusPerWorker) "
                    + "\(request.base.cluster.gpu.id) GPUs at \(request.maxContext) tokens of context")
            }
            if isPrefill { resolved.prefill.layout = best.0 } else { resolved.decode.layout = best.0 }
        }
        return resolved
    }

    static func disaggregated(_ request: ServingRequest, _ asked: Disaggregation) throws -> ServingEstimate {
        var d = try ServingDeployment.disaggregated(request, asked)
        let transfer = d.transfer
        var o = options(request, measuring: request.concurrency)
        o.benchmarkPrompts = request.benchmarkPrompts
        var sim = ServingSimulation(workers: d.workers, entry: d.entry, exit: d.exit, transferSeconds: { transfer?.seconds($0) ?? 0 },
                                    mode: closedLoop(request, requests: request.concurrency), options: o)
        let outcome = try run(&sim)
        d.record(outcome)
        return summarize(request, runs: [(outcome, 1)], pools: d.pools, steps: outcome.steps,
                         transfer: transfer?.seconds(request.base.inputTokens))
    }

    /// The layout's plan at the longest context, or an error that says what does not fit.
    static func pricerThatFits(_ request: ServingRequest, layout: Layout, pool: String) throws -> StepPricer {
        var base = request.base
        base.layout = layout
        let pricer = try StepPricer(base, layout: layout, context: request.maxContext, loadMTP: request.speculative != nil)
        guard pricer.plan.fits else {
            throw ServingError.doesNotFit("\(layout) does not fit \(pool) at \(request.maxContext) tokens of context: "
                + (pricer.plan.reason ?? "no room"))
        }
        return pricer
    }

    /// A worker's token budget per step (one per attention group and pipeline micro-batch), its
    /// KV pool in tokens (the sequences of the longest context that fit, times that context) and
    /// its running cap (the request's engine cap on workers that decode, else
    /// `Estimator.maxBatchPerGPU`, per GPU of a stage); `capacity` is the requests of the longest
    /// context that fit at once. A worker of pp stages keeps pp micro-batches in flight, each
    /// formed within its own budget (vLLM schedules `max_concurrent_batches` = pp batches of up to
    /// `max_num_batched_tokens` each, SGLang each micro-batch within its chunked prefill size), so
    /// one step (pp stage times) takes pp budgets; a prompt gives one chunk to a step, or up to pp
    /// where the engine pipelines its chunks (`ServingRequest.pipelinedPromptChunks`).
    static func workerShape(_ request: ServingRequest, pricer: StepPricer, gpusPerWorker: Int, decodes: Bool = true)
        -> (budget: Int, groupBudget: Int, capacity: Int, kvTokens: Double, maxRunning: Int) {
        let layout = pricer.layout
        let groups = max(1, gpusPerWorker / (layout.attentionGroup * layout.pp))
        let group = request.tokenBudget ?? SchedulerPolicy.defaultTokenBudget(request.base.cluster.gpu)
        let memory = pricer.plan.maxConcurrentSequences / max(pricer.plan.replicas, 1)
        let perGPU = decodes ? request.maxBatchPerGPU ?? Estimator.maxBatchPerGPU : Estimator.maxBatchPerGPU
        let cap = perGPU * max(1, gpusPerWorker / layout.pp)
        return (group * groups * layout.pp, group, max(1, min(memory, cap)), Double(memory) * Double(request.maxContext), cap)
    }

    /// The simulation options a serving request sets (both loops); a closed loop measures
    /// max(2N, 64) requests after its warm-up.
    static func options(_ request: ServingRequest, measuring requests: Int = 0) -> ServingSimulation.Options {
        var options = ServingSimulation.Options()
        options.tokensPerStep = request.speculative?.acceptance ?? 1
        options.verifiedPerStep = 1 + (request.speculative?.draftTokens ?? 0)
        options.policy = request.scheduler
        options.continuousDecodeSteps = request.continuousDecodeSteps
        options.recvInterval = request.schedulerRecvInterval
        options.chunkedPrefill = request.chunkedPrefill
        options.pipelinedPromptChunks = request.pipelinedPromptChunks
        options.overlapSchedule = request.overlapSchedule
        options.firstTokenWaitsForPrefillResponse = request.router?.firstTokenWaitsForPrefillResponse ?? false
        options.measuredTarget = max(2 * requests, 64)
        return options
    }

    /// The prompt and answer lengths of a request's closed loop or synthetic arrivals.
    static func requestLengths(_ request: ServingRequest, seed: UInt64? = nil) -> RequestLengths {
        RequestLengths(seed: seed ?? request.seed, prompt: request.inputRange.tokens(request.base.inputTokens),
                       output: request.outputRange.tokens(request.base.outputTokens), prefixHitRate: request.base.prefixCacheHitRate)
    }

    static func closedLoop(_ request: ServingRequest, requests: Int) -> ServingSimulation.Mode {
        .closed(count: requests, lengths: requestLengths(request))
    }

    static func run(_ sim: inout ServingSimulation) throws -> ServingSimulation.Outcome {
        do { return try sim.run() } catch let ServingSimulation.Failure.stalled(text) { throw ServingError.invalid(text) }
    }

    static func summarize(_ request: ServingRequest, runs: [(ServingSimulation.Outcome, Double)], pools: [PoolEstimate],
                          steps: Int, transfer: Double?) -> ServingEstimate {
        let gpus = Double(request.base.cluster.gpuCount)
        var output = 0.0, input = 0.0, completions = 0.0, batch = 0.0
        var ttft = LatencyHistogram(), tpot = LatencyHistogram(), e2e = LatencyHistogram()
        var measured = 0
        // Board power: each step at its power, every simulated GPU idle between its steps at idle
        // power, and the GPUs no run stands for (replicas without a request) idle throughout.
        let power = request.base.cluster.gpu.power
        var boardWatts = 0.0, simulatedGPUs = 0.0
        for (o, weight) in runs {
            let window = max(o.windowSeconds, 1e-30)
            if let power {
                let span = o.windowSeconds * Double(o.gpus)
                boardWatts += weight * (o.stepJoules + power.idle * max(0, span - o.busyGPUSeconds)) / window
                simulatedGPUs += weight * Double(o.gpus)
            }
            output += weight * o.outputTokens / window
            input += weight * o.inputTokens / window
            completions += weight * Double(o.windowCompletions) / window
            batch += weight * o.decodeSequenceSeconds / window
            // Each run's samples stand for the requests its `weight` replicas complete.
            let each = weight * Double(o.windowCompletions) / window / max(o.e2e.total, 1)
            ttft.merge(o.ttft, weight: each)
            tpot.merge(o.tpot, weight: each)
            e2e.merge(o.e2e, weight: each)
            // A benchmark replay measures every prompt of every replica it stands for.
            measured += request.benchmarkPrompts != nil ? Int(weight) * o.measured : o.measured
        }
        let tpotP = Percentiles(tpot) ?? .zero
        let outputRate = output / gpus, inputRate = input / gpus
        let price = request.base.gpuHourPrice ?? request.base.cluster.gpu.gpuHourPrice
        let decodeGPUs = Double(pools.last?.gpus ?? Int(gpus))
        let energy = power.flatMap { power -> EnergyEstimate? in
            guard simulatedGPUs > 0 else { return nil }
            let watts = (boardWatts + power.idle * max(0, gpus - simulatedGPUs)) / gpus
            var e = EnergyEstimate(power: power, settings: request.base.energy, outputGPUWatts: watts, inputGPUWatts: watts,
                                   outputTokensPerSecondPerGPU: outputRate, inputTokensPerSecondPerGPU: inputRate)
            if completions > 0 { e.joulesPerRequest = e.watts(scope: .facility) * gpus / completions }
            return e
        }
        return ServingEstimate(
            request: request, gpus: Int(gpus), requestsPerSecond: completions,
            outputTokensPerSecondPerGPU: outputRate, inputTokensPerSecondPerGPU: inputRate,
            outputTokensPerSecondPerUser: tpotP.median > 0 ? 1 / tpotP.median : 0,
            ttft: Percentiles(ttft) ?? .zero, tpot: tpotP, endToEnd: Percentiles(e2e) ?? .zero,
            meanDecodeBatchPerDecodeGPU: batch / decodeGPUs,
            pools: pools, disaggregated: pools.count > 1, kvTransferSeconds: transfer, gpuHourPrice: price,
            // Every GPU of the deployment is paid for; output and input tokens are each charged
            // the whole bill, as the steady-state estimate does.
            costPerMillionOutputTokens: price.map { $0 * gpus / 3600 / max(output, 1e-30) * 1e6 },
            costPerMillionInputTokens: price.map { $0 * gpus / 3600 / max(input, 1e-30) * 1e6 },
            energy: energy, measuredRequests: measured, simulatedSteps: steps)
    }
}
