import ConfigFile
import Foundation

/// The one description of a transformer architecture from which every count, every cost and the
/// runnable CPU model derive. Built from a HuggingFace config.json by `ModelSpec.init(config:)`.
public struct ModelSpec: Sendable, Equatable {
    /// Preset id or file name the spec came from.
    public var id: String
    /// HuggingFace `model_type` (for nested configs, the outer one: "llama4").
    public var modelType: String
    public var hiddenSize: Int
    public var vocabSize: Int
    public var tiedEmbeddings: Bool
    public var attention: Attention
    public var layers: [Layer]
    /// The routed-expert block, shared by every MoE layer; nil for dense models.
    public var moe: MixtureOfExperts?
    public var rope: RoPE
    /// The sliding-window layers' rotary when it differs from `rope` (MiMo-V2-Flash: θ 10,000 on
    /// its sliding layers, 5,000,000 on its full ones).
    public var slidingRope: RoPE? = nil
    public var rmsNormEpsilon: Double
    public var maxPositionEmbeddings: Int
    /// Multi-token-prediction modules (DeepSeek-V3's `num_nextn_predict_layers`); counted apart.
    public var mtpModules: Int
    /// The attention of the sliding-window layers when it differs from `attention` (MiMo-V2-Flash:
    /// twice the KV heads and attention sinks on its sliding layers).
    public var slidingAttention: GroupedQueryAttention? = nil
    /// DeepSeek sparse attention's lightning indexer on the attention layers that carry one.
    public var sparseAttention: SparseAttention? = nil
    /// The recurrent (linear) attention of the layers whose mixer is `.linear`.
    public var linearAttention: LinearAttention? = nil
    /// RMSNorm weights stored zero-centred, applied as (1 + w) (Qwen3-Next, Qwen3.5); the gated norm
    /// of their linear-attention layers excepted.
    public var zeroCenteredNorms = false
    /// How the checkpoints name the tensors the CPU runtime loads.
    public var checkpointNames = CheckpointNames()
    /// Kimi K3's attention residuals (`attn_res_block_size`): instead of one running residual, each
    /// block's input is a softmax mix of block snapshots taken every this many layers and the
    /// partial sum since the last one, scored by a norm and a 1 × hidden projection before each
    /// block of every layer and once at the output. nil: the usual residual stream.
    public var attentionResidualBlock: Int? = nil
    /// The gated activation of every feed-forward block (dense, shared and routed experts).
    public var activation: GatedActivation = .silu
    /// DeepSeek-V4's residual streams; nil: one residual stream.
    public var hyperConnections: HyperConnections? = nil
    /// The formats the checkpoint ships in, from its config (an error when its scheme is not one
    /// moesim prices); nil for a spec built without a config.
    public var shippedWeights: Result<ShippedWeights, ConfigError>? = nil
    /// The routed experts' own storage format when it differs from the one the model is priced
    /// in (`asShipped()`, `--weights checkpoint`); nil: every quantizable matrix in that format.
    public var expertWeightFormat: WeightFormat? = nil
    /// The attention projections' storage format when it differs from the one the model is
    /// priced in: the FP4 checkpoints of DeepSeek-R1 keep `self_attn` in bf16 (NVIDIA's
    /// `nvidia/DeepSeek-R1-0528-NVFP4` lists every layer's `self_attn*` in `exclude_modules`;
    /// AMD's `amd/DeepSeek-R1-0528-MXFP4` is quantized from bf16 with `--exclude_layers
    /// "*self_attn* *mlp.gate.* *lm_head"`), so those GEMMs read bf16 weights and inputs and run
    /// at the bf16 rate. nil: as the rest.
    public var attentionWeightFormat: WeightFormat? = nil
    /// With `attentionWeightFormat`: the attention output projections (`o_proj`, DeepSeek-V4's
    /// grouped `o_a_proj` and `o_b_proj`) stay in the format the model is priced in, and only the
    /// query and key-value projections take `attentionWeightFormat`. NVIDIA's v2 NVFP4 checkpoints
    /// of DeepSeek-R1 quantize `o_proj` (CentML's MLPerf checkpoint follows "the same quantization
    /// scheme as nvidia/DeepSeek-R1-FP4-v2, including the wo module in attention layers"; Modular
    /// MAX's weight adapter test: "In an NVFP4 checkpoint the MLA q/kv projections stay bf16 raw
    /// tensors" next to a uint8 `o_proj`).
    public var attentionOutputQuantized = false
    /// The `--set` overrides applied before the spec was built, as given.
    public var overrides: [String: String]

    public var layerCount: Int { layers.count }
    public var moeLayerCount: Int { layers.filter(\.isMoE).count }
    /// Layers that run the model's softmax attention (all but the linear-attention layers).
    public var attentionLayerCount: Int { layers.filter { $0.mixer == .attention }.count }
    public var linearLayerCount: Int { layers.filter { $0.mixer == .linear }.count }

    /// The softmax attention `layer` runs.
    public func attention(for layer: Layer) -> Attention {
        if let sliding = slidingAttention, case .slidingWindow = layer.span { return .grouped(sliding) }
        return attention
    }

    /// The token mixers in a few letters: "MLA", "GQA", "MLA+DSA" (sparse attention),
    /// "GDN+GQA" or "KDA+MLA" (linear-attention hybrids).
    public var mixerName: String {
        var name = attention.name
        if sparseAttention != nil { name += "+DSA" }
        if case .compressed = attention { name = "CSA/HCA" }
        if let linear = linearAttention { name = (linear.kind == .gatedDeltaNet ? "GDN+" : "KDA+") + name }
        return name
    }
}

/// DeepSeek sparse attention (DeepSeek-V3.2, GLM-5): a lightning indexer of `heads` × `headDim`
/// queries (from the attention's query latent of `queryRank`) scores every cached token against
/// its own cached key of `headDim` values; attention then reads only the `topK` best tokens.
/// Layers without their own indexer (GLM-5's "shared" layers) reuse the previous layer's choice.
public struct SparseAttention: Sendable, Equatable {
    public var heads: Int
    public var headDim: Int
    public var topK: Int
    public var queryRank: Int
    /// The indexer's rotary pairs lanes 2i, 2i + 1 (GLM-5) rather than i, i + d/2 (DeepSeek-V3.2).
    public var interleavedRotary = false
}

/// The activation between a gated MLP's gate and up projections: out = act(gate, up).
public enum GatedActivation: Sendable, Equatable {
    /// SwiGLU: silu(gate) · up.
    case silu
    /// Kimi K3's SiTU (`hidden_act: situ`): β·tanh(gate/β)·σ(gate) · βₗ·tanh(up/βₗ), both halves
    /// soft-clipped (β = `activation_situ_beta`, βₗ = `activation_situ_linear_beta`; nil leaves
    /// up as it is). SGLang's `SituAndMul` and Moonshot's modelling code.
    case situ(beta: Double, linearBeta: Double?)
}

/// Linear (recurrent) attention: each sequence keeps a constant state per layer instead of a
/// KV cache that grows with every token.
public struct LinearAttention: Sendable, Equatable {
    public enum Kind: String, Sendable, Equatable {
        /// Gated DeltaNet (Qwen3-Next, Qwen3.5): state [value heads, key dim, value dim].
        case gatedDeltaNet
        /// Kimi Delta Attention (Kimi Linear, Kimi K3): per-channel decay, state [heads, dim, dim].
        case kimiDelta
    }
    public var kind: Kind
    public var keyHeads: Int
    public var valueHeads: Int
    public var keyHeadDim: Int
    public var valueHeadDim: Int
    /// Depthwise causal convolution width over the q/k/v channels.
    public var convKernel: Int
    /// Bytes per value of the recurrent state (fp32 in transformers and in vLLM with
    /// `mamba_ssm_dtype` float32); the conv state is kept in bf16.
    public var stateBytesPerValue: Int
    /// KDA: one full-rank output-gate projection (Kimi K3) instead of the low-rank pair.
    public var fullRankOutputGate: Bool
    /// KDA's bounded forget gate (Kimi K3's `gate_lower_bound`, −5): the log decay per channel is
    /// bound · σ(exp(A_log) · (f + dt_bias)) instead of −exp(A_log) · softplus(f + dt_bias), so
    /// every channel keeps at least e^bound of its state per token. nil: the unbounded form.
    public var forgetGateLowerBound: Double? = nil

    /// Channels the short convolution runs over (q, k and v).
    public var convChannels: Int { keyHeads * keyHeadDim * 2 + valueHeads * valueHeadDim }
    /// Recurrent-state values of one sequence in one layer.
    public var stateValues: Int { valueHeads * keyHeadDim * valueHeadDim }
    /// Bytes one sequence holds in one layer: the recurrent state and K − 1 conv columns in bf16
    /// (as vLLM and SGLang keep them).
    public var bytesPerSequence: Int { stateValues * stateBytesPerValue + convChannels * (convKernel - 1) * 2 }
}

/// Attention of every layer: grouped-query (GQA, covering MHA and MQA) or multi-head latent (MLA).
public enum Attention: Sendable, Equatable {
    case grouped(GroupedQueryAttention)
    case latent(MultiHeadLatentAttention)
    /// DeepSeek-V4's compressed attention (each layer's `span` says its compression).
    case compressed(CompressedAttention)

    public var heads: Int {
        switch self {
        case let .grouped(a): a.heads
        case let .latent(a): a.heads
        case let .compressed(a): a.heads
        }
    }

    public var name: String {
        switch self {
        case .grouped: "GQA"
        case .latent: "MLA"
        case .compressed: "CSA/HCA"
        }
    }
}

/// DeepSeek-V4's attention: one shared key-and-value head of `headDim` (K = V) over a sliding
/// window of raw tokens plus compressed entries, each pooling `ratio` tokens (a layer's span
/// `.compressed(ratio)`: 0 window only, `sparseRatio` = 4 with the lightning indexer choosing
/// the top-k entries (CSA), `heavyRatio` = 128 reading all of them (HCA)); queries through a
/// low-rank projection, outputs through a grouped low-rank projection, attention sinks.
public struct CompressedAttention: Sendable, Equatable {
    public var heads: Int
    public var headDim: Int
    public var queryRank: Int
    public var ropeDim: Int
    public var outputGroups: Int
    public var outputRank: Int
    public var window: Int
    public var sparseRatio: Int
    public var heavyRatio: Int
    /// The CSA layers' indexer (its keys are cached per compressed entry).
    public var indexer: SparseAttention
    /// The rotary of the compressed layers, their compressors and indexers (`compress_rope_theta`,
    /// YaRN in the released configs); the window-only layers use the model's `rope`.
    public var compressRope: RoPE? = nil
}

public struct GroupedQueryAttention: Sendable, Equatable {
    public var heads: Int
    public var kvHeads: Int
    public var headDim: Int
    /// A sigmoid gate on the attention output from a second query-sized projection (Qwen3.5's
    /// gated attention: q_proj is twice as wide).
    public var outputGate = false
    /// q/k RMSNorm over the whole projection (MiniMax-M2) instead of each head.
    public var qkNormOverAllHeads = false
    /// Width of each value head when it differs from the key's (MiMo-V2-Flash: keys 192, values 128).
    public var valueHeadDim: Int? = nil
    /// A factor on the values before attention (MiMo-V2-Flash's `attention_value_scale`, 0.707).
    public var valueScale: Double? = nil

    public var vDim: Int { valueHeadDim ?? headDim }
    /// Bias on the q, k and v projections (Qwen2, gpt-oss).
    public var qkvBias: Bool
    /// Bias on the output projection (gpt-oss).
    public var outputBias: Bool
    /// RMSNorm over each head of q and k with a learned weight of headDim (Qwen3).
    public var qkNorm: Bool
    /// One learned attention-sink logit per head (gpt-oss).
    public var sinks: Bool
    /// A parameter-free RMS (L2) norm over each head of q and k after the rotary, on the layers
    /// that rotate (Llama 4 Scout's `use_qk_norm`).
    public var qkL2Norm = false
    /// Llama 4's attention temperature on its NoPE layers: queries at position p are scaled by
    /// 1 + scale · ln(1 + ⌊(p + 1) / floorScale⌋) (`attn_temperature_tuning`).
    public var temperature: AttentionTemperature? = nil
}

public struct AttentionTemperature: Sendable, Equatable {
    public var floorScale: Double
    public var scale: Double

    public init(floorScale: Double, scale: Double) { (self.floorScale, self.scale) = (floorScale, scale) }

    /// The factor of the queries at `position`.
    public func factor(position: Int) -> Double { 1 + scale * log1p((Double(position + 1) / floorScale).rounded(.down)) }
}

public struct MultiHeadLatentAttention: Sendable, Equatable {
    public var heads: Int
    /// Rank of the query compression; nil when queries are projected directly (DeepSeek-V2-Lite).
    public var qLoraRank: Int?
    public var kvLoraRank: Int
    public var qkNopeHeadDim: Int
    public var qkRopeHeadDim: Int
    public var vHeadDim: Int
    /// A sigmoid output gate projected from the hidden state (Kimi K3's MLA layers).
    public var outputGate = false

    /// Under YaRN the softmax scale is multiplied by mscale² (`yarn_apply_mscale` of
    /// transformers' DeepSeek family); Kimi Linear's MLA does not.
    public var yarnScalesSoftmax = true

    public var qkHeadDim: Int { qkNopeHeadDim + qkRopeHeadDim }
}

/// One decoder layer: its attention span and its feed-forward block.
public struct Layer: Sendable, Equatable {
    public enum Span: Sendable, Equatable {
        /// Attends to every earlier token.
        case full
        /// Attends to the last `window` tokens (gpt-oss, Mistral): the KV cache stops growing there.
        case slidingWindow(Int)
        /// Attends within fixed chunks of `size` tokens (Llama 4): the cache never holds more.
        case chunked(Int)
        /// DeepSeek-V4: a sliding window of `window` raw tokens plus one compressed entry per
        /// `ratio` tokens (ratio 0: the window only).
        case compressed(ratio: Int, window: Int)

        /// Entries kept in the KV cache at a context of `context` tokens.
        public func cachedTokens(context: Int) -> Int {
            switch self {
            case .full: context
            case let .slidingWindow(w): min(context, w)
            case let .chunked(c): min(context, c)
            case let .compressed(ratio, window): min(context, window) + (ratio > 0 ? context / ratio : 0)
            }
        }
    }

    public enum FeedForward: Sendable, Equatable {
        /// A SwiGLU MLP with this intermediate size.
        case dense(intermediateSize: Int)
        /// The model's routed experts (see `ModelSpec.moe`).
        case moe
    }

    /// What mixes tokens in the layer: the model's softmax attention, or its linear attention.
    public enum Mixer: Sendable, Equatable { case attention, linear }

    public var span: Span
    public var feedForward: FeedForward
    /// False for Llama 4's NoPE layers, which apply no rotary embedding.
    public var usesRoPE: Bool
    public var mixer: Mixer = .attention
    /// The layer runs and caches its own sparse-attention indexer (see `SparseAttention`).
    public var indexer = false

    public init(span: Span, feedForward: FeedForward, usesRoPE: Bool, mixer: Mixer = .attention, indexer: Bool = false) {
        self.span = span
        self.feedForward = feedForward
        self.usesRoPE = usesRoPE
        self.mixer = mixer
        self.indexer = indexer
    }

    public var isMoE: Bool { feedForward == .moe }
}

/// DeepSeek-V4's manifold-constrained hyper-connections (mHC): the residual is `streams` copies of
/// the hidden state. Before each attention and MoE block a learned map of the normalised streams
/// gives `pre` weights (sigmoid + ε) that collapse them into the block's input, `post` weights
/// (2·sigmoid) that spread its output back, and a mixing matrix (softmax + ε, made doubly
/// stochastic by `sinkhornIterations` of Sinkhorn-Knopp) that carries the old streams over.
public struct HyperConnections: Sendable, Equatable {
    public var streams: Int
    public var sinkhornIterations: Int
    public var epsilon: Double
}

public struct MixtureOfExperts: Sendable, Equatable {
    public enum Scoring: String, Sendable, Equatable { case softmax, sigmoid, sqrtSoftplus = "sqrtsoftplus" }

    public var routedExperts: Int
    public var expertsPerToken: Int
    public var expertIntermediateSize: Int
    /// Shared experts every token goes through, and their total intermediate size.
    public var sharedExperts: Int
    public var sharedIntermediateSize: Int
    /// A sigmoid gate of hidden → 1 on the shared expert's output (Qwen2-MoE).
    public var sharedExpertGate: Bool
    public var scoring: Scoring
    /// Renormalise the top-k weights to sum to 1.
    public var normalizeTopK: Bool
    public var routedScalingFactor: Double
    /// Group-limited routing (DeepSeek-V3): experts in `groups` groups, tokens pick `topKGroups`.
    public var groups: Int
    public var topKGroups: Int
    /// DeepSeek-V3's `e_score_correction_bias` (E floats, selection only).
    public var correctionBias: Bool
    /// Bias on the router logits (gpt-oss).
    public var routerBias: Bool
    /// Biases on the expert projections (gpt-oss).
    public var expertBias: Bool
    /// LatentMoE (Kimi K3): routed experts run at this narrower width, between a down-projection
    /// from the hidden size and an up-projection back (with an RMSNorm when `latentNorm`); the
    /// router and shared experts stay at the hidden size. nil: experts at the hidden size.
    public var latentSize: Int? = nil
    public var latentNorm = false
    /// The clamped SwiGLU: gate ≤ limit, |up| ≤ limit, out = (up + upShift) · gate · σ(α · gate):
    /// gpt-oss's with shift 1 and α 1.702; DeepSeek-V4's with shift 0 and α 1 (silu(gate) · up),
    /// on its shared expert too (`clampsShared`). nil: the usual silu(gate) · up.
    public var swigluLimit: Double? = nil
    public var swigluAlpha = 1.0
    public var swigluUpShift = 1.0
    public var clampsShared = false
    /// DeepSeek-V4: the first this many MoE layers pick their experts from a fixed token-id table
    /// (`tid2eid`) instead of the router's top-k; the router's scores still weight them.
    public var hashRoutedLayers = 0
    /// The routing weight scales each expert's input instead of its output (Llama 4: the expert
    /// sees sigmoid(logit) · x).
    public var weightScalesInput = false
    /// Experts are picked on the raw router logits, not the scores (Llama 4: the same order, except
    /// where sigmoid saturates to 1 and would tie).
    public var selectsOnLogits = false

    /// The width the routed experts read and write.
    public func expertWidth(hidden: Int) -> Int { latentSize ?? hidden }
}

public struct RoPE: Sendable, Equatable {
    public enum Scaling: Sendable, Equatable {
        case none
        case linear(factor: Double)
        /// Dynamic NTK: the base grows only once a sequence passes the trained context, so up to
        /// max_position_embeddings the frequencies are the plain ones.
        case dynamic(factor: Double)
        /// YaRN. `mscale` and `mscaleAllDim` are 0 where the config leaves them out (transformers
        /// tests them for truth); `attentionFactor` is the config's explicit cos/sin factor.
        case yarn(factor: Double, originalContext: Int, betaFast: Double, betaSlow: Double,
                  mscale: Double, mscaleAllDim: Double, truncate: Bool = true, attentionFactor: Double? = nil)
        case llama3(factor: Double, originalContext: Int, lowFrequencyFactor: Double, highFrequencyFactor: Double)
    }

    public var theta: Double
    public var scaling: Scaling
    /// Lanes of each head vector that rotate (all of head_dim, or MLA's qk_rope_head_dim).
    public var rotaryDimension: Int
    /// Lanes 2i and 2i + 1 rotate together (Llama 4's complex-number form) instead of i and
    /// i + d/2. (MLA's own interleaving is a property of the attention, not set here.)
    public var interleaved = false
}
