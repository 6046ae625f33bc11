import ConfigFile
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
}

public enum Validation {
    public static let schema = "moesim-measurements/1"
    static let metrics = ["input_tokens_per_s_per_gpu", "output_tokens_per_s_per_gpu", "output_tokens_per_s_per_user"]

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
            var entry = ValidationEntry(id: id, metric: metric, measured: measured)
            guard metrics.contains(metric) else {
                throw e.error("metric", "must be one of \(metrics.joined(separator: ", ")), got \"\(metric)\"")
            }
            let model: ModelSpec, gpu: HardwareSpec
            do { model = try loadModel(try e.requiredString("model")) } catch {
                entry.skipped = "unknown model: \(error)"
                entries.append(entry)
                continue
            }
            do { gpu = try loadGPU(try e.requiredString("gpu")) } catch {
                entry.skipped = "unknown gpu: \(error)"
                entries.append(entry)
                continue
            }
            do {
                let (value, estimate) = try price(e, model: model, gpu: gpu, metric: metric)
                entry.predicted = value
                entry.layout = estimate.plan.layout.description
                let step = try e.requiredString("phase") == "prefill" ? estimate.prefillStep : estimate.decodeStep
                entry.bottleneck = step.bottleneck.rawValue
            } catch let error as ConfigError {
                throw error
            } catch {
                entry.skipped = "\(error)"
            }
            entries.append(entry)
        }
        return ValidationReport(entries: entries)
    }

    static func price(_ e: JSONObject, model: ModelSpec, gpu: HardwareSpec, metric: String) throws -> (Double, Estimate) {
        let gpus = try e.requiredInt("gpus", atLeast: 1)
        let cluster = try Cluster(gpu: gpu, gpuCount: gpus)
        let weightsText = try e.requiredString("weights")
        guard let weights = WeightFormat(argument: weightsText) else { throw e.error("weights", "unknown format \"\(weightsText)\"") }
        let kvText = try e.string("kv_cache") ?? "bf16"
        guard let kv = KVCacheFormat(rawValue: kvText) else { throw e.error("kv_cache", "unknown format \"\(kvText)\"") }
        var layout: Layout? = nil
        if let l = try e.object("layout") {
            let mode = try l.string("attention") ?? "tp"
            guard let attention = Layout.AttentionMode(rawValue: mode) else { throw l.error("attention", "must be tp or dp") }
            layout = Layout(attention: attention, tp: try l.int("tp") ?? 1, ep: try l.int("ep") ?? 1,
                            pp: try l.int("pp") ?? 1, moeTP: try l.int("moe_tp") ?? 1)
        }
        let features = Set(try e.stringArray("features") ?? []).compactMap(EstimateRequest.Feature.init(rawValue:))
        let phase = try e.requiredString("phase")
        let input = try e.requiredInt("input_tokens", atLeast: 1)
        let output = try e.int("output_tokens")
        let batch = try e.int("batch_per_gpu")
        var request = EstimateRequest(model: model, cluster: cluster, layout: layout, weights: weights, kvCache: kv,
                                      inputTokens: input, outputTokens: output ?? 0, features: Set(features))
        switch phase {
        case "prefill":
            request.prefillTokensPerGPU = batch
            let estimate = try Estimator.estimate(request)
            return (estimate.inputTokensPerSecondPerGPU, estimate)
        case "decode":
            // A decode measurement at a fixed KV length: the context stays at input_tokens.
            request.decodeBatchPerGPU = batch
            if output == nil { request.outputTokens = 0 }
            let estimate = try Estimator.estimate(request)
            let value = metric == "output_tokens_per_s_per_user" ? estimate.outputTokensPerSecondPerUser
                                                                 : estimate.outputTokensPerSecondPerGPU
            return (value, estimate)
        case "offline":
            request.decodeBatchPerGPU = batch
            guard output != nil else { throw e.error("output_tokens", "is needed for an offline entry") }
            let estimate = try Estimator.estimate(request)
            return (estimate.offlineOutputTokensPerSecondPerGPU, estimate)
        default:
            throw e.error("phase", "must be prefill, decode or offline, got \"\(phase)\"")
        }
    }
}
