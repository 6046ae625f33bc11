"""Builds the runtime's parity fixtures with HuggingFace transformers (an independent implementation).

For each architecture: a tiny random-weight model (seeded), saved with save_pretrained as float32
safetensors, plus expected.json holding the prompt ids, the logits of every prompt position, the
experts each router selected per token per MoE layer, and the greedy continuation of 8 tokens.

Run once (CI only reads the results); name fixtures to build only those:
    python3 -m venv /tmp/fixvenv && /tmp/fixvenv/bin/pip install torch==2.13.0+cpu transformers==5.24.0 safetensors
    /tmp/fixvenv/bin/python Tests/CPURuntimeTests/Fixtures/make_fixtures.py [name ...]
"""
import json
import os
import sys

import torch
import transformers
from transformers import AutoModelForCausalLM, DeepseekV3Config, MixtralConfig, Qwen3MoeConfig
from transformers.models.qwen3_5_moe.configuration_qwen3_5_moe import Qwen3_5MoeTextConfig
from transformers import MiniMaxM2Config, DeepseekV32Config, GlmMoeDsaConfig, GptOssConfig, KimiLinearConfig, Llama4TextConfig
from transformers import DeepseekV4Config, Qwen3NextConfig, Glm4MoeConfig, MiMoV2FlashConfig
from transformers.models.kimi_k25.configuration_kimi_k25 import Kimi_K25Config
from safetensors.torch import load_file, save_file

HERE = os.path.dirname(os.path.abspath(__file__))
PROMPT = [3, 17, 42, 5, 99, 64, 7, 23, 11, 80]
NEW_TOKENS = 8

# YaRN as DeepSeek-V3/V3.2 ship it (mscale and mscale_all_dim 1: cos/sin unscaled, MLA's softmax
# scale × mscale²), with a small original context so that the ramp splits the 4 rotary pairs.
YARN_DEEPSEEK = {"rope_type": "yarn", "rope_theta": 10000.0, "factor": 4.0, "beta_fast": 32, "beta_slow": 1, "mscale": 1.0,
                 "mscale_all_dim": 1.0, "original_max_position_embeddings": 64}

common = dict(vocab_size=128, hidden_size=64, num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
              rms_norm_eps=1e-6, tie_word_embeddings=False, torch_dtype="float32")

# DeepSeek-V3's tiny text model, as the DeepSeek-V3 fixture and Kimi K2.5's body share it.
DEEPSEEK_V3_TEXT = dict(**{**common, "num_key_value_heads": 4}, intermediate_size=128, moe_intermediate_size=32,
                        num_hidden_layers=3, first_k_dense_replace=1, n_routed_experts=16, n_shared_experts=1,
                        num_experts_per_tok=4, n_group=4, topk_group=2, routed_scaling_factor=2.5,
                        norm_topk_prob=True, q_lora_rank=48, kv_lora_rank=32, qk_nope_head_dim=16,
                        qk_rope_head_dim=8, v_head_dim=16, rope_interleave=True,
                        rope_parameters=YARN_DEEPSEEK)

configs = {
    "mixtral": MixtralConfig(**common, intermediate_size=96, num_hidden_layers=2, num_local_experts=6,
                             num_experts_per_tok=2, rope_theta=10000.0, sliding_window=None),
    "qwen3_moe": Qwen3MoeConfig(**common, intermediate_size=128, moe_intermediate_size=48, num_hidden_layers=2,
                                num_experts=8, num_experts_per_tok=3, norm_topk_prob=True, head_dim=32,
                                decoder_sparse_step=1, mlp_only_layers=[], rope_theta=1000000.0),
    "deepseek_v3": DeepseekV3Config(**DEEPSEEK_V3_TEXT),
    # GLM-4.5 (glm4_moe): GQA with q/k/v biases and per-head q/k norms, rotary on half of each head
    # (half-split lanes), a dense first layer, then sigmoid routing with a selection bias in 2
    # groups (1 kept) and a shared expert.
    "glm4_moe": Glm4MoeConfig(**common, intermediate_size=96, moe_intermediate_size=32, num_hidden_layers=3, head_dim=16,
                              attention_bias=True, use_qk_norm=True, first_k_dense_replace=1, n_routed_experts=8,
                              num_experts_per_tok=2, n_shared_experts=1, n_group=2, topk_group=1, routed_scaling_factor=1.5,
                              norm_topk_prob=True, rope_parameters={"rope_type": "default", "rope_theta": 10000.0,
                                                                    "partial_rotary_factor": 0.5}),
    # MiMo-V2-Flash: full layers (first and last) and sliding layers of 3 earlier tokens plus the
    # query (sliding_window_size 3, transformers' window 4) with twice the KV heads and attention
    # sinks; keys of 24 lanes, values of 16, rotary on a third of each head at θ 50,000 on the
    # full layers and 10,000 on the sliding ones; values scaled by 0.707; a dense first layer,
    # then sigmoid routing with a selection bias and no shared expert.
    "mimo_v2_flash": MiMoV2FlashConfig(**{**common, "num_key_value_heads": 1}, intermediate_size=96, moe_intermediate_size=16,
                                       num_hidden_layers=4, head_dim=24, v_head_dim=16, n_routed_experts=8,
                                       num_experts_per_tok=2, n_group=1, topk_group=1, norm_topk_prob=True,
                                       layer_types=["full_attention", "sliding_attention", "sliding_attention", "full_attention"],
                                       sliding_window_size=3, attention_value_scale=0.707,
                                       rope_parameters={"full_attention": {"rope_type": "default", "rope_theta": 50000.0,
                                                                           "partial_rotary_factor": 0.334},
                                                        "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0,
                                                                              "partial_rotary_factor": 0.334}}),
    # Kimi K2.5: the Kimi K2 (DeepSeek-V3) body under text_config beside a one-layer vision tower,
    # run on text alone. transformers 5.24 saves its language model's layers as `blocks.N`; the
    # release's checkpoint names them `language_model.model.layers.N` (SGLang's kimi_k25 loader),
    # which the generator writes instead.
    "kimi_k25": Kimi_K25Config(text_config={"model_type": "deepseek_v3", **DEEPSEEK_V3_TEXT},
                               vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                                  num_attention_heads=2),
                               projection_hidden_size=32, tie_word_embeddings=False, torch_dtype="float32"),
    # Qwen3.5: Gated DeltaNet on three layers of four, gated attention with partial rotary on the
    # fourth, softmax MoE with a gated shared expert on every layer. Two value heads per key head.
    "qwen3_5_moe": Qwen3_5MoeTextConfig(**common, num_hidden_layers=4, head_dim=16, moe_intermediate_size=24,
                                        shared_expert_intermediate_size=32, num_experts=8, num_experts_per_tok=2,
                                        linear_num_key_heads=2, linear_num_value_heads=4, linear_key_head_dim=8,
                                        linear_value_head_dim=8, linear_conv_kernel_dim=4, partial_rotary_factor=0.25,
                                        layer_types=["linear_attention", "linear_attention", "linear_attention",
                                                     "full_attention"], rope_parameters={"rope_type": "default",
                                                     "rope_theta": 10000.0, "partial_rotary_factor": 0.25}),
    # Qwen3-Next: Qwen3.5's layers with the linear attention's projections fused (q, k, v, z per
    # key head; b, a per key head), a 4-layer pattern of three Gated DeltaNet layers and one gated
    # attention layer, two value heads per key head of twice the key's width, a dense first layer.
    "qwen3_next": Qwen3NextConfig(**common, intermediate_size=96, num_hidden_layers=4, head_dim=16, moe_intermediate_size=24,
                                  shared_expert_intermediate_size=32, num_experts=8, num_experts_per_tok=2,
                                  linear_num_key_heads=2, linear_num_value_heads=4, linear_key_head_dim=8,
                                  linear_value_head_dim=16, linear_conv_kernel_dim=4, partial_rotary_factor=0.25,
                                  decoder_sparse_step=1, mlp_only_layers=[0]),
    # MiniMax-M2: q/k RMSNorm over the whole projections, rotary on half of each head, sigmoid
    # router with a selection bias (on the MoE block), no shared expert.
    "minimax_m2": MiniMaxM2Config(**common, intermediate_size=24, num_hidden_layers=2, num_local_experts=8,
                                  num_experts_per_tok=2, head_dim=16, rotary_dim=8, rope_theta=10000.0),
    # DeepSeek-V3.2: DeepSeek-V3's MLA and MoE plus the lightning indexer choosing the top 4 tokens
    # per query, so that a 10-token prompt's later queries drop keys.
    "deepseek_v32": DeepseekV32Config(**{**common, "num_key_value_heads": 4}, intermediate_size=128, moe_intermediate_size=32,
                                      num_hidden_layers=3, first_k_dense_replace=1, n_routed_experts=16, n_shared_experts=1,
                                      num_experts_per_tok=4, n_group=4, topk_group=2, routed_scaling_factor=2.5,
                                      norm_topk_prob=True, q_lora_rank=48, kv_lora_rank=32, qk_nope_head_dim=16,
                                      qk_rope_head_dim=8, v_head_dim=16, index_n_heads=8,
                                      index_head_dim=16, index_topk=4, rope_parameters=YARN_DEEPSEEK),
    # GLM-5: the same sparse attention with an interleaved indexer rotary, and layer 2 "shared":
    # it reuses layer 1's top-k (index_topk_freq 2 after an offset of 2).
    "glm_moe_dsa": GlmMoeDsaConfig(**{**common, "num_key_value_heads": 4}, intermediate_size=128, moe_intermediate_size=32,
                                   num_hidden_layers=4, first_k_dense_replace=1, n_routed_experts=16, n_shared_experts=1,
                                   num_experts_per_tok=4, n_group=1, topk_group=1, routed_scaling_factor=2.5,
                                   norm_topk_prob=True, q_lora_rank=48, kv_lora_rank=32, qk_nope_head_dim=16,
                                   qk_rope_head_dim=8, v_head_dim=16, index_n_heads=8, index_head_dim=16, index_topk=4,
                                   index_topk_freq=2, rope_parameters={"rope_type": "default", "rope_theta": 10000.0}),
    # gpt-oss: sliding (4 tokens, so that the prompt drops keys) and full layers alternating, attention
    # sinks, biases on q/k/v/o, the router and the experts, the clamped SwiGLU; experts in float32;
    # YaRN without truncation as its checkpoints (factor 32 there), so cos/sin carry the 1.14 factor.
    "gpt_oss": GptOssConfig(**common, intermediate_size=32, num_hidden_layers=2, num_local_experts=8,
                            num_experts_per_tok=2, head_dim=16, sliding_window=4, attention_bias=True, swiglu_limit=0.05,
                            rope_parameters={"rope_type": "yarn", "rope_theta": 10000.0, "factor": 4.0, "beta_fast": 32.0,
                                             "beta_slow": 1.0, "original_max_position_embeddings": 64, "truncate": False}),
    # Kimi Linear: Kimi Delta Attention on layers 1-3 (1-indexed), MLA without rotary on layer 4,
    # a dense first layer, then sigmoid-routed MoE with a selection bias and a shared expert.
    "kimi_linear": KimiLinearConfig(**{**common, "num_key_value_heads": 4}, intermediate_size=128, moe_intermediate_size=32,
                                    num_hidden_layers=4, num_local_experts=8, num_experts_per_tok=2, n_shared_experts=1,
                                    first_k_dense_replace=1, q_lora_rank=None, kv_lora_rank=32, qk_nope_head_dim=16,
                                    qk_rope_head_dim=8, v_head_dim=16, routed_scaling_factor=2.446,
                                    linear_attn_config={"head_dim": 8, "num_heads": 4, "short_conv_kernel_size": 4,
                                                        "full_attn_layers": [4], "kda_layers": [1, 2, 3]}, pad_token_id=0,
                                    bos_token_id=1, eos_token_id=2),
    # Llama 4 (text): chunked attention with 4-token chunks on the RoPE layers (so the prompt's later
    # queries drop keys), a global NoPE layer (layer 3 of 4, 1-indexed) with attention temperature
    # tuning (floor_scale 2 so that it varies over the prompt), L2 q/k norm on the RoPE layers, MoE
    # on every second layer (sigmoid top-1 scaling the expert's input, one shared expert), dense
    # layers of intermediate_size_mlp between.
    "llama4": Llama4TextConfig(**common, intermediate_size=32, intermediate_size_mlp=96, num_hidden_layers=4,
                               num_local_experts=8, num_experts_per_tok=1, head_dim=16, interleave_moe_layer_step=2,
                               no_rope_layer_interval=3, attention_chunk_size=4, use_qk_norm=True,
                               attn_temperature_tuning=True, floor_scale=2, attn_scale=0.1,
                               rope_parameters={"rope_type": "default", "rope_theta": 10000.0}),
    # DeepSeek-V4: a sliding-window layer, CSA layers (one compressed entry per 2 tokens over
    # overlapping windows, the indexer keeping the top 2) and an HCA layer (one per 4 tokens), all
    # with a 4-token window so that the 10-token prompt drops keys; three residual streams
    # (hyper-connections: a 3 × 3 doubly-stochastic mix is not symmetric, so its orientation
    # counts), the first layer hash-routed, the clamped SwiGLU biting (limit 0.5); rotary on the
    # last half of each head, the compressed layers at their own theta with YaRN (cos/sin
    # unscaled, as V4 forces); head, index-head, query and output ranks all different. Eight index
    # heads: with fewer, ReLU zeroes whole scores and torch.topk breaks the ties its own way (the
    # generator checks that no choice of the run is a tie).
    "deepseek_v4": DeepseekV4Config(vocab_size=128, hidden_size=64, num_attention_heads=4, head_dim=16, q_lora_rank=24,
                                    partial_rotary_factor=0.5, num_hidden_layers=4,
                                    layer_types=["sliding_attention", "compressed_sparse_attention",
                                                 "heavily_compressed_attention", "compressed_sparse_attention"],
                                    compress_rates={"compressed_sparse_attention": 2, "heavily_compressed_attention": 4},
                                    mlp_layer_types=["hash_moe", "moe", "moe", "moe"], sliding_window=4, o_groups=2,
                                    o_lora_rank=12, index_n_heads=8, index_head_dim=8, index_topk=2, hc_mult=3,
                                    n_routed_experts=8, num_experts_per_tok=2, moe_intermediate_size=32, swiglu_limit=0.5,
                                    routed_scaling_factor=1.5, rope_theta=10000.0, compress_rope_theta=40000.0,
                                    rope_parameters={"rope_type": "yarn", "factor": 4.0, "beta_fast": 32, "beta_slow": 1,
                                                     "original_max_position_embeddings": 64},
                                    max_position_embeddings=256, rms_norm_eps=1e-6, tie_word_embeddings=False,
                                    torch_dtype="float32", pad_token_id=0, bos_token_id=1, eos_token_id=2),
}


def text_layers(model, name):
    return model.model.language_model.layers if name == "kimi_k25" else model.model.layers


def capture_routing(model, name):
    """Forward hooks that record the experts chosen per token in every MoE layer."""
    chosen = {}
    hooks = []
    for index, layer in enumerate(text_layers(model, name)):
        mlp = layer.feed_forward if name == "llama4" else layer.mlp
        if name == "deepseek_v4":
            def hook(module, args, output, index=index):
                chosen[index] = sorted_rows(output[2])
            hooks.append(mlp.gate.register_forward_hook(hook))
            continue
        if name in ("deepseek_v3", "deepseek_v32", "glm_moe_dsa", "kimi_linear", "kimi_k25", "glm4_moe", "mimo_v2_flash"):
            gate = getattr(mlp, "gate", None)
            if gate is None or not hasattr(gate, "e_score_correction_bias"):
                continue
            def hook(module, args, output, index=index):
                chosen[index] = sorted_rows(output[2])
        else:
            gate = getattr(mlp, "gate", None) or getattr(mlp, "router", None)
            if gate is None:
                continue
            k = model.config.num_experts_per_tok
            def hook(module, args, output, index=index, k=k):
                if isinstance(output, tuple) and len(output) == 3 and name == "minimax_m2":
                    chosen[index] = sorted_rows(output[2])  # the router's own choice (sigmoid + bias)
                    return
                if name == "llama4":
                    chosen[index] = sorted_rows(torch.topk(output[1].float(), k, dim=-1)[1])  # (scores, logits)
                    return
                logits = output[0] if isinstance(output, tuple) else output
                chosen[index] = sorted_rows(torch.topk(torch.softmax(logits.float(), dim=-1), k, dim=-1)[1])
        hooks.append(gate.register_forward_hook(hook))
    return chosen, hooks


def sorted_rows(indices):
    return [sorted(int(i) for i in row) for row in indices.reshape(-1, indices.shape[-1]).tolist()]


wanted = sys.argv[1:] or list(configs)
for name, config in configs.items():
    if name not in wanted:
        continue
    torch.manual_seed(1234)
    if name == "kimi_k25":
        from transformers.models.kimi_k25.modeling_kimi_k25 import Kimi_K25ForConditionalGeneration
        model = Kimi_K25ForConditionalGeneration(config).float().eval()
    else:
        model = AutoModelForCausalLM.from_config(config).float().eval()
    with torch.no_grad():
        if name == "gpt_oss":
            # Non-zero expert biases (zero at init); the small swiglu_limit above makes the clamp bite.
            for layer in model.model.layers:
                layer.mlp.experts.gate_up_proj_bias.normal_(0, 0.1)
                layer.mlp.experts.down_proj_bias.normal_(0, 0.1)
        if name == "qwen3_next":
            # Decisive routing (router weights at 0.5, not 0.02): bf16 weights then keep the choices.
            for layer in model.model.layers:
                if hasattr(layer.mlp, "gate"):
                    layer.mlp.gate.weight.normal_(0, 0.5)
        if name == "minimax_m2":
            for layer in model.model.layers:
                layer.mlp.e_score_correction_bias.copy_(torch.randn(config.num_local_experts) * 0.5)
                layer.mlp.gate.weight.normal_(0, 0.5)
        if name == "mimo_v2_flash":
            # Sinks large enough to matter (the sliding layers').
            for layer in model.model.layers:
                if layer.self_attn.sinks is not None:
                    layer.self_attn.sinks.normal_(0, 1)
        if name in ("deepseek_v3", "deepseek_v32", "glm_moe_dsa", "kimi_linear", "kimi_k25", "glm4_moe", "mimo_v2_flash"):
            # A non-zero selection bias, so that biased selection is exercised.
            for layer in text_layers(model, name):
                if hasattr(layer.mlp, "gate") and hasattr(layer.mlp.gate, "e_score_correction_bias"):
                    layer.mlp.gate.e_score_correction_bias.copy_(torch.randn(layer.mlp.gate.e_score_correction_bias.numel()) * 0.5)
                    layer.mlp.gate.weight.normal_(0, 0.5)
        if name == "deepseek_v4":
            # Hash routing reads a token → experts table (zeros at init; a checkpoint's is fixed):
            # distinct random experts per token. Selection biases, sinks, the compressors' position
            # biases and the hyper-connections' mixers large enough to matter.
            g = torch.Generator().manual_seed(7)
            for layer in model.model.layers:
                gate = layer.mlp.gate
                if hasattr(gate, "tid2eid"):
                    gate.tid2eid.copy_(torch.stack([torch.randperm(config.n_routed_experts, generator=g)[:config.num_experts_per_tok]
                                                    for _ in range(config.vocab_size)]))
                else:
                    gate.e_score_correction_bias.copy_(torch.randn(config.n_routed_experts, generator=g) * 0.5)
                gate.weight.normal_(0, 0.5, generator=g)
                layer.self_attn.sinks.normal_(0, 1, generator=g)
                for hc in (layer.attn_hc, layer.ffn_hc):
                    hc.fn.normal_(0, 0.5, generator=g)
                    hc.base.normal_(0, 0.5, generator=g)
                    hc.scale.uniform_(0.5, 1.5, generator=g)
                for module in layer.modules():
                    if hasattr(module, "position_bias"):
                        module.position_bias.normal_(0, 0.5, generator=g)
            head = model.model.hc_head
            head.hc_fn.normal_(0, 0.5, generator=g)
            head.hc_base.normal_(0, 0.5, generator=g)
            head.hc_scale.uniform_(0.5, 1.5, generator=g)
        for p in model.parameters():
            if p.dim() == 1 and (p.abs().sum() == p.numel() or p.abs().sum() == 0):  # norms at one (or zero-centred): perturb
                p.add_(torch.randn_like(p) * 0.1)
    folder = os.path.join(HERE, name)
    os.makedirs(folder, exist_ok=True)
    model.save_pretrained(folder, safe_serialization=True)
    if name == "kimi_k25":
        path = os.path.join(folder, "model.safetensors")
        tensors = load_file(path)
        save_file({k.replace("language_model.model.blocks.", "language_model.model.layers."): v for k, v in tensors.items()}, path)
    chosen, hooks = capture_routing(model, name)
    if name == "deepseek_v4":
        # The indexer's choice must be unambiguous: the k-th and (k+1)-th visible scores differ.
        def tie_check(module, args, output):
            q, compressed, hidden = args
            scores = output[0]
            ratio = config.compress_rates["compressed_sparse_attention"]
            for row in range(scores.shape[0]):
                # A prefill from position 0 sees the entries of complete windows up to each query;
                # a decode step sees every entry emitted so far.
                seen = (row + 1) // ratio if scores.shape[0] > 1 else scores.shape[1]
                visible = sorted(scores[row, :seen].tolist(), reverse=True)
                k = config.index_topk
                if len(visible) > k and abs(visible[k - 1] - visible[k]) < 1e-6:
                    raise SystemExit(f"deepseek_v4: tied indexer scores {visible}")
        for layer in model.model.layers:
            compressor = layer.self_attn.compressor
            if compressor is not None and hasattr(compressor, "indexer"):
                hooks.append(compressor.indexer.scorer.register_forward_hook(tie_check))
    ids = torch.tensor([PROMPT])
    with torch.no_grad():
        logits = model(ids).logits[0]
    for h in hooks:
        h.remove()
    with torch.no_grad():
        generated = model.generate(ids, max_new_tokens=NEW_TOKENS, do_sample=False, eos_token_id=None,
                                   pad_token_id=0)[0, len(PROMPT):]
    extra = {}
    if name == "deepseek_v4":
        # The decode steps' own logits, and the prompt run in two passes through one cache (split
        # inside a CSA window and an HCA window), so that the compressors' state carried across
        # passes is checked against transformers too.
        with torch.no_grad():
            run = model.generate(ids, max_new_tokens=NEW_TOKENS, do_sample=False, eos_token_id=None, pad_token_id=0,
                                 output_logits=True, return_dict_in_generate=True)
            split = 5
            first = model(ids[:, :split], use_cache=True)
            second = model(ids[:, split:], past_key_values=first.past_key_values, use_cache=True)
        extra = {"decode_logits": [[round(float(v), 6) for v in step[0]] for step in run.logits],
                 "split_at": split, "split_logits": [[round(float(v), 6) for v in row] for row in second.logits[0]]}
    expected = {
        **extra,
        "generator": f"transformers {transformers.__version__}, torch {torch.__version__}",
        "prompt": PROMPT,
        "logits": [[round(float(v), 6) for v in row] for row in logits],
        "experts": {str(k): v for k, v in sorted(chosen.items())},
        "greedy": [int(t) for t in generated],
    }
    with open(os.path.join(folder, "expected.json"), "w") as f:
        json.dump(expected, f)
    print(name, "layers with routing:", sorted(chosen), "greedy:", expected["greedy"])
