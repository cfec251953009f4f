
/*
 * Copyright (C) ngx_dtls authors
 */


/*
 * The BIO beneath a session's SSL object.  It reads the datagrams nginx
 * has already received for the session (the first from c->buffer, later
 * ones through nginx's own UDP receive) and writes each record flight
 * OpenSSL produces as one datagram through nginx's UDP send, so that
 * wildcard listens answer from the right local address.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_stream.h>

#include "ngx_stream_dtls.h"


static int ngx_stream_dtls_bio_write(BIO *bio, const char *buf, int len);
static int ngx_stream_dtls_bio_read(BIO *bio, char *buf, int len);
static long ngx_stream_dtls_bio_ctrl(BIO *bio, int cmd, long num, void *ptr);


/*
 * One method per process, made for the first configuration that needs it
 * and freed only when the process exits: the workers the master forks
 * later (a respawn after a crash) inherit the running configuration with
 * it, so that the cleanup of a configuration that failed to load must not
 * take it away
 */

static BIO_METHOD  *ngx_stream_dtls_bio_method;


ngx_int_t
ngx_stream_dtls_bio_init(ngx_conf_t *cf)
{
    BIO_METHOD  *method;

    if (ngx_stream_dtls_bio_method) {
        return NGX_OK;
    }

    method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK,
                          "nginx DTLS session");
    if (method == NULL) {
        ngx_ssl_error(NGX_LOG_EMERG, cf->log, 0, "BIO_meth_new() failed");
        return NGX_ERROR;
    }

    if (BIO_meth_set_write(method, ngx_stream_dtls_bio_write) != 1
        || BIO_meth_set_read(method, ngx_stream_dtls_bio_read) != 1
        || BIO_meth_set_ctrl(method, ngx_stream_dtls_bio_ctrl) != 1)
    {
        ngx_ssl_error(NGX_LOG_EMERG, cf->log, 0, "BIO_meth_set() failed");
        BIO_meth_free(method);
        return NGX_ERROR;
    }

    ngx_stream_dtls_bio_method = method;

    return NGX_OK;
}


/* the exit process and exit master hooks: no session runs after that */

void
ngx_stream_dtls_bio_exit(void)
{
    if (ngx_stream_dtls_bio_method) {
        BIO_meth_free(ngx_stream_dtls_bio_method);
        ngx_stream_dtls_bio_method = NULL;
    }
}


BIO *
ngx_stream_dtls_bio_new(ngx_stream_dtls_conn_t *ctx)
{
    BIO  *bio;

    bio = BIO_new(ngx_stream_dtls_bio_method);
    if (bio == NULL) {
        return NULL;
    }

    BIO_set_data(bio, ctx);
    BIO_set_init(bio, 1);

    return bio;
}


/* the session (or new handshake) an SSL object belongs to, for callbacks */

ngx_stream_dtls_conn_t *
ngx_stream_dtls_ssl_conn(const SSL *ssl)
{
    return BIO_get_data(SSL_get_rbio(ssl));
}


static int
ngx_stream_dtls_bio_write(BIO *bio, const char *buf, int len)
{
    ssize_t                  n;
    ngx_stream_dtls_conn_t  *ctx;

    ctx = BIO_get_data(bio);

    BIO_clear_retry_flags(bio);

    n = ngx_stream_dtls_send_datagram(ctx->connection, ctx->send_chain,
                                      (u_char *) buf, len);

    if (n == NGX_ERROR) {
        return -1;
    }

    /* a datagram the socket could not take now is lost, as on the wire */

    return len;
}


static int
ngx_stream_dtls_bio_read(BIO *bio, char *buf, int len)
{
    ssize_t                  n;
    ngx_buf_t               *b;
    ngx_stream_dtls_conn_t  *ctx;

    ctx = BIO_get_data(bio);

    BIO_clear_retry_flags(bio);

    if (ctx->first) {
        b = ctx->first;
        ctx->first = NULL;

        n = ngx_min(b->last - b->pos, len);
        ngx_memcpy(buf, b->pos, n);

        return n;
    }

    n = ctx->recv(ctx->connection, (u_char *) buf, len);

    /*
     * An empty datagram holds no record: OpenSSL would take a read of 0
     * for the end of the session, so that anyone able to send from the
     * client's address could end it
     */

    if (n == NGX_AGAIN || n == 0) {
        BIO_set_retry_read(bio);
        return -1;
    }

    if (n == NGX_ERROR) {
        return -1;
    }

    /* a new ClientHello once the session is up (RFC 6347, 4.2.8) */

    if (ctx->handshaked
        && ngx_stream_dtls_renew(ctx, (u_char *) buf, n) == NGX_OK)
    {
        BIO_set_retry_read(bio);
        return -1;
    }

    return n;
}


static long
ngx_stream_dtls_bio_ctrl(BIO *bio, int cmd, long num, void *ptr)
{
    switch (cmd) {

    case BIO_CTRL_FLUSH:
        return 1;

    default:
        /* MTU queries are off (SSL_OP_NO_QUERY_MTU), timeouts are ours */
        return 0;
    }
}


ssize_t
ngx_stream_dtls_send_datagram(ngx_connection_t *c,
    ngx_send_chain_pt send_chain, u_char *data, size_t len)
{
    ngx_buf_t     b;
    ngx_chain_t   cl, *rest;

    ngx_memzero(&b, sizeof(ngx_buf_t));

    b.pos = data;
    b.last = data + len;
    b.memory = 1;
    b.flush = 1;

    cl.buf = &b;
    cl.next = NULL;

    /*
     * nginx marks a shared UDP socket not ready after EAGAIN and never
     * marks it ready again; each datagram deserves its own try
     */

    c->write->ready = 1;

    rest = send_chain(c, &cl, 0);

    if (rest == NGX_CHAIN_ERROR) {
        return NGX_ERROR;
    }

    if (rest != NULL) {
        ngx_log_debug1(NGX_LOG_DEBUG_STREAM, c->log, 0,
                       "dtls datagram of %uz bytes not sent", len);
        return NGX_AGAIN;
    }

    return len;
}
