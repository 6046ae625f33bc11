import Foundation
import ModelSpec
import TensorCore

// DeepSeek-V4 on the CPU, in one place: its weights under the checkpoint's names, the
// hyper-connection residual streams around every block, and compressed attention (a sliding window
// over one shared key = value head, plus compressed entries: all of them on HCA layers, the
// indexer's top-k on CSA layers). The MoE block is the common one (`CPUModel.feedForward`) with
// V4's hash routing and clamped SwiGLU. Follows transformers 5.24's modeling_deepseek_v4.py.

/// The projections of one compressed-attention layer.
struct V4AttentionWeights {
    /// Every projection that reads the layer input, stacked for one GEMM: wq_a [Q], wkv [D], and
    /// on compressed layers the compressor's wkv and wgate [w each: D on HCA, 2D on CSA], and on
    /// CSA layers the indexer compressor's wkv and wgate [2·ID each] and its weights_proj [IH].
    var input: WeightMatrix
    var queryNorm: [Float]
    var queryUp: WeightMatrix
    var kvNorm: [Float]
    /// wo_a, one matrix per output group: [o_lora_rank × heads·head_dim / o_groups].
    var outputA: [WeightMatrix]
    var outputB: WeightMatrix
    var sinks: [Float]
    var compressor: V4CompressorWeights?
    var indexer: V4IndexerWeights?
}

/// A compressor's per-window position bias (`ape`, [ratio × width]) and the norm of its entries.
struct V4CompressorWeights {
    var positionBias: [Float]
    var norm: [Float]
}

struct V4IndexerWeights {
    var compressor: V4CompressorWeights
    /// wq_b: index queries from the query latent, [IH·ID × Q].
    var queries: WeightMatrix
}

/// One hyper-connection map: fn [(2 + N)·N × N·hidden], base [(2 + N)·N], scale [3] (pre, post,
/// comb); the final head's has N outputs and one scale.
struct HyperWeights {
    var fn: WeightMatrix
    var base: [Float]
    var scale: [Float]
}

/// What a compressor keeps of one sequence between forward passes: the projected rows of the
/// window not yet complete, the previous complete window's first-half rows (a CSA entry mixes them
/// with the next window's second half), and the entries emitted so far.
struct CompressorState: Sendable {
    var pendingKV: [Float] = []
    var pendingGate: [Float] = []
    var overlapKV: [Float] = []
    var overlapGate: [Float] = []
    var entries: [Float] = []
    var count = 0

    var byteCount: Int { 4 * (pendingKV.count + pendingGate.count + overlapKV.count + overlapGate.count + entries.count) }
    /// Values held besides the emitted entries: the pending window and the overlap.
    var stateValues: Int { pendingKV.count + pendingGate.count + overlapKV.count + overlapGate.count }
}

extension ModelWeights {
    /// DeepSeek-V4's weights under the names transformers saves them with (the original
    /// checkpoint's: `attn.wq_a`, `ffn.experts.N.w1`, `hc_attn_fn`, …).
    static func loadDeepSeekV4(_ spec: ModelSpec, _ a: CompressedAttention, from source: WeightSource,
                               loader: MatrixLoader) throws -> ModelWeights {
        guard let moe = spec.moe, let hc = spec.hyperConnections else {
            throw RuntimeError.unsupported("DeepSeek-V4 without its MoE or hyper-connections")
        }
        let h = spec.hiddenSize, n = hc.streams
        func vector(_ name: String, _ count: Int, norm: Bool = false) throws -> [Float] {
            try source.tensor(name, [count], norm: norm).elements
        }
        func hyper(_ prefix: String, outputs: Int, scales: Int, fn: String, base: String, scale: String) throws -> HyperWeights {
            HyperWeights(fn: try WeightMatrix(f32: source.tensor("\(prefix)\(fn)", [outputs, n * h])),
                         base: try vector("\(prefix)\(base)", outputs), scale: try vector("\(prefix)\(scale)", scales))
        }
        func mlp(_ prefix: String, _ size: Int) throws -> MLPWeights {
            MLPWeights(gateUp: try loader.matrix([("\(prefix).w1.weight", [size, h]), ("\(prefix).w3.weight", [size, h])]),
                       down: try loader.matrix([("\(prefix).w2.weight", [h, size])]))
        }
        let d = a.headDim, x = a.indexer, mix = (2 + n) * n
        let groupWidth = a.heads * d / a.outputGroups
        var layers: [LayerWeights] = []
        for (i, layer) in spec.layers.enumerated() {
            let p = "model.layers.\(i)", ap = "\(p).attn"
            guard case let .compressed(ratio, _) = layer.span else { throw RuntimeError.unsupported("a DeepSeek-V4 layer without its span") }
            let sparse = ratio > 0 && layer.indexer, width = sparse ? 2 * d : d
            var parts: [(String, [Int])] = [("\(ap).wq_a.weight", [a.queryRank, h]), ("\(ap).wkv.weight", [d, h])]
            var compressor: V4CompressorWeights? = nil, indexer: V4IndexerWeights? = nil
            if ratio > 0 {
                parts += [("\(ap).compressor.wkv.weight", [width, h]), ("\(ap).compressor.wgate.weight", [width, h])]
                compressor = V4CompressorWeights(positionBias: try source.tensor("\(ap).compressor.ape", [ratio, width]).elements,
                                                 norm: try vector("\(ap).compressor.norm.weight", d, norm: true))
            }
            if sparse {
                let ip = "\(ap).indexer"
                parts += [("\(ip).compressor.wkv.weight", [2 * x.headDim, h]), ("\(ip).compressor.wgate.weight", [2 * x.headDim, h]),
                          ("\(ip).weights_proj.weight", [x.heads, h])]
                indexer = V4IndexerWeights(
                    compressor: V4CompressorWeights(positionBias: try source.tensor("\(ip).compressor.ape", [ratio, 2 * x.headDim]).elements,
                                                    norm: try vector("\(ip).compressor.norm.weight", x.headDim, norm: true)),
                    queries: try WeightMatrix(f32: source.tensor("\(ip).wq_b.weight", [x.heads * x.headDim, a.queryRank])))
            }
            let outputA = try source.tensor("\(ap).wo_a.weight", [a.outputGroups * a.outputRank, groupWidth]).elements
            let groups = try (0..<a.outputGroups).map { g in
                try loader.matrix(rows: a.outputRank, cols: groupWidth) { r, out in
                    for c in 0..<groupWidth { out[c] = outputA[(g * a.outputRank + r) * groupWidth + c] }
                }
            }
            let attention = V4AttentionWeights(
                input: try loader.matrix(parts), queryNorm: try vector("\(ap).q_norm.weight", a.queryRank, norm: true),
                queryUp: try loader.matrix([("\(ap).wq_b.weight", [a.heads * d, a.queryRank])]),
                kvNorm: try vector("\(ap).norm.weight", d, norm: true), outputA: groups,
                outputB: try loader.matrix([("\(ap).wo_b.weight", [h, a.outputGroups * a.outputRank])]),
                sinks: try vector("\(ap).attn_sink", a.heads), compressor: compressor, indexer: indexer)
            // The first `hashRoutedLayers` pick experts from a token → experts table.
            var hashTable: [Int32]? = nil
            if i < moe.hashRoutedLayers {
                let k = moe.expertsPerToken
                // Random weights have no table (transformers initialises it to zeros, one expert k
                // times): token t takes experts t·k … t·k + k − 1 modulo E, k distinct ones.
                let table: [Float] = if case .random = source {
                    (0..<(spec.vocabSize * k)).map { Float(($0 / k * k + $0 % k) % moe.routedExperts) }
                } else {
                    try source.tensor("\(p).ffn.gate.tid2eid", [spec.vocabSize, k]).elements
                }
                guard table.allSatisfy({ $0 >= 0 && $0 < Float(moe.routedExperts) && $0 == $0.rounded() }) else {
                    throw RuntimeError.unsupported("\(p).ffn.gate.tid2eid holds an expert id outside 0..<\(moe.routedExperts)")
                }
                hashTable = table.map { Int32($0) }
            }
            var moeWeights = MoEWeights(
                router: try WeightMatrix(f32: source.tensor("\(p).ffn.gate.weight", [moe.routedExperts, h])), routerBias: nil,
                correctionBias: hashTable == nil ? try vector("\(p).ffn.gate.bias", moe.routedExperts) : nil,
                experts: [], shared: try mlp("\(p).ffn.shared_experts", moe.sharedIntermediateSize), sharedGate: nil)
            moeWeights.hashTable = hashTable
            moeWeights.experts = try (0..<moe.routedExperts).map { try mlp("\(p).ffn.experts.\($0)", moe.expertIntermediateSize) }
            var weights = LayerWeights(inputNorm: try vector("\(p).attn_norm.weight", h, norm: true),
                                       postNorm: try vector("\(p).ffn_norm.weight", h, norm: true),
                                       attention: .compressed(attention), feedForward: .moe(moeWeights))
            weights.hyper = (try hyper("\(p).", outputs: mix, scales: 3, fn: "hc_attn_fn", base: "hc_attn_base", scale: "hc_attn_scale"),
                             try hyper("\(p).", outputs: mix, scales: 3, fn: "hc_ffn_fn", base: "hc_ffn_base", scale: "hc_ffn_scale"))
            layers.append(weights)
        }
        var model = ModelWeights(embedding: try source.tensor("model.embed_tokens.weight", [spec.vocabSize, h]), layers: layers,
                                 finalNorm: try vector("model.norm.weight", h, norm: true),
                                 head: try loader.matrix([(spec.tiedEmbeddings ? "model.embed_tokens.weight" : "head.weight", [spec.vocabSize, h])]))
        model.hyperHead = try hyper("model.hc_head.", outputs: n, scales: 1, fn: "hc_fn", base: "hc_base", scale: "hc_scale")
        return model
    }
}

extension CPUModel {
    /// Queries of one compressed-attention block (they share the gathered keys and one GEMM).
    static let compressedQueryBlock = 32

    /// DeepSeek-V4's forward pass: the hidden state as `streams` residual copies, each block fed
    /// their `pre`-weighted sum and its output spread back by `post` beside the mixed old streams;
    /// at the end the head's own collapse, the final norm and the output head. The streams and
    /// the maps' scratch live in the workspace, reused across passes.
    func runHyperConnected(rows: Int, token: (Int) -> Int, caches: inout [SequenceCache], allLogits: Bool,
                           into logits: inout Tensor) throws {
        guard let hc = spec.hyperConnections, let head = weights.hyperHead else {
            throw RuntimeError.unsupported("hyper-connections without their weights")
        }
        let segments = workspace.segments
        let h = spec.hiddenSize, n = hc.streams
        let picked = allLogits ? rows : segments.count
        try beginPass(rows: rows, allLogits: allLogits, logits: &logits)
        guard rows > 0 else { return }
        let ws = workspace
        // `collapsed` also takes the head's rows (one per sequence, which may outnumber the rows).
        let streams = ws.get(.hcStreams, rows * n * h), collapsed = ws.get(.hcCollapsed, max(rows, picked) * h)
        let normed = ws.get(.normed, rows * h), delta = ws.get(.delta, rows * h)
        let post = ws.get(.hcPost, rows * n), comb = ws.get(.hcComb, rows * n * n), mixed = ws.get(.hcMixed, n * h)
        let tokens = (0..<rows).map(token)
        embed(rows: rows, token: token, into: collapsed)
        for r in 0..<rows { for j in 0..<n { (streams + (r * n + j) * h).update(from: collapsed + r * h, count: h) } }
        for (index, layer) in weights.layers.enumerated() {
            guard let (attentionMap, feedForwardMap) = layer.hyper else { throw RuntimeError.unsupported("a layer without hyper-connections") }
            for block in 0..<2 {
                timed(.norm) {
                    hyperCollapse(streams, rows: rows, map: block == 0 ? attentionMap : feedForwardMap, hc: hc,
                                  collapsed: collapsed, post: post, comb: comb)
                    rmsNormRows(collapsed, block == 0 ? layer.inputNorm : layer.postNorm, into: normed, rows: rows)
                }
                if block == 0 {
                    try timed(.attention) {
                        try attention(layer.attention, layer: index, input: normed, rows: rows, segments: segments, caches: &caches, into: delta)
                    }
                } else {
                    try timed(.moe) {
                        try feedForward(layer.feedForward, layer: index, input: normed, rows: rows, into: delta, tokens: tokens)
                    }
                }
                // New stream k = post_k · output + Σ_j comb[j][k] · old stream j.
                timed(.norm) {
                    for r in 0..<rows {
                        let row = streams + r * n * h
                        for k in 0..<n {
                            Elementwise.scale(delta + r * h, by: post[r * n + k], into: mixed + k * h, count: h)
                            for j in 0..<n { Elementwise.addScaled(row + j * h, by: comb[(r * n + j) * n + k], into: mixed + k * h, count: h) }
                        }
                        row.update(from: mixed, count: n * h)
                    }
                }
            }
        }
        for s in segments.indices { caches[s].advance(by: segments[s].count) }

        // The head's collapse (pre weights only), the final norm and the output head on the rows
        // whose logits are wanted.
        let last = ws.get(.hcLast, picked * n * h), lastNormed = ws.get(.lastNormed, picked * h)
        for i in 0..<picked {
            let r = min(allLogits ? i : segments[i].start + max(segments[i].count, 1) - 1, rows - 1)
            (last + i * n * h).update(from: streams + r * n * h, count: n * h)
        }
        timed(.norm) {
            hyperHeadCollapse(last, rows: picked, map: head, hc: hc, collapsed: collapsed)
            rmsNormRows(collapsed, weights.finalNorm, into: lastNormed, rows: picked)
        }
        timed(.head) {
            logits.withUnsafeMutableBufferPointer { out in
                if let base = out.baseAddress { weights.head.apply(lastNormed, batch: picked, into: base) }
            }
        }
    }

    /// Each row's streams RMS-normalised as one vector (no weight), mapped by `fn` into the
    /// workspace's `hcMixes` ((2 + n)·n or n per row).
    func hyperMixes(_ streams: UnsafePointer<Float>, rows: Int, map: HyperWeights, hc: HyperConnections) -> UnsafeMutablePointer<Float> {
        let width = hc.streams * spec.hiddenSize, outputs = map.base.count
        let epsilon = Float(spec.rmsNormEpsilon)
        let flat = workspace.get(.hcFlat, rows * width), mixes = workspace.get(.hcMixes, rows * outputs)
        for r in 0..<rows { Reduction.rmsNorm(streams + r * width, epsilon: epsilon, into: flat + r * width, count: width) }
        map.fn.apply(flat, batch: rows, into: mixes)
        return mixes
    }

    /// The pre-weighted sum of each row's streams into `collapsed`.
    func collapse(_ streams: UnsafePointer<Float>, rows: Int, streams n: Int, pre: UnsafePointer<Float>,
                  into collapsed: UnsafeMutablePointer<Float>) {
        let h = spec.hiddenSize
        for r in 0..<rows {
            Elementwise.scale(streams + r * n * h, by: pre[r * n], into: collapsed + r * h, count: h)
            for j in 1..<max(n, 1) { Elementwise.addScaled(streams + (r * n + j) * h, by: pre[r * n + j], into: collapsed + r * h, count: h) }
        }
    }

    /// One hyper-connection map of every row: pre = σ(mix · scale + base) + ε per stream (the
    /// block's input is the pre-weighted sum of the streams, into `collapsed`), post = 2σ(…) per
    /// stream, and comb, n × n made doubly stochastic by Sinkhorn's iterations (softmax rows, then
    /// alternately normalised columns and rows, each with ε).
    func hyperCollapse(_ streams: UnsafePointer<Float>, rows: Int, map: HyperWeights, hc: HyperConnections,
                       collapsed: UnsafeMutablePointer<Float>, post: UnsafeMutablePointer<Float>, comb: UnsafeMutablePointer<Float>) {
        let n = hc.streams, outputs = (2 + n) * n, eps = Float(hc.epsilon)
        let mixes = hyperMixes(streams, rows: rows, map: map, hc: hc)
        func sigmoid(_ v: Float) -> Float { 1 / (1 + exp(-v)) }
        let pre = workspace.get(.hcPre, rows * n)
        for r in 0..<rows {
            let m = r * outputs, c = comb + r * n * n
            for j in 0..<n {
                pre[r * n + j] = sigmoid(mixes[m + j] * map.scale[0] + map.base[j]) + eps
                post[r * n + j] = 2 * sigmoid(mixes[m + n + j] * map.scale[1] + map.base[n + j])
            }
            for a in 0..<n {
                var largest = -Float.infinity
                for b in 0..<n {
                    c[a * n + b] = mixes[m + 2 * n + a * n + b] * map.scale[2] + map.base[2 * n + a * n + b]
                    largest = max(largest, c[a * n + b])
                }
                var total: Float = 0
                for b in 0..<n { c[a * n + b] = exp(c[a * n + b] - largest); total += c[a * n + b] }
                for b in 0..<n { c[a * n + b] = c[a * n + b] / total + eps }
            }
            func normalizeColumns() {
                for b in 0..<n {
                    var total: Float = 0
                    for a in 0..<n { total += c[a * n + b] }
                    for a in 0..<n { c[a * n + b] /= total + eps }
                }
            }
            normalizeColumns()
            for _ in 0..<max(hc.sinkhornIterations - 1, 0) {
                for a in 0..<n {
                    var total: Float = 0
                    for b in 0..<n { total += c[a * n + b] }
                    for b in 0..<n { c[a * n + b] /= total + eps }
                }
                normalizeColumns()
            }
        }
        collapse(streams, rows: rows, streams: n, pre: pre, into: collapsed)
    }

    /// The final collapse: pre = sigmoid(mix · scale + base) + ε per stream, summed.
    func hyperHeadCollapse(_ streams: UnsafePointer<Float>, rows: Int, map: HyperWeights, hc: HyperConnections,
                           collapsed: UnsafeMutablePointer<Float>) {
        let n = hc.streams, eps = Float(hc.epsilon)
        let mixes = hyperMixes(streams, rows: rows, map: map, hc: hc)
        let pre = workspace.get(.hcPre, rows * n)
        for i in 0..<(rows * n) { pre[i] = 1 / (1 + exp(-(mixes[i] * map.scale[0] + map.base[i % n]))) + eps }
        collapse(streams, rows: rows, streams: n, pre: pre, into: collapsed)
    }

    /// Compressed attention of one layer (module comment above). Per sequence: queries from the
    /// normalised query latent (each head RMS-normalised, rotated on its last rope lanes), one key
    /// = value per token (normalised, rotated) kept in the cache, the compressor's new entries;
    /// each query attends, with its head's sink, over the window's keys and the compressed entries
    /// it may see (HCA: every complete window before it; CSA: the indexer's top-k of them). The
    /// output's rope lanes are rotated back by the query's angle, then the grouped low-rank output.
    func compressedAttention(_ w: V4AttentionWeights, _ a: CompressedAttention, layer: Int, input: UnsafeMutablePointer<Float>,
                             rows: Int, segments: [(start: Int, count: Int)], caches: inout [SequenceCache],
                             into out: UnsafeMutablePointer<Float>) throws {
        guard case let .compressed(ratio, window) = spec.layers[layer].span, let compressRope = compressedRope else {
            throw RuntimeError.unsupported("a compressed-attention layer without its span")
        }
        let d = a.headDim, heads = a.heads, q = a.queryRank, x = a.indexer
        let sparse = w.indexer != nil, width = sparse ? 2 * d : d
        let rotary = ratio > 0 ? compressRope : rope, ropeOffset = d - rotary.rotaryDimension
        let inputWidth = w.input.rows
        var projected = [Float](repeating: 0, count: rows * inputWidth)
        projected.withUnsafeMutableBufferPointer { w.input.apply(input, batch: rows, into: $0.baseAddress!) }
        let epsilon = Float(spec.rmsNormEpsilon)
        // The query latent (normalised), the keys (normalised, rotated).
        var latent = [Float](repeating: 0, count: rows * q), keys = [Float](repeating: 0, count: rows * d)
        for r in 0..<rows {
            for i in 0..<q { latent[r * q + i] = projected[r * inputWidth + i] }
            for i in 0..<d { keys[r * d + i] = projected[r * inputWidth + q + i] }
        }
        latent.withUnsafeMutableBufferPointer { rmsNormRows($0.baseAddress!, w.queryNorm, into: $0.baseAddress!, rows: rows) }
        keys.withUnsafeMutableBufferPointer { rmsNormRows($0.baseAddress!, w.kvNorm, into: $0.baseAddress!, rows: rows) }
        var queries = [Float](repeating: 0, count: rows * heads * d)
        latent.withUnsafeMutableBufferPointer { l in queries.withUnsafeMutableBufferPointer { w.queryUp.apply(l.baseAddress!, batch: rows, into: $0.baseAddress!) } }
        var indexQueries = [Float](repeating: 0, count: sparse ? rows * x.heads * x.headDim : 0)
        if let indexer = w.indexer {
            latent.withUnsafeMutableBufferPointer { l in indexQueries.withUnsafeMutableBufferPointer { indexer.queries.apply(l.baseAddress!, batch: rows, into: $0.baseAddress!) } }
        }
        var context = [Float](repeating: 0, count: rows * heads * d)
        // One cos/sin table per token, for its queries, its key, its index queries (CSA layers
        // rotate all with the compress rotary) and the output's rotation back.
        let half = rotary.rotaryDimension / 2
        var tables = [Float](repeating: 0, count: rows * 2 * half)
        for (s, seg) in segments.enumerated() {
            let past = caches[s].length
            for i in 0..<seg.count {
                let r = seg.start + i, position = past + i
                tables.withUnsafeMutableBufferPointer { tp in
                    queries.withUnsafeMutableBufferPointer { qp in
                        keys.withUnsafeMutableBufferPointer { kp in
                            guard let t = tp.baseAddress.map({ $0 + r * 2 * half }), let qb = qp.baseAddress, let kb = kp.baseAddress else { return }
                            rotary.angles(position: position, cos: t, sin: t + half)
                            let row = qb + r * heads * d
                            for hh in 0..<heads { Reduction.rmsNorm(row + hh * d, epsilon: epsilon, into: row + hh * d, count: d) }
                            rotary.apply(to: row + ropeOffset, heads: heads, headStride: d, cos: t, sin: t + half)
                            rotary.apply(to: kb + r * d + ropeOffset, heads: 1, headStride: d, cos: t, sin: t + half)
                            if sparse {
                                indexQueries.withUnsafeMutableBufferPointer { ip in
                                    guard let ib = ip.baseAddress else { return }
                                    rotary.apply(to: ib + r * x.heads * x.headDim + x.headDim - rotary.rotaryDimension, heads: x.heads,
                                                 headStride: x.headDim, cos: t, sin: t + half)
                                }
                            }
                        }
                    }
                }
                caches[s].keys[layer].append(contentsOf: keys[(r * d)..<((r + 1) * d)])
                // The compressors take the token's projected rows; a window that completes emits.
                if ratio > 0, let c = w.compressor {
                    let base = r * inputWidth + q + d
                    caches[s].compressor[layer].pendingKV += projected[base..<(base + width)]
                    caches[s].compressor[layer].pendingGate += projected[(base + width)..<(base + 2 * width)]
                    if caches[s].compressor[layer].pendingKV.count == ratio * width {
                        emit(&caches[s].compressor[layer], weights: c, ratio: ratio, dim: d, overlapping: sparse, rope: compressRope)
                    }
                    if let indexer = w.indexer {
                        let ib = base + 2 * width, iw = 2 * x.headDim
                        caches[s].indexCompressor[layer].pendingKV += projected[ib..<(ib + iw)]
                        caches[s].indexCompressor[layer].pendingGate += projected[(ib + iw)..<(ib + 2 * iw)]
                        if caches[s].indexCompressor[layer].pendingKV.count == ratio * iw {
                            emit(&caches[s].indexCompressor[layer], weights: indexer.compressor, ratio: ratio, dim: x.headDim,
                                 overlapping: true, rope: compressRope)
                        }
                    }
                }
            }
            // Attention in blocks of queries: the block's keys (the window of its first query to
            // its last, then every compressed entry one of its queries sees) gathered once, the
            // scores of all its queries and heads as one GEMM, each (query, head) row masked to
            // what that query sees and softmaxed with the head's sink, the values (= keys) as a
            // second GEMM.
            let cache = caches[s]
            let scale = 1 / Float(d).squareRoot()
            // Each query sees the entries of the windows complete at its position (a count); on CSA
            // layers the indexer keeps its top-k of them: query i's are chosen[i·topK ..< i·topK +
            // picked[i]], ascending (one flat buffer for the segment, not an array per query).
            let topK = sparse ? x.topK : 0
            var visibleCounts: [Int] = [], picked: [Int] = [], chosen = [Int32](repeating: 0, count: seg.count * topK)
            var indexerScratch = CPUModel.IndexerScratch()
            for i in 0..<seg.count {
                let r = seg.start + i, position = past + i
                let visible = ratio > 0 ? min((position + 1) / ratio, cache.compressor[layer].count) : 0
                visibleCounts.append(visible)
                if sparse {
                    let n = indexerChoice(query: indexQueries, row: r, projected: projected, inputWidth: inputWidth,
                                          weightsAt: q + d + 2 * width + 4 * x.headDim, keys: cache.indexCompressor[layer].entries,
                                          visible: visible, indexer: x, scratch: &indexerScratch)
                    for j in 0..<n { chosen[i * topK + j] = indexerScratch.chosen[j] }
                    picked.append(n)
                }
            }
            let block = CPUModel.compressedQueryBlock
            var gathered: [Float] = [], scores: [Float] = [], seen: [Bool] = [], union: [Int] = []
            // On CSA layers, each compressed entry's gathered column in the current block (−1: none).
            var column = [Int](repeating: -1, count: sparse ? cache.compressor[layer].count : 0)
            for b0 in stride(from: 0, to: seg.count, by: block) {
                let m = min(block, seg.count - b0), p0 = past + b0, last = p0 + m - 1
                let keyFirst = max(0, p0 - window + 1), own = last - keyFirst + 1
                // The entries any query of the block sees: a prefix on HCA layers (the last query
                // sees the most), the union of the indexer's choices on CSA layers, ascending.
                if sparse { for e in union { column[e] = -1 } }  // the last block's columns
                union.removeAll(keepingCapacity: true)
                if sparse {
                    for i in b0..<(b0 + m) { for j in 0..<picked[i] { column[Int(chosen[i * topK + j])] = 0 } }
                    for e in 0..<visibleCounts[b0 + m - 1] where column[e] == 0 {
                        column[e] = own + union.count
                        union.append(e)
                    }
                } else {
                    union.append(contentsOf: 0..<visibleCounts[b0 + m - 1])
                }
                let count = own + union.count
                if gathered.count < count * d { gathered = [Float](repeating: 0, count: count * d) }
                if scores.count < m * heads * count { scores = [Float](repeating: 0, count: m * heads * count) }
                gathered.withUnsafeMutableBufferPointer { gp in
                    guard let g = gp.baseAddress else { return }
                    cache.keys[layer].withUnsafeBufferPointer { kp in g.update(from: kp.baseAddress! + keyFirst * d, count: own * d) }
                    cache.compressor[layer].entries.withUnsafeBufferPointer { ep in
                        for (j, e) in union.enumerated() { (g + (own + j) * d).update(from: ep.baseAddress! + e * d, count: d) }
                    }
                    scores.withUnsafeMutableBufferPointer { sp in
                        queries.withUnsafeBufferPointer { qp in
                            context.withUnsafeMutableBufferPointer { cp in
                                guard let sc = sp.baseAddress, let qb = qp.baseAddress, let cb = cp.baseAddress else { return }
                                let r0 = seg.start + b0
                                BLAS.gemm(m: m * heads, n: count, k: d, a: qb + r0 * heads * d, lda: d, transposeA: false,
                                          b: g, ldb: d, transposeB: true, c: sc, ldc: count, alpha: scale)
                                for i in 0..<m {
                                    let position = p0 + i, firstSeen = max(0, position - window + 1)
                                    // Which gathered entries this query sees (one buffer for the whole pass).
                                    seen.removeAll(keepingCapacity: true)
                                    seen.append(contentsOf: repeatElement(!sparse, count: union.count))
                                    if sparse {
                                        for j in 0..<picked[b0 + i] { seen[column[Int(chosen[(b0 + i) * topK + j])] - own] = true }
                                    } else {
                                        for j in visibleCounts[b0 + i]..<union.count { seen[j] = false }
                                    }
                                    for hh in 0..<heads {
                                        let row = sc + (i * heads + hh) * count
                                        for k in 0..<own where keyFirst + k < firstSeen || keyFirst + k > position { row[k] = -.infinity }
                                        for j in 0..<union.count where !seen[j] { row[own + j] = -.infinity }
                                        Reduction.softmax(row, count: count, sink: w.sinks[hh])
                                    }
                                }
                                BLAS.gemm(m: m * heads, n: d, k: count, a: sc, lda: count, transposeA: false,
                                          b: g, ldb: d, transposeB: false, c: cb + r0 * heads * d, ldc: d)
                            }
                        }
                    }
                }
            }
            // The values carried the keys' rotation: undo it at each query's angle (sin negated).
            tables.withUnsafeMutableBufferPointer { tp in
                context.withUnsafeMutableBufferPointer { cp in
                    guard let tb = tp.baseAddress, let cb = cp.baseAddress else { return }
                    for r in seg.start..<(seg.start + seg.count) {
                        let t = tb + r * 2 * half
                        Elementwise.scale(t + half, by: -1, into: t + half, count: half)
                        rotary.apply(to: cb + r * heads * d + ropeOffset, heads: heads, headStride: d, cos: t, sin: t + half)
                    }
                }
            }
            if recordRouting, sparse {
                lastIndexerChoice[layer, default: []] += (0..<seg.count).map { i in (0..<picked[i]).map { Int(chosen[i * topK + $0]) } }
            }
        }
        // Grouped low-rank output: each group of heads through its own wo_a, then wo_b.
        let groupWidth = heads * d / a.outputGroups, rank = a.outputRank
        var group = [Float](repeating: 0, count: rows * groupWidth), low = [Float](repeating: 0, count: rows * rank)
        var mixed = [Float](repeating: 0, count: rows * a.outputGroups * rank)
        for (g, matrix) in w.outputA.enumerated() {
            for r in 0..<rows {
                group.replaceSubrange((r * groupWidth)..<((r + 1) * groupWidth),
                                      with: context[(r * heads * d + g * groupWidth)..<(r * heads * d + (g + 1) * groupWidth)])
            }
            group.withUnsafeMutableBufferPointer { gp in low.withUnsafeMutableBufferPointer { matrix.apply(gp.baseAddress!, batch: rows, into: $0.baseAddress!) } }
            for r in 0..<rows {
                mixed.replaceSubrange(((r * a.outputGroups + g) * rank)..<((r * a.outputGroups + g + 1) * rank),
                                      with: low[(r * rank)..<((r + 1) * rank)])
            }
        }
        mixed.withUnsafeMutableBufferPointer { w.outputB.apply($0.baseAddress!, batch: rows, into: out) }
    }

    /// Closes the pending window of a compressor: each channel's softmax over the window's slots
    /// (gate + position bias) weights its rows; with `overlapping` (CSA) the slots are the previous
    /// window's first halves then this window's second halves (none before the first window). The
    /// entry is RMS-normalised and rotated at the window's first position.
    func emit(_ state: inout CompressorState, weights: V4CompressorWeights, ratio m: Int, dim d: Int, overlapping: Bool,
              rope rotary: RotaryEmbedding) {
        let width = overlapping ? 2 * d : d
        for i in 0..<(m * width) { state.pendingGate[i] += weights.positionBias[i] }
        // Slot j of channel c: the previous window's first half (j < m, CSA only, when there is
        // one), then this window's own rows (its second half on CSA layers).
        let earlier = overlapping && !state.overlapKV.isEmpty ? m : 0, own = overlapping ? d : 0
        var entry = [Float](repeating: 0, count: d)
        for c in 0..<d {
            func slot(_ j: Int) -> (kv: Float, gate: Float) {
                j < earlier ? (state.overlapKV[j * d + c], state.overlapGate[j * d + c])
                    : (state.pendingKV[(j - earlier) * width + own + c], state.pendingGate[(j - earlier) * width + own + c])
            }
            var largest = -Float.infinity
            for j in 0..<(earlier + m) { largest = max(largest, slot(j).gate) }
            var total: Float = 0, sum: Float = 0
            for j in 0..<(earlier + m) {
                let (v, g) = slot(j), e = exp(g - largest)
                total += e
                sum += e * v
            }
            entry[c] = sum / total
        }
        if overlapping {
            // This window's first halves, for the next entry.
            state.overlapKV = (0..<(m * d)).map { state.pendingKV[($0 / d) * width + $0 % d] }
            state.overlapGate = (0..<(m * d)).map { state.pendingGate[($0 / d) * width + $0 % d] }
        }
        entry.withUnsafeMutableBufferPointer { e in
            guard let base = e.baseAddress else { return }
            rmsNormRows(base, weights.norm, into: base, rows: 1)
            rotary.apply(to: base + d - rotary.rotaryDimension, heads: 1, headStride: d, position: state.count * m)
        }
        state.entries += entry
        state.count += 1
        state.pendingKV.removeAll(keepingCapacity: true)
        state.pendingGate.removeAll(keepingCapacity: true)
    }

    /// The indexer's top-k of the `visible` compressed entries for one query (`indexerTopK`), with
    /// its head weights from the layer input scaled by 1/√index heads: how many it chose (every
    /// entry while no more than top-k are visible), ascending in `scratch.chosen`.
    func indexerChoice(query: [Float], row r: Int, projected: [Float], inputWidth: Int, weightsAt: Int, keys: [Float],
                       visible: Int, indexer x: SparseAttention, scratch: inout CPUModel.IndexerScratch) -> Int {
        scratch.reserve(heads: x.heads, visible: 0, topK: x.topK)  // the choices and head weights; indexerTopK the rest
        guard visible > x.topK else {
            for e in 0..<visible { scratch.chosen[e] = Int32(e) }
            return visible
        }
        let headScale = 1 / Float(x.heads).squareRoot()
        for h in 0..<x.heads { scratch.headWeights[h] = projected[r * inputWidth + weightsAt + h] * headScale }
        let weights = scratch.headWeights
        query.withUnsafeBufferPointer { qp in
            keys.withUnsafeBufferPointer { kp in
                weights.withUnsafeBufferPointer { wp in
                    guard let q = qp.baseAddress, let k = kp.baseAddress, let w = wp.baseAddress else { return }
                    CPUModel.indexerTopK(query: q + r * x.heads * x.headDim, weights: w, keys: k, visible: visible, heads: x.heads,
                                         headDim: x.headDim, topK: x.topK, scratch: &scratch)
                }
            }
        }
        return x.topK
    }
}
