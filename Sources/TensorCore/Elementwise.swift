// Elementwise kernels on raw buffers. Each is one streaming pass with eight-lane FMA arithmetic
// and a scalar tail for lengths not a multiple of eight. Vectors past `parallelThreshold` are split
// over `Threading.count` threads: one core alone draws about half of this machine's DRAM bandwidth.

public enum Elementwise {
    /// 256 Ki elements (1 MiB per operand): below it a parallel region costs more than it saves.
    public static let parallelThreshold = 1 << 18

    /// Calls `body(start, end)` on contiguous pieces of 0..<count, in parallel for long vectors.
    /// Pieces are multiples of 8 long, so the vector body covers the same elements either way.
    @inlinable
    static func chunked(_ count: Int, _ body: (Int, Int) -> Void) {
        guard count >= parallelThreshold, Threading.count > 1 else {
            body(0, count)
            return
        }
        let chunks = Threading.count
        let piece = (count / chunks + 7) & ~7
        parallelFor(chunks: chunks) { chunk in
            let start = min(count, chunk * piece)
            let end = chunk == chunks - 1 ? count : min(count, start + piece)
            if start < end { body(start, end) }
        }
    }

    /// out[i] = a[i] + b[i]. `out` may alias `a` or `b`.
    @inlinable
    public static func add(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
                           into out: UnsafeMutablePointer<Float>, count: Int) {
        chunked(count) { start, end in
            var i = start
            while i + 8 <= end {
                store8(load8(a + i) + load8(b + i), out + i)
                i += 8
            }
            while i < end { out[i] = a[i] + b[i]; i += 1 }
        }
    }

    /// out[i] = a[i] · factor. `out` may alias `a`.
    @inlinable
    public static func scale(_ a: UnsafePointer<Float>, by factor: Float,
                             into out: UnsafeMutablePointer<Float>, count: Int) {
        let f = Vector8(repeating: factor)
        chunked(count) { start, end in
            var i = start
            while i + 8 <= end {
                store8(load8(a + i) * f, out + i)
                i += 8
            }
            while i < end { out[i] = a[i] * factor; i += 1 }
        }
    }

    /// out[i] += a[i] · factor (axpy). Used to accumulate weighted expert outputs.
    @inlinable
    public static func addScaled(_ a: UnsafePointer<Float>, by factor: Float,
                                 into out: UnsafeMutablePointer<Float>, count: Int) {
        let f = Vector8(repeating: factor)
        chunked(count) { start, end in
            var i = start
            while i + 8 <= end {
                store8(load8(out + i).addingProduct(load8(a + i), f), out + i)
                i += 8
            }
            while i < end { out[i] += a[i] * factor; i += 1 }
        }
    }

    /// SwiGLU's gate: out[i] = silu(gate[i]) · up[i], silu(x) = x / (1 + e^-x). `out` may alias.
    @inlinable
    public static func siluMul(gate: UnsafePointer<Float>, up: UnsafePointer<Float>,
                               into out: UnsafeMutablePointer<Float>, count: Int) {
        chunked(count) { start, end in
            var i = start
            while i + 8 <= end {
                let g = load8(gate + i)
                store8(g / (1 + exp8(-g)) * load8(up + i), out + i)
                i += 8
            }
            while i < end {
                let g = gate[i]
                out[i] = g / (1 + scalarExp(-g)) * up[i]
                i += 1
            }
        }
    }

    /// Kimi K3's SiTU: out[i] = β·tanh(gate[i]/β)·σ(gate[i]) · βₗ·tanh(up[i]/βₗ) (`linearBeta`
    /// nil: up[i] as it is), on `tanh8`. `out` may alias.
    @inlinable
    public static func situMul(gate: UnsafePointer<Float>, up: UnsafePointer<Float>, beta: Float, linearBeta: Float?,
                               into out: UnsafeMutablePointer<Float>, count: Int) {
        let b = Vector8(repeating: beta), lb = Vector8(repeating: linearBeta ?? 1)
        chunked(count) { start, end in
            var i = start
            while i + 8 <= end {
                let g = load8(gate + i), u = load8(up + i)
                let clipped = linearBeta == nil ? u : lb * tanh8(u / lb)
                store8(b * tanh8(g / b) / (1 + exp8(-g)) * clipped, out + i)
                i += 8
            }
            while i < end {
                let g = Vector8(repeating: gate[i]), u = Vector8(repeating: up[i])
                let clipped = linearBeta == nil ? u : lb * tanh8(u / lb)
                out[i] = (b * tanh8(g / b) / (1 + exp8(-g)) * clipped)[0]
                i += 1
            }
        }
    }

    /// out[i] = e^x[i] (relative error below 2e-7; 0 below −87.3). `out` may alias `x`.
    @inlinable
    public static func exp(_ x: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, count: Int) {
        chunked(count) { start, end in
            var i = start
            while i + 8 <= end {
                store8(exp8(load8(x + i)), out + i)
                i += 8
            }
            while i < end { out[i] = scalarExp(x[i]); i += 1 }
        }
    }

    /// SiLU: out[i] = x[i] / (1 + e^-x[i]). `out` may alias `x`.
    @inlinable
    public static func silu(_ x: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, count: Int) {
        chunked(count) { start, end in
            var i = start
            while i + 8 <= end {
                let v = load8(x + i)
                store8(v / (1 + exp8(-v)), out + i)
                i += 8
            }
            while i < end { out[i] = x[i] / (1 + scalarExp(-x[i])); i += 1 }
        }
    }

    /// out[i] = 1 / (1 + e^-x[i]). `out` may alias `x`.
    @inlinable
    public static func sigmoid(_ x: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, count: Int) {
        chunked(count) { start, end in
            var i = start
            while i + 8 <= end {
                store8(1 / (1 + exp8(-load8(x + i))), out + i)
                i += 8
            }
            while i < end { out[i] = 1 / (1 + scalarExp(-x[i])); i += 1 }
        }
    }

    /// The scalar tail uses the same approximation as the vector body, so a result never depends
    /// on where an element falls relative to a multiple of eight.
    @inlinable @inline(__always)
    static func scalarExp(_ x: Float) -> Float {
        exp8(Vector8(repeating: x))[0]
    }
}
