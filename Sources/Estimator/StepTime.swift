import Foundation
import Hardware
import ModelSpec
import Planner

/// Where the time of one step goes, in seconds, for the busiest GPU.
public struct StepTime: Sendable, Equatable {
    /// Operators limited by arithmetic.
    public var compute: Double
    /// Operators limited by memory traffic (weights, KV cache, activations).
    public var memory: Double
    /// Communication not hidden behind computation.
    public var communication: Double
    /// Kernel launch and other fixed costs.
    public var overhead: Double
    /// Communication time before any overlap.
    public var rawCommunication: Double
    /// Compute and memory time of the operators of each part of the model (attention, MoE, …).
    public var blocks: [Operator.Block: Double] = [:]

    public var total: Double { compute + memory + communication + overhead }

    public enum Bottleneck: String, Sendable { case compute, memory, communication, overhead }

    public var bottleneck: Bottleneck {
        let parts: [(Bottleneck, Double)] = [(.compute, compute), (.memory, memory), (.communication, communication),
                                             (.overhead, overhead)]
        return parts.max { $0.1 < $1.1 }?.0 ?? .compute
    }

    /// Shares of the step, in percent.
    public var breakdown: [String: Double] {
        let t = max(total, 1e-30)
        return ["compute": 100 * compute / t, "memory": 100 * memory / t,
                "communication": 100 * communication / t, "overhead": 100 * overhead / t]
    }
}

/// What one GPU does in one step of a layout.
public struct StepShapeOnGPU: Sendable, Equatable {
    public var phase: StepShape.Phase
    /// Sequences whose attention this GPU's attention group runs, per GPU (decode batch per GPU).
    public var sequencesPerGPU: Double
    /// New tokens per sequence in the step (1 in decode, the prompt chunk in prefill).
    public var newTokens: Int
    /// Tokens already cached per sequence before the step.
    public var context: Int
    /// Sequences per GPU averaged over the expert-parallel group, when the attention groups are
    /// unevenly loaded (a data-parallel rank prefilling a prompt alone): the routed experts see
    /// the group's mean, attention runs at `sequencesPerGPU`, the busiest rank's. nil: the same.
    public var meanSequencesPerGPU: Double?

    public init(phase: StepShape.Phase, sequencesPerGPU: Double, newTokens: Int, context: Int, meanSequencesPerGPU: Double? = nil) {
        self.phase = phase
        self.sequencesPerGPU = sequencesPerGPU
        self.newTokens = newTokens
        self.context = context
        self.meanSequencesPerGPU = meanSequencesPerGPU
    }
}

extension Estimator {
    /// Time of one step on the busiest GPU of `layout` for one shape (all decode or all prefill).
    static func stepTime(_ model: ModelSpec, cluster: Cluster, layout: Layout, shape: StepShapeOnGPU,
                         weights: WeightFormat, kvCache: KVCacheFormat, imbalance: Double,
                         localExperts: Int, overlap: Bool, eager: Bool) -> StepTime {
        stepTime(model, cluster: cluster, layout: layout, parts: [shape], weights: weights, kvCache: kvCache,
                 imbalance: imbalance, localExperts: localExperts, overlap: overlap, eager: eager)
    }

    /// Token-expert pairs the busiest GPU's experts compute in a step. Every GPU of the stage's
    /// expert group contributes `expertTokensPerGPU` tokens, k copies of each, spread over ep;
    /// experts cut by tensor parallelism (moe_tp) are computed slice by slice, so every slice
    /// holder computes all of its ep share.
    public static func expertPairs(layout: Layout, expertTokensPerGPU: Double, expertsPerToken: Int, imbalance: Double) -> Double {
        expertTokensPerGPU * Double(layout.groupSize(isMoE: true)) * Double(expertsPerToken) / Double(layout.ep) * imbalance
    }

    /// Time of one step on the busiest GPU of `layout` whose batch mixes `parts` (decode sequences
    /// and prefill chunks, as continuous batching runs them together).
    ///
    /// The operator list of `ModelSpec` is priced per GPU: attention and dense parts over the
    /// attention group (tensor-parallel shares of FLOPs and weights; MLA's latent cache read whole
    /// by every TP rank), routed experts over the expert-parallel group (tokens of all its GPUs,
    /// k per token, the placement's busiest GPU, only the experts the batch touches). Each
    /// operator costs max(FLOPs / (peak × efficiency), bytes / (bandwidth × efficiency)) plus a
    /// kernel overhead; communication comes from the planner's traffic. With two-batch overlap the
    /// communication of one half-batch hides behind the computation of the other (see below).
    /// Parts share each operator they both have (same position, name and layer count): FLOPs,
    /// activations and KV traffic add up, the weights are read once; operators only one phase has
    /// (MLA's absorbed and expanded forms) stay apart. `eager`: the step runs without CUDA
    /// graphs, and takes at least the host's time to launch its kernels (`Efficiency.eagerLaunch`).
    static func stepTime(_ model: ModelSpec, cluster: Cluster, layout: Layout, parts: [StepShapeOnGPU],
                         weights: WeightFormat, kvCache: KVCacheFormat, imbalance: Double,
                         localExperts: Int, overlap: Bool, eager: Bool) -> StepTime {
        let gpu = cluster.gpu
        let tp = Double(layout.attentionGroup)
        let isMoE = model.moe != nil
        let group = Double(layout.groupSize(isMoE: isMoE))
        let stageShare = 1 / Double(layout.pp)
        // Operators of one sequence, scaled to the attention group's sequences (fractional when a
        // prompt is longer than one GPU's prefill chunk): everything but the weights grows with it.
        var ops: [Operator] = []
        var headRows = 0.0
        for shape in parts where shape.sequencesPerGPU > 0 && shape.newTokens > 0 {
            // Every part has the same operator list but for phase-specific operators (MLA's
            // absorbed and expanded forms): parts merge position by position where the operator
            // is the same, so that two layer groups with equal names never merge.
            let base = ops.count
            let groupSequences = shape.sequencesPerGPU * tp
            // In prefill only each sequence's last token goes through the output head.
            headRows += shape.phase == .prefill ? groupSequences : groupSequences * Double(shape.newTokens)
            let step = StepShape(sequences: 1, newTokens: shape.newTokens, context: shape.context, phase: shape.phase)
            for (j, op) in model.operators(step: step, options: CostOptions(weights: weights, kvCache: kvCache)).enumerated() {
                var scaled = op
                scaled.flops *= groupSequences
                scaled.activationBytes *= groupSequences
                scaled.intermediateActivationBytes *= groupSequences
                scaled.kvBytes *= groupSequences
                if op.kind == .embedding { scaled.weightBytes *= groupSequences }
                let i = j < base ? j : -1
                if i >= 0, ops[i].name == op.name, ops[i].layers == op.layers {
                    ops[i].flops += scaled.flops
                    ops[i].activationBytes += scaled.activationBytes
                    ops[i].intermediateActivationBytes += scaled.intermediateActivationBytes
                    ops[i].kvBytes += scaled.kvBytes
                    ops[i].weightBytes = op.kind == .embedding ? ops[i].weightBytes + scaled.weightBytes
                                                               : max(ops[i].weightBytes, scaled.weightBytes)
                } else {
                    ops.append(scaled)
                }
            }
        }
        let tokensPerGPU = parts.reduce(0.0) { $0 + $1.sequencesPerGPU * Double($1.newTokens) }
        let expertTokensPerGPU = parts.reduce(0.0) { $0 + ($1.meanSequencesPerGPU ?? $1.sequencesPerGPU) * Double($1.newTokens) }
        let groupTokens = tokensPerGPU * tp
        let bandwidth = gpu.memoryBandwidth * gpu.efficiency.memory
        let matmulPeak = Efficiency.peak(gpu, format: weights.computeFormat)
        // Experts stored in their own format (a checkpoint's FP4 experts) run on its units when
        // the activations they meet are as narrow (the rest of the model's format).
        let expertPeak = Efficiency.peak(gpu, format: Efficiency.matmulFormat(
            weights: (model.expertWeightFormat ?? weights).computeFormat, activations: weights.computeFormat))
        let attentionPeak = Efficiency.peak(gpu, format: "bf16") * gpu.efficiency.matmul * Efficiency.attentionToMatmul
        var kvDivisor = 1.0
        if case let .grouped(a) = model.attention { kvDivisor = min(tp, Double(a.kvHeads)) }
        let stateDivisor = min(tp, Double(model.linearAttention?.valueHeads ?? 1))
        func cacheDivisor(_ op: Operator) -> Double {
            switch op.cacheSplit {
            case .kvHeads: op.kvHeads.map { min(tp, Double($0)) } ?? kvDivisor
            case .replicated: 1
            case .heads: stateDivisor
            }
        }

        let dispatchBytes = Traffic.dispatchBytes(for: weights)
        let traffic = Traffic.of(model, layout: layout, cluster: cluster, dispatchBytes: dispatchBytes)
        let prefillTokens = parts.filter { $0.phase == .prefill }.reduce(0.0) { $0 + $1.sequencesPerGPU * Double($1.newTokens) }
        // Two-batch overlap in prefill with experts spread by expert parallelism (an all-to-all,
        // DeepEP's normal mode): SGLang runs the whole overlapped forward with DeepGEMM limited to
        // the GPU's SMs less DeepEP's (`configure_deep_gemm_num_sms(total − DeepEPConfig.num_sms)`
        // around the overlapped operations), so its GEMMs get that share of the peak throughout.
        var gemmShare = 1.0
        if overlap, prefillTokens > 0, layout.ep > 1, layout.moeTP == 1,
           traffic.components.contains(where: { $0.isExpertAllToAll && $0.scaleUp + $0.scaleOut > 0 }),
           let sms = gpu.smCount.map(Double.init), sms > Efficiency.deepEPNormalSMs {
            gemmShare = (sms - Efficiency.deepEPNormalSMs) / sms
        }

        // GEMM kernels stream weights more slowly than a copy (Efficiency.gpuWeightStreaming).
        let streaming = gpu.kind == .gpu
            ? gpu.memoryBandwidth * min(gpu.efficiency.memory, Efficiency.gpuWeightStreaming) : bandwidth
        var compute = 0.0, memory = 0.0, kernels = 0.0
        var blocks: [Operator.Block: Double] = [:]
        var block = Operator.Block.norm
        var launches = true
        func add(flops: Double, peak: Double, bytes: Double, count: Double, weights: Double = 0) {
            let c = flops / peak, m = (bytes - weights) / bandwidth + weights / streaming
            if c >= m { compute += c * count } else { memory += m * count }
            blocks[block, default: 0] += max(c, m) * count
            if launches { kernels += count }
        }
        // The pairs this GPU's experts compute, and the share of its attention group's tokens'
        // copies they are (the share of the group's expert permutation it does).
        let k = model.moe?.expertsPerToken ?? 1
        let pairs = expertPairs(layout: layout, expertTokensPerGPU: expertTokensPerGPU, expertsPerToken: k, imbalance: imbalance)
        let copies = pairs / Double(k) / max(groupTokens, 1e-30)
        for op in ops {
            launches = !op.fused
            block = op.block
            let count = Double(op.layers) * (op.block == .embedding || op.block == .head || op.name == "final norm"
                                             ? (layout.pp == 1 ? 1 : stageShare) : stageShare)
            switch op.kind {
            case .groupedMatmul:
                guard let moe = model.moe else { continue }
                let perExpert = pairs / Double(max(localExperts, 1))
                let touched = Double(localExperts) * (1 - pow(1 - Double(moe.expertsPerToken) / Double(moe.routedExperts),
                                                              expertTokensPerGPU * group))
                let expertWeights = touched * Double(model.bytesPerExpert(weights)) / Double(layout.moeTP)
                // Each pair's input and output are full width on every slice holder; its
                // intermediate is the slice's.
                let full = op.activationBytes - op.intermediateActivationBytes
                let bytes = expertWeights + (full + op.intermediateActivationBytes / Double(layout.moeTP)) * copies
                add(flops: op.flops * copies / Double(layout.moeTP),
                    peak: expertPeak * gemmShare * Efficiency.matmul(gpu, rows: perExpert, blockScaledFP8: (model.expertWeightFormat ?? weights) == .fp8),
                    bytes: bytes, count: count, weights: expertWeights)
            case .expertPermutation:
                // Gathers and scatters whole-width copies, those of the pairs computed here.
                add(flops: op.flops * copies, peak: matmulPeak, bytes: op.activationBytes * copies, count: count)
            case .attention:
                let share = op.computeSplit == .replicated ? 1 : tp
                add(flops: op.flops / share, peak: attentionPeak, bytes: op.kvBytes / cacheDivisor(op) + op.activationBytes / share,
                    count: count)
            case .matmul:
                let rows = op.block == .head ? headRows : groupTokens
                let split = op.computeSplit == .replicated ? 1 : tp
                // Only GEMMs on quantized weights pay for block scales; the router and the head
                // (bf16 weights) share the step's matmul peak.
                let quantized = op.quantizedInputs + op.wholeQuantizedInputs > 0
                let share = quantized ? gemmShare : 1  // DeepGEMM runs the quantized GEMMs
                let peak = op.ownWeights.map { Efficiency.peak(gpu, format: $0.computeFormat) } ?? matmulPeak
                add(flops: op.flops / split, peak: peak * share * Efficiency.matmul(gpu, rows: rows, blockScaledFP8: weights == .fp8 && quantized),
                    bytes: (op.weightBytes + op.activationBytes) / split, count: count, weights: op.weightBytes / split)
            case .embedding, .norm, .routing, .activation:
                // Replicated ones (Kimi K3's attention-residual mix, DeepSeek-V4's hyper-connections)
                // run whole on every rank of the group.
                let share = op.computeSplit == .replicated ? 1 : tp
                add(flops: op.flops / share, peak: matmulPeak, bytes: (op.weightBytes + op.activationBytes) / share, count: count)
            }
        }

        // Communication of this GPU's tokens.
        var upBytes = 0.0, outBytes = 0.0, messages = 0.0, latency = 0.0
        for part in traffic.components {
            // Tensor-parallel collectives move the whole attention group's tokens.
            let tokens = part.kind == .tensorAllReduce ? tokensPerGPU * tp : tokensPerGPU
            var scaleOut = part.scaleOut * tokens
            if prefillTokens > 0, part.isExpertAllToAll, let moe = model.moe {
                // DeepEP's normal (prefill) kernels send a token once per remote node and fan it
                // out over NVLink there; low-latency (decode) kernels send once per expert.
                let dedup = nodeDedup(experts: moe.expertsPerToken, nodes: Int(group) / max(cluster.scaleUpGroup, 1))
                scaleOut = part.scaleOut * ((tokens - prefillTokens) + prefillTokens * dedup)
            }
            upBytes += part.scaleUp * tokens * stageShare
            outBytes += scaleOut * stageShare
            if part.kind == .tensorAllReduce {
                // NCCL's latency for the group's all-reduce, within a node or across nodes.
                let domain = max(cluster.scaleUpGroup, 1)
                let nodes = (layout.attentionGroup + domain - 1) / domain
                latency += Double(part.messages) * stageShare * Efficiency.allReduceLatency(gpus: layout.attentionGroup, nodes: nodes)
            } else if part.isExpertAllToAll, part.scaleOut == 0, let a2a = gpu.allToAllLatency {
                // Inside the scale-up domain each dispatch and combine kernel has a fixed cost
                // the hardware file gives (TensorRT-LLM's NVLink all-to-all on NVL72).
                latency += Double(part.messages) * stageShare * (part.kind == .expertDispatch ? a2a.dispatch : a2a.combine)
            } else {
                messages += Double(part.messages) * stageShare
            }
        }
        var communication = 0.0
        if upBytes > 0 { communication += upBytes / (gpu.scaleUpBandwidth * gpu.efficiency.scaleUp) }
        if outBytes > 0 { communication += outBytes / (gpu.scaleOutBandwidth * gpu.efficiency.scaleOut) }
        communication += messages * (outBytes > 0 ? gpu.scaleOutLatency : gpu.scaleUpLatency) + latency
        if layout.pp > 1 { communication += Double(layout.pp - 1) * stageShare * gpu.scaleOutLatency }

        // Two-batch overlap runs two half-batches as a two-stage pipeline (compute, communicate):
        // while one half communicates the other computes, but the first half's computation and
        // the last half's communication have nothing to hide behind. Step = (C + X)/2 + max(C, X)/2,
        // so half of the shorter phase stays exposed.
        let arithmetic = compute + memory
        var exposed = communication
        if overlap { exposed = (arithmetic + communication) / 2 + max(arithmetic, communication) / 2 - arithmetic }
        var overhead = kernels * Efficiency.kernelOverhead(gpu)
        if eager, gpu.kind == .gpu {
            // The host launches the kernels one by one while the GPU runs them: the step lasts
            // the longer of the two, the host's share shown as overhead. Two-batch overlap
            // launches every kernel once per half-batch.
            let launches = kernels * (overlap ? 2 : 1)
            overhead = max(overhead, launches * Efficiency.eagerLaunch - (arithmetic + exposed))
        }
        return StepTime(compute: compute, memory: memory, communication: exposed,
                        overhead: overhead, rawCommunication: communication, blocks: blocks)
    }

    /// Remote nodes a token's k experts land on, over the k copies a per-expert send would make:
    /// the saving of per-node forwarding. Uniform experts over `nodes` nodes.
    static func nodeDedup(experts k: Int, nodes: Int) -> Double {
        guard nodes > 1, k > 0 else { return 1 }
        let n = Double(nodes)
        let remoteCopies = Double(k) * (n - 1) / n
        let remoteNodes = (n - 1) * (1 - pow(1 - 1 / n, Double(k)))
        return remoteCopies > 0 ? remoteNodes / remoteCopies : 1
    }
}

