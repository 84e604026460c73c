#ifndef LODESTAR_SYS_H
#define LODESTAR_SYS_H
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <netinet/in.h>

/// A batch of datagram slots for recvmmsg/sendmmsg, allocated once per listener thread.
typedef struct lodestar_batch lodestar_batch;

lodestar_batch *lodestar_batch_new(unsigned count, unsigned buffer_size);
void lodestar_batch_free(lodestar_batch *b);
/// Receives up to the batch size; blocks until at least one arrives or the socket timeout fires.
int lodestar_batch_recv(lodestar_batch *b, int fd);
/// Sends slots [0, n) whose out_len > 0; returns the number the kernel took.
int lodestar_batch_send(lodestar_batch *b, int fd, unsigned n);
void lodestar_batch_set_out_len(lodestar_batch *b, unsigned i, unsigned len);
/// After a send: how many responses the kernel refused as larger than the interface MTU
/// (EMSGSIZE; IPv4 responses carry DF), and the slot of the k-th of them.
unsigned lodestar_batch_too_big_count(const lodestar_batch *b);
unsigned lodestar_batch_too_big(const lodestar_batch *b, unsigned k);
/// Sends slot i alone (its out_len as set); 0 or -errno.
int lodestar_batch_send_slot(lodestar_batch *b, int fd, unsigned i);
/// Datagram i of a batch in one call: its query, the response buffer and the peer's address as
/// network-order halves (family 4, 6, or 0 when unknown; IPv4-mapped becomes 4).
typedef struct lodestar_datagram {
    const uint8_t *input;
    unsigned input_length;
    unsigned capacity;
    uint8_t *output;
    uint64_t high, low;
    int family;
} lodestar_datagram;
void lodestar_batch_get(lodestar_batch *b, unsigned i, lodestar_datagram *d);

/// Creates a bound UDP socket with SO_REUSEPORT and a receive timeout in milliseconds. Returns -errno.
int lodestar_udp_socket(const struct sockaddr *addr, socklen_t len, int timeout_ms);

/// Starts loading the cache line at `p` for reading, without waiting for it.
static inline void lodestar_prefetch(const void *p) { __builtin_prefetch(p, 0, 3); }

/// Relaxed atomic add, for counters several threads bump (metrics).
static inline void lodestar_count(uint64_t *p, uint64_t v) { __atomic_fetch_add(p, v, __ATOMIC_RELAXED); }
static inline uint64_t lodestar_read(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
/// A small per-thread number (0..63) so threads bump different copies of hot counters. The first
/// 64 threads to ask own theirs alone; later ones share (`lodestar_next_shard` counts every ask).
unsigned lodestar_next_shard(void);
static __thread int lodestar_shard_index = -1;
static __thread int lodestar_shard_alone = 0;
static inline unsigned lodestar_shard(void) {
    if (lodestar_shard_index < 0) {
        unsigned n = lodestar_next_shard();
        lodestar_shard_alone = n < 64;
        lodestar_shard_index = (int)(n % 64);
    }
    return (unsigned)lodestar_shard_index;
}
/// Adds to a counter of the calling thread's shard (after `lodestar_shard()`): a thread alone in
/// its shard needs no locked instruction, only a relaxed load and store (readers see whole values).
static inline void lodestar_count_shard(uint64_t *p, uint64_t v) {
    if (lodestar_shard_alone) __atomic_store_n(p, __atomic_load_n(p, __ATOMIC_RELAXED) + v, __ATOMIC_RELAXED);
    else __atomic_fetch_add(p, v, __ATOMIC_RELAXED);
}
/// Monotonic clock: seconds, and nanoseconds for mixing into per-query randomness.
double lodestar_monotonic(void);
uint64_t lodestar_monotonic_ns(void);
/// The calling thread's kernel id (for setpriority on one thread).
int lodestar_thread_id(void);

/// Raises the soft limit on open files to the hard limit; reports both after. 0, or -errno.
int lodestar_raise_nofile(uint64_t *soft, uint64_t *hard);

/// Replaces the file at `path` with `len` octets durably: written to a temporary file beside it,
/// fsync'd, renamed over `path`, and the directory fsync'd, so a crash or power loss leaves the old
/// content or the new, never a torn or empty file. 0, or -errno (the temporary file is removed).
int lodestar_write_durable(const char *path, const void *data, size_t len, unsigned mode);

/// A TCP socket bound to `addr` and listening (SO_REUSEADDR, IPV6_V6ONLY for v6, non-blocking,
/// close-on-exec): opened before privileges are dropped, served after. fd, or -errno.
int lodestar_tcp_listen(const struct sockaddr *addr, socklen_t len, int backlog);

/// The control socket: a Unix stream socket at `path`, mode `mode`, owned by uid/gid (-1: keep),
/// listening (non-blocking, close-on-exec). A stale socket file at `path` is replaced; any other
/// kind of file there is left alone (-EEXIST). The mode is set before the socket can be reached
/// (bound under a umask of 0177, then chmod). fd, or -errno.
int lodestar_unix_listen(const char *path, unsigned mode, int uid, int gid, int backlog);

/// The peer of a Unix socket connection: its uid, or -1.
long lodestar_peer_uid(int fd);

/// What an open descriptor is: its device and inode (fstat), 0 on success, -errno otherwise.
/// In C so that Swift files need not resolve `struct stat` through one clang module or another.
int lodestar_fd_identity(int fd, unsigned long long *device, unsigned long long *inode);

/// Drops root for good: supplementary groups of `user` (initgroups: the group that owns BIRD's
/// socket, say) plus `gid`, then gid, then uid; no capability survives (the kernel clears them on
/// the change of uid from 0, and the ambient set is cleared first). 0, or -errno.
int lodestar_drop_privileges(const char *user, unsigned uid, unsigned gid);

/// Clears every capability of the process (permitted, effective, inheritable, ambient): after the
/// sockets are open, a service given CAP_NET_BIND_SERVICE by systemd keeps nothing. 0, or -errno.
int lodestar_clear_capabilities(void);

/// The effective capability set as /proc reports it (CapEff), or ~0 when it cannot be read.
uint64_t lodestar_effective_capabilities(void);

/// Sends `message` to the systemd notification socket `path` (a file path, or `@name` for the
/// abstract namespace) as one datagram. 0, or -errno.
int lodestar_sd_notify(const char *path, const char *message);

/// Fills `len` octets from the kernel's random source; 0, or -errno.
int lodestar_random(void *buf, size_t len);

/// SipHash-2-4 of `len` octets under a 16-octet key (RFC 9018 server cookies).
uint64_t lodestar_siphash24(const uint8_t key[16], const uint8_t *data, size_t len);

/// Response rate limiting: one step of the generic cell rate algorithm for the prefix hashed to
/// `hash`, over a table of `mask + 1` 64-bit words (a power of two), each a 16-bit tag of a prefix
/// and its theoretical arrival time in 64 ns units (48 bits, wrapping). A prefix has two candidate
/// words; a newcomer takes the one whose bucket is full again, else the one closest to it. Updated
/// with compare-and-swap: no lock, and a lost race costs at most one response's worth of accuracy.
/// `interval` is the time one response costs and `tolerance` the burst, both in 64 ns units.
/// Returns 1 when the response may go, 0 when the prefix is over its rate.
static inline int lodestar_rrl_admit(uint64_t *table, uint64_t mask, uint64_t hash, uint64_t now_ns,
                                     uint64_t interval, uint64_t tolerance) {
    const uint64_t m48 = (1ULL << 48) - 1;
    uint64_t t = (now_ns >> 6) & m48;
    uint64_t tag = (hash >> 48) | 1;
    uint64_t *a = table + (hash & mask), *b = table + ((hash >> 24) & mask);
    for (int attempt = 0; attempt < 4; attempt++) {
        uint64_t wa = __atomic_load_n(a, __ATOMIC_RELAXED), wb = __atomic_load_n(b, __ATOMIC_RELAXED);
        uint64_t *slot; uint64_t w;
        if ((wa >> 48) == tag) { slot = a; w = wa; }
        else if ((wb >> 48) == tag) { slot = b; w = wb; }
        else {
            // Ahead of now by this much (a value past tolerance + interval is in the past or stale).
            uint64_t da = ((wa & m48) - t) & m48, db = ((wb & m48) - t) & m48;
            int fa = da > tolerance + interval, fb = db > tolerance + interval;
            slot = (fa || (!fb && da <= db)) ? a : b;
            w = slot == a ? wa : wb;
            uint64_t fresh = tag << 48 | ((t + interval) & m48);
            if (__atomic_compare_exchange_n(slot, &w, fresh, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) return 1;
            continue;
        }
        uint64_t ahead = ((w & m48) - t) & m48;
        uint64_t tat = ahead > tolerance + interval ? t : (w & m48);
        if (ahead <= tolerance + interval && ahead > tolerance) return 0;
        uint64_t next = tag << 48 | ((tat + interval) & m48);
        if (__atomic_compare_exchange_n(slot, &w, next, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) return 1;
    }
    return 1;
}
#endif
