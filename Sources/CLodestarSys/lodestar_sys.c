#define _GNU_SOURCE
#include <time.h>
#include "lodestar_sys.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <fcntl.h>
#include <stdio.h>
#include <libgen.h>
#include <grp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/stat.h>
#include <linux/capability.h>

struct lodestar_batch {
    unsigned count;
    unsigned size;
    /* Slots lie `size` + 64 octets apart, not `size`: with 4 KiB apart every datagram's first
     * octets would fall in the same L1 cache set and evict each other. */
    size_t stride;
    struct mmsghdr *in_msgs;
    struct mmsghdr *out_msgs;
    struct iovec *in_iov;
    struct iovec *out_iov;
    struct sockaddr_storage *peers;
    unsigned *out_len;
    /* The slots the kernel refused as larger than the interface MTU (EMSGSIZE, DF set). */
    unsigned *too_big;
    unsigned too_big_count;
    uint8_t *in_buf;
    uint8_t *out_buf;
    /* Entries the previous recvmmsg filled: only their msg_namelen needs resetting. */
    unsigned last_used;
};

lodestar_batch *lodestar_batch_new(unsigned count, unsigned size) {
    lodestar_batch *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    b->count = count;
    b->size = size;
    b->stride = (size_t)size + 64;
    b->in_msgs = calloc(count, sizeof(struct mmsghdr));
    b->out_msgs = calloc(count, sizeof(struct mmsghdr));
    b->in_iov = calloc(count, sizeof(struct iovec));
    b->out_iov = calloc(count, sizeof(struct iovec));
    b->peers = calloc(count, sizeof(struct sockaddr_storage));
    b->out_len = calloc(count, sizeof(unsigned));
    b->too_big = calloc(count, sizeof(unsigned));
    b->in_buf = calloc(count, b->stride);
    b->out_buf = calloc(count, b->stride);
    if (!b->in_msgs || !b->out_msgs || !b->in_iov || !b->out_iov || !b->peers || !b->out_len ||
        !b->too_big || !b->in_buf || !b->out_buf) {
        lodestar_batch_free(b);
        return NULL;
    }
    /* The receive headers are set up once; recvmmsg only writes msg_len, msg_namelen, msg_flags. */
    for (unsigned i = 0; i < count; i++) {
        b->in_iov[i].iov_base = b->in_buf + i * b->stride;
        b->in_iov[i].iov_len = size;
        b->in_msgs[i].msg_hdr.msg_iov = &b->in_iov[i];
        b->in_msgs[i].msg_hdr.msg_iovlen = 1;
        b->in_msgs[i].msg_hdr.msg_name = &b->peers[i];
        b->in_msgs[i].msg_hdr.msg_namelen = sizeof(struct sockaddr_storage);
    }
    b->last_used = 0;
    return b;
}

void lodestar_batch_free(lodestar_batch *b) {
    if (!b) return;
    free(b->in_msgs); free(b->out_msgs); free(b->in_iov); free(b->out_iov);
    free(b->peers); free(b->out_len); free(b->too_big); free(b->in_buf); free(b->out_buf);
    free(b);
}

int lodestar_batch_recv(lodestar_batch *b, int fd) {
    for (unsigned i = 0; i < b->last_used; i++) {
        b->in_msgs[i].msg_hdr.msg_namelen = sizeof(struct sockaddr_storage);
        b->in_msgs[i].msg_hdr.msg_flags = 0;
    }
    int n = recvmmsg(fd, b->in_msgs, b->count, MSG_WAITFORONE, NULL);
    if (n < 0) {
        b->last_used = 0;
        return -errno;
    }
    b->last_used = (unsigned)n;
    return n;
}

int lodestar_batch_send(lodestar_batch *b, int fd, unsigned n) {
    unsigned k = 0;
    b->too_big_count = 0;
    for (unsigned i = 0; i < n; i++) {
        if (b->out_len[i] == 0) continue;
        b->out_iov[k].iov_base = b->out_buf + i * b->stride;
        b->out_iov[k].iov_len = b->out_len[i];
        memset(&b->out_msgs[k].msg_hdr, 0, sizeof(struct msghdr));
        b->out_msgs[k].msg_hdr.msg_iov = &b->out_iov[k];
        b->out_msgs[k].msg_hdr.msg_iovlen = 1;
        b->out_msgs[k].msg_hdr.msg_name = &b->peers[i];
        b->out_msgs[k].msg_hdr.msg_namelen = b->in_msgs[i].msg_hdr.msg_namelen;
        k++;
    }
    unsigned sent = 0;
    int tries = 0;
    while (sent < k && tries < 4) {
        int r = sendmmsg(fd, b->out_msgs + sent, k - sent, 0);
        if (r < 0) {
            if (errno == EINTR || errno == EAGAIN) { tries++; continue; }
            /* Larger than the interface MTU with DF set: the caller answers it again, smaller. */
            if (errno == EMSGSIZE)
                b->too_big[b->too_big_count++] =
                    (unsigned)(((uint8_t *)b->out_iov[sent].iov_base - b->out_buf) / b->stride);
            /* One bad destination must not stop the rest: skip it. */
            sent++;
            continue;
        }
        sent += (unsigned)r;
    }
    return (int)sent;
}

unsigned lodestar_batch_too_big_count(const lodestar_batch *b) { return b->too_big_count; }

unsigned lodestar_batch_too_big(const lodestar_batch *b, unsigned k) { return b->too_big[k]; }

int lodestar_batch_send_slot(lodestar_batch *b, int fd, unsigned i) {
    struct msghdr h;
    struct iovec v = { .iov_base = b->out_buf + i * b->stride, .iov_len = b->out_len[i] };
    memset(&h, 0, sizeof h);
    h.msg_iov = &v;
    h.msg_iovlen = 1;
    h.msg_name = &b->peers[i];
    h.msg_namelen = b->in_msgs[i].msg_hdr.msg_namelen;
    return sendmsg(fd, &h, 0) < 0 ? -errno : 0;
}

void lodestar_batch_set_out_len(lodestar_batch *b, unsigned i, unsigned len) { b->out_len[i] = len; }

static uint64_t load_be64(const uint8_t *p) {
    uint64_t v = 0;
    for (int k = 0; k < 8; k++) v = (v << 8) | p[k];
    return v;
}

static int peer_octets(lodestar_batch *b, unsigned i, uint64_t *high, uint64_t *low) {
    struct sockaddr_storage *ss = &b->peers[i];
    if (ss->ss_family == AF_INET) {
        const uint8_t *a = (const uint8_t *)&((struct sockaddr_in *)ss)->sin_addr;
        *high = (uint64_t)a[0] << 56 | (uint64_t)a[1] << 48 | (uint64_t)a[2] << 40 | (uint64_t)a[3] << 32;
        *low = 0;
        return 4;
    }
    if (ss->ss_family == AF_INET6) {
        const uint8_t *a = ((struct sockaddr_in6 *)ss)->sin6_addr.s6_addr;
        static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (memcmp(a, mapped, 12) == 0) {
            *high = (uint64_t)a[12] << 56 | (uint64_t)a[13] << 48 | (uint64_t)a[14] << 40 | (uint64_t)a[15] << 32;
            *low = 0;
            return 4;
        }
        *high = load_be64(a);
        *low = load_be64(a + 8);
        return 6;
    }
    *high = *low = 0;
    return 0;
}

void lodestar_batch_get(lodestar_batch *b, unsigned i, lodestar_datagram *d) {
    if (i + 1 < b->last_used) {
        /* The next datagram's query and response lines start loading while this one is answered. */
        __builtin_prefetch(b->in_buf + (i + 1) * b->stride, 0, 3);
        __builtin_prefetch(b->out_buf + (i + 1) * b->stride, 1, 3);
        __builtin_prefetch(&b->peers[i + 1], 0, 3);
    }
    d->input = b->in_buf + i * b->stride;
    d->input_length = b->in_msgs[i].msg_len;
    d->output = b->out_buf + i * b->stride;
    d->capacity = b->size;
    d->family = peer_octets(b, i, &d->high, &d->low);
}

int lodestar_udp_socket(const struct sockaddr *addr, socklen_t len, int timeout_ms) {
    int fd = socket(addr->sa_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (addr->sa_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    /* IPv4 responses go out with DF set and are never fragmented (RFC 9715 §3.1: UDP responders
     * are recommended to set DF; a response is at most 1232 octets, so it fits any path that
     * carries 1260). IP_PMTUDISC_PROBE sizes against the interface MTU and ignores ICMP
     * "fragmentation needed" (a spoofed one cannot shrink anything); a response larger than the
     * interface MTU fails with EMSGSIZE and is answered again in 512 octets (TC if it must). DF
     * also spares the kernel an IP ID per datagram (an unconnected socket's DF datagrams carry
     * ID 0; RFC 6864: an atomic datagram's ID need not be unique), a hash and a shared atomic
     * counter: 4% of a query's kernel time here.
     * IPv6 responses are never fragmented below 1280 either; ICMPv6 "packet too big" is
     * ignored (OMIT) as knot, NSD and gdnsd set it. */
    int probe = IP_PMTUDISC_PROBE, dont = IP_PMTUDISC_DONT;
    if (addr->sa_family == AF_INET) {
        if (setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &probe, sizeof probe) < 0)
            setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &dont, sizeof dont);
    } else if (addr->sa_family == AF_INET6) {
        int omit6 = IPV6_PMTUDISC_OMIT, dont6 = IPV6_PMTUDISC_DONT;
        if (setsockopt(fd, IPPROTO_IPV6, IPV6_MTU_DISCOVER, &omit6, sizeof omit6) < 0)
            setsockopt(fd, IPPROTO_IPV6, IPV6_MTU_DISCOVER, &dont6, sizeof dont6);
    }
    int buf = 4 * 1024 * 1024;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
    struct timeval tv = { .tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (bind(fd, addr, len) < 0) { int e = errno; close(fd); return -e; }
    return fd;
}

double lodestar_monotonic(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

uint64_t lodestar_monotonic_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

unsigned lodestar_next_shard(void) {
    static unsigned next = 0;
    return __atomic_fetch_add(&next, 1, __ATOMIC_RELAXED);
}

#include <sys/syscall.h>
#include <unistd.h>
#include <sys/random.h>

int lodestar_thread_id(void) { return (int)syscall(SYS_gettid); }

#define SIP_ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIP_ROUND                                                                                      \
    do {                                                                                               \
        v0 += v1; v1 = SIP_ROTL(v1, 13); v1 ^= v0; v0 = SIP_ROTL(v0, 32);                              \
        v2 += v3; v3 = SIP_ROTL(v3, 16); v3 ^= v2;                                                     \
        v0 += v3; v3 = SIP_ROTL(v3, 21); v3 ^= v0;                                                     \
        v2 += v1; v1 = SIP_ROTL(v1, 17); v1 ^= v2; v2 = SIP_ROTL(v2, 32);                              \
    } while (0)

static uint64_t load_le64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

uint64_t lodestar_siphash24(const uint8_t key[16], const uint8_t *data, size_t len) {
    uint64_t k0 = load_le64(key), k1 = load_le64(key + 8);
    uint64_t v0 = 0x736f6d6570736575ULL ^ k0, v1 = 0x646f72616e646f6dULL ^ k1;
    uint64_t v2 = 0x6c7967656e657261ULL ^ k0, v3 = 0x7465646279746573ULL ^ k1;
    size_t whole = len - len % 8;
    for (size_t i = 0; i < whole; i += 8) {
        uint64_t m = load_le64(data + i);
        v3 ^= m;
        SIP_ROUND; SIP_ROUND;
        v0 ^= m;
    }
    uint64_t last = (uint64_t)len << 56;
    for (size_t i = 0; i < len % 8; i++) last |= (uint64_t)data[whole + i] << (8 * i);
    v3 ^= last;
    SIP_ROUND; SIP_ROUND;
    v0 ^= last;
    v2 ^= 0xff;
    SIP_ROUND; SIP_ROUND; SIP_ROUND; SIP_ROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

int lodestar_random(void *buf, size_t len) {
    size_t done = 0;
    while (done < len) {
        ssize_t n = getrandom((uint8_t *)buf + done, len - done, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        done += (size_t)n;
    }
    return 0;
}

int lodestar_raise_nofile(uint64_t *soft, uint64_t *hard) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return -errno;
    if (rl.rlim_cur < rl.rlim_max) {
        struct rlimit raised = {rl.rlim_max, rl.rlim_max};
        if (setrlimit(RLIMIT_NOFILE, &raised) == 0) rl.rlim_cur = rl.rlim_max;
    }
    *soft = rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : (uint64_t)rl.rlim_cur;
    *hard = rl.rlim_max == RLIM_INFINITY ? UINT64_MAX : (uint64_t)rl.rlim_max;
    return 0;
}

int lodestar_write_durable(const char *path, const void *data, size_t len, unsigned mode) {
    size_t plen = strlen(path);
    if (plen == 0 || plen > 4000) return -ENAMETOOLONG;
    char tmp[4096 + 32];
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0) return -errno;
    const uint8_t *p = data;
    size_t done = 0;
    int err = 0;
    while (done < len) {
        ssize_t n = write(fd, p + done, len - done);
        if (n < 0) {
            if (errno == EINTR) continue;
            err = errno;
            break;
        }
        done += (size_t)n;
    }
    if (!err && fsync(fd) != 0) err = errno;
    if (close(fd) != 0 && !err) err = errno;
    if (!err && rename(tmp, path) != 0) err = errno;
    if (err) {
        unlink(tmp);
        return -err;
    }
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return 0;
}

int lodestar_tcp_listen(const struct sockaddr *addr, socklen_t len, int backlog) {
    int fd = socket(addr->sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return -errno;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (addr->sa_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (bind(fd, addr, len) < 0 || listen(fd, backlog) < 0) { int e = errno; close(fd); return -e; }
    return fd;
}

int lodestar_unix_listen(const char *path, unsigned mode, int uid, int gid, int backlog) {
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof sa.sun_path) return -ENAMETOOLONG;
    strcpy(sa.sun_path, path);
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) return -EEXIST;
        /* A socket someone still answers on is another server's: not taken from it. */
        int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (probe >= 0) {
            int live = connect(probe, (struct sockaddr *)&sa, sizeof sa) == 0;
            close(probe);
            if (live) return -EADDRINUSE;
        }
        if (unlink(path) < 0) return -errno;
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return -errno;
    mode_t old = umask(0177);
    int r = bind(fd, (struct sockaddr *)&sa, sizeof sa);
    umask(old);
    if (r < 0) { int e = errno; close(fd); return -e; }
    if ((uid >= 0 || gid >= 0) && chown(path, (uid_t)uid, (gid_t)gid) < 0) { int e = errno; close(fd); unlink(path); return -e; }
    if (chmod(path, (mode_t)mode) < 0 || listen(fd, backlog) < 0) { int e = errno; close(fd); unlink(path); return -e; }
    return fd;
}

long lodestar_peer_uid(int fd) {
    struct ucred cred;
    socklen_t len = sizeof cred;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) return -1;
    return (long)cred.uid;
}

int lodestar_fd_identity(int fd, unsigned long long *device, unsigned long long *inode) {
    struct stat st;
    if (fstat(fd, &st) < 0) return -errno;
    *device = (unsigned long long)st.st_dev;
    *inode = (unsigned long long)st.st_ino;
    return 0;
}

int lodestar_clear_capabilities(void) {
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
    struct __user_cap_header_struct header = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
    struct __user_cap_data_struct data[2];
    memset(data, 0, sizeof data);
    if (syscall(SYS_capset, &header, data) < 0) return -errno;
    return 0;
}

int lodestar_drop_privileges(const char *user, unsigned uid, unsigned gid) {
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
    if (initgroups(user, (gid_t)gid) < 0) {
        gid_t only = (gid_t)gid;
        if (setgroups(1, &only) < 0) return -errno;
    }
    /* glibc applies these to every thread of the process (the prober's and NIO's included). */
    if (setresgid(gid, gid, gid) < 0) return -errno;
    if (setresuid(uid, uid, uid) < 0) return -errno;
    /* Root cannot be regained. */
    if (uid != 0 && (setuid(0) == 0 || seteuid(0) == 0)) return -EPERM;
    return lodestar_clear_capabilities();
}

uint64_t lodestar_effective_capabilities(void) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return ~0ULL;
    char line[256];
    uint64_t caps = ~0ULL;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "CapEff:", 7) == 0) { caps = strtoull(line + 7, NULL, 16); break; }
    }
    fclose(f);
    return caps;
}

int lodestar_sd_notify(const char *path, const char *message) {
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof(((struct sockaddr_un *)0)->sun_path)) return -EINVAL;
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, path, n);
    if (path[0] == '@') sa.sun_path[0] = 0;
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    ssize_t sent = sendto(fd, message, strlen(message), MSG_NOSIGNAL, (struct sockaddr *)&sa,
                          (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n));
    int e = errno;
    close(fd);
    return sent < 0 ? -e : 0;
}
