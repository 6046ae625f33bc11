/// How weights are stored, with the exact bytes of one matrix including its scales.
public enum WeightFormat: String, Sendable, CaseIterable, Codable {
    /// 4 bytes per value: the CPU runtime's full-precision format.
    case f32
    /// 2 bytes per value.
    case bf16
    /// e4m3 values with one float32 scale per 128 × 128 block (DeepSeek-V3's released format and
    /// every FP8 checkpoint of the catalog's MoE models). Hopper applies the block scales on CUDA
    /// cores (`block_scaled_fp8_matmul` in its hardware files).
    case fp8
    /// e4m3 values with a float32 scale per tensor or per output channel, applied after the
    /// accumulation (TensorRT Model Optimizer's FP8, Meta's rowwise FP8 for Llama 3.1): full-rate
    /// FP8 GEMMs on Hopper. Priced with a scale per row (the larger of the two).
    case fp8Tensor = "fp8-tensor"
    /// NVFP4: e2m1 values with one fp8 (e4m3) scale per 16 consecutive values of a row.
    case nvfp4
    /// MXFP4 (OCP microscaling): e2m1 values with one e8m0 scale per 32 values of a row (gpt-oss).
    case mxfp4
    /// Symmetric 4-bit integers with one bf16 scale per group of 128 values of a row (GPTQ's and
    /// AWQ's usual group).
    case int4
    /// Symmetric 4-bit integers with one bf16 scale per group of 32 values of a row: Kimi K2
    /// Thinking's and K2.5's quantization-aware INT4 experts (compressed-tensors `pack-quantized`,
    /// group_size 32).
    case int4g32 = "int4-g32"

    /// Names accepted on the command line: `fp4` means NVFP4.
    public init?(argument: String) {
        if argument == "fp4" { self = .nvfp4; return }
        self.init(rawValue: argument)
    }

    /// Bytes of a rows × cols matrix in this format. Quantized formats round each row's scale
    /// count up (a partial block still needs its scale) and pack two 4-bit values per byte.
    public func bytes(rows: Int, cols: Int) -> Int {
        let values = rows * cols
        func ceilDiv(_ a: Int, _ b: Int) -> Int { (a + b - 1) / b }
        switch self {
        case .f32: return 4 * values
        case .bf16: return 2 * values
        case .fp8: return values + 4 * ceilDiv(rows, 128) * ceilDiv(cols, 128)
        case .fp8Tensor: return values + 4 * rows
        case .nvfp4: return ceilDiv(values, 2) + rows * ceilDiv(cols, 16)
        case .mxfp4: return ceilDiv(values, 2) + rows * ceilDiv(cols, 32)
        case .int4: return ceilDiv(values, 2) + 2 * rows * ceilDiv(cols, 128)
        case .int4g32: return ceilDiv(values, 2) + 2 * rows * ceilDiv(cols, 32)
        }
    }

    /// The format of the tensors a quantized format leaves alone (embeddings, head, norms, routers,
    /// biases): bf16, except in a Float32 model where everything is Float32.
    public var unquantized: WeightFormat { self == .f32 ? .f32 : .bf16 }

    /// The hardware number format the matrix units run in for this weight format.
    public var computeFormat: String {
        switch self {
        case .f32: "fp32"
        case .bf16: "bf16"
        case .fp8, .fp8Tensor: "fp8"
        case .nvfp4, .mxfp4: "fp4"
        // INT4 weights are dequantized to bf16 (or fp8) for the matmul on current GPUs.
        case .int4, .int4g32: "bf16"
        }
    }
}

/// How the KV cache is stored.
public enum KVCacheFormat: String, Sendable, CaseIterable, Codable {
    /// The CPU runtime keeps its cache in Float32.
    case f32, bf16, fp8

    public var bytesPerValue: Int {
        switch self {
        case .f32: 4
        case .bf16: 2
        case .fp8: 1
        }
    }
}

extension ModelSpec {
    /// Bytes of all weights of the main model (MTP modules excluded) in `format`; tensors that
    /// are not `quantizable` stay in `format.unquantized`, routed experts in `expertWeightFormat`
    /// when set (`storedFormat`).
    public func weightBytes(_ format: WeightFormat) -> Int {
        weightBytes(format) { $0.category != .mtp }
    }

    /// Bytes of the tensors selected by `include`.
    public func weightBytes(_ format: WeightFormat, where include: (WeightTensor) -> Bool) -> Int {
        weightTensors.filter(include).reduce(0) { sum, t in
            let one = storedFormat(t, format).bytes(rows: t.rows, cols: t.cols)
            return sum + one * t.copies
        }
    }

    /// Bytes of one routed expert (all its matrices and biases) in `format`: the inventory's own
    /// expert tensors for one layer (the step model asks this for every step shape it prices, so
    /// it does not build the whole inventory).
    public func bytesPerExpert(_ requested: WeightFormat) -> Int {
        guard let moe, moeLayerCount > 0 else { return 0 }
        let format = expertWeightFormat ?? requested
        var bytes = 0
        appendExperts(moe, copies: 1, mtp: false, matrix: { _, rows, cols, copies, category, _ in
            if category == .routedExperts, rows > 0, cols > 0 { bytes += format.bytes(rows: rows, cols: cols) * copies }
        }, vector: { _, count, copies, category, _ in
            if category == .routedExperts, count > 0 { bytes += format.unquantized.bytes(rows: 1, cols: count) * copies }
        })
        return bytes / moe.routedExperts
    }
}
