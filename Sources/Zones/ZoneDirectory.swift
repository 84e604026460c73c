import DNSWire
import Foundation

/// Loads every `NAME.zone` file of a folder as zone `NAME.`.
public enum ZoneDirectory {
    /// One zone file's outcome.
    public struct Loaded: Sendable {
        public var file: String
        public var origin: String
        public var zone: Zone?
        public var problems: [ZoneError]
        public var parseSeconds: Double
        public var buildSeconds: Double
    }

    /// Zone name for a file name, or nil when it is not a zone file.
    public static func origin(forFile name: String) -> String? {
        guard name.hasSuffix(".zone"), name.count > 5 else { return nil }
        let base = String(name.dropLast(5))
        if base == "root" || base == "." { return "." }
        return base.hasSuffix(".") ? base : base + "."
    }

    /// Loads one file.
    public static func loadFile(
        _ path: String, origin: String, steered: [[UInt8]] = [], limits: ZoneLimits = ZoneLimits()
    ) -> Loaded {
        var list = RecordList()
        var problems: [ZoneError] = []
        let t0 = Date()
        ZoneFileReader.read(path: path, origin: origin, into: &list, errors: &problems, limits: limits)
        let t1 = Date()
        var zone: Zone? = nil
        if !problems.contains(where: { !$0.isWarning }) {
            let (z, more) = ZoneBuilder.build(origin: origin, records: list, mainFile: path, steered: steered)
            zone = z
            problems += more
        }
        return Loaded(
            file: path, origin: origin, zone: zone, problems: problems,
            parseSeconds: t1.timeIntervalSince(t0), buildSeconds: Date().timeIntervalSince(t1))
    }

    /// Loads every zone file in `directory`; a file with errors yields no zone, the others load.
    /// Each `steered` name (lower-case wire) goes to the most specific zone that contains it.
    public static func load(_ directory: String, steered: [[UInt8]] = [], limits: ZoneLimits = ZoneLimits()) throws
        -> [Loaded]
    {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory).sorted()
        } catch {
            throw ZoneError(file: directory, line: 0, message: "cannot read zones folder")
        }
        let origins = names.compactMap { origin(forFile: $0) }.compactMap { o in Name.fromText(o).map(Name.lowercased) }
        func home(_ n: [UInt8]) -> [UInt8]? {
            origins.filter { Name.isSubdomain(n[...], of: $0[...]) }.max { $0.count < $1.count }
        }
        return names.compactMap { name in
            guard let origin = origin(forFile: name) else { return nil }
            let wire = Name.fromText(origin).map(Name.lowercased) ?? []
            let mine = steered.filter { home($0) == wire }
            return loadFile(
                (directory as NSString).appendingPathComponent(name), origin: origin, steered: mine, limits: limits)
        }
    }
}
