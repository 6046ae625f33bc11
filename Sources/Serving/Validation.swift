import ConfigFile
import Estimator
import Foundation
import Hardware
import ModelSpec
import Planner

/// One entry of a moesim-measurements/1 file priced by the estimator.
public struct ValidationEntry: Sendable {
    public var id: String
    public var metric: String
    public var measured: Double
    /// nil when the entry was skipped.
    public var predicted: Double?
    /// Why an entry was skipped.
    public var skipped: String?
    public var layout: String?
    public var bottleneck: String?

    /// predicted / measured − 1.
    public var error: Double? { predicted.map { $0 / measured - 1 } }
}

public struct ValidationReport: Sendable {
    public var entries: [ValidationEntry]

    public var medianAbsoluteError: Double? {
        let errors = entries.compactMap(\.error).map(abs).sorted()
        guard !errors.isEmpty else { return nil }
        let mid = errors.count / 2
        return errors.count % 2 == 1 ? errors[mid] : (errors[mid - 1] + errors[mid]) / 2
    }

    /// Priced entries whose prediction is within `factor` of the measurement either way
    /// (1/factor ≤ predicted/measured ≤ factor): the issue's targets are 1.5× and 2×.
    public func within(_ factor: Double) -> Int {
        entries.filter { e in e.predicted.map { $0 / e.measured >= 1 / factor && $0 / e.measured <= factor } ?? false }.count
    }

    /// The priced entry furthest from its measurement, by ratio either way.
    public var worst: ValidationEntry? {
        entries.filter { $0.predicted != nil }.max { a, b in
            abs(log((a.predicted ?? 1) / a.measured)) < abs(log((b.predicted ?? 1) / b.measured))
        }
    }
}

public enum Validation {
    public static let schema = "moesim-measurements/1"
    static let metrics = ["input_tokens_per_s_per_gpu", "output_tokens_per_s_per_gpu", "output_tokens_per_s_per_user",
                          "total_tokens_per_s_per_gpu", "output_tokens_per_s_per_decode_gpu",
                          "input_tokens_per_s_per_prefill_gpu", "ttft_s", "tpot_s",
                          "power_w_per_gpu", "energy_j_per_output_token"]

    /// Reads a measurements file and prices every entry. An entry whose model or GPU is unknown,
    /// or that names something this estimator cannot price, is reported as skipped with the reason;
    /// a malformed file or entry is an error naming the field.
    public static func run(file path: String, loadModel: (String) throws -> ModelSpec = { try ModelCatalog.load($0) },
                           loadGPU: (String) throws -> HardwareSpec = { try HardwareCatalog.load($0) }) throws -> ValidationReport {
        let json = try JSONObject(contentsOf: path)
        guard try json.string("schema") == schema else { throw json.error("schema", "must be \"\(schema)\"") }
        guard let raw = try json.array("entries") else { throw json.error("entries", "is missing") }
        var entries: [ValidationEntry] = []
        for (i, item) in raw.enumerated() {
            guard let values = item as? [String: Any] else { throw json.error("entries[\(i)]", "must be an object") }
            let e = JSONObject(values: values, source: json.source, path: "entries[\(i)].")
            let id = try e.requiredString("id")
            let metric = try e.requiredString("metric")
            let measured = try e.requiredPositive("value")
            guard metrics.contains(metric) else {
                throw e.error("metric", "must be one of \(metrics.joined(separator: ", ")), got \"\(metric)\"")
            }
            // `also`: more metrics of the same run, each its own row with id ID/metric.
            var rows: [(id: String, metric: String, measured: Double)] = [(id, metric, measured)]
            if let also = try e.object("also") {
                for key in also.values.keys.sorted() {
                    guard metrics.contains(key) else {
                        throw also.error(key, "is not a metric (\(metrics.joined(separator: ", ")))")
                    }
                    rows.append(("\(id)/\(key)", key, try also.requiredPositive(key)))
                }
            }
            func skip(_ reason: String) {
                for row in rows {
                    var entry = ValidationEntry(id: row.id, metric: row.metric, measured: row.measured)
                    entry.skipped = reason
                    entries.append(entry)
                }
            }
            let model: ModelSpec, gpu: HardwareSpec
            do { model = try loadModel(try e.requiredString("model")) } catch {
                skip("unknown model: \(error)")
                continue
            }
            do { gpu = try loadGPU(try e.requiredString("gpu")) } catch {
                skip("unknown gpu: \(error)")
                continue
            }
            do {
                let priced = try price(e, model: model, gpu: gpu)
                for row in rows {
                    var entry = ValidationEntry(id: row.id, metric: row.metric, measured: row.measured)
                    guard let value = priced.values[row.metric] else {
                        if row.metric.hasPrefix("power") || row.metric.hasPrefix("energy"), gpu.power == nil {
                            entry.skipped = "\(gpu.id) has no power figures (its hardware file lacks `power`)"
                            entries.append(entry)
                            continue
                        }
                        throw e.error("metric", "\(row.metric) does not apply to a \(try e.requiredString("phase")) entry")
                    }
                    entry.predicted = value
                    entry.layout = priced.layout
                    entry.bottleneck = priced.bottleneck
                    entries.append(entry)
                }
            } catch let error as ConfigError {
                throw error
            } catch {
                skip("\(error)")
            }
        }
        return ValidationReport(entries: entries)
    }

    /// What the estimator predicts for an entry: every metric it can compare, the layout and the
    /// bottleneck.
    struct Priced {
        var values: [String: Double]
        var layout: String
        var bottleneck: String?
    }

    static func layout(_ l: JSONObject) throws -> Layout {
        let mode = try l.string("attention") ?? "tp"
        guard let attention = Layout.AttentionMode(rawValue: mode) else { throw l.error("attention", "must be tp or dp") }
        return Layout(attention: attention, tp: try l.int("tp", atLeast: 1) ?? 1, ep: try l.int("ep", atLeast: 1) ?? 1,
                      pp: try l.int("pp", atLeast: 1) ?? 1, moeTP: try l.int("moe_tp", atLeast: 1) ?? 1)
    }

    static func price(_ e: JSONObject, model: ModelSpec, gpu: HardwareSpec) throws -> Priced {
        var model = model
        let gpus = try e.requiredInt("gpus", atLeast: 1)
        let cluster = try Cluster(gpu: gpu, gpuCount: gpus, wholeNodes: try e.object("disaggregated") == nil)
        let weightsText = try e.requiredString("weights")
        guard let weights = WeightFormat(argument: weightsText) else { throw e.error("weights", "unknown format \"\(weightsText)\"") }
        let kvText = try e.string("kv_cache") ?? "bf16"
        guard let kv = KVCacheFormat(rawValue: kvText) else { throw e.error("kv_cache", "unknown format \"\(kvText)\"") }
        if let name = try e.string("attention_weights") {
            guard let split = AttentionWeightSplit(rawValue: name) else {
                throw e.error("attention_weights", "must be \(AttentionWeightSplit.names) (the splits the FP4 checkpoints ship), got \"\(name)\"")
            }
            guard let priced = model.withAttentionWeights(split: split, pricedIn: weights) else {
                throw e.error("attention_weights", "changes nothing: the weights are \(weightsText)")
            }
            model = priced
        }
        let layout = try e.object("layout").map(Self.layout)
        var features: Set<EstimateRequest.Feature> = []
        var mtp = false
        for name in try e.stringArray("features") ?? [] {
            if name == "mtp" { mtp = true; continue }
            guard let f = EstimateRequest.Feature(rawValue: name) else {
                throw e.error("features", "unknown feature \"\(name)\" (\(EstimateRequest.featureList), mtp)")
            }
            features.insert(f)
        }
        let phase = try e.requiredString("phase")
        let frameworkName = try e.string("framework")
        let framework = ServingFramework(name: frameworkName ?? "")
        // The router in front of disaggregated pools: `pd_router`, else the framework's.
        let router = try Self.router(e, framework: frameworkName, serving: phase == "serving")
        // How the entry's prompt steps ran, else its framework's default (serving entries only).
        switch (phase == "serving", try e.bool("eager_prefill")) {
        case (false, _?): throw e.error("eager_prefill", "applies to serving entries")
        case (true, true?): features.insert(.eagerPrefill)
        case (true, false?) where features.contains(.eagerPrefill):
            throw e.error("eager_prefill", "false contradicts features eager-prefill")
        case (true, nil): features.formUnion(framework?.features ?? [])
        default: break
        }
        // Power and energy figures are GPU board figures unless the entry says otherwise.
        let scopeText = try e.string("energy_scope") ?? "gpu"
        guard let scope = EnergyScope(rawValue: scopeText) else { throw e.error("energy_scope", "must be gpu, node or facility") }
        let input = try e.requiredInt("input_tokens", atLeast: 1)
        let output = try e.int("output_tokens", atLeast: 0)
        let batch = try e.int("batch_per_gpu", atLeast: 1)
        var request = EstimateRequest(model: model, cluster: cluster, layout: layout, weights: weights, kvCache: kv,
                                      inputTokens: input, outputTokens: output ?? 0, features: features)
        if let reserve = try e.double("memory_reserve") {
            guard (0...MemoryModel.maxReserve).contains(reserve) else {
                throw e.error("memory_reserve", "must be 0 to \(MemoryModel.maxReserve) of each GPU's memory")
            }
            request.memoryReserve = reserve
        }
        // A measurement ran at its context, whatever the config's limit says.
        request.allowLongerContext = true
        if phase == "serving" {
            return try priceServing(e, request: request, framework: framework, router: router, mtp: mtp, scope: scope)
        }
        guard !mtp else { throw e.error("features", "mtp applies to serving entries") }
        switch phase {
        case "prefill":
            request.prefillTokensPerGPU = batch
            let estimate = try Estimator.estimate(request)
            var values = ["input_tokens_per_s_per_gpu": estimate.inputTokensPerSecondPerGPU]
            if let energy = estimate.energy {
                values["power_w_per_gpu"] = PowerModel.watts(gpuWatts: energy.inputGPUWatts, energy.power, scope: scope,
                                                             pue: energy.settings.pue)
            }
            return Priced(values: values,
                          layout: estimate.plan.layout.description, bottleneck: estimate.prefillStep.bottleneck.rawValue)
        case "decode":
            // A decode measurement at a fixed KV length: the context stays at input_tokens.
            request.decodeBatchPerGPU = batch
            if output == nil { request.outputTokens = 0 }
            let estimate = try Estimator.estimate(request)
            var values = ["output_tokens_per_s_per_gpu": estimate.outputTokensPerSecondPerGPU,
                          "output_tokens_per_s_per_user": estimate.outputTokensPerSecondPerUser]
            if let energy = estimate.energy {
                values["power_w_per_gpu"] = energy.watts(scope: scope)
                values["energy_j_per_output_token"] = energy.joulesPerOutputToken(scope: scope)
            }
            return Priced(values: values,
                          layout: estimate.plan.layout.description, bottleneck: estimate.decodeStep.bottleneck.rawValue)
        case "offline":
            request.decodeBatchPerGPU = batch
            guard output != nil else { throw e.error("output_tokens", "is needed for an offline entry") }
            let estimate = try Estimator.estimate(request)
            var values = ["output_tokens_per_s_per_gpu": estimate.offlineOutputTokensPerSecondPerGPU]
            // (gpuSeconds is nil when a rate it needs is zero, so no division below is by zero.)
            if let energy = estimate.energy, let out = output, out > 0,
               let seconds = estimate.gpuSeconds(prompt: input, output: out), seconds > 0 {
                // Each sequence prefilled then decoded: the two phases' energies over its answer,
                // the power their time-weighted mean.
                let inputJ = PowerModel.watts(gpuWatts: energy.inputGPUWatts, energy.power, scope: scope, pue: energy.settings.pue)
                    / estimate.inputTokensPerSecondPerGPU * Double(input)
                let outputJ = energy.watts(scope: scope) / estimate.outputTokensPerSecondPerGPU * Double(out)
                values["energy_j_per_output_token"] = (inputJ + outputJ) / Double(out)
                values["power_w_per_gpu"] = (inputJ + outputJ) / seconds
            }
            return Priced(values: values,
                          layout: estimate.plan.layout.description, bottleneck: estimate.decodeStep.bottleneck.rawValue)
        default:
            throw e.error("phase", "must be prefill, decode, offline or serving, got \"\(phase)\"")
        }
    }

    /// A serving entry: a closed loop at `concurrency`, aggregated or disaggregated, priced by the
    /// serving simulation with the scheduler and prefill graphs of the entry's `framework`
    /// (`ServingFramework`).
    static func priceServing(_ e: JSONObject, request: EstimateRequest, framework: ServingFramework?, router: PrefillDecodeRouter?,
                             mtp: Bool, scope: EnergyScope) throws -> Priced {
        guard let concurrency = try e.int("concurrency", atLeast: 1) else { throw e.error("concurrency", "is needed for a serving entry") }
        guard request.outputTokens >= 1 else { throw e.error("output_tokens", "is needed for a serving entry") }
        func range(_ key: String) throws -> LengthRange {
            guard let r = try e.doubleArray(key) else { return .fixed }
            guard r.count == 2, LengthRange(lower: r[0], upper: r[1]).isValid else { throw e.error(key, "must be [lo, hi] with 0 < lo ≤ hi ≤ 1") }
            return LengthRange(lower: r[0], upper: r[1])
        }
        var disaggregation: Disaggregation? = nil
        if let d = try e.object("disaggregated") {
            func pool(_ name: String) throws -> Disaggregation.Pool {
                guard let p = try d.object(name) else { throw d.error(name, "is missing") }
                return Disaggregation.Pool(gpus: try p.requiredInt("gpus", atLeast: 1), workers: try p.int("workers", atLeast: 1) ?? 1,
                                           layout: try p.object("layout").map(Self.layout))
            }
            disaggregation = Disaggregation(prefill: try pool("prefill"), decode: try pool("decode"))
        }
        let speculative: SpeculativeDecoding? = mtp
            ? SpeculativeDecoding(draftTokens: try e.int("mtp_draft_tokens", atLeast: 1) ?? 1, acceptance: try e.double("mtp_acceptance"))
            : nil
        let serving = ServingRequest(base: request, concurrency: concurrency, inputRange: try range("input_range"),
                                     outputRange: try range("output_range"), disaggregation: disaggregation,
                                     speculative: speculative,
                                     scheduler: framework?.scheduler ?? .mixed)
        var client = serving
        client.maxBatchPerGPU = try e.int("max_batch_per_gpu", atLeast: 1)
        if let c = client.maxBatchPerGPU, c > 65_536 { throw e.error("max_batch_per_gpu", "must be 1 to 65,536") }
        func decodeRun(_ key: String) throws -> Int {
            let steps = try e.int(key, atLeast: 1) ?? 1
            guard steps <= ServingRequest.maxDecodeRun else { throw e.error(key, "must be 1 to \(ServingRequest.maxDecodeRun)") }
            return steps
        }
        client.continuousDecodeSteps = try decodeRun("continuous_decode_steps")
        client.schedulerRecvInterval = try decodeRun("scheduler_recv_interval")
        client.benchmarkPrompts = try e.int("num_prompts", atLeast: 1)
        client.overlapSchedule = try e.bool("overlap_schedule") ?? true
        client.router = router
        client.pipelinedPromptChunks = framework?.pipelinesPromptChunks ?? false
        if let n = client.benchmarkPrompts, n < concurrency { throw e.error("num_prompts", "must be at least the concurrency (\(concurrency))") }
        let s = try ServingEstimator.estimate(client)
        var values: [String: Double] = [
            "total_tokens_per_s_per_gpu": s.totalTokensPerSecondPerGPU,
            "output_tokens_per_s_per_gpu": s.outputTokensPerSecondPerGPU,
            "input_tokens_per_s_per_gpu": s.inputTokensPerSecondPerGPU,
            "output_tokens_per_s_per_user": s.outputTokensPerSecondPerUser,
            "ttft_s": s.ttft.median, "tpot_s": s.tpot.median,
        ]
        if let energy = s.energy {
            values["power_w_per_gpu"] = energy.watts(scope: scope)
            values["energy_j_per_output_token"] = energy.joulesPerOutputToken(scope: scope)
        }
        if s.disaggregated {
            values["input_tokens_per_s_per_prefill_gpu"] = s.pools[0].inputTokensPerSecondPerGPU
            values["output_tokens_per_s_per_decode_gpu"] = s.pools[1].outputTokensPerSecondPerGPU
        }
        return Priced(values: values, layout: s.deployment, bottleneck: nil)
    }

    /// A disaggregated serving entry's router: `pd_router`, else the one its framework names.
    static func router(_ e: JSONObject, framework: String?, serving: Bool) throws -> PrefillDecodeRouter? {
        let disaggregated = try e.object("disaggregated") != nil
        guard let name = try e.string("pd_router") else {
            return serving && disaggregated ? framework.flatMap { PrefillDecodeRouter(framework: $0) } : nil
        }
        guard serving else { throw e.error("pd_router", "applies to serving entries") }
        guard disaggregated else { throw e.error("pd_router", "applies to disaggregated entries") }
        guard let router = PrefillDecodeRouter(rawValue: name) else {
            throw e.error("pd_router", "must be one of \(PrefillDecodeRouter.allCases.map(\.rawValue).joined(separator: ", ")), got \"\(name)\"")
        }
        return router
    }
}
