import ArgumentParser
import Estimator
import Hardware
import Planner
import Serving

/// How a deployment serves, shared by estimate --concurrency, serve and sweep --concurrency:
/// prompt-length range, scheduler, token budget, MTP and disaggregated pools.
struct ServingPolicyOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Prompt lengths drawn uniformly from lo..hi × --input (e.g. 0.8,1.0).", valueName: "lo,hi"))
    var inputRange: String?

    @Option(help: ArgumentHelp("Answer lengths drawn uniformly from lo..hi × --output (benchmark clients' --random-range-ratio draws both).",
                               valueName: "lo,hi"))
    var outputRange: String?

    @Option(help: "Serving engine whose defaults to price: vllm, sglang (prefill-first scheduler, eager prompt steps, a long prompt's chunks pipelined across pipeline stages) or tensorrt-llm (eager context steps); --scheduler and --no-eager-prefill override them (default: vllm's).")
    var framework: ServingFramework?

    @Flag(help: "Prompt steps under CUDA graphs even where the framework runs them eagerly (SGLang with --enable-piecewise-cuda-graph, TensorRT-LLM with enable_piecewise_cuda_graph).")
    var noEagerPrefill = false

    @Option(help: "Scheduler: mixed (chunked prefill inside decode steps: vLLM, TensorRT-LLM) or prefill-first (SGLang's default) (default: the framework's, else mixed).")
    var scheduler: SchedulerPolicy?

    @Option(help: "Tokens one scheduler (attention group, one DP rank under DP attention) processes per step (default: 8,192 under 160 GiB per GPU, else 16,384; SGLang divides its --chunked-prefill-size by the DP size, so pass that share).")
    var tokenBudget: Int?

    @Option(help: "The engine's cap on requests running at once per GPU (TensorRT-LLM max_batch_size per attention rank, SGLang --max-running-requests or vLLM --max-num-seqs, each over the GPUs they span; default 256, memory permitting).")
    var maxBatchPerGPU: Int?

    @Option(help: "Prefill-first scheduler: decode steps in runs of N before new prompts are looked at (SGLang's --num-continuous-decode-steps; default 1).")
    var continuousDecodeSteps: Int?

    @Option(help: "Prefill-first scheduler: read new requests every N decode steps while decoding (SGLang's --scheduler-recv-interval; default 1).")
    var schedulerRecvInterval: Int?

    @Option(help: "MTP speculative decoding: draft tokens per step.")
    var mtp: Int?

    @Option(help: "Mean tokens emitted per decode step with MTP (default: DeepSeek-R1's measured 1.92 / 2.58 / 2.82 for 1 / 2 / 3 drafts).")
    var mtpAcceptance: Double?

    @Flag(help: "Run every prompt whole instead of in chunks within the token budget.")
    var noChunkedPrefill = false

    @Flag(help: "Form each step after the previous one ends, not while it runs (SGLang --disable-overlap-schedule, TensorRT-LLM disable_overlap_scheduler, vLLM --no-async-scheduling): new requests wait one step less.")
    var noOverlapSchedule = false

    @Option(help: "Disaggregated prefill pool: GPUs,workers[,layout] (e.g. 8,1,attention=dp,tp=1,ep=8,pp=1; no layout: the best).")
    var prefillPool: String?

    @Option(help: "Disaggregated decode pool: GPUs,workers[,layout] (e.g. 48,6,attention=dp,tp=1,ep=8,pp=1; no layout: the best).")
    var decodePool: String?

    @Option(help: "Router in front of the pools: sglang (SGLang's PD router: the answer waits for the prefill server's response, a step late when it is busy) or dynamo (Dynamo's frontend: no wait) (default: sglang with --framework sglang, else none; capacity: for its disaggregated candidates).")
    var pdRouter: PrefillDecodeRouter?

    func validate() throws {
        if let b = tokenBudget, !(1...1_048_576).contains(b) { throw ValidationError("--token-budget must be 1 to 1,048,576, got \(b)") }
        for (flag, value) in [("--continuous-decode-steps", continuousDecodeSteps), ("--scheduler-recv-interval", schedulerRecvInterval)] {
            guard let n = value else { continue }
            guard (1...ServingRequest.maxDecodeRun).contains(n) else {
                throw ValidationError("\(flag) must be 1 to \(ServingRequest.maxDecodeRun), got \(n)")
            }
            guard schedulerPolicy == .prefillFirst else {
                throw ValidationError("\(flag) is a setting of the prefill-first scheduler (--scheduler prefill-first or --framework sglang)")
            }
        }
        if let c = maxBatchPerGPU, !(1...65_536).contains(c) { throw ValidationError("--max-batch-per-gpu must be 1 to 65,536, got \(c)") }
        if let m = mtp, !(1...16).contains(m) { throw ValidationError("--mtp must be 1 to 16 draft tokens, got \(m)") }
        if mtpAcceptance != nil, mtp == nil { throw ValidationError("--mtp-acceptance needs --mtp") }
        if (prefillPool == nil) != (decodePool == nil) { throw ValidationError("--prefill-pool and --decode-pool go together") }
        _ = try Self.range(inputRange, flag: "--input-range")
        _ = try Self.range(outputRange, flag: "--output-range")
        _ = try parsedPools()
    }

    static let needsConcurrency = "--input-range, --output-range, --max-batch-per-gpu, --framework, --scheduler, --token-budget, --continuous-decode-steps, "
        + "--scheduler-recv-interval, --mtp, --no-chunked-prefill, --no-overlap-schedule, --no-eager-prefill, --pd-router and the pools describe serving: give --concurrency"

    /// Whether any option was given (they describe serving, not the steady state).
    var isSet: Bool {
        inputRange != nil || outputRange != nil || maxBatchPerGPU != nil || continuousDecodeSteps != nil || schedulerRecvInterval != nil || mtp != nil || prefillPool != nil || tokenBudget != nil || scheduler != nil
            || framework != nil || noChunkedPrefill || noOverlapSchedule || noEagerPrefill || pdRouter != nil
    }

    /// --pd-router where the command is given the pools (estimate, serve, sweep): without them
    /// there is no router to price.
    func checkRouterHasPools() throws {
        if pdRouter != nil, prefillPool == nil { throw ValidationError("--pd-router needs --prefill-pool and --decode-pool") }
    }

    /// `--scheduler`, else the framework's, else mixed.
    var schedulerPolicy: SchedulerPolicy { scheduler ?? framework?.scheduler ?? .mixed }

    static func range(_ text: String?, flag: String) throws -> LengthRange {
        guard let text else { return .fixed }
        let parts = text.split(separator: ",").map { Double($0.trimmingCharacters(in: .whitespaces)) }
        guard parts.count == 2, let lo = parts[0], let hi = parts[1], LengthRange(lower: lo, upper: hi).isValid else {
            throw ValidationError("\(flag) must be lo,hi with 0 < lo ≤ hi ≤ 1, got '\(text)'")
        }
        return LengthRange(lower: lo, upper: hi)
    }

    static func pool(_ text: String, flag: String) throws -> Disaggregation.Pool {
        let pieces = text.split(separator: ",", maxSplits: 2).map(String.init)
        guard pieces.count >= 2, let gpus = Int(pieces[0]), let workers = Int(pieces[1]), gpus >= 1, workers >= 1,
              gpus <= Cluster.maxGPUs else {
            throw ValidationError("\(flag) must be GPUs,workers[,layout] (e.g. 8,1,attention=dp,tp=1,ep=8,pp=1), got '\(text)'")
        }
        return Disaggregation.Pool(gpus: gpus, workers: workers, layout: pieces.count == 3 ? try Layout.parse(pieces[2]) : nil)
    }

    func parsedPools() throws -> Disaggregation? {
        guard let prefillPool, let decodePool else { return nil }
        return Disaggregation(prefill: try Self.pool(prefillPool, flag: "--prefill-pool"),
                              decode: try Self.pool(decodePool, flag: "--decode-pool"))
    }

    /// The serving request for `base` at `concurrency`.
    func request(base: EstimateRequest, concurrency: Int, seed: UInt64 = 1) throws -> ServingRequest {
        var base = base
        if noEagerPrefill, base.features.contains(.eagerPrefill) {
            throw ValidationError("--no-eager-prefill contradicts --features eager-prefill")
        }
        if noEagerPrefill, framework?.features.contains(.eagerPrefill) != true {
            throw ValidationError("--no-eager-prefill turns off the eager prefill of --framework sglang or tensorrt-llm, and nothing else prices one")
        }
        if let f = framework { base.features.formUnion(f.features) }
        if noEagerPrefill { base.features.remove(.eagerPrefill) }
        var r = ServingRequest(base: base, concurrency: concurrency, inputRange: try Self.range(inputRange, flag: "--input-range"),
                               outputRange: try Self.range(outputRange, flag: "--output-range"), disaggregation: try parsedPools(),
                               speculative: mtp.map { SpeculativeDecoding(draftTokens: $0, acceptance: mtpAcceptance) },
                               scheduler: schedulerPolicy, tokenBudget: tokenBudget, seed: seed)
        r.chunkedPrefill = !noChunkedPrefill
        r.pipelinedPromptChunks = framework?.pipelinesPromptChunks ?? false
        r.overlapSchedule = !noOverlapSchedule
        r.maxBatchPerGPU = maxBatchPerGPU
        r.continuousDecodeSteps = continuousDecodeSteps ?? 1
        r.schedulerRecvInterval = schedulerRecvInterval ?? 1
        r.router = pdRouter ?? framework.flatMap { PrefillDecodeRouter(framework: $0.rawValue) }
        return r
    }

    /// The GPU count a deployment has: --gpus, else the pools' sum, else the default.
    func gpuCount(_ deployment: DeploymentOptions) throws -> Int {
        try deployment.gpus ?? parsedPools().map { $0.prefill.gpus + $0.decode.gpus } ?? deployment.gpuCount
    }
}

/// `estimate --concurrency N`: a closed-loop serving estimate.
struct ServingOptions: ParsableArguments {
    @Option(help: "Requests in flight across the deployment, each replaced when it finishes (closed loop).")
    var concurrency: Int?

    @Option(help: "Replay a benchmark client instead of the steady state: N prompts in all, the first --concurrency sent at once (InferenceX: 10 × concurrency).")
    var numPrompts: Int?

    @OptionGroup var policy: ServingPolicyOptions

    func validate() throws {
        if let c = concurrency, !(1...1_000_000).contains(c) { throw ValidationError("--concurrency must be 1 to 1,000,000, got \(c)") }
        if let n = numPrompts {
            guard let c = concurrency else { throw ValidationError("--num-prompts needs --concurrency") }
            guard (c...10_000_000).contains(n) else { throw ValidationError("--num-prompts must be from --concurrency (\(c)) to 10,000,000, got \(n)") }
        }
        if concurrency == nil, policy.isSet {
            throw ValidationError(ServingPolicyOptions.needsConcurrency)
        }
        try policy.checkRouterHasPools()
    }

    var isServing: Bool { concurrency != nil }
    func parsedPools() throws -> Disaggregation? { try policy.parsedPools() }
    func request(base: EstimateRequest) throws -> ServingRequest {
        var r = try policy.request(base: base, concurrency: concurrency ?? 1)
        r.benchmarkPrompts = numPrompts
        return r
    }
}

enum ServingJSON {
    static func object(_ s: ServingEstimate) -> [String: Any] {
        var json: [String: Any] = [
            "gpus": s.gpus, "concurrency": s.request.concurrency,
            "output_tokens_per_s_per_gpu": s.outputTokensPerSecondPerGPU,
            "input_tokens_per_s_per_gpu": s.inputTokensPerSecondPerGPU,
            "total_tokens_per_s_per_gpu": s.totalTokensPerSecondPerGPU,
            "output_tokens_per_s_per_user": s.outputTokensPerSecondPerUser,
            "requests_per_s": s.requestsPerSecond,
            "ttft_s": s.ttft.median, "ttft_p90_s": s.ttft.p90, "ttft_p99_s": s.ttft.p99,
            "tpot_s": s.tpot.median, "tpot_p90_s": s.tpot.p90, "tpot_p99_s": s.tpot.p99,
            "e2e_s": s.endToEnd.median, "e2e_p90_s": s.endToEnd.p90, "e2e_p99_s": s.endToEnd.p99,
            "mean_decode_batch_per_decode_gpu": s.meanDecodeBatchPerDecodeGPU,
            "measured_requests": s.measuredRequests, "simulated_steps": s.simulatedSteps,
            "scheduler": s.request.scheduler.rawValue, "overlap_schedule": s.request.overlapSchedule,
            "eager_prefill": s.request.base.features.contains(.eagerPrefill),
            "weights": s.request.base.weights.rawValue,
        ]
        json["expert_weights"] = (s.request.base.model.expertWeightFormat ?? s.request.base.weights).rawValue
        json["attention_weights"] = s.request.base.model.attentionWeightsName(s.request.base.weights)
        if let n = s.request.benchmarkPrompts { json["num_prompts"] = n }
        if let c = s.request.maxBatchPerGPU { json["max_batch_per_gpu"] = c }
        if s.disaggregated, let router = s.request.router { json["pd_router"] = router.rawValue }
        if let m = s.request.speculative { json["mtp"] = ["draft_tokens": m.draftTokens, "acceptance": m.acceptance] }
        if s.disaggregated {
            json["prefill"] = pool(s.pools[0])
            json["decode"] = pool(s.pools[1])
            json["input_tokens_per_s_per_prefill_gpu"] = s.pools[0].inputTokensPerSecondPerGPU
            json["output_tokens_per_s_per_decode_gpu"] = s.pools[1].outputTokensPerSecondPerGPU
            if let t = s.kvTransferSeconds { json["kv_transfer_s"] = t }
        } else if let p = s.pools.first {
            json["layout"] = PlanJSON.layout(p.plan)
            json["workers"] = p.workers
            json["max_requests_per_worker"] = p.capacityPerWorker
        }
        if let c = s.costPerMillionOutputTokens { json["cost_per_million_output_tokens"] = c }
        if let c = s.costPerMillionInputTokens { json["cost_per_million_input_tokens"] = c }
        if let p = s.gpuHourPrice { json["gpu_hour_price"] = p }
        json.merge(EnergyOutput.json(s.energy)) { a, _ in a }
        return json
    }

    static func pool(_ p: PoolEstimate) -> [String: Any] {
        ["gpus": p.gpus, "workers": p.workers, "layout": p.layout.description, "max_requests_per_worker": p.capacityPerWorker,
         "input_tokens_per_s_per_gpu": p.inputTokensPerSecondPerGPU, "output_tokens_per_s_per_gpu": p.outputTokensPerSecondPerGPU,
         "busy": p.busy]
    }
}

enum ServingTable {
    /// The pools of a deployment in words: the layout and its workers, or the two pools.
    static func deployment(_ s: ServingEstimate) -> String {
        s.disaggregated
            ? "prefill \(s.pools[0].gpus) GPUs (\(s.pools[0].workers) × \(s.pools[0].layout)), decode \(s.pools[1].gpus) GPUs "
                + "(\(s.pools[1].workers) × \(s.pools[1].layout))"
            : "layout \(s.pools[0].layout), \(s.pools[0].workers) worker\(s.pools[0].workers == 1 ? "" : "s") holding up to "
                + "\(Output.grouped(s.pools[0].capacityPerWorker)) requests each"
    }

    static func print(_ s: ServingEstimate, openLoop: Bool = false) {
        let r = s.request
        Swift.print((openLoop ? "open loop on \(s.gpus) GPUs" : "closed loop: \(Output.grouped(r.concurrency)) requests in flight on \(s.gpus) GPUs")
            + ", \(r.scheduler.rawValue) scheduler" + (r.overlapSchedule ? " (overlap)" : " (no overlap)")
            + (r.base.features.contains(.eagerPrefill) ? ", eager prefill" : "")
            + (s.disaggregated ? r.router.map { ", \($0.rawValue) PD router" } ?? "" : "")
            + (r.maxBatchPerGPU.map { ", engines cap \(Output.grouped($0)) decoding per GPU" } ?? "")
            + (r.speculative.map { ", MTP \($0.draftTokens) draft\($0.draftTokens == 1 ? "" : "s") at \(Output.fixed($0.acceptance, 2)) tokens/step" } ?? ""))
        Swift.print(deployment(s))
        Swift.print("")
        func lat(_ p: Percentiles) -> String {
            "\(Output.seconds(p.median)) median, \(Output.seconds(p.p90)) p90, \(Output.seconds(p.p99)) p99"
        }
        var rows: [(String, String)] = [
            ("output", "\(Output.rate(s.outputTokensPerSecondPerGPU)) tokens/s per GPU, \(Output.rate(s.outputTokensPerSecondPerUser)) per user"),
            ("input", "\(Output.rate(s.inputTokensPerSecondPerGPU)) tokens/s per GPU"),
            ("total", "\(Output.rate(s.totalTokensPerSecondPerGPU)) tokens/s per GPU, \(Output.fixed(s.requestsPerSecond, 2)) requests/s"),
            ("TTFT", lat(s.ttft)),
            ("TPOT", lat(s.tpot)),
            ("end to end", lat(s.endToEnd)),
            ("decode batch", "\(Output.fixed(s.meanDecodeBatchPerDecodeGPU, 1)) sequences per \(s.disaggregated ? "decode " : "")GPU on average"),
        ]
        if s.disaggregated {
            rows.append(("prefill pool", "\(Output.rate(s.pools[0].inputTokensPerSecondPerGPU)) input tokens/s per prefill GPU, "
                + "busy \(Output.fixed(100 * s.pools[0].busy, 0))%"))
            rows.append(("decode pool", "\(Output.rate(s.pools[1].outputTokensPerSecondPerGPU)) output tokens/s per decode GPU"))
            if let t = s.kvTransferSeconds { rows.append(("KV transfer", Output.seconds(t) + " per nominal prompt")) }
        }
        rows.append(("cost", "\(Output.dollars(s.costPerMillionOutputTokens)) per million output tokens at "
            + "\(Output.dollars(s.gpuHourPrice)) per GPU-hour"))
        rows += EnergyOutput.rows(s.energy)
        Output.printTable(rows)
        if let n = r.benchmarkPrompts {
            Swift.print("  (a benchmark client's run: \(Output.grouped(n)) prompts, the first \(Output.grouped(r.concurrency)) at once, all measured; "
                + "\(Output.grouped(s.simulatedSteps)) steps simulated)")
        } else if !openLoop {
            Swift.print("  (\(Output.grouped(s.measuredRequests)) requests measured after a warm-up of \(Output.grouped(r.concurrency)); "
                + "\(Output.grouped(s.simulatedSteps)) steps simulated)")
        }
    }
}
