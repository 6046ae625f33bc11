import ConfigFile

/// DeepSeek sparse attention: DeepSeek-V3.2 (`deepseek_v32`) and GLM-5 (`glm_moe_dsa`). MLA with
/// a lightning indexer on each layer (GLM-5 may let "shared" layers reuse the previous layer's
/// choice), DeepSeek-V3's MoE (sigmoid scores with a selection bias, group-limited, shared
/// experts), dense first layers, MTP modules counted apart.
enum DeepSeekSparse: Architecture {
    static let modelTypes = ["deepseek_v32", "glm_moe_dsa"]

    static func defaults(for modelType: String) -> [String: Any] {
        let glm = modelType == "glm_moe_dsa"
        return [
            "vocab_size": glm ? 154_880 : 129_280, "hidden_size": glm ? 6144 : 7168, "intermediate_size": glm ? 12288 : 18432,
            "moe_intermediate_size": 2048, "num_hidden_layers": glm ? 78 : 61, "num_attention_heads": glm ? 64 : 128,
            "n_shared_experts": 1, "n_routed_experts": 256, "routed_scaling_factor": 2.5, "kv_lora_rank": 512,
            "q_lora_rank": glm ? 2048 : 1536, "qk_rope_head_dim": 64, "v_head_dim": glm ? 256 : 128,
            "qk_nope_head_dim": glm ? 192 : 128, "n_group": glm ? 1 : 8, "topk_group": glm ? 1 : 4, "num_experts_per_tok": 8,
            "first_k_dense_replace": 3, "norm_topk_prob": true, "max_position_embeddings": glm ? 202_752 : 163_840,
            "rms_norm_eps": glm ? 1e-5 : 1e-6, "tie_word_embeddings": false, "attention_bias": false,
            "index_topk": 2048, "index_head_dim": 128, "index_n_heads": glm ? 32 : 64, "num_nextn_predict_layers": 0,
            "mlp_layer_types": NSNullMarker.none, "index_topk_freq": 1, "index_skip_topk_offset": 2,
            "index_topk_pattern": NSNullMarker.none, "rope_theta": 10000.0,
            "rope_scaling": NSNullMarker.none, "rope_parameters": NSNullMarker.none,
        ]
    }

    static let aliases = ["num_local_experts": "n_routed_experts"]

    static func build(_ c: JSONObject, _ reader: ConfigReader, modelType: String, layerCount n: Int) throws -> ArchitectureParts {
        var p = ArchitectureParts()
        // transformers always projects queries through q_lora_rank here.
        var mla = try reader.latentAttention()
        guard let queryRank = mla.qLoraRank else { throw c.error("q_lora_rank", "is needed by sparse attention's indexer") }
        if try c.bool("attention_bias") == true {
            throw c.error("attention_bias", "true (biases on q_a, kv_a and o projections) is not supported; moesim counts none")
        }
        mla.outputGate = false
        p.attention = .latent(mla)
        let feedForward = try ConfigReader.mlpLayerTypes(c, reader, layers: n, dense: try reader.positive("intermediate_size"))
        let indexers = try indexerLayers(c, reader, layers: n)
        p.layers = (0..<n).map { i in Layer(span: .full, feedForward: feedForward[i], usesRoPE: true, indexer: indexers[i]) }
        p.sparse = SparseAttention(heads: try reader.positive("index_n_heads"), headDim: try reader.positive("index_head_dim"),
                                   topK: try reader.positive("index_topk"), queryRank: queryRank)
        let shared = try reader.nonNegative("n_shared_experts"), expertSize = try reader.positive("moe_intermediate_size")
        p.moe = MixtureOfExperts(
            routedExperts: try reader.positive("n_routed_experts"), expertsPerToken: try reader.positive("num_experts_per_tok"),
            expertIntermediateSize: expertSize, sharedExperts: shared, sharedIntermediateSize: shared * expertSize,
            sharedExpertGate: false, scoring: .sigmoid, normalizeTopK: try c.bool("norm_topk_prob") ?? true,
            routedScalingFactor: try reader.positiveDouble("routed_scaling_factor"),
            groups: try reader.positive("n_group"), topKGroups: try reader.positive("topk_group"),
            correctionBias: true, routerBias: false, expertBias: false)
        p.rope = try reader.rope(rotaryDimension: mla.qkRopeHeadDim)
        p.mtpModules = try reader.nonNegative("num_nextn_predict_layers")
        return p
    }

    /// GLM-5's `indexer_types`: from `index_topk_pattern` (F = its own indexer, S = shared), else
    /// layer i has its own when max(i − offset + 1, 0) is a multiple of `index_topk_freq`
    /// (default: every layer). DeepSeek-V3.2: every layer.
    static func indexerLayers(_ c: JSONObject, _ reader: ConfigReader, layers n: Int) throws -> [Bool] {
        if let pattern = try? c.string("index_topk_pattern") {
            let marks = Array(pattern)
            guard marks.count == n, marks.allSatisfy({ $0 == "F" || $0 == "S" }) else {
                throw c.error("index_topk_pattern", "must hold one F or S per layer (\(n)), got \"\(pattern)\"")
            }
            return marks.map { $0 == "F" }
        }
        if let list = try? c.stringArray("index_topk_pattern") {
            guard list.count == n, list.allSatisfy({ $0 == "F" || $0 == "S" }) else {
                throw c.error("index_topk_pattern", "must hold one F or S per layer (\(n))")
            }
            return list.map { $0 == "F" }
        }
        let frequency = try reader.positive("index_topk_freq"), offset = try reader.nonNegative("index_skip_topk_offset")
        return (0..<n).map { i in max(i - offset + 1, 0) % frequency == 0 }
    }
}
