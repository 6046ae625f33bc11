import ConfigFile

/// Qwen3-Next (`qwen3_next`) and Qwen3.5 (`qwen3_5_moe`, its language model under text_config):
/// Gated DeltaNet linear attention on three layers of four, gated GQA (a sigmoid output gate,
/// per-head q/k norms, rotary on a quarter of each head) on the fourth; softmax top-k MoE with a
/// gated shared expert. Qwen3.5 makes every layer MoE; Qwen3-Next follows decoder_sparse_step and
/// mlp_only_layers. The MTP module is not counted.
enum QwenNext: Architecture {
    /// qwen3_5_moe_text: the language model's own config, as transformers saves it.
    static let modelTypes = ["qwen3_next", "qwen3_5_moe", "qwen3_5_moe_text"]

    static func textConfig(for modelType: String) -> Bool { modelType == "qwen3_5_moe" }

    static func defaults(for modelType: String) -> [String: Any] {
        let next = modelType == "qwen3_next"
        var d: [String: Any] = [
            "vocab_size": next ? 151_936 : 248_320, "hidden_size": 2048, "num_hidden_layers": next ? 48 : 40,
            "num_attention_heads": 16, "num_key_value_heads": 2, "head_dim": 256, "max_position_embeddings": 32768,
            "rms_norm_eps": 1e-6, "tie_word_embeddings": false, "attention_bias": false,
            "linear_conv_kernel_dim": 4, "linear_key_head_dim": 128, "linear_value_head_dim": 128,
            "linear_num_key_heads": 16, "linear_num_value_heads": 32, "moe_intermediate_size": 512,
            "shared_expert_intermediate_size": 512, "num_experts_per_tok": next ? 10 : 8, "num_experts": next ? 512 : 256,
            "norm_topk_prob": true, "layer_types": NSNullMarker.none, "full_attention_interval": 4,
            "partial_rotary_factor": 0.25, "mamba_ssm_dtype": "float32", "rope_theta": 10000.0,
            "rope_scaling": NSNullMarker.none, "rope_parameters": NSNullMarker.none,
        ]
        if next {
            d["intermediate_size"] = 5632
            d["decoder_sparse_step"] = 1
            d["mlp_only_layers"] = [Int]()
        }
        return d
    }

    static func build(_ c: JSONObject, _ reader: ConfigReader, modelType: String, layerCount n: Int) throws -> ArchitectureParts {
        var p = ArchitectureParts()
        p.checkpointNames.sharedExpert = "shared_expert"
        p.checkpointNames.fusedLinearProjections = modelType == "qwen3_next"
        if try c.bool("attention_bias") == true { throw c.error("attention_bias", "true is not supported for \(modelType)") }
        var gqa = try reader.groupedAttention(qkvBias: false, outputBias: false, qkNorm: true, sinks: false)
        gqa.outputGate = true
        p.attention = .grouped(gqa)
        let types = try ConfigReader.layerTypes(c, reader, layers: n, interval: "full_attention_interval")
        var denseSize: Int? = nil, step = 1, denseOnly = Set<Int>()
        if modelType == "qwen3_next" {
            denseSize = try reader.positive("intermediate_size")
            step = try reader.positive("decoder_sparse_step")
            denseOnly = Set(try c.intArray("mlp_only_layers") ?? [])
        }
        p.layers = (0..<n).map { i in
            let moe = denseSize == nil || (!denseOnly.contains(i) && (i + 1) % step == 0)
            return Layer(span: .full, feedForward: moe ? .moe : .dense(intermediateSize: denseSize ?? 0), usesRoPE: true,
                         mixer: types[i] ? .attention : .linear)
        }
        p.linear = LinearAttention(
            kind: .gatedDeltaNet, keyHeads: try reader.positive("linear_num_key_heads"),
            valueHeads: try reader.positive("linear_num_value_heads"), keyHeadDim: try reader.positive("linear_key_head_dim"),
            valueHeadDim: try reader.positive("linear_value_head_dim"), convKernel: try reader.positive("linear_conv_kernel_dim"),
            stateBytesPerValue: try ConfigReader.stateBytes(c), fullRankOutputGate: false)
        guard let kernel = p.linear?.convKernel, (2...64).contains(kernel) else {
            throw c.error("linear_conv_kernel_dim", "must be 2 to 64")
        }
        guard p.linear.map({ $0.valueHeads % $0.keyHeads == 0 }) == true else {
            throw c.error("linear_num_value_heads", "must be a multiple of linear_num_key_heads")
        }
        let shared = try reader.nonNegative("shared_expert_intermediate_size")
        p.moe = MixtureOfExperts(
            routedExperts: try reader.positive("num_experts"), expertsPerToken: try reader.positive("num_experts_per_tok"),
            expertIntermediateSize: try reader.positive("moe_intermediate_size"), sharedExperts: shared > 0 ? 1 : 0,
            sharedIntermediateSize: shared, sharedExpertGate: shared > 0, scoring: .softmax,
            normalizeTopK: try c.bool("norm_topk_prob") ?? true, routedScalingFactor: 1, groups: 1, topKGroups: 1,
            correctionBias: false, routerBias: false, expertBias: false)
        p.rope = try reader.rope(rotaryDimension: try reader.partialRotary(headDim: gqa.headDim))
        p.zeroCenteredNorms = true
        return p
    }
}
