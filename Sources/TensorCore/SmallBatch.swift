import CPUHints

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
                                   into y: UnsafeMutablePointer<Float>, parallel: Bool = true) {
        let chunks = parallel ? chunkCount(rows: rows, cols: cols) : 1
        parallelFor(chunks: chunks, Rows<F32Rows>(x: x, batch: batch, weights: weights, rows: rows, cols: cols, y: y, chunks: chunks))
    }

    /// Rows `chunk` of `chunks` of a small-batch product with weights in `Format`: one batch row
    /// against four weight rows at a time (GEMV), or one weight row against four batch rows.
    @usableFromInline
    struct Rows<Format: RowFormat>: ChunkedWork {
        @usableFromInline let x: UnsafePointer<Float>, batch: Int, weights: UnsafePointer<Format.Element>, rows: Int, cols: Int
        @usableFromInline let y: UnsafeMutablePointer<Float>, chunks: Int

        @inlinable
        init(x: UnsafePointer<Float>, batch: Int, weights: UnsafePointer<Format.Element>, rows: Int, cols: Int,
             y: UnsafeMutablePointer<Float>, chunks: Int) {
            self.x = x; self.batch = batch; self.weights = weights; self.rows = rows; self.cols = cols
            self.y = y; self.chunks = chunks
        }

        @inlinable
        func run(chunk: Int) {
            let start = rows * chunk / chunks, end = rows * (chunk + 1) / chunks
            var n = start
            if batch == 1 {
                while n + 4 <= end {
                    let d = Format.dot4(weights + n * cols, cols, x, count: cols)
                    y[n] = d.0; y[n + 1] = d.1; y[n + 2] = d.2; y[n + 3] = d.3
                    n += 4
                }
            }
            while n < end {
                let w = weights + n * cols
                var m = 0
                while m + 4 <= batch {
                    let d = Format.rowAgainst4(w, x + m * cols, cols, count: cols)
                    y[m * rows + n] = d.0; y[(m + 1) * rows + n] = d.1; y[(m + 2) * rows + n] = d.2; y[(m + 3) * rows + n] = d.3
                    m += 4
                }
                while m < batch { y[m * rows + n] = Format.dot(w, x + m * cols, count: cols); m += 1 }
                n += 1
            }
        }
    }

    /// One weight row against four vectors: each weight load feeds four FMAs, so a batch of four
    /// costs one pass over the row rather than four.
    @inlinable @inline(__always)
    static func rowAgainst4(_ w: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ stride: Int,
                            count: Int) -> (Float, Float, Float, Float) {
        let x0 = x, x1 = x + stride, x2 = x + 2 * stride, x3 = x + 3 * stride
        var a0 = Vector8(), a1 = Vector8(), a2 = Vector8(), a3 = Vector8()
        var i = 0
        while i + 8 <= count {
            let v = load8(w + i)
            a0 = a0.addingProduct(v, load8(x0 + i))
            a1 = a1.addingProduct(v, load8(x1 + i))
            a2 = a2.addingProduct(v, load8(x2 + i))
            a3 = a3.addingProduct(v, load8(x3 + i))
            i += 8
        }
        var r = (a0.sum(), a1.sum(), a2.sum(), a3.sum())
        while i < count {
            r.0 += w[i] * x0[i]; r.1 += w[i] * x1[i]; r.2 += w[i] * x2[i]; r.3 += w[i] * x3[i]
            i += 1
        }
        return r
    }

    /// One pair-interleaved bf16 row against four vectors (widened once, four FMAs per load).
    @inlinable @inline(__always)
    static func rowAgainst4BF16(_ w: UnsafePointer<UInt16>, _ x: UnsafePointer<Float>, _ stride: Int,
                                count: Int) -> (Float, Float, Float, Float) {
        let x0 = x, x1 = x + stride, x2 = x + 2 * stride, x3 = x + 3 * stride
        var a0 = Vector8(), a1 = Vector8(), a2 = Vector8(), a3 = Vector8()
        var i = 0
        while i + 16 <= count {
            let (p, q) = loadBF16x16(w + i)
            a0 = a0.addingProduct(p, load8(x0 + i)).addingProduct(q, load8(x0 + i + 8))
            a1 = a1.addingProduct(p, load8(x1 + i)).addingProduct(q, load8(x1 + i + 8))
            a2 = a2.addingProduct(p, load8(x2 + i)).addingProduct(q, load8(x2 + i + 8))
            a3 = a3.addingProduct(p, load8(x3 + i)).addingProduct(q, load8(x3 + i + 8))
            i += 16
        }
        var r = (a0.sum(), a1.sum(), a2.sum(), a3.sum())
        while i < count {
            let v = BF16Matrix.widen(w[i])
            r.0 += v * x0[i]; r.1 += v * x1[i]; r.2 += v * x2[i]; r.3 += v * x3[i]
            i += 1
        }
        return r
    }

    @inlinable
    public static func multiplyBF16(_ x: UnsafePointer<Float>, batch: Int,
                                    weights: UnsafePointer<UInt16>, rows: Int, cols: Int,
                                    into y: UnsafeMutablePointer<Float>, parallel: Bool = true) {
        let chunks = parallel ? chunkCount(rows: rows, cols: cols) : 1
        parallelFor(chunks: chunks, Rows<BF16Rows>(x: x, batch: batch, weights: weights, rows: rows, cols: cols, y: y, chunks: chunks))
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

    /// Four pair-interleaved bf16 rows against one vector: four weight streams in flight, as in
    /// `dot4`, so each core keeps enough loads outstanding to draw its share of DRAM bandwidth.
    @inlinable @inline(__always)
    static func dot4BF16(_ w: UnsafePointer<UInt16>, _ stride: Int, _ x: UnsafePointer<Float>,
                         count: Int) -> (Float, Float, Float, Float) {
        let w0 = w, w1 = w + stride, w2 = w + 2 * stride, w3 = w + 3 * stride
        var a0 = Vector8(), a1 = Vector8(), a2 = Vector8(), a3 = Vector8()
        var i = 0
        while i + 16 <= count {
            // Each row is its own stream; prefetching 2 KB ahead keeps more lines in flight than
            // the hardware prefetcher does for four interleaved streams.
            if i & 31 == 0 {
                moesim_prefetch(w0 + i + 1024); moesim_prefetch(w1 + i + 1024)
                moesim_prefetch(w2 + i + 1024); moesim_prefetch(w3 + i + 1024)
            }
            let xa = load8(x + i), xb = load8(x + i + 8)
            let (p0, q0) = loadBF16x16(w0 + i)
            let (p1, q1) = loadBF16x16(w1 + i)
            let (p2, q2) = loadBF16x16(w2 + i)
            let (p3, q3) = loadBF16x16(w3 + i)
            a0 = a0.addingProduct(p0, xa).addingProduct(q0, xb)
            a1 = a1.addingProduct(p1, xa).addingProduct(q1, xb)
            a2 = a2.addingProduct(p2, xa).addingProduct(q2, xb)
            a3 = a3.addingProduct(p3, xa).addingProduct(q3, xb)
            i += 16
        }
        var r = (a0.sum(), a1.sum(), a2.sum(), a3.sum())
        while i < count {
            r.0 += BF16Matrix.widen(w0[i]) * x[i]; r.1 += BF16Matrix.widen(w1[i]) * x[i]
            r.2 += BF16Matrix.widen(w2[i]) * x[i]; r.3 += BF16Matrix.widen(w3[i]) * x[i]
            i += 1
        }
        return r
    }

    /// Σ widen(w[i]) · x[i] over one pair-interleaved bf16 row (see `BF16Matrix`).
    @inlinable @inline(__always)
    public static func dotBF16(_ w: UnsafePointer<UInt16>, _ x: UnsafePointer<Float>, count: Int) -> Float {
        var s0 = Vector8(), s1 = Vector8(), s2 = Vector8(), s3 = Vector8()
        var i = 0
        while i + 32 <= count {
            let (a, b) = loadBF16x16(w + i)
            let (c, d) = loadBF16x16(w + i + 16)
            s0 = s0.addingProduct(a, load8(x + i))
            s1 = s1.addingProduct(b, load8(x + i + 8))
            s2 = s2.addingProduct(c, load8(x + i + 16))
            s3 = s3.addingProduct(d, load8(x + i + 24))
            i += 32
        }
        while i + 16 <= count {
            let (a, b) = loadBF16x16(w + i)
            s0 = s0.addingProduct(a, load8(x + i))
            s1 = s1.addingProduct(b, load8(x + i + 8))
            i += 16
        }
        var total = ((s0 + s1) + (s2 + s3)).sum()
        while i < count { total += BF16Matrix.widen(w[i]) * x[i]; i += 1 }
        return total
    }
}

/// The three kernels of `SmallBatch.Rows` for one weight format.
@usableFromInline
protocol RowFormat {
    associatedtype Element
    static func dot4(_ w: UnsafePointer<Element>, _ stride: Int, _ x: UnsafePointer<Float>, count: Int) -> (Float, Float, Float, Float)
    static func rowAgainst4(_ w: UnsafePointer<Element>, _ x: UnsafePointer<Float>, _ stride: Int, count: Int) -> (Float, Float, Float, Float)
    static func dot(_ w: UnsafePointer<Element>, _ x: UnsafePointer<Float>, count: Int) -> Float
}

/// Float32 rows.
@usableFromInline
enum F32Rows: RowFormat {
    @inlinable @inline(__always)
    static func dot4(_ w: UnsafePointer<Float>, _ stride: Int, _ x: UnsafePointer<Float>, count: Int) -> (Float, Float, Float, Float) {
        SmallBatch.dot4(w, stride, x, count: count)
    }

    @inlinable @inline(__always)
    static func rowAgainst4(_ w: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ stride: Int, count: Int) -> (Float, Float, Float, Float) {
        SmallBatch.rowAgainst4(w, x, stride, count: count)
    }

    @inlinable @inline(__always)
    static func dot(_ w: UnsafePointer<Float>, _ x: UnsafePointer<Float>, count: Int) -> Float {
        Reduction.dot(w, x, count: count)
    }
}

/// Pair-interleaved bf16 rows (`BF16Matrix`).
@usableFromInline
enum BF16Rows: RowFormat {
    @inlinable @inline(__always)
    static func dot4(_ w: UnsafePointer<UInt16>, _ stride: Int, _ x: UnsafePointer<Float>, count: Int) -> (Float, Float, Float, Float) {
        SmallBatch.dot4BF16(w, stride, x, count: count)
    }

    @inlinable @inline(__always)
    static func rowAgainst4(_ w: UnsafePointer<UInt16>, _ x: UnsafePointer<Float>, _ stride: Int, count: Int) -> (Float, Float, Float, Float) {
        SmallBatch.rowAgainst4BF16(w, x, stride, count: count)
    }

    @inlinable @inline(__always)
    static func dot(_ w: UnsafePointer<UInt16>, _ x: UnsafePointer<Float>, count: Int) -> Float {
        SmallBatch.dotBF16(w, x, count: count)
    }
}
