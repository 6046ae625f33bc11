/// The weight of a linear layer, out × in as transformers stores it (`nn.Linear.weight`), in one of
/// the CPU formats. `apply` computes y = x · Wᵀ for a batch of rows of x.
public enum WeightMatrix: Sendable {
    case f32(Tensor)
    case bf16(BF16Matrix)
    /// Repacked for the panel kernels (AVX-512 or AVX2), in Float32 or bf16 (what the runtime loads
    /// on x86-64).
    case panels(PanelMatrix)

    /// Wraps a rank-2 tensor. Throws for any other rank.
    public init(f32 tensor: Tensor) throws {
        guard tensor.rank == 2 else {
            throw TensorError.invalidShape(shape: tensor.shape, reason: "a weight matrix needs rank 2")
        }
        self = .f32(tensor)
    }

    /// Output features (rows of W).
    public var rows: Int {
        switch self {
        case let .f32(t): t.shape[0]
        case let .bf16(m): m.rows
        case let .panels(m): m.rows
        }
    }

    /// Input features (columns of W).
    public var cols: Int {
        switch self {
        case let .f32(t): t.shape[1]
        case let .bf16(m): m.cols
        case let .panels(m): m.cols
        }
    }

    /// Bytes the weights occupy, i.e. what one full read of them costs.
    public var byteCount: Int {
        switch self {
        case .f32: rows * cols * 4
        case let .bf16(m): m.byteCount
        case let .panels(m): m.byteCount
        }
    }

    public var formatName: String {
        switch self {
        case .f32: "f32"
        case .bf16: "bf16"
        case let .panels(m): m.element.rawValue
        }
    }

    /// y[m, n] = Σₖ x[m, k] · W[n, k] for m < `batch`. `x` holds batch × cols, `y` batch × rows.
    ///
    /// Up to `SmallBatch.limit` rows stream the weights once through TensorCore's own SIMD kernel
    /// (decode is bandwidth-bound and every row of W is reused from cache for the whole batch);
    /// larger batches go to OpenBLAS sgemm, with bf16 weights widened block by block.
    ///
    /// `parallel: false` keeps a small batch on the calling thread, for callers that already split
    /// work (many experts at once) over the threads.
    @inlinable
    public func apply(_ x: UnsafePointer<Float>, batch: Int, into y: UnsafeMutablePointer<Float>, parallel: Bool = true) {
        guard batch > 0, rows > 0 else { return }
        switch self {
        case let .f32(w):
            w.withUnsafeBufferPointer { wb in
                guard let wp = wb.baseAddress else { return }
                if batch <= SmallBatch.limit {
                    SmallBatch.multiplyF32(x, batch: batch, weights: wp, rows: rows, cols: cols, into: y, parallel: parallel)
                } else {
                    BLAS.gemm(m: batch, n: rows, k: cols, a: x, lda: cols, transposeA: false,
                              b: wp, ldb: cols, transposeB: true, c: y, ldc: rows)
                }
            }
        case let .bf16(m):
            if batch <= SmallBatch.limit {
                m.packed.withUnsafeBufferPointer { wb in
                    guard let wp = wb.baseAddress else { return }
                    SmallBatch.multiplyBF16(x, batch: batch, weights: wp, rows: rows, cols: cols, into: y, parallel: parallel)
                }
            } else {
                BLAS.gemmWideningBF16(x, batch: batch, weights: m, into: y)
            }
        case let .panels(m):
            m.apply(x, batch: batch, into: y, parallel: parallel)
        }
    }

    /// x (batch × cols) · Wᵀ as a new tensor; shape errors name both shapes.
    public func apply(_ x: Tensor) throws -> Tensor {
        guard x.rank == 2, x.shape[1] == cols else {
            throw TensorError.shapeMismatch(operation: "linear x·Wᵀ", shapes: [x.shape, [rows, cols]])
        }
        var y = try Tensor(zeros: [x.shape[0], rows])
        x.withUnsafeBufferPointer { xb in
            y.withUnsafeMutableBufferPointer { yb in
                guard let xp = xb.baseAddress, let yp = yb.baseAddress else { return }
                apply(xp, batch: x.shape[0], into: yp)
            }
        }
        return y
    }
}
