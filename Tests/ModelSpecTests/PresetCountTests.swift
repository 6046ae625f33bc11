import Foundation
import Testing
import TestSupport
@testable import ModelSpec

/// The repository root (TestSupport) and its presets by id.
let repositoryRoot = root

func preset(_ id: String, overrides: [(String, String)] = []) throws -> ModelSpec {
    try model(id, overrides: overrides)
}

@Suite struct PresetCountTests {
    struct Published: Decodable {
        let model: String
        let recomputed_total: Int
        let recomputed_active: Int
        let mtp_params: Int?
    }

    /// Exact integer equality with the counts recomputed independently from each config.json
    /// (../shared/reference/published-params.json, copied into Fixtures).
    @Test func countsEqualTheRecomputedReference() throws {
        let data = try Data(contentsOf: repositoryRoot.appendingPathComponent("Tests/ModelSpecTests/Fixtures/published-params.json"))
        struct File: Decodable { let models: [Published] }
        let file = try JSONDecoder().decode(File.self, from: data)
        #expect(file.models.count == 5)
        for entry in file.models {
            let counts = try preset(entry.model).parameterCounts
            #expect(counts.total == entry.recomputed_total, "\(entry.model) total")
            #expect(counts.active == entry.recomputed_active, "\(entry.model) active")
            if let mtp = entry.mtp_params { #expect(counts.mtp == mtp, "\(entry.model) MTP") }
        }
    }

    /// Every preset against its vendor's published figure, to the precision the vendor printed.
    /// Vendors round (Qwen3-235B: 22.19B → "22B") or truncate (DeepSeek-V3: 37.55B → "37B",
    /// Qwen3-30B-A3B: 3.353B → "3.3B"), so a figure P printed to a unit u is met by a count in
    /// [P − u/2, P + u). The last flag marks vendors whose active count leaves the embedding
    /// table out (OpenAI for gpt-oss, Moonshot for Kimi K2).
    @Test(arguments: [
        // id, total, total unit, active, active unit, active without embeddings
        ("kimi-k2", 1.0e12, 1e11, 32e9, 1e9, true),            // "1T total, 32B activated" (Moonshot)
        ("deepseek-v3", 671e9, 1e9, 37e9, 1e9, false),         // "671B total, 37B activated"
        ("deepseek-r1", 671e9, 1e9, 37e9, 1e9, false),
        ("qwen3-235b-a22b", 235e9, 1e9, 22e9, 1e9, false),
        ("qwen3-30b-a3b", 30.5e9, 1e8, 3.3e9, 1e8, false),
        ("qwen3-coder-480b-a35b", 480e9, 1e9, 35e9, 1e9, false),
        ("mixtral-8x7b", 46.7e9, 1e8, 12.9e9, 1e8, false),
        ("mixtral-8x22b", 141e9, 1e9, 39e9, 1e9, false),
        ("llama4-maverick", 400e9, 1e10, 17e9, 1e9, false),     // "17B active, 400B total" (Meta)
        ("llama3.1-70b", 70.6e9, 1e8, 70.6e9, 1e8, false),      // model card: 70.6B
        ("llama3.1-405b", 405e9, 1e9, 405e9, 1e9, false),       // model card: 405B
        ("gpt-oss-120b", 117e9, 1e9, 5.1e9, 1e8, true),         // "117B total, 5.1B active" (OpenAI)
        ("gpt-oss-20b", 21e9, 1e9, 3.6e9, 1e8, true),           // "21B total, 3.6B active"
    ] as [(String, Double, Double, Double, Double, Bool)])
    func countsRoundToThePublishedFigures(entry: (String, Double, Double, Double, Double, Bool)) throws {
        let (id, total, totalUnit, active, activeUnit, withoutEmbeddings) = entry
        let spec = try preset(id)
        let counts = spec.parameterCounts
        let activeCount = Double(counts.active - (withoutEmbeddings ? counts.count(.embeddings) : 0))
        #expect(matchesPublished(Double(counts.total), total, unit: totalUnit), "\(id): total \(counts.total)")
        #expect(matchesPublished(activeCount, active, unit: activeUnit), "\(id): active \(activeCount)")
    }

    func matchesPublished(_ count: Double, _ published: Double, unit: Double) -> Bool {
        count >= published - unit / 2 && count < published + unit
    }

    /// Llama 4 Scout: Meta's "109B total" counts the vision encoder, which the text config (and so
    /// moesim) leaves out; the language model alone is 107.8B. Active "17B" is text only.
    @Test func llama4ScoutTextModel() throws {
        let counts = try preset("llama4-scout").parameterCounts
        #expect(counts.total > 105_000_000_000 && counts.total < 109_000_000_000)
        #expect(matchesPublished(Double(counts.active), 17e9, unit: 1e9))
    }

    /// Llama 2 70B: Meta's figure "70B" is a name; the released weights hold 68,976,648,192
    /// parameters (the sum of the safetensors shapes, Meta's own 69B in the Llama 2 paper's
    /// Table 1 rounding).
    @Test func llama2Has69BillionParameters() throws {
        let counts = try preset("llama2-70b").parameterCounts
        #expect(counts.total == 68_976_648_192)
        #expect(counts.active == counts.total)
    }

    @Test func theHypotheticalOneTrillionModelIsAboutOneTrillion() throws {
        let counts = try preset("qwen3-max-1t").parameterCounts
        #expect(abs(Double(counts.total) - 1e12) < 0.05e12)
        #expect(counts.active < counts.total / 20)
    }

    /// Conservation: categories add up to the total, and bf16 bytes are exactly 2 per parameter.
    @Test(arguments: ["kimi-k2", "gpt-oss-120b", "llama4-maverick", "qwen3-max-1t", "mixtral-8x7b"])
    func categoriesAndBytesAreConsistent(id: String) throws {
        let spec = try preset(id)
        let counts = spec.parameterCounts
        let sum = WeightTensor.Category.allCases.filter { $0 != .mtp }.reduce(0) { $0 + counts.count($1) }
        #expect(sum == counts.total)
        #expect(spec.weightBytes(.bf16) == 2 * counts.total)
        // Quantized formats shrink only the quantizable tensors, and in the expected order.
        #expect(spec.weightBytes(.fp8) < spec.weightBytes(.bf16))
        #expect(spec.weightBytes(.nvfp4) < spec.weightBytes(.fp8))
        #expect(spec.weightBytes(.mxfp4) < spec.weightBytes(.nvfp4))
    }
}
