import ArgumentParser
import ModelSpec

struct Models: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the model presets with their parameter counts.",
        discussion: """
        Presets are HuggingFace config.json files in configs/models/. Any command that takes a \
        model also takes a path to a config.json or to a HuggingFace model folder.

        Examples:
          moesim models
          moesim models --json
        """
    )

    @OptionGroup var output: OutputOptions

    func run() throws {
        let ids = ModelCatalog.presetIDs
        guard !ids.isEmpty else {
            throw ValidationError("no model presets found: run from the repository or set MOESIM_CONFIGS to its configs folder")
        }
        let specs = try ids.map { try ModelCatalog.load($0) }
        if output.json {
            try Output.printJSON(["models": specs.map { s -> [String: Any] in
                let c = s.parameterCounts
                return ["id": s.id, "model_type": s.modelType, "total_params": c.total, "active_params": c.active,
                        "attention": s.mixerName, "layers": s.layerCount,
                        "experts": s.moe?.routedExperts ?? 0, "experts_per_token": s.moe?.expertsPerToken ?? 0,
                        "max_context": s.maxPositionEmbeddings]
            }])
            return
        }
        let header = ["model", "type", "attention", "layers", "experts", "total", "active", "context"]
        let rows = specs.map { s -> [String] in
            let c = s.parameterCounts
            let experts = s.moe.map { "\($0.expertsPerToken)/\($0.routedExperts)" } ?? "dense"
            return [s.id, s.modelType, s.mixerName, "\(s.layerCount)", experts, Output.count(c.total),
                    Output.count(c.active), Output.grouped(s.maxPositionEmbeddings)]
        }
        Output.printColumns(header: header, rows: rows)
    }
}
