
/*
 * Copyright (C) ngx_dtls authors
 */


/*
 * An established session's I/O: c->recv returns one record's plaintext
 * per call, c->send_chain sends each datagram (the buffers up to a flush
 * or last_buf) as one record, so proxy_pass and return work unchanged.
 * The records are the module's own (session.c), or OpenSSL's for a suite
 * without an AEAD.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_stream.h>

#include "ngx_stream_dtls.h"


static void ngx_stream_dtls_drop_record(ngx_connection_t *c,
    ngx_stream_dtls_conn_t *ctx, u_char *buf, size_t n, size_t size,
    size_t header);


void
ngx_stream_dtls_set_io(ngx_connection_t *c, ngx_stream_dtls_conn_t *ctx)
{
    ctx->active = ngx_current_msec;
    ctx->heard = ngx_current_msec;

    c->recv = ngx_stream_dtls_recv;
    c->send = ngx_stream_dtls_send;
    c->send_chain = ngx_stream_dtls_send_chain;
}


/*
 * What a record of OpenSSL's carries at most, and how short one can be:
 * computed once, when the cipher is known, as OpenSSL's lookups of them
 * are not cheap
 */

void
ngx_stream_dtls_record_sizes(ngx_stream_dtls_conn_t *ctx)
{
    ctx->data_mtu = DTLS_get_data_mtu(ctx->ssl);
    ctx->record_min = ngx_stream_dtls_record_min(ctx);
}


/*
 * An AEAD record holds at least its explicit nonce and tag, which is what
 * dtls_mtu loses to them; 0 while no cipher is chosen, or for others
 */

size_t
ngx_stream_dtls_record_min(ngx_stream_dtls_conn_t *ctx)
{
    size_t             data;
    const SSL_CIPHER  *cipher;

    cipher = SSL_get_current_cipher(ctx->ssl);

    if (cipher == NULL || !SSL_CIPHER_is_aead(cipher)) {
        return 0;
    }

    data = DTLS_get_data_mtu(ctx->ssl);

    if (data == 0) {
        return 0;
    }

    return ctx->conf->mtu - data - DTLS1_RT_HEADER_LENGTH;
}


ssize_t
ngx_stream_dtls_recv(ngx_connection_t *c, u_char *buf, size_t size)
{
    int                      n, sslerr;
    u_char                  *p;
    size_t                   header, len;
    ngx_buf_t                b;
    ngx_stream_session_t    *s;
    ngx_stream_dtls_conn_t  *ctx;

    ctx = ngx_stream_dtls_get_conn(c);

    if (ctx->closed) {
        /* the datagram nginx holds for the session, if any, is dropped */
        (void) ctx->recv(c, buf, 0);
        return NGX_AGAIN;
    }

    for ( ;; ) {

        if (ctx->ssl == NULL) {
            return ngx_stream_dtls_session_recv(c, ctx, buf, size);
        }

        ERR_clear_error();

        /*
         * With dtls_proxy_protocol the record's plaintext is read behind
         * the header (a renewal may have changed it); a record that does
         * not fit there whole is read into the buffer only to be dropped
         */

        header = ctx->pp_len;

        if (header < size) {
            n = SSL_read(ctx->ssl, buf + header, size - header);

        } else {
            n = SSL_read(ctx->ssl, buf, size);
        }

        /* the datagram given is on this stack, and read now */

        ctx->first = NULL;

        if (n > 0 && (SSL_pending(ctx->ssl) || header >= size)) {
            ngx_stream_dtls_drop_record(c, ctx, buf, n, size, header);
            continue;
        }

        if (n > 0 && header) {
            ngx_memcpy(buf, ctx->pp, header);

            /*
             * the proxy counts what this returns as received from the
             * client ($bytes_received, proxy_upload_rate): the header
             * is not
             */

            s = c->data;
            s->received -= header;

            n += header;
        }

        if (n > 0) {
            /* read again at once if OpenSSL holds another record */
            c->read->ready = SSL_has_pending(ctx->ssl) ? 1 : 0;
            ctx->active = ngx_current_msec;
            return n;
        }

        sslerr = SSL_get_error(ctx->ssl, n);

        if (sslerr != SSL_ERROR_WANT_READ && sslerr != SSL_ERROR_WANT_WRITE)
        {
            break;
        }

        /* OpenSSL reads the next datagram, sorted first (session.c) */

        switch (ngx_stream_dtls_next_datagram(c, ctx, &p, &len)) {

        case NGX_OK:
            break;

        case NGX_AGAIN:
            c->read->ready = 0;
            return ngx_stream_dtls_idle(c, ctx);

        case NGX_DONE:
            return NGX_AGAIN;

        default: /* NGX_DECLINED */
            continue;
        }

        len = ngx_stream_dtls_session_input(ctx, p, len);

        if (len == 0) {
            continue;
        }

        ngx_memzero(&b, sizeof(ngx_buf_t));
        b.pos = p;
        b.last = p + len;

        ctx->first = &b;
    }

    if (sslerr == SSL_ERROR_ZERO_RETURN) {
        ngx_log_error(NGX_LOG_INFO, c->log, 0,
                      "client closed DTLS session (close_notify)");

    } else {
        ngx_stream_dtls_ssl_error(c, sslerr, "DTLS session failed");
    }

    ngx_stream_dtls_close(c, ctx);

    /*
     * not 0 or NGX_ERROR: the proxy would forward either as an empty
     * datagram to the upstream
     */

    return NGX_AGAIN;
}


/*
 * A datagram that brought no record: whoever can send from the client's
 * address can send it, and the proxy counts it as activity, so that such
 * datagrams could keep the session and its upstream socket for ever.  A
 * session is ended here once it has been idle, but for them, past
 * proxy_timeout (as the proxy would have ended it, at twice that at most).
 */

ssize_t
ngx_stream_dtls_idle(ngx_connection_t *c, ngx_stream_dtls_conn_t *ctx)
{
    ngx_msec_t  timeout;

    timeout = ctx->conf->proxy_timeout;

    if (timeout && ngx_current_msec - ctx->active >= timeout) {
        ngx_log_error(NGX_LOG_INFO, c->log, 0,
                      "DTLS session idle for %M, datagrams that bring no "
                      "record do not keep it (proxy_timeout)",
                      ngx_current_msec - ctx->active);
        ngx_stream_dtls_close(c, ctx);
    }

    return NGX_AGAIN;
}


/*
 * A record larger than the buffer it is read into (proxy_buffer_size,
 * less the PROXY protocol header) is dropped whole: in parts, it would go
 * on as several datagrams
 */

static void
ngx_stream_dtls_drop_record(ngx_connection_t *c, ngx_stream_dtls_conn_t *ctx,
    u_char *buf, size_t n, size_t size, size_t header)
{
    int  rest;

    while ((rest = SSL_pending(ctx->ssl)) > 0) {
        n += rest;
        (void) SSL_read(ctx->ssl, buf, ngx_min((size_t) rest, size));
    }

    if (header == 0) {
        ngx_log_error(NGX_LOG_INFO, c->log, 0,
                      "DTLS record of %uz bytes dropped: the proxy buffer "
                      "has %uz bytes free (proxy_buffer_size)", n, size);
        return;
    }

    ngx_log_error(NGX_LOG_INFO, c->log, 0,
                  "DTLS record of %uz bytes dropped: with the PROXY protocol "
                  "header of %uz bytes it exceeds the %uz bytes free in the "
                  "proxy buffer (proxy_buffer_size)", n, header, size);
}


ssize_t
ngx_stream_dtls_send(ngx_connection_t *c, u_char *buf, size_t size)
{
    int                      n;
    ngx_stream_dtls_conn_t  *ctx;

    ctx = ngx_stream_dtls_get_conn(c);

    if (ctx->closed) {
        return NGX_ERROR;
    }

    if (size == 0) {
        return 0;
    }

    if (size > ctx->data_mtu) {
        ngx_log_error(NGX_LOG_INFO, c->log, 0,
                      "datagram of %uz bytes dropped: a record of it "
                      "exceeds dtls_mtu (%uz bytes of data at most)",
                      size, ctx->data_mtu);
        return size;
    }

    if (ctx->ssl == NULL) {
        return ngx_stream_dtls_session_send(c, ctx, buf, size);
    }

    ERR_clear_error();

    n = SSL_write(ctx->ssl, buf, size);

    if (n > 0) {
        ctx->active = ngx_current_msec;
        return n;
    }

    ngx_stream_dtls_ssl_error(c, SSL_get_error(ctx->ssl, n),
                              "SSL_write() failed");

    return NGX_ERROR;
}


ngx_chain_t *
ngx_stream_dtls_send_chain(ngx_connection_t *c, ngx_chain_t *in,
    off_t limit)
{
    u_char       *p, *data;
    size_t        size;
    ssize_t       n;
    ngx_buf_t    *one;
    ngx_uint_t    flush, parts;
    ngx_chain_t  *cl, *next;

    while (in) {

        /* one datagram: the buffers up to a flush or last_buf */

        size = 0;
        parts = 0;
        flush = 0;
        one = NULL;

        for (cl = in; cl; cl = cl->next) {

            if (!ngx_buf_special(cl->buf)) {
                size += ngx_buf_size(cl->buf);
                parts++;
                one = cl->buf;
            }

            if (cl->buf->flush || cl->buf->last_buf) {
                flush = 1;
                cl = cl->next;
                break;
            }
        }

        if (!flush) {
            return in;
        }

        next = cl;

        if (parts <= 1) {
            data = one ? one->pos : NULL;

        } else {
            data = ngx_alloc(size, c->log);
            if (data == NULL) {
                return NGX_CHAIN_ERROR;
            }

            p = data;

            for (cl = in; cl != next; cl = cl->next) {
                if (!ngx_buf_special(cl->buf)) {
                    p = ngx_cpymem(p, cl->buf->pos, ngx_buf_size(cl->buf));
                }
            }
        }

        n = ngx_stream_dtls_send(c, data, size);

        if (parts > 1) {
            ngx_free(data);
        }

        if (n == NGX_ERROR) {
            return NGX_CHAIN_ERROR;
        }

        for (cl = in; cl != next; cl = cl->next) {
            cl->buf->pos = cl->buf->last;
        }

        in = next;
    }

    return NULL;
}


void
ngx_stream_dtls_close(ngx_connection_t *c, ngx_stream_dtls_conn_t *ctx)
{
    ngx_stream_dtls_shutdown(ctx);

    /*
     * End the session as nginx ends idle ones at worker shutdown: the
     * content handler (the proxy) sees c->close on its next event and
     * finalizes, releasing the upstream side too.
     */

    c->close = 1;

    ngx_post_event(c->read, &ngx_posted_events);
}


void
ngx_stream_dtls_shutdown(ngx_stream_dtls_conn_t *ctx)
{
    if (ctx->closed) {
        return;
    }

    ctx->closed = 1;

    /* the listening socket is already closed at worker shutdown */

    if (!ctx->handshaked || ngx_exiting || ngx_terminate) {
        return;
    }

    if (ctx->ssl == NULL) {

        /* with dtls_session_zone, the session outlives the nginx one */

        if (ctx->node && !ctx->ending) {
            return;
        }

        ngx_stream_dtls_session_alert(ctx, SSL3_AL_WARNING,
                                      SSL_AD_CLOSE_NOTIFY);

        if (ctx->node) {
            ngx_stream_dtls_zone_remove(ctx);
        }

        return;
    }

    ERR_clear_error();

    (void) SSL_shutdown(ctx->ssl);

    ERR_clear_error();
}
