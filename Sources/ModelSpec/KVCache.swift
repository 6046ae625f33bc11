extension ModelSpec {
    /// Values the KV cache stores per token in one layer: MLA keeps the compressed latent plus
    /// the shared rope key (kv_lora_rank + qk_rope_head_dim); GQA keeps a key and a value per KV
    /// head (2 × kv_heads × head_dim).
    public var kvValuesPerTokenPerLayer: Int {
        switch attention {
        case let .grouped(a): 2 * a.kvHeads * a.headDim
        case let .latent(a): a.kvLoraRank + a.qkRopeHeadDim
        }
    }

    /// KV-cache bytes one token adds across all layers while the context is shorter than every
    /// sliding window or chunk (the growth rate of a short sequence).
    public func kvCacheBytesPerToken(_ format: KVCacheFormat) -> Int {
        kvValuesPerTokenPerLayer * format.bytesPerValue * layerCount
    }

    /// KV-cache bytes of one sequence of `context` tokens: sliding-window and chunked layers stop
    /// growing at their window.
    public func kvCacheBytes(context: Int, format: KVCacheFormat) -> Int {
        let perLayerToken = kvValuesPerTokenPerLayer * format.bytesPerValue
        return layers.reduce(0) { $0 + $1.span.cachedTokens(context: context) * perLayerToken }
    }
}
