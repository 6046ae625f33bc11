import Foundation
import Testing
import TestSupport
@testable import Estimator
@testable import Hardware
@testable import ModelSpec
@testable import Planner

/// The power model against its defining laws: energy is power × time, a GPU's power stays
/// between idle and its limit, energy per token never rises with batch while decode streams
/// memory, and the facility figures add the server and the PUE on top of the boards.
@Suite struct EnergyTests {
    func request(_ m: String = "llama3.1-70b", gpu g: String = "h100-sxm", gpus: Int = 8, input: Int = 1024, output: Int = 512,
                 batch: Int = 1) throws -> EstimateRequest {
        EstimateRequest(model: try model(m), cluster: try Cluster(gpu: gpu(g), gpuCount: gpus),
                        layout: Layout(attention: .tensor, tp: gpus, ep: 1, pp: 1), weights: .bf16,
                        inputTokens: input, outputTokens: output, decodeBatchPerGPU: batch)
    }

    /// J per token × tokens per second = watts, in every scope; a request's energy is its prompt
    /// and its answer; kWh and CO2e follow by unit conversion.
    @Test func energyIsPowerTimesTime() throws {
        let e = try Estimator.estimate(request(batch: 16))
        let energy = try #require(e.energy)
        for scope in EnergyScope.allCases {
            let j = try #require(energy.joulesPerOutputToken(scope: scope))
            #expect(abs(j * e.outputTokensPerSecondPerGPU / energy.watts(scope: scope) - 1) < 1e-12)
        }
        let request = (try #require(energy.joulesPerInputToken())) * 1024 + (try #require(energy.joulesPerOutputToken())) * 512
        #expect(abs(try #require(energy.joulesPerRequest) / request - 1) < 1e-12)
        // 1 kWh = 3.6 MJ: a million tokens at 3.6 J each are 1 kWh, at the grid's grams.
        #expect(abs(EnergyEstimate.kWhPerMillion(joules: 3.6) - 1) < 1e-12)
        #expect(abs(energy.gramsPerMillion(joules: 3.6) - energy.settings.gridIntensity) < 1e-9)
    }

    /// The facility power is the board's plus conversion loss and the server's share, times PUE;
    /// with no loss, no server and PUE 1 every scope is the board.
    @Test func scopesAddTheServerAndTheFacility() throws {
        var r = try request(batch: 8)
        r.energy.pue = 1.5
        let energy = try #require(try Estimator.estimate(r).energy)
        let board = energy.outputGPUWatts, p = energy.power
        #expect(abs(energy.watts(scope: .node) - (board * (1 + p.conversionLoss) + p.nodeOverheadPerGPU)) < 1e-9)
        #expect(abs(energy.watts(scope: .facility) - 1.5 * energy.watts(scope: .node)) < 1e-9)

        var bare = try gpu("h100-sxm")
        bare.power?.conversionLoss = 0
        bare.power?.nodeOverheadPerGPU = 0
        var plain = try request(batch: 8)
        plain.cluster = try Cluster(gpu: bare, gpuCount: 8)
        plain.energy.pue = 1
        let same = try #require(try Estimator.estimate(plain).energy)
        #expect(abs(same.watts(scope: .facility) - same.outputGPUWatts) < 1e-9)
    }

    /// Every step of every preset GPU draws at least its idle power and at most its limit; a
    /// prefill step (compute-bound) draws more than a decode step at batch 1 (memory-bound).
    @Test(arguments: ["a100-sxm", "h100-sxm", "h200-sxm", "b200", "gb200", "mi300x", "mi355x"])
    func powerStaysBetweenIdleAndTheLimit(_ id: String) throws {
        let weights: WeightFormat = id.hasPrefix("a100") ? .bf16 : .fp8
        var r = EstimateRequest(model: try model("mixtral-8x7b"), cluster: try Cluster(gpu: gpu(id), gpuCount: 2),
                                layout: Layout(attention: .tensor, tp: 2, ep: 1, pp: 1, moeTP: 2), weights: weights,
                                inputTokens: 2048, outputTokens: 256)
        for batch in [1, 16, 64] {
            r.decodeBatchPerGPU = batch
            let e = try Estimator.estimate(r)
            let energy = try #require(e.energy)
            for watts in [energy.outputGPUWatts, energy.inputGPUWatts] {
                #expect(watts >= energy.power.idle && watts <= energy.power.tdp, "\(id) batch \(batch): \(watts) W")
            }
            if batch == 1 {
                #expect(e.prefillStep.bottleneck == .compute && e.decodeStep.bottleneck != .compute)
                #expect(energy.inputGPUWatts > energy.outputGPUWatts)
            }
        }
    }

    /// While decode is memory-bound the weights are read once per step whatever the batch, so
    /// energy per output token never rises with the batch (until compute takes over).
    @Test(arguments: ["llama3.1-70b", "mixtral-8x7b", "kimi-k2"])
    func energyPerTokenFallsWithBatchWhileMemoryBound(_ m: String) throws {
        let gpus = ["kimi-k2": 16, "llama3.1-70b": 8, "mixtral-8x7b": 2][m] ?? 8
        var r = EstimateRequest(model: try model(m), cluster: try Cluster(gpu: gpu("h200-sxm"), gpuCount: gpus),
                                layout: m == "kimi-k2" ? Layout(attention: .data, tp: 1, ep: 16, pp: 1)
                                                       : Layout(attention: .tensor, tp: gpus, ep: 1, pp: 1, moeTP: m == "mixtral-8x7b" ? gpus : 1),
                                weights: .fp8, inputTokens: 1024, outputTokens: 256)
        var previous = Double.infinity
        var compared = 0
        for batch in [1, 2, 4, 8, 16, 32, 64, 128] {
            r.decodeBatchPerGPU = batch
            guard let e = try? Estimator.estimate(r), e.decodeStep.bottleneck == .memory else { break }
            let j = try #require(e.energy?.joulesPerOutputToken(scope: .gpu))
            #expect(j <= previous * (1 + 1e-9), "\(m): \(j) J at batch \(batch) after \(previous)")
            previous = j
            compared += 1
        }
        #expect(compared >= 4, "\(m): only \(compared) memory-bound batches")
    }

    /// A hardware file without power figures gets no energy (never a made-up one).
    @Test func noPowerFiguresNoEnergy() throws {
        var g = try gpu("h100-sxm")
        g.power = nil
        var r = try request(batch: 4)
        r.cluster = try Cluster(gpu: g, gpuCount: 8)
        #expect(try Estimator.estimate(r).energy == nil)
    }

    /// A PUE below 1 or an impossible grid is refused.
    @Test func settingsAreChecked() throws {
        var r = try request()
        r.energy.pue = 0.9
        #expect(throws: EstimateError.self) { try Estimator.estimate(r) }
        r.energy.pue = 1.2
        r.energy.gridIntensity = .nan
        #expect(throws: EstimateError.self) { try Estimator.estimate(r) }
    }
}
