/// y = x · Wᵀ for a handful of rows of x: GEMV and its small-batch extension.
///
/// Decode multiplies one or a few token vectors by every weight matrix, so the time is the time to
/// stream W from memory once. These kernels read each weight row once, reuse it from L1 for every
/// vector of the batch, and split the rows of W over `Threading.count` threads.
public enum SmallBatch {
    /// Batches up to this many rows use these kernels; larger ones go to sgemm. At 8 rows sgemm's
    /// packing overhead still outweighs its register blocking on the shapes we run.
    public static let limit = 8

    /// Work below this many weight elements stays on the calling thread: a parallel region costs
    /// a few microseconds, as long as streaming ~256 KB.
    @usableFromInline static let parallelThreshold = 65_536

    @inlinable
    static func chunkCount(rows: Int, cols: Int) -> Int {
        min(Threading.count, max(1, rows * cols / parallelThreshold), max(rows, 1))
    }

    @inlinable
    public static func multiplyF32(_ x: UnsafePointer<Float>, batch: Int,
                                   weights: UnsafePointer<Float>, rows: Int, cols: Int,
                                   into y: UnsafeMutablePointer<Float>) {
        let chunks = chunkCount(rows: rows, cols: cols)
        parallelFor(chunks: chunks) { chunk in
            let start = rows * chunk / chunks, end = rows * (chunk + 1) / chunks
            var n = start
            if batch == 1 {
                while n + 4 <= end {
                    let d = dot4(weights + n * cols, cols, x, count: cols)
                    y[n] = d.0; y[n + 1] = d.1; y[n + 2] = d.2; y[n + 3] = d.3
                    n += 4
                }
            }
            while n < end {
                let w = weights + n * cols
                for m in 0..<batch { y[m * rows + n] = Reduction.dot(w, x + m * cols, count: cols) }
                n += 1
            }
        }
    }

    @inlinable
    public static func multiplyBF16(_ x: UnsafePointer<Float>, batch: Int,
                                    weights: UnsafePointer<UInt16>, rows: Int, cols: Int,
                                    into y: UnsafeMutablePointer<Float>) {
        let chunks = chunkCount(rows: rows, cols: cols)
        parallelFor(chunks: chunks) { chunk in
            let start = rows * chunk / chunks, end = rows * (chunk + 1) / chunks
            for n in start..<end {
                let w = weights + n * cols
                for m in 0..<batch { y[m * rows + n] = dotBF16(w, x + m * cols, count: cols) }
            }
        }
    }

    /// Four rows of W against one vector: four independent FMA chains over two registers each.
    @inlinable @inline(__always)
    static func dot4(_ w: UnsafePointer<Float>, _ stride: Int, _ x: UnsafePointer<Float>,
                     count: Int) -> (Float, Float, Float, Float) {
        let w0 = w, w1 = w + stride, w2 = w + 2 * stride, w3 = w + 3 * stride
        var a0 = Vector8(), a1 = Vector8(), a2 = Vector8(), a3 = Vector8()
        var i = 0
        while i + 8 <= count {
            let v = load8(x + i)
            a0 = a0.addingProduct(load8(w0 + i), v)
            a1 = a1.addingProduct(load8(w1 + i), v)
            a2 = a2.addingProduct(load8(w2 + i), v)
            a3 = a3.addingProduct(load8(w3 + i), v)
            i += 8
        }
        var r = (a0.sum(), a1.sum(), a2.sum(), a3.sum())
        while i < count {
            r.0 += w0[i] * x[i]; r.1 += w1[i] * x[i]; r.2 += w2[i] * x[i]; r.3 += w3[i] * x[i]
            i += 1
        }
        return r
    }

    /// Σ widen(w[i]) · x[i] with bf16 weights widened in registers.
    @inlinable @inline(__always)
    public static func dotBF16(_ w: UnsafePointer<UInt16>, _ x: UnsafePointer<Float>, count: Int) -> Float {
        var s0 = Vector8(), s1 = Vector8(), s2 = Vector8(), s3 = Vector8()
        var i = 0
        while i + 32 <= count {
            s0 = s0.addingProduct(loadBF16x8(w + i), load8(x + i))
            s1 = s1.addingProduct(loadBF16x8(w + i + 8), load8(x + i + 8))
            s2 = s2.addingProduct(loadBF16x8(w + i + 16), load8(x + i + 16))
            s3 = s3.addingProduct(loadBF16x8(w + i + 24), load8(x + i + 24))
            i += 32
        }
        while i + 8 <= count {
            s0 = s0.addingProduct(loadBF16x8(w + i), load8(x + i))
            i += 8
        }
        var total = ((s0 + s1) + (s2 + s3)).sum()
        while i < count { total += BF16Matrix.widen(w[i]) * x[i]; i += 1 }
        return total
    }
}
