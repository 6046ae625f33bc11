import Foundation
import Testing
import TestSupport
@testable import Estimator
@testable import Hardware
@testable import ModelSpec
@testable import Planner
@testable import Serving

/// Energy of simulated serving: idle GPUs draw idle power, a decode-only loop draws what the
/// steady-state decode step draws, and the energy of a run is its power over its time.
@Suite struct ServingEnergyTests {
    let layout = Layout(attention: .tensor, tp: 2, ep: 1, pp: 1, moeTP: 2)

    func serving(input: Int = 512, output: Int = 64, concurrency: Int = 1) throws -> ServingRequest {
        let base = EstimateRequest(model: try model("mixtral-8x7b"), cluster: try Cluster(gpu: gpu("h200-sxm"), gpuCount: 2),
                                   layout: layout, weights: .fp8, inputTokens: input, outputTokens: output)
        return ServingRequest(base: base, concurrency: concurrency)
    }

    /// One short request every 1,000 s: the GPUs are idle more than 99.9% of the time, so the
    /// average board power is the idle power (within the busy share's pull towards the limit).
    @Test func zeroWorkDrawsIdlePower() throws {
        let result = try ServingEstimator.serve(OpenLoopRequest(serving: serving(), arrivals: .process(.poisson(rate: 0.001), count: 20)))
        let energy = try #require(result.estimate.energy)
        let busy = result.estimate.pools[0].busy
        #expect(busy < 1e-3)
        let bound = energy.power.idle + busy * (energy.power.tdp - energy.power.idle)
        #expect(energy.outputGPUWatts >= energy.power.idle && energy.outputGPUWatts <= bound * (1 + 1e-9),
                "\(energy.outputGPUWatts) W with the GPUs busy \(busy)")
    }

    /// A closed loop that only decodes (1-token prompts, long answers) runs one step shape over
    /// and over: its average power is the steady-state decode step's at the same batch.
    @Test func decodeOnlyLoopDrawsTheSteadyStatePower() throws {
        let r = try serving(input: 1, output: 4096, concurrency: 32)
        let s = try ServingEstimator.estimate(r)
        var steady = r.base
        steady.decodeBatchPerGPU = 16
        let e = try Estimator.estimate(steady, layout: layout)
        let simulated = try #require(s.energy?.outputGPUWatts), expected = try #require(e.energy?.outputGPUWatts)
        #expect(abs(simulated / expected - 1) < 0.03, "\(simulated) W vs \(expected) W")
    }

    /// Replicas without a request draw idle power: one request on four replicas of two GPUs is
    /// one busy replica (the power of the same request on two GPUs) and six idle GPUs.
    @Test func idleReplicasDrawIdlePower() throws {
        let two = try ServingEstimator.estimate(serving(concurrency: 1))
        var r = try serving(concurrency: 1)
        r.base.cluster = try Cluster(gpu: gpu("h200-sxm"), gpuCount: 8)
        let eight = try ServingEstimator.estimate(r)
        let p2 = try #require(two.energy?.outputGPUWatts), p8 = try #require(eight.energy?.outputGPUWatts)
        let idle = try #require(eight.energy?.power.idle)
        #expect(abs(p8 / ((2 * p2 + 6 * idle) / 8) - 1) < 0.01, "\(p8) W on 8 GPUs, \(p2) W on 2")
        // The same requests, four times the GPUs: about four times the energy per token.
        let j2 = try #require(two.energy?.joulesPerOutputToken(scope: .gpu)), j8 = try #require(eight.energy?.joulesPerOutputToken(scope: .gpu))
        #expect(abs(j8 / j2 - 4 * p8 / p2) < 0.05 * j8 / j2)
    }

    /// Disaggregated pools: the deployment's power is the GPU-weighted mean of both pools', so a
    /// prefill pool of twice the decode pool's GPUs, idle most of the time, pulls it towards idle.
    @Test func disaggregatedPowerWeighsBothPools() throws {
        let l = Layout(attention: .data, tp: 1, ep: 8, pp: 1)
        let base = EstimateRequest(model: try model("deepseek-v3"), cluster: try Cluster(gpu: gpu("h200-sxm"), gpuCount: 24),
                                   weights: .fp8, inputTokens: 256, outputTokens: 512)
        var r = ServingRequest(base: base, concurrency: 128)
        // Workers of different sizes: one prefill worker of 16 GPUs, one decode worker of 8.
        r.disaggregation = Disaggregation(prefill: .init(gpus: 16, workers: 1, layout: Layout(attention: .data, tp: 1, ep: 16, pp: 1)),
                                          decode: .init(gpus: 8, workers: 1, layout: l))
        let s = try ServingEstimator.estimate(r)
        let energy = try #require(s.energy)
        let p = energy.power
        // The prefill pool works a small share of the time: its GPUs sit near idle power.
        #expect(s.pools[0].busy < 0.5)
        let prefillMax = p.idle + s.pools[0].busy * (p.tdp - p.idle)
        let upper = (16 * prefillMax + 8 * p.tdp) / 24
        #expect(energy.outputGPUWatts > p.idle && energy.outputGPUWatts < upper, "\(energy.outputGPUWatts) W, at most \(upper)")
    }

    /// A request's energy is the energy of its tokens: joules per request = joules per output token
    /// × the mean answer length the client draws, and, with the whole bill charged to input
    /// tokens too, = joules per input token × the mean prompt length (answers and prompts drawn
    /// uniformly from 0.8–1.0 of nominal, so their means are the ranges' midpoints).
    @Test func aRequestsEnergyIsItsTokensEnergy() throws {
        var r = try serving(input: 512, output: 64, concurrency: 8)
        let range = LengthRange(lower: 0.8, upper: 1)
        r.inputRange = range
        r.outputRange = range
        let s = try ServingEstimator.estimate(r)
        let energy = try #require(s.energy)
        let perRequest = try #require(energy.joulesPerRequest)
        let answer = range.tokens(64), prompt = range.tokens(512)
        let meanAnswer = Double(answer.lower + answer.upper) / 2, meanPrompt = Double(prompt.lower + prompt.upper) / 2
        let perOutput = try #require(energy.joulesPerOutputToken()), perInput = try #require(energy.joulesPerInputToken())
        // The sample's mean lengths differ from the midpoints by about 1%.
        #expect(abs(perRequest / (perOutput * meanAnswer) - 1) < 0.03, "\(perRequest) J vs \(perOutput) J × \(meanAnswer)")
        #expect(abs(perRequest / (perInput * meanPrompt) - 1) < 0.03, "\(perRequest) J vs \(perInput) J × \(meanPrompt)")
    }
}
