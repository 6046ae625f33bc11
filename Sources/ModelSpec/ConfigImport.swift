import ConfigFile
import Foundation

extension ModelSpec {
    /// The `model_type` values moesim reads.
    public static var supportedModelTypes: [String] { Architectures.modelTypes }

    /// Reads a config.json file. `id` names the spec (the preset id or the file name).
    public init(contentsOf path: String, id: String? = nil, overrides: [(String, String)] = []) throws {
        let fileID = id ?? URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
        try self.init(config: JSONObject(contentsOf: path), id: fileID, overrides: overrides)
    }

    /// Builds the spec from a HuggingFace config. `overrides` are `--set key=value` pairs applied
    /// before anything is read and validated exactly like the file's own fields; the value is read
    /// as JSON (12, 1e-6, true, [1, 2], "text") and otherwise as a plain string.
    public init(config: JSONObject, id: String, overrides: [(String, String)] = []) throws {
        try self.init(building: config, id: id, overrides: overrides)
        // A what-if that changes nothing is a mistake (a field this architecture does not use,
        // such as num_key_value_heads of an MLA model): say so instead of answering as if it did.
        for (key, _) in overrides {
            let others = overrides.filter { $0.0 != key }
            // Without it the file does not even read: the override repairs it, so it matters.
            guard var without = try? ModelSpec(building: config, id: id, overrides: others) else { continue }
            without.overrides = self.overrides
            guard without == self else { continue }
            // The same spec: either the field is unused, or it was set to the value it has
            // (in the file, under text_config, or by default), which is no mistake.
            let used = ModelSpec.fieldsThatMatter(config, id: id)
            if used.contains(key) { continue }
            throw ConfigError(source: config.source, field: key,
                              message: "has no effect on model_type \(modelType): moesim does not use it for this architecture "
                                  + "(fields that change it: \(used.joined(separator: ", ")))")
        }
    }

    /// The fields of a config whose value changes the spec: each one perturbed in turn (a
    /// number doubled and one added, a boolean flipped); a change of spec or a validation error
    /// means moesim reads it.
    static func fieldsThatMatter(_ config: JSONObject, id: String) -> [String] {
        guard let type = try? config.string("model_type"), let defaults = Architectures.family(type)?.defaults(for: type),
              let base = try? ModelSpec(building: config, id: id, overrides: []) else { return [] }
        var used: [String] = []
        for key in defaults.keys.sorted() {
            let current = config.values[key] ?? defaults[key]
            let probe: String
            if let number = current as? NSNumber, String(cString: number.objCType) == "c" {
                probe = number.boolValue ? "false" : "true"
            } else if let number = current as? NSNumber {
                let d = number.doubleValue
                probe = d.rounded() == d && abs(d) < 1e12 ? "\(Int(d) * 2 + 1)" : "\(d * 2 + 1)"
            } else {
                probe = "7"
            }
            guard let changed = try? ModelSpec(building: config, id: id, overrides: [(key, probe)]) else {
                used.append(key)
                continue
            }
            var same = changed
            same.overrides = base.overrides
            if same != base { used.append(key) }
        }
        return used
    }

    init(building config: JSONObject, id: String, overrides: [(String, String)]) throws {
        guard let modelType = try config.string("model_type") else { throw config.error("model_type", "is missing") }
        guard let family = Architectures.family(modelType) else {
            throw config.error("model_type", "'\(modelType)' is not supported; supported model types: "
                + ModelSpec.supportedModelTypes.joined(separator: ", "))
        }
        let defaults = family.defaults(for: modelType)
        // Multimodal wrappers (and Llama 4) nest the language model's fields under text_config.
        var fields = config
        if family.textConfig(for: modelType) {
            guard let text = try config.object("text_config") else { throw config.error("text_config", "is missing") }
            fields = text
        }
        var values = fields.values
        var applied: [String: String] = [:]
        for (key, text) in overrides {
            guard defaults[key] != nil else {
                throw ConfigError(source: config.source, field: key,
                                  message: "cannot be set: it is not a field moesim reads for model_type \(modelType) "
                                      + "(fields: \(defaults.keys.sorted().joined(separator: ", ")))")
            }
            values[key] = ModelSpec.parseOverride(text)
            applied[key] = text
        }
        // Newer transformers (5.x) write some fields under another name: read them as the old one.
        for (newer, older) in family.aliases where values[older] == nil {
            if let value = values[newer] { values[older] = value }
        }
        for (key, value) in defaults where values[key] == nil && !(value is NSNullMarker) {
            values[key] = value
        }
        let c = JSONObject(values: values, source: config.source, path: fields.path)
        let reader = ConfigReader(c)

        self.id = id
        self.modelType = modelType
        self.overrides = applied
        hiddenSize = try reader.positive("hidden_size")
        vocabSize = try reader.positive("vocab_size")
        let layerCount = try reader.positive("num_hidden_layers")
        tiedEmbeddings = try c.bool("tie_word_embeddings") ?? (try config.bool("tie_word_embeddings") ?? false)
        rmsNormEpsilon = try reader.positiveDouble("rms_norm_eps")
        maxPositionEmbeddings = try reader.positive("max_position_embeddings")

        let parts = try family.build(c, reader, modelType: modelType, layerCount: layerCount)
        attention = parts.attention
        layers = parts.layers
        moe = parts.moe
        rope = parts.rope
        slidingRope = parts.slidingRope
        mtpModules = parts.mtpModules
        sparseAttention = parts.sparse
        slidingAttention = parts.sliding
        linearAttention = parts.linear
        attentionResidualBlock = parts.attentionResidualBlock
        activation = parts.activation
        checkpointNames = parts.checkpointNames
        hyperConnections = parts.hyperConnections
        do { shippedWeights = try ShippedWeights.read(config, fields) } catch let error as ConfigError {
            shippedWeights = .failure(error)
        }
        zeroCenteredNorms = parts.zeroCenteredNorms
        if let moe { try ModelSpec.validate(moe, c) }
        try ModelSpec.checkSize(self, c)
    }

    /// The largest model moesim prices: 10^15 parameters (a thousand times Kimi K2) and 2^36 bytes
    /// of KV cache per token in bf16. Past them, sizes in bytes would overflow 64-bit integers
    /// somewhere downstream (a plan multiplies them by contexts and sequences).
    static let maxParameters = 1e15

    /// Upper bounds in Double, written out rather than calling `cacheValuesPerToken` or
    /// `LinearAttention.bytesPerSequence`: those multiply Ints, and on the sizes refused here
    /// (fields up to 2^24 each) their products would trap before they could be compared.
    static func checkSize(_ spec: ModelSpec, _ c: JSONObject) throws {
        // A linear-attention layer's state (the whole convolution window: a bound).
        if let l = spec.linearAttention {
            let state = Double(l.valueHeads) * Double(l.keyHeadDim) * Double(l.valueHeadDim) * 4
                + (Double(l.keyHeads) * Double(l.keyHeadDim) * 2 + Double(l.valueHeads) * Double(l.valueHeadDim)) * Double(l.convKernel) * 2
            guard state * Double(spec.layerCount) <= 68_719_476_736 else {
                throw ConfigError(source: c.source, field: nil, message: "the linear-attention state would take "
                    + "\(String(format: "%.3g", state * Double(spec.layerCount))) bytes per sequence; moesim handles up to 2^36")
            }
        }
        let parameters = spec.weightTensors.reduce(0.0) { $0 + Double($1.rows) * Double($1.cols) * Double($1.copies) }
        guard parameters <= maxParameters else {
            throw ConfigError(source: c.source, field: nil, message: "the model would have \(String(format: "%.3g", parameters)) "
                + "parameters; moesim handles up to 10^15 (check num_hidden_layers, hidden_size and the expert counts)")
        }
        var perToken = Double(spec.kvValuesPerTokenPerLayer)
        if case let .grouped(a) = spec.attention { perToken = Double(a.kvHeads) * (Double(a.headDim) + Double(a.vDim)) }
        if let sliding = spec.slidingAttention { perToken = max(perToken, Double(sliding.kvHeads) * (Double(sliding.headDim) + Double(sliding.vDim))) }
        perToken += Double(spec.sparseAttention?.headDim ?? 0)
        if case let .compressed(a) = spec.attention { perToken += Double(a.indexer.headDim) }
        let kv = perToken * 2 * Double(spec.layerCount)
        guard kv <= 68_719_476_736 else {
            throw ConfigError(source: c.source, field: nil, message: "the KV cache would take \(String(format: "%.3g", kv)) bytes "
                + "per token; moesim handles up to 2^36")
        }
    }

    static func validate(_ moe: MixtureOfExperts, _ c: JSONObject) throws {
        let expertsKey = c.has("n_routed_experts") ? "n_routed_experts" : (c.has("num_experts") ? "num_experts" : "num_local_experts")
        let kKey = c.has("num_experts_per_tok") ? "num_experts_per_tok" : "experts_per_token"
        guard moe.expertsPerToken <= moe.routedExperts else {
            throw c.error(kKey, "(\(moe.expertsPerToken)) must not exceed \(expertsKey) (\(moe.routedExperts))")
        }
        guard moe.routedExperts % moe.groups == 0 else {
            throw c.error("n_group", "(\(moe.groups)) must divide \(expertsKey) (\(moe.routedExperts))")
        }
        guard moe.topKGroups <= moe.groups else {
            throw c.error("topk_group", "(\(moe.topKGroups)) must not exceed n_group (\(moe.groups))")
        }
        guard moe.topKGroups * (moe.routedExperts / moe.groups) >= moe.expertsPerToken else {
            throw c.error("topk_group", "(\(moe.topKGroups)) groups of \(moe.routedExperts / moe.groups) experts "
                + "cannot supply \(moe.expertsPerToken) experts per token")
        }
    }

    static func parseOverride(_ text: String) -> Any {
        if let data = text.data(using: .utf8),
           let value = try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]) {
            return value
        }
        return text
    }
}

/// Typed reads with the checks every architecture shares.
struct ConfigReader {
    let c: JSONObject
    init(_ c: JSONObject) { self.c = c }

    /// No size of a real model comes near this (vocabularies ≈ 2^18, contexts ≤ 2^24); a bound
    /// keeps every product of sizes inside 64-bit integers.
    static let largest = 16_777_216

    func positive(_ key: String) throws -> Int { try bounded(key, c.requiredInt(key, atLeast: 1)) }
    func nonNegative(_ key: String) throws -> Int { try bounded(key, c.requiredInt(key, atLeast: 0)) }
    /// An optional size, at least `minimum` when present.
    func optional(_ key: String, atLeast minimum: Int = 0) throws -> Int? {
        guard let value = try c.int(key, atLeast: minimum) else { return nil }
        return try bounded(key, value)
    }

    func bounded(_ key: String, _ value: Int) throws -> Int {
        guard value <= Self.largest else { throw c.error(key, "must be at most \(Self.largest.formatted()), got \(value)") }
        return value
    }
    func positiveDouble(_ key: String) throws -> Double { try c.requiredPositive(key) }

    func groupedAttention(qkvBias: Bool, outputBias: Bool, qkNorm: Bool, sinks: Bool) throws -> GroupedQueryAttention {
        let heads = try positive("num_attention_heads")
        let kvHeads = try optional("num_key_value_heads") ?? heads
        guard kvHeads >= 1 else { throw c.error("num_key_value_heads", "must be at least 1, got \(kvHeads)") }
        guard heads % kvHeads == 0 else {
            throw c.error("num_key_value_heads", "(\(kvHeads)) must divide num_attention_heads (\(heads))")
        }
        let headDim: Int
        if let explicit = try optional("head_dim") {
            guard explicit >= 1 else { throw c.error("head_dim", "must be at least 1, got \(explicit)") }
            headDim = explicit
        } else {
            let hidden = try positive("hidden_size")
            guard hidden % heads == 0 else {
                throw c.error("num_attention_heads", "(\(heads)) must divide hidden_size (\(hidden)) when head_dim is absent")
            }
            headDim = hidden / heads
        }
        return GroupedQueryAttention(heads: heads, kvHeads: kvHeads, headDim: headDim, qkvBias: qkvBias,
                                     outputBias: outputBias, qkNorm: qkNorm, sinks: sinks)
    }

    /// DeepSeek-V3's MoE as DeepSeek-V3.2, GLM-4.5 and GLM-5 keep it: sigmoid scores with a
    /// selection bias, group-limited, n_shared_experts shared experts of moe_intermediate_size
    /// (Kimi Linear and K3 too, counting their experts in num_local_experts).
    func deepSeekMoE(expertsKey: String = "n_routed_experts") throws -> MixtureOfExperts {
        let shared = try nonNegative("n_shared_experts"), expertSize = try positive("moe_intermediate_size")
        return MixtureOfExperts(
            routedExperts: try positive(expertsKey), expertsPerToken: try positive("num_experts_per_tok"),
            expertIntermediateSize: expertSize, sharedExperts: shared, sharedIntermediateSize: shared * expertSize,
            sharedExpertGate: false, scoring: .sigmoid, normalizeTopK: try c.bool("norm_topk_prob") ?? true,
            routedScalingFactor: try positiveDouble("routed_scaling_factor"),
            groups: try positive("n_group"), topKGroups: try positive("topk_group"),
            correctionBias: true, routerBias: false, expertBias: false)
    }

    func latentAttention() throws -> MultiHeadLatentAttention {
        let heads = try positive("num_attention_heads")
        var qRank: Int? = nil
        if c.has("q_lora_rank") { qRank = try positive("q_lora_rank") }
        return MultiHeadLatentAttention(
            heads: heads, qLoraRank: qRank, kvLoraRank: try positive("kv_lora_rank"),
            qkNopeHeadDim: try positive("qk_nope_head_dim"), qkRopeHeadDim: try positive("qk_rope_head_dim"),
            vHeadDim: try positive("v_head_dim"))
    }

    /// Dense or MoE per layer: `mlp_layer_types` ("dense"/"sparse") when given, else the first
    /// `first_k_dense_replace` layers dense and the rest MoE.
    static func mlpLayerTypes(_ c: JSONObject, _ reader: ConfigReader, layers n: Int, dense: Int) throws -> [Layer.FeedForward] {
        if let types = try c.stringArray("mlp_layer_types") {
            guard types.count == n else { throw c.error("mlp_layer_types", "has \(types.count) entries for \(n) layers") }
            return try types.map { type in
                switch type {
                case "dense": .dense(intermediateSize: dense)
                case "sparse", "moe": .moe
                default: throw c.error("mlp_layer_types", "has unknown type \"\(type)\" (dense, sparse)")
                }
            }
        }
        let first = min(try reader.nonNegative("first_k_dense_replace"), n)
        return (0..<n).map { $0 < first ? .dense(intermediateSize: dense) : .moe }
    }

    /// Softmax-attention layers (true) and linear-attention layers (false): `layer_types`
    /// ("full_attention" / "linear_attention") when given, else every `interval`-th layer full.
    static func layerTypes(_ c: JSONObject, _ reader: ConfigReader, layers n: Int, interval key: String?) throws -> [Bool] {
        if let types = try c.stringArray("layer_types") {
            guard types.count >= n else { throw c.error("layer_types", "has \(types.count) entries for \(n) layers") }
            return try types.prefix(n).map { type in
                switch type {
                case "full_attention": true
                case "linear_attention": false
                default: throw c.error("layer_types", "has unknown type \"\(type)\" (full_attention, linear_attention)")
                }
            }
        }
        guard let key else { throw c.error("layer_types", "is missing") }
        let interval = try reader.positive(key)
        return (0..<n).map { ($0 + 1) % interval == 0 }
    }

    /// Bytes per value of a linear-attention layer's recurrent state: `mamba_ssm_dtype` (vLLM keeps
    /// the state in it), else float32 as transformers keeps it.
    static func stateBytes(_ c: JSONObject) throws -> Int {
        let name = try c.string("mamba_ssm_dtype") ?? "float32"
        switch name {
        case "float32": return 4
        case "bfloat16", "float16": return 2
        default: throw c.error("mamba_ssm_dtype", "must be float32, bfloat16 or float16, got \"\(name)\"")
        }
    }

    /// Rotary lanes of a head of `headDim`: `rotary_dim`, else `partial_rotary_factor` (in
    /// rope_parameters or at the top level) × headDim, else all of it.
    func partialRotary(headDim: Int) throws -> Int {
        if let dim = try optional("rotary_dim", atLeast: 1) {
            guard dim <= headDim, dim % 2 == 0 else { throw c.error("rotary_dim", "(\(dim)) must be even and at most head_dim (\(headDim))") }
            return dim
        }
        let factor = try c.object("rope_parameters")?.double("partial_rotary_factor") ?? c.double("partial_rotary_factor") ?? 1
        guard factor > 0, factor <= 1 else { throw c.error("partial_rotary_factor", "must be in (0, 1], got \(factor)") }
        let lanes = Int(Double(headDim) * factor) / 2 * 2
        guard lanes >= 2 else { throw c.error("partial_rotary_factor", "leaves fewer than 2 rotary lanes of head_dim \(headDim)") }
        return lanes
    }

    /// Qwen's sliding-window layers: only with `use_sliding_window`, from `max_window_layers` on.
    func qwenSpan() throws -> (Int) -> Layer.Span {
        guard try c.bool("use_sliding_window") == true, c.has("sliding_window") else { return { _ in .full } }
        let window = try positive("sliding_window")
        let from = try optional("max_window_layers") ?? 0
        return { $0 >= from ? .slidingWindow(window) : .full }
    }

    /// rope_theta and rope_scaling (older files) or rope_parameters (newer files).
    func rope(rotaryDimension: Int) throws -> RoPE {
        guard rotaryDimension % 2 == 0 else {
            throw c.error("head_dim", "rotary dimension \(rotaryDimension) must be even")
        }
        let parameters = try c.object("rope_parameters")
        let scalingObject = try parameters ?? c.object("rope_scaling")
        let theta = try parameters?.double("rope_theta") ?? c.double("rope_theta") ?? 10000
        guard theta > 1 else { throw c.error("rope_theta", "must exceed 1, got \(theta)") }
        guard let s = scalingObject else { return RoPE(theta: theta, scaling: .none, rotaryDimension: rotaryDimension) }
        let type = try s.string("rope_type") ?? s.string("type") ?? "default"
        func factor() throws -> Double { try s.requiredPositive("factor") }
        let scaling: RoPE.Scaling
        switch type {
        case "default": scaling = .none
        case "linear": scaling = .linear(factor: try factor())
        case "dynamic": scaling = .dynamic(factor: try factor())
        case "yarn":
            scaling = .yarn(factor: try factor(),
                            // transformers: the config's own original_max_position_embeddings
                            // wins, then the rope parameters', then max_position_embeddings.
                            originalContext: try c.int("original_max_position_embeddings", atLeast: 1)
                                ?? s.int("original_max_position_embeddings", atLeast: 1) ?? c.int("max_position_embeddings", atLeast: 1) ?? 4096,
                            betaFast: try s.double("beta_fast") ?? 32, betaSlow: try s.double("beta_slow") ?? 1,
                            mscale: try s.double("mscale") ?? 0, mscaleAllDim: try s.double("mscale_all_dim") ?? 0,
                            truncate: try s.bool("truncate") ?? true, attentionFactor: try s.double("attention_factor"))
        case "llama3":
            scaling = .llama3(factor: try factor(),
                              originalContext: try s.requiredInt("original_max_position_embeddings", atLeast: 1),
                              lowFrequencyFactor: try s.requiredPositive("low_freq_factor"),
                              highFrequencyFactor: try s.requiredPositive("high_freq_factor"))
        default:
            throw s.error("rope_type", "\"\(type)\" is not supported (default, linear, dynamic, yarn, llama3)")
        }
        return RoPE(theta: theta, scaling: scaling, rotaryDimension: rotaryDimension)
    }
}
