
/*
 * Copyright (C) ngx_dtls authors
 */


/*
 * An established session.  Once a handshake (or a new handshake of the
 * client beside its session) is done, what the session needs of it is
 * taken from the SSL object: the values of the $dtls_* variables, the
 * client's random and who it is, and, for an AEAD suite, the record keys
 * (record.c).  The SSL object is freed then, and the session's records
 * are sealed and opened here:
 *
 *   - application_data records, one per datagram each way;
 *   - alerts: close_notify both ways, a fatal alert ends the session;
 *   - the client's Finished again (its last flight retransmitted, ours
 *     lost): the server's last flight, kept as OpenSSL sent it, goes
 *     again, until the client's first authenticated record shows that it
 *     arrived (RFC 6347, 4.2.4); a ClientHello in the session's epoch
 *     (renegotiation) gets a no_renegotiation warning;
 *   - records of the epoch before (the rest of that last flight), of
 *     other epochs, and any that fail to open: dropped, changing nothing.
 *
 * A suite without an AEAD (only where dtls_ciphers lists one) keeps the
 * SSL object and OpenSSL's record layer (io.c).
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_stream.h>

#include "ngx_stream_dtls.h"


static void ngx_stream_dtls_session_resend(ngx_stream_dtls_conn_t *ctx);
static void ngx_stream_dtls_session_arrived(ngx_stream_dtls_conn_t *ctx);


/* one datagram each way at a time, per worker */

static u_char  ngx_stream_dtls_datagram_in[65536];
static u_char  ngx_stream_dtls_datagram_out[65536];


/*
 * hs is the handshake that finished: ctx itself, or the new handshake
 * beside it, whose SSL object, kept flight and last datagram ctx takes
 */

ngx_int_t
ngx_stream_dtls_establish(ngx_stream_dtls_conn_t *ctx,
    ngx_stream_dtls_conn_t *hs)
{
    SSL               *ssl;
    ngx_int_t          rc;
    ngx_connection_t  *c;

    c = ctx->connection;

    ssl = hs->ssl;
    hs->ssl = NULL;
    ctx->ssl = ssl;

    if (ngx_stream_dtls_capture_variables(ctx) != NGX_OK
        || ngx_stream_dtls_peer_digest(ssl, ctx->peer) != NGX_OK)
    {
        ngx_ssl_error(NGX_LOG_ALERT, c->log, 0,
                      "DTLS session values not taken");
        return NGX_ERROR;
    }

    (void) SSL_get_client_random(ssl, ctx->random, SSL3_RANDOM_SIZE);

    if (ctx->conf->proxy_protocol
        && ngx_stream_dtls_proxy_protocol(ctx) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (hs != ctx) {
        if (ctx->flight) {
            ngx_free(ctx->flight);
        }

        if (ctx->in) {
            ngx_free(ctx->in);
        }

        ctx->flight = hs->flight;
        ctx->flight_len = hs->flight_len;
        ctx->flight_size = hs->flight_size;
        ctx->in = hs->in;
        ctx->in_len = hs->in_len;
        ctx->in_size = hs->in_size;
        ctx->written = hs->written;
        ctx->written_epoch = hs->written_epoch;

        hs->flight = NULL;
        hs->in = NULL;
    }

    ctx->in_pos = 0;

    rc = ngx_stream_dtls_record_derive(ssl, ctx->written_epoch, &ctx->read,
                                       &ctx->write);

    if (rc == NGX_ERROR) {
        ngx_ssl_error(NGX_LOG_ALERT, c->log, 0,
                      "DTLS record keys not derived");
        return NGX_ERROR;
    }

    if (rc == NGX_OK) {
        ngx_stream_dtls_cid_set(ctx, hs);
        ngx_stream_dtls_move_index(ctx);
    }

    if (rc == NGX_DECLINED) {

        /* OpenSSL's records go on, with what OpenSSL keeps itself */

        ngx_log_debug0(NGX_LOG_DEBUG_STREAM, c->log, 0,
                       "dtls session keeps OpenSSL's record layer");

        if (ctx->conf->zone) {
            ngx_stream_dtls_zone_forget(ctx);
        }

        ngx_stream_dtls_move_free(ctx);

        BIO_set_data(SSL_get_rbio(ssl), ctx);
        ngx_stream_dtls_bio_cleanup(ctx);
        ngx_stream_dtls_record_sizes(ctx);

        if (SSL_has_pending(ssl)) {
            c->read->ready = 1;
        }

        return NGX_OK;
    }

    /*
     * Freed as shut down, quietly: OpenSSL would take the session of an
     * SSL object freed otherwise for a bad one and drop it from the
     * session cache (resumption by session ID).  OpenSSL wipes its copies
     * of the keys.
     */

    SSL_set_quiet_shutdown(ssl, 1);
    SSL_set_shutdown(ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);

    SSL_free(ssl);
    ctx->ssl = NULL;

    ctx->write.seq = ctx->written;
    ctx->data_mtu = ctx->conf->mtu
                    - ngx_stream_dtls_record_overhead(&ctx->write);
    ctx->record_min = 0;

    if (ctx->flight_len == 0) {
        ngx_stream_dtls_session_arrived(ctx);
    }

    if (ctx->conf->zone) {
        (void) ngx_stream_dtls_zone_add(ctx);
    }

    /*
     * the records that came after the client's Finished, in its datagram,
     * are read as the session's first; the Finished, opened again there,
     * is never taken for a retransmission
     */

    if (ctx->in_len) {
        ctx->draining = 1;
        c->read->ready = 1;

    } else if (ctx->in) {
        ngx_free(ctx->in);
        ctx->in = NULL;
        ctx->in_size = 0;
    }

    return NGX_OK;
}


/* who the peer is: its PSK identity, or its certificate, or neither */

ngx_int_t
ngx_stream_dtls_peer_digest(SSL *ssl, u_char *md)
{
    u_char        *p;
    X509          *cert;
    size_t         len;
    const char    *identity;
    unsigned int   n;
    u_char         buf[1 + PSK_MAX_IDENTITY_LEN + 1 + SHA256_DIGEST_LENGTH];

    p = buf;

    identity = SSL_get_psk_identity(ssl);

    *p++ = identity ? 1 : 0;

    if (identity) {
        len = ngx_min(ngx_strlen(identity), PSK_MAX_IDENTITY_LEN);
        p = ngx_cpymem(p, identity, len);
    }

    cert = SSL_get0_peer_certificate(ssl);

    *p++ = cert ? 1 : 0;

    if (cert) {
        if (X509_digest(cert, EVP_sha256(), p, &n) != 1) {
            return NGX_ERROR;
        }

        p += n;
    }

    if (EVP_Digest(buf, p - buf, md, NULL, EVP_sha256(), NULL) != 1) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * One application_data record's plaintext per call, behind the PROXY
 * protocol header if there is one, as c->recv returns for io.c
 */

ssize_t
ngx_stream_dtls_session_recv(ngx_connection_t *c, ngx_stream_dtls_conn_t *ctx,
    u_char *buf, size_t size)
{
    u_char   *p;
    size_t    len, used;
    ssize_t   n;

    for ( ;; ) {

        if (ctx->in_pos < ctx->in_len) {
            p = ctx->in + ctx->in_pos;
            len = ctx->in_len - ctx->in_pos;

            n = ngx_stream_dtls_session_records(c, ctx, p, len, buf, size,
                                                &used);

            ctx->in_pos += used;

            if (ctx->in_pos == ctx->in_len) {
                /* an idle session holds no buffer */
                ngx_free(ctx->in);
                ctx->in = NULL;
                ctx->in_pos = 0;
                ctx->in_len = 0;
                ctx->in_size = 0;
                ctx->draining = 0;
            }

        } else {
            switch (ngx_stream_dtls_next_datagram(c, ctx, &p, &len)) {

            case NGX_OK:
                break;

            case NGX_AGAIN:
                c->read->ready = 0;
                return ngx_stream_dtls_idle(c, ctx);

            case NGX_DONE:
                return NGX_AGAIN;

            default: /* NGX_DECLINED */

                if (ctx->ssl) {
                    /* renewed with a suite for OpenSSL's records */
                    return ngx_stream_dtls_recv(c, buf, size);
                }

                continue;
            }

            n = ngx_stream_dtls_session_records(c, ctx, p, len, buf, size,
                                                &used);

            if (n > 0 && used < len
                && ngx_stream_dtls_session_keep(ctx, p + used, len - used)
                   != NGX_OK)
            {
                return NGX_ERROR;
            }
        }

        if (n == NGX_DONE) {
            ngx_stream_dtls_close(c, ctx);
            return NGX_AGAIN;
        }

        if (n > 0) {
            /* the rest of a datagram is read at once: it is ours alone */
            c->read->ready = (ctx->in_pos < ctx->in_len) ? 1 : 0;
            return n;
        }
    }
}


/*
 * The next datagram nginx has for an established session, in *p, *len,
 * for its records: NGX_OK.  Every datagram is seen here before a record
 * of it is read: a new ClientHello of the client (RFC 6347, 4.2.8) and
 * the rest of its handshake go to that handshake, NGX_DECLINED (read
 * again: if it has finished, the session goes on with its keys); NGX_DONE,
 * the session has ended; NGX_AGAIN, no datagram.
 */

ngx_int_t
ngx_stream_dtls_next_datagram(ngx_connection_t *c,
    ngx_stream_dtls_conn_t *ctx, u_char **p, size_t *len)
{
    size_t     moved;
    ssize_t    n;
    ngx_int_t  rc;

    if (ctx->move) {

        /* a datagram of the session from a new address (move.c) */

        rc = ngx_stream_dtls_move_take(c, ctx, ngx_stream_dtls_datagram_in,
                                       sizeof(ngx_stream_dtls_datagram_in),
                                       &moved);

        if (rc == NGX_ERROR) {
            return NGX_AGAIN;
        }

        if (rc == NGX_DECLINED) {
            return NGX_DECLINED;
        }

        n = moved;

    } else {
        n = ctx->recv(c, ngx_stream_dtls_datagram_in,
                      sizeof(ngx_stream_dtls_datagram_in));

        if (n == NGX_AGAIN || n == NGX_ERROR) {
            return NGX_AGAIN;
        }
    }

    if (n == 0) {
        /* an empty datagram holds no record */
        return NGX_DECLINED;
    }

    *p = ngx_stream_dtls_datagram_in;
    *len = n;

    switch (ngx_stream_dtls_move_foreign(c, ctx, *p, *len)) {

    case NGX_DECLINED:
        break;

    case NGX_DONE:
        return NGX_DONE;

    default: /* NGX_OK: dropped */
        return NGX_DECLINED;
    }

    if (ngx_stream_dtls_renew(ctx, *p, *len) != NGX_OK) {
        return NGX_OK;
    }

    switch (ctx->renewal ? ngx_stream_dtls_renew_finish(ctx) : NGX_DECLINED) {

    case NGX_OK:
        ctx->active = ngx_current_msec;
        return NGX_DECLINED;

    case NGX_DONE:
        /* the client holds no keys of this session: no close_notify */
        ctx->closed = 1;

        if (ctx->node) {
            ngx_stream_dtls_zone_remove(ctx);
        }

        ngx_stream_dtls_close(c, ctx);
        return NGX_DONE;

    default:
        return NGX_DECLINED;
    }
}


/*
 * The records in p[0 .. len - 1] up to the first application_data with
 * data, whose plaintext goes into buf; *used, how many bytes were read.
 * NGX_DONE: the session has ended (an alert).
 */

ssize_t
ngx_stream_dtls_session_records(ngx_connection_t *c,
    ngx_stream_dtls_conn_t *ctx, u_char *p, size_t len, u_char *buf,
    size_t size, size_t *used)
{
    u_char                       *record, *start, *plain;
    size_t                        n, rlen, room, header, overhead;
    ngx_uint_t                    type;
    ngx_stream_session_t         *s;
    ngx_stream_dtls_record_rc_e   rc;

    start = p;
    header = ctx->pp_len;
    room = (size > header) ? size - header : 0;
    plain = buf + header;
    overhead = ngx_stream_dtls_record_overhead(&ctx->read);

    while (len) {

        rlen = ngx_stream_dtls_record_cid_length(p, len, ctx->read.cid_len);

        if (rlen == 0) {
            ngx_log_debug1(NGX_LOG_DEBUG_STREAM, c->log, 0,
                           "dtls %uz bytes that are no record dropped", len);
            p += len;
            break;
        }

        record = p;
        p += rlen;
        len -= rlen;

        if (ngx_stream_dtls_read_uint16(&record[3]) != ctx->read.epoch) {
            /* the rest of the client's last flight, or a stray */

            if (ctx->node) {
                ngx_stream_dtls_zone_dropped(ctx->conf->zone,
                                             NGX_STREAM_DTLS_RECORD_OLD_EPOCH);
            }

            continue;
        }

        if (rlen >= overhead && rlen - overhead > room) {
            if (header == 0) {
                ngx_log_error(NGX_LOG_INFO, c->log, 0,
                              "DTLS record of %uz bytes dropped: the proxy "
                              "buffer has %uz bytes free (proxy_buffer_size)",
                              rlen - overhead, size);

            } else {
                ngx_log_error(NGX_LOG_INFO, c->log, 0,
                              "DTLS record of %uz bytes dropped: with the "
                              "PROXY protocol header of %uz bytes it exceeds "
                              "the %uz bytes free in the proxy buffer "
                              "(proxy_buffer_size)",
                              rlen - overhead, header, size);
            }

            continue;
        }

        rc = ngx_stream_dtls_record_open(&ctx->read, record, rlen, plain, &n,
                                         &type);

        if (rc != NGX_STREAM_DTLS_RECORD_OK) {
            ngx_log_debug1(NGX_LOG_DEBUG_STREAM, c->log, 0,
                           "dtls record dropped: %s",
                           ngx_stream_dtls_record_reason(rc));

            if (ctx->node) {
                ngx_stream_dtls_zone_dropped(ctx->conf->zone, rc);
            }

            continue;
        }

        /* new to every process that serves the session */

        switch (ctx->node ? ngx_stream_dtls_zone_received(ctx,
                                ngx_stream_dtls_record_seq(record))
                          : NGX_OK)
        {
        case NGX_OK:
            ctx->heard = ngx_current_msec;
            break;

        case NGX_DECLINED:
            ngx_log_debug0(NGX_LOG_DEBUG_STREAM, c->log, 0,
                           "dtls record dropped: replayed record");
            ngx_stream_dtls_zone_dropped(ctx->conf->zone,
                                         NGX_STREAM_DTLS_RECORD_REPLAY);
            continue;

        default: /* NGX_DONE */
            ngx_log_error(NGX_LOG_INFO, c->log, 0,
                          "DTLS session is no longer in dtls_session_zone");
            ctx->closed = 1;
            *used = p - start;
            return NGX_DONE;
        }

        switch (type) {

        case NGX_STREAM_DTLS_RECORD_HANDSHAKE:

            if (n && plain[0] == SSL3_MT_CLIENT_HELLO) {
                /* SSL_OP_NO_RENEGOTIATION, as OpenSSL would answer */
                ngx_stream_dtls_session_alert(ctx, SSL3_AL_WARNING,
                                              SSL_AD_NO_RENEGOTIATION);

            } else if (!ctx->draining && ctx->flight) {
                ngx_stream_dtls_session_resend(ctx);
            }

            continue;

        case NGX_STREAM_DTLS_RECORD_ALERT:

            ngx_stream_dtls_session_arrived(ctx);

            if (n != 2) {
                continue;
            }

            if (plain[0] == SSL3_AL_FATAL) {
                ngx_log_error(NGX_LOG_INFO, c->log, 0,
                              "DTLS fatal alert received: %s",
                              SSL_alert_desc_string_long(plain[1]));
                ctx->closed = 1;

                if (ctx->node) {
                    ngx_stream_dtls_zone_remove(ctx);
                }

                *used = p - start;
                return NGX_DONE;
            }

            if (plain[1] == SSL_AD_CLOSE_NOTIFY) {
                ngx_log_error(NGX_LOG_INFO, c->log, 0,
                              "client closed DTLS session (close_notify)");
                ctx->ending = 1;
                *used = p - start;
                return NGX_DONE;
            }

            continue;

        default: /* NGX_STREAM_DTLS_RECORD_APPLICATION */

            ngx_stream_dtls_session_arrived(ctx);

            ctx->active = ngx_current_msec;

            if (n == 0) {
                /* nothing to forward: the proxy takes 0 for no data */
                continue;
            }

            *used = p - start;

            if (header) {
                ngx_memcpy(buf, ctx->pp, header);

                /*
                 * the proxy counts what this returns as received from the
                 * client ($bytes_received, proxy_upload_rate): the header
                 * is not
                 */

                s = c->data;
                s->received -= header;
            }

            return header + n;
        }
    }

    *used = p - start;

    return 0;
}


/* the records of a datagram after the one returned, read next */

ngx_int_t
ngx_stream_dtls_session_keep(ngx_stream_dtls_conn_t *ctx, u_char *p,
    size_t len)
{
    ctx->in = ngx_alloc(len, ctx->connection->log);
    if (ctx->in == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(ctx->in, p, len);

    ctx->in_pos = 0;
    ctx->in_len = len;
    ctx->in_size = len;

    return NGX_OK;
}


ssize_t
ngx_stream_dtls_session_send(ngx_connection_t *c, ngx_stream_dtls_conn_t *ctx,
    u_char *buf, size_t size)
{
    size_t                       n;
    ngx_uint_t                   level;
    ngx_stream_dtls_record_rc_e  rc;

    if (ctx->node && ngx_stream_dtls_zone_seq(ctx) != NGX_OK) {
        ngx_log_error(NGX_LOG_INFO, c->log, 0,
                      "DTLS session is no longer in dtls_session_zone");
        return NGX_ERROR;
    }

    rc = ngx_stream_dtls_record_seal(&ctx->write,
                                     NGX_STREAM_DTLS_RECORD_APPLICATION, buf,
                                     size, ngx_stream_dtls_datagram_out,
                                     sizeof(ngx_stream_dtls_datagram_out),
                                     &n);

    if (rc != NGX_STREAM_DTLS_RECORD_OK) {
        level = (rc == NGX_STREAM_DTLS_RECORD_EXHAUSTED) ? NGX_LOG_INFO
                                                         : NGX_LOG_ALERT;

        ngx_log_error(level, c->log, 0, "DTLS record not sealed: %s",
                      ngx_stream_dtls_record_reason(rc));
        return NGX_ERROR;
    }

    /* a datagram the socket could not take now is lost, as on the wire */

    if (ngx_stream_dtls_send_datagram(c, ctx->send_chain,
                                      ngx_stream_dtls_datagram_out, n)
        == NGX_ERROR)
    {
        return NGX_ERROR;
    }

    ctx->active = ngx_current_msec;

    return size;
}


void
ngx_stream_dtls_session_alert(ngx_stream_dtls_conn_t *ctx, ngx_uint_t level,
    ngx_uint_t desc)
{
    size_t  n;
    u_char  alert[2];

    if (ctx->node && ngx_stream_dtls_zone_seq(ctx) != NGX_OK) {
        return;
    }

    alert[0] = (u_char) level;
    alert[1] = (u_char) desc;

    if (ngx_stream_dtls_record_seal(&ctx->write, NGX_STREAM_DTLS_RECORD_ALERT,
                                    alert, 2, ngx_stream_dtls_datagram_out,
                                    sizeof(ngx_stream_dtls_datagram_out), &n)
        != NGX_STREAM_DTLS_RECORD_OK)
    {
        return;
    }

    (void) ngx_stream_dtls_send_datagram(ctx->connection, ctx->send_chain,
                                         ngx_stream_dtls_datagram_out, n);
}


/* the server's last flight again, its datagrams as OpenSSL made them */

static void
ngx_stream_dtls_session_resend(ngx_stream_dtls_conn_t *ctx)
{
    u_char  *p, *last;
    size_t   len;

    ngx_log_debug0(NGX_LOG_DEBUG_STREAM, ctx->connection->log, 0,
                   "dtls client's last flight again, ours resent");

    p = ctx->flight;
    last = p + ctx->flight_len;

    while (last - p > 2) {
        len = ngx_stream_dtls_read_uint16(p);
        p += 2;

        if ((size_t) (last - p) < len) {
            break;
        }

        (void) ngx_stream_dtls_send_datagram(ctx->connection,
                                             ctx->send_chain, p, len);
        p += len;
    }
}


/* the client has the server's last flight: it is not kept any longer */

static void
ngx_stream_dtls_session_arrived(ngx_stream_dtls_conn_t *ctx)
{
    if (ctx->flight) {
        ngx_free(ctx->flight);
        ctx->flight = NULL;
        ctx->flight_len = 0;
        ctx->flight_size = 0;
    }
}


void
ngx_stream_dtls_session_free(ngx_stream_dtls_conn_t *ctx)
{
    ngx_stream_dtls_record_wipe(&ctx->read);
    ngx_stream_dtls_record_wipe(&ctx->write);

    if (ctx->vars) {
        ngx_free(ctx->vars);
        ctx->vars = NULL;
    }
}
