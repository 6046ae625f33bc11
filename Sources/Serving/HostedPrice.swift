import ConfigFile
import Estimator

/// A hosted API's price for a model (configs/pricing/hosted.json, schema `moesim-prices/1`):
/// USD per million tokens, in tiers by prompt length, with its date and source.
public struct HostedPrice: Sendable, Equatable {
    public struct Tier: Sendable, Equatable {
        /// The longest prompt this tier covers; nil: unbounded.
        public var maxPromptTokens: Int?
        public var input: Double
        /// Input tokens served from the provider's context cache; nil where none is listed.
        public var cachedInput: Double?
        public var output: Double

        /// USD for one request: fresh prompt tokens, cached ones (at the cached tier, else the
        /// input price) and answer tokens.
        public func cost(input: Int, cached: Int = 0, output answer: Int) -> Double {
            (Double(input) * self.input + Double(cached) * (cachedInput ?? self.input) + Double(answer) * output) / 1e6
        }
    }

    public var model: String
    public var provider: String
    public var variant: String?
    public var date: String
    public var source: String
    /// The entry `report` compares with: the model maker's own API, else a large host.
    public var isReference: Bool
    public var tiers: [Tier]

    public static let schema = "moesim-prices/1"

    /// The tier a prompt of `tokens` falls in (tiers are listed by growing bound); nil past the last.
    public func tier(promptTokens tokens: Int) -> Tier? {
        tiers.first { ($0.maxPromptTokens ?? Int.max) >= tokens }
    }

    /// Break-even utilisation of a deployment against this API price for requests of `input` and
    /// `output` tokens: what one request costs on the deployment at full use (its GPU-seconds at
    /// the steady state's per-GPU rates × the GPU-hour price) over what the API charges for it,
    /// in the tier the prompt falls in. Below that share of its time busy, the deployment costs
    /// more per request than the API. Nil without a tier, a GPU-hour price or rates.
    public func breakEven(_ e: Estimate, input: Int, output: Int) -> (tier: Tier, utilisation: Double)? {
        guard let tier = tier(promptTokens: input), let gpuHour = e.gpuHourPrice,
              let seconds = e.gpuSeconds(prompt: input, output: output) else { return nil }
        let hosted = tier.cost(input: input, output: output)
        guard hosted > 0 else { return nil }
        return (tier, gpuHour / 3600 * seconds / hosted)
    }

    /// Every entry of a price file; a malformed entry is an error naming the field.
    public static func load(file path: String) throws -> [HostedPrice] {
        let json = try JSONObject(contentsOf: path)
        guard try json.string("schema") == schema else { throw json.error("schema", "must be \"\(schema)\"") }
        guard let raw = try json.array("entries") else { throw json.error("entries", "is missing") }
        return try raw.enumerated().map { i, item in
            guard let values = item as? [String: Any] else { throw json.error("entries[\(i)]", "must be an object") }
            let e = JSONObject(values: values, source: json.source, path: "entries[\(i)].")
            guard let rawTiers = try e.array("tiers"), !rawTiers.isEmpty else { throw e.error("tiers", "must list at least one tier") }
            var tiers: [Tier] = []
            for (j, t) in rawTiers.enumerated() {
                guard let tv = t as? [String: Any] else { throw e.error("tiers[\(j)]", "must be an object") }
                let tier = JSONObject(values: tv, source: json.source, path: "entries[\(i)].tiers[\(j)].")
                func price(_ key: String) throws -> Double? {
                    guard let v = try tier.double(key) else { return nil }
                    guard v.isFinite, v >= 0, v <= 10_000 else { throw tier.error(key, "must be 0 to 10,000 USD per million tokens, got \(v)") }
                    return v
                }
                guard let input = try price("input") else { throw tier.error("input", "is missing") }
                guard let output = try price("output") else { throw tier.error("output", "is missing") }
                let bound = try tier.int("max_prompt_tokens", atLeast: 1)
                if let previous = tiers.last?.maxPromptTokens, (bound ?? Int.max) <= previous {
                    throw tier.error("max_prompt_tokens", "must grow from tier to tier")
                }
                if j > 0, tiers.last?.maxPromptTokens == nil { throw tier.error("max_prompt_tokens", "follows an unbounded tier") }
                tiers.append(Tier(maxPromptTokens: bound, input: input, cachedInput: try price("cached_input"), output: output))
            }
            return HostedPrice(model: try e.requiredString("model"), provider: try e.requiredString("provider"),
                               variant: try e.string("variant"), date: try e.requiredString("date"),
                               source: try e.requiredString("source"), isReference: try e.bool("reference") ?? false, tiers: tiers)
        }
    }

    /// The presets' price file, or nil without a configs folder.
    public static func presets() throws -> [HostedPrice] {
        guard let root = ConfigDirectory.locate() else { return [] }
        return try load(file: root + "/pricing/hosted.json")
    }

    /// The model's reference price, if the file has one.
    public static func reference(for model: String, in prices: [HostedPrice]) -> HostedPrice? {
        prices.first { $0.model == model && $0.isReference }
    }
}
