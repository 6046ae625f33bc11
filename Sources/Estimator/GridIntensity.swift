/// Carbon intensity of electricity in a few named grids, grams CO2-equivalent per kWh: annual
/// averages of generation, for `--grid NAME`. Figures and sources in docs/energy.md.
public struct GridIntensity: Sendable, Equatable {
    public var name: String
    public var gramsPerKWh: Double
    public var source: String

    public static let table: [GridIntensity] = [
        GridIntensity(name: "world", gramsPerKWh: 473, source: "Ember, Global Electricity Review 2025: world power sector, 2024"),
        GridIntensity(name: "us", gramsPerKWh: 384, source: "Ember, United States, 2024"),
        GridIntensity(name: "eu", gramsPerKWh: 213, source: "Ember, European Union, 2024"),
        GridIntensity(name: "france", gramsPerKWh: 44, source: "Ember, France, 2024"),
        GridIntensity(name: "germany", gramsPerKWh: 344, source: "Ember, Germany, 2024"),
        GridIntensity(name: "china", gramsPerKWh: 560, source: "Ember, China, 2024"),
        GridIntensity(name: "india", gramsPerKWh: 708, source: "Ember, India, 2024"),
        GridIntensity(name: "norway", gramsPerKWh: 30, source: "Ember, Norway, 2024"),
    ]

    /// The world average unless a user names a grid or a figure.
    public static var `default`: GridIntensity { table[0] }

    public static func named(_ name: String) -> GridIntensity? {
        table.first { $0.name == name.lowercased() }
    }
}
