import Foundation

/// Names and prefixes that may go into a BIRD command: validated, never quoted blindly.
package enum BirdNames {
    /// A BIRD symbol: a letter or underscore, then letters, digits and underscores; at most 64.
    package static func isSymbol(_ s: String) -> Bool {
        guard let f = s.unicodeScalars.first, s.count <= 64, f == "_" || (f.isASCII && CharacterSet.letters.contains(f))
        else { return false }
        return s.unicodeScalars.allSatisfy { $0.isASCII && ($0 == "_" || CharacterSet.alphanumerics.contains($0)) }
    }

    /// Text safe inside a quoted BIRD string: printable ASCII without quotes or backslashes, capped.
    package static func message(_ s: String) -> String {
        String(
            s.unicodeScalars.map {
                $0.isASCII && $0.value >= 32 && $0.value < 127 && $0 != "\"" && $0 != "\\" ? Character($0) : "?"
            }
            .prefix(200))
    }
}
