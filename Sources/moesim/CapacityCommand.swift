import ArgumentParser
import Estimator
import Foundation
import Hardware
import ModelSpec
import Planner
import Serving

struct CapacityCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "capacity",
        abstract: "The fewest GPUs (whole nodes), and how to cut them, that serve a load within TTFT and TPOT targets.",
        discussion: """
        The load is --users N (each with one request in flight: a closed loop) or --rate R \
        requests per second (Poisson). GPU counts go up by whole nodes (8 GPUs); each count tries \
        the layouts the steady state ranks best and, unless --no-disaggregation, prefill:decode \
        splits of whole nodes, simulating each; the answer is the fewest GPUs whose percentile \
        (--percentile, default p90) TTFT and TPOT meet the targets, with its layout or pools and \
        its cost per million output tokens and per request.

        Examples:
          moesim capacity --model kimi-k2 --users 512 --input 4096 --output 1024 \\
              --slo-ttft 2 --slo-tpot 0.05
          moesim capacity --model deepseek-r1 --gpu b200 --weights fp4 --rate 20 \\
              --slo-ttft 1 --slo-tpot 0.03 --json
        """
    )

    @Option(help: "Model preset id, config.json path or model folder.")
    var model = "kimi-k2"

    @Option(help: "Accelerator preset id or hardware file.")
    var gpu = "h200-sxm"

    @Option(name: .customLong("weights"),
            help: ArgumentHelp(WeightsChoice.help))
    var weightsChoice: WeightsChoice = .format(.fp8)

    @Option(help: ArgumentHelp(AttentionWeightSplit.help))
    var attentionWeights: AttentionWeightSplit?

    @Option(help: "KV-cache format: bf16 or fp8.")
    var kvCache: KVCacheFormat = .bf16

    @Option(help: "Users with one request in flight each.")
    var users: Int?

    @Option(help: "Requests per second (Poisson).")
    var rate: Double?

    @Option(help: "Prompt tokens per request.")
    var input = 4096

    @Option(help: "Generated tokens per request.")
    var output = 1024

    @Option(help: "Target time to first token, seconds.")
    var sloTtft: Double

    @Option(help: "Target time per output token, seconds.")
    var sloTpot: Double

    @Option(help: "Percentile at which the targets must hold: 50, 90 or 99.")
    var percentile = 90.0

    @Option(help: "Largest GPU count to consider.")
    var maxGpus = 1024

    @Flag(help: "Only aggregated deployments (no separate prefill and decode pools).")
    var noDisaggregation = false

    @Option(help: "USD per GPU-hour (default: the hardware file's price).")
    var gpuHourPrice: Double?

    @OptionGroup var policy: ServingPolicyOptions
    @OptionGroup var memory: MemoryReserveOption
    @OptionGroup var overrides: OverrideOptions
    @OptionGroup var output2: OutputOptions

    @Flag(help: "Price contexts past the model's max_position_embeddings instead of refusing them.")
    var allowLongerContext = false

    func validate() throws {
        guard (users == nil) != (rate == nil) else { throw ValidationError("give either --users or --rate") }
        if let users, !(1...1_000_000).contains(users) { throw ValidationError("--users must be 1 to 1,000,000") }
        if let rate, !(1e-6...1e6).contains(rate) { throw ValidationError("--rate must be 10^-6 to 10^6 requests/s, got \(rate)") }
        guard input >= 1, output >= 1 else { throw ValidationError("--input and --output must be at least 1") }
        guard sloTtft > 0, sloTpot > 0, sloTtft.isFinite, sloTpot.isFinite else {
            throw ValidationError("--slo-ttft and --slo-tpot must be positive and finite")
        }
        guard [50, 90, 99].contains(percentile) else { throw ValidationError("--percentile must be 50, 90 or 99") }
        if policy.prefillPool != nil { throw ValidationError("capacity chooses the pools itself; --no-disaggregation keeps one") }
        if policy.pdRouter != nil, noDisaggregation { throw ValidationError("--pd-router prices the pools --no-disaggregation rules out") }
        try WorkloadOptions.checkGPUHourPrice(gpuHourPrice)
        guard (8...65_536).contains(maxGpus) else { throw ValidationError("--max-gpus must be 8 to 65,536") }
    }

    func run() throws {
        let (shipped, weights) = try weightsChoice.apply(to: overrides.load(model))
        let spec = try attentionWeights.map { try $0.apply(to: shipped, weights: weights) } ?? shipped
        let hardware = try HardwareCatalog.load(gpu)
        let cluster = try Cluster(gpu: hardware, gpuCount: min(hardware.scaleUpDomain, 8))
        var base = EstimateRequest(model: spec, cluster: cluster, weights: weights,
                                   kvCache: kvCache, inputTokens: input, outputTokens: output,
                                   gpuHourPrice: gpuHourPrice)
        base.allowLongerContext = allowLongerContext
        base.memoryReserve = memory.reserve
        let serving = try policy.request(base: base, concurrency: users ?? 1)
        let request = CapacityRequest(serving: serving, load: users.map { .users($0) } ?? .rate(rate ?? 1), maxTTFT: sloTtft,
                                      maxTPOT: sloTpot, percentile: percentile, maxGPUs: maxGpus, disaggregation: !noDisaggregation)
        let load = users.map { "\(Output.grouped($0)) users" } ?? "\(Output.fixed(rate ?? 0, 2)) requests/s"
        let targets = "p\(Int(percentile)) TTFT ≤ \(Output.seconds(sloTtft)) and TPOT ≤ \(Output.seconds(sloTpot))"
        guard let answer = try Capacity.fewestGPUs(request) else {
            if output2.json {
                try Output.printJSON(["model": spec.id, "gpu": hardware.id, "meets_slo": false, "max_gpus": maxGpus])
                return
            }
            throw ValidationError("no deployment of up to \(maxGpus) \(hardware.id) GPUs serves \(load) of \(input) in / \(output) out "
                + "within \(targets)")
        }
        let e = answer.estimate
        if output2.json {
            var json: [String: Any] = [
                "model": spec.id, "gpu": hardware.id, "gpus": answer.gpus, "meets_slo": true, "weights": weights.rawValue,
                "ttft_s": answer.ttft, "tpot_s": answer.tpot, "percentile": percentile,
                "output_tokens_per_s_per_gpu": answer.outputTokensPerSecondPerGPU, "requests_per_s": answer.requestsPerSecond,
                "trials": answer.trials,
                "expert_weights": spec.expertWeightFormat?.rawValue ?? weights.rawValue,
                "attention_weights": spec.attentionWeightsName(weights),
                "scheduler": e.request.scheduler.rawValue, "eager_prefill": e.request.base.features.contains(.eagerPrefill),
            ]
            if e.disaggregated {
                json["disaggregated"] = ["prefill": ServingJSON.pool(e.pools[0]), "decode": ServingJSON.pool(e.pools[1])]
                if let router = e.request.router { json["pd_router"] = router.rawValue }
            } else if let p = e.pools.first {
                json["layout"] = p.layout.description
            }
            if let c = answer.costPerMillionOutputTokens { json["cost_per_million_output_tokens"] = c }
            if let c = answer.costPerRequest { json["cost_per_request"] = c }
            try Output.printJSON(json)
            return
        }
        print("\(spec.id) on \(hardware.id), \(spec.weightsLabel(weights)): \(load), \(Output.grouped(input)) in / \(Output.grouped(output)) out, \(targets)")
        print("")
        let cut = (e.disaggregated ? "disaggregated: " : "aggregated: ") + ServingTable.deployment(e)
        Output.printTable([
            ("GPUs", "\(answer.gpus) (\(answer.gpus / request.granularity) node\(answer.gpus == request.granularity ? "" : "s") of \(request.granularity))"),
            ("cut", cut),
            ("latency", "TTFT \(Output.seconds(answer.ttft)), TPOT \(Output.seconds(answer.tpot)) at p\(Int(percentile))"),
            ("throughput", "\(Output.rate(answer.outputTokensPerSecondPerGPU)) output tokens/s per GPU, "
                + "\(Output.fixed(answer.requestsPerSecond, 2)) requests/s"),
            ("cost", "\(Output.dollars(answer.costPerMillionOutputTokens)) per million output tokens, "
                + "\(Output.dollars(answer.costPerRequest)) per request at \(Output.dollars(e.gpuHourPrice)) per GPU-hour"),
        ])
        print("  (\(answer.trials) configurations simulated)")
    }
}
