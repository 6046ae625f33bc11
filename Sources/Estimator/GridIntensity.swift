/// Carbon intensity of electricity in a few named grids, grams CO2-equivalent per kWh generated,
/// annual averages for 2023, for `--grid NAME`. Sources in docs/energy.md.
public struct GridIntensity: Sendable, Equatable {
    public var name: String
    public var gramsPerKWh: Double
    public var source: String

    public static let table: [GridIntensity] = [
        GridIntensity(name: "world", gramsPerKWh: 481, source: "Ember, world power sector 2023 (via Statista 943137)"),
        GridIntensity(name: "us", gramsPerKWh: 369, source: "Ember, United States 2023 (secondary, unverified)"),
        GridIntensity(name: "eu", gramsPerKWh: 244, source: "Ember, European Union 2023 (secondary, unverified)"),
        GridIntensity(name: "france", gramsPerKWh: 56, source: "Our World in Data (Ember and Energy Institute), France 2023"),
        GridIntensity(name: "germany", gramsPerKWh: 381, source: "Our World in Data (Ember and Energy Institute), Germany 2023"),
        GridIntensity(name: "china", gramsPerKWh: 582, source: "Our World in Data (Ember and Energy Institute), China 2023"),
        GridIntensity(name: "india", gramsPerKWh: 713, source: "Ember and Our World in Data, India 2023"),
        GridIntensity(name: "norway", gramsPerKWh: 30, source: "Ember, Norway 2023 (via Statista 943137)"),
    ]

    /// The world average unless a user names a grid or a figure.
    public static var `default`: GridIntensity { table[0] }

    public static func named(_ name: String) -> GridIntensity? {
        table.first { $0.name == name.lowercased() }
    }
}
