/*
 * udp_relay: a lossy, reordering, duplicating UDP relay for the ngx_dtls
 * tests, a hostile network between a client and nginx.
 *
 *   udp_relay -l 127.0.0.1:LPORT -u 127.0.0.1:UPORT [-d DROP%]
 *             [-r REORDER%] [-D DUP%] [-c CORRUPT%] [-K KINDS] [-T TYPE]
 *             [-w MS] [-s SEED] [-b N] [-x FILE] [-L N] [-R N] [-v]
 *
 * Datagrams from clients to LPORT go to UPORT, each client from a socket
 * of its own (so nginx sees one address and port per client, as without
 * the relay), and the replies go back to the client.  Up to 64 clients at
 * once; the one heard from least recently gives way to a new one.
 *
 * In each direction, independently, every datagram is
 *
 *   dropped     with probability DROP (percent, may have decimals);
 *   held back   with probability REORDER, and sent right after the next
 *               datagram of its direction (the two change order), or
 *               after -w MS (default 100) if no other comes;
 *   duplicated  with probability DUP: sent twice in a row.
 *
 * Two knobs for datagrams from the client only:
 *
 *   -c CORRUPT  a datagram whose first record is of epoch 1 or later (an
 *               encrypted record) is, with probability CORRUPT, preceded
 *               by a corrupted copy, of one of the KINDS (digits, default
 *               012345): 0 a flipped bit in its last 16 bytes, 1 a
 *               truncation, 2 an epoch of 5, 3 the TLS 1.2 version, 4 a
 *               record length past the end of the datagram, 5 an empty
 *               datagram;
 *   -T TYPE     every datagram whose first byte (the DTLS content type)
 *               is TYPE is held back until the client's next datagram
 *               (or -w MS), which goes first: with -T 23 and a client
 *               that sends data and then close_notify, the server gets
 *               the close_notify first.
 *
 * A NAT that rebinds, and a tap:
 *
 *   -b N        every N datagrams from a client, its socket to the
 *               upstream is replaced by a new one (a new source port), as
 *               a NAT's binding that expired; replies to the old one are
 *               lost;
 *   -x FILE     each datagram from a client is appended to FILE in hex,
 *               one line each, as it goes to the upstream;
 *   -L N        the Nth datagram from each client (from 1) is lost: in
 *               FILE, not sent;
 *   -R N        the Nth datagram to each client is lost.
 *
 * Decisions come from a generator per client and direction seeded with
 * -s SEED (default 1), so a run with one client is repeatable.  Memory is
 * bounded: one datagram buffer, and at most one held datagram per client
 * and direction.
 *
 * Prints "udp_relay ready" once bound; on SIGTERM or SIGINT, prints
 *
 *   relayed N dropped D duplicated U reordered R
 *
 * (N datagrams passed on, extra copies, datagrams sent after one that
 * came later), then "corrupted C held H" (corrupted copies sent,
 * datagrams held back), then "rebound B" (new sockets of -b), and exits
 * with 0.  -v traces each datagram to
 * stderr.
 */

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"


#define BUF_SIZE     65536
#define MAX_PEERS    64

#define TO_UPSTREAM  0
#define TO_CLIENT    1


typedef struct {
    unsigned char           *data;
    size_t                   len;
    int                      dup;
    int                      corrupt;
    int64_t                  since;
} held_t;


typedef struct {
    int                      used;
    int                      fd;            /* to the upstream */
    struct sockaddr_storage  addr;          /* the client */
    socklen_t                addr_len;
    int64_t                  active;
    unsigned long            sent;          /* to the upstream */
    unsigned long            replied;       /* to the client */
    uint64_t                 rng[2];
    held_t                   held[2];
} peer_t;


static double                   drop_p, reorder_p, dup_p, corrupt_p;
static int                      hold_type = -1;
static char                     kinds[8] = "012345";
static size_t                   nkinds = 6;
static long                     hold_ms = 100;
static uint64_t                 seed = 1;
static int                      verbose;
static unsigned long            rebind_n, lose_n, lose_reply_n;
static FILE                    *tap;

static int                      lfd;
static struct sockaddr_storage  up_addr;
static socklen_t                up_len;
static peer_t                   peers[MAX_PEERS];
static unsigned long            npeers;

static unsigned long            relayed, dropped, duplicated, reordered,
                                corrupted, held_n, rebound;

static volatile sig_atomic_t    stop;


static void usage(void);
static int parse_pct(const char *s, double *p);
static void on_signal(int signo);
static int64_t now_ms(void);
static uint64_t next_rand(uint64_t *state);
static int chance(peer_t *p, int dir, double pct);
static peer_t *find_peer(struct sockaddr_storage *ss, socklen_t len);
static peer_t *new_peer(struct sockaddr_storage *ss, socklen_t len);
static int upstream_socket(void);
static void free_peer(peer_t *p);
static void handle(peer_t *p, int dir, unsigned char *data, size_t len);
static void emit(peer_t *p, int dir, unsigned char *data, size_t len,
    int dup, int corrupt);
static void out(peer_t *p, int dir, const unsigned char *data, size_t len);
static void send_corrupted(peer_t *p, const unsigned char *data, size_t len);
static void flush_held(peer_t *p, int dir, int after_later);
static int same_addr(struct sockaddr_storage *a, socklen_t alen,
    struct sockaddr_storage *b, socklen_t blen);


int
main(int argc, char **argv)
{
    int                      opt, i, n, timeout;
    char                    *end, *listen_str, *up_str;
    ssize_t                  len;
    int64_t                  now, left;
    peer_t                  *p, *ps[MAX_PEERS];
    socklen_t                slen, alen;
    struct pollfd            pfd[MAX_PEERS + 1];
    struct sigaction         sa;
    struct sockaddr_storage  ss, from;
    static unsigned char     buf[BUF_SIZE];

    listen_str = NULL;
    up_str = NULL;

    while ((opt = getopt(argc, argv, "l:u:d:r:D:c:K:T:w:s:b:x:L:R:vh"))
           != -1)
    {
        switch (opt) {
        case 'l':
            listen_str = optarg;
            break;
        case 'u':
            up_str = optarg;
            break;
        case 'd':
            if (parse_pct(optarg, &drop_p) != 0) {
                usage();
                return 2;
            }
            break;
        case 'r':
            if (parse_pct(optarg, &reorder_p) != 0) {
                usage();
                return 2;
            }
            break;
        case 'D':
            if (parse_pct(optarg, &dup_p) != 0) {
                usage();
                return 2;
            }
            break;
        case 'c':
            if (parse_pct(optarg, &corrupt_p) != 0) {
                usage();
                return 2;
            }
            break;
        case 'K':
            nkinds = strlen(optarg);
            if (nkinds == 0 || nkinds >= sizeof(kinds)
                || strspn(optarg, "012345") != nkinds)
            {
                usage();
                return 2;
            }
            memcpy(kinds, optarg, nkinds + 1);
            break;
        case 'T':
            hold_type = (int) strtol(optarg, &end, 10);
            if (*end != '\0' || hold_type < 0 || hold_type > 255) {
                usage();
                return 2;
            }
            break;
        case 'w':
            hold_ms = strtol(optarg, &end, 10);
            if (*end != '\0' || hold_ms < 1 || hold_ms > 600000) {
                usage();
                return 2;
            }
            break;
        case 's':
            seed = strtoull(optarg, &end, 10);
            if (*end != '\0') {
                usage();
                return 2;
            }
            break;
        case 'b':
            rebind_n = strtoul(optarg, &end, 10);
            if (*end != '\0' || rebind_n == 0) {
                usage();
                return 2;
            }
            break;
        case 'L':
            lose_n = strtoul(optarg, &end, 10);
            if (*end != '\0' || lose_n == 0) {
                usage();
                return 2;
            }
            break;
        case 'R':
            lose_reply_n = strtoul(optarg, &end, 10);
            if (*end != '\0' || lose_reply_n == 0) {
                usage();
                return 2;
            }
            break;
        case 'x':
            tap = fopen(optarg, "a");
            if (tap == NULL) {
                perror("udp_relay: -x");
                return 2;
            }
            setvbuf(tap, NULL, _IOLBF, 0);
            break;
        case 'v':
            verbose = 1;
            break;
        default:
            usage();
            return 2;
        }
    }

    if (listen_str == NULL || up_str == NULL || optind != argc
        || parse_addr(listen_str, &ss, &slen) != 0
        || parse_addr(up_str, &up_addr, &up_len) != 0)
    {
        usage();
        return 2;
    }

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    lfd = socket(ss.ss_family, SOCK_DGRAM, 0);
    if (lfd == -1) {
        perror("udp_relay: socket");
        return 1;
    }

    if (bind(lfd, (struct sockaddr *) &ss, slen) == -1) {
        perror("udp_relay: bind");
        return 1;
    }

    fcntl(lfd, F_SETFL, fcntl(lfd, F_GETFL) | O_NONBLOCK);

    printf("udp_relay ready\n");
    fflush(stdout);

    while (!stop) {

        /* the earliest held datagram due */

        timeout = -1;
        now = now_ms();

        for (i = 0; i < MAX_PEERS; i++) {
            if (!peers[i].used) {
                continue;
            }

            for (n = 0; n < 2; n++) {
                if (peers[i].held[n].data == NULL) {
                    continue;
                }

                left = peers[i].held[n].since + hold_ms - now;

                if (left <= 0) {
                    flush_held(&peers[i], n, 0);
                    continue;
                }

                if (timeout == -1 || left < timeout) {
                    timeout = (int) left;
                }
            }
        }

        pfd[0].fd = lfd;
        pfd[0].events = POLLIN;
        pfd[0].revents = 0;
        n = 1;

        for (i = 0; i < MAX_PEERS; i++) {
            if (peers[i].used) {
                pfd[n].fd = peers[i].fd;
                pfd[n].events = POLLIN;
                pfd[n].revents = 0;
                ps[n] = &peers[i];
                n++;
            }
        }

        if (poll(pfd, n, timeout) == -1) {
            if (errno == EINTR) {
                continue;
            }
            perror("udp_relay: poll");
            break;
        }

        /* from clients */

        if (pfd[0].revents) {
            for ( ;; ) {
                alen = sizeof(from);
                len = recvfrom(lfd, buf, sizeof(buf), 0,
                               (struct sockaddr *) &from, &alen);
                if (len < 0) {
                    break;
                }

                p = find_peer(&from, alen);
                if (p == NULL) {
                    p = new_peer(&from, alen);
                    if (p == NULL) {
                        continue;
                    }
                }

                p->active = now_ms();
                handle(p, TO_UPSTREAM, buf, (size_t) len);
            }
        }

        /* from the upstream */

        for (i = 1; i < n; i++) {
            if (!pfd[i].revents) {
                continue;
            }

            p = ps[i];

            for ( ;; ) {
                len = recv(p->fd, buf, sizeof(buf), 0);
                if (len < 0) {
                    /* ECONNREFUSED and the like: nothing to relay */
                    if (errno == EAGAIN || errno == EWOULDBLOCK) {
                        break;
                    }
                    if (errno == EINTR) {
                        continue;
                    }
                    break;
                }

                p->active = now_ms();
                handle(p, TO_CLIENT, buf, (size_t) len);
            }
        }
    }

    for (i = 0; i < MAX_PEERS; i++) {
        if (peers[i].used) {
            free_peer(&peers[i]);
        }
    }

    printf("relayed %lu dropped %lu duplicated %lu reordered %lu\n",
           relayed, dropped, duplicated, reordered);
    printf("corrupted %lu held %lu\n", corrupted, held_n);
    printf("rebound %lu\n", rebound);
    fflush(stdout);

    close(lfd);

    return 0;
}


static void
usage(void)
{
    fprintf(stderr,
        "usage: udp_relay -l ADDR:PORT -u ADDR:PORT [-d DROP%%] "
        "[-r REORDER%%] [-D DUP%%]\n"
        "                 [-c CORRUPT%%] [-K KINDS] [-T TYPE] [-w MS] [-s SEED]"
        " [-b N]\n"
        "                 [-x FILE] [-L N] [-R N] [-v]\n");
}



static int
parse_pct(const char *s, double *p)
{
    char  *end;

    *p = strtod(s, &end);

    if (end == s || *end != '\0' || *p < 0 || *p > 100) {
        return -1;
    }

    return 0;
}


static void
on_signal(int signo)
{
    (void) signo;
    stop = 1;
}


static int64_t
now_ms(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


/* splitmix64 */

static uint64_t
next_rand(uint64_t *state)
{
    uint64_t  z;

    z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;

    return z ^ (z >> 31);
}


/* a draw for every decision, whatever the percentage: repeatable runs */

static int
chance(peer_t *p, int dir, double pct)
{
    double  r;

    r = (double) (next_rand(&p->rng[dir]) >> 11) / 9007199254740992.0;

    return r * 100.0 < pct;
}


static peer_t *
find_peer(struct sockaddr_storage *ss, socklen_t len)
{
    int  i;

    for (i = 0; i < MAX_PEERS; i++) {
        if (peers[i].used
            && same_addr(&peers[i].addr, peers[i].addr_len, ss, len))
        {
            return &peers[i];
        }
    }

    return NULL;
}


static peer_t *
new_peer(struct sockaddr_storage *ss, socklen_t len)
{
    int      i, fd;
    peer_t  *p;

    p = NULL;

    for (i = 0; i < MAX_PEERS; i++) {
        if (!peers[i].used) {
            p = &peers[i];
            break;
        }

        if (p == NULL || peers[i].active < p->active) {
            p = &peers[i];
        }
    }

    if (p->used) {
        if (verbose) {
            fprintf(stderr, "udp_relay: client %ld evicted\n",
                    (long) (p - peers));
        }
        free_peer(p);
    }

    fd = upstream_socket();
    if (fd == -1) {
        return NULL;
    }

    memset(p, 0, sizeof(*p));
    p->used = 1;
    p->fd = fd;
    memcpy(&p->addr, ss, len);
    p->addr_len = len;
    p->active = now_ms();
    p->rng[TO_UPSTREAM] = seed * 1000003ULL + npeers * 2;
    p->rng[TO_CLIENT] = seed * 1000003ULL + npeers * 2 + 1;

    npeers++;

    if (verbose) {
        fprintf(stderr, "udp_relay: new client %ld\n", (long) (p - peers));
    }

    return p;
}


/* a client's socket to the upstream, connected, non-blocking */

static int
upstream_socket(void)
{
    int  fd;

    fd = socket(up_addr.ss_family, SOCK_DGRAM, 0);
    if (fd == -1) {
        perror("udp_relay: socket");
        return -1;
    }

    if (connect(fd, (struct sockaddr *) &up_addr, up_len) == -1) {
        perror("udp_relay: connect");
        close(fd);
        return -1;
    }

    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);

    return fd;
}


static void
free_peer(peer_t *p)
{
    int  n;

    for (n = 0; n < 2; n++) {
        free(p->held[n].data);
        p->held[n].data = NULL;
    }

    close(p->fd);
    p->used = 0;
}


static void
handle(peer_t *p, int dir, unsigned char *data, size_t len)
{
    int      drop, hold, dup, corrupt, forced;
    held_t  *h;

    /* every decision is drawn, so that each is repeatable */

    drop = chance(p, dir, drop_p);
    hold = chance(p, dir, reorder_p);
    dup = chance(p, dir, dup_p);
    corrupt = chance(p, dir, corrupt_p);

    forced = dir == TO_UPSTREAM && hold_type >= 0 && len > 0
             && data[0] == hold_type;

    /* only copies of encrypted records (epoch > 0) from the client */

    corrupt = corrupt && dir == TO_UPSTREAM && len >= 13
              && data[0] >= 20 && data[0] <= 23
              && (data[3] != 0 || data[4] != 0);

    if (drop && !forced) {
        dropped++;

        if (verbose) {
            fprintf(stderr, "udp_relay: %s %zu bytes dropped\n",
                    dir == TO_UPSTREAM ? ">" : "<", len);
        }

        return;
    }

    h = &p->held[dir];

    if (h->data) {
        /* this one goes first, the held one after it */
        emit(p, dir, data, len, dup, corrupt);
        flush_held(p, dir, 1);
        return;
    }

    if (hold || forced) {
        h->data = malloc(len ? len : 1);

        if (h->data) {
            memcpy(h->data, data, len);
            h->len = len;
            h->dup = dup;
            h->corrupt = corrupt;
            h->since = now_ms();
            held_n++;

            if (verbose) {
                fprintf(stderr, "udp_relay: %s %zu bytes held\n",
                        dir == TO_UPSTREAM ? ">" : "<", len);
            }

            return;
        }
    }

    emit(p, dir, data, len, dup, corrupt);
}


static void
emit(peer_t *p, int dir, unsigned char *data, size_t len, int dup,
    int corrupt)
{
    if (corrupt) {
        send_corrupted(p, data, len);
    }

    relayed++;
    out(p, dir, data, len);

    if (dup) {
        duplicated++;
        out(p, dir, data, len);
    }
}


static void
out(peer_t *p, int dir, const unsigned char *data, size_t len)
{
    int      fd;
    size_t   i;
    ssize_t  n;

    if (dir == TO_UPSTREAM) {

        if (rebind_n && p->sent && p->sent % rebind_n == 0) {
            fd = upstream_socket();
            if (fd != -1) {
                close(p->fd);
                p->fd = fd;
                rebound++;
            }
        }

        p->sent++;

        if (tap) {
            for (i = 0; i < len; i++) {
                fprintf(tap, "%02x", data[i]);
            }
            fputc('\n', tap);
        }

        if (p->sent == lose_n) {
            return;
        }

        n = send(p->fd, data, len, 0);

    } else {
        if (++p->replied == lose_reply_n) {
            return;
        }

        n = sendto(lfd, data, len, 0, (struct sockaddr *) &p->addr,
                   p->addr_len);
    }

    if (verbose) {
        fprintf(stderr, "udp_relay: %s %zu bytes%s\n",
                dir == TO_UPSTREAM ? ">" : "<", len,
                n < 0 ? " (send failed)" : "");
    }
}


static void
send_corrupted(peer_t *p, const unsigned char *data, size_t len)
{
    size_t                reclen;
    uint64_t              r;
    static unsigned char  copy[BUF_SIZE];

    memcpy(copy, data, len);

    r = next_rand(&p->rng[TO_UPSTREAM]);

    switch (kinds[r % nkinds]) {

    case '0':
        /* a flipped bit in the last 16 bytes: the tag, or near it */
        copy[len - 1 - (r >> 8) % (len < 16 ? len : 16)] ^=
            (unsigned char) (1 << ((r >> 16) % 8));
        break;

    case '1':
        /* truncated within the record */
        len = 1 + (r >> 8) % (len - 1);
        break;

    case '2':
        copy[3] = 0;
        copy[4] = 5;
        break;

    case '3':
        copy[1] = 0x03;
        copy[2] = 0x03;
        break;

    case '4':
        /* a record length past the end of the datagram */
        reclen = len - 13 + 1 + (r >> 8) % 256;
        if (reclen > 0xffff) {
            reclen = 0xffff;
        }
        copy[11] = (unsigned char) (reclen >> 8);
        copy[12] = (unsigned char) reclen;
        break;

    default:
        len = 0;
        break;
    }

    corrupted++;
    out(p, TO_UPSTREAM, copy, len);
}


static void
flush_held(peer_t *p, int dir, int after_later)
{
    held_t  *h;

    h = &p->held[dir];

    if (h->data == NULL) {
        return;
    }

    if (after_later) {
        reordered++;
    }

    emit(p, dir, h->data, h->len, h->dup, h->corrupt);

    free(h->data);
    h->data = NULL;
}


static int
same_addr(struct sockaddr_storage *a, socklen_t alen,
    struct sockaddr_storage *b, socklen_t blen)
{
    struct sockaddr_in   *a4, *b4;
    struct sockaddr_in6  *a6, *b6;

    if (alen != blen || a->ss_family != b->ss_family) {
        return 0;
    }

    if (a->ss_family == AF_INET) {
        a4 = (struct sockaddr_in *) a;
        b4 = (struct sockaddr_in *) b;
        return a4->sin_port == b4->sin_port
               && a4->sin_addr.s_addr == b4->sin_addr.s_addr;
    }

    a6 = (struct sockaddr_in6 *) a;
    b6 = (struct sockaddr_in6 *) b;

    return a6->sin6_port == b6->sin6_port
           && memcmp(&a6->sin6_addr, &b6->sin6_addr, 16) == 0;
}
