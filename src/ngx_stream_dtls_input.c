
/*
 * Copyright (C) ngx_dtls authors
 */


/*
 * What an SSL object may read, sorted before it reads a byte.
 *
 * The datagrams of a handshake in progress.  OpenSSL keeps what a client
 * sends ahead of the handshake: up to 100 records of the next epoch, each
 * in a read buffer of its own (~17 KB), and the current handshake message
 * with up to 10 later ones, each reassembled at the size its first
 * fragment claims (up to ~18 KB, whatever SSL_CTX_set_max_cert_list
 * says).  A client needs none of it: after its ClientHello it sends at
 * most a Certificate, a ClientKeyExchange and a CertificateVerify, then
 * ChangeCipherSpec and an encrypted Finished.  So:
 *
 * - a handshake fragment of a message the client's flight cannot have
 *   (its type, its place after the ClientHello, a certificate the server
 *   does not ask for, or a size beyond what its type needs) ends the
 *   handshake: no client sends one;
 * - a fragment of a message older than the ClientHello is dropped, as a
 *   late copy of the first ClientHello may be;
 * - a record of epoch 1 is dropped until OpenSSL has read the client's
 *   ChangeCipherSpec, but for two behind one in the same datagram (the
 *   Finished, and data sent with it);
 * - records of later epochs, of other types or of other protocols than
 *   DTLS are dropped, and those of epoch 1 too short to be protected
 *   (see below).
 *
 * What a handshake can hold beyond its own state is thus one message of
 * 16 KB (a client certificate, where the server asks for one), two of
 * 4 KB and two early records.
 *
 * The datagrams of an established session.  A record of a protected
 * epoch too short to hold its nonce and tag is, for OpenSSL 3.0, a fatal
 * error of the session (an internal_error alert), not a record to drop,
 * so that anyone able to send from the client's address could end the
 * session with one datagram: such records are dropped here.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_stream.h>

#include "ngx_stream_dtls.h"


/* a ClientKeyExchange with a long PSK identity; an RSA-16384 signature */

#define NGX_STREAM_DTLS_MAX_CLIENT_MESSAGE  4096

/* the Finished and one record of data sent with it */

#define NGX_STREAM_DTLS_MAX_EARLY_RECORDS   2


static ngx_int_t ngx_stream_dtls_input_fragments(ngx_stream_dtls_conn_t *ctx,
    u_char *p, size_t len);
static size_t ngx_stream_dtls_message_max(ngx_stream_dtls_conn_t *ctx,
    ngx_uint_t type, ngx_uint_t next);


/*
 * The records of the datagram that the handshake may read are moved to
 * its start; returns their length, or NGX_ERROR if the handshake must end
 * (ctx->failure says why).
 */

ssize_t
ngx_stream_dtls_handshake_input(ngx_stream_dtls_conn_t *ctx, u_char *buf,
    size_t size)
{
    u_char     *p, *last, *out;
    size_t      len, h;
    ngx_int_t   rc;
    ngx_uint_t  ccs, epoch;

    p = buf;
    last = buf + size;
    out = buf;
    ccs = 0;

    while ((size_t) (last - p) >= DTLS1_RT_HEADER_LENGTH) {

        /* a tls12_cid record's CID is ours, when one was negotiated */

        h = DTLS1_RT_HEADER_LENGTH;

        if (p[0] == NGX_STREAM_DTLS_RECORD_CID) {
            h += ctx->cid_len;
        }

        if ((size_t) (last - p) < h) {
            break;
        }

        epoch = ngx_stream_dtls_read_uint16(p + 3);
        len = ngx_stream_dtls_read_uint16(p + h - 2);

        if (len > (size_t) (last - p) - h) {
            /* a truncated record, which OpenSSL drops too */
            break;
        }

        rc = NGX_DECLINED;

        if (p[1] != DTLS1_VERSION_MAJOR) {
            /* not DTLS */

        } else if (p[0] == NGX_STREAM_DTLS_RECORD_CID && ctx->cid_len == 0) {
            /* no CID negotiated */

        } else if (epoch == 0) {

            switch (p[0]) {

            case SSL3_RT_HANDSHAKE:
                rc = ngx_stream_dtls_input_fragments(ctx,
                                                p + DTLS1_RT_HEADER_LENGTH,
                                                len);
                if (rc == NGX_ERROR) {
                    return NGX_ERROR;
                }

                break;

            case SSL3_RT_CHANGE_CIPHER_SPEC:
                ccs = 1;
                rc = NGX_OK;
                break;

            case SSL3_RT_ALERT:
                rc = NGX_OK;
                break;
            }

        } else if (epoch == 1 && len >= ngx_stream_dtls_record_min(ctx)) {

            if (SSL_get_state(ctx->ssl) == TLS_ST_SR_CHANGE) {
                rc = NGX_OK;

            } else if (ccs && ctx->early < NGX_STREAM_DTLS_MAX_EARLY_RECORDS) {
                ctx->early++;
                rc = NGX_OK;
            }
        }

        len += h;

        if (rc == NGX_OK) {
            out = ngx_movemem(out, p, len);

        } else {
            ngx_log_debug2(NGX_LOG_DEBUG_STREAM, ctx->connection->log, 0,
                           "dtls handshake record dropped: type %ui, "
                           "epoch %ui", (ngx_uint_t) p[0], epoch);
        }

        p += len;
    }

    return out - buf;
}


/* the records of the datagram the session may read, moved to its start */

size_t
ngx_stream_dtls_session_input(ngx_stream_dtls_conn_t *ctx, u_char *buf,
    size_t size)
{
    u_char  *p, *last, *out;
    size_t   len;

    p = buf;
    last = buf + size;
    out = buf;

    while ((size_t) (last - p) >= DTLS1_RT_HEADER_LENGTH) {

        len = ngx_stream_dtls_read_uint16(p + 11);

        if (len > (size_t) (last - p) - DTLS1_RT_HEADER_LENGTH) {
            break;
        }

        if (len < ctx->record_min && ngx_stream_dtls_read_uint16(p + 3)) {
            ngx_log_debug2(NGX_LOG_DEBUG_STREAM, ctx->connection->log, 0,
                           "dtls record of %uz bytes dropped: shorter than "
                           "its nonce and tag (%uz)", len, ctx->record_min);

        } else {
            out = ngx_movemem(out, p, DTLS1_RT_HEADER_LENGTH + len);
        }

        p += DTLS1_RT_HEADER_LENGTH + len;
    }

    return out - buf;
}


/* NGX_OK: the record's fragments may be read; NGX_DECLINED: dropped */

static ngx_int_t
ngx_stream_dtls_input_fragments(ngx_stream_dtls_conn_t *ctx, u_char *p,
    size_t len)
{
    size_t      msg_len, frag_off, frag_len, max;
    ngx_uint_t  type, seq;

    while (len) {

        if (len < DTLS1_HM_HEADER_LENGTH) {
            ctx->failure = "malformed or oversized handshake message";
            return NGX_ERROR;
        }

        type = p[0];
        msg_len = ngx_stream_dtls_read_uint24(p + 1);
        seq = ngx_stream_dtls_read_uint16(p + 4);
        frag_off = ngx_stream_dtls_read_uint24(p + 6);
        frag_len = ngx_stream_dtls_read_uint24(p + 9);

        len -= DTLS1_HM_HEADER_LENGTH;

        if (frag_len > len || frag_off + frag_len > msg_len) {
            ctx->failure = "malformed or oversized handshake message";
            return NGX_ERROR;
        }

        /* the handshake's first datagram is its ClientHello */

        if (!ctx->hello_seen) {
            ctx->hello_seen = 1;
            ctx->hello_seq = seq;
        }

        if (seq < ctx->hello_seq) {
            return NGX_DECLINED;
        }

        max = ngx_stream_dtls_message_max(ctx, type, seq - ctx->hello_seq);

        if (max == 0) {
            ctx->failure = "unexpected handshake message";
            return NGX_ERROR;
        }

        if (msg_len > max) {
            ctx->failure = "malformed or oversized handshake message";
            return NGX_ERROR;
        }

        p += DTLS1_HM_HEADER_LENGTH + frag_len;
        len -= frag_len;
    }

    return NGX_OK;
}


/*
 * The largest message of a type that a client may send "next" messages
 * after its ClientHello; 0 for none
 */

static size_t
ngx_stream_dtls_message_max(ngx_stream_dtls_conn_t *ctx, ngx_uint_t type,
    ngx_uint_t next)
{
    ngx_uint_t  certificate;

    /* a client sends a certificate only to a server that asks for one */

    certificate = ctx->conf->certificates
                  && ctx->conf->verify != NGX_STREAM_DTLS_VERIFY_OFF;

    switch (type) {

    case SSL3_MT_CLIENT_HELLO:
        return (next == 0) ? NGX_STREAM_DTLS_MAX_HANDSHAKE_MESSAGE : 0;

    case SSL3_MT_CERTIFICATE:
        return (next == 1 && certificate)
               ? NGX_STREAM_DTLS_MAX_HANDSHAKE_MESSAGE : 0;

    case SSL3_MT_CLIENT_KEY_EXCHANGE:
        return (next == 1 || (next == 2 && certificate))
               ? NGX_STREAM_DTLS_MAX_CLIENT_MESSAGE : 0;

    case SSL3_MT_CERTIFICATE_VERIFY:
        return (next == 3 && certificate)
               ? NGX_STREAM_DTLS_MAX_CLIENT_MESSAGE : 0;

    default:
        return 0;
    }
}
