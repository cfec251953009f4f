/*
 * dtls_client: a DTLS 1.2 (PSK and certificate) test client for the
 * ngx_dtls tests.
 *
 *   dtls_client -c HOST:PORT [-i IDENTITY] [-k HEXKEY] [-C CIPHERS]
 *               [-a CERTFILE] [-K KEYFILE] [-A CAFILE] [-S SERVERNAME]
 *               [-M MTU] [-m MODE] [-n N] [-P N] [-s STRING] [-t MS]
 *               [-R] [-v]
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
 *   nocookie    send a real ClientHello raw, report whether a
 *               HelloVerifyRequest came back
 *   stall       cookie exchange, second ClientHello, receive the server's
 *               flight, then stop
 *   garbage     -n random datagrams and one empty datagram, expect silence
 *   sequential  -n sessions one after another (handshake, echo, close)
 *   parallel    -P sessions at once, each handshake, -n echoes, close
 *   rehandshake on one socket (one source port throughout): handshake,
 *               -n echoes, then, without close_notify (a device that
 *               restarted and kept its port), a new SSL object on the same
 *               socket: a new full handshake, -n echoes, close_notify;
 *               the second session's lines start with "second ", and
 *               "second handshake took MS ms" follows its handshake
 *   replay      handshake and one echo ("first echo ok n=1") while the
 *               datagrams written are recorded; then the ClientHello that
 *               carried the cookie is sent again, raw, from the same
 *               socket ("replayed clienthello len=N"), 500 ms later -n
 *               echoes on the live session, close_notify
 *   replay-new  as replay, but a new ClientHello without a cookie is sent
 *               instead ("sent new clienthello len=N") and the reply read
 *               ("hvr received len=N cookie_len=N request_len=N",
 *               "reply len=N" or "reply none"), then -n echoes on the
 *               live session
 *
 *   renew-stall handshake and one echo ("first echo ok n=1"); then from
 *               the same socket a new ClientHello, the cookie exchange
 *               and the server's flight ("server flight received len=N"),
 *               and nothing more of that handshake; -n echoes on the live
 *               session ("echo ok n=N"); with -W, a wait of MS showing
 *               the epoch-0 datagrams that come ("epoch-0 datagram len=N
 *               type=T"), then -n more echoes ("late echo ok n=N")
 *
 * With -I, the second session of rehandshake mode uses that PSK identity
 * (and the same key); with -R it resumes the first session.
 *
 * With -X the first record after a handshake goes out in the datagram of
 * the handshake's last flight: after a resumed (abbreviated) handshake,
 * ChangeCipherSpec, Finished and data in one datagram, as clients send
 * them.  Every other datagram is as without -X.
 *
 * In rehandshake and replay modes replies must end with what was sent,
 * and epoch-0 datagrams arriving while the client waits after a replay
 * are read raw and shown as "reply after replay len=N type=T".
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


#define MTU              1200
#define BUF_SIZE         65536
#define REC_SIZE         16384
#define CLOSE_WAIT_MS    1000

/* DTLS record and handshake header sizes, RFC 6347 */
#define REC_HDR          13
#define HS_HDR           12


typedef enum {
    MODE_ECHO = 0,
    MODE_SEND_ONLY,
    MODE_HANDSHAKE,
    MODE_NOCOOKIE,
    MODE_STALL,
    MODE_GARBAGE,
    MODE_SEQUENTIAL,
    MODE_PARALLEL,
    MODE_REHANDSHAKE,
    MODE_REPLAY,
    MODE_REPLAY_NEW,
    MODE_RENEW_STALL
} dtls_mode_e;


typedef struct {
    struct sockaddr_storage  peer;
    socklen_t                peer_len;
    const char              *peer_str;
    const char              *identity2;
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
static pthread_mutex_t    out_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_barrier_t  barrier;


static void usage(void);
static int parse_args(int argc, char **argv);
static int64_t now_ms(void);
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
static int mode_nocookie(void);
static int mode_stall(void);
static int mode_garbage(void);
static int mode_multi(void);
static int mode_rehandshake(void);
static int mode_replay(void);
static int mode_renew_stall(void);
static int sess_echoes(sess_t *s, const char *tag, long n);
static long record_cb(BIO *b, int oper, const char *argp, size_t len,
    int argi, long argl, int ret, size_t *processed);
static int hello_cookie_len(const unsigned char *p, size_t len);
static void wait_epoch0(sess_t *s, int64_t until, const char *what);
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
    case MODE_NOCOOKIE:
        rc = mode_nocookie();
        break;
    case MODE_STALL:
        rc = mode_stall();
        break;
    case MODE_GARBAGE:
        rc = mode_garbage();
        break;
    case MODE_SEQUENTIAL:
    case MODE_PARALLEL:
        rc = mode_multi();
        break;
    case MODE_REHANDSHAKE:
        rc = mode_rehandshake();
        break;
    case MODE_REPLAY:
    case MODE_REPLAY_NEW:
        rc = mode_replay();
        break;
    case MODE_RENEW_STALL:
        rc = mode_renew_stall();
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
        "  -m MODE       echo, send-only, handshake, nocookie, stall,\n"
        "                garbage, sequential, parallel, rehandshake,\n"
        "                replay, replay-new, renew-stall (default echo)\n"
        "  -n N          datagrams (echo, parallel, garbage; rehandshake:\n"
        "                each session; replay: after the replay) or\n"
        "                sessions (sequential), default 1\n"
        "  -P N          parallel sessions (default 10)\n"
        "  -s STRING     payload (default \"hello\"); in garbage mode a\n"
        "                number is the datagram length\n"
        "  -t MS         timeout per session (default 5000)\n"
        "  -R            sequential, rehandshake: resume the first session\n"
        "  -X            the first record in the handshake's last datagram\n"
        "  -I IDENTITY   rehandshake: the second session's PSK identity\n"
        "  -W MS         renew-stall: the wait before the late echoes;\n"
        "                echo: a pause before each datagram but the first\n"
        "  -v            trace to stderr\n");
}


static int
parse_args(int argc, char **argv)
{
    int    opt;
    char  *end;

    tool_psk.identity = "client1";
    cf.ciphers = NULL;
    cf.mtu = MTU;
    cf.mode = MODE_ECHO;
    cf.n = 1;
    cf.parallel = 10;
    cf.payload = "hello";
    cf.timeout = 5000;

    while ((opt = getopt(argc, argv, "c:i:I:k:C:a:K:A:S:M:m:n:P:s:t:W:RXvh"))
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
        case 'i':
            tool_psk.identity = optarg;
            break;
        case 'I':
            cf.identity2 = optarg;
            break;
        case 'W':
            cf.wait = strtol(optarg, &end, 10);
            if (*end != '\0' || cf.wait < 0) {
                return -1;
            }
            break;
        case 'k':
            if (parse_hex(optarg, tool_psk.key, sizeof(tool_psk.key),
                          &tool_psk.key_len)
                != 0)
            {
                fprintf(stderr, "dtls_client: invalid hex key\n");
                return -1;
            }
            break;
        case 'C':
            cf.ciphers = optarg;
            break;
        case 'a':
            cf.cert = optarg;
            break;
        case 'K':
            cf.cert_key = optarg;
            break;
        case 'A':
            cf.ca = optarg;
            break;
        case 'S':
            cf.server_name = optarg;
            break;
        case 'M':
            cf.mtu = strtol(optarg, &end, 10);
            if (*end != '\0' || cf.mtu < 256 || cf.mtu > 65507) {
                fprintf(stderr, "dtls_client: -M must be 256 to 65507\n");
                return -1;
            }
            break;
        case 'm':
            if (strcmp(optarg, "echo") == 0) {
                cf.mode = MODE_ECHO;
            } else if (strcmp(optarg, "send-only") == 0) {
                cf.mode = MODE_SEND_ONLY;
            } else if (strcmp(optarg, "handshake") == 0) {
                cf.mode = MODE_HANDSHAKE;
            } else if (strcmp(optarg, "nocookie") == 0) {
                cf.mode = MODE_NOCOOKIE;
            } else if (strcmp(optarg, "stall") == 0) {
                cf.mode = MODE_STALL;
            } else if (strcmp(optarg, "garbage") == 0) {
                cf.mode = MODE_GARBAGE;
            } else if (strcmp(optarg, "sequential") == 0) {
                cf.mode = MODE_SEQUENTIAL;
            } else if (strcmp(optarg, "parallel") == 0) {
                cf.mode = MODE_PARALLEL;
            } else if (strcmp(optarg, "rehandshake") == 0) {
                cf.mode = MODE_REHANDSHAKE;
            } else if (strcmp(optarg, "replay") == 0) {
                cf.mode = MODE_REPLAY;
            } else if (strcmp(optarg, "replay-new") == 0) {
                cf.mode = MODE_REPLAY_NEW;
            } else if (strcmp(optarg, "renew-stall") == 0) {
                cf.mode = MODE_RENEW_STALL;
            } else {
                fprintf(stderr, "dtls_client: unknown mode \"%s\"\n", optarg);
                return -1;
            }
            break;
        case 'n':
            cf.n = strtol(optarg, &end, 10);
            if (*end != '\0' || cf.n < 0 || cf.n > 1000000) {
                return -1;
            }
            break;
        case 'P':
            cf.parallel = strtol(optarg, &end, 10);
            if (*end != '\0' || cf.parallel < 1 || cf.parallel > 10000) {
                return -1;
            }
            break;
        case 's':
            cf.payload = optarg;
            break;
        case 't':
            cf.timeout = strtol(optarg, &end, 10);
            if (*end != '\0' || cf.timeout < 1) {
                return -1;
            }
            break;
        case 'R':
            cf.resume = 1;
            break;
        case 'X':
            cf.coalesce = 1;
            break;
        case 'v':
            cf.verbose = 1;
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


static int64_t
now_ms(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


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

    c = tool_ctx_new("dtls_client", 0, cf.ciphers);
    if (c == NULL) {
        return NULL;
    }

    if (cf.cert) {
        if (SSL_CTX_use_certificate_chain_file(c, cf.cert) != 1
            || SSL_CTX_use_PrivateKey_file(c, cf.cert_key ? cf.cert_key
                                                          : cf.cert,
                                           SSL_FILETYPE_PEM) != 1
            || SSL_CTX_check_private_key(c) != 1)
        {
            fprintf(stderr, "dtls_client: cannot use certificate \"%s\" "
                    "with key \"%s\"\n", cf.cert,
                    cf.cert_key ? cf.cert_key : cf.cert);
            ERR_print_errors_fp(stderr);
            SSL_CTX_free(c);
            return NULL;
        }
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

    if (cf.coalesce) {
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

    print_server_cert(s);

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


static int
mode_nocookie(void)
{
    int            fd, n, len;
    SSL           *ssl;
    BIO           *rbio, *wbio;
    size_t         cookie_len;
    unsigned char  hello[BUF_SIZE], buf[BUF_SIZE];

    ssl = NULL;

    len = raw_client_hello(&ssl, &rbio, &wbio, hello, sizeof(hello));
    if (len < 0) {
        SSL_free(ssl);
        return 1;
    }

    fd = udp_socket();
    if (fd == -1) {
        SSL_free(ssl);
        return 1;
    }

    if (send(fd, hello, len, 0) != len) {
        perror("dtls_client: send");
    }

    dbg(NULL, "sent ClientHello without cookie, %d bytes", len);

    n = raw_recv(fd, buf, sizeof(buf), now_ms() + cf.timeout);

    close(fd);
    SSL_free(ssl);

    if (n < 0) {
        out(NULL, "reply none");
        return 1;
    }

    if (is_hvr(buf, n, &cookie_len)) {
        out(NULL, "hvr received len=%d cookie_len=%zu request_len=%d",
            n, cookie_len, len);
        return 0;
    }

    out(NULL, "reply len=%d", n);
    return 1;
}


static int
mode_stall(void)
{
    int            fd, n, len, rc;
    SSL           *ssl;
    BIO           *rbio, *wbio;
    size_t         cookie_len;
    int64_t        deadline;
    unsigned char  hello[BUF_SIZE], buf[BUF_SIZE];

    ssl = NULL;
    rc = 1;
    deadline = now_ms() + cf.timeout;

    len = raw_client_hello(&ssl, &rbio, &wbio, hello, sizeof(hello));
    if (len < 0) {
        SSL_free(ssl);
        return 1;
    }

    fd = udp_socket();
    if (fd == -1) {
        SSL_free(ssl);
        return 1;
    }

    if (send(fd, hello, len, 0) != len) {
        perror("dtls_client: send");
    }

    n = raw_recv(fd, buf, sizeof(buf), deadline);
    if (n < 0) {
        out(NULL, "handshake failed: timeout");
        goto done;
    }

    if (is_hvr(buf, n, &cookie_len)) {
        out(NULL, "hvr received len=%d cookie_len=%zu request_len=%d",
            n, cookie_len, len);

        /* the second ClientHello, with the cookie */

        BIO_write(rbio, buf, n);

        ERR_clear_error();
        if (SSL_connect(ssl) != -1
            || SSL_get_error(ssl, -1) != SSL_ERROR_WANT_READ)
        {
            out(NULL, "handshake failed: %s",
                sess_reason(NULL, -1, SSL_ERROR_SSL));
            goto done;
        }

        len = BIO_read(wbio, hello, sizeof(hello));
        if (len <= 0 || send(fd, hello, len, 0) != len) {
            out(NULL, "handshake failed: cannot send ClientHello");
            goto done;
        }

        dbg(NULL, "sent ClientHello with cookie, %d bytes", len);

        n = raw_recv(fd, buf, sizeof(buf), deadline);
        if (n < 0) {
            out(NULL, "handshake failed: timeout");
            goto done;
        }
    }

    if (buf[0] == SSL3_RT_HANDSHAKE && n > REC_HDR
        && buf[REC_HDR] == SSL3_MT_SERVER_HELLO)
    {
        out(NULL, "server flight received len=%d", n);
        rc = 0;

    } else {
        out(NULL, "reply len=%d", n);
    }

done:

    close(fd);
    SSL_free(ssl);
    return rc;
}


static int
mode_garbage(void)
{
    int            fd, n, fixed;
    long           i, len;
    char          *end;
    unsigned char  buf[BUF_SIZE];

    fixed = 0;
    len = strtol(cf.payload, &end, 10);
    if (*end == '\0' && len >= 0 && len <= BUF_SIZE) {
        fixed = 1;
    }

    fd = udp_socket();
    if (fd == -1) {
        return 1;
    }

    for (i = 0; i < cf.n; i++) {
        if (!fixed) {
            RAND_bytes(buf, 1);
            len = 1 + buf[0] % 200;
        }

        RAND_bytes(buf, (int) len);

        if (send(fd, buf, len, 0) != len) {
            dbg(NULL, "send: %s", strerror(errno));
        }
    }

    if (send(fd, buf, 0, 0) != 0) {
        dbg(NULL, "send: %s", strerror(errno));
    }

    dbg(NULL, "sent %ld garbage datagrams and an empty one", cf.n);

    n = raw_recv(fd, buf, sizeof(buf), now_ms() + cf.timeout);

    close(fd);

    if (n < 0) {
        out(NULL, "reply none");
        return 0;
    }

    out(NULL, "reply len=%d", n);
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


/* rehandshake and replay modes */


/* the datagrams written, the first ClientHello with a cookie kept */

static unsigned char  rec_hello[BUF_SIZE];
static int            rec_hello_len;
static int            rec_count;


/* -n echoes, "STRING-TAGi", each reply checked */

static int
sess_echoes(sess_t *s, const char *tag, long n)
{
    long  i;
    char  data[4096];

    for (i = 1; i <= n; i++) {
        snprintf(data, sizeof(data), "%s-%s%ld", cf.payload, tag, i);

        if (sess_echo(s, data, 1) != 0) {
            return -1;
        }
    }

    return 0;
}


/*
 * A client that restarted and kept its port: the first session is
 * abandoned without close_notify, a new SSL object on the same socket
 * makes a new full handshake.
 */

static int
mode_rehandshake(void)
{
    int           rc, hs;
    int64_t       start;
    sess_t        s;
    SSL_SESSION  *first;

    if (sess_open(&s, 0, NULL) != 0) {
        return 1;
    }

    rc = 1;

    if (sess_handshake(&s) != 0 || sess_echoes(&s, "", cf.n) != 0) {
        goto done;
    }

    out(&s, "echo ok n=%ld", cf.n);

    /*
     * no close_notify: SSL_free() sends nothing, the socket stays; marked
     * as shut down, so that OpenSSL keeps the session resumable
     */

    first = cf.resume ? SSL_get1_session(s.ssl) : NULL;

    SSL_set_shutdown(s.ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    SSL_free(s.ssl);
    s.ssl = NULL;
    s.wmem = NULL;

    s.prefix = "second ";
    s.close_received = 0;
    s.alert[0] = '\0';
    s.deadline = now_ms() + cf.timeout;

    if (cf.identity2) {
        tool_psk.identity = cf.identity2;
    }

    rc = sess_ssl_new(&s, first);

    SSL_SESSION_free(first);

    if (rc != 0) {
        return 1;
    }

    rc = 1;
    start = now_ms();
    hs = sess_handshake(&s);
    out(&s, "handshake took %lld ms", (long long) (now_ms() - start));

    if (hs != 0 || sess_echoes(&s, "s2-", cf.n) != 0) {
        goto done;
    }

    out(&s, "echo ok n=%ld", cf.n);
    rc = 0;

    sess_shutdown(&s, 1);

done:

    sess_free(&s);
    return rc;
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


static long
record_cb(BIO *b, int oper, const char *argp, size_t len, int argi,
    long argl, int ret, size_t *processed)
{
    size_t  n;

    (void) b;
    (void) len;
    (void) argi;
    (void) argl;

    if (oper != (BIO_CB_WRITE | BIO_CB_RETURN) || ret <= 0
        || processed == NULL || argp == NULL)
    {
        return ret;
    }

    n = *processed;
    rec_count++;

    dbg(NULL, "datagram %d written, %zu bytes", rec_count, n);

    if (rec_hello_len == 0 && n <= sizeof(rec_hello)
        && hello_cookie_len((const unsigned char *) argp, n) > 0)
    {
        memcpy(rec_hello, argp, n);
        rec_hello_len = (int) n;
        dbg(NULL, "datagram %d is the ClientHello with the cookie",
            rec_count);
    }

    return ret;
}


/*
 * Waits until "until".  Epoch-0 datagrams arriving meanwhile are not for
 * the live session: they are read raw and shown.  Anything else is left
 * to the session.
 */

static void
wait_epoch0(sess_t *s, int64_t until, const char *what)
{
    int            rc;
    ssize_t        n;
    int64_t        left;
    struct pollfd  pfd;
    unsigned char  buf[BUF_SIZE];

    for ( ;; ) {
        left = until - now_ms();
        if (left <= 0) {
            return;
        }

        pfd.fd = s->fd;
        pfd.events = POLLIN;
        pfd.revents = 0;

        rc = poll(&pfd, 1, (int) left);
        if (rc == 0) {
            return;
        }

        if (rc == -1) {
            if (errno == EINTR) {
                continue;
            }
            return;
        }

        n = recv(s->fd, buf, sizeof(buf), MSG_PEEK | MSG_DONTWAIT);

        if (n >= REC_HDR && buf[3] == 0 && buf[4] == 0) {
            n = recv(s->fd, buf, sizeof(buf), MSG_DONTWAIT);
            out(s, "%s len=%zd type=%d", what, n,
                n > REC_HDR ? buf[REC_HDR] : -1);
            continue;
        }

        /* for the session, or an error: wait out the rest */

        left = until - now_ms();
        if (left > 0) {
            poll(NULL, 0, (int) left);
        }

        return;
    }
}


static int
mode_replay(void)
{
    int            rc, n, len;
    SSL           *ssl2;
    BIO           *rbio, *wbio;
    char           data[64];
    size_t         cookie_len;
    sess_t         s;
    unsigned char  hello[BUF_SIZE], buf[BUF_SIZE];

    if (sess_open(&s, 0, NULL) != 0) {
        return 1;
    }

    BIO_set_callback_ex(SSL_get_wbio(s.ssl), record_cb);

    rc = 1;

    if (sess_handshake(&s) != 0) {
        goto done;
    }

    snprintf(data, sizeof(data), "%.40s-0", cf.payload);

    if (sess_echo(&s, data, 1) != 0) {
        goto done;
    }

    out(&s, "first echo ok n=1");

    BIO_set_callback_ex(SSL_get_wbio(s.ssl), NULL);

    if (cf.mode == MODE_REPLAY) {

        if (rec_hello_len == 0) {
            out(&s, "replay failed: no ClientHello with a cookie recorded");
            goto done;
        }

        if (send(s.fd, rec_hello, rec_hello_len, 0) != rec_hello_len) {
            out(&s, "replay failed: send: %s", strerror(errno));
            goto done;
        }

        out(&s, "replayed clienthello len=%d", rec_hello_len);

        wait_epoch0(&s, now_ms() + 500, "reply after replay");

    } else {
        ssl2 = NULL;

        len = raw_client_hello(&ssl2, &rbio, &wbio, hello, sizeof(hello));
        SSL_free(ssl2);

        if (len < 0) {
            out(&s, "replay failed: cannot make a ClientHello");
            goto done;
        }

        if (send(s.fd, hello, len, 0) != len) {
            out(&s, "replay failed: send: %s", strerror(errno));
            goto done;
        }

        out(&s, "sent new clienthello len=%d", len);

        n = raw_recv(s.fd, buf, sizeof(buf), now_ms() + 1000);

        if (n < 0) {
            out(&s, "reply none");

        } else if (is_hvr(buf, n, &cookie_len)) {
            out(&s, "hvr received len=%d cookie_len=%zu request_len=%d",
                n, cookie_len, len);

        } else {
            out(&s, "reply len=%d", n);
        }
    }

    if (sess_echoes(&s, "", cf.n) != 0) {
        goto done;
    }

    out(&s, "echo ok n=%ld", cf.n);
    rc = 0;

    sess_shutdown(&s, 1);

done:

    sess_free(&s);
    return rc;
}


/*
 * A new handshake from the socket of a live session, stopped after the
 * server's flight: the live session must go on, during it and after the
 * server gave it up.
 */

static int
mode_renew_stall(void)
{
    int            rc, n, len;
    SSL           *ssl2;
    BIO           *rbio, *wbio;
    char           data[64];
    size_t         cookie_len;
    int64_t        deadline;
    sess_t         s;
    unsigned char  hello[BUF_SIZE], buf[BUF_SIZE];

    if (sess_open(&s, 0, NULL) != 0) {
        return 1;
    }

    rc = 1;
    ssl2 = NULL;

    if (sess_handshake(&s) != 0) {
        goto done;
    }

    snprintf(data, sizeof(data), "%.40s-0", cf.payload);

    if (sess_echo(&s, data, 1) != 0) {
        goto done;
    }

    out(&s, "first echo ok n=1");

    /* the new handshake, by hand: ClientHello, cookie, server flight */

    deadline = now_ms() + cf.timeout;

    len = raw_client_hello(&ssl2, &rbio, &wbio, hello, sizeof(hello));

    if (len < 0 || send(s.fd, hello, len, 0) != len) {
        out(&s, "new handshake failed: cannot send a ClientHello");
        goto done;
    }

    n = raw_recv(s.fd, buf, sizeof(buf), deadline);

    if (n < 0 || !is_hvr(buf, n, &cookie_len)) {
        out(&s, "new handshake failed: no HelloVerifyRequest");
        goto done;
    }

    BIO_write(rbio, buf, n);

    ERR_clear_error();

    if (SSL_connect(ssl2) != -1
        || SSL_get_error(ssl2, -1) != SSL_ERROR_WANT_READ)
    {
        out(&s, "new handshake failed: no second ClientHello");
        goto done;
    }

    len = BIO_read(wbio, hello, sizeof(hello));

    if (len <= 0 || send(s.fd, hello, len, 0) != len) {
        out(&s, "new handshake failed: cannot send the second ClientHello");
        goto done;
    }

    n = raw_recv(s.fd, buf, sizeof(buf), deadline);

    if (n <= REC_HDR || buf[0] != SSL3_RT_HANDSHAKE
        || buf[3] != 0 || buf[4] != 0
        || buf[REC_HDR] != SSL3_MT_SERVER_HELLO)
    {
        out(&s, "new handshake failed: no server flight");
        goto done;
    }

    out(&s, "server flight received len=%d", n);

    /* the live session, while the server waits for the rest */

    s.deadline = now_ms() + cf.timeout;

    if (sess_echoes(&s, "", cf.n) != 0) {
        goto done;
    }

    out(&s, "echo ok n=%ld", cf.n);

    if (cf.wait > 0) {
        wait_epoch0(&s, now_ms() + cf.wait, "epoch-0 datagram");

        s.deadline = now_ms() + cf.timeout;

        if (sess_echoes(&s, "late-", cf.n) != 0) {
            goto done;
        }

        out(&s, "late echo ok n=%ld", cf.n);
    }

    rc = 0;

    sess_shutdown(&s, 1);

done:

    SSL_free(ssl2);
    sess_free(&s);
    return rc;
}
