import ConfigFile
import Foundation
import Testing
import TestSupport
@testable import Estimator
@testable import Serving
@testable import Hardware
@testable import ModelSpec
@testable import Planner

@Suite struct ValidationTests {
    /// The counts `validate` prints: a prediction within f× either way counts for f, exactly at
    /// the bound included; a skipped entry counts for none; the furthest is by ratio either way
    /// (0.4× is further than 2.2×).
    @Test func withinAndFurthest() {
        func entry(_ id: String, _ measured: Double, _ predicted: Double?) -> ValidationEntry {
            ValidationEntry(id: id, metric: "ttft_s", measured: measured, predicted: predicted)
        }
        let report = ValidationReport(entries: [entry("a", 100, 150), entry("b", 100, 60), entry("c", 100, 220),
                                                entry("d", 100, 40), entry("e", 100, nil), entry("f", 100, 200)])
        #expect(report.within(1.5) == 1)
        #expect(report.within(2) == 3)
        #expect(report.worst?.id == "d")
    }

    /// The serving runs (InferenceX, ten deployments, six metrics each): median |error| at most
    /// 15% over the 60 rows (the issue's goal; 9.2% now); the throughput and TPOT rows within
    /// 2×; the TTFT within 2× on the five single-node runs whose requests wait for the overlap scheduler's formed step (H200, B200
    /// twice, MI355X, MI325X), on B300 at C = 4 (SGLang's eager prefill), and on the two
    /// disaggregated runs whose decode engines hold fewer requests than the client sends (GB300,
    /// GB200). The other TTFT rows (the two SGLang disaggregated runs) are reported but not bounded.
    @Test func servingMeasurementsAreWithinTarget() throws {
        let report = try Validation.run(file: root.appendingPathComponent("configs/validation/serving.json").path,
                                        loadModel: { try model($0) }, loadGPU: gpu)
        #expect(report.entries.count == 60)
        #expect(report.entries.allSatisfy { $0.skipped == nil })
        let median = try #require(report.medianAbsoluteError)
        #expect(median <= 0.15, "median |error| \(median)")
        let queued = ["ix-gb300-dyntrt-fp4-mtp-1k1k-c2253/ttft_s", "ix-gb200-dyntrt-fp8-8k1k-c1229/ttft_s",
                      "ix-mi325x-sglang-fp8-1k1k-c16/ttft_s", "ix-h200-sglang-fp8-1k1k-c64/ttft_s",
                      "ix-b200-trt-fp4-1k1k-c64/ttft_s", "ix-b200-trt-fp4-tp4-8k1k-c8/ttft_s",
                      "ix-mi355x-sglang-fp8-8k1k-c64/ttft_s", "ix-b300-sglang-fp4-tp4-1k1k-c4/ttft_s"]
        #expect(report.entries.filter { queued.contains($0.id) }.count == queued.count)
        for e in report.entries where e.metric != "ttft_s" || queued.contains(e.id) {
            let ratio = (e.predicted ?? 0) / e.measured
            #expect(ratio > 0.5 && ratio < 2, "\(e.id): predicted \(e.predicted ?? 0), measured \(e.measured)")
        }
    }

    /// The published set: median |error| ≤ 15% (the serving issue's goal; 9.7% now), no
    /// entry off by 2× or more, and all but vLLM's wide-EP entry (batch not published) within 1.5×.
    @Test func publishedMeasurementsAreWithinTarget() throws {
        let report = try Validation.run(file: root.appendingPathComponent("configs/validation/published.json").path,
                                        loadModel: { try model($0) }, loadGPU: gpu)
        #expect(report.entries.count == 8)
        #expect(report.entries.allSatisfy { $0.skipped == nil })
        let median = try #require(report.medianAbsoluteError)
        #expect(median <= 0.15, "median |error| \(median)")
        for e in report.entries {
            let ratio = (e.predicted ?? 0) / e.measured
            #expect(ratio > 0.5 && ratio < 2, "\(e.id): predicted \(e.predicted ?? 0), measured \(e.measured)")
            if e.id != "vllm-h200-wide-ep-decode" {
                #expect(ratio > 1 / 1.5 && ratio < 1.5, "\(e.id): predicted \(e.predicted ?? 0), measured \(e.measured)")
            }
        }
    }

    /// validate's arithmetic on a hand-made file: signed error, median, skipped entries.
    @Test func validateArithmeticAndSkips() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("moesim-validate-\(UUID()).json")
        let text = #"""
        {"schema": "moesim-measurements/1", "entries": [
          {"id": "a", "model": "llama3.1-70b", "gpu": "h200-sxm", "gpus": 1, "weights": "fp8", "kv_cache": "bf16",
           "phase": "decode", "input_tokens": 1000, "batch_per_gpu": 1, "metric": "output_tokens_per_s_per_gpu", "value": 50},
          {"id": "b", "model": "llama3.1-70b", "gpu": "h200-sxm", "gpus": 1, "weights": "fp8", "kv_cache": "bf16",
           "phase": "decode", "input_tokens": 1000, "batch_per_gpu": 1, "metric": "output_tokens_per_s_per_gpu", "value": 100},
          {"id": "c", "model": "llama3.1-70b", "gpu": "h200-sxm", "gpus": 1, "weights": "fp8", "kv_cache": "bf16",
           "phase": "decode", "input_tokens": 1000, "batch_per_gpu": 1, "metric": "output_tokens_per_s_per_gpu", "value": 25},
          {"id": "unknown-model", "model": "gpt-9", "gpu": "h200-sxm", "gpus": 8, "weights": "fp8",
           "phase": "decode", "input_tokens": 1000, "metric": "output_tokens_per_s_per_gpu", "value": 10},
          {"id": "unknown-gpu", "model": "llama3.1-70b", "gpu": "tpu-v9", "gpus": 8, "weights": "fp8",
           "phase": "decode", "input_tokens": 1000, "metric": "output_tokens_per_s_per_gpu", "value": 10, "extra": true}
        ]}
        """#
        try text.write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let report = try Validation.run(file: file.path, loadModel: { try model($0) }, loadGPU: gpu)
        let predicted = try #require(report.entries[0].predicted)
        // The same prediction against three measured values: errors follow predicted/measured − 1.
        #expect(abs((report.entries[0].error ?? 0) - (predicted / 50 - 1)) < 1e-12)
        #expect(abs((report.entries[1].error ?? 0) - (predicted / 100 - 1)) < 1e-12)
        #expect(abs((report.entries[2].error ?? 0) - (predicted / 25 - 1)) < 1e-12)
        let sorted = [predicted / 50 - 1, predicted / 100 - 1, predicted / 25 - 1].map(abs).sorted()
        #expect(abs((report.medianAbsoluteError ?? 0) - sorted[1]) < 1e-12)
        #expect(report.entries[3].skipped?.contains("unknown model") == true)
        #expect(report.entries[4].skipped?.contains("unknown gpu") == true)
    }

    /// The held-out file is well formed: 1,166 runs with unique ids, and a run of each framework
    /// at the lowest concurrency it has (kept small for a debug build) is priced, not skipped.
    /// Its accuracy is reported in docs/validation.md, not bounded here: it is the check on runs
    /// no factor was taken from.
    @Test func heldOutFileIsWellFormed() throws {
        let url = root.appendingPathComponent("configs/validation/serving-holdout.json")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        let entries = try #require(json["entries"] as? [[String: Any]])
        #expect(entries.count == 1_166)
        #expect(Set(entries.compactMap { $0["id"] as? String }).count == entries.count)
        var sample: [String: [String: Any]] = [:]
        for e in entries where e["disaggregated"] == nil {
            let framework = e["framework"] as? String ?? ""
            if ((e["concurrency"] as? Int) ?? .max) < ((sample[framework]?["concurrency"] as? Int) ?? .max) { sample[framework] = e }
        }
        #expect(sample.count >= 3)
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("moesim-holdout-\(UUID()).json")
        let subset: [String: Any] = ["schema": "moesim-measurements/1", "entries": Array(sample.values)]
        try JSONSerialization.data(withJSONObject: subset).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let report = try Validation.run(file: file.path, loadModel: { try model($0) }, loadGPU: gpu)
        #expect(!report.entries.isEmpty)
        #expect(report.entries.allSatisfy { $0.skipped == nil && $0.predicted != nil }, "\(report.entries.filter { $0.skipped != nil })")
    }

    /// A disaggregated entry's router follows its framework's name unless `pd_router` says: MoRI's
    /// SGLang runs sit behind SGLang's router, whose wait for a busy prefill server (2K prompts on
    /// one TP2 prefill worker at 64 in flight) makes their first token later than the same run's
    /// behind Dynamo's frontend; `pd_router: dynamo` on the MoRI entry gives Dynamo's figure.
    @Test func entriesTakeTheirFrameworksRouter() throws {
        func entry(_ id: String, _ extra: String) -> String {
            #"{"id": ""# + id + #"", "metric": "ttft_s", "value": 1, "model": "mixtral-8x7b", "gpu": "h200-sxm", "gpus": 4, "#
                + #""weights": "fp8", "phase": "serving", "input_tokens": 2048, "output_tokens": 64, "concurrency": 64, "#
                + #""disaggregated": {"prefill": {"gpus": 2, "layout": {"attention": "tp", "tp": 2, "ep": 1, "pp": 1, "moe_tp": 2}}, "#
                + #""decode": {"gpus": 2, "layout": {"attention": "tp", "tp": 2, "ep": 1, "pp": 1, "moe_tp": 2}}}, "# + extra + "}"
        }
        let ttft = try predictions([entry("mori", #""framework": "mori-sglang""#), entry("dynamo", #""framework": "dynamo-sglang""#),
                                    entry("told", #""framework": "mori-sglang", "pd_router": "dynamo""#)])
        let mori = try #require(ttft["mori"]), dynamo = try #require(ttft["dynamo"]), told = try #require(ttft["told"])
        #expect(mori > dynamo, "\(mori) against \(dynamo)")
        #expect(told == dynamo)
    }

    @Test func malformedFilesNameTheField() throws {
        let dir = FileManager.default.temporaryDirectory
        for (text, field) in [
            (#"{"schema": "other", "entries": []}"#, "schema"),
            (#"{"schema": "moesim-measurements/1"}"#, "entries"),
            (#"{"schema": "moesim-measurements/1", "entries": [{"id": "x", "metric": "watts", "value": 1}]}"#, "metric"),
            (#"{"schema": "moesim-measurements/1", "entries": [{"id": "x", "metric": "output_tokens_per_s_per_gpu", "value": -1}]}"#, "value"),
            (#"{"schema": "moesim-measurements/1", "entries": [{"id": "x", "metric": "output_tokens_per_s_per_gpu", "value": 1, "#
                + #""model": "mixtral-8x7b", "gpu": "h200-sxm", "gpus": 2, "weights": "fp8", "phase": "serving", "input_tokens": 64, "#
                + #""output_tokens": 8, "concurrency": 2, "framework": "sglang", "scheduler_recv_interval": 1025}]}"#, "scheduler_recv_interval"),
            (#"{"schema": "moesim-measurements/1", "entries": [{"id": "x", "metric": "output_tokens_per_s_per_gpu", "value": 1, "#
                + #""model": "mixtral-8x7b", "gpu": "h200-sxm", "gpus": 2, "weights": "fp8", "phase": "decode", "input_tokens": 64, "#
                + #""memory_reserve": 0.95}]}"#, "memory_reserve"),
            (#"{"schema": "moesim-measurements/1", "entries": [{"id": "x", "metric": "output_tokens_per_s_per_gpu", "value": 1, "#
                + #""model": "mixtral-8x7b", "gpu": "h200-sxm", "gpus": 2, "weights": "fp4", "attention_weights": "fp8", "#
                + #""phase": "decode", "input_tokens": 64}]}"#, "attention_weights"),
            (#"{"schema": "moesim-measurements/1", "entries": [{"id": "x", "metric": "output_tokens_per_s_per_gpu", "value": 1, "#
                + #""model": "mixtral-8x7b", "gpu": "h200-sxm", "gpus": 2, "weights": "bf16", "attention_weights": "bf16-qkv", "#
                + #""phase": "decode", "input_tokens": 64}]}"#, "attention_weights"),
            (#"{"schema": "moesim-measurements/1", "entries": [{"id": "x", "metric": "output_tokens_per_s_per_gpu", "value": 1, "#
                + #""model": "mixtral-8x7b", "gpu": "h200-sxm", "gpus": 2, "weights": "fp8", "eager_prefill": true, "#
                + #""phase": "decode", "input_tokens": 64}]}"#, "eager_prefill"),
            (#"{"schema": "moesim-measurements/1", "entries": [{"id": "x", "metric": "output_tokens_per_s_per_gpu", "value": 1, "#
                + #""model": "mixtral-8x7b", "gpu": "h200-sxm", "gpus": 2, "weights": "fp8", "phase": "serving", "input_tokens": 64, "#
                + #""output_tokens": 8, "concurrency": 2, "features": ["eager-prefill"], "eager_prefill": false}]}"#, "eager_prefill"),
            (#"{"schema": "moesim-measurements/1", "entries": [{"id": "x", "metric": "output_tokens_per_s_per_gpu", "value": 1, "#
                + #""model": "mixtral-8x7b", "gpu": "h200-sxm", "gpus": 2, "weights": "fp8", "phase": "serving", "input_tokens": 64, "#
                + #""output_tokens": 8, "concurrency": 2, "pd_router": "sglang"}]}"#, "pd_router"),
            (#"{"schema": "moesim-measurements/1", "entries": [{"id": "x", "metric": "output_tokens_per_s_per_gpu", "value": 1, "#
                + #""model": "mixtral-8x7b", "gpu": "h200-sxm", "gpus": 4, "weights": "fp8", "phase": "serving", "input_tokens": 64, "#
                + #""output_tokens": 8, "concurrency": 2, "pd_router": "nginx", "disaggregated": {"prefill": {"gpus": 2, "#
                + #""layout": {"attention": "tp", "tp": 2, "ep": 1, "pp": 1, "moe_tp": 2}}, "decode": {"gpus": 2, "#
                + #""layout": {"attention": "tp", "tp": 2, "ep": 1, "pp": 1, "moe_tp": 2}}}}]}"#, "pd_router"),
            (#"{"schema": "moesim-measurements/1", "entries": [{"id": "x", "metric": "output_tokens_per_s_per_gpu", "value": 1, "#
                + #""model": "mixtral-8x7b", "gpu": "h200-sxm", "gpus": 2, "weights": "fp8", "pd_router": "dynamo", "#
                + #""phase": "decode", "input_tokens": 64}]}"#, "pd_router"),
        ] {
            let file = dir.appendingPathComponent("moesim-bad-\(UUID()).json")
            try text.write(to: file, atomically: true, encoding: .utf8)
            defer { try? FileManager.default.removeItem(at: file) }
            do {
                _ = try Validation.run(file: file.path, loadModel: { try model($0) }, loadGPU: gpu)
                Issue.record("no error for \(text)")
            } catch {
                #expect("\(error)".contains(field), "\(error)")
            }
        }
    }
}


/// The published power and energy figures and the hosted price tables.
@Suite struct EnergyAndPriceFilesTests {
    /// Every entry of the energy file is priced (none skipped) against the published power and
    /// energy measurements: median |error| at most 20% (the energy issue's goal; 18.1% now) and
    /// no entry off by 2× or more.
    @Test func energyFilePricesEveryEntry() throws {
        let report = try Validation.run(file: root.appendingPathComponent("configs/validation/energy.json").path,
                                        loadModel: { try model($0) }, loadGPU: gpu)
        #expect(!report.entries.isEmpty)
        for e in report.entries {
            let why = e.skipped ?? ""
            let p = try #require(e.predicted, "\(e.id): \(why)")
            #expect(p / e.measured > 0.5 && p / e.measured < 2, "\(e.id): predicted \(p), measured \(e.measured)")
        }
        let median = try #require(report.medianAbsoluteError)
        #expect(median <= 0.20, "median |error| \(median)")
    }

    /// The price file reads; every model with prices has exactly one reference entry; tiers
    /// pick by prompt length.
    @Test func hostedPricesRead() throws {
        let prices = try HostedPrice.load(file: root.appendingPathComponent("configs/pricing/hosted.json").path)
        for m in Set(prices.map(\.model)) {
            #expect(prices.filter { $0.model == m && $0.isReference }.count == 1, "\(m)")
        }
        let kimi = try #require(HostedPrice.reference(for: "kimi-k2", in: prices))
        #expect(kimi.provider == "moonshot" && kimi.tiers.first?.cachedInput != nil)
        let qwen = try #require(HostedPrice.reference(for: "qwen3-max-1t", in: prices))
        #expect(qwen.tier(promptTokens: 32_768)?.maxPromptTokens == 32_768)
        #expect(qwen.tier(promptTokens: 32_769)?.maxPromptTokens == 131_072)
        #expect(qwen.tier(promptTokens: 1_000_000) == nil)
    }

    /// Break-even against two figures computed apart: for answer-only requests, the utilisation
    /// at which the deployment matches the API is the estimator's own cost per million output
    /// tokens (at full use) over the API's output price; a prompt doubles the request's
    /// GPU-seconds by exactly the prefill share.
    @Test func breakEvenIsTheCostRatio() throws {
        let request = EstimateRequest(model: try model("mixtral-8x7b"), cluster: try Cluster(gpu: gpu("h200-sxm"), gpuCount: 2),
                                      layout: Layout(attention: .tensor, tp: 2, ep: 1, pp: 1, moeTP: 2), weights: .fp8,
                                      inputTokens: 1024, outputTokens: 1024)
        let e = try Estimator.estimate(request, layout: request.layout!)
        let price = HostedPrice(model: "mixtral-8x7b", provider: "test", variant: nil, date: "2026-12-01", source: "test",
                                isReference: true, tiers: [.init(maxPromptTokens: nil, input: 0.5, cachedInput: nil, output: 2)])
        let answerOnly = try #require(price.breakEven(e, input: 0, output: 1_000_000))
        let cost = try #require(e.costPerMillionOutputTokens)
        #expect(abs(answerOnly.utilisation / (cost / 2) - 1) < 1e-9)
        // With a prompt: the API charges its input too, the deployment spends prefill time.
        let both = try #require(price.breakEven(e, input: 1_000_000, output: 1_000_000))
        let gpuHour = try #require(e.gpuHourPrice)
        let prefillCost = gpuHour / 3600 / e.inputTokensPerSecondPerGPU * 1e6
        #expect(abs(both.utilisation / ((cost + prefillCost) / 2.5) - 1) < 1e-9)
    }

    /// A tier list that does not grow, or a negative price, is an error naming the field.
    @Test func malformedPricesAreRefused() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("moesim-prices-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        for (tiers, field) in [(#"[{"max_prompt_tokens": 100, "input": 1, "output": 2}, {"max_prompt_tokens": 50, "input": 1, "output": 2}]"#, "max_prompt_tokens"),
                               (#"[{"input": -1, "output": 2}]"#, "input")] {
            let path = dir.appendingPathComponent("p.json").path
            try Data(#"{"schema": "moesim-prices/1", "entries": [{"model": "m", "provider": "p", "date": "2026-01-01", "source": "s", "tiers": \#(tiers)}]}"#.utf8)
                .write(to: URL(fileURLWithPath: path))
            #expect(throws: ConfigError.self) { try HostedPrice.load(file: path) }
            do { _ = try HostedPrice.load(file: path) } catch { #expect("\(error)".contains(field), "\(error)") }
        }
    }

    /// An energy figure on hardware without power figures is skipped with the reason, and the
    /// other rows of the file are still priced.
    @Test func energyWithoutPowerFiguresIsSkipped() throws {
        let report = try Validation.run(file: root.appendingPathComponent("configs/validation/energy.json").path,
                                        loadModel: { try model($0) }, loadGPU: { id in
                                            var g = try gpu(id)
                                            if id == "b200" { g.power = nil }
                                            return g
                                        })
        let b200 = report.entries.filter { $0.id.contains("b200") }
        #expect(!b200.isEmpty && b200.allSatisfy { $0.skipped?.contains("no power figures") == true })
        #expect(report.entries.filter { $0.predicted != nil }.count == report.entries.count - b200.count)
    }
}

/// The predictions `validate` makes for measurements entries (JSON objects), by entry id.
func predictions(_ entries: [String]) throws -> [String: Double] {
    let text = #"{"schema": "moesim-measurements/1", "entries": ["# + entries.joined(separator: ", ") + "]}"
    let file = FileManager.default.temporaryDirectory.appendingPathComponent("moesim-entries-\(UUID()).json")
    try text.write(to: file, atomically: true, encoding: .utf8)
    defer { try? FileManager.default.removeItem(at: file) }
    var predicted: [String: Double] = [:]
    for e in try Validation.run(file: file.path, loadModel: { try model($0) }, loadGPU: gpu).entries { predicted[e.id] = e.predicted }
    return predicted
}
