import Testing

@testable import Zones

/// What the zone text pass hands libldns, and the problems it finds itself.
@Suite struct ZoneTextTests {
    static func run(_ text: String, origin: String = "example.com.") -> (String, [ZoneText.Problem]) {
        var bytes = Array(text.utf8)
        let problems = ZoneText.normalise(&bytes, origin: origin).problems
        return (String(decoding: bytes, as: UTF8.self), problems)
    }

    @Test(
        "class before TTL is swapped in place; everything else is left as written",
        arguments: [
            ("www IN 300 A 192.0.2.1\n", "www 300 IN A 192.0.2.1\n"),
            ("www\tin\t1h30m\tA 192.0.2.1\n", "www\t1h30m\tin\tA 192.0.2.1\n"),
            ("   CH 60 TXT \"x\"\n", "   60 CH TXT \"x\"\n"),
            ("www CLASS1 5 A 192.0.2.1\n", "www 5 CLASS1 A 192.0.2.1\n"),
            ("www 300 IN A 192.0.2.1\n", "www 300 IN A 192.0.2.1\n"),
            ("IN IN 300 A 192.0.2.1\n", "IN 300 IN A 192.0.2.1\n"),
            ("t TXT \"IN 300\"\nx ( IN\n 300 A 1.2.3.4 )\n", "t TXT \"IN 300\"\nx ( IN\n 300 A 1.2.3.4 )\n"),
            ("a IN MX 10 b\n", "a IN MX 10 b\n")
        ])
    func swap(input: String, expected: String) {
        let (out, problems) = Self.run(input)
        #expect(out == expected)
        #expect(problems.isEmpty)
    }

    @Test("a relative $ORIGIN is handed to the reader with the absolute origin it means; the text is left alone")
    func relativeOrigin() {
        let input = "$ORIGIN sub\na A 1.2.3.4\n$ORIGIN deeper\n$ORIGIN abs.test.\n$ORIGIN x\\.\n"
        var bytes = Array(input.utf8)
        let scan = ZoneText.normalise(&bytes, origin: "example.com.")
        #expect(String(decoding: bytes, as: UTF8.self) == input)
        #expect(scan.readerLines.map(\.line) == [1, 3, 5])
        #expect(scan.readerLines.map(\.origin) == ["sub.example.com.", "deeper.sub.example.com.", "x\\..abs.test."])
    }

    @Test("relative origins that would pass 255 octets are refused, not grown")
    func longOrigin() {
        var bytes = Array(String(repeating: "$ORIGIN abcdefghij\n", count: 200).utf8)
        let scan = ZoneText.normalise(&bytes, origin: "example.com.")
        #expect(scan.readerLines.count < 100)
        #expect(scan.problems.first?.message.contains("longer than 255 octets") == true)
    }

    @Test(
        "bad TTLs, unclosed quotes and parentheses are problems at their line",
        arguments: [
            ("a 1x A 1.2.3.4\n", 1, "is not a TTL"),
            ("ok A 1.2.3.4\na IN 5q A 1.2.3.4\n", 2, "is not a TTL"),
            ("$TTL forever\n", 1, "$TTL needs a TTL"),
            ("a A 1.2.3.4\nt TXT \"open\nb A 1.2.3.5\n", 2, "quoted string not closed"),
            ("a A 1.2.3.4\nt TXT ( \"x\"\nb A 1.2.3.5\n", 2, "parenthesis not closed")
        ])
    func problems(input: String, line: Int, message: String) {
        let (_, problems) = Self.run(input)
        #expect(problems.count == 1)
        #expect(problems.first?.line == line)
        #expect(problems.first?.message.contains(message) == true, "\(problems)")
    }

    @Test(
        "TTL forms",
        arguments: [
            ("0", true), ("300", true), ("1h30m", true), ("1W", true), ("2d1s", true),
            ("1x", false), ("h1", false), ("1hh", false), ("", false)
        ])
    func ttl(text: String, ok: Bool) {
        #expect(ZoneText.isTTL(ArraySlice(Array(text.utf8))) == ok)
    }

    @Test("$INCLUDE lines are reported with their offset and line, after the rewrites before them")
    func includes() {
        var bytes = Array(
            "$ORIGIN sub\na IN 5 A 1.2.3.4\n$include x.inc\nt TXT ( \"$INCLUDE no\"\n$INCLUDE no )\n$INCLUDE y.inc o\n"
                .utf8)
        let scan = ZoneText.normalise(&bytes, origin: "example.com.")
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(scan.readerLines.map(\.line) == [1, 3, 6])
        #expect(
            scan.readerLines.dropFirst().map { String(text.utf8.dropFirst($0.offset).prefix(13))! } == [
                "$include x.in", "$INCLUDE y.in"
            ])
        #expect(scan.readerLines.map { $0.origin == nil } == [false, true, true])
    }
}
