/// The buffers of a forward pass, grown to the largest batch seen and then reused, so that a
/// decode step allocates nothing once the first steps have sized them.
///
/// Attention's scratch is dead once its output projection has written `delta`, and the feed-forward
/// block's is dead once it has written its output, so the big buffers of the two phases share
/// storage (`Slot.storage`): in a 512-token prefill of DeepSeek-V3 ÷8 that is 44 MB instead of 87.
final class Workspace {
    enum Slot: Int, CaseIterable {
        case x, normed, delta, qkv, context, scores, rope
        case down, qA, qANormed, q, latent, latentNormed, rotary, expanded, mlaScratch
        case routerLogits, routerScratch, routeWeights, packed, gateUp, activated, expertOut, shared, sharedGate
        case mlpGateUp, mlpActivated, lastRows, lastNormed
        case gates, linearMixed, linearCore, linearScratch, indexQ, indexK, indexW, indexMask, sinks
        case forgetLowRank, outputGateLowRank, forgetGate, outputGate, moeLatent, moeLatentOut
        case residualScores, residualMix, residualBlocks, residualBankScale
        case hcStreams, hcCollapsed, hcFlat, hcMixes, hcPre, hcPost, hcComb, hcMixed, hcLast

        /// Which storage the slot uses; slots that share one are never live at the same time.
        /// Attention: qkv or down, q, context, expanded. Feed-forward: packed rows and the experts'
        /// output (packed is dead once gate/up has run), gate/up of the experts or of a dense or
        /// shared MLP (the shared expert runs after the routed ones are scattered), activations.
        var storage: Int {
            switch self {
            case .qkv, .down, .packed, .expertOut: Slot.qkv.rawValue
            case .q: Slot.q.rawValue
            case .context, .gateUp, .mlpGateUp: Slot.context.rawValue
            case .expanded, .activated, .mlpActivated: Slot.expanded.rawValue
            default: rawValue
            }
        }
    }

    /// Bytes of activation buffers per row of a forward pass (an estimate from the model's widths,
    /// following `Slot.storage`): the residual stream, norm and delta; the largest of the shared
    /// attention / feed-forward buffers; the shared expert's output. (MLA's per-head expansion
    /// grows with the context, not the rows: one head per thread, small.)
    static func bytesPerRow(_ spec: ModelSpec) -> Int {
        let h = spec.hiddenSize, k = spec.moe?.expertsPerToken ?? 0, expert = spec.moe?.expertIntermediateSize ?? 0
        let dense = spec.layers.map { if case let .dense(size) = $0.feedForward { size } else { 0 } }.max() ?? 0
        let shared = spec.moe?.sharedIntermediateSize ?? 0
        var input = 0, query = 0, context = 0
        switch spec.attention {
        case let .grouped(a):
            input = (a.heads + 2 * a.kvHeads) * a.headDim
            context = a.heads * a.headDim
        case let .latent(a):
            // Kimi K3's output gate is projected with the latents and kept apart (`gates`).
            input = (a.qLoraRank ?? 0) + a.kvLoraRank + a.qkRopeHeadDim + (a.outputGate ? 2 * a.heads * a.vHeadDim : 0)
            query = a.heads * a.qkHeadDim
            context = a.heads * a.vHeadDim
        case let .compressed(a):
            input = a.queryRank + a.headDim
            query = a.heads * a.headDim
            context = a.heads * a.headDim
        }
        // Linear attention: the in-projections, the prepared rows, the gates and the core output.
        if let l = spec.linearAttention {
            let p = l.valueHeads * l.valueHeadDim, projected = l.convChannels + 2 * l.valueHeads + 2 * l.keyHeadDim + p
            input = max(input, 2 * projected + 3 * p)
        }
        // DeepSeek-V4's hyper-connections: the streams, their normalised copy and the collapse.
        let hyper = spec.hyperConnections.map { 2 * $0.streams * h + h } ?? 0
        // Kimi K3's attention residuals: the bank of block snapshots and the mix.
        let residuals = spec.attentionResidualBlock.map { (spec.layerCount + $0 - 1) / $0 * h + h } ?? 0
        let floats = 4 * h + max(input, k * h) + query + max(context, 2 * k * expert, 2 * dense, 2 * shared)
            + max(k * expert, dense, shared) + residuals + hyper
        return 4 * max(floats, 1)
    }

    private var floats: [(pointer: UnsafeMutablePointer<Float>, capacity: Int)]
    private var ints: (pointer: UnsafeMutablePointer<Int32>, capacity: Int)
    var grouping: ExpertGroupingBox
    var segments: [(start: Int, count: Int)] = []
    var touched: [Bool] = []

    init(experts: Int) {
        floats = Slot.allCases.map { _ in (UnsafeMutablePointer<Float>.allocate(capacity: 1), 1) }
        ints = (UnsafeMutablePointer<Int32>.allocate(capacity: 1), 1)
        grouping = ExpertGroupingBox(experts: experts)
        touched = Array(repeating: false, count: experts)
    }

    /// At least `count` floats; the contents are whatever the last user left.
    func get(_ slot: Slot, _ count: Int) -> UnsafeMutablePointer<Float> {
        let i = slot.storage
        if floats[i].capacity < count {
            floats[i].pointer.deallocate()
            floats[i] = (UnsafeMutablePointer<Float>.allocate(capacity: count), count)
        }
        return floats[i].pointer
    }

    /// At least `count` expert ids.
    func ids(_ count: Int) -> UnsafeMutablePointer<Int32> {
        if ints.capacity < count {
            ints.pointer.deallocate()
            ints = (UnsafeMutablePointer<Int32>.allocate(capacity: count), count)
        }
        return ints.pointer
    }

    deinit {
        for f in floats { f.pointer.deallocate() }
        ints.pointer.deallocate()
    }
}

import ModelSpec
import TensorCore

/// The expert grouping, kept in a class so that regrouping reuses its arrays in place.
final class ExpertGroupingBox {
    var value: ExpertGrouping
    init(experts: Int) { value = ExpertGrouping(expertCount: experts) }
}
