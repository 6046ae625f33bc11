/// A matrix of bfloat16 weights, stored as their 16 raw bits, rows × cols, row-major.
///
/// bf16 is the upper half of an IEEE Float32 (same exponent range, 8-bit mantissa), so widening is
/// exact and cheap; the GEMV and GEMM paths widen by blocks inside the kernel and never hold a
/// Float32 copy of the whole matrix. Storing weights in bf16 halves the bytes a decode step reads.
public struct BF16Matrix: Sendable {
    public let rows: Int
    public let cols: Int
    public let bits: [UInt16]

    public init(rows: Int, cols: Int, bits: [UInt16]) throws {
        guard rows >= 0, cols >= 0, rows * cols == bits.count else {
            throw TensorError.elementCountMismatch(shape: [rows, cols], elementCount: bits.count)
        }
        self.rows = rows
        self.cols = cols
        self.bits = bits
    }

    /// Rounds a rank-2 Float32 tensor to bf16 (round to nearest, ties to even; NaN stays NaN).
    public init(_ tensor: Tensor) throws {
        guard tensor.rank == 2 else {
            throw TensorError.invalidShape(shape: tensor.shape, reason: "a bf16 matrix needs rank 2")
        }
        let bits = tensor.withUnsafeBufferPointer { $0.map(BF16Matrix.round) }
        try self.init(rows: tensor.shape[0], cols: tensor.shape[1], bits: bits)
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

    /// The matrix widened to Float32 (a copy, for tests and tools).
    public func widened() throws -> Tensor {
        try Tensor(shape: [rows, cols], elements: bits.map(BF16Matrix.widen))
    }
}
