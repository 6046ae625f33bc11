import ConfigFile

/// Llama 4 (text model under text_config): chunked attention with global NoPE layers every
/// no_rope_layer_interval, MoE every interleave_moe_layer_step with one shared expert, sigmoid top-1.
enum Llama4: Architecture {
    static let modelTypes = ["llama4"]
    static func textConfig(for modelType: String) -> Bool { true }
    static func defaults(for modelType: String) -> [String: Any] { defaults }

    static var defaults: [String: Any] { [
        "vocab_size": 202_048, "hidden_size": 5120, "intermediate_size": 8192, "intermediate_size_mlp": 16384,
        "num_hidden_layers": 48, "num_attention_heads": 40, "num_key_value_heads": 8, "head_dim": 128,
        "max_position_embeddings": 131_072, "rms_norm_eps": 1e-5, "rope_theta": 500_000.0,
        "num_experts_per_tok": 1, "num_local_experts": 16, "interleave_moe_layer_step": 1,
        "use_qk_norm": true, "attention_chunk_size": 8192, "no_rope_layer_interval": 4,
        "tie_word_embeddings": false, "rope_scaling": NSNullMarker.none, "rope_parameters": NSNullMarker.none,
    ] }

    static func build(_ c: JSONObject, _ reader: ConfigReader, modelType: String, layerCount n: Int) throws -> ArchitectureParts {
        var p = ArchitectureParts()
        let gqa = try reader.groupedAttention(qkvBias: false, outputBias: false, qkNorm: false, sinks: false)
        p.attention = .grouped(gqa)
        let step = try reader.positive("interleave_moe_layer_step")
        let chunk = try reader.positive("attention_chunk_size")
        let noRopeInterval = try reader.positive("no_rope_layer_interval")
        let denseSize = try reader.positive("intermediate_size_mlp")
        let expertSize = try reader.positive("intermediate_size")
        // transformers: MoE layers are step-1, 2·step-1, …; every no_rope_layer_interval-th
        // layer is a global NoPE layer, the others use RoPE within chunks.
        p.layers = (0..<n).map { i in
            let global = (i + 1) % noRopeInterval == 0
            return Layer(span: global ? .full : .chunked(chunk),
                         feedForward: (i + 1) % step == 0 ? .moe : .dense(intermediateSize: denseSize),
                         usesRoPE: !global)
        }
        p.moe = MixtureOfExperts(
            routedExperts: try reader.positive("num_local_experts"),
            expertsPerToken: try reader.positive("num_experts_per_tok"),
            expertIntermediateSize: expertSize, sharedExperts: 1, sharedIntermediateSize: expertSize,
            sharedExpertGate: false, scoring: .sigmoid, normalizeTopK: false, routedScalingFactor: 1,
            groups: 1, topKGroups: 1, correctionBias: false, routerBias: false, expertBias: false)
        p.rope = try reader.rope(rotaryDimension: gqa.headDim)
        return p
    }
}
