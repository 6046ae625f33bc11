import Foundation

/// Which experts sit on which GPU of an expert-parallel group, and how evenly the load falls.
public struct ExpertPlacement: Sendable, Equatable {
    /// Expert popularity: uniform, or Zipf with exponent s (the i-th most popular expert receives
    /// a share ∝ i^−s). Popularity ranks are spread over expert ids by a fixed stride permutation
    /// (rank = e·p mod E with p coprime to E, near E/φ), since hot experts are not numbered first in
    /// real models and contiguous blocks would otherwise put all of them on GPU 0.
    public enum LoadDistribution: Sendable, Equatable {
        case uniform
        case zipf(Double)
    }

    /// `experts[g]` lists the experts (ids, with repeats for redundant copies) on GPU g.
    public let experts: [[Int]]
    /// Expected share of all routed tokens each GPU receives.
    public let load: [Double]

    /// Busiest GPU's load over the mean: the factor by which expert imbalance stretches a step.
    public var imbalance: Double {
        let mean = load.reduce(0, +) / Double(max(load.count, 1))
        return mean > 0 ? (load.max() ?? 0) / mean : 1
    }

    /// Share of the routed tokens expert e receives under `distribution`.
    public static func popularity(experts: Int, distribution: LoadDistribution) -> [Double] {
        guard case let .zipf(s) = distribution, s > 0 else { return Array(repeating: 1 / Double(experts), count: experts) }
        func gcd(_ a: Int, _ b: Int) -> Int { b == 0 ? a : gcd(b, a % b) }
        var stride = max(1, Int(Double(experts) * 0.618))
        while gcd(stride, experts) != 1 { stride += 1 }
        let weights = (0..<experts).map { e in pow(Double((e * stride) % experts + 1), -s) }
        let total = weights.reduce(0, +)
        return weights.map { $0 / total }
    }

    /// Experts 0..<E in contiguous blocks of E/gpus, as frameworks place them by default.
    public static func contiguous(experts: Int, gpus: Int, distribution: LoadDistribution) -> ExpertPlacement {
        let share = popularity(experts: experts, distribution: distribution)
        let perGPU = experts / gpus
        let lists = (0..<gpus).map { g in Array((g * perGPU)..<((g + 1) * perGPU)) }
        return ExpertPlacement(experts: lists, load: lists.map { $0.reduce(0) { $0 + share[$1] } })
    }

    /// EPLB-style balancing with `redundant` extra expert slots: the hottest experts get copies
    /// (each new copy goes to the expert whose load per copy is highest), then copies are placed
    /// heaviest first on the least-loaded GPU that still has a free slot.
    public static func balanced(experts: Int, gpus: Int, redundant: Int, distribution: LoadDistribution) -> ExpertPlacement {
        let share = popularity(experts: experts, distribution: distribution)
        var copies = Array(repeating: 1, count: experts)
        for _ in 0..<max(0, redundant) {
            guard let hottest = (0..<experts).max(by: { share[$0] / Double(copies[$0]) < share[$1] / Double(copies[$1]) })
            else { break }
            copies[hottest] += 1
        }
        var items: [(expert: Int, load: Double)] = []
        for e in 0..<experts { for _ in 0..<copies[e] { items.append((e, share[e] / Double(copies[e]))) } }
        items.sort { $0.load > $1.load || ($0.load == $1.load && $0.expert < $1.expert) }
        let slots = (items.count + gpus - 1) / gpus
        var lists = Array(repeating: [Int](), count: gpus)
        var load = Array(repeating: 0.0, count: gpus)
        for item in items {
            let candidates = (0..<gpus).filter { lists[$0].count < slots && !lists[$0].contains(item.expert) }
            let pool = candidates.isEmpty ? (0..<gpus).filter { lists[$0].count < slots } : candidates
            guard let g = pool.min(by: { load[$0] < load[$1] || (load[$0] == load[$1] && $0 < $1) }) else { continue }
            lists[g].append(item.expert)
            load[g] += item.load
        }
        return ExpertPlacement(experts: lists, load: load)
    }
}
