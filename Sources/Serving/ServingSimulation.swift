import Foundation

/// A step-by-step simulation of continuous batching on one or more workers, driven by a closed
/// loop (N requests in flight, each replaced when it finishes) or an open loop (arrivals at
/// their own times).
///
/// Each worker (`ServingWorker`, an engine instance) runs steps back to back while it has work. A
/// step decodes one position (1 + drafts with MTP) of every running sequence and, within the
/// token budget, chunks of the admitted prompts (`SchedulerPolicy`); its time comes from the
/// estimator's step model (`StepCache`). Memory is a pool of KV tokens per worker: admission
/// reserves a prompt's tokens, decoding grows them, resident prefixes hold theirs once; when
/// decoding would overflow the pool, unpinned prefixes are evicted, then the newest decoders are
/// preempted and recomputed later (vLLM's recompute preemption). With disaggregation, prompts run
/// on prefill workers and their KV cache reaches a decode worker after the transfer time.
///
/// A step's work is counts and sums over the batch, plus a loop over the prompts being prefilled
/// (a few), so a simulation costs O(steps + requests); memory holds only the requests in flight.
struct ServingSimulation {
    struct Request {
        var arrival = 0.0
        var promptTokens = 0
        var outputTokens = 0
        var prefixID = -1
        var prefixTokens = 0
        /// Prompt tokens served by the prefix cache this time, and tokens to compute.
        var cached = 0
        var compute = 0
        var prefilled = 0
        var reserved = 0.0
        /// Tokens emitted so far (the first comes with the prefill).
        var generated = 0
        var firstToken = -1.0
        /// When the prefill server answered the router, where the router holds the decode
        /// server's tokens until then (`Options.firstTokenWaitsForPrefillResponse`; −1: no such
        /// wait). It is the KV transfer's landing while the prefill worker's `openResponses`
        /// holds it, until `closeResponses` finds the worker busy then.
        var prefillResponse = -1.0
        var joinIndex = 0
        var decodeSteps = 0
        var joinContext = 0.0
        /// Prefix tokens this request shares with the cache while it decodes.
        var shared = 0.0
        /// The worker whose prefix cache this request pins, or −1.
        var pinnedAt = -1
        /// Bumped when the request leaves a decode batch (done or preempted): stale entries of
        /// `finishing` and `decoders` are skipped.
        var generation = 0
        /// A placeholder of the closed loop's seeded steady state, begun before time 0 (its
        /// arrival and first token are not real): never measured.
        var seeded = false
    }

    enum Mode {
        case closed(count: Int, lengths: RequestLengths)
        case open(ArrivalSource)
    }

    struct Options {
        var tokensPerStep: Double = 1
        var verifiedPerStep = 1
        var policy: SchedulerPolicy = .mixed
        /// Prefill-first only: decode steps run in runs of this many before the scheduler looks
        /// for new prompts (SGLang's `--num-continuous-decode-steps`, default 1).
        var continuousDecodeSteps = 1
        /// Prefill-first only: decode steps between reads of new requests (SGLang's
        /// `--scheduler-recv-interval`; see `ServingRequest.schedulerRecvInterval`).
        var recvInterval = 1
        /// Prompts split into chunks within the budget (the engines' default), or run whole.
        var chunkedPrefill = true
        /// Up to pp chunks of one prompt in a step of a pipeline-parallel worker
        /// (`ServingRequest.pipelinedPromptChunks`).
        var pipelinedPromptChunks = false
        /// The engine forms step n + 1 when step n starts (see `ServingRequest.overlapSchedule`).
        var overlapSchedule = true
        /// Disaggregated: the client's tokens wait for the prefill server's response, which
        /// completes when the prefill worker's loop sees the KV transfer done (see
        /// `PrefillDecodeRouter.sglang`).
        var firstTokenWaitsForPrefillResponse = false
        var slo: (ttft: Double, tpot: Double)? = nil
        /// Points of the time series to keep (0: none), first sampled every `sampleInterval`
        /// seconds (1 s when not given).
        var seriesPoints = 0
        var sampleInterval: Double? = nil
        /// Closed loop: measured completions to collect after the warm-up.
        var measuredTarget = 64
        /// Closed loop only: run a benchmark client's N prompts from an empty system (see
        /// `ServingRequest.benchmarkPrompts`) instead of measuring a steady state.
        var benchmarkPrompts: Int? = nil
        var maxSteps = 50_000_000
        var progress: ((Int, Double) -> Void)? = nil
    }


    struct Outcome {
        var ttft = LatencyHistogram(), tpot = LatencyHistogram(), e2e = LatencyHistogram()
        var windowStart = 0.0, windowEnd = 0.0
        var outputTokens = 0.0, inputTokens = 0.0
        var completions = 0
        var windowCompletions = 0
        var goodCompletions = 0
        var measured = 0
        var decodeSequenceSeconds = 0.0
        var steps = 0
        var preemptions = 0
        var promptTokens = 0.0, cachedTokens = 0.0
        var kvUtilizationSeconds = 0.0, busySeconds = 0.0, kvUtilizationMax = 0.0
        /// GPU board energy of the steps in the window (J) and the GPU-seconds they took; idle
        /// GPU time is the window's GPU-seconds less these.
        var stepJoules = 0.0, busyGPUSeconds = 0.0
        /// GPUs of the simulated workers.
        var gpus = 0
        var series: [ServingSeriesPoint] = []

        var windowSeconds: Double { max(windowEnd - windowStart, 0) }
    }

    enum Failure: Error { case stalled(String) }

    /// Requests in flight past which an open loop is declared overloaded.
    static let maxInSystem = 2_000_000

    var requests: [Request] = []
    var free: [Int] = []
    var workers: [ServingWorker]
    let entry: [Int]
    let exit: [Int]
    let transferSeconds: (Int) -> Double
    var mode: Mode
    let options: Options
    var outcome = Outcome()
    var warmUpEnd: Double? = nil
    /// Seeded placeholders still in flight: a closed loop's warm-up lasts until none is left.
    var seededLeft = 0
    var inSystem = 0
    var nextArrival: Arrival? = nil
    var nextSample = 0.0
    var interval = 0.0
    var injected = 0
    /// Closed-loop benchmark: prompts sent so far.
    var issued = 0
    /// The prompt chunks of the step being built, reused from step to step (no allocation).
    private var chunks: [(slot: Int, tokens: Int, parts: Int)] = []

    init(workers: [ServingWorker], entry: [Int], exit: [Int], transferSeconds: @escaping (Int) -> Double, mode: Mode,
         options: Options) {
        self.workers = workers
        self.entry = entry
        self.exit = exit
        self.transferSeconds = transferSeconds
        self.mode = mode
        self.options = options
    }

    var a: Double { options.tokensPerStep }
    /// KV tokens of slack in comparisons (sums of fractional MTP tokens drift by far less).
    let tolerance = 1e-6

    // MARK: the loop

    mutating func run() throws -> Outcome {
        switch mode {
        case let .closed(count, _):
            requests = Array(repeating: Request(), count: count)
            if options.benchmarkPrompts != nil { startBenchmark() } else { seedSteadyState() }
        case .open:
            warmUpEnd = 0
            nextArrival = try pull()
        }
        while !finished {
            guard outcome.steps < options.maxSteps else {
                throw Failure.stalled("the simulation did not finish within \(options.maxSteps) steps")
            }
            var pick: Int? = nil
            var start = Double.infinity
            for (i, w) in workers.enumerated() { if let s = w.nextStart, s < start { start = s; pick = i } }
            if let arrival = nextArrival, arrival.time <= start {
                try inject(arrival)
                continue
            }
            guard let index = pick else { throw Failure.stalled("no worker has work and no request is on its way") }
            sample(until: start)
            try step(workers[index], index: index, at: start)
        }
        outcome.windowStart = warmUpEnd ?? 0
        outcome.gpus = workers.reduce(0) { $0 + $1.steps.gpusPerWorker }
        return outcome
    }

    var finished: Bool {
        switch mode {
        case .closed: options.benchmarkPrompts.map { outcome.completions >= $0 } ?? (outcome.measured >= options.measuredTarget)
        case .open: nextArrival == nil && inSystem == 0
        }
    }

    private mutating func pull() throws -> Arrival? {
        guard case var .open(source) = mode else { return nil }
        let arrival = try source.next()
        mode = .open(source)
        return arrival
    }

    private mutating func inject(_ arrival: Arrival) throws {
        let slot = free.popLast() ?? { requests.append(Request()); return requests.count - 1 }()
        let generation = requests[slot].generation + 1
        requests[slot] = Request(arrival: arrival.time, promptTokens: arrival.promptTokens, outputTokens: arrival.outputTokens,
                                 prefixID: arrival.prefixID ?? -1, prefixTokens: arrival.prefixTokens, generation: generation)
        inSystem += 1
        // A load the deployment cannot keep up with queues without end: say so rather than
        // fill the memory (each request in the system costs about a hundred bytes).
        guard inSystem <= ServingSimulation.maxInSystem else {
            throw Failure.stalled("overloaded: more than \(ServingSimulation.maxInSystem) requests in the system at "
                + "t = \(arrival.time) s; this deployment cannot keep up with the arrivals (lower the rate or add GPUs)")
        }
        workers[route(requests[slot])].enqueue(slot, ready: arrival.time)
        nextArrival = try pull()
        injected += 1
        if let progress = options.progress, injected % 16_384 == 0 { progress(injected, arrival.time) }
    }

    /// Requests with a shared prefix go to the worker that serves that prefix (cache-aware
    /// routing, as SGLang's router and Dynamo's KV router do) unless it is far busier than the
    /// least loaded; others to the least loaded.
    private func route(_ r: Request) -> Int {
        let least = leastLoaded(entry)
        guard r.prefixID >= 0 else { return least }
        let home = entry[r.prefixID % entry.count]
        return workers[home].load > 2 * workers[least].load + 8 ? least : home
    }

    private func leastLoaded(_ candidates: [Int]) -> Int {
        var best = candidates[0]
        for i in candidates where workers[i].load < workers[best].load { best = i }
        return best
    }

    // MARK: one step

    private mutating func step(_ w: ServingWorker, index: Int, at start: Double) throws {
        w.clock = start
        // Within a run of continuous decode steps the scheduler does not schedule new prompts;
        // between two reads of new requests (the receive interval) it schedules only those it
        // read last time. Both counts run on the decode steps since the last prefill step.
        let decodingOnly = options.policy == .prefillFirst && w.role == .both && w.decoding > 0 && w.prefilling.isEmpty
        let holding = decodingOnly && w.decodeStreak % max(options.continuousDecodeSteps, 1) != 0
        if !holding {
            // An overlap scheduler formed this step when the previous one started, if it ran
            // straight into this one: requests that came later wait a step. An engine with
            // nothing formed takes them at once.
            let formedAhead = options.overlapSchedule && w.lastStepEnd == start
            var cutoff = formedAhead ? w.lastStepStart : start
            if decodingOnly, w.decodeStreak % max(options.recvInterval, 1) != 0 {
                cutoff = min(cutoff, w.lastRead)
            } else {
                w.lastRead = cutoff
            }
            try admit(w, index: index, cutoff: cutoff)
            if formedAhead, w.decoding == 0, w.prefilling.isEmpty {
                w.lastRead = start
                try admit(w, index: index, cutoff: start)
            }
        }
        w.lastStepStart = start
        let prefillOnly = options.policy == .prefillFirst && w.role == .both && !w.prefilling.isEmpty
        if w.role != .prefill && !prefillOnly { makeRoom(w, index: index) }
        let decoding = w.role == .prefill || prefillOnly ? 0 : w.decoding
        chunks.removeAll(keepingCapacity: true)
        // Prompt tokens, micro-batches they fill (a chunk each) and the sum of the chunks' contexts.
        var prefillTokens = 0, prefillChunks = 0, prefillContext = 0.0
        if w.role != .decode {
            var left = prefillOnly || w.role == .prefill ? w.budget : w.budget - decoding * options.verifiedPerStep
            // Chunks one prompt may give to this step: one per pipeline micro-batch where the
            // engine pipelines a prompt's chunks, else one.
            let perPrompt = options.chunkedPrefill && options.pipelinedPromptChunks ? w.steps.pricer.layout.pp : 1
            for slot in w.prefilling where left > 0 {
                let r = requests[slot]
                let rest = r.compute - r.prefilled
                // Without chunked prefill a prompt runs whole, in arrival order: it joins a step
                // with room for all of it, or has the next step to itself (past the budget).
                if !options.chunkedPrefill, rest > left, !chunks.isEmpty { break }
                var given = 0, parts = 0
                while given < rest, left > 0, parts < perPrompt {
                    let chunk = options.chunkedPrefill ? min(rest - given, left, w.groupBudget) : rest
                    prefillContext += Double(r.cached + r.prefilled + given)
                    given += chunk
                    left -= chunk
                    parts += 1
                }
                guard given > 0 else { continue }
                chunks.append((slot, given, parts))
                prefillTokens += given
                prefillChunks += parts
            }
        }
        // A decode worker whose admissions all ended at admission (answers the prefill's token
        // completed) has no step to run.
        if decoding == 0, chunks.isEmpty, w.role == .decode {
            w.clock = start
            outcome.windowEnd = max(outcome.windowEnd, start)
            return
        }
        let seconds = w.steps.seconds(decode: decoding, decodeContext: decoding > 0 ? w.decodeContextSum / Double(decoding) : 0,
                                      prefillTokens: prefillTokens, prefillSequences: prefillChunks,
                                      prefillContext: prefillChunks == 0 ? 0 : prefillContext / Double(prefillChunks))
        guard seconds > 0, seconds.isFinite else {
            throw Failure.stalled("a step of \(decoding) decodes and \(prefillTokens) prompt tokens was priced at \(seconds) s")
        }
        let end = start + seconds
        if !w.openResponses.isEmpty { closeResponses(w, stepStart: start, stepEnd: end) }
        outcome.steps += 1
        w.busySeconds += seconds
        w.decodeStreak = chunks.isEmpty && decoding > 0 ? w.decodeStreak + 1 : 0
        let utilization = w.kvCapacity > 0 ? w.kvUsed / w.kvCapacity : 0
        let inWindow = warmUpEnd.map { end > $0 } ?? false
        // Only the part of a step inside the window counts (the first may straddle its start).
        let counted = inWindow ? end - max(start, warmUpEnd ?? start) : 0
        if inWindow {
            outcome.kvUtilizationSeconds += utilization * counted
            outcome.busySeconds += counted
            let gpus = Double(w.steps.gpusPerWorker)
            outcome.stepJoules += w.steps.lastWatts * gpus * counted
            outcome.busyGPUSeconds += gpus * counted
            outcome.kvUtilizationMax = max(outcome.kvUtilizationMax, utilization)
        }
        if decoding > 0 {
            w.decodeContextSum += Double(decoding) * a
            if inWindow {
                outcome.outputTokens += Double(decoding) * a
                outcome.decodeSequenceSeconds += Double(decoding) * counted
            }
            let due = w.finishing.removeValue(forKey: w.decodeIndex) ?? []
            w.decodeIndex += 1
            for (slot, generation) in due where requests[slot].generation == generation {
                let r = requests[slot]
                leaveDecode(slot, worker: w, steps: r.decodeSteps)
                // The last step emits only the tokens the answer still needs.
                if inWindow { outcome.outputTokens -= Double(r.decodeSteps) * a - Double(r.outputTokens - r.generated) }
                requests[slot].generated = r.outputTokens
                complete(slot, at: end, inWindow: inWindow)
            }
        }
        var anyDone = false
        // Served input counts each prompt once, as a benchmark client does: a prompt recomputed
        // after a preemption (its first token already out) is work, not input.
        for (slot, tokens, _) in chunks {
            requests[slot].prefilled += tokens
            if inWindow, requests[slot].firstToken < 0 { outcome.inputTokens += Double(tokens) }
            if requests[slot].prefilled >= requests[slot].compute { anyDone = true }
        }
        if anyDone { w.prefilling.removeAll { requests[$0].prefilled >= requests[$0].compute } }
        for (slot, _, parts) in chunks where requests[slot].prefilled >= requests[slot].compute {
            // A prompt whose last k chunks were pipelined through this step's pp micro-batches
            // leaves the last stage k − 1 stage times after the step's end: its last chunk
            // entered the first stage that much after its first (the pipeline's drain).
            let done = parts > 1 ? end + Double(parts - 1) * seconds / Double(w.steps.pricer.layout.pp) : end
            w.prefillReserved -= requests[slot].reserved
            requests[slot].reserved = 0
            if inWindow, requests[slot].firstToken < 0 { outcome.inputTokens += Double(requests[slot].cached) }
            shareComputedPrefix(slot, worker: w, index: index)
            if w.role == .prefill {
                // The KV cache moves to a decode worker; the prefix stays resident here.
                unpin(slot)
                let target = leastLoaded(exit)
                let ready = done + transferSeconds(requests[slot].promptTokens + requests[slot].generated)
                if options.firstTokenWaitsForPrefillResponse, requests[slot].firstToken < 0 {
                    requests[slot].prefillResponse = ready
                    w.openResponses.append((slot, ready))
                }
                // The client sees this token when a decode worker takes the request in: the decode
                // engine streams the answer, the prefill's token first (Dynamo's prefill router
                // keeps only the prefill's KV parameters and streams the decode worker's output),
                // so a wait for a decode slot counts in the time to first token.
                emitPrefillToken(slot, at: nil, inWindow: inWindow)
                workers[target].enqueue(slot, ready: ready)
            } else {
                emitPrefillToken(slot, at: done, inWindow: inWindow)
                if requests[slot].generated >= requests[slot].outputTokens {
                    complete(slot, at: done, inWindow: inWindow)
                } else {
                    join(slot, worker: w)
                }
            }
        }
        w.clock = end
        w.lastStepEnd = end
        outcome.windowEnd = max(outcome.windowEnd, end)
    }

    /// A prefill server answers the router when its loop, once per iteration after the step it
    /// ran, polls a request's KV transfer as done (SGLang's `process_disagg_prefill_inflight_queue`
    /// after `process_batch_result`, which waits for the step's forward). A loop that started its
    /// next step the moment the transfer began polls again only when that step ends; a loop idle
    /// in between polls until the transfer lands.
    /// Called when the worker's next step is priced, before `lastStepEnd` moves to its end. An
    /// entry whose request's `prefillResponse` no longer is its landing belongs to a request that
    /// finished (another one holds the slot) and is dropped; one whose transfer lands after this
    /// step waits for a later one; the rest close and leave the list.
    private mutating func closeResponses(_ w: ServingWorker, stepStart: Double, stepEnd: Double) {
        let idleBefore = stepStart > w.lastStepEnd
        var kept = 0
        for (slot, landed) in w.openResponses where requests[slot].prefillResponse == landed {
            if idleBefore, landed <= stepStart {
                continue  // the idle loop saw it land: the response is the landing
            } else if landed <= stepEnd {
                requests[slot].prefillResponse = stepEnd
            } else {
                w.openResponses[kept] = (slot, landed)
                kept += 1
            }
        }
        w.openResponses.removeLast(w.openResponses.count - kept)
    }

    /// The token a finished prefill produces: the first of the answer (or, after a preemption,
    /// the next one: recomputing prompt and answer so far yields it).
    /// `time` nil: the client sees it later, when a decode worker admits the request.
    private mutating func emitPrefillToken(_ slot: Int, at time: Double?, inWindow: Bool) {
        if let time, requests[slot].firstToken < 0 { requests[slot].firstToken = time }
        requests[slot].generated += 1
        if inWindow { outcome.outputTokens += 1 }
    }

    // MARK: memory

    /// Admits ready requests while the engine's cap and the KV pool allow, oldest first.
    private mutating func admit(_ w: ServingWorker, index: Int, cutoff: Double) throws {
        while w.waitingHead < w.waiting.count, w.waiting[w.waitingHead].ready <= cutoff, w.running < w.maxRunning {
            let slot = w.waiting[w.waitingHead].slot
            var r = requests[slot]
            var cached = 0
            if w.role != .decode {
                if r.prefixID >= 0, r.pinnedAt < 0 {
                    let resident = w.prefixCache.acquire(r.prefixID)
                    if resident > 0 { r.pinnedAt = index }
                    cached = min(resident, r.prefixTokens, r.promptTokens - 1)
                    r.shared = Double(max(cached, 0))
                } else if case let .closed(_, lengths) = mode {
                    cached = r.promptTokens - lengths.newTokens(r.promptTokens)
                }
            }
            let context = r.promptTokens + r.generated
            let need = Double(w.role == .decode ? context : context - (r.pinnedAt == index ? cached : 0))
            // Room for the prompt and for every decoder's next tokens (this one's included), so
            // that an admission never forces a preemption on the same step.
            let headroom = need + Double(w.decoding + 1) * a
            if w.kvUsed + headroom > w.kvCapacity + tolerance, need <= w.kvCapacity {
                _ = w.prefixCache.evict(atLeast: Int((w.kvUsed + headroom - w.kvCapacity).rounded(.up)))
            }
            guard w.kvUsed + headroom <= w.kvCapacity + tolerance else {
                if r.pinnedAt == index { w.prefixCache.release(r.prefixID); r.pinnedAt = -1; r.shared = 0 }
                requests[slot] = r
                if w.running == 0 {
                    throw Failure.stalled("a request of \(context) tokens needs more KV cache than one worker holds "
                        + "(\(Int(w.kvCapacity)) tokens)")
                }
                break
            }
            w.waitingHead += 1
            if w.role == .decode {
                if r.firstToken < 0 { r.firstToken = w.clock }
                requests[slot] = r
                // An answer the prefill's token completed (a one-token answer, or the last token
                // recomputed after a preemption) ends at admission, as SGLang's prebuilt batch
                // finishes it, without a decode step.
                if r.generated >= r.outputTokens {
                    complete(slot, at: w.clock, inWindow: warmUpEnd.map { w.clock > $0 } ?? false)
                } else {
                    join(slot, worker: w)
                }
                continue
            }
            r.cached = cached
            r.compute = context - cached
            r.prefilled = 0
            r.reserved = need
            if requests[slot].firstToken < 0 {
                outcome.promptTokens += Double(r.promptTokens)
                outcome.cachedTokens += Double(cached)
            }
            requests[slot] = r
            w.prefillReserved += need
            w.prefilling.append(slot)
        }
        w.compactQueue()
    }

    /// A prompt that computed its shared prefix leaves it in the cache, where it and later
    /// prompts share it.
    private mutating func shareComputedPrefix(_ slot: Int, worker w: ServingWorker, index: Int) {
        let r = requests[slot]
        guard r.prefixID >= 0, r.prefixTokens > 0, r.pinnedAt < 0 else { return }
        let resident = w.prefixCache.insert(r.prefixID, tokens: min(r.prefixTokens, r.promptTokens))
        requests[slot].pinnedAt = index
        requests[slot].shared = Double(min(resident, r.prefixTokens, r.promptTokens))
    }

    private mutating func unpin(_ slot: Int) {
        let r = requests[slot]
        if r.pinnedAt >= 0, r.prefixID >= 0 { workers[r.pinnedAt].prefixCache.release(r.prefixID) }
        requests[slot].pinnedAt = -1
        requests[slot].shared = 0
    }

    /// Before a decode step: room for every decoder's next tokens, by evicting unpinned
    /// prefixes, then by preempting the newest decoders.
    private mutating func makeRoom(_ w: ServingWorker, index: Int) {
        var overflow = w.kvUsed + Double(w.decoding) * a - w.kvCapacity
        guard overflow > tolerance else { return }
        overflow -= Double(w.prefixCache.evict(atLeast: Int(overflow.rounded(.up))))
        while overflow > 0, w.decoding > 1, let (slot, generation) = w.decoders.popLast() {
            guard requests[slot].generation == generation else { continue }
            let before = w.kvUsed
            let done = w.decodeIndex - requests[slot].joinIndex
            leaveDecode(slot, worker: w, steps: done)
            let r = requests[slot]
            requests[slot].generated = min(r.outputTokens - 1, r.generated + Int((Double(done) * a).rounded()))
            unpin(slot)
            if w.role == .decode {
                // Its KV is gone: the prompt and the answer so far are prefilled again.
                workers[route(requests[slot])].requeueFirst(slot, ready: w.clock)
            } else {
                w.requeueFirst(slot, ready: w.clock)
            }
            outcome.preemptions += 1
            overflow -= before - w.kvUsed + a
        }
    }

    private mutating func join(_ slot: Int, worker w: ServingWorker) {
        let r = requests[slot]
        let remaining = r.outputTokens - r.generated
        let steps = max(1, Int((Double(remaining) / a).rounded(.up)))
        requests[slot].decodeSteps = steps
        requests[slot].joinIndex = w.decodeIndex
        requests[slot].joinContext = Double(r.promptTokens + r.generated)
        requests[slot].shared = r.pinnedAt >= 0 ? r.shared : 0
        w.decoding += 1
        w.decodeContextSum += requests[slot].joinContext
        w.decodeShared += requests[slot].shared
        w.finishing[w.decodeIndex + steps - 1, default: []].append((slot, r.generation))
        w.decoders.append((slot, r.generation))
        // Entries of requests that left stay until compacted: keep the stack within twice the batch.
        if w.decoders.count > 2 * w.decoding + 64 {
            w.decoders.removeAll { requests[$0.slot].generation != $0.generation }
        }
    }

    /// Takes a decoder out of its batch after `steps` decode steps.
    private mutating func leaveDecode(_ slot: Int, worker w: ServingWorker, steps: Int) {
        let r = requests[slot]
        w.decoding -= 1
        w.decodeContextSum -= r.joinContext + Double(steps) * a
        w.decodeShared -= r.shared
        // Fractional MTP tokens do not cancel exactly: an empty batch holds nothing.
        if w.decoding == 0 { w.decodeContextSum = 0; w.decodeShared = 0 }
        requests[slot].generation += 1
    }

    // MARK: completion and the closed loop

    private mutating func complete(_ slot: Int, at end: Double, inWindow: Bool) {
        unpin(slot)
        let r = requests[slot]
        requests[slot].generation += 1
        outcome.completions += 1
        if r.seeded { seededLeft -= 1 }
        if inWindow { outcome.windowCompletions += 1 }
        // A router that waits for the prefill server's response streams the decode server's
        // tokens only after it (one still open belongs to a prefill worker idle since it landed).
        // Nor does the last token come before the first (a pipelined prompt's first token leaves
        // the last stage after the step that finished it).
        let last = max(end, r.prefillResponse, r.firstToken)
        // Measured: every completion after the warm-up but the seeded placeholders' (a closed
        // loop's window of completions, long requests begun before it included: counting only
        // the requests begun after it would stop at the first max(2N, 64) of those to finish, the
        // short ones); an open loop's and a benchmark replay's warm-up ends at time 0.
        if let start = warmUpEnd, !r.seeded, end > start {
            let first = max(r.firstToken, r.prefillResponse)
            let ttft = first - r.arrival, e2e = last - r.arrival
            let tpot = r.outputTokens > 1 ? (last - first) / Double(r.outputTokens - 1) : nil
            outcome.ttft.add(ttft)
            outcome.e2e.add(e2e)
            if let tpot { outcome.tpot.add(tpot) }
            outcome.measured += 1
            if let slo = options.slo, ttft <= slo.ttft, (tpot ?? 0) <= slo.tpot { outcome.goodCompletions += 1 }
        }
        switch mode {
        case let .closed(count, lengths):
            if let total = options.benchmarkPrompts {
                // The client sends its next prompt, if any is left.
                guard issued < total else { return }
                issued += 1
            }
            // The warm-up: N completions, and every seeded placeholder gone (with answers of
            // varying length the longest outlast the first N; a window they still finish in
            // would hold only the short requests begun since).
            if warmUpEnd == nil, outcome.completions >= count, seededLeft == 0 { warmUpEnd = end }
            var source = lengths
            let (prompt, output) = source.next()
            mode = .closed(count: count, lengths: source)
            requests[slot] = Request(arrival: last, promptTokens: prompt, outputTokens: output,
                                     generation: requests[slot].generation + 1)
            // The new request reaches the scheduler after the step that starts at this instant
            // has been formed: schedulers form a batch only between steps.
            workers[leastLoaded(entry)].enqueue(slot, ready: last.nextUp)
        case .open:
            inSystem -= 1
            free.append(slot)
        }
    }

    /// Starts a benchmark client's run: every one of the N requests in flight sent at time 0 to
    /// an empty system, all measured from the start.
    private mutating func startBenchmark() {
        guard case .closed(let count, var lengths) = mode, let total = options.benchmarkPrompts else { return }
        warmUpEnd = 0
        for slot in 0..<min(count, total) {
            let (prompt, output) = lengths.next()
            requests[slot] = Request(arrival: 0, promptTokens: prompt, outputTokens: output)
            workers[leastLoaded(entry)].enqueue(slot, ready: 0)
            issued += 1
        }
        mode = .closed(count: count, lengths: lengths)
    }

    /// Starts a closed loop as it runs after a while: request i of N already past i/N of its
    /// answer (a burst of N prompts at time 0 would leave every later wave arriving together,
    /// which a real client's jitter and its random prompt lengths undo). Those a decode worker
    /// cannot hold wait as new arrivals.
    private mutating func seedSteadyState() {
        guard case .closed(let count, var lengths) = mode else { return }
        let targets = workers.indices.filter { workers[$0].role != .prefill }
        for slot in 0..<count {
            let (prompt, output) = lengths.next()
            requests[slot] = Request(arrival: 0, promptTokens: prompt, outputTokens: output)
            let w = workers[leastLoaded(targets)]
            let steps = max(1, Int((Double(output - 1) / a).rounded(.up)))
            let remaining = Int((Double(steps) * Double(slot + 1) / Double(count)).rounded(.up))
            let generated = max(1, output - Int(Double(remaining) * a))
            let context = Double(prompt + generated)
            guard output > 1, generated < output, w.running < w.maxRunning, w.kvUsed + context <= w.kvCapacity else {
                workers[leastLoaded(entry)].enqueue(slot, ready: 0)
                continue
            }
            requests[slot].generated = generated
            requests[slot].firstToken = 0
            requests[slot].seeded = true
            seededLeft += 1
            join(slot, worker: w)
        }
        mode = .closed(count: count, lengths: lengths)
    }

    // MARK: the time series

    /// Samples the state at a fixed interval; when the points pass twice the target, every other
    /// one is dropped and the interval doubles, so memory stays bounded and a trace of unknown
    /// length still gets its series.
    private mutating func sample(until time: Double) {
        guard options.seriesPoints > 0 else { return }
        if interval == 0 { interval = options.sampleInterval ?? 1 }
        while nextSample <= time {
            if outcome.series.count >= 2 * options.seriesPoints {
                outcome.series = stride(from: 0, to: outcome.series.count, by: 2).map { outcome.series[$0] }
                interval *= 2
                nextSample = (outcome.series.last?.time ?? 0) + interval
                if nextSample > time { break }
            }
            var queued = 0, running = 0, used = 0.0, capacity = 0.0
            for w in workers {
                queued += w.queued
                running += w.running
                used += w.kvUsed
                capacity += w.kvCapacity
            }
            outcome.series.append(ServingSeriesPoint(time: nextSample, queued: queued, running: running,
                                              kvUtilization: capacity > 0 ? used / capacity : 0))
            nextSample += interval
        }
    }
}

/// The state of the whole deployment at one moment of an open loop.
public struct ServingSeriesPoint: Sendable {
    public var time: Double
    public var queued: Int
    public var running: Int
    /// KV tokens in use over the pools' capacity.
    public var kvUtilization: Double
}

/// Prompt and answer lengths of a closed loop, each drawn uniformly from its range with one
/// seeded generator, and the share of each prompt the prefix cache serves
/// (`--prefix-cache-hit-rate`).
struct RequestLengths {
    var random: SeededRandom
    let prompt: (lower: Int, upper: Int)
    let output: (lower: Int, upper: Int)
    let prefixHitRate: Double

    init(seed: UInt64, prompt: (lower: Int, upper: Int), output: (lower: Int, upper: Int), prefixHitRate: Double = 0) {
        random = SeededRandom(state: seed)
        self.prompt = prompt
        self.output = output
        self.prefixHitRate = prefixHitRate
    }

    mutating func next() -> (prompt: Int, output: Int) {
        let p = draw(prompt)
        return (p, draw(output))
    }

    private mutating func draw(_ range: (lower: Int, upper: Int)) -> Int {
        guard range.upper > range.lower else { return range.lower }
        return range.lower + Int(random.nextUInt64() % UInt64(range.upper - range.lower + 1))
    }

    func newTokens(_ prompt: Int) -> Int {
        max(1, prompt - Int(Double(prompt) * prefixHitRate))
    }
}
