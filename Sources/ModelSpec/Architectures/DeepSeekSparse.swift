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
            "index_topk_pattern": NSNullMarker.none, "indexer_types": NSNullMarker.none, "rope_theta": 10000.0,
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
        // DeepSeek-V3.2 runs an indexer on every layer; GLM-5 may share one between layers.
        let indexers = modelType == "glm_moe_dsa" ? try indexerLayers(c, reader, layers: n) : Array(repeating: true, count: n)
        p.layers = (0..<n).map { i in Layer(span: .full, feedForward: feedForward[i], usesRoPE: true, indexer: indexers[i]) }
        p.sparse = SparseAttention(heads: try reader.positive("index_n_heads"), headDim: try reader.positive("index_head_dim"),
                                   topK: try reader.positive("index_topk"), queryRank: queryRank,
                                   interleavedRotary: modelType == "glm_moe_dsa")
        // The indexer rotates the first qk_rope_head_dim lanes of each of its heads.
        if let x = p.sparse, x.headDim < mla.qkRopeHeadDim {
            throw c.error("index_head_dim", "(\(x.headDim)) must be at least qk_rope_head_dim (\(mla.qkRopeHeadDim)): the indexer's rotary lanes")
        }
        p.moe = try reader.deepSeekMoE()
        p.rope = try reader.rope(rotaryDimension: mla.qkRopeHeadDim)
        p.mtpModules = try reader.nonNegative("num_nextn_predict_layers")
        return p
    }

    /// GLM-5's layers with their own indexer: `indexer_types` ("full" or "shared", as transformers
    /// saves it), else `index_topk_pattern` (F/S letters, or "full"/"shared" entries), else layer i
    /// has its own when max(i − offset + 1, 0) is a multiple of max(`index_topk_freq`, 1)
    /// (default: every layer).
    static func indexerLayers(_ c: JSONObject, _ reader: ConfigReader, layers n: Int) throws -> [Bool] {
        func kinds(_ list: [String], _ key: String) throws -> [Bool] {
            guard list.count == n else { throw c.error(key, "must name one kind per layer (\(n)), got \(list.count)") }
            return try list.map { kind in
                switch kind {
                case "full", "F": true
                case "shared", "S": false
                default: throw c.error(key, "has unknown kind \"\(kind)\" (full, shared)")
                }
            }
        }
        if let types = try c.stringArray("indexer_types") { return try kinds(types, "indexer_types") }
        if let pattern = try? c.string("index_topk_pattern") { return try kinds(pattern.map(String.init), "index_topk_pattern") }
        if let list = try c.stringArray("index_topk_pattern") { return try kinds(list, "index_topk_pattern") }
        let frequency = max(try reader.nonNegative("index_topk_freq"), 1), offset = try reader.nonNegative("index_skip_topk_offset")
        return (0..<n).map { i in max(i - offset + 1, 0) % frequency == 0 }
    }
}
