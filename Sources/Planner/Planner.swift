import Foundation
import Hardware
import ModelSpec

/// One layout evaluated: memory of its fullest GPU and how many sequences it holds.
public struct LayoutPlan: Sendable, Equatable {
    public var layout: Layout
    public var replicas: Int
    /// The GPU with the least room (the fullest pipeline stage), holding the requested sequences.
    public var memory: GPUMemory
    /// Sequences of the requested context the whole cluster can hold at once.
    public var maxConcurrentSequences: Int
    public var fits: Bool
    /// Why it does not fit, when it does not.
    public var reason: String?
    public var placement: ExpertPlacement?
    public var traffic: Traffic
}

public struct Plan: Sendable, Equatable {
    public var layouts: [LayoutPlan]
    public var reason: String?

    public var feasible: Bool { layouts.first?.fits ?? false }
    public var best: LayoutPlan? { layouts.first }
}

/// Options of a plan beyond the workload.
public struct PlanOptions: Sendable, Equatable {
    public var layout: Layout?
    public var expertLoad: ExpertPlacement.LoadDistribution
    /// Extra expert slots for EPLB-style balancing, spread over the expert-parallel group.
    public var redundantExperts: Int
    /// Deepest pipeline to consider when searching.
    public var maxStages: Int
    /// Load the multi-token-prediction modules (speculative decoding with MTP): their weights
    /// shard like the main model's, in proportion, on the last pipeline stage.
    public var loadMTP: Bool = false

    public init(layout: Layout? = nil, expertLoad: ExpertPlacement.LoadDistribution = .uniform,
                redundantExperts: Int = 0, maxStages: Int = 16) {
        self.layout = layout
        self.expertLoad = expertLoad
        self.redundantExperts = redundantExperts
        self.maxStages = maxStages
    }
}

public enum Planner {
    /// Evaluates one layout (which must be valid for the model and GPU count).
    public static func evaluate(_ model: ModelSpec, cluster: Cluster, workload: Workload, layout: Layout,
                                options: PlanOptions = PlanOptions()) throws -> LayoutPlan {
        try workload.check()
        let replicas = try layout.validate(for: model, gpus: cluster.gpuCount, redundantExperts: options.redundantExperts)
        let total = Double(cluster.gpu.memoryBytes)
        let reserved = total * workload.memoryReserve
        let activations = MemoryModel.activationBytesPerGPU(model, layout: layout, chunk: workload.prefillChunk)
        var placement: ExpertPlacement? = nil
        var expertsOnGPU: Int? = nil
        if let moe = model.moe {
            let extra = options.redundantExperts
            placement = extra > 0
                ? ExpertPlacement.balanced(experts: moe.routedExperts, gpus: layout.ep, redundant: extra, distribution: options.expertLoad)
                : ExpertPlacement.contiguous(experts: moe.routedExperts, gpus: layout.ep, distribution: options.expertLoad)
            expertsOnGPU = placement?.experts.map(\.count).max()
        }
        let attentionGroups = cluster.gpuCount / (layout.pp * layout.attentionGroup)
        let perGroup = (workload.concurrency + attentionGroups - 1) / attentionGroups
        var worst: GPUMemory? = nil
        var capacity = Int.max
        for stage in 0..<layout.pp {
            var weights = MemoryModel.weightBytesPerGPU(model, layout: layout, stage: stage, format: workload.weights,
                                                        experts: expertsOnGPU)
            if options.loadMTP, stage == layout.pp - 1 {
                weights += MemoryModel.mtpBytesPerGPU(model, layout: layout, format: workload.weights, experts: expertsOnGPU)
            }
            let kvPerSequence = MemoryModel.kvBytesPerSequencePerGPU(model, layout: layout, stage: stage,
                                                                     context: workload.context, format: workload.kvCache)
            let room = total - weights - activations - reserved
            // At most 10^12 sequences a GPU (a model without a KV cache "holds" unboundedly many).
            let sequences = room <= 0 ? 0 : (kvPerSequence > 0 ? Int(min(room / kvPerSequence, 1e12)) : 1_000_000_000_000)
            capacity = min(capacity, sequences)
            let memory = GPUMemory(weights: weights, kvCache: Double(perGroup) * kvPerSequence,
                                   activations: activations, reserved: reserved, total: total)
            if memory.free < (worst?.free ?? .infinity) { worst = memory }
        }
        let memory = worst ?? GPUMemory(weights: 0, kvCache: 0, activations: activations, reserved: reserved, total: total)
        let maxSequences = capacity * attentionGroups
        let fits = memory.weights + memory.activations + memory.reserved <= total
            && maxSequences >= max(1, workload.concurrency)
        var reason: String? = nil
        if memory.weights + memory.activations + memory.reserved > total {
            reason = "weights need \(gb(memory.weights)) per GPU, activations \(gb(memory.activations)) and the reserve "
                + "\(gb(reserved)): more than the \(gb(total)) of one \(cluster.gpu.id)"
        } else if !fits {
            reason = "holds \(maxSequences) sequences of \(workload.context.formatted()) tokens, \(workload.concurrency) requested"
        }
        let dispatchBytes = Traffic.dispatchBytes(for: workload.weights)
        return LayoutPlan(layout: layout, replicas: replicas, memory: memory, maxConcurrentSequences: maxSequences,
                          fits: fits, reason: reason, placement: placement,
                          traffic: Traffic.of(model, layout: layout, cluster: cluster, dispatchBytes: dispatchBytes))
    }

    /// All valid layouts (or the one asked for), those that fit first, most sequences first; an
    /// infeasible plan carries a reason with the changes that would make it fit.
    public static func plan(_ model: ModelSpec, cluster: Cluster, workload: Workload,
                            options: PlanOptions = PlanOptions(), alternatives: [HardwareSpec] = []) throws -> Plan {
        let plans = try rankedLayouts(model, cluster: cluster, workload: workload, options: options)
        guard let best = plans.first else {
            return Plan(layouts: [], reason: "no layout divides \(model.id) over \(cluster.gpuCount) GPUs")
        }
        var plan = Plan(layouts: plans, reason: nil)
        if !plan.feasible {
            plan.reason = explain(model, cluster: cluster, workload: workload, best: best, options: options,
                                  alternatives: alternatives)
        }
        return plan
    }

    /// The evaluated layouts, ranked, without an explanation (what the searches below use).
    static func rankedLayouts(_ model: ModelSpec, cluster: Cluster, workload: Workload,
                              options: PlanOptions) throws -> [LayoutPlan] {
        let layouts = options.layout.map { [$0] }
            ?? Layout.enumerate(for: model, gpus: cluster.gpuCount, maxStages: options.maxStages,
                                redundantExperts: options.redundantExperts)
        return try layouts.map { try evaluate(model, cluster: cluster, workload: workload, layout: $0, options: options) }
            .sorted(by: ranksBefore)
    }

    static func fits(_ model: ModelSpec, cluster: Cluster, workload: Workload, options: PlanOptions) -> Bool {
        (try? rankedLayouts(model, cluster: cluster, workload: workload, options: options))?.first?.fits ?? false
    }

    /// Fitting layouts first; then more sequences; then fewer stages, less tensor parallelism.
    static func ranksBefore(_ a: LayoutPlan, _ b: LayoutPlan) -> Bool {
        if a.fits != b.fits { return a.fits }
        if a.maxConcurrentSequences != b.maxConcurrentSequences { return a.maxConcurrentSequences > b.maxConcurrentSequences }
        if a.memory.free != b.memory.free { return a.memory.free > b.memory.free }
        if a.layout.pp != b.layout.pp { return a.layout.pp < b.layout.pp }
        if a.layout.tp != b.layout.tp { return a.layout.tp < b.layout.tp }
        return a.layout.description < b.layout.description
    }

    /// The smallest GPU count (whole nodes past one node) on which some layout fits, up to `limit`.
    public static func minimumGPUs(_ model: ModelSpec, gpu: HardwareSpec, gpusPerNode: Int? = nil, workload: Workload,
                                   options: PlanOptions = PlanOptions(), limit: Int = 4096) throws -> Int? {
        try workload.check()
        let limit = min(max(limit, 1), Cluster.maxGPUs)
        let perNode = gpusPerNode ?? gpu.scaleUpDomain
        guard perNode >= 1 else { throw LayoutError(message: "GPUs per node must be at least 1, got \(perNode)") }
        // Quick lower bound: the weights and every sequence's cache, each stored at least once, must
        // fit in the usable memory of all GPUs (an absurd concurrency ends here, not after
        // evaluating every layout of every count up to the limit).
        let usable = Double(gpu.memoryBytes) * (1 - workload.memoryReserve)
        let needed = Double(model.weightBytes(workload.weights))
            + Double(workload.concurrency) * Double(model.kvCacheBytes(context: workload.context, format: workload.kvCache))
        let lower = max(1, Int(min(needed / usable, Double(limit) + 1)))
        guard lower <= limit else { return nil }
        var candidates = (lower..<max(lower, min(perNode, limit + 1))).map { $0 }
        candidates += stride(from: perNode, through: limit, by: perNode).filter { $0 + perNode > lower }
        for n in candidates {
            let cluster = try Cluster(gpu: gpu, gpuCount: n, gpusPerNode: perNode)
            var narrowed = options
            narrowed.layout = nil
            if fits(model, cluster: cluster, workload: workload, options: narrowed) { return n }
        }
        return nil
    }

    static func explain(_ model: ModelSpec, cluster: Cluster, workload: Workload, best: LayoutPlan,
                        options: PlanOptions, alternatives: [HardwareSpec]) -> String {
        let g = cluster.gpu
        let weights = Double(model.weightBytes(workload.weights))
        let usable = Double(cluster.gpuCount) * Double(g.memoryBytes) * (1 - workload.memoryReserve)
        var text: String
        if weights > usable {
            text = "weights need \(gb(weights)) (\(model.weightsLabel(workload.weights))), \(cluster.gpuCount) × \(g.id) hold "
                + "\(gb(usable)) after the \(Int((workload.memoryReserve * 100).rounded()))% reserve"
        } else if best.reason?.hasPrefix("weights") == true {
            text = "no layout spreads the weights evenly enough: " + (best.reason ?? "")
        } else {
            text = "\(workload.concurrency) sequences of \(workload.context.formatted()) tokens need more KV cache than fits: "
                + "the best layout (\(best.layout)) holds \(best.maxConcurrentSequences)"
        }
        var fixes: [String] = []
        if let n = try? minimumGPUs(model, gpu: g, gpusPerNode: cluster.gpusPerNode, workload: workload, options: options) {
            fixes.append("use ≥ \(n) GPUs")
        }
        // `--weights F` stores every matrix in F, the experts included: try it that way.
        var uniform = model
        uniform.expertWeightFormat = nil
        for format in [WeightFormat.fp8, .nvfp4, .int4] where format.bytes(rows: 128, cols: 128) < workload.weights.bytes(rows: 128, cols: 128)
            && format.computeFormat != workload.weights.computeFormat {
            var lighter = workload
            lighter.weights = format
            if Double(uniform.weightBytes(format)) < weights, fits(uniform, cluster: cluster, workload: lighter, options: options) {
                fixes.append("\(format == .nvfp4 ? "fp4" : format.rawValue) weights")
                break
            }
        }
        if workload.kvCache == .bf16 && !(weights > usable) {
            var lighter = workload
            lighter.kvCache = .fp8
            if fits(model, cluster: cluster, workload: lighter, options: options) {
                fixes.append("an fp8 KV cache")
            }
        }
        for other in alternatives where other.id != g.id && other.memoryBytes > g.memoryBytes {
            if let bigger = try? Cluster(gpu: other, gpuCount: cluster.gpuCount, gpusPerNode: min(cluster.gpusPerNode, other.scaleUpDomain)),
               fits(model, cluster: bigger, workload: workload, options: options) {
                fixes.append(other.id)
                break
            }
        }
        if let last = fixes.last {
            text += ": " + (fixes.count > 1 ? fixes.dropLast().joined(separator: ", ") + " or " + last : last)
        }
        return text
    }

    static func gb(_ bytes: Double) -> String {
        bytes >= 1e12 ? String(format: "%.2f TB", bytes / 1e12) : String(format: "%.0f GB", bytes / 1e9)
    }
}
