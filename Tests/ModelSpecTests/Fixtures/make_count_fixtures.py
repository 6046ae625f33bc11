"""Tiny configs of the model types whose real configs transformers-params.json does not cover,
with transformers' own parameter counts (an independent implementation of the counting).

For each: the config as transformers saves it (tiny/<model_type>/config.json) and, in
tiny/counts.json, `total_params` (num_parameters() of the causal LM built on the meta device:
parameters only, no buffers) and `active_params` (total less, in every MoE layer, the share
(E - k) / E of its routed experts' parameters, as transformers-params.json defines it).

Run once (CI only reads the results):
    /tmp/fixvenv/bin/python Tests/ModelSpecTests/Fixtures/make_count_fixtures.py
"""
import json
import os

import torch
import transformers
from transformers import AutoModelForCausalLM
from transformers import Glm4MoeConfig, KimiLinearConfig, Llama4TextConfig, Qwen2MoeConfig, Qwen3Config, Qwen3NextConfig
from transformers.models.qwen3_5_moe.configuration_qwen3_5_moe import Qwen3_5MoeTextConfig

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tiny")
common = dict(vocab_size=96, hidden_size=64, num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
              rms_norm_eps=1e-6, tie_word_embeddings=False)

configs = {
    "qwen3": Qwen3Config(**common, intermediate_size=96, num_hidden_layers=2, head_dim=16),
    "qwen2_moe": Qwen2MoeConfig(**common, intermediate_size=96, moe_intermediate_size=24, shared_expert_intermediate_size=48,
                                num_hidden_layers=3, num_experts=6, num_experts_per_tok=2, decoder_sparse_step=1,
                                mlp_only_layers=[0], qkv_bias=True),
    "glm4_moe": Glm4MoeConfig(**common, intermediate_size=96, moe_intermediate_size=24, num_hidden_layers=3, n_routed_experts=8,
                              n_shared_experts=1, num_experts_per_tok=2, first_k_dense_replace=1, head_dim=16,
                              partial_rotary_factor=0.5, use_qk_norm=True, attention_bias=True, n_group=1, topk_group=1),
    "qwen3_next": Qwen3NextConfig(**common, intermediate_size=96, moe_intermediate_size=24, shared_expert_intermediate_size=32,
                                  num_hidden_layers=4, num_experts=8, num_experts_per_tok=2, head_dim=16,
                                  linear_num_key_heads=2, linear_num_value_heads=4, linear_key_head_dim=8,
                                  linear_value_head_dim=16, linear_conv_kernel_dim=4, decoder_sparse_step=1, mlp_only_layers=[0]),
    "qwen3_5_moe_text": Qwen3_5MoeTextConfig(**common, num_hidden_layers=4, head_dim=16, moe_intermediate_size=24,
                                             shared_expert_intermediate_size=32, num_experts=8, num_experts_per_tok=2,
                                             linear_num_key_heads=2, linear_num_value_heads=4, linear_key_head_dim=8,
                                             linear_value_head_dim=8, linear_conv_kernel_dim=4),
    "kimi_linear": KimiLinearConfig(**{**common, "num_key_value_heads": 4}, intermediate_size=96, moe_intermediate_size=24,
                                    num_hidden_layers=4, num_local_experts=8, num_experts_per_tok=2, n_shared_experts=1,
                                    first_k_dense_replace=1, q_lora_rank=None, kv_lora_rank=32, qk_nope_head_dim=16,
                                    qk_rope_head_dim=8, v_head_dim=16,
                                    linear_attn_config={"head_dim": 8, "num_heads": 4, "short_conv_kernel_size": 4,
                                                        "full_attn_layers": [4], "kda_layers": [1, 2, 3]}, pad_token_id=0, bos_token_id=1,
                                    eos_token_id=2),
    "llama4_text": Llama4TextConfig(**common, intermediate_size=32, intermediate_size_mlp=96, num_hidden_layers=4,
                                    num_local_experts=8, num_experts_per_tok=1, head_dim=16, interleave_moe_layer_step=2),
}


def routed_expert_share(model, config):
    """Parameters of the routed experts a token does not use, over all MoE layers."""
    experts = getattr(config, "num_experts", None) or getattr(config, "n_routed_experts", None) \
        or getattr(config, "num_local_experts", None)
    if not experts:
        return 0
    k = config.num_experts_per_tok
    unused = 0
    for name, module in model.named_modules():
        if name.endswith(".experts"):
            params = sum(p.numel() for p in module.parameters())
            assert params % experts == 0, name
            unused += params // experts * (experts - k)
    return unused


counts = {}
for name, config in configs.items():
    folder = os.path.join(HERE, name)
    os.makedirs(folder, exist_ok=True)
    config.save_pretrained(folder)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    total = model.num_parameters()
    counts[name] = {"total_params": total, "active_params": total - routed_expert_share(model, config)}
    print(name, counts[name])

with open(os.path.join(HERE, "counts.json"), "w") as f:
    json.dump({"generator": f"transformers {transformers.__version__}, torch {torch.__version__}", "models": counts}, f, indent=1)
