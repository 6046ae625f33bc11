import ConfigFile

/// Kimi Linear (`kimi_linear`) and Kimi K3 (`kimi_k3`, its language model under text_config):
/// Kimi Delta Attention on most layers and MLA (without rotary) on the layers `linear_attn_config`
/// lists; DeepSeek-style MoE (sigmoid scores with a selection bias, shared experts, dense first
/// layers). Kimi K3 adds LatentMoE (experts at `routed_expert_hidden_size`), a full-rank KDA
/// output gate and a bounded forget gate (`gate_lower_bound`), an MLA output gate, the SiTU
/// activation and attention residuals (`attn_res_block_size`); its semantics come from SGLang's
/// `models/kimi_k3.py` and Moonshot's modelling code (transformers 5.24 has no Kimi K3).
enum KimiLinear: Architecture {
    static let modelTypes = ["kimi_linear", "kimi_k3"]

    static func textConfig(for modelType: String) -> Bool { modelType == "kimi_k3" }

    /// The checkpoints' names for transformers' fields.
    static let aliases = [
        "num_experts": "num_local_experts", "num_experts_per_token": "num_experts_per_tok",
        "num_shared_experts": "n_shared_experts", "moe_renormalize": "norm_topk_prob", "num_expert_group": "n_group",
        "model_max_length": "max_position_embeddings",
    ]

    static func defaults(for modelType: String) -> [String: Any] { [
        "vocab_size": 163_840, "hidden_size": 2304, "intermediate_size": 9216, "moe_intermediate_size": 1024,
        "num_hidden_layers": 27, "num_attention_heads": 32, "q_lora_rank": NSNullMarker.none, "kv_lora_rank": 512,
        "qk_nope_head_dim": 128, "qk_rope_head_dim": 64, "v_head_dim": 128, "num_local_experts": 256,
        "num_experts_per_tok": 8, "n_shared_experts": 1, "routed_scaling_factor": 2.446, "n_group": 1, "topk_group": 1,
        "norm_topk_prob": true, "rms_norm_eps": 1e-5, "tie_word_embeddings": false, "max_position_embeddings": 1_048_576,
        "first_k_dense_replace": 1, "linear_head_dim": 128, "linear_num_heads": 32, "linear_conv_kernel_dim": 4,
        "routed_expert_hidden_size": NSNullMarker.none, "latent_moe_use_norm": false, "mla_use_output_gate": false,
        "attn_res_block_size": NSNullMarker.none, "hidden_act": "silu", "activation_situ_beta": NSNullMarker.none,
        "activation_situ_linear_beta": NSNullMarker.none, "layer_types": NSNullMarker.none, "mlp_layer_types": NSNullMarker.none,
        "rope_theta": 10000.0,
        "rope_scaling": NSNullMarker.none, "rope_parameters": NSNullMarker.none,
    ] }

    static func build(_ c: JSONObject, _ reader: ConfigReader, modelType: String, layerCount n: Int) throws -> ArchitectureParts {
        var p = ArchitectureParts()
        // Kimi Linear's checkpoints: every feed-forward block is block_sparse_moe, its experts named
        // as Mixtral's. Kimi K3's keep the dense first layer's as `mlp`, and the language model
        // under `language_model.` (`language_model.model.layers.N…`, `language_model.lm_head`).
        p.checkpointNames.moeBlock = "block_sparse_moe"
        p.checkpointNames.expertProjections = .init(gate: "w1", up: "w3", down: "w2")
        if modelType == "kimi_k3" {
            p.checkpointNames.prefix = "language_model."
        } else {
            p.checkpointNames.denseBlock = "block_sparse_moe"
        }
        var mla = try reader.latentAttention()
        mla.yarnScalesSoftmax = false
        mla.outputGate = try c.bool("mla_use_output_gate") ?? false
        p.attention = .latent(mla)
        let linearConfig = try c.object("linear_attn_config")
        let headDim = try linearConfig?.int("head_dim", atLeast: 1) ?? reader.positive("linear_head_dim")
        let heads = try linearConfig?.int("num_heads", atLeast: 1) ?? reader.positive("linear_num_heads")
        let kernel = try linearConfig?.int("short_conv_kernel_size", atLeast: 2) ?? reader.positive("linear_conv_kernel_dim")
        guard headDim <= ConfigReader.largest, heads <= ConfigReader.largest, kernel <= 64 else {
            throw c.error("linear_attn_config", "head_dim, num_heads or short_conv_kernel_size out of range")
        }
        // Full-attention layers as transformers reads them: `layer_types`, else linear_attn_config's
        // 1-indexed `full_attn_layers` (with `kda_layers` beside it), else every fourth from layer 4.
        var full = (0..<n).map { $0 > 0 && $0 % 4 == 0 }
        if c.has("layer_types") {
            full = try ConfigReader.layerTypes(c, reader, layers: n, interval: nil)
        } else if let listed = try linearConfig?.intArray("full_attn_layers"), try linearConfig?.intArray("kda_layers") != nil {
            guard listed.allSatisfy({ (1...n).contains($0) }) else {
                throw c.error("linear_attn_config.full_attn_layers", "must list layers 1 to \(n) (1-indexed)")
            }
            full = (0..<n).map { listed.contains($0 + 1) }
        }
        let feedForward = try ConfigReader.mlpLayerTypes(c, reader, layers: n, dense: try reader.positive("intermediate_size"))
        p.layers = (0..<n).map { i in
            Layer(span: .full, feedForward: feedForward[i], usesRoPE: false, mixer: full[i] ? .attention : .linear)
        }
        p.linear = LinearAttention(kind: .kimiDelta, keyHeads: heads, valueHeads: heads, keyHeadDim: headDim, valueHeadDim: headDim,
                                   convKernel: kernel, stateBytesPerValue: try ConfigReader.stateBytes(c),
                                   fullRankOutputGate: try linearConfig?.bool("use_full_rank_gate") ?? false,
                                   forgetGateLowerBound: try linearConfig?.double("gate_lower_bound"))
        // The runtime computes in Float, summing the bound over a chunk of 64 tokens: −10⁴ keeps
        // that finite with room to spare (e^-10⁴ is 0 already), a conservative limit.
        if let bound = p.linear?.forgetGateLowerBound, !(bound < 0 && bound >= -1e4) {
            throw c.error("linear_attn_config.gate_lower_bound", "must be a negative number from -10000, got \(bound)")
        }
        p.activation = try activation(c)
        var moe = try reader.deepSeekMoE(expertsKey: "num_local_experts")
        moe.latentSize = try reader.optional("routed_expert_hidden_size", atLeast: 1)
        let latentNorm = try c.bool("latent_moe_use_norm") ?? false
        moe.latentNorm = moe.latentSize != nil && latentNorm
        p.moe = moe
        // Attention residuals: a norm and a 1 × hidden projection before each block of every
        // layer, and once more at the output; a block snapshot every attn_res_block_size layers.
        p.attentionResidualBlock = try reader.optional("attn_res_block_size", atLeast: 1)
        p.rope = try reader.rope(rotaryDimension: mla.qkRopeHeadDim)
        return p
    }

    /// `hidden_act`: silu (Kimi Linear) or situ with its two soft-clip widths (Kimi K3; SGLang
    /// takes a missing `activation_situ_beta` as 1).
    static func activation(_ c: JSONObject) throws -> GatedActivation {
        switch try c.string("hidden_act") ?? "silu" {
        case "silu": return .silu
        case "situ":
            // Widths from 10⁻⁶ to 10⁶: in Float (the runtime's) they stay normal and finite.
            let widths = 1e-6...1e6
            let beta = try c.double("activation_situ_beta") ?? 1, linear = try c.double("activation_situ_linear_beta")
            guard widths.contains(beta) else { throw c.error("activation_situ_beta", "must be from 1e-6 to 1e6, got \(beta)") }
            if let linear, !widths.contains(linear) {
                throw c.error("activation_situ_linear_beta", "must be from 1e-6 to 1e6, got \(linear)")
            }
            return .situ(beta: beta, linearBeta: linear)
        case let other:
            throw c.error("hidden_act", "'\(other)' is not an activation moesim runs for this family; supported: silu, situ")
        }
    }
}
