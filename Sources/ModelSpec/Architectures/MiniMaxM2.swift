import ConfigFile

/// MiniMax-M2 (`minimax_m2`): GQA on every layer with q/k RMSNorm over the whole projections and
/// rotary on `rotary_dim` lanes of each head; every layer MoE, sigmoid scores with a selection
/// bias, no shared experts (`intermediate_size` is each expert's width).
enum MiniMaxM2: Architecture {
    static let modelTypes = ["minimax_m2"]
    static let aliases = ["num_experts": "num_local_experts"]

    static func defaults(for modelType: String) -> [String: Any] { [
        "vocab_size": 200_064, "hidden_size": 3072, "intermediate_size": 1536, "num_hidden_layers": 62,
        "num_attention_heads": 48, "num_key_value_heads": 8, "head_dim": 128, "num_local_experts": 256,
        "num_experts_per_tok": 8, "rms_norm_eps": 1e-6, "tie_word_embeddings": false, "max_position_embeddings": 196_608,
        "rotary_dim": NSNullMarker.none, "rope_theta": 5_000_000.0,
        "rope_scaling": NSNullMarker.none, "rope_parameters": NSNullMarker.none,
    ] }

    static func build(_ c: JSONObject, _ reader: ConfigReader, modelType: String, layerCount n: Int) throws -> ArchitectureParts {
        var p = ArchitectureParts()
        // Mixtral's names; the selection bias on the MoE block.
        p.checkpointNames.moeBlock = "block_sparse_moe"
        p.checkpointNames.expertProjections = .init(gate: "w1", up: "w3", down: "w2")
        p.checkpointNames.correctionBiasOnBlock = true
        var gqa = try reader.groupedAttention(qkvBias: false, outputBias: false, qkNorm: true, sinks: false)
        gqa.qkNormOverAllHeads = true
        p.attention = .grouped(gqa)
        p.layers = (0..<n).map { _ in Layer(span: .full, feedForward: .moe, usesRoPE: true) }
        p.moe = MixtureOfExperts(
            routedExperts: try reader.positive("num_local_experts"), expertsPerToken: try reader.positive("num_experts_per_tok"),
            expertIntermediateSize: try reader.positive("intermediate_size"), sharedExperts: 0, sharedIntermediateSize: 0,
            sharedExpertGate: false, scoring: .sigmoid, normalizeTopK: true, routedScalingFactor: 1, groups: 1, topKGroups: 1,
            correctionBias: true, routerBias: false, expertBias: false)
        p.rope = try reader.rope(rotaryDimension: try reader.partialRotary(headDim: gqa.headDim))
        return p
    }
}
