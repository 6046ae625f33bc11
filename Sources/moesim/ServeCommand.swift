import ArgumentParser
import Estimator
import Foundation
import Hardware
import ModelSpec
import Planner
import Serving

struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Simulate a deployment request by request under an open-loop load: percentiles, goodput, queue and KV use over time.",
        discussion: """
        Requests arrive on their own (Poisson at --rate, gamma bursts with --burst-cv, or a \
        --trace file) and go through continuous batching with chunked prefill, a KV pool with \
        preemption when it is full, and a prefix cache (LRU) for prompts that share a prefix. \
        Step times come from the estimator's step model. Without --layout, the layout of highest \
        steady-state throughput is used; --prefill-pool/--decode-pool split the GPUs into \
        disaggregated pools. A trace is JSON lines or CSV with arrival_s, input_tokens, \
        output_tokens and optional prefix_id and prefix_tokens.

        Examples:
          moesim serve --model deepseek-r1 --gpus 8 \\
              --layout attention=tp,tp=8,ep=1,pp=1,moe_tp=8 --rate 2 --requests 2000
          moesim serve --rate 20 --burst-cv 3 --slo-ttft 1 --slo-tpot 0.05 \\
              --csv load.csv --svg load.svg
          moesim serve --model deepseek-r1 --gpus 16 --trace chats.jsonl \\
              --prefill-pool 8,1 --decode-pool 8,1 --json
        """
    )

    @OptionGroup var deployment: DeploymentOptions
    @OptionGroup var policy: ServingPolicyOptions

    @Option(help: "Prompt tokens per request (synthetic arrivals; for a trace, the context that sizes the KV pool with --output).")
    var input = 1024

    @Option(help: "Generated tokens per request.")
    var output = 1024

    @Option(help: "Requests per second (Poisson arrivals).")
    var rate: Double?

    @Option(help: "Coefficient of variation of the gaps between arrivals (gamma; 1 is Poisson, more is burstier).")
    var burstCv: Double?

    @Option(help: "Arrivals to simulate.")
    var requests = 1000

    @Option(help: "A trace of requests (JSON lines or .csv) instead of --rate.")
    var trace: String?

    @Option(help: "Target time to first token, seconds (goodput).")
    var sloTtft: Double?

    @Option(help: "Target time per output token, seconds (goodput).")
    var sloTpot: Double?

    @Option(help: ArgumentHelp("Comma-separated features: \(EstimateRequest.featureList) (eager-prefill: prompt steps without CUDA graphs, SGLang's and TensorRT-LLM's default)."))
    var features: String?

    @Option(help: "USD per GPU-hour (default: the hardware file's price).")
    var gpuHourPrice: Double?

    @Option(help: "Seed of the arrivals and of the prompt and answer lengths.")
    var seed: UInt64 = 1

    @Option(help: "Write the time series (time, queued, running, KV use) as CSV here.")
    var csv: String?

    @Option(help: "Draw queue length and KV use over time as SVG here.")
    var svg: String?

    @Flag(help: "Price contexts past the model's max_position_embeddings instead of refusing them.")
    var allowLongerContext = false

    @OptionGroup var energy: EnergyOptions
    @OptionGroup var output2: OutputOptions

    func validate() throws {
        let limit = Workload.maxContext
        guard input >= 1, output >= 1, input <= limit, output <= limit - input else {
            throw ValidationError("--input and --output must be at least 1 and at most \(limit.formatted()) tokens together")
        }
        guard (rate == nil) != (trace == nil) else { throw ValidationError("give either --rate or --trace") }
        if let rate, !(1e-6...1e6).contains(rate) { throw ValidationError("--rate must be 10^-6 to 10^6 requests/s, got \(rate)") }
        if let cv = burstCv, !(cv >= 0.01 && cv <= 100) { throw ValidationError("--burst-cv must be in [0.01, 100], got \(cv)") }
        if trace != nil, burstCv != nil { throw ValidationError("--burst-cv shapes --rate arrivals; a trace has its own times") }
        if trace != nil, policy.inputRange != nil || policy.outputRange != nil {
            throw ValidationError("--input-range and --output-range shape --rate arrivals; a trace has its own lengths")
        }
        guard (1...100_000_000).contains(requests) else { throw ValidationError("--requests must be 1 to 100,000,000") }
        try policy.checkRouterHasPools()
        if let t = sloTtft, !(t > 0 && t.isFinite) { throw ValidationError("--slo-ttft must be positive and finite") }
        if let t = sloTpot, !(t > 0 && t.isFinite) { throw ValidationError("--slo-tpot must be positive and finite") }
        if (sloTtft == nil) != (sloTpot == nil) { throw ValidationError("--slo-ttft and --slo-tpot go together") }
        try WorkloadOptions.checkGPUHourPrice(gpuHourPrice)
        _ = try WorkloadOptions.features(features)
    }

    func run() throws {
        let (model, weights) = try deployment.loadModel()
        let cluster = try Cluster(gpu: try deployment.loadGPU(), gpuCount: try policy.gpuCount(deployment), gpusPerNode: deployment.gpusPerNode,
                                  wholeNodes: try policy.parsedPools() == nil)
        var base = EstimateRequest(model: model, cluster: cluster, layout: try deployment.parsedLayout(),
                                   weights: weights, kvCache: deployment.kvFormat,
                                   inputTokens: input, outputTokens: output,
                                   features: try WorkloadOptions.features(features), gpuHourPrice: gpuHourPrice)
        base.energy = energy.settings
        base.allowLongerContext = allowLongerContext
        base.memoryReserve = deployment.memory.reserve
        let serving = try policy.request(base: base, concurrency: 1, seed: seed)
        let arrivals: OpenLoopRequest.Arrivals = if let trace { .trace(path: trace) } else {
            .process(burstCv.map { .gamma(rate: rate ?? 1, cv: $0) } ?? .poisson(rate: rate ?? 1), count: requests)
        }
        let slo = sloTtft.flatMap { t in sloTpot.map { (ttft: t, tpot: $0) } }
        let started = Date()
        var lastReport = started
        let result = try ServingEstimator.serve(OpenLoopRequest(serving: serving, arrivals: arrivals, slo: slo)) { count, time in
            let now = Date()
            guard now.timeIntervalSince(started) > 1, now.timeIntervalSince(lastReport) > 0.5 else { return }
            lastReport = now
            Output.progress("\(Output.grouped(count)) requests arrived, \(Output.seconds(time)) simulated")
        }
        if let csv {
            var lines = ["time_s,queued,running,kv_utilization"]
            lines += result.series.map { "\($0.time),\($0.queued),\($0.running),\($0.kvUtilization)" }
            try OutputFile.write(lines.joined(separator: "\n") + "\n", to: csv)
        }
        if let svg {
            let chart = Chart(title: "\(model.id) on \(cluster.gpuCount) × \(cluster.gpu.id): queue and KV use over time",
                              xLabel: "time (s)", yLabel: "requests; KV use in % of the pool",
                              series: [
                                .init(name: "queued requests", points: result.series.map { ($0.time, Double($0.queued)) }, markers: false),
                                .init(name: "running requests", points: result.series.map { ($0.time, Double($0.running)) }, markers: false),
                                .init(name: "KV cache in use (%)", points: result.series.map { ($0.time, 100 * $0.kvUtilization) },
                                      markers: false, dashed: true),
                              ])
            try OutputFile.write(chart.svg(), to: svg)
        }
        let e = result.estimate
        if output2.json {
            var json = ServingJSON.object(e)
            json["model"] = model.id
            json["gpu"] = cluster.gpu.id
            json["requests"] = result.completed
            json["simulated_s"] = result.simulatedSeconds
            json["kv_utilization"] = ["mean": result.kvUtilizationMean, "max": result.kvUtilizationMax]
            json["prefix_cache_hit_rate"] = result.prefixCacheHitRate
            json["preemptions"] = result.preemptions
            json["goodput_requests_per_s"] = result.goodputRequestsPerSecond.map { $0 as Any } ?? NSNull()
            json.removeValue(forKey: "concurrency")
            json.removeValue(forKey: "measured_requests")
            try Output.printJSON(json)
            return
        }
        print("\(model.id) on \(cluster.gpuCount) × \(cluster.gpu.id), \(model.weightsLabel(base.weights)); "
            + (trace.map { "trace \($0)" } ?? "\(Output.grouped(requests)) requests at \(Output.fixed(rate ?? 0, 2))/s"
                + (burstCv.map { " (gamma gaps, cv \(Output.fixed($0, 1)))" } ?? " (Poisson)")))
        ServingTable.print(e, openLoop: true)
        var rows: [(String, String)] = [
            ("completed", "\(Output.grouped(result.completed)) requests in \(Output.seconds(result.simulatedSeconds)) simulated"),
            ("KV cache", "\(Output.fixed(100 * result.kvUtilizationMean, 0))% in use on average, \(Output.fixed(100 * result.kvUtilizationMax, 0))% at most; "
                + "\(Output.grouped(result.preemptions)) preemptions"),
            ("prefix cache", "\(Output.fixed(100 * result.prefixCacheHitRate, 1))% of prompt tokens served from it"),
        ]
        if let g = result.goodputRequestsPerSecond, let slo {
            rows.append(("goodput", "\(Output.fixed(g, 2)) requests/s within TTFT ≤ \(Output.seconds(slo.ttft)) and TPOT ≤ \(Output.seconds(slo.tpot))"))
        }
        Output.printTable(rows)
        for path in [csv, svg].compactMap({ $0 }) { print("wrote \(path)") }
    }
}
