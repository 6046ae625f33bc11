import Foundation
import ModelSpec
import TensorCore

#if os(Linux)
/// glibc's mallopt (malloc.h is not part of the Glibc module); parameters from malloc.h.
@_silgen_name("mallopt") private func glibcMallopt(_ parameter: Int32, _ value: Int32) -> Int32
private let mTrimThreshold: Int32 = -1, mMmapThreshold: Int32 = -3
#endif

/// A transformer of any supported architecture, run on the CPU with TensorCore.
///
/// One forward pass takes the new tokens of several sequences at once (a prefill of whole prompts,
/// or one decode token each): every linear layer runs as one GEMM over all their rows, attention
/// runs per sequence against its own KV cache, and the routed experts run as grouped matmuls.
public final class CPUModel: @unchecked Sendable {
    public let spec: ModelSpec
    public let format: CPUWeightFormat
    let weights: ModelWeights
    let rope: RotaryEmbedding

    /// Experts chosen per MoE layer for every token of the last forward pass (sorted ids), when
    /// `recordRouting` is on. Used by the parity tests and the expert-load figures of `bench`.
    public var recordRouting = false
    public private(set) var lastRouting: [Int: [[Int32]]] = [:]
    /// Tokens routed to each expert, summed over every forward pass and MoE layer.
    public private(set) var expertLoad: [Int]

    public static let supportedModelTypes: Set<String> = ["deepseek_v3", "kimi_k2", "qwen3_moe", "qwen2_moe", "mixtral", "llama", "qwen3"]

    public init(spec: ModelSpec, source: WeightSource, format: CPUWeightFormat = .f32) throws {
        guard CPUModel.supportedModelTypes.contains(spec.modelType) else {
            throw RuntimeError.unsupported("the CPU runtime does not run model_type \(spec.modelType) yet; it runs "
                + CPUModel.supportedModelTypes.sorted().joined(separator: ", "))
        }
        if spec.layers.contains(where: { $0.span != .full }) {
            // Sliding windows are honoured by the attention mask below; chunked attention is not.
            if spec.layers.contains(where: { if case .chunked = $0.span { return true }; return false }) {
                throw RuntimeError.unsupported("chunked attention (Llama 4) is not supported by the CPU runtime")
            }
        }
        self.spec = spec
        self.format = format
        CPUModel.keepFreedBuffers()
        weights = try ModelWeights.load(spec, from: source, format: format)
        // RoPE frequencies from rope_theta; scaled variants (YaRN, Llama 3) change long-context
        // behaviour only and are not applied by the runtime (documented in the README).
        let layout: RotaryEmbedding.Layout = { if case .latent = spec.attention { return .interleaved }; return .halfSplit }()
        rope = try RotaryEmbedding(rotaryDimension: spec.rope.rotaryDimension, base: spec.rope.theta, layout: layout)
        expertLoad = Array(repeating: 0, count: spec.moe?.routedExperts ?? 0)
    }

    /// Each forward pass allocates its activation buffers anew; glibc returns blocks above 128 KiB
    /// to the kernel on free and gets them back zeroed, page by page, on the next step (15% of a
    /// decode step in `perf`). Raising the mmap and trim thresholds keeps them in the heap.
    static func keepFreedBuffers() {
        #if os(Linux)
        _ = glibcMallopt(mMmapThreshold, 1 << 30)
        _ = glibcMallopt(mTrimThreshold, 1 << 30)
        #endif
    }

    /// Starts the tokens-per-expert count afresh.
    public func resetExpertLoad() { expertLoad = Array(repeating: 0, count: expertLoad.count) }

    /// A cache for one sequence with room for `tokens` tokens before it grows.
    public func newCache(reserve tokens: Int = 256) -> SequenceCache {
        let (k, v): (Int, Int) = {
            switch spec.attention {
            case let .grouped(a): (a.kvHeads * a.headDim, a.kvHeads * a.headDim)
            case let .latent(a): (a.kvLoraRank, a.qkRopeHeadDim)
            }
        }()
        return SequenceCache(layers: spec.layerCount, reserve: tokens, keyWidth: k, valueWidth: v)
    }

    public var weightBytes: Int { weights.byteCount }

    /// Runs `tokens[s]` of each sequence s, appending to `caches[s]`. Returns the logits of every
    /// new token (rows in sequence order) when `allLogits`, else of each sequence's last token.
    public func forward(_ tokens: [[Int]], caches: inout [SequenceCache], allLogits: Bool = false) throws -> Tensor {
        guard tokens.count == caches.count else {
            throw RuntimeError.unsupported("forward needs one cache per sequence (\(tokens.count) sequences, \(caches.count) caches)")
        }
        for row in tokens {
            for t in row where t < 0 || t >= spec.vocabSize { throw RuntimeError.tokenOutOfRange(token: t, vocabulary: spec.vocabSize) }
        }
        let h = spec.hiddenSize
        let rows = tokens.reduce(0) { $0 + $1.count }
        guard rows > 0 else { return try Tensor(zeros: [0, spec.vocabSize]) }
        var segments: [(start: Int, count: Int)] = []
        var start = 0
        for row in tokens { segments.append((start, row.count)); start += row.count }

        var x = [Float](repeating: 0, count: rows * h)
        weights.embedding.withUnsafeBufferPointer { e in
            var r = 0
            for row in tokens { for t in row { for i in 0..<h { x[r * h + i] = e[t * h + i] }; r += 1 } }
        }
        var normed = [Float](repeating: 0, count: rows * h)
        var delta = [Float](repeating: 0, count: rows * h)
        if recordRouting { lastRouting = [:] }
        for (index, layer) in weights.layers.enumerated() {
            rmsNormRows(x, layer.inputNorm, into: &normed, rows: rows)
            try attention(layer.attention, layer: index, input: normed, rows: rows, segments: segments, caches: &caches, into: &delta)
            add(&x, delta)
            rmsNormRows(x, layer.postNorm, into: &normed, rows: rows)
            try feedForward(layer.feedForward, layer: index, input: normed, rows: rows, into: &delta)
            add(&x, delta)
        }
        for s in segments.indices { caches[s].advance(by: segments[s].count) }

        // Final norm and head on the rows whose logits are wanted.
        let picked = allLogits ? Array(0..<rows) : segments.map { $0.start + $0.count - 1 }
        var last = [Float](repeating: 0, count: picked.count * h)
        for (i, r) in picked.enumerated() { for j in 0..<h { last[i * h + j] = x[r * h + j] } }
        var lastNormed = [Float](repeating: 0, count: last.count)
        rmsNormRows(last, weights.finalNorm, into: &lastNormed, rows: picked.count)
        return try linear(weights.head, lastNormed, rows: picked.count)
    }

    // MARK: - Layers

    func attention(_ w: AttentionWeights, layer: Int, input: [Float], rows: Int, segments: [(start: Int, count: Int)],
                   caches: inout [SequenceCache], into out: inout [Float]) throws {
        switch (w, spec.attention) {
        case let (.grouped(g), .grouped(a)):
            try groupedAttention(g, a, layer: layer, input: input, rows: rows, segments: segments, caches: &caches, into: &out)
        case let (.latent(m), .latent(a)):
            try latentAttention(m, a, layer: layer, input: input, rows: rows, segments: segments, caches: &caches, into: &out)
        default:
            throw RuntimeError.unsupported("attention weights do not match the spec")
        }
    }

    func groupedAttention(_ w: GQAWeights, _ a: GroupedQueryAttention, layer: Int, input: [Float], rows: Int,
                          segments: [(start: Int, count: Int)], caches: inout [SequenceCache], into out: inout [Float]) throws {
        let hd = a.headDim, q = a.heads * hd, kv = a.kvHeads * hd, width = q + 2 * kv
        var qkv = try linearArray(w.qkv, input, rows: rows)
        if let bias = w.qkvBias { for r in 0..<rows { for j in 0..<width { qkv[r * width + j] += bias[j] } } }
        qkv.withUnsafeMutableBufferPointer { p in
            guard let base = p.baseAddress else { return }
            for (s, seg) in segments.enumerated() {
                for i in 0..<seg.count {
                    let row = base + (seg.start + i) * width
                    if let qn = w.qNorm, let kn = w.kNorm {
                        qn.withUnsafeBufferPointer { wq in
                            for hh in 0..<a.heads { Reduction.rmsNorm(row + hh * hd, weight: wq.baseAddress!, epsilon: Float(spec.rmsNormEpsilon), into: row + hh * hd, count: hd) }
                        }
                        kn.withUnsafeBufferPointer { wk in
                            for hh in 0..<a.kvHeads { Reduction.rmsNorm(row + q + hh * hd, weight: wk.baseAddress!, epsilon: Float(spec.rmsNormEpsilon), into: row + q + hh * hd, count: hd) }
                        }
                    }
                    let position = caches[s].length + i
                    rope.apply(to: row, heads: a.heads, headStride: hd, position: position)
                    rope.apply(to: row + q, heads: a.kvHeads, headStride: hd, position: position)
                    caches[s].append(layer: layer, keys: UnsafeBufferPointer(start: row + q, count: kv),
                                     values: UnsafeBufferPointer(start: row + q + kv, count: kv))
                }
            }
        }
        var context = [Float](repeating: 0, count: rows * q)
        let window: Int? = { if case let .slidingWindow(w) = spec.layers[layer].span { return w }; return nil }()
        let scale = 1 / Float(hd).squareRoot()
        let group = a.heads / a.kvHeads
        for (s, seg) in segments.enumerated() {
            let past = caches[s].length, total = past + seg.count
            if seg.count <= SmallBatch.limit {
                // Decode: a few queries against the cache, with TensorCore's dot and axpy rather
                // than BLAS calls (whose idle threads would then spin against ours).
                qkv.withUnsafeBufferPointer { qp in
                    caches[s].keys[layer].withUnsafeBufferPointer { keys in
                        caches[s].values[layer].withUnsafeBufferPointer { values in
                            context.withUnsafeMutableBufferPointer { cp in
                                withUnsafeTemporaryAllocation(of: Float.self, capacity: total) { scores in
                                    for i in 0..<seg.count {
                                        for hh in 0..<a.heads {
                                            let kvh = hh / group
                                            decodeHead(query: qp.baseAddress! + (seg.start + i) * width + hh * hd,
                                                       keys: keys.baseAddress! + kvh * hd, values: values.baseAddress! + kvh * hd,
                                                       stride: kv, width: hd, valueWidth: hd, visible: past + i + 1, window: window,
                                                       scale: scale, scores: scores.baseAddress!,
                                                       into: cp.baseAddress! + (seg.start + i) * q + hh * hd)
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                continue
            }
            var scores = [Float](repeating: 0, count: min(seg.count, CPUModel.queryBlock) * total)
            caches[s].keys[layer].withUnsafeBufferPointer { keys in
                caches[s].values[layer].withUnsafeBufferPointer { values in
                    qkv.withUnsafeBufferPointer { qp in
                        scores.withUnsafeMutableBufferPointer { sp in
                            context.withUnsafeMutableBufferPointer { cp in
                                for hh in 0..<a.heads {
                                    let kvh = hh / group
                                    for (b0, m, visible) in CPUModel.causalBlocks(queries: seg.count, past: past) {
                                        BLAS.gemm(m: m, n: visible, k: hd, a: qp.baseAddress! + (seg.start + b0) * width + hh * hd, lda: width,
                                                  transposeA: false, b: keys.baseAddress! + kvh * hd, ldb: kv, transposeB: true,
                                                  c: sp.baseAddress!, ldc: visible, alpha: scale)
                                        maskAndSoftmax(sp.baseAddress!, queries: m, keys: visible, past: past + b0, window: window)
                                        BLAS.gemm(m: m, n: hd, k: visible, a: sp.baseAddress!, lda: visible, transposeA: false,
                                                  b: values.baseAddress! + kvh * hd, ldb: kv, transposeB: false,
                                                  c: cp.baseAddress! + (seg.start + b0) * q + hh * hd, ldc: q)
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        out = try linearArray(w.output, context, rows: rows)
    }

    func latentAttention(_ w: MLAWeights, _ a: MultiHeadLatentAttention, layer: Int, input: [Float], rows: Int,
                         segments: [(start: Int, count: Int)], caches: inout [SequenceCache], into out: inout [Float]) throws {
        let qRank = a.qLoraRank ?? 0, kvRank = a.kvLoraRank, ropeDim = a.qkRopeHeadDim
        let qk = a.qkHeadDim, heads = a.heads, nope = a.qkNopeHeadDim, vDim = a.vHeadDim
        let downWidth = w.down.rows
        let down = try linearArray(w.down, input, rows: rows)
        // Queries: through the low-rank path (q_a, its norm, q_b) or directly.
        var q: [Float]
        if let qNorm = w.qNorm {
            var qa = [Float](repeating: 0, count: rows * qRank)
            for r in 0..<rows { for j in 0..<qRank { qa[r * qRank + j] = down[r * downWidth + j] } }
            var qaNormed = qa
            rmsNormRows(qa, qNorm, into: &qaNormed, rows: rows)
            q = try linearArray(w.qUp, qaNormed, rows: rows)
        } else {
            q = try linearArray(w.qUp, input, rows: rows)
        }
        // The latent (normalised) and the shared rotary key of each new token go to the cache.
        var latent = [Float](repeating: 0, count: rows * kvRank)
        var rotaryKey = [Float](repeating: 0, count: rows * ropeDim)
        for r in 0..<rows {
            for j in 0..<kvRank { latent[r * kvRank + j] = down[r * downWidth + qRank + j] }
            for j in 0..<ropeDim { rotaryKey[r * ropeDim + j] = down[r * downWidth + qRank + kvRank + j] }
        }
        var latentNormed = latent
        rmsNormRows(latent, w.kvNorm, into: &latentNormed, rows: rows)
        q.withUnsafeMutableBufferPointer { qp in
            rotaryKey.withUnsafeMutableBufferPointer { kp in
                latentNormed.withUnsafeBufferPointer { lp in
                    guard let qb = qp.baseAddress, let kb = kp.baseAddress, let lb = lp.baseAddress else { return }
                    for (s, seg) in segments.enumerated() {
                        for i in 0..<seg.count {
                            let r = seg.start + i, position = caches[s].length + i
                            rope.apply(to: qb + r * heads * qk + nope, heads: heads, headStride: qk, position: position)
                            rope.apply(to: kb + r * ropeDim, heads: 1, headStride: ropeDim, position: position)
                            caches[s].append(layer: layer, keys: UnsafeBufferPointer(start: lb + r * kvRank, count: kvRank),
                                             values: UnsafeBufferPointer(start: kb + r * ropeDim, count: ropeDim))
                        }
                    }
                }
            }
        }
        var context = [Float](repeating: 0, count: rows * heads * vDim)
        let scale = 1 / Float(qk).squareRoot()
        let expandedWidth = heads * (nope + vDim)
        for (s, seg) in segments.enumerated() {
            let past = caches[s].length, total = past + seg.count
            if seg.count <= SmallBatch.limit {
                absorbedDecode(w, a, layer: layer, q: q, segment: seg, past: past, cache: caches[s], scale: scale, into: &context)
                continue
            }
            // Expanded keys and values of every cached token: latent · kv_bᵀ.
            let expanded = try caches[s].keys[layer].withUnsafeBufferPointer { lp -> [Float] in
                try linearArray(w.kvUp, Array(lp), rows: total)
            }
            var scores = [Float](repeating: 0, count: min(seg.count, CPUModel.queryBlock) * total)
            expanded.withUnsafeBufferPointer { ep in
                caches[s].values[layer].withUnsafeBufferPointer { rk in
                    q.withUnsafeBufferPointer { qp in
                        scores.withUnsafeMutableBufferPointer { sp in
                            context.withUnsafeMutableBufferPointer { cp in
                                for hh in 0..<heads {
                                    for (b0, m, visible) in CPUModel.causalBlocks(queries: seg.count, past: past) {
                                        let qRow = qp.baseAddress! + (seg.start + b0) * heads * qk + hh * qk
                                        BLAS.gemm(m: m, n: visible, k: nope, a: qRow, lda: heads * qk, transposeA: false,
                                                  b: ep.baseAddress! + hh * (nope + vDim), ldb: expandedWidth, transposeB: true,
                                                  c: sp.baseAddress!, ldc: visible, alpha: scale)
                                        BLAS.gemm(m: m, n: visible, k: ropeDim, a: qRow + nope, lda: heads * qk, transposeA: false,
                                                  b: rk.baseAddress!, ldb: ropeDim, transposeB: true,
                                                  c: sp.baseAddress!, ldc: visible, alpha: scale, beta: 1)
                                        maskAndSoftmax(sp.baseAddress!, queries: m, keys: visible, past: past + b0, window: nil)
                                        BLAS.gemm(m: m, n: vDim, k: visible, a: sp.baseAddress!, lda: visible, transposeA: false,
                                                  b: ep.baseAddress! + hh * (nope + vDim) + nope, ldb: expandedWidth, transposeB: false,
                                                  c: cp.baseAddress! + (seg.start + b0) * heads * vDim + hh * vDim, ldc: heads * vDim)
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        out = try linearArray(w.output, context, rows: rows)
    }

    /// MLA's absorbed form for a few queries: each head's query moves into the latent space
    /// through W_UK (q_lat = W_UKᵀ q_nope), attends over the cached latents and rotary keys
    /// directly, and its latent output comes back through W_UV. The cache is never expanded, so a
    /// step costs O(context × kv_lora_rank) per head instead of expanding every cached token.
    func absorbedDecode(_ w: MLAWeights, _ a: MultiHeadLatentAttention, layer: Int, q: [Float],
                        segment seg: (start: Int, count: Int), past: Int, cache: SequenceCache, scale: Float,
                        into context: inout [Float]) {
        let heads = a.heads, qk = a.qkHeadDim, nope = a.qkNopeHeadDim, vDim = a.vHeadDim
        let rank = a.kvLoraRank, ropeDim = a.qkRopeHeadDim, rowsPerHead = nope + vDim
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * rank + past + seg.count) { scratch in
            guard let base = scratch.baseAddress else { return }
            let qLatent = base, oLatent = base + rank, scores = base + 2 * rank
            q.withUnsafeBufferPointer { qp in
                w.kvUpRows.withUnsafeBufferPointer { wp in
                    cache.keys[layer].withUnsafeBufferPointer { latents in
                        cache.values[layer].withUnsafeBufferPointer { rotary in
                            context.withUnsafeMutableBufferPointer { cp in
                                for i in 0..<seg.count {
                                    let visible = past + i + 1
                                    for hh in 0..<heads {
                                        let query = qp.baseAddress! + (seg.start + i) * heads * qk + hh * qk
                                        let uk = wp.baseAddress! + hh * rowsPerHead * rank
                                        qLatent.update(repeating: 0, count: rank)
                                        for r in 0..<nope { Elementwise.addScaled(uk + r * rank, by: query[r], into: qLatent, count: rank) }
                                        for j in 0..<visible {
                                            scores[j] = (Reduction.dot(qLatent, latents.baseAddress! + j * rank, count: rank)
                                                + Reduction.dot(query + nope, rotary.baseAddress! + j * ropeDim, count: ropeDim)) * scale
                                        }
                                        Reduction.softmax(scores, count: visible)
                                        oLatent.update(repeating: 0, count: rank)
                                        for j in 0..<visible {
                                            Elementwise.addScaled(latents.baseAddress! + j * rank, by: scores[j], into: oLatent, count: rank)
                                        }
                                        let uv = uk + nope * rank
                                        let out = cp.baseAddress! + (seg.start + i) * heads * vDim + hh * vDim
                                        for r in 0..<vDim { out[r] = Reduction.dot(uv + r * rank, oLatent, count: rank) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    func feedForward(_ w: FeedForwardWeights, layer: Int, input: [Float], rows: Int, into out: inout [Float]) throws {
        switch w {
        case let .dense(m):
            out = try mlp(m, input, rows: rows)
        case let .moe(m):
            guard let moe = spec.moe else { return }
            let h = spec.hiddenSize, e = moe.routedExperts
            let logits = try linearArray(m.router, input, rows: rows)
            let (ids, routeWeights) = Router.route(logits, tokens: rows, moe: moe, correctionBias: m.correctionBias)
            for id in ids { expertLoad[Int(id)] += 1 }
            if recordRouting {
                let k = moe.expertsPerToken
                lastRouting[layer] = (0..<rows).map { Array(ids[($0 * k)..<(($0 + 1) * k)]).sorted() }
            }
            let assignments = try ExpertAssignments(tokenCount: rows, expertsPerToken: moe.expertsPerToken,
                                                    expertCount: e, experts: ids, weights: routeWeights)
            let grouping = ExpertGrouping(assignments)
            let size = moe.expertIntermediateSize, pairs = grouping.rowCount
            var packed = [Float](repeating: 0, count: pairs * h)
            var gateUp = [Float](repeating: 0, count: pairs * 2 * size)
            var activated = [Float](repeating: 0, count: pairs * size)
            var expertOut = [Float](repeating: 0, count: pairs * h)
            out = [Float](repeating: 0, count: rows * h)
            input.withUnsafeBufferPointer { ip in
                packed.withUnsafeMutableBufferPointer { pp in
                    gateUp.withUnsafeMutableBufferPointer { gp in
                        activated.withUnsafeMutableBufferPointer { ap in
                            expertOut.withUnsafeMutableBufferPointer { op in
                                out.withUnsafeMutableBufferPointer { yp in
                                    GroupedMatmul.gather(ip.baseAddress!, width: h, grouping: grouping, into: pp.baseAddress!)
                                    GroupedMatmul.multiply(pp.baseAddress!, grouping: grouping, weights: m.expertsGateUp, into: gp.baseAddress!)
                                    for r in 0..<pairs {
                                        Elementwise.siluMul(gate: gp.baseAddress! + r * 2 * size, up: gp.baseAddress! + r * 2 * size + size,
                                                            into: ap.baseAddress! + r * size, count: size)
                                    }
                                    GroupedMatmul.multiply(ap.baseAddress!, grouping: grouping, weights: m.expertsDown, into: op.baseAddress!)
                                    GroupedMatmul.scatterAdd(op.baseAddress!, width: h, grouping: grouping, into: yp.baseAddress!)
                                }
                            }
                        }
                    }
                }
            }
            if let shared = m.shared {
                var sharedOut = try mlp(shared, input, rows: rows)
                if let gate = m.sharedGate {
                    let g = try WeightMatrix(f32: gate)
                    let gates = try linearArray(g, input, rows: rows)
                    for r in 0..<rows {
                        let s = 1 / (1 + Foundation.exp(-gates[r]))
                        for j in 0..<h { sharedOut[r * h + j] *= s }
                    }
                }
                add(&out, sharedOut)
            }
        }
    }

    func mlp(_ m: MLPWeights, _ input: [Float], rows: Int) throws -> [Float] {
        let size = m.intermediate
        let gateUp = try linearArray(m.gateUp, input, rows: rows)
        var activated = [Float](repeating: 0, count: rows * size)
        gateUp.withUnsafeBufferPointer { gp in
            activated.withUnsafeMutableBufferPointer { ap in
                for r in 0..<rows {
                    Elementwise.siluMul(gate: gp.baseAddress! + r * 2 * size, up: gp.baseAddress! + r * 2 * size + size,
                                        into: ap.baseAddress! + r * size, count: size)
                }
            }
        }
        return try linearArray(m.down, activated, rows: rows)
    }

    // MARK: - Helpers

    func linearArray(_ w: WeightMatrix, _ x: [Float], rows: Int) throws -> [Float] {
        var y = [Float](repeating: 0, count: rows * w.rows)
        guard rows > 0 else { return y }
        x.withUnsafeBufferPointer { xp in
            y.withUnsafeMutableBufferPointer { yp in w.apply(xp.baseAddress!, batch: rows, into: yp.baseAddress!) }
        }
        return y
    }

    func linear(_ w: WeightMatrix, _ x: [Float], rows: Int) throws -> Tensor {
        try Tensor(shape: [rows, w.rows], elements: linearArray(w, x, rows: rows))
    }

    func rmsNormRows(_ x: [Float], _ weight: [Float], into out: inout [Float], rows: Int) {
        let width = weight.count
        x.withUnsafeBufferPointer { xp in
            weight.withUnsafeBufferPointer { wp in
                out.withUnsafeMutableBufferPointer { op in
                    for r in 0..<rows {
                        Reduction.rmsNorm(xp.baseAddress! + r * width, weight: wp.baseAddress!, epsilon: Float(spec.rmsNormEpsilon),
                                          into: op.baseAddress! + r * width, count: width)
                    }
                }
            }
        }
    }

    func add(_ x: inout [Float], _ y: [Float]) {
        x.withUnsafeMutableBufferPointer { xp in
            y.withUnsafeBufferPointer { yp in Elementwise.add(xp.baseAddress!, yp.baseAddress!, into: xp.baseAddress!, count: yp.count) }
        }
    }

    /// One query head against `visible` cached positions (the last `window` of them when the layer
    /// slides): scores, softmax, and the weighted sum of values into `out`.
    func decodeHead(query: UnsafePointer<Float>, keys: UnsafePointer<Float>, values: UnsafePointer<Float>, stride: Int,
                    width: Int, valueWidth: Int, visible: Int, window: Int?, scale: Float,
                    scores: UnsafeMutablePointer<Float>, into out: UnsafeMutablePointer<Float>) {
        let first = window.map { max(0, visible - $0) } ?? 0
        let count = visible - first
        for j in 0..<count { scores[j] = Reduction.dot(query, keys + (first + j) * stride, count: width) * scale }
        Reduction.softmax(scores, count: count)
        out.update(repeating: 0, count: valueWidth)
        for j in 0..<count { Elementwise.addScaled(values + (first + j) * stride, by: scores[j], into: out, count: valueWidth) }
    }

    /// Queries attend in blocks of this many rows, each against only the keys it can see, so a
    /// prompt's causal attention does half the work of the full square.
    static let queryBlock = 128

    /// (first query, queries, visible keys) of each block of `queries` new tokens after `past`.
    static func causalBlocks(queries: Int, past: Int) -> [(Int, Int, Int)] {
        stride(from: 0, to: queries, by: queryBlock).map { b0 in
            let m = min(queryBlock, queries - b0)
            return (b0, m, past + b0 + m)
        }
    }

    /// Causal (and windowed) mask, then softmax, of a block of scores: query i is the token at
    /// position past + i and sees keys j ≤ past + i (and j > past + i − window).
    func maskAndSoftmax(_ scores: UnsafeMutablePointer<Float>, queries: Int, keys: Int, past: Int, window: Int?) {
        for i in 0..<queries {
            let row = scores + i * keys
            let position = past + i
            for j in (position + 1)..<max(position + 1, keys) { row[j] = -.infinity }
            if let window, position - window >= 0 { for j in 0...(position - window) { row[j] = -.infinity } }
            Reduction.softmax(row, count: keys)
        }
    }

    // MARK: - Generation

    /// Greedy continuation of each prompt by `maxNew` tokens (ties go to the lower token id).
    public func generate(prompts: [[Int]], maxNew: Int) throws -> [[Int]] {
        var caches = prompts.map { newCache(reserve: $0.count + maxNew) }
        var generated = Array(repeating: [Int](), count: prompts.count)
        guard maxNew > 0 else { return generated }
        var logits = try forward(prompts, caches: &caches)
        for step in 0..<maxNew {
            let next = argmaxRows(logits)
            for s in 0..<prompts.count { generated[s].append(next[s]) }
            if step + 1 < maxNew { logits = try forward(next.map { [$0] }, caches: &caches) }
        }
        return generated
    }

    /// The index of the largest logit of each row (ties: the lower token id).
    public func argmaxRows(_ logits: Tensor) -> [Int] {
        let v = logits.shape[1]
        return logits.withUnsafeBufferPointer { p in
            (0..<logits.shape[0]).map { r in
                var best = 0
                for j in 1..<v where p[r * v + j] > p[r * v + best] { best = j }
                return best
            }
        }
    }
}
