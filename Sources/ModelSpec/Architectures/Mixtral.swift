import ConfigFile

/// Mixtral: GQA on every layer (sliding when sliding_window is set), every layer MoE with softmax
/// top-k over the local experts.
enum Mixtral: Architecture {
    static let modelTypes = ["mixtral"]

    static func defaults(for modelType: String) -> [String: Any] { defaults }

    static var defaults: [String: Any] { [
        "vocab_size": 32000, "hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32,
        "num_attention_heads": 32, "num_key_value_heads": 8, "max_position_embeddings": 131_072,
        "rms_norm_eps": 1e-5, "tie_word_embeddings": false, "rope_theta": 1e6, "num_experts_per_tok": 2,
        "num_local_experts": 8, "sliding_window": NSNullMarker.none, "head_dim": NSNullMarker.none,
        "rope_scaling": NSNullMarker.none, "rope_parameters": NSNullMarker.none,
    ] }

    static func build(_ c: JSONObject, _ reader: ConfigReader, modelType: String, layerCount n: Int) throws -> ArchitectureParts {
        var p = ArchitectureParts()
        p.checkpointNames.moeBlock = "block_sparse_moe"
        p.checkpointNames.expertProjections = .init(gate: "w1", up: "w3", down: "w2")
        let gqa = try reader.groupedAttention(qkvBias: try c.bool("attention_bias") ?? false, outputBias: false, qkNorm: false,
                                              sinks: false)
        p.attention = .grouped(gqa)
        var span = Layer.Span.full
        if c.has("sliding_window") { span = .slidingWindow(try reader.positive("sliding_window")) }
        p.layers = (0..<n).map { _ in Layer(span: span, feedForward: .moe, usesRoPE: true) }
        p.moe = MixtureOfExperts(
            routedExperts: try reader.positive("num_local_experts"), expertsPerToken: try reader.positive("num_experts_per_tok"),
            expertIntermediateSize: try reader.positive("intermediate_size"), sharedExperts: 0, sharedIntermediateSize: 0,
            sharedExpertGate: false, scoring: .softmax, normalizeTopK: true, routedScalingFactor: 1,
            groups: 1, topKGroups: 1, correctionBias: false, routerBias: false, expertBias: false)
        p.rope = try reader.rope(rotaryDimension: gqa.headDim)
        return p
    }
}
