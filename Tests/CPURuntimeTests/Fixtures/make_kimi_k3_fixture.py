"""Builds the runtime's Kimi K3 parity fixture (Fixtures/kimi_k3).

transformers 5.24 holds no Kimi K3, so this is the closest independent implementation there is:
transformers' own Kimi Linear modules (its Kimi Delta Attention with the chunked and recurrent
delta rule, its MLA, its sigmoid router with the selection bias) run with Kimi K3's additions
written here in plain torch from the published semantics (SGLang's python/sglang/srt/models/
kimi_k3.py, layers/attn_residual.py and layers/activation.py SituAndMul; Moonshot's modelling code):

- the SiTU activation in every MLP and expert: beta·tanh(g/beta)·σ(g) · linear_beta·tanh(u/linear_beta);
- the full-rank KDA output gate (g_proj in place of g_a_proj/g_b_proj) and the bounded forget
  gate g = lower_bound · σ(exp(A_log) · (f + dt_bias)), A_log stored [head_dim] with the heads'
  values first and zeros after, as K3's checkpoint stores it;
- MLA's output gate: attention output ⊙ σ(g_proj(x)) before o_proj;
- LatentMoE: router on x; experts on routed_expert_down_proj(x); RMSNorm of their weighted sum;
  routed_expert_up_proj back; shared experts on x;
- attention residuals: a bank of block snapshots (the embedding first) and the partial sum since
  the last, mixed per token by softmax((norm ⊙ proj) · v / rms(v)) before each block and the head.

The fixture is small and its constants chosen so that every addition bites, and so that the model
stays well conditioned (bf16 weights must move the logits by bf16's rounding, not by chaos):
SiTU's widths (0.25 and 0.2) against gate/up values of about 0.5 to 1; the attention residuals'
projections (std 0.05, scores of order one: far from uniform, not a hard max); a block snapshot
every 2 layers of 6 (snapshots at layers 0, 2 and 4); two MLA layers back to back as K3's last
two; an 80-token prompt, so that KDA's chunked prefill crosses chunks of 64 and sub-chunks of
16. Leaving out any one addition moves the logits by 0.36 (MLA's output gate) to 0.92 (SiTU). The
logits of every prompt position, the experts per token per MoE layer and a greedy continuation
of 8 tokens (each step a full forward pass over the growing sequence: no cache, so the
runtime's cache is checked too) go to
expected.json; the weights to model.safetensors under K3's checkpoint names
(`language_model.model.layers.N…`), the config as K3's (model_type kimi_k3, text_config).

    /tmp/fixvenv/bin/python Tests/CPURuntimeTests/Fixtures/make_kimi_k3_fixture.py
"""
import json
import os

import torch
import transformers
from safetensors.torch import save_file
from torch import nn
from transformers import AutoModelForCausalLM, KimiLinearConfig

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "kimi_k3")
# 80 tokens: past one chunk of 64, so the chunked delta rule crosses chunks and sub-chunks of 16;
# the other fixtures' 10-token prompt first.
PROMPT = [3, 17, 42, 5, 99, 64, 7, 23, 11, 80] + [(7 * i * i + 3 * i + 5) % 128 for i in range(10, 80)]
NEW_TOKENS = 8
BETA, LINEAR_BETA, LOWER_BOUND, BLOCK, LATENT = 0.25, 0.2, -5.0, 2, 32

text = dict(vocab_size=128, hidden_size=64, num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=256,
            rms_norm_eps=1e-6, tie_word_embeddings=False, intermediate_size=128, moe_intermediate_size=16,
            num_hidden_layers=6, num_local_experts=8, num_experts_per_tok=2, n_shared_experts=2, first_k_dense_replace=1,
            q_lora_rank=48, kv_lora_rank=32, qk_nope_head_dim=16, qk_rope_head_dim=8, v_head_dim=16,
            routed_scaling_factor=1.5, n_group=1, topk_group=1, norm_topk_prob=True,
            pad_token_id=0, bos_token_id=1, eos_token_id=2)
linear_attn_config = {"head_dim": 8, "num_heads": 4, "short_conv_kernel_size": 4, "kda_layers": [1, 2, 3, 6],
                      "full_attn_layers": [4, 5], "use_full_rank_gate": True, "gate_lower_bound": LOWER_BOUND}

torch.manual_seed(1234)
config = KimiLinearConfig(**text, linear_attn_config=linear_attn_config, torch_dtype="float32")
config._attn_implementation = "eager"
model = AutoModelForCausalLM.from_config(config).float().eval()
layers = model.model.layers
h, E, I = config.hidden_size, config.num_local_experts, config.moe_intermediate_size
g = torch.Generator().manual_seed(7)


def param(*shape, std=0.02):
    return nn.Parameter(torch.randn(*shape, generator=g) * std, requires_grad=False)


def rms_norm(x, weight, eps):
    x = x.float()
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight


def situ(gate, up):
    return BETA * torch.tanh(gate / BETA) * torch.sigmoid(gate) * (LINEAR_BETA * torch.tanh(up / LINEAR_BETA))


extra = {}  # K3's own tensors, by checkpoint name under the layer prefix
with torch.no_grad():
    for i, layer in enumerate(layers):
        attn = layer.self_attn
        P = config.linear_num_heads * config.linear_head_dim
        if config.layer_types[i] == "linear_attention":
            # Full-rank output gate: transformers computes g_b_proj(g_a_proj(x)); g_proj then identity.
            attn.g_a_proj = nn.Linear(h, P, bias=False)
            attn.g_a_proj.weight.copy_(torch.randn(P, h, generator=g) * 0.3)
            attn.g_b_proj = nn.Identity()
            gate_module = attn.forget_gate

            def bounded(self, hidden_states):
                shape = (*hidden_states.shape[:2], -1, self.head_dim)
                f = (self.f_b_proj(self.f_a_proj(hidden_states)).float() + self.dt_bias.float().view(1, 1, -1)).view(shape)
                return LOWER_BOUND * torch.sigmoid(torch.exp(self.A_log.float()) * f)

            gate_module.forward = bounded.__get__(gate_module)
        else:
            extra[f"{i}.self_attn.g_proj.weight"] = param(config.num_attention_heads * config.v_head_dim, h, std=0.3)
        for name in ("self_attention_res", "mlp_res"):
            extra[f"{i}.{name}_norm.weight"] = nn.Parameter(1 + torch.randn(h, generator=g) * 0.1, requires_grad=False)
            extra[f"{i}.{name}_proj.weight"] = param(1, h, std=0.05)
        if config.mlp_layer_types[i] == "sparse":
            b = f"{i}.block_sparse_moe"
            extra[f"{b}.routed_expert_down_proj.weight"] = param(LATENT, h, std=0.1)
            extra[f"{b}.routed_expert_norm.weight"] = nn.Parameter(1 + torch.randn(LATENT, generator=g) * 0.1, requires_grad=False)
            extra[f"{b}.routed_expert_up_proj.weight"] = param(h, LATENT, std=0.1)
            for e in range(E):
                extra[f"{b}.experts.{e}.w1.weight"] = param(I, LATENT, std=0.1)
                extra[f"{b}.experts.{e}.w3.weight"] = param(I, LATENT, std=0.1)
                extra[f"{b}.experts.{e}.w2.weight"] = param(LATENT, I, std=0.1)
            # A decisive router with a non-zero selection bias (bias chooses, scores weight).
            layer.mlp.gate.weight.normal_(0, 0.5, generator=g)
            layer.mlp.gate.e_score_correction_bias.copy_(torch.randn(E, generator=g) * 0.5)
    extra["output_attn_res_norm.weight"] = nn.Parameter(1 + torch.randn(h, generator=g) * 0.1, requires_grad=False)
    extra["output_attn_res_proj.weight"] = param(1, h, std=0.05)
    for p in model.parameters():
        if p.dim() == 1 and (p.abs().sum() == p.numel() or p.abs().sum() == 0):  # norms at one: perturb
            p.add_(torch.randn_like(p) * 0.1)
    # Larger MLP weights than 0.02 so that SiTU's soft clips bite.
    for layer in layers:
        mlp = layer.mlp
        for m in ([mlp] if not hasattr(mlp, "shared_experts") else [mlp.shared_experts]):
            for lin in (m.gate_proj, m.up_proj, m.down_proj):
                lin.weight.normal_(0, 0.1, generator=g)

chosen = {}


def mlp_forward(m, x):
    return m.down_proj(situ(m.gate_proj(x), m.up_proj(x)))


def moe_forward(i, moe, x):
    """LatentMoE: transformers' router on x, the experts in the latent width, norm, up, shared on x."""
    flat = x.reshape(-1, h)
    _, weights, indices = moe.gate(flat)
    chosen[i] = [sorted(int(v) for v in row) for row in indices.tolist()]
    b = f"{i}.block_sparse_moe"
    z = flat @ extra[f"{b}.routed_expert_down_proj.weight"].T
    y = torch.zeros_like(z)
    for t in range(flat.shape[0]):
        for k in range(indices.shape[1]):
            e = int(indices[t, k])
            gate = z[t] @ extra[f"{b}.experts.{e}.w1.weight"].T
            up = z[t] @ extra[f"{b}.experts.{e}.w3.weight"].T
            y[t] += weights[t, k] * (situ(gate, up) @ extra[f"{b}.experts.{e}.w2.weight"].T)
    y = rms_norm(y, extra[f"{b}.routed_expert_norm.weight"], config.rms_norm_eps)
    routed = y @ extra[f"{b}.routed_expert_up_proj.weight"].T
    return (routed + mlp_forward(moe.shared_experts, flat)).reshape(x.shape)


def mix(bank, partial, name, out_norm):
    """The attention residuals' softmax mix of the snapshots and the partial sum, then out_norm."""
    rows = torch.stack(bank + [partial])  # [n, 1, T, h]
    c = extra[f"{name}_norm.weight"] * extra[f"{name}_proj.weight"][0]
    scores = (rows * c).sum(-1) / torch.sqrt(rows.pow(2).mean(-1) + config.rms_norm_eps)
    weights = torch.softmax(scores, dim=0)
    return rms_norm((weights.unsqueeze(-1) * rows).sum(0), out_norm.weight, out_norm.variance_epsilon)


class GatedOutput(nn.Module):
    """MLA's o_proj behind K3's output gate: o_proj(o ⊙ σ(g_proj(x)))."""

    def __init__(self, inner, gate):
        super().__init__()
        self.inner, self.gate = inner, gate

    def forward(self, o):
        return self.inner(o * self.gate)


def forward(ids):
    T = ids.shape[1]
    mask = torch.full((T, T), float("-inf")).triu(1)[None, None]
    bank, partial = [], model.model.embed_tokens(ids)
    for i, layer in enumerate(layers):
        x = mix(bank, partial, f"{i}.self_attention_res", layer.input_layernorm)
        if i % BLOCK == 0:
            bank.append(partial)
            partial = torch.zeros_like(partial)
        attn = layer.self_attn
        if config.layer_types[i] == "linear_attention":
            a = attn(hidden_states=x, cache=None, attention_mask=None)
        else:
            o_proj = attn.o_proj
            attn.o_proj = GatedOutput(o_proj, torch.sigmoid(x @ extra[f"{i}.self_attn.g_proj.weight"].T))
            a, _ = attn(hidden_states=x, attention_mask=mask, cache=None)
            attn.o_proj = o_proj
        partial = partial + a
        x = mix(bank, partial, f"{i}.mlp_res", layer.post_attention_layernorm)
        m = moe_forward(i, layer.mlp, x) if config.mlp_layer_types[i] == "sparse" else mlp_forward(layer.mlp, x)
        partial = partial + m
    return model.lm_head(mix(bank, partial, "output_attn_res", model.model.norm))


with torch.no_grad():
    ids = torch.tensor([PROMPT])
    logits = forward(ids)[0]
    experts = dict(chosen)
    sequence = list(PROMPT)
    for _ in range(NEW_TOKENS):
        sequence.append(int(torch.argmax(forward(torch.tensor([sequence]))[0, -1])))

# The checkpoint under K3's names.
tensors = {}
root = "language_model.model."
with torch.no_grad():
    tensors["language_model.lm_head.weight"] = model.lm_head.weight
    tensors[root + "embed_tokens.weight"] = model.model.embed_tokens.weight
    tensors[root + "norm.weight"] = model.model.norm.weight
    for i, layer in enumerate(layers):
        p, a = f"{root}layers.{i}.", layer.self_attn
        tensors[p + "input_layernorm.weight"] = layer.input_layernorm.weight
        tensors[p + "post_attention_layernorm.weight"] = layer.post_attention_layernorm.weight
        if config.layer_types[i] == "linear_attention":
            P = a.qkv_dim
            for n in ("q_proj", "k_proj", "v_proj", "b_proj", "o_proj"):
                tensors[f"{p}self_attn.{n}.weight"] = getattr(a, n).weight
            tensors[p + "self_attn.g_proj.weight"] = a.g_a_proj.weight
            for j, n in enumerate("qkv"):
                tensors[f"{p}self_attn.{n}_conv1d.weight"] = a.conv1d.weight[j * P:(j + 1) * P]
            tensors[p + "self_attn.f_a_proj.weight"] = a.forget_gate.f_a_proj.weight
            tensors[p + "self_attn.f_b_proj.weight"] = a.forget_gate.f_b_proj.weight
            tensors[p + "self_attn.dt_bias"] = a.forget_gate.dt_bias
            a_log = torch.zeros(config.linear_head_dim)
            a_log[:config.linear_num_heads] = a.forget_gate.A_log.reshape(-1)
            tensors[p + "self_attn.A_log"] = a_log
            tensors[p + "self_attn.o_norm.weight"] = a.o_norm.weight
        else:
            for n in ("q_a_proj", "q_a_layernorm", "q_b_proj", "kv_a_proj_with_mqa", "kv_a_layernorm", "kv_b_proj", "o_proj"):
                tensors[f"{p}self_attn.{n}.weight"] = getattr(a, n).weight
        if config.mlp_layer_types[i] == "sparse":
            moe = layer.mlp
            tensors[p + "block_sparse_moe.gate.weight"] = moe.gate.weight
            tensors[p + "block_sparse_moe.gate.e_score_correction_bias"] = moe.gate.e_score_correction_bias
            for n in ("gate_proj", "up_proj", "down_proj"):
                tensors[f"{p}block_sparse_moe.shared_experts.{n}.weight"] = getattr(moe.shared_experts, n).weight
        else:
            for n in ("gate_proj", "up_proj", "down_proj"):
                tensors[f"{p}mlp.{n}.weight"] = getattr(layer.mlp, n).weight
    for name, value in extra.items():
        tensors[(root + "layers." if name[0].isdigit() else root) + name] = value
os.makedirs(HERE, exist_ok=True)
save_file({k: v.detach().float().contiguous().clone() for k, v in tensors.items()}, os.path.join(HERE, "model.safetensors"))

text_config = {**text, "model_type": "kimi_linear", "architectures": ["KimiLinearForCausalLM"], "hidden_act": "situ",
               "activation_situ_beta": BETA, "activation_situ_linear_beta": LINEAR_BETA, "attn_res_block_size": BLOCK,
               "routed_expert_hidden_size": LATENT, "latent_moe_use_norm": True, "mla_use_output_gate": True,
               "mla_use_nope": True, "moe_router_activation_func": "sigmoid", "linear_attn_config": linear_attn_config,
               "dtype": "float32"}
for old, new in (("num_local_experts", "num_experts"), ("num_experts_per_tok", "num_experts_per_token"),
                 ("n_shared_experts", "num_shared_experts"), ("norm_topk_prob", "moe_renormalize"), ("n_group", "num_expert_group")):
    text_config[new] = text_config.pop(old)
with open(os.path.join(HERE, "config.json"), "w") as f:
    json.dump({"architectures": ["KimiK3ForConditionalGeneration"], "model_type": "kimi_k3", "dtype": "float32",
               "tie_word_embeddings": False, "text_config": text_config}, f, indent=1)
expected = {
    "generator": f"make_kimi_k3_fixture.py on transformers {transformers.__version__}'s Kimi Linear, torch {torch.__version__}",
    "prompt": PROMPT,
    "logits": [[round(float(v), 6) for v in row] for row in logits],
    "experts": {str(k): v for k, v in sorted(experts.items())},
    "greedy": sequence[len(PROMPT):],
}
with open(os.path.join(HERE, "expected.json"), "w") as f:
    json.dump(expected, f)
print("kimi_k3 layers with routing:", sorted(experts), "greedy:", expected["greedy"])
