import Foundation

/// Dependency-free SVG line charts with tick values a reader can use (1, 2 or 5 × 10ⁿ) and a
/// legend that names every series.
struct Chart {
    struct Series {
        var name: String
        var points: [(x: Double, y: Double)]
        /// Draw points as well as the line (few points), or only the line.
        var markers = true
        var dashed = false
    }

    var title: String
    var xLabel: String
    var yLabel: String
    var series: [Series]

    /// Colours distinguishable by most readers (Okabe–Ito, then Tableau), then the same hues
    /// dashed: 16 series before any repeats exactly.
    static let palette = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#8c564b"]

    /// Ticks at 1, 2 or 5 × 10ⁿ covering [0, maximum] in at most `count` steps.
    static func ticks(upTo maximum: Double, count: Int = 6) -> [Double] {
        guard maximum > 1e-300, maximum < 1e300 else { return [0, 1] }
        let raw = maximum / Double(count)
        let magnitude = pow(10, floor(log10(raw)))
        let step = [1.0, 2, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? 10 * magnitude
        let top = (maximum / step).rounded(.up) * step
        return stride(from: 0, through: top + step / 2, by: step).map { $0 }
    }

    static func label(_ v: Double) -> String {
        if v == 0 { return "0" }
        if abs(v) >= 1e6 { return String(format: "%gM", v / 1e6) }
        if abs(v) >= 1e4 { return String(format: "%gk", v / 1e3) }
        return String(format: "%g", (v * 1e6).rounded() / 1e6)
    }

    func svg() -> String {
        let legendRows = series.count
        let width = 760.0, plotHeight = 420.0, left = 80.0, right = 24.0, top = 44.0, bottom = 56.0
        let legendHeight = Double(legendRows) * 18 + 12
        let height = top + plotHeight + bottom + legendHeight
        // Points that are not finite have no place on a chart.
        let series = series.map { s -> Series in
            var t = s
            t.points = s.points.filter { $0.x.isFinite && $0.y.isFinite }
            return t
        }
        let all = series.flatMap(\.points)
        let xTicks = Self.ticks(upTo: all.map(\.x).max() ?? 1), yTicks = Self.ticks(upTo: all.map(\.y).max() ?? 1)
        let xMax = xTicks.last ?? 1, yMax = yTicks.last ?? 1
        func px(_ x: Double) -> Double { left + x / xMax * (width - left - right) }
        func py(_ y: Double) -> Double { top + plotHeight - y / yMax * plotHeight }
        var out = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" "
            + "font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        out += "<text x=\"\(left)\" y=\"26\" font-size=\"14\">\(Self.escape(title))</text>\n"
        for x in xTicks {
            out += "<line x1=\"\(px(x))\" y1=\"\(top)\" x2=\"\(px(x))\" y2=\"\(top + plotHeight)\" stroke=\"#eee\"/>\n"
            out += "<text x=\"\(px(x))\" y=\"\(top + plotHeight + 16)\" text-anchor=\"middle\">\(Self.label(x))</text>\n"
        }
        for y in yTicks {
            out += "<line x1=\"\(left)\" y1=\"\(py(y))\" x2=\"\(width - right)\" y2=\"\(py(y))\" stroke=\"#eee\"/>\n"
            out += "<text x=\"\(left - 6)\" y=\"\(py(y) + 4)\" text-anchor=\"end\">\(Self.label(y))</text>\n"
        }
        out += "<text x=\"\((left + width - right) / 2)\" y=\"\(top + plotHeight + 36)\" text-anchor=\"middle\">\(Self.escape(xLabel))</text>\n"
        out += "<text transform=\"translate(18 \(top + plotHeight / 2)) rotate(-90)\" text-anchor=\"middle\">\(Self.escape(yLabel))</text>\n"
        for (i, s) in series.enumerated() {
            let colour = Self.palette[i % Self.palette.count]
            let dash = s.dashed || i >= Self.palette.count ? " stroke-dasharray=\"6 3\"" : ""
            let path = s.points.map { "\(px($0.x)),\(py($0.y))" }.joined(separator: " ")
            out += "<polyline points=\"\(path)\" fill=\"none\" stroke=\"\(colour)\" stroke-width=\"1.6\"\(dash)/>\n"
            if s.markers {
                for p in s.points {
                    out += "<circle cx=\"\(px(p.x))\" cy=\"\(py(p.y))\" r=\"2.5\" fill=\"\(colour)\"><title>\(Self.escape(s.name)): "
                        + "\(Self.label(p.x)), \(Self.label(p.y))</title></circle>\n"
                }
            }
            let ly = top + plotHeight + bottom + 14 + Double(i) * 18
            out += "<line x1=\"\(left)\" y1=\"\(ly - 4)\" x2=\"\(left + 24)\" y2=\"\(ly - 4)\" stroke=\"\(colour)\" stroke-width=\"2\"\(dash)/>\n"
            out += "<text x=\"\(left + 30)\" y=\"\(ly)\">\(Self.escape(s.name))</text>\n"
        }
        return out + "</svg>\n"
    }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;")
    }
}

/// Writes an output file without replacing anything that is not a regular file (a device node,
/// a symlink, a folder): `--csv /dev/null` must not destroy /dev/null.
enum OutputFile {
    static func write(_ text: String, to path: String) throws {
        var isFolder: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) {
            let attributes = try? FileManager.default.attributesOfItem(atPath: path)
            let type = attributes?[.type] as? FileAttributeType
            guard !isFolder.boolValue, type == .typeRegular else {
                throw OutputError("\(path) exists and is not a regular file; not replacing it")
            }
        }
        if let link = try? FileManager.default.destinationOfSymbolicLink(atPath: path), !link.isEmpty {
            throw OutputError("\(path) is a symbolic link; not replacing it")
        }
        do { try text.write(toFile: path, atomically: true, encoding: .utf8) } catch {
            throw OutputError("cannot write \(path): \(error.localizedDescription)")
        }
    }
}

struct OutputError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
