/*
 * dtls_client: a DTLS 1.2 (PSK and certificate) test client for the
 * ngx_dtls tests.
 *
 *   dtls_client -c HOST:PORT [-i IDENTITY] [-k HEXKEY] [-C CIPHERS]
 *               [-a CERTFILE] [-K KEYFILE] [-A CAFILE] [-S SERVERNAME]
 *               [-M MTU] [-m MODE] [-n N] [-P N] [-s STRING] [-t MS]
 *               [-W MS] [-R] [-X]
 *
 *   -c  the server, 127.0.0.1:5684 or [::1]:5684
 *   -i  the PSK identity (default "client1"), -k the PSK in hex
 *   -C  the cipher list; by default TOOL_PSK_CIPHERS, with -a or -A the
 *       certificate suites (TOOL_CERT_CIPHERS), after the PSK ones if -k
 *   -a  the client's certificate chain (PEM, leaf first), -K its key
 *       (default: the key in CERTFILE)
 *   -A  verify the server's chain against CAFILE (not its name); without
 *       it the server's certificate is not verified
 *   -S  the server name sent (SNI); -M the largest datagram (default 1200)
 *   -m  the mode (default echo), -n and -P its counts (default 1 and 10),
 *       -s its payload (default "hello")
 *   -t  the time each command may take, in ms (default 5000)
 *   -W  echo: a pause of MS before each send but the first
 *   -R  sequential: every session resumes the first
 *   -X  the first record after a handshake goes out in the datagram of the
 *       handshake's last flight: after a resumed (abbreviated) handshake,
 *       ChangeCipherSpec, Finished and data in one datagram, as clients
 *       send them; every other datagram is as without -X
 *
 * The commands of a session, an event line or more each on stdout:
 *
 *   handshake      "handshake ok protocol=P cipher=C reused=0|1" or
 *                  "handshake failed: REASON"; when the server sent a
 *                  certificate, but in lines mode, "server certificate
 *                  subject=DN issuer=DN verify=ok|none|FAILED:reason"
 *                  follows (DNs in RFC 2253 form, "none" without -A)
 *   send TEXT      TEXT in a record, and the reply: "recv TEXT",
 *                  "recv failed: REASON" or "close_notify received"
 *   new-session [resume] [IDENTITY]
 *                  the session left without close_notify (a device that
 *                  restarted and kept its port), a new SSL object on the
 *                  socket, resuming it or with another identity and the
 *                  same key: "new session"
 *   replay         the ClientHello that carried the cookie sent again, as
 *                  it was: "replayed clienthello len=N"
 *   hello          a new ClientHello without a cookie, beside the session,
 *                  the reply read raw: "hvr received len=N cookie_len=N
 *                  request_len=N", "reply len=N" or "reply none"
 *   cookie         that ClientHello again with the HelloVerifyRequest's
 *                  cookie: "server flight received len=N", or as hello
 *   wait MS        MS milliseconds; the epoch-0 datagrams that come are
 *                  read raw: "waited MS ms, epoch-0: len=N type=T ..." or
 *                  "waited MS ms, epoch-0: none"
 *   close          close_notify, up to 1s for the server's: "close_notify
 *                  sent", then "close_notify received" if it came
 *
 * Alerts show as "alert received: DESC" and "alert sent: DESC".  Modes:
 *
 *   lines       the commands on stdin, a line each, on one socket (one
 *               source port throughout); each answered by its last line
 *   echo        handshake, send STRING-1 ... send STRING-N (-n), "echo ok
 *               n=N", close, every event printed; with -W, "pause MS ms"
 *               before each send but the first, reading nothing meanwhile
 *   send-only   handshake, STRING once, what comes back printed until
 *               close_notify or -t, exit without closing
 *   handshake   handshake, close
 *   sequential  -n sessions one after another: handshake, send
 *               STRING-ID-1, close_notify without waiting; then "summary
 *               ok=N failed=N", with -R " reused=N"
 *   parallel    -P sessions at once, each handshake, -n sends, close_notify:
 *               "summary ok=N failed=N"
 *
 * In the last two a reply must end with what was sent, and a session that
 * fails prints "session ID failed: " and its last event.
 *
 * When SSLKEYLOGFILE names a file, the secrets of every session are
 * appended to it in NSS key log format ("CLIENT_RANDOM HEX HEX"): a test
 * can look for a session's master secret where it should not be.  The
 * PSK is never printed.
 *
 * Exit status: 0 when the goal of the mode was reached (lines: every
 * command succeeded), 1 when not, 2 on usage errors.
 */


#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "addr.h"
#include "dtls.h"
#include "opt.h"


#define MTU              1200
#define BUF_SIZE         65536
#define REC_SIZE         16384
#define CLOSE_WAIT_MS    1000

/* DTLS record and handshake header sizes, RFC 6347 */
#define REC_HDR          13
#define HS_HDR           12

#define now_ms()         (tool_now_ns() / 1000000)


typedef enum {
    MODE_ECHO = 0,
    MODE_SEND_ONLY,
    MODE_HANDSHAKE,
    MODE_SEQUENTIAL,
    MODE_PARALLEL,
    MODE_LINES
} dtls_mode_e;


/* what sess_io() runs */

typedef enum {
    OP_CONNECT = 0,
    OP_WRITE,
    OP_READ
} sess_op_e;


/* -m, in the order of the modes */

static const char *const  modes[] = {
    "echo", "send-only", "handshake", "sequential", "parallel",
    "lines", NULL
};


typedef struct {
    struct sockaddr_storage  peer;
    socklen_t                peer_len;
    const char              *peer_str;
    const char              *ciphers;
    const char              *cert;
    const char              *cert_key;
    const char              *ca;
    const char              *server_name;
    long                     mtu;
    dtls_mode_e              mode;
    long                     n;
    long                     parallel;
    const char              *payload;
    long                     timeout;
    long                     wait;
    int                      resume;
    int                      coalesce;
} conf_t;


typedef struct {
    int                      id;
    int                      fd;
    SSL                     *ssl;
    BIO                     *wmem;          /* -X, lines: datagrams to send */
    int64_t                  deadline;
    int                      quiet;
    int                      close_received;
    char                     last[256];     /* last event of a quiet one */
} sess_t;


typedef struct {
    int                      id;
    int                      ok;
    int                      reused;
    pthread_t                tid;
} worker_t;


static conf_t             cf;
static SSL_CTX           *ctx;

static opt_number_t       numbers[] = {
    { 'M', 256, 65507, &cf.mtu },
    { 'n', 0, 1000000, &cf.n },
    { 'P', 1, 10000, &cf.parallel },
    { 't', 1, 86400000, &cf.timeout },
    { 'W', 0, 86400000, &cf.wait },
    { 0, 0, 0, NULL }
};

static opt_arg_t          args[] = {
    { 'i', &tool_psk.identity, NULL },
    { 'C', &cf.ciphers, NULL },
    { 'a', &cf.cert, NULL },
    { 'K', &cf.cert_key, NULL },
    { 'A', &cf.ca, NULL },
    { 'S', &cf.server_name, NULL },
    { 's', &cf.payload, NULL },
    { 'R', NULL, &cf.resume },
    { 'X', NULL, &cf.coalesce },
    { 0, NULL, NULL }
};
static pthread_mutex_t    out_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_barrier_t  barrier;

/* sequential -R: the first session, which the others resume */

static SSL_SESSION       *first;

/* lines mode: the ClientHello with the cookie as sent, a new handshake */

static unsigned char      rec_hello[BUF_SIZE];
static int                rec_hello_len;
static SSL               *hello_ssl;
static BIO               *hello_rbio;
static BIO               *hello_wbio;
static unsigned char      hvr[BUF_SIZE];
static int                hvr_len;


static void usage(void);
static int parse_args(int argc, char **argv);
static void out(sess_t *s, const char *fmt, ...);
static void escape(const unsigned char *in, size_t len, char *out,
    size_t size);

static SSL_CTX *make_ctx(void);
static void info_cb(const SSL *ssl, int where, int ret);
static void keylog_cb(const SSL *ssl, const char *line);
static void print_server_cert(sess_t *s);

static int sess_open(sess_t *s, int id, SSL_SESSION *sess);
static int sess_ssl_new(sess_t *s, SSL_SESSION *sess);
static void sess_free(sess_t *s);
static void sess_flush(sess_t *s);
static int sess_wait(sess_t *s, int64_t deadline, short events);
static const char *sess_reason(int rc, int err);
static int sess_io(sess_t *s, sess_op_e op, void *buf, size_t len,
    int64_t deadline, const char **reason);
static int sess_handshake(sess_t *s);
static int sess_send(sess_t *s, const char *data);
static int sess_recv(sess_t *s, int64_t deadline, int all,
    const char *sent);
static void sess_shutdown(sess_t *s, int wait);

static int mode_session(void);
static int sess_run(sess_t *s, long n);
static int command(sess_t *s, char *line);
static int lines_new_session(sess_t *s, char *args);
static int lines_replay(sess_t *s);
static int lines_hello(sess_t *s, int cookie);
static void lines_wait(sess_t *s, long ms);
static int hello_cookie_len(const unsigned char *p, size_t len);
static int raw_recv(int fd, unsigned char *buf, size_t size,
    int64_t deadline, int flags);
static int mode_multi(void);
static void *worker(void *arg);


int
main(int argc, char **argv)
{
    int  rc;

    if (parse_args(argc, argv) != 0) {
        usage();
        return 2;
    }

    ctx = make_ctx();
    if (ctx == NULL) {
        return 2;
    }

    if (cf.mode == MODE_SEQUENTIAL || cf.mode == MODE_PARALLEL) {
        rc = mode_multi();

    } else {
        rc = mode_session();
    }

    SSL_CTX_free(ctx);
    return rc;
}


/* command line */


static void
usage(void)
{
    fprintf(stderr,
        "usage: dtls_client -c HOST:PORT [-i IDENTITY] [-k HEXKEY] "
        "[-C CIPHERS]\n"
        "         [-a CERTFILE] [-K KEYFILE] [-A CAFILE] [-S SERVERNAME]\n"
        "         [-M MTU] [-m echo|send-only|handshake|sequential|"
        "parallel|lines]\n"
        "         [-n N] [-P N] [-s STRING] [-t MS] [-W MS] [-R] [-X]\n"
        "(see t/tools/dtls_client.c)\n");
}


static int
parse_args(int argc, char **argv)
{
    int  opt, mode;

    tool_psk.identity = "client1";
    cf.ciphers = NULL;
    cf.mtu = MTU;
    cf.mode = MODE_ECHO;
    cf.n = 1;
    cf.parallel = 10;
    cf.payload = "hello";
    cf.timeout = 5000;

    while ((opt = opt_next("dtls_client", argc, argv,
                           "c:i:k:C:a:K:A:S:M:m:n:P:s:t:W:RXh", numbers,
                           args))
           != -1)
    {
        switch (opt) {
        case 'c':
            cf.peer_str = optarg;
            if (parse_addr(optarg, &cf.peer, &cf.peer_len) != 0) {
                fprintf(stderr, "dtls_client: invalid address \"%s\"\n",
                        optarg);
                return -1;
            }
            break;
        case 'k':
            if (tool_psk_key("dtls_client", optarg) != 0) {
                return -1;
            }
            break;
        case 'm':
            mode = opt_word("dtls_client", 'm', modes, optarg);
            if (mode == -1) {
                return -1;
            }
            cf.mode = mode;
            break;
        default:
            return -1;
        }
    }

    if (cf.peer_str == NULL || optind != argc) {
        return -1;
    }

    if (cf.cert_key && cf.cert == NULL) {
        fprintf(stderr, "dtls_client: -K needs -a\n");
        return -1;
    }

    /* the sessions of the other modes run at once or alone */

    if (cf.mode != MODE_SEQUENTIAL) {
        cf.resume = 0;
    }

    if (cf.ciphers == NULL) {
        if (cf.cert == NULL && cf.ca == NULL) {
            cf.ciphers = TOOL_PSK_CIPHERS;

        } else if (tool_psk.key_len) {
            cf.ciphers = TOOL_PSK_CIPHERS ":" TOOL_CERT_CIPHERS;

        } else {
            cf.ciphers = TOOL_CERT_CIPHERS;
        }
    }

    return 0;
}


/* output */


/*
 * An event line on stdout.  Quiet sessions (lines mode, the multi modes)
 * keep their last event instead, printed as the answer to a command or
 * when the session fails.
 */

static void
out(sess_t *s, const char *fmt, ...)
{
    va_list  ap;

    va_start(ap, fmt);

    if (s && s->quiet) {
        vsnprintf(s->last, sizeof(s->last), fmt, ap);

    } else {
        pthread_mutex_lock(&out_lock);
        vprintf(fmt, ap);
        putchar('\n');
        fflush(stdout);
        pthread_mutex_unlock(&out_lock);
    }

    va_end(ap);
}


/* printable ASCII as is, anything else (and backslash) as \xNN */

static void
escape(const unsigned char *in, size_t len, char *out, size_t size)
{
    size_t  i, o;

    for (i = 0, o = 0; i < len && o + 5 < size; i++) {
        if (in[i] >= 0x20 && in[i] < 0x7f && in[i] != '\\') {
            out[o++] = in[i];
        } else {
            o += snprintf(out + o, size - o, "\\x%02x", in[i]);
        }
    }

    out[o] = '\0';
}


/* OpenSSL */


static SSL_CTX *
make_ctx(void)
{
    SSL_CTX  *c;

    c = tool_client_ctx("dtls_client", cf.ciphers, cf.cert, cf.cert_key);
    if (c == NULL) {
        return NULL;
    }

    if (cf.ca) {
        if (SSL_CTX_load_verify_locations(c, cf.ca, NULL) != 1) {
            fprintf(stderr, "dtls_client: cannot load CA file \"%s\"\n",
                    cf.ca);
            ERR_print_errors_fp(stderr);
            SSL_CTX_free(c);
            return NULL;
        }

        SSL_CTX_set_verify(c, SSL_VERIFY_PEER, NULL);
    }

    SSL_CTX_set_info_callback(c, info_cb);
    SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_CLIENT);

    if (getenv("SSLKEYLOGFILE")) {
        SSL_CTX_set_keylog_callback(c, keylog_cb);
    }

    return c;
}


static void
keylog_cb(const SSL *ssl, const char *line)
{
    FILE  *f;

    (void) ssl;

    pthread_mutex_lock(&out_lock);

    f = fopen(getenv("SSLKEYLOGFILE"), "a");
    if (f != NULL) {
        fprintf(f, "%s\n", line);
        fclose(f);
    }

    pthread_mutex_unlock(&out_lock);
}


static void
info_cb(const SSL *ssl, int where, int ret)
{
    sess_t  *s;

    if (!(where & SSL_CB_ALERT)) {
        return;
    }

    s = SSL_get_app_data(ssl);
    if (s == NULL) {
        return;
    }

    if ((ret & 0xff) == SSL3_AD_CLOSE_NOTIFY) {
        s->close_received |= (where & SSL_CB_READ) != 0;
        return;
    }

    out(s, "alert %s: %s", (where & SSL_CB_READ) ? "received" : "sent",
        SSL_alert_desc_string_long(ret));
}


/* the server's certificate, if it sent one (never with PSK suites) */

static void
print_server_cert(sess_t *s)
{
    int    n;
    long   v;
    BIO   *b;
    X509  *x;
    char   line[2048];

    x = SSL_get1_peer_certificate(s->ssl);
    b = BIO_new(BIO_s_mem());

    if (x != NULL && b != NULL) {
        BIO_puts(b, "server certificate subject=");
        X509_NAME_print_ex(b, X509_get_subject_name(x), 0, XN_FLAG_RFC2253);
        BIO_puts(b, " issuer=");
        X509_NAME_print_ex(b, X509_get_issuer_name(x), 0, XN_FLAG_RFC2253);

        v = SSL_get_verify_result(s->ssl);

        if (cf.ca == NULL) {
            BIO_puts(b, " verify=none");

        } else if (v == X509_V_OK) {
            BIO_puts(b, " verify=ok");

        } else {
            BIO_printf(b, " verify=FAILED:%s",
                       X509_verify_cert_error_string(v));
        }

        n = BIO_read(b, line, sizeof(line) - 1);
        line[n > 0 ? n : 0] = '\0';

        out(s, "%s", line);
    }

    X509_free(x);
    BIO_free(b);
}


/* sessions */


static int
sess_open(sess_t *s, int id, SSL_SESSION *sess)
{
    memset(s, 0, sizeof(*s));
    s->id = id;
    s->deadline = now_ms() + cf.timeout;

    s->fd = socket(cf.peer.ss_family, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    if (s->fd == -1) {
        perror("dtls_client: socket");
        return -1;
    }

    if (connect(s->fd, (struct sockaddr *) &cf.peer, cf.peer_len) == -1) {
        perror("dtls_client: connect");
        sess_free(s);
        return -1;
    }

    return sess_ssl_new(s, sess);
}


/* a new SSL object on the session's socket */

static int
sess_ssl_new(sess_t *s, SSL_SESSION *sess)
{
    BIO       *bio;
    BIO_ADDR  *addr;

    s->ssl = SSL_new(ctx);
    bio = BIO_new_dgram(s->fd, BIO_NOCLOSE);
    addr = BIO_ADDR_new();

    if (s->ssl == NULL || bio == NULL || addr == NULL) {
        BIO_free(bio);
        BIO_ADDR_free(addr);
        goto failed;
    }

    if (cf.peer.ss_family == AF_INET) {
        struct sockaddr_in  *sin = (struct sockaddr_in *) &cf.peer;

        BIO_ADDR_rawmake(addr, AF_INET, &sin->sin_addr,
                         sizeof(sin->sin_addr), sin->sin_port);

    } else {
        struct sockaddr_in6  *sin6 = (struct sockaddr_in6 *) &cf.peer;

        BIO_ADDR_rawmake(addr, AF_INET6, &sin6->sin6_addr,
                         sizeof(sin6->sin6_addr), sin6->sin6_port);
    }

    BIO_ctrl_set_connected(bio, addr);
    BIO_ADDR_free(addr);

    /* lines mode keeps the ClientHello with the cookie as it is sent */

    if (cf.coalesce || cf.mode == MODE_LINES) {
        s->wmem = BIO_new(BIO_s_mem());
        if (s->wmem == NULL) {
            BIO_free(bio);
            goto failed;
        }

        SSL_set_bio(s->ssl, bio, s->wmem);

    } else {
        SSL_set_bio(s->ssl, bio, bio);
    }

    SSL_set_app_data(s->ssl, s);

    if (SSL_set_mtu(s->ssl, cf.mtu) == 0) {
        fprintf(stderr, "dtls_client: MTU %ld refused\n", cf.mtu);
        goto failed;
    }

    if (cf.server_name
        && SSL_set_tlsext_host_name(s->ssl, cf.server_name) != 1)
    {
        goto failed;
    }

    if (sess) {
        SSL_set_session(s->ssl, sess);
    }

    return 0;

failed:

    ERR_print_errors_fp(stderr);
    sess_free(s);
    return -1;
}


static void
sess_free(sess_t *s)
{
    if (s->ssl) {
        SSL_free(s->ssl);
        s->ssl = NULL;
        s->wmem = NULL;
    }

    if (s->fd != -1) {
        close(s->fd);
        s->fd = -1;
    }
}


/*
 * -X, lines: what OpenSSL wrote since the last call, as one datagram; the
 * first ClientHello with a cookie is kept for the replay command
 */

static void
sess_flush(sess_t *s)
{
    long   n;
    char  *p;

    if (s->wmem == NULL) {
        return;
    }

    n = BIO_get_mem_data(s->wmem, &p);

    if (n > 0) {
        (void) send(s->fd, p, (size_t) n, 0);
    }

    if (rec_hello_len == 0 && n > 0 && (size_t) n <= sizeof(rec_hello)
        && hello_cookie_len((unsigned char *) p, n) > 0)
    {
        memcpy(rec_hello, p, n);
        rec_hello_len = (int) n;
    }

    (void) BIO_reset(s->wmem);
}


/*
 * Waits for the socket until the deadline or the DTLS retransmission
 * timer, running the timer when it expires.  Returns 1 when the caller
 * should retry the operation, 0 when the deadline passed, -1 when the
 * handshake gave up retransmitting.
 */

static int
sess_wait(sess_t *s, int64_t deadline, short events)
{
    int64_t         t, left;
    struct pollfd   pfd;
    struct timeval  tv;

    left = deadline - now_ms();
    if (left <= 0) {
        return 0;
    }

    t = left;

    if (DTLSv1_get_timeout(s->ssl, &tv)) {
        t = (int64_t) tv.tv_sec * 1000 + (tv.tv_usec + 999) / 1000;
        if (t > left) {
            t = left;
        }
    }

    pfd.fd = s->fd;
    pfd.events = events;
    pfd.revents = 0;

    /* DTLSv1_handle_timeout() does nothing before the timer expires */

    if (poll(&pfd, 1, (int) t) == 0) {
        if (DTLSv1_handle_timeout(s->ssl) < 0) {
            return -1;
        }

        sess_flush(s);
    }

    return 1;
}


static const char *
sess_reason(int rc, int err)
{
    const char     *r;
    unsigned long   e;

    e = ERR_peek_last_error();
    if (e) {
        r = ERR_reason_error_string(e);
        if (r) {
            return r;
        }
    }

    if (err == SSL_ERROR_SYSCALL) {
        return (rc == 0 || errno == 0) ? "unexpected eof" : strerror(errno);
    }

    if (err == SSL_ERROR_ZERO_RETURN) {
        return "close_notify";
    }

    return "error";
}


/*
 * SSL_connect(), SSL_write() or SSL_read() until it completes or the
 * deadline passes.  Returns what it returned (> 0), 0 on close_notify
 * (read), -1 on timeout and -2 on other failures, with the reason.
 */

static int
sess_io(sess_t *s, sess_op_e op, void *buf, size_t len, int64_t deadline,
    const char **reason)
{
    int  rc, err, w;

    for ( ;; ) {
        ERR_clear_error();
        errno = 0;

        if (op == OP_CONNECT) {
            rc = SSL_connect(s->ssl);

        } else if (op == OP_WRITE) {
            rc = SSL_write(s->ssl, buf, (int) len);

        } else {
            rc = SSL_read(s->ssl, buf, (int) len);
        }

        /* with -X the handshake's last flight waits for the first record */

        if (rc <= 0 || op != OP_CONNECT || !cf.coalesce) {
            sess_flush(s);
        }

        if (rc > 0) {
            return rc;
        }

        err = SSL_get_error(s->ssl, rc);

        if (err == SSL_ERROR_ZERO_RETURN && op == OP_READ) {
            s->close_received = 1;
            return 0;
        }

        if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) {
            *reason = sess_reason(rc, err);
            return -2;
        }

        w = sess_wait(s, deadline,
                      err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT);

        if (w != 1) {
            *reason = (w == 0) ? "timeout" : "retransmissions exhausted";
            return w == 0 ? -1 : -2;
        }
    }
}


static int
sess_handshake(sess_t *s)
{
    const char  *reason;

    if (sess_io(s, OP_CONNECT, NULL, 0, s->deadline, &reason) < 0) {
        out(s, "handshake failed: %s", reason);
        return -1;
    }

    out(s, "handshake ok protocol=%s cipher=%s reused=%d",
        SSL_get_version(s->ssl), SSL_get_cipher_name(s->ssl),
        SSL_session_reused(s->ssl) ? 1 : 0);

    if (!s->quiet) {
        print_server_cert(s);
    }

    return 0;
}


static int
sess_send(sess_t *s, const char *data)
{
    const char  *reason;

    if (sess_io(s, OP_WRITE, (void *) data, strlen(data), s->deadline,
                &reason)
        < 0)
    {
        out(s, "send failed: %s", reason);
        return -1;
    }

    return 0;
}


/*
 * Reads records until the deadline, each printed as "recv TEXT": one, or
 * with "all" every one until close_notify (a timeout is then no failure).
 * With "sent", the record must end with it (the backend may add a
 * prefix).  Returns 0 when the records came as they should.
 */

static int
sess_recv(sess_t *s, int64_t deadline, int all, const char *sent)
{
    int             n;
    size_t          len;
    const char     *reason;
    char            text[4 * REC_SIZE + 1];
    unsigned char   buf[REC_SIZE];

    do {
        n = sess_io(s, OP_READ, buf, sizeof(buf), deadline, &reason);

        if (n > 0) {
            escape(buf, n, text, sizeof(text));
            out(s, "recv %s", text);
        }

    } while (n > 0 && all);

    if (n == 0) {
        out(s, "close_notify received");
        return -1;
    }

    if (n == -2 || (n == -1 && !all)) {
        out(s, "recv failed: %s", reason);
        return -1;
    }

    len = sent ? strlen(sent) : 0;

    if (n > 0 && sent
        && ((size_t) n < len || memcmp(buf + n - len, sent, len) != 0))
    {
        out(s, "reply mismatch: sent %s", sent);
        return -1;
    }

    return 0;
}


/* close_notify; with "wait", up to a second for the server's */

static void
sess_shutdown(sess_t *s, int wait)
{
    ERR_clear_error();

    if (SSL_shutdown(s->ssl) < 0) {
        sess_flush(s);
        out(s, "close_notify failed: %s", sess_reason(-1, SSL_ERROR_SSL));
        return;
    }

    sess_flush(s);

    out(s, "close_notify sent");

    if (!wait) {
        return;
    }

    if (s->close_received) {
        out(s, "close_notify received");
        return;
    }

    (void) sess_recv(s, now_ms() + CLOSE_WAIT_MS, 1, NULL);
}


/* echo, send-only, handshake, lines: one session on one socket */


static int
mode_session(void)
{
    int     failed;
    char    line[4096];
    sess_t  s;

    if (sess_open(&s, 0, NULL) != 0) {
        return 1;
    }

    failed = 0;

    if (cf.mode == MODE_LINES) {
        s.quiet = 1;

        while (fgets(line, sizeof(line), stdin) != NULL) {
            line[strcspn(line, "\r\n")] = '\0';

            s.last[0] = '\0';
            s.deadline = now_ms() + cf.timeout;

            failed |= (command(&s, line) != 0);

            printf("%s\n", s.last);
            fflush(stdout);
        }

    } else if (cf.mode == MODE_SEND_ONLY) {
        failed = (sess_handshake(&s) != 0 || sess_send(&s, cf.payload) != 0);

        if (!failed) {
            (void) sess_recv(&s, s.deadline, 1, NULL);
        }

    } else {
        failed = (sess_run(&s, cf.mode == MODE_ECHO ? cf.n : 0) != 0);
    }

    SSL_free(hello_ssl);
    sess_free(&s);

    return failed;
}


/*
 * echo, handshake and the sessions of the multi modes: a handshake, N
 * echoes, close_notify.  The multi modes' sessions are quiet: their
 * replies are checked, they do not wait for the server's close_notify.
 */

static int
sess_run(sess_t *s, long n)
{
    long  i;
    char  data[4096];

    if (sess_handshake(s) != 0) {
        return -1;
    }

    for (i = 1; i <= n; i++) {
        if (i > 1 && cf.wait > 0) {
            out(s, "pause %ld ms", cf.wait);
            (void) poll(NULL, 0, (int) cf.wait);
            s->deadline = now_ms() + cf.timeout;
        }

        if (s->quiet) {
            snprintf(data, sizeof(data), "%s-%d-%ld", cf.payload, s->id, i);

        } else {
            snprintf(data, sizeof(data), "%s-%ld", cf.payload, i);
        }

        if (sess_send(s, data) != 0
            || sess_recv(s, s->deadline, 0, s->quiet ? data : NULL) != 0)
        {
            return -1;
        }
    }

    if (cf.mode == MODE_ECHO) {
        out(s, "echo ok n=%ld", n);
    }

    sess_shutdown(s, !s->quiet);

    return 0;
}


/* a command of lines mode, its answer the session's last event */

static int
command(sess_t *s, char *line)
{
    char  *arg;

    arg = strchr(line, ' ');

    if (arg) {
        *arg++ = '\0';

    } else {
        arg = line + strlen(line);
    }

    if (strcmp(line, "handshake") == 0) {
        return sess_handshake(s);
    }

    if (strcmp(line, "send") == 0) {
        return sess_send(s, arg) != 0
               ? -1 : sess_recv(s, s->deadline, 0, NULL);
    }

    if (strcmp(line, "new-session") == 0) {
        if (lines_new_session(s, arg) != 0) {
            /* no SSL object is left to run commands on */
            printf("new session failed\n");
            exit(1);
        }

        return 0;
    }

    if (strcmp(line, "replay") == 0) {
        return lines_replay(s);
    }

    if (strcmp(line, "hello") == 0 || strcmp(line, "cookie") == 0) {
        return lines_hello(s, line[0] == 'c');
    }

    if (strcmp(line, "wait") == 0) {
        lines_wait(s, strtol(arg, NULL, 10));
        return 0;
    }

    if (strcmp(line, "close") == 0) {
        sess_shutdown(s, 1);
        return 0;
    }

    out(s, "unknown command \"%s\"", line);
    return -1;
}


static int
lines_new_session(sess_t *s, char *args)
{
    int           rc;
    char         *a;
    SSL_SESSION  *prev;

    prev = NULL;

    for (a = strtok(args, " "); a; a = strtok(NULL, " ")) {
        if (strcmp(a, "resume") == 0) {
            prev = SSL_get1_session(s->ssl);

        } else {
            tool_psk.identity = a;
        }
    }

    /*
     * no close_notify: SSL_free() sends nothing, the socket stays; marked
     * as shut down, so that OpenSSL keeps the session resumable
     */

    SSL_set_shutdown(s->ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    SSL_free(s->ssl);
    s->ssl = NULL;
    s->wmem = NULL;
    s->close_received = 0;

    rc = sess_ssl_new(s, prev);
    SSL_SESSION_free(prev);

    if (rc == 0) {
        out(s, "new session");
    }

    return rc;
}


static int
lines_replay(sess_t *s)
{
    if (rec_hello_len == 0) {
        out(s, "replay failed: no ClientHello with a cookie sent");
        return -1;
    }

    if (send(s->fd, rec_hello, rec_hello_len, 0) != rec_hello_len) {
        out(s, "replay failed: send: %s", strerror(errno));
        return -1;
    }

    out(s, "replayed clienthello len=%d", rec_hello_len);

    return 0;
}


/*
 * A new handshake by hand from the session's socket, beside the live
 * session: a ClientHello without a cookie, made by OpenSSL on memory BIOs,
 * then the same SSL object's ClientHello with the cookie of the
 * HelloVerifyRequest that came back
 */

static int
lines_hello(sess_t *s, int cookie)
{
    int            n, len;
    unsigned char  hello[BUF_SIZE];

    if (!cookie) {
        SSL_free(hello_ssl);

        hello_ssl = SSL_new(ctx);
        if (hello_ssl == NULL) {
            ERR_print_errors_fp(stderr);
            out(s, "hello failed: SSL_new()");
            return -1;
        }

        hello_rbio = BIO_new(BIO_s_mem());
        hello_wbio = BIO_new(BIO_s_mem());
        BIO_set_mem_eof_return(hello_rbio, -1);
        SSL_set_bio(hello_ssl, hello_rbio, hello_wbio);
        SSL_set_mtu(hello_ssl, cf.mtu);

        if (cf.server_name) {
            SSL_set_tlsext_host_name(hello_ssl, cf.server_name);
        }

    } else if (hello_ssl == NULL || hvr_len <= 0) {
        out(s, "cookie failed: no HelloVerifyRequest");
        return -1;

    } else {
        BIO_write(hello_rbio, hvr, hvr_len);
    }

    ERR_clear_error();

    len = (SSL_connect(hello_ssl) == -1
           && SSL_get_error(hello_ssl, -1) == SSL_ERROR_WANT_READ)
          ? BIO_read(hello_wbio, hello, sizeof(hello)) : -1;

    if (len <= 0 || send(s->fd, hello, len, 0) != len) {
        ERR_print_errors_fp(stderr);
        out(s, "%s failed: cannot send a ClientHello",
            cookie ? "cookie" : "hello");
        return -1;
    }

    n = raw_recv(s->fd, hvr, sizeof(hvr), s->deadline, 0);
    hvr_len = 0;

    if (n < 0) {
        out(s, "reply none");
        return -1;
    }

    /* record: type 22; handshake: type 3; body: version(2), cookie len */

    if (n >= REC_HDR + HS_HDR + 3 && hvr[0] == SSL3_RT_HANDSHAKE
        && hvr[REC_HDR] == DTLS1_MT_HELLO_VERIFY_REQUEST)
    {
        hvr_len = n;
        out(s, "hvr received len=%d cookie_len=%d request_len=%d",
            n, hvr[REC_HDR + HS_HDR + 2], len);
        return 0;
    }

    if (cookie && n > REC_HDR && hvr[0] == SSL3_RT_HANDSHAKE
        && hvr[3] == 0 && hvr[4] == 0 && hvr[REC_HDR] == SSL3_MT_SERVER_HELLO)
    {
        out(s, "server flight received len=%d", n);
        return 0;
    }

    out(s, "reply len=%d", n);
    return -1;
}


/*
 * Waits, showing the epoch-0 datagrams that come meanwhile: they are not
 * for the live session.  A datagram for it ends the reading, and is left
 * to it.
 */

static void
lines_wait(sess_t *s, long ms)
{
    int            n;
    char           seen[256];
    size_t         len;
    int64_t        until, left;
    unsigned char  buf[BUF_SIZE];

    until = now_ms() + ms;
    len = 0;

    for ( ;; ) {
        n = raw_recv(s->fd, buf, sizeof(buf), until, MSG_PEEK);

        if (n < REC_HDR || buf[3] != 0 || buf[4] != 0) {
            break;
        }

        n = recv(s->fd, buf, sizeof(buf), MSG_DONTWAIT);

        if (len + 32 < sizeof(seen)) {
            len += snprintf(seen + len, sizeof(seen) - len, " len=%d type=%d",
                            n, n > REC_HDR ? buf[REC_HDR] : -1);
        }
    }

    left = until - now_ms();

    if (left > 0) {
        (void) poll(NULL, 0, (int) left);
    }

    out(s, "waited %ld ms, epoch-0:%s", ms, len ? seen : " none");
}


/*
 * The cookie length of a datagram that starts with an unfragmented
 * epoch-0 ClientHello record, -1 for anything else.
 */

static int
hello_cookie_len(const unsigned char *p, size_t len)
{
    size_t  off;

    if (len < REC_HDR + HS_HDR + 2 + 32 + 1
        || p[0] != SSL3_RT_HANDSHAKE
        || p[3] != 0 || p[4] != 0
        || p[REC_HDR] != SSL3_MT_CLIENT_HELLO
        || p[REC_HDR + 6] != 0 || p[REC_HDR + 7] != 0
        || p[REC_HDR + 8] != 0)
    {
        return -1;
    }

    off = REC_HDR + HS_HDR + 2 + 32;        /* session_id */
    off += 1 + p[off];                      /* cookie */

    if (off >= len) {
        return -1;
    }

    return p[off];
}


/*
 * A datagram that comes before the deadline (with MSG_PEEK, left in the
 * socket): its length, -1 if none came or nothing listens there
 */

static int
raw_recv(int fd, unsigned char *buf, size_t size, int64_t deadline,
    int flags)
{
    int64_t        left;
    struct pollfd  pfd;

    left = deadline - now_ms();

    pfd.fd = fd;
    pfd.events = POLLIN;
    pfd.revents = 0;

    if (left <= 0 || poll(&pfd, 1, (int) left) != 1) {
        return -1;
    }

    return (int) recv(fd, buf, size, flags | MSG_DONTWAIT);
}


/* sequential, parallel */


static int
mode_multi(void)
{
    long             i, n, ok, reused;
    worker_t        *w;
    pthread_attr_t   attr;

    n = (cf.mode == MODE_SEQUENTIAL) ? cf.n : cf.parallel;

    w = calloc(n + 1, sizeof(worker_t));
    if (w == NULL) {
        return 1;
    }

    /* parallel: all sessions start their handshakes together */

    pthread_barrier_init(&barrier, NULL, (unsigned) cf.parallel);
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 1024 * 1024);

    for (i = 0; i < n; i++) {
        w[i].id = (int) i + 1;

        if (cf.mode == MODE_SEQUENTIAL) {
            (void) worker(&w[i]);

        } else if (pthread_create(&w[i].tid, &attr, worker, &w[i]) != 0) {
            /* the barrier would never open: a bounded exit instead */
            fprintf(stderr, "dtls_client: cannot start thread %ld\n", i + 1);
            fflush(stdout);
            _exit(1);
        }
    }

    ok = 0;
    reused = 0;

    for (i = 0; i < n; i++) {
        if (cf.mode == MODE_PARALLEL) {
            pthread_join(w[i].tid, NULL);
        }

        ok += w[i].ok;
        reused += w[i].ok && w[i].reused;
    }

    if (cf.resume) {
        out(NULL, "summary ok=%ld failed=%ld reused=%ld", ok, n - ok, reused);

    } else {
        out(NULL, "summary ok=%ld failed=%ld", ok, n - ok);
    }

    SSL_SESSION_free(first);
    free(w);

    return (ok == n && ok > 0) ? 0 : 1;
}


/* a session of the multi modes: its last event printed if it fails */

static void *
worker(void *arg)
{
    sess_t     s;
    worker_t  *w = arg;

    if (cf.mode == MODE_PARALLEL) {
        pthread_barrier_wait(&barrier);
    }

    if (sess_open(&s, w->id, first) != 0) {
        return NULL;
    }

    s.quiet = 1;

    w->ok = (sess_run(&s, cf.mode == MODE_SEQUENTIAL ? 1 : cf.n) == 0);

    if (w->ok) {
        w->reused = SSL_session_reused(s.ssl);

        if (cf.resume && first == NULL) {
            first = SSL_get1_session(s.ssl);
        }

    } else {
        s.quiet = 0;
        out(&s, "session %d failed: %s", w->id, s.last);
    }

    sess_free(&s);
    return NULL;
}
