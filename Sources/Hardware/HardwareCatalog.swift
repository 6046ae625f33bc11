import ConfigFile

/// Hardware presets (configs/hardware/ID.json) and users' own files, by one name.
public enum HardwareCatalog {
    public static var presetIDs: [String] { ConfigDirectory.ids(in: "hardware") }

    /// A preset id ("h200-sxm") or a path to a hardware file.
    public static func load(_ reference: String) throws -> HardwareSpec {
        let (path, _) = try ConfigDirectory.resolve(reference, in: "hardware", kind: "hardware")
        return try HardwareSpec(contentsOf: path)
    }
}

/// GPUs of one kind, `gpusPerNode` to a node. A node is one scale-up domain (an HGX board of 8,
/// an NVL72 rack of 72): traffic between GPUs of one node uses the scale-up links, traffic between
/// nodes the scale-out network.
public struct Cluster: Sendable, Equatable {
    public var gpu: HardwareSpec
    public var gpuCount: Int
    public var gpusPerNode: Int

    /// The largest cluster moesim plans (a hundred NVL72 racks is 7,200): searches over layouts
    /// grow with the divisors of the count.
    public static let maxGPUs = 65_536

    /// Throws for zero GPUs, or a GPU count that is neither within one node nor whole nodes.
    /// `wholeNodes: false` is for a disaggregated deployment, whose pools' workers are checked one
    /// by one (three 2-GPU prefill workers and an 8-GPU decode worker are 14 GPUs on two nodes).
    public init(gpu: HardwareSpec, gpuCount: Int, gpusPerNode: Int? = nil, wholeNodes: Bool = true) throws {
        let perNode = gpusPerNode ?? gpu.scaleUpDomain
        guard gpuCount >= 1, gpuCount <= Self.maxGPUs else {
            throw ConfigError(source: "cluster", field: "gpus", message: "must be 1 to \(Self.maxGPUs), got \(gpuCount)")
        }
        guard perNode >= 1 else {
            throw ConfigError(source: "cluster", field: "gpus-per-node", message: "must be at least 1, got \(perNode)")
        }
        guard perNode <= gpu.scaleUpDomain else {
            throw ConfigError(source: "cluster", field: "gpus-per-node",
                              message: "(\(perNode)) exceeds the \(gpu.id) scale-up domain of \(gpu.scaleUpDomain) GPUs")
        }
        guard !wholeNodes || gpuCount <= perNode || gpuCount % perNode == 0 else {
            throw ConfigError(source: "cluster", field: "gpus",
                              message: "(\(gpuCount)) must fit in one node or be a multiple of \(perNode) GPUs per node")
        }
        self.gpu = gpu
        self.gpuCount = gpuCount
        self.gpusPerNode = perNode
    }

    /// Nodes the GPUs occupy (a disaggregated deployment may leave one partly filled).
    public var nodes: Int { max(1, (gpuCount + gpusPerNode - 1) / gpusPerNode) }
    /// GPUs that share scale-up links (a partial node has fewer).
    public var scaleUpGroup: Int { min(gpusPerNode, gpuCount) }
    public var totalMemory: Int { gpu.memoryBytes * gpuCount }
}
