import ConfigFile
import Foundation

extension ModelSpec {
    /// The `model_type` values moesim reads.
    public static var supportedModelTypes: [String] { ModelDefaults.byModelType.keys.sorted() }

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
        for (key, text) in overrides {
            let others = overrides.filter { $0.0 != key }
            var without = try ModelSpec(building: config, id: id, overrides: others)
            without.overrides = self.overrides
            // Setting a field to the value it has is no mistake (compared as parsed JSON values).
            let same = (config.values[key] as? NSObject)?.isEqual(ModelSpec.parseOverride(text) as? NSObject) ?? false
            guard without == self, !same else { continue }
            let used = ModelSpec.fieldsThatMatter(config, id: id)
            throw ConfigError(source: config.source, field: key,
                              message: "has no effect on model_type \(modelType): moesim does not use it for this architecture "
                                  + "(fields that change it: \(used.joined(separator: ", ")))")
        }
    }

    /// The fields of a config whose value changes the spec: each one perturbed in turn (a
    /// number doubled and one added, a boolean flipped); a change of spec or a validation error
    /// means moesim reads it.
    static func fieldsThatMatter(_ config: JSONObject, id: String) -> [String] {
        guard let type = try? config.string("model_type"), let defaults = ModelDefaults.byModelType[type],
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
        guard let defaults = ModelDefaults.byModelType[modelType] else {
            throw config.error("model_type", "'\(modelType)' is not supported; supported model types: "
                + ModelSpec.supportedModelTypes.joined(separator: ", "))
        }
        // Llama 4 nests the language model's fields under text_config.
        var fields = config
        if modelType == "llama4" {
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
        for (newer, older) in ModelDefaults.aliases[modelType] ?? [:] where values[older] == nil {
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
        mtpModules = 0

        switch modelType {
        case "deepseek_v3", "kimi_k2":
            let mla = try reader.latentAttention()
            attention = .latent(mla)
            let firstDense = try reader.nonNegative("first_k_dense_replace")
            let frequency = try reader.positive("moe_layer_freq")
            guard firstDense <= layerCount else {
                throw c.error("first_k_dense_replace", "must not exceed num_hidden_layers (\(layerCount)), got \(firstDense)")
            }
            let intermediate = try reader.positive("intermediate_size")
            layers = (0..<layerCount).map { i in
                Layer(span: .full,
                      feedForward: i >= firstDense && i % frequency == 0 ? .moe : .dense(intermediateSize: intermediate),
                      usesRoPE: true)
            }
            let experts = try reader.positive("n_routed_experts")
            let shared = try reader.nonNegative("n_shared_experts")
            let expertSize = try reader.positive("moe_intermediate_size")
            let scoringText = try c.requiredString("scoring_func")
            guard let scoring = MixtureOfExperts.Scoring(rawValue: scoringText) else {
                throw c.error("scoring_func", "must be \"sigmoid\" or \"softmax\", got \"\(scoringText)\"")
            }
            moe = MixtureOfExperts(
                routedExperts: experts, expertsPerToken: try reader.positive("num_experts_per_tok"),
                expertIntermediateSize: expertSize, sharedExperts: shared, sharedIntermediateSize: shared * expertSize,
                sharedExpertGate: false, scoring: scoring, normalizeTopK: try c.bool("norm_topk_prob") ?? true,
                routedScalingFactor: try reader.positiveDouble("routed_scaling_factor"),
                groups: try reader.positive("n_group"), topKGroups: try reader.positive("topk_group"),
                correctionBias: try c.string("topk_method") == "noaux_tc", routerBias: false, expertBias: false)
            rope = try reader.rope(rotaryDimension: mla.qkRopeHeadDim)
            mtpModules = try reader.nonNegative("num_nextn_predict_layers")

        case "qwen3_moe", "qwen2_moe", "qwen3", "llama", "mixtral":
            let isQwen2 = modelType == "qwen2_moe"
            let gqa = try reader.groupedAttention(
                qkvBias: isQwen2 ? true : (try c.bool("attention_bias") ?? false),
                outputBias: modelType == "llama" ? (try c.bool("attention_bias") ?? false) : false,
                qkNorm: modelType == "qwen3_moe" || modelType == "qwen3", sinks: false)
            attention = .grouped(gqa)
            let intermediate = try reader.positive("intermediate_size")
            let span = try reader.qwenOrMistralSpan(modelType: modelType)
            switch modelType {
            case "qwen3_moe", "qwen2_moe":
                let step = try reader.positive("decoder_sparse_step")
                let denseOnly = Set(try c.intArray("mlp_only_layers") ?? [])
                let experts = try reader.positive("num_experts")
                layers = (0..<layerCount).map { i in
                    let isMoE = !denseOnly.contains(i) && (i + 1) % step == 0
                    return Layer(span: span(i), feedForward: isMoE ? .moe : .dense(intermediateSize: intermediate),
                                 usesRoPE: true)
                }
                let sharedSize = isQwen2 ? try reader.nonNegative("shared_expert_intermediate_size") : 0
                moe = MixtureOfExperts(
                    routedExperts: experts, expertsPerToken: try reader.positive("num_experts_per_tok"),
                    expertIntermediateSize: try reader.positive("moe_intermediate_size"),
                    sharedExperts: sharedSize > 0 ? 1 : 0, sharedIntermediateSize: sharedSize,
                    sharedExpertGate: sharedSize > 0, scoring: .softmax,
                    normalizeTopK: try c.bool("norm_topk_prob") ?? false, routedScalingFactor: 1,
                    groups: 1, topKGroups: 1, correctionBias: false, routerBias: false, expertBias: false)
            case "mixtral":
                layers = (0..<layerCount).map { Layer(span: span($0), feedForward: .moe, usesRoPE: true) }
                moe = MixtureOfExperts(
                    routedExperts: try reader.positive("num_local_experts"),
                    expertsPerToken: try reader.positive("num_experts_per_tok"),
                    expertIntermediateSize: intermediate, sharedExperts: 0, sharedIntermediateSize: 0,
                    sharedExpertGate: false, scoring: .softmax, normalizeTopK: true, routedScalingFactor: 1,
                    groups: 1, topKGroups: 1, correctionBias: false, routerBias: false, expertBias: false)
            default:
                layers = (0..<layerCount).map {
                    Layer(span: span($0), feedForward: .dense(intermediateSize: intermediate), usesRoPE: true)
                }
                moe = nil
            }
            rope = try reader.rope(rotaryDimension: gqa.headDim)

        case "llama4":
            let gqa = try reader.groupedAttention(qkvBias: false, outputBias: false, qkNorm: false, sinks: false)
            attention = .grouped(gqa)
            let step = try reader.positive("interleave_moe_layer_step")
            let chunk = try reader.positive("attention_chunk_size")
            let noRopeInterval = try reader.positive("no_rope_layer_interval")
            let denseSize = try reader.positive("intermediate_size_mlp")
            let expertSize = try reader.positive("intermediate_size")
            // transformers: MoE layers are step-1, 2·step-1, …; every no_rope_layer_interval-th
            // layer is a global NoPE layer, the others use RoPE within chunks.
            layers = (0..<layerCount).map { i in
                let global = (i + 1) % noRopeInterval == 0
                return Layer(span: global ? .full : .chunked(chunk),
                             feedForward: (i + 1) % step == 0 ? .moe : .dense(intermediateSize: denseSize),
                             usesRoPE: !global)
            }
            moe = MixtureOfExperts(
                routedExperts: try reader.positive("num_local_experts"),
                expertsPerToken: try reader.positive("num_experts_per_tok"),
                expertIntermediateSize: expertSize, sharedExperts: 1, sharedIntermediateSize: expertSize,
                sharedExpertGate: false, scoring: .sigmoid, normalizeTopK: false, routedScalingFactor: 1,
                groups: 1, topKGroups: 1, correctionBias: false, routerBias: false, expertBias: false)
            rope = try reader.rope(rotaryDimension: gqa.headDim)

        default: // gpt_oss
            let bias = try c.bool("attention_bias") ?? true
            let gqa = try reader.groupedAttention(qkvBias: bias, outputBias: bias, qkNorm: false, sinks: true)
            attention = .grouped(gqa)
            let window = try reader.positive("sliding_window")
            let types = try c.stringArray("layer_types")
                ?? (0..<layerCount).map { $0 % 2 == 0 ? "sliding_attention" : "full_attention" }
            guard types.count == layerCount else {
                throw c.error("layer_types", "has \(types.count) entries for \(layerCount) layers")
            }
            layers = try types.map { type in
                switch type {
                case "sliding_attention": Layer(span: .slidingWindow(window), feedForward: .moe, usesRoPE: true)
                case "full_attention": Layer(span: .full, feedForward: .moe, usesRoPE: true)
                default: throw c.error("layer_types", "has unknown type \"\(type)\"")
                }
            }
            let perToken = try reader.optional("num_experts_per_tok", atLeast: 1) ?? (try reader.positive("experts_per_token"))
            moe = MixtureOfExperts(
                routedExperts: try reader.positive("num_local_experts"), expertsPerToken: perToken,
                expertIntermediateSize: try reader.positive("intermediate_size"), sharedExperts: 0,
                sharedIntermediateSize: 0, sharedExpertGate: false, scoring: .softmax, normalizeTopK: true,
                routedScalingFactor: 1, groups: 1, topKGroups: 1, correctionBias: false, routerBias: true,
                expertBias: true)
            rope = try reader.rope(rotaryDimension: gqa.headDim)
        }
        if let moe { try ModelSpec.validate(moe, c) }
        try ModelSpec.checkSize(self, c)
    }

    /// The largest model moesim prices: 10^15 parameters (a thousand times Kimi K2) and 2^36 bytes
    /// of KV cache per token in bf16. Past them, sizes in bytes would overflow 64-bit integers
    /// somewhere downstream (a plan multiplies them by contexts and sequences).
    static let maxParameters = 1e15

    static func checkSize(_ spec: ModelSpec, _ c: JSONObject) throws {
        let parameters = spec.weightTensors.reduce(0.0) { $0 + Double($1.rows) * Double($1.cols) * Double($1.copies) }
        guard parameters <= maxParameters else {
            throw ConfigError(source: c.source, field: nil, message: "the model would have \(String(format: "%.3g", parameters)) "
                + "parameters; moesim handles up to 10^15 (check num_hidden_layers, hidden_size and the expert counts)")
        }
        let kv = Double(spec.kvValuesPerTokenPerLayer) * 2 * Double(spec.layerCount)
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

    func latentAttention() throws -> MultiHeadLatentAttention {
        let heads = try positive("num_attention_heads")
        var qRank: Int? = nil
        if c.has("q_lora_rank") { qRank = try positive("q_lora_rank") }
        return MultiHeadLatentAttention(
            heads: heads, qLoraRank: qRank, kvLoraRank: try positive("kv_lora_rank"),
            qkNopeHeadDim: try positive("qk_nope_head_dim"), qkRopeHeadDim: try positive("qk_rope_head_dim"),
            vHeadDim: try positive("v_head_dim"))
    }

    /// Sliding-window layers of Qwen and Mixtral: Mixtral slides on every layer when
    /// `sliding_window` is set; Qwen only with `use_sliding_window`, from `max_window_layers` on.
    func qwenOrMistralSpan(modelType: String) throws -> (Int) -> Layer.Span {
        switch modelType {
        case "mixtral":
            guard c.has("sliding_window") else { return { _ in .full } }
            let window = try positive("sliding_window")
            return { _ in .slidingWindow(window) }
        case "qwen3_moe", "qwen2_moe", "qwen3":
            guard try c.bool("use_sliding_window") == true, c.has("sliding_window") else { return { _ in .full } }
            let window = try positive("sliding_window")
            let from = try optional("max_window_layers") ?? 0
            return { $0 >= from ? .slidingWindow(window) : .full }
        default:
            return { _ in .full }
        }
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
        case "linear", "dynamic": scaling = .linear(factor: try factor())
        case "yarn":
            scaling = .yarn(factor: try factor(),
                            originalContext: try s.int("original_max_position_embeddings") ?? 4096,
                            betaFast: try s.double("beta_fast") ?? 32, betaSlow: try s.double("beta_slow") ?? 1,
                            mscale: try s.double("mscale") ?? 1, mscaleAllDim: try s.double("mscale_all_dim") ?? 0)
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
