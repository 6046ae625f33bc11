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
                score(logits + t * e, moe: moe, into: scores)
                if moe.scoring == .softmax {
                    // Mixtral, Qwen-MoE, gpt-oss: top-k of the softmax, optional renormalisation.
                    choice.update(from: scores, count: e)
                } else {
                    // DeepSeek-V3, Kimi K2 (and V4's √softplus): the correction bias only steers
                    // selection; Llama 4 picks on the raw logits.
                    if moe.selectsOnLogits {
                        choice.update(from: logits + t * e, count: e)
                    } else {
                        for j in 0..<e { choice[j] = scores[j] + (correctionBias?[j] ?? 0) }
                    }
                    if moe.groups > 1 { maskGroups(choice, moe: moe, groupScores: groupScores, topIds: topIds, topValues: topValues) }
                }
                TopK.select(choice, count: e, k: k, indices: topIds, values: topValues)
                weigh(topIds, scores: scores, moe: moe, ids: ids + t * k, weights: weights + t * k)
            }
        }
    }

    /// DeepSeek-V4's hash routing: each token's experts come from `table` (its row for the token
    /// id, checked in range at load), weighted by the router's scores as the learned router's
    /// are. `scratch` holds `scratchCount(moe)` floats.
    static func hashRoute(_ logits: UnsafePointer<Float>, tokens: [Int], table: [Int32], moe: MixtureOfExperts,
                          ids: UnsafeMutablePointer<Int32>, weights: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>) {
        let e = moe.routedExperts, k = moe.expertsPerToken
        table.withUnsafeBufferPointer { rows in
            guard let chosen = rows.baseAddress else { return }
            for (t, token) in tokens.enumerated() {
                score(logits + t * e, moe: moe, into: scratch)
                weigh(chosen + token * k, scores: scratch, moe: moe, ids: ids + t * k, weights: weights + t * k)
            }
        }
    }

    /// One token's expert scores from its logits: softmax, sigmoid or √softplus.
    static func score(_ logits: UnsafePointer<Float>, moe: MixtureOfExperts, into scores: UnsafeMutablePointer<Float>) {
        let e = moe.routedExperts
        switch moe.scoring {
        case .softmax:
            scores.update(from: logits, count: e)
            Reduction.softmax(scores, count: e)
        case .sigmoid:
            Elementwise.sigmoid(logits, into: scores, count: e)
        case .sqrtSoftplus:
            for j in 0..<e { scores[j] = (max(logits[j], 0) + log1p(exp(-abs(logits[j])))).squareRoot() }
        }
    }

    /// The k chosen experts of one token and their weights: their scores, renormalised when the
    /// model says so (softmax exactly, the others with DeepSeek's 1e-20), times the routed scale.
    static func weigh(_ chosen: UnsafePointer<Int32>, scores: UnsafePointer<Float>, moe: MixtureOfExperts,
                      ids: UnsafeMutablePointer<Int32>, weights: UnsafeMutablePointer<Float>) {
        let k = moe.expertsPerToken
        var sum: Float = 0
        for j in 0..<k { sum += scores[Int(chosen[j])] }
        for j in 0..<k {
            ids[j] = chosen[j]
            var w = scores[Int(chosen[j])]
            if moe.normalizeTopK { w /= moe.scoring == .softmax ? sum : sum + 1e-20 }
            weights[j] = w * Float(moe.routedScalingFactor)
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
