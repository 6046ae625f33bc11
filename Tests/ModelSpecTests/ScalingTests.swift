import Testing
@testable import ModelSpec

@Suite struct ScalingTests {
    @Test func kimiScalesKeepingItsArchitecture() throws {
        let kimi = try preset("kimi-k2")
        let small = try kimi.scaled(by: 8, layers: 4)
        #expect(small.hiddenSize == 896 && small.layerCount == 4 && small.vocabSize == 20480)
        #expect(small.moe?.routedExperts == 48 && small.moe?.expertsPerToken == 8)
        #expect(small.layers[0].isMoE == false && small.layers[1].isMoE)
        if case let .latent(a) = small.attention {
            #expect(a.heads == 8 && a.kvLoraRank == 64 && a.qLoraRank == 192 && a.qkRopeHeadDim == 64)
        } else {
            Issue.record("MLA expected")
        }
        // Per-layer parameters shrink by about F² (widths multiply), experts by F³ (count too).
        #expect(small.parameterCounts.total < kimi.parameterCounts.total / 1000)
    }

    /// Experts never drop below twice the experts per token: Mixtral's 8 experts top-2 keep 4 at
    /// ÷8 (8 / 8 would leave 1, fewer than it routes to), so every preset benches with its defaults.
    @Test func expertsStayAboveTwiceThePerTokenCount() throws {
        let mixtral = try preset("mixtral-8x7b").scaled(by: 8, layers: 4)
        #expect(mixtral.moe?.routedExperts == 4 && mixtral.moe?.expertsPerToken == 2)
        let deepseek = try preset("deepseek-v3").scaled(by: 8, layers: 4)
        #expect(deepseek.moe?.routedExperts == 32)
    }

    /// A scaled copy stays one consistent model: the indexer reads the query latent at its new
    /// rank (DeepSeek-V3.2, GLM-5), sliding-window attention keeps its heads per KV head at the
    /// divided count (MiMo-V2-Flash), LatentMoE's width divides with the hidden size (Kimi K3), and
    /// the scaled model is about F² to F³ smaller. (MiMo's 16 query heads per KV head allow ÷4.)
    @Test(arguments: [("deepseek-v3.2", 8), ("glm-5", 8), ("mimo-v2-flash", 4), ("kimi-k3", 8)])
    func scaledCopiesStayConsistent(_ id: String, _ f: Int) throws {
        let full = try preset(id), small = try full.scaled(by: f, layers: 4)
        if let x = small.sparseAttention, case let .latent(a) = small.attention {
            #expect(x.queryRank == a.qLoraRank && x.heads * f == (full.sparseAttention?.heads ?? 0))
        }
        if let sliding = small.slidingAttention, let before = full.slidingAttention {
            #expect(sliding.heads * f == before.heads && sliding.heads / sliding.kvHeads == before.heads / before.kvHeads)
        }
        if let latent = small.moe?.latentSize {
            #expect(latent * f == full.moe?.latentSize && latent <= small.hiddenSize)
        }
        #expect(small.parameterCounts.total * f * f < full.parameterCounts.total)
    }

    @Test func gqaKeepsHeadsPerKVHead() throws {
        let s = try preset("qwen3-max-1t").scaled(by: 8, layers: 2)
        if case let .grouped(a) = s.attention { #expect(a.heads == 8 && a.kvHeads == 1) }
    }

    @Test(arguments: [("kimi-k2", 5, "hidden_size"), ("kimi-k2", 0, "scale"), ("mixtral-8x7b", 3, "hidden_size"),
                      ("qwen3-max-1t", 16, "num_key_value_heads")])
    func badScalesNameTheDimension(id: String, factor: Int, dimension: String) throws {
        do {
            _ = try preset(id).scaled(by: factor)
            Issue.record("no error")
        } catch let error as ScalingError {
            #expect(error.dimension == dimension, "\(error)")
        }
    }
}
