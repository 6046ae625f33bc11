import ConfigFile
import Foundation

/// How a model is cut over a cluster, in the vocabulary of SGLang and vLLM.
///
/// Within one pipeline stage of one replica, a group of GPUs serves a batch: attention runs either
/// tensor-parallel over `tp` GPUs (heads split) or data-parallel (DP attention: every GPU runs the
/// attention of its own sequences, as DeepSeek and SGLang deploy MLA); routed experts are split
/// over `ep` GPUs, each expert further over `moeTP` GPUs, so the group has ep × moeTP GPUs (tp for
/// a dense model). Dense FFN layers, shared experts, embeddings and the output head are sharded
/// like attention (replicated under DP attention). `pp` stages hold contiguous layers; whole
/// groups are replicated `replicas` times (plain data parallelism).
public struct Layout: Sendable, Hashable, CustomStringConvertible {
    public enum AttentionMode: String, Sendable { case tensor = "tp", data = "dp" }

    public var attention: AttentionMode
    public var tp: Int
    public var ep: Int
    public var moeTP: Int
    public var pp: Int

    public init(attention: AttentionMode, tp: Int, ep: Int, pp: Int, moeTP: Int = 1) {
        self.attention = attention
        self.tp = tp
        self.ep = ep
        self.pp = pp
        self.moeTP = moeTP
    }

    /// GPUs in one stage of one replica.
    public func groupSize(isMoE: Bool) -> Int { isMoE ? ep * moeTP : tp }

    /// GPUs that share one copy of the attention (and hold the same sequences' KV).
    public var attentionGroup: Int { attention == .data ? 1 : tp }

    /// The largest parallel degree a layout may name (the largest cluster).
    public static let maxDegree = 65_536

    public var description: String {
        "attention=\(attention.rawValue),tp=\(tp),ep=\(ep),pp=\(pp)" + (moeTP > 1 ? ",moe_tp=\(moeTP)" : "")
    }

    /// Parses "attention=dp,tp=1,ep=32,pp=1[,moe_tp=2]". Absent keys: attention=tp, degrees 1.
    public static func parse(_ text: String) throws -> Layout {
        var layout = Layout(attention: .tensor, tp: 1, ep: 1, pp: 1)
        for part in text.split(separator: ",") {
            let pieces = part.split(separator: "=", maxSplits: 1).map { String($0).trimmingCharacters(in: .whitespaces) }
            guard pieces.count == 2 else {
                throw ConfigError(source: "--layout", field: nil, message: "'\(part)' is not key=value (e.g. attention=dp,tp=1,ep=32,pp=1)")
            }
            let key = pieces[0], value = pieces[1]
            if key == "attention" {
                guard let mode = AttentionMode(rawValue: value) else {
                    throw ConfigError(source: "--layout", field: "attention", message: "must be tp or dp, got '\(value)'")
                }
                layout.attention = mode
                continue
            }
            guard let degree = Int(value), (1...maxDegree).contains(degree) else {
                throw ConfigError(source: "--layout", field: key, message: "must be an integer from 1 to \(maxDegree), got '\(value)'")
            }
            switch key {
            case "tp": layout.tp = degree
            case "ep": layout.ep = degree
            case "pp": layout.pp = degree
            case "moe_tp": layout.moeTP = degree
            default:
                throw ConfigError(source: "--layout", field: key, message: "is not a layout key (attention, tp, ep, pp, moe_tp)")
            }
        }
        return layout
    }
}
