import TensorCore

// Row loops of a forward pass split over TensorCore's threads for long prompts (each thread takes
// a contiguous range of rows; rows are independent). Decode-sized batches stay on one thread.

/// RMSNorm of `rows` rows.
struct RMSNormRows: ChunkedWork {
    let x: UnsafeMutablePointer<Float>, weight: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>
    let rows: Int, width: Int, epsilon: Float, chunks: Int

    func run(chunk: Int) {
        for r in (rows * chunk / chunks)..<(rows * (chunk + 1) / chunks) {
            Reduction.rmsNorm(x + r * width, weight: weight, epsilon: epsilon, into: out + r * width, count: width)
        }
    }
}

/// SwiGLU of rows laid out [gate (size) | up (size)] into rows of `size`.
struct SwiGLURows: ChunkedWork {
    let gateUp: UnsafeMutablePointer<Float>, out: UnsafeMutablePointer<Float>, rows: Int, size: Int, chunks: Int

    func run(chunk: Int) {
        for r in (rows * chunk / chunks)..<(rows * (chunk + 1) / chunks) {
            Elementwise.siluMul(gate: gateUp + r * 2 * size, up: gateUp + r * 2 * size + size, into: out + r * size, count: size)
        }
    }
}

/// Causal (and windowed) mask and softmax of a block of query rows: query i is the token at
/// position past + i and sees keys j ≤ past + i (and j > past + i − window).
struct MaskedSoftmaxRows: ChunkedWork {
    let scores: UnsafeMutablePointer<Float>, queries: Int, keys: Int, past: Int, window: Int?, chunks: Int

    func run(chunk: Int) {
        for i in (queries * chunk / chunks)..<(queries * (chunk + 1) / chunks) {
            let row = scores + i * keys
            let position = past + i
            for j in (position + 1)..<max(position + 1, keys) { row[j] = -.infinity }
            if let window, position - window >= 0 { for j in 0...(position - window) { row[j] = -.infinity } }
            Reduction.softmax(row, count: keys)
        }
    }
}
