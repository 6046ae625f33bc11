import ConfigFile

/// DeepSeek-V3 and R1, Kimi K2 (and Kimi K2.5, whose multimodal wrapper holds a Kimi K2 body under
/// text_config): multi-head latent attention, sigmoid group-limited routing with a selection bias,
/// shared experts, dense first layers, MTP modules counted apart.
enum DeepSeekV3: Architecture {
    static let modelTypes = ["deepseek_v3", "kimi_k2", "kimi_k25"]

    static func textConfig(for modelType: String) -> Bool { modelType == "kimi_k25" }

    static func defaults(for modelType: String) -> [String: Any] { defaults }

    static var defaults: [String: Any] { [
        "vocab_size": 129_280, "hidden_size": 7168, "intermediate_size": 18432, "moe_intermediate_size": 2048,
        "num_hidden_layers": 61, "num_attention_heads": 128, "num_key_value_heads": 128,
        "n_shared_experts": 1, "n_routed_experts": 256, "routed_scaling_factor": 2.5,
        "kv_lora_rank": 512, "q_lora_rank": 1536, "qk_rope_head_dim": 64, "v_head_dim": 128,
        "qk_nope_head_dim": 128, "n_group": 8, "topk_group": 4, "num_experts_per_tok": 8,
        "first_k_dense_replace": 3, "moe_layer_freq": 1, "norm_topk_prob": true, "scoring_func": "sigmoid",
        "topk_method": "noaux_tc", "max_position_embeddings": 4096, "rms_norm_eps": 1e-6,
        "tie_word_embeddings": false, "rope_theta": 10000.0, "num_nextn_predict_layers": 0,
        "rope_scaling": NSNullMarker.none, "rope_parameters": NSNullMarker.none,
    ] }

    static func build(_ c: JSONObject, _ reader: ConfigReader, modelType: String, layerCount n: Int) throws -> ArchitectureParts {
        var p = ArchitectureParts()
        let mla = try reader.latentAttention()
        p.attention = .latent(mla)
        let firstDense = try reader.nonNegative("first_k_dense_replace")
        let frequency = try reader.positive("moe_layer_freq")
        guard firstDense <= n else {
            throw c.error("first_k_dense_replace", "must not exceed num_hidden_layers (\(n)), got \(firstDense)")
        }
        let intermediate = try reader.positive("intermediate_size")
        p.layers = (0..<n).map { i in
            Layer(span: .full,
                  feedForward: i >= firstDense && i % frequency == 0 ? .moe : .dense(intermediateSize: intermediate),
                  usesRoPE: true)
        }
        let experts = try reader.positive("n_routed_experts")
        let shared = try reader.nonNegative("n_shared_experts")
        let expertSize = try reader.positive("moe_intermediate_size")
        let scoringText = try c.requiredString("scoring_func")
        guard let scoring = MixtureOfExperts.Scoring(rawValue: scoringText) else {
            throw c.error("scoring_func", "must be \"sigmoid\" or \"softmax\", got \"\(scoringText)\"")
        }
        p.moe = MixtureOfExperts(
            routedExperts: experts, expertsPerToken: try reader.positive("num_experts_per_tok"),
            expertIntermediateSize: expertSize, sharedExperts: shared, sharedIntermediateSize: shared * expertSize,
            sharedExpertGate: false, scoring: scoring, normalizeTopK: try c.bool("norm_topk_prob") ?? true,
            routedScalingFactor: try reader.positiveDouble("routed_scaling_factor"),
            groups: try reader.positive("n_group"), topKGroups: try reader.positive("topk_group"),
            correctionBias: try c.string("topk_method") == "noaux_tc", routerBias: false, expertBias: false)
        p.rope = try reader.rope(rotaryDimension: mla.qkRopeHeadDim)
        p.mtpModules = try reader.nonNegative("num_nextn_predict_layers")
        // Kimi K2.5's checkpoint keeps its language model under `language_model.`
        // (`language_model.model.layers.N…`, `language_model.lm_head`), beside the vision tower.
        if modelType == "kimi_k25" { p.checkpointNames.prefix = "language_model." }
        return p
    }
}
