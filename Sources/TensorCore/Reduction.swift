// Reductions along one row: dot product, RMSNorm and softmax.

public enum Reduction {
    /// Σ a[i]·b[i] with four eight-lane accumulators: the summation order differs from a
    /// sequential loop (relaxed order), the error bound is the usual O(n·ε·Σ|a·b|).
    @inlinable
    public static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int) -> Float {
        var s0 = Vector8(), s1 = Vector8(), s2 = Vector8(), s3 = Vector8()
        var i = 0
        while i + 32 <= count {
            s0 = s0.addingProduct(load8(a + i), load8(b + i))
            s1 = s1.addingProduct(load8(a + i + 8), load8(b + i + 8))
            s2 = s2.addingProduct(load8(a + i + 16), load8(b + i + 16))
            s3 = s3.addingProduct(load8(a + i + 24), load8(b + i + 24))
            i += 32
        }
        while i + 8 <= count {
            s0 = s0.addingProduct(load8(a + i), load8(b + i))
            i += 8
        }
        var total = ((s0 + s1) + (s2 + s3)).sum()
        while i < count { total += a[i] * b[i]; i += 1 }
        return total
    }

    /// 1 / sqrt(mean(x²) + eps): the factor every RMS normalisation multiplies by.
    @inlinable
    public static func inverseRMS(_ x: UnsafePointer<Float>, count: Int, epsilon: Float) -> Float {
        1 / (dot(x, x, count: count) / Float(count) + epsilon).squareRoot()
    }

    /// RMSNorm as in Llama, Mixtral, Qwen3 and DeepSeek-V3:
    /// out = x / sqrt(mean(x²) + eps) · weight, accumulated in Float32. `out` may alias `x`.
    @inlinable
    public static func rmsNorm(_ x: UnsafePointer<Float>, weight: UnsafePointer<Float>, epsilon: Float,
                               into out: UnsafeMutablePointer<Float>, count: Int) {
        guard count > 0 else { return }
        let inverse = inverseRMS(x, count: count, epsilon: epsilon)
        let factor = Vector8(repeating: inverse)
        var i = 0
        while i + 8 <= count {
            store8(load8(x + i) * factor * load8(weight + i), out + i)
            i += 8
        }
        while i < count { out[i] = x[i] * inverse * weight[i]; i += 1 }
    }

    /// RMSNorm without a learned weight: out = x / sqrt(mean(x²) + eps) (Llama 4's q/k norm,
    /// DeepSeek-V4's query heads and hyper-connection input). `out` may alias `x`.
    @inlinable
    public static func rmsNorm(_ x: UnsafePointer<Float>, epsilon: Float, into out: UnsafeMutablePointer<Float>, count: Int) {
        guard count > 0 else { return }
        Elementwise.scale(x, by: inverseRMS(x, count: count, epsilon: epsilon), into: out, count: count)
    }

    /// In-place softmax of one row, numerically stable: the row maximum is subtracted before
    /// exponentiation, so logits of ±1e4 give exact 0/1 rather than inf/NaN. Entries of -inf
    /// (masked positions) become 0. A row that is entirely -inf has no distribution and is
    /// written as zeros. With a `sink` (gpt-oss's attention sinks) one more logit joins the
    /// denominator and its probability is dropped, so the row sums to less than one.
    @inlinable
    public static func softmax(_ x: UnsafeMutablePointer<Float>, count: Int, sink: Float? = nil) {
        guard count > 0 else { return }
        let maximum = Swift.max(max(x, count: count), sink ?? -.infinity)
        guard maximum > -.infinity else {
            x.update(repeating: 0, count: count)
            return
        }
        let m = Vector8(repeating: maximum)
        var sums = Vector8()
        var i = 0
        while i + 8 <= count {
            let e = exp8(load8(x + i) - m)
            store8(e, x + i)
            sums += e
            i += 8
        }
        var total = sums.sum() + (sink.map { Elementwise.scalarExp($0 - maximum) } ?? 0)
        while i < count {
            let e = Elementwise.scalarExp(x[i] - maximum)
            x[i] = e
            total += e
            i += 1
        }
        Elementwise.scale(x, by: 1 / total, into: x, count: count)
    }

    /// The largest element (NaN is ignored unless every element is NaN).
    @inlinable
    public static func max(_ x: UnsafePointer<Float>, count: Int) -> Float {
        var m = Vector8(repeating: -.infinity)
        var i = 0
        while i + 8 <= count {
            let v = load8(x + i)
            m.replace(with: v, where: v .> m)
            i += 8
        }
        var result = -Float.infinity
        for lane in 0..<8 { result = Swift.max(result, m[lane]) }
        while i < count { result = Swift.max(result, x[i]); i += 1 }
        return result
    }
}
