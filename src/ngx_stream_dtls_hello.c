
/*
 * Copyright (C) ngx_dtls authors
 */


/*
 * The first datagram of a session, checked before any state is kept
 * (RFC 6347, 4.2.1).  A ClientHello without a valid cookie is answered
 * with a HelloVerifyRequest no larger than itself; anything else is
 * dropped unanswered.  The cookie is an HMAC over the client's address
 * and port, the server's, and the ClientHello parameters, keyed per epoch
 * of the cookie lifetime, so it expires and cannot be moved to another
 * address.  The base secret is drawn once in the master process and kept
 * across reloads: every worker, old or new, checks what any other issued.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_stream.h>

#include "ngx_stream_dtls.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>


/* the record, handshake and message constants are OpenSSL's */

#define NGX_STREAM_DTLS_HVR_LEN                                               \
    (DTLS1_RT_HEADER_LENGTH + DTLS1_HM_HEADER_LENGTH + 3                      \
     + NGX_STREAM_DTLS_COOKIE_LEN)


typedef struct {
    u_char                     *record_seq;     /* epoch and sequence: 8 */
    u_char                     *version;        /* client_version: 2 */
    u_char                     *random;         /* 32 */
    ngx_str_t                   session_id;
    ngx_str_t                   cookie;
    ngx_str_t                   cipher_suites;
} ngx_stream_dtls_client_hello_t;


static ngx_int_t ngx_stream_dtls_parse_hello(u_char *p, size_t size,
    ngx_stream_dtls_client_hello_t *ch);
static ngx_uint_t ngx_stream_dtls_stray_record(u_char *p, size_t size);
static ngx_int_t ngx_stream_dtls_make_cookie(ngx_connection_t *c,
    u_char *key, ngx_stream_dtls_client_hello_t *ch, u_char *cookie);
static ngx_int_t ngx_stream_dtls_mac_address(EVP_MAC_CTX *mctx,
    struct sockaddr *sa);
static void ngx_stream_dtls_epoch_keys(ngx_stream_dtls_cookie_secret_t *secret);
static void ngx_stream_dtls_send_hello_verify(ngx_connection_t *c,
    ngx_send_chain_pt send_chain, ngx_stream_dtls_client_hello_t *ch,
    u_char *cookie, size_t limit);
static void ngx_stream_dtls_cookie_secret_cleanup(void *data);
static void ngx_stream_dtls_base_cleanup(void *data);


static EVP_MAC     *ngx_stream_dtls_hmac;
static u_char       ngx_stream_dtls_base[NGX_STREAM_DTLS_SECRET_LEN];
static ngx_uint_t   ngx_stream_dtls_base_set;


ngx_stream_dtls_cookie_secret_t *
ngx_stream_dtls_cookie_secret(ngx_conf_t *cf, time_t lifetime, u_char *base)
{
    ngx_pool_cleanup_t               *cln;
    ngx_stream_dtls_cookie_secret_t  *secret;

    if (ngx_stream_dtls_hmac == NULL) {
        ngx_stream_dtls_hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
        if (ngx_stream_dtls_hmac == NULL) {
            ngx_ssl_error(NGX_LOG_EMERG, cf->log, 0,
                          "EVP_MAC_fetch(\"HMAC\") failed");
            return NULL;
        }
    }

    secret = ngx_pcalloc(cf->pool, sizeof(ngx_stream_dtls_cookie_secret_t));
    if (secret == NULL) {
        return NULL;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        return NULL;
    }

    cln->handler = ngx_stream_dtls_cookie_secret_cleanup;
    cln->data = secret;

    secret->lifetime = lifetime;
    secret->epoch = -1;

    /* several instances share a secret from dtls_cookie_secret */

    if (base) {
        ngx_memcpy(secret->base, base, NGX_STREAM_DTLS_SECRET_LEN);
        return secret;
    }

    /*
     * made before the workers fork, so all of them share it, and kept
     * for the next configuration, so that a cookie issued just before a
     * reload still works just after it
     */

    if (!ngx_stream_dtls_base_set) {
        if (RAND_bytes(ngx_stream_dtls_base, NGX_STREAM_DTLS_SECRET_LEN)
            != 1)
        {
            ngx_ssl_error(NGX_LOG_EMERG, cf->log, 0, "RAND_bytes() failed");
            return NULL;
        }

        ngx_stream_dtls_base_set = 1;
    }

    ngx_memcpy(secret->base, ngx_stream_dtls_base,
               NGX_STREAM_DTLS_SECRET_LEN);

    return secret;
}


char *
ngx_stream_dtls_cookie_secret_file(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_stream_dtls_srv_conf_t *dscf = conf;

    u_char              *base;
    ngx_str_t           *value, name, text;
    unsigned int         len;
    ngx_pool_cleanup_t  *cln;

    if (dscf->cookie_base != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;
    name = value[1];

    if (ngx_conf_full_name(cf->cycle, &name, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    if (ngx_stream_dtls_read_secret(cf, "cookie secret file", &name, &text)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    if (text.len < NGX_STREAM_DTLS_SECRET_LEN) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "cookie secret file \"%s\" has %uz bytes, "
                           "at least %d are needed",
                           name.data, text.len, NGX_STREAM_DTLS_SECRET_LEN);
        ngx_stream_dtls_free_secret(&text);
        return NGX_CONF_ERROR;
    }

    base = ngx_pcalloc(cf->pool, NGX_STREAM_DTLS_SECRET_LEN);
    if (base == NULL) {
        ngx_stream_dtls_free_secret(&text);
        return NGX_CONF_ERROR;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        ngx_stream_dtls_free_secret(&text);
        return NGX_CONF_ERROR;
    }

    cln->handler = ngx_stream_dtls_base_cleanup;
    cln->data = base;

    /* any length of secret, 32 bytes of key */

    len = NGX_STREAM_DTLS_SECRET_LEN;

    if (EVP_Digest(text.data, text.len, base, &len, EVP_sha256(), NULL)
        != 1)
    {
        ngx_ssl_error(NGX_LOG_EMERG, cf->log, 0, "EVP_Digest() failed");
        ngx_stream_dtls_free_secret(&text);
        return NGX_CONF_ERROR;
    }

    ngx_stream_dtls_free_secret(&text);

    dscf->cookie_base = base;

    return NGX_CONF_OK;
}


static void
ngx_stream_dtls_base_cleanup(void *data)
{
    OPENSSL_cleanse(data, NGX_STREAM_DTLS_SECRET_LEN);
}


static void
ngx_stream_dtls_cookie_secret_cleanup(void *data)
{
    ngx_stream_dtls_cookie_secret_t  *secret = data;

    OPENSSL_cleanse(secret, sizeof(ngx_stream_dtls_cookie_secret_t));
}


void
ngx_stream_dtls_cookie_wipe(void)
{
    OPENSSL_cleanse(ngx_stream_dtls_base, NGX_STREAM_DTLS_SECRET_LEN);
    ngx_stream_dtls_base_set = 0;
}


/*
 * Without a secret (dtls_cookie off) only the ClientHello is checked.
 * A HelloVerifyRequest goes out as a plain datagram through send_chain,
 * nginx's own, also when the session already has a record layer.
 */

ngx_stream_dtls_hello_e
ngx_stream_dtls_hello(ngx_connection_t *c, ngx_send_chain_pt send_chain,
    ngx_stream_dtls_cookie_secret_t *secret, ngx_buf_t *b, u_char *cookie)
{
    ngx_uint_t                       i;
    ngx_stream_dtls_client_hello_t   ch;
    u_char                           expected[NGX_STREAM_DTLS_COOKIE_LEN];

    if (b == NULL) {
        return NGX_STREAM_DTLS_HELLO_INVALID;
    }

    if (ngx_stream_dtls_parse_hello(b->pos, b->last - b->pos, &ch)
        != NGX_OK)
    {
        return ngx_stream_dtls_stray_record(b->pos, b->last - b->pos)
               ? NGX_STREAM_DTLS_HELLO_STRAY : NGX_STREAM_DTLS_HELLO_INVALID;
    }

    if (secret == NULL) {
        return NGX_STREAM_DTLS_HELLO_OK;
    }

    ngx_stream_dtls_epoch_keys(secret);

    /* the current epoch's key, then the previous one's */

    for (i = 0; i < 2; i++) {

        if (ngx_stream_dtls_make_cookie(c, secret->key[i], &ch, expected)
            != NGX_OK)
        {
            return NGX_STREAM_DTLS_HELLO_INVALID;
        }

        if (i == 0) {
            ngx_memcpy(cookie, expected, NGX_STREAM_DTLS_COOKIE_LEN);
        }

        if (ch.cookie.len == NGX_STREAM_DTLS_COOKIE_LEN
            && CRYPTO_memcmp(ch.cookie.data, expected,
                             NGX_STREAM_DTLS_COOKIE_LEN)
               == 0)
        {
            ngx_memcpy(cookie, ch.cookie.data, NGX_STREAM_DTLS_COOKIE_LEN);
            return NGX_STREAM_DTLS_HELLO_OK;
        }

        if (ch.cookie.len == 0) {
            break;
        }
    }

    /* "cookie" holds the current epoch's cookie for this client */

    ngx_stream_dtls_send_hello_verify(c, send_chain, &ch, cookie,
                                      b->last - b->pos);

    return ch.cookie.len ? NGX_STREAM_DTLS_HELLO_BAD_COOKIE
                         : NGX_STREAM_DTLS_HELLO_VERIFY;
}


static ngx_int_t
ngx_stream_dtls_parse_hello(u_char *p, size_t size,
    ngx_stream_dtls_client_hello_t *ch)
{
    u_char  *last;
    size_t   len, n, msg_len, frag_off, frag_len;

    /* record header: type, version, epoch, sequence number, length */

    if (size < DTLS1_RT_HEADER_LENGTH
        || p[0] != SSL3_RT_HANDSHAKE
        || p[1] != DTLS1_VERSION_MAJOR
        || p[3] != 0 || p[4] != 0)
    {
        return NGX_DECLINED;
    }

    ch->record_seq = p + 3;

    len = (p[11] << 8) | p[12];

    p += DTLS1_RT_HEADER_LENGTH;
    size -= DTLS1_RT_HEADER_LENGTH;

    if (len > size
        || len < DTLS1_HM_HEADER_LENGTH
        || len > SSL3_RT_MAX_PLAIN_LENGTH)
    {
        return NGX_DECLINED;
    }

    last = p + len;

    /*
     * handshake header: type, length, message_seq, fragment_offset,
     * fragment_length; the ClientHello must come whole, as the cookie
     * check keeps nothing to reassemble fragments with
     */

    msg_len = (p[1] << 16) | (p[2] << 8) | p[3];
    frag_off = (p[6] << 16) | (p[7] << 8) | p[8];
    frag_len = (p[9] << 16) | (p[10] << 8) | p[11];

    if (p[0] != SSL3_MT_CLIENT_HELLO
        || p[4] != 0 || p[5] > 1
        || frag_off != 0
        || frag_len != msg_len
        || frag_len != len - DTLS1_HM_HEADER_LENGTH)
    {
        return NGX_DECLINED;
    }

    p += DTLS1_HM_HEADER_LENGTH;

    /* client_version, random, session_id, cookie */

    if (last - p < 2 + 32 + 1) {
        return NGX_DECLINED;
    }

    if (p[0] != DTLS1_VERSION_MAJOR) {
        return NGX_DECLINED;
    }

    ch->version = p;
    ch->random = p + 2;
    p += 2 + 32;

    n = *p++;

    if (n > 32 || (size_t) (last - p) < n + 1) {
        return NGX_DECLINED;
    }

    ch->session_id.len = n;
    ch->session_id.data = p;
    p += n;

    n = *p++;

    if ((size_t) (last - p) < n + 2) {
        return NGX_DECLINED;
    }

    ch->cookie.len = n;
    ch->cookie.data = p;
    p += n;

    /* cipher_suites, compression_methods, extensions */

    n = (p[0] << 8) | p[1];
    p += 2;

    if (n < 2 || (n & 1) || (size_t) (last - p) < n + 2) {
        return NGX_DECLINED;
    }

    ch->cipher_suites.len = n;
    ch->cipher_suites.data = p;
    p += n;

    n = *p++;

    if (n < 1 || (size_t) (last - p) < n) {
        return NGX_DECLINED;
    }

    p += n;

    if (p == last) {
        return NGX_OK;
    }

    if (last - p < 2) {
        return NGX_DECLINED;
    }

    n = (p[0] << 8) | p[1];
    p += 2;

    if ((size_t) (last - p) != n) {
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/*
 * A whole DTLS record of a later epoch: what a client sends to a session
 * nginx has ended (its close_notify after ours, a retransmitted Finished
 * after a timeout), not worth an info line each.
 */

static ngx_uint_t
ngx_stream_dtls_stray_record(u_char *p, size_t size)
{
    if (size < DTLS1_RT_HEADER_LENGTH
        || ((p[0] < 20 || p[0] > 23) && p[0] != NGX_STREAM_DTLS_RECORD_CID)
        || p[1] != DTLS1_VERSION_MAJOR
        || (p[3] == 0 && p[4] == 0))
    {
        return 0;
    }

    /* a tls12_cid record's length is after a CID of the zone's length */

    if (p[0] == NGX_STREAM_DTLS_RECORD_CID) {
        return 1;
    }

    return (size_t) ((p[11] << 8) | p[12])
           <= size - DTLS1_RT_HEADER_LENGTH;
}


static ngx_int_t
ngx_stream_dtls_make_cookie(ngx_connection_t *c, u_char *key,
    ngx_stream_dtls_client_hello_t *ch, u_char *cookie)
{
    size_t        len;
    ngx_int_t     rc;
    EVP_MAC_CTX  *mctx;
    OSSL_PARAM    params[2];

    mctx = EVP_MAC_CTX_new(ngx_stream_dtls_hmac);
    if (mctx == NULL) {
        ngx_ssl_error(NGX_LOG_ALERT, c->log, 0, "EVP_MAC_CTX_new() failed");
        return NGX_ERROR;
    }

    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
                                                 "SHA256", 0);
    params[1] = OSSL_PARAM_construct_end();

    if (EVP_MAC_init(mctx, key, NGX_STREAM_DTLS_SECRET_LEN, params) != 1) {
        rc = NGX_ERROR;
        goto done;
    }

    rc = ngx_stream_dtls_mac_address(mctx, c->sockaddr);
    if (rc != NGX_OK) {
        goto done;
    }

    rc = ngx_stream_dtls_mac_address(mctx, c->local_sockaddr);
    if (rc != NGX_OK) {
        goto done;
    }

    if (EVP_MAC_update(mctx, ch->version, 2 + 32) != 1
        || EVP_MAC_update(mctx, ch->session_id.data - 1,
                          ch->session_id.len + 1) != 1
        || EVP_MAC_update(mctx, ch->cipher_suites.data - 2,
                          ch->cipher_suites.len + 2) != 1
        || EVP_MAC_final(mctx, cookie, &len, NGX_STREAM_DTLS_COOKIE_LEN)
           != 1)
    {
        rc = NGX_ERROR;
    }

done:

    if (rc == NGX_ERROR) {
        ngx_ssl_error(NGX_LOG_ALERT, c->log, 0, "cookie HMAC failed");
    }

    EVP_MAC_CTX_free(mctx);

    return rc;
}


static ngx_int_t
ngx_stream_dtls_mac_address(EVP_MAC_CTX *mctx, struct sockaddr *sa)
{
    u_char               *addr;
    size_t                len;
    in_port_t             port;
    struct sockaddr_in   *sin;
#if (NGX_HAVE_INET6)
    struct sockaddr_in6  *sin6;
#endif

    switch (sa->sa_family) {

#if (NGX_HAVE_INET6)
    case AF_INET6:
        sin6 = (struct sockaddr_in6 *) sa;
        addr = sin6->sin6_addr.s6_addr;
        len = 16;
        port = sin6->sin6_port;
        break;
#endif

    case AF_INET:
        sin = (struct sockaddr_in *) sa;
        addr = (u_char *) &sin->sin_addr;
        len = 4;
        port = sin->sin_port;
        break;

    default:
        return NGX_DECLINED;
    }

    /* a reply to port 0 cannot reach anyone: spoofed */

    if (port == 0) {
        return NGX_DECLINED;
    }

    if (EVP_MAC_update(mctx, addr, len) != 1
        || EVP_MAC_update(mctx, (u_char *) &port, sizeof(in_port_t)) != 1)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void
ngx_stream_dtls_epoch_keys(ngx_stream_dtls_cookie_secret_t *secret)
{
    time_t        epoch;
    u_char        in[8], *p;
    ngx_uint_t    i;
    unsigned int  len;

    epoch = ngx_time() / secret->lifetime;

    if (epoch == secret->epoch) {
        return;
    }

    /* key[i] = HMAC-SHA256(base, epoch - i), in network byte order */

    for (i = 0; i < 2; i++) {
        uint64_t  e = (uint64_t) (epoch - i);

        for (p = in + 8; p > in; e >>= 8) {
            *--p = (u_char) (e & 0xff);
        }

        len = NGX_STREAM_DTLS_SECRET_LEN;

        (void) HMAC(EVP_sha256(), secret->base, NGX_STREAM_DTLS_SECRET_LEN,
                    in, sizeof(in), secret->key[i], &len);
    }

    secret->epoch = epoch;
}


static void
ngx_stream_dtls_send_hello_verify(ngx_connection_t *c,
    ngx_send_chain_pt send_chain, ngx_stream_dtls_client_hello_t *ch,
    u_char *cookie, size_t limit)
{
    u_char      hvr[NGX_STREAM_DTLS_HVR_LEN], *p;
    uint64_t    seq;
    ngx_uint_t  epoch;

    /* never answer with more than was sent: no amplification */

    if (sizeof(hvr) > limit) {
        return;
    }

    p = hvr;

    /* record header; the epoch and sequence number are the ClientHello's */

    epoch = ngx_stream_dtls_read_uint16(ch->record_seq);
    seq = ngx_stream_dtls_read_uint48(ch->record_seq + 2);

    p = ngx_stream_dtls_record_header(p, SSL3_RT_HANDSHAKE, DTLS1_VERSION,
                                      epoch, seq,
                                      DTLS1_HM_HEADER_LENGTH + 3
                                      + NGX_STREAM_DTLS_COOKIE_LEN);

    /* handshake header: message_seq 0, one fragment */

    *p++ = DTLS1_MT_HELLO_VERIFY_REQUEST;
    *p++ = 0;
    *p++ = 0;
    *p++ = 3 + NGX_STREAM_DTLS_COOKIE_LEN;
    *p++ = 0;
    *p++ = 0;
    *p++ = 0;
    *p++ = 0;
    *p++ = 0;
    *p++ = 0;
    *p++ = 0;
    *p++ = 3 + NGX_STREAM_DTLS_COOKIE_LEN;

    /* server_version is DTLS 1.0 for every version, RFC 6347 4.2.1 */

    *p++ = 0xfe;
    *p++ = 0xff;
    *p++ = NGX_STREAM_DTLS_COOKIE_LEN;
    ngx_memcpy(p, cookie, NGX_STREAM_DTLS_COOKIE_LEN);

    (void) ngx_stream_dtls_send_datagram(c, send_chain, hvr, sizeof(hvr));
}


/* OpenSSL's own look at the ClientHello, after ours accepted it */

int
ngx_stream_dtls_verify_cookie_cb(SSL *ssl, const unsigned char *cookie,
    unsigned int len)
{
    ngx_stream_dtls_conn_t  *ctx;

    ctx = ngx_stream_dtls_ssl_conn(ssl);

    return len == NGX_STREAM_DTLS_COOKIE_LEN
           && CRYPTO_memcmp(cookie, ctx->cookie, len) == 0;
}


int
ngx_stream_dtls_generate_cookie_cb(SSL *ssl, unsigned char *cookie,
    unsigned int *len)
{
    /*
     * Cookies are issued before OpenSSL sees a session (see above);
     * OpenSSL asking for one means a second ClientHello, refused.
     */

    return 0;
}
