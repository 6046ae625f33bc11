import ConfigFile
import Foundation
import Testing
@testable import Estimator
@testable import Hardware
@testable import ModelSpec
@testable import Planner

let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

func model(_ id: String) throws -> ModelSpec {
    try ModelSpec(contentsOf: root.appendingPathComponent("configs/models/\(id).json").path, id: id)
}

func gpu(_ id: String) throws -> HardwareSpec {
    try HardwareSpec(contentsOf: root.appendingPathComponent("configs/hardware/\(id).json").path)
}

@Suite struct ValidationTests {
    /// The issue's target on the published set: median |error| ≤ 25%, no entry off by 2× or more.
    @Test func publishedMeasurementsAreWithinTarget() throws {
        let report = try Validation.run(file: root.appendingPathComponent("configs/validation/published.json").path,
                                        loadModel: model, loadGPU: gpu)
        #expect(report.entries.count == 8)
        #expect(report.entries.allSatisfy { $0.skipped == nil })
        let median = try #require(report.medianAbsoluteError)
        #expect(median <= 0.25, "median |error| \(median)")
        for e in report.entries {
            let ratio = (e.predicted ?? 0) / e.measured
            #expect(ratio > 0.5 && ratio < 2, "\(e.id): predicted \(e.predicted ?? 0), measured \(e.measured)")
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
        let report = try Validation.run(file: file.path, loadModel: model, loadGPU: gpu)
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

    @Test func malformedFilesNameTheField() throws {
        let dir = FileManager.default.temporaryDirectory
        for (text, field) in [
            (#"{"schema": "other", "entries": []}"#, "schema"),
            (#"{"schema": "moesim-measurements/1"}"#, "entries"),
            (#"{"schema": "moesim-measurements/1", "entries": [{"id": "x", "metric": "watts", "value": 1}]}"#, "metric"),
            (#"{"schema": "moesim-measurements/1", "entries": [{"id": "x", "metric": "output_tokens_per_s_per_gpu", "value": -1}]}"#, "value"),
        ] {
            let file = dir.appendingPathComponent("moesim-bad-\(UUID()).json")
            try text.write(to: file, atomically: true, encoding: .utf8)
            defer { try? FileManager.default.removeItem(at: file) }
            do {
                _ = try Validation.run(file: file.path, loadModel: model, loadGPU: gpu)
                Issue.record("no error for \(text)")
            } catch {
                #expect("\(error)".contains(field), "\(error)")
            }
        }
    }
}

@Suite struct RooflineTests {
    func request(_ m: String, _ g: HardwareSpec, gpus: Int = 1, input: Int = 1000, output: Int = 0, batch: Int = 1,
                 weights: WeightFormat = .fp8) throws -> EstimateRequest {
        EstimateRequest(model: try model(m), cluster: try Cluster(gpu: g, gpuCount: gpus), weights: weights,
                        inputTokens: input, outputTokens: output, decodeBatchPerGPU: batch)
    }

    /// Doubling every peak FLOP/s halves the compute-bound part of a prefill step.
    @Test func doublingPeakHalvesComputeBoundTime() throws {
        let h200 = try gpu("h200-sxm")
        var faster = h200
        faster.peakFlops = faster.peakFlops.mapValues { $0 * 2 }
        let layout = Layout(attention: .tensor, tp: 1, ep: 1, pp: 1)
        let slow = try Estimator.estimate(request("llama3.1-70b", h200), layout: layout).prefillStep
        let fast = try Estimator.estimate(request("llama3.1-70b", faster), layout: layout).prefillStep
        #expect(slow.bottleneck == .compute)
        #expect(abs(fast.compute - slow.compute / 2) / slow.compute < 1e-9)
    }

    /// A dense model decoding one sequence reads every weight once per token: the memory-bound time
    /// ≈ weight bytes / achievable bandwidth (the KV of 1,000 tokens and activations add a few %);
    /// kernel launches come on top.
    /// The time split by part of the model adds up to the step's compute and memory time.
    @Test func partsOfAStepAddUp() throws {
        let h200 = try gpu("h200-sxm")
        let e = try Estimator.estimate(request("kimi-k2", h200, gpus: 16))
        for step in [e.prefillStep, e.decodeStep] {
            let parts = step.blocks.values.reduce(0, +)
            #expect(abs(parts - (step.compute + step.memory)) <= 1e-9 * parts)
            #expect(step.blocks[.moe] ?? 0 > 0 && step.blocks[.attention] ?? 0 > 0)
        }
    }

    @Test func denseDecodeAtBatchOneIsWeightBytesOverBandwidth() throws {
        let h200 = try gpu("h200-sxm")
        let m = try model("llama3.1-70b")
        let e = try Estimator.estimate(request("llama3.1-70b", h200), layout: Layout(attention: .tensor, tp: 1, ep: 1, pp: 1))
        // Every weight but the embedding table, of which one row per token is read.
        let read = Double(m.weightBytes(.fp8) { $0.category != .embeddings && $0.category != .mtp })
        let expected = read / (h200.memoryBandwidth * h200.efficiency.memory)
        #expect(e.decodeStep.bottleneck == .memory)
        let memoryBound = e.decodeStep.memory
        #expect(memoryBound >= expected && memoryBound < expected * 1.05, "\(memoryBound) vs \(expected)")
        #expect(e.timePerOutputToken < expected * 1.25)
    }

    @Test func longerContextNeverMakesDecodeFaster() throws {
        let h200 = try gpu("h200-sxm")
        var last = 0.0
        for context in [1024, 8192, 32_768, 131_072] {
            let e = try Estimator.estimate(request("kimi-k2", h200, gpus: 16, input: context, batch: 8),
                                           layout: Layout(attention: .data, tp: 1, ep: 16, pp: 1))
            #expect(e.timePerOutputToken >= last)
            last = e.timePerOutputToken
        }
    }

    @Test func cachedPrefixesCutPrefillCompute() throws {
        let h200 = try gpu("h200-sxm")
        var r = try request("llama3.1-70b", h200, input: 8192)
        let layout = Layout(attention: .tensor, tp: 1, ep: 1, pp: 1)
        let cold = try Estimator.estimate(r, layout: layout)
        r.prefixCacheHitRate = 0.5
        let warm = try Estimator.estimate(r, layout: layout)
        #expect(warm.timeToFirstToken < cold.timeToFirstToken)
        #expect(warm.inputTokensPerSecondPerGPU > cold.inputTokensPerSecondPerGPU)
        r.prefixCacheHitRate = 1
        #expect(throws: EstimateError.self) { try Estimator.estimate(r) }
    }

    /// Cost is the GPU-hour price spread over the tokens of an hour.
    @Test func costFollowsThroughput() throws {
        let e = try Estimator.estimate(request("llama3.1-70b", gpu("h200-sxm"), batch: 16),
                                       layout: Layout(attention: .tensor, tp: 1, ep: 1, pp: 1))
        let price = try #require(e.gpuHourPrice)
        #expect(abs((e.costPerMillionOutputTokens ?? 0) - price / 3600 / e.outputTokensPerSecondPerGPU * 1e6) < 1e-9)
        #expect(abs(e.outputTokensPerSecondPerUser - 1 / e.timePerOutputToken) < 1e-12)
    }
}

/// The layout search against brute force over the same points: the best point is the fastest
/// per GPU among those within the latency limit, and the Pareto front holds exactly the points
/// no other beats on both throughput per GPU and tokens/s per user.
@Suite struct LayoutSearchTests {
    @Test func bestAndParetoFrontMatchBruteForce() throws {
        let request = EstimateRequest(model: try model("mixtral-8x7b"), cluster: try Cluster(gpu: gpu("h200-sxm"), gpuCount: 4),
                                      weights: .fp8, inputTokens: 2048, outputTokens: 512)
        let limit = 0.03
        let result = LayoutSearch.search(request, maxTPOT: limit)
        #expect(result.evaluated > 10)
        let allowed = result.all.filter { $0.timePerOutputToken <= limit }
        let fastest = allowed.map(\.outputTokensPerSecondPerGPU).max()
        #expect(result.best?.outputTokensPerSecondPerGPU == fastest)
        #expect((result.best?.timePerOutputToken ?? 1) <= limit)
        func dominated(_ e: Estimate) -> Bool {
            result.all.contains {
                $0.outputTokensPerSecondPerGPU >= e.outputTokensPerSecondPerGPU
                    && $0.outputTokensPerSecondPerUser >= e.outputTokensPerSecondPerUser
                    && ($0.outputTokensPerSecondPerGPU > e.outputTokensPerSecondPerGPU
                        || $0.outputTokensPerSecondPerUser > e.outputTokensPerSecondPerUser)
            }
        }
        #expect(!result.pareto.isEmpty && result.pareto.allSatisfy { !dominated($0) })
        let undominated = result.all.filter { !dominated($0) }.count
        #expect(result.pareto.count <= undominated && result.pareto.count >= 1)
        // Along the front, more tokens/s per user costs throughput per GPU.
        for (a, b) in zip(result.pareto, result.pareto.dropFirst()) {
            #expect(a.outputTokensPerSecondPerUser <= b.outputTokensPerSecondPerUser)
            #expect(a.outputTokensPerSecondPerGPU >= b.outputTokensPerSecondPerGPU)
        }
    }
}
