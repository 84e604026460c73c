/// dig's output split into status, flags and sections, each record as single-spaced zone text.
struct DigResult: CustomStringConvertible {
    var status = ""
    var flags: Set<String> = []
    var answer: [String] = []
    var authority: [String] = []
    var additional: [String] = []
    var hasOPT = false
    var options: [String] = []
    var raw: String

    init(_ text: String) {
        raw = text
        var section = ""
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let l = String(line)
            if l.contains("->>HEADER<<-"), let r = l.range(of: "status: ") {
                status = String(l[r.upperBound...].prefix { $0 != "," })
            } else if l.hasPrefix(";; flags:") {
                let f = l.dropFirst(9).prefix { $0 != ";" }
                flags = Set(f.split(separator: " ").map(String.init))
            } else if l.hasPrefix(";; OPT PSEUDOSECTION") {
                hasOPT = true
                section = "opt"
            } else if l.hasPrefix(";; ANSWER SECTION") {
                section = "answer"
            } else if l.hasPrefix(";; AUTHORITY SECTION") {
                section = "authority"
            } else if l.hasPrefix(";; ADDITIONAL SECTION") {
                section = "additional"
            } else if l.hasPrefix(";; QUESTION SECTION") {
                section = "question"
            } else if l.isEmpty {
                section = ""
            } else if section == "opt" && l.hasPrefix("; ") {
                options.append(String(l.dropFirst(2)))
            } else if !l.hasPrefix(";") {
                let rr = l.split(whereSeparator: { $0 == " " || $0 == "\t" }).joined(separator: " ")
                switch section {
                case "answer": answer.append(rr)
                case "authority": authority.append(rr)
                case "additional": additional.append(rr)
                default: break
                }
            }
        }
    }

    var description: String { raw }
}
