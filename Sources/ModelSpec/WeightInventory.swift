/// Every weight tensor of the model, grouped by what it belongs to. Parameter counts and weight
/// bytes in every format are sums over this one list, so they cannot disagree.
public struct WeightTensor: Sendable, Equatable {
    public enum Category: String, Sendable, CaseIterable {
        case embeddings, head, attention, denseFFN = "dense_ffn", routedExperts = "routed_experts",
             sharedExperts = "shared_experts", router, norms, mtp
    }

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

    public var parameters: Int { rows * cols * copies }
}

extension ModelSpec {
    /// The weight tensors of the main model, plus the MTP modules under category `.mtp`.
    public var weightTensors: [WeightTensor] {
        var list: [WeightTensor] = []
        let h = hiddenSize
        func matrix(_ name: String, _ rows: Int, _ cols: Int, _ copies: Int, _ category: WeightTensor.Category) {
            guard copies > 0, rows > 0, cols > 0 else { return }
            list.append(WeightTensor(name: name, rows: rows, cols: cols, copies: copies, category: category, quantizable: true))
        }
        func vector(_ name: String, _ count: Int, _ copies: Int, _ category: WeightTensor.Category) {
            guard copies > 0, count > 0 else { return }
            list.append(WeightTensor(name: name, rows: 1, cols: count, copies: copies, category: category, quantizable: false))
        }

        list.append(WeightTensor(name: "embed_tokens", rows: vocabSize, cols: h, copies: 1, category: .embeddings, quantizable: false))
        if !tiedEmbeddings {
            list.append(WeightTensor(name: "lm_head", rows: vocabSize, cols: h, copies: 1, category: .head, quantizable: false))
        }
        vector("norm", h, 1, .norms)

        let n = layerCount
        vector("input_layernorm", h, n, .norms)
        vector("post_attention_layernorm", h, n, .norms)
        appendAttention(copies: n, category: .attention, matrix: matrix, vector: vector)

        var denseSizes: [Int: Int] = [:]
        for layer in layers { if case let .dense(size) = layer.feedForward { denseSizes[size, default: 0] += 1 } }
        for (size, count) in denseSizes.sorted(by: { $0.key < $1.key }) {
            matrix("mlp.gate_proj", size, h, count, .denseFFN)
            matrix("mlp.up_proj", size, h, count, .denseFFN)
            matrix("mlp.down_proj", h, size, count, .denseFFN)
        }
        if let moe {
            appendExperts(moe, copies: moeLayerCount, mtp: false, matrix: matrix, vector: vector)
        }
        if mtpModules > 0 {
            // DeepSeek-V3's MTP module: enorm, hnorm, eh_proj (2h → h), one MoE decoder layer and
            // the shared head's norm; it reuses the main embedding and output head.
            let m = mtpModules
            vector("mtp.enorm", h, m, .mtp)
            vector("mtp.hnorm", h, m, .mtp)
            vector("mtp.shared_head.norm", h, m, .mtp)
            list.append(WeightTensor(name: "mtp.eh_proj", rows: h, cols: 2 * h, copies: m, category: .mtp, quantizable: true))
            vector("mtp.input_layernorm", h, m, .mtp)
            vector("mtp.post_attention_layernorm", h, m, .mtp)
            appendAttention(copies: m, category: .mtp, matrix: matrix, vector: vector)
            if let moe { appendExperts(moe, copies: m, mtp: true, matrix: matrix, vector: vector) }
        }
        return list
    }

    private func appendAttention(copies n: Int, category: WeightTensor.Category,
                                 matrix: (String, Int, Int, Int, WeightTensor.Category) -> Void,
                                 vector: (String, Int, Int, WeightTensor.Category) -> Void) {
        let h = hiddenSize
        switch attention {
        case let .grouped(a):
            let q = a.heads * a.headDim, kv = a.kvHeads * a.headDim
            matrix("self_attn.q_proj", q, h, n, category)
            matrix("self_attn.k_proj", kv, h, n, category)
            matrix("self_attn.v_proj", kv, h, n, category)
            matrix("self_attn.o_proj", h, q, n, category)
            if a.qkvBias {
                vector("self_attn.q_proj.bias", q, n, category)
                vector("self_attn.k_proj.bias", kv, n, category)
                vector("self_attn.v_proj.bias", kv, n, category)
            }
            if a.outputBias { vector("self_attn.o_proj.bias", h, n, category) }
            if a.qkNorm {
                vector("self_attn.q_norm", a.headDim, n, category)
                vector("self_attn.k_norm", a.headDim, n, category)
            }
            if a.sinks { vector("self_attn.sinks", a.heads, n, category) }
        case let .latent(a):
            if let rank = a.qLoraRank {
                matrix("self_attn.q_a_proj", rank, h, n, category)
                vector("self_attn.q_a_layernorm", rank, n, category)
                matrix("self_attn.q_b_proj", a.heads * a.qkHeadDim, rank, n, category)
            } else {
                matrix("self_attn.q_proj", a.heads * a.qkHeadDim, h, n, category)
            }
            matrix("self_attn.kv_a_proj_with_mqa", a.kvLoraRank + a.qkRopeHeadDim, h, n, category)
            vector("self_attn.kv_a_layernorm", a.kvLoraRank, n, category)
            matrix("self_attn.kv_b_proj", a.heads * (a.qkNopeHeadDim + a.vHeadDim), a.kvLoraRank, n, category)
            matrix("self_attn.o_proj", h, a.heads * a.vHeadDim, n, category)
        }
    }

    func appendExperts(_ moe: MixtureOfExperts, copies n: Int, mtp: Bool,
                               matrix: (String, Int, Int, Int, WeightTensor.Category) -> Void,
                               vector: (String, Int, Int, WeightTensor.Category) -> Void) {
        let h = hiddenSize, e = moe.routedExperts, size = moe.expertIntermediateSize
        let routed: WeightTensor.Category = mtp ? .mtp : .routedExperts
        let shared: WeightTensor.Category = mtp ? .mtp : .sharedExperts
        let router: WeightTensor.Category = mtp ? .mtp : .router
        // The router is hidden → E logits; it stays bf16 in every format.
        vector("mlp.gate (router, E × hidden)", e * h, n, router)
        if moe.correctionBias { vector("mlp.gate.e_score_correction_bias", e, n, router) }
        if moe.routerBias { vector("mlp.router.bias", e, n, router) }
        matrix("mlp.experts.gate_proj", size, h, n * e, routed)
        matrix("mlp.experts.up_proj", size, h, n * e, routed)
        matrix("mlp.experts.down_proj", h, size, n * e, routed)
        if moe.expertBias {
            vector("mlp.experts.gate_up_proj_bias", 2 * size, n * e, routed)
            vector("mlp.experts.down_proj_bias", h, n * e, routed)
        }
        if moe.sharedIntermediateSize > 0 {
            matrix("mlp.shared_experts.gate_proj", moe.sharedIntermediateSize, h, n, shared)
            matrix("mlp.shared_experts.up_proj", moe.sharedIntermediateSize, h, n, shared)
            matrix("mlp.shared_experts.down_proj", h, moe.sharedIntermediateSize, n, shared)
        }
        if moe.sharedExpertGate { vector("mlp.shared_expert_gate", h, n, shared) }
    }
}
