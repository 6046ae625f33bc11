import Hardware
import ModelSpec

/// Bytes one GPU sends per token it processes, on each link level, for one forward pass of the
/// whole model (all layers).
public struct Traffic: Sendable, Equatable {
    public struct Component: Sendable, Equatable {
        /// What moves: the step model prices each kind with its own latency.
        public enum Kind: Sendable, Equatable { case tensorAllReduce, expertDispatch, expertCombine, pipeline }
        public var kind: Kind
        public var name: String
        public var scaleUp: Double
        public var scaleOut: Double
        /// Collective operations (or message rounds) per token per forward pass, for latency.
        public var messages: Int

        public var isExpertAllToAll: Bool { kind == .expertDispatch || kind == .expertCombine }
    }

    public var components: [Component]

    public var scaleUp: Double { components.reduce(0) { $0 + $1.scaleUp } }

    /// Bytes of one hidden value sent to the experts: fp8 (DeepEP) when the experts compute in
    /// fp8 or fp4, else the activations' own width.
    public static func dispatchBytes(for weights: WeightFormat) -> Double {
        switch weights {
        case .f32: 4
        case .bf16, .int4, .int4g32: 2
        case .fp8, .fp8Tensor, .nvfp4, .mxfp4: 1
        }
    }
    public var scaleOut: Double { components.reduce(0) { $0 + $1.scaleOut } }

    /// Traffic of `layout` on `cluster`. `dispatchBytes` is the size of one hidden value sent to
    /// the experts (DeepEP sends fp8, 1 byte, when the experts compute in fp8 or fp4; else bf16);
    /// results come back in bf16.
    public static func of(_ model: ModelSpec, layout: Layout, cluster: Cluster, dispatchBytes: Double) -> Traffic {
        let h = Double(model.hiddenSize)
        let node = cluster.scaleUpGroup
        var parts: [Component] = []
        let tp = layout.attentionGroup
        if tp > 1 {
            // Ring all-reduce of the bf16 hidden state after attention and after the FFN: each GPU
            // sends 2(tp − 1)/tp of the message.
            let bytes = 2 * Double(tp - 1) / Double(tp) * h * 2 * 2 * Double(model.layerCount)
            let local = tp <= node
            parts.append(Component(kind: .tensorAllReduce, name: "tensor-parallel all-reduce", scaleUp: local ? bytes : 0,
                                   scaleOut: local ? 0 : bytes, messages: 2 * model.layerCount))
        }
        // Under tensor-parallel attention every GPU of the attention group holds every token of
        // the group after the attention all-reduce, so experts cut over that group (vLLM's and
        // SGLang's `-tp 8` with moe_tp = 8, or TensorRT-LLM's ep = tp) compute the tokens they
        // already have, and their partial outputs are summed by the FFN all-reduce counted above:
        // no all-to-all. Only an expert group wider than the attention group dispatches.
        let expertsWithinAttention = layout.attention == .tensor && layout.ep * layout.moeTP <= layout.tp
        if let moe = model.moe, layout.ep * layout.moeTP > 1, !expertsWithinAttention {
            let group = layout.ep * layout.moeTP
            let k = Double(moe.expertsPerToken) * Double(layout.moeTP)
            // A chosen expert lives on one of `group` GPUs: on this GPU with probability 1/group,
            // elsewhere in this node with (node − 1)/group, in another node otherwise.
            let inNode = Double(min(node, group))
            let sameNode = (inNode - 1) / Double(group), otherNode = (Double(group) - inNode) / Double(group)
            let layers = Double(model.moeLayerCount)
            // LatentMoE (Kimi K3) sends the tokens at the experts' narrower width.
            let width = Double(model.moe?.expertWidth(hidden: model.hiddenSize) ?? model.hiddenSize)
            let dispatch = k * width * dispatchBytes * layers, combine = k * width * 2 * layers
            parts.append(Component(kind: .expertDispatch, name: "expert-parallel dispatch", scaleUp: dispatch * sameNode,
                                   scaleOut: dispatch * otherNode, messages: model.moeLayerCount))
            parts.append(Component(kind: .expertCombine, name: "expert-parallel combine", scaleUp: combine * sameNode,
                                   scaleOut: combine * otherNode, messages: model.moeLayerCount))
        }
        if layout.pp > 1 {
            // The hidden state crosses each stage boundary once; stages are separate nodes as soon
            // as one stage's group fills a node.
            let group = layout.groupSize(isMoE: model.moe != nil)
            let bytes = h * 2 * Double(layout.pp - 1) / Double(layout.pp)
            let local = group * layout.pp <= node
            parts.append(Component(kind: .pipeline, name: "pipeline send/receive", scaleUp: local ? bytes : 0,
                                   scaleOut: local ? 0 : bytes, messages: layout.pp - 1))
        }
        return Traffic(components: parts)
    }
}
