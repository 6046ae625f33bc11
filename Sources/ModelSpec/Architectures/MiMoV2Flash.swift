import ConfigFile

/// MiMo-V2-Flash (`mimo_v2_flash`): sliding-window GQA (128 tokens, twice the KV heads,
/// attention sinks) on most layers and full GQA on every sixth, keys of 192 and values of 128 per
/// head, rotary on a third of each head; a dense first layer, then MoE with sigmoid scores and a
/// selection bias, no shared experts. The config's own `hybrid_layer_pattern`, `moe_layer_freq`
/// and `swa_*` fields are read where present (transformers derives the same values), and
/// transformers' `layer_types`, `mlp_layer_types` and per-layer-type `rope_parameters`. A
/// sliding layer sees `sliding_window_size` earlier tokens and itself (transformers' window is
/// size + 1); values are scaled by `attention_value_scale`; the sliding layers rotate at
/// `swa_rope_theta`.
enum MiMoV2Flash: Architecture {
    static let modelTypes = ["mimo_v2_flash"]
    static let aliases = ["num_local_experts": "n_routed_experts", "layernorm_epsilon": "rms_norm_eps"]

    static func defaults(for modelType: String) -> [String: Any] { [
        "vocab_size": 152_576, "hidden_size": 4096, "intermediate_size": 16384, "num_hidden_layers": 48,
        "num_attention_heads": 64, "num_key_value_heads": 4, "head_dim": 192, "v_head_dim": 128,
        "moe_intermediate_size": 2048, "n_routed_experts": 256, "num_experts_per_tok": 8, "n_group": 1, "topk_group": 1,
        "norm_topk_prob": true, "rms_norm_eps": 1e-5, "tie_word_embeddings": false, "max_position_embeddings": 131_072,
        "attention_bias": false, "sliding_window": 129, "partial_rotary_factor": 0.334,
        "attention_value_scale": 0.707, "swa_rope_theta": 10000.0, "add_swa_attention_sink_bias": true,
        "add_full_attention_sink_bias": false, "layer_types": NSNullMarker.none, "mlp_layer_types": NSNullMarker.none,
        "swa_num_key_value_heads": NSNullMarker.none, "hybrid_layer_pattern": NSNullMarker.none,
        "moe_layer_freq": NSNullMarker.none, "routed_scaling_factor": NSNullMarker.none, "rope_theta": 5_000_000.0,
        "rope_scaling": NSNullMarker.none, "rope_parameters": NSNullMarker.none,
    ] }

    static func build(_ c: JSONObject, _ reader: ConfigReader, modelType: String, layerCount n: Int) throws -> ArchitectureParts {
        var p = ArchitectureParts()
        if try c.bool("attention_bias") == true { throw c.error("attention_bias", "true is not supported for mimo_v2_flash") }
        var full = try reader.groupedAttention(qkvBias: false, outputBias: false, qkNorm: false, sinks: false)
        full.valueHeadDim = try reader.positive("v_head_dim")
        var sliding = full
        sliding.kvHeads = try reader.optional("swa_num_key_value_heads", atLeast: 1) ?? 2 * full.kvHeads
        guard sliding.heads % sliding.kvHeads == 0 else {
            throw c.error("swa_num_key_value_heads", "(\(sliding.kvHeads)) must divide num_attention_heads (\(sliding.heads))")
        }
        sliding.sinks = try c.bool("add_swa_attention_sink_bias") ?? true
        full.sinks = try c.bool("add_full_attention_sink_bias") ?? false
        if let scale = try c.double("attention_value_scale") {
            guard scale > 0, scale <= 1e6 else { throw c.error("attention_value_scale", "must be in (0, 1e6], got \(scale)") }
            (full.valueScale, sliding.valueScale) = (scale, scale)
        }
        p.attention = .grouped(full)
        p.sliding = sliding
        p.checkpointNames.attentionSinks = "attention_sink_bias"
        // The release's sliding_window_size counts the earlier tokens a query sees; transformers'
        // sliding_window counts the query too.
        let window = try reader.optional("sliding_window_size", atLeast: 1).map { $0 + 1 } ?? reader.positive("sliding_window")
        var pattern = try c.intArray("hybrid_layer_pattern") ?? (0..<n).map { $0 == 0 || ($0 + 1) % 6 == 0 ? 0 : 1 }
        if c.has("layer_types"), let types = try c.stringArray("layer_types") {
            guard types.count == n else { throw c.error("layer_types", "has \(types.count) entries for \(n) layers") }
            pattern = try types.map {
                switch $0 {
                case "full_attention": return 0
                case "sliding_attention": return 1
                default: throw c.error("layer_types", "has unknown type \"\($0)\" (full_attention, sliding_attention)")
                }
            }
        }
        var moeLayers = try c.intArray("moe_layer_freq") ?? (0..<n).map { $0 == 0 ? 0 : 1 }
        if c.has("mlp_layer_types"), try c.stringArray("mlp_layer_types") != nil {
            moeLayers = try ConfigReader.mlpLayerTypes(c, reader, layers: n, dense: 1).map { $0 == .moe ? 1 : 0 }
        }
        guard pattern.count == n else { throw c.error("hybrid_layer_pattern", "has \(pattern.count) entries for \(n) layers") }
        guard moeLayers.count == n else { throw c.error("moe_layer_freq", "has \(moeLayers.count) entries for \(n) layers") }
        guard pattern.allSatisfy({ $0 == 0 || $0 == 1 }) else { throw c.error("hybrid_layer_pattern", "may hold only 0 (full) and 1 (sliding)") }
        guard moeLayers.allSatisfy({ $0 == 0 || $0 == 1 }) else { throw c.error("moe_layer_freq", "may hold only 0 (dense) and 1 (MoE)") }
        let dense = try reader.positive("intermediate_size")
        p.layers = (0..<n).map { i in
            Layer(span: pattern[i] == 1 ? .slidingWindow(window) : .full,
                  feedForward: moeLayers[i] == 0 ? .dense(intermediateSize: dense) : .moe, usesRoPE: true)
        }
        let scale = try c.double("routed_scaling_factor") ?? 1
        guard scale > 0, scale.isFinite else { throw c.error("routed_scaling_factor", "must be positive, got \(scale)") }
        p.moe = MixtureOfExperts(
            routedExperts: try reader.positive("n_routed_experts"), expertsPerToken: try reader.positive("num_experts_per_tok"),
            expertIntermediateSize: try reader.positive("moe_intermediate_size"), sharedExperts: 0, sharedIntermediateSize: 0,
            sharedExpertGate: false, scoring: .sigmoid, normalizeTopK: try c.bool("norm_topk_prob") ?? true,
            routedScalingFactor: scale, groups: try reader.positive("n_group"), topKGroups: try reader.positive("topk_group"),
            correctionBias: true, routerBias: false, expertBias: false)
        // Rotary per layer type: transformers' rope_parameters keyed by layer type, or the
        // release's rope_theta (full layers) and swa_rope_theta.
        let rotary = try reader.partialRotary(headDim: full.headDim)
        var thetas = (full: try reader.positiveDouble("rope_theta"), sliding: try reader.positiveDouble("swa_rope_theta"))
        if let byType = try c.object("rope_parameters"), byType.has("full_attention") || byType.has("sliding_attention") {
            for (key, isFull) in [("full_attention", true), ("sliding_attention", false)] {
                guard let one = try byType.object(key) else { continue }
                guard (try one.string("rope_type") ?? "default") == "default" else {
                    throw one.error("rope_type", "only the default rotary is supported per layer type")
                }
                if let theta = try one.double("rope_theta") { if isFull { thetas.full = theta } else { thetas.sliding = theta } }
            }
        }
        guard thetas.full > 1, thetas.sliding > 1 else { throw c.error("rope_theta", "must exceed 1") }
        p.rope = RoPE(theta: thetas.full, scaling: .none, rotaryDimension: rotary)
        p.slidingRope = RoPE(theta: thetas.sliding, scaling: .none, rotaryDimension: rotary)
        return p
    }
}
