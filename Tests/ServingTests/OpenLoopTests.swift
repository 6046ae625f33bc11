import Foundation
import Testing
import TestSupport
@testable import Estimator
@testable import Hardware
@testable import ModelSpec
@testable import Planner
@testable import Serving

/// The open-loop simulation against queueing theory, conservation laws and known reuse patterns.
@Suite struct OpenLoopTests {
    func serving(_ m: String = "mixtral-8x7b", gpus: Int = 2, input: Int = 512, output: Int = 64, budget: Int? = nil,
                 layout: Layout = Layout(attention: .tensor, tp: 2, ep: 1, pp: 1, moeTP: 2)) throws -> ServingRequest {
        let base = EstimateRequest(model: try model(m), cluster: try Cluster(gpu: gpu("h200-sxm"), gpuCount: gpus), layout: layout,
                                   weights: .fp8, inputTokens: input, outputTokens: output)
        return ServingRequest(base: base, concurrency: 1, tokenBudget: budget)
    }

    /// M/D/1: prompts of a fixed length, one per step (the budget holds exactly one), answers of
    /// one token: a single server with a fixed service time S. Poisson arrivals at load ρ wait
    /// ρS / (2(1 − ρ)) on average (Pollaczek–Khinchine), so TTFT = S + that.
    @Test(arguments: [0.3, 0.6])
    func fixedServiceTimeIsMD1(load: Double) throws {
        let r = try serving(input: 512, output: 1, budget: 512)
        let alone = try ServingEstimator.serve(OpenLoopRequest(serving: r, arrivals: .process(.poisson(rate: 0.01), count: 20)))
        let service = alone.estimate.ttft.mean
        #expect(alone.estimate.ttft.p99 <= alone.estimate.ttft.median * 1.02)
        let busy = try ServingEstimator.serve(OpenLoopRequest(serving: r, arrivals: .process(.poisson(rate: load / service), count: 40_000)))
        let expected = service + load * service / (2 * (1 - load))
        #expect(abs(busy.estimate.ttft.mean / expected - 1) < 0.04, "TTFT \(busy.estimate.ttft.mean) vs \(expected)")
    }

    /// Disaggregated, answers of one token: the prefill makes the whole answer, so a request ends
    /// when the decode pool takes it in (SGLang's prebuilt batch finishes it), without a decode
    /// step: its end-to-end time is its time to first token.
    @Test func oneTokenAnswersEndAtDecodeAdmission() throws {
        var r = try serving(gpus: 4, input: 512, output: 64)
        r.base.layout = nil
        let tp2 = Layout(attention: .tensor, tp: 2, ep: 1, pp: 1, moeTP: 2)
        r.disaggregation = Disaggregation(prefill: .init(gpus: 2, workers: 1, layout: tp2), decode: .init(gpus: 2, workers: 1, layout: tp2))
        // A trace may ask for one token (synthetic disaggregated lengths start at two).
        let path = try writeTrace((0..<50).map { i in "\(Double(i) * 2),512,1" }.reduce(into: ["arrival_s,input_tokens,output_tokens"]) { $0.append($1) },
                                  suffix: "csv")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let result = try ServingEstimator.serve(OpenLoopRequest(serving: r, arrivals: .trace(path: path)))
        #expect(result.completed == 50)
        #expect(abs(result.estimate.endToEnd.mean - result.estimate.ttft.mean) < 1e-9,
                "end to end \(result.estimate.endToEnd.mean) s, first token \(result.estimate.ttft.mean) s")
    }

    /// Little's law over time: requests in the system (the sampled queue plus the running) =
    /// arrival rate × mean time in the system; and every request and token is accounted for.
    @Test func littlesLawAndConservation() throws {
        let r = try serving(input: 512, output: 64)
        let rate = 6.0, count = 6_000
        let result = try ServingEstimator.serve(OpenLoopRequest(serving: r, arrivals: .process(.poisson(rate: rate), count: count),
                                                                seriesPoints: 2_000))
        #expect(result.completed == count)
        let inSystem = result.series.reduce(0.0) { $0 + Double($1.queued + $1.running) } / Double(result.series.count)
        let little = rate * result.estimate.endToEnd.mean
        #expect(abs(inSystem / little - 1) < 0.06, "\(inSystem) in the system vs λW = \(little)")
        let outputTokens = result.estimate.outputTokensPerSecondPerGPU * 2 * result.simulatedSeconds
        #expect(abs(outputTokens / Double(count * 64) - 1) < 0.01, "\(outputTokens) output tokens")
        #expect(result.preemptions == 0 && result.kvUtilizationMax < 0.5)
    }

    /// The mean KV use is the time average of the tokens held: one request at a time holds its
    /// prompt P, then P + 1, P + 2, … up to P + O − 1 over steps of near-equal length, so its mean
    /// over the busy time is (P + O/2) and its maximum P + O − 1, both over the same pool.
    @Test func kvUseIsTheTimeAverageOfTheTokensHeld() throws {
        let p = 64.0, o = 512.0
        let result = try ServingEstimator.serve(OpenLoopRequest(serving: try serving(input: Int(p), output: Int(o)),
                                                                arrivals: .process(.poisson(rate: 0.01), count: 4)))
        let expected = (p + o / 2) / (p + o - 1)
        let ratio = result.kvUtilizationMean / result.kvUtilizationMax
        #expect(abs(ratio / expected - 1) < 0.03, "mean / max KV use \(ratio) vs \(expected)")
    }

    func writeTrace(_ lines: [String], suffix: String = "jsonl") throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("moesim-trace-\(UUID()).\(suffix)").path
        try lines.joined(separator: "\n").write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// A trace replays to the same numbers; a shared 512-token prefix of 1,024-token prompts,
    /// spaced so that each request finds the previous one's prefix resident, is served from the
    /// cache for every request but the first: hit rate 99 × 512 / (100 × 1,024).
    @Test func traceReplayAndPrefixReuse() throws {
        let lines = (0..<100).map { i in
            #"{"arrival_s": \#(Double(i) * 2), "input_tokens": 1024, "output_tokens": 16, "prefix_id": "system", "prefix_tokens": 512}"#
        }
        let path = try writeTrace(lines)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let r = try serving(input: 1024, output: 16)
        let a = try ServingEstimator.serve(OpenLoopRequest(serving: r, arrivals: .trace(path: path)))
        let b = try ServingEstimator.serve(OpenLoopRequest(serving: r, arrivals: .trace(path: path)))
        #expect(a.completed == 100 && a.estimate.ttft == b.estimate.ttft && a.estimate.endToEnd == b.estimate.endToEnd)
        #expect(abs(a.prefixCacheHitRate - 99.0 * 512 / (100 * 1024)) < 1e-9, "hit rate \(a.prefixCacheHitRate)")
        // Without the shared prefix the same prompts take longer to prefill.
        let cold = try writeTrace((0..<100).map { i in "\(Double(i) * 2),1024,16" }.reduce(into: ["arrival_s,input_tokens,output_tokens"]) { $0.append($1) },
                                  suffix: "csv")
        defer { try? FileManager.default.removeItem(atPath: cold) }
        let c = try ServingEstimator.serve(OpenLoopRequest(serving: r, arrivals: .trace(path: cold)))
        #expect(c.prefixCacheHitRate == 0 && c.estimate.ttft.median > a.estimate.ttft.median)
    }

    /// Preemption happens only when the KV pool is full: long answers at a load the pool cannot
    /// hold preempt; the same load with short answers does not.
    @Test func preemptionOnlyWhenFull() throws {
        let r = try serving("llama3.1-70b", gpus: 1, input: 8192, output: 4096, layout: Layout(attention: .tensor, tp: 1, ep: 1, pp: 1))
        let full = try ServingEstimator.serve(OpenLoopRequest(serving: r, arrivals: .process(.poisson(rate: 50), count: 300)))
        #expect(full.preemptions > 0 && full.kvUtilizationMax > 0.9)
        var short = r
        short.base.outputTokens = 8
        let light = try ServingEstimator.serve(OpenLoopRequest(serving: short, arrivals: .process(.poisson(rate: 0.5), count: 100)))
        #expect(light.preemptions == 0 && light.kvUtilizationMax < 0.9)
        #expect(full.completed == 300)
        // A preempted request's prompt is prefilled again but served once: the input counted is
        // the 300 prompts' tokens, as a benchmark client counts them.
        let input = full.estimate.inputTokensPerSecondPerGPU * full.simulatedSeconds
        #expect(abs(input / (300 * 8192) - 1) < 0.01, "\(input) input tokens for 300 prompts of 8,192")
    }

    /// A folder as a trace, a rate outside 10^-6…10^6 per second, or an infinite target is a
    /// clear error, never an abort or an answer from a clock that has lost its precision.
    @Test func unusableOpenLoopsAreRefused() throws {
        let base = try serving()
        do {
            _ = try ServingEstimator.serve(OpenLoopRequest(serving: base, arrivals: .trace(path: NSTemporaryDirectory())))
            Issue.record("a folder was read as a trace")
        } catch {
            #expect("\(error)".contains("cannot be read"), "\(error)")
        }
        for rate in [1e-9, 1e7, .infinity] {
            #expect(throws: ServingError.self) {
                try ServingEstimator.serve(OpenLoopRequest(serving: base, arrivals: .process(.poisson(rate: rate), count: 3)))
            }
        }
        #expect(throws: ServingError.self) {
            try ServingEstimator.serve(OpenLoopRequest(serving: base, arrivals: .process(.poisson(rate: 1), count: 3),
                                                       slo: (ttft: .infinity, tpot: 1)))
        }
    }

    @Test func badTracesNameTheLine() throws {
        for (text, needle) in [("{\"arrival_s\": 1, \"input_tokens\": 10}", "output_tokens"),
                               ("{\"arrival_s\": 2, \"input_tokens\": 10, \"output_tokens\": 4}\n{\"arrival_s\": 1, \"input_tokens\": 10, \"output_tokens\": 4}", "line 2"),
                               ("not json", "line 1"),
                               ("{\"arrival_s\": 1, \"input_tokens\": 10, \"output_tokens\": 4, \"prefix_tokens\": 5}", "needs a prefix_id"),
                               ("{\"arrival_s\": 1, \"input_tokens\": 10, \"output_tokens\": 4, \"prefix_id\": 1, \"prefix_tokens\": 11}", "prefix_tokens")] {
            let path = try writeTrace([text])
            defer { try? FileManager.default.removeItem(atPath: path) }
            do {
                _ = try ServingEstimator.serve(OpenLoopRequest(serving: try serving(), arrivals: .trace(path: path)))
                Issue.record("no error for \(text)")
            } catch {
                #expect("\(error)".contains(needle), "\(error)")
            }
        }
    }
}

/// The open loop fed at the rate a closed loop of N requests completes agrees with it: about N
/// requests in the system on average and the same time per output token. Poisson arrivals make
/// the batch fluctuate around N where the closed loop holds it at N, and a fuller queue at times:
/// a 15% tolerance on the requests in the system, 10% on the median TPOT.
@Suite struct OpenAgainstClosedLoopTests {
    @Test func openLoopAtTheClosedLoopsRate() throws {
        let base = EstimateRequest(model: try model("mixtral-8x7b"), cluster: try Cluster(gpu: gpu("h200-sxm"), gpuCount: 2),
                                   layout: Layout(attention: .tensor, tp: 2, ep: 1, pp: 1, moeTP: 2), weights: .fp8,
                                   inputTokens: 512, outputTokens: 128)
        let closed = try ServingEstimator.estimate(ServingRequest(base: base, concurrency: 32))
        let open = try ServingEstimator.serve(OpenLoopRequest(serving: ServingRequest(base: base, concurrency: 1),
                                                              arrivals: .process(.poisson(rate: closed.requestsPerSecond), count: 20_000),
                                                              seriesPoints: 2_000))
        let inSystem = open.series.reduce(0.0) { $0 + Double($1.queued + $1.running) } / Double(open.series.count)
        #expect(abs(inSystem / 32 - 1) < 0.15, "\(inSystem) in the system")
        #expect(abs(open.estimate.tpot.median / closed.tpot.median - 1) < 0.10,
                "TPOT open \(open.estimate.tpot.median) vs closed \(closed.tpot.median)")
    }
}

/// M/G/1 (Pollaczek–Khinchine): prompts run whole (no chunked prefill), one a step (any two
/// exceed the budget), answers of one token: a single FIFO server whose service time is that of
/// the prompt's length. With lengths 320 and 512 drawn evenly, E[S] and E[S²] follow from the two
/// service times measured alone, and the mean wait is λE[S²] / (2(1 − ρ)).
@Suite struct MG1Tests {
    @Test func twoPointServiceIsMG1() throws {
        let base = EstimateRequest(model: try model("mixtral-8x7b"), cluster: try Cluster(gpu: gpu("h200-sxm"), gpuCount: 2),
                                   layout: Layout(attention: .tensor, tp: 2, ep: 1, pp: 1, moeTP: 2), weights: .fp8,
                                   inputTokens: 512, outputTokens: 1)
        func request(_ input: Int, _ range: LengthRange) -> ServingRequest {
            var b = base
            b.inputTokens = input
            var r = ServingRequest(base: b, concurrency: 1, inputRange: range, tokenBudget: 512)
            r.chunkedPrefill = false
            return r
        }
        let short = try ServingEstimator.serve(OpenLoopRequest(serving: request(320, .fixed), arrivals: .process(.poisson(rate: 0.01), count: 10)))
        let long = try ServingEstimator.serve(OpenLoopRequest(serving: request(512, .fixed), arrivals: .process(.poisson(rate: 0.01), count: 10)))
        let s1 = short.estimate.ttft.mean, s2 = long.estimate.ttft.mean
        let mean = (s1 + s2) / 2, square = (s1 * s1 + s2 * s2) / 2
        // Prompts of 320 or 512 tokens: a trace with the two lengths alternating at Poisson times.
        let rate = 0.5 / mean
        var random = SeededRandom(state: 3)
        var time = 0.0
        var lines = ["arrival_s,input_tokens,output_tokens"]
        for _ in 0..<30_000 {
            time += random.exponential(mean: 1 / rate)
            lines.append("\(time),\(random.nextUInt64() % 2 == 0 ? 320 : 512),1")
        }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("moesim-mg1-\(UUID()).csv").path
        try lines.joined(separator: "\n").write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let busy = try ServingEstimator.serve(OpenLoopRequest(serving: request(512, .fixed), arrivals: .trace(path: path)))
        let rho = rate * mean
        let expected = mean + rate * square / (2 * (1 - rho))
        #expect(abs(busy.estimate.ttft.mean / expected - 1) < 0.04, "TTFT \(busy.estimate.ttft.mean) vs \(expected)")
    }
}
