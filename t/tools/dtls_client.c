/*
 * dtls_client: a DTLS 1.2 (PSK and certificate) test client for the
 * ngx_dtls tests.
 *
 *   dtls_client -c HOST:PORT [-i IDENTITY] [-k HEXKEY] [-C CIPHERS]
 *               [-a CERTFILE] [-K KEYFILE] [-A CAFILE] [-S SERVERNAME]
 *               [-M MTU] [-m MODE] [-n N] [-P N] [-s STRING] [-t MS]
 *               [-W MS] [-R] [-X] [-v]
 *
 * Certificates: -a is the client's certificate chain (PEM, leaf first),
 * -K its key (default: the key in CERTFILE).  -A verifies the server's
 * chain against CAFILE (not its name); without -A the server's
 * certificate is not verified.  When the server sends a certificate,
 * "handshake ok" is followed by
 *
 *   server certificate subject=DN issuer=DN verify=ok|none|FAILED:reason
 *
 * (DNs in RFC 2253 form; "none" without -A).  With -a or -A and no -C,
 * the certificate suites are offered (TOOL_CERT_CIPHERS), after the PSK ones
 * when -k is given too.  -S sends SNI.
 *
 * Every session is bounded by -t milliseconds (default 5000); nothing
 * blocks without a deadline.  Events are printed one per line on stdout;
 * -v prints a trace to stderr.  The PSK is never printed.
 *
 * Modes:
 *   echo        handshake, -n datagrams "STRING-i", a reply for each,
 *               close_notify, up to 1s for the server's close_notify;
 *               with -W, a pause of MS before each datagram but the
 *               first ("pause MS ms"), reading nothing
 *   send-only   handshake, STRING once, print what comes back until
 *               close_notify or -t, exit without closing
 *   handshake   handshake only, then close_notify
 *   sequential  -n sessions one after another (handshake, echo, close)
 *   parallel    -P sessions at once, each handshake, -n echoes, close
 *   lines       commands on stdin, a line each, on one socket (one source
 *               port throughout), each answered by one line on stdout,
 *               each bounded by -t:
 *     handshake      "handshake ok protocol=P cipher=C reused=0|1" or
 *                    "handshake failed: REASON"
 *     send TEXT      TEXT in a record, and the reply: "recv TEXT",
 *                    "recv failed: timeout", "close_notify received"
 *     new-session [resume] [IDENTITY]
 *                    the session left without close_notify (a device
 *                    that restarted and kept its port), a new SSL object
 *                    on the socket, resuming it or with another identity
 *                    and the same key: "new session"
 *     replay         the ClientHello that carried the cookie sent again,
 *                    as it was: "replayed clienthello len=N"
 *     hello          a new ClientHello without a cookie, the reply read
 *                    raw: "hvr received len=N cookie_len=N request_len=N",
 *                    "reply len=N" or "reply none"
 *     cookie         that ClientHello again with the HelloVerifyRequest's
 *                    cookie: "server flight received len=N", or as hello
 *     wait MS        MS milliseconds; the epoch-0 datagrams that come are
 *                    read raw: "waited MS ms, epoch-0: len=N type=T ..."
 *                    or "waited MS ms, epoch-0: none"
 *     close          close_notify, up to 1s for the server's:
 *                    "close_notify received" or "close_notify sent"
 *               exit status 1 if any command failed; the server's
 *               certificate is not shown in this mode
 *
 * With -X the first record after a handshake goes out in the datagram of
 * the handshake's last flight: after a resumed (abbreviated) handshake,
 * ChangeCipherSpec, Finished and data in one datagram, as clients send
 * them.  Every other datagram is as without -X.
 *
 * When SSLKEYLOGFILE names a file, the secrets of every session are
 * appended to it in NSS key log format ("CLIENT_RANDOM HEX HEX"): a test
 * can look for a session's master secret where it should not be.
 *
 * Exit status: 0 when the goal of the mode was reached, 1 when not,
 * 2 on usage errors.
 */

#include <arpa/inet.h>
#include <ctype.h>
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
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/rand.h>
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
    int                      verbose;
} conf_t;


typedef struct {
    int                      id;
    int                      fd;
    SSL                     *ssl;
    BIO                     *wmem;          /* -X: datagrams to send */
    int64_t                  deadline;
    int                      quiet;
    int                      close_received;
    char                     alert[64];
    char                     last[256];     /* last event of a quiet one */
    const char              *prefix;        /* of its event lines */
} sess_t;


typedef struct {
    int                      id;
    int                      ok;
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
    { 'v', NULL, &cf.verbose },
    { 0, NULL, NULL }
};
static pthread_mutex_t    out_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_barrier_t  barrier;

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
static void dbg(sess_t *s, const char *fmt, ...);
static void escape(const unsigned char *in, size_t len, char *out,
    size_t size);

static SSL_CTX *make_ctx(void);
static void info_cb(const SSL *ssl, int where, int ret);
static void keylog_cb(const SSL *ssl, const char *line);
static void print_server_cert(sess_t *s);
static void name_rfc2253(X509_NAME *name, char *buf, size_t size);
static void msg_cb(int write_p, int version, int content_type,
    const void *buf, size_t len, SSL *ssl, void *arg);

static int udp_socket(void);
static int sess_open(sess_t *s, int id, SSL_SESSION *sess);
static int sess_ssl_new(sess_t *s, SSL_SESSION *sess);
static void sess_free(sess_t *s);
static void sess_flush(sess_t *s);
static int sess_wait(sess_t *s, int64_t deadline, short events);
static const char *sess_reason(sess_t *s, int rc, int err);
static int sess_handshake(sess_t *s);
static int sess_write(sess_t *s, const char *data, size_t len);
static int sess_read(sess_t *s, unsigned char *buf, size_t size,
    int64_t deadline);
static int sess_echo(sess_t *s, const char *data, int check);
static void sess_shutdown(sess_t *s, int wait);

static int mode_single(void);
static int mode_multi(void);
static int mode_lines(void);
static int lines_new_session(sess_t *s, char *args);
static int lines_replay(sess_t *s);
static int lines_hello(sess_t *s, int cookie);
static void lines_wait(sess_t *s, long ms);
static int hello_cookie_len(const unsigned char *p, size_t len);
static void *worker(void *arg);
static int run_session(int id, int echoes, SSL_SESSION *resume,
    SSL_SESSION **save, int *reused);
static int raw_client_hello(SSL **sslp, BIO **rbio, BIO **wbio,
    unsigned char *buf, size_t size);
static int raw_recv(int fd, unsigned char *buf, size_t size,
    int64_t deadline);
static int is_hvr(const unsigned char *p, size_t len, size_t *cookie_len);


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

    switch (cf.mode) {
    case MODE_SEQUENTIAL:
    case MODE_PARALLEL:
        rc = mode_multi();
        break;
    case MODE_LINES:
        rc = mode_lines();
        break;
    default:
        rc = mode_single();
        break;
    }

    SSL_CTX_free(ctx);
    return rc;
}


/* command line */


static void
usage(void)
{
    fprintf(stderr,
        "usage: dtls_client -c HOST:PORT [options]\n"
        "  -c HOST:PORT  server, 127.0.0.1:5684 or [::1]:5684\n"
        "  -i IDENTITY   PSK identity (default \"client1\")\n"
        "  -k HEXKEY     PSK in hex\n"
        "  -C CIPHERS    cipher list (default " TOOL_PSK_CIPHERS ";\n"
        "                with -a or -A: " TOOL_CERT_CIPHERS ",\n"
        "                after the PSK ones with -k)\n"
        "  -a CERTFILE   client certificate chain (PEM, leaf first)\n"
        "  -K KEYFILE    client key (default: CERTFILE)\n"
        "  -A CAFILE     verify the server's certificate chain against it\n"
        "  -S NAME       server name (SNI)\n"
        "  -M MTU        largest datagram sent (default 1200)\n"
        "  -m MODE       echo, send-only, handshake, sequential, parallel,\n"
        "                lines (default echo)\n"
        "  -n N          datagrams (echo, parallel) or sessions\n"
        "                (sequential), default 1\n"
        "  -P N          parallel sessions (default 10)\n"
        "  -s STRING     payload (default \"hello\")\n"
        "  -t MS         timeout per session (lines: per command,\n"
        "                default 5000)\n"
        "  -R            sequential: resume the first session\n"
        "  -X            the first record in the handshake's last datagram\n"
        "  -W MS         echo: a pause before each datagram but the first\n"
        "  -v            trace to stderr\n");
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
                           "c:i:k:C:a:K:A:S:M:m:n:P:s:t:W:RXvh", numbers,
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
 * An event line on stdout.  Sessions of the multi modes are quiet: they
 * keep their last event, printed if the session fails.
 */

static void
out(sess_t *s, const char *fmt, ...)
{
    va_list  ap;

    if (s && s->quiet) {
        va_start(ap, fmt);
        vsnprintf(s->last, sizeof(s->last), fmt, ap);
        va_end(ap);
    }

    if (cf.verbose) {
        va_start(ap, fmt);
        pthread_mutex_lock(&out_lock);
        fprintf(stderr, "[%d] %s", s ? s->id : 0,
                s && s->prefix ? s->prefix : "");
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        pthread_mutex_unlock(&out_lock);
        va_end(ap);
    }

    if (s && s->quiet) {
        return;
    }

    va_start(ap, fmt);
    pthread_mutex_lock(&out_lock);
    if (s && s->prefix) {
        fputs(s->prefix, stdout);
    }
    vprintf(fmt, ap);
    putchar('\n');
    fflush(stdout);
    pthread_mutex_unlock(&out_lock);
    va_end(ap);
}


static void
dbg(sess_t *s, const char *fmt, ...)
{
    va_list  ap;

    if (!cf.verbose) {
        return;
    }

    va_start(ap, fmt);
    pthread_mutex_lock(&out_lock);
    fprintf(stderr, "[%d] ", s ? s->id : 0);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    pthread_mutex_unlock(&out_lock);
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

    if (where & SSL_CB_READ) {
        if ((ret & 0xff) == SSL3_AD_CLOSE_NOTIFY) {
            s->close_received = 1;
            return;
        }

        snprintf(s->alert, sizeof(s->alert), "%s",
                 SSL_alert_desc_string_long(ret));
        out(s, "alert received: %s", s->alert);

    } else if ((ret & 0xff) != SSL3_AD_CLOSE_NOTIFY) {
        out(s, "alert sent: %s", SSL_alert_desc_string_long(ret));
    }
}


static void
msg_cb(int write_p, int version, int content_type, const void *buf,
    size_t len, SSL *ssl, void *arg)
{
    sess_t               *s;
    const unsigned char  *p;

    (void) version;
    (void) arg;

    if (content_type != SSL3_RT_HANDSHAKE
        && content_type != SSL3_RT_ALERT
        && content_type != SSL3_RT_CHANGE_CIPHER_SPEC)
    {
        return;
    }

    s = SSL_get_app_data(ssl);
    p = buf;

    dbg(s, "%s %s type=%d len=%zu", write_p ? ">" : "<",
        content_type == SSL3_RT_HANDSHAKE ? "handshake"
        : content_type == SSL3_RT_ALERT ? "alert" : "ccs",
        len ? p[content_type == SSL3_RT_ALERT && len > 1 ? 1 : 0] : -1,
        len);
}


/* sessions */


static int
udp_socket(void)
{
    int  fd;

    fd = socket(cf.peer.ss_family, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    if (fd == -1) {
        perror("dtls_client: socket");
        return -1;
    }

    if (connect(fd, (struct sockaddr *) &cf.peer, cf.peer_len) == -1) {
        perror("dtls_client: connect");
        close(fd);
        return -1;
    }

    return fd;
}


static int
sess_open(sess_t *s, int id, SSL_SESSION *sess)
{
    memset(s, 0, sizeof(*s));
    s->id = id;
    s->deadline = now_ms() + cf.timeout;

    s->fd = udp_socket();
    if (s->fd == -1) {
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

    if (cf.verbose) {
        SSL_set_msg_callback(s->ssl, msg_cb);
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


/* -X: what OpenSSL wrote since the last call, as one datagram */

static void
sess_flush(sess_t *s)
{
    long   n;
    char  *p;

    if (s->wmem == NULL) {
        return;
    }

    n = BIO_get_mem_data(s->wmem, &p);

    if (n > 0 && send(s->fd, p, (size_t) n, 0) == -1) {
        dbg(s, "send: %s", strerror(errno));
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
 * Waits for the socket until the deadline, running the DTLS retransmission
 * timer meanwhile.  Returns 1 when the caller should retry the operation,
 * 0 when the deadline passed, -1 when the handshake gave up retransmitting.
 */

static int
sess_wait(sess_t *s, int64_t deadline, short events)
{
    int             rc;
    int64_t         left, t;
    struct pollfd   pfd;
    struct timeval  tv;

    for ( ;; ) {
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

        rc = poll(&pfd, 1, (int) t);

        if (rc > 0) {
            return 1;
        }

        if (rc == -1 && errno != EINTR) {
            return -1;
        }

        if (rc == 0 && DTLSv1_get_timeout(s->ssl, &tv)
            && tv.tv_sec == 0 && tv.tv_usec == 0)
        {
            dbg(s, "retransmission timer expired");

            if (DTLSv1_handle_timeout(s->ssl) < 0) {
                return -1;
            }

            sess_flush(s);
        }
    }
}


static const char *
sess_reason(sess_t *s, int rc, int err)
{
    const char     *r;
    unsigned long   e;

    (void) s;

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


static int
sess_handshake(sess_t *s)
{
    int          rc, err, w;
    const char  *reason;

    for ( ;; ) {
        ERR_clear_error();
        errno = 0;

        rc = SSL_connect(s->ssl);
        if (rc == 1) {
            /* with -X the last flight waits for the first record */

            if (!cf.coalesce) {
                sess_flush(s);
            }

            break;
        }

        sess_flush(s);

        err = SSL_get_error(s->ssl, rc);

        if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
            w = sess_wait(s, s->deadline,
                          err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT);
            if (w == 1) {
                continue;
            }

            out(s, "handshake failed: %s",
                w == 0 ? "timeout" : "retransmissions exhausted");
            return -1;
        }

        reason = sess_reason(s, rc, err);
        out(s, "handshake failed: %s", reason);
        return -1;
    }

    out(s, "handshake ok protocol=%s cipher=%s reused=%d",
        SSL_get_version(s->ssl), SSL_get_cipher_name(s->ssl),
        SSL_session_reused(s->ssl) ? 1 : 0);

    if (cf.mode != MODE_LINES) {
        print_server_cert(s);
    }

    return 0;
}


/* the server's certificate, if it sent one (never with PSK suites) */

static void
print_server_cert(sess_t *s)
{
    long   v;
    X509  *x;
    char   subject[512], issuer[512], verify[256];

    x = SSL_get1_peer_certificate(s->ssl);
    if (x == NULL) {
        return;
    }

    name_rfc2253(X509_get_subject_name(x), subject, sizeof(subject));
    name_rfc2253(X509_get_issuer_name(x), issuer, sizeof(issuer));

    X509_free(x);

    if (cf.ca == NULL) {
        snprintf(verify, sizeof(verify), "none");

    } else {
        v = SSL_get_verify_result(s->ssl);

        if (v == X509_V_OK) {
            snprintf(verify, sizeof(verify), "ok");

        } else {
            snprintf(verify, sizeof(verify), "FAILED:%s",
                     X509_verify_cert_error_string(v));
        }
    }

    out(s, "server certificate subject=%s issuer=%s verify=%s",
        subject, issuer, verify);
}


static void
name_rfc2253(X509_NAME *name, char *buf, size_t size)
{
    int   n;
    BIO  *b;

    buf[0] = '\0';

    b = BIO_new(BIO_s_mem());
    if (b == NULL) {
        return;
    }

    X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253);

    n = BIO_read(b, buf, (int) size - 1);
    buf[n > 0 ? n : 0] = '\0';

    BIO_free(b);
}


static int
sess_write(sess_t *s, const char *data, size_t len)
{
    int  rc, err;

    for ( ;; ) {
        ERR_clear_error();
        errno = 0;

        rc = SSL_write(s->ssl, data, (int) len);
        sess_flush(s);

        if (rc > 0) {
            dbg(s, "sent %d bytes", rc);
            return 0;
        }

        err = SSL_get_error(s->ssl, rc);

        if ((err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE)
            && sess_wait(s, s->deadline,
                         err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT) == 1)
        {
            continue;
        }

        out(s, "send failed: %s",
            err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE
            ? "timeout" : sess_reason(s, rc, err));
        return -1;
    }
}


/*
 * Reads one record.  Returns its length, 0 on close_notify, -1 on timeout,
 * -2 on errors (reported).
 */

static int
sess_read(sess_t *s, unsigned char *buf, size_t size, int64_t deadline)
{
    int  rc, err, w;

    for ( ;; ) {
        ERR_clear_error();
        errno = 0;

        rc = SSL_read(s->ssl, buf, (int) size);
        sess_flush(s);

        if (rc > 0) {
            return rc;
        }

        err = SSL_get_error(s->ssl, rc);

        if (err == SSL_ERROR_ZERO_RETURN) {
            s->close_received = 1;
            return 0;
        }

        if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
            w = sess_wait(s, deadline,
                          err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT);
            if (w == 1) {
                continue;
            }

            return w == 0 ? -1 : -2;
        }

        out(s, "recv failed: %s", sess_reason(s, rc, err));
        return -2;
    }
}


/*
 * Sends data and waits for one reply.  With "check", the reply must end
 * with the data (the backend may add a prefix).
 */

static int
sess_echo(sess_t *s, const char *data, int check)
{
    int            n;
    size_t         len;
    char           text[4 * REC_SIZE + 1];
    unsigned char  buf[REC_SIZE];

    len = strlen(data);

    if (sess_write(s, data, len) != 0) {
        return -1;
    }

    n = sess_read(s, buf, sizeof(buf), s->deadline);

    if (n > 0) {
        escape(buf, n, text, sizeof(text));
        out(s, "recv %s", text);

        if (check
            && ((size_t) n < len || memcmp(buf + n - len, data, len) != 0))
        {
            out(s, "reply mismatch: sent %s", data);
            return -1;
        }

        return 0;
    }

    if (n == 0) {
        out(s, "close_notify received");

    } else if (n == -1) {
        out(s, "recv failed: timeout");
    }

    return -1;
}


static void
sess_shutdown(sess_t *s, int wait)
{
    int            n;
    int64_t        deadline;
    char           text[4 * REC_SIZE + 1];
    unsigned char  buf[REC_SIZE];

    ERR_clear_error();

    if (SSL_shutdown(s->ssl) < 0) {
        sess_flush(s);
        out(s, "close_notify failed: %s", sess_reason(s, -1, SSL_ERROR_SSL));
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

    deadline = now_ms() + CLOSE_WAIT_MS;

    for ( ;; ) {
        n = sess_read(s, buf, sizeof(buf), deadline);

        if (n > 0) {
            escape(buf, n, text, sizeof(text));
            out(s, "recv %s", text);
            continue;
        }

        if (n == 0) {
            out(s, "close_notify received");
        }

        return;
    }
}


/* modes */


static int
mode_single(void)
{
    int            rc, n;
    long           i;
    char           data[4096];
    char           text[4 * REC_SIZE + 1];
    sess_t         s;
    unsigned char  buf[REC_SIZE];

    if (sess_open(&s, 0, NULL) != 0) {
        return 1;
    }

    rc = 1;

    if (sess_handshake(&s) != 0) {
        goto done;
    }

    switch (cf.mode) {

    case MODE_HANDSHAKE:
        sess_shutdown(&s, 1);
        rc = 0;
        break;

    case MODE_SEND_ONLY:
        if (sess_write(&s, cf.payload, strlen(cf.payload)) != 0) {
            break;
        }

        rc = 0;

        for ( ;; ) {
            n = sess_read(&s, buf, sizeof(buf), s.deadline);

            if (n > 0) {
                escape(buf, n, text, sizeof(text));
                out(&s, "recv %s", text);
                continue;
            }

            if (n == 0) {
                out(&s, "close_notify received");
            }

            break;
        }

        break;

    default: /* MODE_ECHO */
        for (i = 1; i <= cf.n; i++) {
            snprintf(data, sizeof(data), "%s-%ld", cf.payload, i);

            if (i > 1 && cf.wait > 0) {
                out(&s, "pause %ld ms", cf.wait);
                (void) poll(NULL, 0, (int) cf.wait);
                s.deadline = now_ms() + cf.timeout;
            }

            if (sess_echo(&s, data, 0) != 0) {
                goto done;
            }
        }

        out(&s, "echo ok n=%ld", cf.n);
        rc = 0;

        sess_shutdown(&s, 1);
        break;
    }

done:

    sess_free(&s);
    return rc;
}


/*
 * A ClientHello made by OpenSSL on memory BIOs: the first datagram it
 * writes.  The SSL object stays alive to continue the handshake.
 */

static int
raw_client_hello(SSL **sslp, BIO **rbio, BIO **wbio, unsigned char *buf,
    size_t size)
{
    SSL  *ssl;
    int   n;

    ssl = SSL_new(ctx);
    *rbio = BIO_new(BIO_s_mem());
    *wbio = BIO_new(BIO_s_mem());

    if (ssl == NULL || *rbio == NULL || *wbio == NULL) {
        ERR_print_errors_fp(stderr);
        return -1;
    }

    BIO_set_mem_eof_return(*rbio, -1);
    SSL_set_bio(ssl, *rbio, *wbio);
    SSL_set_mtu(ssl, cf.mtu);

    if (cf.server_name) {
        SSL_set_tlsext_host_name(ssl, cf.server_name);
    }

    *sslp = ssl;

    ERR_clear_error();

    if (SSL_connect(ssl) != -1
        || SSL_get_error(ssl, -1) != SSL_ERROR_WANT_READ)
    {
        ERR_print_errors_fp(stderr);
        return -1;
    }

    n = BIO_read(*wbio, buf, (int) size);
    return n > 0 ? n : -1;
}


/* one datagram until the deadline: its length, -1 on timeout or error */

static int
raw_recv(int fd, unsigned char *buf, size_t size, int64_t deadline)
{
    int            rc;
    ssize_t        n;
    int64_t        left;
    struct pollfd  pfd;

    for ( ;; ) {
        left = deadline - now_ms();
        if (left <= 0) {
            return -1;
        }

        pfd.fd = fd;
        pfd.events = POLLIN;
        pfd.revents = 0;

        rc = poll(&pfd, 1, (int) left);
        if (rc == 0) {
            return -1;
        }

        if (rc == -1) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }

        n = recv(fd, buf, size, 0);
        if (n >= 0) {
            return (int) n;
        }

        if (errno == EAGAIN || errno == EINTR) {
            continue;
        }

        /* ECONNREFUSED and the like: nothing is listening */

        dbg(NULL, "recv: %s", strerror(errno));
        return -1;
    }
}


static int
is_hvr(const unsigned char *p, size_t len, size_t *cookie_len)
{
    /* record: type 22; handshake: type 3; body: version(2), cookie len */

    if (len < REC_HDR + HS_HDR + 3
        || p[0] != SSL3_RT_HANDSHAKE
        || p[REC_HDR] != DTLS1_MT_HELLO_VERIFY_REQUEST)
    {
        return 0;
    }

    *cookie_len = p[REC_HDR + HS_HDR + 2];
    return 1;
}


/*
 * A full session of the multi modes: handshake, echoes checked against
 * what was sent, close_notify.  Returns 0 on success.
 */

static int
run_session(int id, int echoes, SSL_SESSION *resume, SSL_SESSION **save,
    int *reused)
{
    int     i, rc;
    char    data[4096];
    sess_t  s;

    if (sess_open(&s, id, resume) != 0) {
        return -1;
    }

    s.quiet = 1;
    rc = -1;

    if (cf.mode == MODE_PARALLEL) {
        pthread_barrier_wait(&barrier);
        s.deadline = now_ms() + cf.timeout;
    }

    if (sess_handshake(&s) != 0) {
        s.quiet = 0;
        out(&s, "session %d failed: %s", id, s.last);
        goto done;
    }

    if (reused) {
        *reused = SSL_session_reused(s.ssl);
    }

    if (save) {
        *save = SSL_get1_session(s.ssl);
    }

    for (i = 1; i <= echoes; i++) {
        snprintf(data, sizeof(data), "%s-%d-%d", cf.payload, id, i);

        if (sess_echo(&s, data, 1) != 0) {
            s.quiet = 0;
            out(&s, "session %d failed: %s", id, s.last);
            goto done;
        }
    }

    sess_shutdown(&s, 0);
    rc = 0;

done:

    sess_free(&s);
    return rc;
}


static void *
worker(void *arg)
{
    worker_t  *w = arg;

    w->ok = run_session(w->id, (int) cf.n, NULL, NULL, NULL) == 0;
    return NULL;
}


static int
mode_multi(void)
{
    long             i, ok, failed, reused_n, started;
    int              reused;
    worker_t        *w;
    SSL_SESSION     *first;
    pthread_attr_t   attr;

    ok = 0;
    failed = 0;
    reused_n = 0;

    if (cf.mode == MODE_SEQUENTIAL) {
        first = NULL;

        for (i = 1; i <= cf.n; i++) {
            reused = 0;

            if (run_session((int) i, 1, cf.resume ? first : NULL,
                            cf.resume && first == NULL ? &first : NULL,
                            &reused)
                == 0)
            {
                ok++;
                reused_n += reused ? 1 : 0;

            } else {
                failed++;
            }
        }

        if (first) {
            SSL_SESSION_free(first);
        }

        if (cf.resume) {
            out(NULL, "summary ok=%ld failed=%ld reused=%ld",
                ok, failed, reused_n);
        } else {
            out(NULL, "summary ok=%ld failed=%ld", ok, failed);
        }

        return failed == 0 && ok > 0 ? 0 : 1;
    }

    /* parallel: all sessions start their handshakes together */

    w = calloc(cf.parallel, sizeof(worker_t));
    if (w == NULL) {
        return 1;
    }

    pthread_barrier_init(&barrier, NULL, (unsigned) cf.parallel);
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 1024 * 1024);

    started = 0;

    for (i = 0; i < cf.parallel; i++) {
        w[i].id = (int) i + 1;

        if (pthread_create(&w[i].tid, &attr, worker, &w[i]) != 0) {
            fprintf(stderr, "dtls_client: cannot start thread %ld\n", i + 1);
            break;
        }

        started++;
    }

    if (started != cf.parallel) {
        /* the barrier would never open: a bounded exit instead */
        fflush(stdout);
        _exit(1);
    }

    for (i = 0; i < cf.parallel; i++) {
        pthread_join(w[i].tid, NULL);

        if (w[i].ok) {
            ok++;
        } else {
            failed++;
        }
    }

    pthread_attr_destroy(&attr);
    pthread_barrier_destroy(&barrier);
    free(w);

    out(NULL, "summary ok=%ld failed=%ld", ok, failed);

    return failed == 0 ? 0 : 1;
}


/* lines mode */


/*
 * One session on one socket, driven by commands: each answered by the
 * last event of the session (its events are quiet) or by its own line.
 */

static int
mode_lines(void)
{
    int      rc, failed;
    char     line[4096], *cmd, *arg;
    sess_t   s;

    if (sess_open(&s, 0, NULL) != 0) {
        return 1;
    }

    s.quiet = 1;
    failed = 0;

    while (fgets(line, sizeof(line), stdin) != NULL) {
        line[strcspn(line, "\r\n")] = '\0';

        cmd = line;
        arg = strchr(line, ' ');

        if (arg) {
            *arg++ = '\0';

        } else {
            arg = line + strlen(line);
        }

        s.last[0] = '\0';
        s.deadline = now_ms() + cf.timeout;

        if (strcmp(cmd, "handshake") == 0) {
            rc = sess_handshake(&s);

        } else if (strcmp(cmd, "send") == 0) {
            rc = sess_echo(&s, arg, 0);

        } else if (strcmp(cmd, "new-session") == 0) {
            rc = lines_new_session(&s, arg);

            if (rc != 0) {
                printf("new session failed\n");
                return 1;
            }

        } else if (strcmp(cmd, "replay") == 0) {
            rc = lines_replay(&s);

        } else if (strcmp(cmd, "hello") == 0 || strcmp(cmd, "cookie") == 0) {
            rc = lines_hello(&s, cmd[0] == 'c');

        } else if (strcmp(cmd, "wait") == 0) {
            lines_wait(&s, strtol(arg, NULL, 10));
            rc = 0;

        } else if (strcmp(cmd, "close") == 0) {
            sess_shutdown(&s, 1);
            rc = 0;

        } else {
            out(&s, "unknown command \"%s\"", cmd);
            rc = -1;
        }

        printf("%s\n", s.last);
        fflush(stdout);

        failed |= (rc != 0);
    }

    SSL_free(hello_ssl);
    sess_free(&s);

    return failed;
}


static int
lines_new_session(sess_t *s, char *args)
{
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
    s->alert[0] = '\0';

    if (sess_ssl_new(s, prev) != 0) {
        SSL_SESSION_free(prev);
        return -1;
    }

    SSL_SESSION_free(prev);
    out(s, "new session");

    return 0;
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
 * session: a ClientHello without a cookie, then with the cookie of the
 * HelloVerifyRequest that came back
 */

static int
lines_hello(sess_t *s, int cookie)
{
    int            n, len;
    size_t         cookie_len;
    unsigned char  hello[BUF_SIZE];

    if (!cookie) {
        SSL_free(hello_ssl);
        len = raw_client_hello(&hello_ssl, &hello_rbio, &hello_wbio, hello,
                               sizeof(hello));

    } else if (hello_ssl == NULL || hvr_len <= 0) {
        out(s, "cookie failed: no HelloVerifyRequest");
        return -1;

    } else {
        BIO_write(hello_rbio, hvr, hvr_len);

        ERR_clear_error();

        len = (SSL_connect(hello_ssl) == -1
               && SSL_get_error(hello_ssl, -1) == SSL_ERROR_WANT_READ)
              ? BIO_read(hello_wbio, hello, sizeof(hello)) : -1;
    }

    if (len <= 0 || send(s->fd, hello, len, 0) != len) {
        out(s, "%s failed: cannot send a ClientHello",
            cookie ? "cookie" : "hello");
        return -1;
    }

    n = raw_recv(s->fd, hvr, sizeof(hvr), s->deadline);
    hvr_len = 0;

    if (n < 0) {
        out(s, "reply none");
        return -1;
    }

    if (is_hvr(hvr, n, &cookie_len)) {
        hvr_len = n;
        out(s, "hvr received len=%d cookie_len=%zu request_len=%d",
            n, cookie_len, len);
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
 * for the live session.  A datagram for it ends the reading.
 */

static void
lines_wait(sess_t *s, long ms)
{
    int            n;
    char           seen[256];
    size_t         len;
    int64_t        until, left;
    struct pollfd  pfd;
    unsigned char  buf[BUF_SIZE];

    until = now_ms() + ms;
    len = 0;
    seen[0] = '\0';

    while ((left = until - now_ms()) > 0) {
        pfd.fd = s->fd;
        pfd.events = POLLIN;

        if (poll(&pfd, 1, (int) left) <= 0) {
            continue;
        }

        n = recv(s->fd, buf, sizeof(buf), MSG_PEEK | MSG_DONTWAIT);

        if (n < REC_HDR || buf[3] != 0 || buf[4] != 0) {
            (void) poll(NULL, 0, (int) left);
            break;
        }

        n = recv(s->fd, buf, sizeof(buf), MSG_DONTWAIT);

        if (len + 32 < sizeof(seen)) {
            len += snprintf(seen + len, sizeof(seen) - len, " len=%d type=%d",
                            n, n > REC_HDR ? buf[REC_HDR] : -1);
        }
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


