import Foundation
import Glibc

/// The standard `process_*` series (as the Prometheus client libraries export them), read from
/// /proc: CPU time, resident and virtual memory, open and maximum descriptors, start time.
enum ProcessMetrics {
    static func append(to out: inout MetricsText) {
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        // /proc/self/stat: the fields after the command's closing parenthesis, from field 3 on.
        if let stat = try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        {
            let f = stat[stat.index(after: close)...].split(separator: " ")
            // utime 14, stime 15, starttime 22, vsize 23, rss 24 (1-based, so f[n - 3]).
            if f.count > 21, let u = Double(f[11]), let s = Double(f[12]), let start = Double(f[19]),
                let vsize = Double(f[20]), let rss = Double(f[21])
            {
                out.single(
                    "process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.",
                    "\((u + s) / ticks)")
                out.single(
                    "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.",
                    "\(rss * Double(sysconf(Int32(_SC_PAGESIZE))))")
                out.single("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", "\(vsize)")
                if let boot = bootTime() {
                    out.single(
                        "process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.",
                        String(format: "%.2f", boot + start / ticks))
                }
            }
        }
        if let fds = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd") {
            out.single("process_open_fds", "gauge", "Number of open file descriptors.", "\(fds.count)")
        }
        var limit = rlimit()
        if getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 {
            out.single("process_max_fds", "gauge", "Maximum number of open file descriptors.", "\(limit.rlim_cur)")
        }
    }

    /// The boot time (`btime` in /proc/stat), as Unix time.
    static func bootTime() -> Double? {
        guard let text = try? String(contentsOfFile: "/proc/stat", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("btime ") {
            return Double(line.dropFirst(6).trimmingCharacters(in: .whitespaces))
        }
        return nil
    }
}
