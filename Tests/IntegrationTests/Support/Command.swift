import Foundation

/// Runs a program to completion with a deadline, capturing its output.
enum Command {
    struct Result {
        var status: Int32
        var output: String
        var error: String
    }

    @discardableResult
    static func run(_ path: String, _ args: [String], timeout: Double = 20, cwd: String? = nil) throws -> Result {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = args
        if let cwd { p.currentDirectoryURL = URL(fileURLWithPath: cwd) }
        // Output goes to files: no pipe can fill up and block the child.
        let dir = NSTemporaryDirectory() + "cmd-" + UUID().uuidString
        FileManager.default.createFile(atPath: dir + ".out", contents: nil)
        FileManager.default.createFile(atPath: dir + ".err", contents: nil)
        defer {
            try? FileManager.default.removeItem(atPath: dir + ".out")
            try? FileManager.default.removeItem(atPath: dir + ".err")
        }
        p.standardOutput = FileHandle(forWritingAtPath: dir + ".out")
        p.standardError = FileHandle(forWritingAtPath: dir + ".err")
        try p.run()
        let deadline = Date().addingTimeInterval(timeout)
        while p.isRunning && Date() < deadline { usleep(2_000) }
        if p.isRunning { kill(p.processIdentifier, SIGKILL) }
        p.waitUntilExit()
        let outData = FileManager.default.contents(atPath: dir + ".out") ?? Data()
        let errData = FileManager.default.contents(atPath: dir + ".err") ?? Data()
        return Result(
            status: p.terminationStatus, output: String(decoding: outData, as: UTF8.self),
            error: String(decoding: errData, as: UTF8.self))
    }
}
