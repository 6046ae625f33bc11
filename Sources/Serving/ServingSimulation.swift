import Foundation

/// A closed-loop, step-by-step simulation of continuous batching on one or more workers.
///
/// Each worker (engine instance) runs steps back to back while it has work. A step decodes one
/// position (1 + drafts with MTP) of every running sequence and, within the token budget, a chunk
/// of the waiting prompts (`SchedulerPolicy`). The step's time comes from the estimator's step
/// model (`StepCache`). A request that finishes is replaced at once by a new one (closed loop).
/// With disaggregation, prompts run on prefill workers and their KV cache reaches a decode worker
/// after the transfer time. Requests hold memory from admission to completion: a worker admits
/// no more than its capacity, and the rest wait.
///
/// Statistics: the first `concurrency` completions warm the system up; the requests that arrive
/// after that and complete before the end are measured, and token rates are counted over the
/// same window. The work per step is constant (counts and sums, no per-sequence loop), so a
/// simulation costs O(steps + requests).
struct ServingSimulation {
    enum Role { case both, prefill, decode }

    struct Request {
        var arrival = 0.0
        /// Prompt tokens to compute (the prefix-cache hits removed) and the whole prompt.
        var newTokens = 0
        var promptTokens = 0
        var prefilled = 0
        var firstToken = 0.0
        var decodeSteps = 0
        /// Tokens the decode steps must emit: the answer after its first token.
        var decodeTokens = 0
        var joinContext = 0.0
        var measured = false
    }

    final class Worker {
        let role: Role
        let steps: StepCache
        /// Tokens per step of the whole worker, and of one attention group (one prompt's chunk
        /// never exceeds a group's budget: a data-parallel rank prefills its own prompts).
        let budget: Int
        let groupBudget: Int
        let capacity: Int
        let gpus: Int
        var clock = 0.0
        /// Decode steps run so far: a sequence that joins now finishes on decode step
        /// `decodeIndex + decodeSteps − 1` (prefill-only steps do not advance it).
        var decodeIndex = 0
        /// Requests not yet admitted, with the time each is ready (arrival, or KV landed).
        var waiting: [(slot: Int, ready: Double)] = []
        var waitingHead = 0
        var prefilling: [Int] = []
        var decoding = 0
        var decodeContextSum = 0.0
        var finishing: [Int: [Int]] = [:]
        var busySeconds = 0.0

        init(role: Role, steps: StepCache, budget: Int, groupBudget: Int, capacity: Int, gpus: Int) {
            self.role = role
            self.steps = steps
            self.budget = budget
            self.groupBudget = groupBudget
            self.capacity = capacity
            self.gpus = gpus
        }

        var running: Int { prefilling.count + decoding }
        var queued: Int { waiting.count - waitingHead }
        /// Prompt tokens still to compute here, for routing new requests.
        var load: Int { queued + running }

        /// Adds a request in order of ready time (KV transfers finish out of order).
        func enqueue(_ slot: Int, ready: Double) {
            var i = waiting.count
            while i > waitingHead, waiting[i - 1].ready > ready { i -= 1 }
            waiting.insert((slot, ready), at: i)
        }

        /// When this worker can start its next step, or nil when it has nothing to do.
        var nextStart: Double? {
            if decoding > 0 || !prefilling.isEmpty { return clock }
            if waitingHead < waiting.count { return max(clock, waiting[waitingHead].ready) }
            return nil
        }
    }

    struct Sample {
        var ttft: Double, tpot: Double?, e2e: Double
    }

    struct Outcome {
        var samples: [Sample] = []
        var windowSeconds = 0.0
        var outputTokens = 0.0
        var inputTokens = 0.0
        var completions = 0
        /// Requests completed inside the measurement window, measured or not.
        var windowCompletions = 0
        /// Σ over steps of decoding sequences × step time, for the mean decode batch.
        var decodeSequenceSeconds = 0.0
        var steps = 0
    }

    enum Failure: Error { case stalled(String) }

    var requests: [Request]
    var workers: [Worker]
    let entry: [Int]
    let exit: [Int]
    let outputTokens: Int
    let tokensPerStep: Double
    /// Tokens each decoding sequence puts through the model per step (1 + MTP drafts).
    let verifiedPerStep: Int
    let policy: SchedulerPolicy
    let transferSeconds: (Int) -> Double
    var lengths: PromptLengths
    let measuredTarget: Int
    let maxSteps: Int

    /// Runs until `measuredTarget` measured requests have completed.
    mutating func run() throws -> Outcome {
        var outcome = Outcome()
        var warmUpEnd: Double? = nil
        var completions = 0
        var measuredDone = 0
        seedSteadyState()
        while measuredDone < measuredTarget {
            guard outcome.steps < maxSteps else {
                throw Failure.stalled("the simulation did not reach \(measuredTarget) measured requests within \(maxSteps) steps")
            }
            var pick: Int? = nil
            var start = Double.infinity
            for (i, w) in workers.enumerated() { if let s = w.nextStart, s < start { start = s; pick = i } }
            guard let index = pick else { throw Failure.stalled("no worker has work (every request is blocked)") }
            let w = workers[index]
            w.clock = start
            admit(w)
            let drafts = tokensPerStep
            let decode = w.role == .prefill ? 0 : w.decoding
            var chunks: [(slot: Int, tokens: Int)] = []
            var prefillTokens = 0, prefillContext = 0.0
            let prefillOnly = policy == .prefillFirst && w.role == .both && !w.prefilling.isEmpty
            if w.role != .decode {
                var left = prefillOnly || w.role == .prefill ? w.budget : w.budget - decode * verifiedPerStep
                for slot in w.prefilling where left > 0 {
                    let r = requests[slot]
                    let chunk = min(r.newTokens - r.prefilled, left, w.groupBudget)
                    guard chunk > 0 else { continue }
                    chunks.append((slot, chunk))
                    left -= chunk
                    prefillTokens += chunk
                    prefillContext += Double(r.promptTokens - r.newTokens + r.prefilled)
                }
            }
            let decoding = prefillOnly ? 0 : decode
            let seconds = w.steps.seconds(decode: decoding, decodeContext: decoding > 0 ? w.decodeContextSum / Double(decoding) : 0,
                                          prefillTokens: prefillTokens, prefillSequences: chunks.count,
                                          prefillContext: chunks.isEmpty ? 0 : prefillContext / Double(chunks.count))
            guard seconds > 0, seconds.isFinite else { throw Failure.stalled("a step was priced at \(seconds) s") }
            let end = start + seconds
            outcome.steps += 1
            w.busySeconds += seconds
            let inWindow = warmUpEnd.map { end > $0 } ?? false
            if decoding > 0 {
                w.decodeContextSum += Double(decoding) * drafts
                if inWindow {
                    outcome.outputTokens += Double(decoding) * drafts
                    outcome.decodeSequenceSeconds += Double(decoding) * seconds
                }
                // A request's last step emits only the tokens its answer still needs.
                let finishing = w.finishing.removeValue(forKey: w.decodeIndex) ?? []
                w.decodeIndex += 1
                for slot in finishing {
                    let r = requests[slot]
                    w.decoding -= 1
                    w.decodeContextSum -= r.joinContext + Double(r.decodeSteps) * drafts
                    if inWindow { outcome.outputTokens -= Double(r.decodeSteps) * drafts - Double(r.decodeTokens) }
                    complete(slot, at: end, outcome: &outcome, warmUpEnd: warmUpEnd, measuredDone: &measuredDone)
                    completions += 1
                    if warmUpEnd == nil, completions >= requests.count { warmUpEnd = end }
                    arrive(slot, at: end, measured: warmUpEnd != nil)
                }
            }
            var finished: Set<Int> = []
            for (slot, tokens) in chunks {
                requests[slot].prefilled += tokens
                if inWindow { outcome.inputTokens += Double(tokens) }
                if requests[slot].prefilled >= requests[slot].newTokens { finished.insert(slot) }
            }
            if !finished.isEmpty {
                w.prefilling.removeAll { finished.contains($0) }
                // In prompt order, as the chunks were taken.
                for (slot, _) in chunks where finished.contains(slot) {
                    if inWindow {
                        outcome.inputTokens += Double(requests[slot].promptTokens - requests[slot].newTokens)
                        outcome.outputTokens += 1
                    }
                    if w.role == .prefill {
                        let target = leastLoaded(exit)
                        let ready = end + transferSeconds(requests[slot].promptTokens)
                        requests[slot].firstToken = ready
                        workers[target].enqueue(slot, ready: ready)
                    } else {
                        requests[slot].firstToken = end
                        if outputTokens <= 1 {
                            complete(slot, at: end, outcome: &outcome, warmUpEnd: warmUpEnd, measuredDone: &measuredDone)
                            completions += 1
                            if warmUpEnd == nil, completions >= requests.count { warmUpEnd = end }
                            arrive(slot, at: end, measured: warmUpEnd != nil)
                        } else {
                            join(slot, worker: w)
                        }
                    }
                }
            }
            w.clock = end
            if let t = warmUpEnd { outcome.windowSeconds = max(outcome.windowSeconds, end - t) }
        }
        outcome.completions = completions
        return outcome
    }

    /// Starts the loop as it runs after a while: the initial requests spread evenly over one
    /// request's decode, request i of N already past i/N of its answer (a burst of N prompts at
    /// time 0 would leave every later wave arriving together, which a real client's jitter and
    /// its random prompt lengths undo). Those a decode worker cannot hold wait as new arrivals.
    private mutating func seedSteadyState() {
        let targets = workers.indices.filter { workers[$0].role != .prefill }
        let count = requests.count
        for slot in requests.indices {
            let prompt = lengths.next()
            requests[slot] = Request(arrival: 0, newTokens: lengths.newTokens(prompt), promptTokens: prompt, measured: false)
            let w = workers[leastLoaded(targets)]
            let remaining = Int((Double(decodeSteps) * Double(slot + 1) / Double(count)).rounded(.up))
            guard outputTokens > 1, remaining >= 1, w.running < w.capacity else {
                workers[leastLoaded(entry)].enqueue(slot, ready: 0)
                continue
            }
            requests[slot].prefilled = requests[slot].newTokens
            requests[slot].decodeSteps = remaining
            requests[slot].decodeTokens = Int((Double(remaining) * tokensPerStep).rounded())
            requests[slot].joinContext = Double(prompt + 1) + Double(decodeSteps - remaining) * tokensPerStep
            w.decoding += 1
            w.decodeContextSum += requests[slot].joinContext
            w.finishing[w.decodeIndex + remaining - 1, default: []].append(slot)
        }
    }

    /// Decode steps after the first token: (output − 1) tokens at `tokensPerStep` a step.
    var decodeSteps: Int { max(1, Int((Double(outputTokens - 1) / tokensPerStep).rounded(.up))) }

    /// A new request of the closed loop. It reaches the scheduler after the step that starts at
    /// the same instant has been formed (the finished request's answer must leave the server and
    /// the client's next request arrive), so it waits for that step: schedulers form a batch only
    /// between steps.
    private mutating func arrive(_ slot: Int, at time: Double, measured: Bool) {
        let prompt = lengths.next()
        requests[slot] = Request(arrival: time, newTokens: lengths.newTokens(prompt), promptTokens: prompt, measured: measured)
        workers[leastLoaded(entry)].enqueue(slot, ready: time.nextUp)
    }

    private func leastLoaded(_ candidates: [Int]) -> Int {
        var best = candidates[0]
        for i in candidates where workers[i].load < workers[best].load { best = i }
        return best
    }

    /// Moves ready requests into the running set while memory allows.
    private mutating func admit(_ w: Worker) {
        while w.waitingHead < w.waiting.count, w.waiting[w.waitingHead].ready <= w.clock, w.running < w.capacity {
            let slot = w.waiting[w.waitingHead].slot
            w.waitingHead += 1
            if w.role == .decode {
                join(slot, worker: w)
            } else {
                w.prefilling.append(slot)
            }
        }
        if w.waitingHead > 1024, w.waitingHead * 2 > w.waiting.count {
            w.waiting.removeFirst(w.waitingHead)
            w.waitingHead = 0
        }
    }

    private mutating func join(_ slot: Int, worker w: Worker) {
        requests[slot].decodeSteps = decodeSteps
        requests[slot].decodeTokens = outputTokens - 1
        requests[slot].joinContext = Double(requests[slot].promptTokens + 1)
        w.decoding += 1
        w.decodeContextSum += requests[slot].joinContext
        w.finishing[w.decodeIndex + decodeSteps - 1, default: []].append(slot)
    }

    private func complete(_ slot: Int, at end: Double, outcome: inout Outcome, warmUpEnd: Double?, measuredDone: inout Int) {
        let r = requests[slot]
        guard let warmUpEnd else { return }
        if end > warmUpEnd { outcome.windowCompletions += 1 }
        guard r.measured else { return }
        let tpot = outputTokens > 1 ? (end - r.firstToken) / Double(outputTokens - 1) : nil
        outcome.samples.append(Sample(ttft: r.firstToken - r.arrival, tpot: tpot, e2e: end - r.arrival))
        measuredDone += 1
    }
}

/// Prompt lengths drawn uniformly from a range with a seeded generator (SplitMix64), and the
/// share of each prompt the prefix cache serves.
struct PromptLengths {
    var state: UInt64
    let lower: Int
    let upper: Int
    let prefixHitRate: Double

    mutating func next() -> Int {
        guard upper > lower else { return lower }
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        return lower + Int(z % UInt64(upper - lower + 1))
    }

    func newTokens(_ prompt: Int) -> Int {
        max(1, prompt - Int(Double(prompt) * prefixHitRate))
    }
}
