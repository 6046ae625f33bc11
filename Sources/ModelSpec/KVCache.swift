extension ModelSpec {
    /// Values the KV cache stores per token in one softmax-attention layer: MLA keeps the
    /// compressed latent plus the shared rope key (kv_lora_rank + qk_rope_head_dim); GQA keeps a
    /// key and a value per KV head (2 × kv_heads × head_dim).
    public var kvValuesPerTokenPerLayer: Int { Self.kvValuesPerToken(attention) }

    static func kvValuesPerToken(_ attention: Attention) -> Int {
        switch attention {
        case let .grouped(a): a.kvHeads * (a.headDim + a.vDim)
        case let .latent(a): a.kvLoraRank + a.qkRopeHeadDim
        case let .compressed(a): a.headDim
        }
    }

    /// Values one token adds to `layer`'s cache: the attention's KV (plus the indexer's key on a
    /// layer with its own sparse-attention indexer); nothing on a linear-attention layer.
    /// DeepSeek-V4's compressed layers add one entry (and on CSA layers one indexer key) per
    /// `ratio` tokens: their long-run rate (the window's fixed part is left out).
    public func cacheValuesPerToken(_ layer: Layer) -> Int {
        guard layer.mixer == .attention else { return 0 }
        if case let .compressed(ratio, _) = layer.span, case let .compressed(a) = attention {
            return ratio > 0 ? (a.headDim + (layer.indexer ? a.indexer.headDim : 0)) / ratio : 0
        }
        return Self.kvValuesPerToken(attention(for: layer)) + (layer.indexer ? (sparseAttention?.headDim ?? 0) : 0)
    }

    /// Values `layer` caches for one sequence of `context` tokens.
    public func cachedValues(_ layer: Layer, context: Int) -> Int {
        guard layer.mixer == .attention else { return 0 }
        if case let .compressed(ratio, _) = layer.span, case let .compressed(a) = attention {
            let indexed = layer.indexer && ratio > 0 ? context / ratio : 0
            return layer.span.cachedTokens(context: context) * a.headDim + indexed * a.indexer.headDim
        }
        return layer.span.cachedTokens(context: context) * cacheValuesPerToken(layer)
    }

    /// Bytes of constant state one sequence holds in `layer`, whatever its length: a linear-
    /// attention layer's recurrent and conv state, or a DeepSeek-V4 compressor's
    /// (`compressorStateValues`, in bf16, the checkpoints' activation type).
    public func stateBytesPerSequence(_ layer: Layer) -> Int {
        if layer.mixer == .linear { return linearAttention?.bytesPerSequence ?? 0 }
        return 2 * compressorStateValues(layer)
    }

    /// The most a DeepSeek-V4 compressed layer's compressors hold for one sequence between
    /// entries (transformers' DeepseekV4HCACache / CSACache): the kv and gate projections of the
    /// window not yet complete (ratio − 1 tokens of head_dim each on HCA layers, 2 × head_dim on
    /// CSA layers), on CSA layers the previous window's first halves (ratio × head_dim of kv and
    /// gate) that the next entry mixes in, and the same for the CSA indexer's compressor at
    /// index_head_dim. An engine that folds each window into running softmax sums would need
    /// O(head_dim) instead; this is the reference's state.
    public func compressorStateValues(_ layer: Layer) -> Int {
        guard case let .compressed(ratio, _) = layer.span, ratio > 0, case let .compressed(a) = attention else { return 0 }
        func compressor(_ dim: Int, overlapping: Bool) -> Int {
            2 * (overlapping ? 2 * dim : dim) * (ratio - 1) + (overlapping ? 2 * ratio * dim : 0)
        }
        return compressor(a.headDim, overlapping: layer.indexer) + (layer.indexer ? compressor(a.indexer.headDim, overlapping: true) : 0)
    }

    /// KV-cache bytes one token adds across all layers while the context is shorter than every
    /// sliding window or chunk (the growth rate of a short sequence).
    public func kvCacheBytesPerToken(_ format: KVCacheFormat) -> Int {
        layers.reduce(0) { $0 + cacheValuesPerToken($1) } * format.bytesPerValue
    }

    /// Bytes of one sequence of `context` tokens: each attention layer's cache (sliding-window
    /// and chunked layers stop growing at their window) plus each linear layer's constant state.
    public func kvCacheBytes(context: Int, format: KVCacheFormat) -> Int {
        layers.reduce(0) { $0 + kvCacheBytes($1, context: context, format: format) }
    }

    /// One layer's share of that: its cache at `context` tokens plus its constant state.
    public func kvCacheBytes(_ layer: Layer, context: Int, format: KVCacheFormat) -> Int {
        cachedValues(layer, context: context) * format.bytesPerValue + stateBytesPerSequence(layer)
    }

    /// Constant state bytes of one sequence (linear-attention layers, DeepSeek-V4's compressors).
    public var stateBytesPerSequence: Int { layers.reduce(0) { $0 + stateBytesPerSequence($1) } }
}
