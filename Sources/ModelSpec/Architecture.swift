import ConfigFile

/// One model family: the `model_type`s it reads, transformers' defaults for their fields, and how
/// a config becomes the spec. Each family lives in its own file under Architectures/; adding a
/// model type means one file there, its entry in `Architectures.all`, and its tests.
protocol Architecture: Sendable {
    /// The `model_type` values this family reads.
    static var modelTypes: [String] { get }
    /// transformers' defaults for the fields moesim reads (the `*Config.__init__` keyword
    /// arguments). A field absent from a file takes this value; one present as `null` means None
    /// and takes none. These keys are also what `--set` may override.
    static func defaults(for modelType: String) -> [String: Any]
    /// Field names transformers 5 writes in place of older ones: newer → older.
    static var aliases: [String: String] { get }
    /// The language model's fields sit under `text_config` (multimodal wrappers, Llama 4).
    static func textConfig(for modelType: String) -> Bool
    /// The attention, layers, experts, rotary embedding and extras of the config `c` (defaults
    /// filled in) with `layerCount` decoder layers.
    static func build(_ c: JSONObject, _ reader: ConfigReader, modelType: String, layerCount: Int) throws -> ArchitectureParts
}

extension Architecture {
    static var aliases: [String: String] { [:] }
    static func textConfig(for modelType: String) -> Bool { false }
}

/// What a family builds; `ModelSpec` adds the fields every family shares.
struct ArchitectureParts {
    var attention: Attention = .grouped(GroupedQueryAttention(heads: 1, kvHeads: 1, headDim: 2, qkvBias: false, outputBias: false,
                                                             qkNorm: false, sinks: false))
    var layers: [Layer] = []
    var moe: MixtureOfExperts? = nil
    var rope = RoPE(theta: 10_000, scaling: .none, rotaryDimension: 2)
    var slidingRope: RoPE? = nil
    var mtpModules = 0
    var sparse: SparseAttention? = nil
    var sliding: GroupedQueryAttention? = nil
    var linear: LinearAttention? = nil
    var attentionResidualBlock: Int? = nil
    var activation: GatedActivation = .silu
    var checkpointNames = CheckpointNames()
    var zeroCenteredNorms = false
    var hyperConnections: HyperConnections? = nil
}

/// The registry of families, by model type.
enum Architectures {
    static let all: [any Architecture.Type] = [
        DeepSeekV3.self, DeepSeekSparse.self, DeepSeekV4.self, KimiLinear.self, QwenMoE.self, QwenNext.self, Mixtral.self, DenseGQA.self,
        Llama4.self, GptOss.self, MiniMaxM2.self, Glm4Moe.self, MiMoV2Flash.self,
    ]

    static func family(_ modelType: String) -> (any Architecture.Type)? {
        all.first { $0.modelTypes.contains(modelType) }
    }

    static var modelTypes: [String] { all.flatMap { $0.modelTypes }.sorted() }
}

/// Marks a key moesim reads whose transformers default is None: known (so `--set` may name it),
/// but nothing is filled in when a file leaves it out.
enum NSNullMarker { case none }
