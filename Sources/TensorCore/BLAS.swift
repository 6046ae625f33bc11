import COpenBLAS

/// Thin, typed access to OpenBLAS. Row-major throughout.
public enum BLAS {
    /// C = alpha · op(A) · op(B) + beta · C with op(A) m × k, op(B) k × n, C m × n.
    ///
    /// OpenBLAS runs single-threaded (see `Threading`); above `parallelWork` multiply-adds the
    /// product is split into slices of C's columns (rows when C is narrow), one sgemm per
    /// TensorCore thread. Inside another parallel region it runs whole on the calling thread.
    public static func gemm(m: Int, n: Int, k: Int,
                            a: UnsafePointer<Float>, lda: Int, transposeA: Bool,
                            b: UnsafePointer<Float>, ldb: Int, transposeB: Bool,
                            c: UnsafeMutablePointer<Float>, ldc: Int,
                            alpha: Float = 1, beta: Float = 0) {
        guard m > 0, n > 0 else { return }
        let slices = GEMMSlices(m: m, n: n, k: k, a: a, lda: lda, transposeA: transposeA, b: b, ldb: ldb,
                                transposeB: transposeB, c: c, ldc: ldc, alpha: alpha, beta: beta,
                                chunks: m * n * k >= parallelWork ? Threading.count : 1)
        parallelFor(chunks: slices.chunks, slices)
    }

    /// Below this many multiply-adds (~10 µs of one core) a GEMM stays on one thread.
    static let parallelWork = 1 << 21

    /// One thread's slice of a GEMM: columns of C in multiples of 16 (OpenBLAS's SkylakeX kernel
    /// width), or rows when C has fewer than 32 columns per thread.
    struct GEMMSlices: ChunkedWork {
        let m: Int, n: Int, k: Int
        let a: UnsafePointer<Float>, lda: Int, transposeA: Bool
        let b: UnsafePointer<Float>, ldb: Int, transposeB: Bool
        let c: UnsafeMutablePointer<Float>, ldc: Int, alpha: Float, beta: Float, chunks: Int

        func run(chunk: Int) {
            if n >= 32 * chunks || m < 16 * chunks {
                let j0 = bound(n, chunk), j1 = bound(n, chunk + 1)
                call(m: m, n: j1 - j0, a: a, b: b + (transposeB ? j0 * ldb : j0), c: c + j0)
            } else {
                let i0 = bound(m, chunk), i1 = bound(m, chunk + 1)
                call(m: i1 - i0, n: n, a: a + (transposeA ? i0 : i0 * lda), b: b, c: c + i0 * ldc)
            }
        }

        /// Start of slice `chunk` of `size`, rounded to 16 (the last slice ends at `size`).
        func bound(_ size: Int, _ chunk: Int) -> Int {
            chunk >= chunks ? size : min(size, (size * chunk / chunks + 8) / 16 * 16)
        }

        func call(m: Int, n: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>) {
            guard m > 0, n > 0 else { return }
            cblas_sgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                        Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
        }
    }

    /// Runs `body` with OpenBLAS on `Threading.count` threads of its own, then back to one: only
    /// for measuring the raw library as a baseline (calibrate, benchmarks).
    public static func withOpenBLASThreads<R>(_ body: () throws -> R) rethrows -> R {
        openblas_set_num_threads(Int32(Threading.count))
        defer { openblas_set_num_threads(1) }
        return try body()
    }

    /// Rows of bf16 weights widened per block before sgemm. The block (256 rows) keeps the scratch
    /// within L2 for hidden sizes up to 2048 and makes widening a negligible share of the work
    /// once the batch exceeds `SmallBatch.limit` rows.
    public static func gemmWideningBF16(_ x: UnsafePointer<Float>, batch: Int, weights: BF16Matrix,
                                        into y: UnsafeMutablePointer<Float>) {
        let rows = weights.rows, cols = weights.cols
        let block = min(256, rows)
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: block * cols)
        defer { scratch.deallocate() }
        var start = 0
        while start < rows {
            let count = min(block, rows - start)
            weights.widenRows(start, count: count, into: scratch)
            gemm(m: batch, n: count, k: cols, a: x, lda: cols, transposeA: false,
                 b: scratch, ldb: cols, transposeB: true, c: y + start, ldc: rows)
            start += count
        }
    }
}

/// Matrix products on whole tensors, with shape checks. C = op(A) · op(B).
public func matmul(_ a: Tensor, _ b: Tensor, transposeA: Bool = false, transposeB: Bool = false) throws -> Tensor {
    let (m, n, _) = try matmulShape(a, b, transposeA: transposeA, transposeB: transposeB)
    var c = try Tensor(zeros: [m, n])
    try matmul(a, b, transposeA: transposeA, transposeB: transposeB, into: &c)
    return c
}

/// C = op(A) · op(B) written into an existing tensor of the right shape (no allocation: the form
/// hot loops and benchmarks use).
public func matmul(_ a: Tensor, _ b: Tensor, transposeA: Bool = false, transposeB: Bool = false,
                   into c: inout Tensor) throws {
    let (m, n, k) = try matmulShape(a, b, transposeA: transposeA, transposeB: transposeB)
    guard c.shape == [m, n] else {
        throw TensorError.shapeMismatch(operation: "matmul output", shapes: [a.shape, b.shape, c.shape])
    }
    a.withUnsafeBufferPointer { ab in
        b.withUnsafeBufferPointer { bb in
            c.withUnsafeMutableBufferPointer { cb in
                guard let ap = ab.baseAddress, let bp = bb.baseAddress, let cp = cb.baseAddress else { return }
                if k == 0 {
                    cp.update(repeating: 0, count: m * n)
                    return
                }
                BLAS.gemm(m: m, n: n, k: k, a: ap, lda: a.shape[1], transposeA: transposeA,
                          b: bp, ldb: b.shape[1], transposeB: transposeB, c: cp, ldc: n)
            }
        }
    }
}

func matmulShape(_ a: Tensor, _ b: Tensor, transposeA: Bool, transposeB: Bool) throws -> (Int, Int, Int) {
    guard a.rank == 2, b.rank == 2 else {
        throw TensorError.shapeMismatch(operation: "matmul (rank 2 needed)", shapes: [a.shape, b.shape])
    }
    let m = transposeA ? a.shape[1] : a.shape[0]
    let k = transposeA ? a.shape[0] : a.shape[1]
    let kb = transposeB ? b.shape[1] : b.shape[0]
    let n = transposeB ? b.shape[0] : b.shape[1]
    guard k == kb else {
        throw TensorError.shapeMismatch(operation: "matmul", shapes: [a.shape, b.shape])
    }
    return (m, n, k)
}

/// y = A · x for a matrix A (rows × cols) and a vector x (cols), through TensorCore's GEMV.
public func gemv(_ a: Tensor, _ x: Tensor) throws -> Tensor {
    guard a.rank == 2, x.rank == 1, a.shape[1] == x.shape[0] else {
        throw TensorError.shapeMismatch(operation: "gemv", shapes: [a.shape, x.shape])
    }
    let y = try WeightMatrix(f32: a).apply(x.reshaped([1, x.count]))
    return try y.reshaped([a.shape[0]])
}
