#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Rotary position embedding (RoPE) over the first `rotaryDimension` lanes of each head vector.
///
/// Two pairings of lanes exist in the wild and both are supported:
/// - `halfSplit` (GPT-NeoX, Llama, Qwen, Mixtral): lane i pairs with lane i + d/2;
/// - `interleaved` (GPT-J, DeepSeek's original checkpoints): lane 2i pairs with lane 2i + 1.
/// Lanes past `rotaryDimension` (partial rotary) pass through unchanged. Frequencies are given
/// explicitly so that YaRN, Llama-3 and linear scaling are computed once by the caller;
/// `attentionScaling` multiplies cos and sin as transformers does for YaRN.
public struct RotaryEmbedding: Sendable {
    public enum Layout: String, Sendable { case halfSplit, interleaved }

    public let rotaryDimension: Int
    public let layout: Layout
    public let inverseFrequencies: [Float]
    public let attentionScaling: Float

    /// Plain RoPE: inverse frequency i is base^(-2i/d).
    public init(rotaryDimension: Int, base: Double, layout: Layout) throws {
        guard rotaryDimension > 0, rotaryDimension % 2 == 0 else {
            throw TensorError.invalidArgument(operation: "RoPE",
                                              reason: "rotary dimension must be even and positive, got \(rotaryDimension)")
        }
        guard base > 1 else {
            throw TensorError.invalidArgument(operation: "RoPE", reason: "base (rope_theta) must exceed 1, got \(base)")
        }
        let frequencies = (0..<(rotaryDimension / 2)).map { i in
            Float(1 / pow(base, Double(2 * i) / Double(rotaryDimension)))
        }
        try self.init(inverseFrequencies: frequencies, layout: layout)
    }

    public init(inverseFrequencies: [Float], layout: Layout, attentionScaling: Float = 1) throws {
        guard !inverseFrequencies.isEmpty else {
            throw TensorError.invalidArgument(operation: "RoPE", reason: "no frequencies")
        }
        self.rotaryDimension = 2 * inverseFrequencies.count
        self.layout = layout
        self.inverseFrequencies = inverseFrequencies
        self.attentionScaling = attentionScaling
    }

    /// Fills cos and sin tables (rotaryDimension / 2 entries each) for one position. The angle is
    /// computed in Float32 as transformers does, so positions agree bit for bit in the angle.
    @inlinable
    public func angles(position: Int, cos cosines: UnsafeMutablePointer<Float>, sin sines: UnsafeMutablePointer<Float>) {
        let p = Float(position)
        for i in 0..<inverseFrequencies.count {
            let angle = p * inverseFrequencies[i]
            cosines[i] = cosf(angle) * attentionScaling
            sines[i] = sinf(angle) * attentionScaling
        }
    }

    /// Rotates `heads` consecutive head vectors of length `headStride` starting at `x`, using the
    /// tables from `angles(position:cos:sin:)`.
    @inlinable
    public func apply(to x: UnsafeMutablePointer<Float>, heads: Int, headStride: Int,
                      cos cosines: UnsafePointer<Float>, sin sines: UnsafePointer<Float>) {
        let half = rotaryDimension / 2
        for h in 0..<heads {
            let v = x + h * headStride
            switch layout {
            case .halfSplit:
                for i in 0..<half {
                    let a = v[i], b = v[i + half]
                    v[i] = a * cosines[i] - b * sines[i]
                    v[i + half] = b * cosines[i] + a * sines[i]
                }
            case .interleaved:
                for i in 0..<half {
                    let a = v[2 * i], b = v[2 * i + 1]
                    v[2 * i] = a * cosines[i] - b * sines[i]
                    v[2 * i + 1] = b * cosines[i] + a * sines[i]
                }
            }
        }
    }

    /// Convenience for one position: computes the tables on the stack and rotates.
    public func apply(to x: UnsafeMutablePointer<Float>, heads: Int, headStride: Int, position: Int) {
        withUnsafeTemporaryAllocation(of: Float.self, capacity: rotaryDimension) { table in
            guard let base = table.baseAddress else { return }
            angles(position: position, cos: base, sin: base + rotaryDimension / 2)
            apply(to: x, heads: heads, headStride: headStride, cos: base, sin: base + rotaryDimension / 2)
        }
    }
}
