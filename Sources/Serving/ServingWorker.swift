/// One engine instance of a simulation: its queue, its running requests and its KV pool.
///
/// Its state is touched a few dozen times in every simulated step; `@exclusivity(unchecked)`
/// drops the run-time exclusivity checks on those properties (the simulation is single-threaded
/// and never holds two accesses to one worker at once), which were the largest cost of a step.
final class ServingWorker {
    enum Role { case both, prefill, decode }

    let role: Role
    let steps: StepCache
    /// Tokens per step of the whole worker, and of one attention group (one prompt's chunk never
    /// exceeds a group's budget: a data-parallel rank prefills its own prompts).
    let budget: Int
    let groupBudget: Int
    /// KV tokens the worker's memory holds (at the longest context, `maxRunning` of them fit
    /// when the model's layers all keep every token) and the engine's cap on running requests.
    let kvCapacity: Double
    let maxRunning: Int

    @exclusivity(unchecked) var clock = 0.0
    /// Start and end of the last step (an overlap scheduler forms the next step at the start).
    @exclusivity(unchecked) var lastStepStart = -Double.infinity
    @exclusivity(unchecked) var lastStepEnd = -Double.infinity
    /// Decode steps run so far: a sequence that joins now with D steps to go finishes on decode
    /// step `decodeIndex + D − 1` (prefill-only steps do not advance it).
    @exclusivity(unchecked) var decodeIndex = 0
    /// Requests not yet admitted, in order of the time each is ready (arrived, or its KV landed).
    @exclusivity(unchecked) var waiting: [(slot: Int, ready: Double)] = []
    @exclusivity(unchecked) var waitingHead = 0
    @exclusivity(unchecked) var prefilling: [Int] = []
    @exclusivity(unchecked) var decoding = 0
    /// Σ of the decoding sequences' contexts (what attention reads) and of the prefix tokens
    /// they share through the cache (held once, by the cache).
    @exclusivity(unchecked) var decodeContextSum = 0.0
    @exclusivity(unchecked) var decodeShared = 0.0
    /// KV tokens reserved by the prompts being prefilled (admission reserves the whole prompt).
    @exclusivity(unchecked) var prefillReserved = 0.0
    /// (slot, generation) of the decoders finishing on each decode step.
    @exclusivity(unchecked) var finishing: [Int: [(slot: Int, generation: Int)]] = [:]
    /// Decoders by admission, newest last: whom to preempt when memory runs out.
    @exclusivity(unchecked) var decoders: [(slot: Int, generation: Int)] = []
    @exclusivity(unchecked) var prefixCache = PrefixCache()
    @exclusivity(unchecked) var busySeconds = 0.0
    /// Decode-only steps since the scheduler last looked for new prompts.
    @exclusivity(unchecked) var decodeStreak = 0
    /// When the scheduler last read new requests: between reads (SGLang's receive interval) it
    /// admits only requests that had arrived by then.
    @exclusivity(unchecked) var lastRead = -Double.infinity
    /// Prompts this prefill worker finished whose response to the router is still open
    /// (`ServingSimulation.Options.firstTokenWaitsForPrefillResponse`): the request's slot and
    /// when its KV transfer lands.
    @exclusivity(unchecked) var openResponses: [(slot: Int, landed: Double)] = []

    init(role: Role, steps: StepCache, budget: Int, groupBudget: Int, kvCapacity: Double, maxRunning: Int) {
        self.role = role
        self.steps = steps
        self.budget = budget
        self.groupBudget = groupBudget
        self.kvCapacity = kvCapacity
        self.maxRunning = maxRunning
    }

    /// The same engine, empty: for another run of the simulation (the step model is shared).
    func fresh() -> ServingWorker {
        ServingWorker(role: role, steps: steps, budget: budget, groupBudget: groupBudget, kvCapacity: kvCapacity, maxRunning: maxRunning)
    }

    var running: Int { prefilling.count + decoding }
    var queued: Int { waiting.count - waitingHead }
    /// For routing: requests here or on their way.
    var load: Int { queued + running }
    /// KV tokens in use: prompts being prefilled, decoding sequences (less what they share), and
    /// the resident prefixes.
    var kvUsed: Double { prefillReserved + decodeContextSum - decodeShared + Double(prefixCache.tokens) }

    /// Adds a request in order of ready time (KV transfers finish out of order).
    func enqueue(_ slot: Int, ready: Double) {
        var i = waiting.count
        while i > waitingHead, waiting[i - 1].ready > ready { i -= 1 }
        waiting.insert((slot, ready), at: i)
    }

    /// Puts a preempted request back at the head of the queue.
    func requeueFirst(_ slot: Int, ready: Double) {
        if waitingHead > 0 {
            waitingHead -= 1
            waiting[waitingHead] = (slot, ready)
        } else {
            waiting.insert((slot, ready), at: 0)
        }
    }

    /// When this worker can start its next step, or nil when it has nothing to do.
    var nextStart: Double? {
        if decoding > 0 || !prefilling.isEmpty { return clock }
        if waitingHead < waiting.count { return max(clock, waiting[waitingHead].ready) }
        return nil
    }

    func compactQueue() {
        if waitingHead > 1024, waitingHead * 2 > waiting.count {
            waiting.removeFirst(waitingHead)
            waitingHead = 0
        }
    }
}
