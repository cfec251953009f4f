
/*
 * Copyright (C) ngx_dtls authors
 */


/*
 * dtls_proxy_protocol: the PROXY protocol version 2 header (haproxy's
 * doc/proxy-protocol.txt) that starts every datagram a session sends to
 * the upstream, so that the backend knows who is speaking: the client's
 * address and port and the server's, the DTLS version and cipher, the
 * PSK identity or the verified client certificate's CN, the SNI name.
 *
 * All of it is fixed once the handshake is done: the header is built
 * then, once, and again only when a renewal of the session swaps in new
 * keys, for the same peer (ngx_stream_dtls_renew_finish()), or when a
 * session of dtls_session_zone is continued in a new nginx session.  It
 * is built from the session's values (variables.c), which the zone keeps:
 * those of the $dtls_* variables, and what only the header says of the
 * client's certificate (ngx_stream_dtls_proxy_protocol_ssl()).
 * ngx_stream_dtls_recv() puts it in front of each record's plaintext.
 * UDP loses datagrams, so every one carries it, not only the first.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_stream.h>

#include "ngx_stream_dtls.h"


#define NGX_STREAM_DTLS_PP2_PROXY               0x21    /* v2, PROXY */
#define NGX_STREAM_DTLS_PP2_UNSPEC              0x00
#define NGX_STREAM_DTLS_PP2_UDP4                0x12
#define NGX_STREAM_DTLS_PP2_UDP6                0x22

#define NGX_STREAM_DTLS_PP2_TYPE_AUTHORITY      0x02
#define NGX_STREAM_DTLS_PP2_TYPE_SSL            0x20
#define NGX_STREAM_DTLS_PP2_SUBTYPE_SSL_VERSION 0x21
#define NGX_STREAM_DTLS_PP2_SUBTYPE_SSL_CN      0x22
#define NGX_STREAM_DTLS_PP2_SUBTYPE_SSL_CIPHER  0x23

#define NGX_STREAM_DTLS_PP2_CLIENT_SSL          0x01
#define NGX_STREAM_DTLS_PP2_CLIENT_CERT_CONN    0x02
#define NGX_STREAM_DTLS_PP2_CLIENT_CERT_SESS    0x04

/* <verify> without a client certificate: X509_V_ERR_UNSPECIFIED */

#define NGX_STREAM_DTLS_PP2_VERIFY_NONE         1

/*
 * Bounds on each value: a longer one is left out, never cut (a cut name
 * could be another peer's).  A CN is at most 64 characters (RFC 5280,
 * ub-common-name), of up to 4 bytes each in UTF-8; a host name at most
 * 255 bytes (RFC 6066), as OpenSSL enforces; identities are bounded by
 * the key file.
 */

#define NGX_STREAM_DTLS_PP2_NAME_MAX            64      /* version, cipher */
#define NGX_STREAM_DTLS_PP2_CN_MAX              256
#define NGX_STREAM_DTLS_PP2_AUTHORITY_MAX       255

#define NGX_STREAM_DTLS_PP2_HEADER              16
#define NGX_STREAM_DTLS_PP2_TLV                 3
#define NGX_STREAM_DTLS_PP2_SSL                 (1 + 4)

#define NGX_STREAM_DTLS_PP2_MAX                                               \
    (NGX_STREAM_DTLS_PP2_HEADER + 36                                          \
     + NGX_STREAM_DTLS_PP2_TLV + NGX_STREAM_DTLS_PP2_AUTHORITY_MAX            \
     + NGX_STREAM_DTLS_PP2_TLV + NGX_STREAM_DTLS_PP2_SSL                      \
     + 2 * (NGX_STREAM_DTLS_PP2_TLV + NGX_STREAM_DTLS_PP2_NAME_MAX)           \
     + NGX_STREAM_DTLS_PP2_TLV + NGX_STREAM_DTLS_PP2_CN_MAX                   \
     + NGX_STREAM_DTLS_PP2_TLV + NGX_STREAM_DTLS_IDENTITY_MAX_LEN)


/* what the header says of the session, each string without its NUL */

typedef struct {
    ngx_str_t                   version;
    ngx_str_t                   cipher;
    ngx_str_t                   cn;
    ngx_str_t                   identity;
    ngx_str_t                   authority;
    uint32_t                    verify;
    u_char                      client;
} ngx_stream_dtls_pp2_t;


static ngx_int_t ngx_stream_dtls_pp2_session(ngx_stream_dtls_conn_t *ctx,
    ngx_stream_dtls_pp2_t *pp);
static u_char *ngx_stream_dtls_pp2_cn(ngx_connection_t *c, X509 *cert,
    int *len);
static void ngx_stream_dtls_pp2_string(ngx_str_t *s, ngx_str_t *value,
    size_t max);
static size_t ngx_stream_dtls_pp2_family(struct sockaddr *src,
    struct sockaddr *dst, u_char *family);
static u_char *ngx_stream_dtls_pp2_addresses(u_char *p, u_char family,
    struct sockaddr *src, struct sockaddr *dst);
static u_char *ngx_stream_dtls_pp2_tlv(u_char *p, u_char type,
    ngx_str_t *value);
static u_char *ngx_stream_dtls_pp2_uint16(u_char *p, size_t n);


ngx_int_t
ngx_stream_dtls_proxy_protocol(ngx_stream_dtls_conn_t *ctx)
{
    u_char                 *p, family;
    size_t                  len, addr_len, ssl_len;
    ngx_connection_t       *c;
    ngx_stream_dtls_pp2_t   pp;

    c = ctx->connection;

    if (ngx_stream_dtls_pp2_session(ctx, &pp) != NGX_OK) {
        return NGX_DECLINED;
    }

    addr_len = ngx_stream_dtls_pp2_family(c->sockaddr, c->local_sockaddr,
                                          &family);

    ssl_len = NGX_STREAM_DTLS_PP2_SSL
              + NGX_STREAM_DTLS_PP2_TLV + pp.version.len
              + NGX_STREAM_DTLS_PP2_TLV + pp.cipher.len
              + (pp.cn.len ? NGX_STREAM_DTLS_PP2_TLV + pp.cn.len : 0);

    len = NGX_STREAM_DTLS_PP2_HEADER + addr_len
          + (pp.authority.len ? NGX_STREAM_DTLS_PP2_TLV + pp.authority.len
                              : 0)
          + NGX_STREAM_DTLS_PP2_TLV + ssl_len
          + (pp.identity.len ? NGX_STREAM_DTLS_PP2_TLV + pp.identity.len
                             : 0);

    /*
     * The session's first header is allocated to its size; one that a
     * renewal makes longer gets room for the longest there can be, so
     * that renewals cannot grow the session's pool
     */

    if (len > ctx->pp_size) {
        ctx->pp_size = ctx->pp ? NGX_STREAM_DTLS_PP2_MAX : len;

        ctx->pp = ngx_pnalloc(c->pool, ctx->pp_size);
        if (ctx->pp == NULL) {
            ctx->pp_size = 0;
            ctx->pp_len = 0;
            return NGX_ERROR;
        }
    }

    p = ctx->pp;

    /* the signature: \r\n\r\n\0\r\nQUIT\n */

    p = ngx_cpymem(p, "\r\n\r\n\0\r\nQUIT\n", 12);

    *p++ = NGX_STREAM_DTLS_PP2_PROXY;
    *p++ = family;
    p = ngx_stream_dtls_pp2_uint16(p, len - NGX_STREAM_DTLS_PP2_HEADER);

    p = ngx_stream_dtls_pp2_addresses(p, family, c->sockaddr,
                                      c->local_sockaddr);

    if (pp.authority.len) {
        p = ngx_stream_dtls_pp2_tlv(p, NGX_STREAM_DTLS_PP2_TYPE_AUTHORITY,
                                    &pp.authority);
    }

    /* PP2_TYPE_SSL: client, verify, then its own TLVs */

    *p++ = NGX_STREAM_DTLS_PP2_TYPE_SSL;
    p = ngx_stream_dtls_pp2_uint16(p, ssl_len);

    *p++ = pp.client;
    *p++ = (u_char) (pp.verify >> 24);
    *p++ = (u_char) (pp.verify >> 16);
    *p++ = (u_char) (pp.verify >> 8);
    *p++ = (u_char) pp.verify;

    p = ngx_stream_dtls_pp2_tlv(p, NGX_STREAM_DTLS_PP2_SUBTYPE_SSL_VERSION,
                                &pp.version);
    p = ngx_stream_dtls_pp2_tlv(p, NGX_STREAM_DTLS_PP2_SUBTYPE_SSL_CIPHER,
                                &pp.cipher);

    if (pp.cn.len) {
        p = ngx_stream_dtls_pp2_tlv(p, NGX_STREAM_DTLS_PP2_SUBTYPE_SSL_CN,
                                    &pp.cn);
    }

    if (pp.identity.len) {
        p = ngx_stream_dtls_pp2_tlv(p, NGX_STREAM_DTLS_PP2_TYPE_PSK_IDENTITY,
                                    &pp.identity);
    }

    ctx->pp_len = p - ctx->pp;

    ngx_log_debug3(NGX_LOG_DEBUG_STREAM, c->log, 0,
                   "dtls PROXY protocol header: %uz bytes, client %d, "
                   "verify %uD", ctx->pp_len, (int) pp.client, pp.verify);

    return NGX_OK;
}


/*
 * The session's value that only the header has: <client> (1 byte) and
 * <verify> (4), then the client certificate's CN, taken with the other
 * values of a session while its SSL object lives (variables.c); none
 * without dtls_proxy_protocol
 */

ngx_int_t
ngx_stream_dtls_proxy_protocol_ssl(ngx_connection_t *c, ngx_pool_t *pool,
    ngx_str_t *s)
{
    int                      n;
    SSL                     *ssl;
    X509                    *cert;
    u_char                  *p, *cn, client;
    uint32_t                 verify;
    ngx_stream_dtls_conn_t  *ctx;

    ctx = ngx_stream_get_module_ctx((ngx_stream_session_t *) c->data,
                                    ngx_stream_dtls_module);

    if (!ctx->conf->proxy_protocol) {
        return NGX_OK;
    }

    ssl = c->ssl->connection;

    client = NGX_STREAM_DTLS_PP2_CLIENT_SSL;
    verify = NGX_STREAM_DTLS_PP2_VERIFY_NONE;
    cn = NULL;
    n = 0;

    /*
     * <verify> as $dtls_client_verify: 0 for a client certificate that
     * verified, OpenSSL's verify error for one admitted unverified
     * (optional_no_ca), 1 without a certificate; a resumed session's
     * certificate was sent in the session, not on this handshake
     */

    cert = SSL_get0_peer_certificate(ssl);

    if (cert) {
        client |= NGX_STREAM_DTLS_PP2_CLIENT_CERT_SESS;

        if (!SSL_session_reused(ssl)) {
            client |= NGX_STREAM_DTLS_PP2_CLIENT_CERT_CONN;
        }

        verify = (uint32_t) SSL_get_verify_result(ssl);

        /* a name is said only where a CA vouches for it */

        if (verify == X509_V_OK) {
            cn = ngx_stream_dtls_pp2_cn(c, cert, &n);
        }
    }

    p = ngx_pnalloc(pool, 1 + 4 + n);
    if (p == NULL) {
        OPENSSL_free(cn);
        return NGX_ERROR;
    }

    s->data = p;
    s->len = 1 + 4 + n;

    *p++ = client;
    *p++ = (u_char) (verify >> 24);
    *p++ = (u_char) (verify >> 16);
    *p++ = (u_char) (verify >> 8);
    *p++ = (u_char) verify;

    ngx_memcpy(p, cn, n);

    OPENSSL_free(cn);

    return NGX_OK;
}


/* NGX_DECLINED: the session has no value for the header (see above) */

static ngx_int_t
ngx_stream_dtls_pp2_session(ngx_stream_dtls_conn_t *ctx,
    ngx_stream_dtls_pp2_t *pp)
{
    u_char     *p;
    ngx_str_t  *v;

    v = ctx->vars;

    ngx_memzero(pp, sizeof(ngx_stream_dtls_pp2_t));

    p = v[NGX_STREAM_DTLS_VAR_PP2_SSL].data;

    if (p == NULL || v[NGX_STREAM_DTLS_VAR_PP2_SSL].len < 1 + 4) {
        return NGX_DECLINED;
    }

    pp->client = p[0];
    pp->verify = (uint32_t) p[1] << 24 | p[2] << 16 | p[3] << 8 | p[4];
    pp->cn.len = v[NGX_STREAM_DTLS_VAR_PP2_SSL].len - (1 + 4);
    pp->cn.data = p + 1 + 4;

    ngx_stream_dtls_pp2_string(&pp->version, &v[NGX_STREAM_DTLS_VAR_PROTOCOL],
                               NGX_STREAM_DTLS_PP2_NAME_MAX);
    ngx_stream_dtls_pp2_string(&pp->cipher, &v[NGX_STREAM_DTLS_VAR_CIPHER],
                               NGX_STREAM_DTLS_PP2_NAME_MAX);
    ngx_stream_dtls_pp2_string(&pp->identity,
                               &v[NGX_STREAM_DTLS_VAR_PSK_IDENTITY],
                               NGX_STREAM_DTLS_IDENTITY_MAX_LEN);
    ngx_stream_dtls_pp2_string(&pp->authority,
                               &v[NGX_STREAM_DTLS_VAR_SERVER_NAME],
                               NGX_STREAM_DTLS_PP2_AUTHORITY_MAX);

    return NGX_OK;
}


/*
 * The certificate subject's CN in UTF-8: the last one, the most specific,
 * as OpenSSL's host name checks take it; to be freed with OPENSSL_free()
 */

static u_char *
ngx_stream_dtls_pp2_cn(ngx_connection_t *c, X509 *cert, int *len)
{
    int               i, next, n;
    u_char           *utf8;
    X509_NAME        *name;
    X509_NAME_ENTRY  *entry;

    name = X509_get_subject_name(cert);
    if (name == NULL) {
        return NULL;
    }

    i = -1;

    while ((next = X509_NAME_get_index_by_NID(name, NID_commonName, i)) >= 0)
    {
        i = next;
    }

    if (i < 0) {
        return NULL;
    }

    entry = X509_NAME_get_entry(name, i);

    utf8 = NULL;
    n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(entry));

    if (n <= 0) {
        ERR_clear_error();
        OPENSSL_free(utf8);
        return NULL;
    }

    if ((size_t) n > NGX_STREAM_DTLS_PP2_CN_MAX
        || ngx_strlchr(utf8, utf8 + n, '\0') != NULL)
    {
        ngx_log_error(NGX_LOG_INFO, c->log, 0,
                      "DTLS client certificate CN of %d bytes left out of "
                      "the PROXY protocol header: longer than %d bytes, "
                      "or with a NUL", n, NGX_STREAM_DTLS_PP2_CN_MAX);
        OPENSSL_free(utf8);
        return NULL;
    }

    *len = n;

    return utf8;
}


/* a value longer than max is left out, never cut */

static void
ngx_stream_dtls_pp2_string(ngx_str_t *s, ngx_str_t *value, size_t max)
{
    if (value->data && value->len <= max) {
        *s = *value;
    }
}


/* the family and protocol byte, and the length of the addresses */

static size_t
ngx_stream_dtls_pp2_family(struct sockaddr *src, struct sockaddr *dst,
    u_char *family)
{
    if (src->sa_family == AF_INET && dst->sa_family == AF_INET) {
        *family = NGX_STREAM_DTLS_PP2_UDP4;
        return 2 * 4 + 2 * 2;
    }

#if (NGX_HAVE_INET6)
    if (src->sa_family == AF_INET6 && dst->sa_family == AF_INET6) {
        *family = NGX_STREAM_DTLS_PP2_UDP6;
        return 2 * 16 + 2 * 2;
    }
#endif

    /* the specification's choice for a family it has no room for */

    *family = NGX_STREAM_DTLS_PP2_UNSPEC;
    return 0;
}


/* source and destination address, then ports: in network order already */

static u_char *
ngx_stream_dtls_pp2_addresses(u_char *p, u_char family, struct sockaddr *src,
    struct sockaddr *dst)
{
    struct sockaddr_in   *sin;
#if (NGX_HAVE_INET6)
    struct sockaddr_in6  *sin6;
#endif

    switch (family) {

    case NGX_STREAM_DTLS_PP2_UDP4:
        sin = (struct sockaddr_in *) src;
        p = ngx_cpymem(p, &sin->sin_addr, 4);
        sin = (struct sockaddr_in *) dst;
        p = ngx_cpymem(p, &sin->sin_addr, 4);

        p = ngx_cpymem(p, &((struct sockaddr_in *) src)->sin_port, 2);
        p = ngx_cpymem(p, &sin->sin_port, 2);
        break;

#if (NGX_HAVE_INET6)
    case NGX_STREAM_DTLS_PP2_UDP6:
        sin6 = (struct sockaddr_in6 *) src;
        p = ngx_cpymem(p, &sin6->sin6_addr, 16);
        sin6 = (struct sockaddr_in6 *) dst;
        p = ngx_cpymem(p, &sin6->sin6_addr, 16);

        p = ngx_cpymem(p, &((struct sockaddr_in6 *) src)->sin6_port, 2);
        p = ngx_cpymem(p, &sin6->sin6_port, 2);
        break;
#endif

    default: /* NGX_STREAM_DTLS_PP2_UNSPEC */
        break;
    }

    return p;
}


static u_char *
ngx_stream_dtls_pp2_tlv(u_char *p, u_char type, ngx_str_t *value)
{
    *p++ = type;
    p = ngx_stream_dtls_pp2_uint16(p, value->len);

    return ngx_cpymem(p, value->data, value->len);
}


static u_char *
ngx_stream_dtls_pp2_uint16(u_char *p, size_t n)
{
    *p++ = (u_char) (n >> 8);
    *p++ = (u_char) n;

    return p;
}
