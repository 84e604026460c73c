import Foundation

/// Prometheus text exposition, one metric family at a time.
struct MetricsText {
    var text = ""

    /// HELP and TYPE, then one sample per (labels, value).
    mutating func family(_ name: String, _ type: String, _ help: String, _ rows: [(String, String)]) {
        text += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
        for (labels, value) in rows { text += labels.isEmpty ? "\(name) \(value)\n" : "\(name){\(labels)} \(value)\n" }
    }

    /// A family of one unlabelled sample.
    mutating func single(_ name: String, _ type: String, _ help: String, _ value: String) {
        text += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n\(name) \(value)\n"
    }

    /// A label value escaped for the text format: backslash, double quote and line feed.
    static func esc(_ s: String) -> String {
        s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\n", with: "\\n")
    }
}
