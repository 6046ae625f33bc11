import ConfigFile

/// DeepSeek-V4 (`deepseek_v4`, Pro and Flash): compressed attention — one shared key-value head
/// of 512 over a 128-token window plus compressed entries, one per 4 tokens with a lightning
/// indexer picking the top-k (CSA) or one per 128 tokens read whole (HCA), per layer from
/// `compress_ratios` (or `layer_types`); grouped low-rank output; attention sinks; every layer MoE
/// with √softplus scores and one shared expert, the first `num_hash_layers` routed by a token-id
/// hash (they keep their router weight); hyper-connections (`hc_mult` residual streams).
enum DeepSeekV4: Architecture {
    static let modelTypes = ["deepseek_v4"]

    static func defaults(for modelType: String) -> [String: Any] { [
        "vocab_size": 129_280, "hidden_size": 4096, "moe_intermediate_size": 2048, "num_hidden_layers": 43,
        "num_attention_heads": 64, "head_dim": 512, "q_lora_rank": 1024, "num_experts_per_tok": 6, "n_routed_experts": 256,
        "routed_scaling_factor": 1.5, "max_position_embeddings": 1_048_576, "qk_rope_head_dim": 64, "hc_mult": 4,
        "sliding_window": 128, "o_groups": 8, "o_lora_rank": 1024, "index_n_heads": 64, "index_head_dim": 128,
        "index_topk": 512, "num_nextn_predict_layers": 1, "rms_norm_eps": 1e-6,
        "tie_word_embeddings": false, "layer_types": NSNullMarker.none, "compress_ratios": NSNullMarker.none,
        "compress_rate_csa": 4, "compress_rate_hca": 128, "rope_theta": 10000.0,
        "rope_scaling": NSNullMarker.none, "rope_parameters": NSNullMarker.none,
    ] }

    static let aliases = ["intermediate_size": "moe_intermediate_size", "num_local_experts": "n_routed_experts"]

    static func build(_ c: JSONObject, _ reader: ConfigReader, modelType: String, layerCount n: Int) throws -> ArchitectureParts {
        var p = ArchitectureParts()
        if try c.bool("attention_bias") == true { throw c.error("attention_bias", "true is not supported for deepseek_v4") }
        let hidden = try reader.positive("hidden_size"), queryRank = try reader.positive("q_lora_rank")
        // compress_rates {compressed_sparse_attention, heavily_compressed_attention} (as transformers
        // saves it), else the legacy compress_rate_csa / compress_rate_hca.
        let rates = try c.object("compress_rates")
        let csa = try rates?.int("compressed_sparse_attention", atLeast: 1) ?? reader.positive("compress_rate_csa")
        let hca = try rates?.int("heavily_compressed_attention", atLeast: 1) ?? reader.positive("compress_rate_hca")
        guard csa <= ConfigReader.largest, hca <= ConfigReader.largest else { throw c.error("compress_rates", "out of range") }
        guard csa < hca else { throw c.error("compress_rate_csa", "must be below compress_rate_hca (\(hca)), got \(csa)") }
        let window = try reader.positive("sliding_window")
        // Rotary lanes: partial_rotary_factor × head_dim when given (newer files), else qk_rope_head_dim.
        let headDim = try reader.positive("head_dim")
        let partial = try c.has("partial_rotary_factor") || c.object("rope_parameters")?.has("partial_rotary_factor") == true
        let ropeDim = partial ? try reader.partialRotary(headDim: headDim) : try reader.positive("qk_rope_head_dim")
        let a = CompressedAttention(
            heads: try reader.positive("num_attention_heads"), headDim: headDim, queryRank: queryRank,
            ropeDim: ropeDim,
            outputGroups: try reader.positive("o_groups"),
            outputRank: try reader.positive("o_lora_rank"), window: window, sparseRatio: csa, heavyRatio: hca,
            indexer: SparseAttention(heads: try reader.positive("index_n_heads"), headDim: try reader.positive("index_head_dim"),
                                     topK: try reader.positive("index_topk"), queryRank: queryRank))
        guard (a.heads * a.headDim) % a.outputGroups == 0 else {
            throw c.error("o_groups", "(\(a.outputGroups)) must divide num_attention_heads × head_dim (\(a.heads * a.headDim))")
        }
        p.attention = .compressed(a)
        let ratios = try layerRatios(c, layers: n, csa: csa, hca: hca)
        p.layers = ratios.map { r in
            Layer(span: .compressed(ratio: r, window: window), feedForward: .moe, usesRoPE: true, indexer: r == csa)
        }
        let expertSize = try reader.positive("moe_intermediate_size")
        // transformers ignores n_shared_experts: one shared expert of the experts' width.
        p.moe = MixtureOfExperts(
            routedExperts: try reader.positive("n_routed_experts"), expertsPerToken: try reader.positive("num_experts_per_tok"),
            expertIntermediateSize: expertSize, sharedExperts: 1, sharedIntermediateSize: expertSize, sharedExpertGate: false,
            scoring: .sqrtSoftplus, normalizeTopK: true, routedScalingFactor: try reader.positiveDouble("routed_scaling_factor"),
            groups: 1, topKGroups: 1, correctionBias: true, routerBias: false, expertBias: false)
        // Hyper-connections: per layer two mixers of (2 + hc)·hc outputs over hc·hidden inputs with
        // a bias and 3 scales; at the end one head of hc outputs (fp32, unquantized).
        let hc = try reader.positive("hc_mult")
        guard hc <= 64 else { throw c.error("hc_mult", "must be at most 64, got \(hc)") }
        p.extraTensors = [
            WeightTensor(name: "hyper-connections (attn_hc, ffn_hc)", rows: 1, cols: 2 * ((2 + hc) * hc * hc * hidden + (2 + hc) * hc + 3),
                         copies: n, category: .norms, quantizable: false, split: .replicated),
            WeightTensor(name: "hc_head", rows: 1, cols: hc * hc * hidden + hc + 1, copies: 1, category: .norms, quantizable: false,
                         split: .replicated),
        ]
        p.rope = try reader.rope(rotaryDimension: a.ropeDim)
        p.mtpModules = try reader.nonNegative("num_nextn_predict_layers")
        return p
    }

    /// Each layer's compression: `layer_types` (sliding_attention, compressed_sparse_attention,
    /// heavily_compressed_attention), else `compress_ratios` (0, the CSA rate, the HCA rate; the
    /// released configs list one more entry, the MTP layer's, which is dropped), else two HCA
    /// layers, then CSA and HCA alternating.
    static func layerRatios(_ c: JSONObject, layers n: Int, csa: Int, hca: Int) throws -> [Int] {
        if let types = try c.stringArray("layer_types") {
            guard types.count >= n else { throw c.error("layer_types", "has \(types.count) entries for \(n) layers") }
            return try types.prefix(n).map { type in
                switch type {
                case "sliding_attention": 0
                case "compressed_sparse_attention": csa
                case "heavily_compressed_attention": hca
                default: throw c.error("layer_types", "has unknown type \"\(type)\"")
                }
            }
        }
        if let listed = try c.intArray("compress_ratios") {
            guard listed.count >= n else { throw c.error("compress_ratios", "has \(listed.count) entries for \(n) layers") }
            let ratios = Array(listed.prefix(n))
            // transformers maps the listed values to the kinds; the rates come from compress_rates.
            guard ratios.allSatisfy({ $0 == 0 || $0 == 4 || $0 == 128 }) else {
                throw c.error("compress_ratios", "may hold only 0, 4 and 128 (sliding, CSA, HCA)")
            }
            return ratios.map { $0 == 0 ? 0 : ($0 == 4 ? csa : hca) }
        }
        return (0..<n).map { i in i < 2 ? hca : (i % 2 == 1 ? csa : hca) }
    }
}
