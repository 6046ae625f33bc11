/// How a family's checkpoints name the tensors the CPU runtime loads, where they depart from
/// DeepSeek's naming (`model.layers.N.mlp.experts.E.gate_proj.weight`, `mlp.gate`,
/// `mlp.shared_experts`). Each architecture file sets its own, so the loader holds no model-type
/// checks; the weight inventory's names follow them too. (DeepSeek-V4's checkpoint naming
/// differs throughout; its loader sits in its own file.)
public struct CheckpointNames: Sendable, Equatable {
    /// Before every tensor name: "" ; Kimi K3's multimodal checkpoint "language_model.".
    public var prefix = ""
    /// The block of a dense feed-forward layer: "mlp"; Kimi Linear "block_sparse_moe", Llama 4
    /// "feed_forward".
    public var denseBlock = "mlp"
    /// The block of an MoE layer: "mlp"; Mixtral, MiniMax-M2, Kimi Linear "block_sparse_moe",
    /// Llama 4 "feed_forward".
    public var moeBlock = "mlp"
    /// Each expert's gate, up and down projections: gate_proj / up_proj / down_proj, or w1 / w3 / w2
    /// (Mixtral's names).
    public var expertProjections = ExpertProjections(gate: "gate_proj", up: "up_proj", down: "down_proj")
    /// Experts stored fused as gate_up_proj [E, hidden, 2I] and down_proj [E, I, hidden]: gate and
    /// up interleaved by column (gpt-oss) or in halves (Llama 4). nil: one module per expert.
    public var fusedExperts: FusedExperts? = nil
    /// Each head's attention-sink logit under `self_attn`: "sinks" (gpt-oss); MiMo-V2-Flash
    /// "attention_sink_bias".
    public var attentionSinks = "sinks"
    /// The router's module: "gate"; gpt-oss and Llama 4 "router".
    public var router = "gate"
    /// The shared expert's module: "shared_experts" (DeepSeek); Qwen and Llama 4 "shared_expert".
    public var sharedExpert = "shared_experts"
    /// DeepSeek's selection bias sits on the router ("gate.e_score_correction_bias"); MiniMax-M2
    /// keeps it on the MoE block.
    public var correctionBiasOnBlock = false
    /// Qwen3-Next fuses its linear attention's input projections (in_proj_qkvz, in_proj_ba);
    /// Qwen3.5 keeps them apart (in_proj_qkv, in_proj_z, in_proj_b, in_proj_a).
    public var fusedLinearProjections = false

    public enum FusedExperts: Sendable, Equatable { case interleaved, halves }

    public struct ExpertProjections: Sendable, Equatable {
        public var gate: String
        public var up: String
        public var down: String

        public init(gate: String, up: String, down: String) {
            self.gate = gate
            self.up = up
            self.down = down
        }
    }

    public init() {}
}
