
/*
 * Copyright (C) ngx_dtls authors
 */


/*
 * libFuzzer target: everything that reads the first datagram of a session,
 * ngx_stream_dtls_hello() (ClientHello parser, stray-record check, cookie
 * HMAC, HelloVerifyRequest).  The source file is included, so that its
 * statics (the EVP_MAC, the parser) are in reach; see README.md.
 *
 * Input: one byte of flags, then the datagram.
 *
 *   bit 0      client and server on IPv6 (else IPv4)
 *   bits 1-3   the time: offset into the cookie epoch, in eighths of it
 *   bits 4-5   cookie lifetime: 60, 60, 1, 86400 s
 *   bits 6-7   0: plain; 1: send_chain says EAGAIN; 2: send_chain fails;
 *              3: an address no cookie can be made for (port 0 or
 *              AF_UNIX, from bit 1), so nothing may pass
 *
 * Checked for every input (abort() when broken):
 *   - a reply is sent only for VERIFY and BAD_COOKIE, one each time;
 *     it is a well-formed 60-byte HelloVerifyRequest, never longer than
 *     the datagram, echoing its record sequence and carrying the cookie
 *     the function hands back;
 *   - OK only when the datagram's cookie is the one computed for this
 *     client now or one epoch ago;
 * and, for each datagram the parser accepts, on variants of it:
 *   - without a cookie: VERIFY; with the cookie that gave: OK;
 *     with one bit of it flipped: BAD_COOKIE;
 *   - the same cookie one epoch later: OK; two epochs later, one epoch
 *     earlier, from another client port, to another server address:
 *     BAD_COOKIE.
 */


#include "../../src/ngx_stream_dtls_hello.c"

#include "fuzz.h"
#include "fuzz_nginx.h"


#define FUZZ_HVR_LEN      60
#define FUZZ_MAX_INPUT    (65535 + DTLS1_RT_HEADER_LENGTH)
#define FUZZ_BASE_TIME    ((time_t) 1700000000)


static const char  *fuzz_result[] = {
    "OK", "VERIFY", "BAD_COOKIE", "STRAY", "INVALID"
};

static ngx_event_t                      fuzz_write;
static ngx_connection_t                 fuzz_conn;
static ngx_stream_dtls_cookie_secret_t  fuzz_secret;

static struct sockaddr_storage          fuzz_client;
static struct sockaddr_storage          fuzz_server;

static ngx_uint_t                       fuzz_send_mode;
static ngx_uint_t                       fuzz_sent;
static size_t                           fuzz_reply_len;
static u_char                           fuzz_reply[256];


static ngx_chain_t *
fuzz_send_chain(ngx_connection_t *c, ngx_chain_t *in, off_t limit)
{
    size_t        len;
    ngx_chain_t  *cl;

    fuzz_assert(c == &fuzz_conn);
    fuzz_assert(c->write->ready);

    fuzz_sent++;
    fuzz_reply_len = 0;

    for (cl = in; cl; cl = cl->next) {
        len = cl->buf->last - cl->buf->pos;
        fuzz_assert(fuzz_reply_len + len <= sizeof(fuzz_reply));
        ngx_memcpy(fuzz_reply + fuzz_reply_len, cl->buf->pos, len);
        fuzz_reply_len += len;
    }

    switch (fuzz_send_mode) {
    case 1:
        c->write->ready = 0;
        return in;
    case 2:
        return NGX_CHAIN_ERROR;
    default:
        return NULL;
    }
}


static void
fuzz_set_time(time_t sec)
{
    ngx_time_t  *tp;

    tp = (ngx_time_t *) ngx_cached_time;
    tp->sec = sec;
}


static void
fuzz_addresses(ngx_uint_t inet6, in_port_t cport, in_port_t sport,
    u_char last)
{
    struct sockaddr_in   *sin;
    struct sockaddr_in6  *sin6;

    ngx_memzero(&fuzz_client, sizeof(fuzz_client));
    ngx_memzero(&fuzz_server, sizeof(fuzz_server));

    if (inet6) {
        sin6 = (struct sockaddr_in6 *) &fuzz_client;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(cport);
        sin6->sin6_addr.s6_addr[0] = 0x20;
        sin6->sin6_addr.s6_addr[1] = 0x01;
        sin6->sin6_addr.s6_addr[2] = 0x0d;
        sin6->sin6_addr.s6_addr[3] = 0xb8;
        sin6->sin6_addr.s6_addr[15] = 2;

        sin6 = (struct sockaddr_in6 *) &fuzz_server;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(sport);
        sin6->sin6_addr.s6_addr[0] = 0x20;
        sin6->sin6_addr.s6_addr[1] = 0x01;
        sin6->sin6_addr.s6_addr[2] = 0x0d;
        sin6->sin6_addr.s6_addr[3] = 0xb8;
        sin6->sin6_addr.s6_addr[15] = last;

    } else {
        sin = (struct sockaddr_in *) &fuzz_client;
        sin->sin_family = AF_INET;
        sin->sin_port = htons(cport);
        sin->sin_addr.s_addr = htonl(0xc0000202);       /* 192.0.2.2 */

        sin = (struct sockaddr_in *) &fuzz_server;
        sin->sin_family = AF_INET;
        sin->sin_port = htons(sport);
        sin->sin_addr.s_addr = htonl(0xc0000200 | last);
    }

    fuzz_conn.sockaddr = (struct sockaddr *) &fuzz_client;
    fuzz_conn.local_sockaddr = (struct sockaddr *) &fuzz_server;
    fuzz_conn.socklen = inet6 ? sizeof(struct sockaddr_in6)
                              : sizeof(struct sockaddr_in);
}


/* one call, with the checks that hold for any datagram */

static ngx_stream_dtls_hello_e
fuzz_hello(u_char *d, size_t n, u_char *cookie)
{
    u_char                   *copy;
    ngx_buf_t                 b;
    ngx_stream_dtls_hello_e   rc;

    /* a buffer of exactly the datagram's size, for ASan to guard */

    copy = malloc(n ? n : 1);
    fuzz_assert(copy != NULL);
    ngx_memcpy(copy, d, n);

    ngx_memzero(&b, sizeof(ngx_buf_t));
    b.start = copy;
    b.pos = copy;
    b.last = copy + n;
    b.end = copy + n;

    ngx_memset(cookie, 0xa5, NGX_STREAM_DTLS_COOKIE_LEN);

    fuzz_sent = 0;
    fuzz_reply_len = 0;
    fuzz_write.ready = 0;

    rc = ngx_stream_dtls_hello(&fuzz_conn, fuzz_conn.send_chain,
                               &fuzz_secret, &b, cookie);

    /* the datagram is not written to */
    fuzz_assert(ngx_memcmp(copy, d, n) == 0);
    free(copy);

    fuzz_assert(rc <= NGX_STREAM_DTLS_HELLO_INVALID);

    if (rc != NGX_STREAM_DTLS_HELLO_VERIFY
        && rc != NGX_STREAM_DTLS_HELLO_BAD_COOKIE)
    {
        fuzz_assert(fuzz_sent == 0);
        return rc;
    }

    /* a valid ClientHello is at least 67 bytes: always answered */

    fuzz_assert(n >= 67);
    fuzz_assert(fuzz_sent == 1);
    fuzz_assert(fuzz_reply_len == FUZZ_HVR_LEN);
    fuzz_assert(fuzz_reply_len <= n);

    /* record: handshake, DTLS 1.0, the ClientHello's epoch and sequence */
    fuzz_assert(fuzz_reply[0] == 22);
    fuzz_assert(fuzz_reply[1] == 0xfe && fuzz_reply[2] == 0xff);
    fuzz_assert(ngx_memcmp(fuzz_reply + 3, d + 3, 8) == 0);
    fuzz_assert(fuzz_reply[11] == 0 && fuzz_reply[12] == 47);

    /* HelloVerifyRequest, message_seq 0, one whole fragment */
    fuzz_assert(fuzz_reply[13] == 3);
    fuzz_assert(fuzz_reply[14] == 0 && fuzz_reply[15] == 0
                && fuzz_reply[16] == 35);
    fuzz_assert(fuzz_reply[17] == 0 && fuzz_reply[18] == 0);
    fuzz_assert(fuzz_reply[19] == 0 && fuzz_reply[20] == 0
                && fuzz_reply[21] == 0);
    fuzz_assert(fuzz_reply[22] == 0 && fuzz_reply[23] == 0
                && fuzz_reply[24] == 35);
    fuzz_assert(fuzz_reply[25] == 0xfe && fuzz_reply[26] == 0xff);
    fuzz_assert(fuzz_reply[27] == NGX_STREAM_DTLS_COOKIE_LEN);
    fuzz_assert(ngx_memcmp(fuzz_reply + 28, cookie,
                           NGX_STREAM_DTLS_COOKIE_LEN) == 0);

    return rc;
}


/*
 * The harness's own look for the cookie field: after the record and
 * handshake headers, client_version, random, and the session_id.
 */

static ngx_int_t
fuzz_find_cookie(u_char *d, size_t n, size_t *off)
{
    size_t  o;

    o = DTLS1_RT_HEADER_LENGTH + DTLS1_HM_HEADER_LENGTH + 2 + 32;

    if (n <= o) {
        return NGX_ERROR;
    }

    o += 1 + d[o];

    if (n <= o || n - o - 1 < d[o]) {
        return NGX_ERROR;
    }

    *off = o;

    return NGX_OK;
}


/* the datagram with another cookie, its three lengths adjusted */

static size_t
fuzz_with_cookie(u_char *out, u_char *d, size_t n, size_t off,
    u_char *cookie, size_t len)
{
    size_t   old, rec, msg, frag, m;
    ssize_t  delta;

    old = d[off];
    delta = (ssize_t) len - (ssize_t) old;

    rec = (d[11] << 8) | d[12];
    msg = (d[14] << 16) | (d[15] << 8) | d[16];
    frag = (d[22] << 16) | (d[23] << 8) | d[24];

    rec += delta;
    msg += delta;
    frag += delta;

    fuzz_assert(rec <= 0xffff);

    m = 0;
    ngx_memcpy(out, d, off);
    m += off;
    out[m++] = (u_char) len;
    if (len) {
        ngx_memcpy(out + m, cookie, len);
        m += len;
    }

    ngx_memcpy(out + m, d + off + 1 + old, n - off - 1 - old);
    m += n - off - 1 - old;

    out[11] = (u_char) (rec >> 8);
    out[12] = (u_char) rec;
    out[14] = (u_char) (msg >> 16);
    out[15] = (u_char) (msg >> 8);
    out[16] = (u_char) msg;
    out[22] = (u_char) (frag >> 16);
    out[23] = (u_char) (frag >> 8);
    out[24] = (u_char) frag;

    return m;
}


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_nginx_init();

    fuzz_write.ready = 1;
    fuzz_write.write = 1;
    fuzz_write.log = &fuzz_log;
    fuzz_write.data = &fuzz_conn;

    fuzz_conn.log = &fuzz_log;
    fuzz_conn.write = &fuzz_write;
    fuzz_conn.send_chain = fuzz_send_chain;
    fuzz_conn.fd = (ngx_socket_t) -1;
    fuzz_conn.type = SOCK_DGRAM;

    ngx_stream_dtls_hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    if (ngx_stream_dtls_hmac == NULL) {
        fprintf(stderr, "EVP_MAC_fetch(\"HMAC\") failed\n");
        abort();
    }

    return 0;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char                   *d, *v, *w, bad[NGX_STREAM_DTLS_COOKIE_LEN];
    u_char                    c0[NGX_STREAM_DTLS_COOKIE_LEN];
    u_char                    ca[NGX_STREAM_DTLS_COOKIE_LEN];
    u_char                    cp[NGX_STREAM_DTLS_COOKIE_LEN];
    u_char                    cx[NGX_STREAM_DTLS_COOKIE_LEN];
    size_t                    n, off, vn, wn;
    time_t                    now, lifetime;
    in_port_t                 cport;
    ngx_uint_t                flags, inet6, mode, i;
    ngx_stream_dtls_hello_e   r0, r;

    static const time_t  lifetimes[4] = { 60, 60, 1, 86400 };

    if (size < 1 || size > FUZZ_MAX_INPUT) {
        return 0;
    }

    flags = data[0];
    d = (u_char *) data + 1;
    n = size - 1;

    inet6 = flags & 1;
    lifetime = lifetimes[(flags >> 4) & 3];
    mode = flags >> 6;

    /* one secret per input: nothing carries over from the last one */

    ngx_memzero(&fuzz_secret, sizeof(fuzz_secret));
    for (i = 0; i < NGX_STREAM_DTLS_SECRET_LEN; i++) {
        fuzz_secret.base[i] = (u_char) (0x5c ^ i);
    }
    fuzz_secret.lifetime = lifetime;
    fuzz_secret.epoch = -1;

    now = (FUZZ_BASE_TIME / lifetime) * lifetime
          + (((flags >> 1) & 7) * lifetime) / 8;
    fuzz_set_time(now);

    cport = 40000 + (in_port_t) (n & 0xff);
    fuzz_addresses(inet6, cport, 5684, 1);
    fuzz_send_mode = (mode == 1 || mode == 2) ? mode : 0;

    if (mode == 3) {
        if (flags & 2) {
            fuzz_server.ss_family = AF_UNIX;

        } else {
            /* a reply to port 0 cannot reach anyone */
            if (inet6) {
                ((struct sockaddr_in6 *) &fuzz_client)->sin6_port = 0;
            } else {
                ((struct sockaddr_in *) &fuzz_client)->sin_port = 0;
            }
        }

        r0 = fuzz_hello(d, n, c0);

        if (fuzz_verbose) {
            fprintf(stderr, "hello: %s (no address for a cookie)\n",
                    fuzz_result[r0]);
        }

        fuzz_assert(r0 == NGX_STREAM_DTLS_HELLO_INVALID
                    || r0 == NGX_STREAM_DTLS_HELLO_STRAY);
        return 0;
    }

    r0 = fuzz_hello(d, n, c0);

    if (fuzz_verbose) {
        fprintf(stderr, "hello: %s, flags 0x%02x, %zu bytes\n",
                fuzz_result[r0], (unsigned) flags, n);
    }

    if (r0 == NGX_STREAM_DTLS_HELLO_INVALID
        || r0 == NGX_STREAM_DTLS_HELLO_STRAY)
    {
        return 0;
    }

    /* the parser took it: then so does the harness's simpler look */

    fuzz_assert(fuzz_find_cookie(d, n, &off) == NGX_OK);

    v = malloc(n + NGX_STREAM_DTLS_COOKIE_LEN + 1);
    w = malloc(n + NGX_STREAM_DTLS_COOKIE_LEN + 1);
    fuzz_assert(v != NULL && w != NULL);

    /* without a cookie: a HelloVerifyRequest with this client's cookie */

    vn = fuzz_with_cookie(v, d, n, off, NULL, 0);
    r = fuzz_hello(v, vn, ca);
    fuzz_assert(r == NGX_STREAM_DTLS_HELLO_VERIFY);

    switch (r0) {

    case NGX_STREAM_DTLS_HELLO_VERIFY:
        fuzz_assert(d[off] == 0);
        fuzz_assert(ngx_memcmp(c0, ca, NGX_STREAM_DTLS_COOKIE_LEN) == 0);
        break;

    case NGX_STREAM_DTLS_HELLO_BAD_COOKIE:
        fuzz_assert(d[off] != 0);
        fuzz_assert(ngx_memcmp(c0, ca, NGX_STREAM_DTLS_COOKIE_LEN) == 0);
        break;

    default: /* NGX_STREAM_DTLS_HELLO_OK */

        fuzz_assert(d[off] == NGX_STREAM_DTLS_COOKIE_LEN);
        fuzz_assert(ngx_memcmp(c0, d + off + 1, NGX_STREAM_DTLS_COOKIE_LEN)
                    == 0);

        if (ngx_memcmp(c0, ca, NGX_STREAM_DTLS_COOKIE_LEN) != 0) {
            /* then it must be the cookie of the epoch before */
            fuzz_set_time(now - lifetime);
            r = fuzz_hello(v, vn, cp);
            fuzz_assert(r == NGX_STREAM_DTLS_HELLO_VERIFY);
            fuzz_assert(ngx_memcmp(c0, cp, NGX_STREAM_DTLS_COOKIE_LEN) == 0);
            fuzz_set_time(now);
        }

        break;
    }

    /* with the cookie just issued: through */

    if (((v[11] << 8) | v[12]) + NGX_STREAM_DTLS_COOKIE_LEN > 0xffff) {
        goto done;
    }

    wn = fuzz_with_cookie(w, v, vn, off, ca, NGX_STREAM_DTLS_COOKIE_LEN);

    r = fuzz_hello(w, wn, cx);
    fuzz_assert(r == NGX_STREAM_DTLS_HELLO_OK);
    fuzz_assert(ngx_memcmp(cx, ca, NGX_STREAM_DTLS_COOKIE_LEN) == 0);

    /* forged: one bit off */

    ngx_memcpy(bad, ca, NGX_STREAM_DTLS_COOKIE_LEN);
    bad[n % NGX_STREAM_DTLS_COOKIE_LEN] ^= (u_char) (1 << (n % 8));
    vn = fuzz_with_cookie(v, w, wn, off, bad, NGX_STREAM_DTLS_COOKIE_LEN);
    r = fuzz_hello(v, vn, cx);
    fuzz_assert(r == NGX_STREAM_DTLS_HELLO_BAD_COOKIE);
    fuzz_assert(ngx_memcmp(cx, ca, NGX_STREAM_DTLS_COOKIE_LEN) == 0);

    /* the previous epoch's key still takes it, no older one */

    fuzz_set_time(now + lifetime);
    r = fuzz_hello(w, wn, cx);
    fuzz_assert(r == NGX_STREAM_DTLS_HELLO_OK);

    fuzz_set_time(now + 2 * lifetime);
    r = fuzz_hello(w, wn, cx);
    fuzz_assert(r == NGX_STREAM_DTLS_HELLO_BAD_COOKIE);
    fuzz_assert(ngx_memcmp(cx, ca, NGX_STREAM_DTLS_COOKIE_LEN) != 0);

    /* nor a key of the future */

    fuzz_set_time(now - lifetime);
    r = fuzz_hello(w, wn, cx);
    fuzz_assert(r == NGX_STREAM_DTLS_HELLO_BAD_COOKIE);

    fuzz_set_time(now);

    /* bound to the client's port and the server's address */

    fuzz_addresses(inet6, cport + 1, 5684, 1);
    r = fuzz_hello(w, wn, cx);
    fuzz_assert(r == NGX_STREAM_DTLS_HELLO_BAD_COOKIE);

    fuzz_addresses(inet6, cport, 5684, 3);
    r = fuzz_hello(w, wn, cx);
    fuzz_assert(r == NGX_STREAM_DTLS_HELLO_BAD_COOKIE);

done:

    free(v);
    free(w);

    return 0;
}
