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

    /// A step's power by hand: idle 100 W, TDP 700 W; 1 s compute-bound and 1 s memory-bound is
    /// 100 + 600 × (1 + 0.5) / 2 = 550 W on the board; with 10% conversion loss and a 200 W share
    /// of the server 805 W at the wall, 1,207.5 W in a facility of PUE 1.5; at 1,000 output
    /// tokens/s per GPU that is 1.2075 J, 0.3354 kWh and at 400 g/kWh 134.2 g per million.
    @Test func aStepByHand() throws {
        let power = PowerSpec(idle: 100, tdp: 700, nodeOverheadPerGPU: 200, conversionLoss: 0.1)
        let step = StepTime(compute: 1, memory: 1, communication: 0, overhead: 0, rawCommunication: 0)
        #expect(abs(PowerModel.gpuWatts(step, power) - 550) < 1e-9)
        let idle = StepTime(compute: 0, memory: 0, communication: 0, overhead: 0, rawCommunication: 0)
        #expect(PowerModel.gpuWatts(idle, power) == 100)
        let e = EnergyEstimate(power: power, settings: EnergySettings(pue: 1.5, gridIntensity: 400, gridName: "test"),
                               outputGPUWatts: 550, inputGPUWatts: 700, outputTokensPerSecondPerGPU: 1000,
                               inputTokensPerSecondPerGPU: 10_000)
        #expect(abs(e.watts(scope: .gpu) - 550) < 1e-9)
        #expect(abs(e.watts(scope: .node) - 805) < 1e-9)
        #expect(abs(e.watts(scope: .facility) - 1207.5) < 1e-9)
        let j = try #require(e.joulesPerOutputToken())
        #expect(abs(j - 1.2075) < 1e-12)
        #expect(abs(EnergyEstimate.kWhPerMillion(joules: j) - 0.335_416_666_7) < 1e-9)
        #expect(abs(e.gramsPerMillion(joules: j) - 134.166_666_7) < 1e-6)
        // Input tokens carry the prefill power: (700 × 1.1 + 200) × 1.5 / 10,000 = 0.1455 J.
        #expect(abs(try #require(e.joulesPerInputToken()) - 0.1455) < 1e-12)
    }

    /// A request of the steady state is its prompt at the prefill step's energy and its answer at
    /// the decode step's: the time it holds the GPUs times their power.
    @Test func aRequestIsItsPromptAndItsAnswer() throws {
        let e = try Estimator.estimate(request(batch: 16))
        let energy = try #require(e.energy)
        let facility = { (w: Double) in PowerModel.watts(gpuWatts: w, energy.power, scope: .facility, pue: energy.settings.pue) }
        let expected = facility(energy.inputGPUWatts) * 1024 / e.inputTokensPerSecondPerGPU
            + facility(energy.outputGPUWatts) * 512 / e.outputTokensPerSecondPerGPU
        #expect(abs(try #require(energy.joulesPerRequest) / expected - 1) < 1e-12)
        #expect(energy.inputGPUWatts > energy.outputGPUWatts)
    }

    /// On every preset GPU a prefill step (compute-bound) draws more than a decode step at
    /// batch 1 (memory-bound), and both stay between idle and TDP.
    @Test(arguments: ["a100-sxm", "b200", "b300", "gb200", "gb300", "h100-sxm", "h20", "h200-sxm", "h800-sxm", "mi300x",
                      "mi325x", "mi355x"])
    func prefillDrawsMoreThanDecode(_ id: String) throws {
        let weights: WeightFormat = id.hasPrefix("a100") ? .bf16 : .fp8
        let r = EstimateRequest(model: try model("mixtral-8x7b"), cluster: try Cluster(gpu: gpu(id), gpuCount: 2),
                                layout: Layout(attention: .tensor, tp: 2, ep: 1, pp: 1, moeTP: 2), weights: weights,
                                inputTokens: 2048, outputTokens: 256, decodeBatchPerGPU: 1)
        let e = try Estimator.estimate(r)
        let energy = try #require(e.energy)
        #expect(e.prefillStep.bottleneck == .compute && e.decodeStep.bottleneck != .compute)
        #expect(energy.inputGPUWatts > energy.outputGPUWatts, "\(id): \(energy.inputGPUWatts) W vs \(energy.outputGPUWatts) W")
        #expect(energy.outputGPUWatts > energy.power.idle && energy.inputGPUWatts < energy.power.tdp)
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
