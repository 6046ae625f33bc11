import ArgumentParser
import Foundation
import Estimator
import Hardware
import ModelSpec
import Planner

struct CompareCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "Price the same workload for several models, GPUs, formats or architecture what-ifs.",
        discussion: """
        Each comma-separated list makes variants; --vary key=a,b,c changes one config field \
        (as --set does). For each variant: the smallest GPU count that holds one sequence of \
        input + output tokens (or --gpus when given), its best layout, and the estimate there.

        Examples:
          moesim compare --model kimi-k2,qwen3-max-1t,deepseek-v3
          moesim compare --model kimi-k2 --gpu h200-sxm,b200,mi355x
          moesim compare --model kimi-k2 --vary n_routed_experts=256,384,512
          moesim compare --model deepseek-v3 --weights fp8,fp4 --gpu b200 --json
        """
    )

    @Option(help: "Comma-separated model presets or config paths.")
    var model = "kimi-k2"

    @Option(help: "Comma-separated accelerator presets.")
    var gpu = "h200-sxm"

    @Option(help: "GPUs of every variant: a number, or auto for each variant's own fewest (default: one count for all, the most any variant needs).")
    var gpus: String?

    @Option(help: "Comma-separated weight formats.")
    var weights = "fp8"

    @Option(help: "KV-cache format: bf16 or fp8.")
    var kvCache: KVCacheFormat = .bf16

    @Option(help: "One config field and its values: key=a,b,c.")
    var vary: String?

    @OptionGroup var overrides: OverrideOptions
    @OptionGroup var workload: WorkloadOptions
    @OptionGroup var memory: MemoryReserveOption
    @OptionGroup var output: OutputOptions

    struct Variant {
        var label: String
        var model: ModelSpec
        var gpu: HardwareSpec
        var weights: WeightFormat
    }

    func variants() throws -> [Variant] {
        let models = model.split(separator: ",").map(String.init)
        let gpuIDs = gpu.split(separator: ",").map(String.init)
        let formats = try weightFormats(weights)
        var whatIfs: [(String, [(String, String)])] = [("", [])]
        if let vary {
            guard let eq = vary.firstIndex(of: "="), eq != vary.startIndex else {
                throw ValidationError("--vary needs key=a,b,c, got '\(vary)'")
            }
            let key = String(vary[..<eq])
            whatIfs = vary[vary.index(after: eq)...].split(separator: ",").map { ("\(key)=\($0)", [(key, String($0))]) }
        }
        var list: [Variant] = []
        for m in models {
            for g in gpuIDs {
                let hardware = try HardwareCatalog.load(g)
                for f in formats {
                    for (label, set) in whatIfs {
                        let spec = try ModelCatalog.load(m, overrides: try overrides.pairs() + set)
                        var parts = [spec.id]
                        if gpuIDs.count > 1 || models.count == 1 { parts.append(hardware.id) }
                        if formats.count > 1 { parts.append(f == .nvfp4 ? "fp4" : f.rawValue) }
                        if !label.isEmpty { parts.append(label) }
                        list.append(Variant(label: parts.joined(separator: " "), model: spec, gpu: hardware, weights: f))
                    }
                }
            }
        }
        return list
    }

    func run() throws {
        let kv = kvCache
        var fixed: Int? = nil
        let perVariant = gpus == "auto"
        if let gpus, !perVariant {
            guard let n = Int(gpus), (1...Cluster.maxGPUs).contains(n) else {
                throw ValidationError("--gpus must be 1 to \(Cluster.maxGPUs) or auto, got '\(gpus)'")
            }
            fixed = n
        }
        var rows: [[String]] = []
        var json: [[String: Any]] = []
        let list = try variants()
        let context = workload.input + workload.output
        var minimums: [Int?] = []
        for v in list {
            let planWorkload = Workload(weights: v.weights, kvCache: kv, context: context, concurrency: 1, memoryReserve: memory.reserve)
            minimums.append(try Planner.minimumGPUs(v.model, gpu: v.gpu, workload: planWorkload))
        }
        // Variants compare on equal hardware: one GPU count for all, the most any variant needs
        // (rounded up to a count every GPU kind's nodes allow), unless asked otherwise.
        if fixed == nil, !perVariant, var n = minimums.compactMap({ $0 }).max() {
            while n < Cluster.maxGPUs, !list.allSatisfy({ (try? Cluster(gpu: $0.gpu, gpuCount: n)) != nil }) { n += 1 }
            fixed = n
        }
        for (v, minimum) in zip(list, minimums) {
            let counts = v.model.parameterCounts
            var entry: [String: Any] = [
                "label": v.label, "model": v.model.id, "gpu": v.gpu.id, "weights": v.weights.rawValue,
                "total_params": counts.total, "active_params": counts.active, "weight_bytes": v.model.weightBytes(v.weights),
                "kv_cache_bytes_per_token": v.model.kvCacheBytesPerToken(kv), "min_gpus": minimum.map { $0 as Any } ?? NSNull(),
            ]
            var estimate: Estimate? = nil
            if let n = fixed ?? minimum, let cluster = try? Cluster(gpu: v.gpu, gpuCount: n) {
                var request = try workload.request(model: v.model, cluster: cluster, layout: nil, weights: v.weights, kvCache: kv)
                request.memoryReserve = memory.reserve
                estimate = LayoutSearch.search(request, maxTTFT: workload.maxTtft, maxTPOT: workload.maxTpot).best
                entry["gpus"] = n
            }
            if let e = estimate {
                entry["layout"] = e.plan.layout.description
                entry["input_tokens_per_s_per_gpu"] = e.inputTokensPerSecondPerGPU
                entry["output_tokens_per_s_per_gpu"] = e.outputTokensPerSecondPerGPU
                entry["output_tokens_per_s_per_user"] = e.outputTokensPerSecondPerUser
                entry["tpot_s"] = e.timePerOutputToken
                entry["ttft_s"] = e.timeToFirstToken
                if let c = e.costPerMillionOutputTokens { entry["cost_per_million_output_tokens"] = c }
                entry.merge(EnergyOutput.json(e.energy)) { a, _ in a }
            }
            json.append(entry)
            rows.append([v.label, Output.count(counts.total), Output.count(counts.active), Output.bytes(Double(v.model.weightBytes(v.weights))),
                         Output.grouped(v.model.kvCacheBytesPerToken(kv)), minimum.map(String.init) ?? "—",
                         estimate?.plan.layout.description ?? "—",
                         estimate.map { Output.rate($0.inputTokensPerSecondPerGPU) } ?? "—",
                         estimate.map { Output.rate($0.outputTokensPerSecondPerGPU) } ?? "—",
                         estimate.map { Output.seconds($0.timePerOutputToken) } ?? "—",
                         Output.dollars(estimate?.costPerMillionOutputTokens),
                         estimate?.energy.map { Output.fixed($0.outputGPUWatts, 0) } ?? "—",
                         estimate?.energy?.joulesPerOutputToken().map(EnergyOutput.joules) ?? "—",
                         estimate?.energy.flatMap { e in e.joulesPerOutputToken().map { EnergyOutput.grams(e.gramsPerMillion(joules: $0)) } } ?? "—"])
        }
        if output.json {
            try Output.printJSON(["variants": json, "input_tokens": workload.input, "output_tokens": workload.output,
                                  "gpus": fixed.map { $0 as Any } ?? "auto"])
            return
        }
        print("\(Output.grouped(workload.input)) in / \(Output.grouped(workload.output)) out per request; "
            + (fixed.map { "every variant on \($0) GPUs" + (gpus == nil ? " (the most any variant needs; --gpus auto for each its own fewest)" : "") }
                ?? "each variant on the fewest GPUs that hold one sequence (--gpus auto)"))
        Output.printColumns(header: ["variant", "total", "active", "weights", "KV B/token", "min GPUs", "best layout",
                                     "prefill tok/s/GPU", "decode tok/s/GPU", "TPOT", "$/M out", "W/GPU", "J/out token",
                                     "CO2e/M out"], rows: rows)
        print("energy: GPU board watts while decoding; joules and CO2e per output token for the facility "
            + "(server and PUE \(Output.fixed(workload.energy.pue, 2)), grid \(workload.energy.settings.gridName)); docs/energy.md")
    }
}
