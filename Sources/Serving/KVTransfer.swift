import Estimator
import Hardware
import ModelSpec
import Planner

/// Moving a prompt's KV cache from the prefill pool to the decode pool (Mooncake, NIXL): RDMA
/// over each GPU's scale-out NIC, or the scale-up fabric when both pools sit in one NVLink domain
/// (GB200/GB300 NVL72 racks). GQA caches split over min(tp, KV heads) GPUs travel in parallel,
/// as many streams as the side with fewer such GPUs has NICs (a cache split over 4 prefill ranks
/// lands on one decode rank under data-parallel attention through its one NIC); MLA's latent is
/// replicated and one copy is sent. Transfers overlap with
/// computation (RDMA engines) and do not contend with each other: at the rates served, the KV
/// bytes per second are a small share of the NICs (DeepSeek-R1 at 20,000 prompt tokens/s per
/// prefill GPU: 1.4 GB/s of 50).
struct KVTransfer {
    let model: ModelSpec
    let format: KVCacheFormat
    let bandwidth: Double
    let latency: Double
    /// The model's distinct layers and how many of each (`ModelSpec.layerGroups`: one to three
    /// kinds), so that a transfer costs a few terms, not a pass over every layer.
    let kinds: [(Layer, Int)]

    init(_ request: ServingRequest, prefill: Disaggregation.Pool, decode: Disaggregation.Pool) {
        let base = request.base
        let gpu = base.cluster.gpu
        let model = base.model
        var streams = 1.0
        if case let .grouped(a) = model.attention {
            func holders(_ pool: Disaggregation.Pool) -> Double { min(Double(pool.layout?.attentionGroup ?? 1), Double(a.kvHeads)) }
            streams = min(holders(prefill), holders(decode))
        }
        let oneDomain = base.cluster.gpuCount <= base.cluster.gpusPerNode
        let link = oneDomain ? gpu.scaleUpBandwidth * gpu.efficiency.scaleUp : gpu.scaleOutBandwidth * gpu.efficiency.scaleOut
        self.model = model
        format = base.kvCache
        bandwidth = max(link * streams, 1)
        latency = oneDomain ? gpu.scaleUpLatency : gpu.scaleOutLatency
        kinds = model.layerGroups()
    }

    /// The prompt's whole cache as it stands (windows, compression, linear-attention state): the
    /// same bytes as `ModelSpec.kvCacheBytes`, by kind of layer.
    func seconds(_ promptTokens: Int) -> Double {
        let bytes = kinds.reduce(0.0) { total, kind in
            total + Double(kind.1) * Double(model.kvCacheBytes(kind.0, context: promptTokens, format: format))
        }
        return latency + bytes / bandwidth
    }
}
