/*
 * dtls_record_diff: the module's own DTLS 1.2 record layer
 * (src/ngx_stream_dtls_record.c) against OpenSSL's DTLS endpoints, suite
 * by suite, in one process over in-memory datagram queues.
 *
 *   dtls_record_diff [-v] [-s SUITE]
 *
 * For each suite: an OpenSSL client and server complete a handshake
 * (PSK, or a throwaway certificate made here), the module derives the
 * server's record keys from the server's SSL, and takes its place:
 *
 *   keys     equal to a key block computed here with HMAC (RFC 5246 5's
 *            P_hash, not the TLS1-PRF KDF the module uses); the client
 *            SSL's derivation mirrors the server's
 *   c->m     the client's SSL_write, captured from the wire, opened by
 *            the module: the same bytes; replayed, and with one bit
 *            flipped in the header and in the body, refused, the state
 *            untouched
 *   s=m      the server SSL's own record and the module's for the same
 *            sequence number and payload: byte for byte where OpenSSL
 *            uses epoch + sequence as the nonce (CCM, ChaCha20), else
 *            (GCM: a counter from a random start) the module opens it and
 *            an independent EVP computation with its nonce reproduces it
 *   m->c     the module's records fed to the client's SSL_read: the same
 *            bytes (an empty record: nothing, and the next one still
 *            read); each one equal to the independent EVP computation;
 *            replayed, bit-flipped and other-epoch records dropped
 *   alerts   the client's close_notify opened, the module's ends the
 *            client's SSL_read
 *   m<->m    what OpenSSL cannot be made to do: sequence numbers near
 *            2^48 (sealing refused at 2^48 - 1), the replay window's
 *            edges, epochs 1, 2 and 65535, in-place seal and open,
 *            malformed, oversized and truncated records, each against
 *            the independent computation
 *
 * Payloads are 0 (module to client only: OpenSSL sends no empty record)
 * to 1200 bytes (the module's default MTU), every size, and 1500, 4096,
 * 16383, 16384.  One line per suite, then "N passed, M failed"; exit 1
 * on any failure, 2 on a usage error.
 */

#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_stream_dtls_record.h"
#include "dgram.h"
#include "dtls.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>


#define MTU            1200
#define BUF_SIZE       (16384 + 64)
#define IDENTITY       "client1"
#define KEY            "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
#define ROUNDS         32
#define SHOW_FAILURES  10

#define SEQ_MAX        0xffffffffffffULL

#define AUTH_PSK       0
#define AUTH_ECDSA     1
#define AUTH_RSA       2


typedef struct {
    const char              *name;
    int                      auth;
    const char              *evp;           /* the reference's cipher */
    size_t                   key_len;
    size_t                   iv_len;
    size_t                   explicit_len;
    size_t                   tag_len;
    int                      extra;         /* beyond the module's list */
} suite_t;


/* what one side has written: its epoch-1 sequence numbers */

typedef struct {
    dgram_end_t              dgram;     /* first: the BIO's */
    uint64_t                 seqs[16];
    int                      nseqs;
    uint64_t                 next;
} end_t;


typedef struct {
    int                      type;
    unsigned                 epoch;
    uint64_t                 seq;
    size_t                   total;
    const unsigned char     *fragment;
    size_t                   len;
} rec_t;


typedef struct {
    const suite_t           *suite;
    SSL_CTX                 *server_ctx;
    SSL_CTX                 *client_ctx;
    SSL                     *server;
    SSL                     *client;
    queue_t                  to_server;
    queue_t                  to_client;
    end_t                    server_end;
    end_t                    client_end;
    ngx_stream_dtls_record_t rd;
    ngx_stream_dtls_record_t wr;
    unsigned long            passed;
    unsigned long            failed;
    unsigned long            shown;
    int                      gcm_seq_nonce;  /* -1 unknown, 0, 1 */
} run_t;


static const suite_t  suites[] = {
    { "PSK-AES128-CCM8", AUTH_PSK, "AES-128-CCM", 16, 4, 8, 8, 0 },
    { "PSK-AES128-CCM", AUTH_PSK, "AES-128-CCM", 16, 4, 8, 16, 0 },
    { "PSK-AES128-GCM-SHA256", AUTH_PSK, "AES-128-GCM", 16, 4, 8, 16, 0 },
    { "PSK-AES256-GCM-SHA384", AUTH_PSK, "AES-256-GCM", 32, 4, 8, 16, 0 },
    { "PSK-CHACHA20-POLY1305", AUTH_PSK, "ChaCha20-Poly1305",
      32, 12, 0, 16, 0 },
    { "ECDHE-PSK-CHACHA20-POLY1305", AUTH_PSK, "ChaCha20-Poly1305",
      32, 12, 0, 16, 0 },
    { "ECDHE-ECDSA-AES128-CCM8", AUTH_ECDSA, "AES-128-CCM",
      16, 4, 8, 8, 0 },
    { "ECDHE-ECDSA-AES128-GCM-SHA256", AUTH_ECDSA, "AES-128-GCM",
      16, 4, 8, 16, 0 },
    { "ECDHE-ECDSA-AES256-GCM-SHA384", AUTH_ECDSA, "AES-256-GCM",
      32, 4, 8, 16, 0 },
    { "ECDHE-ECDSA-CHACHA20-POLY1305", AUTH_ECDSA, "ChaCha20-Poly1305",
      32, 12, 0, 16, 0 },
    { "ECDHE-ECDSA-AES128-CCM", AUTH_ECDSA, "AES-128-CCM",
      16, 4, 8, 16, 0 },
    { "ECDHE-RSA-AES128-GCM-SHA256", AUTH_RSA, "AES-128-GCM",
      16, 4, 8, 16, 0 },
    { "ECDHE-RSA-AES256-GCM-SHA384", AUTH_RSA, "AES-256-GCM",
      32, 4, 8, 16, 0 },
    { "ECDHE-RSA-CHACHA20-POLY1305", AUTH_RSA, "ChaCha20-Poly1305",
      32, 12, 0, 16, 0 },

    /* AES-256-CCM, which the module's lists do not offer */
    { "PSK-AES256-CCM8", AUTH_PSK, "AES-256-CCM", 32, 4, 8, 8, 1 },
    { "PSK-AES256-CCM", AUTH_PSK, "AES-256-CCM", 32, 4, 8, 16, 1 },
    { NULL, 0, NULL, 0, 0, 0, 0, 0 }
};


static const size_t   large_sizes[] = { 1500, 4096, 16383, 16384 };

static int            verbose;
static EVP_PKEY      *ec_key, *rsa_key;
static X509          *ec_cert, *rsa_cert;
static unsigned long  total_passed, total_failed;


static int check(run_t *r, int ok, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));


static int
check(run_t *r, int ok, const char *fmt, ...)
{
    va_list  ap;

    if (ok) {
        r->passed++;
        return 1;
    }

    r->failed++;

    if (r->shown++ < SHOW_FAILURES || verbose) {
        fprintf(stderr, "FAIL %s: ", r->suite->name);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
    }

    return 0;
}


/* the payload of a given size: deterministic, different per size */

static void
payload(unsigned char *p, size_t len, unsigned salt)
{
    size_t    i;
    uint32_t  x;

    x = 0x9e3779b9u ^ (uint32_t) len ^ (salt << 24);

    for (i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = (unsigned char) x;
    }
}


static uint32_t
rnd(void)
{
    static uint32_t  x = 2463534242u;

    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;

    return x;
}


/* a record header, read here without the module */

static size_t
rec_parse(const unsigned char *p, size_t n, rec_t *rec)
{
    size_t  len;

    if (n < 13) {
        return 0;
    }

    len = (size_t) p[11] << 8 | p[12];

    if (13 + len > n) {
        return 0;
    }

    rec->type = p[0];
    rec->epoch = (unsigned) p[3] << 8 | p[4];
    rec->seq = (uint64_t) p[5] << 40 | (uint64_t) p[6] << 32
               | (uint64_t) p[7] << 24 | (uint64_t) p[8] << 16
               | (uint64_t) p[9] << 8 | p[10];
    rec->fragment = p + 13;
    rec->len = len;
    rec->total = 13 + len;

    return rec->total;
}


/* what a side writes: the sequence numbers it used in epoch 1 */

static void
written(dgram_end_t *d, const unsigned char *buf, size_t len)
{
    size_t    off, n;
    rec_t     rec;
    end_t    *end;

    end = (end_t *) d;

    for (off = 0; off < len; off += n) {
        n = rec_parse(buf + off, len - off, &rec);
        if (n == 0) {
            break;
        }

        if (rec.epoch == 1) {
            if (end->nseqs < 16) {
                end->seqs[end->nseqs++] = rec.seq;
            }

            if (rec.seq + 1 > end->next) {
                end->next = rec.seq + 1;
            }
        }
    }
}


static X509 *
make_cert(EVP_PKEY *key)
{
    X509       *x;
    X509_NAME  *name;

    x = X509_new();
    if (x == NULL) {
        return NULL;
    }

    name = X509_get_subject_name(x);

    if (X509_set_version(x, 2) != 1
        || ASN1_INTEGER_set(X509_get_serialNumber(x), 1) != 1
        || X509_gmtime_adj(X509_getm_notBefore(x), -3600) == NULL
        || X509_gmtime_adj(X509_getm_notAfter(x), 86400) == NULL
        || X509_set_pubkey(x, key) != 1
        || X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                      (unsigned char *) "dtls_record_diff",
                                      -1, -1, 0) != 1
        || X509_set_issuer_name(x, name) != 1
        || X509_sign(x, key, EVP_sha256()) == 0)
    {
        X509_free(x);
        return NULL;
    }

    return x;
}


static int
certs_init(void)
{
    ec_key = EVP_EC_gen("P-256");
    rsa_key = EVP_RSA_gen(2048);

    if (ec_key == NULL || rsa_key == NULL) {
        return 0;
    }

    ec_cert = make_cert(ec_key);
    rsa_cert = make_cert(rsa_key);

    return ec_cert != NULL && rsa_cert != NULL;
}


static SSL_CTX *
make_ctx(const suite_t *s, int server)
{
    SSL_CTX  *c;

    c = tool_ctx_new("dtls_record_diff", server, s->name);
    if (c == NULL) {
        return NULL;
    }

    SSL_CTX_set_options(c, SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_verify(c, SSL_VERIFY_NONE, NULL);

    if (s->auth != AUTH_PSK && server) {
        if (SSL_CTX_use_certificate(c, s->auth == AUTH_RSA ? rsa_cert
                                                            : ec_cert) != 1
            || SSL_CTX_use_PrivateKey(c, s->auth == AUTH_RSA ? rsa_key
                                                              : ec_key) != 1)
        {
            SSL_CTX_free(c);
            return NULL;
        }
    }

    return c;
}


static int
handshake(run_t *r)
{
    int   i, cdone, sdone, rc;
    BIO  *b;

    r->server_end.dgram.in = &r->to_server;
    r->server_end.dgram.out = &r->to_client;
    r->server_end.dgram.written = written;
    r->client_end.dgram.in = &r->to_client;
    r->client_end.dgram.out = &r->to_server;
    r->client_end.dgram.written = written;

    r->server_ctx = make_ctx(r->suite, 1);
    r->client_ctx = make_ctx(r->suite, 0);

    if (r->server_ctx == NULL || r->client_ctx == NULL) {
        return 0;
    }

    r->server = SSL_new(r->server_ctx);
    r->client = SSL_new(r->client_ctx);

    if (r->server == NULL || r->client == NULL) {
        return 0;
    }

    b = dgram_bio_new(&r->server_end.dgram);
    if (b == NULL) {
        return 0;
    }

    SSL_set_bio(r->server, b, b);
    SSL_set_accept_state(r->server);

    b = dgram_bio_new(&r->client_end.dgram);
    if (b == NULL) {
        return 0;
    }

    SSL_set_bio(r->client, b, b);
    SSL_set_connect_state(r->client);

    if (SSL_set_mtu(r->server, MTU) == 0 || SSL_set_mtu(r->client, MTU) == 0)
    {
        return 0;
    }

    cdone = 0;
    sdone = 0;

    for (i = 0; i < ROUNDS && !(cdone && sdone && r->to_server.head == NULL
                                && r->to_client.head == NULL); i++)
    {
        rc = SSL_do_handshake(r->client);
        if (rc == 1) {
            cdone = 1;

        } else if (SSL_get_error(r->client, rc) != SSL_ERROR_WANT_READ) {
            return 0;
        }

        rc = SSL_do_handshake(r->server);
        if (rc == 1) {
            sdone = 1;

        } else if (SSL_get_error(r->server, rc) != SSL_ERROR_WANT_READ) {
            return 0;
        }
    }

    return cdone && sdone && strcmp(SSL_get_cipher_name(r->server),
                                    r->suite->name) == 0;
}


/*
 * RFC 5246 5: P_hash(secret, seed) = HMAC(secret, A(1) + seed) + ...,
 * A(i) = HMAC(secret, A(i - 1)), A(0) = seed; here with EVP_MAC, apart
 * from the TLS1-PRF KDF the module uses
 */

static int
ref_prf(const char *digest, const unsigned char *secret, size_t slen,
    const unsigned char *seed, size_t seed_len, unsigned char *out,
    size_t len)
{
    int            ok;
    size_t         n, mlen, done;
    EVP_MAC       *mac;
    OSSL_PARAM     params[2];
    EVP_MAC_CTX   *m;
    unsigned char  a[EVP_MAX_MD_SIZE], block[EVP_MAX_MD_SIZE];

    mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    m = mac ? EVP_MAC_CTX_new(mac) : NULL;

    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
                                                 (char *) digest, 0);
    params[1] = OSSL_PARAM_construct_end();

    ok = m != NULL
         && EVP_MAC_init(m, secret, slen, params) == 1
         && EVP_MAC_update(m, seed, seed_len) == 1
         && EVP_MAC_final(m, a, &mlen, sizeof(a)) == 1;

    for (done = 0; ok && done < len; done += n) {
        ok = EVP_MAC_init(m, NULL, 0, NULL) == 1
             && EVP_MAC_update(m, a, mlen) == 1
             && EVP_MAC_update(m, seed, seed_len) == 1
             && EVP_MAC_final(m, block, &n, sizeof(block)) == 1
             && EVP_MAC_init(m, NULL, 0, NULL) == 1
             && EVP_MAC_update(m, a, mlen) == 1
             && EVP_MAC_final(m, a, &mlen, sizeof(a)) == 1;

        if (n > len - done) {
            n = len - done;
        }

        memcpy(out + done, block, n);
    }

    EVP_MAC_CTX_free(m);
    EVP_MAC_free(mac);

    return ok;
}


/* the nonce, written out from the RFCs' definitions */

static void
ref_nonce(const suite_t *s, const unsigned char *iv, unsigned epoch,
    uint64_t seq, const unsigned char *explicit, unsigned char *nonce)
{
    int       i;
    uint64_t  es, v;

    es = (uint64_t) epoch << 48 | seq;

    if (s->explicit_len) {
        /* RFC 5288 3, RFC 6655 3: salt (4) + nonce_explicit (8) */
        memcpy(nonce, iv, 4);

        if (explicit) {
            memcpy(nonce + 4, explicit, 8);

        } else {
            for (i = 0; i < 8; i++) {
                nonce[4 + i] = (unsigned char) (es >> (56 - 8 * i));
            }
        }

        return;
    }

    /* RFC 7905 2: the IV XOR the 64-bit sequence, padded on the left */

    memcpy(nonce, iv, 4);

    v = 0;
    for (i = 4; i < 12; i++) {
        v = v << 8 | iv[i];
    }

    v ^= es;

    for (i = 0; i < 8; i++) {
        nonce[4 + i] = (unsigned char) (v >> (56 - 8 * i));
    }
}


static void
ref_aad(unsigned epoch, uint64_t seq, int type, size_t len,
    unsigned char *aad)
{
    int       i;
    uint64_t  es;

    es = (uint64_t) epoch << 48 | seq;

    for (i = 0; i < 8; i++) {
        aad[i] = (unsigned char) (es >> (56 - 8 * i));
    }

    aad[8] = (unsigned char) type;
    aad[9] = 0xfe;
    aad[10] = 0xfd;
    aad[11] = (unsigned char) (len >> 8);
    aad[12] = (unsigned char) len;
}


/*
 * A whole record computed independently of the module: a fresh EVP
 * context per record, the ctrl interface rather than parameters.
 * explicit: the nonce to send (GCM/CCM), or NULL for epoch + sequence.
 */

static size_t
ref_seal(const suite_t *s, const unsigned char *key, const unsigned char *iv,
    unsigned epoch, uint64_t seq, int type, const unsigned char *explicit,
    const unsigned char *in, size_t len, unsigned char *out)
{
    int               ok, n;
    int               ccm;
    size_t            frag;
    EVP_CIPHER       *c;
    unsigned char    *body, dummy;
    EVP_CIPHER_CTX   *ctx;
    unsigned char     nonce[12], aad[13];

    ccm = strstr(s->evp, "CCM") != NULL;
    frag = s->explicit_len + len + s->tag_len;

    out[0] = (unsigned char) type;
    out[1] = 0xfe;
    out[2] = 0xfd;
    out[3] = (unsigned char) (epoch >> 8);
    out[4] = (unsigned char) epoch;

    for (n = 0; n < 6; n++) {
        out[5 + n] = (unsigned char) (seq >> (40 - 8 * n));
    }

    out[11] = (unsigned char) (frag >> 8);
    out[12] = (unsigned char) frag;

    ref_nonce(s, iv, epoch, seq, explicit, nonce);
    ref_aad(epoch, seq, type, len, aad);

    if (s->explicit_len) {
        memcpy(out + 13, nonce + 4, 8);
    }

    body = out + 13 + s->explicit_len;

    c = EVP_CIPHER_fetch(NULL, s->evp, NULL);
    ctx = EVP_CIPHER_CTX_new();

    ok = c != NULL && ctx != NULL
         && EVP_EncryptInit_ex(ctx, c, NULL, NULL, NULL) == 1
         && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_IVLEN, 12, NULL) == 1
         && (!ccm || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG,
                                         (int) s->tag_len, NULL) == 1)
         && EVP_EncryptInit_ex(ctx, NULL, NULL, key, nonce) == 1
         && (!ccm || EVP_EncryptUpdate(ctx, NULL, &n, NULL, (int) len) == 1)
         && EVP_EncryptUpdate(ctx, NULL, &n, aad, 13) == 1
         && EVP_EncryptUpdate(ctx, len ? body : &dummy, &n,
                              len ? in : &dummy, (int) len) == 1
         && EVP_EncryptFinal_ex(ctx, body + n, &n) == 1
         && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, (int) s->tag_len,
                                body + len) == 1;

    EVP_CIPHER_CTX_free(ctx);
    EVP_CIPHER_free(c);

    return ok ? 13 + frag : 0;
}


/* the plaintext of a record, or -1 */

static long
ref_open(const suite_t *s, const unsigned char *key, const unsigned char *iv,
    const unsigned char *rec, size_t total, unsigned char *out)
{
    int               ok, n, ccm;
    rec_t             r;
    size_t            len;
    EVP_CIPHER       *c;
    unsigned char     dummy;
    EVP_CIPHER_CTX   *ctx;
    unsigned char     nonce[12], aad[13], tag[16];
    const unsigned char  *body;

    if (rec_parse(rec, total, &r) != total
        || r.len < s->explicit_len + s->tag_len)
    {
        return -1;
    }

    ccm = strstr(s->evp, "CCM") != NULL;
    len = r.len - s->explicit_len - s->tag_len;
    body = r.fragment + s->explicit_len;

    ref_nonce(s, iv, r.epoch, r.seq, s->explicit_len ? r.fragment : NULL,
              nonce);
    ref_aad(r.epoch, r.seq, r.type, len, aad);
    memcpy(tag, body + len, s->tag_len);

    c = EVP_CIPHER_fetch(NULL, s->evp, NULL);
    ctx = EVP_CIPHER_CTX_new();

    ok = c != NULL && ctx != NULL
         && EVP_DecryptInit_ex(ctx, c, NULL, NULL, NULL) == 1
         && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_IVLEN, 12, NULL) == 1
         && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, (int) s->tag_len,
                                tag) == 1
         && EVP_DecryptInit_ex(ctx, NULL, NULL, key, nonce) == 1
         && (!ccm || EVP_DecryptUpdate(ctx, NULL, &n, NULL, (int) len) == 1)
         && EVP_DecryptUpdate(ctx, NULL, &n, aad, 13) == 1
         && EVP_DecryptUpdate(ctx, len ? out : &dummy, &n,
                              len ? body : &dummy, (int) len) == 1
         && (ccm || EVP_DecryptFinal_ex(ctx, out + n, &n) == 1);

    EVP_CIPHER_CTX_free(ctx);
    EVP_CIPHER_free(c);

    return ok ? (long) len : -1;
}


/*
 * The client's SSL_read_ex() of one datagram: the bytes read (0 for an
 * empty record: SSL_read() would return 0 for it, which SSL_get_error()
 * calls SSL_ERROR_SYSCALL), NOTHING when the record was dropped, -1 when
 * the SSL failed.
 */

#define NOTHING  -2

static long
client_read(run_t *r, const unsigned char *rec, size_t len,
    unsigned char *buf)
{
    int     rc, err;
    size_t  n;

    queue_push(&r->to_client, rec, len);

    rc = SSL_read_ex(r->client, buf, BUF_SIZE, &n);

    if (rc == 1) {
        return (long) n;
    }

    err = SSL_get_error(r->client, rc);

    if (verbose && err != SSL_ERROR_WANT_READ) {
        fprintf(stderr, "client SSL_read_ex: error %d\n", err);
        ERR_print_errors_fp(stderr);
    }

    ERR_clear_error();

    return (err == SSL_ERROR_WANT_READ) ? NOTHING : -1;
}


/* one record of the OpenSSL side's SSL_write, taken off the wire */

static size_t
capture(SSL *ssl, queue_t *q, const unsigned char *data,
    size_t len, unsigned char *rec)
{
    rec_t     h;
    dgram_t  *d;
    size_t    n;

    if (SSL_write(ssl, data, (int) len) != (int) len) {
        ERR_clear_error();
        return 0;
    }

    d = queue_pop(q);

    if (d == NULL) {
        return 0;
    }

    n = 0;

    if (q->head == NULL && rec_parse(d->data, d->len, &h) == d->len) {
        memcpy(rec, d->data, d->len);
        n = d->len;
    }

    free(d);

    return n;
}


/* a read state with a write state's keys: the peer of the module */

static ngx_stream_dtls_record_t
mirror(ngx_stream_dtls_record_t *wr)
{
    ngx_stream_dtls_record_t  m;

    m = *wr;
    m.seq = 0;
    m.top = 0;
    m.window = 0;

    return m;
}


static int
test_keys(run_t *r)
{
    int                        ok, i;
    size_t                     mlen, klen, ilen;
    const EVP_MD              *md;
    SSL_SESSION               *sess;
    ngx_stream_dtls_record_t   crd, cwr;
    const suite_t             *s;
    unsigned char              master[64], seed[13 + 64], block[88];

    s = r->suite;

    if (!check(r, ngx_stream_dtls_record_derive(r->server, 1, &r->rd, &r->wr)
                  == NGX_OK, "derive from the server's SSL"))
    {
        return 0;
    }

    check(r, ngx_stream_dtls_record_overhead(&r->wr)
             == 13 + s->explicit_len + s->tag_len, "overhead");

    check(r, r->wr.epoch == 1 && r->rd.epoch == 1, "epoch 1");

    /* the key block, again */

    sess = SSL_get_session(r->server);
    md = SSL_CIPHER_get_handshake_digest(SSL_get_current_cipher(r->server));
    mlen = SSL_SESSION_get_master_key(sess, master, sizeof(master));

    memcpy(seed, "key expansion", 13);
    SSL_get_server_random(r->server, seed + 13, 32);
    SSL_get_client_random(r->server, seed + 45, 32);

    klen = s->key_len;
    ilen = s->iv_len;

    ok = md != NULL
         && ref_prf(EVP_MD_get0_name(md), master, mlen, seed, sizeof(seed),
                    block, 2 * (klen + ilen));

    check(r, ok, "reference PRF");

    check(r, ok && memcmp(r->rd.key, block, klen) == 0
             && memcmp(r->wr.key, block + klen, klen) == 0
             && memcmp(r->rd.iv, block + 2 * klen, ilen) == 0
             && memcmp(r->wr.iv, block + 2 * klen + ilen, ilen) == 0,
          "keys equal the reference key block (%s)",
          md ? EVP_MD_get0_name(md) : "?");

    /* the client's side: its write keys are the server's read keys */

    check(r, ngx_stream_dtls_record_derive(r->client, 1, &crd, &cwr)
             == NGX_OK
             && memcmp(cwr.key, r->rd.key, sizeof(cwr.key)) == 0
             && memcmp(cwr.iv, r->rd.iv, sizeof(cwr.iv)) == 0
             && memcmp(crd.key, r->wr.key, sizeof(crd.key)) == 0
             && memcmp(crd.iv, r->wr.iv, sizeof(crd.iv)) == 0,
          "the client's derivation mirrors the server's");

    check(r, ngx_stream_dtls_record_derive(r->server, 0x10000, &crd, &cwr)
             == NGX_DECLINED, "epoch over 65535 declined");

    ngx_stream_dtls_record_wipe(&crd);
    ngx_stream_dtls_record_wipe(&cwr);

    OPENSSL_cleanse(master, sizeof(master));
    OPENSSL_cleanse(block, sizeof(block));

    /* what OpenSSL sent and read in epoch 1: the Finished messages */

    r->wr.seq = r->server_end.next;

    for (i = 0; i < r->client_end.nseqs; i++) {
        ngx_stream_dtls_record_received(&r->rd, r->client_end.seqs[i]);
    }

    check(r, r->server_end.next >= 1 && r->client_end.nseqs >= 1,
          "Finished records seen in epoch 1");

    return 1;
}


/* one bit of a copy flipped: refused by open, the state untouched */

static void
flip_open(run_t *r, ngx_stream_dtls_record_t *rd, const unsigned char *rec,
    size_t len, size_t pos, const char *what)
{
    size_t                       n;
    ngx_uint_t                   type;
    ngx_stream_dtls_record_t     before;
    ngx_stream_dtls_record_rc_e  rc;
    unsigned char                copy[BUF_SIZE], out[BUF_SIZE];

    memcpy(copy, rec, len);
    copy[pos] ^= (unsigned char) (1 << (rnd() % 8));

    before = *rd;

    rc = ngx_stream_dtls_record_open(rd, copy, len, out, &n, &type);

    check(r, rc != NGX_STREAM_DTLS_RECORD_OK
             && memcmp(&before, rd, sizeof(before)) == 0,
          "%s: bit flipped at %zu of %zu accepted or state changed (%s)",
          what, pos, len, ngx_stream_dtls_record_reason(rc));
}


/* client SSL_write -> the module opens */

static void
test_client_to_module(run_t *r, size_t size, int first)
{
    int                          seq_nonce;
    size_t                       len, n;
    long                         ref;
    rec_t                        h;
    ngx_uint_t                   type;
    ngx_stream_dtls_record_rc_e  rc;
    unsigned char                data[BUF_SIZE], rec[BUF_SIZE],
                                 out[BUF_SIZE], out2[BUF_SIZE];

    payload(data, size, 1);

    len = capture(r->client, &r->to_server, data, size, rec);

    if (!check(r, len == 13 + size + r->suite->explicit_len
                         + r->suite->tag_len,
               "client record of %zu bytes: %zu bytes on the wire", size,
               len))
    {
        return;
    }

    rec_parse(rec, len, &h);

    if (r->suite->explicit_len) {
        seq_nonce = memcmp(h.fragment, rec + 3, 8) == 0;

        if (r->gcm_seq_nonce == -1) {
            r->gcm_seq_nonce = seq_nonce;

        } else if (r->gcm_seq_nonce != seq_nonce) {
            r->gcm_seq_nonce = 2;
        }
    }

    /*
     * forgeries first (after the genuine record, a flipped copy would be
     * refused as a replay before its tag is checked): a header bit, a bit
     * of the body; but the suite's first record goes first, the first use
     * of the module's cipher context
     */

    if (!first) {
        flip_open(r, &r->rd, rec, len, size % 13, "client record header");
        flip_open(r, &r->rd, rec, len, 13 + rnd() % (len - 13),
                  "client record body");
    }

    rc = ngx_stream_dtls_record_open(&r->rd, rec, len, out, &n, &type);

    check(r, rc == NGX_STREAM_DTLS_RECORD_OK && n == size && type == 23
             && memcmp(out, data, size) == 0,
          "open client record of %zu bytes: %s", size,
          ngx_stream_dtls_record_reason(rc));

    ref = ref_open(r->suite, r->rd.key, r->rd.iv, rec, len, out2);

    check(r, ref == (long) size && memcmp(out2, data, size) == 0,
          "reference open of client record of %zu bytes", size);

    rc = ngx_stream_dtls_record_open(&r->rd, rec, len, out, &n, &type);

    check(r, rc == NGX_STREAM_DTLS_RECORD_REPLAY,
          "replayed client record: %s", ngx_stream_dtls_record_reason(rc));
}


/* server SSL_write and the module's record for the same sequence */

static void
test_server_vs_module(run_t *r, size_t size)
{
    size_t                       len, n, mlen;
    rec_t                        h;
    ngx_uint_t                   type;
    ngx_stream_dtls_record_t     w, m;
    ngx_stream_dtls_record_rc_e  rc;
    unsigned char                data[BUF_SIZE], rec[BUF_SIZE],
                                 mine[BUF_SIZE], ref[BUF_SIZE],
                                 out[BUF_SIZE];

    payload(data, size, 2);

    len = capture(r->server, &r->to_client, data, size, rec);

    if (!check(r, len > 0, "server record of %zu bytes", size)) {
        return;
    }

    rec_parse(rec, len, &h);

    w = r->wr;
    w.seq = h.seq;

    rc = ngx_stream_dtls_record_seal(&w, 23, data, size, mine, sizeof(mine),
                                     &mlen);

    if (!check(r, rc == NGX_STREAM_DTLS_RECORD_OK && mlen == len
                  && memcmp(mine, rec, 13) == 0,
               "module seal at the server's sequence %llu: %s",
               (unsigned long long) h.seq,
               ngx_stream_dtls_record_reason(rc)))
    {
        return;
    }

    if (r->suite->explicit_len == 0
        || memcmp(h.fragment, rec + 3, 8) == 0)
    {
        check(r, memcmp(mine, rec, len) == 0,
              "module's record of %zu bytes differs from OpenSSL's", size);

    } else {
        n = ref_seal(r->suite, r->wr.key, r->wr.iv, h.epoch, h.seq, 23,
                     h.fragment, data, size, ref);

        check(r, n == len && memcmp(ref, rec, len) == 0,
              "reference with OpenSSL's explicit nonce, %zu bytes", size);
    }

    m = mirror(&r->wr);

    rc = ngx_stream_dtls_record_open(&m, rec, len, out, &n, &type);

    check(r, rc == NGX_STREAM_DTLS_RECORD_OK && n == size
             && memcmp(out, data, size) == 0,
          "module opens the server's record of %zu bytes: %s", size,
          ngx_stream_dtls_record_reason(rc));

    if (h.seq + 1 > r->wr.seq) {
        r->wr.seq = h.seq + 1;
    }
}


/* the module seals -> the client's SSL_read */

static void
test_module_to_client(run_t *r, size_t size, int abuse)
{
    long                         got;
    size_t                       len, n;
    uint64_t                     seq;
    ngx_stream_dtls_record_rc_e  rc;
    unsigned char                data[BUF_SIZE], rec[BUF_SIZE],
                                 ref[BUF_SIZE], buf[BUF_SIZE],
                                 copy[BUF_SIZE];

    payload(data, size, 3);

    seq = r->wr.seq;

    rc = ngx_stream_dtls_record_seal(&r->wr, 23, data, size, rec,
                                     sizeof(rec), &len);

    if (!check(r, rc == NGX_STREAM_DTLS_RECORD_OK && r->wr.seq == seq + 1,
               "seal %zu bytes: %s", size, ngx_stream_dtls_record_reason(rc)))
    {
        return;
    }

    n = ref_seal(r->suite, r->wr.key, r->wr.iv, 1, seq, 23, NULL, data, size,
                 ref);

    check(r, n == len && memcmp(ref, rec, len) == 0,
          "module's record of %zu bytes at %llu differs from the reference",
          size, (unsigned long long) seq);

    if (abuse) {
        memcpy(copy, rec, len);
        copy[13 + rnd() % (len - 13)] ^= (unsigned char) (1 << (rnd() % 8));

        got = client_read(r, copy, len, buf);
        check(r, got == NOTHING,
              "client read a bit-flipped record of %zu bytes", size);

        /*
         * type, version, epoch or sequence: not the length, which OpenSSL
         * 3.0 takes for a fatal error when it leaves less than the
         * explicit nonce and the tag (EVP_CTRL_AEAD_TLS1_AAD fails, and
         * tls1_enc() calls SSLfatal()), instead of dropping the record
         */

        memcpy(copy, rec, len);
        copy[rnd() % 11] ^= (unsigned char) (1 << (rnd() % 8));

        got = client_read(r, copy, len, buf);
        check(r, got == NOTHING,
              "client read a record with a bit-flipped header");
    }

    got = client_read(r, rec, len, buf);

    check(r, got == (long) size && memcmp(buf, data, size) == 0,
          "client read %ld of the module's %zu bytes", got, size);

    if (abuse) {
        got = client_read(r, rec, len, buf);
        check(r, got == NOTHING, "client read a replayed record of %zu bytes",
              size);
    }
}


static void
test_other_epochs_to_client(run_t *r)
{
    long                      got;
    size_t                    len;
    unsigned                  e;
    ngx_stream_dtls_record_t  w;
    unsigned char             data[64], rec[BUF_SIZE], buf[BUF_SIZE];

    static const unsigned  epochs[] = { 0, 2, 0xffff };

    payload(data, sizeof(data), 4);

    for (e = 0; e < sizeof(epochs) / sizeof(epochs[0]); e++) {
        w = r->wr;
        w.epoch = (uint16_t) epochs[e];

        if (ngx_stream_dtls_record_seal(&w, 23, data, sizeof(data), rec,
                                        sizeof(rec), &len)
            != NGX_STREAM_DTLS_RECORD_OK)
        {
            check(r, 0, "seal in epoch %u", epochs[e]);
            continue;
        }

        got = client_read(r, rec, len, buf);
        check(r, got == NOTHING, "client read a record of epoch %u", epochs[e]);
    }

    /* and the session goes on */

    test_module_to_client(r, 33, 0);
}


static void
test_alerts(run_t *r)
{
    int                          rc2;
    size_t                       len, n;
    ngx_uint_t                   type;
    dgram_t                     *d;
    ngx_stream_dtls_record_rc_e  rc;
    unsigned char                out[BUF_SIZE], rec[BUF_SIZE], buf[64];

    static unsigned char         close_notify[2] = { 1, 0 };

    /* the client's close_notify */

    rc2 = SSL_shutdown(r->client);
    d = queue_pop(&r->to_server);

    if (check(r, rc2 == 0 && d != NULL, "client's close_notify sent")) {
        rc = ngx_stream_dtls_record_open(&r->rd, d->data, d->len, out, &n,
                                         &type);

        check(r, rc == NGX_STREAM_DTLS_RECORD_OK && type == 21 && n == 2
                 && memcmp(out, close_notify, 2) == 0,
              "open the client's close_notify: %s",
              ngx_stream_dtls_record_reason(rc));
    }

    free(d);

    /* the module's: the client's SSL_read ends */

    rc = ngx_stream_dtls_record_seal(&r->wr, 21, close_notify, 2, rec,
                                     sizeof(rec), &len);

    if (check(r, rc == NGX_STREAM_DTLS_RECORD_OK, "seal close_notify")) {
        queue_push(&r->to_client, rec, len);
        rc2 = SSL_read(r->client, buf, sizeof(buf));

        check(r, rc2 == 0
                 && SSL_get_error(r->client, rc2) == SSL_ERROR_ZERO_RETURN,
              "client's SSL_read ends at the module's close_notify");
        ERR_clear_error();
    }
}


/* module to module */

static void
seal_at(run_t *r, ngx_stream_dtls_record_t *w, unsigned epoch, uint64_t seq,
    const unsigned char *data, size_t size, unsigned char *rec, size_t *len)
{
    ngx_stream_dtls_record_t     c;
    ngx_stream_dtls_record_rc_e  rc;

    c = *w;
    c.epoch = (uint16_t) epoch;
    c.seq = seq;

    rc = ngx_stream_dtls_record_seal(&c, 23, (u_char *) data, size, rec,
                                     BUF_SIZE, len);

    if (!check(r, rc == NGX_STREAM_DTLS_RECORD_OK && c.seq == seq + 1,
               "seal at epoch %u sequence %llu: %s", epoch,
               (unsigned long long) seq, ngx_stream_dtls_record_reason(rc)))
    {
        *len = 0;
    }
}


static void
expect_open(run_t *r, ngx_stream_dtls_record_t *rd, const unsigned char *rec,
    size_t len, const unsigned char *data, size_t size,
    ngx_stream_dtls_record_rc_e want, const char *what)
{
    size_t                       n;
    ngx_uint_t                   type;
    ngx_stream_dtls_record_t     before;
    ngx_stream_dtls_record_rc_e  rc;
    unsigned char                copy[BUF_SIZE], out[BUF_SIZE];

    before = *rd;
    memcpy(copy, rec, len);

    rc = ngx_stream_dtls_record_open(rd, copy, len, out, &n, &type);

    if (want == NGX_STREAM_DTLS_RECORD_OK) {
        check(r, rc == want && n == size && memcmp(out, data, size) == 0,
              "%s: %s", what, ngx_stream_dtls_record_reason(rc));

    } else {
        check(r, rc == want && memcmp(&before, rd, sizeof(before)) == 0,
              "%s: %s, not %s", what, ngx_stream_dtls_record_reason(rc),
              ngx_stream_dtls_record_reason(want));
    }
}


static void
test_sequence_limits(run_t *r)
{
    size_t                       len, n, size;
    uint64_t                     seq;
    unsigned                     i;
    ngx_stream_dtls_record_t     w, m, before;
    ngx_stream_dtls_record_rc_e  rc;
    unsigned char                data[BUF_SIZE], rec[BUF_SIZE],
                                 ref[BUF_SIZE];

    static const unsigned  epochs[] = { 1, 2, 0xffff };

    for (i = 0; i < sizeof(epochs) / sizeof(epochs[0]); i++) {
        w = r->wr;
        w.epoch = (uint16_t) epochs[i];
        w.seq = SEQ_MAX - 3;

        m = mirror(&r->wr);
        m.epoch = w.epoch;

        for (seq = SEQ_MAX - 3; seq < SEQ_MAX; seq++) {
            size = (size_t) (seq & 0xff);
            payload(data, size, 5);

            rc = ngx_stream_dtls_record_seal(&w, 23, data, size, rec,
                                             sizeof(rec), &len);

            check(r, rc == NGX_STREAM_DTLS_RECORD_OK,
                  "seal at epoch %u sequence %llu: %s", epochs[i],
                  (unsigned long long) seq,
                  ngx_stream_dtls_record_reason(rc));

            n = ref_seal(r->suite, w.key, w.iv, w.epoch, seq, 23, NULL, data,
                         size, ref);

            check(r, n == len && memcmp(ref, rec, len) == 0,
                  "reference at epoch %u sequence %llu", epochs[i],
                  (unsigned long long) seq);

            expect_open(r, &m, rec, len, data, size,
                        NGX_STREAM_DTLS_RECORD_OK, "open near 2^48");
        }

        /* 2^48 - 1: the module refuses to seal it, and changes nothing */

        before = w;
        rc = ngx_stream_dtls_record_seal(&w, 23, data, 1, rec, sizeof(rec),
                                         &len);

        check(r, rc == NGX_STREAM_DTLS_RECORD_EXHAUSTED
                 && memcmp(&before, &w, sizeof(w)) == 0,
              "seal at 2^48 - 1: %s", ngx_stream_dtls_record_reason(rc));

        /* a peer's record at 2^48 - 1 is still valid on the wire */

        payload(data, 7, 6);
        len = ref_seal(r->suite, w.key, w.iv, w.epoch, SEQ_MAX, 23, NULL,
                       data, 7, rec);

        expect_open(r, &m, rec, len, data, 7, NGX_STREAM_DTLS_RECORD_OK,
                    "open a reference record at 2^48 - 1");
        expect_open(r, &m, rec, len, data, 7, NGX_STREAM_DTLS_RECORD_REPLAY,
                    "replay at 2^48 - 1");

        seal_at(r, &r->wr, w.epoch, 0, data, 7, rec, &len);
        expect_open(r, &m, rec, len, data, 7, NGX_STREAM_DTLS_RECORD_OLD,
                    "sequence 0 after 2^48 - 1");

        /* the epochs apart */

        if (epochs[i] != 1) {
            m = mirror(&r->wr);

            seal_at(r, &r->wr, epochs[i], 5, data, 7, rec, &len);
            expect_open(r, &m, rec, len, data, 7,
                        NGX_STREAM_DTLS_RECORD_NEW_EPOCH,
                        "a later epoch's record");

            m.epoch = (uint16_t) epochs[i];

            seal_at(r, &r->wr, 1, 6, data, 7, rec, &len);
            expect_open(r, &m, rec, len, data, 7,
                        NGX_STREAM_DTLS_RECORD_OLD_EPOCH,
                        "an earlier epoch's record");

            seal_at(r, &r->wr, epochs[i], 6, data, 7, rec, &len);
            expect_open(r, &m, rec, len, data, 7, NGX_STREAM_DTLS_RECORD_OK,
                        "the epoch's own record");
        }
    }
}


static void
test_window(run_t *r)
{
    size_t                    len, i;
    ngx_stream_dtls_record_t  m;
    unsigned char             data[64], rec[BUF_SIZE];

    static const struct {
        uint64_t                     seq;
        ngx_stream_dtls_record_rc_e  rc;
    } steps[] = {
        { 0, NGX_STREAM_DTLS_RECORD_OK },
        { 0, NGX_STREAM_DTLS_RECORD_REPLAY },
        { 100, NGX_STREAM_DTLS_RECORD_OK },
        { 37, NGX_STREAM_DTLS_RECORD_OK },          /* top - 63 */
        { 36, NGX_STREAM_DTLS_RECORD_OLD },         /* top - 64 */
        { 37, NGX_STREAM_DTLS_RECORD_REPLAY },
        { 99, NGX_STREAM_DTLS_RECORD_OK },
        { 99, NGX_STREAM_DTLS_RECORD_REPLAY },
        { 100, NGX_STREAM_DTLS_RECORD_REPLAY },
        { 164, NGX_STREAM_DTLS_RECORD_OK },         /* top + 64 */
        { 100, NGX_STREAM_DTLS_RECORD_OLD },
        { 101, NGX_STREAM_DTLS_RECORD_OK },
        { 101, NGX_STREAM_DTLS_RECORD_REPLAY },
        { 163, NGX_STREAM_DTLS_RECORD_OK },
        { 165, NGX_STREAM_DTLS_RECORD_OK },         /* 101 falls off */
        { 101, NGX_STREAM_DTLS_RECORD_OLD },
        { 102, NGX_STREAM_DTLS_RECORD_OK },
        { 164, NGX_STREAM_DTLS_RECORD_REPLAY },
        { 1000, NGX_STREAM_DTLS_RECORD_OK },        /* far ahead */
        { 999, NGX_STREAM_DTLS_RECORD_OK },
        { 937, NGX_STREAM_DTLS_RECORD_OK },
        { 936, NGX_STREAM_DTLS_RECORD_OLD },
        { 165, NGX_STREAM_DTLS_RECORD_OLD },
        { SEQ_MAX - 1, NGX_STREAM_DTLS_RECORD_OK },
        { SEQ_MAX - 64, NGX_STREAM_DTLS_RECORD_OK },
        { SEQ_MAX - 65, NGX_STREAM_DTLS_RECORD_OLD },
        { SEQ_MAX - 1, NGX_STREAM_DTLS_RECORD_REPLAY }
    };

    m = mirror(&r->wr);

    for (i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        payload(data, i, 7);
        seal_at(r, &r->wr, 1, steps[i].seq, data, i, rec, &len);

        if (len == 0) {
            continue;
        }

        /* a forgery at this sequence moves nothing */

        flip_open(r, &m, rec, len, len - 1, "window: forged tag");

        expect_open(r, &m, rec, len, data, i, steps[i].rc, "window step");
    }

    /* the window's bits: all 64 below a top, in any order */

    m = mirror(&r->wr);

    for (i = 0; i < 64; i++) {
        payload(data, 5, 8);
        seal_at(r, &r->wr, 1, 2000 - ((i * 37) % 64), data, 5, rec, &len);
        expect_open(r, &m, rec, len, data, 5, NGX_STREAM_DTLS_RECORD_OK,
                    "window: a record out of order");
    }

    for (i = 0; i < 64; i++) {
        seal_at(r, &r->wr, 1, 2000 - i, data, 5, rec, &len);
        expect_open(r, &m, rec, len, data, 5, NGX_STREAM_DTLS_RECORD_REPLAY,
                    "window: the same again");
    }
}


static void
test_formats(run_t *r)
{
    size_t                       len, n, i, size;
    ngx_uint_t                   type;
    ngx_stream_dtls_record_t     w, m, before;
    ngx_stream_dtls_record_rc_e  rc;
    unsigned char                data[BUF_SIZE + 16], rec[BUF_SIZE + 64],
                                 copy[BUF_SIZE + 64];
    size_t                       pre;

    m = mirror(&r->wr);
    pre = 13 + r->suite->explicit_len;

    /* every size from 0 to the MTU, module to module, and the big ones */

    for (size = 0; size <= MTU + 4; size++) {
        size_t  s = (size <= MTU) ? size : large_sizes[size - MTU - 1];

        payload(data, s, 9);
        seal_at(r, &r->wr, 1, 5000 + size, data, s, rec, &len);

        if (len) {
            expect_open(r, &m, rec, len, data, s, NGX_STREAM_DTLS_RECORD_OK,
                        "module to module");
        }
    }

    /* in place: the payload where the ciphertext goes */

    for (size = 0; size <= MTU; size += 97) {
        payload(data, size, 10);
        seal_at(r, &r->wr, 1, 9000 + size, data, size, copy, &len);

        w = r->wr;
        w.seq = 9000 + size;
        memcpy(rec + pre, data, size);

        rc = ngx_stream_dtls_record_seal(&w, 23, rec + pre, size, rec,
                                         sizeof(rec), &n);

        check(r, rc == NGX_STREAM_DTLS_RECORD_OK && n == len
                 && memcmp(rec, copy, len) == 0,
              "seal in place, %zu bytes: %s", size,
              ngx_stream_dtls_record_reason(rc));

        rc = ngx_stream_dtls_record_open(&m, rec, n, rec + pre, &n, &type);

        check(r, rc == NGX_STREAM_DTLS_RECORD_OK && n == size
                 && memcmp(rec + pre, data, size) == 0,
              "open in place, %zu bytes: %s", size,
              ngx_stream_dtls_record_reason(rc));
    }

    /* malformed */

    payload(data, 40, 11);
    seal_at(r, &r->wr, 1, 20000, data, 40, rec, &len);

    expect_open(r, &m, rec, len - 1, data, 40,
                NGX_STREAM_DTLS_RECORD_MALFORMED, "truncated by one");
    expect_open(r, &m, rec, 12, data, 40,
                NGX_STREAM_DTLS_RECORD_MALFORMED, "a header's worth");

    for (i = 0; i < 5; i++) {
        memcpy(copy, rec, len);

        switch (i) {
        case 0:
            copy[0] = 20;               /* change_cipher_spec */
            break;
        case 1:
            copy[0] = 24;               /* heartbeat */
            break;
        case 2:
            copy[2] = 0xff;             /* DTLS 1.0 */
            break;
        case 3:
            copy[12]++;                 /* length past the datagram */
            break;
        default:
            /* a fragment shorter than nonce and tag */
            copy[11] = 0;
            copy[12] = (unsigned char) (r->suite->explicit_len
                                        + r->suite->tag_len - 1);
            break;
        }

        n = (i == 4) ? (size_t) 13 + copy[12] : len;

        expect_open(r, &m, copy, n, data, 40,
                    NGX_STREAM_DTLS_RECORD_MALFORMED, "malformed");
    }

    /* a fragment that would hold more than 2^14 bytes of plaintext */

    memset(copy, 0, sizeof(copy));
    memcpy(copy, rec, 13);
    n = r->suite->explicit_len + 16385 + r->suite->tag_len;
    copy[11] = (unsigned char) (n >> 8);
    copy[12] = (unsigned char) n;

    expect_open(r, &m, copy, 13 + n, data, 0, NGX_STREAM_DTLS_RECORD_TOO_BIG,
                "plaintext over 2^14");

    /* refused seals change nothing */

    w = r->wr;
    before = w;

    rc = ngx_stream_dtls_record_seal(&w, 23, data, 16385, rec, sizeof(rec),
                                     &n);
    check(r, rc == NGX_STREAM_DTLS_RECORD_TOO_BIG
             && memcmp(&before, &w, sizeof(w)) == 0,
          "seal 16385 bytes: %s", ngx_stream_dtls_record_reason(rc));

    rc = ngx_stream_dtls_record_seal(&w, 23, data, 100, rec,
                                     pre + 100 + r->suite->tag_len - 1, &n);
    check(r, rc == NGX_STREAM_DTLS_RECORD_NO_SPACE
             && memcmp(&before, &w, sizeof(w)) == 0,
          "seal into a buffer one byte short: %s",
          ngx_stream_dtls_record_reason(rc));

    rc = ngx_stream_dtls_record_seal(&w, 20, data, 1, rec, sizeof(rec), &n);
    check(r, rc != NGX_STREAM_DTLS_RECORD_OK
             && memcmp(&before, &w, sizeof(w)) == 0,
          "seal a change_cipher_spec: %s", ngx_stream_dtls_record_reason(rc));

    rc = ngx_stream_dtls_record_seal(&w, 23, data, 100, rec,
                                     pre + 100 + r->suite->tag_len, &n);
    check(r, rc == NGX_STREAM_DTLS_RECORD_OK
             && n == pre + 100 + r->suite->tag_len
             && ngx_stream_dtls_record_length(rec, n + 5) == n
             && ngx_stream_dtls_record_length(rec, n - 1) == 0,
          "seal into a buffer of exactly the record; its length");

    /* a wiped state seals nothing */

    ngx_stream_dtls_record_wipe(&w);
    rc = ngx_stream_dtls_record_seal(&w, 23, data, 1, rec, sizeof(rec), &n);
    check(r, rc == NGX_STREAM_DTLS_RECORD_ERROR, "seal with wiped keys");
}


static void
run_suite(const suite_t *s)
{
    size_t  size, i;
    run_t  *r;

    r = calloc(1, sizeof(run_t));
    if (r == NULL) {
        perror("calloc");
        exit(1);
    }

    r->suite = s;
    r->gcm_seq_nonce = -1;

    /* the module's cipher contexts anew: nothing carried from a suite */

    ngx_stream_dtls_record_done();

    if (!check(r, ngx_stream_dtls_record_init() == NGX_OK, "init")) {
        goto done;
    }

    if (!check(r, handshake(r), "handshake")) {
        ERR_print_errors_fp(stderr);
        goto done;
    }

    if (!test_keys(r)) {
        goto done;
    }

    /* sizes 1 to the MTU and the large ones: OpenSSL sends no empty one */

    for (size = 1; size <= MTU + 4; size++) {
        i = (size <= MTU) ? size : large_sizes[size - MTU - 1];

        test_client_to_module(r, i, size == 1);
        test_server_vs_module(r, i);
    }

    for (size = 0; size <= MTU + 4; size++) {
        i = (size <= MTU) ? size : large_sizes[size - MTU - 1];

        test_module_to_client(r, i, size % 8 == 0 || size == 1
                                    || size >= MTU);
    }

    test_other_epochs_to_client(r);
    test_sequence_limits(r);
    test_window(r);
    test_formats(r);
    test_alerts(r);

done:

    printf("%-30s %-18s tag %2zu: %lu passed, %lu failed%s%s\n",
           s->name, s->evp, s->tag_len, r->passed, r->failed,
           s->explicit_len == 0 ? ""
           : r->gcm_seq_nonce == 1 ? " (OpenSSL's nonce: epoch+seq)"
           : r->gcm_seq_nonce == 0 ? " (OpenSSL's nonce: not epoch+seq)"
           : " (OpenSSL's nonce: mixed)",
           s->extra ? " [not offered by default]" : "");

    total_passed += r->passed;
    total_failed += r->failed;

    ngx_stream_dtls_record_wipe(&r->rd);
    ngx_stream_dtls_record_wipe(&r->wr);

    SSL_free(r->server);
    SSL_free(r->client);
    SSL_CTX_free(r->server_ctx);
    SSL_CTX_free(r->client_ctx);
    queue_clear(&r->to_server);
    queue_clear(&r->to_client);
    free(r);
}


int
main(int argc, char **argv)
{
    int             opt, found;
    const char     *only;
    const suite_t  *s;

    only = NULL;

    while ((opt = getopt(argc, argv, "vs:h")) != -1) {
        switch (opt) {
        case 'v':
            verbose = 1;
            break;
        case 's':
            only = optarg;
            break;
        default:
            fprintf(stderr, "usage: dtls_record_diff [-v] [-s SUITE]\n");
            return 2;
        }
    }

    tool_psk.identity = IDENTITY;
    tool_psk_key("dtls_record_diff", KEY);

    if (dgram_init("dtls_record_diff datagram") != 0
        || ngx_stream_dtls_record_init() != NGX_OK)
    {
        ERR_print_errors_fp(stderr);
        return 1;
    }

    if (!certs_init()) {
        fprintf(stderr, "dtls_record_diff: no throwaway certificates\n");
        ERR_print_errors_fp(stderr);
        return 1;
    }

    found = 0;

    for (s = suites; s->name; s++) {
        if (only && strcmp(only, s->name) != 0) {
            continue;
        }

        found = 1;
        run_suite(s);
    }

    if (!found) {
        fprintf(stderr, "dtls_record_diff: unknown suite \"%s\"\n", only);
        return 2;
    }

    printf("%lu passed, %lu failed\n", total_passed, total_failed);

    ngx_stream_dtls_record_done();
    X509_free(ec_cert);
    X509_free(rsa_cert);
    EVP_PKEY_free(ec_key);
    EVP_PKEY_free(rsa_key);
    BIO_meth_free(dgram_method);

    return total_failed ? 1 : 0;
}
