
/*
 * Copyright (C) ngx_dtls authors
 */


/*
 * RFC 6347, 4.2.8: a ClientHello from the address and port of a live
 * session.  A device that restarted and kept its port starts a new
 * handshake there; anyone who can only send from that address must not
 * be able to end the session.  So:
 *
 * - without a valid cookie the ClientHello gets a HelloVerifyRequest
 *   (stateless, as for any first datagram) and the session goes on;
 * - a copy of the ClientHello that made the session is dropped;
 * - with a valid cookie (the client receives at that address) a second
 *   SSL object makes the new handshake beside the live one, with its own
 *   timer and deadline and a handshake slot, while the live session keeps
 *   working; only once the new handshake has finished, authenticating the
 *   same peer, does it replace the live one, and the session goes on with
 *   the new keys (the upstream side is untouched).  A new handshake that
 *   fails or times out is dropped, and the live session never noticed.
 *
 * Each datagram of the session is seen here (the BIO of the live session
 * calls in) before OpenSSL: epoch-0 records go to the new handshake,
 * epoch-1 ones to the live session, but for the new handshake's Finished,
 * which is tried first once its ChangeCipherSpec has arrived (a record of
 * the live session fails its MAC there and is silently dropped, then goes
 * to the live session).  The live SSL object is in SSL_read() then, so
 * the swap waits until it returns: ngx_stream_dtls_renew_finish().
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_stream.h>

#include "ngx_stream_dtls.h"


#define NGX_STREAM_DTLS_RANDOM_OFFSET  (13 + 12 + 2)


struct ngx_stream_dtls_renewal_s {
    ngx_stream_dtls_conn_t      conn;       /* the new handshake */
    ngx_event_t                 timer;
    ngx_buf_t                   in;         /* the datagram for it */
    u_char                      random[SSL3_RANDOM_SIZE];
    unsigned                    done:1;
};


static ngx_int_t ngx_stream_dtls_renew_hello(ngx_stream_dtls_conn_t *ctx,
    u_char *p, size_t len);
static ngx_int_t ngx_stream_dtls_renew_start(ngx_stream_dtls_conn_t *ctx,
    u_char *p, size_t len, u_char *cookie);
static ngx_int_t ngx_stream_dtls_renew_feed(ngx_stream_dtls_conn_t *ctx,
    u_char *p, size_t len);
static ngx_int_t ngx_stream_dtls_renew_step(ngx_stream_dtls_conn_t *ctx);
static void ngx_stream_dtls_renew_timer(ngx_event_t *ev);
static void ngx_stream_dtls_renew_failed(ngx_stream_dtls_conn_t *ctx,
    const char *reason);
static ngx_uint_t ngx_stream_dtls_same_peer(ngx_stream_dtls_conn_t *ctx,
    SSL *ssl);
static ssize_t ngx_stream_dtls_renew_recv(ngx_connection_t *c, u_char *buf,
    size_t size);


/* NGX_OK: the datagram was taken here; NGX_DECLINED: it is the session's */

ngx_int_t
ngx_stream_dtls_renew(ngx_stream_dtls_conn_t *ctx, u_char *p, size_t len)
{
    ngx_stream_dtls_renewal_t  *r;

    if (len < 13) {
        return NGX_DECLINED;
    }

    /* an epoch-0 record with a ClientHello, at a glance */

    if (p[0] == SSL3_RT_HANDSHAKE && p[3] == 0 && p[4] == 0
        && len > 13 && p[13] == SSL3_MT_CLIENT_HELLO)
    {
        return ngx_stream_dtls_renew_hello(ctx, p, len);
    }

    r = ctx->renewal;

    if (r == NULL || r->done) {
        return NGX_DECLINED;
    }

    if (p[3] == 0 && p[4] == 0) {
        return ngx_stream_dtls_renew_feed(ctx, p, len);
    }

    if (SSL_get_state(r->conn.ssl) != TLS_ST_SR_CHANGE) {
        return NGX_DECLINED;
    }

    /* the new handshake's Finished, or a record of the live session */

    (void) ngx_stream_dtls_renew_feed(ctx, p, len);

    if (ctx->renewal == r && r->done) {
        return NGX_OK;
    }

    return NGX_DECLINED;
}


static ngx_int_t
ngx_stream_dtls_renew_hello(ngx_stream_dtls_conn_t *ctx, u_char *p,
    size_t len)
{
    u_char                     *random;
    ngx_buf_t                   b;
    ngx_connection_t           *c;
    ngx_stream_dtls_renewal_t  *r;
    u_char                      cookie[NGX_STREAM_DTLS_COOKIE_LEN];

    c = ctx->connection;

    if (ctx->conf->cookie == NULL) {
        /* dtls_cookie off: nothing could prove the client is there */
        return NGX_OK;
    }

    ngx_memzero(&b, sizeof(ngx_buf_t));
    b.pos = p;
    b.last = p + len;

    switch (ngx_stream_dtls_hello(c, ctx->send_chain, ctx->conf->cookie, &b,
                                  cookie))
    {
    case NGX_STREAM_DTLS_HELLO_OK:
        break;

    case NGX_STREAM_DTLS_HELLO_VERIFY:
    case NGX_STREAM_DTLS_HELLO_BAD_COOKIE:
        ngx_log_debug0(NGX_LOG_DEBUG_STREAM, c->log, 0,
                       "dtls ClientHello in a session, "
                       "HelloVerifyRequest sent");
        return NGX_OK;

    default:
        return NGX_DECLINED;
    }

    random = p + NGX_STREAM_DTLS_RANDOM_OFFSET;

    if (ngx_memcmp(random, ctx->random, SSL3_RANDOM_SIZE) == 0) {
        ngx_log_debug0(NGX_LOG_DEBUG_STREAM, c->log, 0,
                       "dtls copy of the session's ClientHello dropped");
        return NGX_OK;
    }

    r = ctx->renewal;

    if (r && r->done) {
        return NGX_OK;
    }

    if (r && ngx_memcmp(random, r->random, SSL3_RANDOM_SIZE) == 0) {
        /* the new handshake's ClientHello again */
        return ngx_stream_dtls_renew_feed(ctx, p, len);
    }

    if (r) {
        ngx_log_debug0(NGX_LOG_DEBUG_STREAM, c->log, 0,
                       "dtls new handshake superseded by another");
        ngx_stream_dtls_renew_free(ctx);
    }

    return ngx_stream_dtls_renew_start(ctx, p, len, cookie);
}


static ngx_int_t
ngx_stream_dtls_renew_start(ngx_stream_dtls_conn_t *ctx, u_char *p,
    size_t len, u_char *cookie)
{
    ngx_connection_t            *c;
    ngx_stream_dtls_renewal_t   *r;
    ngx_stream_dtls_srv_conf_t  *dscf;

    c = ctx->connection;
    dscf = ctx->conf;

    if (dscf->handshakes >= dscf->handshake_limit) {
        dscf->handshakes_dropped++;

        ngx_log_error(NGX_LOG_INFO, c->log, 0,
                      "DTLS handshake limit %ui reached, new ClientHello "
                      "of a session dropped", dscf->handshake_limit);
        return NGX_OK;
    }

    /* not from the session's pool: a client may start again and again */

    r = ngx_calloc(sizeof(ngx_stream_dtls_renewal_t), c->log);
    if (r == NULL) {
        return NGX_OK;
    }

    r->conn.connection = c;
    r->conn.conf = dscf;
    r->conn.recv = ngx_stream_dtls_renew_recv;
    r->conn.send_chain = ctx->send_chain;
    r->conn.deadline = ngx_current_msec + dscf->handshake_timeout;
    ngx_memcpy(r->conn.cookie, cookie, NGX_STREAM_DTLS_COOKIE_LEN);

    ngx_memcpy(r->random, p + NGX_STREAM_DTLS_RANDOM_OFFSET,
               SSL3_RANDOM_SIZE);

    r->timer.handler = ngx_stream_dtls_renew_timer;
    r->timer.data = ctx;
    r->timer.log = c->log;
    r->timer.cancelable = 1;

    dscf->handshakes++;
    r->conn.counted = 1;
    ctx->renewal = r;

    ngx_log_debug0(NGX_LOG_DEBUG_STREAM, c->log, 0,
                   "dtls new handshake beside the live session");

    /* the ClientHello with the cookie checked, as for a new session */

    r->in.pos = p;
    r->in.last = p + len;
    r->conn.first = &r->in;

    if (ngx_stream_dtls_ssl_create(&r->conn) != NGX_OK) {
        ERR_clear_error();
        ngx_stream_dtls_renew_free(ctx);
        return NGX_OK;
    }

    r->conn.first = NULL;

    return ngx_stream_dtls_renew_step(ctx);
}


static ngx_int_t
ngx_stream_dtls_renew_feed(ngx_stream_dtls_conn_t *ctx, u_char *p,
    size_t len)
{
    ngx_stream_dtls_renewal_t  *r;

    r = ctx->renewal;

    r->in.pos = p;
    r->in.last = p + len;
    r->conn.first = &r->in;

    return ngx_stream_dtls_renew_step(ctx);
}


/* the new handshake as far as it goes; its timer set, or it is done */

static ngx_int_t
ngx_stream_dtls_renew_step(ngx_stream_dtls_conn_t *ctx)
{
    int                         n, sslerr;
    ngx_stream_dtls_renewal_t  *r;

    r = ctx->renewal;

    n = ngx_stream_dtls_ssl_handshake(&r->conn);

    r->conn.first = NULL;

    if (n == 1) {
        ngx_log_debug0(NGX_LOG_DEBUG_STREAM, ctx->connection->log, 0,
                       "dtls new handshake done");

        r->done = 1;

        if (r->timer.timer_set) {
            ngx_del_timer(&r->timer);
        }

        ERR_clear_error();

        return NGX_OK;
    }

    sslerr = SSL_get_error(r->conn.ssl, n);

    if (sslerr != SSL_ERROR_WANT_READ && sslerr != SSL_ERROR_WANT_WRITE) {
        ngx_stream_dtls_renew_failed(ctx, NULL);
        return NGX_OK;
    }

    ERR_clear_error();

    ngx_add_timer(&r->timer, ngx_stream_dtls_handshake_timer(&r->conn));

    return NGX_OK;
}


/*
 * Once the live session's SSL_read() is over: NGX_OK, the session goes on
 * with the new handshake's keys; NGX_DONE, it must end; NGX_DECLINED, no
 * new handshake has finished.
 */

ngx_int_t
ngx_stream_dtls_renew_finish(ngx_stream_dtls_conn_t *ctx)
{
    SSL                        *old;
    ngx_int_t                   rc;
    ngx_connection_t           *c;
    ngx_stream_dtls_renewal_t  *r;

    c = ctx->connection;
    r = ctx->renewal;

    if (r == NULL || !r->done) {
        return NGX_DECLINED;
    }

    if (!ngx_stream_dtls_same_peer(ctx, r->conn.ssl)) {
        ngx_log_error(NGX_LOG_INFO, c->log, 0,
                      "new DTLS handshake of the client authenticated "
                      "another peer, DTLS session ended");
        ngx_stream_dtls_renew_free(ctx);
        return NGX_DONE;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_STREAM, c->log, 0,
                   "dtls session renewed: %s, %s",
                   SSL_get_version(r->conn.ssl),
                   SSL_get_cipher_name(r->conn.ssl));

    /*
     * The old keys are gone with the client's state: no close_notify.
     * The same peer, perhaps with another cipher or server name.
     */

    old = ctx->ssl;
    ctx->ssl = NULL;

    ngx_memcpy(ctx->cookie, r->conn.cookie, NGX_STREAM_DTLS_COOKIE_LEN);

    rc = ngx_stream_dtls_establish(ctx, &r->conn);

    ngx_stream_dtls_renew_free(ctx);

    if (old) {
        SSL_free(old);
    }

    if (rc != NGX_OK) {
        return NGX_DONE;
    }

    ngx_log_error(NGX_LOG_INFO, c->log, 0,
                  "client made a new handshake, DTLS session renewed");

    return NGX_OK;
}


static void
ngx_stream_dtls_renew_timer(ngx_event_t *ev)
{
    const char                 *reason;
    ngx_stream_dtls_conn_t     *ctx;
    ngx_stream_dtls_renewal_t  *r;

    ctx = ev->data;
    r = ctx->renewal;

    ev->timedout = 0;

    /*
     * At worker shutdown the listening socket, the session's only way to
     * the client, is already closed: nothing more is sent for the new
     * handshake, which ends with its worker
     */

    if (ngx_exiting || ngx_terminate) {
        ngx_log_debug0(NGX_LOG_DEBUG_STREAM, ctx->connection->log, 0,
                       "dtls new handshake dropped at worker shutdown");
        ngx_stream_dtls_renew_free(ctx);
        return;
    }

    if (ngx_stream_dtls_handshake_timeout(&r->conn, &reason) != NGX_OK) {
        ngx_stream_dtls_renew_failed(ctx, reason);
        return;
    }

    (void) ngx_stream_dtls_renew_step(ctx);
}


static void
ngx_stream_dtls_renew_failed(ngx_stream_dtls_conn_t *ctx, const char *reason)
{
    char              *action;
    ngx_connection_t  *c;

    c = ctx->connection;
    action = c->log->action;

    ngx_stream_dtls_handshake_failed(c, &ctx->renewal->conn, reason);

    c->log->action = action;

    ngx_log_error(NGX_LOG_INFO, c->log, 0,
                  "new DTLS handshake of the client failed, "
                  "the DTLS session goes on");

    ERR_clear_error();

    ngx_stream_dtls_renew_free(ctx);
}


void
ngx_stream_dtls_renew_free(ngx_stream_dtls_conn_t *ctx)
{
    ngx_stream_dtls_renewal_t  *r;

    r = ctx->renewal;

    if (r == NULL) {
        return;
    }

    ctx->renewal = NULL;

    if (r->timer.timer_set) {
        ngx_del_timer(&r->timer);
    }

    if (r->conn.counted) {
        r->conn.counted = 0;
        r->conn.conf->handshakes--;
    }

    if (r->conn.ssl) {
        SSL_free(r->conn.ssl);
    }

    ngx_stream_dtls_bio_cleanup(&r->conn);

    ngx_free(r);
}


/* one PSK identity, one client certificate, before and after */

static ngx_uint_t
ngx_stream_dtls_same_peer(ngx_stream_dtls_conn_t *ctx, SSL *ssl)
{
    u_char  peer[SHA256_DIGEST_LENGTH];

    if (ngx_stream_dtls_peer_digest(ssl, peer) != NGX_OK) {
        return 0;
    }

    return ngx_memcmp(peer, ctx->peer, SHA256_DIGEST_LENGTH) == 0;
}


/* the new handshake reads only the datagram it is given */

static ssize_t
ngx_stream_dtls_renew_recv(ngx_connection_t *c, u_char *buf, size_t size)
{
    return NGX_AGAIN;
}
