import ArgumentParser
import ModelSpec

/// `--set key=value` overrides of config fields: architecture what-ifs one flag away.
struct OverrideOptions: ParsableArguments {
    @Option(name: .customLong("set"), parsing: .singleValue,
            help: ArgumentHelp("Override a config.json field before the spec is built (repeatable), e.g. --set n_routed_experts=512.",
                               valueName: "key=value"))
    var assignments: [String] = []

    func validate() throws { _ = try pairs() }

    func pairs() throws -> [(String, String)] {
        try assignments.map { text in
            guard let equals = text.firstIndex(of: "="), equals != text.startIndex else {
                throw ValidationError("--set needs key=value, got '\(text)'")
            }
            return (String(text[..<equals]), String(text[text.index(after: equals)...]))
        }
    }

    func load(_ model: String) throws -> ModelSpec {
        try ModelCatalog.load(model, overrides: pairs())
    }
}
