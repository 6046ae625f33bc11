import ConfigFile

/// Qwen3-MoE and Qwen2-MoE: GQA (q/k norms in Qwen3, q/k/v biases in Qwen2), softmax top-k
/// routing, MoE every decoder_sparse_step except mlp_only_layers, Qwen2's gated shared expert;
/// sliding windows from max_window_layers on when use_sliding_window is set.
enum QwenMoE: Architecture {
    static let modelTypes = ["qwen3_moe", "qwen2_moe"]
    /// transformers 5 writes num_local_experts for num_experts.
    static let aliases = ["num_local_experts": "num_experts"]

    static func defaults(for modelType: String) -> [String: Any] { modelType == "qwen2_moe" ? qwen2Moe : qwen3Moe }

    static var qwen3Moe: [String: Any] { [
        "vocab_size": 151_936, "hidden_size": 2048, "intermediate_size": 6144, "num_hidden_layers": 24,
        "num_attention_heads": 32, "num_key_value_heads": 4, "head_dim": 128,
        "max_position_embeddings": 32768, "rms_norm_eps": 1e-6, "tie_word_embeddings": false,
        "rope_theta": 10000.0, "attention_bias": false, "use_sliding_window": false, "sliding_window": 4096,
        "max_window_layers": 28, "decoder_sparse_step": 1, "moe_intermediate_size": 768,
        "num_experts_per_tok": 8, "num_experts": 128, "norm_topk_prob": false, "mlp_only_layers": [Int](),
        "rope_scaling": NSNullMarker.none, "rope_parameters": NSNullMarker.none,
    ] }

    static var qwen2Moe: [String: Any] { [
        "vocab_size": 151_936, "hidden_size": 2048, "intermediate_size": 5632, "num_hidden_layers": 24,
        "num_attention_heads": 16, "num_key_value_heads": 16, "max_position_embeddings": 32768,
        "rms_norm_eps": 1e-6, "tie_word_embeddings": false, "rope_theta": 10000.0,
        "use_sliding_window": false, "sliding_window": 4096, "max_window_layers": 28,
        "decoder_sparse_step": 1, "moe_intermediate_size": 1408, "shared_expert_intermediate_size": 5632,
        "num_experts_per_tok": 4, "num_experts": 60, "norm_topk_prob": false, "mlp_only_layers": [Int](),
        "rope_scaling": NSNullMarker.none, "rope_parameters": NSNullMarker.none, "head_dim": NSNullMarker.none,
    ] }

    static func build(_ c: JSONObject, _ reader: ConfigReader, modelType: String, layerCount n: Int) throws -> ArchitectureParts {
        var p = ArchitectureParts()
        p.checkpointNames.sharedExpert = "shared_expert"
        let isQwen2 = modelType == "qwen2_moe"
        let gqa = try reader.groupedAttention(qkvBias: isQwen2 ? true : (try c.bool("attention_bias") ?? false), outputBias: false,
                                              qkNorm: !isQwen2, sinks: false)
        p.attention = .grouped(gqa)
        let intermediate = try reader.positive("intermediate_size")
        let span = try reader.qwenSpan()
        let step = try reader.positive("decoder_sparse_step")
        let denseOnly = Set(try c.intArray("mlp_only_layers") ?? [])
        let experts = try reader.positive("num_experts")
        p.layers = (0..<n).map { i in
            let isMoE = !denseOnly.contains(i) && (i + 1) % step == 0
            return Layer(span: span(i), feedForward: isMoE ? .moe : .dense(intermediateSize: intermediate), usesRoPE: true)
        }
        let sharedSize = isQwen2 ? try reader.nonNegative("shared_expert_intermediate_size") : 0
        p.moe = MixtureOfExperts(
            routedExperts: experts, expertsPerToken: try reader.positive("num_experts_per_tok"),
            expertIntermediateSize: try reader.positive("moe_intermediate_size"),
            sharedExperts: sharedSize > 0 ? 1 : 0, sharedIntermediateSize: sharedSize,
            sharedExpertGate: sharedSize > 0, scoring: .softmax,
            normalizeTopK: try c.bool("norm_topk_prob") ?? false, routedScalingFactor: 1,
            groups: 1, topKGroups: 1, correctionBias: false, routerBias: false, expertBias: false)
        p.rope = try reader.rope(rotaryDimension: gqa.headDim)
        return p
    }
}
