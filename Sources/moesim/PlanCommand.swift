import ArgumentParser
import Hardware
import ModelSpec
import Planner

struct PlanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Fit a model onto a cluster: layouts, memory per GPU, sequences that fit.",
        discussion: """
        Lists the layouts that divide the model over the GPUs, best first (most concurrent \
        sequences of the requested context), with the memory of the fullest GPU. A request that \
        does not fit gets the reason and what would make it fit.

        Examples:
          moesim plan                     # kimi-k2 on 16 × H200, fp8, 128K
          moesim plan --model deepseek-v3 --gpu h100-sxm --gpus 8
          moesim plan --model kimi-k2 --gpus 16 --concurrency 32 \\
              --layout attention=dp,tp=1,ep=16,pp=1
          moesim plan --model kimi-k2 --gpu b200 --weights fp4 --min-gpus --json
        """
    )

    @OptionGroup var deployment: DeploymentOptions

    @Option(help: "Context length per sequence, in tokens.")
    var context = 131_072

    @Option(help: "Sequences of the full context to hold at once, across the cluster.")
    var concurrency = 1

    @Flag(help: "Find the smallest GPU count that fits the context and concurrency.")
    var minGpus = false

    @Option(help: "Extra expert slots for EPLB-style balancing (0: none).")
    var redundantExperts = 0

    @Option(help: "Zipf skew of expert popularity for the placement (0: uniform).")
    var expertSkew = 0.0

    @Option(help: "Layouts to list in the table.")
    var top = 10

    @Flag(help: "Price contexts past the model's max_position_embeddings instead of refusing them.")
    var allowLongerContext = false

    @OptionGroup var output: OutputOptions

    func validate() throws {
        guard context >= 1 else { throw ValidationError("--context must be at least 1, got \(context)") }
        guard concurrency >= 1 else { throw ValidationError("--concurrency must be at least 1, got \(concurrency)") }
        guard redundantExperts >= 0 else { throw ValidationError("--redundant-experts must not be negative") }
        guard expertSkew >= 0 else { throw ValidationError("--expert-skew must not be negative") }
        guard top >= 1 else { throw ValidationError("--top must be at least 1") }
    }

    func run() throws {
        let (model, weights) = try deployment.loadModel()
        let gpu = try deployment.loadGPU()
        try ContextLimit.check(context, model: model, allowLonger: allowLongerContext)
        let workload = Workload(weights: weights, kvCache: deployment.kvFormat,
                                context: context, concurrency: concurrency, memoryReserve: deployment.memory.reserve)
        let options = PlanOptions(layout: try deployment.parsedLayout(),
                                  expertLoad: expertSkew > 0 ? .zipf(expertSkew) : .uniform,
                                  redundantExperts: redundantExperts)
        var gpus = deployment.gpuCount
        var minimum: Int? = nil
        if minGpus {
            guard let n = try Planner.minimumGPUs(model, gpu: gpu, gpusPerNode: deployment.gpusPerNode,
                                                  workload: workload, options: options) else {
                throw ValidationError("\(model.id) does not fit on up to 4096 \(gpu.id) GPUs with this workload")
            }
            minimum = n
            gpus = n
        }
        let cluster = try Cluster(gpu: gpu, gpuCount: gpus, gpusPerNode: deployment.gpusPerNode)
        let plan = try Planner.plan(model, cluster: cluster, workload: workload, options: options,
                                    alternatives: deployment.alternatives())
        if output.json {
            var json: [String: Any] = [
                "model": model.id, "gpu": gpu.id, "gpus": gpus, "gpus_per_node": cluster.gpusPerNode,
                "weights": workload.weights.rawValue, "kv_cache": workload.kvCache.rawValue,
                "context": workload.context, "concurrency": workload.concurrency, "feasible": plan.feasible,
                "layouts": plan.layouts.map(PlanJSON.layout),
            ]
            if let best = plan.best {
                json["best"] = PlanJSON.layout(best)
                json["memory_per_gpu"] = PlanJSON.memory(best.memory)
                json["max_concurrent_sequences"] = best.maxConcurrentSequences
            }
            if let reason = plan.reason { json["reason"] = reason }
            json["expert_weights"] = (model.expertWeightFormat ?? workload.weights).rawValue
            json["attention_weights"] = model.attentionWeightsName(workload.weights)
            if let minimum { json["min_gpus"] = minimum }
            try Output.printJSON(json)
            return
        }
        print("\(model.id) on \(gpus) × \(gpu.id) (\(cluster.nodes) node\(cluster.nodes == 1 ? "" : "s") of \(cluster.scaleUpGroup)), "
            + "\(model.weightsLabel(workload.weights)), \(workload.kvCache.rawValue) KV cache, "
            + "\(Output.grouped(workload.context))-token context × \(workload.concurrency)")
        if let minimum { print("smallest GPU count that fits: \(minimum)") }
        guard let best = plan.best else {
            print("infeasible: \(plan.reason ?? "no layout")")
            return
        }
        if plan.feasible {
            print("feasible: best layout \(best.layout) (\(best.replicas) replica\(best.replicas == 1 ? "" : "s")), "
                + "holds \(Output.grouped(best.maxConcurrentSequences)) sequences of \(Output.grouped(workload.context)) tokens")
        } else {
            print("infeasible: \(plan.reason ?? best.reason ?? "")")
        }
        print("")
        PlanTable.printMemory(best.memory, gpu: gpu)
        if let placement = best.placement {
            print("expert load: busiest GPU at \(Output.fixed(placement.imbalance, 2)) × the mean "
                + "(\(placement.experts.map(\.count).max() ?? 0) expert slots per GPU)")
        }
        print("traffic per token (whole model): \(Output.bytes(best.traffic.scaleUp)) over scale-up links, "
            + "\(Output.bytes(best.traffic.scaleOut)) over the network")
        print("")
        let shown = plan.layouts.prefix(top)
        Output.printColumns(
            header: ["layout", "replicas", "weights/GPU", "free/GPU", "sequences", "fits"],
            rows: shown.map { p in
                [p.layout.description, "\(p.replicas)", Output.bytes(p.memory.weights), Output.bytes(p.memory.free),
                 Output.grouped(p.maxConcurrentSequences), p.fits ? "yes" : "no"]
            })
        if plan.layouts.count > shown.count { print("  … \(plan.layouts.count - shown.count) more layouts (--top N, --json)") }
    }
}

enum PlanJSON {
    static func layout(_ p: LayoutPlan) -> [String: Any] {
        var json: [String: Any] = [
            "attention": p.layout.attention.rawValue, "tp": p.layout.tp, "ep": p.layout.ep, "pp": p.layout.pp,
            "moe_tp": p.layout.moeTP, "replicas": p.replicas, "description": p.layout.description,
            "fits": p.fits, "max_concurrent_sequences": p.maxConcurrentSequences, "memory_per_gpu": memory(p.memory),
            "traffic_per_token": [
                "scale_up_bytes": p.traffic.scaleUp, "scale_out_bytes": p.traffic.scaleOut,
                "components": p.traffic.components.map {
                    ["name": $0.name, "scale_up_bytes": $0.scaleUp, "scale_out_bytes": $0.scaleOut] as [String: Any]
                },
            ] as [String: Any],
        ]
        if let placement = p.placement { json["expert_imbalance"] = placement.imbalance }
        if let reason = p.reason { json["reason"] = reason }
        return json
    }

    static func memory(_ m: GPUMemory) -> [String: Any] {
        ["weights": Int(m.weights), "kv_cache": Int(m.kvCache), "activations": Int(m.activations),
         "reserved": Int(m.reserved), "free": Int(m.free), "total": Int(m.total)]
    }
}

enum PlanTable {
    /// One line per GPU memory: a 60-column bar of weights (W), KV cache (K), activations (A),
    /// reserve (R) and free space (·), then the figures. An over-full GPU is drawn to the scale of
    /// what it was asked to hold, with a '|' where its memory ends.
    static func printMemory(_ m: GPUMemory, gpu: HardwareSpec) {
        let width = 60.0
        let scale = max(m.total, m.weights + m.kvCache + m.activations + m.reserved)
        func cells(_ bytes: Double) -> Int { max(0, Int((bytes / scale * width).rounded())) }
        var bar = String(repeating: "W", count: cells(m.weights)) + String(repeating: "K", count: cells(m.kvCache))
            + String(repeating: "A", count: cells(m.activations)) + String(repeating: "R", count: cells(m.reserved))
        if bar.count < Int(width) { bar += String(repeating: "·", count: Int(width) - bar.count) }
        if scale > m.total {
            let end = min(bar.count, cells(m.total))
            bar = String(bar.prefix(end)) + "|" + String(bar.dropFirst(end))
        }
        print("memory per GPU (\(Output.bytes(m.total)) \(gpu.id)): [\(bar)]")
        print("  W weights \(Output.bytes(m.weights)) · K KV cache \(Output.bytes(m.kvCache)) · A activations "
            + "\(Output.bytes(m.activations)) · R reserve \(Output.bytes(m.reserved)) · free \(Output.bytes(m.free))")
    }
}
