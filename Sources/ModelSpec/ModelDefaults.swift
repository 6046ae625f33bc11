/// transformers' defaults for the config fields moesim reads, per `model_type` (the values of the
/// `*Config.__init__` keyword arguments, transformers 4.5x). A field absent from a file takes
/// this value; a field present as `null` means None, as in transformers, and takes no default.
/// A key listed here is also what `--set` may override: any other key is refused.
enum ModelDefaults {
    static var deepseekV3: [String: Any] { [
        "vocab_size": 129_280, "hidden_size": 7168, "intermediate_size": 18432, "moe_intermediate_size": 2048,
        "num_hidden_layers": 61, "num_attention_heads": 128, "num_key_value_heads": 128,
        "n_shared_experts": 1, "n_routed_experts": 256, "routed_scaling_factor": 2.5,
        "kv_lora_rank": 512, "q_lora_rank": 1536, "qk_rope_head_dim": 64, "v_head_dim": 128,
        "qk_nope_head_dim": 128, "n_group": 8, "topk_group": 4, "num_experts_per_tok": 8,
        "first_k_dense_replace": 3, "moe_layer_freq": 1, "norm_topk_prob": true, "scoring_func": "sigmoid",
        "topk_method": "noaux_tc", "max_position_embeddings": 4096, "rms_norm_eps": 1e-6,
        "tie_word_embeddings": false, "rope_theta": 10000.0, "num_nextn_predict_layers": 0,
        "rope_scaling": NSNullMarker.none, "rope_parameters": NSNullMarker.none,
    ] }

    static var qwen3Moe: [String: Any] { [
        "vocab_size": 151_936, "hidden_size": 2048, "intermediate_size": 6144, "num_hidden_layers": 24,
        "num_attention_heads": 32, "num_key_value_heads": 4, "head_dim": 128,
        "max_position_embeddings": 32768, "rms_norm_eps": 1e-6, "tie_word_embeddings": false,
        "rope_theta": 10000.0, "attention_bias": false, "use_sliding_window": false, "sliding_window": 4096,
        "max_window_layers": 28, "decoder_sparse_step": 1, "moe_intermediate_size": 768,
        "num_experts_per_tok": 8, "num_experts": 128, "norm_topk_prob": false, "mlp_only_layers": [Int](),
        "rope_scaling": NSNullMarker.none, "rope_parameters": NSNullMarker.none,
    ] }

    static var qwen2Moe: [String: Any] { [
        "vocab_size": 151_936, "hidden_size": 2048, "intermediate_size": 5632, "num_hidden_layers": 24,
        "num_attention_heads": 16, "num_key_value_heads": 16, "max_position_embeddings": 32768,
        "rms_norm_eps": 1e-6, "tie_word_embeddings": false, "rope_theta": 10000.0,
        "use_sliding_window": false, "sliding_window": 4096, "max_window_layers": 28,
        "decoder_sparse_step": 1, "moe_intermediate_size": 1408, "shared_expert_intermediate_size": 5632,
        "num_experts_per_tok": 4, "num_experts": 60, "norm_topk_prob": false, "mlp_only_layers": [Int](),
        "rope_scaling": NSNullMarker.none, "rope_parameters": NSNullMarker.none, "head_dim": NSNullMarker.none,
    ] }

    static var mixtral: [String: Any] { [
        "vocab_size": 32000, "hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32,
        "num_attention_heads": 32, "num_key_value_heads": 8, "max_position_embeddings": 131_072,
        "rms_norm_eps": 1e-5, "tie_word_embeddings": false, "rope_theta": 1e6, "num_experts_per_tok": 2,
        "num_local_experts": 8, "sliding_window": NSNullMarker.none, "head_dim": NSNullMarker.none,
        "rope_scaling": NSNullMarker.none, "rope_parameters": NSNullMarker.none,
    ] }

    static var llama4Text: [String: Any] { [
        "vocab_size": 202_048, "hidden_size": 5120, "intermediate_size": 8192, "intermediate_size_mlp": 16384,
        "num_hidden_layers": 48, "num_attention_heads": 40, "num_key_value_heads": 8, "head_dim": 128,
        "max_position_embeddings": 131_072, "rms_norm_eps": 1e-5, "rope_theta": 500_000.0,
        "num_experts_per_tok": 1, "num_local_experts": 16, "interleave_moe_layer_step": 1,
        "use_qk_norm": true, "attention_chunk_size": 8192, "no_rope_layer_interval": 4,
        "tie_word_embeddings": false, "rope_scaling": NSNullMarker.none, "rope_parameters": NSNullMarker.none,
    ] }

    static var gptOss: [String: Any] { [
        "num_hidden_layers": 36, "num_local_experts": 128, "vocab_size": 201_088, "hidden_size": 2880,
        "intermediate_size": 2880, "head_dim": 64, "num_attention_heads": 64, "num_key_value_heads": 8,
        "sliding_window": 128, "rope_theta": 150_000.0, "tie_word_embeddings": false, "rms_norm_eps": 1e-5,
        "attention_bias": true, "max_position_embeddings": 131_072, "num_experts_per_tok": 4,
        "experts_per_token": 4, "layer_types": NSNullMarker.none,
        "rope_scaling": NSNullMarker.none, "rope_parameters": NSNullMarker.none,
    ] }

    static var llama: [String: Any] { [
        "vocab_size": 32000, "hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32,
        "num_attention_heads": 32, "max_position_embeddings": 2048, "rms_norm_eps": 1e-6,
        "tie_word_embeddings": false, "rope_theta": 10000.0, "attention_bias": false,
        "num_key_value_heads": NSNullMarker.none, "head_dim": NSNullMarker.none,
        "rope_scaling": NSNullMarker.none, "rope_parameters": NSNullMarker.none,
    ] }

    static var qwen3: [String: Any] { [
        "vocab_size": 151_936, "hidden_size": 4096, "intermediate_size": 22016, "num_hidden_layers": 32,
        "num_attention_heads": 32, "num_key_value_heads": 32, "head_dim": 128,
        "max_position_embeddings": 32768, "rms_norm_eps": 1e-6, "tie_word_embeddings": false,
        "rope_theta": 10000.0, "attention_bias": false,
        "rope_scaling": NSNullMarker.none, "rope_parameters": NSNullMarker.none,
    ] }

    /// Defaults by model_type; the keys of this table are the supported model types.
    static var byModelType: [String: [String: Any]] { [
        "deepseek_v3": deepseekV3, "kimi_k2": deepseekV3, "qwen3_moe": qwen3Moe, "qwen2_moe": qwen2Moe,
        "mixtral": mixtral, "llama4": llama4Text, "gpt_oss": gptOss, "llama": llama, "qwen3": qwen3,
    ] }
}

extension ModelDefaults {
    /// Field names transformers 5 writes in place of older ones, by model type: newer → older.
    static var aliases: [String: [String: String]] {
        ["qwen3_moe": ["num_local_experts": "num_experts"], "qwen2_moe": ["num_local_experts": "num_experts"]]
    }
}

/// Marks a key moesim reads whose transformers default is None: known (so `--set` may name it),
/// but nothing is filled in when a file leaves it out.
enum NSNullMarker { case none }
