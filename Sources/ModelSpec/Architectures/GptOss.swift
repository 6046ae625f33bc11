import ConfigFile

/// gpt-oss: alternating sliding-window and full attention with sinks, biases everywhere, softmax
/// top-k routing over biased experts.
enum GptOss: Architecture {
    static let modelTypes = ["gpt_oss"]

    static func defaults(for modelType: String) -> [String: Any] { defaults }

    static var defaults: [String: Any] { [
        "num_hidden_layers": 36, "num_local_experts": 128, "vocab_size": 201_088, "hidden_size": 2880,
        "intermediate_size": 2880, "head_dim": 64, "num_attention_heads": 64, "num_key_value_heads": 8,
        "sliding_window": 128, "rope_theta": 150_000.0, "tie_word_embeddings": false, "rms_norm_eps": 1e-5,
        "attention_bias": true, "max_position_embeddings": 131_072, "num_experts_per_tok": 4,
        "experts_per_token": 4, "layer_types": NSNullMarker.none, "swiglu_alpha": 1.702, "swiglu_limit": 7.0,
        "rope_scaling": NSNullMarker.none, "rope_parameters": NSNullMarker.none,
    ] }

    static func build(_ c: JSONObject, _ reader: ConfigReader, modelType: String, layerCount n: Int) throws -> ArchitectureParts {
        var p = ArchitectureParts()
        p.checkpointNames.router = "router"
        p.checkpointNames.fusedExperts = .interleaved
        let bias = try c.bool("attention_bias") ?? true
        let gqa = try reader.groupedAttention(qkvBias: bias, outputBias: bias, qkNorm: false, sinks: true)
        p.attention = .grouped(gqa)
        let window = try reader.positive("sliding_window")
        let types = try c.stringArray("layer_types")
            ?? (0..<n).map { $0 % 2 == 0 ? "sliding_attention" : "full_attention" }
        guard types.count == n else {
            throw c.error("layer_types", "has \(types.count) entries for \(n) layers")
        }
        p.layers = try types.map { type in
            switch type {
            case "sliding_attention": Layer(span: .slidingWindow(window), feedForward: .moe, usesRoPE: true)
            case "full_attention": Layer(span: .full, feedForward: .moe, usesRoPE: true)
            default: throw c.error("layer_types", "has unknown type \"\(type)\"")
            }
        }
        let perToken = try reader.optional("num_experts_per_tok", atLeast: 1) ?? (try reader.positive("experts_per_token"))
        var moe = MixtureOfExperts(
            routedExperts: try reader.positive("num_local_experts"), expertsPerToken: perToken,
            expertIntermediateSize: try reader.positive("intermediate_size"), sharedExperts: 0,
            sharedIntermediateSize: 0, sharedExpertGate: false, scoring: .softmax, normalizeTopK: true,
            routedScalingFactor: 1, groups: 1, topKGroups: 1, correctionBias: false, routerBias: true,
            expertBias: true)
        moe.swigluLimit = try reader.positiveDouble("swiglu_limit")
        moe.swigluAlpha = try reader.positiveDouble("swiglu_alpha")
        p.moe = moe
        p.rope = try reader.rope(rotaryDimension: gqa.headDim)
        return p
    }
}
