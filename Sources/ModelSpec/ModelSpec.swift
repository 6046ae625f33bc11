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
    public var rmsNormEpsilon: Double
    public var maxPositionEmbeddings: Int
    /// Multi-token-prediction modules (DeepSeek-V3's `num_nextn_predict_layers`); counted apart.
    public var mtpModules: Int
    /// The `--set` overrides applied before the spec was built, as given.
    public var overrides: [String: String]

    public var layerCount: Int { layers.count }
    public var moeLayerCount: Int { layers.filter(\.isMoE).count }
}

/// Attention of every layer: grouped-query (GQA, covering MHA and MQA) or multi-head latent (MLA).
public enum Attention: Sendable, Equatable {
    case grouped(GroupedQueryAttention)
    case latent(MultiHeadLatentAttention)

    public var heads: Int {
        switch self {
        case let .grouped(a): a.heads
        case let .latent(a): a.heads
        }
    }

    public var name: String {
        switch self {
        case .grouped: "GQA"
        case .latent: "MLA"
        }
    }
}

public struct GroupedQueryAttention: Sendable, Equatable {
    public var heads: Int
    public var kvHeads: Int
    public var headDim: Int
    /// Bias on the q, k and v projections (Qwen2, gpt-oss).
    public var qkvBias: Bool
    /// Bias on the output projection (gpt-oss).
    public var outputBias: Bool
    /// RMSNorm over each head of q and k with a learned weight of headDim (Qwen3).
    public var qkNorm: Bool
    /// One learned attention-sink logit per head (gpt-oss).
    public var sinks: Bool
}

public struct MultiHeadLatentAttention: Sendable, Equatable {
    public var heads: Int
    /// Rank of the query compression; nil when queries are projected directly (DeepSeek-V2-Lite).
    public var qLoraRank: Int?
    public var kvLoraRank: Int
    public var qkNopeHeadDim: Int
    public var qkRopeHeadDim: Int
    public var vHeadDim: Int

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

        /// Tokens kept in the KV cache at a context of `context` tokens.
        public func cachedTokens(context: Int) -> Int {
            switch self {
            case .full: context
            case let .slidingWindow(w): min(context, w)
            case let .chunked(c): min(context, c)
            }
        }
    }

    public enum FeedForward: Sendable, Equatable {
        /// A SwiGLU MLP with this intermediate size.
        case dense(intermediateSize: Int)
        /// The model's routed experts (see `ModelSpec.moe`).
        case moe
    }

    public var span: Span
    public var feedForward: FeedForward
    /// False for Llama 4's NoPE layers, which apply no rotary embedding.
    public var usesRoPE: Bool

    public var isMoE: Bool { feedForward == .moe }
}

public struct MixtureOfExperts: Sendable, Equatable {
    public enum Scoring: String, Sendable, Equatable { case softmax, sigmoid }

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
}

public struct RoPE: Sendable, Equatable {
    public enum Scaling: Sendable, Equatable {
        case none
        case linear(factor: Double)
        case yarn(factor: Double, originalContext: Int, betaFast: Double, betaSlow: Double,
                  mscale: Double, mscaleAllDim: Double)
        case llama3(factor: Double, originalContext: Int, lowFrequencyFactor: Double, highFrequencyFactor: Double)
    }

    public var theta: Double
    public var scaling: Scaling
    /// Lanes of each head vector that rotate (all of head_dim, or MLA's qk_rope_head_dim).
    public var rotaryDimension: Int
}
