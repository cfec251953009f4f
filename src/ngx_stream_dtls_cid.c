
/*
 * Copyright (C) ngx_dtls authors
 */


/*
 * Connection IDs (RFC 9146), which OpenSSL does not have.
 *
 * The connection_id extension (54) is negotiated through OpenSSL's custom
 * extension API: a client that offers it says which CID it wants in the
 * records it receives (none, if it offers an empty one: it then gets
 * records without one), and the server answers with the CID it mints for
 * itself, random and unique in dtls_session_zone, which the client puts
 * in every record it sends.  A client that does not offer it gets no
 * answer, and records as before.
 *
 * OpenSSL writes and reads the records of its handshake without a CID;
 * those of epoch 1 (the Finished messages, alerts after them) are
 * translated where the BIO meets them, with the record keys derived from
 * the handshake's master secret:
 *
 *   - each record OpenSSL writes in a protected epoch is opened with the
 *     server's write keys and sealed again as a tls12_cid record with the
 *     client's CID, the same epoch and sequence number, when the client
 *     asked for a CID;
 *
 *   - the client's tls12_cid records of a datagram wait until OpenSSL has
 *     read the records before them (its ClientKeyExchange, which gives
 *     the master secret, and ChangeCipherSpec), then are opened and
 *     sealed again without a CID, and given to OpenSSL as the next
 *     datagram.
 *
 * Once the handshake is done the session's own records (record.c) carry
 * the CIDs.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_stream.h>

#include <openssl/rand.h>

#include "ngx_stream_dtls.h"


#define NGX_STREAM_DTLS_CID_EXT    54       /* connection_id, RFC 9146 */

/* minting again after this many CIDs taken in the zone is not worth it */
#define NGX_STREAM_DTLS_CID_TRIES  4


static int ngx_stream_dtls_cid_add(SSL *ssl, unsigned int ext_type,
    unsigned int context, const unsigned char **out, size_t *outlen,
    X509 *x, size_t chainidx, int *al, void *add_arg);
static int ngx_stream_dtls_cid_parse(SSL *ssl, unsigned int ext_type,
    unsigned int context, const unsigned char *in, size_t inlen, X509 *x,
    size_t chainidx, int *al, void *parse_arg);
static ngx_int_t ngx_stream_dtls_cid_mint(ngx_stream_dtls_conn_t *ctx);
static size_t ngx_stream_dtls_cid_reseal(ngx_stream_dtls_record_t *from,
    ngx_stream_dtls_record_t *to, u_char *rec, size_t len, u_char *out,
    size_t size);


/* one datagram at a time, per worker */

static u_char  ngx_stream_dtls_cid_datagram[65536];
static u_char  ngx_stream_dtls_cid_plain[NGX_STREAM_DTLS_RECORD_MAX_PLAIN
                                         + 256];


char *
ngx_stream_dtls_connection_id(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_stream_dtls_srv_conf_t *dscf = conf;

    ngx_int_t   n;
    ngx_str_t  *value;

    if (dscf->cid_length != NGX_CONF_UNSET_SIZE) {
        return "is duplicate";
    }

    value = cf->args->elts;

    dscf->cid_file = cf->conf_file->file.name.data;
    dscf->cid_line = cf->conf_file->line;

    if (ngx_strcmp(value[1].data, "off") == 0) {

        if (cf->args->nelts > 2) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\"", &value[2]);
            return NGX_CONF_ERROR;
        }

        dscf->cid_length = 0;
        return NGX_CONF_OK;
    }

    if (ngx_strcmp(value[1].data, "on") != 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value \"%V\", it must be \"on\" or "
                           "\"off\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    dscf->cid_length = NGX_STREAM_DTLS_CID_DEFAULT_LEN;

    if (cf->args->nelts == 2) {
        return NGX_CONF_OK;
    }

    if (ngx_strncmp(value[2].data, "length=", 7) != 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\"", &value[2]);
        return NGX_CONF_ERROR;
    }

    n = ngx_atoi(value[2].data + 7, value[2].len - 7);

    if (n < 1 || n > NGX_STREAM_DTLS_CID_MAX_LEN) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid CID length \"%V\", it must be "
                           "1 to %d bytes", &value[2],
                           NGX_STREAM_DTLS_CID_MAX_LEN);
        return NGX_CONF_ERROR;
    }

    dscf->cid_length = n;

    return NGX_CONF_OK;
}


ngx_int_t
ngx_stream_dtls_cid_init(ngx_conf_t *cf, ngx_stream_dtls_srv_conf_t *dscf)
{
    if (dscf->cid_length == 0) {
        return NGX_OK;
    }

    if (SSL_CTX_add_custom_ext(dscf->ssl.ctx, NGX_STREAM_DTLS_CID_EXT,
                               SSL_EXT_CLIENT_HELLO
                               |SSL_EXT_TLS1_2_SERVER_HELLO,
                               ngx_stream_dtls_cid_add, NULL, NULL,
                               ngx_stream_dtls_cid_parse, NULL)
        != 1)
    {
        ngx_ssl_error(NGX_LOG_EMERG, cf->log, 0,
                      "SSL_CTX_add_custom_ext(connection_id) failed");
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* the ClientHello's connection_id: the CID the client wants to receive */

static int
ngx_stream_dtls_cid_parse(SSL *ssl, unsigned int ext_type,
    unsigned int context, const unsigned char *in, size_t inlen, X509 *x,
    size_t chainidx, int *al, void *parse_arg)
{
    ngx_stream_dtls_conn_t  *ctx;

    if (context != SSL_EXT_CLIENT_HELLO) {
        return 1;
    }

    ctx = ngx_stream_dtls_ssl_conn(ssl);

    if (inlen == 0 || (size_t) in[0] + 1 != inlen) {
        *al = SSL_AD_DECODE_ERROR;
        return 0;
    }

    if (in[0] > NGX_STREAM_DTLS_CID_MAX_LEN) {
        ngx_log_error(NGX_LOG_INFO, ctx->connection->log, 0,
                      "DTLS client's connection ID of %d bytes is longer "
                      "than %d: not negotiated", (int) in[0],
                      NGX_STREAM_DTLS_CID_MAX_LEN);
        return 1;
    }

    ctx->peer_cid_len = in[0];
    ngx_memcpy(ctx->peer_cid, in + 1, in[0]);
    ctx->cid_offered = 1;

    return 1;
}


/*
 * The ServerHello's, called only if the client offered one: the server's
 * CID, for a suite whose records are the module's
 */

static int
ngx_stream_dtls_cid_add(SSL *ssl, unsigned int ext_type,
    unsigned int context, const unsigned char **out, size_t *outlen,
    X509 *x, size_t chainidx, int *al, void *add_arg)
{
    const SSL_CIPHER        *cipher;
    ngx_stream_dtls_conn_t  *ctx;

    if (context != SSL_EXT_TLS1_2_SERVER_HELLO) {
        return 0;
    }

    ctx = ngx_stream_dtls_ssl_conn(ssl);

    if (!ctx->cid_offered) {
        return 0;
    }

    /* the suite chosen, not yet the session's */

    cipher = SSL_get_pending_cipher(ssl);

    if (cipher == NULL
        || ngx_stream_dtls_record_cipher_aead(cipher)
           == NGX_STREAM_DTLS_AEAD_NONE)
    {
        ngx_log_debug0(NGX_LOG_DEBUG_STREAM, ctx->connection->log, 0,
                       "dtls connection ID not negotiated: no AEAD");
        return 0;
    }

    if (ngx_stream_dtls_cid_mint(ctx) != NGX_OK) {
        return 0;
    }

    ctx->cid_ext[0] = (u_char) ctx->cid_len;
    ngx_memcpy(ctx->cid_ext + 1, ctx->cid, ctx->cid_len);

    *out = ctx->cid_ext;
    *outlen = 1 + ctx->cid_len;

    ngx_log_debug2(NGX_LOG_DEBUG_STREAM, ctx->connection->log, 0,
                   "dtls connection ID negotiated: %uz bytes ours, "
                   "%uz the client's", (size_t) ctx->cid_len,
                   (size_t) ctx->peer_cid_len);

    return 1;
}


/*
 * With dtls_bpf the first byte is the worker's number, which steers the
 * client's records to this worker (bpf.c); the others are random
 */

static ngx_int_t
ngx_stream_dtls_cid_mint(ngx_stream_dtls_conn_t *ctx)
{
    size_t                        len;
    ngx_uint_t                    i;
    ngx_stream_session_t         *s;
    ngx_stream_dtls_main_conf_t  *dmcf;

    len = ctx->conf->cid_length;

    s = ctx->connection->data;
    dmcf = ngx_stream_get_module_main_conf(s, ngx_stream_dtls_module);

    for (i = 0; i < NGX_STREAM_DTLS_CID_TRIES; i++) {

        if (RAND_bytes(ctx->cid, (int) len) != 1) {
            ngx_ssl_error(NGX_LOG_ALERT, ctx->connection->log, 0,
                          "RAND_bytes() failed");
            return NGX_ERROR;
        }

        if (dmcf->bpf) {
            ctx->cid[0] = (u_char) ngx_worker;
        }

        if (!ngx_stream_dtls_zone_cid_used(ctx->conf->zone, ctx->cid, len)) {
            ctx->cid_len = (u_char) len;
            return NGX_OK;
        }
    }

    ngx_log_error(NGX_LOG_CRIT, ctx->connection->log, 0,
                  "no connection ID of %uz bytes left free in "
                  "dtls_session_zone", len);

    return NGX_ERROR;
}


/*
 * The session's records carry the CIDs negotiated: the server's in those
 * read, the client's in those written
 */

void
ngx_stream_dtls_cid_set(ngx_stream_dtls_conn_t *ctx,
    ngx_stream_dtls_conn_t *hs)
{
    ctx->read.cid_len = hs->cid_len;
    ngx_memcpy(ctx->read.cid, hs->cid, hs->cid_len);

    ctx->write.cid_len = hs->cid_len ? hs->peer_cid_len : 0;
    ngx_memcpy(ctx->write.cid, hs->peer_cid, ctx->write.cid_len);
}


/*
 * A datagram OpenSSL wrote, p[0 .. len - 1], of whole records: those of a
 * protected epoch as tls12_cid records, in *out, *out_len.  NGX_DECLINED:
 * it goes as it is.
 */

ngx_int_t
ngx_stream_dtls_cid_output(ngx_stream_dtls_conn_t *ctx, u_char *p,
    size_t len, u_char **out, size_t *out_len)
{
    u_char                    *q, *last;
    size_t                     rlen, n;
    ngx_uint_t                 epoch;
    ngx_stream_dtls_record_t   rd, wr, to;

    if (ctx->cid_len == 0 || ctx->peer_cid_len == 0) {
        return NGX_DECLINED;
    }

    q = ngx_stream_dtls_cid_datagram;
    last = q + sizeof(ngx_stream_dtls_cid_datagram);

    while ((rlen = ngx_stream_dtls_record_length(p, len)) != 0) {

        epoch = ngx_stream_dtls_read_uint16(&p[3]);

        if (epoch == 0) {
            if ((size_t) (last - q) < rlen) {
                return NGX_ERROR;
            }

            q = ngx_cpymem(q, p, rlen);

        } else {
            if (ngx_stream_dtls_record_derive_keys(ctx->ssl, epoch, &rd, &wr)
                != NGX_OK)
            {
                ngx_log_error(NGX_LOG_ALERT, ctx->connection->log, 0,
                              "DTLS record keys of the handshake not "
                              "derived");
                return NGX_ERROR;
            }

            to = wr;
            to.cid_len = ctx->peer_cid_len;
            ngx_memcpy(to.cid, ctx->peer_cid, ctx->peer_cid_len);

            n = ngx_stream_dtls_cid_reseal(&wr, &to, p, rlen, q, last - q);

            ngx_stream_dtls_record_wipe(&rd);
            ngx_stream_dtls_record_wipe(&wr);
            ngx_stream_dtls_record_wipe(&to);

            if (n == 0) {
                ngx_log_error(NGX_LOG_ALERT, ctx->connection->log, 0,
                              "DTLS record of the handshake not sealed "
                              "with the connection ID");
                return NGX_ERROR;
            }

            q += n;
        }

        p += rlen;
        len -= rlen;
    }

    *out = ngx_stream_dtls_cid_datagram;
    *out_len = q - ngx_stream_dtls_cid_datagram;

    return NGX_OK;
}


/*
 * The records of a datagram of a handshake that OpenSSL may read, buf[0
 * .. n - 1]: the client's tls12_cid records after others wait for the
 * next read, in ctx->pending; a datagram that starts with them has them
 * sealed again without a CID.  Returns the length OpenSSL reads, or
 * NGX_ERROR.
 */

ssize_t
ngx_stream_dtls_cid_input(ngx_stream_dtls_conn_t *ctx, u_char *buf,
    size_t n)
{
    u_char                    *p, *out, *last;
    size_t                     rlen, len;
    ngx_int_t                  rc;
    ngx_uint_t                 epoch;
    ngx_stream_dtls_record_t   rd, wr, to;

    if (ctx->cid_len == 0) {
        return n;
    }

    p = buf;
    last = buf + n;

    while ((rlen = ngx_stream_dtls_record_cid_length(p, last - p,
                                                     ctx->cid_len))
           != 0)
    {
        if (p[0] == NGX_STREAM_DTLS_RECORD_CID) {
            break;
        }

        p += rlen;
    }

    if (rlen == 0) {
        return n;
    }

    if (p != buf) {
        len = last - p;

        if (ctx->pending) {
            /* the datagram before was not read: lost, as on the wire */
            ngx_free(ctx->pending);
        }

        ctx->pending = ngx_alloc(len, ctx->connection->log);
        if (ctx->pending == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(ctx->pending, p, len);
        ctx->pending_len = len;

        return p - buf;
    }

    out = buf;

    while ((rlen = ngx_stream_dtls_record_cid_length(p, last - p,
                                                     ctx->cid_len))
           != 0)
    {
        if (p[0] != NGX_STREAM_DTLS_RECORD_CID) {
            out = ngx_movemem(out, p, rlen);
            p += rlen;
            continue;
        }

        epoch = ngx_stream_dtls_read_uint16(&p[3]);

        rc = ngx_stream_dtls_record_derive_keys(ctx->ssl, epoch, &rd, &wr);

        if (rc == NGX_ERROR) {
            ngx_log_error(NGX_LOG_ALERT, ctx->connection->log, 0,
                          "DTLS record keys of the handshake not derived");
            return NGX_ERROR;
        }

        len = 0;

        if (rc == NGX_OK) {
            to = rd;
            rd.cid_len = ctx->cid_len;
            ngx_memcpy(rd.cid, ctx->cid, ctx->cid_len);

            /* sealed where it was read: the plain record is shorter */

            len = ngx_stream_dtls_cid_reseal(&rd, &to, p, rlen, out,
                                             last - out);

            ngx_stream_dtls_record_wipe(&to);
        }

        ngx_stream_dtls_record_wipe(&rd);
        ngx_stream_dtls_record_wipe(&wr);

        if (len == 0) {
            /* no keys yet, or a record that does not open: as if lost */
            ngx_log_debug1(NGX_LOG_DEBUG_STREAM, ctx->connection->log, 0,
                           "dtls handshake record with connection ID "
                           "dropped, epoch %ui", epoch);
        }

        out += len;
        p += rlen;
    }

    return out - buf;
}


/*
 * The record rec, opened with "from" and sealed with "to" with its own
 * epoch and sequence number, into out: its length, or 0
 */

static size_t
ngx_stream_dtls_cid_reseal(ngx_stream_dtls_record_t *from,
    ngx_stream_dtls_record_t *to, u_char *rec, size_t len, u_char *out,
    size_t size)
{
    size_t                        n, sealed;
    ngx_uint_t                    type;
    ngx_stream_dtls_record_rc_e   rc;

    /* a window of its own: the record is the first it sees */

    from->top = 0;
    from->window = 0;

    rc = ngx_stream_dtls_record_open(from, rec, len,
                                     ngx_stream_dtls_cid_plain, &n, &type);

    if (rc != NGX_STREAM_DTLS_RECORD_OK) {
        return 0;
    }

    to->seq = ngx_stream_dtls_record_seq(rec);

    rc = ngx_stream_dtls_record_seal(to, type, ngx_stream_dtls_cid_plain, n,
                                     out, size, &sealed);

    ngx_explicit_memzero(ngx_stream_dtls_cid_plain, n);

    return (rc == NGX_STREAM_DTLS_RECORD_OK) ? sealed : 0;
}
