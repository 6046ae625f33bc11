import ModelSpec
import TensorCore

/// Where weights come from: a HuggingFace folder, or a seeded random initialisation.
public enum WeightSource: Sendable {
    case folder(SafeTensorsFolder)
    /// Linear weights uniform with the standard deviation of transformers' init (0.02), norms at
    /// one, each tensor from its own stream of the seed so that any subset is reproducible.
    case random(seed: UInt64)

    func tensor(_ name: String, _ shape: [Int], norm: Bool = false) throws -> Tensor {
        switch self {
        case let .folder(f):
            return try f.tensor(name, shape: shape)
        case .random:
            if norm { return try Tensor(shape: shape) { 1 } }
            var tensor = try Tensor(zeros: shape)
            try tensor.withUnsafeMutableBufferPointer { buffer in
                if let out = buffer.baseAddress { try fill(name, shape, into: out) }
            }
            return tensor
        }
    }

    /// The stored shape of `name` (nil for random weights, which take the shape asked for).
    func shape(of name: String) -> [Int]? {
        guard case let .folder(f) = self else { return nil }
        return f.files.lazy.compactMap { $0.entries[name]?.shape }.first
    }

    /// Several matrices (name, shape) with the same columns stacked by rows into one tensor, each
    /// written in place: q/k/v or gate/up then run as one GEMM, and loading never holds a second
    /// copy of them.
    func stacked(_ parts: [(String, [Int])]) throws -> Tensor {
        guard let cols = parts.first?.1.last else { throw RuntimeError.unsupported("nothing to stack") }
        var tensor = try Tensor(zeros: [parts.reduce(0) { $0 + $1.1[0] }, cols])
        try tensor.withUnsafeMutableBufferPointer { buffer in
            guard var out = buffer.baseAddress else { return }
            for (name, shape) in parts {
                try fill(name, shape, into: out)
                out += shape[0] * shape[1]
            }
        }
        return tensor
    }

    /// Writes tensor `name` of `shape` to `out`: from the file, or from the seed's stream for that
    /// name, uniform on [-a, a) with a = 0.02·√3 (standard deviation 0.02, transformers' init).
    func fill(_ name: String, _ shape: [Int], into out: UnsafeMutablePointer<Float>) throws {
        switch self {
        case let .folder(f):
            try f.read(name, shape: shape, into: out)
        case let .random(seed):
            var rng = SplitMix64(seed: seed ^ WeightSource.hash(name))
            for i in 0..<shape.reduce(1, *) { out[i] = rng.nextSigned() * 0.034_641 }
        }
    }

    /// Writes rows `rows` of the matrix `name` of `shape` to `out`: the same values as those rows
    /// of `fill`, so a large matrix can be loaded a block of rows at a time.
    func fill(_ name: String, _ shape: [Int], rows: Range<Int>, into out: UnsafeMutablePointer<Float>) throws {
        let cols = shape.count == 2 ? shape[1] : 1
        switch self {
        case let .folder(f):
            try f.read(name, shape: shape, rows: rows, into: out)
        case let .random(seed):
            var rng = SplitMix64(seed: seed ^ WeightSource.hash(name))
            rng.skip(rows.lowerBound * cols)
            for i in 0..<(rows.count * cols) { out[i] = rng.nextSigned() * 0.034_641 }
        }
    }

    /// FNV-1a of the name: a stable per-tensor seed.
    static func hash(_ name: String) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in name.utf8 { h = (h ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return h
    }
}

/// Storage format of the linear weights on the CPU.
public enum CPUWeightFormat: String, Sendable, CaseIterable {
    case f32, bf16

    func matrix(_ tensor: Tensor) throws -> WeightMatrix {
        switch self {
        case .f32: try WeightMatrix(f32: tensor)
        case .bf16: .bf16(try BF16Matrix(tensor))
        }
    }

    /// The same format in the model spec's terms, for pricing a run with the estimator.
    public var weightFormat: WeightFormat { self == .f32 ? .f32 : .bf16 }
}

struct GQAWeights {
    /// q, k and v stacked; with an output gate (Qwen3.5) q_proj's rows interleave each head's
    /// query and gate (2 × head_dim per head).
    var qkv: WeightMatrix
    var qkvBias: [Float]?
    var output: WeightMatrix
    var qNorm: [Float]?
    var kNorm: [Float]?
    var outputGate = false
    /// gpt-oss: the output projection's bias and one attention-sink logit per head.
    var outputBias: [Float]? = nil
    var sinks: [Float]? = nil
}

/// Gated DeltaNet (Qwen3.5): the four input projections stacked (qkv, z, b, a), the depthwise
/// causal convolution over the qkv channels, the decay parameters, the gated output norm.
struct GDNWeights {
    var inProj: WeightMatrix
    /// [channels × kernel], channel-major (transformers' conv1d weight [channels, 1, kernel]).
    var conv: [Float]
    var dtBias: [Float]
    var aLog: [Float]
    var norm: [Float]
    var output: WeightMatrix
}

/// DeepSeek sparse attention's lightning indexer (DeepSeek-V3.2).
struct IndexerWeights {
    /// Queries from the query latent: [heads × head_dim, q_lora_rank].
    var queries: WeightMatrix
    /// One key per token from the hidden state, LayerNorm'd with a bias.
    var key: WeightMatrix
    var keyNormWeight: [Float]
    var keyNormBias: [Float]
    /// Per-head weights of the score from the hidden state: [heads, hidden].
    var weights: WeightMatrix
}

struct MLAWeights {
    /// q_a_proj and kv_a_proj_with_mqa stacked: both read the layer input.
    var down: WeightMatrix
    var qNorm: [Float]?
    var qUp: WeightMatrix
    var kvNorm: [Float]
    /// kv_b in Float32 rows, kept in Float32 in every format: the absorbed decode form reads it row
    /// by row per head, and prefill expands each head's keys and values through its rows.
    var kvUpRows: Tensor
    var output: WeightMatrix
    var indexer: IndexerWeights? = nil
    /// Kimi K3: g_proj stacked last in `down`, a sigmoid gate on every head's output before o_proj.
    var outputGate = false
}

/// Kimi Delta Attention (Kimi Linear): q, k, v, the β projection, the low-rank forget gate's first
/// half and the output gate's (its low-rank first half, or Kimi K3's full-rank g_proj) stacked
/// (all read the layer input); the gates' second halves; the depthwise convolutions over q, k
/// and v; the decay parameters; the gated output norm.
struct KDAWeights {
    var inProj: WeightMatrix
    var forgetUp: WeightMatrix
    /// The output gate's up-projection; nil with a full-rank gate (inside `inProj`).
    var gateUp: WeightMatrix?
    /// [3 × heads × head_dim channels × kernel], q then k then v.
    var conv: [Float]
    var dtBias: [Float]
    var aLog: [Float]
    var norm: [Float]
    var output: WeightMatrix
}

enum AttentionWeights {
    case grouped(GQAWeights)
    case latent(MLAWeights)
    case gatedDeltaNet(GDNWeights)
    case kimiDelta(KDAWeights)
    case compressed(V4AttentionWeights)
}

struct MLPWeights {
    /// gate and up stacked: [2 × intermediate, hidden].
    var gateUp: WeightMatrix
    var down: WeightMatrix
    /// gpt-oss's expert biases (gate then up, and down).
    var gateUpBias: [Float]? = nil
    var downBias: [Float]? = nil
    var intermediate: Int { down.cols }
}

struct MoEWeights {
    /// hidden → experts, kept in Float32 as the reference routers compute in Float32.
    var router: WeightMatrix
    var routerBias: [Float]?
    var correctionBias: [Float]?
    var experts: [MLPWeights] {
        didSet {
            expertsGateUp = experts.map(\.gateUp)
            expertsDown = experts.map(\.down)
            expertsGateUpBias = experts.map(\.gateUpBias)
            expertsDownBias = experts.map(\.downBias)
        }
    }
    /// The experts' matrices and biases as the grouped matmul takes them, built once.
    private(set) var expertsGateUp: [WeightMatrix] = []
    private(set) var expertsDown: [WeightMatrix] = []
    private(set) var expertsGateUpBias: [[Float]?] = []
    private(set) var expertsDownBias: [[Float]?] = []
    var shared: MLPWeights?
    /// Qwen2-MoE's hidden → 1 gate on the shared expert.
    var sharedGate: WeightMatrix?
    /// DeepSeek-V4's hash-routed layers: the experts of each token id, [vocabulary × k].
    var hashTable: [Int32]? = nil
    /// LatentMoE (Kimi K3): hidden → latent before the routed experts, the RMSNorm of their
    /// weighted sum, latent → hidden after.
    var latent: (down: WeightMatrix, norm: [Float]?, up: WeightMatrix)? = nil
}

enum FeedForwardWeights {
    case dense(MLPWeights)
    case moe(MoEWeights)

    var isMoE: Bool { if case .moe = self { true } else { false } }
}

struct LayerWeights {
    var inputNorm: [Float]
    var postNorm: [Float]
    var attention: AttentionWeights
    var feedForward: FeedForwardWeights
    /// DeepSeek-V4: the hyper-connection maps around the attention and the feed-forward block.
    var hyper: (HyperWeights, HyperWeights)? = nil
    /// Kimi K3: the attention residuals' score vectors before the attention and the feed-forward block.
    var residualScores: (attention: [Float], feedForward: [Float])? = nil
}

struct ModelWeights {
    var embedding: Tensor
    var layers: [LayerWeights]
    var finalNorm: [Float]
    var head: WeightMatrix
    /// DeepSeek-V4's final collapse of the residual streams.
    var hyperHead: HyperWeights? = nil
    /// Kimi K3: the attention residuals' score vector before the final norm.
    var outputResidualScores: [Float]? = nil

    /// Bytes of all linear weights and the embedding as stored.
    var byteCount: Int {
        var total = embedding.count * 4 + head.byteCount
        for layer in layers {
            switch layer.attention {
            case let .grouped(a): total += a.qkv.byteCount + a.output.byteCount
            case let .latent(a): total += a.down.byteCount + a.qUp.byteCount + a.kvUpRows.count * 4 + a.output.byteCount
            case let .gatedDeltaNet(a): total += a.inProj.byteCount + a.output.byteCount + 4 * a.conv.count
            case let .kimiDelta(a): total += a.inProj.byteCount + a.forgetUp.byteCount + (a.gateUp?.byteCount ?? 0) + a.output.byteCount
            case let .compressed(a):
                total += a.input.byteCount + a.queryUp.byteCount + a.outputA.reduce(0) { $0 + $1.byteCount } + a.outputB.byteCount
                    + (a.indexer?.queries.byteCount ?? 0)
            }
            switch layer.feedForward {
            case let .dense(m): total += m.gateUp.byteCount + m.down.byteCount
            case let .moe(m):
                total += m.router.byteCount + m.experts.reduce(0) { $0 + $1.gateUp.byteCount + $1.down.byteCount }
                if let s = m.shared { total += s.gateUp.byteCount + s.down.byteCount }
                if let l = m.latent { total += l.down.byteCount + l.up.byteCount }
            }
        }
        return total
    }

    /// Loads every tensor the spec needs under its checkpoint's names (`spec.checkpointNames`).
    static func load(_ spec: ModelSpec, from source: WeightSource, format: CPUWeightFormat, kernels: PanelMatrix.Kernels?) throws -> ModelWeights {
        let h = spec.hiddenSize
        func vector(_ name: String, _ n: Int, norm: Bool = false) throws -> [Float] {
            let v = try source.tensor(name, [n], norm: norm && !spec.zeroCenteredNorms).elements
            // Zero-centred norms (Qwen3.5) scale by 1 + w: stored here as the usual weight.
            return norm && spec.zeroCenteredNorms ? v.map { $0 + 1 } : v
        }
        // A checkpoint whose config says it ships quantized matrices (FP8 blocks, MXFP4 or INT4
        // experts) holds packed integers and scales under other names: refused by name here rather
        // than as a missing tensor.
        if case .folder = source, let shipped = spec.shippedWeights {
            let advice = "the CPU runtime reads F32, BF16 and F16 tensors: dequantize the checkpoint first (or, if its tensors "
                + "already are, remove quantization_config from its config.json)"
            switch shipped {
            case let .success(formats):
                if let quantized = [formats.dense, formats.experts].first(where: { $0 != .bf16 && $0 != .f32 }) {
                    throw RuntimeError.unsupported("this checkpoint ships \(quantized.rawValue) weights (\(formats.source)); \(advice)")
                }
            case let .failure(error):
                throw RuntimeError.unsupported("this checkpoint's quantization is not one moesim reads (\(error)); \(advice)")
            }
        }
        let loader = MatrixLoader(source: source, format: format, kernels: kernels)
        if case let .compressed(a) = spec.attention { return try loadDeepSeekV4(spec, a, from: source, loader: loader) }
        func mlp(_ prefix: String, _ size: Int, width: Int = h, names: (String, String, String) = ("gate_proj", "up_proj", "down_proj")) throws -> MLPWeights {
            let gate = ("\(prefix).\(names.0).weight", [size, width]), up = ("\(prefix).\(names.1).weight", [size, width])
            return MLPWeights(gateUp: try loader.matrix([gate, up]),
                              down: try loader.matrix([("\(prefix).\(names.2).weight", [width, size])]))
        }
        let names = spec.checkpointNames, root = names.prefix
        // Kimi K3's attention residuals: each score vector is its norm's weight times its 1 × hidden
        // projection (the score is (w ⊙ p) · v / rms(v)), as SGLang's `get_cw` folds them.
        func residualScores(_ prefix: String) throws -> [Float] {
            let norm = try vector("\(prefix)_norm.weight", h, norm: true)
            let projection = try source.tensor("\(prefix)_proj.weight", [1, h]).elements
            return zip(norm, projection).map { $0 * $1 }
        }
        var layers: [LayerWeights] = []
        for (i, layer) in spec.layers.enumerated() {
            let p = "\(root)model.layers.\(i)"
            let attention: AttentionWeights
            if layer.mixer == .linear, let l = spec.linearAttention, l.kind == .kimiDelta {
                let P = l.valueHeads * l.valueHeadDim, d = l.keyHeadDim, ap = "\(p).self_attn"
                let conv = try ["q", "k", "v"].flatMap { try source.tensor("\(ap).\($0)_conv1d.weight", [P, 1, l.convKernel]).elements }
                // The output gate: Kimi K3's full-rank g_proj, or Kimi Linear's low-rank pair.
                let outputGate = l.fullRankOutputGate ? ("\(ap).g_proj.weight", [P, h]) : ("\(ap).g_a_proj.weight", [d, h])
                attention = .kimiDelta(KDAWeights(
                    inProj: try loader.matrix([("\(ap).q_proj.weight", [P, h]), ("\(ap).k_proj.weight", [P, h]), ("\(ap).v_proj.weight", [P, h]),
                                               ("\(ap).b_proj.weight", [l.valueHeads, h]), ("\(ap).f_a_proj.weight", [d, h]), outputGate]),
                    forgetUp: try WeightMatrix(f32: source.tensor("\(ap).f_b_proj.weight", [P, d])),
                    gateUp: l.fullRankOutputGate ? nil : try WeightMatrix(f32: source.tensor("\(ap).g_b_proj.weight", [P, d])),
                    conv: conv,
                    dtBias: try source.tensor("\(ap).dt_bias", [P]).elements,
                    aLog: try ModelWeights.kdaDecayRates("\(ap).A_log", heads: l.valueHeads, source: source),
                    norm: try source.tensor("\(ap).o_norm.weight", [d], norm: true).elements,
                    output: try loader.matrix([("\(ap).o_proj.weight", [h, P])])))
            } else if layer.mixer == .linear {
                guard let l = spec.linearAttention, l.kind == .gatedDeltaNet else {
                    throw RuntimeError.unsupported("this linear attention does not run on the CPU")
                }
                let key = l.keyHeads * l.keyHeadDim, value = l.valueHeads * l.valueHeadDim
                let lp = "\(p).linear_attn"
                let inProj = names.fusedLinearProjections
                    ? try ModelWeights.qwen3NextInProjection(lp, l, hidden: h, source: source, loader: loader)
                    : try loader.matrix([("\(lp).in_proj_qkv.weight", [2 * key + value, h]), ("\(lp).in_proj_z.weight", [value, h]),
                                         ("\(lp).in_proj_b.weight", [l.valueHeads, h]), ("\(lp).in_proj_a.weight", [l.valueHeads, h])])
                attention = .gatedDeltaNet(GDNWeights(
                    inProj: inProj,
                    conv: try source.tensor("\(lp).conv1d.weight", [l.convChannels, 1, l.convKernel]).elements,
                    dtBias: try source.tensor("\(lp).dt_bias", [l.valueHeads]).elements,
                    aLog: try source.tensor("\(lp).A_log", [l.valueHeads]).elements,
                    norm: try source.tensor("\(lp).norm.weight", [l.valueHeadDim], norm: true).elements,
                    output: try loader.matrix([("\(lp).out_proj.weight", [h, value])])))
            } else {
            switch spec.attention(for: layer) {
            case let .grouped(a):
                // The output gate multiplies each head's output position by position: it needs
                // values as wide as the keys (Qwen3.5's are), which narrower values (MiMo's) are not.
                guard !a.outputGate || a.vDim == a.headDim else {
                    throw RuntimeError.unsupported("a gated attention with values (\(a.vDim)) narrower than keys (\(a.headDim))")
                }
                let q = a.heads * a.headDim, kv = a.kvHeads * a.headDim, vkv = a.kvHeads * a.vDim
                let parts = [("q_proj", a.outputGate ? 2 * q : q), ("k_proj", kv), ("v_proj", vkv)].map {
                    ("\(p).self_attn.\($0.0).weight", [$0.1, h])
                }
                var bias: [Float]? = nil
                if a.qkvBias {
                    bias = try vector("\(p).self_attn.q_proj.bias", q) + vector("\(p).self_attn.k_proj.bias", kv)
                        + vector("\(p).self_attn.v_proj.bias", vkv)
                }
                attention = .grouped(GQAWeights(
                    qkv: try loader.matrix(parts), qkvBias: bias,
                    output: try loader.matrix([("\(p).self_attn.o_proj.weight", [h, a.heads * a.vDim])]),
                    qNorm: a.qkNorm ? try vector("\(p).self_attn.q_norm.weight", a.qkNormOverAllHeads ? q : a.headDim, norm: true) : nil,
                    kNorm: a.qkNorm ? try vector("\(p).self_attn.k_norm.weight", a.qkNormOverAllHeads ? kv : a.headDim, norm: true) : nil,
                    outputGate: a.outputGate,
                    outputBias: a.outputBias ? try vector("\(p).self_attn.o_proj.bias", h) : nil,
                    sinks: a.sinks ? try vector("\(p).self_attn.\(names.attentionSinks)", a.heads) : nil))
            case .compressed:
                throw RuntimeError.unsupported("compressed attention outside DeepSeek-V4's loader")
            case let .latent(a):
                // Kimi K3's output gate reads the layer input too: stacked after the KV down-projection.
                let kvDown = [("\(p).self_attn.kv_a_proj_with_mqa.weight", [a.kvLoraRank + a.qkRopeHeadDim, h])]
                    + (a.outputGate ? [("\(p).self_attn.g_proj.weight", [a.heads * a.vHeadDim, h])] : [])
                let down: WeightMatrix, qUp: WeightMatrix, qNorm: [Float]?
                if let rank = a.qLoraRank {
                    down = try loader.matrix([("\(p).self_attn.q_a_proj.weight", [rank, h])] + kvDown)
                    qNorm = try vector("\(p).self_attn.q_a_layernorm.weight", rank, norm: true)
                    qUp = try loader.matrix([("\(p).self_attn.q_b_proj.weight", [a.heads * a.qkHeadDim, rank])])
                } else {
                    down = try loader.matrix(kvDown)
                    qNorm = nil
                    qUp = try loader.matrix([("\(p).self_attn.q_proj.weight", [a.heads * a.qkHeadDim, h])])
                }
                let kvUp = try source.tensor("\(p).self_attn.kv_b_proj.weight", [a.heads * (a.qkNopeHeadDim + a.vHeadDim), a.kvLoraRank])
                var indexer: IndexerWeights? = nil
                if let x = spec.sparseAttention, layer.indexer {
                    let ip = "\(p).self_attn.indexer"
                    indexer = IndexerWeights(
                        queries: try WeightMatrix(f32: source.tensor("\(ip).wq_b.weight", [x.heads * x.headDim, x.queryRank])),
                        key: try WeightMatrix(f32: source.tensor("\(ip).wk.weight", [x.headDim, h])),
                        keyNormWeight: try source.tensor("\(ip).k_norm.weight", [x.headDim], norm: true).elements,
                        keyNormBias: try source.tensor("\(ip).k_norm.bias", [x.headDim]).elements,
                        weights: try WeightMatrix(f32: source.tensor("\(ip).weights_proj.weight", [x.heads, h])))
                }
                attention = .latent(MLAWeights(
                    down: down, qNorm: qNorm, qUp: qUp,
                    kvNorm: try vector("\(p).self_attn.kv_a_layernorm.weight", a.kvLoraRank, norm: true),
                    kvUpRows: kvUp,
                    output: try loader.matrix([("\(p).self_attn.o_proj.weight", [h, a.heads * a.vHeadDim])]),
                    indexer: indexer, outputGate: a.outputGate))
            }
            }
            let feedForward: FeedForwardWeights
            switch layer.feedForward {
            case let .dense(size):
                feedForward = .dense(try mlp("\(p).\(names.denseBlock)", size))
            case .moe:
                guard let moe = spec.moe else { throw RuntimeError.unsupported("MoE layer without experts") }
                let block = "\(p).\(names.moeBlock)", projections = names.expertProjections
                if names.fusedExperts != nil, moe.latentSize != nil {
                    throw RuntimeError.unsupported("fused experts at a latent width (LatentMoE) are not loaded")
                }
                let experts = try names.fusedExperts.map {
                    try ModelWeights.fusedExperts("\(block).experts", moe: moe, hidden: h, source: source, loader: loader,
                                                  interleaved: $0 == .interleaved, biases: moe.expertBias)
                } ?? (0..<moe.routedExperts).map {
                    try mlp("\(block).experts.\($0)", moe.expertIntermediateSize, width: moe.expertWidth(hidden: h),
                            names: (projections.gate, projections.up, projections.down))
                }
                var shared: MLPWeights? = nil
                if moe.sharedIntermediateSize > 0 {
                    shared = try mlp("\(block).\(names.sharedExpert)", moe.sharedIntermediateSize)
                }
                let routerName = "\(block).\(names.router)"
                var moeWeights = MoEWeights(
                    router: try WeightMatrix(f32: source.tensor("\(routerName).weight", [moe.routedExperts, h])),
                    routerBias: moe.routerBias ? try vector("\(routerName).bias", moe.routedExperts) : nil,
                    correctionBias: moe.correctionBias
                        ? try vector(names.correctionBiasOnBlock ? "\(block).e_score_correction_bias" : "\(block).gate.e_score_correction_bias",
                                     moe.routedExperts) : nil,
                    experts: experts, shared: shared,
                    sharedGate: moe.sharedExpertGate ? try WeightMatrix(f32: source.tensor("\(block).shared_expert_gate.weight", [1, h])) : nil)
                moeWeights.experts = experts  // fills the grouped-matmul views
                if let latent = moe.latentSize {
                    moeWeights.latent = (down: try loader.matrix([("\(block).routed_expert_down_proj.weight", [latent, h])]),
                                         norm: moe.latentNorm ? try vector("\(block).routed_expert_norm.weight", latent, norm: true) : nil,
                                         up: try loader.matrix([("\(block).routed_expert_up_proj.weight", [h, latent])]))
                }
                feedForward = .moe(moeWeights)
            }
            layers.append(LayerWeights(inputNorm: try vector("\(p).input_layernorm.weight", h, norm: true),
                                       postNorm: try vector("\(p).post_attention_layernorm.weight", h, norm: true),
                                       attention: attention, feedForward: feedForward,
                                       residualScores: spec.attentionResidualBlock == nil ? nil
                                           : (try residualScores("\(p).self_attention_res"), try residualScores("\(p).mlp_res"))))
        }
        let embedding = try source.tensor("\(root)model.embed_tokens.weight", [spec.vocabSize, h])
        let headName = spec.tiedEmbeddings ? "\(root)model.embed_tokens.weight" : "\(root)lm_head.weight"
        return ModelWeights(embedding: embedding, layers: layers,
                            finalNorm: try vector("\(root)model.norm.weight", h, norm: true),
                            head: try loader.matrix([(headName, [spec.vocabSize, h])]),
                            outputResidualScores: spec.attentionResidualBlock == nil ? nil
                                : try residualScores("\(root)model.output_attn_res"))
    }
}

extension ModelWeights {
    /// KDA's A_log, one per head: Kimi Linear stores [1, 1, heads, 1], Kimi K3 [head_dim] with the
    /// heads' values first and zeros after (SGLang's K3 loader keeps the first `heads`).
    static func kdaDecayRates(_ name: String, heads: Int, source: WeightSource) throws -> [Float] {
        let shape = source.shape(of: name) ?? [heads]
        guard shape == [1, 1, heads, 1] || (shape.count == 1 && shape[0] >= heads) else {
            throw RuntimeError.tensorShape(name: name, expected: [1, 1, heads, 1], found: shape)
        }
        return Array(try source.tensor(name, shape).elements.prefix(heads))
    }

    /// Qwen3-Next's fused projections rearranged into Qwen3.5's stacked order [q; k; v; z; b; a]:
    /// in_proj_qkvz holds, per key head, its query, its key, then the values and the z gates of
    /// the value heads it serves; in_proj_ba, per key head, their b then their a
    /// (transformers' `fix_query_key_value_ordering`).
    static func qwen3NextInProjection(_ prefix: String, _ l: LinearAttention, hidden h: Int, source: WeightSource,
                                      loader: MatrixLoader) throws -> WeightMatrix {
        let nk = l.keyHeads, dk = l.keyHeadDim, dv = l.valueHeadDim, r = l.valueHeads / max(nk, 1)
        let perKey = 2 * dk + 2 * r * dv, key = nk * dk, value = l.valueHeads * dv
        let qkvz = try source.tensor("\(prefix).in_proj_qkvz.weight", [nk * perKey, h]).elements
        let ba = try source.tensor("\(prefix).in_proj_ba.weight", [nk * 2 * r, h]).elements
        // The source row of stacked row j.
        func row(_ j: Int) -> (fused: Bool, index: Int) {
            switch j {
            case ..<key: (true, j / dk * perKey + j % dk)
            case ..<(2 * key): (true, (j - key) / dk * perKey + dk + (j - key) % dk)
            case ..<(2 * key + value): (true, (j - 2 * key) / (r * dv) * perKey + 2 * dk + (j - 2 * key) % (r * dv))
            case ..<(2 * key + 2 * value): (true, (j - 2 * key - value) / (r * dv) * perKey + 2 * dk + r * dv + (j - 2 * key - value) % (r * dv))
            case ..<(2 * key + 2 * value + l.valueHeads): (false, (j - 2 * key - 2 * value) / r * 2 * r + (j - 2 * key - 2 * value) % r)
            default: (false, (j - 2 * key - 2 * value - l.valueHeads) / r * 2 * r + r + (j - 2 * key - 2 * value - l.valueHeads) % r)
            }
        }
        return try loader.matrix(rows: 2 * key + 2 * value + 2 * l.valueHeads, cols: h) { j, out in
            let (fused, index) = row(j)
            for c in 0..<h { out[c] = fused ? qkvz[index * h + c] : ba[index * h + c] }
        }
    }

    /// Experts as gpt-oss's and Llama 4's checkpoints store them, fused: gate_up [E, hidden, 2I]
    /// (gate and up interleaved by column in gpt-oss, `interleaved`; the two halves in Llama 4),
    /// down [E, I, hidden] (both input-major), and gpt-oss's biases; rearranged into each
    /// expert's row-major [gate; up] and down matrices.
    static func fusedExperts(_ prefix: String, moe: MixtureOfExperts, hidden h: Int, source: WeightSource,
                             loader: MatrixLoader, interleaved: Bool, biases: Bool) throws -> [MLPWeights] {
        let e = moe.routedExperts, size = moe.expertIntermediateSize
        let gateUpName = "\(prefix).gate_up_proj", downName = "\(prefix).down_proj"
        let gateUpBias = biases ? try source.tensor("\(prefix).gate_up_proj_bias", [e, 2 * size]).elements : []
        let downBias = biases ? try source.tensor("\(prefix).down_proj_bias", [e, h]).elements : []
        // Column of the fused gate_up holding gate (0) or up (1) lane i.
        func column(_ i: Int, _ part: Int) -> Int { interleaved ? 2 * i + part : part * size + i }
        // One expert's slice at a time (read as the elements of the 3-D tensor), never the whole
        // fused tensor in Float32: gpt-oss-120b's gate_up is 8.5 GB a layer.
        var gu = [Float](repeating: 0, count: h * 2 * size), dn = [Float](repeating: 0, count: size * h)
        return try (0..<e).map { x in
            try gu.withUnsafeMutableBufferPointer { buffer in
                guard let to = buffer.baseAddress else { return }
                try source.fill(gateUpName, [e, h, 2 * size], rows: (x * h * 2 * size)..<((x + 1) * h * 2 * size), into: to)
            }
            try dn.withUnsafeMutableBufferPointer { buffer in
                guard let to = buffer.baseAddress else { return }
                try source.fill(downName, [e, size, h], rows: (x * size * h)..<((x + 1) * size * h), into: to)
            }
            // Row j of [gate; up] is lane j mod size of gate (j < size) or up, over the inputs.
            let stacked = try loader.matrix(rows: 2 * size, cols: h) { j, out in
                let c = column(j % size, j / size)
                for input in 0..<h { out[input] = gu[input * 2 * size + c] }
            }
            let downT = try loader.matrix(rows: h, cols: size) { r, out in
                for i in 0..<size { out[i] = dn[i * h + r] }
            }
            guard biases else { return MLPWeights(gateUp: stacked, down: downT) }
            let bias = (0..<(2 * size)).map { gateUpBias[x * 2 * size + column($0 % size, $0 / size)] }
            return MLPWeights(gateUp: stacked, down: downT, gateUpBias: bias, downBias: Array(downBias[(x * h)..<((x + 1) * h)]))
        }
    }
}

/// Builds the weight matrices of a model in its CPU format.
///
/// On x86-64 (AVX-512 or AVX2 kernels) every matrix (the router aside) is repacked into panels (`PanelMatrix`):
/// the experts' small products no longer pay OpenBLAS's per-call repacking, decode streams one
/// panel at a time at full bandwidth, and the forward pass runs on TensorCore's threads alone.
/// A matrix is read a block of rows at a time into one small staging buffer, reused for every
/// matrix, and packed from there: no matrix ever exists in full in Float32 beside its packed form
/// (a whole-matrix staging buffer, the size of the output head, added a third to the peak memory of
/// small bf16 models). Elsewhere (aarch64, macOS) matrices stay row-major: f32 for OpenBLAS and
/// the small-batch kernels, bf16 pair-interleaved.
final class MatrixLoader {
    let source: WeightSource
    let format: CPUWeightFormat
    /// The panel kernel family, or nil for row-major matrices.
    let kernels: PanelMatrix.Kernels?
    /// Floats of the staging buffer: 4 MiB, or one row when rows are longer.
    static let stagingFloats = 1 << 20
    private var staging: UnsafeMutableBufferPointer<Float>

    init(source: WeightSource, format: CPUWeightFormat, kernels: PanelMatrix.Kernels?) {
        self.source = source
        self.format = format
        self.kernels = kernels
        staging = .allocate(capacity: kernels != nil ? MatrixLoader.stagingFloats : 1)
    }

    deinit { staging.deallocate() }

    var element: PanelMatrix.Element { format == .f32 ? .f32 : .bf16 }

    /// Matrices (name, shape) with the same columns stacked by rows into one weight.
    func matrix(_ parts: [(String, [Int])]) throws -> WeightMatrix {
        guard let kernels else { return try format.matrix(source.stacked(parts)) }
        guard let cols = parts.first?.1.last else { throw RuntimeError.unsupported("nothing to stack") }
        if staging.count < cols {
            staging.deallocate()
            staging = .allocate(capacity: cols)
        }
        // Row r of the stack is row r − start of the part that holds it.
        var starts: [Int] = [], start = 0
        for (_, shape) in parts { starts.append(start); start += shape[0] }
        let source = source
        return .panels(try PanelMatrix(rows: start, cols: cols, element: element, kernels: kernels, staging: staging) { rows, out in
            for (i, (name, shape)) in parts.enumerated() {
                let low = max(rows.lowerBound, starts[i]), high = min(rows.upperBound, starts[i] + shape[0])
                guard low < high else { continue }
                try source.fill(name, shape, rows: (low - starts[i])..<(high - starts[i]),
                                into: out + (low - rows.lowerBound) * cols)
            }
        })
    }

    /// A rows × cols matrix whose row r `fill(r, out)` writes (for checkpoints that store a
    /// matrix transposed or fused with others): packed a block of rows at a time like the others.
    func matrix(rows: Int, cols: Int, fill: (Int, UnsafeMutablePointer<Float>) -> Void) throws -> WeightMatrix {
        guard let kernels else {
            var t = try Tensor(zeros: [rows, cols])
            t.withUnsafeMutableBufferPointer { out in
                guard let base = out.baseAddress else { return }
                for r in 0..<rows { fill(r, base + r * cols) }
            }
            return try format.matrix(t)
        }
        if staging.count < cols {
            staging.deallocate()
            staging = .allocate(capacity: cols)
        }
        return .panels(try PanelMatrix(rows: rows, cols: cols, element: element, kernels: kernels, staging: staging) { block, out in
            for (i, r) in block.enumerated() { fill(r, out + i * cols) }
        })
    }
}
