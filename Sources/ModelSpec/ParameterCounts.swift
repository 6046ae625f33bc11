/// Parameter counts of a model, by category. Conventions (those of published-params.json): every
/// weight of the main model counted once; MTP modules apart; active = total minus the routed
/// experts a token does not use (k of E), with embeddings, head and the whole router included.
public struct ParameterCounts: Sendable, Equatable {
    public var byCategory: [WeightTensor.Category: Int]
    /// What one token uses of each category: all of it, except k of E routed experts.
    public var activeByCategory: [WeightTensor.Category: Int]
    public var total: Int
    public var active: Int
    public var mtp: Int

    public func count(_ category: WeightTensor.Category) -> Int { byCategory[category] ?? 0 }
    public func active(_ category: WeightTensor.Category) -> Int { activeByCategory[category] ?? 0 }
}

extension ModelSpec {
    public var parameterCounts: ParameterCounts {
        var byCategory: [WeightTensor.Category: Int] = [:]
        for tensor in weightTensors { byCategory[tensor.category, default: 0] += tensor.parameters }
        let mtp = byCategory[.mtp] ?? 0
        let total = byCategory.values.reduce(0, +) - mtp
        var activeByCategory = byCategory
        if let moe, let routed = byCategory[.routedExperts] {
            activeByCategory[.routedExperts] = routed / moe.routedExperts * moe.expertsPerToken
        }
        let active = activeByCategory.values.reduce(0, +) - mtp
        return ParameterCounts(byCategory: byCategory, activeByCategory: activeByCategory, total: total, active: active, mtp: mtp)
    }

    /// Parameters of one routed expert (gate, up, down and their biases).
    public var parametersPerExpert: Int {
        guard let moe, moeLayerCount > 0 else { return 0 }
        let routed = weightTensors.filter { $0.category == .routedExperts }.map(\.parameters).reduce(0, +)
        return routed / (moe.routedExperts * moeLayerCount)
    }
}
