import ConfigFile

/// GLM-4.5/4.6/4.7 (`glm4_moe`): GQA with optional q/k/v biases and per-head q/k norms, rotary on
/// half of each head; dense first layers, then MoE with sigmoid scores, a selection bias and
/// shared experts. `head_dim` is not a declared field: hidden_size / heads unless the file gives it.
enum Glm4Moe: Architecture {
    static let modelTypes = ["glm4_moe"]
    static let aliases = ["num_local_experts": "n_routed_experts", "num_mtp_layers": "num_nextn_predict_layers"]

    static func defaults(for modelType: String) -> [String: Any] { [
        "vocab_size": 151_552, "hidden_size": 4096, "intermediate_size": 10944, "num_hidden_layers": 46,
        "num_attention_heads": 96, "num_key_value_heads": 8, "head_dim": NSNullMarker.none, "attention_bias": false,
        "use_qk_norm": false, "moe_intermediate_size": 1408, "n_routed_experts": 128, "num_experts_per_tok": 8,
        "n_shared_experts": 1, "routed_scaling_factor": 1.0, "n_group": 1, "topk_group": 1, "first_k_dense_replace": 1,
        "norm_topk_prob": true, "rms_norm_eps": 1e-5, "tie_word_embeddings": false, "max_position_embeddings": 131_072,
        "partial_rotary_factor": 0.5, "num_nextn_predict_layers": 0, "rope_theta": 10000.0,
        "rope_scaling": NSNullMarker.none, "rope_parameters": NSNullMarker.none,
    ] }

    static func build(_ c: JSONObject, _ reader: ConfigReader, modelType: String, layerCount n: Int) throws -> ArchitectureParts {
        var p = ArchitectureParts()
        let gqa = try reader.groupedAttention(qkvBias: try c.bool("attention_bias") ?? false, outputBias: false,
                                              qkNorm: try c.bool("use_qk_norm") ?? false, sinks: false)
        p.attention = .grouped(gqa)
        let dense = try reader.positive("intermediate_size"), first = min(try reader.nonNegative("first_k_dense_replace"), n)
        p.layers = (0..<n).map { Layer(span: .full, feedForward: $0 < first ? .dense(intermediateSize: dense) : .moe, usesRoPE: true) }
        p.moe = try reader.deepSeekMoE()
        p.rope = try reader.rope(rotaryDimension: try reader.partialRotary(headDim: gqa.headDim))
        p.mtpModules = try reader.nonNegative("num_nextn_predict_layers")
        return p
    }
}
