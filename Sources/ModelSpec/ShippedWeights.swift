import ConfigFile

/// The formats a checkpoint ships its weights in, read from its config.json: most matrices in
/// one format and the routed experts in another (DeepSeek-V4: FP8 with FP4 experts; Kimi K3:
/// bf16 with MXFP4 experts; gpt-oss: bf16 with MXFP4 experts). `--weights checkpoint` prices
/// the model as shipped; any other `--weights` prices every matrix in that one format.
public struct ShippedWeights: Sendable, Equatable {
    public var dense: WeightFormat
    public var experts: WeightFormat
    /// Where the formats come from, in words (for a note beside the plan).
    public var source: String
}

extension ShippedWeights {
    /// From `quantization_config` (top level or under text_config) and DeepSeek-V4's
    /// `expert_dtype`; no quantization_config: the config's `torch_dtype` (float32, else bf16).
    /// A scheme moesim cannot price exactly is an error naming it, raised only when asked for.
    static func read(_ config: JSONObject, _ fields: JSONObject) throws -> Result<ShippedWeights, ConfigError> {
        let holder = try config.object("quantization_config") != nil ? config : fields
        guard let q = try holder.object("quantization_config") else {
            let dtype = try config.string("torch_dtype") ?? config.string("dtype") ?? fields.string("torch_dtype") ?? fields.string("dtype")
            let format: WeightFormat = dtype == "float32" ? .f32 : .bf16
            return .success(ShippedWeights(dense: format, experts: format, source: "\(format.rawValue) (no quantization_config)"))
        }
        let method = try q.string("quant_method") ?? ""
        switch method {
        case "fp8":
            // DeepSeek's block-scaled FP8 (`weight_block_size` [128, 128]); without blocks, a
            // scale per tensor or channel. DeepSeek-V4 keeps its experts in FP4 with ue8m0
            // (power-of-two) scales per 32 values: MXFP4's layout.
            let dense: WeightFormat
            switch try q.intArray("weight_block_size") {
            case nil: dense = .fp8Tensor
            case [128, 128]?: dense = .fp8
            case let other?: return .failure(q.error("weight_block_size", "\(other) is not a block size moesim prices (128 × 128 or none)"))
            }
            let expertType = try q.string("expert_dtype") ?? holder.string("expert_dtype") ?? fields.string("expert_dtype")
            switch expertType {
            case nil, "fp8": return .success(ShippedWeights(dense: dense, experts: dense, source: "\(dense.rawValue) (quantization_config)"))
            case "fp4": return .success(ShippedWeights(dense: dense, experts: .mxfp4, source: "\(dense.rawValue), experts fp4 (expert_dtype)"))
            case let other?: return .failure(q.error("expert_dtype", "\"\(other)\" is not a format moesim prices"))
            }
        case "mxfp4":
            // gpt-oss: MXFP4 experts, the rest (modules_to_not_convert) in bf16.
            return .success(ShippedWeights(dense: .bf16, experts: .mxfp4, source: "bf16, experts mxfp4 (quant_method mxfp4)"))
        case "compressed-tensors":
            // Kimi K2.5 and K3: 4-bit groups on the experts' Linear layers; `ignore` keeps
            // attention, shared experts, dense MLPs and the head in bf16.
            guard let groups = try q.object("config_groups"), groups.values.count == 1, let first = groups.values.keys.first,
                  let group = try groups.object(first), let w = try group.object("weights") else {
                return .failure(q.error("config_groups", "must hold one weights scheme"))
            }
            let bits = try w.int("num_bits", atLeast: 1), size = try w.int("group_size", atLeast: 1)
            let type = try w.string("type")
            let ignored = (try q.stringArray("ignore") ?? []).joined(separator: " ")
            guard ignored.contains("self_attn"), ignored.contains("shared_experts"), ignored.contains("lm_head") else {
                return .failure(q.error("ignore", "quantizes more than the routed experts; moesim prices only expert-only schemes"))
            }
            switch (type, bits, size) {
            case ("float", 4, 32): return .success(ShippedWeights(dense: .bf16, experts: .mxfp4, source: "bf16, experts mxfp4 (compressed-tensors)"))
            case ("int", 4, 128): return .success(ShippedWeights(dense: .bf16, experts: .int4, source: "bf16, experts int4 (compressed-tensors)"))
            case ("int", 4, 32):
                return .success(ShippedWeights(dense: .bf16, experts: .int4g32, source: "bf16, experts int4 in groups of 32 (compressed-tensors)"))
            default:
                return .failure(q.error("config_groups", "\(type ?? "?") \(bits.map(String.init) ?? "?")-bit weights in groups of "
                    + "\(size.map(String.init) ?? "?") are not a format moesim prices (int4 in groups of 128 or 32, mxfp4 in groups of 32)"))
            }
        default:
            return .failure(q.error("quant_method", "\"\(method)\" is not a scheme moesim reads"))
        }
    }
}

extension ModelSpec {
    /// The format `tensor` is stored in when the model is priced in `format`: the experts'
    /// override (`expertWeightFormat`, from `--weights checkpoint`) for routed experts, the
    /// unquantized format for tensors no scheme quantizes, else `format`.
    public func storedFormat(_ tensor: WeightTensor, _ format: WeightFormat) -> WeightFormat {
        guard tensor.quantizable else { return format.unquantized }
        switch tensor.category {
        case .routedExperts: return expertWeightFormat ?? format
        case .attention where attentionOutputQuantized && tensor.isAttentionOutput: return format
        case .attention: return attentionWeightFormat ?? format
        default: return format
        }
    }

    /// "fp8 weights", or "fp8 weights with mxfp4 experts" when the experts are stored otherwise.
    public func weightsLabel(_ format: WeightFormat) -> String {
        var label = "\(format.rawValue) weights"
        if let experts = expertWeightFormat, experts != format { label += " with \(experts.rawValue) experts" }
        if let attention = attentionWeightFormat, attention != format {
            label += (label.contains(" with ") ? " and " : " with ")
                + "\(attention.rawValue) attention\(attentionOutputQuantized ? " q/kv projections" : "")"
        }
        return label
    }

    /// This spec with its attention projections stored in `format` while the rest is priced in
    /// `weights` (`--attention-weights`, a measurements file's `attention_weights`); with
    /// `outputQuantized`, the output projections stay in `weights`. Unchanged when the two
    /// formats are the same.
    public func withAttentionWeights(_ format: WeightFormat, outputQuantized: Bool = false, pricedIn weights: WeightFormat) -> ModelSpec {
        var spec = self
        spec.attentionWeightFormat = format == weights ? nil : format
        spec.attentionOutputQuantized = spec.attentionWeightFormat != nil && outputQuantized
        return spec
    }

    /// This spec with its attention in one of the splits the FP4 checkpoints ship, the rest
    /// priced in `weights`; nil when `weights` is unquantized already (the split changes nothing).
    public func withAttentionWeights(split: AttentionWeightSplit, pricedIn weights: WeightFormat) -> ModelSpec? {
        guard weights.unquantized != weights else { return nil }
        return withAttentionWeights(.bf16, outputQuantized: split == .bf16QKV, pricedIn: weights)
    }

    /// How the attention projections are stored when the model is priced in `weights`, as the
    /// JSON and `attention_weights` name it: `weights`' own name, `bf16`, or `bf16-qkv` (the
    /// query and key-value projections in bf16, the output projections in `weights`).
    public func attentionWeightsName(_ weights: WeightFormat) -> String {
        guard let attention = attentionWeightFormat, attention != weights else { return weights.rawValue }
        return attention.rawValue + (attentionOutputQuantized ? "-qkv" : "")
    }

    /// This spec priced as its checkpoint ships: the dense format to price with, and the experts'
    /// own format set. An error when the config's scheme is not one moesim prices.
    public func asShipped() throws -> (ModelSpec, WeightFormat) {
        switch shippedWeights {
        case let .success(shipped)?:
            var spec = self
            spec.expertWeightFormat = shipped.experts == shipped.dense ? nil : shipped.experts
            return (spec, shipped.dense)
        case let .failure(error)?: throw error
        case nil: throw ConfigError(source: id, field: nil, message: "has no config to read its checkpoint's formats from")
        }
    }
}

/// The splits of formats the shipped FP4 checkpoints use for their attention projections, as
/// `--attention-weights` and a measurements file's `attention_weights` name them.
public enum AttentionWeightSplit: String, Sendable, CaseIterable {
    /// Every attention projection in bf16: AMD's MXFP4 and NVIDIA's first NVFP4 DeepSeek-R1
    /// checkpoints exclude `self_attn` from FP4.
    case bf16
    /// The query and key-value projections in bf16, the output projections in the model's
    /// format: NVIDIA's v2 NVFP4 checkpoints.
    case bf16QKV = "bf16-qkv"

    /// The splits, comma-separated, for help texts and errors.
    public static let names = allCases.map(\.rawValue).joined(separator: ", ")
}
