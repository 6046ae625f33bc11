import ArgumentParser
import Estimator
import Foundation
import Hardware
import ModelSpec
import Planner
import Serving
import CPURuntime
import TensorCore

struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "The main job: model summary, GPUs needed, best layouts, throughput, latency and cost.",
        discussion: """
        Defaults: Kimi K2 (1.03 T parameters) in fp8 on H200 nodes: the fewest GPUs that hold one
        131,072-token sequence, then a cluster of whole nodes that holds 32 of them at once, priced
        for 4,096-token prompts and 1,024-token answers, and a short measurement of this CPU.
        Every option of estimate applies.

        Examples:
          moesim report
          moesim report --model qwen3-max-1t --gpu b200 --weights fp4
          moesim report --gpus 32 --features two-batch-overlap --max-tpot 0.05
        """
    )

    @Option(help: "Model preset id, config.json path or model folder.")
    var model = "kimi-k2"

    @Option(help: "Accelerator preset id or hardware file.")
    var gpu = "h200-sxm"

    @Option(help: "GPUs (default: the fewest whole nodes that hold --concurrency sequences of --context).")
    var gpus: Int?

    @Option(help: "Sequences of --context tokens the default cluster must hold at once.")
    var concurrency = 32

    @Option(help: "Weight format: bf16, fp8, fp4, mxfp4 or int4.")
    var weights: WeightFormat = .fp8

    @Option(help: "KV-cache format: bf16 or fp8.")
    var kvCache: KVCacheFormat = .bf16

    @Option(help: "Context to plan for, in tokens.")
    var context = 131_072

    @Flag(help: "Skip the measurement of this CPU.")
    var noCpu = false

    @Option(help: "Users (one request in flight each) for the capacity answer; its targets are --max-ttft and --max-tpot at p90 (default 2 s and 50 ms).")
    var users = 256

    @OptionGroup var overrides: OverrideOptions
    @OptionGroup var workload: WorkloadOptions
    @OptionGroup var threadOptions: ThreadOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        let format = weights, kv = kvCache
        guard context >= 1 else { throw ValidationError("--context must be at least 1") }
        if let gpus, gpus < 1 { throw ValidationError("--gpus must be at least 1") }
        guard concurrency >= 1 else { throw ValidationError("--concurrency must be at least 1") }
        guard (1...1_000_000).contains(users) else { throw ValidationError("--users must be 1 to 1,000,000") }
        try threadOptions.apply()
        let spec = try overrides.load(model)
        let hardware = try HardwareCatalog.load(gpu)
        let counts = spec.parameterCounts
        if output.json { return try printJSON(spec, hardware: hardware, format: format, kv: kv) }

        print("== \(spec.id): \(Output.count(counts.total)) parameters, \(Output.count(counts.active)) active per token")
        print("\(spec.modelType), \(spec.layerCount) layers, \(spec.attention.name) attention"
            + (spec.moe.map { ", \($0.routedExperts) experts, \($0.expertsPerToken) per token" } ?? ""))
        print("weights \(Output.bytes(Double(spec.weightBytes(format)))) in \(weights.rawValue); KV cache "
            + "\(Output.grouped(spec.kvCacheBytesPerToken(kv))) B per token, "
            + "\(Output.bytes(Double(spec.kvCacheBytes(context: context, format: kv)))) per \(Output.grouped(context))-token sequence")
        if !spec.overrides.isEmpty {
            print("overrides: " + spec.overrides.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", "))
        }

        let planWorkload = Workload(weights: format, kvCache: kv, context: context, concurrency: 1)
        let minimum = try Planner.minimumGPUs(spec, gpu: hardware, workload: planWorkload)
        print("")
        print("== Memory on \(hardware.name)")
        guard let minimum else {
            print("does not fit on up to 4,096 \(hardware.id) GPUs at \(Output.grouped(context)) tokens")
            return
        }
        var serving = planWorkload
        serving.concurrency = concurrency
        let forLoad = try Planner.minimumGPUs(spec, gpu: hardware, workload: serving)
        let perNode = hardware.scaleUpDomain
        let wholeNodes = forLoad.map { $0 <= perNode ? $0 : ($0 + perNode - 1) / perNode * perNode }
        guard let chosen = gpus ?? wholeNodes else {
            print("fewest GPUs for one \(Output.grouped(context))-token sequence: \(minimum); \(concurrency) do not fit on 4,096")
            return
        }
        print("fewest GPUs for one \(Output.grouped(context))-token sequence: \(minimum); for \(concurrency) at once: "
            + "\(forLoad.map(String.init) ?? "more than 4,096"); planning on \(chosen)")
        let cluster = try Cluster(gpu: hardware, gpuCount: chosen)
        let plan = try Planner.plan(spec, cluster: cluster, workload: serving, alternatives: [])
        if let best = plan.best {
            PlanTable.printMemory(best.memory, gpu: hardware)
            print("most sequences of \(Output.grouped(context)) tokens: \(Output.grouped(best.maxConcurrentSequences)) (\(best.layout))")
        }
        if let reason = plan.reason { print("infeasible: \(reason)") }

        print("")
        print("== Throughput and latency (\(Output.grouped(workload.input)) in / \(Output.grouped(workload.output)) out)")
        let request = try workload.request(model: spec, cluster: cluster, layout: nil, weights: format, kvCache: kv)
        let search = LayoutSearch.search(request, maxTTFT: workload.maxTtft, maxTPOT: workload.maxTpot)
        if let best = search.best {
            EstimateTable.print(best, model: spec, cluster: cluster, request: request)
            print("")
            print("best layouts by throughput per GPU:")
            var seen = Set<String>()
            let top = search.pareto.sorted { $0.outputTokensPerSecondPerGPU > $1.outputTokensPerSecondPerGPU }
                .filter { seen.insert($0.plan.layout.description).inserted }.prefix(3)
            Output.printColumns(header: ["layout", "batch/GPU", "tok/s/GPU", "tok/s/user", "TTFT", "TPOT"], rows: top.map { e in
                [e.plan.layout.description, "\(e.decodeBatchPerGPU)", Output.rate(e.outputTokensPerSecondPerGPU),
                 Output.rate(e.outputTokensPerSecondPerUser), Output.seconds(e.timeToFirstToken), Output.seconds(e.timePerOutputToken)]
            })
            print("")
            // Qwen3-Max-Preview's launch tiers (2025-09) in dollars as the launch coverage reported
            // them: Alibaba Cloud's mainland-China prices converted, not its international list.
            print("== Cost per million tokens beside a hosted 1 T model (Qwen3-Max-Preview launch tiers, China prices in USD)")
            Output.printColumns(header: ["", "this deployment", "hosted price"], rows: [
                ["input", Output.dollars(best.costPerMillionInputTokens), "$0.861 (≤32K) · $2.151 (128K–252K)"],
                ["output", Output.dollars(best.costPerMillionOutputTokens), "up to $8.602"],
            ])
            print("  (GPU time only, at \(Output.dollars(best.gpuHourPrice)) per GPU-hour and full utilisation)")
            printServing(request: request, layout: best.plan.layout, gpus: cluster.gpuCount)
            printCapacity(request: request)
        } else {
            print("no layout and batch meets the limits")
        }

        guard !noCpu else { return }
        try printCPU(spec)
    }

    /// The report as one JSON object: the same library calls as the tables, and the same
    /// sections (no CPU run with --no-cpu).
    func printJSON(_ spec: ModelSpec, hardware: HardwareSpec, format: WeightFormat, kv: KVCacheFormat) throws {
        var json: [String: Any] = [
            "model": spec.id, "gpu": hardware.id, "total_params": spec.parameterCounts.total,
            "active_params": spec.parameterCounts.active, "weight_bytes": spec.weightBytes(format),
            "kv_cache_bytes_per_token": spec.kvCacheBytesPerToken(kv), "context": context, "concurrency": concurrency,
        ]
        let planWorkload = Workload(weights: format, kvCache: kv, context: context, concurrency: 1)
        guard let minimum = try Planner.minimumGPUs(spec, gpu: hardware, workload: planWorkload) else {
            json["min_gpus"] = NSNull()
            return try Output.printJSON(json)
        }
        json["min_gpus"] = minimum
        var serving = planWorkload
        serving.concurrency = concurrency
        let forLoad = try Planner.minimumGPUs(spec, gpu: hardware, workload: serving)
        json["min_gpus_for_concurrency"] = forLoad.map { $0 as Any } ?? NSNull()
        let perNode = hardware.scaleUpDomain
        guard let chosen = gpus ?? forLoad.map({ $0 <= perNode ? $0 : ($0 + perNode - 1) / perNode * perNode }) else {
            return try Output.printJSON(json)
        }
        json["gpus"] = chosen
        let cluster = try Cluster(gpu: hardware, gpuCount: chosen)
        let plan = try Planner.plan(spec, cluster: cluster, workload: serving, alternatives: [])
        if let best = plan.best { json["plan"] = PlanJSON.layout(best) }
        if let reason = plan.reason { json["infeasible"] = reason }
        let request = try workload.request(model: spec, cluster: cluster, layout: nil, weights: format, kvCache: kv)
        if let best = LayoutSearch.search(request, maxTTFT: workload.maxTtft, maxTPOT: workload.maxTpot).best {
            json["estimate"] = EstimateJSON.object(best)
            var points: [[String: Any]] = []
            for perGPU in [1, 4, 16, 64] {
                var base = request
                base.layout = best.plan.layout
                let r = ServingRequest(base: base, concurrency: perGPU * chosen, inputRange: InputRange(lower: 0.8, upper: 1))
                if let e = try? ServingEstimator.estimate(r) { points.append(ServingJSON.object(e)) }
            }
            json["serving"] = points
            var base = request
            base.layout = nil
            let capacity = CapacityRequest(serving: ServingRequest(base: base, concurrency: users, inputRange: InputRange(lower: 0.8, upper: 1)),
                                           load: .users(users), maxTTFT: workload.maxTtft ?? 2, maxTPOT: workload.maxTpot ?? 0.05)
            if let answer = try? Capacity.fewestGPUs(capacity) {
                var c: [String: Any] = ["users": users, "gpus": answer.gpus, "ttft_p90_s": answer.ttft, "tpot_p90_s": answer.tpot]
                if answer.estimate.disaggregated {
                    c["disaggregated"] = ["prefill": ServingJSON.pool(answer.estimate.pools[0]), "decode": ServingJSON.pool(answer.estimate.pools[1])]
                } else if let p = answer.estimate.pools.first {
                    c["layout"] = p.layout.description
                }
                if let cost = answer.costPerMillionOutputTokens { c["cost_per_million_output_tokens"] = cost }
                json["capacity"] = c
            }
        }
        if !noCpu {
            let scaled = try spec.scaled(by: 8, layers: 4)
            let (host, cpu) = try HardwareSpec.measureHost()
            let model = try CPUModel(spec: scaled, source: .random(seed: 1))
            let run = try RuntimeBench.run(model, batch: 4, promptTokens: 128, generate: 32, seed: 1)
            var c: [String: Any] = ["gemm_gflops": cpu.gemmFlops / 1e9, "memory_gb_per_s": cpu.streamBandwidth / 1e9,
                                    "prefill_tokens_per_s": run.prefillTokensPerSecond, "decode_tokens_per_s": run.decodeTokensPerSecond]
            if let p = try? CPUCheck.predict(scaled, host: host, weights: .f32, batch: 4, prompt: 128, generate: 32) {
                c["predicted_prefill_tokens_per_s"] = p.inputTokensPerSecondPerGPU
                c["predicted_decode_tokens_per_s"] = p.outputTokensPerSecondPerGPU
            }
            json["cpu"] = c
        }
        try Output.printJSON(json)
    }

    /// The serving view: the best layout under a closed loop at a few concurrencies.
    func printServing(request: EstimateRequest, layout: Layout, gpus: Int) {
        print("")
        print("== Serving at a concurrency (closed loop on \(layout), prompts 0.8–1.0 × \(Output.grouped(request.inputTokens)))")
        var rows: [[String]] = []
        for perGPU in [1, 4, 16, 64] {
            var base = request
            base.layout = layout
            let serving = ServingRequest(base: base, concurrency: perGPU * gpus, inputRange: InputRange(lower: 0.8, upper: 1))
            guard let s = try? ServingEstimator.estimate(serving) else { continue }
            rows.append([Output.grouped(serving.concurrency), Output.rate(s.outputTokensPerSecondPerGPU),
                         Output.rate(s.outputTokensPerSecondPerUser), Output.seconds(s.ttft.p90), Output.seconds(s.tpot.p90),
                         Output.dollars(s.costPerMillionOutputTokens)])
        }
        guard !rows.isEmpty else {
            print("no concurrency fits this layout at \(Output.grouped(request.inputTokens + request.outputTokens)) tokens")
            return
        }
        Output.printColumns(header: ["requests", "out tok/s/GPU", "tok/s/user", "TTFT p90", "TPOT p90", "$/M out"], rows: rows)
        print("  (moesim estimate --concurrency N for one point, with --prefill-pool/--decode-pool or --mtp)")
    }

    /// The fewest GPUs for a stated load within latency targets, beside the steady state above.
    func printCapacity(request: EstimateRequest) {
        let ttft = workload.maxTtft ?? 2, tpot = workload.maxTpot ?? 0.05
        print("")
        print("== Capacity: \(Output.grouped(users)) users, \(Output.grouped(request.inputTokens)) in / "
            + "\(Output.grouped(request.outputTokens)) out, p90 TTFT ≤ \(Output.seconds(ttft)) and TPOT ≤ \(Output.seconds(tpot))")
        var base = request
        base.layout = nil
        let capacity = CapacityRequest(serving: ServingRequest(base: base, concurrency: users, inputRange: InputRange(lower: 0.8, upper: 1)),
                                       load: .users(users), maxTTFT: ttft, maxTPOT: tpot)
        do {
            guard let answer = try Capacity.fewestGPUs(capacity) else {
                print("no deployment of up to 1,024 \(request.cluster.gpu.id) GPUs meets the targets")
                return
            }
            let e = answer.estimate
            let cut = e.disaggregated
                ? "prefill \(e.pools[0].gpus) GPUs (\(e.pools[0].workers) × \(e.pools[0].layout)), decode \(e.pools[1].gpus) GPUs "
                    + "(\(e.pools[1].workers) × \(e.pools[1].layout))"
                : "\(e.pools[0].layout), \(e.pools[0].workers) worker\(e.pools[0].workers == 1 ? "" : "s")"
            Output.printTable([
                ("GPUs", "\(answer.gpus): \(cut)"),
                ("latency", "TTFT \(Output.seconds(answer.ttft)), TPOT \(Output.seconds(answer.tpot)) at p90"),
                ("cost", "\(Output.dollars(answer.costPerMillionOutputTokens)) per million output tokens, "
                    + "\(Output.dollars(answer.costPerRequest)) per request"),
            ])
            print("  (moesim capacity for other loads and targets)")
        } catch {
            print("no capacity answer: \(error)")
        }
    }

    func printCPU(_ spec: ModelSpec) throws {
        print("")
        print("== This CPU: a short run of \(spec.id) scaled down (÷8 widths, 4 layers, random weights)")
        let (host, cpu) = try HardwareSpec.measureHost()
        Output.printTable([
            ("GEMM 1024³", "\(Output.fixed(cpu.gemmFlops / 1e9)) GFLOP/s (raw OpenBLAS \(Output.fixed(cpu.blasGemmFlops / 1e9)))"),
            ("memory", "\(Output.fixed(cpu.memoryBandwidth / 1e9)) GB/s triad, \(Output.fixed(cpu.readBandwidth / 1e9)) GB/s reads, "
                + "\(Output.fixed(cpu.streamBandwidth / 1e9)) GB/s through the decode kernel (the estimate's figure)"),
            ("threads", "\(cpu.threads), OpenBLAS \(BLASCore.name) kernels"
                + (PanelMatrix.isSupported ? ", AVX-512 panel kernels for the model's matrices" : "")),
        ])
        do {
            let scaled = try spec.scaled(by: 8, layers: 4)
            let model = try CPUModel(spec: scaled, source: .random(seed: 1))
            let run = try RuntimeBench.run(model, batch: 4, promptTokens: 128, generate: 32, seed: 1)
            let predicted = try? CPUCheck.predict(scaled, host: host, weights: .f32, batch: 4, prompt: 128, generate: 32)
            Output.printColumns(header: ["", "measured", "predicted"], rows: [
                ["prefill tokens/s", Output.rate(run.prefillTokensPerSecond), predicted.map { Output.rate($0.inputTokensPerSecondPerGPU) } ?? "—"],
                ["decode tokens/s", Output.rate(run.decodeTokensPerSecond), predicted.map { Output.rate($0.outputTokensPerSecondPerGPU) } ?? "—"],
            ])
            print("  \(Output.count(scaled.parameterCounts.total)) parameters, batch 4 × 128-token prompts, 32 tokens generated; "
                + "moesim bench \(spec.id) for more")
        } catch {
            print("  no CPU run: \(error)")
        }
    }
}
