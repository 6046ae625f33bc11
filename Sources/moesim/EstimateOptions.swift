import Foundation
import ArgumentParser
import Estimator
import Hardware
import ModelSpec
import Planner

/// Workload options of estimate, compare, sweep and report.
struct WorkloadOptions: ParsableArguments {
    @Option(help: "Prompt tokens per request.")
    var input = 4096

    @Option(help: "Generated tokens per request.")
    var output = 1024

    @Option(help: "Decode sequences per GPU (default: the largest that fits, at most 256).")
    var batchPerGpu: Int?

    @Option(help: "Prompt tokens one GPU prefills per step (default 8192).")
    var prefillTokens: Int?

    @Option(help: ArgumentHelp("Comma-separated serving features: \(EstimateRequest.featureList) (eager-prefill: prompt steps without CUDA graphs, SGLang's and TensorRT-LLM's default)."))
    var features: String?

    @Option(help: "Share of each prompt served from the prefix cache, in [0, 1).")
    var prefixCacheHitRate = 0.0

    @Option(help: "Zipf skew of expert popularity (0: uniform routing).")
    var expertSkew = 0.0

    @Option(help: "USD per GPU-hour (default: the hardware file's price).")
    var gpuHourPrice: Double?

    @Option(help: "Only layouts and batches whose time to first token is at most this many seconds.")
    var maxTtft: Double?

    @Option(help: "Only layouts and batches whose time per output token is at most this many seconds.")
    var maxTpot: Double?

    @Flag(help: "Price contexts past the model's max_position_embeddings instead of refusing them.")
    var allowLongerContext = false

    @OptionGroup var energy: EnergyOptions

    func validate() throws {
        let limit = Workload.maxContext
        guard (1...limit).contains(input) else { throw ValidationError("--input must be 1 to \(limit.formatted()) tokens, got \(input)") }
        guard (0...limit).contains(output), input + output <= limit else {
            throw ValidationError("--output must be 0 or more, with --input at most \(limit.formatted()) tokens together, got \(output)")
        }
        if let b = batchPerGpu, b < 1 { throw ValidationError("--batch-per-gpu must be at least 1, got \(b)") }
        if let p = prefillTokens, p < 1 { throw ValidationError("--prefill-tokens must be at least 1, got \(p)") }
        guard prefixCacheHitRate >= 0, prefixCacheHitRate < 1 else {
            throw ValidationError("--prefix-cache-hit-rate must be in [0, 1), got \(prefixCacheHitRate)")
        }
        guard expertSkew >= 0, expertSkew <= 100 else { throw ValidationError("--expert-skew must be in [0, 100], got \(expertSkew)") }
        try Self.checkGPUHourPrice(gpuHourPrice)
        if let t = maxTtft, !(t > 0 && t.isFinite) { throw ValidationError("--max-ttft must be a positive number of seconds, got \(t)") }
        if let t = maxTpot, !(t > 0 && t.isFinite) { throw ValidationError("--max-tpot must be a positive number of seconds, got \(t)") }
        _ = try parsedFeatures()
    }

    func parsedFeatures() throws -> Set<EstimateRequest.Feature> { try Self.features(features) }

    /// `--gpu-hour-price`, the same bound for every command that takes it.
    static func checkGPUHourPrice(_ price: Double?) throws {
        if let p = price, !(p > 0 && p <= 1e6) { throw ValidationError("--gpu-hour-price must be in (0, 10^6] USD, got \(p)") }
    }

    /// Parses --features (shared with serve).
    static func features(_ list: String?) throws -> Set<EstimateRequest.Feature> {
        guard let list else { return [] }
        return Set(try list.split(separator: ",").map { name in
            guard let f = EstimateRequest.Feature(rawValue: String(name)) else {
                throw ValidationError("unknown feature '\(name)' (\(EstimateRequest.featureList))")
            }
            return f
        })
    }

    func request(model: ModelSpec, cluster: Cluster, layout: Layout?, weights: WeightFormat,
                 kvCache: KVCacheFormat) throws -> EstimateRequest {
        var r = EstimateRequest(model: model, cluster: cluster, layout: layout, weights: weights, kvCache: kvCache,
                                inputTokens: input, outputTokens: output, decodeBatchPerGPU: batchPerGpu,
                                prefillTokensPerGPU: prefillTokens, features: try parsedFeatures(),
                                prefixCacheHitRate: prefixCacheHitRate, expertSkew: expertSkew, gpuHourPrice: gpuHourPrice)
        r.energy = energy.settings
        r.allowLongerContext = allowLongerContext
        // A request no layout could price (a context past the model's) is said as such, not as
        // "no layout fits".
        do { try Estimator.check(r) } catch { throw ValidationError("\(error)") }
        return r
    }
}

enum EstimateJSON {
    static func object(_ e: Estimate) -> [String: Any] {
        var json: [String: Any] = [
            "input_tokens_per_s_per_gpu": e.inputTokensPerSecondPerGPU,
            "output_tokens_per_s_per_gpu": e.outputTokensPerSecondPerGPU,
            "output_tokens_per_s_per_user": e.outputTokensPerSecondPerUser,
            "offline_output_tokens_per_s_per_gpu": e.offlineOutputTokensPerSecondPerGPU,
            "ttft_s": e.timeToFirstToken, "tpot_s": e.timePerOutputToken, "end_to_end_s": e.endToEndLatency,
            "bottleneck": e.decodeStep.bottleneck.rawValue,
            "prefill_bottleneck": e.prefillStep.bottleneck.rawValue,
            "decode_breakdown_percent": e.decodeStep.breakdown, "prefill_breakdown_percent": e.prefillStep.breakdown,
            "decode_step_s": e.decodeStep.total, "prefill_step_s": e.prefillStep.total,
            "batch_per_gpu": e.decodeBatchPerGPU, "prefill_tokens_per_gpu": e.prefillTokensPerGPU,
            "layout": PlanJSON.layout(e.plan),
        ]
        if let c = e.costPerMillionOutputTokens { json["cost_per_million_output_tokens"] = c }
        if let c = e.costPerMillionInputTokens { json["cost_per_million_input_tokens"] = c }
        if let p = e.gpuHourPrice { json["gpu_hour_price"] = p }
        json.merge(EnergyOutput.json(e.energy)) { a, _ in a }
        return json
    }
}

extension Output {
    static func seconds(_ s: Double) -> String {
        s >= 1 ? fixed(s, 2) + " s" : (s >= 1e-3 ? fixed(s * 1e3, 1) + " ms" : fixed(s * 1e6, 0) + " µs")
    }

    static func rate(_ r: Double) -> String {
        r >= 1e4 ? Output.grouped(Int(r.rounded())) : fixed(r, r >= 100 ? 0 : 1)
    }

    /// Dollars to the cent above $1, to a tenth of a cent above 1¢, else to two significant
    /// digits (a request's cost is often a fraction of a cent).
    static func dollars(_ d: Double?) -> String {
        guard let d else { return "—" }
        if d >= 1 { return "$" + fixed(d, 2) }
        if d >= 0.01 || d <= 0 { return "$" + fixed(d, 3) }
        return "$" + String(format: "%.2g", d)
    }

    static func breakdown(_ step: StepTime) -> String {
        let b = step.breakdown
        return ["compute", "memory", "communication", "overhead"].map { "\($0) \(fixed(b[$0] ?? 0, 0))%" }
            .joined(separator: ", ")
    }
}
