/// The KV cache of one sequence: per layer, what attention keeps of each past token. GQA keeps
/// keys and values of every KV head (after RoPE); MLA keeps the normalised latent and the shared
/// rotary key, (kv_lora_rank + qk_rope_head_dim) floats per token, and expands them when it attends.
public struct SequenceCache: Sendable {
    /// Tokens already in the cache: the position of the next token.
    public private(set) var length = 0
    var keys: [[Float]]
    var values: [[Float]]
    /// Linear-attention layers: the last kernel − 1 inputs of the convolution, and the
    /// recurrent state [value heads × key dim × value dim], both updated in place each step.
    var conv: [[Float]]
    var state: [[Float]]
    /// Sparse attention's indexer keys, one per token (index_head_dim floats).
    var indexKeys: [[Float]]
    /// DeepSeek-V4's compressors (keys = values live in `keys`): the attention's and the CSA
    /// layers' indexer's, per layer.
    var compressor: [CompressorState]
    var indexCompressor: [CompressorState]

    /// Zeroes a linear-attention layer's convolution history and state when the sequence starts
    /// there. The state, not the history, says whether it has begun (the history of a one-tap
    /// convolution would be empty).
    mutating func beginLinear(layer: Int, convFloats: Int, stateFloats: Int) {
        guard state[layer].isEmpty else { return }
        conv[layer] = [Float](repeating: 0, count: convFloats)
        state[layer] = [Float](repeating: 0, count: stateFloats)
    }

    init(layers: Int, reserve tokens: Int, keyWidth: Int, valueWidth: Int) {
        keys = Array(repeating: [], count: layers)
        values = Array(repeating: [], count: layers)
        conv = Array(repeating: [], count: layers)
        state = Array(repeating: [], count: layers)
        indexKeys = Array(repeating: [], count: layers)
        compressor = Array(repeating: CompressorState(), count: layers)
        indexCompressor = Array(repeating: CompressorState(), count: layers)
        for i in 0..<layers {
            keys[i].reserveCapacity(tokens * keyWidth)
            values[i].reserveCapacity(tokens * valueWidth)
        }
    }

    mutating func append(layer: Int, keys k: UnsafeBufferPointer<Float>, values v: UnsafeBufferPointer<Float>) {
        keys[layer].append(contentsOf: k)
        values[layer].append(contentsOf: v)
    }

    mutating func advance(by tokens: Int) { length += tokens }

    /// Bytes held, as Float32.
    public var byteCount: Int {
        4 * (keys.reduce(0) { $0 + $1.count } + values.reduce(0) { $0 + $1.count } + conv.reduce(0) { $0 + $1.count }
            + state.reduce(0) { $0 + $1.count } + indexKeys.reduce(0) { $0 + $1.count })
            + compressor.reduce(0) { $0 + $1.byteCount } + indexCompressor.reduce(0) { $0 + $1.byteCount }
    }
}
