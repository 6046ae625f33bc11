import ModelSpec

/// Why a layout cannot run a model on a cluster, in words a person can act on.
public struct LayoutError: Error, Equatable, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}

extension Layout {
    /// Checks divisibility against the model and the GPU count; returns the replica count.
    /// `redundantExperts` extra expert slots (EPLB) count toward filling the expert-parallel GPUs
    /// evenly: 256 experts + 32 copies run on 72 GPUs, 4 slots each.
    public func validate(for model: ModelSpec, gpus: Int, redundantExperts: Int = 0) throws -> Int {
        let isMoE = model.moe != nil
        // Degrees are bounded before they are multiplied (no product can overflow).
        for (name, degree) in [("tp", tp), ("ep", ep), ("pp", pp), ("moe_tp", moeTP)] where !(1...Layout.maxDegree).contains(degree) {
            throw LayoutError(message: "\(name) must be 1 to \(Layout.maxDegree), got \(degree)")
        }
        guard gpus >= 1 else { throw LayoutError(message: "a layout needs at least one GPU, got \(gpus)") }
        if attention == .data && tp != 1 {
            throw LayoutError(message: "DP attention runs each GPU's own sequences: tp must be 1, got \(tp)")
        }
        if !isMoE && (ep != 1 || moeTP != 1) {
            throw LayoutError(message: "\(model.id) has no experts: ep and moe_tp must be 1")
        }
        let group = groupSize(isMoE: isMoE)
        if group % tp != 0 {
            throw LayoutError(message: "the expert group ep × moe_tp = \(group) must be a multiple of tp = \(tp)")
        }
        guard gpus % (group * pp) == 0 else {
            throw LayoutError(message: "\(gpus) GPUs are not a whole number of copies of \(group) GPUs × \(pp) stages")
        }
        let heads = model.attention.heads
        guard heads % tp == 0 else {
            throw LayoutError(message: "tp = \(tp) must divide the \(heads) attention heads")
        }
        if case let .grouped(a) = model.attention, !(a.kvHeads % tp == 0 || tp % a.kvHeads == 0) {
            throw LayoutError(message: "tp = \(tp) and the \(a.kvHeads) KV heads must divide one another")
        }
        if let moe = model.moe {
            guard (moe.routedExperts + redundantExperts) % ep == 0 else {
                throw LayoutError(message: "ep = \(ep) must divide the \(moe.routedExperts) experts"
                    + (redundantExperts > 0 ? " plus \(redundantExperts) redundant copies" : ""))
            }
            guard moe.expertIntermediateSize % moeTP == 0 else {
                throw LayoutError(message: "moe_tp = \(moeTP) must divide the expert width \(moe.expertIntermediateSize)")
            }
        }
        guard pp <= model.layerCount else {
            throw LayoutError(message: "pp = \(pp) exceeds the \(model.layerCount) layers")
        }
        return gpus / (group * pp)
    }

    /// Every valid layout of `model` on `gpus` GPUs (pipeline depth at most `maxStages`).
    public static func enumerate(for model: ModelSpec, gpus: Int, maxStages: Int = 16, redundantExperts: Int = 0) -> [Layout] {
        func divisors(_ n: Int) -> [Int] { (1...max(n, 1)).filter { n % $0 == 0 } }
        var layouts: [Layout] = []
        for pp in divisors(gpus) where pp <= maxStages {
            for group in divisors(gpus / pp) {
                var candidates: [Layout] = []
                if model.moe != nil {
                    for moeTP in divisors(group) {
                        let ep = group / moeTP
                        candidates.append(Layout(attention: .data, tp: 1, ep: ep, pp: pp, moeTP: moeTP))
                        for tp in divisors(group) where tp > 1 {
                            candidates.append(Layout(attention: .tensor, tp: tp, ep: ep, pp: pp, moeTP: moeTP))
                        }
                    }
                } else {
                    candidates.append(Layout(attention: .tensor, tp: group, ep: 1, pp: pp))
                }
                layouts += candidates.filter { (try? $0.validate(for: model, gpus: gpus, redundantExperts: redundantExperts)) != nil }
            }
        }
        return Array(Set(layouts)).sorted { $0.description < $1.description }
    }
}
