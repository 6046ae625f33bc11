import ModelSpec
import TensorCore

/// The routers of the reference implementations, on router logits [tokens, experts].
enum Router {
    /// Top-k expert ids and weights for each token.
    static func route(_ logits: [Float], tokens: Int, moe: MixtureOfExperts, correctionBias: [Float]?) -> (ids: [Int32], weights: [Float]) {
        let e = moe.routedExperts, k = moe.expertsPerToken
        var ids = [Int32](repeating: 0, count: tokens * k)
        var weights = [Float](repeating: 0, count: tokens * k)
        var scores = [Float](repeating: 0, count: e)
        var choice = [Float](repeating: 0, count: e)
        var topValues = [Float](repeating: 0, count: max(k, moe.groups))
        var topIds = [Int32](repeating: 0, count: max(k, moe.groups))
        for t in 0..<tokens {
            for j in 0..<e { scores[j] = logits[t * e + j] }
            switch moe.scoring {
            case .softmax:
                // Mixtral, Qwen-MoE, gpt-oss: softmax over all experts, top-k, optional renormalisation.
                scores.withUnsafeMutableBufferPointer { Reduction.softmax($0.baseAddress!, count: e) }
                choice = scores
            case .sigmoid:
                // DeepSeek-V3, Kimi K2: sigmoid scores; the correction bias only steers selection.
                scores.withUnsafeMutableBufferPointer { Elementwise.sigmoid($0.baseAddress!, into: $0.baseAddress!, count: e) }
                for j in 0..<e { choice[j] = scores[j] + (correctionBias?[j] ?? 0) }
                if moe.groups > 1 { maskGroups(&choice, moe: moe, topValues: &topValues, topIds: &topIds) }
            }
            choice.withUnsafeBufferPointer { c in
                topIds.withUnsafeMutableBufferPointer { ip in
                    topValues.withUnsafeMutableBufferPointer { vp in
                        TopK.select(c.baseAddress!, count: e, k: k, indices: ip.baseAddress!, values: vp.baseAddress!)
                    }
                }
            }
            var sum: Float = 0
            for j in 0..<k { sum += scores[Int(topIds[j])] }
            let normalise = moe.normalizeTopK
            for j in 0..<k {
                ids[t * k + j] = topIds[j]
                var w = scores[Int(topIds[j])]
                if normalise { w /= moe.scoring == .sigmoid ? sum + 1e-20 : sum }
                weights[t * k + j] = w * Float(moe.routedScalingFactor)
            }
        }
        return (ids, weights)
    }

    /// Group-limited routing: each group scores the sum of its two best experts; experts outside
    /// the `topKGroups` best groups are masked to −∞.
    static func maskGroups(_ choice: inout [Float], moe: MixtureOfExperts, topValues: inout [Float], topIds: inout [Int32]) {
        let perGroup = moe.routedExperts / moe.groups
        var groupScores = [Float](repeating: 0, count: moe.groups)
        for g in 0..<moe.groups {
            var best = -Float.infinity, second = -Float.infinity
            for j in (g * perGroup)..<((g + 1) * perGroup) {
                let v = choice[j]
                if v > best { second = best; best = v } else if v > second { second = v }
            }
            groupScores[g] = perGroup >= 2 ? best + second : best
        }
        groupScores.withUnsafeBufferPointer { gs in
            topIds.withUnsafeMutableBufferPointer { ip in
                topValues.withUnsafeMutableBufferPointer { vp in
                    TopK.select(gs.baseAddress!, count: moe.groups, k: moe.topKGroups, indices: ip.baseAddress!, values: vp.baseAddress!)
                }
            }
        }
        var keep = [Bool](repeating: false, count: moe.groups)
        for j in 0..<moe.topKGroups { keep[Int(topIds[j])] = true }
        for g in 0..<moe.groups where !keep[g] {
            for j in (g * perGroup)..<((g + 1) * perGroup) { choice[j] = -.infinity }
        }
    }
}
