import ArgumentParser
import Foundation
import ModelSpec

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Parameter counts, weight bytes and KV-cache cost of one model.",
        discussion: """
        MODEL is a preset id (see `moesim models`), a path to a config.json, or a HuggingFace \
        model folder. --set changes a config field first: architecture what-ifs.

        Examples:
          moesim inspect kimi-k2
          moesim inspect deepseek-v3 --json
          moesim inspect kimi-k2 --set n_routed_experts=512 \\
              --set num_experts_per_tok=12
          moesim inspect ~/models/Qwen3-30B-A3B/config.json
        """
    )

    @Argument(help: "Preset id, config.json path or model folder.")
    var model: String

    @OptionGroup var overrides: OverrideOptions
    @OptionGroup var output: OutputOptions

    static let contexts = [131_072, 262_144, 1_048_576]

    /// A config's number as written (4, 25, -5, 0.25).
    static func number(_ value: Double) -> String { String(format: "%g", value) }

    func run() throws {
        let spec = try overrides.load(model)
        let counts = spec.parameterCounts
        let denseLayers = spec.layerCount - spec.moeLayerCount
        // How many layers each category spans, for the per-layer column.
        let spans: [WeightTensor.Category: Int] = [
            .attention: spec.linearLayerCount > 0 ? 0 : spec.layerCount, .denseFFN: denseLayers, .routedExperts: spec.moeLayerCount,
            .sharedExperts: spec.moeLayerCount, .router: spec.moeLayerCount,
        ]
        if output.json {
            var json: [String: Any] = [
                "id": spec.id, "model_type": spec.modelType, "attention": spec.mixerName,
                "total_params": counts.total, "active_params": counts.active, "mtp_params": counts.mtp,
                "layers": spec.layerCount, "moe_layers": spec.moeLayerCount, "hidden_size": spec.hiddenSize,
                "experts": spec.moe?.routedExperts ?? 0, "experts_per_token": spec.moe?.expertsPerToken ?? 0,
                "shared_experts": spec.moe?.sharedExperts ?? 0,
                "kv_cache_bytes_per_token": spec.kvCacheBytesPerToken(.bf16),
                "kv_cache_bytes_per_token_by_format": Dictionary(uniqueKeysWithValues: KVCacheFormat.allCases.map {
                    ($0.rawValue, spec.kvCacheBytesPerToken($0)) }),
                "kv_cache_bytes_per_sequence": Dictionary(uniqueKeysWithValues: Inspect.contexts.map {
                    (String($0), spec.kvCacheBytes(context: $0, format: .bf16)) }),
                "state_bytes_per_sequence": spec.stateBytesPerSequence,
                "attention_layers": spec.attentionLayerCount, "linear_attention_layers": spec.linearLayerCount,
                "weight_bytes": Dictionary(uniqueKeysWithValues: WeightFormat.allCases.map { ($0.rawValue, spec.weightBytes($0)) }),
                "params_by_category": Dictionary(uniqueKeysWithValues: WeightTensor.Category.allCases.map {
                    ($0.rawValue, counts.count($0)) }),
                "max_context": spec.maxPositionEmbeddings,
                "activation": { if case .situ = spec.activation { "situ" } else { "silu" } }(),
                "attention_residual_block": spec.attentionResidualBlock.map { $0 as Any } ?? NSNull(),
                "hyper_connection_streams": spec.hyperConnections.map { $0.streams as Any } ?? NSNull(),
                "overrides": spec.overrides,
            ]
            json["embedding_params"] = counts.count(.embeddings)
            json["head_params"] = counts.count(.head)
            try Output.printJSON(json)
            return
        }

        print("\(spec.id) (\(spec.modelType)): \(spec.layerCount) layers (\(denseLayers) dense, \(spec.moeLayerCount) MoE), "
            + "hidden \(spec.hiddenSize), vocabulary \(Output.grouped(spec.vocabSize)), context \(Output.grouped(spec.maxPositionEmbeddings))")
        print("attention: " + describe(spec.attention) + (spec.linearLayerCount > 0 ? " on \(spec.attentionLayerCount) layers" : ""))
        if let sparse = spec.sparseAttention {
            print("sparse attention: indexer of \(sparse.heads) heads × \(sparse.headDim) on \(spec.layers.filter(\.indexer).count) layers, "
                + "top \(Output.grouped(sparse.topK)) tokens per query")
        }
        if let linear = spec.linearAttention {
            let name = linear.kind == .gatedDeltaNet ? "Gated DeltaNet" : "Kimi Delta Attention"
            print("linear attention: \(name) on \(spec.linearLayerCount) layers, \(linear.valueHeads) heads, state "
                + "\(linear.keyHeadDim) × \(linear.valueHeadDim) in \(linear.stateBytesPerValue == 4 ? "fp32" : "bf16"): "
                + "\(Output.bytes(Double(linear.bytesPerSequence))) per layer and sequence, whatever its length"
                + (linear.forgetGateLowerBound.map { "; forget gate bounded at \(Inspect.number($0))" } ?? ""))
        }
        if let block = spec.attentionResidualBlock {
            print("residual: attention residuals, a block snapshot every \(block) layers mixed before each block and the head")
        } else if let hc = spec.hyperConnections {
            print("residual: hyper-connections, \(hc.streams) streams")
        }
        if case let .situ(beta, linearBeta) = spec.activation {
            print("activation: SiTU, gate width \(Inspect.number(beta))" + (linearBeta.map { ", up width \(Inspect.number($0))" } ?? ""))
        }
        if let moe = spec.moe {
            var routing = "\(moe.scoring.rawValue) router"
            if moe.groups > 1 { routing += ", \(moe.topKGroups) of \(moe.groups) groups" }
            if moe.correctionBias { routing += ", selection bias" }
            if moe.routedScalingFactor != 1 { routing += ", scale \(moe.routedScalingFactor)" }
            print("experts: \(moe.routedExperts) routed × \(moe.expertIntermediateSize) wide"
                + (moe.latentSize.map { " at latent width \($0) (LatentMoE)" } ?? "") + ", \(moe.expertsPerToken) per token"
                + (moe.sharedExperts > 0 ? ", \(moe.sharedExperts) shared" : "") + "; \(routing)")
        }
        if !spec.overrides.isEmpty {
            print("overrides: " + spec.overrides.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", "))
        }
        print("")
        let names: [(WeightTensor.Category, String)] = [
            (.embeddings, "embeddings"), (.attention, "attention"), (.denseFFN, "dense FFN"),
            (.routedExperts, "routed experts"), (.sharedExperts, "shared experts"), (.router, "routers"),
            (.norms, "norms"), (.head, "output head"),
        ]
        var rows: [[String]] = []
        for (category, name) in names where counts.count(category) > 0 {
            let total = counts.count(category)
            var perLayer = ""
            if let layers = spans[category], layers > 0 { perLayer = "\(Output.count(total / layers)) × \(layers)" }
            rows.append([name, Output.count(total), perLayer, Output.count(counts.active(category))])
        }
        rows.append(["total", Output.count(counts.total), "", Output.count(counts.active)])
        if counts.mtp > 0 { rows.append(["MTP modules (apart)", Output.count(counts.mtp), "", ""]) }
        Output.printColumns(header: ["parameters", "total", "per layer", "active/token"], rows: rows)

        print("")
        Output.printColumns(
            header: ["weights", "bytes"],
            rows: WeightFormat.allCases.map { [$0.rawValue, Output.bytes(Double(spec.weightBytes($0)))] })
        print("  (norms, routers, embeddings and head stay bf16 in every format; GB = 10⁹ bytes)")

        print("")
        var kvRows: [[String]] = []
        for format in KVCacheFormat.allCases {
            kvRows.append([format.rawValue, Output.grouped(spec.kvCacheBytesPerToken(format)) + " B"]
                + Inspect.contexts.map { Output.bytes(Double(spec.kvCacheBytes(context: $0, format: format))) })
        }
        Output.printColumns(header: ["KV cache", "per token"] + Inspect.contexts.map { "\(Output.grouped($0)) tokens" }, rows: kvRows)
        if spec.stateBytesPerSequence > 0 {
            let kind = spec.linearAttention != nil ? "linear-attention" : "compressor"
            print("  (each sequence also holds \(Output.bytes(Double(spec.stateBytesPerSequence))) of \(kind) state, included)")
        }
    }

    func describe(_ attention: Attention) -> String {
        switch attention {
        case let .grouped(a):
            var text = "GQA, \(a.heads) query heads, \(a.kvHeads) KV heads of \(a.headDim)"
            if a.qkNorm { text += ", QK-norm" }
            if a.outputGate { text += ", output gate" }
            if a.sinks { text += ", attention sinks" }
            return text
        case let .compressed(a):
            return "compressed attention (DeepSeek-V4), \(a.heads) heads of \(a.headDim) over one shared key-value head, "
                + "window \(a.window), CSA 1/\(a.sparseRatio) with top-\(Output.grouped(a.indexer.topK)) indexer, HCA 1/\(a.heavyRatio)"
        case let .latent(a):
            return "MLA, \(a.heads) heads, q rank \(a.qLoraRank.map(String.init) ?? "none"), kv rank \(a.kvLoraRank), "
                + "rope \(a.qkRopeHeadDim) + nope \(a.qkNopeHeadDim), v \(a.vHeadDim)" + (a.outputGate ? ", output gate" : "")
        }
    }
}
