import Foundation
import ModelSpec
import TensorCore


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
    /// The sparse-attention indexer's rotary embedding: half-split on its first qk_rope_head_dim
    /// lanes (MLA itself rotates interleaved).
    let indexerRope: RotaryEmbedding?
    /// DeepSeek-V4's second rotary: the compressed layers', their compressors' and indexers'.
    let compressedRope: RotaryEmbedding?
    /// The sliding layers' rotary when it differs (MiMo-V2-Flash's `swa_rope_theta`).
    let slidingRope: RotaryEmbedding?
    /// Multiplies MLA's 1/√d softmax scale (YaRN's mscale² in DeepSeek's checkpoints; else 1).
    let latentSoftmaxScale: Float

    /// Experts chosen per MoE layer for every token of the last forward pass (sorted ids), when
    /// `recordRouting` is on. Used by the parity tests and the expert-load figures of `bench`.
    public var recordRouting = false
    public internal(set) var lastRouting: [Int: [[Int32]]] = [:]
    /// Keys the sparse-attention indexer kept for every query of the last forward pass, per layer
    /// with its own indexer (ascending positions; every visible key while fewer than top-k are
    /// visible), when `recordRouting` is on: the runtime's other discrete choice.
    public internal(set) var lastIndexerChoice: [Int: [[Int]]] = [:]
    /// Tokens routed to each expert, summed over every forward pass and MoE layer.
    public private(set) var expertLoad: [Int]

    /// Activation buffers, reused across forward passes.
    let workspace: Workspace

    public static let supportedModelTypes: Set<String> = ["deepseek_v3", "kimi_k2", "qwen3_moe", "qwen2_moe", "mixtral", "llama", "qwen3",
                                                          "qwen3_5_moe", "qwen3_5_moe_text", "minimax_m2", "deepseek_v32", "glm_moe_dsa",
                                                          "gpt_oss", "kimi_linear", "llama4", "llama4_text", "deepseek_v4", "qwen3_next",
                                                          "kimi_k3", "kimi_k25", "glm4_moe", "mimo_v2_flash"]

    /// `kernels` stores the matrices as panels for that kernel family (default: the widest this CPU
    /// runs, AVX-512 or AVX2 on x86-64); nil keeps them row-major, the path of other CPUs, which
    /// tests run here too.
    public init(spec: ModelSpec, source: WeightSource, format: CPUWeightFormat = .f32,
                kernels: PanelMatrix.Kernels? = PanelMatrix.Kernels.native) throws {
        guard CPUModel.supportedModelTypes.contains(spec.modelType) else {
            throw RuntimeError.unsupported("the CPU runtime does not run model_type \(spec.modelType) yet; it runs "
                + CPUModel.supportedModelTypes.sorted().joined(separator: ", "))
        }
        // A "shared" indexer layer reuses the last full layer's choice; the first has none before
        // it (transformers raises there at run time; the counts and the estimator do not care).
        if spec.sparseAttention != nil, spec.layers.first?.indexer == false {
            throw RuntimeError.unsupported("the first layer shares an indexer choice, but no earlier layer makes one (indexer_types)")
        }
        if let l = spec.linearAttention, l.convKernel < 2 {
            throw RuntimeError.unsupported("a short convolution of \(l.convKernel) tap (linear attention) is not run; the runtime needs 2 or more")
        }
        if let kernels, !kernels.isSupported {
            throw RuntimeError.unsupported("this CPU cannot run the \(PanelMatrix.describe(kernels)) panel kernels")
        }
        try CPUModel.checkMemory(bytes: Double(spec.weightBytes(format.weightFormat)), what: "the weights in \(format.rawValue)")
        self.spec = spec
        self.format = format
        weights = try ModelWeights.load(spec, from: source, format: format, kernels: kernels)
        // RoPE frequencies as transformers computes them, scaling included (YaRN's ramp and its
        // cos/sin factor, Llama 3's wavelength bands, linear): they change every position, not
        // only long contexts.
        let layout: RotaryEmbedding.Layout = {
            if case .latent = spec.attention { return .interleaved }
            if case .compressed = spec.attention { return .interleaved }
            return spec.rope.interleaved ? .interleaved : .halfSplit
        }()
        let (inverse, attentionFactor) = spec.rope.frequencies
        let frequencies = inverse.map { Float($0) }
        rope = try RotaryEmbedding(inverseFrequencies: frequencies, layout: layout, attentionScaling: Float(attentionFactor))
        slidingRope = try spec.slidingRope.map {
            let (inverse, factor) = $0.frequencies
            return try RotaryEmbedding(inverseFrequencies: inverse.map { Float($0) }, layout: layout, attentionScaling: Float(factor))
        }
        compressedRope = try {
            guard case let .compressed(a) = spec.attention, let r = a.compressRope else { return nil }
            let (inverse, factor) = r.frequencies
            return try RotaryEmbedding(inverseFrequencies: inverse.map { Float($0) }, layout: .interleaved, attentionScaling: Float(factor))
        }()
        // DeepSeek-V3.2's indexer rotates half-split, GLM-5's interleaved (same frequencies).
        indexerRope = try spec.sparseAttention.map {
            try RotaryEmbedding(inverseFrequencies: frequencies, layout: $0.interleavedRotary ? .interleaved : .halfSplit,
                                attentionScaling: Float(attentionFactor))
        }
        // DeepSeek's MLA (V3, V3.2, GLM-5) multiplies its softmax scale by YaRN's mscale².
        latentSoftmaxScale = { if case let .latent(a) = spec.attention, a.yarnScalesSoftmax { return Float(spec.rope.latentSoftmaxScale) }; return 1 }()
        expertLoad = Array(repeating: 0, count: spec.moe?.routedExperts ?? 0)
        workspace = Workspace(experts: spec.moe?.routedExperts ?? 0)
        prefillRows = max(64, weights.byteCount / 10 / Workspace.bytesPerRow(spec))
    }

    /// Starts the tokens-per-expert count afresh.
    public func resetExpertLoad() { expertLoad = Array(repeating: 0, count: expertLoad.count) }

    /// Wall-clock seconds spent in each part of the model since it was built (norms include the
    /// residual adds): `bench` sets them beside the estimator's split. Every part has its entry
    /// from the start, so adding to one never grows the dictionary. Two clock reads per part per layer.
    public private(set) var blockSeconds = Dictionary(uniqueKeysWithValues: Operator.Block.allCases.map { ($0, 0.0) })

    /// Runs `body`, adding its wall-clock time to `block`.
    @inline(__always)
    func timed<R>(_ block: Operator.Block, _ body: () throws -> R) rethrows -> R {
        let clock = ContinuousClock(), started = clock.now
        defer {
            let elapsed = clock.now - started
            blockSeconds[block, default: 0] += Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        }
        return try body()
    }

    /// A cache for one sequence with room for `tokens` tokens before it grows.
    public func newCache(reserve tokens: Int = 256) -> SequenceCache {
        let (k, v): (Int, Int) = {
            switch spec.attention {
            case let .grouped(a): (a.kvHeads * a.headDim, a.kvHeads * a.headDim)
            case let .latent(a): (a.kvLoraRank, a.qkRopeHeadDim)
            // DeepSeek-V4: one shared key = value head, kept once.
            case let .compressed(a): (a.headDim, 0)
            }
        }()
        return SequenceCache(layers: spec.layerCount, reserve: tokens, keyWidth: k, valueWidth: v)
    }

    public var weightBytes: Int { weights.byteCount }

    /// Runs `tokens[s]` of each sequence s, appending to `caches[s]`. Returns the logits of every
    /// new token (rows in sequence order) when `allLogits`, else of each sequence's last token.
    public func forward(_ tokens: [[Int]], caches: inout [SequenceCache], allLogits: Bool = false) throws -> Tensor {
        var logits = try Tensor(zeros: [0, 0])
        try forward(tokens, caches: &caches, allLogits: allLogits, into: &logits)
        return logits
    }

    /// One decode token for each sequence; the logits go into `logits` (reused when its shape fits).
    /// Allocates nothing once the workspace has grown to the batch.
    public func decode(_ tokens: [Int], caches: inout [SequenceCache], into logits: inout Tensor) throws {
        try checkVocabulary(tokens)
        workspace.segments.removeAll(keepingCapacity: true)
        for s in 0..<tokens.count { workspace.segments.append((s, 1)) }
        try run(rows: tokens.count, token: { tokens[$0] }, caches: &caches, allLogits: false, into: &logits)
    }

    /// Long prompts are prefilled in rounds of at most this many rows in total (each sequence's
    /// next `prefillRows / sequences` tokens per round, attending to its cache of the rounds
    /// before), so that the activation buffers stay the size of one round: at most a tenth of the
    /// weights (`Workspace.bytesPerRow`), as a server caps the tokens it batches. Kimi K2 ÷8
    /// prefills 512 tokens in one piece, DeepSeek-V3 ÷8 in bf16 (196 MB) in rounds of ~200, which
    /// keeps its peak memory within 1.3 × the weights. Smaller rounds cost the larger models
    /// prefill speed (fewer rows per expert per round; a twentieth of the weights: −10%). A pass
    /// that wants every row's logits (`allLogits`, the parity tests) runs in one piece.
    public let prefillRows: Int

    /// `forward` into an existing logits tensor.
    public func forward(_ tokens: [[Int]], caches: inout [SequenceCache], allLogits: Bool, into logits: inout Tensor) throws {
        guard tokens.allSatisfy({ !$0.isEmpty }) else { throw RuntimeError.unsupported("every sequence needs at least one token") }
        // Every token checked before the first round touches a cache.
        for row in tokens { try checkVocabulary(row) }
        let share = max(1, prefillRows / max(tokens.count, 1))
        let total = tokens.reduce(0) { $0 + $1.count }, longest = tokens.map(\.count).max() ?? 0
        guard !allLogits, total > prefillRows, longest > share else {
            try forwardWhole(tokens, caches: &caches, allLogits: allLogits, into: &logits)
            return
        }
        if logits.shape != [tokens.count, spec.vocabSize] { logits = try Tensor(zeros: [tokens.count, spec.vocabSize]) }
        var roundLogits = try Tensor(zeros: [tokens.count, spec.vocabSize])
        var offset = 0
        while offset < longest {
            let pieces = tokens.map { Array($0[min(offset, $0.count)..<min(offset + share, $0.count)]) }
            try forwardWhole(pieces, caches: &caches, allLogits: false, into: &roundLogits)
            // Sequences whose last token was in this round take their logits from it.
            let vocab = spec.vocabSize
            roundLogits.withUnsafeBufferPointer { source in
                logits.withUnsafeMutableBufferPointer { target in
                    guard let from = source.baseAddress, let to = target.baseAddress else { return }
                    for s in tokens.indices where !pieces[s].isEmpty && offset + share >= tokens[s].count {
                        (to + s * vocab).update(from: from + s * vocab, count: vocab)
                    }
                }
            }
            offset += share
        }
    }

    /// Throws for a token id outside the vocabulary.
    func checkVocabulary(_ tokens: [Int]) throws {
        if let bad = tokens.first(where: { $0 < 0 || $0 >= spec.vocabSize }) {
            throw RuntimeError.tokenOutOfRange(token: bad, vocabulary: spec.vocabSize)
        }
    }

    /// One forward pass over all the tokens given, already checked against the vocabulary (a
    /// sequence may have none: its cache and logits row are left alone).
    func forwardWhole(_ tokens: [[Int]], caches: inout [SequenceCache], allLogits: Bool, into logits: inout Tensor) throws {
        workspace.segments.removeAll(keepingCapacity: true)
        var start = 0
        for row in tokens { workspace.segments.append((start, row.count)); start += row.count }
        var flat: [Int] = []
        flat.reserveCapacity(start)
        for row in tokens { flat += row }
        try run(rows: start, token: { flat[$0] }, caches: &caches, allLogits: allLogits, into: &logits)
    }

    /// The layers over `rows` rows whose token ids (checked by the caller) `token` gives.
    func run(rows: Int, token: (Int) -> Int, caches: inout [SequenceCache], allLogits: Bool, into logits: inout Tensor) throws {
        let segments = workspace.segments
        guard segments.count == caches.count else {
            throw RuntimeError.unsupported("forward needs one cache per sequence (\(segments.count) sequences, \(caches.count) caches)")
        }
        if spec.hyperConnections != nil {
            try runHyperConnected(rows: rows, token: token, caches: &caches, allLogits: allLogits, into: &logits)
            return
        }
        if let block = spec.attentionResidualBlock {
            try runAttentionResiduals(block: block, rows: rows, token: token, caches: &caches, allLogits: allLogits, into: &logits)
            return
        }
        let h = spec.hiddenSize
        try beginPass(rows: rows, allLogits: allLogits, logits: &logits)
        guard rows > 0 else { return }
        let ws = workspace
        let x = ws.get(.x, rows * h), normed = ws.get(.normed, rows * h), delta = ws.get(.delta, rows * h)
        embed(rows: rows, token: token, into: x)
        for (index, layer) in weights.layers.enumerated() {
            timed(.norm) { rmsNormRows(x, layer.inputNorm, into: normed, rows: rows) }
            try timed(.attention) {
                try attention(layer.attention, layer: index, input: normed, rows: rows, segments: segments, caches: &caches, into: delta)
            }
            timed(.norm) {
                Elementwise.add(x, delta, into: x, count: rows * h)
                rmsNormRows(x, layer.postNorm, into: normed, rows: rows)
            }
            try timed(layer.feedForward.isMoE ? .moe : .mlp) {
                try feedForward(layer.feedForward, layer: index, input: normed, rows: rows, into: delta)
            }
            timed(.norm) { Elementwise.add(x, delta, into: x, count: rows * h) }
        }
        for s in segments.indices { caches[s].advance(by: segments[s].count) }
        head(x, rows: rows, allLogits: allLogits, into: &logits)
    }

    /// Sizes the logits (every row's, or each sequence's last) and clears the last pass's records.
    func beginPass(rows: Int, allLogits: Bool, logits: inout Tensor) throws {
        let picked = allLogits ? rows : workspace.segments.count
        if logits.shape != [picked, spec.vocabSize] { logits = try Tensor(zeros: [picked, spec.vocabSize]) }
        if recordRouting { lastRouting = [:]; lastIndexerChoice = [:] }
        lastTouchedExperts = 0
    }

    /// Each row's token embedding into `x` (rows × hidden).
    func embed(rows: Int, token: (Int) -> Int, into x: UnsafeMutablePointer<Float>) {
        let h = spec.hiddenSize
        timed(.embedding) {
            weights.embedding.withUnsafeBufferPointer { e in
                guard let table = e.baseAddress else { return }
                for r in 0..<rows { (x + r * h).update(from: table + token(r) * h, count: h) }
            }
        }
    }

    /// The final norm and the output head on the rows of `x` whose logits are wanted: every row
    /// (`allLogits`) or each sequence's last.
    func head(_ x: UnsafePointer<Float>, rows: Int, allLogits: Bool, into logits: inout Tensor) {
        let h = spec.hiddenSize, segments = workspace.segments, picked = allLogits ? rows : segments.count
        let last = workspace.get(.lastRows, picked * h), lastNormed = workspace.get(.lastNormed, picked * h)
        for i in 0..<picked {
            // A sequence with no tokens in this pass has no last row: its logits row is unused.
            let r = allLogits ? i : segments[i].start + max(segments[i].count, 1) - 1
            (last + i * h).update(from: x + min(r, rows - 1) * h, count: h)
        }
        timed(.norm) { rmsNormRows(last, weights.finalNorm, into: lastNormed, rows: picked) }
        timed(.head) {
            logits.withUnsafeMutableBufferPointer { out in
                if let base = out.baseAddress { weights.head.apply(lastNormed, batch: picked, into: base) }
            }
        }
    }

    /// The sparse-attention masks of the last layer with its own indexer, one per sequence of the
    /// pass: GLM-5's "shared" layers reuse them.
    var sharedIndexMasks: [[Float]] = []
    /// Whether any layer reuses an earlier layer's masks (GLM-5): DeepSeek-V3.2 indexes every
    /// layer, so it keeps no copies.
    var reusesIndexMasks: Bool { spec.sparseAttention != nil && spec.layers.contains { !$0.indexer } }

    /// Distinct experts the last forward pass touched, summed over MoE layers.
    public internal(set) var lastTouchedExperts = 0

    // MARK: - Layers

    func attention(_ w: AttentionWeights, layer: Int, input: UnsafeMutablePointer<Float>, rows: Int,
                   segments: [(start: Int, count: Int)], caches: inout [SequenceCache], into out: UnsafeMutablePointer<Float>) throws {
        // The layer's own attention (MiMo-V2-Flash's sliding layers have their own KV heads and sinks).
        switch (w, spec.attention(for: spec.layers[layer])) {
        case let (.kimiDelta(k), _):
            guard let l = spec.linearAttention else { throw RuntimeError.unsupported("linear-attention weights without a spec") }
            kimiDeltaAttention(k, l, layer: layer, input: input, rows: rows, segments: segments, caches: &caches, into: out)
        case let (.gatedDeltaNet(g), _):
            guard let l = spec.linearAttention else { throw RuntimeError.unsupported("linear-attention weights without a spec") }
            gatedDeltaNet(g, l, layer: layer, input: input, rows: rows, segments: segments, caches: &caches, into: out)
        case let (.grouped(g), .grouped(a)):
            groupedAttention(g, a, layer: layer, input: input, rows: rows, segments: segments, caches: &caches, into: out)
        case let (.latent(m), .latent(a)):
            latentAttention(m, a, layer: layer, input: input, rows: rows, segments: segments, caches: &caches, into: out)
        case let (.compressed(c), .compressed(a)):
            try compressedAttention(c, a, layer: layer, input: input, rows: rows, segments: segments, caches: &caches, into: out)
        default:
            throw RuntimeError.unsupported("attention weights do not match the spec")
        }
    }

    /// RoPE of one position on query heads and key heads, with one cos/sin table (in the
    /// workspace) computed for both.
    func rotate(query: UnsafeMutablePointer<Float>, heads: Int, keys: UnsafeMutablePointer<Float>, keyHeads: Int,
                stride: Int, keyStride: Int, position: Int, using rotary: RotaryEmbedding? = nil) {
        let rope = rotary ?? rope
        let half = rope.rotaryDimension / 2
        let table = workspace.get(.rope, 2 * half)
        rope.angles(position: position, cos: table, sin: table + half)
        rope.apply(to: query, heads: heads, headStride: stride, cos: table, sin: table + half)
        rope.apply(to: keys, heads: keyHeads, headStride: keyStride, cos: table, sin: table + half)
    }

    func groupedAttention(_ w: GQAWeights, _ a: GroupedQueryAttention, layer: Int, input: UnsafeMutablePointer<Float>, rows: Int,
                          segments: [(start: Int, count: Int)], caches: inout [SequenceCache], into out: UnsafeMutablePointer<Float>) {
        // Values may be narrower than keys (MiMo-V2-Flash: 128 against 192).
        let hd = a.headDim, vd = a.vDim, q = a.heads * hd, kv = a.kvHeads * hd, vkv = a.kvHeads * vd, width = q + kv + vkv
        let contextWidth = a.heads * vd
        // MiMo-V2-Flash's sliding layers rotate at their own θ.
        var layerRope: RotaryEmbedding? = nil
        if case .slidingWindow = spec.layers[layer].span { layerRope = slidingRope }
        let ws = workspace
        let qkv = ws.get(.qkv, rows * width)
        var gates: UnsafeMutablePointer<Float>? = nil
        if w.outputGate {
            // q_proj interleaves each head's query and gate: split them into the usual
            // [queries | keys | values] rows and a [rows × q] gate block.
            let rawWidth = 2 * q + kv + vkv
            let raw = ws.get(.linearMixed, rows * rawWidth), g = ws.get(.gates, rows * q)
            w.qkv.apply(input, batch: rows, into: raw)
            for r in 0..<rows {
                let from = raw + r * rawWidth, to = qkv + r * width
                for hh in 0..<a.heads {
                    (to + hh * hd).update(from: from + hh * 2 * hd, count: hd)
                    (g + r * q + hh * hd).update(from: from + hh * 2 * hd + hd, count: hd)
                }
                (to + q).update(from: from + 2 * q, count: kv + vkv)
            }
            gates = g
        } else {
            w.qkv.apply(input, batch: rows, into: qkv)
        }
        if let bias = w.qkvBias {
            bias.withUnsafeBufferPointer { b in
                guard let bp = b.baseAddress else { return }
                for r in 0..<rows { Elementwise.add(qkv + r * width, bp, into: qkv + r * width, count: width) }
            }
        }
        let epsilon = Float(spec.rmsNormEpsilon)
        for (s, seg) in segments.enumerated() {
            for i in 0..<seg.count {
                let row = qkv + (seg.start + i) * width
                if let qn = w.qNorm, let kn = w.kNorm, a.qkNormOverAllHeads {
                    // MiniMax-M2: one RMSNorm over all query lanes, one over all key lanes.
                    qn.withUnsafeBufferPointer { wq in
                        guard let weight = wq.baseAddress else { return }
                        Reduction.rmsNorm(row, weight: weight, epsilon: epsilon, into: row, count: q)
                    }
                    kn.withUnsafeBufferPointer { wk in
                        guard let weight = wk.baseAddress else { return }
                        Reduction.rmsNorm(row + q, weight: weight, epsilon: epsilon, into: row + q, count: kv)
                    }
                } else if let qn = w.qNorm, let kn = w.kNorm {
                    qn.withUnsafeBufferPointer { wq in
                        guard let weight = wq.baseAddress else { return }
                        for hh in 0..<a.heads { Reduction.rmsNorm(row + hh * hd, weight: weight, epsilon: epsilon, into: row + hh * hd, count: hd) }
                    }
                    kn.withUnsafeBufferPointer { wk in
                        guard let weight = wk.baseAddress else { return }
                        for hh in 0..<a.kvHeads { Reduction.rmsNorm(row + q + hh * hd, weight: weight, epsilon: epsilon, into: row + q + hh * hd, count: hd) }
                    }
                }
                let position = caches[s].length + i
                if let scale = a.valueScale { Elementwise.scale(row + q + kv, by: Float(scale), into: row + q + kv, count: vkv) }
                if spec.layers[layer].usesRoPE {
                    rotate(query: row, heads: a.heads, keys: row + q, keyHeads: a.kvHeads, stride: hd, keyStride: hd,
                           position: position, using: layerRope)
                    // Llama 4 Scout: a weightless RMS norm of each q and k head after the rotary.
                    if a.qkL2Norm {
                        for hh in 0..<(a.heads + a.kvHeads) {
                            Reduction.rmsNorm(row + hh * hd, epsilon: epsilon, into: row + hh * hd, count: hd)
                        }
                    }
                } else if let t = a.temperature {
                    // Llama 4's NoPE layers: queries scaled up with the position (keys untouched).
                    Elementwise.scale(row, by: Float(t.factor(position: position)), into: row, count: q)
                }
                caches[s].append(layer: layer, keys: UnsafeBufferPointer(start: row + q, count: kv),
                                 values: UnsafeBufferPointer(start: row + q + kv, count: vkv))
            }
        }
        let context = ws.get(.context, rows * contextWidth)
        let span = spec.layers[layer].span
        let scale = 1 / Float(hd).squareRoot()
        let group = a.heads / a.kvHeads
        for (s, seg) in segments.enumerated() {
            let past = caches[s].length, total = past + seg.count
            caches[s].keys[layer].withUnsafeBufferPointer { keys in
                caches[s].values[layer].withUnsafeBufferPointer { values in
                    guard let kp = keys.baseAddress, let vp = values.baseAddress else { return }
                    if seg.count <= SmallBatch.limit {
                        // Decode: a few queries against the cache with TensorCore's dot and axpy, the
                        // (token, head) pairs split over the threads once the context is long enough.
                        let pairs = seg.count * a.heads
                        let chunks = pairs * total * hd >= CPUModel.decodeParallelWork ? min(Threading.count, pairs) : 1
                        let sinkValues = ws.get(.sinks, a.heads)
                        if let sinks = w.sinks { sinkValues.update(from: sinks, count: a.heads) }
                        Parallel.run(chunks: chunks, DecodeHeads(
                            qkv: qkv, width: width, keys: kp, values: vp, stride: kv, valueStride: vkv, headDim: hd, valueDim: vd,
                            heads: a.heads, group: group, start: seg.start, past: past, span: span, scale: scale,
                            scores: ws.get(.scores, chunks * total), scoresStride: total, context: context, contextWidth: contextWidth,
                            pairs: pairs, chunks: chunks, sinks: w.sinks == nil ? nil : UnsafePointer(sinkValues)))
                        return
                    }
                    // Heads split over the threads, each with its own scores block; the GEMMs and
                    // the softmax inside run on the thread that owns the head.
                    let threads = min(Threading.count, a.heads), block = min(seg.count, CPUModel.queryBlock) * total
                    let allScores = ws.get(.scores, threads * block)
                    Parallel.forEach(chunks: threads) { chunk in
                        let scores = allScores + chunk * block
                        for hh in (a.heads * chunk / threads)..<(a.heads * (chunk + 1) / threads) {
                            let kvh = hh / group
                            for (b0, m, visible) in CPUModel.causalBlocks(queries: seg.count, past: past) {
                                BLAS.gemm(m: m, n: visible, k: hd, a: qkv + (seg.start + b0) * width + hh * hd, lda: width,
                                          transposeA: false, b: kp + kvh * hd, ldb: kv, transposeB: true,
                                          c: scores, ldc: visible, alpha: scale)
                                maskAndSoftmax(scores, queries: m, keys: visible, past: past + b0, span: span, sink: w.sinks?[hh])
                                BLAS.gemm(m: m, n: vd, k: visible, a: scores, lda: visible, transposeA: false,
                                          b: vp + kvh * vd, ldb: vkv, transposeB: false,
                                          c: context + (seg.start + b0) * contextWidth + hh * vd, ldc: contextWidth)
                            }
                        }
                    }
                }
            }
        }
        if let gates {
            // Qwen3.5's gated attention: the output times sigmoid(gate) before o_proj.
            Elementwise.sigmoid(gates, into: gates, count: rows * contextWidth)
            for i in 0..<(rows * contextWidth) { context[i] *= gates[i] }
        }
        w.output.apply(context, batch: rows, into: out)
        if let bias = w.outputBias {
            let h = spec.hiddenSize
            bias.withUnsafeBufferPointer { b in
                guard let bp = b.baseAddress else { return }
                for r in 0..<rows { Elementwise.add(out + r * h, bp, into: out + r * h, count: h) }
            }
        }
    }

    /// Gated DeltaNet (Qwen3.5). The stacked projections run as one GEMM; then per sequence, token
    /// by token, the causal depthwise convolution over q, k, v (its last kernel − 1 inputs kept in
    /// the cache) with SiLU, L2-normalised q and k (q scaled by 1/√dk), β = sigmoid(b) and the log
    /// decay g = −exp(A_log) · softplus(a + dt_bias). The delta rule on each value head's [dk × dv]
    /// state S (decay by exp(g), read kv = Sᵀk, write S += k ⊗ β(v − kv), read out Sᵀq) runs token
    /// by token in decode, updating S in place, and in chunks of 64 tokens in prefill with
    /// products the size of a chunk (`chunkedDeltaRule`). Then the gated RMSNorm
    /// (norm(o) · w · silu(z)) and out_proj. Each key head serves value_heads / key_heads
    /// consecutive value heads.
    func gatedDeltaNet(_ w: GDNWeights, _ l: LinearAttention, layer: Int, input: UnsafeMutablePointer<Float>, rows: Int,
                       segments: [(start: Int, count: Int)], caches: inout [SequenceCache], into out: UnsafeMutablePointer<Float>) {
        let nk = l.keyHeads, nv = l.valueHeads, dk = l.keyHeadDim, dv = l.valueHeadDim, kernel = l.convKernel
        let key = nk * dk, value = nv * dv, channels = 2 * key + value, width = channels + value + 2 * nv
        let ws = workspace
        let mixed = ws.get(.qkv, rows * width)
        w.inProj.apply(input, batch: rows, into: mixed)
        // Per row: q, k, v after the convolution (channels), then β and g per value head.
        let prepared = ws.get(.linearMixed, rows * (channels + 2 * nv))
        let core = ws.get(.linearCore, rows * value)
        let scratch = ws.get(.linearScratch, dv)
        let ratio = nv / max(nk, 1)
        let scale = 1 / Float(dk).squareRoot()
        for (s, seg) in segments.enumerated() {
            caches[s].beginLinear(layer: layer, convFloats: channels * (kernel - 1), stateFloats: nv * dk * dv)
            caches[s].conv[layer].withUnsafeMutableBufferPointer { history in
                w.conv.withUnsafeBufferPointer { weights in
                    guard let h = history.baseAddress, let wc = weights.baseAddress else { return }
                    for i in 0..<seg.count {
                        let row = mixed + (seg.start + i) * width, p = prepared + (seg.start + i) * (channels + 2 * nv)
                        CPUModel.convolveAndNormalize(row, history: h, weights: wc, channels: channels, kernel: kernel,
                                                      heads: nk, headDim: dk, queryScale: scale, into: p)
                        let b = row + channels + value, a = row + channels + value + nv
                        for hv in 0..<nv {
                            let x = a[hv] + w.dtBias[hv]
                            p[channels + hv] = 1 / (1 + exp(-b[hv]))
                            p[channels + nv + hv] = -exp(w.aLog[hv]) * (x > 20 ? x : log1p(exp(x)))
                        }
                    }
                }
            }
            let stride = channels + 2 * nv
            caches[s].state[layer].withUnsafeMutableBufferPointer { stateBuffer in
                guard let state = stateBuffer.baseAddress else { return }
                if seg.count == 1 {
                    let p = prepared + seg.start * stride
                    for hv in 0..<nv {
                        let hk = hv / ratio
                        let q = p + hk * dk, k = p + key + hk * dk, v = p + 2 * key + hv * dv
                        let beta = p[channels + hv], decay = exp(p[channels + nv + hv])
                        let S = state + hv * dk * dv
                        for i in 0..<(dk * dv) { S[i] *= decay }
                        for j in 0..<dv { scratch[j] = 0 }
                        for d in 0..<dk { for j in 0..<dv { scratch[j] += S[d * dv + j] * k[d] } }
                        for j in 0..<dv { scratch[j] = (v[j] - scratch[j]) * beta }
                        for d in 0..<dk { for j in 0..<dv { S[d * dv + j] += k[d] * scratch[j] } }
                        let o = core + seg.start * value + hv * dv
                        for j in 0..<dv { o[j] = 0 }
                        for d in 0..<dk { for j in 0..<dv { o[j] += S[d * dv + j] * q[d] } }
                    }
                } else {
                    Parallel.forEach(chunks: min(Threading.count, nv)) { chunk in
                        for hv in (nv * chunk / min(Threading.count, nv))..<(nv * (chunk + 1) / min(Threading.count, nv)) {
                            CPUModel.chunkedDeltaRule(prepared: prepared + seg.start * stride, stride: stride, tokens: seg.count,
                                                      query: (hv / ratio) * dk, key: key + (hv / ratio) * dk,
                                                      value: 2 * key + hv * dv, beta: channels + hv, decay: channels + nv + hv,
                                                      dk: dk, dv: dv, state: state + hv * dk * dv,
                                                      out: core + seg.start * value + hv * dv, outStride: value)
                        }
                    }
                }
            }
        }
        // Gated RMSNorm over each value head: norm(o) · w · silu(z).
        let epsilon = Float(spec.rmsNormEpsilon)
        for r in 0..<rows {
            let z = mixed + r * width + channels
            for hv in 0..<nv {
                let o = core + r * value + hv * dv, zh = z + hv * dv
                let inv = Reduction.inverseRMS(o, count: dv, epsilon: epsilon)
                for j in 0..<dv { o[j] = o[j] * inv * w.norm[j] * (zh[j] / (1 + exp(-zh[j]))) }
            }
        }
        w.output.apply(core, batch: rows, into: out)
    }

    /// Kimi Delta Attention (Kimi Linear): the gated delta rule of Gated DeltaNet with a decay per
    /// key channel, g = −exp(A_log) · softplus(f_b(f_a(x)) + dt_bias) for each of a head's dk
    /// channels (Kimi K3's bounded form: g = bound · σ(exp(A_log) · (f_b(f_a(x)) + dt_bias))), so
    /// the state's row d decays by exp(g_d); the short convolutions over q, k and v with SiLU;
    /// L2-normalised q and k; β = sigmoid(b). A prompt runs the chunked form (`chunkedDeltaRule`
    /// with per-channel decay), a decode step updates the state in place. The output goes through
    /// an RMSNorm gated by sigmoid(g_b(g_a(x))) (Kimi K3: sigmoid(g_proj(x))), then o_proj.
    func kimiDeltaAttention(_ w: KDAWeights, _ l: LinearAttention, layer: Int, input: UnsafeMutablePointer<Float>, rows: Int,
                            segments: [(start: Int, count: Int)], caches: inout [SequenceCache], into out: UnsafeMutablePointer<Float>) {
        let nh = l.valueHeads, d = l.keyHeadDim, P = nh * d, kernel = l.convKernel, channels = 3 * P
        let gateWidth = w.gateUp == nil ? P : d, width = channels + nh + d + gateWidth
        let ws = workspace
        let mixed = ws.get(.qkv, rows * width)
        w.inProj.apply(input, batch: rows, into: mixed)
        // The forget gate's up-projection from its low-rank half; the output gate's likewise, or
        // as projected (full rank).
        let forget = ws.get(.forgetGate, rows * P), gate = ws.get(.outputGate, rows * P)
        let lowForget = ws.get(.forgetLowRank, rows * d)
        for r in 0..<rows { (lowForget + r * d).update(from: mixed + r * width + channels + nh, count: d) }
        w.forgetUp.apply(lowForget, batch: rows, into: forget)
        if let up = w.gateUp {
            let lowGate = ws.get(.outputGateLowRank, rows * d)
            for r in 0..<rows { (lowGate + r * d).update(from: mixed + r * width + channels + nh + d, count: d) }
            up.apply(lowGate, batch: rows, into: gate)
        } else {
            for r in 0..<rows { (gate + r * P).update(from: mixed + r * width + channels + nh + d, count: P) }
        }
        let bound = l.forgetGateLowerBound.map(Float.init)
        // Per row: q, k, v after the convolution (channels), β per head, log decay per channel.
        let stride = channels + nh + P
        let prepared = ws.get(.linearMixed, rows * stride)
        let core = ws.get(.linearCore, rows * P), scratch = ws.get(.linearScratch, d)
        let scale = 1 / Float(d).squareRoot()
        for (s, seg) in segments.enumerated() {
            caches[s].beginLinear(layer: layer, convFloats: channels * (kernel - 1), stateFloats: nh * d * d)
            caches[s].conv[layer].withUnsafeMutableBufferPointer { history in
                w.conv.withUnsafeBufferPointer { weights in w.dtBias.withUnsafeBufferPointer { dt in
                    guard let h = history.baseAddress, let wc = weights.baseAddress, let dtBias = dt.baseAddress else { return }
                    for i in 0..<seg.count {
                        let r = seg.start + i, row = mixed + r * width, p = prepared + r * stride
                        CPUModel.convolveAndNormalize(row, history: h, weights: wc, channels: channels, kernel: kernel,
                                                      heads: nh, headDim: d, queryScale: scale, into: p)
                        Elementwise.sigmoid(row + channels, into: p + channels, count: nh)
                        let decay = p + channels + nh
                        for hh in 0..<nh {
                            let rate = exp(w.aLog[hh]), f = forget + r * P + hh * d, bias = dtBias + hh * d
                            if bound != nil {
                                for x in 0..<d { decay[hh * d + x] = rate * (f[x] + bias[x]) }
                            } else {
                                for x in 0..<d {
                                    let g = f[x] + bias[x]
                                    decay[hh * d + x] = -rate * (g > 20 ? g : log1p(exp(g)))
                                }
                            }
                        }
                        // Kimi K3's bounded gate: bound · σ(rate · (f + dt_bias)), on eight lanes.
                        if let bound {
                            Elementwise.sigmoid(decay, into: decay, count: P)
                            Elementwise.scale(decay, by: bound, into: decay, count: P)
                        }
                    }
                } }
            }
            caches[s].state[layer].withUnsafeMutableBufferPointer { stateBuffer in
                guard let state = stateBuffer.baseAddress else { return }
                if seg.count == 1 {
                    let p = prepared + seg.start * stride
                    for hh in 0..<nh {
                        let q = p + hh * d, k = p + P + hh * d, v = p + 2 * P + hh * d
                        let beta = p[channels + hh], S = state + hh * d * d
                        for x in 0..<d {
                            let decay = exp(p[channels + nh + hh * d + x])
                            for j in 0..<d { S[x * d + j] *= decay }
                        }
                        for j in 0..<d { scratch[j] = 0 }
                        for x in 0..<d { for j in 0..<d { scratch[j] += S[x * d + j] * k[x] } }
                        for j in 0..<d { scratch[j] = (v[j] - scratch[j]) * beta }
                        for x in 0..<d { for j in 0..<d { S[x * d + j] += k[x] * scratch[j] } }
                        let o = core + seg.start * P + hh * d
                        for j in 0..<d { o[j] = 0 }
                        for x in 0..<d { for j in 0..<d { o[j] += S[x * d + j] * q[x] } }
                    }
                } else {
                    let threads = min(Threading.count, nh)
                    Parallel.forEach(chunks: threads) { chunk in
                        for hh in (nh * chunk / threads)..<(nh * (chunk + 1) / threads) {
                            CPUModel.chunkedDeltaRule(prepared: prepared + seg.start * stride, stride: stride, tokens: seg.count,
                                                      query: hh * d, key: P + hh * d, value: 2 * P + hh * d, beta: channels + hh,
                                                      decay: channels + nh + hh * d, decayPerChannel: true, dk: d, dv: d,
                                                      state: state + hh * d * d, out: core + seg.start * P + hh * d, outStride: P)
                        }
                    }
                }
            }
        }
        // RMSNorm of each head's output gated by sigmoid(gate).
        let epsilon = Float(spec.rmsNormEpsilon)
        for r in 0..<rows {
            for hh in 0..<nh {
                let o = core + r * P + hh * d, gh = gate + r * P + hh * d
                let inv = Reduction.inverseRMS(o, count: d, epsilon: epsilon)
                for j in 0..<d { o[j] = o[j] * inv * w.norm[j] / (1 + exp(-gh[j])) }
            }
        }
        w.output.apply(core, batch: rows, into: out)
    }

    /// One token of a linear-attention layer's short causal convolution over its q, k, v channels
    /// (depthwise, `kernel` taps, the last `kernel − 1` inputs in `history`, which moves on by
    /// this row), then SiLU into `out`; then the q and k heads (the first 2 · heads of headDim)
    /// L2-normalised, the queries also scaled by `queryScale` (1/√headDim), as Gated DeltaNet and
    /// Kimi Delta Attention both do. Needs kernel ≥ 2 (checked at load).
    static func convolveAndNormalize(_ row: UnsafePointer<Float>, history h: UnsafeMutablePointer<Float>, weights wc: UnsafePointer<Float>,
                                     channels: Int, kernel: Int, heads: Int, headDim: Int, queryScale: Float,
                                     into p: UnsafeMutablePointer<Float>) {
        for c in 0..<channels {
            var sum = wc[c * kernel + kernel - 1] * row[c]
            for j in 0..<(kernel - 1) { sum += wc[c * kernel + j] * h[j * channels + c] }
            p[c] = sum
        }
        Elementwise.silu(p, into: p, count: channels)
        // The history moves on by one input (a forward copy within one buffer).
        for j in 0..<((kernel - 2) * channels) { h[j] = h[j + channels] }
        (h + (kernel - 2) * channels).update(from: row, count: channels)
        for head in 0..<(2 * heads) {
            let x = p + head * headDim
            let inv = 1 / (Reduction.dot(x, x, count: headDim) + 1e-6).squareRoot() * (head < heads ? queryScale : 1)
            Elementwise.scale(x, by: inv, into: x, count: headDim)
        }
    }

    /// Chunk length of the chunked delta rule (FLA's and transformers' 64).
    static let deltaRuleChunk = 64
    /// Sub-chunk of Kimi Delta Attention's in-chunk products (FLA's 16): pairs inside one go one
    /// by one, pairs across two as GEMMs.
    static let deltaRuleSubChunk = 16

    /// The gated delta rule over `tokens` tokens of one value head, in chunks of C tokens (the
    /// WY/UT form of the DeltaNet papers, as transformers' torch_chunk_gated_delta_rule and FLA's
    /// naive chunk KDA compute it): within a chunk, with γ the cumulative log decay (one per head,
    /// or one per key channel with `decayPerChannel`, Kimi Delta Attention) and
    /// D_ij = exp(γᵢ − γⱼ) for j ≤ i (per channel: inside the key products), solve
    /// (I + strictly-lower(β·(K ⊙ D)Kᵀ)) [U W] = [β·V  β·K⊙exp(γ)] by forward substitution, then
    /// V' = U − W S, O = (Q⊙exp(γ)) S + ((Q ⊙ D)Kᵀ) V', and S ← exp(γ_last)⊙S +
    /// (K⊙exp(γ_last − γ))ᵀ V'. The products with S and V' are GEMMs of chunk × head size (with
    /// one decay per head, the key products too); only exp of γᵢ − γⱼ ≤ 0 is ever taken. The
    /// state is updated in place; the chunk scratch is allocated once per call (a prefill).
    static func chunkedDeltaRule(prepared p: UnsafeMutablePointer<Float>, stride: Int, tokens: Int, query: Int, key: Int, value: Int,
                                 beta: Int, decay: Int, decayPerChannel: Bool = false, dk: Int, dv: Int,
                                 state S: UnsafeMutablePointer<Float>, out: UnsafeMutablePointer<Float>, outStride: Int) {
        let C = deltaRuleChunk, gd = decayPerChannel ? dk : 1, sub = deltaRuleSubChunk
        let floats = 3 * C * dk + 3 * C * dv + 2 * C * C + 2 * C * gd + C + 2 * dk + 2 * sub * dk
        withUnsafeTemporaryAllocation(of: Float.self, capacity: floats) { buffer in
            guard let base = buffer.baseAddress else { return }
            let Q = base, K = Q + C * dk, W = K + C * dk, V = W + C * dk, U = V + C * dv, O = U + C * dv
            let A = O + C * dv, attn = A + C * C, gamma = attn + C * C, betas = gamma + C * gd, fade = betas + C
            let decayed = fade + dk  // K_j ⊙ e^(γ_i − γ_j) of one (i, j) pair
            let leftK = decayed + dk, leftQ = leftK + sub * dk  // a sub-chunk's K_i, Q_i ⊙ e^(γ_i − γ_r)
            let growth = leftQ + sub * dk  // e^γ of each token (and channel)
            // γ of token i, channel x (the head's one γ without per-channel decay).
            func g(_ i: Int, _ x: Int) -> Float { gamma[i * gd + (decayPerChannel ? x : 0)] }
            var t0 = 0
            while t0 < tokens {
                let c = min(C, tokens - t0)
                for i in 0..<c {
                    let row = p + (t0 + i) * stride
                    (Q + i * dk).update(from: row + query, count: dk)
                    (K + i * dk).update(from: row + key, count: dk)
                    (V + i * dv).update(from: row + value, count: dv)
                    for x in 0..<gd { gamma[i * gd + x] = (i > 0 ? gamma[(i - 1) * gd + x] : 0) + row[decay + x] }
                    betas[i] = row[beta]
                }
                if decayPerChannel {
                    // A_ij = β_i Σ_x K_ix K_jx e^(γ_ix − γ_jx) (j < i), attn_ij = Σ_x Q_ix K_jx e^(γ_ix − γ_jx) (j ≤ i).
                    // Pairs within a sub-chunk one by one; pairs across sub-chunks (FLA's
                    // factorisation) through the last token r before i's sub-chunk:
                    // e^(γ_i − γ_j) = e^(γ_i − γ_r) · e^(γ_r − γ_j), both factors ≤ 1 since γ
                    // only falls along the chunk, so each block is two GEMMs of scaled rows.
                    A.update(repeating: 0, count: c * c)
                    attn.update(repeating: 0, count: c * c)
                    var a0 = 0
                    while a0 < c {
                        let n = min(sub, c - a0)
                        for i in a0..<(a0 + n) {
                            for j in a0...i {
                                for x in 0..<dk { decayed[x] = gamma[i * dk + x] - gamma[j * dk + x] }
                                Elementwise.exp(decayed, into: decayed, count: dk)
                                for x in 0..<dk { decayed[x] *= K[j * dk + x] }
                                A[i * c + j] = j < i ? Reduction.dot(K + i * dk, decayed, count: dk) * betas[i] : 0
                                attn[i * c + j] = Reduction.dot(Q + i * dk, decayed, count: dk)
                            }
                        }
                        if a0 > 0 {
                            let r = a0 - 1, right = W  // W is free until the substitution below
                            for i in 0..<n {
                                for x in 0..<dk { decayed[x] = gamma[(a0 + i) * dk + x] - gamma[r * dk + x] }
                                Elementwise.exp(decayed, into: decayed, count: dk)
                                for x in 0..<dk {
                                    leftK[i * dk + x] = K[(a0 + i) * dk + x] * decayed[x]
                                    leftQ[i * dk + x] = Q[(a0 + i) * dk + x] * decayed[x]
                                }
                            }
                            for j in 0..<a0 {
                                for x in 0..<dk { decayed[x] = gamma[r * dk + x] - gamma[j * dk + x] }
                                Elementwise.exp(decayed, into: decayed, count: dk)
                                for x in 0..<dk { right[j * dk + x] = K[j * dk + x] * decayed[x] }
                            }
                            BLAS.gemm(m: n, n: a0, k: dk, a: leftK, lda: dk, transposeA: false, b: right, ldb: dk, transposeB: true,
                                      c: A + a0 * c, ldc: c)
                            BLAS.gemm(m: n, n: a0, k: dk, a: leftQ, lda: dk, transposeA: false, b: right, ldb: dk, transposeB: true,
                                      c: attn + a0 * c, ldc: c)
                            for i in 0..<n { Elementwise.scale(A + (a0 + i) * c, by: betas[a0 + i], into: A + (a0 + i) * c, count: a0) }
                        }
                        a0 += n
                    }
                } else {
                    // A = (β·K) Kᵀ and attn = Q Kᵀ, then both decayed and masked below the diagonal.
                    BLAS.gemm(m: c, n: c, k: dk, a: K, lda: dk, transposeA: false, b: K, ldb: dk, transposeB: true, c: A, ldc: c)
                    BLAS.gemm(m: c, n: c, k: dk, a: Q, lda: dk, transposeA: false, b: K, ldb: dk, transposeB: true, c: attn, ldc: c)
                    for i in 0..<c {
                        for j in 0..<c {
                            let d = j <= i ? exp(gamma[i] - gamma[j]) : 0
                            A[i * c + j] = j < i ? A[i * c + j] * d * betas[i] : 0
                            attn[i * c + j] *= d
                        }
                    }
                }
                // Right-hand sides: U = β·V, W = β·K⊙exp(γ); forward substitution row by row.
                Elementwise.exp(gamma, into: growth, count: c * gd)
                for i in 0..<c {
                    Elementwise.scale(V + i * dv, by: betas[i], into: U + i * dv, count: dv)
                    let w = W + i * dk, k = K + i * dk, e = growth + i * gd
                    if decayPerChannel {
                        for x in 0..<dk { w[x] = k[x] * e[x] * betas[i] }
                    } else {
                        Elementwise.scale(k, by: e[0] * betas[i], into: w, count: dk)
                    }
                    for m in 0..<i {
                        let a = A[i * c + m]
                        guard a != 0 else { continue }
                        Elementwise.addScaled(U + m * dv, by: -a, into: U + i * dv, count: dv)
                        Elementwise.addScaled(W + m * dk, by: -a, into: w, count: dk)
                    }
                }
                // V' = U − W S (into U), O = (Q⊙exp(γ)) S + attn V'.
                BLAS.gemm(m: c, n: dv, k: dk, a: W, lda: dk, transposeA: false, b: S, ldb: dv, transposeB: false,
                          c: U, ldc: dv, alpha: -1, beta: 1)
                for i in 0..<c {
                    let q = Q + i * dk, e = growth + i * gd
                    if decayPerChannel {
                        for x in 0..<dk { q[x] *= e[x] }
                    } else {
                        Elementwise.scale(q, by: e[0], into: q, count: dk)
                    }
                }
                BLAS.gemm(m: c, n: dv, k: dk, a: Q, lda: dk, transposeA: false, b: S, ldb: dv, transposeB: false, c: O, ldc: dv)
                BLAS.gemm(m: c, n: dv, k: c, a: attn, lda: c, transposeA: false, b: U, ldb: dv, transposeB: false,
                          c: O, ldc: dv, beta: 1)
                for i in 0..<c { (out + (t0 + i) * outStride).update(from: O + i * dv, count: dv) }
                // S ← exp(γ_last)⊙S (row x by channel x) + (K⊙exp(γ_last − γ))ᵀ V'.
                for x in 0..<dk { fade[x] = growth[(c - 1) * gd + (decayPerChannel ? x : 0)] }
                for x in 0..<dk { Elementwise.scale(S + x * dv, by: fade[x], into: S + x * dv, count: dv) }
                for i in 0..<c {
                    if decayPerChannel {
                        for x in 0..<dk { decayed[x] = g(c - 1, x) - g(i, x) }
                        Elementwise.exp(decayed, into: decayed, count: dk)
                        for x in 0..<dk { K[i * dk + x] *= decayed[x] }
                    } else {
                        Elementwise.scale(K + i * dk, by: exp(gamma[c - 1] - gamma[i]), into: K + i * dk, count: dk)
                    }
                }
                BLAS.gemm(m: dk, n: dv, k: c, a: K, lda: dk, transposeA: true, b: U, ldb: dv, transposeB: false,
                          c: S, ldc: dv, beta: 1)
                t0 += c
            }
        }
    }

    func latentAttention(_ w: MLAWeights, _ a: MultiHeadLatentAttention, layer: Int, input: UnsafeMutablePointer<Float>, rows: Int,
                         segments: [(start: Int, count: Int)], caches: inout [SequenceCache], into out: UnsafeMutablePointer<Float>) {
        let qRank = a.qLoraRank ?? 0, kvRank = a.kvLoraRank, ropeDim = a.qkRopeHeadDim
        let qk = a.qkHeadDim, heads = a.heads, nope = a.qkNopeHeadDim, vDim = a.vHeadDim
        let ws = workspace
        let downWidth = w.down.rows
        let down = ws.get(.down, rows * downWidth)
        w.down.apply(input, batch: rows, into: down)
        // Kimi K3's output gate, σ(g_proj(x)) per head and value channel (its rows last in `down`).
        let gateWidth = heads * vDim, gates: UnsafeMutablePointer<Float>? = w.outputGate ? ws.get(.gates, rows * gateWidth) : nil
        if let gates {
            for r in 0..<rows { (gates + r * gateWidth).update(from: down + r * downWidth + downWidth - gateWidth, count: gateWidth) }
            Elementwise.sigmoid(gates, into: gates, count: rows * gateWidth)
        }
        // Queries: through the low-rank path (q_a, its norm, q_b) or directly.
        let q = ws.get(.q, rows * heads * qk)
        if let qNorm = w.qNorm {
            let qa = ws.get(.qA, rows * qRank), qaNormed = ws.get(.qANormed, rows * qRank)
            for r in 0..<rows { (qa + r * qRank).update(from: down + r * downWidth, count: qRank) }
            rmsNormRows(qa, qNorm, into: qaNormed, rows: rows)
            w.qUp.apply(qaNormed, batch: rows, into: q)
        } else {
            w.qUp.apply(input, batch: rows, into: q)
        }
        // The latent (normalised) and the shared rotary key of each new token go to the cache.
        let latent = ws.get(.latent, rows * kvRank), latentNormed = ws.get(.latentNormed, rows * kvRank)
        let rotary = ws.get(.rotary, rows * ropeDim)
        for r in 0..<rows {
            (latent + r * kvRank).update(from: down + r * downWidth + qRank, count: kvRank)
            (rotary + r * ropeDim).update(from: down + r * downWidth + qRank + kvRank, count: ropeDim)
        }
        rmsNormRows(latent, w.kvNorm, into: latentNormed, rows: rows)
        // The lightning indexer's queries (from the query latent), keys and head weights.
        var index: (q: UnsafeMutablePointer<Float>, k: UnsafeMutablePointer<Float>, w: UnsafeMutablePointer<Float>)? = nil
        if let ix = w.indexer, let x = spec.sparseAttention, w.qNorm != nil {
            let iq = ws.get(.indexQ, rows * x.heads * x.headDim), ik = ws.get(.indexK, rows * x.headDim), iw = ws.get(.indexW, rows * x.heads)
            ix.queries.apply(ws.get(.qANormed, rows * qRank), batch: rows, into: iq)
            ix.key.apply(input, batch: rows, into: ik)
            ix.weights.apply(input, batch: rows, into: iw)
            let headScale = 1 / Float(x.heads).squareRoot()
            for i in 0..<(rows * x.heads) { iw[i] *= headScale }
            for r in 0..<rows { CPUModel.layerNorm(ik + r * x.headDim, weight: ix.keyNormWeight, bias: ix.keyNormBias, count: x.headDim) }
            index = (iq, ik, iw)
        }
        for (s, seg) in segments.enumerated() {
            for i in 0..<seg.count {
                let r = seg.start + i, position = caches[s].length + i
                // Kimi Linear's MLA applies no rotary embedding (the rope lanes still exist).
                if spec.layers[layer].usesRoPE {
                    rotate(query: q + r * heads * qk + nope, heads: heads, keys: rotary + r * ropeDim, keyHeads: 1,
                           stride: qk, keyStride: ropeDim, position: position)
                }
                caches[s].append(layer: layer, keys: UnsafeBufferPointer(start: latentNormed + r * kvRank, count: kvRank),
                                 values: UnsafeBufferPointer(start: rotary + r * ropeDim, count: ropeDim))
                if let index, let x = spec.sparseAttention, let indexerRope {
                    indexerRope.apply(to: index.q + r * x.heads * x.headDim, heads: x.heads, headStride: x.headDim, position: position)
                    indexerRope.apply(to: index.k + r * x.headDim, heads: 1, headStride: x.headDim, position: position)
                    caches[s].indexKeys[layer].append(contentsOf: UnsafeBufferPointer(start: index.k + r * x.headDim, count: x.headDim))
                }
            }
        }
        let context = ws.get(.context, rows * heads * vDim)
        let scale = latentSoftmaxScale / Float(qk).squareRoot()
        let perHead = nope + vDim
        let reuses = reusesIndexMasks
        for (s, seg) in segments.enumerated() {
            let past = caches[s].length, total = past + seg.count
            // Sparse attention: an additive mask (0 on the indexer's top-k keys, −∞ elsewhere) per
            // query, applied by both paths (the absorbed decode skips the masked keys).
            var sparseMask: UnsafeMutablePointer<Float>? = nil
            if let index, let x = spec.sparseAttention {
                let mask = ws.get(.indexMask, seg.count * total)
                caches[s].indexKeys[layer].withUnsafeBufferPointer { keys in
                    guard let kp = keys.baseAddress else { return }
                    CPUModel.topKMask(queries: index.q + seg.start * x.heads * x.headDim, weights: index.w + seg.start * x.heads,
                                      keys: kp, count: seg.count, past: past, heads: x.heads, headDim: x.headDim, topK: x.topK,
                                      into: mask)
                }
                if reuses {
                    if s == 0 { sharedIndexMasks = [] }
                    sharedIndexMasks.append(Array(UnsafeBufferPointer(start: mask, count: seg.count * total)))
                }
                if recordRouting {
                    lastIndexerChoice[layer, default: []] += (0..<seg.count).map { i in
                        (0...(past + i)).filter { mask[i * total + $0] == 0 }
                    }
                }
                sparseMask = mask
            } else if spec.sparseAttention != nil, s < sharedIndexMasks.count, sharedIndexMasks[s].count == seg.count * total {
                // A layer without its own indexer takes the last one's choice.
                let mask = ws.get(.indexMask, seg.count * total)
                sharedIndexMasks[s].withUnsafeBufferPointer { if let b = $0.baseAddress { mask.update(from: b, count: seg.count * total) } }
                sparseMask = mask
            }
            if seg.count <= SmallBatch.limit {
                absorbedDecode(w, a, layer: layer, q: q, segment: seg, past: past, cache: caches[s], scale: scale,
                               mask: sparseMask.map { UnsafePointer($0) }, into: context)
                continue
            }
            // Heads split over the threads as in grouped attention. Each head expands the cached
            // latents through its own rows of kv_b (keys then values, nope + v wide) just before it
            // attends: one head's expansion per thread is live at a time, not every head's.
            let threads = min(Threading.count, heads), block = min(seg.count, CPUModel.queryBlock) * total
            let allScores = ws.get(.scores, threads * block), allExpanded = ws.get(.expanded, threads * total * perHead)
            caches[s].keys[layer].withUnsafeBufferPointer { lp in
                caches[s].values[layer].withUnsafeBufferPointer { rk in
                    w.kvUpRows.withUnsafeBufferPointer { kvb in
                        guard let latents = lp.baseAddress, let rkp = rk.baseAddress, let kvbp = kvb.baseAddress else { return }
                        Parallel.forEach(chunks: threads) { chunk in
                            let scores = allScores + chunk * block, expanded = allExpanded + chunk * total * perHead
                            for hh in (heads * chunk / threads)..<(heads * (chunk + 1) / threads) {
                                BLAS.gemm(m: total, n: perHead, k: kvRank, a: latents, lda: kvRank, transposeA: false,
                                          b: kvbp + hh * perHead * kvRank, ldb: kvRank, transposeB: true, c: expanded, ldc: perHead)
                                for (b0, m, visible) in CPUModel.causalBlocks(queries: seg.count, past: past) {
                                    let qRow = q + (seg.start + b0) * heads * qk + hh * qk
                                    BLAS.gemm(m: m, n: visible, k: nope, a: qRow, lda: heads * qk, transposeA: false,
                                              b: expanded, ldb: perHead, transposeB: true, c: scores, ldc: visible, alpha: scale)
                                    BLAS.gemm(m: m, n: visible, k: ropeDim, a: qRow + nope, lda: heads * qk, transposeA: false,
                                              b: rkp, ldb: ropeDim, transposeB: true, c: scores, ldc: visible, alpha: scale, beta: 1)
                                    if let sparseMask {
                                        for i in 0..<m { for j in 0..<visible { scores[i * visible + j] += sparseMask[(b0 + i) * total + j] } }
                                    }
                                    maskAndSoftmax(scores, queries: m, keys: visible, past: past + b0, span: .full)
                                    BLAS.gemm(m: m, n: vDim, k: visible, a: scores, lda: visible, transposeA: false,
                                              b: expanded + nope, ldb: perHead, transposeB: false,
                                              c: context + (seg.start + b0) * heads * vDim + hh * vDim, ldc: heads * vDim)
                                }
                            }
                        }
                    }
                }
            }
        }
        if let gates { for i in 0..<(rows * gateWidth) { context[i] *= gates[i] } }
        w.output.apply(context, batch: rows, into: out)
    }

    /// LayerNorm with a bias over `count` values, in place (the indexer's key norm, eps 1e-6).
    static func layerNorm(_ x: UnsafeMutablePointer<Float>, weight: [Float], bias: [Float], count: Int) {
        var mean: Float = 0
        for i in 0..<count { mean += x[i] }
        mean /= Float(count)
        var variance: Float = 0
        for i in 0..<count { variance += (x[i] - mean) * (x[i] - mean) }
        let inv = 1 / (variance / Float(count) + 1e-6).squareRoot()
        for i in 0..<count { x[i] = (x[i] - mean) * inv * weight[i] + bias[i] }
    }

    /// The lightning indexer's choice for `count` queries after `past` cached tokens: query i
    /// keeps the `topK` best of the keys t ≤ past + i (`indexerTopK`; all of them while fewer are
    /// visible); the mask row holds 0 there and −∞ on the other visible keys (the causal mask
    /// handles the rest).
    static func topKMask(queries: UnsafePointer<Float>, weights: UnsafePointer<Float>, keys: UnsafePointer<Float>, count: Int,
                         past: Int, heads: Int, headDim: Int, topK: Int, into mask: UnsafeMutablePointer<Float>) {
        let total = past + count
        var scratch = IndexerScratch()
        for i in 0..<count {
            let visible = past + i + 1
            let row = mask + i * total
            for t in 0..<total { row[t] = 0 }
            guard visible > topK else { continue }
            for t in 0..<visible { row[t] = -.infinity }
            indexerTopK(query: queries + i * heads * headDim, weights: weights + i * heads, keys: keys, visible: visible,
                        heads: heads, headDim: headDim, topK: topK, scratch: &scratch)
            for t in scratch.chosen.prefix(topK) { row[Int(t)] = 0 }
        }
    }

    /// The indexer's buffers, grown to the largest query seen and reused by the next ones.
    struct IndexerScratch {
        var dots: [Float] = [], scores: [Float] = [], values: [Float] = []
        /// The chosen keys of the last query, ascending, in its first `topK` entries.
        var chosen: [Int32] = []
        /// One query's weight per index head (DeepSeek-V4's, computed from the layer input).
        var headWeights: [Float] = []

        mutating func reserve(heads: Int, visible: Int, topK: Int) {
            if dots.count < heads * visible { dots = [Float](repeating: 0, count: heads * visible) }
            if scores.count < visible { scores = [Float](repeating: 0, count: visible) }
            if values.count < topK { values = [Float](repeating: 0, count: topK) }
            if chosen.count < topK { chosen = [Int32](repeating: 0, count: topK) }
            if headWeights.count < heads { headWeights = [Float](repeating: 0, count: heads) }
        }
    }

    /// The lightning indexer's top-k of one query (DeepSeek-V3.2, GLM-5 and DeepSeek-V4 alike):
    /// key t scores Σ_h w_h · ReLU(q_h · k_t) / √headDim over `heads` heads of `headDim` (the weights
    /// scaled by the caller), the scores as one GEMM over the visible keys; the `topK` best,
    /// the earlier of equal scores first (TensorCore's top-k), ascending in `scratch.chosen`'s
    /// first `topK` entries. Only for more than `topK` visible keys (with fewer, every key).
    static func indexerTopK(query: UnsafePointer<Float>, weights: UnsafePointer<Float>, keys: UnsafePointer<Float>, visible: Int,
                            heads: Int, headDim: Int, topK: Int, scratch: inout IndexerScratch) {
        let scale = 1 / Float(headDim).squareRoot()
        scratch.reserve(heads: heads, visible: visible, topK: topK)
        scratch.dots.withUnsafeMutableBufferPointer { dp in
            scratch.scores.withUnsafeMutableBufferPointer { sp in
                scratch.chosen.withUnsafeMutableBufferPointer { cp in
                    scratch.values.withUnsafeMutableBufferPointer { vp in
                        guard let d = dp.baseAddress, let s = sp.baseAddress, let c = cp.baseAddress, let v = vp.baseAddress else { return }
                        BLAS.gemm(m: heads, n: visible, k: headDim, a: query, lda: headDim, transposeA: false,
                                  b: keys, ldb: headDim, transposeB: true, c: d, ldc: visible)
                        s.update(repeating: 0, count: visible)
                        for h in 0..<heads {
                            let w = weights[h]
                            for t in 0..<visible { s[t] += w * max(d[h * visible + t] * scale, 0) }
                        }
                        TopK.select(s, count: visible, k: topK, indices: c, values: v)
                        var picked = UnsafeMutableBufferPointer(start: c, count: topK)
                        picked.sort()
                    }
                }
            }
        }
    }

    /// MLA's absorbed form for a few queries: each head's query moves into the latent space
    /// through W_UK (q_lat = W_UKᵀ q_nope), attends over the cached latents and rotary keys
    /// directly, and its latent output comes back through W_UV. The cache is never expanded, so a
    /// step costs O(context × kv_lora_rank) per head instead of expanding every cached token.
    func absorbedDecode(_ w: MLAWeights, _ a: MultiHeadLatentAttention, layer: Int, q: UnsafeMutablePointer<Float>,
                        segment seg: (start: Int, count: Int), past: Int, cache: SequenceCache, scale: Float,
                        mask: UnsafePointer<Float>? = nil, into context: UnsafeMutablePointer<Float>) {
        let pairs = seg.count * a.heads
        // (token, head) pairs split over the threads once the context makes them worth a region.
        let chunks = pairs * (past + seg.count) * a.kvLoraRank >= CPUModel.decodeParallelWork ? min(Threading.count, pairs) : 1
        let stride = 2 * a.kvLoraRank + past + seg.count
        let scratch = workspace.get(.mlaScratch, chunks * stride)
        w.kvUpRows.withUnsafeBufferPointer { wp in
            cache.keys[layer].withUnsafeBufferPointer { latents in
                cache.values[layer].withUnsafeBufferPointer { rotary in
                    guard let wb = wp.baseAddress, let lb = latents.baseAddress, let rb = rotary.baseAddress else { return }
                    Parallel.run(chunks: chunks, AbsorbedHeads(
                        kvUp: wb, latents: lb, rotary: rb, q: q, context: context, scratch: scratch, scratchStride: stride,
                        heads: a.heads, qk: a.qkHeadDim, nope: a.qkNopeHeadDim, vDim: a.vHeadDim, rank: a.kvLoraRank,
                        ropeDim: a.qkRopeHeadDim, start: seg.start, past: past, scale: scale, pairs: pairs, chunks: chunks,
                        mask: mask))
                }
            }
        }
    }

    /// `tokens`: the rows' token ids, for hash-routed layers (DeepSeek-V4).
    func feedForward(_ w: FeedForwardWeights, layer: Int, input: UnsafeMutablePointer<Float>, rows: Int,
                     into out: UnsafeMutablePointer<Float>, tokens: [Int] = []) throws {
        switch w {
        case let .dense(m):
            mlp(m, input, rows: rows, into: out)
        case let .moe(m):
            guard let moe = spec.moe else { return }
            let ws = workspace
            let h = spec.hiddenSize, e = moe.routedExperts, k = moe.expertsPerToken
            let logits = ws.get(.routerLogits, rows * e)
            m.router.apply(input, batch: rows, into: logits)
            if let bias = m.routerBias {
                for r in 0..<rows { for j in 0..<e { logits[r * e + j] += bias[j] } }
            }
            let ids = ws.ids(rows * k), routeWeights = ws.get(.routeWeights, rows * k)
            if let table = m.hashTable {
                guard tokens.count == rows else { throw RuntimeError.unsupported("a hash-routed layer needs the token ids") }
                Router.hashRoute(logits, tokens: tokens, table: table, moe: moe, ids: ids, weights: routeWeights,
                                 scratch: ws.get(.routerScratch, Router.scratchCount(moe)))
            } else {
                Router.route(logits, tokens: rows, moe: moe, correctionBias: m.correctionBias, ids: ids, weights: routeWeights,
                             scratch: ws.get(.routerScratch, Router.scratchCount(moe)))
            }
            for p in 0..<(rows * k) {
                let id = Int(ids[p])
                expertLoad[id] += 1
                if !ws.touched[id] { ws.touched[id] = true; lastTouchedExperts += 1 }
            }
            for j in 0..<e { ws.touched[j] = false }
            if recordRouting {
                lastRouting[layer] = (0..<rows).map { r in (0..<k).map { ids[r * k + $0] }.sorted() }
            }
            try ws.grouping.value.regroup(experts: UnsafeBufferPointer(start: ids, count: rows * k),
                                          weights: UnsafeBufferPointer(start: routeWeights, count: rows * k), expertsPerToken: k)
            let grouping = ws.grouping.value
            let size = moe.expertIntermediateSize, pairs = grouping.rowCount, width = moe.expertWidth(hidden: h)
            // LatentMoE (Kimi K3): the routed experts read and write the latent width; their
            // weighted sum is normalised and projected back before the shared experts add theirs.
            var expertInput = input, routedOut = out
            if let latent = m.latent {
                expertInput = ws.get(.moeLatent, rows * width)
                routedOut = ws.get(.moeLatentOut, rows * width)
                latent.down.apply(input, batch: rows, into: expertInput)
            }
            let packed = ws.get(.packed, pairs * width), gateUp = ws.get(.gateUp, pairs * 2 * size)
            let activated = ws.get(.activated, pairs * size)
            routedOut.update(repeating: 0, count: rows * width)
            GroupedMatmul.gather(expertInput, width: width, grouping: grouping, into: packed)
            if moe.weightScalesInput {
                // Llama 4: each expert sees its routing weight times the token; the outputs are
                // then summed unweighted.
                grouping.weightOfRow.withUnsafeBufferPointer { weights in
                    for r in 0..<pairs { Elementwise.scale(packed + r * width, by: weights[r], into: packed + r * width, count: width) }
                }
            }
            GroupedMatmul.multiply(packed, grouping: grouping, weights: m.expertsGateUp, into: gateUp)
            // gpt-oss: biases per expert before its clamped SwiGLU.
            if moe.expertBias { CPUModel.addExpertBias(gateUp, width: 2 * size, grouping: grouping, biases: m.expertsGateUpBias) }
            CPUModel.swiGLU(gateUp, rows: pairs, size: size, form: .init(spec.activation, clampOf: moe), into: activated)
            // The experts' output takes the packed rows' storage (Workspace.Slot.storage): taken
            // only now, when the packed rows are no longer needed.
            let expertOut = ws.get(.expertOut, pairs * width)
            GroupedMatmul.multiply(activated, grouping: grouping, weights: m.expertsDown, into: expertOut)
            if moe.expertBias { CPUModel.addExpertBias(expertOut, width: width, grouping: grouping, biases: m.expertsDownBias) }
            GroupedMatmul.scatterAdd(expertOut, width: width, grouping: grouping, weighted: !moe.weightScalesInput, into: routedOut)
            if let latent = m.latent {
                if let norm = latent.norm { rmsNormRows(routedOut, norm, into: routedOut, rows: rows) }
                latent.up.apply(routedOut, batch: rows, into: out)
            }
            if let shared = m.shared {
                let sharedOut = ws.get(.shared, rows * h)
                mlp(shared, input, rows: rows, into: sharedOut, clamp: moe.clampsShared ? moe : nil)
                if let gate = m.sharedGate {
                    let gates = ws.get(.sharedGate, rows)
                    gate.apply(input, batch: rows, into: gates)
                    Elementwise.sigmoid(gates, into: gates, count: rows)
                    for r in 0..<rows { Elementwise.scale(sharedOut + r * h, by: gates[r], into: sharedOut + r * h, count: h) }
                }
                Elementwise.add(out, sharedOut, into: out, count: rows * h)
            }
        }
    }

    /// Adds each expert's bias to its rows of the packed (expert-ordered) block.
    static func addExpertBias(_ x: UnsafeMutablePointer<Float>, width: Int, grouping: ExpertGrouping, biases: [[Float]?]) {
        for (e, bias) in biases.enumerated() {
            guard let bias, e + 1 < grouping.offsets.count else { continue }
            bias.withUnsafeBufferPointer { b in
                guard let bp = b.baseAddress else { return }
                for r in grouping.offsets[e]..<grouping.offsets[e + 1] { Elementwise.add(x + r * width, bp, into: x + r * width, count: width) }
            }
        }
    }

    /// `clamp`: the MoE whose clamped SwiGLU this MLP runs (DeepSeek-V4's shared expert).
    func mlp(_ m: MLPWeights, _ input: UnsafeMutablePointer<Float>, rows: Int, into out: UnsafeMutablePointer<Float>,
             clamp: MixtureOfExperts? = nil) {
        let size = m.intermediate
        let gateUp = workspace.get(.mlpGateUp, rows * 2 * size), activated = workspace.get(.mlpActivated, rows * size)
        m.gateUp.apply(input, batch: rows, into: gateUp)
        CPUModel.swiGLU(gateUp, rows: rows, size: size, form: .init(spec.activation, clampOf: clamp), into: activated)
        m.down.apply(activated, batch: rows, into: out)
    }

    /// SwiGLU of rows of [gate | up], split over threads for long prompts.
    static func swiGLU(_ gateUp: UnsafeMutablePointer<Float>, rows: Int, size: Int, form: SwiGLURows.Form,
                       into activated: UnsafeMutablePointer<Float>) {
        let chunks = Parallel.chunks(rows: rows, width: 2 * size)
        Parallel.run(chunks: chunks, SwiGLURows(gateUp: gateUp, out: activated, rows: rows, size: size, chunks: chunks, form: form))
    }

    // MARK: - Helpers

    func rmsNormRows(_ x: UnsafeMutablePointer<Float>, _ weight: [Float], into out: UnsafeMutablePointer<Float>, rows: Int) {
        let width = weight.count, epsilon = Float(spec.rmsNormEpsilon)
        weight.withUnsafeBufferPointer { wp in
            guard let w = wp.baseAddress else { return }
            let chunks = Parallel.chunks(rows: rows, width: width)
            Parallel.run(chunks: chunks, RMSNormRows(x: x, weight: w, out: out, rows: rows, width: width, epsilon: epsilon, chunks: chunks))
        }
    }

    /// Decode attention runs its (token, head) pairs on several threads from this many
    /// multiply-adds on: below it a parallel region's few microseconds cost more than they save.
    static let decodeParallelWork = 65_536

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

    /// Causal mask within the layer's span (sliding window, chunk), then softmax, of a block of
    /// scores: query i is the token at position past + i and sees keys from
    /// span.firstVisibleKey(past + i) to past + i.
    func maskAndSoftmax(_ scores: UnsafeMutablePointer<Float>, queries: Int, keys: Int, past: Int, span: Layer.Span, sink: Float? = nil) {
        let chunks = Parallel.chunks(rows: queries, width: keys)
        Parallel.run(chunks: chunks, MaskedSoftmaxRows(scores: scores, queries: queries, keys: keys, past: past, span: span, chunks: chunks,
                                                       sink: sink))
    }

    // MARK: - Generation

    /// Greedy continuation of each prompt by `maxNew` tokens (ties go to the lower token id).
    public func generate(prompts: [[Int]], maxNew: Int) throws -> [[Int]] {
        try generateTimed(prompts: prompts, maxNew: maxNew).tokens
    }

    /// A greedy generation and how long its two phases took.
    public struct Generation: Sendable {
        /// The new tokens of each prompt.
        public var tokens: [[Int]]
        /// Seconds of the prompts' forward pass (which yields the first new token).
        public var prefillSeconds: Double
        /// Seconds of the maxNew − 1 decode steps after it.
        public var decodeSeconds: Double

        /// Prompt tokens per second of the prefill; new tokens per second of the decode steps
        /// (0 with a single new token). Cold: the first call's, as a user's first request is.
        public func rates(promptTokens: Int) -> (prefill: Double, decode: Double) {
            let decodeSteps = (tokens.first?.count ?? 0) - 1
            return (prefillSeconds > 0 ? Double(promptTokens) / prefillSeconds : 0,
                    decodeSteps > 0 && decodeSeconds > 0 ? Double(decodeSteps * tokens.count) / decodeSeconds : 0)
        }
    }

    /// `generate`, timing the prefill (prompts in, first tokens out) apart from the decode steps.
    public func generateTimed(prompts: [[Int]], maxNew: Int) throws -> Generation {
        var caches = prompts.map { newCache(reserve: $0.count + maxNew) }
        var generated = Array(repeating: [Int](), count: prompts.count)
        guard maxNew > 0 else { return Generation(tokens: generated, prefillSeconds: 0, decodeSeconds: 0) }
        var logits = try Tensor(zeros: [0, 0])
        let prefill = try Calibration.time { logits = try forward(prompts, caches: &caches) }
        let decode = try Calibration.time {
            for step in 0..<maxNew {
                let next = argmaxRows(logits)
                for s in 0..<prompts.count { generated[s].append(next[s]) }
                if step + 1 < maxNew { logits = try forward(next.map { [$0] }, caches: &caches) }
            }
        }
        return Generation(tokens: generated, prefillSeconds: prefill, decodeSeconds: decode)
    }

    /// The index of the largest logit of each row (ties: the lower token id).
    public func argmaxRows(_ logits: Tensor) -> [Int] {
        (0..<logits.shape[0]).map { argmax(logits, row: $0) }
    }

    /// The index of the largest logit of one row (ties: the lower token id); allocates nothing.
    public func argmax(_ logits: Tensor, row r: Int) -> Int {
        let v = logits.shape[1]
        return logits.withUnsafeBufferPointer { p in
            var best = 0
            for j in 1..<v where p[r * v + j] > p[r * v + best] { best = j }
            return best
        }
    }
}
