import Foundation
import ModelSpec
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
    var form: Form = .plain

    /// The gated activation of rows of [gate | up].
    enum Form {
        /// silu(gate) · up.
        case plain
        /// gpt-oss's and DeepSeek-V4's clamped form: gate ≤ limit, |up| ≤ limit, then
        /// (up + shift) · gate · σ(α · gate) (gpt-oss: shift 1, α 1.702; DeepSeek-V4: 0 and 1).
        case clamped(limit: Float, alpha: Float, shift: Float)
        /// Kimi K3's SiTU: β·tanh(gate/β)·σ(gate) · βₗ·tanh(up/βₗ) (βₗ nil: up as it is).
        case situ(beta: Float, linearBeta: Float?)

        /// The experts' form: the MoE's clamp if it has one, else the model's activation.
        init(_ activation: GatedActivation, clampOf moe: MixtureOfExperts?) {
            if let moe, let limit = moe.swigluLimit {
                self = .clamped(limit: Float(limit), alpha: Float(moe.swigluAlpha), shift: Float(moe.swigluUpShift))
            } else if case let .situ(beta, linear) = activation {
                self = .situ(beta: Float(beta), linearBeta: linear.map(Float.init))
            } else {
                self = .plain
            }
        }
    }

    func run(chunk: Int) {
        for r in (rows * chunk / chunks)..<(rows * (chunk + 1) / chunks) {
            let g = gateUp + r * 2 * size, u = g + size, o = out + r * size
            switch form {
            case .plain:
                Elementwise.siluMul(gate: g, up: u, into: o, count: size)
            case let .clamped(limit, alpha, shift):
                for i in 0..<size {
                    let gate = min(g[i], limit), up = min(max(u[i], -limit), limit)
                    o[i] = (up + shift) * gate / (1 + exp(-alpha * gate))
                }
            case let .situ(beta, linearBeta):
                Elementwise.situMul(gate: g, up: u, beta: beta, linearBeta: linearBeta, into: o, count: size)
            }
        }
    }
}

extension Layer.Span {
    /// The first key a query at `position` sees (it sees every key from there to itself): the
    /// last `window` under a sliding window, its own chunk under chunked attention (Llama 4),
    /// every earlier key otherwise. (DeepSeek-V4's compressed attention masks its own keys: `compressedAttention`.)
    func firstVisibleKey(position: Int) -> Int {
        switch self {
        case let .slidingWindow(window): max(0, position - window + 1)
        case let .chunked(size): position / size * size
        case .full, .compressed: 0
        }
    }
}

/// Causal mask, within the layer's span (sliding window, chunk), and softmax of a block of query
/// rows: query i is the token at position past + i and sees keys span.firstVisibleKey ... past + i.
struct MaskedSoftmaxRows: ChunkedWork {
    let scores: UnsafeMutablePointer<Float>, queries: Int, keys: Int, past: Int, span: Layer.Span, chunks: Int
    /// gpt-oss's attention-sink logit of the head (nil: a plain softmax).
    var sink: Float? = nil

    func run(chunk: Int) {
        for i in (queries * chunk / chunks)..<(queries * (chunk + 1) / chunks) {
            let row = scores + i * keys
            let position = past + i
            for j in (position + 1)..<max(position + 1, keys) { row[j] = -.infinity }
            for j in 0..<min(span.firstVisibleKey(position: position), keys) { row[j] = -.infinity }
            Reduction.softmax(row, count: keys, sink: sink)
        }
    }
}

/// MLA's absorbed decode for (token, head) pairs `chunk` of `chunks`, each thread with its own
/// scratch (q_lat, o_lat, scores): q_lat = W_UKᵀ q_nope, scores over the cached latents and rotary
/// keys, softmax, o_lat = Σ p·latent, out = W_UV o_lat.
struct AbsorbedHeads: ChunkedWork {
    let kvUp: UnsafePointer<Float>, latents: UnsafePointer<Float>, rotary: UnsafePointer<Float>
    let q: UnsafeMutablePointer<Float>, context: UnsafeMutablePointer<Float>
    let scratch: UnsafeMutablePointer<Float>, scratchStride: Int
    let heads: Int, qk: Int, nope: Int, vDim: Int, rank: Int, ropeDim: Int
    let start: Int, past: Int, scale: Float, pairs: Int, chunks: Int
    /// Sparse attention's mask (0 on the indexer's top-k keys, −∞ elsewhere), one row of
    /// past + queries keys per query; nil: dense. Masked keys are skipped, not scored.
    var mask: UnsafePointer<Float>? = nil

    func run(chunk: Int) {
        let qLatent = scratch + chunk * scratchStride, oLatent = qLatent + rank, scores = qLatent + 2 * rank
        let total = past + pairs / heads
        let rowsPerHead = nope + vDim
        for pair in (pairs * chunk / chunks)..<(pairs * (chunk + 1) / chunks) {
            let i = pair / heads, hh = pair % heads
            let visible = past + i + 1
            let query = q + (start + i) * heads * qk + hh * qk
            let uk = kvUp + hh * rowsPerHead * rank
            qLatent.update(repeating: 0, count: rank)
            for r in 0..<nope { Elementwise.addScaled(uk + r * rank, by: query[r], into: qLatent, count: rank) }
            let maskRow = mask.map { $0 + i * total }
            for j in 0..<visible {
                if let maskRow, maskRow[j] == -.infinity { scores[j] = -.infinity; continue }
                scores[j] = (Reduction.dot(qLatent, latents + j * rank, count: rank)
                    + Reduction.dot(query + nope, rotary + j * ropeDim, count: ropeDim)) * scale
            }
            Reduction.softmax(scores, count: visible)
            oLatent.update(repeating: 0, count: rank)
            for j in 0..<visible where scores[j] != 0 { Elementwise.addScaled(latents + j * rank, by: scores[j], into: oLatent, count: rank) }
            let uv = uk + nope * rank
            let out = context + (start + i) * heads * vDim + hh * vDim
            for r in 0..<vDim { out[r] = Reduction.dot(uv + r * rank, oLatent, count: rank) }
        }
    }
}

/// Decode attention of grouped-query heads for (token, head) pairs `chunk` of `chunks`: each new
/// token's query head against the cached keys it sees (from `span.firstVisibleKey` on),
/// softmax, and the weighted sum of values, with its own scores row per thread.
struct DecodeHeads: ChunkedWork {
    let qkv: UnsafeMutablePointer<Float>, width: Int
    /// Keys of `headDim` and values of `valueDim` per KV head, rows of `stride` and `valueStride`.
    let keys: UnsafePointer<Float>, values: UnsafePointer<Float>, stride: Int, valueStride: Int
    let headDim: Int, valueDim: Int, heads: Int, group: Int, start: Int, past: Int, span: Layer.Span, scale: Float
    let scores: UnsafeMutablePointer<Float>, scoresStride: Int
    let context: UnsafeMutablePointer<Float>, contextWidth: Int, pairs: Int, chunks: Int
    /// gpt-oss's attention-sink logits, one per head (nil: none).
    var sinks: UnsafePointer<Float>? = nil

    func run(chunk: Int) {
        let row = scores + chunk * scoresStride
        for pair in (pairs * chunk / chunks)..<(pairs * (chunk + 1) / chunks) {
            let i = pair / heads, hh = pair % heads, kvh = hh / group
            let query = qkv + (start + i) * width + hh * headDim
            let k = keys + kvh * headDim, v = values + kvh * valueDim
            let visible = past + i + 1
            let first = span.firstVisibleKey(position: visible - 1)
            let count = visible - first
            for j in 0..<count { row[j] = Reduction.dot(query, k + (first + j) * stride, count: headDim) * scale }
            Reduction.softmax(row, count: count, sink: sinks?[hh])
            let out = context + (start + i) * contextWidth + hh * valueDim
            out.update(repeating: 0, count: valueDim)
            for j in 0..<count { Elementwise.addScaled(v + (first + j) * valueStride, by: row[j], into: out, count: valueDim) }
        }
    }
}
