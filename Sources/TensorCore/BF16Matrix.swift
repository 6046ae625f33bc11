/// A matrix of bfloat16 weights, rows × cols, each row stored in a SIMD-friendly order.
///
/// bf16 is the upper half of an IEEE Float32 (same exponent range, 8-bit mantissa), so widening is
/// exact and cheap. Within each row, every full block of 16 values is stored pair-interleaved —
/// w0 w8 w1 w9 … w7 w15 — so that one 32-byte load yields w0…w7 in the low 16 bits and w8…w15 in
/// the high 16 bits of eight words, widened by one shift and one mask (`loadBF16x16`). The last
/// cols % 16 values of a row stay in order. The GEMV and GEMM paths widen by blocks inside the
/// kernel and never hold a Float32 copy of the whole matrix; storing weights in bf16 halves the
/// bytes a decode step reads.
public struct BF16Matrix: Sendable {
    public let rows: Int
    public let cols: Int
    /// The raw bits in the pair-interleaved row layout described above.
    @usableFromInline let packed: [UInt16]

    /// From bf16 bits in plain row-major order (as safetensors stores them).
    public init(rows: Int, cols: Int, bits: [UInt16]) throws {
        guard rows >= 0, cols >= 0, rows * cols == bits.count else {
            throw TensorError.elementCountMismatch(shape: [rows, cols], elementCount: bits.count)
        }
        self.init(rows: rows, cols: cols) { bits[$0] }
    }

    /// Rounds a rank-2 Float32 tensor to bf16 (round to nearest, ties to even; NaN stays NaN).
    public init(_ tensor: Tensor) throws {
        guard tensor.rank == 2 else {
            throw TensorError.invalidShape(shape: tensor.shape, reason: "a bf16 matrix needs rank 2")
        }
        self = tensor.withUnsafeBufferPointer { values in
            BF16Matrix(rows: tensor.shape[0], cols: tensor.shape[1]) { BF16Matrix.round(values[$0]) }
        }
    }

    /// Writes value(i) (plain row-major index i) straight into the pair-interleaved layout: one
    /// allocation, no intermediate copy.
    init(rows: Int, cols: Int, value: (Int) -> UInt16) {
        self.rows = rows
        self.cols = cols
        let blocks = cols / 16
        packed = [UInt16](unsafeUninitializedCapacity: rows * cols) { buffer, initialized in
            for r in 0..<rows {
                let base = r * cols
                for b in 0..<blocks {
                    let start = base + 16 * b
                    for j in 0..<8 {
                        buffer[start + 2 * j] = value(start + j)
                        buffer[start + 2 * j + 1] = value(start + 8 + j)
                    }
                }
                for i in (base + 16 * blocks)..<(base + cols) { buffer[i] = value(i) }
            }
            initialized = rows * cols
        }
    }

    /// Float32 → bf16 bits, round to nearest even.
    @inlinable
    public static func round(_ value: Float) -> UInt16 {
        if value.isNaN { return 0x7FC0 }
        let bits = value.bitPattern
        let rounding: UInt32 = 0x7FFF + ((bits >> 16) & 1)
        return UInt16(truncatingIfNeeded: (bits &+ rounding) >> 16)
    }

    @inlinable
    public static func widen(_ bits: UInt16) -> Float {
        Float(bitPattern: UInt32(bits) << 16)
    }

    /// Widens `count` whole rows starting at `row` into plain row-major Float32.
    @inlinable
    func widenRows(_ row: Int, count: Int, into out: UnsafeMutablePointer<Float>) {
        packed.withUnsafeBufferPointer { buffer in
            guard let base = buffer.baseAddress else { return }
            for r in 0..<count {
                let source = base + (row + r) * cols, target = out + r * cols
                var i = 0
                while i + 16 <= cols {
                    let (first, second) = loadBF16x16(source + i)
                    store8(first, target + i)
                    store8(second, target + i + 8)
                    i += 16
                }
                while i < cols { target[i] = BF16Matrix.widen(source[i]); i += 1 }
            }
        }
    }

    /// The matrix widened to Float32 in plain row-major order (a copy, for tests and tools).
    public func widened() throws -> Tensor {
        var t = try Tensor(zeros: [rows, cols])
        t.withUnsafeMutableBufferPointer { out in
            if let base = out.baseAddress { widenRows(0, count: rows, into: base) }
        }
        return t
    }

    public var byteCount: Int { rows * cols * 2 }
}
