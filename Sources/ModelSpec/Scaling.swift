/// A scaled-down copy of an architecture that fits a laptop: `--scale F` divides the widths and
/// `--layers N` caps the depth, keeping what makes the architecture itself.
///
/// Divided by F: hidden size, attention heads (KV heads keep the heads-per-KV-head ratio; head
/// dimensions stay), MLA's q and kv ranks, every intermediate size, the routed-expert count (but
/// never below twice the experts per token, so that routing still chooses: Mixtral's 8 experts
/// top-2 keep 4) and the vocabulary. Kept: experts per token, expert groups and groups per token
/// (DeepSeek), the router kind and its scaling, the attention kind, rotary settings, windows, and the pattern of
/// dense and MoE layers (the first N layers are kept, so dense-first layers stay first). Every
/// divided dimension must divide exactly and stay positive; otherwise the error names it.
/// DeepSeek-V4 divides its heads, query and output ranks and index heads, and keeps its head
/// sizes, window, compression rates, index top-k and output groups. The copy drops a
/// checkpoint's own expert format (the CPU stores every matrix in one format).
extension ModelSpec {
    public func scaled(by factor: Int, layers layerLimit: Int? = nil) throws -> ModelSpec {
        guard factor >= 1 else { throw ScalingError(dimension: "scale", reason: "must be at least 1, got \(factor)") }
        func divide(_ value: Int, _ name: String) throws -> Int {
            guard value % factor == 0, value / factor >= 1 else {
                throw ScalingError(dimension: name, reason: "\(value) is not a positive multiple of \(factor)")
            }
            return value / factor
        }
        var s = self
        s.hiddenSize = try divide(hiddenSize, "hidden_size")
        s.vocabSize = try divide(vocabSize, "vocab_size")
        switch attention {
        case var .grouped(a):
            let perKV = a.heads / a.kvHeads
            a.heads = try divide(a.heads, "num_attention_heads")
            guard a.heads % perKV == 0 else {
                throw ScalingError(dimension: "num_key_value_heads",
                                   reason: "\(a.heads) heads cannot keep \(perKV) heads per KV head")
            }
            a.kvHeads = a.heads / perKV
            s.attention = .grouped(a)
        case var .compressed(a):
            // DeepSeek-V4: heads, the query and output ranks and the indexer's heads divide; the
            // head sizes, window, compression rates, top-k and output groups stay (the groups
            // must still split the heads).
            a.heads = try divide(a.heads, "num_attention_heads")
            a.queryRank = try divide(a.queryRank, "q_lora_rank")
            a.outputRank = try divide(a.outputRank, "o_lora_rank")
            a.indexer.heads = try divide(a.indexer.heads, "index_n_heads")
            a.indexer.queryRank = a.queryRank
            guard (a.heads * a.headDim) % a.outputGroups == 0, a.heads % a.outputGroups == 0 else {
                throw ScalingError(dimension: "o_groups", reason: "\(a.outputGroups) groups do not split \(a.heads) heads")
            }
            s.attention = .compressed(a)
        case var .latent(a):
            a.heads = try divide(a.heads, "num_attention_heads")
            if let rank = a.qLoraRank { a.qLoraRank = try divide(rank, "q_lora_rank") }
            a.kvLoraRank = try divide(a.kvLoraRank, "kv_lora_rank")
            s.attention = .latent(a)
            // The sparse-attention indexer reads the query latent: its rank follows, its heads divide.
            if var x = sparseAttention {
                x.heads = try divide(x.heads, "index_n_heads")
                x.queryRank = a.qLoraRank ?? x.queryRank
                s.sparseAttention = x
            }
        }
        if var sliding = slidingAttention {
            // MiMo-V2-Flash's sliding layers: heads divide keeping their heads per KV head.
            let perKV = sliding.heads / max(sliding.kvHeads, 1)
            sliding.heads = try divide(sliding.heads, "num_attention_heads")
            guard sliding.heads % max(perKV, 1) == 0 else {
                throw ScalingError(dimension: "swa_num_key_value_heads", reason: "\(sliding.heads) heads cannot keep \(perKV) heads per KV head")
            }
            sliding.kvHeads = sliding.heads / max(perKV, 1)
            s.slidingAttention = sliding
        }
        if var linear = linearAttention {
            // Linear attention keeps its head size and the value heads per key head.
            let perKey = linear.valueHeads / max(linear.keyHeads, 1)
            linear.keyHeads = try divide(linear.keyHeads, "linear_num_key_heads")
            linear.valueHeads = linear.keyHeads * perKey
            s.linearAttention = linear
        }
        if let limit = layerLimit {
            guard limit >= 1, limit <= layers.count else {
                throw ScalingError(dimension: "layers", reason: "must be 1 to the model's \(layers.count), got \(limit)")
            }
            s.layers = Array(layers.prefix(limit))
        }
        s.layers = try s.layers.map { layer in
            var l = layer
            if case let .dense(size) = layer.feedForward { l.feedForward = .dense(intermediateSize: try divide(size, "intermediate_size")) }
            return l
        }
        if var moe = moe {
            // Twice the experts per token at least (rounded up to whole groups), never more than the model has.
            let least = min(moe.routedExperts, (2 * moe.expertsPerToken + moe.groups - 1) / moe.groups * moe.groups)
            moe.routedExperts = moe.routedExperts / factor >= least ? try divide(moe.routedExperts, "n_routed_experts") : least
            moe.expertIntermediateSize = try divide(moe.expertIntermediateSize, "moe_intermediate_size")
            if let latent = moe.latentSize { moe.latentSize = try divide(latent, "routed_expert_hidden_size") }
            if moe.sharedIntermediateSize > 0 {
                moe.sharedIntermediateSize = try divide(moe.sharedIntermediateSize, "shared_expert_intermediate_size")
            }
            guard moe.expertsPerToken <= moe.routedExperts else {
                throw ScalingError(dimension: "n_routed_experts",
                                   reason: "\(moe.routedExperts) experts after scaling is fewer than \(moe.expertsPerToken) per token")
            }
            guard moe.routedExperts % moe.groups == 0,
                  moe.topKGroups * (moe.routedExperts / moe.groups) >= moe.expertsPerToken else {
                throw ScalingError(dimension: "n_group", reason: "\(moe.groups) groups do not fit \(moe.routedExperts) experts")
            }
            s.moe = moe
        }
        s.mtpModules = 0
        // The CPU runtime stores every matrix in one format (f32 or bf16): a checkpoint's own
        // expert format does not carry over to the scaled copy.
        s.expertWeightFormat = nil
        s.attentionWeightFormat = nil
        s.attentionOutputQuantized = false
        s.id = id + " ÷\(factor)" + (layerLimit.map { ", \($0) layers" } ?? "")
        return s
    }
}

public struct ScalingError: Error, Equatable, CustomStringConvertible {
    public let dimension: String
    public let reason: String
    public var description: String { "cannot scale \(dimension): \(reason)" }
}
