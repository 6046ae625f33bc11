import ConfigFile
import Foundation

/// One request as it reaches the deployment.
public struct Arrival: Sendable, Equatable {
    public var time: Double
    public var promptTokens: Int
    public var outputTokens: Int
    /// A shared prefix (system prompt, conversation so far) and its length in tokens; requests
    /// with the same id share it through the prefix cache.
    public var prefixID: Int?
    public var prefixTokens: Int

    public init(time: Double, promptTokens: Int, outputTokens: Int, prefixID: Int? = nil, prefixTokens: Int = 0) {
        self.time = time
        self.promptTokens = promptTokens
        self.outputTokens = outputTokens
        self.prefixID = prefixID
        self.prefixTokens = prefixTokens
    }
}

/// How requests arrive in an open loop.
public enum ArrivalProcess: Sendable, Equatable {
    /// Independent arrivals at `rate` per second (exponential gaps).
    case poisson(rate: Double)
    /// Bursty arrivals: gamma-distributed gaps of mean 1 / rate and coefficient of variation `cv`
    /// (cv = 1 is Poisson; larger is burstier), as Vidur and the serving benchmarks model bursts.
    case gamma(rate: Double, cv: Double)

    var rate: Double {
        switch self {
        case let .poisson(rate), let .gamma(rate, _): rate
        }
    }
}

/// A seeded source of uniform numbers (SplitMix64): the same seed gives the same workload.
struct SeededRandom {
    var state: UInt64

    mutating func nextUInt64() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in (0, 1).
    mutating func uniform() -> Double { (Double(nextUInt64() >> 11) + 0.5) / 9_007_199_254_740_992 }

    mutating func normal() -> Double { sqrt(-2 * log(uniform())) * cos(2 * .pi * uniform()) }

    mutating func exponential(mean: Double) -> Double { -mean * log(uniform()) }

    /// Gamma(shape, scale) by Marsaglia and Tsang's method (shape < 1 boosted by U^(1/shape)).
    mutating func gamma(shape: Double, scale: Double) -> Double {
        if shape < 1 { return gamma(shape: shape + 1, scale: scale) * pow(uniform(), 1 / shape) }
        let d = shape - 1.0 / 3, c = 1 / sqrt(9 * d)
        while true {
            let x = normal(), v0 = 1 + c * x
            guard v0 > 0 else { continue }
            let v = v0 * v0 * v0, u = uniform()
            if log(u) < 0.5 * x * x + d - d * v + d * log(v) { return d * v * scale }
        }
    }
}

/// Where a simulation's requests come from.
enum ArrivalSource {
    /// `count` synthetic arrivals: the process's gaps, prompt and answer lengths uniform in
    /// their ranges.
    case synthetic(process: ArrivalProcess, count: Int, lengths: RequestLengths, random: SeededRandom, time: Double, made: Int)
    case trace(TraceReader)

    mutating func next() throws -> Arrival? {
        switch self {
        case .synthetic(let process, let count, var lengths, var random, var time, let made):
            guard made < count else { return nil }
            switch process {
            case let .poisson(rate): time += random.exponential(mean: 1 / rate)
            case let .gamma(rate, cv):
                let shape = 1 / (cv * cv)
                time += random.gamma(shape: shape, scale: 1 / (rate * shape))
            }
            let (prompt, output) = lengths.next()
            self = .synthetic(process: process, count: count, lengths: lengths, random: random, time: time, made: made + 1)
            return Arrival(time: time, promptTokens: prompt, outputTokens: output)
        case let .trace(reader):
            // A class: its buffer and prefix table are read on in place, never copied.
            return try reader.next()
        }
    }
}

/// A request trace read line by line (memory does not grow with its length): JSON lines with
/// `arrival_s`, `input_tokens`, `output_tokens` and optional `prefix_id` (string or number) and
/// `prefix_tokens`; or CSV with those names in a header row. Arrival times must not decrease.
/// Memory holds one 64 KiB chunk and the distinct prefix ids seen.
public final class TraceReader {
    let path: String
    private var handle: FileHandle
    private var buffer = Data()
    private var offset = 0
    private var eof = false
    private var lineNumber = 0
    private var columns: [String]? = nil
    private var isCSV: Bool
    private var lastTime = 0.0
    private var prefixIDs: [String: Int] = [:]

    public init(path: String) throws {
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder), !isFolder.boolValue,
              let handle = FileHandle(forReadingAtPath: path) else {
            throw ConfigError(source: path, field: nil, message: "cannot be read (missing, a folder, or no permission)")
        }
        self.path = path
        self.handle = handle
        isCSV = path.lowercased().hasSuffix(".csv")
    }

    /// Lines longer than this are an error (a file with no newline must not fill the memory).
    static let maxLine = 1 << 20

    private func line() throws -> String? {
        while true {
            let start = buffer.startIndex + offset
            if let newline = buffer[start...].firstIndex(of: 0x0A) {
                let bytes = buffer[start..<newline]
                offset = newline + 1 - buffer.startIndex
                lineNumber += 1
                return String(decoding: bytes, as: UTF8.self)
            }
            guard buffer.count - offset <= Self.maxLine else {
                lineNumber += 1
                throw fail("is longer than \(Self.maxLine) bytes")
            }
            if eof {
                guard offset < buffer.count else { return nil }
                defer { buffer.removeAll(); offset = 0 }
                lineNumber += 1
                return String(decoding: buffer[start...], as: UTF8.self)
            }
            // Drop what has been read, then read on.
            buffer.removeSubrange(buffer.startIndex..<start)
            offset = 0
            // The throwing read: a read error is an error, not an abort.
            let chunk: Data
            do { chunk = try handle.read(upToCount: 1 << 16) ?? Data() } catch {
                throw ConfigError(source: path, field: nil, message: "cannot be read: \(error.localizedDescription)")
            }
            if chunk.isEmpty { eof = true } else { buffer.append(chunk) }
        }
    }

    private func fail(_ message: String) -> ConfigError {
        ConfigError(source: path, field: "line \(lineNumber)", message: message)
    }

    func next() throws -> Arrival? {
        while let raw = try line() {
            let text = raw.trimmingCharacters(in: .whitespacesAndNewlines)
            if text.isEmpty || text.hasPrefix("#") { continue }
            var fields: [String: String] = [:]
            if isCSV {
                let cells = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
                guard let columns else {
                    columns = cells
                    for needed in ["arrival_s", "input_tokens", "output_tokens"] where !cells.contains(needed) {
                        throw fail("the header must name \(needed) (arrival_s,input_tokens,output_tokens[,prefix_id,prefix_tokens])")
                    }
                    continue
                }
                guard cells.count == columns.count else { throw fail("has \(cells.count) cells, the header \(columns.count)") }
                for (name, cell) in zip(columns, cells) where !cell.isEmpty { fields[name] = cell }
            } else {
                guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
                    throw fail("is not a JSON object")
                }
                for (key, value) in object {
                    if let n = value as? NSNumber { fields[key] = n.stringValue } else if let s = value as? String { fields[key] = s }
                }
            }
            guard let time = fields["arrival_s"].flatMap(Double.init), time.isFinite, time >= 0 else {
                throw fail("arrival_s must be a number of seconds ≥ 0")
            }
            guard time >= lastTime else { throw fail("arrival_s \(time) is before the previous line's \(lastTime)") }
            guard let input = fields["input_tokens"].flatMap(Int.init), (1...16_777_216).contains(input) else {
                throw fail("input_tokens must be an integer from 1 to 16,777,216")
            }
            guard let output = fields["output_tokens"].flatMap(Int.init), (1...16_777_216).contains(output) else {
                throw fail("output_tokens must be an integer from 1 to 16,777,216")
            }
            var arrival = Arrival(time: time, promptTokens: input, outputTokens: output)
            if fields["prefix_tokens"] != nil, fields["prefix_id"] == nil { throw fail("prefix_tokens needs a prefix_id") }
            if let id = fields["prefix_id"] {
                let given = fields["prefix_tokens"]
                guard let prefix = given.map(Int.init) ?? 0, prefix >= 0, prefix <= input else {
                    throw fail("prefix_tokens must be an integer from 0 to input_tokens")
                }
                if let known = prefixIDs[id] { arrival.prefixID = known } else {
                    arrival.prefixID = prefixIDs.count
                    prefixIDs[id] = prefixIDs.count
                }
                arrival.prefixTokens = prefix
            }
            lastTime = time
            return arrival
        }
        return nil
    }
}
