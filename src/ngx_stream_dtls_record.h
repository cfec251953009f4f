
/*
 * Copyright (C) ngx_dtls authors
 */


#ifndef _NGX_STREAM_DTLS_RECORD_H_INCLUDED_
#define _NGX_STREAM_DTLS_RECORD_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include <openssl/ssl.h>


/* DTLS 1.2 records (RFC 6347 4.1) */

#define ngx_stream_dtls_read_uint48(p)                                        \
    ((uint64_t) (p)[0] << 40 | (uint64_t) (p)[1] << 32                        \
     | (uint64_t) (p)[2] << 24 | (uint64_t) (p)[3] << 16                      \
     | (uint64_t) (p)[4] << 8 | (p)[5])


#define NGX_STREAM_DTLS_RECORD_HEADER_LEN   13
#define NGX_STREAM_DTLS_RECORD_MAX_PLAIN    16384           /* 2^14 */
#define NGX_STREAM_DTLS_RECORD_VERSION      0xfefd          /* DTLS 1.2 */

/* the last sequence number is never sealed: 2^48 - 1 */
#define NGX_STREAM_DTLS_RECORD_SEQ_MAX      0xffffffffffffULL

/* the replay window, the highest record included (RFC 6347 4.1.2.6) */
#define NGX_STREAM_DTLS_RECORD_WINDOW       64

#define NGX_STREAM_DTLS_RECORD_ALERT        21
#define NGX_STREAM_DTLS_RECORD_HANDSHAKE    22
#define NGX_STREAM_DTLS_RECORD_APPLICATION  23
#define NGX_STREAM_DTLS_RECORD_CID          25          /* tls12_cid */

/*
 * A connection ID (RFC 9146) in a record's header: the server's own are
 * dtls_connection_id's length, a client's may be up to this
 */

#define NGX_STREAM_DTLS_CID_MAX_LEN         8

/* header with a CID, explicit nonce, tag and inner type, at most */
#define NGX_STREAM_DTLS_RECORD_MAX_OVERHEAD                                   \
    (NGX_STREAM_DTLS_RECORD_HEADER_LEN + NGX_STREAM_DTLS_CID_MAX_LEN + 8 + 16 \
     + 1)

#define NGX_STREAM_DTLS_RECORD_KEY_LEN      32
#define NGX_STREAM_DTLS_RECORD_IV_LEN       12


/* the AEADs of the TLS 1.2 suites, RFC 5288, 6655, 7905 */

#define NGX_STREAM_DTLS_AEAD_NONE           0
#define NGX_STREAM_DTLS_AEAD_AES_128_GCM    1
#define NGX_STREAM_DTLS_AEAD_AES_256_GCM    2
#define NGX_STREAM_DTLS_AEAD_AES_128_CCM    3
#define NGX_STREAM_DTLS_AEAD_AES_128_CCM_8  4
#define NGX_STREAM_DTLS_AEAD_AES_256_CCM    5
#define NGX_STREAM_DTLS_AEAD_AES_256_CCM_8  6
#define NGX_STREAM_DTLS_AEAD_CHACHA20       7
#define NGX_STREAM_DTLS_AEAD_N              8


/*
 * One direction of a session's record protection: plain bytes, no
 * pointer, so that it can be kept in shared memory (80 bytes).
 * Writing uses seq; reading uses top and window: bit i of window set
 * means that record top - i was received (bit 0 is top itself, so an
 * empty window with top 0 still accepts record 0).  A cid_len other than
 * 0 makes the records tls12_cid ones (RFC 9146) with that CID: the
 * client's in those written, the server's in those read.
 */

typedef struct {
    u_char                      key[NGX_STREAM_DTLS_RECORD_KEY_LEN];
    u_char                      iv[NGX_STREAM_DTLS_RECORD_IV_LEN];
    uint16_t                    epoch;
    u_char                      aead;       /* NGX_STREAM_DTLS_AEAD_* */
    u_char                      cid_len;
    uint64_t                    seq;        /* write: the next to seal */
    uint64_t                    top;        /* read: the highest received */
    uint64_t                    window;     /* read */
    u_char                      cid[NGX_STREAM_DTLS_CID_MAX_LEN];
} ngx_stream_dtls_record_t;


typedef enum {
    NGX_STREAM_DTLS_RECORD_OK = 0,
    NGX_STREAM_DTLS_RECORD_MALFORMED,   /* header, length, type, version */
    NGX_STREAM_DTLS_RECORD_OLD_EPOCH,   /* an epoch before the keys' */
    NGX_STREAM_DTLS_RECORD_NEW_EPOCH,   /* an epoch after the keys' */
    NGX_STREAM_DTLS_RECORD_REPLAY,      /* received already */
    NGX_STREAM_DTLS_RECORD_OLD,         /* left of the replay window */
    NGX_STREAM_DTLS_RECORD_BAD_TAG,     /* failed authentication */
    NGX_STREAM_DTLS_RECORD_TOO_BIG,     /* plaintext over 2^14 */
    NGX_STREAM_DTLS_RECORD_NO_SPACE,    /* the output buffer is too small */
    NGX_STREAM_DTLS_RECORD_EXHAUSTED,   /* no sequence number left */
    NGX_STREAM_DTLS_RECORD_ERROR        /* no keys, or OpenSSL failed */
} ngx_stream_dtls_record_rc_e;


ngx_int_t ngx_stream_dtls_record_init(void);
void ngx_stream_dtls_record_done(void);
ngx_int_t ngx_stream_dtls_record_derive(SSL *ssl, ngx_uint_t epoch,
    ngx_stream_dtls_record_t *rd, ngx_stream_dtls_record_t *wr);
ngx_int_t ngx_stream_dtls_record_derive_keys(SSL *ssl, ngx_uint_t epoch,
    ngx_stream_dtls_record_t *rd, ngx_stream_dtls_record_t *wr);
ngx_uint_t ngx_stream_dtls_record_cipher_aead(const SSL_CIPHER *cipher);
ngx_stream_dtls_record_rc_e ngx_stream_dtls_record_seal(
    ngx_stream_dtls_record_t *wr, ngx_uint_t type, u_char *in, size_t len,
    u_char *out, size_t size, size_t *n);
ngx_stream_dtls_record_rc_e ngx_stream_dtls_record_open(
    ngx_stream_dtls_record_t *rd, u_char *in, size_t len, u_char *out,
    size_t *n, ngx_uint_t *type);
void ngx_stream_dtls_record_received(ngx_stream_dtls_record_t *rd,
    uint64_t seq);
ngx_uint_t ngx_stream_dtls_record_seen(ngx_stream_dtls_record_t *rd,
    uint64_t seq);
uint64_t ngx_stream_dtls_record_seq(u_char *p);
u_char *ngx_stream_dtls_record_header(u_char *p, ngx_uint_t type,
    ngx_uint_t version, ngx_uint_t epoch, uint64_t seq, size_t len);
size_t ngx_stream_dtls_record_length(u_char *p, size_t len);
size_t ngx_stream_dtls_record_cid_length(u_char *p, size_t len,
    size_t cid_len);
size_t ngx_stream_dtls_record_overhead(ngx_stream_dtls_record_t *r);
void ngx_stream_dtls_record_wipe(ngx_stream_dtls_record_t *r);
const char *ngx_stream_dtls_record_reason(ngx_stream_dtls_record_rc_e rc);


#endif /* _NGX_STREAM_DTLS_RECORD_H_INCLUDED_ */
