import ArgumentParser
import Estimator
import Hardware
import ModelSpec
import Planner
import Serving

struct EstimateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "estimate",
        abstract: "Price one configuration: tokens/s, TTFT, TPOT, bottleneck and cost.",
        discussion: """
        Without --concurrency: the steady state of one decode batch. Without --layout, every layout \
        that fits is tried at decode batches 1, 2, 4, … up to the largest that fits, and the highest \
        output tokens/s per GPU within --max-ttft / --max-tpot is shown, with the Pareto front of \
        throughput per GPU against tokens/s per user. A --batch-per-gpu that does not fit is an \
        error naming the largest that does. "Per GPU" always divides by every GPU of the \
        deployment: under tensor-parallel attention a batch of B per GPU is B × tp sequences shared \
        by the tp GPUs of a group.

        With --concurrency N: a closed loop of N requests in flight (each replaced when it \
        finishes), simulated step by step with continuous batching and chunked prefill: output, \
        input and total tokens/s per GPU, tokens/s per user, TTFT, TPOT and end-to-end latency \
        (median, p90, p99). Add --prefill-pool and --decode-pool for disaggregated serving, --mtp \
        for speculative decoding. Without --layout, the layouts the steady state ranks best are \
        simulated and the best within --max-ttft / --max-tpot (at p90) is shown.

        Examples:
          moesim estimate                                # kimi-k2 on 16 × H200
          moesim estimate --model deepseek-v3 --gpu h100-sxm --gpus 32 \\
              --layout attention=dp,tp=1,ep=32,pp=1 --features two-batch-overlap \\
              --batch-per-gpu 256 --input 2000 --output 0
          moesim estimate --max-tpot 0.05 --json
          moesim estimate --model deepseek-r1 --gpus 8 \\
              --layout attention=tp,tp=8,ep=1,pp=1,moe_tp=8 --concurrency 64 \\
              --input 1024 --output 1024 --input-range 0.8,1.0 --output-range 0.8,1.0
          moesim estimate --model deepseek-r1 --gpu gb300 --weights fp4 \\
              --concurrency 2048 --mtp 1 \\
              --prefill-pool 6,3,attention=dp,tp=1,ep=2,pp=1 \\
              --decode-pool 16,1,attention=dp,tp=1,ep=16,pp=1
          # an SGLang engine as InferenceX runs it:
          moesim estimate --model deepseek-r1 --gpu b300 --gpus 4 --weights fp4 \\
              --attention-weights bf16 --kv-cache fp8 --concurrency 4 \\
              --framework sglang
        """
    )

    @OptionGroup var deployment: DeploymentOptions
    @OptionGroup var workload: WorkloadOptions
    @OptionGroup var serving: ServingOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        let (model, weights) = try deployment.loadModel()
        let pools = try serving.parsedPools()
        let gpuCount = try serving.policy.gpuCount(deployment)
        let cluster = try Cluster(gpu: try deployment.loadGPU(), gpuCount: gpuCount, gpusPerNode: deployment.gpusPerNode,
                                  wholeNodes: pools == nil)
        var request = try workload.request(model: model, cluster: cluster, layout: try deployment.parsedLayout(),
                                           weights: weights, kvCache: deployment.kvFormat)
        request.memoryReserve = deployment.memory.reserve
        if let layout = request.layout { _ = try layout.validate(for: model, gpus: cluster.gpuCount,
                                                                   redundantExperts: request.redundantExperts(ep: layout.ep)) }
        if serving.isServing {
            guard workload.batchPerGpu == nil else {
                throw ValidationError("--batch-per-gpu is the steady state's batch; with --concurrency the batch follows from the load")
            }
            if pools != nil, request.layout != nil { throw ValidationError("--layout is for aggregated serving; the pools carry their own") }
            guard workload.prefillTokens == nil else {
                throw ValidationError("--prefill-tokens is the steady state's chunk; with --concurrency the chunk is --token-budget")
            }
            let servingRequest = try serving.request(base: request)
            let estimate = request.layout == nil && pools == nil
                ? try ServingEstimator.best(servingRequest, maxTTFT: workload.maxTtft, maxTPOT: workload.maxTpot)
                : try ServingEstimator.estimate(servingRequest)
            if let t = workload.maxTtft, estimate.ttft.p90 > t {
                throw ValidationError("p90 TTFT is \(Output.seconds(estimate.ttft.p90)), over --max-ttft \(Output.seconds(t))")
            }
            if let t = workload.maxTpot, estimate.tpot.p90 > t {
                throw ValidationError("p90 TPOT is \(Output.seconds(estimate.tpot.p90)), over --max-tpot \(Output.seconds(t))")
            }
            if output.json {
                var json = ServingJSON.object(estimate)
                json["model"] = model.id
                json["gpu"] = cluster.gpu.id
                try Output.printJSON(json)
            } else {
                print("\(model.id) on \(cluster.gpuCount) × \(cluster.gpu.id), \(model.weightsLabel(request.weights)), "
                    + "\(request.kvCache.rawValue) KV, \(Output.grouped(request.inputTokens)) in / \(Output.grouped(request.outputTokens)) out")
                ServingTable.print(estimate)
            }
            return
        }
        let search = LayoutSearch.search(request, maxTTFT: workload.maxTtft, maxTPOT: workload.maxTpot)
        guard let best = search.best else {
            if let batch = request.decodeBatchPerGPU, let fit = LayoutSearch.largestFittingBatch(request), batch > fit.batch {
                throw ValidationError("a decode batch of \(batch) per GPU does not fit at \(workload.input + workload.output) tokens "
                    + "of context: the largest that fits is \(fit.batch) per GPU (\(fit.layout))")
            }
            if search.evaluated == 0 {
                throw ValidationError("no layout of \(model.id) fits \(cluster.gpuCount) × \(cluster.gpu.id) at "
                    + "\(workload.input + workload.output) tokens of context (see moesim plan)")
            }
            throw ValidationError("no layout and batch meets the latency limits (\(search.evaluated) tried)")
        }
        if output.json {
            var json = EstimateJSON.object(best)
            json["model"] = model.id
            json["gpu"] = cluster.gpu.id
            json["gpus"] = cluster.gpuCount
            json["weights"] = request.weights.rawValue
            json["expert_weights"] = (model.expertWeightFormat ?? request.weights).rawValue
            json["attention_weights"] = model.attentionWeightsName(request.weights)
            json["pareto"] = search.pareto.map { e -> [String: Any] in
                ["layout": e.plan.layout.description, "batch_per_gpu": e.decodeBatchPerGPU,
                 "output_tokens_per_s_per_gpu": e.outputTokensPerSecondPerGPU,
                 "output_tokens_per_s_per_user": e.outputTokensPerSecondPerUser]
            }
            try Output.printJSON(json)
            return
        }
        EstimateTable.print(best, model: model, cluster: cluster, request: request)
        print("")
        print("Pareto front (\(search.evaluated) layout × batch points):")
        Output.printColumns(header: ["layout", "batch/GPU", "tok/s/GPU", "tok/s/user", "TPOT"], rows: search.pareto.map { e in
            [e.plan.layout.description, "\(e.decodeBatchPerGPU)", Output.rate(e.outputTokensPerSecondPerGPU),
             Output.rate(e.outputTokensPerSecondPerUser), Output.seconds(e.timePerOutputToken)]
        })
    }
}

enum EstimateTable {
    static func print(_ e: Estimate, model: ModelSpec, cluster: Cluster, request: EstimateRequest) {
        Swift.print("\(model.id) on \(cluster.gpuCount) × \(cluster.gpu.id), \(model.weightsLabel(request.weights)), "
            + "\(request.kvCache.rawValue) KV, \(Output.grouped(request.inputTokens)) in / \(Output.grouped(request.outputTokens)) out"
            + (request.features.isEmpty ? "" : ", " + request.features.map(\.rawValue).sorted().joined(separator: ", ")))
        Swift.print("layout \(e.plan.layout) (\(e.plan.replicas) replica\(e.plan.replicas == 1 ? "" : "s")), decode batch "
            + "\(e.decodeBatchPerGPU) per GPU, prefill \(Output.grouped(e.prefillTokensPerGPU)) tokens per GPU per step")
        Swift.print("")
        Output.printTable([
            ("prefill", "\(Output.rate(e.inputTokensPerSecondPerGPU)) input tokens/s per GPU  (\(Output.breakdown(e.prefillStep)))"),
            ("decode", "\(Output.rate(e.outputTokensPerSecondPerGPU)) output tokens/s per GPU, "
                + "\(Output.rate(e.outputTokensPerSecondPerUser)) per user  (\(Output.breakdown(e.decodeStep)))"),
            ("bottleneck", "decode: \(e.decodeStep.bottleneck.rawValue), prefill: \(e.prefillStep.bottleneck.rawValue)"),
            ("TTFT", Output.seconds(e.timeToFirstToken) + " (one request on an idle system)"),
            ("TPOT", Output.seconds(e.timePerOutputToken)),
            ("end to end", Output.seconds(e.endToEndLatency)),
            ("offline", "\(Output.rate(e.offlineOutputTokensPerSecondPerGPU)) output tokens/s per GPU (prefill + decode)"),
            ("cost", "\(Output.dollars(e.costPerMillionInputTokens)) per million input tokens, "
                + "\(Output.dollars(e.costPerMillionOutputTokens)) per million output tokens at "
                + "\(Output.dollars(e.gpuHourPrice)) per GPU-hour"),
        ] + EnergyOutput.rows(e.energy))
    }
}
