import Estimator
import Foundation
import ModelSpec
import Planner

/// Step times of one worker (an engine instance of `gpus` GPUs cut by the pricer's layout), for
/// the batches a simulation builds, cached by shape.
///
/// Shapes are rounded before pricing, so that a few hundred distinct prices serve a simulation of
/// thousands of steps: counts above 32 to 1/32 of their power of two (within 1.6%), contexts to a
/// geometric grid of ratio 2^(1/16) = 1.044 (within 2.2%). Step time is smooth in each of them
/// (weights read once plus terms linear in tokens and context), so the rounding moves a step by
/// about as much.
final class StepCache {
    let pricer: StepPricer
    /// Attention groups of the worker per pipeline stage (data-parallel ranks, or 1 for a
    /// tensor-parallel engine) and the GPUs of one group.
    let groups: Int
    let groupGPUs: Double
    let speculative: SpeculativeDecoding?
    let gpusPerWorker: Int
    /// Prompt tokens one attention group takes into one micro-batch (the worker's token budget
    /// per group; nil: unbounded).
    let microBatchTokens: Int?
    private var cache: [Key: Priced] = [:]
    private var lastKey: Key? = nil
    private var lastValue = 0.0
    /// Board power per GPU of the worker during the step `seconds` last priced (0 without a
    /// power spec): every GPU of the worker is taken to draw what its busiest GPU draws.
    private(set) var lastWatts = 0.0
    private var lastDecode = -1
    private var lastDecodeOnly = false
    private var lastContextRange: Range<Double> = 0..<0

    struct Priced { var seconds: Double, watts: Double }

    struct Key: Hashable {
        var decode: Int, decodeContext: Int, prefillTokens: Int, prefillSequences: Int, prefillContext: Int
    }

    init(pricer: StepPricer, gpusPerWorker: Int, speculative: SpeculativeDecoding?, microBatchTokens: Int? = nil) {
        self.pricer = pricer
        self.microBatchTokens = microBatchTokens
        let layout = pricer.layout
        groupGPUs = Double(layout.attentionGroup)
        groups = max(1, gpusPerWorker / (layout.attentionGroup * layout.pp))
        self.speculative = speculative
        self.gpusPerWorker = gpusPerWorker
    }

    /// Seconds of one scheduler step of the whole worker: `decode` sequences at mean context
    /// `decodeContext` each verify 1 + drafts tokens, and `prefillTokens` new prompt tokens of
    /// `prefillSequences` prompts at mean context `prefillContext` are prefilled. With pp stages
    /// every sequence passes all stages in one step (pp stage times). Sequences spread over the
    /// worker's attention groups as evenly as they can, and the step goes at the pace of the
    /// busiest group: ⌈n / groups⌉ sequences (a prompt is never split across groups).
    func seconds(decode: Int, decodeContext: Double, prefillTokens: Int, prefillSequences: Int, prefillContext: Double) -> Double {
        // Fast path: a decode-only step of the last step's batch whose context stays inside the
        // last context bucket has the last price (no logarithm, no hash).
        if prefillTokens == 0, lastDecodeOnly, decode == lastDecode, decodeContext >= lastContextRange.lowerBound,
           decodeContext < lastContextRange.upperBound {
            return lastValue
        }
        let key = Key(decode: Self.round(decode), decodeContext: Self.bucket(decodeContext),
                      prefillTokens: Self.round(prefillTokens), prefillSequences: Self.round(prefillSequences),
                      prefillContext: Self.bucket(prefillContext))
        // Consecutive decode steps mostly repeat a shape: skip the hash for those.
        if key == lastKey { return lastValue }
        let priced: Priced
        if let hit = cache[key] {
            priced = hit
        } else {
            priced = price(key)
            cache[key] = priced
        }
        let value = priced.seconds
        lastKey = key
        lastValue = value
        lastWatts = priced.watts
        lastDecode = decode
        lastDecodeOnly = prefillTokens == 0
        // The contexts that round to this bucket: 2^((b − ½)/16) ≤ c < 2^((b + ½)/16).
        let b = Double(key.decodeContext)
        lastContextRange = key.decodeContext < 0 ? 0..<1 : pow(2, (b - 0.5) / 16)..<pow(2, (b + 0.5) / 16)
        return value
    }

    private func price(_ key: Key) -> Priced {
        let pp = Double(pricer.layout.pp)
        var parts: [StepShapeOnGPU] = []
        let drafts = speculative?.draftTokens ?? 0
        // One pipeline stage holds a micro-batch of 1/pp of the worker's sequences.
        func perGPU(_ n: Int) -> Double { (Double(n) / pp / Double(groups)).rounded(.up) / groupGPUs }
        func meanPerGPU(_ n: Int) -> Double { Double(n) / pp / Double(groups) / groupGPUs }
        if key.decode > 0 {
            parts.append(StepShapeOnGPU(phase: .decode, sequencesPerGPU: perGPU(key.decode),
                                        newTokens: 1 + drafts, context: Self.value(key.decodeContext),
                                        meanSequencesPerGPU: meanPerGPU(key.decode)))
        }
        if key.prefillTokens > 0, key.prefillSequences > 0 {
            var perSequence = max(1, Int((Double(key.prefillTokens) / Double(key.prefillSequences)).rounded()))
            // The busiest micro-batch of a group holds ⌈n / (pp · groups)⌉ chunks, and never more
            // tokens than its budget (each micro-batch is formed within its own): chunks of mean
            // size could overshoot it when they do not divide evenly over the micro-batches. A
            // chunk past the budget (a prompt run whole) stays whole.
            let busiest = (Double(key.prefillSequences) / pp / Double(groups)).rounded(.up)
            if let budget = microBatchTokens, busiest * Double(perSequence) > Double(max(budget, perSequence)) {
                perSequence = max(1, Int(Double(max(budget, perSequence)) / busiest))
            }
            parts.append(StepShapeOnGPU(phase: .prefill, sequencesPerGPU: perGPU(key.prefillSequences),
                                        newTokens: perSequence, context: Self.value(key.prefillContext),
                                        meanSequencesPerGPU: meanPerGPU(key.prefillSequences)))
        }
        guard !parts.isEmpty else { return Priced(seconds: 0, watts: 0) }
        let stage = pricer.stageTime(parts)
        var seconds = pp * stage.total
        if drafts > 0, key.decode > 0 {
            // Every micro-batch drafts, on the last stage (the one that holds the MTP module),
            // which the step then waits for once per micro-batch.
            seconds += pp * Double(drafts) * draftPass(sequencesPerGPU: perGPU(key.decode), context: Self.value(key.decodeContext))
        }
        // Draft passes are decode-like layers of the same batch: priced at the step's power.
        return Priced(seconds: seconds, watts: pricer.cluster.gpu.power.map { PowerModel.gpuWatts(stage, $0) } ?? 0)
    }

    /// One MTP draft pass over the decoding sequences: one more transformer layer (DeepSeek's MTP
    /// module is one MoE layer; priced as the mean layer of the main model at this batch) and the
    /// shared output head, once (not once per pipeline stage).
    private func draftPass(sequencesPerGPU: Double, context: Int) -> Double {
        let one = pricer.stageTime([StepShapeOnGPU(phase: .decode, sequencesPerGPU: sequencesPerGPU, newTokens: 1, context: context)])
        let pp = Double(pricer.layout.pp)
        // With pp > 1 a stage's step carries 1/pp of the head and embedding (see stepTime).
        let head = (one.blocks[.head] ?? 0) * pp, embedding = (one.blocks[.embedding] ?? 0) * pp
        let layersPerStage = Double(max(pricer.model.layerCount, 1)) / pp
        return max(0, one.total - head / pp - embedding / pp) / layersPerStage + head
    }

    /// Counts up to 32 exactly, larger ones to 1/32 of their power of two.
    static func round(_ n: Int) -> Int {
        guard n > 32 else { return max(n, 0) }
        let step = 1 << max(0, (Int.bitWidth - n.leadingZeroBitCount) - 6)
        return (n + step / 2) / step * step
    }

    /// Contexts on a geometric grid of ratio 2^(1/16) (1/16 of an octave).
    static func bucket(_ context: Double) -> Int {
        context.isFinite && context >= 1 ? Int((log2(min(context, 1e15)) * 16).rounded()) : -1
    }

    static func value(_ bucket: Int) -> Int {
        bucket < 0 ? 0 : Int(pow(2, Double(bucket) / 16).rounded())
    }
}
