
/*
 * Copyright (C) ngx_dtls authors
 */


/*
 * libFuzzer target: ngx_stream_dtls_handshake_input(), which sorts the
 * datagrams of a handshake in progress before OpenSSL reads them.  The
 * source file is included, so that its limits are in reach.
 *
 * Input: one byte of flags (bit 0: the server asks for client
 * certificates), then datagrams, each a 2-byte length and its bytes, all
 * for one handshake (its state carries from one datagram to the next).
 *
 * Checked for every datagram (abort() when broken):
 *   - what is kept is a sequence of whole records of the datagram, in
 *     their order, each DTLS, of epoch 0 or 1;
 *   - every handshake fragment kept is of a message that a client's flight
 *     can have: the ClientHello's message_seq or up to three after it, of
 *     a type allowed there, no larger than its type may be;
 *   - at most two records of epoch 1 are kept in all (OpenSSL never read
 *     a ChangeCipherSpec here);
 *   - NGX_ERROR comes with a reason.
 */


#include "../../src/ngx_stream_dtls_input.c"

#include "fuzz.h"


static SSL                         *fuzz_ssl;
static ngx_log_t                    fuzz_log;
static ngx_connection_t             fuzz_conn;
static ngx_array_t                  fuzz_certificates;

/* the filter works in place: the datagram, and the original to compare */

static u_char                       fuzz_in[65536];
static u_char                       fuzz_buf[65536];


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    SSL_CTX  *ctx;

    ctx = SSL_CTX_new(DTLS_server_method());
    fuzz_ssl = ctx ? SSL_new(ctx) : NULL;

    if (fuzz_ssl == NULL) {
        abort();
    }

    SSL_set_accept_state(fuzz_ssl);

    fuzz_log.log_level = NGX_LOG_EMERG;
    fuzz_conn.log = &fuzz_log;

    return 0;
}


/*
 * What a client's flight may hold "next" messages after its ClientHello,
 * written out again here (RFC 5246, 7.3): a PSK client sends a
 * ClientKeyExchange; one asked for a certificate sends Certificate,
 * ClientKeyExchange, CertificateVerify
 */

static size_t
fuzz_flight_max(ngx_uint_t certificate, ngx_uint_t type, ngx_uint_t next)
{
    if (next == 0 && type == SSL3_MT_CLIENT_HELLO) {
        return 16384;
    }

    if (next == 1 && type == SSL3_MT_CLIENT_KEY_EXCHANGE) {
        return 4096;
    }

    if (!certificate) {
        return 0;
    }

    if (next == 1 && type == SSL3_MT_CERTIFICATE) {
        return 16384;
    }

    if (next == 2 && type == SSL3_MT_CLIENT_KEY_EXCHANGE) {
        return 4096;
    }

    if (next == 3 && type == SSL3_MT_CERTIFICATE_VERIFY) {
        return 4096;
    }

    return 0;
}


/* a kept record's fragments, as the filter must have checked them */

static void
fuzz_check_fragments(ngx_stream_dtls_conn_t *ctx, u_char *p, size_t len)
{
    size_t      msg_len, frag_len;
    ngx_uint_t  seq;

    while (len) {
        fuzz_assert(len >= DTLS1_HM_HEADER_LENGTH);

        msg_len = ngx_stream_dtls_read_uint24(p + 1);
        seq = ngx_stream_dtls_read_uint16(p + 4);
        frag_len = ngx_stream_dtls_read_uint24(p + 9);

        fuzz_assert(ctx->hello_seen);
        fuzz_assert(seq >= ctx->hello_seq && seq - ctx->hello_seq <= 3);
        fuzz_assert(msg_len <= fuzz_flight_max(ctx->conf->certificates != NULL,
                                               p[0], seq - ctx->hello_seq));
        fuzz_assert(DTLS1_HM_HEADER_LENGTH + frag_len <= len);

        p += DTLS1_HM_HEADER_LENGTH + frag_len;
        len -= DTLS1_HM_HEADER_LENGTH + frag_len;
    }
}


/* out[0..n) must be whole records of in[0..size), in their order */

static ngx_uint_t
fuzz_check_kept(ngx_stream_dtls_conn_t *ctx, u_char *in, size_t size,
    u_char *out, size_t n)
{
    size_t      len, at;
    ngx_uint_t  epoch1;

    epoch1 = 0;
    at = 0;

    while (n) {
        fuzz_assert(n >= DTLS1_RT_HEADER_LENGTH);

        len = DTLS1_RT_HEADER_LENGTH + ngx_stream_dtls_read_uint16(out + 11);
        fuzz_assert(len <= n);
        fuzz_assert(out[1] == DTLS1_VERSION_MAJOR);

        /* the same bytes stand at a record boundary of the input */

        while (at + len <= size && ngx_memcmp(in + at, out, len) != 0) {
            fuzz_assert(size - at >= DTLS1_RT_HEADER_LENGTH);
            at += DTLS1_RT_HEADER_LENGTH
                  + ngx_stream_dtls_read_uint16(in + at + 11);
        }

        fuzz_assert(at + len <= size);
        at += len;

        switch (ngx_stream_dtls_read_uint16(out + 3)) {

        case 0:
            if (out[0] == SSL3_RT_HANDSHAKE) {
                fuzz_check_fragments(ctx, out + DTLS1_RT_HEADER_LENGTH,
                                     len - DTLS1_RT_HEADER_LENGTH);

            } else {
                fuzz_assert(out[0] == SSL3_RT_CHANGE_CIPHER_SPEC
                            || out[0] == SSL3_RT_ALERT);
            }

            break;

        case 1:
            epoch1++;
            break;

        default:
            fuzz_assert(0);
        }

        out += len;
        n -= len;
    }

    return epoch1;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t                        len;
    ssize_t                       n;
    ngx_uint_t                    epoch1;
    ngx_stream_dtls_conn_t        ctx;
    ngx_stream_dtls_srv_conf_t    conf;

    if (size < 1) {
        return 0;
    }

    ngx_memzero(&conf, sizeof(conf));
    ngx_memzero(&ctx, sizeof(ctx));

    if (data[0] & 1) {
        conf.certificates = &fuzz_certificates;
        conf.verify = NGX_STREAM_DTLS_VERIFY_ON;
    }

    ctx.ssl = fuzz_ssl;
    ctx.conf = &conf;
    ctx.connection = &fuzz_conn;

    data++;
    size--;
    epoch1 = 0;

    while (size >= 2) {
        len = ngx_min((size_t) ((data[0] << 8) | data[1]), size - 2);
        data += 2;
        size -= 2;

        ngx_memcpy(fuzz_in, data, len);
        ngx_memcpy(fuzz_buf, data, len);

        n = ngx_stream_dtls_handshake_input(&ctx, fuzz_buf, len);

        if (n == NGX_ERROR) {
            fuzz_assert(ctx.failure != NULL);
            break;
        }

        fuzz_assert(n >= 0 && (size_t) n <= len);

        epoch1 += fuzz_check_kept(&ctx, fuzz_in, len, fuzz_buf, n);
        fuzz_assert(epoch1 <= NGX_STREAM_DTLS_MAX_EARLY_RECORDS);
        fuzz_assert(epoch1 == ctx.early);

        data += len;
        size -= len;
    }

    return 0;
}
