import Foundation
import ModelSpec
import TensorCore

/// The routers of the reference implementations, on router logits [tokens, experts].
enum Router {
    /// Floats of scratch `route` needs.
    static func scratchCount(_ moe: MixtureOfExperts) -> Int {
        2 * moe.routedExperts + 2 * max(moe.expertsPerToken, moe.groups) + moe.groups
    }

    /// Top-k expert ids and weights of each token into `ids` and `weights` (tokens × k).
    static func route(_ logits: UnsafePointer<Float>, tokens: Int, moe: MixtureOfExperts, correctionBias: [Float]?,
                      ids: UnsafeMutablePointer<Int32>, weights: UnsafeMutablePointer<Float>,
                      scratch: UnsafeMutablePointer<Float>) {
        let e = moe.routedExperts, k = moe.expertsPerToken
        let scores = scratch, choice = scratch + e
        let topValues = scratch + 2 * e
        let groupScores = topValues + max(k, moe.groups)
        withUnsafeTemporaryAllocation(of: Int32.self, capacity: max(k, moe.groups)) { topIdsBuffer in
            guard let topIds = topIdsBuffer.baseAddress else { return }
            for t in 0..<tokens {
                scores.update(from: logits + t * e, count: e)
                switch moe.scoring {
                case .softmax:
                    // Mixtral, Qwen-MoE, gpt-oss: softmax over all experts, top-k, optional renormalisation.
                    Reduction.softmax(scores, count: e)
                    choice.update(from: scores, count: e)
                case .sigmoid, .sqrtSoftplus:
                    // DeepSeek-V3, Kimi K2: sigmoid scores (DeepSeek-V4: √softplus); the correction
                    // bias only steers selection.
                    if moe.scoring == .sigmoid {
                        Elementwise.sigmoid(scores, into: scores, count: e)
                    } else {
                        for j in 0..<e { scores[j] = (max(scores[j], 0) + log1p(exp(-abs(scores[j])))).squareRoot() }
                    }
                    if moe.selectsOnLogits {
                        choice.update(from: logits + t * e, count: e)
                    } else {
                        for j in 0..<e { choice[j] = scores[j] + (correctionBias?[j] ?? 0) }
                    }
                    if moe.groups > 1 { maskGroups(choice, moe: moe, groupScores: groupScores, topIds: topIds, topValues: topValues) }
                }
                TopK.select(choice, count: e, k: k, indices: topIds, values: topValues)
                var sum: Float = 0
                for j in 0..<k { sum += scores[Int(topIds[j])] }
                for j in 0..<k {
                    ids[t * k + j] = topIds[j]
                    var w = scores[Int(topIds[j])]
                    if moe.normalizeTopK { w /= moe.scoring == .softmax ? sum : sum + 1e-20 }
                    weights[t * k + j] = w * Float(moe.routedScalingFactor)
                }
            }
        }
    }

    /// DeepSeek-V4's hash routing: each token's experts come from `table` (its row for the token
    /// id, checked in range at load), weighted by the router's scores (√softplus), renormalised
    /// and scaled as the learned router's are.
    static func hashRoute(_ logits: UnsafePointer<Float>, tokens: [Int], table: [Int32], moe: MixtureOfExperts,
                          ids: UnsafeMutablePointer<Int32>, weights: UnsafeMutablePointer<Float>) {
        let e = moe.routedExperts, k = moe.expertsPerToken
        var scores = [Float](repeating: 0, count: e)
        for (t, token) in tokens.enumerated() {
            for j in 0..<e {
                let x = logits[t * e + j]
                switch moe.scoring {
                case .sigmoid: scores[j] = 1 / (1 + exp(-x))
                case .sqrtSoftplus: scores[j] = (max(x, 0) + log1p(exp(-abs(x)))).squareRoot()
                case .softmax: scores[j] = x
                }
            }
            if moe.scoring == .softmax { scores.withUnsafeMutableBufferPointer { Reduction.softmax($0.baseAddress!, count: e) } }
            var sum: Float = 0
            for j in 0..<k { sum += scores[Int(table[token * k + j])] }
            for j in 0..<k {
                let id = table[token * k + j]
                ids[t * k + j] = id
                weights[t * k + j] = scores[Int(id)] / (sum + 1e-20) * Float(moe.routedScalingFactor)
            }
        }
    }

    /// Group-limited routing: each group scores the sum of its two best experts; experts outside
    /// the `topKGroups` best groups are masked to −∞.
    static func maskGroups(_ choice: UnsafeMutablePointer<Float>, moe: MixtureOfExperts, groupScores: UnsafeMutablePointer<Float>,
                           topIds: UnsafeMutablePointer<Int32>, topValues: UnsafeMutablePointer<Float>) {
        let perGroup = moe.routedExperts / moe.groups
        for g in 0..<moe.groups {
            var best = -Float.infinity, second = -Float.infinity
            for j in (g * perGroup)..<((g + 1) * perGroup) {
                let v = choice[j]
                if v > best { second = best; best = v } else if v > second { second = v }
            }
            groupScores[g] = perGroup >= 2 ? best + second : best
        }
        TopK.select(groupScores, count: moe.groups, k: moe.topKGroups, indices: topIds, values: topValues)
        for g in 0..<moe.groups {
            var kept = false
            for j in 0..<moe.topKGroups where Int(topIds[j]) == g { kept = true }
            if !kept { for j in (g * perGroup)..<((g + 1) * perGroup) { choice[j] = -.infinity } }
        }
    }
}
