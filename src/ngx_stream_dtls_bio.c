
/*
 * Copyright (C) ngx_dtls authors
 */


/*
 * The BIO beneath a session's SSL object.  It reads the datagrams nginx
 * has already received for the session (the first from c->buffer, later
 * ones through nginx's own UDP receive) and writes the datagrams OpenSSL
 * makes through nginx's UDP send, so that wildcard listens answer from
 * the right local address.
 *
 * OpenSSL sizes each datagram to dtls_mtu, writes its records one at a
 * time and then flushes; during a handshake the writes go through a
 * 4096-byte buffering BIO pushed on this one, which passes a larger
 * datagram on in pieces that end inside records.  So a write that ends
 * inside a record is held until the rest of the record comes, and a
 * datagram goes out
 *
 *   - whenever what is held ends on a record boundary: at once for a
 *     write of whole records (every write after the handshake, alerts,
 *     retransmissions, a datagram the buffering BIO held whole);
 *   - with the whole records held so far, when more would not fit in
 *     dtls_mtu: OpenSSL counts a datagram's bytes through the buffering
 *     BIO, which does not count what this one holds;
 *   - at a flush.
 *
 * Every datagram holds whole records and none is larger than dtls_mtu;
 * nothing is held after a flush, and OpenSSL flushes at the end of every
 * flight.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_stream.h>

#include "ngx_stream_dtls.h"


static int ngx_stream_dtls_bio_write(BIO *bio, const char *buf, int len);
static ngx_int_t ngx_stream_dtls_bio_hold(ngx_stream_dtls_conn_t *ctx,
    u_char *p, size_t len);
static ngx_int_t ngx_stream_dtls_bio_send(ngx_stream_dtls_conn_t *ctx,
    size_t len);
static ssize_t ngx_stream_dtls_bio_out(ngx_stream_dtls_conn_t *ctx,
    u_char *p, size_t len);
static void ngx_stream_dtls_bio_flight(ngx_stream_dtls_conn_t *ctx,
    u_char *p, size_t len);
static size_t ngx_stream_dtls_bio_records(u_char *p, size_t len);
static int ngx_stream_dtls_bio_read(BIO *bio, char *buf, int len);
static void ngx_stream_dtls_bio_input(ngx_stream_dtls_conn_t *ctx, u_char *p,
    size_t len);
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

    if (ctx->held == 0
        && (size_t) len <= ctx->conf->mtu
        && ngx_stream_dtls_bio_records((u_char *) buf, len) == (size_t) len)
    {
        /* a datagram of whole records, as almost every write is */

        n = ngx_stream_dtls_bio_out(ctx, (u_char *) buf, len);

        /* a datagram the socket could not take now is lost, as on the wire */

        return (n == NGX_ERROR) ? -1 : len;
    }

    if (ngx_stream_dtls_bio_hold(ctx, (u_char *) buf, len) != NGX_OK) {
        return -1;
    }

    return len;
}


/* a write that is not one datagram of whole records */

static ngx_int_t
ngx_stream_dtls_bio_hold(ngx_stream_dtls_conn_t *ctx, u_char *p, size_t len)
{
    size_t  size, mtu, whole;

    mtu = ctx->conf->mtu;

    for ( ;; ) {

        if (ctx->hold == NULL) {
            ctx->hold = ngx_alloc(mtu, ctx->connection->log);
            if (ctx->hold == NULL) {
                return NGX_ERROR;
            }
        }

        size = ngx_min(len, mtu - ctx->held);

        ngx_memcpy(ctx->hold + ctx->held, p, size);
        ctx->held += size;
        p += size;
        len -= size;

        whole = ngx_stream_dtls_bio_records(ctx->hold, ctx->held);

        if (len == 0 && whole < ctx->held) {
            ngx_log_debug2(NGX_LOG_DEBUG_STREAM, ctx->connection->log, 0,
                           "dtls datagram: %uz bytes held, %uz of them in "
                           "whole records", ctx->held, whole);
            return NGX_OK;
        }

        /*
         * the hold is full and more comes: the whole records so far, or
         * all of it if one record is longer than dtls_mtu (OpenSSL makes
         * none)
         */

        if (ngx_stream_dtls_bio_send(ctx, whole ? whole : ctx->held)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        if (len == 0) {
            return NGX_OK;
        }
    }
}


/* the first len bytes held, as a datagram; the hold is freed once empty */

static ngx_int_t
ngx_stream_dtls_bio_send(ngx_stream_dtls_conn_t *ctx, size_t len)
{
    ssize_t  n;

    n = ngx_stream_dtls_bio_out(ctx, ctx->hold, len);

    ctx->held -= len;

    if (ctx->held) {
        ngx_memmove(ctx->hold, ctx->hold + len, ctx->held);

    } else {
        ngx_free(ctx->hold);
        ctx->hold = NULL;
    }

    return (n == NGX_ERROR) ? NGX_ERROR : NGX_OK;
}


/*
 * A datagram OpenSSL made, of whole records: the session's own records
 * go on after the highest sequence number of the newest epoch it used,
 * and the flight of the handshake's last step is kept
 */

static ssize_t
ngx_stream_dtls_bio_out(ngx_stream_dtls_conn_t *ctx, u_char *p, size_t len)
{
    size_t      n, size;
    uint64_t    seq;
    ngx_int_t   rc;
    ngx_uint_t  epoch;

    for (n = 0; len - n >= DTLS1_RT_HEADER_LENGTH; n += size) {
        epoch = ngx_stream_dtls_read_uint16(&p[n + 3]);
        seq = ngx_stream_dtls_record_seq(&p[n]);

        if (epoch > ctx->written_epoch) {
            ctx->written_epoch = epoch;
            ctx->written = seq + 1;

        } else if (epoch == ctx->written_epoch && seq >= ctx->written) {
            ctx->written = seq + 1;
        }

        size = DTLS1_RT_HEADER_LENGTH + ngx_stream_dtls_read_uint16(&p[n + 11]);
    }

    /* the client's CID in the records of a protected epoch */

    rc = ngx_stream_dtls_cid_output(ctx, p, len, &p, &len);

    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    if (ctx->keep_flight) {
        ngx_stream_dtls_bio_flight(ctx, p, len);
    }

    return ngx_stream_dtls_send_datagram(ctx->connection, ctx->send_chain,
                                         p, len);
}


static void
ngx_stream_dtls_bio_flight(ngx_stream_dtls_conn_t *ctx, u_char *p,
    size_t len)
{
    u_char  *flight;
    size_t   need;

    need = ctx->flight_len + 2 + len;

    if (need > ctx->flight_size) {
        flight = ngx_alloc(ngx_max(need, 2 * ctx->flight_size),
                           ctx->connection->log);
        if (flight == NULL) {
            /* a flight that cannot be resent is as if lost */
            return;
        }

        if (ctx->flight) {
            ngx_memcpy(flight, ctx->flight, ctx->flight_len);
            ngx_free(ctx->flight);
        }

        ctx->flight = flight;
        ctx->flight_size = ngx_max(need, 2 * ctx->flight_size);
    }

    ctx->flight[ctx->flight_len++] = (u_char) (len >> 8);
    ctx->flight[ctx->flight_len++] = (u_char) len;
    ngx_memcpy(ctx->flight + ctx->flight_len, p, len);
    ctx->flight_len += len;
}


/* how many bytes from p on are whole DTLS records */

static size_t
ngx_stream_dtls_bio_records(u_char *p, size_t len)
{
    size_t  n, size;

    n = 0;

    while (len - n >= DTLS1_RT_HEADER_LENGTH) {
        size = DTLS1_RT_HEADER_LENGTH + ((p[n + 11] << 8) | p[n + 12]);

        if (size > len - n) {
            break;
        }

        n += size;
    }

    return n;
}


/* freed with the session, or with the new handshake beside it */

void
ngx_stream_dtls_bio_cleanup(ngx_stream_dtls_conn_t *ctx)
{
    if (ctx->hold) {
        ngx_free(ctx->hold);
        ctx->hold = NULL;
        ctx->held = 0;
    }

    if (ctx->flight) {
        ngx_free(ctx->flight);
        ctx->flight = NULL;
        ctx->flight_len = 0;
        ctx->flight_size = 0;
    }

    if (ctx->in) {
        ngx_free(ctx->in);
        ctx->in = NULL;
        ctx->in_pos = 0;
        ctx->in_len = 0;
        ctx->in_size = 0;
    }

    if (ctx->pending) {
        ngx_free(ctx->pending);
        ctx->pending = NULL;
        ctx->pending_len = 0;
    }
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

    } else if (ctx->pending) {
        /* the client's CID records after those OpenSSL read last */

        n = ngx_min(ctx->pending_len, (size_t) len);
        ngx_memcpy(buf, ctx->pending, n);

        ngx_free(ctx->pending);
        ctx->pending = NULL;
        ctx->pending_len = 0;

    } else if (ctx->handshaked) {
        /* an established session reads only the datagram io.c gives it */
        BIO_set_retry_read(bio);
        return -1;

    } else {
        n = ctx->recv(ctx->connection, (u_char *) buf, len);
    }

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

    if (!ctx->handshaked) {
        n = ngx_stream_dtls_handshake_input(ctx, (u_char *) buf, n);

        if (n == NGX_ERROR) {
            return -1;
        }

        if (n == 0) {
            BIO_set_retry_read(bio);
            return -1;
        }

        ngx_stream_dtls_bio_input(ctx, (u_char *) buf, n);

        n = ngx_stream_dtls_cid_input(ctx, (u_char *) buf, n);

        if (n == NGX_ERROR) {
            return -1;
        }

        if (n == 0) {
            BIO_set_retry_read(bio);
            return -1;
        }
    }

    return n;
}


/*
 * The last datagram of a handshake may bring the client's first records
 * after its Finished, which OpenSSL holds when the handshake is done: a
 * copy of each datagram read is kept, so that the session's own record
 * layer reads them once the SSL object is gone.  A datagram larger than
 * two dtls_mtu is not kept (its records are lost, as on the wire).
 */

static void
ngx_stream_dtls_bio_input(ngx_stream_dtls_conn_t *ctx, u_char *p,
    size_t len)
{
    ctx->in_len = 0;

    if (len > 2 * ctx->conf->mtu) {
        return;
    }

    if (ctx->in == NULL) {
        ctx->in = ngx_alloc(2 * ctx->conf->mtu, ctx->connection->log);
        if (ctx->in == NULL) {
            return;
        }

        ctx->in_size = 2 * ctx->conf->mtu;
    }

    ngx_memcpy(ctx->in, p, len);
    ctx->in_len = len;
}


static long
ngx_stream_dtls_bio_ctrl(BIO *bio, int cmd, long num, void *ptr)
{
    ngx_stream_dtls_conn_t  *ctx;

    ctx = BIO_get_data(bio);

    switch (cmd) {

    case BIO_CTRL_FLUSH:

        /*
         * whole records went out with the write that ended them; part of
         * a record (OpenSSL flushes none) goes as it is: nothing stays
         */

        if (ctx->held && ngx_stream_dtls_bio_send(ctx, ctx->held) != NGX_OK) {
            return 0;
        }

        return 1;

    case BIO_CTRL_WPENDING:
        return (long) ctx->held;

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
