import ConfigFile

/// Llama 4: chunked attention with global NoPE layers every no_rope_layer_interval (temperature
/// tuned), L2 q/k norm on the rotating layers (Scout), MoE every interleave_moe_layer_step with one
/// shared expert, sigmoid top-1 scaling the expert's input; rotary in complex (interleaved) form.
enum Llama4: Architecture {
    /// "llama4": the multimodal wrapper, text fields under text_config; "llama4_text": a text-only
    /// config (Llama4ForCausalLM), fields at the top.
    static let modelTypes = ["llama4", "llama4_text"]
    static func textConfig(for modelType: String) -> Bool { modelType == "llama4" }
    static func defaults(for modelType: String) -> [String: Any] { defaults }

    static var defaults: [String: Any] { [
        "vocab_size": 202_048, "hidden_size": 5120, "intermediate_size": 8192, "intermediate_size_mlp": 16384,
        "num_hidden_layers": 48, "num_attention_heads": 40, "num_key_value_heads": 8, "head_dim": 128,
        "max_position_embeddings": 131_072, "rms_norm_eps": 1e-5, "rope_theta": 500_000.0,
        "num_experts_per_tok": 1, "num_local_experts": 16, "interleave_moe_layer_step": 1,
        "use_qk_norm": true, "attention_chunk_size": 8192, "no_rope_layer_interval": 4,
        "attn_temperature_tuning": true, "floor_scale": 8192, "attn_scale": 0.1,
        "moe_layers": NSNullMarker.none, "no_rope_layers": NSNullMarker.none, "layer_types": NSNullMarker.none,
        "tie_word_embeddings": false, "rope_scaling": NSNullMarker.none, "rope_parameters": NSNullMarker.none,
    ] }

    static func build(_ c: JSONObject, _ reader: ConfigReader, modelType: String, layerCount n: Int) throws -> ArchitectureParts {
        var p = ArchitectureParts()
        p.checkpointNames.denseBlock = "feed_forward"
        p.checkpointNames.moeBlock = "feed_forward"
        p.checkpointNames.router = "router"
        p.checkpointNames.fusedExperts = .halves
        p.checkpointNames.sharedExpert = "shared_expert"
        var gqa = try reader.groupedAttention(qkvBias: false, outputBias: false, qkNorm: false, sinks: false)
        gqa.qkL2Norm = try c.bool("use_qk_norm") ?? true
        // Meta's own configs write attn_temperature_tuning as a number (4): non-zero means on.
        let tuning = try (try? c.bool("attn_temperature_tuning")) ?? c.double("attn_temperature_tuning").map { $0 != 0 } ?? true
        if tuning {
            let scale = try c.double("attn_scale") ?? 0.1
            guard scale >= 0 else { throw c.error("attn_scale", "must not be negative, got \(scale)") }
            gqa.temperature = AttentionTemperature(floorScale: try reader.positiveDouble("floor_scale"), scale: scale)
        }
        p.attention = .grouped(gqa)
        // transformers: no_rope_layers[i] is 1 where layer i rotates (default: all but every
        // no_rope_layer_interval-th); moe_layers lists the MoE layers (default: every
        // interleave_moe_layer_step-th); rotating layers attend within attention_chunk_size
        // chunks (null: no chunking), the NoPE layers globally.
        // An empty no_rope_layers (Meta's Scout config) means the default, as in transformers.
        let noRopeInterval = try reader.positive("no_rope_layer_interval")
        let listed = try c.intArray("no_rope_layers") ?? []
        guard listed.isEmpty || listed.count == n else {
            throw c.error("no_rope_layers", "must give one entry per layer (\(n)), got \(listed.count)")
        }
        let rotates = listed.isEmpty ? (0..<n).map { ($0 + 1) % noRopeInterval != 0 } : listed.map { $0 != 0 }
        let step = try reader.positive("interleave_moe_layer_step")
        let moeLayers = Set(try c.intArray("moe_layers") ?? Array(stride(from: step - 1, to: n, by: step)))
        if let bad = moeLayers.first(where: { $0 < 0 || $0 >= n }) {
            throw c.error("moe_layers", "names layer \(bad), outside 0..<\(n)")
        }
        let chunk = try reader.optional("attention_chunk_size", atLeast: 1)
        // layer_types, where a config lists them (transformers 5 saves them), say which layers
        // attend in chunks; otherwise the rotating ones do.
        let chunked: [Bool]
        if let types = try c.stringArray("layer_types") {
            guard types.count == n else { throw c.error("layer_types", "must give one entry per layer (\(n)), got \(types.count)") }
            chunked = try types.map { type in
                switch type {
                case "chunked_attention": true
                case "full_attention": false
                default: throw c.error("layer_types", "has unknown type \"\(type)\" (chunked_attention, full_attention)")
                }
            }
        } else {
            chunked = rotates
        }
        let denseSize = try reader.positive("intermediate_size_mlp")
        let expertSize = try reader.positive("intermediate_size")
        p.layers = (0..<n).map { i in
            Layer(span: chunked[i] ? chunk.map { .chunked($0) } ?? .full : .full,
                  feedForward: moeLayers.contains(i) ? .moe : .dense(intermediateSize: denseSize),
                  usesRoPE: rotates[i])
        }
        var moe = MixtureOfExperts(
            routedExperts: try reader.positive("num_local_experts"),
            expertsPerToken: try reader.positive("num_experts_per_tok"),
            expertIntermediateSize: expertSize, sharedExperts: 1, sharedIntermediateSize: expertSize,
            sharedExpertGate: false, scoring: .sigmoid, normalizeTopK: false, routedScalingFactor: 1,
            groups: 1, topKGroups: 1, correctionBias: false, routerBias: false, expertBias: false)
        moe.weightScalesInput = true
        moe.selectsOnLogits = true
        p.moe = moe
        p.rope = try reader.rope(rotaryDimension: gqa.headDim)
        p.rope.interleaved = true
        return p
    }
}
