import ModelSpec
import TensorCore

/// Kimi K3's attention residuals (`attn_res_block_size`, SGLang's `layers/attn_residual.py` and
/// `KimiK3DecoderLayer._forward_attn_residual`): no running residual stream. The model keeps a bank
/// of block snapshots (the first is the embedding) and the partial sum P of the blocks' outputs
/// since the last snapshot. Each attention and feed-forward block reads a softmax mix of the bank
/// and P, per token:
///
///     s_j = (c · V_j) / rms(V_j),  π = softmax(s),  input = RMSNorm(Σ_j π_j · V_j)
///
/// with c = the block's score-norm weight ⊙ its 1 × hidden projection, the rows V_j mixed as they
/// are (normalised only for scoring), and the block's usual pre-norm as the output norm. At a layer
/// l with l % block == 0, P joins the bank after the attention side has read it and restarts
/// from zero. The head reads the same mix (its own scores, the final norm as output norm).
extension CPUModel {
    func runAttentionResiduals(block: Int, rows: Int, token: (Int) -> Int, caches: inout [SequenceCache], allLogits: Bool,
                               into logits: inout Tensor) throws {
        let segments = workspace.segments
        let h = spec.hiddenSize
        try beginPass(rows: rows, allLogits: allLogits, logits: &logits)
        guard rows > 0 else { return }
        guard let outputScores = weights.outputResidualScores else { throw RuntimeError.unsupported("attention residuals without the output's scores") }
        let ws = workspace
        // The bank holds one snapshot per `block` layers (written at layers 0, block, 2·block, …).
        let snapshots = (weights.layers.count + block - 1) / block
        let partial = ws.get(.x, rows * h), normed = ws.get(.normed, rows * h), delta = ws.get(.delta, rows * h)
        let mix = ws.get(.residualMix, rows * h), bank = ws.get(.residualBlocks, max(snapshots, 1) * rows * h)
        let scores = ws.get(.residualScores, rows * (snapshots + 1))
        // 1/rms of each banked snapshot's rows, taken once when it is written.
        let bankScale = ws.get(.residualBankScale, max(snapshots, 1) * rows)
        let epsilon = Float(spec.rmsNormEpsilon)
        embed(rows: rows, token: token, into: partial)
        var banked = 0
        for (index, layer) in weights.layers.enumerated() {
            guard let residualScores = layer.residualScores else { throw RuntimeError.unsupported("a layer without its attention residuals") }
            timed(.norm) {
                mixBlocks(bank: bank, bankScale: bankScale, banked: banked, partial: partial, rows: rows, scores: residualScores.attention,
                          scratch: scores, into: mix)
                rmsNormRows(mix, layer.inputNorm, into: normed, rows: rows)
                if index % block == 0 {
                    (bank + banked * rows * h).update(from: partial, count: rows * h)
                    for r in 0..<rows {
                        bankScale[banked * rows + r] = Reduction.inverseRMS(partial + r * h, count: h, epsilon: epsilon)
                    }
                    banked += 1
                    partial.update(repeating: 0, count: rows * h)
                }
            }
            try timed(.attention) {
                try attention(layer.attention, layer: index, input: normed, rows: rows, segments: segments, caches: &caches, into: delta)
            }
            timed(.norm) {
                Elementwise.add(partial, delta, into: partial, count: rows * h)
                mixBlocks(bank: bank, bankScale: bankScale, banked: banked, partial: partial, rows: rows, scores: residualScores.feedForward,
                          scratch: scores, into: mix)
                rmsNormRows(mix, layer.postNorm, into: normed, rows: rows)
            }
            try timed(layer.feedForward.isMoE ? .moe : .mlp) {
                try feedForward(layer.feedForward, layer: index, input: normed, rows: rows, into: delta)
            }
            timed(.norm) { Elementwise.add(partial, delta, into: partial, count: rows * h) }
        }
        for s in segments.indices { caches[s].advance(by: segments[s].count) }
        timed(.norm) {
            mixBlocks(bank: bank, bankScale: bankScale, banked: banked, partial: partial, rows: rows, scores: outputScores, scratch: scores,
                      into: mix)
        }
        head(mix, rows: rows, allLogits: allLogits, into: &logits)
    }

    /// Each row's softmax mix of the `banked` snapshots and the partial sum (type comment):
    /// `scratch` holds one score per mixed row; rows split over threads for long prompts.
    func mixBlocks(bank: UnsafePointer<Float>, bankScale: UnsafePointer<Float>, banked: Int, partial: UnsafePointer<Float>, rows: Int,
                   scores c: [Float], scratch: UnsafeMutablePointer<Float>, into out: UnsafeMutablePointer<Float>) {
        let h = spec.hiddenSize
        c.withUnsafeBufferPointer { cp in
            guard let weight = cp.baseAddress else { return }
            let chunks = Parallel.chunks(rows: rows, width: (banked + 1) * h)
            Parallel.run(chunks: chunks, ResidualMixRows(bank: bank, bankScale: bankScale, banked: banked, partial: partial, weight: weight,
                                                         scratch: scratch,
                                                         out: out, rows: rows, width: h, epsilon: Float(spec.rmsNormEpsilon), chunks: chunks))
        }
    }
}

/// The attention residuals' mix of rows `chunk` of `chunks` (`CPUModel.mixBlocks`).
struct ResidualMixRows: ChunkedWork {
    let bank: UnsafePointer<Float>, bankScale: UnsafePointer<Float>, banked: Int, partial: UnsafePointer<Float>, weight: UnsafePointer<Float>
    let scratch: UnsafeMutablePointer<Float>, out: UnsafeMutablePointer<Float>, rows: Int, width: Int, epsilon: Float, chunks: Int

    func run(chunk: Int) {
        let h = width, n = banked + 1
        for r in (rows * chunk / chunks)..<(rows * (chunk + 1) / chunks) {
            let s = scratch + r * n
            func row(_ j: Int) -> UnsafePointer<Float> { j < banked ? bank + (j * rows + r) * h : partial + r * h }
            for j in 0..<banked { s[j] = Reduction.dot(weight, row(j), count: h) * bankScale[j * rows + r] }
            let p = partial + r * h
            s[banked] = Reduction.dot(weight, p, count: h) * Reduction.inverseRMS(p, count: h, epsilon: epsilon)
            Reduction.softmax(s, count: n)
            let o = out + r * h
            Elementwise.scale(row(0), by: s[0], into: o, count: h)
            for j in 1..<n { Elementwise.addScaled(row(j), by: s[j], into: o, count: h) }
        }
    }
}
