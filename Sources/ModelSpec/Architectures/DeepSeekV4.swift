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
        "rope_scaling": NSNullMarker.none, "rope_parameters": NSNullMarker.none, "compress_rope_theta": 160_000.0,
        "hc_sinkhorn_iters": 20, "hc_eps": 1e-6, "swiglu_limit": 10.0, "num_hash_layers": 3, "mlp_layer_types": NSNullMarker.none,
        "scoring_func": "sqrtsoftplus",
    ] }

    static let aliases = ["intermediate_size": "moe_intermediate_size", "num_local_experts": "n_routed_experts"]

    static func build(_ c: JSONObject, _ reader: ConfigReader, modelType: String, layerCount n: Int) throws -> ArchitectureParts {
        var p = ArchitectureParts()
        if try c.bool("attention_bias") == true { throw c.error("attention_bias", "true is not supported for deepseek_v4") }
        let queryRank = try reader.positive("q_lora_rank")
        // compress_rates {compressed_sparse_attention, heavily_compressed_attention} (as transformers
        // saves it), else the legacy compress_rate_csa / compress_rate_hca.
        let rates = try c.object("compress_rates")
        let csa = try rates?.int("compressed_sparse_attention", atLeast: 1) ?? reader.positive("compress_rate_csa")
        let hca = try rates?.int("heavily_compressed_attention", atLeast: 1) ?? reader.positive("compress_rate_hca")
        guard csa <= ConfigReader.largest, hca <= ConfigReader.largest else { throw c.error("compress_rates", "out of range") }
        guard csa < hca else { throw c.error("compress_rate_csa", "must be below compress_rate_hca (\(hca)), got \(csa)") }
        let window = try reader.positive("sliding_window")
        // Rotary lanes: partial_rotary_factor × head_dim when given (newer files; a file saved by
        // transformers nests it under rope_parameters.main), else qk_rope_head_dim. They rotate the
        // last lanes of every attention and index head, so they must fit both, in pairs.
        let headDim = try reader.positive("head_dim"), indexHeadDim = try reader.positive("index_head_dim")
        let nested = try c.object("rope_parameters")?.object("main")?.double("partial_rotary_factor")
        let partial = try c.has("partial_rotary_factor") || c.object("rope_parameters")?.has("partial_rotary_factor") == true
        let ropeDim: Int
        if let nested {
            guard nested > 0, nested <= 1 else { throw c.error("rope_parameters.main.partial_rotary_factor", "must be in (0, 1], got \(nested)") }
            ropeDim = Int(Double(headDim) * nested)
        } else {
            ropeDim = partial ? try reader.partialRotary(headDim: headDim) : try reader.positive("qk_rope_head_dim")
        }
        guard ropeDim >= 2, ropeDim % 2 == 0, ropeDim <= headDim, ropeDim <= indexHeadDim else {
            throw c.error("qk_rope_head_dim", "rotary lanes (\(ropeDim)) must be even and fit head_dim (\(headDim)) and index_head_dim (\(indexHeadDim))")
        }
        let a = CompressedAttention(
            heads: try reader.positive("num_attention_heads"), headDim: headDim, queryRank: queryRank,
            ropeDim: ropeDim,
            outputGroups: try reader.positive("o_groups"),
            outputRank: try reader.positive("o_lora_rank"), window: window, sparseRatio: csa, heavyRatio: hca,
            indexer: SparseAttention(heads: try reader.positive("index_n_heads"), headDim: indexHeadDim,
                                     topK: try reader.positive("index_topk"), queryRank: queryRank))
        // Each output group takes whole heads (the grouped projection splits the heads' outputs).
        guard a.heads % a.outputGroups == 0 else {
            throw c.error("o_groups", "(\(a.outputGroups)) must divide num_attention_heads (\(a.heads))")
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
            scoring: try scoring(c), normalizeTopK: true, routedScalingFactor: try reader.positiveDouble("routed_scaling_factor"),
            groups: 1, topKGroups: 1, correctionBias: true, routerBias: false, expertBias: false)
        // SwiGLU clamped (gate ≤ limit, |up| ≤ limit, silu(gate) · up) in the experts and the
        // shared expert alike.
        p.moe?.swigluLimit = try reader.positiveDouble("swiglu_limit")
        p.moe?.swigluAlpha = 1
        p.moe?.swigluUpShift = 0
        p.moe?.clampsShared = true
        p.moe?.hashRoutedLayers = try hashLayers(c, reader, layers: n)
        // Hyper-connections (their tensors: WeightInventory).
        let hc = try reader.positive("hc_mult")
        guard hc <= 64 else { throw c.error("hc_mult", "must be at most 64, got \(hc)") }
        let iterations = try reader.positive("hc_sinkhorn_iters")
        guard iterations <= 1_000 else { throw c.error("hc_sinkhorn_iters", "must be at most 1,000, got \(iterations)") }
        let hcEpsilon = try reader.positiveDouble("hc_eps")
        p.hyperConnections = HyperConnections(streams: hc, sinkhornIterations: iterations, epsilon: hcEpsilon)
        let ropes = try Self.ropes(c, reader, rotaryDimension: a.ropeDim)
        p.rope = ropes.main
        if case var .compressed(attention) = p.attention {
            attention.compressRope = ropes.compress
            p.attention = .compressed(attention)
        }
        p.mtpModules = try reader.nonNegative("num_nextn_predict_layers")
        return p
    }

    /// transformers' two rotaries: "main" (the window-only layers: plain RoPE at `rope_theta`) and
    /// "compress" (compressed layers, compressors, indexers: `compress_rope_theta` with the file's
    /// scaling, YaRN in the released configs, whose cos/sin factor is 1 unless the file says
    /// otherwise). A file saved by transformers nests both under `rope_parameters`.
    static func ropes(_ c: JSONObject, _ reader: ConfigReader, rotaryDimension: Int) throws -> (main: RoPE, compress: RoPE) {
        func rope(_ parameters: [String: Any]) throws -> RoPE {
            var values: [String: Any] = ["rope_parameters": parameters]
            for key in ["max_position_embeddings", "original_max_position_embeddings"] { values[key] = c.values[key] }
            return try ConfigReader(JSONObject(values: values, source: c.source, path: c.path + "rope_parameters.")).rope(rotaryDimension: rotaryDimension)
        }
        let nested = try c.object("rope_parameters")
        if let main = try nested?.object("main"), let compress = try nested?.object("compress") {
            return (try rope(main.values), try rope(compress.values))
        }
        let theta = try c.double("rope_theta") ?? 10_000
        guard theta > 1 else { throw c.error("rope_theta", "must exceed 1, got \(theta)") }
        var scaling = try (nested ?? c.object("rope_scaling"))?.values ?? [:]
        scaling["rope_theta"] = try reader.positiveDouble("compress_rope_theta")
        let type = scaling["rope_type"] ?? scaling["type"] ?? "default"
        if type as? String == "yarn", scaling["attention_factor"] == nil { scaling["attention_factor"] = 1.0 }
        return (RoPE(theta: theta, scaling: .none, rotaryDimension: rotaryDimension), try rope(scaling))
    }

    /// The router's score: √softplus (the released models) or sigmoid, as transformers' ACT2FN
    /// names them.
    static func scoring(_ c: JSONObject) throws -> MixtureOfExperts.Scoring {
        switch try c.string("scoring_func") ?? "sqrtsoftplus" {
        case "sqrtsoftplus": return .sqrtSoftplus
        case "sigmoid": return .sigmoid
        case let other: throw c.error("scoring_func", "\"\(other)\" is not supported for deepseek_v4 (sqrtsoftplus, sigmoid)")
        }
    }

    /// Hash-routed layers: `mlp_layer_types` ("hash_moe" then "moe"), else the first
    /// `num_hash_layers`. The runtime takes them as a leading run.
    static func hashLayers(_ c: JSONObject, _ reader: ConfigReader, layers n: Int) throws -> Int {
        guard let types = try c.stringArray("mlp_layer_types") else { return min(try reader.nonNegative("num_hash_layers"), n) }
        guard types.count >= n else { throw c.error("mlp_layer_types", "has \(types.count) entries for \(n) layers") }
        let kinds = Array(types.prefix(n))
        guard kinds.allSatisfy({ $0 == "hash_moe" || $0 == "moe" }) else { throw c.error("mlp_layer_types", "may hold only hash_moe and moe") }
        let leading = kinds.prefix { $0 == "hash_moe" }.count
        guard !kinds[leading...].contains("hash_moe") else {
            throw c.error("mlp_layer_types", "must list its hash_moe layers first")
        }
        return leading
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
