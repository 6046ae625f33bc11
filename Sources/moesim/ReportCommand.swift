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
        Defaults: Kimi K2 (1.03 T parameters) in fp8 on H200 nodes: the fewest GPUs that hold one \
        131,072-token sequence, then a cluster of whole nodes that holds 32 of them at once, priced \
        for 4,096-token prompts and 1,024-token answers, and a short measurement of this CPU. \
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

    @Option(name: .customLong("weights"),
            help: ArgumentHelp(WeightsChoice.help))
    var weightsChoice: WeightsChoice = .format(.fp8)

    @Option(help: "KV-cache format: bf16 or fp8.")
    var kvCache: KVCacheFormat = .bf16

    @Option(help: "Context to plan for, in tokens (default 131,072, or the model's own context if shorter).")
    var context: Int?

    @Flag(help: "Skip the measurement of this CPU.")
    var noCpu = false

    @Option(help: "Users (one request in flight each) for the capacity answer; its targets are --max-ttft and --max-tpot at p90 (default 2 s and 50 ms).")
    var users = 256

    @OptionGroup var overrides: OverrideOptions
    @OptionGroup var workload: WorkloadOptions
    @OptionGroup var threadOptions: ThreadOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        if let context, !(1...Workload.maxContext).contains(context) {
            throw ValidationError("--context must be 1 to \(Workload.maxContext.formatted()) tokens, got \(context)")
        }
        if let gpus, !(1...Cluster.maxGPUs).contains(gpus) {
            throw ValidationError("--gpus must be 1 to \(Cluster.maxGPUs.formatted()), got \(gpus)")
        }
        guard (1...Workload.maxConcurrency).contains(concurrency) else {
            throw ValidationError("--concurrency must be 1 to 2^40, got \(concurrency)")
        }
        guard (1...1_000_000).contains(users) else { throw ValidationError("--users must be 1 to 1,000,000") }
        try threadOptions.apply()
        let (spec, weights) = try weightsChoice.apply(to: overrides.load(model))
        let hardware = try HardwareCatalog.load(gpu)
        let context = self.context ?? min(131_072, spec.maxPositionEmbeddings)
        try ContextLimit.check(context, model: spec, allowLonger: workload.allowLongerContext)
        let counts = spec.parameterCounts
        let hosted = try Self.hostedPrice(spec)
        if output.json { return try printJSON(spec, weights: weights, hardware: hardware, hosted: hosted, context: context) }

        print("== \(spec.id): \(Output.count(counts.total)) parameters, \(Output.count(counts.active)) active per token")
        print("\(spec.modelType), \(spec.layerCount) layers, \(spec.mixerName) attention"
            + (spec.moe.map { ", \($0.routedExperts) experts, \($0.expertsPerToken) per token" } ?? ""))
        print("weights \(Output.bytes(Double(spec.weightBytes(weights)))) (\(spec.weightsLabel(weights))); KV cache "
            + "\(Output.grouped(spec.kvCacheBytesPerToken(kvCache))) B per token, "
            + "\(Output.bytes(Double(spec.kvCacheBytes(context: context, format: kvCache)))) per \(Output.grouped(context))-token sequence")
        if !spec.overrides.isEmpty {
            print("overrides: " + spec.overrides.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", "))
        }

        let report = try build(spec, weights: weights, hardware: hardware, hosted: hosted, context: context)
        print("")
        print("== Memory on \(hardware.name)")
        guard let minimum = report.minimumGPUs else {
            print("does not fit on up to 4,096 \(hardware.id) GPUs at \(Output.grouped(context)) tokens")
            return
        }
        guard let chosen = report.gpus, let plan = report.plan, let request = report.request, let search = report.search else {
            print("fewest GPUs for one \(Output.grouped(context))-token sequence: \(minimum); \(concurrency) do not fit on 4,096")
            return
        }
        print("fewest GPUs for one \(Output.grouped(context))-token sequence: \(minimum); for \(concurrency) at once: "
            + "\(report.minimumGPUsForConcurrency.map(String.init) ?? "more than 4,096"); planning on \(chosen)")
        if let best = plan.best {
            PlanTable.printMemory(best.memory, gpu: hardware)
            print("most sequences of \(Output.grouped(context)) tokens: \(Output.grouped(best.maxConcurrentSequences)) (\(best.layout))")
        }
        if let reason = plan.reason { print("infeasible: \(reason)") }

        print("")
        print("== Throughput and latency (\(Output.grouped(workload.input)) in / \(Output.grouped(workload.output)) out)")
        guard let best = search.best else {
            print("no layout and batch meets the limits")
            if !noCpu { try printCPU(spec) }
            return
        }
        EstimateTable.print(best, model: spec, cluster: request.cluster, request: request)
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
        printHostedComparison(spec, best: best, price: hosted)
        printLongRequest(report, price: hosted)
        printServing(report, layout: best.plan.layout)
        printCapacity(report)
        if !noCpu { try printCPU(spec) }
    }

    func build(_ spec: ModelSpec, weights: WeightFormat, hardware: HardwareSpec, hosted: HostedPrice?, context: Int) throws -> MainReport {
        try MainReport.build(spec, gpu: hardware, gpus: gpus, weights: weights, kvCache: kvCache, context: context,
                             concurrency: concurrency, users: users, maxTTFT: workload.maxTtft, maxTPOT: workload.maxTpot,
                             hosted: hosted) { cluster in
            try workload.request(model: spec, cluster: cluster, layout: nil, weights: weights, kvCache: kvCache)
        }
    }

    /// The report as one JSON object: the same answers as the tables (no CPU run with --no-cpu).
    func printJSON(_ spec: ModelSpec, weights: WeightFormat, hardware: HardwareSpec, hosted: HostedPrice?, context: Int) throws {
        let report = try build(spec, weights: weights, hardware: hardware, hosted: hosted, context: context)
        var json: [String: Any] = [
            "model": spec.id, "gpu": hardware.id, "weights": weights.rawValue,
            "expert_weights": spec.expertWeightFormat?.rawValue ?? weights.rawValue, "total_params": spec.parameterCounts.total,
            "active_params": spec.parameterCounts.active, "weight_bytes": spec.weightBytes(weights),
            "kv_cache_bytes_per_token": spec.kvCacheBytesPerToken(kvCache), "context": context, "concurrency": concurrency,
            "min_gpus": report.minimumGPUs.map { $0 as Any } ?? NSNull(),
            "min_gpus_for_concurrency": report.minimumGPUsForConcurrency.map { $0 as Any } ?? NSNull(),
        ]
        if let gpus = report.gpus { json["gpus"] = gpus }
        if let best = report.plan?.best { json["plan"] = PlanJSON.layout(best) }
        if let reason = report.plan?.reason { json["infeasible"] = reason }
        if let best = report.search?.best {
            json["estimate"] = EstimateJSON.object(best)
            if let price = hosted {
                var hosted: [String: Any] = ["provider": price.provider, "date": price.date, "source": price.source,
                                             "variant": price.variant ?? NSNull(),
                                             "tiers": price.tiers.map { t -> [String: Any] in
                                                 var o: [String: Any] = ["input": t.input, "output": t.output,
                                                                         "max_prompt_tokens": t.maxPromptTokens.map { $0 as Any } ?? NSNull()]
                                                 if let c = t.cachedInput { o["cached_input"] = c }
                                                 return o
                                             }]
                if let (_, u) = price.breakEven(best, input: workload.input, output: workload.output) {
                    hosted["break_even_utilization"] = u
                }
                json["hosted_price"] = hosted
            }
        }
        if report.search?.best != nil {
            json["serving"] = report.serving.map(ServingJSON.object)
            if !report.servingSkipped.isEmpty {
                json["serving_skipped"] = report.servingSkipped.map { ["concurrency": $0.concurrency, "reason": $0.reason] as [String: Any] }
            }
        }
        if let long = report.longRequest {
            func side(_ e: Estimate) -> [String: Any] {
                let seconds = e.gpuSeconds(prompt: long.promptTokens, output: long.outputTokens) ?? 0
                var o: [String: Any] = ["gpu_seconds": seconds]
                if let p = e.gpuHourPrice { o["cost"] = p / 3600 * seconds }
                if let j = e.energy?.joulesPerRequest { o["kwh"] = j / 3.6e6 }
                return o
            }
            json["long_request"] = ["prompt_tokens": long.promptTokens, "cached_tokens": long.cachedTokens,
                                    "output_tokens": long.outputTokens, "fresh": side(long.fresh), "cached": side(long.cached)]
        }
        if let answer = report.capacity {
            var c: [String: Any] = ["users": users, "gpus": answer.gpus, "ttft_p90_s": answer.ttft, "tpot_p90_s": answer.tpot,
                                    "layout": answer.estimate.deployment]
            if answer.estimate.disaggregated {
                c["disaggregated"] = ["prefill": ServingJSON.pool(answer.estimate.pools[0]), "decode": ServingJSON.pool(answer.estimate.pools[1])]
            }
            if let cost = answer.costPerMillionOutputTokens { c["cost_per_million_output_tokens"] = cost }
            json["capacity"] = c
        } else if let why = report.capacityError {
            json["capacity"] = ["users": users, "error": why]
        }
        if !noCpu { json["cpu"] = try cpuRun(spec).json }
        try Output.printJSON(json)
    }

    /// The model's reference API price from configs/pricing/hosted.json (nil without one); a
    /// malformed price file is an error, not a missing price.
    static func hostedPrice(_ spec: ModelSpec) throws -> HostedPrice? {
        HostedPrice.reference(for: spec.id, in: try HostedPrice.presets())
    }

    /// Cost per million tokens beside the same model's hosted API price, tier by tier.
    func printHostedComparison(_ spec: ModelSpec, best: Estimate, price: HostedPrice?) {
        guard let price else {
            print("== Cost per million tokens: \(Output.dollars(best.costPerMillionInputTokens)) input, "
                + "\(Output.dollars(best.costPerMillionOutputTokens)) output (no hosted price for \(spec.id) in configs/pricing)")
            return
        }
        let offer = price.variant.map { "\(spec.id), \($0)" } ?? spec.id
        print("== Cost per million tokens beside \(price.provider)'s API for \(offer) (\(price.date); configs/pricing/hosted.json)")
        func bound(_ t: HostedPrice.Tier) -> String { t.maxPromptTokens.map { "prompts ≤ \(Output.grouped($0))" } ?? "any prompt" }
        var rows: [[String]] = [["this deployment", Output.dollars(best.costPerMillionInputTokens), "≈ 0 (prefill skipped)",
                                 Output.dollars(best.costPerMillionOutputTokens)]]
        for t in price.tiers {
            rows.append(["hosted, \(bound(t))", Output.dollars(t.input), Output.dollars(t.cachedInput), Output.dollars(t.output)])
        }
        Output.printColumns(header: ["", "input", "cached input", "output"], rows: rows)
        print("  (this deployment: GPU time only, at \(Output.dollars(best.gpuHourPrice)) per GPU-hour and full utilisation)")
        if let (tier, u) = price.breakEven(best, input: workload.input, output: workload.output) {
            print("  a \(Output.grouped(workload.input))-in / \(Output.grouped(workload.output))-out request costs "
                + "\(Output.dollars(tier.cost(input: workload.input, output: workload.output))) through the API; "
                + (u < 1 ? "this deployment is cheaper above \(Output.fixed(100 * u, 0))% utilisation"
                         : "this deployment costs \(Output.fixed(u, 1))× the API even at full utilisation"))
        }
    }

    /// A request that fills the context, fresh and with its prefix cached: this deployment's GPU
    /// time, cost and energy beside the hosted price with the cached-input tier.
    func printLongRequest(_ report: MainReport, price: HostedPrice?) {
        guard let long = report.longRequest else { return }
        print("")
        print("== One \(Output.grouped(long.promptTokens))-token prompt and \(Output.grouped(long.outputTokens))-token answer, fresh and with "
            + "the first \(Output.grouped(long.cachedTokens)) tokens cached (a long document, a new question)")
        let hosted = price?.tier(promptTokens: long.promptTokens)
        var rows: [[String]] = []
        for (label, e, cached) in [("fresh", long.fresh, 0), ("cached", long.cached, long.cachedTokens)] {
            let seconds = e.gpuSeconds(prompt: long.promptTokens, output: long.outputTokens) ?? 0
            let api = hosted.map { t -> String in
                guard cached == 0 || t.cachedInput != nil else { return "— (no cached tier)" }
                return Output.dollars(t.cost(input: long.promptTokens - cached, cached: cached, output: long.outputTokens))
            } ?? "—"
            rows.append([label, Output.fixed(seconds, 1), Output.dollars(e.gpuHourPrice.map { $0 / 3600 * seconds }),
                         e.energy?.joulesPerRequest.map { Output.fixed($0 / 3600, 2) } ?? "—", api])
        }
        Output.printColumns(header: ["", "GPU-seconds", "this deployment", "energy (Wh)", "hosted API"], rows: rows)
        print("  (layout \(long.fresh.plan.layout); cached tokens skip their prefill; their KV cache is still held)")
    }

    /// The serving view: the best layout under a closed loop at a few concurrencies.
    func printServing(_ report: MainReport, layout: Layout) {
        print("")
        print("== Serving at a concurrency (closed loop on \(layout), prompts 0.8–1.0 × \(Output.grouped(workload.input)), answers 0.8–1.0 × \(Output.grouped(workload.output)))")
        for (concurrency, reason) in report.servingSkipped { print("\(Output.grouped(concurrency)) requests: \(reason)") }
        guard !report.serving.isEmpty else { return }
        Output.printColumns(header: ["requests", "out tok/s/GPU", "tok/s/user", "TTFT p90", "TPOT p90", "$/M out", "board W/GPU",
                                     "facility J/out token"],
                            rows: report.serving.map { s in
            [Output.grouped(s.request.concurrency), Output.rate(s.outputTokensPerSecondPerGPU), Output.rate(s.outputTokensPerSecondPerUser),
             Output.seconds(s.ttft.p90), Output.seconds(s.tpot.p90), Output.dollars(s.costPerMillionOutputTokens),
             s.energy.map { Output.fixed($0.outputGPUWatts, 0) } ?? "—", s.energy?.joulesPerOutputToken().map(EnergyOutput.joules) ?? "—"]
        })
        print("  (moesim estimate --concurrency N for one point, with --prefill-pool/--decode-pool or --mtp)")
    }

    /// The fewest GPUs for a stated load within latency targets, beside the steady state above.
    func printCapacity(_ report: MainReport) {
        let (ttft, tpot) = report.capacityTargets
        print("")
        print("== Capacity: \(Output.grouped(users)) users, \(Output.grouped(workload.input)) in / "
            + "\(Output.grouped(workload.output)) out, p90 TTFT ≤ \(Output.seconds(ttft)) and TPOT ≤ \(Output.seconds(tpot))")
        guard let answer = report.capacity else {
            print(report.capacityError ?? "no capacity answer")
            return
        }
        Output.printTable([
            ("GPUs", "\(answer.gpus): \(ServingTable.deployment(answer.estimate))"),
            ("latency", "TTFT \(Output.seconds(answer.ttft)), TPOT \(Output.seconds(answer.tpot)) at p90"),
            ("cost", "\(Output.dollars(answer.costPerMillionOutputTokens)) per million output tokens, "
                + "\(Output.dollars(answer.costPerRequest)) per request"),
        ])
        print("  (moesim capacity for other loads and targets)")
    }

    /// A short measurement of this CPU: calibration, then ÷8 of the model (4 layers) run for real
    /// beside the estimator's prediction for this host.
    struct CPURun {
        var calibration: CalibrationResult
        var scaled: ModelSpec?
        var run: BenchResult?
        var predicted: Estimate?
        var error: String?

        var json: [String: Any] {
            var c: [String: Any] = ["gemm_gflops": calibration.gemmFlops / 1e9, "memory_gb_per_s": calibration.streamBandwidth / 1e9]
            if let run {
                c["prefill_tokens_per_s"] = run.prefillTokensPerSecond
                c["decode_tokens_per_s"] = run.decodeTokensPerSecond
            }
            if let p = predicted {
                c["predicted_prefill_tokens_per_s"] = p.inputTokensPerSecondPerGPU
                c["predicted_decode_tokens_per_s"] = p.outputTokensPerSecondPerGPU
            }
            if let error { c["error"] = error }
            return c
        }
    }

    func cpuRun(_ spec: ModelSpec) throws -> CPURun {
        let (host, calibration) = try HardwareSpec.measureHost()
        var result = CPURun(calibration: calibration)
        do {
            let scaled = try spec.scaled(by: 8, layers: 4)
            result.scaled = scaled
            let model = try CPUModel(spec: scaled, source: .random(seed: 1))
            result.run = try RuntimeBench.run(model, batch: 4, promptTokens: 128, generate: 32, seed: 1)
            result.predicted = try? CPUCheck.predict(scaled, host: host, weights: .f32, batch: 4, prompt: 128, generate: 32)
        } catch {
            result.error = "\(error)"
        }
        return result
    }

    func printCPU(_ spec: ModelSpec) throws {
        print("")
        print("== This CPU: a short run of \(spec.id) scaled down (÷8 widths, 4 layers, random weights)")
        let r = try cpuRun(spec)
        let cpu = r.calibration
        Output.printTable([
            ("GEMM 1024³", "\(Output.fixed(cpu.gemmFlops / 1e9)) GFLOP/s (raw OpenBLAS \(Output.fixed(cpu.blasGemmFlops / 1e9)))"),
            ("memory", "\(Output.fixed(cpu.memoryBandwidth / 1e9)) GB/s triad, \(Output.fixed(cpu.readBandwidth / 1e9)) GB/s reads, "
                + "\(Output.fixed(cpu.streamBandwidth / 1e9)) GB/s through the decode kernel (the estimate's figure)"),
            ("threads", "\(cpu.threads), OpenBLAS \(BLASCore.name) kernels"
                + (PanelMatrix.Kernels.native.map { ", \(PanelMatrix.describe($0)) panel kernels for the model's matrices" } ?? "")),
        ])
        guard let run = r.run, let scaled = r.scaled else {
            print("  no CPU run: \(r.error ?? "unknown")")
            return
        }
        let predicted = r.predicted
        Output.printColumns(header: ["", "measured", "predicted"], rows: [
            ["prefill tokens/s", Output.rate(run.prefillTokensPerSecond), predicted.map { Output.rate($0.inputTokensPerSecondPerGPU) } ?? "—"],
            ["decode tokens/s", Output.rate(run.decodeTokensPerSecond), predicted.map { Output.rate($0.outputTokensPerSecondPerGPU) } ?? "—"],
        ])
        print("  \(Output.count(scaled.parameterCounts.total)) parameters, batch 4 × 128-token prompts, 32 tokens generated; "
            + "moesim bench \(spec.id) for more")
    }
}
