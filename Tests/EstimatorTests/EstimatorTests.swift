import Foundation
import Testing
import TestSupport
@testable import Estimator
@testable import Hardware
@testable import ModelSpec
@testable import Planner




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

    /// A checkpoint's FP4 experts in an FP8 model meet FP8 activations, so a compute-bound prefill
    /// runs them at B200's FP8 rate (the experts' time as all-FP8), while an all-FP4 model runs
    /// them at the FP4 rate (twice B200's FP8 peak: the GEMMs' half of the time, with the router,
    /// the activations and the quantization on top).
    @Test func fp4ExpertsAgainstFP8ActivationsRunAtTheFP8Rate() throws {
        let b200 = try gpu("b200")
        let layout = Layout(attention: .data, tp: 1, ep: 8, pp: 1)
        func moeSeconds(_ weights: WeightFormat, experts: WeightFormat?) throws -> Double {
            var r = try request("deepseek-v4-flash", b200, gpus: 8, input: 16_384, weights: weights)
            r.model.expertWeightFormat = experts
            let step = try Estimator.estimate(r, layout: layout).prefillStep
            return try #require(step.blocks[.moe])
        }
        let fp8 = try moeSeconds(.fp8, experts: nil), mixed = try moeSeconds(.fp8, experts: .mxfp4)
        let fp4 = try moeSeconds(.mxfp4, experts: nil)
        #expect(try #require(b200.peakFlops["fp4"]) >= 2 * (try #require(b200.peakFlops["fp8"])))
        #expect(abs(mixed / fp8 - 1) < 0.05, "FP4 experts in FP8 \(mixed) s, all FP8 \(fp8) s")
        #expect(fp4 < 0.7 * fp8, "all FP4 \(fp4) s, all FP8 \(fp8) s")
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
        // GEMM kernels stream weights at Efficiency.gpuWeightStreaming of peak (DeepGEMM's decode shapes).
        let expected = read / (h200.memoryBandwidth * min(h200.efficiency.memory, Efficiency.gpuWeightStreaming))
        #expect(e.decodeStep.bottleneck == .memory)
        let memoryBound = e.decodeStep.memory
        #expect(memoryBound >= expected && memoryBound < expected * 1.05, "\(memoryBound) vs \(expected)")
        #expect(e.timePerOutputToken < expected * 1.25)
    }

    @Test func longerContextNeverMakesDecodeFaster() throws {
        let h200 = try gpu("h200-sxm")
        var last = 0.0
        for context in [1024, 8192, 32_768, 131_072] {
            let e = try Estimator.estimate(request("kimi-k2", h200, gpus: 16, input: context, batch: 4),
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
/// NCCL's latency model for a small all-reduce (src/graph/tuning.cc, LL protocol), worked by
/// hand from its constants: within a node a ring, across nodes the faster of a ring and a tree.
@Suite struct AllReduceLatencyTests {
    @Test func withinAndAcrossNodes() {
        // 8 GPUs, one node: 6.6 + 14 × 0.6 = 15.0 µs.
        #expect(abs(Efficiency.allReduceLatency(gpus: 8) - 15.0e-6) < 1e-12)
        // 16 GPUs, two nodes: ring 6.6 + 26 × 1.0 + 4 × 2.7 = 43.4 µs, tree 6.8 + 2 × (7 × 0.6 + 1 × 5.0)
        // = 25.2 µs; NCCL takes the tree.
        #expect(abs(Efficiency.allReduceLatency(gpus: 16, nodes: 2) - 25.2e-6) < 1e-12)
        // 64 GPUs, eight nodes: tree 6.8 + 2 × (7 × 0.6 + 3 × 5.0) = 45.2 µs.
        #expect(abs(Efficiency.allReduceLatency(gpus: 64, nodes: 8) - 45.2e-6) < 1e-12)
        // 2 GPUs on two nodes: ring 6.6 + 0 + 4 × 2.7 = 17.4 µs, tree 6.8 + 2 × 5.0 = 16.8 µs.
        #expect(abs(Efficiency.allReduceLatency(gpus: 2, nodes: 2) - 16.8e-6) < 1e-12)
    }

    /// A tensor-parallel group across two nodes pays NCCL's multi-node latency per all-reduce,
    /// not one network latency: a decode step of DeepSeek-V3 at TP16 on two H100 nodes.
    @Test func tensorParallelAcrossNodes() throws {
        let v3 = try model("deepseek-v3")
        let cluster = try Cluster(gpu: gpu("h100-sxm"), gpuCount: 16)
        let shape = StepShapeOnGPU(phase: .decode, sequencesPerGPU: 1.0 / 16, newTokens: 1, context: 1024)
        let step = Estimator.stepTime(v3, cluster: cluster, layout: Layout(attention: .tensor, tp: 16, ep: 1, pp: 1, moeTP: 16),
                                      shape: shape, weights: .fp8, kvCache: .bf16, imbalance: 1, localExperts: 256, overlap: false,
                                      eager: false)
        // 2 all-reduces a layer, 61 layers, 25.2 µs each, on top of their bytes.
        #expect(step.rawCommunication > 122 * 25.2e-6, "\(step.rawCommunication)")
        #expect(step.rawCommunication < 122 * 25.2e-6 * 1.5, "\(step.rawCommunication)")
    }
}

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

/// Every priced batch fits: the largest batch the plan holds is priced, one more is refused with
/// the largest named, and searches never go past it.
@Suite struct MemoryHonestBatchTests {
    @Test func aBatchOnePastTheFitIsRefused() throws {
        let cluster = try Cluster(gpu: gpu("h200-sxm"), gpuCount: 8)
        let layout = Layout(attention: .data, tp: 1, ep: 8, pp: 1)
        var request = EstimateRequest(model: try model("deepseek-v3"), cluster: cluster, layout: layout, weights: .fp8,
                                      inputTokens: 32_768, outputTokens: 1024)
        // The plan's own count, independently: sequences that fit over GPUs.
        let plan = try Planner.evaluate(request.model, cluster: cluster,
                                        workload: Workload(weights: .fp8, kvCache: .bf16, context: 33_792, concurrency: 1),
                                        layout: layout)
        let fit = plan.maxConcurrentSequences / 8
        #expect(fit >= 1 && fit < 256)
        request.decodeBatchPerGPU = fit
        let priced = try Estimator.estimate(request, layout: layout)
        #expect(priced.decodeBatchPerGPU == fit)
        request.decodeBatchPerGPU = fit + 1
        do {
            _ = try Estimator.estimate(request, layout: layout)
            Issue.record("a batch of \(fit + 1) per GPU was priced")
        } catch {
            #expect("\(error)".contains("largest that fits is \(fit)"), "\(error)")
        }
        request.layout = nil
        request.decodeBatchPerGPU = nil
        let search = LayoutSearch.search(request)
        for e in search.all {
            #expect(Double(e.decodeBatchPerGPU * 8) <= Double(e.plan.maxConcurrentSequences), "\(e.plan.layout) at \(e.decodeBatchPerGPU)")
        }
    }

    /// Experts cut over the tensor-parallel attention group (`-tp 8`) need no all-to-all: their
    /// outputs are summed by the all-reduce the FFN already pays. Expert parallelism past the
    /// attention group still dispatches.
    @Test func tensorParallelExpertsSendNoAllToAll() throws {
        let m = try model("deepseek-v3")
        let cluster = try Cluster(gpu: gpu("h200-sxm"), gpuCount: 8)
        let tpExperts = Traffic.of(m, layout: Layout(attention: .tensor, tp: 8, ep: 1, pp: 1, moeTP: 8), cluster: cluster, dispatchBytes: 1)
        #expect(tpExperts.components.map(\.name) == ["tensor-parallel all-reduce"])
        let dense = Traffic.of(try model("llama3.1-70b"), layout: Layout(attention: .tensor, tp: 8, ep: 1, pp: 1), cluster: cluster,
                               dispatchBytes: 1)
        // Per layer, the same two all-reduces of the hidden state as a dense model.
        #expect(abs(tpExperts.scaleUp / Double(m.layerCount) - dense.scaleUp / 80 * Double(m.hiddenSize) / 8192) < 1e-6)
        let dpExperts = Traffic.of(m, layout: Layout(attention: .data, tp: 1, ep: 8, pp: 1), cluster: cluster, dispatchBytes: 1)
        #expect(dpExperts.components.contains { $0.kind == .expertDispatch })
    }
}

/// Token-expert pairs a GPU's experts compute, counted by hand for 8 GPUs, 1,000 tokens per GPU
/// (under tensor-parallel attention: 8,000 shared by the group), top-8: experts spread by ep
/// take 1/ep of the group's copies; experts cut by moe_tp take all of them, each a slice; under
/// data-parallel attention each GPU contributes its own 1,000 tokens.
@Suite struct ExpertPairTests {
    @Test func pairsPerGPUByLayout() {
        func pairs(_ layout: Layout, imbalance: Double = 1) -> Double {
            Estimator.expertPairs(layout: layout, expertTokensPerGPU: 1000, expertsPerToken: 8, imbalance: imbalance)
        }
        // Tensor-parallel attention, experts cut over the 8: all 64,000 copies on every GPU.
        #expect(pairs(Layout(attention: .tensor, tp: 8, ep: 1, pp: 1, moeTP: 8)) == 64_000)
        // Tensor-parallel attention, experts spread over the 8: an eighth each.
        #expect(pairs(Layout(attention: .tensor, tp: 8, ep: 8, pp: 1)) == 8_000)
        // Data-parallel attention, experts spread: as many copies as its own tokens make.
        #expect(pairs(Layout(attention: .data, tp: 1, ep: 8, pp: 1)) == 8_000)
        // Data-parallel attention, experts cut: every rank's copies, each a slice.
        #expect(pairs(Layout(attention: .data, tp: 1, ep: 1, pp: 1, moeTP: 8)) == 64_000)
        // The busiest GPU of an unbalanced placement.
        #expect(pairs(Layout(attention: .data, tp: 1, ep: 8, pp: 1), imbalance: 1.5) == 12_000)
    }
}

/// Operators every rank of a tensor-parallel group runs whole (DeepSeek-V4's hyper-connections)
/// are not divided by the group: with tp = 8 the norm part grows with the group's tokens, where a
/// split operator would stay at one GPU's share.
@Suite struct ReplicatedOperatorTests {
    @Test func hyperConnectionsRunWholeOnEveryTensorParallelRank() throws {
        let v4 = try model("deepseek-v4-flash")
        var plain = v4
        plain.hyperConnections = nil
        let cluster = try Cluster(gpu: try gpu("h200-sxm"), gpuCount: 8)
        let shape = StepShapeOnGPU(phase: .decode, sequencesPerGPU: 16, newTokens: 1, context: 2048)
        func norm(_ m: ModelSpec, tp: Int) -> Double {
            let layout = Layout(attention: .tensor, tp: tp, ep: 1, pp: 1, moeTP: tp)
            return Estimator.stepTime(m, cluster: cluster, layout: layout, shape: shape, weights: .fp8, kvCache: .bf16, imbalance: 1,
                                      localExperts: v4.moe?.routedExperts ?? 1, overlap: false, eager: false).blocks[.norm] ?? 0
        }
        let one = norm(v4, tp: 1) - norm(plain, tp: 1), eight = norm(v4, tp: 8) - norm(plain, tp: 8)
        #expect(one > 0 && eight > 4 * one, "hyper-connections: \(one) s at tp 1, \(eight) s at tp 8")
    }
}

/// Hopper applies FP8 block scales on CUDA cores (h200-sxm.json: `block_scaled_fp8_matmul` 0.60
/// against `matmul` 0.75, DeepGEMM's table); Blackwell's tensor cores apply them (no such
/// factor). In a compute-bound prefill on H200 the experts' grouped GEMMs take 0.75 / 0.60 as
/// long in DeepSeek's block format as in per-tensor FP8, less the memory-bound kernels of the
/// MoE block that do not change; on B200 the two formats cost the same.
@Suite struct BlockScaledFP8Tests {
    @Test func blockScalesCostOnHopperOnly() throws {
        let v3 = try model("deepseek-v3")
        func blocks(_ g: String, _ w: WeightFormat) throws -> [Operator.Block: Double] {
            let cluster = try Cluster(gpu: try gpu(g), gpuCount: 8)
            let shape = StepShapeOnGPU(phase: .prefill, sequencesPerGPU: 2, newTokens: 4096, context: 0)
            return Estimator.stepTime(v3, cluster: cluster, layout: Layout(attention: .data, tp: 1, ep: 8, pp: 1), shape: shape,
                                      weights: w, kvCache: .bf16, imbalance: 1, localExperts: 32, overlap: false, eager: false).blocks
        }
        let hopper = try blocks("h200-sxm", .fp8), hopperTensor = try blocks("h200-sxm", .fp8Tensor)
        let moe = try #require(hopper[.moe]) / (try #require(hopperTensor[.moe]))
        #expect(moe > 1.15 && moe <= 0.75 / 0.60 + 1e-9, "MoE block \(moe)× in blocks")
        let attention = try #require(hopper[.attention]) / (try #require(hopperTensor[.attention]))
        #expect(attention > 1 && attention < moe, "attention block \(attention)×: its core is not a GEMM on FP8 weights")
        let blackwell = try blocks("b200", .fp8), blackwellTensor = try blocks("b200", .fp8Tensor)
        for (block, time) in blackwell {
            #expect(abs(time / (blackwellTensor[block] ?? 0) - 1) < 0.005, "\(block) on B200")
        }
    }
}

/// SGLang's two-batch overlap in prefill keeps DeepEP's 20 SMs for its normal-mode kernels during
/// the whole overlapped forward and runs DeepGEMM on the other 112 of the H100's 132
/// (h100-sxm.json `sm_count`, `Efficiency.deepEPNormalSMs`): the GEMMs of a compute-bound prefill
/// take 132/112 as long; the MoE block, nearly all GEMM, grows by a little less, the attention
/// block (its core is not a GEMM) by less again. Nothing changes without overlap, in decode
/// (low-latency kernels, no SMs), with experts cut by tensor parallelism (no all-to-all), or on
/// a GPU file without `sm_count`.
@Suite struct TwoBatchOverlapTests {
    @Test func deepEPNormalModeKeepsItsSMsInPrefill() throws {
        let v3 = try model("deepseek-v3")
        let h100 = try gpu("h100-sxm")
        #expect(h100.smCount == 132)
        var anonymous = h100
        anonymous.smCount = nil
        func step(_ g: HardwareSpec, _ shape: StepShapeOnGPU, overlap: Bool, layout: Layout = Layout(attention: .data, tp: 1, ep: 32, pp: 1),
                  gpus: Int = 32) throws -> StepTime {
            Estimator.stepTime(v3, cluster: try Cluster(gpu: g, gpuCount: gpus), layout: layout, shape: shape, weights: .fp8,
                               kvCache: .bf16, imbalance: 1, localExperts: 256 / layout.ep, overlap: overlap, eager: false)
        }
        let prefill = StepShapeOnGPU(phase: .prefill, sequencesPerGPU: 4, newTokens: 4096, context: 0)
        let held = try step(h100, prefill, overlap: true), all = try step(anonymous, prefill, overlap: true)
        let moe = try #require(held.blocks[.moe]) / (try #require(all.blocks[.moe]))
        #expect(moe > 1.12 && moe <= 132.0 / 112 + 1e-9, "MoE block \(moe)×")
        let attention = try #require(held.blocks[.attention]) / (try #require(all.blocks[.attention]))
        #expect(attention > 1 && attention < moe, "attention block \(attention)×")
        #expect(try step(h100, prefill, overlap: false) == step(anonymous, prefill, overlap: false))
        let decode = StepShapeOnGPU(phase: .decode, sequencesPerGPU: 128, newTokens: 1, context: 4096)
        #expect(try step(h100, decode, overlap: true) == step(anonymous, decode, overlap: true))
        let tensorExperts = Layout(attention: .data, tp: 1, ep: 1, pp: 1, moeTP: 8)
        #expect(try step(h100, prefill, overlap: true, layout: tensorExperts, gpus: 8)
                == step(anonymous, prefill, overlap: true, layout: tensorExperts, gpus: 8))
    }
}

/// The expert-parallel all-to-all inside an NVL72 domain against the published microbenchmark it
/// is built from (TensorRT-LLM tech blog 18, GB200 NVL72, DeepSeek-V3's hidden size and top-8,
/// BF16 dispatch and combine, EP16): dispatch + combine per MoE layer 59.7, 74.5 and 111.8 µs at
/// 64, 128 and 256 tokens per rank. The hardware file takes only the small-batch floor (19 and
/// 31 µs) from it; the bytes over 0.8 of the link make up the rest and must land within 20%.
@Suite struct AllToAllLatencyTests {
    @Test func nvl72AllToAllMatchesThePublishedKernel() throws {
        let v3 = try model("deepseek-v3")
        let gb200 = try gpu("gb200")
        #expect(gb200.allToAllLatency == HardwareSpec.AllToAllLatency(dispatch: 19e-6, combine: 31e-6))
        let cluster = try Cluster(gpu: gb200, gpuCount: 16)
        for (tokens, published) in [(64.0, 59.7e-6), (128.0, 74.5e-6), (256.0, 111.8e-6)] {
            let shape = StepShapeOnGPU(phase: .decode, sequencesPerGPU: tokens, newTokens: 1, context: 1024)
            let step = Estimator.stepTime(v3, cluster: cluster, layout: Layout(attention: .data, tp: 1, ep: 16, pp: 1), shape: shape,
                                          weights: .bf16, kvCache: .bf16, imbalance: 1, localExperts: 16, overlap: false, eager: false)
            let perLayer = step.rawCommunication / Double(v3.moeLayerCount)
            #expect(abs(perLayer / published - 1) < 0.2, "\(tokens) tokens: \(perLayer * 1e6) µs against \(published * 1e6)")
        }
    }
}

