
/*
 * Copyright (C) ngx_dtls authors
 */


/*
 * A session's handshake, once its ClientHello carried a valid cookie:
 * the SSL object, OpenSSL's retransmissions on nginx timers, the
 * deadline, and a specific reason in the log when it fails.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_stream.h>

#include "ngx_stream_dtls.h"


static void ngx_stream_dtls_handshake_handler(ngx_event_t *rev);
static void ngx_stream_dtls_release(ngx_stream_dtls_conn_t *ctx);
static void ngx_stream_dtls_cleanup(void *data);


ngx_int_t
ngx_stream_dtls_init_session(ngx_stream_session_t *s,
    ngx_stream_dtls_srv_conf_t *dscf, u_char *cookie)
{
    ngx_connection_t        *c;
    ngx_stream_dtls_conn_t  *ctx;

    c = s->connection;

    /* a bound on what handshakes in progress may hold, per worker */

    if (dscf->handshakes >= dscf->handshake_limit) {
        dscf->handshakes_dropped++;

        ngx_log_error(NGX_LOG_INFO, c->log, 0,
                      "DTLS handshake limit %ui reached, ClientHello dropped",
                      dscf->handshake_limit);
        return NGX_DECLINED;
    }

    ctx = ngx_stream_dtls_conn_create(s, dscf);
    if (ctx == NULL) {
        return NGX_ERROR;
    }

    /* the slot is released once: handshake done, or session freed */

    dscf->handshakes++;
    ctx->counted = 1;
    ctx->first = c->buffer;
    ctx->deadline = ngx_current_msec + dscf->handshake_timeout;
    ngx_memcpy(ctx->cookie, cookie, NGX_STREAM_DTLS_COOKIE_LEN);

    if (ngx_stream_dtls_ssl_create(ctx) != NGX_OK) {
        return NGX_ERROR;
    }

    /* nothing of the ClientHello may reach the upstream */

    c->buffer = NULL;

    return NGX_OK;
}


/* a session's context, freed with its pool */

ngx_stream_dtls_conn_t *
ngx_stream_dtls_conn_create(ngx_stream_session_t *s,
    ngx_stream_dtls_srv_conf_t *dscf)
{
    ngx_connection_t        *c;
    ngx_pool_cleanup_t      *cln;
    ngx_stream_dtls_conn_t  *ctx;

    c = s->connection;

    ctx = ngx_pcalloc(c->pool, sizeof(ngx_stream_dtls_conn_t));
    if (ctx == NULL) {
        return NULL;
    }

    cln = ngx_pool_cleanup_add(c->pool, 0);
    if (cln == NULL) {
        return NULL;
    }

    cln->handler = ngx_stream_dtls_cleanup;
    cln->data = ctx;

    ctx->connection = c;
    ctx->conf = dscf;
    ctx->recv = c->recv;
    ctx->send_chain = c->send_chain;

    ngx_stream_set_ctx(s, ctx, ngx_stream_dtls_module);

    return ctx;
}


/*
 * The SSL object of a handshake (a session's, or a new one beside it):
 * the BIO over the session's datagrams, ctx->first its ClientHello.
 */

ngx_int_t
ngx_stream_dtls_ssl_create(ngx_stream_dtls_conn_t *ctx)
{
    int                          rc;
    BIO                         *bio;
    SSL                         *ssl;
    BIO_ADDR                    *peer;
    ngx_connection_t            *c;
    ngx_stream_dtls_srv_conf_t  *dscf;

    c = ctx->connection;
    dscf = ctx->conf;

    ssl = SSL_new(dscf->ssl.ctx);
    if (ssl == NULL) {
        ngx_ssl_error(NGX_LOG_ALERT, c->log, 0, "SSL_new() failed");
        return NGX_ERROR;
    }

    ctx->ssl = ssl;

    if (SSL_set_ex_data(ssl, ngx_ssl_connection_index, c) == 0) {
        ngx_ssl_error(NGX_LOG_ALERT, c->log, 0, "SSL_set_ex_data() failed");
        return NGX_ERROR;
    }

    bio = ngx_stream_dtls_bio_new(ctx);
    if (bio == NULL) {
        ngx_ssl_error(NGX_LOG_ALERT, c->log, 0, "BIO_new() failed");
        return NGX_ERROR;
    }

    SSL_set_bio(ssl, bio, bio);
    SSL_set_accept_state(ssl);

    if (SSL_set_mtu(ssl, dscf->mtu) == 0) {
        ngx_ssl_error(NGX_LOG_ALERT, c->log, 0, "SSL_set_mtu(%uz) failed",
                      dscf->mtu);
        return NGX_ERROR;
    }

    /*
     * The ClientHello is the second one, with the cookie we checked:
     * DTLSv1_listen() takes it and sets the handshake message sequence
     * where the HelloVerifyRequest left it.  Without the exchange, the
     * handshake reads the first ClientHello itself.
     */

    if (!dscf->cookie_exchange) {
        return NGX_OK;
    }

    peer = BIO_ADDR_new();
    if (peer == NULL) {
        return NGX_ERROR;
    }

    ERR_clear_error();

    rc = DTLSv1_listen(ssl, peer);

    BIO_ADDR_free(peer);

    if (rc != 1) {
        ngx_ssl_error(NGX_LOG_ALERT, c->log, 0,
                      "DTLSv1_listen() refused a checked ClientHello");
        return NGX_ERROR;
    }

    return NGX_OK;
}


ngx_int_t
ngx_stream_dtls_handshake(ngx_stream_session_t *s)
{
    int                      n, sslerr;
    ngx_connection_t        *c;
    ngx_stream_dtls_conn_t  *ctx;

    c = s->connection;
    ctx = ngx_stream_get_module_ctx(s, ngx_stream_dtls_module);

    n = ngx_stream_dtls_ssl_handshake(ctx);

    ngx_log_debug1(NGX_LOG_DEBUG_STREAM, c->log, 0,
                   "SSL_do_handshake: %d", n);

    if (n == 1) {
        ctx->handshaked = 1;
        c->idle = 0;

        ngx_stream_dtls_release(ctx);

        if (c->read->timer_set) {
            ngx_del_timer(c->read);
        }

        ngx_log_debug2(NGX_LOG_DEBUG_STREAM, c->log, 0,
                       "dtls handshake done: %s, %s",
                       SSL_get_version(ctx->ssl),
                       SSL_get_cipher_name(ctx->ssl));

        /* data that came with the client's last flight is read at once */

        if (ngx_stream_dtls_establish(ctx, ctx) != NGX_OK) {
            return NGX_ERROR;
        }

        ngx_stream_dtls_set_io(c, ctx);

        return NGX_OK;
    }

    sslerr = SSL_get_error(ctx->ssl, n);

    ngx_log_debug1(NGX_LOG_DEBUG_STREAM, c->log, 0, "SSL_get_error: %d",
                   sslerr);

    if (sslerr != SSL_ERROR_WANT_READ && sslerr != SSL_ERROR_WANT_WRITE) {
        ngx_stream_dtls_handshake_failed(c, ctx, NULL);
        return NGX_ERROR;
    }

    ngx_add_timer(c->read, ngx_stream_dtls_handshake_timer(ctx));

    c->read->handler = ngx_stream_dtls_handshake_handler;

    /* a handshake has nothing to lose: worker shutdown may end it */

    c->idle = 1;

    return NGX_AGAIN;
}


/* the earlier of OpenSSL's retransmission and the deadline */

ngx_msec_t
ngx_stream_dtls_handshake_timer(ngx_stream_dtls_conn_t *ctx)
{
    ngx_msec_t       timer;
    ngx_msec_int_t   left;
    struct timeval   tv;

    left = (ngx_msec_int_t) (ctx->deadline - ngx_current_msec);

    timer = (left > 0) ? (ngx_msec_t) left : 1;

    if (DTLSv1_get_timeout(ctx->ssl, &tv) == 1) {
        timer = ngx_min(timer,
                        (ngx_msec_t) (tv.tv_sec * 1000
                                      + (tv.tv_usec + 999) / 1000));
    }

    return timer ? timer : 1;
}


/*
 * A handshake's timer: NGX_OK, OpenSSL retransmitted its flight;
 * NGX_DECLINED, the deadline has passed, the client is told with an
 * alert and *reason says why; NGX_ERROR, the retransmission failed.
 */

ngx_int_t
ngx_stream_dtls_handshake_timeout(ngx_stream_dtls_conn_t *ctx,
    const char **reason)
{
    if ((ngx_msec_int_t) (ctx->deadline - ngx_current_msec) <= 0) {

        /*
         * A Finished record that fails to decrypt is dropped silently
         * (RFC 6347, 4.1.2.7), so a wrong key shows only as a client
         * whose Finished never arrived after its ChangeCipherSpec.
         */

        if (SSL_get_state(ctx->ssl) != TLS_ST_SR_CHANGE) {
            *reason = "timed out";

        } else if (SSL_get_psk_identity(ctx->ssl)) {
            *reason = "timed out: the client's Finished did not decrypt, "
                      "wrong PSK?";

        } else {
            *reason = "timed out: the client's Finished did not decrypt";
        }

        /* without it, the client would retransmit for a minute */

        ngx_stream_dtls_send_alert(ctx, SSL_AD_HANDSHAKE_FAILURE);

        return NGX_DECLINED;
    }

    ERR_clear_error();

    if (DTLSv1_handle_timeout(ctx->ssl) < 0) {
        *reason = "retransmission failed";
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * One step of a handshake; the datagrams written in the step that ends
 * it are the server's last flight, kept for the session (session.c)
 */

int
ngx_stream_dtls_ssl_handshake(ngx_stream_dtls_conn_t *ctx)
{
    int  n;

    ERR_clear_error();

    ctx->flight_len = 0;
    ctx->keep_flight = 1;

    n = SSL_do_handshake(ctx->ssl);

    ctx->keep_flight = 0;

    return n;
}


static void
ngx_stream_dtls_handshake_handler(ngx_event_t *rev)
{
    ngx_int_t                rc;
    const char              *reason;
    ngx_connection_t        *c;
    ngx_stream_session_t    *s;
    ngx_stream_dtls_conn_t  *ctx;

    c = rev->data;
    s = c->data;
    ctx = ngx_stream_get_module_ctx(s, ngx_stream_dtls_module);

    if (c->close) {
        ngx_stream_finalize_session(s, NGX_STREAM_OK);
        return;
    }

    if (rev->timedout) {
        rev->timedout = 0;

        if (ngx_stream_dtls_handshake_timeout(ctx, &reason) != NGX_OK) {
            ngx_stream_dtls_handshake_failed(c, ctx, reason);
            ngx_stream_finalize_session(s, NGX_STREAM_BAD_REQUEST);
            return;
        }
    }

    rc = ngx_stream_dtls_handshake(s);

    if (rc == NGX_AGAIN) {
        return;
    }

    if (rc == NGX_ERROR) {
        ngx_stream_finalize_session(s, NGX_STREAM_BAD_REQUEST);
        return;
    }

    rev->handler = ngx_stream_session_handler;

    ngx_stream_core_run_phases(s);
}


void
ngx_stream_dtls_handshake_failed(ngx_connection_t *c,
    ngx_stream_dtls_conn_t *ctx, const char *reason)
{
    if (reason == NULL) {
        reason = ctx->failure;
    }

    if (reason == NULL) {
        switch (ERR_GET_REASON(ERR_peek_last_error())) {

        case 0:
            /*
             * OpenSSL refuses a handshake fragment it cannot place (beyond
             * its message, or of a message over the size limit) without
             * a reason
             */
            reason = "malformed or oversized handshake message";
            break;

        case SSL_R_NO_SHARED_CIPHER:
            reason = "no shared cipher";
            break;

        case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
            reason = "client sent no required certificate";
            break;

        case SSL_R_EXCESSIVE_MESSAGE_SIZE:
            reason = "malformed or oversized handshake message";
            break;

        case SSL_R_UNSUPPORTED_PROTOCOL:
        case SSL_R_WRONG_VERSION_NUMBER:
        case SSL_R_VERSION_TOO_LOW:
        case SSL_R_VERSION_TOO_HIGH:
            reason = "protocol version not enabled";
            break;

        default:
            break;
        }
    }

    c->log->action = "DTLS handshaking";

    if (reason == NULL) {
        /* any other OpenSSL failure: the client's, or OpenSSL's own */
        ngx_stream_dtls_ssl_error(c, SSL_ERROR_SSL, "DTLS handshake failed");
        return;
    }

    ngx_ssl_error(NGX_LOG_INFO, c->log, 0, "DTLS handshake failed: %s",
                  reason);
}


/*
 * An OpenSSL failure is logged at info if the client can cause it, else at
 * crit, as ngx_ssl_connection_error() (static in nginx) sorts them: its
 * list, less what only TLS over TCP meets, and what else a client can
 * cause here: a fatal alert it sends, a message of its that does not
 * decode or verify, an unknown PSK identity, a missing certificate.
 */

void
ngx_stream_dtls_ssl_error(ngx_connection_t *c, int sslerr, char *text)
{
    int         n;
    ngx_uint_t  level;

    level = NGX_LOG_CRIT;
    n = ERR_GET_REASON(ERR_peek_error());

    if (sslerr == SSL_ERROR_SSL) {

        switch (n) {

        case SSL_R_BAD_CHANGE_CIPHER_SPEC:
        case SSL_R_BAD_DATA:
        case SSL_R_BAD_DH_VALUE:
        case SSL_R_BAD_ECPOINT:
        case SSL_R_BAD_EXTENSION:
        case SSL_R_BAD_HANDSHAKE_LENGTH:
        case SSL_R_BAD_LENGTH:
        case SSL_R_BAD_PACKET:
        case SSL_R_BAD_PACKET_LENGTH:
        case SSL_R_BAD_PSK:
        case SSL_R_BAD_PSK_IDENTITY:
        case SSL_R_BAD_RECORD_TYPE:
        case SSL_R_BAD_SIGNATURE:
        case SSL_R_BLOCK_CIPHER_PAD_IS_WRONG:
        case SSL_R_CCS_RECEIVED_EARLY:
        case SSL_R_CERTIFICATE_VERIFY_FAILED:
        case SSL_R_DATA_LENGTH_TOO_LONG:
        case SSL_R_DECRYPTION_FAILED_OR_BAD_RECORD_MAC:
        case SSL_R_DIGEST_CHECK_FAILED:
        case SSL_R_ENCRYPTED_LENGTH_TOO_LONG:
        case SSL_R_ERROR_IN_RECEIVED_CIPHER_LIST:
        case SSL_R_EXCESSIVE_MESSAGE_SIZE:
        case SSL_R_INAPPROPRIATE_FALLBACK:
        case SSL_R_INVALID_COMPRESSION_ALGORITHM:
        case SSL_R_LENGTH_MISMATCH:
        case SSL_R_LENGTH_TOO_LONG:
        case SSL_R_LENGTH_TOO_SHORT:
        case SSL_R_MISSING_SIGALGS_EXTENSION:
        case SSL_R_NO_CIPHERS_SPECIFIED:
        case SSL_R_NO_COMPRESSION_SPECIFIED:
        case SSL_R_NO_SHARED_CIPHER:
        case SSL_R_NO_SHARED_GROUPS:
        case SSL_R_NO_SHARED_SIGNATURE_ALGORITHMS:
        case SSL_R_NO_SUITABLE_SIGNATURE_ALGORITHM:
        case SSL_R_PACKET_LENGTH_TOO_LONG:
        case SSL_R_PARSE_TLSEXT:
        case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
        case SSL_R_PSK_IDENTITY_NOT_FOUND:
        case SSL_R_RECORD_LENGTH_MISMATCH:
        case SSL_R_RECORD_TOO_SMALL:
        case SSL_R_RENEGOTIATE_EXT_TOO_LONG:
        case SSL_R_RENEGOTIATION_ENCODING_ERR:
        case SSL_R_RENEGOTIATION_MISMATCH:
        case SSL_R_SCSV_RECEIVED_WHEN_RENEGOTIATING:
        case SSL_R_SIGNATURE_ALGORITHMS_ERROR:
        case SSL_R_UNEXPECTED_CCS_MESSAGE:
        case SSL_R_UNEXPECTED_MESSAGE:
        case SSL_R_UNEXPECTED_RECORD:
        case SSL_R_UNKNOWN_ALERT_TYPE:
        case SSL_R_UNKNOWN_PROTOCOL:
        case SSL_R_UNSAFE_LEGACY_RENEGOTIATION_DISABLED:
        case SSL_R_UNSOLICITED_EXTENSION:
        case SSL_R_UNSUPPORTED_PROTOCOL:
        case SSL_R_VERSION_TOO_HIGH:
        case SSL_R_VERSION_TOO_LOW:
        case SSL_R_WRONG_CURVE:
        case SSL_R_WRONG_SIGNATURE_LENGTH:
        case SSL_R_WRONG_SIGNATURE_TYPE:
        case SSL_R_WRONG_VERSION_NUMBER:
            level = NGX_LOG_INFO;
            break;

        default:
            if (n >= SSL_AD_REASON_OFFSET) {
                level = NGX_LOG_INFO;
            }
        }
    }

    ngx_ssl_error(level, c->log, 0, "%s", text);
}


void
ngx_stream_dtls_info_callback(const SSL *ssl, int where, int ret)
{
    ngx_connection_t        *c;
    ngx_stream_dtls_conn_t  *ctx;

    /* SSL_CB_READ_ALERT shares its SSL_CB_ALERT bit with write alerts */

    if (!(where & SSL_CB_ALERT) || !(where & SSL_CB_READ)) {
        return;
    }

    c = SSL_get_ex_data(ssl, ngx_ssl_connection_index);

    if (SSL_alert_type_string(ret)[0] == 'W') {
        ngx_log_debug1(NGX_LOG_DEBUG_STREAM, c->log, 0,
                       "dtls alert received: %s",
                       SSL_alert_desc_string_long(ret));
        return;
    }

    ngx_log_error(NGX_LOG_INFO, c->log, 0, "DTLS fatal alert received: %s",
                  SSL_alert_desc_string_long(ret));

    ctx = ngx_stream_dtls_ssl_conn(ssl);

    if (!ctx->handshaked && ctx->failure == NULL) {
        ctx->failure = "alert received";
    }
}


/*
 * A fatal alert in a plaintext epoch-0 record, for a handshake nginx
 * gives up on: OpenSSL sends none at a timeout, and has no call to.  Its
 * sequence number is far beyond the handshake's, past the client's
 * replay window.
 */

void
ngx_stream_dtls_send_alert(ngx_stream_dtls_conn_t *ctx, u_char alert)
{
    u_char  *p, record[NGX_STREAM_DTLS_RECORD_HEADER_LEN + 2];

    /* epoch 0, sequence number 2^40 */

    p = ngx_stream_dtls_record_header(record, SSL3_RT_ALERT, DTLS1_2_VERSION,
                                      0, (uint64_t) 1 << 40, 2);
    *p++ = SSL3_AL_FATAL;
    *p = alert;

    (void) ngx_stream_dtls_send_datagram(ctx->connection, ctx->send_chain,
                                         record, sizeof(record));
}


static void
ngx_stream_dtls_release(ngx_stream_dtls_conn_t *ctx)
{
    if (ctx->counted) {
        ctx->counted = 0;
        ctx->conf->handshakes--;
    }
}


static void
ngx_stream_dtls_cleanup(void *data)
{
    ngx_stream_dtls_conn_t  *ctx = data;

    ngx_stream_dtls_release(ctx);
    ngx_stream_dtls_renew_free(ctx);
    ngx_stream_dtls_move_free(ctx);

    /* the BIO goes with the SSL object; OpenSSL wipes its key copies */

    SSL_free(ctx->ssl);
    ngx_stream_dtls_bio_cleanup(ctx);
    ngx_stream_dtls_session_free(ctx);
}
