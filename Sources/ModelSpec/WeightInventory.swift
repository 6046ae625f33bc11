/// Every weight tensor of the model, grouped by what it belongs to. Parameter counts and weight
/// bytes in every format are sums over this one list, so they cannot disagree.
public struct WeightTensor: Sendable, Equatable {
    public enum Category: String, Sendable, CaseIterable {
        case embeddings, head, attention, denseFFN = "dense_ffn", routedExperts = "routed_experts",
             sharedExperts = "shared_experts", router, norms, mtp
    }

    /// How tensor parallelism cuts an attention tensor over the tp GPUs of a group (vLLM's and
    /// SGLang's sharding): by query heads, by KV heads (replicated past their count), or not at all
    /// (MLA's and the indexer's down-projections, norms).
    public enum Split: String, Sendable, Equatable { case heads, kvHeads, replicated }

    public var name: String
    /// Matrix shape (rows = output features, cols = input features); vectors have rows = 1.
    public var rows: Int
    public var cols: Int
    /// How many copies exist in the whole model (layers × experts, …).
    public var copies: Int
    public var category: Category
    /// Linear-layer weights that the quantized formats store in fewer bits. Embeddings, head,
    /// norms, router and biases stay bf16 (DeepSeek's and NVIDIA's published checkpoints do the
    /// same for their fp8 and fp4 releases).
    public var quantizable: Bool
    public var split: Split = .heads
    /// A checkpoint tensor that transformers registers as a buffer, not a parameter (DeepSeek's
    /// e_score_correction_bias): in moesim's totals (the checkpoint convention), not in
    /// transformers' `num_parameters()`.
    public var transformersBuffer = false

    public init(name: String, rows: Int, cols: Int, copies: Int, category: Category, quantizable: Bool,
                split: Split = .heads, transformersBuffer: Bool = false) {
        self.name = name
        self.rows = rows
        self.cols = cols
        self.copies = copies
        self.category = category
        self.quantizable = quantizable
        self.split = split
        self.transformersBuffer = transformersBuffer
    }

    public var parameters: Int { rows * cols * copies }

    /// An attention output projection (`o_proj`; DeepSeek-V4's `o_a_proj` and `o_b_proj`; Gated
    /// DeltaNet's `linear_attn.out_proj`): the matrices `ModelSpec.attentionOutputQuantized`
    /// keeps in the model's format (the step's counterpart: `ModelSpec.isAttentionOutput`).
    public var isAttentionOutput: Bool { quantizable && (name.hasPrefix("self_attn.o_") || name == "linear_attn.out_proj") }
}

extension ModelSpec {
    /// The weight tensors of the main model, plus the MTP modules under category `.mtp`.
    public var weightTensors: [WeightTensor] {
        var list: [WeightTensor] = []
        let h = hiddenSize
        func matrix(_ name: String, _ rows: Int, _ cols: Int, _ copies: Int, _ category: WeightTensor.Category,
                    _ split: WeightTensor.Split) {
            guard copies > 0, rows > 0, cols > 0 else { return }
            list.append(WeightTensor(name: name, rows: rows, cols: cols, copies: copies, category: category, quantizable: true,
                                     split: split))
        }
        func vector(_ name: String, _ count: Int, _ copies: Int, _ category: WeightTensor.Category, _ split: WeightTensor.Split) {
            guard copies > 0, count > 0 else { return }
            list.append(WeightTensor(name: name, rows: 1, cols: count, copies: copies, category: category, quantizable: false,
                                     split: split))
        }

        list.append(WeightTensor(name: "embed_tokens", rows: vocabSize, cols: h, copies: 1, category: .embeddings, quantizable: false))
        if !tiedEmbeddings {
            list.append(WeightTensor(name: "lm_head", rows: vocabSize, cols: h, copies: 1, category: .head, quantizable: false))
        }
        vector("norm", h, 1, .norms, .replicated)

        let n = layerCount
        vector("input_layernorm", h, n, .norms, .replicated)
        vector("post_attention_layernorm", h, n, .norms, .replicated)
        let sliding = slidingAttention == nil ? 0 : layers.filter {
            if $0.mixer == .attention, case .slidingWindow = $0.span { true } else { false }
        }.count
        appendAttention(attention, copies: attentionLayerCount - sliding, category: .attention, matrix: matrix, vector: vector)
        if let variant = slidingAttention {
            appendAttention(.grouped(variant), copies: sliding, category: .attention, matrix: matrix, vector: vector)
        }
        if let sparse = sparseAttention { appendIndexer(sparse, copies: layers.filter(\.indexer).count, matrix: matrix, vector: vector) }
        if let linear = linearAttention { appendLinearAttention(linear, copies: linearLayerCount, matrix: matrix, vector: vector) }

        var denseSizes: [Int: Int] = [:]
        for layer in layers { if case let .dense(size) = layer.feedForward { denseSizes[size, default: 0] += 1 } }
        for (size, count) in denseSizes.sorted(by: { $0.key < $1.key }) {
            let block = checkpointNames.denseBlock
            matrix("\(block).gate_proj", size, h, count, .denseFFN, .heads)
            matrix("\(block).up_proj", size, h, count, .denseFFN, .heads)
            matrix("\(block).down_proj", h, size, count, .denseFFN, .heads)
        }
        if let moe {
            appendExperts(moe, copies: moeLayerCount, mtp: false, matrix: matrix, vector: vector)
        }
        if mtpModules > 0 {
            // DeepSeek-V3's MTP module: enorm, hnorm, eh_proj (2h → h), one MoE decoder layer and
            // the shared head's norm; it reuses the main embedding and output head.
            let m = mtpModules
            vector("mtp.enorm", h, m, .mtp, .replicated)
            vector("mtp.hnorm", h, m, .mtp, .replicated)
            vector("mtp.shared_head.norm", h, m, .mtp, .replicated)
            list.append(WeightTensor(name: "mtp.eh_proj", rows: h, cols: 2 * h, copies: m, category: .mtp, quantizable: true))
            vector("mtp.input_layernorm", h, m, .mtp, .replicated)
            vector("mtp.post_attention_layernorm", h, m, .mtp, .replicated)
            appendAttention(attention, copies: m, category: .mtp, matrix: matrix, vector: vector)
            if let sparse = sparseAttention { appendIndexer(sparse, copies: m, category: .mtp, matrix: matrix, vector: vector) }
            if let moe { appendExperts(moe, copies: m, mtp: true, matrix: matrix, vector: vector) }
        }
        // DeepSeek-V4's hyper-connections: per layer two maps of (2 + hc)·hc outputs over
        // hc·hidden inputs with a bias and 3 scales; at the end one head of hc outputs (fp32,
        // unquantized). Kimi K3's attention residuals: a norm and a 1 × hidden projection before
        // each block, and once more at the output.
        if let hc = hyperConnections?.streams {
            list.append(WeightTensor(name: "hyper-connections (attn_hc, ffn_hc)", rows: 1,
                                     cols: 2 * ((2 + hc) * hc * hc * h + (2 + hc) * hc + 3), copies: layerCount, category: .norms,
                                     quantizable: false, split: .replicated))
            list.append(WeightTensor(name: "hc_head", rows: 1, cols: hc * hc * h + hc + 1, copies: 1, category: .norms,
                                     quantizable: false, split: .replicated))
        }
        if attentionResidualBlock != nil {
            list.append(WeightTensor(name: "attention residuals (norms and projections, 4 × hidden per layer)", rows: 1, cols: 4 * h,
                                     copies: layerCount, category: .norms, quantizable: false, split: .replicated))
            list.append(WeightTensor(name: "output attention residual (norm and projection)", rows: 1, cols: 2 * h, copies: 1,
                                     category: .norms, quantizable: false, split: .replicated))
        }
        // transformers keeps DeepSeek's selection bias as a buffer (see `transformersBuffer`).
        for i in list.indices where list[i].name == Self.correctionBias { list[i].transformersBuffer = true }
        return list
    }

    static let correctionBias = "mlp.gate.e_score_correction_bias"

    /// Parameters as transformers counts them (`num_parameters()` of the causal LM): buffers out.
    public var transformersParameterCount: Int {
        weightTensors.filter { $0.category != .mtp && !$0.transformersBuffer }.reduce(0) { $0 + $1.parameters }
    }

    typealias MatrixSink = (String, Int, Int, Int, WeightTensor.Category, WeightTensor.Split) -> Void
    typealias VectorSink = (String, Int, Int, WeightTensor.Category, WeightTensor.Split) -> Void

    /// DeepSeek sparse attention's lightning indexer: queries from the query latent, one key per
    /// token (LayerNorm with bias), per-head weights; replicated under tensor parallelism.
    private func appendIndexer(_ x: SparseAttention, copies n: Int, category: WeightTensor.Category = .attention,
                               matrix: MatrixSink, vector: VectorSink) {
        let h = hiddenSize
        matrix("self_attn.indexer.wq_b", x.heads * x.headDim, x.queryRank, n, category, .replicated)
        matrix("self_attn.indexer.wk", x.headDim, h, n, category, .replicated)
        vector("self_attn.indexer.k_norm (weight, bias)", 2 * x.headDim, n, category, .replicated)
        vector("self_attn.indexer.weights_proj (heads × hidden)", x.heads * h, n, category, .replicated)
    }

    /// Gated DeltaNet or Kimi Delta Attention: projections cut by heads, the short convolution,
    /// the decay and gate parameters, the gated output norm.
    private func appendLinearAttention(_ a: LinearAttention, copies n: Int, matrix: MatrixSink, vector: VectorSink) {
        let h = hiddenSize
        switch a.kind {
        case .gatedDeltaNet:
            let key = a.keyHeads * a.keyHeadDim, value = a.valueHeads * a.valueHeadDim
            matrix("linear_attn.in_proj_qkv", 2 * key + value, h, n, .attention, .heads)
            matrix("linear_attn.in_proj_z", value, h, n, .attention, .heads)
            vector("linear_attn.in_proj_b, in_proj_a (2 × value heads × hidden)", 2 * a.valueHeads * h, n, .attention, .heads)
            vector("linear_attn.conv1d", a.convChannels * a.convKernel, n, .attention, .heads)
            vector("linear_attn.dt_bias, A_log", 2 * a.valueHeads, n, .attention, .heads)
            vector("linear_attn.norm", a.valueHeadDim, n, .attention, .replicated)
            matrix("linear_attn.out_proj", h, value, n, .attention, .heads)
        case .kimiDelta:
            let p = a.valueHeads * a.valueHeadDim, d = a.keyHeadDim
            matrix("self_attn.q_proj, k_proj, v_proj", 3 * p, h, n, .attention, .heads)
            vector("self_attn.conv1d (q, k, v)", a.convChannels * a.convKernel, n, .attention, .heads)
            matrix("self_attn.f_a_proj", d, h, n, .attention, .replicated)
            matrix("self_attn.f_b_proj", p, d, n, .attention, .heads)
            vector("self_attn.dt_bias", p, n, .attention, .heads)
            vector("self_attn.A_log", a.valueHeads, n, .attention, .heads)
            vector("self_attn.b_proj (heads × hidden)", a.valueHeads * h, n, .attention, .heads)
            if a.fullRankOutputGate {
                matrix("self_attn.g_proj", p, h, n, .attention, .heads)
            } else {
                matrix("self_attn.g_a_proj", d, h, n, .attention, .replicated)
                matrix("self_attn.g_b_proj", p, d, n, .attention, .heads)
            }
            vector("self_attn.o_norm", d, n, .attention, .replicated)
            matrix("self_attn.o_proj", h, p, n, .attention, .heads)
        }
    }

    private func appendAttention(_ attention: Attention, copies n: Int, category: WeightTensor.Category, matrix: MatrixSink,
                                 vector: VectorSink) {
        let h = hiddenSize
        switch attention {
        case let .grouped(a):
            let q = a.heads * a.headDim, kv = a.kvHeads * a.headDim, v = a.kvHeads * a.vDim, out = a.heads * a.vDim
            matrix("self_attn.q_proj", a.outputGate ? 2 * q : q, h, n, category, .heads)
            matrix("self_attn.k_proj", kv, h, n, category, .kvHeads)
            matrix("self_attn.v_proj", v, h, n, category, .kvHeads)
            matrix("self_attn.o_proj", h, out, n, category, .heads)
            if a.qkvBias {
                vector("self_attn.q_proj.bias", q, n, category, .heads)
                vector("self_attn.k_proj.bias", kv, n, category, .kvHeads)
                vector("self_attn.v_proj.bias", v, n, category, .kvHeads)
            }
            if a.outputBias { vector("self_attn.o_proj.bias", h, n, category, .heads) }
            if a.qkNorm {
                vector("self_attn.q_norm", a.qkNormOverAllHeads ? q : a.headDim, n, category, .replicated)
                vector("self_attn.k_norm", a.qkNormOverAllHeads ? kv : a.headDim, n, category, .replicated)
            }
            if a.sinks { vector("self_attn.\(checkpointNames.attentionSinks)", a.heads, n, category, .heads) }
        case let .latent(a):
            if let rank = a.qLoraRank {
                matrix("self_attn.q_a_proj", rank, h, n, category, .replicated)
                vector("self_attn.q_a_layernorm", rank, n, category, .replicated)
                matrix("self_attn.q_b_proj", a.heads * a.qkHeadDim, rank, n, category, .heads)
            } else {
                matrix("self_attn.q_proj", a.heads * a.qkHeadDim, h, n, category, .heads)
            }
            matrix("self_attn.kv_a_proj_with_mqa", a.kvLoraRank + a.qkRopeHeadDim, h, n, category, .replicated)
            vector("self_attn.kv_a_layernorm", a.kvLoraRank, n, category, .replicated)
            matrix("self_attn.kv_b_proj", a.heads * (a.qkNopeHeadDim + a.vHeadDim), a.kvLoraRank, n, category, .heads)
            if a.outputGate { matrix("self_attn.g_proj", a.heads * a.vHeadDim, h, n, category, .heads) }
            matrix("self_attn.o_proj", h, a.heads * a.vHeadDim, n, category, .heads)
        case let .compressed(a):
            appendCompressedAttention(a, copies: n, category: category, matrix: matrix, vector: vector)
        }
    }

    /// DeepSeek-V4: every layer's query, key-value and output projections and sinks; the
    /// compressors of CSA and HCA layers and the CSA layers' indexer (kept in bf16 and fp32 by the
    /// checkpoint, so not quantizable here: stored as vectors).
    private func appendCompressedAttention(_ a: CompressedAttention, copies n: Int, category: WeightTensor.Category,
                                           matrix: MatrixSink, vector: VectorSink) {
        let h = hiddenSize
        let mtp = category == .mtp
        vector("self_attn.\(checkpointNames.attentionSinks)", a.heads, n, category, .heads)
        matrix("self_attn.q_a_proj", a.queryRank, h, n, category, .replicated)
        vector("self_attn.q_a_norm", a.queryRank, n, category, .replicated)
        matrix("self_attn.q_b_proj", a.heads * a.headDim, a.queryRank, n, category, .heads)
        matrix("self_attn.kv_proj", a.headDim, h, n, category, .replicated)
        vector("self_attn.kv_norm", a.headDim, n, category, .replicated)
        matrix("self_attn.o_a_proj (grouped)", a.outputGroups * a.outputRank, a.heads * a.headDim / max(a.outputGroups, 1), n,
               category, .heads)
        // Row-parallel like o_proj: its input, the grouped down-projection's output, is split
        // over the ranks with the heads (DeepSeek's reference `wo_b` is a RowParallelLinear).
        matrix("self_attn.o_b_proj", h, a.outputGroups * a.outputRank, n, category, .heads)
        guard !mtp else { return }
        let csa = layers.filter { if case let .compressed(r, _) = $0.span { r == a.sparseRatio } else { false } }.count
        let hca = layers.filter { if case let .compressed(r, _) = $0.span { r == a.heavyRatio } else { false } }.count
        let hd = a.headDim, x = a.indexer
        vector("self_attn.compressor (HCA: position bias, kv, gate, norm)", a.heavyRatio * hd + 2 * hd * h + hd, hca, category, .replicated)
        vector("self_attn.compressor (CSA: position bias, kv, gate, norm)", a.sparseRatio * 2 * hd + 2 * 2 * hd * h + hd, csa,
               category, .replicated)
        vector("self_attn.compressor.indexer (position bias, kv, gate, norm)", a.sparseRatio * 2 * x.headDim + 2 * 2 * x.headDim * h
               + x.headDim, csa, category, .replicated)
        matrix("self_attn.compressor.indexer.q_b_proj", x.heads * x.headDim, x.queryRank, csa, category, .replicated)
        vector("self_attn.compressor.indexer.weights_proj (heads × hidden)", x.heads * h, csa, category, .replicated)
    }

    func appendExperts(_ moe: MixtureOfExperts, copies n: Int, mtp: Bool, matrix: MatrixSink, vector: VectorSink) {
        let h = hiddenSize, e = moe.routedExperts, size = moe.expertIntermediateSize, w = moe.expertWidth(hidden: h)
        let routed: WeightTensor.Category = mtp ? .mtp : .routedExperts
        let shared: WeightTensor.Category = mtp ? .mtp : .sharedExperts
        let router: WeightTensor.Category = mtp ? .mtp : .router
        // The router is hidden → E logits; it stays bf16 in every format.
        // Named after the checkpoint's blocks (the loader reads the same `checkpointNames`; fused
        // experts are listed by projection, and the selection bias keeps DeepSeek's name).
        let names = checkpointNames, block = names.moeBlock, projections = names.expertProjections
        vector("\(block).\(names.router) (router, E × hidden)", e * h, n, router, .replicated)
        if moe.correctionBias { vector(Self.correctionBias, e, n, router, .replicated) }
        if moe.routerBias { vector("\(block).\(names.router).bias", e, n, router, .replicated) }
        if let latent = moe.latentSize {
            // LatentMoE: into the experts' width and back, once per layer (not per expert).
            matrix("\(block).routed_expert_down_proj", latent, h, n, shared, .replicated)
            matrix("\(block).routed_expert_up_proj", h, latent, n, shared, .replicated)
            if moe.latentNorm { vector("\(block).routed_expert_norm", latent, n, shared, .replicated) }
        }
        matrix("\(block).experts.\(projections.gate)", size, w, n * e, routed, .heads)
        matrix("\(block).experts.\(projections.up)", size, w, n * e, routed, .heads)
        matrix("\(block).experts.\(projections.down)", w, size, n * e, routed, .heads)
        if moe.expertBias {
            vector("\(block).experts.gate_up_proj_bias", 2 * size, n * e, routed, .heads)
            vector("\(block).experts.down_proj_bias", w, n * e, routed, .heads)
        }
        if moe.sharedIntermediateSize > 0 {
            matrix("\(block).\(names.sharedExpert).gate_proj", moe.sharedIntermediateSize, h, n, shared, .heads)
            matrix("\(block).\(names.sharedExpert).up_proj", moe.sharedIntermediateSize, h, n, shared, .heads)
            matrix("\(block).\(names.sharedExpert).down_proj", h, moe.sharedIntermediateSize, n, shared, .heads)
        }
        if moe.sharedExpertGate { vector("\(block).shared_expert_gate", h, n, shared, .replicated) }
    }
}
