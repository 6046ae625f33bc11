import ConfigFile

/// Dense decoders: Llama (optional biases on q/k/v and output) and Qwen3 (q/k norms, optional
/// sliding windows from max_window_layers on).
enum DenseGQA: Architecture {
    static let modelTypes = ["llama", "qwen3"]

    static func defaults(for modelType: String) -> [String: Any] { modelType == "qwen3" ? qwen3 : llama }

    static var llama: [String: Any] { [
        "vocab_size": 32000, "hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32,
        "num_attention_heads": 32, "max_position_embeddings": 2048, "rms_norm_eps": 1e-6,
        "tie_word_embeddings": false, "rope_theta": 10000.0, "attention_bias": false,
        "num_key_value_heads": NSNullMarker.none, "head_dim": NSNullMarker.none,
        "rope_scaling": NSNullMarker.none, "rope_parameters": NSNullMarker.none,
    ] }

    static var qwen3: [String: Any] { [
        "vocab_size": 151_936, "hidden_size": 4096, "intermediate_size": 22016, "num_hidden_layers": 32,
        "num_attention_heads": 32, "num_key_value_heads": 32, "head_dim": 128,
        "max_position_embeddings": 32768, "rms_norm_eps": 1e-6, "tie_word_embeddings": false,
        "rope_theta": 10000.0, "attention_bias": false,
        "rope_scaling": NSNullMarker.none, "rope_parameters": NSNullMarker.none,
    ] }

    static func build(_ c: JSONObject, _ reader: ConfigReader, modelType: String, layerCount n: Int) throws -> ArchitectureParts {
        var p = ArchitectureParts()
        let isLlama = modelType == "llama"
        let bias = try c.bool("attention_bias") ?? false
        let gqa = try reader.groupedAttention(qkvBias: bias, outputBias: isLlama ? bias : false, qkNorm: !isLlama, sinks: false)
        p.attention = .grouped(gqa)
        let intermediate = try reader.positive("intermediate_size")
        let span: (Int) -> Layer.Span = isLlama ? { _ in .full } : try reader.qwenSpan()
        p.layers = (0..<n).map { Layer(span: span($0), feedForward: .dense(intermediateSize: intermediate), usesRoPE: true) }
        p.rope = try reader.rope(rotaryDimension: gqa.headDim)
        return p
    }
}
