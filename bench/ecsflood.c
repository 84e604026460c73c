/* ecsflood: queries one name from many client subnets, which dnsperf cannot (its -E option is one
 * fixed option per run, and it sends from one address).
 *
 * usage: ecsflood PORT SECONDS NAME SUBNETS SEED [OUTSTANDING [ecs|source]]
 *
 * Builds SUBNETS queries for NAME A, one for each of SUBNETS different /24s drawn from the public
 * IPv4 space (seeded), and sends them to 127.0.0.1:PORT in turn for SECONDS, keeping at most
 * OUTSTANDING (default 500, as the benchmark's dnsperf -q) unanswered. A query unanswered after
 * 100 ms counts as lost. Prints "sent N received N lost N qps X" on one line.
 *
 * ecs (the default): every query carries an ECS option for its /24 (EDNS payload 1232).
 * source: no ECS option (an OPT record without options), and the query is sent *from* an address
 * in its /24 (IP_PKTINFO). That needs every address to be local, so it runs only in a network
 * namespace whose loopback holds 0.0.0.0/0 (`ip route add local 0.0.0.0/0 dev lo`); bench.py
 * makes one. The answers come back to those addresses, on the same namespace's loopback.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 32

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static uint64_t next(uint64_t *s) { /* splitmix64 */
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* A /24 outside 0/8, 10/8, 100.64/10, 127/8, 169.254/16, 172.16/12, 192.168/16 and 224/3. */
static uint32_t public24(uint64_t *s) {
    for (;;) {
        uint32_t a = (uint32_t)next(s) & 0xFFFFFF00u;
        uint8_t o = a >> 24, p = (a >> 16) & 0xFF;
        if (o == 0 || o == 10 || o == 127 || o >= 224) continue;
        if (o == 100 && (p & 0xC0) == 64) continue;
        if (o == 169 && p == 254) continue;
        if (o == 172 && (p & 0xF0) == 16) continue;
        if (o == 192 && p == 168) continue;
        return a;
    }
}

int main(int argc, char **argv) {
    if (argc < 6) {
        fprintf(stderr, "usage: ecsflood PORT SECONDS NAME SUBNETS SEED [OUTSTANDING]\n");
        return 2;
    }
    int port = atoi(argv[1]);
    double seconds = atof(argv[2]);
    const char *name = argv[3];
    long subnets = atol(argv[4]);
    uint64_t seed = strtoull(argv[5], NULL, 10);
    long window = argc > 6 ? atol(argv[6]) : 500;
    int from_source = argc > 7 && strcmp(argv[7], "source") == 0;
    if (argc > 7 && !from_source && strcmp(argv[7], "ecs") != 0) return 2;
    if (port <= 0 || seconds <= 0 || subnets <= 0 || window <= 0 || seconds > 600) return 2;

    /* The question in wire form. */
    uint8_t qname[256];
    size_t qlen = 0;
    const char *p = name;
    while (*p) {
        const char *dot = strchr(p, '.');
        size_t l = dot ? (size_t)(dot - p) : strlen(p);
        if (l == 0 || l > 63 || qlen + l + 2 > sizeof qname) return 2;
        qname[qlen++] = (uint8_t)l;
        memcpy(qname + qlen, p, l);
        qlen += l;
        p += l + (dot ? 1 : 0);
    }
    qname[qlen++] = 0;
    size_t plen = 12 + qlen + 4 + 11 + (from_source ? 0 : 4 + 7);
    uint8_t *packets = calloc((size_t)subnets, plen);
    uint32_t *sources = calloc((size_t)subnets, sizeof *sources);
    if (!packets || !sources) return 1;
    for (long i = 0; i < subnets; i++) {
        uint8_t *q = packets + (size_t)i * plen;
        uint32_t a = public24(&seed);
        sources[i] = a | (uint32_t)(1 + i % 254);
        q[5] = 1;  /* QDCOUNT */
        q[11] = 1; /* ARCOUNT: the OPT */
        memcpy(q + 12, qname, qlen);
        uint8_t *t = q + 12 + qlen;
        t[1] = 1; t[3] = 1;                       /* A IN */
        t += 4;
        t[2] = 41; t[3] = 1232 >> 8; t[4] = 1232 & 0xFF;  /* OPT, payload 1232 */
        if (from_source) continue;               /* RDLENGTH 0 */
        t[10] = 11;                              /* RDLENGTH: one 11-octet option */
        t += 11;
        t[1] = 8; t[3] = 7;                      /* ECS, length 7 */
        t[5] = 1; t[6] = 24; t[7] = 0;           /* IPv4, /24, scope 0 */
        t[8] = a >> 24; t[9] = (a >> 16) & 0xFF; t[10] = (a >> 8) & 0xFF;
    }

    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    if (fd < 0) { perror("socket"); return 1; }
    if (from_source) {
        /* Unconnected and bound to the wildcard, so answers to every source address arrive here. */
        struct sockaddr_in any = {.sin_family = AF_INET};
        if (bind(fd, (struct sockaddr *)&any, sizeof any) < 0) { perror("bind"); return 1; }
    } else if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        perror("connect");
        return 1;
    }
    int buf = 4 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);

    static uint8_t in[BATCH][4096];
    struct mmsghdr out_msgs[BATCH], in_msgs[BATCH];
    struct iovec out_iov[BATCH], in_iov[BATCH];
    static union { struct cmsghdr align; uint8_t buf[CMSG_SPACE(sizeof(struct in_pktinfo))]; } control[BATCH];
    for (int i = 0; i < BATCH; i++) {
        in_iov[i].iov_base = in[i];
        in_iov[i].iov_len = sizeof in[i];
        memset(&in_msgs[i], 0, sizeof in_msgs[i]);
        in_msgs[i].msg_hdr.msg_iov = &in_iov[i];
        in_msgs[i].msg_hdr.msg_iovlen = 1;
    }
    long sent = 0, received = 0, lost = 0, cursor = 0;
    double start = now(), end = start + seconds, last_answer = start;
    while (now() < end) {
        long inflight = sent - received - lost;
        int k = 0;
        while (k < BATCH && inflight + k < window) {
            uint8_t *q = packets + (size_t)cursor * plen;
            q[0] = (uint8_t)((sent + k) >> 8);
            q[1] = (uint8_t)(sent + k);
            out_iov[k].iov_base = q;
            out_iov[k].iov_len = plen;
            memset(&out_msgs[k], 0, sizeof out_msgs[k]);
            out_msgs[k].msg_hdr.msg_iov = &out_iov[k];
            out_msgs[k].msg_hdr.msg_iovlen = 1;
            if (from_source) {
                out_msgs[k].msg_hdr.msg_name = &sa;
                out_msgs[k].msg_hdr.msg_namelen = sizeof sa;
                out_msgs[k].msg_hdr.msg_control = control[k].buf;
                out_msgs[k].msg_hdr.msg_controllen = sizeof control[k].buf;
                struct cmsghdr *c = CMSG_FIRSTHDR(&out_msgs[k].msg_hdr);
                c->cmsg_level = IPPROTO_IP;
                c->cmsg_type = IP_PKTINFO;
                c->cmsg_len = CMSG_LEN(sizeof(struct in_pktinfo));
                struct in_pktinfo info = {.ipi_spec_dst.s_addr = htonl(sources[cursor])};
                memcpy(CMSG_DATA(c), &info, sizeof info);
            }
            cursor = (cursor + 1) % subnets;
            k++;
        }
        if (k > 0) {
            int r = sendmmsg(fd, out_msgs, (unsigned)k, MSG_DONTWAIT);
            if (r > 0) sent += r;
            else if (r < 0 && sent == 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
                /* EINVAL from a source address that is not local: not in the namespace bench.py makes. */
                perror(from_source ? "sendmmsg from client addresses (needs `local 0.0.0.0/0 dev lo`)" : "sendmmsg");
                return 1;
            }
        }
        int r = recvmmsg(fd, in_msgs, BATCH, MSG_DONTWAIT, NULL);
        if (r > 0) {
            received += r;
            last_answer = now();
        } else if (sent - received - lost >= window || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
            if (now() - last_answer > 0.1) { /* nothing for 100 ms: the rest in flight is lost */
                lost = sent - received;
                last_answer = now();
            } else {
                usleep(50);
            }
        }
    }
    double took = now() - start;
    /* Answers still on their way are counted for a short grace period, as lost otherwise. */
    double grace = now() + 0.2;
    while (sent - received - lost > 0 && now() < grace) {
        int r = recvmmsg(fd, in_msgs, BATCH, MSG_DONTWAIT, NULL);
        if (r > 0) received += r; else usleep(100);
    }
    lost = sent - received;
    printf("sent %ld received %ld lost %ld qps %.0f\n", sent, received, lost, received / took);
    free(packets);
    free(sources);
    close(fd);
    return 0;
}
