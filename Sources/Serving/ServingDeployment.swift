import Estimator
import Hardware
import Planner

/// The workers of a deployment, ready to simulate: every engine instance with its step model,
/// token budget and KV pool, which of them take new requests (`entry`) and which decode the
/// prompts of others (`exit`), and the pools they form.
struct ServingDeployment {
    var workers: [ServingWorker] = []
    var entry: [Int] = []
    var exit: [Int] = []
    var pools: [PoolEstimate] = []
    var transfer: KVTransfer? = nil

    /// `count` workers of an aggregated layout (each prefills and decodes its own requests):
    /// every replica for an open loop, one for each run of a symmetric closed loop.
    static func aggregated(_ request: ServingRequest, layout: Layout, workers count: Int? = nil) throws -> ServingDeployment {
        let pricer = try ServingEstimator.pricerThatFits(request, layout: layout, pool: "the deployment")
        let replicas = pricer.plan.replicas
        let gpusPerWorker = request.base.cluster.gpuCount / replicas
        var d = ServingDeployment()
        d.addPool(role: .both, pricer: pricer, request: request, gpus: request.base.cluster.gpuCount, workers: replicas,
                  simulated: count ?? replicas, gpusPerWorker: gpusPerWorker)
        return d
    }

    /// Every prefill and decode worker of separate pools; layouts the pools do not name are
    /// chosen (`ServingEstimator.poolLayouts`).
    static func disaggregated(_ request: ServingRequest, _ asked: Disaggregation) throws -> ServingDeployment {
        guard asked.prefill.gpus + asked.decode.gpus == request.base.cluster.gpuCount else {
            throw ServingError.invalid("the prefill (\(asked.prefill.gpus)) and decode (\(asked.decode.gpus)) GPUs must add up to "
                + "the deployment's \(request.base.cluster.gpuCount)")
        }
        for (name, pool) in [("prefill", asked.prefill), ("decode", asked.decode)] {
            guard pool.workers >= 1, pool.gpus >= pool.workers, pool.gpus % pool.workers == 0 else {
                throw ServingError.invalid("the \(name) pool's \(pool.gpus) GPUs do not divide into \(pool.workers) workers")
            }
        }
        let resolved = try ServingEstimator.poolLayouts(request, asked)
        var d = ServingDeployment()
        for (role, pool) in [(ServingWorker.Role.prefill, resolved.prefill), (.decode, resolved.decode)] {
            let name = role == .prefill ? "prefill" : "decode"
            guard let layout = pool.layout else { throw ServingError.invalid("the \(name) pool has no layout") }
            let pricer = try ServingEstimator.pricerThatFits(try ServingEstimator.workerRequest(request, pool), layout: layout,
                                                             pool: "each \(name) worker (\(pool.gpusPerWorker) GPUs)")
            guard pricer.plan.replicas == 1 else {
                throw ServingError.invalid("the \(name) layout \(layout) covers \(pool.gpusPerWorker / pricer.plan.replicas) GPUs, "
                    + "not the \(pool.gpusPerWorker) of one worker: give workers = GPUs / layout size")
            }
            d.addPool(role: role, pricer: pricer, request: request, gpus: pool.gpus, workers: pool.workers,
                      simulated: pool.workers, gpusPerWorker: pool.gpusPerWorker)
        }
        d.transfer = KVTransfer(request, prefill: resolved.prefill, decode: resolved.decode)
        return d
    }

    private mutating func addPool(role: ServingWorker.Role, pricer: StepPricer, request: ServingRequest, gpus: Int, workers: Int,
                                  simulated: Int, gpusPerWorker: Int) {
        let shape = ServingEstimator.workerShape(request, pricer: pricer, gpusPerWorker: gpusPerWorker, decodes: role != .prefill)
        // Prefill workers never decode: no MTP drafts in their steps.
        let steps = StepCache(pricer: pricer, gpusPerWorker: gpusPerWorker, speculative: role == .prefill ? nil : request.speculative,
                              microBatchTokens: shape.groupBudget)
        for _ in 0..<simulated {
            if role != .decode { entry.append(self.workers.count) }
            if role != .prefill { exit.append(self.workers.count) }
            self.workers.append(ServingWorker(role: role, steps: steps, budget: shape.budget, groupBudget: shape.groupBudget,
                                              kvCapacity: shape.kvTokens, maxRunning: shape.maxRunning))
        }
        pools.append(PoolEstimate(gpus: gpus, workers: workers, layout: pricer.layout, plan: pricer.plan,
                                  capacityPerWorker: shape.capacity, inputTokensPerSecondPerGPU: 0,
                                  outputTokensPerSecondPerGPU: 0, busy: 0))
    }

    var disaggregated: Bool { pools.count == 2 }

    /// The same deployment with empty workers, for another run: the plans and step models are
    /// built once.
    func fresh() -> ServingDeployment {
        var d = self
        d.workers = workers.map { $0.fresh() }
        return d
    }

    /// After a run: each pool's tokens per GPU over the measured window and the share of the
    /// elapsed time its workers spent in steps. A disaggregated deployment's prefill pool
    /// computes every prompt and its decode pool emits the answers.
    mutating func record(_ outcome: ServingSimulation.Outcome) {
        let window = max(outcome.windowSeconds, 1e-30)
        let elapsed = max(workers.map(\.clock).max() ?? 0, 1e-30)
        var first = 0
        for i in pools.indices {
            let members = workers[first..<(first + (disaggregated ? pools[i].workers : workers.count))]
            first += members.count
            // The GPUs of the workers simulated (a symmetric closed loop runs one of the replicas).
            let gpus = Double(pools[i].gpus) * Double(members.count) / Double(pools[i].workers)
            pools[i].busy = members.reduce(0) { $0 + $1.busySeconds } / Double(members.count) / elapsed
            if !disaggregated || i == 0 { pools[i].inputTokensPerSecondPerGPU = outcome.inputTokens / window / gpus }
            if !disaggregated || i == 1 { pools[i].outputTokensPerSecondPerGPU = outcome.outputTokens / window / gpus }
        }
    }
}
