import Testing
import TestSupport
@testable import Estimator
@testable import Hardware
@testable import ModelSpec
@testable import Planner
@testable import Serving

/// The report's long request: one prompt that fills the model's context, priced fresh and with
/// all but its new tokens served from the prefix cache.
@Suite struct LongRequestTests {
    @Test func aContextFillingPromptCostsAtLeastItsFLOPs() throws {
        let spec = try model("mixtral-8x7b"), h200 = try gpu("h200-sxm")
        let request = EstimateRequest(model: spec, cluster: try Cluster(gpu: h200, gpuCount: 2), weights: .fp8,
                                      inputTokens: 1024, outputTokens: 256)
        let long = try #require(MainReport.longRequest(request, spec: spec, hosted: nil))
        // The prompt and its answer fill the context; all but the request's own prompt is cached.
        #expect(long.promptTokens + long.outputTokens == spec.maxPositionEmbeddings)
        #expect(long.cachedTokens == long.promptTokens - request.inputTokens)
        let fresh = try #require(long.fresh.gpuSeconds(prompt: long.promptTokens, output: long.outputTokens))
        let cached = try #require(long.cached.gpuSeconds(prompt: long.promptTokens, output: long.outputTokens))
        // The roofline's floor: 2 FLOPs per active parameter per prompt token at the GPU's fp8
        // peak (attention only adds to it). The cached prompt computes only its new tokens.
        let peak = try #require(h200.peakFlops["fp8"])
        let flopSeconds = { (tokens: Int) in 2 * Double(spec.parameterCounts.active) * Double(tokens) / peak }
        #expect(fresh >= flopSeconds(long.promptTokens), "\(fresh) GPU-s")
        #expect(cached >= flopSeconds(request.inputTokens) && cached < fresh, "\(cached) GPU-s cached, \(fresh) fresh")
    }
}
