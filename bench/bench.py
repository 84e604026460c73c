#!/usr/bin/env python3
"""Side-by-side benchmark: lodestar, knot, NSD and gdnsd on the same zones, driven by dnsperf.

Every server is pinned to CPU 0 and dnsperf to CPU 1; each workload runs RUNS times per server and
the median is reported. Since dnsperf itself saturates a core here, qps per server core
(qps / the server's CPU share during the run, from /proc) is the figure to compare.
Everything runs in a network namespace the benchmark makes (see Namespace), over its loopback;
the load-balanced workloads run with their servers up together and alternate between them.
Every process started is stopped by its pid.

usage: bench.py WORKDIR LODESTAR_BIN [--runs N] [--seconds S] [--big N] [--only NAME,...] [--skip WORKLOAD,...]
"""
import argparse
import math
import os
import re
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import time

CLK = os.sysconf("SC_CLK_TCK")


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def tree(pid):
    """pid and all its descendants."""
    pids, frontier = {pid}, [pid]
    while frontier:
        p = frontier.pop()
        try:
            children = open(f"/proc/{p}/task/{p}/children").read().split()
        except OSError:
            children = []
        for c in map(int, children):
            if c not in pids:
                pids.add(c)
                frontier.append(c)
    return pids


def cpu_split(pid):
    """(user, kernel) CPU seconds of the process tree."""
    user = kernel = 0
    for p in tree(pid):
        try:
            fields = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()
            user += int(fields[11])
            kernel += int(fields[12])
        except OSError:
            pass
    return user / CLK, kernel / CLK


def cpu_seconds(pid):
    return sum(cpu_split(pid))


def rss_kib(pid):
    """Resident set size of one process in KiB (VmRSS)."""
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def memory_kib(pid):
    """(peak RSS of the largest process, total PSS of the tree) in KiB."""
    peak, pss = 0, 0
    for p in tree(pid):
        try:
            for line in open(f"/proc/{p}/status"):
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]))
            for line in open(f"/proc/{p}/smaps_rollup"):
                if line.startswith("Pss:"):
                    pss += int(line.split()[1])
        except OSError:
            pass
    return peak, pss


def query(port, name, qtype=1, timeout=0.5):
    qname = b"".join(bytes([len(l)]) + l.encode() for l in name.strip(".").split(".")) + b"\0"
    packet = struct.pack("!HHHHHH", 0x4242, 0, 1, 0, 0, 0) + qname + struct.pack("!HH", qtype, 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(timeout)
    try:
        s.sendto(packet, ("127.0.0.1", port))
        data = s.recv(4096)
        return data[3] & 0xF, struct.unpack("!H", data[6:8])[0]
    except OSError:
        return None
    finally:
        s.close()


class Server:
    def __init__(self, name, work, port):
        self.name, self.work, self.port = name, work, port
        self.proc = None
        self.error = None
        os.makedirs(work, exist_ok=True)

    def start(self, zones):
        raise NotImplementedError

    # The CPUs a server runs on: CPU 0 for the throughput runs; the start-up runs also try both.
    cpus = "0"

    def launch(self, argv, env=None):
        self.log = open(f"{self.work}/log", "w")
        self.proc = subprocess.Popen(["taskset", "-c", self.cpus] + argv, stdout=self.log,
                                     stderr=subprocess.STDOUT, cwd=self.work, env=env)

    def wait_answer(self, name, deadline_s):
        """Seconds until `name A` is answered NOERROR with data, or None."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < deadline_s:
            if self.proc.poll() is not None:
                return None
            # A short timeout: a query sent before the server listens is lost, and the time until
            # it answers is measured to the next try (0.2 s made every figure a multiple of 0.22 s).
            r = query(self.port, name, timeout=0.02)
            if r and r[0] == 0 and r[1] > 0:
                return time.monotonic() - t0
            time.sleep(0.005)
        return None

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


class Lodestar(Server):
    def __init__(self, work, port, binary, rrl=False):
        super().__init__("lodestar-rrl" if rrl else "lodestar", work, port)
        self.binary = binary
        self.rrl = rrl

    def start(self, zones):
        with open(f"{self.work}/lodestar.yaml", "w") as f:
            f.write(f"server:\n  listen: [\"127.0.0.1:{self.port}\"]\n  zones: {zones}\n  udp-workers: 1\n"
                    + (LIMIT_ON_UNTRIGGERED if self.rrl else LIMIT_OFF))
        self.launch([self.binary, "serve", "--config", f"{self.work}/lodestar.yaml"])


# Response rate limiting: every query of a run comes from one address, so every server runs with
# it off (knot, gdnsd and PowerDNS have none by default; NSD's is turned off below). `lodestar-rrl`
# measures its cost: on, with a rate no run reaches, so every response goes through the limiter.
LIMIT_OFF = "rate-limit: { responses-per-second: 0 }\n"
LIMIT_ON_UNTRIGGERED = "rate-limit: { responses-per-second: 1000000, burst: 10000000 }\n"


# Load-balanced name: www.gslb.test over three regions by continent (nearest next), on one database.
GSLB_REGIONS = [("na", "192.0.2.11", 39.04, -77.49), ("eu", "198.51.100.11", 50.11, 8.68),
                ("ap", "203.0.113.11", 35.68, 139.69)]
GSLB_MAP = {"NA": "na", "SA": "na", "EU": "eu", "AF": "eu", "AS": "ap", "OC": "ap"}
GSLB_SOA = ("$TTL 3600\n@ IN SOA ns1.gslb.test. hostmaster.gslb.test. 1 7200 3600 1209600 300\n"
            "@ IN NS ns1.gslb.test.\nns1 IN A 192.0.2.53\n")
# ECS subnets, one per run: GB (EU), US (NA), AU (OC); family 1, source /24, scope 0.
GSLB_ECS = [["-E", "8:" + "00011800" + a] for a in ("510245", "080808", "010101")]
# gslb-ecs-many: this many random public /24s per run, each query the next one (bench/ecsflood.c).
GSLB_SUBNETS = 100_000


def build_ecsflood(work, here):
    """Compiles bench/ecsflood.c into the work folder; None without a C compiler."""
    out = f"{work}/ecsflood"
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if not cc:
        return None
    subprocess.run([cc, "-O2", "-o", out, f"{here}/ecsflood.c"], check=True)
    return out


class LodestarGSLB(Lodestar):
    def __init__(self, work, port, binary, db):
        super().__init__(work, port, binary)
        self.db = db

    def start(self, zones):
        os.makedirs(f"{self.work}/zones", exist_ok=True)
        open(f"{self.work}/zones/gslb.test.zone", "w").write(GSLB_SOA + "www 60 IN A 192.0.2.10\n")
        regions = "".join(f"  {n}: {{ coordinates: [{la}, {lo}] }}\n" for n, _, la, lo in GSLB_REGIONS)
        pools = "".join(f"  {n}: {{ region: {n}, endpoints: [ {{ address: {a} }} ] }}\n" for n, a, _, _ in GSLB_REGIONS)
        rules = "".join(f"        {c}: [{r}]\n" for c, r in GSLB_MAP.items())
        open(f"{self.work}/lodestar.yaml", "w").write(
            f"server:\n  listen: [\"127.0.0.1:{self.port}\"]\n  zones: {self.work}/zones\n  udp-workers: 1\n"
            + LIMIT_OFF +
            f"geo:\n  database: {self.db}\nregions:\n{regions}pools:\n{pools}names:\n  www.gslb.test:\n"
            f"    policy: [health, geo, failover]\n    pools: [na, eu, ap]\n    ttl: [30, 60]\n"
            f"    geo:\n      continent:\n{rules}")
        self.launch([self.binary, "serve", "--config", f"{self.work}/lodestar.yaml"])


def geolite2_path():
    out = subprocess.run([sys.executable, "-c", "import _maxminddb_geolite2,os;print(os.path.join("
                          "os.path.dirname(_maxminddb_geolite2.__file__),'GeoLite2-City.mmdb'))"],
                         capture_output=True, text=True)
    return out.stdout.strip() if out.returncode == 0 else None


class Knot(Server):
    def __init__(self, work, port):
        super().__init__("knot", work, port)

    def start(self, zones):
        names = [f[:-5] for f in os.listdir(zones) if f.endswith(".zone")]
        conf = (f"server:\n  listen: 127.0.0.1@{self.port}\n  rundir: {self.work}\n  udp-workers: 1\n"
                f"  tcp-workers: 1\n  background-workers: 1\n"
                f"database:\n  storage: {self.work}/db\n"
                f"template:\n  - id: default\n    storage: {zones}\n    semantic-checks: off\n    journal-content: none\n"
                f"    zonefile-sync: -1\n"
                "zone:\n" + "".join(f"  - domain: {n}\n    file: {n}.zone\n" for n in names) +
                "log:\n  - target: stderr\n    any: warning\n")
        open(f"{self.work}/knot.conf", "w").write(conf)
        self.launch(["knotd", "-c", f"{self.work}/knot.conf"])


class NSD(Server):
    def __init__(self, work, port):
        super().__init__("nsd", work, port)

    def start(self, zones):
        names = [f[:-5] for f in os.listdir(zones) if f.endswith(".zone")]
        conf = (f"server:\n  ip-address: 127.0.0.1@{self.port}\n  server-count: 1\n  username: \"\"\n"
                f"  zonesdir: \"{zones}\"\n  pidfile: \"{self.work}/nsd.pid\"\n  database: \"\"\n"
                f"  xfrdfile: \"{self.work}/xfrd.state\"\n  zonelistfile: \"{self.work}/zone.list\"\n"
                f"  chroot: \"\"\n  verbosity: 0\n  tcp-count: 200\n"
                # Debian's NSD rate-limits responses (RRL) by default; every query here comes from one address.
                "  rrl-ratelimit: 0\n  rrl-whitelist-ratelimit: 0\n"
                "remote-control:\n  control-enable: no\n" +
                "".join(f"zone:\n  name: {n}\n  zonefile: {n}.zone\n" for n in names))
        open(f"{self.work}/nsd.conf", "w").write(conf)
        self.launch(["nsd", "-d", "-c", f"{self.work}/nsd.conf"])


class Gdnsd(Server):
    def __init__(self, work, port):
        super().__init__("gdnsd", work, port)

    def start(self, zones):
        os.makedirs(f"{self.work}/etc/zones", exist_ok=True)
        for f in os.listdir(f"{self.work}/etc/zones"):
            os.unlink(f"{self.work}/etc/zones/{f}")
        for f in os.listdir(zones):
            if f.endswith(".zone"):
                os.symlink(f"{zones}/{f}", f"{self.work}/etc/zones/{f[:-5]}")
        self.configure_and_launch()

    def configure_and_launch(self, plugins=""):
        open(f"{self.work}/etc/config", "w").write(
            f"options => {{\n  listen => [ 127.0.0.1 ]\n  dns_port => {self.port}\n  udp_threads => 1\n"
            f"  tcp_threads => 1\n}}\n" + plugins)
        os.makedirs(f"{self.work}/run", exist_ok=True)
        os.makedirs(f"{self.work}/state", exist_ok=True)
        env = dict(os.environ, RUNTIME_DIRECTORY=f"{self.work}/run", STATE_DIRECTORY=f"{self.work}/state")
        self.launch(["gdnsd", "-c", f"{self.work}/etc", "start"], env)


class GdnsdGSLB(Gdnsd):
    def __init__(self, work, port, db):
        super().__init__(work, port)
        self.db = db

    def start(self, zones):
        os.makedirs(f"{self.work}/etc/zones", exist_ok=True)
        open(f"{self.work}/etc/zones/gslb.test", "w").write(GSLB_SOA + "www 60/30 DYNA geoip!www\n")
        dcs = " ".join(n for n, _, _, _ in GSLB_REGIONS)
        coords = ", ".join(f"{n} => [ {la}, {lo} ]" for n, _, la, lo in GSLB_REGIONS)
        rules = ", ".join(f"{c} => [ {r} ]" for c, r in GSLB_MAP.items())
        dcmap = ", ".join(f"{n} => {a}" for n, a, _, _ in GSLB_REGIONS)
        self.configure_and_launch(
            f"plugins => {{ geoip => {{\n  maps => {{ m1 => {{\n    geoip2_db => {self.db}\n"
            f"    datacenters => [ {dcs} ]\n    map => {{ {rules} }}\n    auto_dc_coords => {{ {coords} }}\n  }} }}\n"
            f"  resources => {{ www => {{ map => m1, dcmap => {{ {dcmap} }} }} }}\n}} }}\n")


class PdnsGSLB(Server):
    """PowerDNS Authoritative with a LUA record doing the same by continent (nearest next, through
    `pickclosest`), the GeoIP backend on the same database. Packet and query caches are off: every
    query runs the record, as lodestar and gdnsd decide every query."""

    def __init__(self, work, port, db):
        super().__init__("pdns", work, port)
        self.db = db

    def start(self, zones):
        addrs = {n: a for n, a, _, _ in GSLB_REGIONS}
        conds = " elseif ".join(
            f"continent({{{','.join(repr(c) for c, r in GSLB_MAP.items() if r == n)}}}) then return '{a}'"
            for n, a in addrs.items())
        closest = ",".join(repr(a) for a in addrs.values())
        open(f"{self.work}/gslb.test.zone", "w").write(
            GSLB_SOA + f"www 60 IN LUA A \";if {conds} else return pickclosest({{{closest}}}) end\"\n")
        open(f"{self.work}/named.conf", "w").write(
            f"zone \"gslb.test\" {{ type master; file \"{self.work}/gslb.test.zone\"; }};\n")
        open(f"{self.work}/geo.yaml", "w").write("domains: []\n")
        open(f"{self.work}/pdns.conf", "w").write(
            f"launch=bind,geoip\nbind-config={self.work}/named.conf\ngeoip-database-files=mmdb:{self.db}\n"
            f"geoip-zones-file={self.work}/geo.yaml\nenable-lua-records=yes\nedns-subnet-processing=yes\n"
            f"local-address=127.0.0.1\nlocal-port={self.port}\nsocket-dir={self.work}\ndaemon=no\nguardian=no\n"
            f"disable-syslog=yes\nreceiver-threads=1\ndistributor-threads=1\n"
            f"cache-ttl=0\nquery-cache-ttl=0\nnegquery-cache-ttl=0\n")
        self.launch(["pdns_server", f"--config-dir={self.work}"])


def dnsperf(port, queries, seconds, tcp, rate=0, extra=()):
    argv = ["taskset", "-c", "1", "dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", queries,
            "-l", str(seconds), "-c", "20" if tcp else "4", "-q", "500", "-t", "2"] + list(extra)
    if rate:
        argv += ["-Q", str(rate)]
    if tcp:
        argv += ["-m", "tcp"]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60).stdout
    num = lambda pat: float(re.search(pat, out).group(1)) if re.search(pat, out) else float("nan")
    return {
        "qps": num(r"Queries per second:\s+([\d.]+)"),
        "sent": num(r"Queries sent:\s+(\d+)"),
        "lost": num(r"Queries lost:\s+(\d+)"),
        "latency_ms": num(r"Average Latency \(s\):\s+([\d.]+)") * 1000,
    }


def ecsflood(binary, port, seconds, subnets, seed, mode="ecs", window=500):
    """bench/ecsflood: www.gslb.test A from `subnets` different /24s in turn, `window` outstanding
    (500 like dnsperf -q 500), on CPU 1. mode "ecs": each with an ECS option for its /24 (dnsperf's
    -E is one fixed option per run); "source": no ECS, sent from an address in its /24 (needs NAMESPACE)."""
    argv = ["taskset", "-c", "1", binary, str(port), str(seconds), "www.gslb.test", str(subnets), str(seed),
            str(window), mode]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60).stdout
    m = re.search(r"sent (\d+) received (\d+) lost (\d+) qps ([\d.]+)", out)
    if not m:
        return {"qps": float("nan"), "sent": float("nan"), "lost": float("nan"), "latency_ms": float("nan")}
    return {"qps": float(m.group(4)), "sent": float(m.group(1)), "lost": float(m.group(3)), "latency_ms": float("nan")}


class CpuQuota:
    """Caps a process tree at a share of one core (cgroup v1 cpu controller), so the server, not
    dnsperf, is the bottleneck. Without the controller, runs uncapped (the report says which)."""

    ROOT = "/sys/fs/cgroup/cpu"

    def __init__(self, name, share):
        self.path = f"{self.ROOT}/lodestar-bench-{name}-{os.getpid()}"
        self.share = share
        self.active = False
        if share and os.path.isdir(self.ROOT):
            try:
                os.makedirs(self.path, exist_ok=True)
                open(f"{self.path}/cpu.cfs_period_us", "w").write("100000")
                open(f"{self.path}/cpu.cfs_quota_us", "w").write(str(int(100000 * share)))
                self.active = True
            except OSError:
                self.active = False

    def add(self, pid):
        if self.active:
            for p in tree(pid):
                try:
                    open(f"{self.path}/cgroup.procs", "w").write(str(p))
                except OSError:
                    pass

    def close(self):
        if self.active:
            parent = f"{self.ROOT}/cgroup.procs"
            for p in open(f"{self.path}/cgroup.procs").read().split():
                try:
                    open(parent, "w").write(p)
                except OSError:
                    pass
            try:
                os.rmdir(self.path)
            except OSError:
                pass


def run_once(server, seconds, run):
    """One run of `run(port, seconds)` against a started server: its result with the server's CPU
    share, user and kernel µs per answered query and qps per server core."""
    pid = server.proc.pid
    (u0, k0), t0 = cpu_split(pid), time.monotonic()
    r = run(server.port, seconds)
    (u1, k1), t1 = cpu_split(pid), time.monotonic()
    r["cpu"] = (u1 - u0 + k1 - k0) / (t1 - t0)
    answered = max(1.0, r["qps"] * (t1 - t0))
    r["user_us"] = (u1 - u0) / answered * 1e6
    r["kernel_us"] = (k1 - k0) / answered * 1e6
    r["qps_per_core"] = r["qps"] / r["cpu"] if r["cpu"] > 0 else float("nan")
    return r


def summarize(results, server, quota):
    med = {k: statistics.median(r[k] for r in results) for k in results[0]}
    med["rss_mib"] = memory_kib(server.proc.pid)[1] / 1024
    med["runs"] = [round(r["qps_per_core"]) for r in results]
    med["capped"] = quota.active
    return med


def paired(ours, theirs):
    """Per-round ratios ours/theirs (the two runs of a round are back to back): their median, a
    distribution-free confidence interval for that median (order statistics, binomial, >= 95%), how
    many rounds we were ahead in, and the one-sided sign-test p-value of that count."""
    ratios = sorted(a / b for a, b in zip(ours, theirs))
    n = len(ratios)
    below = lambda k: sum(math.comb(n, i) for i in range(k)) / 2 ** n  # P(X < k), X ~ Bin(n, 1/2)
    r = max([k for k in range(1, n // 2 + 1) if below(k) <= 0.025], default=None)
    ahead = sum(1 for x in ratios if x > 1)
    return {"ratios": [round(x, 3) for x in ratios], "median": statistics.median(ratios),
            "low": ratios[r - 1] if r else float("nan"), "high": ratios[n - r] if r else float("nan"),
            "coverage": 1 - 2 * below(r) if r else float("nan"), "ahead": ahead, "rounds": n,
            "p": sum(math.comb(n, i) for i in range(ahead, n + 1)) / 2 ** n}


def measure(server, zones, check_name, queries, seconds, runs, tcp, quota_share, rate=0):
    server.start(zones)
    quota = CpuQuota(server.name, quota_share)
    try:
        if server.wait_answer(check_name, 120) is None:
            return {"error": f"{server.name} did not answer: " + open(f"{server.work}/log").read()[-500:]}
        quota.add(server.proc.pid)
        time.sleep(0.2)
        results = [run_once(server, seconds, lambda port, s: dnsperf(port, queries, s, tcp, rate))
                   for _ in range(runs)]
        return summarize(results, server, quota)
    finally:
        server.stop()
        quota.close()


def load_time(server, zones, last_name):
    server.start(zones)
    try:
        took = server.wait_answer(last_name, 600)
        peak, pss = memory_kib(server.proc.pid)
        r = {"seconds": took, "peak_rss_mib": peak / 1024, "pss_mib": pss / 1024}
        # lodestar logs where its load time went: libldns parsing vs building the zone.
        m = re.search(r"zone big\.test\. loaded: .* parse ([\d.]+) s, build ([\d.]+) s", open(f"{server.work}/log").read())
        if m:
            r["parse_s"], r["build_s"] = float(m.group(1)), float(m.group(2))
        return r
    finally:
        server.stop()


RMEM_DEFAULT = "/proc/sys/net/core/rmem_default"


def equal_socket_buffers(size):
    """Gives every server's sockets the same default receive buffer (lodestar asks for 4 MiB itself;
    knot, NSD and gdnsd take the default, 208 KiB on Debian, and drop under a CPU cap). Returns the
    old value to restore, or None when the sysctl cannot be written."""
    try:
        old = open(RMEM_DEFAULT).read().strip()
        open(RMEM_DEFAULT, "w").write(str(size))
        return old
    except OSError:
        return None


class Namespace:
    """The benchmark's own network namespace: loopback up, and every IPv4 address local to it
    (`local 0.0.0.0/0 dev lo`), so that bench/ecsflood can send queries from client addresses all
    over the public space and the answers come back over loopback, never leaving the namespace.
    bench.py enters it (setns) before starting anything, so every server and client runs inside;
    it is deleted at the end. Needs root and iproute2; without them the benchmark runs on the
    machine's own loopback and skips the workload that needs it."""

    CLONE_NEWNET = 0x40000000

    def __init__(self):
        self.name = f"lodestar-bench-{os.getpid()}"
        self.active = False
        self.home = None

    def enter(self):
        if os.geteuid() != 0 or not shutil.which("ip"):
            return False
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        try:
            subprocess.run(["ip", "netns", "add", self.name], check=True, capture_output=True)
        except subprocess.CalledProcessError:
            return False
        try:
            subprocess.run(["ip", "-n", self.name, "link", "set", "lo", "up"], check=True)
            subprocess.run(["ip", "-n", self.name, "route", "add", "local", "0.0.0.0/0", "dev", "lo"], check=True)
            self.home = os.open("/proc/self/ns/net", os.O_RDONLY)
            fd = os.open(f"/run/netns/{self.name}", os.O_RDONLY)
            try:
                if libc.setns(fd, self.CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns")
            finally:
                os.close(fd)
            self.active = True
            self.libc = libc
            return True
        except (OSError, subprocess.CalledProcessError) as e:
            print(f"network namespace: {e}; running on the machine's loopback", flush=True)
            self.leave()
            return False

    def leave(self):
        if self.home is not None:
            if self.active:
                self.libc.setns(self.home, self.CLONE_NEWNET)
            os.close(self.home)
            self.home = None
        self.active = False
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)


NAMESPACE = Namespace()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("work")
    ap.add_argument("lodestar")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--big", type=int, default=1000000)
    ap.add_argument("--only", default="lodestar,knot,nsd,gdnsd",
                    help="servers; add lodestar-rrl for lodestar with rate limiting on but never triggered")
    ap.add_argument("--skip", default="")
    ap.add_argument("--quota", type=float, default=0.5, help="server CPU cap (share of one core); 0 = none")
    ap.add_argument("--rate", type=int, default=40000,
                    help="offered qps of the fixed-rate UDP run (every server unsaturated, uncapped); 0 = skip")
    args = ap.parse_args()
    work = os.path.abspath(args.work)
    mix_dir, big_dir = f"{work}/zones-mix", f"{work}/zones-big"
    os.makedirs(mix_dir, exist_ok=True)
    os.makedirs(big_dir, exist_ok=True)
    here = os.path.dirname(os.path.abspath(__file__))
    subprocess.run([sys.executable, f"{here}/gen_zone.py", "mix", mix_dir], check=True)
    queries = f"{mix_dir}/queries-udp.txt"
    os.rename(queries, f"{work}/queries-udp.txt")
    queries = f"{work}/queries-udp.txt"

    def make(name):
        port = free_port()
        if name in ("lodestar", "lodestar-rrl"):
            return Lodestar(f"{work}/{name}", port, os.path.abspath(args.lodestar), rrl=name == "lodestar-rrl")
        return {"knot": Knot, "nsd": NSD, "gdnsd": Gdnsd}[name](f"{work}/{name}", port)

    # pdns runs the load-balanced workloads only (whenever it is installed and not skipped).
    names = [n for n in args.only.split(",") if n != "pdns"]
    skip = set(args.skip.split(","))
    report = {}
    old_rmem = equal_socket_buffers(4 * 1024 * 1024)
    print(f"socket receive buffers: {'4 MiB for every server' if old_rmem else 'each server its own (sysctl not writable)'}")
    inside = NAMESPACE.enter()
    print(f"network: {'the namespace ' + NAMESPACE.name + ' (loopback only)' if inside else 'the loopback of this machine'}")
    try:
        run_all(args, names, skip, report, make, mix_dir, big_dir, queries, here, work)
    finally:
        NAMESPACE.leave()
        if old_rmem:
            open(RMEM_DEFAULT, "w").write(old_rmem)
    print_table(report, names, args)


# The load-balanced workloads: (name, driver, dnsperf options per run or the flood's mode).
GSLB_WORKLOADS = [("gslb", "dnsperf", None), ("gslb-ecs", "dnsperf", GSLB_ECS),
                  ("gslb-ecs-many", "ecsflood", "ecs"), ("gslb-many", "ecsflood", "source")]


def gslb(args, names, skip, report, here, work):
    """Every load-balanced workload with lodestar, gdnsd and PowerDNS up together, each under its own
    CPU cap, and the runs alternating between them (run 1 of each server, then run 2, ...), so that
    the machine's drift over the minutes of a workload hits every server alike."""
    db = geolite2_path()
    gslb_names = [n for n in names if n in ("lodestar", "gdnsd")]
    if shutil.which("pdns_server") and "pdns" not in skip:
        gslb_names.append("pdns")
    workloads = [w for w in GSLB_WORKLOADS if w[0] not in skip]
    if not db or not gslb_names or not workloads:
        return
    flood = build_ecsflood(work, here)
    qfile = f"{work}/queries-gslb.txt"
    open(qfile, "w").write("www.gslb.test A\n")
    servers = {}
    try:
        for n in gslb_names:
            port = free_port()
            server = {"lodestar": lambda: LodestarGSLB(f"{work}/{n}-gslb", port, os.path.abspath(args.lodestar), db),
                      "gdnsd": lambda: GdnsdGSLB(f"{work}/{n}-gslb", port, db),
                      "pdns": lambda: PdnsGSLB(f"{work}/{n}-gslb", port, db)}[n]()
            server.start(None)
            servers[n] = (server, CpuQuota(n, args.quota))
            if server.wait_answer("www.gslb.test", 120) is None:
                server.error = f"{n} did not answer: " + open(f"{server.work}/log").read()[-500:]
                continue
            servers[n][1].add(server.proc.pid)
        time.sleep(0.2)
        for workload, driver, extra in workloads:
            if driver == "ecsflood" and not flood:
                continue
            if extra == "source" and not NAMESPACE.active:
                print(f"{workload}: skipped (needs the benchmark's own network namespace: run as root)", flush=True)
                continue
            results = {n: [] for n in servers}
            for i in range(args.runs):
                # Rounds alternate the order too (A B, then B A, ...): a drift over a round favours
                # neither server.
                order = list(servers.items()) if i % 2 == 0 else list(reversed(servers.items()))
                for n, (server, quota) in order:
                    if server.error:
                        continue
                    if driver == "ecsflood":
                        # PowerDNS answers ~1,400 qps per core: with 500 outstanding every query would wait
                        # longer than the flood's 100 ms before its answer and count as lost.
                        window = 20 if n == "pdns" else 500
                        run = lambda port, seconds: ecsflood(flood, port, seconds, GSLB_SUBNETS, i + 1, extra, window)
                    else:
                        opts = extra[i % len(extra)] if extra else ()
                        run = lambda port, seconds: dnsperf(port, qfile, seconds, False, 0, opts)
                    results[n].append(run_once(server, args.seconds, run))
            for n, rows in results.items():
                server = servers[n][0]
                if server.error:
                    report[(workload, n)] = {"error": server.error}
                elif rows:
                    report[(workload, n)] = summarize(rows, server, servers[n][1])
                    print(workload, n, report[(workload, n)], flush=True)
            if results.get("lodestar") and results.get("gdnsd") and len(results["lodestar"]) == len(results["gdnsd"]):
                report[(workload, "paired")] = paired([r["qps_per_core"] for r in results["lodestar"]],
                                                      [r["qps_per_core"] for r in results["gdnsd"]])
                print(workload, "paired", report[(workload, "paired")], flush=True)
    finally:
        for server, quota in servers.values():
            server.stop()
            quota.close()


def gslb_start(args, names, report, work):
    """Start-up and memory with GeoLite2-City and the continent map: each server started afresh
    `runs` times on one core and on both, the seconds until www.gslb.test answers, RSS and PSS once
    it does; then lodestar reloaded ten times, each reload after the database file was replaced (a
    new file by rename, as an update arrives), and its RSS after the last."""
    real = geolite2_path()
    servers = [n for n in names if n in ("lodestar", "gdnsd")]
    if not real or not servers:
        return
    for n in servers:
        for cpus in ("0", "0,1"):
            rows = []
            for i in range(args.runs):
                d = f"{work}/{n}-start"
                shutil.rmtree(d, ignore_errors=True)
                os.makedirs(d)
                db = f"{d}/city.mmdb"
                shutil.copyfile(real, db)
                port = free_port()
                server = LodestarGSLB(d, port, os.path.abspath(args.lodestar), db) if n == "lodestar" \
                    else GdnsdGSLB(d, port, db)
                server.cpus = cpus
                server.start(None)
                try:
                    took = server.wait_answer("www.gslb.test", 120)
                    if took is None:
                        report[("start", n, cpus)] = {"error": open(f"{d}/log").read()[-300:]}
                        break
                    time.sleep(0.3)
                    pid = server.proc.pid
                    row = {"seconds": took, "rss_mib": rss_kib(pid) / 1024, "pss_mib": memory_kib(pid)[1] / 1024,
                           "peak_mib": memory_kib(pid)[0] / 1024}
                    if n == "lodestar" and cpus == "0,1" and i == 0:
                        for k in range(10):
                            shutil.copyfile(real, db + ".new")
                            os.rename(db + ".new", db)
                            server.proc.send_signal(signal.SIGHUP)
                            deadline = time.monotonic() + 60
                            while f"generation {k + 2}," not in open(f"{d}/log").read() and time.monotonic() < deadline:
                                time.sleep(0.05)
                        time.sleep(3)
                        row["rss_after_reloads_mib"] = rss_kib(pid) / 1024
                        m = re.findall(r"geo: .*", open(f"{d}/log").read())
                        row["log"] = m[-1] if m else ""
                    rows.append(row)
                finally:
                    server.stop()
            if rows:
                r = {k: statistics.median(x[k] for x in rows) for k in ("seconds", "rss_mib", "pss_mib", "peak_mib")}
                r["runs"] = [round(x["seconds"], 3) for x in rows]
                for x in rows:
                    if "rss_after_reloads_mib" in x:
                        r["rss_after_reloads_mib"], r["log"] = x["rss_after_reloads_mib"], x["log"]
                report[("start", n, cpus)] = r
                print("start", n, cpus, r, flush=True)


def run_all(args, names, skip, report, make, mix_dir, big_dir, queries, here, work):
    if "start" not in skip:
        gslb_start(args, names, report, work)
    workloads = [("udp", False, args.quota, 0), ("tcp", True, args.quota, 0)]
    if args.rate:
        workloads.append(("udp-rate", False, 0, args.rate))
    for workload, tcp, quota_share, rate in workloads:
        if workload in skip:
            continue
        for n in names:
            r = measure(make(n), mix_dir, "h1.bench.test", queries, args.seconds, args.runs, tcp, quota_share, rate)
            report[(workload, n)] = r
            print(workload, n, r, flush=True)
    gslb(args, names, skip, report, here, work)
    if "load" not in skip:
        subprocess.run([sys.executable, f"{here}/gen_zone.py", "big", big_dir, str(args.big)], check=True)
        last = open(f"{big_dir}/big-last.txt").read().strip()
        os.rename(f"{big_dir}/big-last.txt", f"{work}/big-last.txt")
        for n in names:
            r = load_time(make(n), big_dir, last)
            report[("load", n)] = r
            print("load", n, r, flush=True)


def print_rows(rows):
    print("| server | qps per server core | qps | server CPU | user µs/q | kernel µs/q | lost | avg latency ms | memory (PSS) MiB | per-run qps/core |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for n, r in rows:
        if "error" in r:
            print(f"| {n} | error: {r['error'][:80]} |")
            continue
        print(f"| {n} | {r['qps_per_core']:,.0f} | {r['qps']:,.0f} | {r['cpu'] * 100:.0f}% | {r['user_us']:.2f} | "
              f"{r['kernel_us']:.2f} | {r['lost']:.0f} | {r['latency_ms']:.3f} | {r['rss_mib']:.1f} | {r['runs']} |")


def print_table(report, names, args):
    print()
    for workload in ("udp", "tcp", "udp-rate") + tuple(w[0] for w in GSLB_WORKLOADS):
        # pdns runs only the load-balanced workloads, whether or not `--only` names it.
        rows = [(n, report.get((workload, n))) for n in dict.fromkeys(names + ["pdns"]) if (workload, n) in report]
        if not rows:
            continue
        capped = all(r.get("capped") for _, r in rows if "error" not in r)
        cap = f"server capped at {args.quota:.0%} of CPU 0" if capped and args.quota else "server uncapped on CPU 0"
        if workload == "udp-rate":
            cap = f"offered {args.rate:,} qps, server uncapped on CPU 0 (CPU cost per query at equal load)"
        if workload.startswith("gslb"):
            what = ("load-balanced www.gslb.test A, GeoLite2-City, "
                    + {"gslb-ecs": "ECS /24 from GB, US, AU (one subnet per run)",
                       "gslb-ecs-many": f"ECS from {GSLB_SUBNETS:,} random public /24s in turn (bench/ecsflood)",
                       "gslb-many": f"no ECS, sent from {GSLB_SUBNETS:,} random public /24s in turn (bench/ecsflood)"}
                    .get(workload, "no ECS, from 127.0.0.1"))
            driver = "ecsflood" if workload in ("gslb-ecs-many", "gslb-many") else "dnsperf"
            print(f"\n{workload.upper()}, {what}, median of {args.runs} x {args.seconds} s, {cap}, {driver} on CPU 1, "
                  f"runs alternating between the servers:\n")
            print_rows(rows)
            pr = report.get((workload, "paired"))
            if pr:
                print(f"\nlodestar / gdnsd per round (qps per server core, runs back to back): median {pr['median']:.3f}, "
                      f"{pr['coverage']:.0%} confidence interval of the median [{pr['low']:.3f}, {pr['high']:.3f}], "
                      f"lodestar ahead in {pr['ahead']} of {pr['rounds']} rounds (sign test p = {pr['p']:.3f}); "
                      f"ratios {pr['ratios']}")
            continue
        print(f"\n{workload.upper()}, static mix (~10% NXDOMAIN), median of {args.runs} x {args.seconds} s, {cap}, "
              f"dnsperf on CPU 1:\n")
        print_rows(rows)
    rows = [(n, c, report[("start", n, c)]) for n in names for c in ("0", "0,1") if ("start", n, c) in report]
    if rows:
        print(f"\nStart-up with GeoLite2-City and a three-region continent map: seconds until www.gslb.test "
              f"answers (median of {args.runs} starts), memory once it does:\n")
        print("| server | CPUs | answers after s | RSS MiB | PSS MiB | peak RSS MiB | RSS after 10 reloads MiB | per-run s |")
        print("|---|---|---|---|---|---|---|---|")
        for n, c, r in rows:
            if "error" in r:
                print(f"| {n} | {c} | error: {r['error'][:80]} |")
                continue
            after = f"{r['rss_after_reloads_mib']:.1f}" if "rss_after_reloads_mib" in r else ""
            print(f"| {n} | {c} | {r['seconds']:.2f} | {r['rss_mib']:.1f} | {r['pss_mib']:.1f} | {r['peak_mib']:.0f} | "
                  f"{after} | {r['runs']} |")
        for n, c, r in rows:
            if r.get("log"):
                print(f"\nlodestar's log of the last reload: {r['log']}")
    rows = [(n, report.get(("load", n))) for n in names if ("load", n) in report]
    if rows:
        print(f"\nZone of {args.big:,} A records: time from start until the last name answers, and memory:\n")
        print("| server | load s | peak RSS MiB | PSS MiB after load | where the time went |")
        print("|---|---|---|---|---|")
        for n, r in rows:
            s = "timeout" if r["seconds"] is None else f"{r['seconds']:.2f}"
            split = f"libldns parse {r['parse_s']:.2f} s, build {r['build_s']:.2f} s" if "parse_s" in r else ""
            print(f"| {n} | {s} | {r['peak_rss_mib']:.0f} | {r['pss_mib']:.0f} | {split} |")


if __name__ == "__main__":
    main()
