/*
 * dtls_load: a DTLS-PSK load generator for the ngx_dtls benchmarks, with
 * a plain UDP mode for nginx's UDP proxy without DTLS (the ceiling without
 * cryptography).
 *
 *   dtls_load -c ADDR:PORT -m handshake|echo|hold [-n CONCURRENCY]
 *             [-d SECONDS] [-w SECONDS] [-s PAYLOAD] [-i IDENTITY]
 *             [-k HEXKEY] [-C CIPHERS] [-u] [-b BINDADDR] [-N SESSIONS]
 *             [-t MS] [-M MTU] [-a CERTFILE -K KEYFILE] [-r] [-R MS]
 *             [-H SECONDS] [-v]
 *
 * One thread, one epoll loop, one non-blocking UDP socket per session,
 * connect()ed to the server (and bound to BINDADDR, port 0, with -b);
 * timers in a binary heap.  One SSL_CTX for all sessions: DTLS 1.2 only,
 * the PSK identity -i (default "bench") and key -k (required without -u
 * and -a), or with -I COUNT a random one of COUNT identities,
 * "IDENTITY-0000042", at each handshake, all with that key (the PSK store
 * at fleet scale), the ciphers -C (default DEFAULT_CIPHERS, CERT_CIPHERS
 * with -a and no -k), handshake flights of at most -M bytes (default
 * 1200).  With -a, the client's certificate chain (PEM, leaf first) and -K
 * its key are sent to a server that asks for one; the server's is not
 * verified.
 *
 * With -r, every session resumes the session of the first handshake that
 * completed (an abbreviated handshake, with the server's ticket or by
 * session ID): a server that refuses makes a full handshake instead,
 * counted apart ("resumed" are the handshakes that did resume).  Records
 * go through read() and write() on the socket.
 *
 * An echo is PAYLOAD bytes (-s, 8 to 16384, default 16): the session's
 * number and a sequence number, then a fixed pattern; the reply must be
 * the same bytes (a late reply to an earlier echo of the session is
 * skipped).  With DTLS, a PAYLOAD whose record would not fit in -M is
 * refused after the first handshake (exit 2): the server's dtls_mtu must
 * fit it too, and nginx drops larger replies.
 *
 * Modes:
 *   handshake  -n slots, each in a loop: a new socket (so a new source
 *              port), a full handshake (with the server's cookie
 *              exchange), one echo, close_notify (not waiting for the
 *              server's), close.  A latency sample is the time from the
 *              first ClientHello to the echo reply.  Not with -u.
 *   echo       -n sessions are established first (not measured), then
 *              each, in a closed loop, sends an echo, waits for its reply,
 *              sends the next.  With -R MS, paced instead: each session
 *              sends an echo every MS milliseconds on average (each
 *              interval drawn between MS/2 and 3MS/2, from the previous
 *              echo's sending; at once if its reply came later than
 *              that), the first within MS of the measurement's start, so
 *              that many sessions make a light, steady load (-n / MS
 *              echoes a millisecond).  A latency sample is one round trip.
 *              At the end, close_notify on each session.  With -u, plain
 *              datagrams.
 *   hold       -N sessions (default 1000) are established, at most -n
 *              handshakes at a time, each with one echo so that the server
 *              has set up its side (with -u: one datagram each); then the
 *              ready line is printed and the sessions stay idle until
 *              stdin reaches EOF, SIGTERM or SIGINT, or for -d seconds if
 *              given; then close_notify on each, and the final line.  A
 *              stdin that cannot be waited for (a file, /dev/null: the
 *              stdin of a script's background job) is ignored.  A held
 *              session keeps its socket and its close_notify, made in
 *              advance, not its SSL object: some 50K less each.
 *              With -H SECONDS, each session keeps its SSL object instead,
 *              and after SECONDS of silence (stdin and signals end it
 *              sooner, without this) the sessions wake, at most -n at a
 *              time: each held session sends one echo; one that gets no
 *              reply (-t), or that the server closed while held, makes a
 *              new handshake and sends its echo again (3 tries); then the
 *              close_notify and the final line.
 *
 * handshake and echo: -w seconds of warm-up (default 1), then -d seconds
 * (default 5) measured; then the sessions still busy get up to 2 s to
 * finish.  Counts, rates, latencies and CPU times are those of the
 * measured seconds.  SIGTERM or SIGINT ends the measurement early.
 *
 * The sessions left at the end get their close_notify 64 at a time, each
 * waiting for the server's (500 ms at most), so that the server's socket
 * buffer does not overflow and leave sessions behind for its timeouts;
 * after 10 s, or on a signal, the rest without waiting.
 *
 * Timeouts: a handshake has -t ms (default 5000), with OpenSSL's DTLS
 * retransmission timer (1 s, doubling); an echo with no reply after 1 s
 * is sent again, once, and fails after -t ms.  A failed session is
 * replaced by a new one at once after a timeout, 100 ms later after any
 * other failure (echo: re-established, "reconnects"); while echo and hold
 * set up their sessions, each gets 3 tries.  The first 10 failures are
 * reported on stderr (-v: all of them, and each phase).
 *
 * Output: diagnostics on stderr (never the key); on stdout one JSON
 * object on one line at the end:
 *
 *   {"mode":"handshake","transport":"dtls","server":"127.0.0.1:5684",
 *    "concurrency":64,"payload":16,"cipher":"PSK-AES128-CCM8",
 *    "seconds":5.001,"handshakes":12345,"handshakes_per_s":2468.5,
 *    "echoes":12345,"echoes_per_s":2468.5,"latency_us":{"p50":..,
 *    "p99":..,"p999":..,"mean":..,"max":..},"failures":0,
 *    "failures_total":0,"failure_kinds":{"handshake":0,
 *    "handshake_timeout":0,"echo_timeout":0,"mismatch":0,"closed":0,
 *    "ssl":0,"socket":0},"retransmissions":0,
 *    "retransmissions_handshake":0,"retransmissions_echo":0,
 *    "late_replies":0,"resumed":0,"reconnects":0,"closed":0,
 *    "close_acked":0,
 *    "interrupted":false,"cpu_user_s":1.2,"cpu_sys_s":2.3}
 *
 * "cipher" is the suite the first session negotiated (null with -u);
 * echo adds "sessions", those established when the measurement started.
 * "handshakes" are the handshakes completed, "echoes" the replies (in
 * handshake mode, the connections completed).  Latencies are in
 * microseconds, within 1% (a log histogram).  "retransmissions" are the
 * handshake flights OpenSSL's timer resent (DTLSv1_handle_timeout()) and
 * the echoes sent again.  "failures" are handshakes that failed or timed
 * out, echoes that timed out or came back wrong, sessions the server
 * closed, socket errors; "failures_total" those of the whole run (set-up,
 * warm-up and the end included).  "closed" counts the close_notify sent
 * at the end, "close_acked" the server's replies to them.
 *
 * hold prints {"mode":"hold","ready":true,...} once set up ("ready":false
 * when no session could be), and at the end {"mode":"hold","done":true,
 * ...}: "requested" (-N), "sessions" held, "setup_s", "handshakes" and
 * "handshakes_per_s" of the set-up, and in the final line "held_s",
 * "lost" (sessions the server ended while held), "closed",
 * "close_acked", "unexpected" (datagrams to idle sessions); counts and
 * CPU times are those of the whole run.  With -H, "held_s" is the
 * silence, and the final line adds "wake_s" (the wake's time),
 * "woken" (held sessions that sent), "wake_answered" (answered in their
 * held session), "wake_handshakes" (answered only after a new
 * handshake) and "wake_failed" (not answered at all).  With -R, echo's
 * line adds "pace_ms" (0 without).
 *
 * A session needs a file descriptor: the soft RLIMIT_NOFILE is raised to
 * the hard one, and -n (hold: -N) beyond it is a usage error.
 *
 * Exit status: 0 when the run worked (even with some failures: see
 * "failures"), 1 when nothing succeeded, 2 on usage errors.
 */

#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "addr.h"
#include "dtls.h"
#include "opt.h"


#define DEFAULT_CIPHERS   "PSK-AES128-CCM8:PSK-AES128-GCM-SHA256"
#define DEFAULT_IDENTITY  "bench"
#define CERT_CIPHERS      "ECDHE-ECDSA-AES128-GCM-SHA256"

#define now_us()          (tool_now_ns() / 1000)

#define MTU               1200
#define PAYLOAD_MIN       8             /* the session and sequence */
#define PAYLOAD_MAX       16384
#define BUF_SIZE          65536
#define ECHO_RETRY_MS     1000
#define WRITE_RETRY_MS    10
#define BACKOFF_MS        100
#define DRAIN_MS          2000
#define SETUP_TRIES       3
#define FD_RESERVE        8             /* stdio, epoll, signalfd, ... */
#define MAX_EVENTS        1024
#define MAX_LOGGED        10
#define CLOSE_WINDOW      64            /* close_notify awaiting replies */
#define CLOSE_WAIT_MS     500
#define CLOSE_MS          10000         /* then the rest without waiting */
#define CLOSE_BATCH       64            /* ... 64, then 1 ms, ... */

/*
 * The latency histogram: values below 128 us exactly, above in 64
 * sub-buckets per power of two, so within 1/128 of the value midway
 */

#define HIST_SUB_BITS     7
#define HIST_SUB          (1 << HIST_SUB_BITS)
#define HIST_HALF         (HIST_SUB / 2)
#define HIST_BUCKETS      (HIST_SUB + (32 - HIST_SUB_BITS) * HIST_HALF)


typedef enum {
    MODE_HANDSHAKE = 0,
    MODE_ECHO,
    MODE_HOLD
} load_mode_e;


/* -m, in the order of the modes */

static const char *const  modes[] = {
    "handshake", "echo", "hold", NULL
};


typedef enum {
    ST_FREE = 0,                        /* no socket */
    ST_BACKOFF,                         /* to start again on its timer */
    ST_HANDSHAKE,
    ST_ECHO,                            /* an echo out, waiting */
    ST_IDLE,                            /* established, nothing out */
    ST_PACE,                            /* -R: the next echo on its timer */
    ST_DEAD,                            /* given up */
    ST_CLOSING,                         /* close_notify sent, waiting */
    ST_N
} sess_state_e;


typedef enum {
    PH_SETUP = 0,                       /* echo, hold: establishing */
    PH_WARMUP,
    PH_MEASURE,
    PH_DRAIN,                           /* the busy ones finish */
    PH_HOLD,
    PH_WAKE,                            /* hold -H: the echoes after it */
    PH_DONE,                            /* over: to close the sessions */
    PH_CLOSE
} phase_e;


typedef enum {
    F_HANDSHAKE = 0,
    F_HANDSHAKE_TIMEOUT,
    F_ECHO_TIMEOUT,
    F_MISMATCH,
    F_CLOSED,
    F_SSL,
    F_SOCKET,
    F_N
} fail_e;


typedef struct {
    uint64_t                 handshakes;
    uint64_t                 resumed;
    uint64_t                 echoes;
    uint64_t                 failures[F_N];
    uint64_t                 retrans_handshake;
    uint64_t                 retrans_echo;
    uint64_t                 reconnects;
    uint64_t                 late;
    uint64_t                 unexpected;
    uint64_t                 lost;
    uint64_t                 woken;
    uint64_t                 wake_answered;
    uint64_t                 wake_handshakes;
} stats_t;


typedef struct {
    uint64_t                 count;
    uint64_t                 sum;
    uint32_t                 min;
    uint32_t                 max;
    uint64_t                 bucket[HIST_BUCKETS];
} hist_t;


typedef struct {
    int                      fd;
    int                      err;       /* errno of a failed read/write */
    long                     heap;      /* in the timer heap, or -1 */
    SSL                     *ssl;
    unsigned char           *close;     /* hold: its close_notify */
    size_t                   close_len;
    int64_t                  timer;     /* us, monotonic */
    int64_t                  start;     /* the first ClientHello */
    int64_t                  deadline;  /* of the handshake or the echo */
    int64_t                  sent;      /* the echo */
    uint32_t                 id;
    uint32_t                 seq;
    uint8_t                  state;
    uint8_t                  resent;
    uint8_t                  want_write;
    uint8_t                  tries;
    uint8_t                  held;      /* hold: established in set-up */
    uint8_t                  renewed;   /* hold -H: handshake at wake */
} sess_t;


typedef struct {
    struct sockaddr_storage  peer;
    socklen_t                peer_len;
    const char              *peer_str;
    struct sockaddr_storage  local;
    socklen_t                local_len;
    int                      has_local;
    const char              *identity;
    long                     identities;    /* -I: 0, or how many */
    const char              *ciphers;
    const char              *cert;
    const char              *cert_key;
    int                      resume;
    load_mode_e              mode;
    int                      has_mode;
    long                     concurrency;
    long                     sessions;
    double                   duration;
    int                      has_duration;
    double                   warmup;
    long                     payload;
    long                     timeout;
    long                     mtu;
    long                     pace;          /* -R: ms, or 0 */
    double                   wake;          /* -H: seconds, or 0 */
    int                      udp;
    int                      verbose;
} conf_t;


static conf_t          cf;
static SSL_CTX        *ctx;
static SSL_SESSION    *resume_sess;     /* -r: of the first handshake */
static BIO_METHOD     *bio_method;
static int             ep = -1;
static int             sig_fd = -1;
static int             stdin_watched;

static sess_t         *sessions;
static long            nsess;
static sess_t        **heap;
static long            heap_n;
static long            state_n[ST_N];
static long            hold_next;

static phase_e         phase;
static int64_t         phase_until;     /* 0: none */
static int64_t         t_start, t_begin, t_end, t_done, t_wake;
static int             measured;
static int             ready_printed;
static int             interrupted;
static int             fatal;
static long            established;     /* at the ready line or measure */
static long            closed_n;
static long            acked_n;
static int             close_abort;

static stats_t         st, st_begin, st_end;
static hist_t          hist;
static struct rusage   ru_begin, ru_end;
static char            cipher[64];
static uint64_t        logged;

static unsigned char   sbuf[PAYLOAD_MAX];   /* the pattern, stamped */
static unsigned char   rbuf[BUF_SIZE];
static char            ev_signal, ev_stdin;  /* epoll markers */

static const char     *fail_names[F_N] = {
    "handshake", "handshake_timeout", "echo_timeout", "mismatch",
    "closed", "ssl", "socket"
};


static void usage(void);
static int parse_args(int argc, char **argv);
static int parse_seconds(const char *s, double *v, int zero);
static int parse_local(const char *s);
static int raise_nofile(void);
static void dbg(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

static SSL_CTX *make_ctx(void);
static int bio_init(void);
static int bio_write(BIO *b, const char *buf, int len);
static int bio_read(BIO *b, char *buf, int len);
static long bio_ctrl(BIO *b, int cmd, long num, void *ptr);

static void heap_up(long i);
static void heap_down(long i);
static void timer_set(sess_t *s, int64_t at);
static void timer_del(sess_t *s);
static void timers_run(int64_t now);

static void hist_add(int64_t v);
static unsigned hist_index(uint32_t v);
static uint32_t hist_value(unsigned i);
static uint32_t hist_pct(double q);

static void set_state(sess_t *s, sess_state_e state);
static long busy(void);
static int may_start(void);
static int may_send(void);
static void sess_start(sess_t *s);
static void sess_handshake(sess_t *s);
static void sess_hs_timer(sess_t *s);
static void sess_established(sess_t *s);
static void sess_send(sess_t *s);
static void sess_pace(sess_t *s, int64_t at, int64_t now);
static int sess_write(sess_t *s);
static ssize_t sess_recv(sess_t *s);
static void sess_readable(sess_t *s);
static int echo_match(sess_t *s, ssize_t n);
static void sess_echo_reply(sess_t *s, int64_t t);
static void sess_park(sess_t *s);
static void sess_timer(sess_t *s, int64_t now);
static void sess_fail(sess_t *s, fail_e kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void sess_fail_ssl(sess_t *s, int rc, int err, const char *what);
static void sess_close(sess_t *s, int notify);

static int setup(void);
static void start(void);
static void hold_fill(void);
static void sess_wake(sess_t *s);
static void phase_check(int64_t now);
static void measure_begin(int64_t now);
static void measure_end(int64_t now);
static void hold_ready(int64_t now);
static void wake_begin(int64_t now);
static void on_signal(void);
static void on_stdin(void);
static int events(int64_t next);
static int run(void);
static void close_run(void);
static void close_start(sess_t *s);
static void close_read(sess_t *s);
static void close_all(void);
static void json_str(const char *s);
static void print_common(const stats_t *d);
static void print_cpu(const struct rusage *from, const struct rusage *to);
static void print_result(void);
static void print_hold(int ready);


int
main(int argc, char **argv)
{
    int  rc;

    if (parse_args(argc, argv) != 0) {
        usage();
        return 2;
    }

    if (raise_nofile() != 0) {
        return 2;
    }

    if (!cf.udp) {
        ctx = make_ctx();
        if (ctx == NULL || bio_init() != 0) {
            return 2;
        }
    }

    if (setup() != 0) {
        return 1;
    }

    rc = run();

    SSL_SESSION_free(resume_sess);
    SSL_CTX_free(ctx);
    BIO_meth_free(bio_method);
    free(sessions);
    free(heap);

    return rc;
}


/* command line */


static void
usage(void)
{
    fprintf(stderr,
        "usage: dtls_load -c ADDR:PORT -m handshake|echo|hold [options]\n"
        "  -c ADDR:PORT  server, 127.0.0.1:5684 or [::1]:5684\n"
        "  -m MODE       handshake: new session, echo, close, repeat;\n"
        "                echo: persistent sessions, closed-loop echoes;\n"
        "                hold: -N idle sessions until stdin EOF or signal\n"
        "  -n N          concurrent sessions (hold: handshakes at a time),\n"
        "                default 16\n"
        "  -N SESSIONS   hold: sessions to hold (default 1000)\n"
        "  -d SECONDS    measured (default 5); hold: at most this long\n"
        "  -w SECONDS    warm-up before measuring (default 1)\n"
        "  -s BYTES      echo payload, 8 to 16384 (default 16)\n"
        "  -i IDENTITY   PSK identity (default \"" DEFAULT_IDENTITY "\")\n"
        "  -I COUNT      each handshake as IDENTITY-NNNNNNN, NNNNNNN random\n"
        "                below COUNT, with the same key\n"
        "  -k HEXKEY     PSK in hex (required without -u)\n"
        "  -C CIPHERS    cipher list (default " DEFAULT_CIPHERS ")\n"
        "  -u            plain UDP, no DTLS (echo and hold)\n"
        "  -b ADDR       bind each socket to ADDR (port 0)\n"
        "  -t MS         handshake and echo timeout (default 5000)\n"
        "  -M MTU        largest datagram of a flight (default 1200)\n"
        "  -a CERTFILE   client certificate chain (PEM), with -K KEYFILE\n"
        "  -r            resume the first session in every later one\n"
        "  -R MS         echo: paced, an echo every MS ms from each session\n"
        "                (jittered), not a closed loop\n"
        "  -H SECONDS    hold: keep the SSL objects, and after SECONDS of\n"
        "                silence an echo from each, answered or not\n"
        "  -v            every failure and each phase on stderr\n");
}


static int
parse_args(int argc, char **argv)
{
    int                  opt, mode;
    static opt_number_t  numbers[] = {
        { 'n', 1, 1000000, &cf.concurrency },
        { 'N', 1, 1000000, &cf.sessions },
        { 's', PAYLOAD_MIN, PAYLOAD_MAX, &cf.payload },
        { 'I', 1, 10000000, &cf.identities },
        { 't', 1, 3600000, &cf.timeout },
        { 'M', 256, 65507, &cf.mtu },
        { 'R', 1, 3600000, &cf.pace },
        { 0, 0, 0, NULL }
    };
    static opt_arg_t     args[] = {
        { 'i', &cf.identity, NULL },
        { 'C', &cf.ciphers, NULL },
        { 'a', &cf.cert, NULL },
        { 'K', &cf.cert_key, NULL },
        { 'u', NULL, &cf.udp },
        { 'r', NULL, &cf.resume },
        { 'v', NULL, &cf.verbose },
        { 0, NULL, NULL }
    };

    cf.identity = DEFAULT_IDENTITY;
    cf.concurrency = 16;
    cf.duration = 5;
    cf.warmup = 1;
    cf.payload = 16;
    cf.timeout = 5000;
    cf.mtu = MTU;

    while ((opt = opt_next("dtls_load", argc, argv,
                           "c:m:n:N:d:w:s:i:I:k:C:ub:t:M:a:K:rR:H:vh",
                           numbers, args))
           != -1)
    {
        switch (opt) {
        case 'c':
            cf.peer_str = optarg;
            if (parse_addr(optarg, &cf.peer, &cf.peer_len) != 0) {
                fprintf(stderr, "dtls_load: invalid address \"%s\"\n",
                        optarg);
                return -1;
            }
            break;
        case 'm':
            mode = opt_word("dtls_load", 'm', modes, optarg);
            if (mode == -1) {
                return -1;
            }
            cf.mode = mode;
            cf.has_mode = 1;
            break;
        case 'd':
            if (parse_seconds(optarg, &cf.duration, 0) != 0) {
                return -1;
            }
            cf.has_duration = 1;
            break;
        case 'w':
            if (parse_seconds(optarg, &cf.warmup, 1) != 0) {
                return -1;
            }
            break;
        case 'k':
            if (tool_psk_key("dtls_load", optarg) != 0) {
                return -1;
            }
            break;
        case 'b':
            if (parse_local(optarg) != 0) {
                fprintf(stderr, "dtls_load: invalid -b address \"%s\"\n",
                        optarg);
                return -1;
            }
            break;
        case 'H':
            if (parse_seconds(optarg, &cf.wake, 0) != 0) {
                return -1;
            }
            break;
        default:
            return -1;
        }
    }

    if (optind != argc) {
        fprintf(stderr, "dtls_load: unexpected argument \"%s\"\n",
                argv[optind]);
        return -1;
    }

    if (cf.peer_str == NULL || !cf.has_mode) {
        fprintf(stderr, "dtls_load: -c and -m are required\n");
        return -1;
    }

    if (cf.udp && cf.mode == MODE_HANDSHAKE) {
        fprintf(stderr, "dtls_load: -u has no handshake mode\n");
        return -1;
    }

    if (!cf.udp && !tool_psk.key_len && cf.cert == NULL) {
        fprintf(stderr, "dtls_load: -k or -a is required without -u\n");
        return -1;
    }

    if ((cf.cert == NULL) != (cf.cert_key == NULL)) {
        fprintf(stderr, "dtls_load: -a and -K go together\n");
        return -1;
    }

    if (cf.cert && !tool_psk.key_len && cf.ciphers == NULL) {
        cf.ciphers = CERT_CIPHERS;
    }

    if (cf.ciphers == NULL) {
        cf.ciphers = DEFAULT_CIPHERS;
    }

    if (cf.sessions && cf.mode != MODE_HOLD) {
        fprintf(stderr, "dtls_load: -N is for hold mode\n");
        return -1;
    }

    if (cf.sessions == 0) {
        cf.sessions = 1000;
    }

    if (cf.pace && cf.mode != MODE_ECHO) {
        fprintf(stderr, "dtls_load: -R is for echo mode\n");
        return -1;
    }

    if (cf.wake && (cf.mode != MODE_HOLD || cf.has_duration)) {
        fprintf(stderr, "dtls_load: -H is for hold mode, without -d\n");
        return -1;
    }

    if (cf.has_local && cf.local.ss_family != cf.peer.ss_family) {
        fprintf(stderr, "dtls_load: -b and -c are of different families\n");
        return -1;
    }

    if (cf.mode == MODE_HOLD && cf.concurrency > cf.sessions) {
        cf.concurrency = cf.sessions;
    }

    return 0;
}


static int
parse_seconds(const char *s, double *v, int zero)
{
    char  *end;

    *v = strtod(s, &end);

    if (end == s || *end != '\0' || !(*v >= 0) || *v > 86400
        || (*v == 0 && !zero))
    {
        fprintf(stderr, "dtls_load: invalid seconds \"%s\"\n", s);
        return -1;
    }

    return 0;
}


/* -b: 127.0.0.2, ::1 or [::1], port 0 */

static int
parse_local(const char *s)
{
    size_t  len;

    len = strlen(s);

    if (len >= 2 && s[0] == '[' && s[len - 1] == ']') {
        s++;
        len -= 2;
    }

    if (len == 0 || parse_host(s, len, 0, &cf.local, &cf.local_len) != 0) {
        return -1;
    }

    cf.has_local = 1;

    return 0;
}


static int
raise_nofile(void)
{
    long           need;
    struct rlimit  rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        perror("dtls_load: getrlimit");
        return -1;
    }

    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;

        if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
            perror("dtls_load: setrlimit");
            getrlimit(RLIMIT_NOFILE, &rl);
        }
    }

    need = (cf.mode == MODE_HOLD ? cf.sessions : cf.concurrency)
           + FD_RESERVE;

    if (rl.rlim_cur != RLIM_INFINITY && (rlim_t) need > rl.rlim_cur) {
        fprintf(stderr, "dtls_load: %ld sessions need %ld file descriptors, "
                "the limit (RLIMIT_NOFILE) is %llu: at most %lld sessions "
                "per process, run several\n",
                need - FD_RESERVE, need, (unsigned long long) rl.rlim_cur,
                (long long) rl.rlim_cur - FD_RESERVE);
        return -1;
    }

    return 0;
}


static void
dbg(const char *fmt, ...)
{
    va_list  ap;

    if (!cf.verbose) {
        return;
    }

    va_start(ap, fmt);
    fputs("dtls_load: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}


/* OpenSSL */


static SSL_CTX *
make_ctx(void)
{
    SSL_CTX  *c;

    tool_psk.identity = cf.identity;
    tool_psk.identities = cf.identities;

    c = tool_ctx_new("dtls_load", 0, cf.ciphers);
    if (c == NULL) {
        return NULL;
    }

    /* an echo that could not be written is written by the next SSL_write */

    SSL_CTX_set_mode(c, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);

    /* write buffers of 512 bytes and up rather than 16K: hold keeps many */

    SSL_CTX_set_max_send_fragment(c, cf.payload > 512 ? cf.payload : 512);

    /*
     * a ClientHello with a ticket (which holds the client's certificate
     * with -a) must go in one record: a server's cookie check takes no
     * fragmented ClientHello
     */

    if (cf.resume && cf.payload < cf.mtu) {
        SSL_CTX_set_max_send_fragment(c, cf.mtu);
    }

    SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);

    if (cf.cert
        && (SSL_CTX_use_certificate_chain_file(c, cf.cert) != 1
            || SSL_CTX_use_PrivateKey_file(c, cf.cert_key, SSL_FILETYPE_PEM)
               != 1))
    {
        fprintf(stderr, "dtls_load: cannot load -a \"%s\" and -K \"%s\"\n",
                cf.cert, cf.cert_key);
        ERR_print_errors_fp(stderr);
        SSL_CTX_free(c);
        return NULL;
    }

    return c;
}


/*
 * The BIO of a session: read() and write() on its connected socket,
 * nothing else.  A datagram the socket cannot take now is lost, as on the
 * wire; an empty datagram is no end of anything.
 */

static int
bio_init(void)
{
    bio_method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK,
                              "dtls_load socket");
    if (bio_method == NULL
        || BIO_meth_set_write(bio_method, bio_write) != 1
        || BIO_meth_set_read(bio_method, bio_read) != 1
        || BIO_meth_set_ctrl(bio_method, bio_ctrl) != 1)
    {
        ERR_print_errors_fp(stderr);
        return -1;
    }

    return 0;
}


static int
bio_write(BIO *b, const char *buf, int len)
{
    ssize_t   n;
    sess_t   *s;

    s = BIO_get_data(b);

    BIO_clear_retry_flags(b);

    n = write(s->fd, buf, len);
    if (n >= 0) {
        return (int) n;
    }

    if (errno == EAGAIN || errno == EINTR || errno == ENOBUFS) {
        return len;
    }

    s->err = errno;
    return -1;
}


static int
bio_read(BIO *b, char *buf, int len)
{
    ssize_t   n;
    sess_t   *s;

    s = BIO_get_data(b);

    BIO_clear_retry_flags(b);

    n = read(s->fd, buf, len);
    if (n > 0) {
        return (int) n;
    }

    if (n == 0 || errno == EAGAIN || errno == EINTR) {
        BIO_set_retry_read(b);
        return -1;
    }

    s->err = errno;
    return -1;
}


static long
bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void) b;
    (void) num;
    (void) ptr;

    /* MTU queries are off (SSL_OP_NO_QUERY_MTU), timeouts are ours */

    return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}


/* timers: a binary heap on sess_t.timer */


static void
heap_up(long i)
{
    long     p;
    sess_t  *s;

    s = heap[i];

    while (i > 0) {
        p = (i - 1) / 2;

        if (heap[p]->timer <= s->timer) {
            break;
        }

        heap[i] = heap[p];
        heap[i]->heap = i;
        i = p;
    }

    heap[i] = s;
    s->heap = i;
}


static void
heap_down(long i)
{
    long     c;
    sess_t  *s;

    s = heap[i];

    for ( ;; ) {
        c = 2 * i + 1;

        if (c >= heap_n) {
            break;
        }

        if (c + 1 < heap_n && heap[c + 1]->timer < heap[c]->timer) {
            c++;
        }

        if (heap[c]->timer >= s->timer) {
            break;
        }

        heap[i] = heap[c];
        heap[i]->heap = i;
        i = c;
    }

    heap[i] = s;
    s->heap = i;
}


static void
timer_set(sess_t *s, int64_t at)
{
    int64_t  old;

    if (s->heap >= 0) {
        old = s->timer;
        s->timer = at;

        if (at < old) {
            heap_up(s->heap);

        } else {
            heap_down(s->heap);
        }

        return;
    }

    s->timer = at;
    s->heap = heap_n;
    heap[heap_n++] = s;
    heap_up(s->heap);
}


static void
timer_del(sess_t *s)
{
    long     i;
    sess_t  *last;

    i = s->heap;
    if (i < 0) {
        return;
    }

    s->heap = -1;
    heap_n--;

    if (i == heap_n) {
        return;
    }

    last = heap[heap_n];
    heap[i] = last;
    last->heap = i;

    heap_up(i);
    heap_down(last->heap);
}


/* the timers due; those they set again for now wait for the next turn */

static void
timers_run(int64_t now)
{
    long     n;
    sess_t  *s;

    for (n = heap_n; n > 0 && heap_n > 0 && heap[0]->timer <= now; n--) {
        s = heap[0];
        timer_del(s);
        sess_timer(s, now);

        if (phase == PH_DONE) {
            return;
        }
    }
}


/* latencies */


static void
hist_add(int64_t v)
{
    uint32_t  u;

    u = v < 0 ? 0 : v > (int64_t) UINT32_MAX ? UINT32_MAX : (uint32_t) v;

    hist.bucket[hist_index(u)]++;
    hist.sum += u;

    if (hist.count == 0 || u < hist.min) {
        hist.min = u;
    }

    if (u > hist.max) {
        hist.max = u;
    }

    hist.count++;
}


static unsigned
hist_index(uint32_t v)
{
    unsigned  shift;

    if (v < HIST_SUB) {
        return v;
    }

    /* v >> shift is in [HIST_HALF, HIST_SUB) */

    shift = (31 - __builtin_clz(v)) - (HIST_SUB_BITS - 1);

    return HIST_SUB + (shift - 1) * HIST_HALF + ((v >> shift) - HIST_HALF);
}


/* the middle of a bucket */

static uint32_t
hist_value(unsigned i)
{
    unsigned  shift, k;
    uint32_t  lo;

    if (i < HIST_SUB) {
        return i;
    }

    k = i - HIST_SUB;
    shift = k / HIST_HALF + 1;
    lo = (uint32_t) (k % HIST_HALF + HIST_HALF) << shift;

    return lo + ((1u << shift) - 1) / 2;
}


static uint32_t
hist_pct(double q)
{
    unsigned  i;
    uint32_t  v;
    uint64_t  rank, seen;

    if (hist.count == 0) {
        return 0;
    }

    rank = (uint64_t) (q * hist.count);
    if ((double) rank < q * hist.count) {
        rank++;
    }

    if (rank == 0) {
        rank = 1;
    }

    seen = 0;

    for (i = 0; i < HIST_BUCKETS; i++) {
        seen += hist.bucket[i];

        if (seen >= rank) {
            v = hist_value(i);
            return v < hist.min ? hist.min : v > hist.max ? hist.max : v;
        }
    }

    return hist.max;
}


/* sessions */


static void
set_state(sess_t *s, sess_state_e state)
{
    state_n[s->state]--;
    state_n[state]++;
    s->state = (uint8_t) state;
}


/* the sessions with something out: a handshake, an echo, a restart */

static long
busy(void)
{
    return state_n[ST_HANDSHAKE] + state_n[ST_ECHO] + state_n[ST_BACKOFF];
}


/* whether a failed or finished session is to start again */

static int
may_start(void)
{
    switch (cf.mode) {
    case MODE_HANDSHAKE:
        return phase == PH_WARMUP || phase == PH_MEASURE;
    case MODE_ECHO:
        return phase == PH_SETUP || phase == PH_WARMUP
               || phase == PH_MEASURE;
    default:
        return phase == PH_SETUP || phase == PH_WAKE;
    }
}


/* whether an established session of echo mode is to send */

static int
may_send(void)
{
    return phase == PH_WARMUP || phase == PH_MEASURE;
}


static void
sess_start(sess_t *s)
{
    BIO                 *bio;
    struct epoll_event   ev;

    s->tries++;
    s->err = 0;
    s->want_write = 0;

    s->fd = socket(cf.peer.ss_family, SOCK_DGRAM | SOCK_NONBLOCK
                                      | SOCK_CLOEXEC, 0);
    if (s->fd == -1) {
        sess_fail(s, F_SOCKET, "socket: %s", strerror(errno));
        return;
    }

    if (cf.has_local
        && bind(s->fd, (struct sockaddr *) &cf.local, cf.local_len) == -1)
    {
        sess_fail(s, F_SOCKET, "bind: %s", strerror(errno));
        return;
    }

    if (connect(s->fd, (struct sockaddr *) &cf.peer, cf.peer_len) == -1) {
        sess_fail(s, F_SOCKET, "connect: %s", strerror(errno));
        return;
    }

    ev.events = EPOLLIN;
    ev.data.ptr = s;

    if (epoll_ctl(ep, EPOLL_CTL_ADD, s->fd, &ev) == -1) {
        sess_fail(s, F_SOCKET, "epoll_ctl: %s", strerror(errno));
        return;
    }

    if (cf.udp) {
        sess_established(s);
        return;
    }

    s->ssl = SSL_new(ctx);
    if (s->ssl == NULL) {
        sess_fail(s, F_SSL, "SSL_new() failed");
        return;
    }

    bio = BIO_new(bio_method);

    if (bio == NULL) {
        sess_fail(s, F_SSL, "BIO_new() failed");
        return;
    }

    BIO_set_data(bio, s);
    BIO_set_init(bio, 1);
    SSL_set_bio(s->ssl, bio, bio);

    if (resume_sess && SSL_set_session(s->ssl, resume_sess) != 1) {
        sess_fail(s, F_SSL, "SSL_set_session() failed");
        return;
    }

    if (SSL_set_mtu(s->ssl, cf.mtu) == 0) {
        fprintf(stderr, "dtls_load: MTU %ld refused\n", cf.mtu);
        fatal = 2;
        phase = PH_DONE;
        return;
    }

    set_state(s, ST_HANDSHAKE);

    s->start = now_us();
    s->deadline = s->start + (int64_t) cf.timeout * 1000;

    sess_handshake(s);
}


static void
sess_handshake(sess_t *s)
{
    int  rc, err;

    rc = SSL_connect(s->ssl);
    if (rc == 1) {
        sess_established(s);
        return;
    }

    err = SSL_get_error(s->ssl, rc);

    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
        s->want_write = (err == SSL_ERROR_WANT_WRITE);
        sess_hs_timer(s);
        return;
    }

    sess_fail_ssl(s, rc, err, "handshake");
}


/* the session's timer: the handshake's deadline or OpenSSL's timer */

static void
sess_hs_timer(sess_t *s)
{
    int64_t         at, t, now;
    struct timeval  tv;

    now = now_us();
    at = s->deadline;

    if (s->want_write && now + WRITE_RETRY_MS * 1000 < at) {
        at = now + WRITE_RETRY_MS * 1000;
    }

    if (DTLSv1_get_timeout(s->ssl, &tv) == 1) {
        t = now + (int64_t) tv.tv_sec * 1000000 + tv.tv_usec;
        if (t < at) {
            at = t;
        }
    }

    timer_set(s, at);
}


static void
sess_established(sess_t *s)
{
    size_t  max;

    if (!cf.udp) {
        st.handshakes++;

        if (SSL_session_reused(s->ssl)) {
            st.resumed++;

        } else if (cf.resume && resume_sess == NULL) {
            resume_sess = SSL_get1_session(s->ssl);
        }

        if (cipher[0] == '\0') {
            snprintf(cipher, sizeof(cipher), "%s",
                     SSL_get_cipher_name(s->ssl));

            max = DTLS_get_data_mtu(s->ssl);

            if ((size_t) cf.payload > max) {
                fprintf(stderr, "dtls_load: a record of %ld bytes does not "
                        "fit in -M %ld with %s (%zu bytes of data at most); "
                        "raise -M and the server's dtls_mtu\n",
                        cf.payload, cf.mtu, cipher, max);
                fatal = 2;
                phase = PH_DONE;
                return;
            }
        }
    }

    /* at wake, the tries count until an echo is answered */

    s->renewed = (phase == PH_WAKE);

    if (phase != PH_WAKE) {
        s->tries = 0;
    }

    if (cf.mode == MODE_ECHO && !may_send()) {
        timer_del(s);
        set_state(s, ST_IDLE);
        return;
    }

    sess_send(s);
}


static void
sess_send(sess_t *s)
{
    int64_t  retry;

    s->seq++;
    memcpy(sbuf, &s->id, 4);
    memcpy(sbuf + 4, &s->seq, 4);

    s->sent = now_us();
    s->deadline = s->sent + (int64_t) cf.timeout * 1000;
    s->resent = 0;

    set_state(s, ST_ECHO);

    if (sess_write(s) != 0) {
        return;
    }

    /*
     * A timer set earlier stays: it is due sooner and then set again
     * (an echo answered in time touches no timer)
     */

    if (s->heap < 0) {
        retry = s->sent + ECHO_RETRY_MS * 1000;
        timer_set(s, retry < s->deadline ? retry : s->deadline);
    }
}


/* -R: the next echo at "at", or now if that is past */

static void
sess_pace(sess_t *s, int64_t at, int64_t now)
{
    if (at <= now) {
        sess_send(s);
        return;
    }

    set_state(s, ST_PACE);
    timer_set(s, at);
}


/* the echo in sbuf; 0, or -1 when the session failed */

static int
sess_write(sess_t *s)
{
    int      rc, err;
    ssize_t  n;

    if (cf.udp) {
        n = write(s->fd, sbuf, cf.payload);

        if (n == cf.payload
            || (n == -1
                && (errno == EAGAIN || errno == EINTR || errno == ENOBUFS)))
        {
            return 0;
        }

        sess_fail(s, F_SOCKET, "send: %s",
                  n == -1 ? strerror(errno) : "short write");
        return -1;
    }

    rc = SSL_write(s->ssl, sbuf, (int) cf.payload);
    if (rc > 0) {
        return 0;
    }

    err = SSL_get_error(s->ssl, rc);

    if (err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ) {
        /* pending in OpenSSL: the resend writes it */
        return 0;
    }

    sess_fail_ssl(s, rc, err, "send");
    return -1;
}


/*
 * a datagram's or record's length, -1 when none now, -2 on failure; a
 * parked session reads datagrams, and an alert record from the server
 * ends it
 */

static ssize_t
sess_recv(sess_t *s)
{
    int      rc, err;
    ssize_t  n;

    if (s->ssl == NULL) {
        n = read(s->fd, rbuf, sizeof(rbuf));

        if (!cf.udp && n > 0 && rbuf[0] == SSL3_RT_ALERT) {
            sess_fail(s, F_CLOSED, "alert received");
            return -2;
        }

        if (n >= 0) {
            return n;
        }

        if (errno == EAGAIN || errno == EINTR) {
            return -1;
        }

        sess_fail(s, F_SOCKET, "recv: %s", strerror(errno));
        return -2;
    }

    rc = SSL_read(s->ssl, rbuf, sizeof(rbuf));
    if (rc > 0) {
        return rc;
    }

    err = SSL_get_error(s->ssl, rc);

    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
        return -1;
    }

    sess_fail_ssl(s, rc, err, "recv");
    return -2;
}


static void
sess_readable(sess_t *s)
{
    int      m;
    ssize_t  n;

    if (phase == PH_CLOSE) {
        close_read(s);
        return;
    }

    switch (s->state) {

    case ST_HANDSHAKE:
        sess_handshake(s);
        return;

    case ST_ECHO:
    case ST_IDLE:
    case ST_PACE:
        for ( ;; ) {
            n = sess_recv(s);
            if (n < 0) {
                return;
            }

            m = echo_match(s, n);

            if (m == 0) {
                sess_echo_reply(s, now_us());
                return;
            }

            if (m == 1) {
                st.late++;

            } else if (s->state == ST_ECHO) {
                sess_fail(s, F_MISMATCH,
                          "reply of %zd bytes is not the echo", n);
                return;

            } else {
                st.unexpected++;
            }
        }

    default:
        return;
    }
}


/*
 * what the n bytes in rbuf are to the session: 0 the reply to its echo
 * out, 1 a late reply to one of its earlier echoes, -1 anything else
 */

static int
echo_match(sess_t *s, ssize_t n)
{
    uint32_t  id, seq;

    if (n != cf.payload || memcmp(rbuf + 8, sbuf + 8, cf.payload - 8) != 0) {
        return -1;
    }

    memcpy(&id, rbuf, 4);
    memcpy(&seq, rbuf + 4, 4);

    if (id != s->id) {
        return -1;
    }

    if (s->state == ST_ECHO && seq == s->seq) {
        return 0;
    }

    return seq <= s->seq ? 1 : -1;
}


static void
sess_echo_reply(sess_t *s, int64_t t)
{
    st.echoes++;

    if (phase == PH_MEASURE) {
        hist_add(t - (cf.mode == MODE_HANDSHAKE ? s->start : s->sent));
    }

    switch (cf.mode) {

    case MODE_HANDSHAKE:
        sess_close(s, 1);

        if (may_start()) {
            sess_start(s);
        }

        return;

    case MODE_ECHO:
        if (may_send() && cf.pace) {
            sess_pace(s, s->sent + cf.pace * 500
                         + random() % (cf.pace * 1000), t);
            return;
        }

        if (may_send()) {
            sess_send(s);
            return;
        }

        timer_del(s);
        set_state(s, ST_IDLE);
        return;

    default: /* MODE_HOLD */
        timer_del(s);
        set_state(s, ST_IDLE);

        if (phase == PH_WAKE) {
            if (s->renewed) {
                st.wake_handshakes++;

            } else {
                st.wake_answered++;
            }

            return;
        }

        s->held = 1;

        if (s->ssl && cf.wake == 0) {
            sess_park(s);
        }

        return;
    }
}


/*
 * hold: the session's close_notify is made now and kept, and its SSL
 * object (some 50K) freed; a held session is then a socket
 */

static void
sess_park(sess_t *s)
{
    int   n;
    BIO  *mem;

    mem = BIO_new(BIO_s_mem());
    if (mem == NULL) {
        ERR_clear_error();
        return;
    }

    SSL_set0_wbio(s->ssl, mem);

    SSL_shutdown(s->ssl);

    n = (int) BIO_pending(mem);

    if (n > 0) {
        s->close = malloc(n);

        if (s->close && BIO_read(mem, s->close, n) == n) {
            s->close_len = n;

        } else {
            free(s->close);
            s->close = NULL;
        }
    }

    SSL_free(s->ssl);
    s->ssl = NULL;

    ERR_clear_error();
}


static void
sess_timer(sess_t *s, int64_t now)
{
    int      rc;
    int64_t  retry;

    switch (s->state) {

    case ST_BACKOFF:
        set_state(s, ST_FREE);

        if (may_start()) {
            sess_start(s);
        }

        return;

    case ST_HANDSHAKE:
        if (now >= s->deadline) {
            sess_fail(s, F_HANDSHAKE_TIMEOUT, "handshake timed out");
            return;
        }

        if (s->want_write) {
            s->want_write = 0;
            sess_handshake(s);
            return;
        }

        rc = DTLSv1_handle_timeout(s->ssl);

        if (rc > 0) {
            st.retrans_handshake++;

        } else if (rc < 0) {
            sess_fail_ssl(s, rc, SSL_get_error(s->ssl, rc), "handshake");
            return;
        }

        sess_hs_timer(s);
        return;

    case ST_ECHO:
        if (now >= s->deadline) {
            sess_fail(s, F_ECHO_TIMEOUT, "echo timed out");
            return;
        }

        retry = s->sent + ECHO_RETRY_MS * 1000;

        if (!s->resent && now >= retry) {
            s->resent = 1;
            st.retrans_echo++;

            memcpy(sbuf, &s->id, 4);
            memcpy(sbuf + 4, &s->seq, 4);

            if (sess_write(s) != 0) {
                return;
            }
        }

        timer_set(s, s->resent || retry > s->deadline ? s->deadline : retry);
        return;

    case ST_PACE:
        if (may_send()) {
            sess_send(s);

        } else {
            set_state(s, ST_IDLE);
        }

        return;

    case ST_CLOSING:
        sess_close(s, 0);
        return;

    default:
        /* a timer left by an echo answered meanwhile */
        return;
    }
}


static void
sess_fail(sess_t *s, fail_e kind, const char *fmt, ...)
{
    int      notify, idle;
    va_list  ap;

    st.failures[kind]++;

    if (cf.verbose || logged < MAX_LOGGED) {
        va_start(ap, fmt);
        fprintf(stderr, "dtls_load: session %u: ", s->id);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);

        if (++logged == MAX_LOGGED && !cf.verbose) {
            fprintf(stderr, "dtls_load: further failures not shown\n");
        }
    }

    notify = s->ssl && kind != F_SOCKET && kind != F_CLOSED
             && SSL_is_init_finished(s->ssl);

    idle = (s->state == ST_IDLE);

    sess_close(s, notify);

    if ((phase == PH_SETUP || phase == PH_WAKE) && s->tries >= SETUP_TRIES) {
        set_state(s, ST_DEAD);
        return;
    }

    /* at wake, an idle session is not woken yet, or was answered */

    if (cf.mode == MODE_HOLD
        && (phase == PH_HOLD || (phase == PH_WAKE && idle)))
    {
        st.lost++;
        set_state(s, ST_DEAD);
        return;
    }

    if (!may_start()) {
        return;
    }

    if (cf.mode == MODE_ECHO && phase != PH_SETUP) {
        st.reconnects++;
    }

    set_state(s, ST_BACKOFF);
    timer_set(s, now_us() + (kind == F_HANDSHAKE_TIMEOUT
                             || kind == F_ECHO_TIMEOUT
                             ? 0 : BACKOFF_MS * 1000));
}


static void
sess_fail_ssl(sess_t *s, int rc, int err, const char *what)
{
    int            e;
    const char    *r;
    unsigned long  l;

    e = s->err ? s->err : errno;

    l = ERR_peek_last_error();
    r = l ? ERR_reason_error_string(l) : NULL;

    if (err == SSL_ERROR_ZERO_RETURN) {
        sess_fail(s, F_CLOSED, "%s: close_notify received", what);

    } else if (err == SSL_ERROR_SYSCALL && r == NULL) {
        sess_fail(s, F_SOCKET, "%s: %s", what,
                  rc == 0 || e == 0 ? "unexpected eof" : strerror(e));

    } else {
        sess_fail(s, s->state == ST_HANDSHAKE ? F_HANDSHAKE : F_SSL,
                  "%s: %s", what, r ? r : "error");
    }

    ERR_clear_error();
}


static void
sess_close(sess_t *s, int notify)
{
    timer_del(s);

    if (s->ssl) {
        if (notify) {
            SSL_shutdown(s->ssl);
        }

        SSL_free(s->ssl);
        s->ssl = NULL;
        ERR_clear_error();
    }

    if (s->close) {
        if (notify && write(s->fd, s->close, s->close_len) == -1) {
            dbg("session %u: close_notify: %s", s->id, strerror(errno));
        }

        free(s->close);
        s->close = NULL;
    }

    if (s->fd != -1) {
        close(s->fd);
        s->fd = -1;
    }

    set_state(s, ST_FREE);
}


/* the run */


static int
setup(void)
{
    long                i;
    sigset_t            mask;
    struct epoll_event  ev;

    signal(SIGPIPE, SIG_IGN);

    /* -I's identities, -R's intervals */

    srandom((unsigned int) (getpid() ^ time(NULL)));

    nsess = cf.mode == MODE_HOLD ? cf.sessions : cf.concurrency;

    sessions = calloc(nsess, sizeof(sess_t));
    heap = calloc(nsess, sizeof(sess_t *));

    if (sessions == NULL || heap == NULL) {
        fprintf(stderr, "dtls_load: out of memory\n");
        return -1;
    }

    for (i = 0; i < nsess; i++) {
        sessions[i].fd = -1;
        sessions[i].heap = -1;
        sessions[i].id = (uint32_t) i + 1;
    }

    state_n[ST_FREE] = nsess;

    for (i = 0; i < PAYLOAD_MAX; i++) {
        sbuf[i] = (unsigned char) ('a' + i % 26);
    }

    ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep == -1) {
        perror("dtls_load: epoll_create1");
        return -1;
    }

    sigemptyset(&mask);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);

    if (sigprocmask(SIG_BLOCK, &mask, NULL) != 0) {
        perror("dtls_load: sigprocmask");
        return -1;
    }

    sig_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (sig_fd == -1) {
        perror("dtls_load: signalfd");
        return -1;
    }

    ev.events = EPOLLIN;
    ev.data.ptr = &ev_signal;

    if (epoll_ctl(ep, EPOLL_CTL_ADD, sig_fd, &ev) == -1) {
        perror("dtls_load: epoll_ctl");
        return -1;
    }

    if (cf.mode == MODE_HOLD) {
        ev.events = EPOLLIN;
        ev.data.ptr = &ev_stdin;

        if (epoll_ctl(ep, EPOLL_CTL_ADD, STDIN_FILENO, &ev) == 0) {
            stdin_watched = 1;

        } else {
            fprintf(stderr, "dtls_load: stdin cannot be waited for (%s): "
                    "holding until SIGTERM or SIGINT%s\n", strerror(errno),
                    cf.has_duration ? " or -d" : "");
        }
    }

    return 0;
}


static void
start(void)
{
    long  i;

    t_start = now_us();

    if (cf.mode == MODE_HANDSHAKE) {
        phase = PH_WARMUP;
        phase_until = t_start + (int64_t) (cf.warmup * 1e6);

        if (cf.warmup == 0) {
            measure_begin(t_start);
        }

    } else {
        phase = PH_SETUP;
        phase_until = 0;

        if (cf.mode == MODE_HOLD) {
            hold_fill();
            return;
        }
    }

    for (i = 0; i < nsess && phase != PH_DONE; i++) {
        sess_start(&sessions[i]);
    }
}


/* hold: more handshakes (set-up) or echoes (wake), up to -n at a time */

static void
hold_fill(void)
{
    while (hold_next < nsess && (phase == PH_SETUP || phase == PH_WAKE)
           && busy() < cf.concurrency)
    {
        if (phase == PH_SETUP) {
            sess_start(&sessions[hold_next++]);

        } else {
            sess_wake(&sessions[hold_next++]);
        }
    }
}


/* -H: a held session's echo; one the server ended starts again */

static void
sess_wake(sess_t *s)
{
    if (!s->held) {
        return;
    }

    st.woken++;

    if (s->state == ST_IDLE) {
        sess_send(s);
        return;
    }

    set_state(s, ST_FREE);
    sess_start(s);
}


static void
phase_check(int64_t now)
{
    long  i;

    switch (phase) {

    case PH_SETUP:
        if (cf.mode == MODE_HOLD) {
            hold_fill();
        }

        if (state_n[ST_IDLE] + state_n[ST_DEAD] < nsess) {
            return;
        }

        if (cf.mode == MODE_HOLD) {
            hold_ready(now);
            return;
        }

        established = state_n[ST_IDLE];

        dbg("%ld of %ld sessions established in %.3f s", established, nsess,
            (now - t_start) / 1e6);

        if (established == 0) {
            fprintf(stderr, "dtls_load: no session established\n");
            phase = PH_DONE;
            return;
        }

        phase = PH_WARMUP;
        phase_until = now + (int64_t) (cf.warmup * 1e6);

        if (cf.warmup == 0) {
            measure_begin(now);
        }

        for (i = 0; i < nsess && phase != PH_DONE; i++) {
            if (sessions[i].state != ST_IDLE) {
                continue;
            }

            if (cf.pace) {
                sess_pace(&sessions[i], now + random() % (cf.pace * 1000),
                          now);

            } else {
                sess_send(&sessions[i]);
            }
        }

        return;

    case PH_WARMUP:
        if (now >= phase_until) {
            measure_begin(now);
        }
        return;

    case PH_MEASURE:
        if (now >= phase_until) {
            measure_end(now);
        }
        return;

    case PH_DRAIN:
        if (now >= phase_until || busy() == 0) {
            phase = PH_DONE;
        }
        return;

    case PH_HOLD:
        if (phase_until && now >= phase_until) {
            if (cf.wake) {
                wake_begin(now);

            } else {
                phase = PH_DONE;
            }
        }
        return;

    case PH_WAKE:
        hold_fill();

        if (hold_next == nsess && busy() == 0) {
            phase = PH_DONE;
        }
        return;

    default:
        return;
    }
}


static void
measure_begin(int64_t now)
{
    dbg("measuring");

    phase = PH_MEASURE;
    phase_until = now + (int64_t) (cf.duration * 1e6);
    t_begin = now;
    st_begin = st;
    getrusage(RUSAGE_SELF, &ru_begin);
}


static void
measure_end(int64_t now)
{
    long     i;
    int64_t  drain;

    t_end = now;
    st_end = st;
    getrusage(RUSAGE_SELF, &ru_end);
    measured = 1;

    drain = cf.timeout < DRAIN_MS ? cf.timeout : DRAIN_MS;

    dbg("measured %.3f s, draining (up to %lld ms)", (t_end - t_begin) / 1e6,
        (long long) drain);

    phase = PH_DRAIN;
    phase_until = now + drain * 1000;

    for (i = 0; i < nsess; i++) {
        if (sessions[i].state == ST_BACKOFF) {
            timer_del(&sessions[i]);
            set_state(&sessions[i], ST_FREE);

        } else if (sessions[i].state == ST_PACE) {
            timer_del(&sessions[i]);
            set_state(&sessions[i], ST_IDLE);
        }
    }
}


static void
hold_ready(int64_t now)
{
    established = state_n[ST_IDLE];
    t_begin = now;

    print_hold(1);
    ready_printed = 1;

    if (established == 0) {
        fprintf(stderr, "dtls_load: no session established\n");
        phase = PH_DONE;
        return;
    }

    phase = PH_HOLD;
    phase_until = cf.wake ? now + (int64_t) (cf.wake * 1e6)
                  : cf.has_duration ? now + (int64_t) (cf.duration * 1e6) : 0;

    dbg("holding %ld sessions", established);
}


static void
wake_begin(int64_t now)
{
    dbg("waking %ld sessions after %.3f s", established,
        (now - t_begin) / 1e6);

    phase = PH_WAKE;
    phase_until = 0;
    t_wake = now;
    hold_next = 0;

    hold_fill();
}


static void
on_signal(void)
{
    struct signalfd_siginfo  si;

    while (read(sig_fd, &si, sizeof(si)) == sizeof(si)) {
        dbg("signal %u", si.ssi_signo);

        if (phase == PH_CLOSE) {
            close_abort = 1;
            continue;
        }

        if (phase != PH_HOLD) {
            interrupted = 1;
        }

        if (phase == PH_MEASURE) {
            measure_end(now_us());

        } else {
            phase = PH_DONE;
        }
    }
}


static void
on_stdin(void)
{
    ssize_t  n;
    char     buf[4096];

    n = read(STDIN_FILENO, buf, sizeof(buf));

    if (n > 0 || (n == -1 && (errno == EAGAIN || errno == EINTR))) {
        return;
    }

    dbg("stdin: %s", n == 0 ? "end of file" : strerror(errno));

    epoll_ctl(ep, EPOLL_CTL_DEL, STDIN_FILENO, NULL);
    stdin_watched = 0;

    if (phase != PH_HOLD) {
        interrupted = 1;
    }

    phase = PH_DONE;
}


/*
 * The events until "next" (0: none) or the first timer; -1 when epoll
 * fails
 */

static int
events(int64_t next)
{
    int                 i, n, ms;
    void               *p;
    int64_t             now;
    struct epoll_event  ev[MAX_EVENTS];

    if (heap_n > 0 && (next == 0 || heap[0]->timer < next)) {
        next = heap[0]->timer;
    }

    now = now_us();
    ms = next == 0 ? -1 : next <= now ? 0 : (int) ((next - now + 999) / 1000);

    n = epoll_wait(ep, ev, MAX_EVENTS, ms);

    if (n == -1) {
        if (errno == EINTR) {
            return 0;
        }

        perror("dtls_load: epoll_wait");
        return -1;
    }

    for (i = 0; i < n && phase != PH_DONE; i++) {
        p = ev[i].data.ptr;

        if (p == &ev_signal) {
            on_signal();

        } else if (p == &ev_stdin) {
            on_stdin();

        } else {
            sess_readable(p);
        }
    }

    return 0;
}


static int
run(void)
{
    int64_t  now;

    start();

    for ( ;; ) {
        now = now_us();

        if (phase != PH_DONE) {
            timers_run(now);
        }

        if (phase != PH_DONE) {
            phase_check(now);
        }

        if (phase == PH_DONE || events(phase_until) != 0) {
            break;
        }
    }

    t_done = now_us();

    if (cf.mode == MODE_HOLD && !ready_printed) {
        established = state_n[ST_IDLE];
        t_begin = t_done;
    }

    close_run();

    if (fatal) {
        return fatal;
    }

    if (cf.mode == MODE_HOLD) {
        print_hold(0);
        return established > 0 ? 0 : 1;
    }

    print_result();

    return measured && st_end.echoes > st_begin.echoes ? 0 : 1;
}


/*
 * close_notify on each established session, with at most CLOSE_WINDOW
 * of them waiting for the server's (up to CLOSE_WAIT_MS each), so that a
 * burst does not overflow the server's socket buffer and leave sessions
 * behind; after CLOSE_MS, or on a signal, the rest without waiting
 */

static void
close_run(void)
{
    long     next_i;
    int64_t  now, deadline;

    phase = PH_CLOSE;

    if (stdin_watched) {
        epoll_ctl(ep, EPOLL_CTL_DEL, STDIN_FILENO, NULL);
        stdin_watched = 0;
    }

    while (heap_n > 0) {
        timer_del(heap[0]);
    }

    /* handshakes in progress are abandoned (the server times them out) */

    for (next_i = 0; next_i < nsess; next_i++) {
        if (sessions[next_i].state == ST_HANDSHAKE
            || sessions[next_i].state == ST_BACKOFF)
        {
            sess_close(&sessions[next_i], 0);
        }
    }

    next_i = 0;
    deadline = now_us() + CLOSE_MS * 1000;

    for ( ;; ) {
        while (state_n[ST_CLOSING] < CLOSE_WINDOW && next_i < nsess) {
            close_start(&sessions[next_i++]);
        }

        if (state_n[ST_CLOSING] == 0 && next_i == nsess) {
            break;
        }

        now = now_us();

        if (now >= deadline || close_abort) {
            dbg("closing: %ld sessions left without waiting",
                nsess - next_i + state_n[ST_CLOSING]);
            break;
        }

        timers_run(now);

        if (events(deadline) != 0) {
            break;
        }
    }

    close_all();
}


static void
close_start(sess_t *s)
{
    if (s->fd == -1) {
        return;
    }

    timer_del(s);

    if (s->ssl && SSL_is_init_finished(s->ssl)) {
        SSL_shutdown(s->ssl);
        ERR_clear_error();

        if (SSL_get_shutdown(s->ssl) & SSL_RECEIVED_SHUTDOWN) {
            closed_n++;
            sess_close(s, 0);
            return;
        }

    } else if (s->close) {
        if (write(s->fd, s->close, s->close_len) == -1) {
            dbg("session %u: close_notify: %s", s->id, strerror(errno));
        }

        free(s->close);
        s->close = NULL;

    } else {
        sess_close(s, 0);
        return;
    }

    closed_n++;
    set_state(s, ST_CLOSING);
    timer_set(s, now_us() + CLOSE_WAIT_MS * 1000);
}


/*
 * The server's close_notify (or an error) ends the wait of a closing
 * session; a session not yet closing reads and drops what comes, and is
 * closed if the server closed it
 */

static void
close_read(sess_t *s)
{
    int      rc, err;
    ssize_t  n;

    if (s->ssl) {
        for ( ;; ) {
            rc = SSL_read(s->ssl, rbuf, sizeof(rbuf));
            if (rc > 0) {
                continue;
            }

            err = SSL_get_error(s->ssl, rc);

            if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
                return;
            }

            if (err == SSL_ERROR_ZERO_RETURN && s->state == ST_CLOSING) {
                acked_n++;
            }

            ERR_clear_error();
            break;
        }

    } else {
        for ( ;; ) {
            n = read(s->fd, rbuf, sizeof(rbuf));

            if (n == -1 && (errno == EAGAIN || errno == EINTR)) {
                return;
            }

            if (n > 0 && rbuf[0] != SSL3_RT_ALERT) {
                continue;
            }

            if (n > 0 && s->state == ST_CLOSING) {
                acked_n++;
            }

            break;
        }
    }

    sess_close(s, 0);
}


/* the rest: close_notify without waiting, a few at a time */

static void
close_all(void)
{
    long             i;
    int              notify;
    sess_t          *s;
    struct timespec  ts;

    ts.tv_sec = 0;
    ts.tv_nsec = 1000000;

    for (i = 0; i < nsess; i++) {
        s = &sessions[i];

        if (s->fd == -1) {
            continue;
        }

        notify = s->state != ST_CLOSING
                 && ((s->ssl && SSL_is_init_finished(s->ssl)) || s->close);

        sess_close(s, notify);

        if (notify && ++closed_n % CLOSE_BATCH == 0) {
            nanosleep(&ts, NULL);
        }
    }
}


/* output */


static void
json_str(const char *s)
{
    if (s == NULL || *s == '\0') {
        fputs("null", stdout);
        return;
    }

    putchar('"');

    for ( /* void */ ; *s; s++) {
        if (*s == '"' || *s == '\\') {
            printf("\\%c", *s);

        } else if ((unsigned char) *s < 0x20) {
            printf("\\u%04x", (unsigned char) *s);

        } else {
            putchar(*s);
        }
    }

    putchar('"');
}


/* the counts of d; "failures_total" are those of the whole run */

static void
print_common(const stats_t *d)
{
    int       i;
    uint64_t  failures, total;

    failures = 0;
    total = 0;

    for (i = 0; i < F_N; i++) {
        failures += d->failures[i];
        total += st.failures[i];
    }

    printf("\"failures\":%llu,\"failures_total\":%llu,\"failure_kinds\":{",
           (unsigned long long) failures, (unsigned long long) total);

    for (i = 0; i < F_N; i++) {
        printf("%s\"%s\":%llu", i ? "," : "", fail_names[i],
               (unsigned long long) d->failures[i]);
    }

    printf("},\"retransmissions\":%llu,\"retransmissions_handshake\":%llu,"
           "\"retransmissions_echo\":%llu,\"late_replies\":%llu",
           (unsigned long long) (d->retrans_handshake + d->retrans_echo),
           (unsigned long long) d->retrans_handshake,
           (unsigned long long) d->retrans_echo,
           (unsigned long long) d->late);

    printf(",\"resumed\":%llu", (unsigned long long) d->resumed);
}


static void
print_result(void)
{
    int       i;
    double    secs;
    stats_t   d;

    memset(&d, 0, sizeof(d));
    secs = 0;

    if (measured) {
        secs = (t_end - t_begin) / 1e6;

        d.handshakes = st_end.handshakes - st_begin.handshakes;
        d.resumed = st_end.resumed - st_begin.resumed;
        d.echoes = st_end.echoes - st_begin.echoes;
        d.retrans_handshake = st_end.retrans_handshake
                              - st_begin.retrans_handshake;
        d.retrans_echo = st_end.retrans_echo - st_begin.retrans_echo;
        d.reconnects = st_end.reconnects - st_begin.reconnects;
        d.late = st_end.late - st_begin.late;

        for (i = 0; i < F_N; i++) {
            d.failures[i] = st_end.failures[i] - st_begin.failures[i];
        }

    } else {
        memset(&ru_begin, 0, sizeof(struct rusage));
        ru_end = ru_begin;
    }

    printf("{\"mode\":\"%s\",\"transport\":\"%s\",\"server\":",
           cf.mode == MODE_HANDSHAKE ? "handshake" : "echo",
           cf.udp ? "udp" : "dtls");
    json_str(cf.peer_str);

    printf(",\"concurrency\":%ld", cf.concurrency);

    if (cf.mode == MODE_ECHO) {
        printf(",\"sessions\":%ld,\"pace_ms\":%ld", established, cf.pace);
    }

    printf(",\"payload\":%ld,\"cipher\":", cf.payload);
    json_str(cf.udp ? NULL : cipher);

    printf(",\"seconds\":%.3f,\"handshakes\":%llu,\"handshakes_per_s\":%.1f,"
           "\"echoes\":%llu,\"echoes_per_s\":%.1f,"
           "\"latency_us\":{\"p50\":%u,\"p99\":%u,\"p999\":%u,"
           "\"mean\":%.1f,\"max\":%u},",
           secs, (unsigned long long) d.handshakes,
           secs > 0 ? d.handshakes / secs : 0.0,
           (unsigned long long) d.echoes,
           secs > 0 ? d.echoes / secs : 0.0,
           hist_pct(0.50), hist_pct(0.99), hist_pct(0.999),
           hist.count ? (double) hist.sum / hist.count : 0.0, hist.max);

    print_common(&d);

    printf(",\"reconnects\":%llu,\"closed\":%ld,\"close_acked\":%ld,"
           "\"interrupted\":%s",
           (unsigned long long) d.reconnects, closed_n, acked_n,
           interrupted ? "true" : "false");

    print_cpu(&ru_begin, &ru_end);
}


/* hold: the ready line, and the final line */

static void
print_hold(int ready)
{
    double         setup, held;
    struct rusage  ru, zero;

    setup = (t_begin - t_start) / 1e6;
    held = ready ? 0 : ((t_wake ? t_wake : t_done) - t_begin) / 1e6;

    printf("{\"mode\":\"hold\",\"%s\":%s,\"transport\":\"%s\",\"server\":",
           ready ? "ready" : "done",
           ready && established == 0 ? "false" : "true",
           cf.udp ? "udp" : "dtls");
    json_str(cf.peer_str);

    printf(",\"requested\":%ld,\"concurrency\":%ld,\"sessions\":%ld,"
           "\"payload\":%ld,\"cipher\":",
           nsess, cf.concurrency, established, cf.payload);
    json_str(cf.udp ? NULL : cipher);

    printf(",\"setup_s\":%.3f,\"handshakes\":%llu,\"handshakes_per_s\":%.1f,",
           setup, (unsigned long long) st.handshakes,
           setup > 0 ? st.handshakes / setup : 0.0);

    if (!ready) {
        printf("\"held_s\":%.3f,\"lost\":%llu,\"closed\":%ld,"
               "\"close_acked\":%ld,\"unexpected\":%llu,"
               "\"interrupted\":%s,",
               held, (unsigned long long) st.lost, closed_n, acked_n,
               (unsigned long long) st.unexpected,
               interrupted ? "true" : "false");
    }

    if (!ready && cf.wake) {
        printf("\"wake_s\":%.3f,\"woken\":%llu,\"wake_answered\":%llu,"
               "\"wake_handshakes\":%llu,\"wake_failed\":%llu,",
               t_wake ? (t_done - t_wake) / 1e6 : 0.0,
               (unsigned long long) st.woken,
               (unsigned long long) st.wake_answered,
               (unsigned long long) st.wake_handshakes,
               (unsigned long long) (st.woken - st.wake_answered
                                     - st.wake_handshakes));
    }

    print_common(&st);

    memset(&zero, 0, sizeof(struct rusage));
    getrusage(RUSAGE_SELF, &ru);

    print_cpu(&zero, &ru);
}


/* the CPU times from "from" to "to", and the line's end */

static void
print_cpu(const struct rusage *from, const struct rusage *to)
{
    printf(",\"cpu_user_s\":%.3f,\"cpu_sys_s\":%.3f}\n",
           (to->ru_utime.tv_sec - from->ru_utime.tv_sec)
           + (to->ru_utime.tv_usec - from->ru_utime.tv_usec) / 1e6,
           (to->ru_stime.tv_sec - from->ru_stime.tv_sec)
           + (to->ru_stime.tv_usec - from->ru_stime.tv_usec) / 1e6);

    fflush(stdout);
}
