/// One forward step of a serving engine: `sequences` sequences each add `newTokens` tokens after
/// `context` tokens already in their KV cache. Prefill of a prompt is newTokens = prompt length;
/// decode is newTokens = 1.
public struct StepShape: Sendable, Equatable {
    public enum Phase: String, Sendable, Codable { case prefill, decode }

    public var sequences: Int
    public var newTokens: Int
    public var context: Int
    public var phase: Phase

    public init(sequences: Int, newTokens: Int, context: Int, phase: Phase) {
        self.sequences = max(0, sequences)
        self.newTokens = max(0, newTokens)
        self.context = max(0, context)
        self.phase = phase
    }

    public static func prefill(sequences: Int, promptTokens: Int, cachedPrefix: Int = 0) -> StepShape {
        StepShape(sequences: sequences, newTokens: promptTokens, context: cachedPrefix, phase: .prefill)
    }

    public static func decode(sequences: Int, context: Int) -> StepShape {
        StepShape(sequences: sequences, newTokens: 1, context: context, phase: .decode)
    }

    /// Tokens processed by the step across all sequences.
    public var tokens: Int { sequences * newTokens }
}

/// One operator of a step with its cost. `flops`, `weightBytes`, `activationBytes` and `kvBytes`
/// are for one layer; `layers` says how many layers run it (1 for embedding and head).
public struct Operator: Sendable, Equatable {
    public enum Kind: String, Sendable, Codable {
        case embedding, norm, matmul, attention, routing, groupedMatmul = "grouped_matmul", activation
        /// Moves each token's expert copies into expert order and back: done by the GPUs that
        /// compute those copies, so it splits like the routed experts' token-expert pairs, not
        /// like the attention group's tokens.
        case expertPermutation = "expert_permutation"
    }

    /// The part of the model an operator belongs to, for time splits by part (`bench` compares
    /// the estimator's split with the runtime's measured one).
    public enum Block: String, Sendable, Codable, CaseIterable {
        case embedding, norm, attention, mlp, moe, head
    }

    public var name: String
    public var kind: Kind
    public var layers: Int
    public var flops: Double
    /// Weight bytes read (each weight once per step; for routed experts only those touched).
    public var weightBytes: Double
    /// Activations read and written, 2 bytes per value (bf16 activations).
    public var activationBytes: Double
    /// KV cache read plus written.
    public var kvBytes: Double
    /// The part of `activationBytes` a grouped GEMM spends on the experts' intermediate width
    /// (gate+up written, read by the activation, down read): experts cut by tensor parallelism
    /// (`Layout.moeTP`) hold a slice of it, while the input and output copies stay full width.
    public var intermediateActivationBytes = 0.0
    public var block: Block = .norm
    /// How the cache traffic splits over a tensor-parallel group: by KV heads (GQA), not at all
    /// (MLA's latent, the sparse indexer's keys: every rank reads them whole), or by heads (a
    /// linear-attention layer's state).
    public var cacheSplit: WeightTensor.Split = .kvHeads
    /// Activation elements this GEMM reads in the weights' quantized format (W8A8, W4A4), split
    /// over the tensor-parallel ranks: a row-parallel GEMM's input (each rank holds its heads' or
    /// its slice's share), a grouped GEMM's per-copy intermediate.
    public var quantizedInputs = 0.0
    /// The same for inputs every tensor-parallel rank holds whole and quantizes whole: those of
    /// column-parallel and replicated GEMMs (the hidden state after the all-reduce).
    public var wholeQuantizedInputs = 0.0
    /// Runs inside the kernel that produces its input (no launch of its own).
    public var fused = false
    /// How tensor parallelism divides this operator's work and weights: by heads (every GEMM of
    /// the attention group's share), or not at all (replicated weights every rank runs whole:
    /// MLA's and DeepSeek-V4's down-projections, the router, the sparse indexer, DeepSeek-V4's
    /// compressor and kv projection, the norms).
    public var computeSplit: WeightTensor.Split = .heads
    /// The KV heads whose cache this operator reads, when they differ from the model's (MiMo's
    /// sliding layers).
    public var kvHeads: Int? = nil
    /// The weight format a GEMM runs in when it is not the step's (an FP4 checkpoint's bf16
    /// attention projections, `ModelSpec.attentionWeightFormat`); nil: the step's. (An enum, not
    /// its format name, so that operators stay trivially copyable.)
    public var ownWeights: WeightFormat? = nil

    func tagged(_ block: Block) -> Operator {
        var op = self
        op.block = block
        return op
    }

    public var totalFLOPs: Double { flops * Double(layers) }
}

/// Formats and routing assumptions under which a step is priced.
public struct CostOptions: Sendable, Equatable {
    public var weights: WeightFormat
    public var kvCache: KVCacheFormat
    /// Zipf skew of expert popularity (0 = uniform), see `ExpertLoad`.
    public var expertSkew: Double

    public init(weights: WeightFormat = .bf16, kvCache: KVCacheFormat = .bf16, expertSkew: Double = 0) {
        self.weights = weights
        self.kvCache = kvCache
        self.expertSkew = expertSkew
    }
}

extension ModelSpec {
    /// The operator list of one step of the whole model: embedding, each distinct kind of layer
    /// (with how many layers share it), final norm and output head.
    ///
    /// Conventions: a matmul of T tokens through an n × k weight costs 2·T·n·k FLOPs; attention
    /// costs 2 FLOPs per multiply-add of QKᵀ and PV plus 5 per score for the softmax; a causal
    /// query at position p sees min(p + 1, window) keys; the KV cache of each sequence is read
    /// once per layer per step (fused attention kernels keep it in on-chip memory across
    /// queries). MLA runs its absorbed form in decode (queries and outputs move through the
    /// latent space and the cache is never expanded) and the expanded form in prefill. In prefill
    /// only the last token of each sequence goes through the output head.
    public func operators(step: StepShape, options: CostOptions = CostOptions()) -> [Operator] {
        let t = Double(step.tokens), h = Double(hiddenSize)
        var ops: [Operator] = []
        let plain = options.weights.unquantized
        func weight(_ rows: Int, _ cols: Int) -> Double { Double(options.weights.bytes(rows: rows, cols: cols)) }
        func matmul(_ name: String, _ rows: Int, _ cols: Int, tokens: Double, layers: Int, kind: Operator.Kind = .matmul,
                    bytes: Double? = nil) -> Operator {
            var op = Operator(name: name, kind: kind, layers: layers, flops: 2 * tokens * Double(rows) * Double(cols),
                              weightBytes: bytes ?? weight(rows, cols), activationBytes: 2 * tokens * Double(rows + cols), kvBytes: 0)
            // Weights in the quantized format (no explicit bytes) take quantized inputs, whole on
            // every rank unless the GEMM is row-parallel (`rowParallel`).
            if bytes == nil { op.wholeQuantizedInputs = tokens * Double(cols) }
            return op
        }
        // The hidden state is whole on every rank of a tensor-parallel group (after the
        // all-reduce), so every rank normalises all of the group's tokens (vLLM's and SGLang's
        // RMSNorm layers are not sharded).
        func norm(_ name: String, width: Double, layers: Int) -> Operator {
            replicated(Operator(name: name, kind: .norm, layers: layers, flops: 4 * t * width, weightBytes: 2 * width,
                                activationBytes: 4 * t * width, kvBytes: 0))
        }

        ops.append(Operator(name: "embedding lookup", kind: .embedding, layers: 1, flops: 0,
                            weightBytes: Double(plain.bytes(rows: 1, cols: hiddenSize)) * t, activationBytes: 2 * t * h, kvBytes: 0,
                            block: .embedding))
        // W8A8 and W4A4 GEMMs read quantized activations: before each quantized GEMM its bf16 input
        // is read and written back in the weights' format with a scale per group of 128 (vLLM's
        // and SGLang's per_token_group_quant, TensorRT-LLM's quantize kernels): 3 bytes and a
        // little per element, priced as memory traffic. Its launch is not counted: vLLM and
        // TensorRT-LLM fuse it into the norm or activation before (SGLang's DeepSeek path runs it
        // apart, a few microseconds a layer this leaves out).
        let quantizedActivations = options.weights.computeFormat == "fp8" || options.weights.computeFormat == "fp4"
        // Inputs whole on every tensor-parallel rank are quantized whole on every rank (priced
        // replicated), split ones in shares. Two optionals, not an array: operator lists are built
        // for every step shape a simulation prices.
        func quantization(_ layerOps: [Operator], count: Int, block: Operator.Block) -> (split: Operator?, whole: Operator?) {
            guard quantizedActivations else { return (nil, nil) }
            var split = 0.0, whole = 0.0
            for op in layerOps where op.kind == .matmul || op.kind == .groupedMatmul {
                split += op.quantizedInputs
                whole += op.wholeQuantizedInputs
            }
            func pass(_ inputs: Double, _ name: String, _ share: WeightTensor.Split) -> Operator? {
                guard inputs > 0 else { return nil }
                var op = Operator(name: name, kind: .activation, layers: count, flops: 2 * inputs, weightBytes: 0,
                                  activationBytes: (2 + 1 + 4.0 / 128) * inputs, kvBytes: 0, block: block)
                op.fused = true
                op.computeSplit = share
                return op
            }
            return (pass(split, "activation quantization", .heads),
                    pass(whole, "activation quantization (inputs whole on every rank)", .replicated))
        }
        func append(_ q: (split: Operator?, whole: Operator?), to list: inout [Operator]) {
            if let op = q.split { list.append(op) }
            if let op = q.whole { list.append(op) }
        }
        // Attention projections stored in a format of their own (bf16 in an FP4 checkpoint) read
        // that many bytes and take unquantized inputs (explicit bytes: no quantization pass).
        // Operator lists are built for every step shape a simulation prices: without a format of
        // their own the attention operators take `matmul` itself, not a wrapper around it.
        let attentionFormat = attentionWeightFormat.flatMap { $0 == options.weights ? nil : $0 }
        func attentionMatmul(_ name: String, _ rows: Int, _ cols: Int, tokens: Double, layers: Int,
                             kind: Operator.Kind, bytes: Double?) -> Operator {
            guard let format = attentionFormat, !(attentionOutputQuantized && Self.isAttentionOutput(name)) else {
                return matmul(name, rows, cols, tokens: tokens, layers: layers, kind: kind, bytes: bytes)
            }
            // GEMMs priced in bf16 whatever the format (explicit bytes: the indexers' head weights,
            // DeepSeek-V4's compressors) run at the bf16 rate too, like the rest of the attention
            // now; without an attention format they keep the step's rate.
            var op = matmul(name, rows, cols, tokens: tokens, layers: layers, kind: kind,
                            bytes: bytes ?? Double(format.bytes(rows: rows, cols: cols)))
            op.ownWeights = bytes == nil ? format : options.weights.unquantized
            return op
        }
        for (layer, count) in layerGroups() {
            ops.append(norm("input norm", width: h, layers: count))
            let attentionOps = attentionFormat == nil
                ? attentionOperators(layer: layer, count: count, step: step, options: options, matmul: matmul)
                : attentionOperators(layer: layer, count: count, step: step, options: options, matmul: attentionMatmul)
            for op in attentionOps { ops.append(op.tagged(.attention)) }
            append(quantization(attentionOps, count: count, block: .attention), to: &ops)
            ops.append(norm("post-attention norm", width: h, layers: count))
            switch layer.feedForward {
            case let .dense(size):
                let mlp = [matmul("mlp gate+up", 2 * size, hiddenSize, tokens: t, layers: count).tagged(.mlp),
                           Operator(name: "SwiGLU", kind: .activation, layers: count, flops: 5 * t * Double(size),
                                    weightBytes: 0, activationBytes: 6 * t * Double(size), kvBytes: 0, block: .mlp),
                           rowParallel(matmul("mlp down", hiddenSize, size, tokens: t, layers: count)).tagged(.mlp)]
                ops += mlp
                append(quantization(mlp, count: count, block: .mlp), to: &ops)
            case .moe:
                if let moe {
                    let moeOps = moeOperators(moe, count: count, step: step, options: options, matmul: matmul)
                    for op in moeOps { ops.append(op.tagged(.moe)) }
                    append(quantization(moeOps, count: count, block: .moe), to: &ops)
                }
            }
        }
        if let mix = attentionResidualMix(tokens: t) { ops.append(mix) }
        let headTokens = step.phase == .prefill ? Double(step.sequences) : t
        if let mix = hyperConnectionMix(tokens: t, headTokens: headTokens) { ops.append(mix) }
        ops.append(norm("final norm", width: h, layers: 1))
        ops.append(matmul("output head", vocabSize, hiddenSize, tokens: headTokens, layers: 1,
                          bytes: Double(plain.bytes(rows: vocabSize, cols: hiddenSize))).tagged(.head))
        return ops
    }

    /// Kimi K3's attention residuals (`attentionResidualBlock` B): before the attention of layer l
    /// the mix reads ⌈l/B⌉ snapshots and the partial sum, before its feed-forward block ⌊l/B⌋ + 1
    /// and the partial sum, before the head all ⌈L/B⌉ and the partial sum. Each mixed row costs a
    /// score (two hidden-long dot products) and an axpy, 6·hidden FLOPs, and is read once in bf16;
    /// each mix is written once. The mix replaces the block's pre-norm kernel (SGLang's aggregate
    /// kernels), so it adds no launch; every tensor-parallel rank mixes all its tokens' rows.
    func attentionResidualMix(tokens t: Double) -> Operator? {
        guard let b = attentionResidualBlock, b > 0 else { return nil }
        // In closed form (operators are priced every simulated step): Σ_{i<n} ⌊i/B⌋ and
        // ⌈i/B⌉ = ⌊(i − 1)/B⌋ + 1 for i ≥ 1, in Double (a --set layer count may be large).
        func floors(_ n: Int) -> Double {
            let q = Double(n / b), r = Double(n % b)
            return Double(b) * q * (q - 1) / 2 + q * r
        }
        let l = layerCount
        let ceilings = l > 0 ? floors(l - 1) + Double(l - 1) : 0
        let rows = ceilings + floors(l) + 3 * Double(l) + Double((l + b - 1) / b) + 1
        let mixes = Double(2 * l + 1), h = Double(hiddenSize)
        var op = Operator(name: "attention residual mix", kind: .norm, layers: 1, flops: 6 * t * h * rows,
                          weightBytes: 4 * h * mixes, activationBytes: 2 * t * h * (rows + mixes), kvBytes: 0)
        op.fused = true
        op.computeSplit = .replicated
        return op
    }

    /// DeepSeek-V4's hyper-connections (n = `hc_mult` residual streams of hidden h): around each
    /// attention and feed-forward block, per token, the n·h streams are RMS-normalised (3·n·h
    /// FLOPs) and mapped to (2 + n)·n mixing weights (2·n·h·(2 + n)·n: the `hc_fn` matmul),
    /// collapsed into the block's input (2·n·h), and after the block rewritten as post·output +
    /// comb·streams (n·h·(2n + 1)); the head normalises, maps to n weights and collapses once more
    /// for the tokens whose logits are wanted (`headTokens`). Traffic: the streams read for the
    /// norm and mapping, again for the collapse and the update, and written back (3·n·h values),
    /// plus the block's output (h), in bf16. A small matmul and elementwise kernels each fused
    /// into their neighbours' launches in TileLang's implementation; every tensor-parallel rank
    /// keeps all streams of its tokens.
    func hyperConnectionMix(tokens t: Double, headTokens: Double) -> Operator? {
        guard let n = hyperConnections.map({ Double($0.streams) }), n > 0 else { return nil }
        let h = Double(hiddenSize), blocks = Double(2 * layerCount)
        let block = 3 * n * h + 2 * n * h * (2 + n) * n + 2 * n * h + n * h * (2 * n + 1)
        let head = 3 * n * h + 2 * n * h * n + 2 * n * h
        var op = Operator(name: "hyper-connection mix", kind: .norm, layers: 1, flops: t * blocks * block + headTokens * head,
                          weightBytes: 4 * (blocks * ((2 + n) * n * n * h) + n * n * h),
                          activationBytes: 2 * (t * blocks * (3 * n * h + h) + headTokens * n * h), kvBytes: 0)
        op.fused = true
        op.computeSplit = .replicated
        return op
    }

    /// Distinct layer kinds with how many layers share each, in first-seen order.
    public func layerGroups() -> [(Layer, Int)] {
        var groups: [(Layer, Int)] = []
        for layer in layers {
            if let i = groups.firstIndex(where: { $0.0 == layer }) { groups[i].1 += 1 } else { groups.append((layer, 1)) }
        }
        return groups
    }

    /// Σ over the new tokens of one sequence of the keys each attends to.
    static func attendedKeys(span: Layer.Span, context: Int, newTokens: Int) -> Double {
        let window: Int? = switch span {
        case .full: nil
        case let .slidingWindow(w): w
        case let .chunked(c): c
        case let .compressed(_, w): w
        }
        guard newTokens > 0 else { return 0 }
        // Closed form per region: new token i (0-based) sits at position p = context + i + 1 and
        // attends p keys until the window fills, then `window` keys. The sums are of integers
        // below 2^53, so exact in Double.
        let n = Double(newTokens), first = Double(context) + 1
        func ramp(_ k: Double) -> Double { k * first + k * (k - 1) / 2 }  // Σ_{i<k} (first + i)
        guard let window else { return ramp(n) }
        let belowWindow = min(max(Double(window) - first, 0), n)
        return ramp(belowWindow) + Double(window) * (n - belowWindow)
    }

    private func attentionOperators(
        layer: Layer, count: Int, step: StepShape, options: CostOptions,
        matmul: (String, Int, Int, Double, Int, Operator.Kind, Double?) -> Operator
    ) -> [Operator] {
        if layer.mixer == .linear, let linear = linearAttention {
            return linearOperators(linear, count: count, step: step, matmul: matmul)
        }
        if case let .compressed(a) = attention, case let .compressed(ratio, window) = layer.span {
            return compressedOperators(a, ratio: ratio, window: window, indexer: layer.indexer, count: count, step: step,
                                       options: options, matmul: matmul)
        }
        let t = Double(step.tokens), s = Double(step.sequences)
        let kvPerToken = Double(ModelSpec.kvValuesPerToken(attention(for: layer)) * options.kvCache.bytesPerValue)
        let cachedAfter = Double(layer.span.cachedTokens(context: step.context + step.newTokens))
        var ops: [Operator] = []
        // Sparse attention reads the indexer's top-k tokens: per query at most k keys (a window of
        // k in the sum below), and in decode only those k entries of each sequence's cache.
        var span = layer.span
        var cacheRead = cachedAfter
        if let sparse = sparseAttention {
            span = .slidingWindow(min(sparse.topK, layer.span.cachedTokens(context: Int.max / 4)))
            if step.phase == .decode { cacheRead = min(cachedAfter, Double(sparse.topK)) }
            if layer.indexer { ops += indexerOperators(sparse, count: count, step: step, options: options, matmul: matmul) }
        }
        let keys = s * ModelSpec.attendedKeys(span: span, context: step.context, newTokens: step.newTokens)
        let kvTraffic = s * cacheRead * kvPerToken + t * kvPerToken
        switch attention(for: layer) {
        case let .grouped(a):
            let q = a.heads * a.headDim, kv = a.kvHeads * (a.headDim + a.vDim), out = a.heads * a.vDim
            ops.append(matmul("attention q/k/v projection", q + kv, hiddenSize, t, count, .matmul, nil))
            let heads = Double(a.heads), d = Double(a.headDim + a.vDim)
            var core = Operator(name: "attention (QKᵀ, softmax, PV)", kind: .attention, layers: count,
                                flops: keys * heads * (2 * d + 5), weightBytes: 0,
                                activationBytes: 2 * t * Double(q + out), kvBytes: kvTraffic)
            core.kvHeads = a.kvHeads
            ops.append(core)
            if a.outputGate { ops.append(matmul("attention output gate", q, hiddenSize, t, count, .matmul, nil)) }
            ops.append(rowParallel(matmul("attention output projection", hiddenSize, out, t, count, .matmul, nil)))
        case .compressed:
            break
        case let .latent(a):
            let heads = a.heads
            // The down-projections run whole on every tensor-parallel rank: SGLang's
            // fused_qkv_a_proj_with_mqa is a ReplicatedLinear, vLLM's fused_qkv_a_proj has
            // disable_tp, TensorRT-LLM's kv_a_proj_with_mqa no tensor-parallel mode.
            if let rank = a.qLoraRank {
                ops.append(replicated(matmul("MLA q down-projection", rank, hiddenSize, t, count, .matmul, nil)))
                ops.append(matmul("MLA q up-projection", heads * a.qkHeadDim, rank, t, count, .matmul, nil))
            } else {
                ops.append(matmul("MLA q projection", heads * a.qkHeadDim, hiddenSize, t, count, .matmul, nil))
            }
            ops.append(replicated(matmul("MLA kv down-projection", a.kvLoraRank + a.qkRopeHeadDim, hiddenSize, t, count, .matmul, nil)))
            let upRows = heads * (a.qkNopeHeadDim + a.vHeadDim)
            let hd = Double(heads)
            if step.phase == .decode {
                // Absorbed: W_UK folds into the query, W_UV into the output; both read once. Their
                // inputs are per head (each head's nope query and latent output), cut with the heads.
                var absorbed = matmul("MLA absorbed kv up-projection", upRows, a.kvLoraRank, t, count, .matmul, nil)
                if absorbed.wholeQuantizedInputs > 0 {  // none when its weights are unquantized
                    absorbed.wholeQuantizedInputs = 0
                    absorbed.quantizedInputs = t * hd * Double(a.qkNopeHeadDim + a.kvLoraRank)
                }
                ops.append(absorbed)
                let perKey = 2 * Double(a.kvLoraRank + a.qkRopeHeadDim) + 2 * Double(a.kvLoraRank) + 5
                ops.append(Operator(name: "MLA attention over the latent cache", kind: .attention, layers: count,
                                    flops: keys * hd * perKey, weightBytes: 0,
                                    activationBytes: 4 * t * hd * Double(a.kvLoraRank), kvBytes: kvTraffic, cacheSplit: .replicated))
            } else {
                // Expanded: every cached and new latent goes through kv_b to keys and values.
                let expanded = s * cachedAfter
                ops.append(matmul("MLA kv up-projection", upRows, a.kvLoraRank, expanded, count, .matmul, nil))
                let perKey = 2 * Double(a.qkHeadDim) + 2 * Double(a.vHeadDim) + 5
                ops.append(Operator(name: "MLA attention (expanded)", kind: .attention, layers: count,
                                    flops: keys * hd * perKey, weightBytes: 0,
                                    activationBytes: 2 * t * hd * Double(a.qkHeadDim + a.vHeadDim), kvBytes: kvTraffic,
                                    cacheSplit: .replicated))
            }
            if a.outputGate { ops.append(matmul("attention output gate", heads * a.vHeadDim, hiddenSize, t, count, .matmul, nil)) }
            ops.append(rowParallel(matmul("attention output projection", hiddenSize, heads * a.vHeadDim, t, count, .matmul, nil)))
        }
        return ops
    }

    /// Σ over positions p in (from, to] of ⌊p / r⌋ (compressed entries a query at p can see).
    static func entriesSeen(from: Int, to: Int, ratio r: Int, cap: Int? = nil) -> Double {
        func upTo(_ n: Int) -> Double {
            guard n > 0 else { return 0 }
            // Σ_{p=1}^{n} min(cap, ⌊p/r⌋): full steps of r positions, then the capped tail.
            let limit = cap.map { min(n, ($0 + 1) * r - 1) } ?? n
            let q = limit / r, rest = limit - q * r
            let below = Double(r) * Double(q) * Double(q - 1) / 2 + Double(q) * Double(rest + 1)
            return below + (cap.map { Double($0) * Double(n - limit) } ?? 0)
        }
        return upTo(to) - upTo(from)
    }

    /// DeepSeek-V4's attention in one layer: query (low rank), the shared key-value head, the
    /// compressor's projections (and on CSA layers the indexer's), attention over the window plus
    /// the compressed entries (the indexer's top-k on CSA layers, all of them on HCA layers), the
    /// grouped low-rank output. In decode each sequence reads its window and the entries it
    /// attends to; in prefill its whole cache once.
    private func compressedOperators(_ a: CompressedAttention, ratio: Int, window: Int, indexer: Bool, count: Int, step: StepShape,
                                     options: CostOptions,
                                     matmul: (String, Int, Int, Double, Int, Operator.Kind, Double?) -> Operator) -> [Operator] {
        let t = Double(step.tokens), s = Double(step.sequences), h = hiddenSize
        let plain = options.weights.unquantized
        var ops: [Operator] = []
        ops.append(replicated(matmul("V4 query down-projection", a.queryRank, h, t, count, .matmul, nil)))
        ops.append(matmul("V4 query up-projection", a.heads * a.headDim, a.queryRank, t, count, .matmul, nil))
        ops.append(replicated(matmul("V4 key-value projection (one head)", a.headDim, h, t, count, .matmul, nil)))
        // Compressor (kept in bf16): kv and gate, twice as wide on the overlapping CSA windows.
        if ratio > 0 {
            let width = (ratio == a.sparseRatio ? 2 : 1) * a.headDim
            ops.append(replicated(matmul("V4 compressor (kv, gate)", 2 * width, h, t, count, .matmul,
                                         Double(plain.bytes(rows: 2 * width, cols: h)))))
        }
        let start = step.context, end = step.context + step.newTokens
        var keys = s * ModelSpec.attendedKeys(span: .slidingWindow(window), context: step.context, newTokens: step.newTokens)
        let entryBytes = Double(a.headDim * options.kvCache.bytesPerValue)
        var decodeRead = Double(min(end, window))
        if ratio > 0 {
            let cap: Int? = indexer ? a.indexer.topK : nil
            keys += s * ModelSpec.entriesSeen(from: start, to: end, ratio: ratio, cap: cap)
            decodeRead += Double(min(end / ratio, cap ?? Int.max))
        }
        if indexer, ratio > 0 {
            let x = a.indexer
            // The query projection is quantized like the weight inventory's `q_b_proj`; the
            // indexer's compressor and head weights are kept in bf16 (inventory vectors).
            ops.append(replicated(matmul("V4 indexer query projection", x.heads * x.headDim, x.queryRank, t, count, .matmul, nil)))
            ops.append(replicated(matmul("V4 indexer compressor and weights", 4 * x.headDim + x.heads, h, t, count, .matmul,
                                         Double(plain.bytes(rows: 4 * x.headDim + x.heads, cols: h)))))
            let scanned = s * ModelSpec.entriesSeen(from: start, to: end, ratio: ratio)
            let keyBytes = Double(x.headDim * options.kvCache.bytesPerValue)
            ops.append(replicated(Operator(name: "V4 indexer scoring (every compressed key)", kind: .attention, layers: count,
                                           flops: scanned * Double(x.heads) * (2 * Double(x.headDim) + 3), weightBytes: 0,
                                           activationBytes: 2 * t * Double(x.heads * x.headDim),
                                           kvBytes: s * Double(end / ratio) * keyBytes, cacheSplit: .replicated)))
        }
        let read = step.phase == .decode ? decodeRead : Double(min(end, window) + (ratio > 0 ? end / ratio : 0))
        ops.append(Operator(name: "V4 attention (window and compressed entries)", kind: .attention, layers: count,
                            flops: keys * Double(a.heads) * (4 * Double(a.headDim) + 5), weightBytes: 0,
                            activationBytes: 4 * t * Double(a.heads * a.headDim), kvBytes: s * read * entryBytes + t * entryBytes,
                            cacheSplit: .replicated))
        let perGroup = a.heads * a.headDim / a.outputGroups
        // Built here, not through `matmul`: each group reads its own slice of the heads' output.
        let groupedFormat = attentionOutputQuantized ? options.weights : attentionWeightFormat ?? options.weights
        var grouped = Operator(name: "V4 grouped output down-projection", kind: .matmul, layers: count,
                               flops: 2 * t * Double(a.heads * a.headDim * a.outputRank),
                               weightBytes: Double(groupedFormat.bytes(rows: a.outputGroups * a.outputRank, cols: perGroup)),
                               activationBytes: 2 * t * Double(a.heads * a.headDim + a.outputGroups * a.outputRank), kvBytes: 0)
        if groupedFormat == options.weights {
            grouped.quantizedInputs = t * Double(a.heads * a.headDim)
        } else {
            grouped.ownWeights = groupedFormat
        }
        ops.append(grouped)
        ops.append(rowParallel(matmul("V4 output up-projection", h, a.outputGroups * a.outputRank, t, count, .matmul, nil)))
        return ops
    }

    /// The lightning indexer of a layer: its projections, then every query scores every cached
    /// index key with `heads` ReLU dot products of `headDim` (the whole cache, causally), reading
    /// the index keys once per step.
    private func indexerOperators(_ x: SparseAttention, count: Int, step: StepShape, options: CostOptions,
                                  matmul: (String, Int, Int, Double, Int, Operator.Kind, Double?) -> Operator) -> [Operator] {
        let t = Double(step.tokens), s = Double(step.sequences)
        let plain = options.weights.unquantized
        // Every tensor-parallel rank runs the whole indexer (its weights are replicated). wq_b and
        // wk are quantized with the rest (DeepSeek's reference builds them as its default Linear,
        // FP8 in an FP8 model; the weight inventory counts them so); weights_proj is kept in bf16
        // (`dtype=torch.get_default_dtype()` there).
        let queries = replicated(matmul("indexer query projection (wq_b, from the query latent)", x.heads * x.headDim, x.queryRank,
                                        t, count, .matmul, nil))
        let keys = replicated(matmul("indexer key projection (wk)", x.headDim, hiddenSize, t, count, .matmul, nil))
        let headWeights = replicated(matmul("indexer head weights (weights_proj)", x.heads, hiddenSize, t, count, .matmul,
                                            Double(plain.bytes(rows: x.heads, cols: hiddenSize))))
        let scanned = s * ModelSpec.attendedKeys(span: .full, context: step.context, newTokens: step.newTokens)
        let keyBytes = Double(x.headDim * options.kvCache.bytesPerValue)
        let cached = Double(step.context + step.newTokens)
        let scoring = replicated(Operator(name: "indexer scoring (every cached key)", kind: .attention, layers: count,
                                          flops: scanned * Double(x.heads) * (2 * Double(x.headDim) + 3), weightBytes: 0,
                                          activationBytes: 2 * t * Double(x.heads * x.headDim),
                                          kvBytes: s * cached * keyBytes + t * keyBytes, cacheSplit: .replicated))
        return [queries, keys, headWeights, scoring]
    }

    /// A linear-attention layer: its projections (GEMMs), then the recurrence, whose cost per
    /// token is a few passes over each head's state (decode: decay, read with k, rank-1 update,
    /// read-out with q: 7·dk·dv per head; chunked prefill with chunks of 64 adds the intra-chunk
    /// products: 6·dk·dv + 64·(5·dk + 3·dv)), reading and writing each sequence's state once per step.
    private func linearOperators(_ a: LinearAttention, count: Int, step: StepShape,
                                 matmul: (String, Int, Int, Double, Int, Operator.Kind, Double?) -> Operator) -> [Operator] {
        let t = Double(step.tokens), s = Double(step.sequences), h = hiddenSize
        var ops: [Operator] = []
        let dk = Double(a.keyHeadDim), dv = Double(a.valueHeadDim), heads = Double(a.valueHeads)
        switch a.kind {
        case .gatedDeltaNet:
            let key = a.keyHeads * a.keyHeadDim, value = a.valueHeads * a.valueHeadDim
            ops.append(matmul("linear attention in-projections (qkv, z, b, a)", 2 * key + 2 * value + 2 * a.valueHeads, h,
                              t, count, .matmul, nil))
            ops.append(rowParallel(matmul("linear attention output projection", h, value, t, count, .matmul, nil)))
        case .kimiDelta:
            let p = a.valueHeads * a.valueHeadDim, d = a.keyHeadDim
            ops.append(matmul("KDA in-projections (q, k, v, b, gates)", 3 * p + a.valueHeads + d + (a.fullRankOutputGate ? p : d), h,
                              t, count, .matmul, nil))
            ops.append(matmul("KDA gate up-projections", p * (a.fullRankOutputGate ? 1 : 2), d, t, count, .matmul, nil))
            ops.append(rowParallel(matmul("KDA output projection", h, p, t, count, .matmul, nil)))
        }
        let perToken = step.phase == .decode ? 7 * dk * dv : 6 * dk * dv + 64 * (5 * dk + 3 * dv)
        let conv = 2 * Double(a.convChannels * a.convKernel)
        ops.append(Operator(name: "linear attention recurrence (state update and read-out)", kind: .attention, layers: count,
                            flops: t * (heads * perToken + conv), weightBytes: 0,
                            activationBytes: 2 * t * Double(a.convChannels + a.valueHeads * a.valueHeadDim),
                            kvBytes: 2 * s * Double(a.bytesPerSequence), cacheSplit: .heads))
        return ops
    }

    private func moeOperators(
        _ moe: MixtureOfExperts, count: Int, step: StepShape, options: CostOptions,
        matmul: (String, Int, Int, Double, Int, Operator.Kind, Double?) -> Operator
    ) -> [Operator] {
        let t = Double(step.tokens), e = moe.routedExperts, k = Double(moe.expertsPerToken)
        let size = moe.expertIntermediateSize, hidden = hiddenSize
        // LatentMoE (Kimi K3): the experts read and write the narrower latent width, between one
        // down-projection before dispatch and one up-projection after the combine.
        let h = moe.expertWidth(hidden: hidden)
        var ops: [Operator] = []
        // Every attention rank routes its own tokens with the whole (small) router.
        ops.append(replicated(matmul("router", e, hidden, t, count, .matmul, Double(options.weights.unquantized.bytes(rows: e, cols: hidden)))))
        if let latent = moe.latentSize {
            ops.append(matmul("LatentMoE down-projection", latent, hidden, t, count, .matmul, nil))
            ops.append(matmul("LatentMoE up-projection", hidden, latent, t, count, .matmul, nil))
        }
        // ... and picks their experts whole on every rank, like the router.
        ops.append(replicated(Operator(name: "top-k selection", kind: .routing, layers: count, flops: 4 * t * Double(e),
                                       weightBytes: 0, activationBytes: 2 * t * Double(e), kvBytes: 0)))
        let touched = ExpertLoad.expectedDistinctExperts(experts: e, perToken: moe.expertsPerToken,
                                                         tokens: step.tokens, skew: options.expertSkew)
        let expertBytes = Double(bytesPerExpert(options.weights))
        let routedFLOPs = 2 * t * k * 3 * Double(h) * Double(size)
        // Grouped GEMMs read tokens in expert order: each token's k copies are gathered into that
        // order before the experts and scattered back, weighted, after (vLLM's and SGLang's
        // moe_align/permute and unpermute kernels, DeepEP's receive layout): every copy written
        // and read once more, in bf16.
        ops.append(Operator(name: "expert token permutation", kind: .expertPermutation, layers: count, flops: 2 * t * k * Double(h),
                            weightBytes: 0, activationBytes: 2 * 2 * t * (k * Double(h) + Double(h)), kvBytes: 0))
        var grouped = Operator(name: "routed experts (grouped gate+up+down)", kind: .groupedMatmul, layers: count,
                               flops: routedFLOPs + 5 * t * k * Double(size), weightBytes: touched * expertBytes,
                               activationBytes: 2 * t * k * Double(2 * h + 4 * size), kvBytes: 0)
        grouped.intermediateActivationBytes = 2 * t * k * Double(4 * size)
        // The gate+up input is quantized once per token, before the dispatch or the gather
        // (DeepEP sends FP8; fused_moe and TensorRT-LLM quantize the hidden state, then gather
        // rows), whole on every rank of a tensor-parallel group; the down input once per copy,
        // each rank its share.
        grouped.wholeQuantizedInputs = t * Double(h)
        grouped.quantizedInputs = t * k * Double(size)
        ops.append(grouped)
        if moe.sharedIntermediateSize > 0 {
            ops.append(matmul("shared expert gate+up", 2 * moe.sharedIntermediateSize, hidden, t, count, .matmul, nil))
            ops.append(rowParallel(matmul("shared expert down", hidden, moe.sharedIntermediateSize, t, count, .matmul, nil)))
        }
        return ops
    }
}

/// Sums of an operator list.
public struct StepCost: Sendable, Equatable {
    public var flops: Double
    public var weightBytes: Double
    public var activationBytes: Double
    public var kvBytes: Double

    public init(_ operators: [Operator]) {
        flops = operators.reduce(0) { $0 + $1.totalFLOPs }
        weightBytes = operators.reduce(0) { $0 + $1.weightBytes * Double($1.layers) }
        activationBytes = operators.reduce(0) { $0 + $1.activationBytes * Double($1.layers) }
        kvBytes = operators.reduce(0) { $0 + $1.kvBytes * Double($1.layers) }
    }

    public var bytes: Double { weightBytes + activationBytes + kvBytes }
}

/// An operator every tensor-parallel rank runs whole (replicated weights: MLA's and DeepSeek-V4's
/// down-projections, the router, the sparse indexer).
private func replicated(_ op: Operator) -> Operator {
    var op = op
    op.computeSplit = .replicated
    return op
}

extension ModelSpec {
    /// An attention output projection among the operators (the step's counterpart of
    /// `WeightTensor.isAttentionOutput`; DeepSeek-V4's grouped down-projection is built apart).
    static func isAttentionOutput(_ operatorName: String) -> Bool {
        operatorName.hasSuffix("output projection") || operatorName == "V4 output up-projection"
    }
}

/// A row-parallel GEMM (output projections, the MLP's down projection): each tensor-parallel rank
/// holds its share of the input, so it quantizes only that share.
private func rowParallel(_ op: Operator) -> Operator {
    var op = op
    op.quantizedInputs += op.wholeQuantizedInputs
    op.wholeQuantizedInputs = 0
    return op
}
