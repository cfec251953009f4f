/*
 * dtls_floor: what OpenSSL alone costs a DTLS 1.2 PSK server, the floor
 * under ngx_dtls in the benchmark.  A client and a server in one thread
 * over an in-memory datagram BIO (dgram.h), the server's SSL_CTX as
 * ngx_dtls configures it (NO_QUERY_MTU, NO_RENEGOTIATION, read-ahead,
 * the default session cache, a cookie exchange through DTLSv1_listen()
 * with an HMAC-SHA256 cookie over a fixed fake client address).
 *
 *   dtls_floor [-m handshake|memory] [-C CIPHER] [-d SECONDS]
 *              [-N SESSIONS] [-F SIZE] [-R] [-M MTU]
 *
 * handshake (default): for -d seconds (default 3), full handshakes one
 * after another, each with a 16-byte echo and close_notify both ways.
 * Every OpenSSL call of each side is timed with CLOCK_MONOTONIC, less the
 * clock's own cost, and scaled by the thread's share of the CPU over the
 * run ("cpu_share"):
 *
 *   {"mode":"handshake","cipher":C,"handshakes":N,"seconds":T,
 *    "server_cpu_us_per_handshake":U,"server_handshakes_per_cpu_s":R,
 *    "client_cpu_us_per_handshake":U,"wall_handshakes_per_s":R,
 *    "server_calls_per_handshake":C,"cpu_share":F,"clock_overhead_ns":O}
 *
 * memory: OpenSSL's allocations (CRYPTO_set_mem_functions()) are charged
 * to the side whose call made them.  After one uncounted session, -N
 * sessions (default 1000) are established, each with one echo, and kept:
 * the server's live heap over N is that of an idle session, by
 * allocation size too; then all is freed, and what the server still
 * holds after SSL_CTX_free() (0 unless something leaks) is reported:
 *
 *   {"mode":"memory","cipher":C,"sessions":N,"max_send_fragment":F|null,
 *    "release_buffers":B,"server_bytes_per_session":X,
 *    "server_allocs_per_session":Y,"client_bytes_per_session":X,
 *    "classes":{"16k_up":{"allocs":Y,"bytes":X},"1k_16k":{...},
 *               "under_1k":{...}},"server_bytes_left":Z}
 *
 * -C is the one cipher of both sides (default PSK-AES128-CCM8), -F the
 * server's SSL_CTX_set_max_send_fragment(), -R its
 * SSL_MODE_RELEASE_BUFFERS, -M the MTU of both (default 1200, as
 * dtls_mtu).  Exit status: 0 on success, 1 on failure, 2 on usage errors.
 */

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

#include "dgram.h"
#include "dtls.h"
#include "opt.h"


#define DEFAULT_CIPHER   "PSK-AES128-CCM8"
#define MTU              1200
#define ECHO_SIZE        16
#define ROUNDS           16          /* handshake steps before giving up */
#define IDENTITY         "client1"
#define KEY              "00112233445566778899aabbccddeeff"

#define SIDE_NONE        0
#define SIDE_SERVER      1
#define SIDE_CLIENT      2
#define SIDES            3

#define CLASS_16K_UP     0
#define CLASS_1K_16K     1
#define CLASS_UNDER_1K   2
#define CLASSES          3


typedef enum {
    MODE_HANDSHAKE = 0,
    MODE_MEMORY
} floor_mode_e;


/* -m, in the order of the modes */

static const char *const  modes[] = {
    "handshake", "memory", NULL
};


typedef struct {
    floor_mode_e             mode;
    const char              *cipher;
    double                   seconds;
    long                     sessions;
    long                     max_fragment;
    int                      release;
    long                     mtu;
} conf_t;


typedef struct {
    SSL                     *server;
    SSL                     *client;
    queue_t                  to_server;
    queue_t                  to_client;
    dgram_end_t              server_end;
    dgram_end_t              client_end;
} pair_t;


/* live allocations: size and whose call made them */

typedef struct {
    size_t                   size;
    int                      side;
    int                      class;
} mem_hdr_t;


static conf_t         cf;

static opt_number_t   numbers[] = {
    { 'N', 1, 10000000, &cf.sessions },
    { 'F', 512, 16384, &cf.max_fragment },
    { 'M', 256, 65507, &cf.mtu },
    { 0, 0, 0, NULL }
};

static opt_arg_t      args[] = {
    { 'C', &cf.cipher, NULL },
    { 'R', NULL, &cf.release },
    { 0, NULL, NULL }
};
static SSL_CTX       *server_ctx;
static SSL_CTX       *client_ctx;
static BIO_ADDR      *listen_addr;
static EVP_MAC       *hmac;

static const char     cookie_secret[] = "dtls_floor: a fixed cookie secret";

/* 192.0.2.1:5684, the fake client the cookies are made for */
static unsigned char  fake_addr[6] = { 192, 0, 2, 1, 0x16, 0x34 };

static int            side = SIDE_NONE;
static int            charging = 1;
static int64_t        call_ns[SIDES];
static int64_t        calls[SIDES];
static int64_t        call_start;
static int            timing;

static int64_t        live_bytes[SIDES][CLASSES];
static int64_t        live_allocs[SIDES][CLASSES];
static int64_t        live_total[SIDES][2];         /* bytes, allocations */


static void usage(void);
static int parse_args(int argc, char **argv);
static int64_t thread_ns(void);
static int64_t clock_overhead_ns(void);

static void *mem_malloc(size_t n, const char *file, int line);
static void *mem_realloc(void *p, size_t n, const char *file, int line);
static void mem_free(void *p, const char *file, int line);
static void mem_account(mem_hdr_t *h, int sign);

static SSL_CTX *make_ctx(int server);
static int cookie_generate_cb(SSL *ssl, unsigned char *cookie,
    unsigned int *len);
static int cookie_verify_cb(SSL *ssl, const unsigned char *cookie,
    unsigned int len);

static void enter(int s);
static void leave(void);
static SSL *pair_ssl(int s, SSL_CTX *c, dgram_end_t *end);
static int pair_step(SSL *ssl, int s, int *done, const char *what);
static int pair_open(pair_t *p);
static int pair_echo(pair_t *p);
static int pair_close(pair_t *p);
static void pair_free(pair_t *p);
static int pair_run(void);
static int failed(const char *what, SSL *ssl, int rc);

static int mode_handshake(void);
static int mode_memory(void);


int
main(int argc, char **argv)
{
    int  rc;

    if (parse_args(argc, argv) != 0) {
        usage();
        return 2;
    }

    /* before any other OpenSSL call, or it is refused */

    if (cf.mode == MODE_MEMORY
        && CRYPTO_set_mem_functions(mem_malloc, mem_realloc, mem_free) != 1)
    {
        fprintf(stderr, "dtls_floor: CRYPTO_set_mem_functions() failed\n");
        return 1;
    }

    hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    listen_addr = BIO_ADDR_new();

    if (hmac == NULL || listen_addr == NULL
        || dgram_init("dtls_floor datagram") != 0)
    {
        ERR_print_errors_fp(stderr);
        return 1;
    }

    tool_psk.identity = IDENTITY;
    tool_psk_key("dtls_floor", KEY);

    server_ctx = make_ctx(1);
    if (server_ctx == NULL) {
        return 2;
    }

    client_ctx = make_ctx(0);
    if (client_ctx == NULL) {
        SSL_CTX_free(server_ctx);
        return 2;
    }

    rc = (cf.mode == MODE_MEMORY) ? mode_memory() : mode_handshake();

    SSL_CTX_free(server_ctx);
    SSL_CTX_free(client_ctx);
    BIO_ADDR_free(listen_addr);
    BIO_meth_free(dgram_method);
    EVP_MAC_free(hmac);

    return rc;
}


/* command line */


static void
usage(void)
{
    fprintf(stderr,
        "usage: dtls_floor [-m handshake|memory] [options]\n"
        "  -C CIPHER   cipher of both sides (default " DEFAULT_CIPHER ")\n"
        "  -d SECONDS  handshake mode: run time (default 3)\n"
        "  -N N        memory mode: sessions (default 1000)\n"
        "  -F SIZE     server's max_send_fragment (512 to 16384)\n"
        "  -R          server's SSL_MODE_RELEASE_BUFFERS\n"
        "  -M MTU      MTU of both sides (default 1200)\n");
}


static int
parse_args(int argc, char **argv)
{
    int    opt, mode;
    char  *end;

    cf.mode = MODE_HANDSHAKE;
    cf.cipher = DEFAULT_CIPHER;
    cf.seconds = 3;
    cf.sessions = 1000;
    cf.mtu = MTU;

    while ((opt = opt_next("dtls_floor", argc, argv, "m:C:d:N:F:RM:h",
                           numbers, args))
           != -1)
    {
        switch (opt) {
        case 'm':
            mode = opt_word("dtls_floor", 'm', modes, optarg);
            if (mode == -1) {
                return -1;
            }
            cf.mode = mode;
            break;
        case 'd':
            cf.seconds = strtod(optarg, &end);
            if (*end != '\0' || !(cf.seconds > 0 && cf.seconds <= 86400)) {
                fprintf(stderr, "dtls_floor: -d must be a positive number "
                        "of seconds\n");
                return -1;
            }
            break;
        default:
            return -1;
        }
    }

    return optind == argc ? 0 : -1;
}


/* clocks */


static int64_t
thread_ns(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}


/* what one timed call adds by reading the clock twice: the least of 5 */

static int64_t
clock_overhead_ns(void)
{
    int      i, j;
    int64_t  t0, t1, v, least;

    least = INT64_MAX;

    for (i = 0; i < 5; i++) {
        t0 = 0;
        t1 = 0;

        for (j = 0; j < 20000; j++) {
            t0 += tool_now_ns();
            t1 += tool_now_ns();
        }

        v = (t1 - t0) / 20000;
        least = v < least ? v : least;
    }

    return least;
}


/* OpenSSL's allocations, counted by side and size class (memory mode) */


static void *
mem_malloc(size_t n, const char *file, int line)
{
    mem_hdr_t  *h;

    (void) file;
    (void) line;

    h = malloc(sizeof(mem_hdr_t) + n);
    if (h == NULL) {
        return NULL;
    }

    h->size = n;
    h->side = side;
    mem_account(h, 1);

    return h + 1;
}


static void *
mem_realloc(void *p, size_t n, const char *file, int line)
{
    mem_hdr_t  *h, *nh;

    if (p == NULL) {
        return mem_malloc(n, file, line);
    }

    if (n == 0) {
        mem_free(p, file, line);
        return NULL;
    }

    h = (mem_hdr_t *) p - 1;

    /* the block stays charged to the side that allocated it */

    mem_account(h, -1);

    nh = realloc(h, sizeof(mem_hdr_t) + n);
    if (nh == NULL) {
        mem_account(h, 1);
        return NULL;
    }

    nh->size = n;
    mem_account(nh, 1);

    return nh + 1;
}


static void
mem_free(void *p, const char *file, int line)
{
    mem_hdr_t  *h;

    (void) file;
    (void) line;

    if (p == NULL) {
        return;
    }

    h = (mem_hdr_t *) p - 1;
    mem_account(h, -1);
    free(h);
}


static void
mem_account(mem_hdr_t *h, int sign)
{
    if (sign > 0) {
        h->class = (h->size >= 16384) ? CLASS_16K_UP
                   : (h->size >= 1024) ? CLASS_1K_16K : CLASS_UNDER_1K;
    }

    live_bytes[h->side][h->class] += sign * (int64_t) h->size;
    live_allocs[h->side][h->class] += sign;
    live_total[h->side][0] += sign * (int64_t) h->size;
    live_total[h->side][1] += sign;
}


/* OpenSSL */


static SSL_CTX *
make_ctx(int server)
{
    SSL_CTX  *c;

    c = tool_ctx_new("dtls_floor", server, cf.cipher);
    if (c == NULL) {
        return NULL;
    }

    SSL_CTX_set_options(c, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);

    if (!server) {
        SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
        return c;
    }

    /* as ngx_dtls: the server's context */

    SSL_CTX_set_options(c, SSL_OP_COOKIE_EXCHANGE);
    SSL_CTX_set_cookie_generate_cb(c, cookie_generate_cb);
    SSL_CTX_set_cookie_verify_cb(c, cookie_verify_cb);
    SSL_CTX_set_max_cert_list(c, 16384);
    SSL_CTX_set_read_ahead(c, 1);

    if (SSL_CTX_set_session_id_context(c, (unsigned char *) "ngx_dtls", 8)
        != 1)
    {
        ERR_print_errors_fp(stderr);
        SSL_CTX_free(c);
        return NULL;
    }

    if (cf.max_fragment
        && SSL_CTX_set_max_send_fragment(c, cf.max_fragment) != 1)
    {
        ERR_print_errors_fp(stderr);
        SSL_CTX_free(c);
        return NULL;
    }

    if (cf.release) {
        SSL_CTX_set_mode(c, SSL_MODE_RELEASE_BUFFERS);
    }

    return c;
}


/* HMAC-SHA256 over the fake address, a context per cookie as ngx_dtls */

static int
cookie_generate_cb(SSL *ssl, unsigned char *cookie, unsigned int *len)
{
    size_t        n;
    OSSL_PARAM    params[2];
    EVP_MAC_CTX  *mctx;

    (void) ssl;

    mctx = EVP_MAC_CTX_new(hmac);
    if (mctx == NULL) {
        return 0;
    }

    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
                                                 (char *) "SHA256", 0);
    params[1] = OSSL_PARAM_construct_end();

    if (EVP_MAC_init(mctx, (const unsigned char *) cookie_secret,
                     sizeof(cookie_secret) - 1, params) != 1
        || EVP_MAC_update(mctx, fake_addr, sizeof(fake_addr)) != 1
        || EVP_MAC_final(mctx, cookie, &n, 32) != 1)
    {
        EVP_MAC_CTX_free(mctx);
        return 0;
    }

    EVP_MAC_CTX_free(mctx);

    *len = (unsigned int) n;

    return 1;
}


static int
cookie_verify_cb(SSL *ssl, const unsigned char *cookie, unsigned int len)
{
    unsigned int   n;
    unsigned char  want[32];

    if (cookie_generate_cb(ssl, want, &n) != 1) {
        return 0;
    }

    return len == n && CRYPTO_memcmp(cookie, want, n) == 0;
}


/*
 * Sessions.  Every OpenSSL call is made between enter() and leave(),
 * which charge its time (and, in memory mode, its allocations) to the
 * server or the client.
 */


static void
enter(int s)
{
    side = charging ? s : SIDE_NONE;

    if (timing) {
        call_start = tool_now_ns();
    }
}


static void
leave(void)
{
    if (timing) {
        call_ns[side] += tool_now_ns() - call_start;
        calls[side]++;
    }

    side = SIDE_NONE;
}


#define SERVER(rc, call)  do { enter(SIDE_SERVER); rc = call; leave(); }    \
                          while (0)
#define CLIENT(rc, call)  do { enter(SIDE_CLIENT); rc = call; leave(); }    \
                          while (0)
#define SERVER_V(call)    do { enter(SIDE_SERVER); call; leave(); } while (0)
#define CLIENT_V(call)    do { enter(SIDE_CLIENT); call; leave(); } while (0)


/* a side's SSL, over its end of the pair, as ngx_dtls makes the server's */

static SSL *
pair_ssl(int s, SSL_CTX *c, dgram_end_t *end)
{
    int   ok;
    BIO  *b;
    SSL  *ssl;

    enter(s);

    ssl = SSL_new(c);
    b = ssl ? dgram_bio_new(end) : NULL;
    ok = 0;

    if (b) {
        SSL_set_bio(ssl, b, b);

        if (s == SIDE_SERVER) {
            SSL_set_accept_state(ssl);

        } else {
            SSL_set_connect_state(ssl);
        }

        ok = SSL_set_mtu(ssl, cf.mtu) != 0;
    }

    leave();

    if (!ok) {
        failed(s == SIDE_SERVER ? "server SSL_new" : "client SSL_new", NULL,
               0);
    }

    return ssl;
}


/* a handshake step of a side not done yet: 0, or -1 after printing why */

static int
pair_step(SSL *ssl, int s, int *done, const char *what)
{
    int  rc;

    if (*done) {
        return 0;
    }

    enter(s);
    rc = SSL_do_handshake(ssl);
    leave();

    if (rc == 1) {
        *done = 1;
        return 0;
    }

    if (SSL_get_error(ssl, rc) != SSL_ERROR_WANT_READ) {
        return failed(what, ssl, rc);
    }

    return 0;
}


/* a new pair, handshaked: 0, or -1 after printing why not */

static int
pair_open(pair_t *p)
{
    int  i, rc, server_done, client_done;

    memset(p, 0, sizeof(pair_t));

    p->server_end.in = &p->to_server;
    p->server_end.out = &p->to_client;
    p->client_end.in = &p->to_client;
    p->client_end.out = &p->to_server;

    p->server = pair_ssl(SIDE_SERVER, server_ctx, &p->server_end);
    p->client = pair_ssl(SIDE_CLIENT, client_ctx, &p->client_end);

    if (p->server == NULL || p->client == NULL) {
        return -1;
    }

    /*
     * the first ClientHello, the server's HelloVerifyRequest, the
     * ClientHello with the cookie, its check
     */

    server_done = 0;
    client_done = 0;

    if (pair_step(p->client, SIDE_CLIENT, &client_done,
                  "client SSL_do_handshake") != 0)
    {
        return -1;
    }

    SERVER(rc, DTLSv1_listen(p->server, listen_addr));

    if (rc != 0 || p->to_client.head == NULL) {
        return failed("first DTLSv1_listen", p->server, rc);
    }

    if (pair_step(p->client, SIDE_CLIENT, &client_done,
                  "client SSL_do_handshake after HVR") != 0)
    {
        return -1;
    }

    SERVER(rc, DTLSv1_listen(p->server, listen_addr));

    if (rc != 1) {
        return failed("second DTLSv1_listen", p->server, rc);
    }

    for (i = 0; i < ROUNDS && !(server_done && client_done); i++) {
        if (pair_step(p->server, SIDE_SERVER, &server_done,
                      "server SSL_do_handshake") != 0
            || pair_step(p->client, SIDE_CLIENT, &client_done,
                         "client SSL_do_handshake") != 0)
        {
            return -1;
        }
    }

    if (!(server_done && client_done)) {
        fprintf(stderr, "dtls_floor: no handshake after %d rounds\n", ROUNDS);
        return -1;
    }

    return 0;
}


/* ECHO_SIZE bytes from the client, echoed by the server */

static int
pair_echo(pair_t *p)
{
    int            rc;
    unsigned char  out[ECHO_SIZE], srv[ECHO_SIZE], in[ECHO_SIZE];

    memset(out, 'x', ECHO_SIZE);

    CLIENT(rc, SSL_write(p->client, out, ECHO_SIZE));
    if (rc != ECHO_SIZE) {
        return failed("client SSL_write", p->client, rc);
    }

    SERVER(rc, SSL_read(p->server, srv, sizeof(srv)));
    if (rc != ECHO_SIZE) {
        return failed("server SSL_read", p->server, rc);
    }

    SERVER(rc, SSL_write(p->server, srv, rc));
    if (rc != ECHO_SIZE) {
        return failed("server SSL_write", p->server, rc);
    }

    CLIENT(rc, SSL_read(p->client, in, sizeof(in)));
    if (rc != ECHO_SIZE || memcmp(in, out, ECHO_SIZE) != 0) {
        return failed("client SSL_read", p->client, rc);
    }

    return 0;
}


/*
 * The client's close_notify, read by the server, which answers with its
 * own (as ngx_dtls does), read by the client.
 */

static int
pair_close(pair_t *p)
{
    int            rc;
    unsigned char  buf[64];

    CLIENT(rc, SSL_shutdown(p->client));
    if (rc != 0) {
        return failed("client SSL_shutdown", p->client, rc);
    }

    SERVER(rc, SSL_read(p->server, buf, sizeof(buf)));
    if (rc != 0 || SSL_get_error(p->server, rc) != SSL_ERROR_ZERO_RETURN) {
        return failed("server SSL_read of close_notify", p->server, rc);
    }

    SERVER(rc, SSL_shutdown(p->server));
    if (rc != 1) {
        return failed("server SSL_shutdown", p->server, rc);
    }

    CLIENT(rc, SSL_shutdown(p->client));
    if (rc != 1) {
        return failed("second client SSL_shutdown", p->client, rc);
    }

    return 0;
}


static void
pair_free(pair_t *p)
{
    if (p->server) {
        SERVER_V(SSL_free(p->server));
        p->server = NULL;
    }

    if (p->client) {
        CLIENT_V(SSL_free(p->client));
        p->client = NULL;
    }

    queue_clear(&p->to_server);
    queue_clear(&p->to_client);
}


static int
failed(const char *what, SSL *ssl, int rc)
{
    fprintf(stderr, "dtls_floor: %s failed", what);

    if (ssl) {
        fprintf(stderr, ": rc=%d SSL_get_error=%d", rc,
                SSL_get_error(ssl, rc));
    }

    fputc('\n', stderr);
    ERR_print_errors_fp(stderr);

    return -1;
}


/* modes */


/* one whole session: handshake, echo, close_notify both ways, freed */

static int
pair_run(void)
{
    int     rc;
    pair_t  p;

    rc = (pair_open(&p) == 0 && pair_echo(&p) == 0 && pair_close(&p) == 0)
         ? 0 : -1;

    pair_free(&p);

    return rc;
}


static int
mode_handshake(void)
{
    double   share;
    int64_t  n, start, end, wall, cpu, overhead, server_ns, client_ns;

    overhead = clock_overhead_ns();
    timing = 1;

    /* one handshake unmeasured: lazy initialisations */

    if (pair_run() != 0) {
        return 1;
    }

    memset(call_ns, 0, sizeof(call_ns));
    memset(calls, 0, sizeof(calls));

    n = 0;
    cpu = thread_ns();
    start = tool_now_ns();
    end = start + (int64_t) (cf.seconds * 1e9);

    do {
        if (pair_run() != 0) {
            return 1;
        }

        n++;

    } while (tool_now_ns() < end);

    wall = tool_now_ns() - start;
    cpu = thread_ns() - cpu;

    share = (double) cpu / wall;

    if (share > 1) {
        share = 1;
    }

    server_ns = (call_ns[SIDE_SERVER] - calls[SIDE_SERVER] * overhead) * share;
    client_ns = (call_ns[SIDE_CLIENT] - calls[SIDE_CLIENT] * overhead) * share;

    printf("{\"mode\":\"handshake\",\"cipher\":\"%s\",\"handshakes\":%lld,"
           "\"seconds\":%.3f,"
           "\"server_cpu_us_per_handshake\":%.2f,"
           "\"server_handshakes_per_cpu_s\":%.0f,"
           "\"client_cpu_us_per_handshake\":%.2f,"
           "\"wall_handshakes_per_s\":%.0f,"
           "\"server_calls_per_handshake\":%.1f,"
           "\"cpu_share\":%.3f,\"clock_overhead_ns\":%lld}\n",
           cf.cipher, (long long) n, wall / 1e9,
           server_ns / 1e3 / n,
           n / (server_ns / 1e9),
           client_ns / 1e3 / n,
           n / (wall / 1e9),
           (double) calls[SIDE_SERVER] / n,
           share, (long long) overhead);

    return 0;
}


static int
mode_memory(void)
{
    int      c, rc;
    long     i, n;
    pair_t  *pairs;

    static const char  *class_names[CLASSES] = {
        "16k_up", "1k_16k", "under_1k"
    };

    n = cf.sessions;

    pairs = calloc(n, sizeof(pair_t));
    if (pairs == NULL) {
        fprintf(stderr, "dtls_floor: out of memory\n");
        return 1;
    }

    /*
     * One session charged to nobody: what OpenSSL allocates once and
     * keeps (method and provider caches, per-thread state) is not the
     * server's per session memory.
     */

    charging = 0;
    rc = pair_run() == 0 ? 0 : 1;
    charging = 1;

    for (i = 0; i < n && rc == 0; i++) {
        if (pair_open(&pairs[i]) != 0 || pair_echo(&pairs[i]) != 0) {
            fprintf(stderr, "dtls_floor: session %ld failed\n", i + 1);
            rc = 1;
        }
    }

    if (rc == 0) {
        printf("{\"mode\":\"memory\",\"cipher\":\"%s\",\"sessions\":%ld,"
               "\"max_send_fragment\":", cf.cipher, n);
        printf(cf.max_fragment ? "%ld" : "null", cf.max_fragment);

        printf(",\"release_buffers\":%s,\"server_bytes_per_session\":%.0f,"
               "\"server_allocs_per_session\":%.1f,"
               "\"client_bytes_per_session\":%.0f,\"classes\":{",
               cf.release ? "true" : "false",
               (double) live_total[SIDE_SERVER][0] / n,
               (double) live_total[SIDE_SERVER][1] / n,
               (double) live_total[SIDE_CLIENT][0] / n);

        for (c = 0; c < CLASSES; c++) {
            printf("%s\"%s\":{\"allocs\":%.2f,\"bytes\":%.0f}",
                   c ? "," : "", class_names[c],
                   (double) live_allocs[SIDE_SERVER][c] / n,
                   (double) live_bytes[SIDE_SERVER][c] / n);
        }

        printf("},");
    }

    /* every session closed and freed, then the server's context */

    for (i = 0; i < n; i++) {
        if (rc == 0 && pair_close(&pairs[i]) != 0) {
            rc = 1;
        }

        pair_free(&pairs[i]);
    }

    free(pairs);

    SSL_CTX_free(server_ctx);
    server_ctx = NULL;

    if (rc == 0) {
        printf("\"server_bytes_left\":%lld}\n",
               (long long) live_total[SIDE_SERVER][0]);
    }

    return rc;
}
