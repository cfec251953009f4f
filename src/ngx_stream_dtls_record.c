
/*
 * Copyright (C) ngx_dtls authors
 */


/*
 * The DTLS 1.2 record layer of an established session, without the SSL
 * object: the record keys derived from the session (RFC 5246 6.3), and
 * application_data, alert and handshake records sealed and opened with
 * OpenSSL's EVP AEADs.
 *
 *   additional data: epoch (2) + sequence (6) + type + version + length
 *                    of the plaintext (RFC 5246 6.2.3.3, RFC 6347 4.1.2.1)
 *   AES-GCM, AES-CCM (RFC 5288, 6655): nonce = the key block's 4-byte
 *                    salt + an 8-byte explicit nonce, sent before the
 *                    ciphertext; sealed here as epoch + sequence, opened
 *                    as whatever the peer sent (OpenSSL's GCM sends a
 *                    counter from a random start, its CCM the sequence)
 *   ChaCha20-Poly1305 (RFC 7905): nonce = the key block's 12-byte IV
 *                    XORed with epoch + sequence, left-padded; nothing
 *                    explicit on the wire
 *   tag:             16 bytes, 8 for the CCM_8 suites
 *
 * With a connection ID (RFC 9146 4-5), the records of both directions
 * are tls12_cid ones:
 *
 *   header:          type 25, version, epoch, sequence, the CID, length
 *   plaintext:       content, the real type, zeros (none sealed here)
 *   additional data: 8 bytes 0xff, 25, the CID's length, 25, version,
 *                    epoch + sequence, the CID, the plaintext's length
 *                    (the content, its type and the zeros)
 *
 * The nonce is the same as without one.
 *
 * Opening checks the header, the epoch and the replay window (RFC 6347
 * 4.1.2.6, 64 records) before the tag, and changes nothing unless the
 * record authenticates.  Sealing stops at sequence 2^48 - 1.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_stream_dtls_record.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>


#define NGX_STREAM_DTLS_KEY_EXPANSION      "key expansion"
#define NGX_STREAM_DTLS_KEY_EXPANSION_LEN  (sizeof("key expansion") - 1)
#define NGX_STREAM_DTLS_RANDOM_LEN         32
#define NGX_STREAM_DTLS_AAD_LEN            13
#define NGX_STREAM_DTLS_CID_AAD_LEN        23      /* and the CID */
#define NGX_STREAM_DTLS_AAD_MAX                                               \
    (NGX_STREAM_DTLS_CID_AAD_LEN + NGX_STREAM_DTLS_CID_MAX_LEN)

#define NGX_STREAM_DTLS_KEY_BLOCK_MAX                                         \
    (2 * (NGX_STREAM_DTLS_RECORD_KEY_LEN + NGX_STREAM_DTLS_RECORD_IV_LEN))


typedef struct {
    const char                 *name;       /* for EVP_CIPHER_fetch() */
    size_t                      key_len;
    size_t                      iv_len;     /* from the key block */
    size_t                      explicit_len;
    size_t                      tag_len;
    ngx_uint_t                  ccm;        /* length before the AAD */
} ngx_stream_dtls_aead_t;


static ngx_int_t ngx_stream_dtls_record_expand(ngx_uint_t aead,
    const char *digest, u_char *master, size_t master_len,
    u_char *client_random, u_char *server_random, ngx_uint_t server,
    ngx_uint_t epoch, ngx_stream_dtls_record_t *rd,
    ngx_stream_dtls_record_t *wr);
static void ngx_stream_dtls_record_keys(ngx_stream_dtls_record_t *r,
    ngx_uint_t aead, ngx_uint_t epoch, u_char *key, u_char *iv);
static ngx_stream_dtls_record_rc_e ngx_stream_dtls_record_check(
    ngx_stream_dtls_record_t *rd, uint64_t seq);
static void ngx_stream_dtls_record_nonce(ngx_stream_dtls_record_t *r,
    u_char *seq, u_char *explicit, u_char *nonce);
static size_t ngx_stream_dtls_record_aad(ngx_stream_dtls_record_t *r,
    u_char *header, size_t plain, u_char *aad);
static ngx_int_t ngx_stream_dtls_record_crypt(ngx_uint_t aead, u_char *key,
    u_char *nonce, u_char *aad, size_t aad_len, u_char *in, size_t len,
    u_char *out, u_char *tag, int enc);


static ngx_stream_dtls_aead_t  ngx_stream_dtls_aeads[] = {
    { NULL, 0, 0, 0, 0, 0 },
    { "AES-128-GCM", 16, 4, 8, 16, 0 },
    { "AES-256-GCM", 32, 4, 8, 16, 0 },
    { "AES-128-CCM", 16, 4, 8, 16, 1 },
    { "AES-128-CCM", 16, 4, 8, 8, 1 },
    { "AES-256-CCM", 32, 4, 8, 16, 1 },
    { "AES-256-CCM", 32, 4, 8, 8, 1 },
    { "ChaCha20-Poly1305", 32, 12, 0, 16, 0 }
};


/* fetched once per process; each record sets only the key and nonce */

static EVP_CIPHER      *ngx_stream_dtls_record_ciphers[NGX_STREAM_DTLS_AEAD_N];
static EVP_CIPHER_CTX  *ngx_stream_dtls_record_ctx[NGX_STREAM_DTLS_AEAD_N];
static EVP_KDF         *ngx_stream_dtls_record_kdf;


static const char  *ngx_stream_dtls_record_reasons[] = {
    "ok",
    "malformed record",
    "record of an earlier epoch",
    "record of a later epoch",
    "replayed record",
    "record older than the replay window",
    "record failed authentication",
    "record too long",
    "record buffer too small",
    "sequence numbers exhausted",
    "record protection failed"
};


ngx_int_t
ngx_stream_dtls_record_init(void)
{
    size_t       iv_len;
    ngx_uint_t   i;
    OSSL_PARAM   params[3];

    if (ngx_stream_dtls_record_kdf != NULL) {
        return NGX_OK;
    }

    for (i = 1; i < NGX_STREAM_DTLS_AEAD_N; i++) {

        /*
         * CCM's nonce is 7 bytes unless told, the others' 12 already; and
         * CCM takes the tag length M into its state when the key is set,
         * before the parameters that come with the key: M must be set
         * here, or the first record after this would be sealed or checked
         * with the default M of 12 and fail
         */

        iv_len = 12;
        params[0] = OSSL_PARAM_construct_size_t(OSSL_CIPHER_PARAM_AEAD_IVLEN,
                                                &iv_len);
        params[1] = OSSL_PARAM_construct_end();

        if (ngx_stream_dtls_aeads[i].ccm) {
            params[1] = OSSL_PARAM_construct_octet_string(
                                            OSSL_CIPHER_PARAM_AEAD_TAG, NULL,
                                            ngx_stream_dtls_aeads[i].tag_len);
            params[2] = OSSL_PARAM_construct_end();
        }

        ngx_stream_dtls_record_ciphers[i] =
                EVP_CIPHER_fetch(NULL, ngx_stream_dtls_aeads[i].name, NULL);
        if (ngx_stream_dtls_record_ciphers[i] == NULL) {
            goto failed;
        }

        ngx_stream_dtls_record_ctx[i] = EVP_CIPHER_CTX_new();
        if (ngx_stream_dtls_record_ctx[i] == NULL) {
            goto failed;
        }

        if (EVP_CipherInit_ex2(ngx_stream_dtls_record_ctx[i],
                               ngx_stream_dtls_record_ciphers[i], NULL, NULL,
                               1, params)
            != 1)
        {
            goto failed;
        }
    }

    ngx_stream_dtls_record_kdf = EVP_KDF_fetch(NULL, "TLS1-PRF", NULL);
    if (ngx_stream_dtls_record_kdf == NULL) {
        goto failed;
    }

    return NGX_OK;

failed:

    ngx_stream_dtls_record_done();

    return NGX_ERROR;
}


void
ngx_stream_dtls_record_done(void)
{
    ngx_uint_t  i;

    for (i = 1; i < NGX_STREAM_DTLS_AEAD_N; i++) {
        EVP_CIPHER_CTX_free(ngx_stream_dtls_record_ctx[i]);
        ngx_stream_dtls_record_ctx[i] = NULL;

        EVP_CIPHER_free(ngx_stream_dtls_record_ciphers[i]);
        ngx_stream_dtls_record_ciphers[i] = NULL;
    }

    EVP_KDF_free(ngx_stream_dtls_record_kdf);
    ngx_stream_dtls_record_kdf = NULL;
}


/*
 * Both directions of an established DTLS 1.2 session, from its SSL
 * object (either side's: wr gets the keys it writes with).  The epoch is
 * the one the handshake ended in, 1 unless renegotiated.  The write
 * sequence starts at 0 and the read window empty: the caller moves them
 * past the records OpenSSL sent and read in that epoch (the Finished
 * messages at least), with wr->seq and ngx_stream_dtls_record_received().
 *
 * NGX_DECLINED: not DTLS 1.2, a handshake not finished, or a suite whose
 * AEAD is not here.
 */

ngx_int_t
ngx_stream_dtls_record_derive(SSL *ssl, ngx_uint_t epoch,
    ngx_stream_dtls_record_t *rd, ngx_stream_dtls_record_t *wr)
{
    if (!SSL_is_init_finished(ssl)) {
        return NGX_DECLINED;
    }

    return ngx_stream_dtls_record_derive_keys(ssl, epoch, rd, wr);
}


/*
 * The same keys in a handshake, once its master secret is known: the
 * ClientKeyExchange processed (or the session to resume found), for the
 * Finished messages of a session with a connection ID (cid.c)
 */

ngx_int_t
ngx_stream_dtls_record_derive_keys(SSL *ssl, ngx_uint_t epoch,
    ngx_stream_dtls_record_t *rd, ngx_stream_dtls_record_t *wr)
{
    size_t             master_len;
    ngx_int_t          rc;
    ngx_uint_t         aead;
    SSL_SESSION       *sess;
    const EVP_MD      *md;
    const SSL_CIPHER  *cipher;
    u_char             master[SSL_MAX_MASTER_KEY_LENGTH];
    u_char             client_random[NGX_STREAM_DTLS_RANDOM_LEN];
    u_char             server_random[NGX_STREAM_DTLS_RANDOM_LEN];

    if (SSL_version(ssl) != DTLS1_2_VERSION || epoch > 0xffff) {
        return NGX_DECLINED;
    }

    cipher = SSL_get_current_cipher(ssl);
    sess = SSL_get_session(ssl);

    if (cipher == NULL || sess == NULL) {
        return NGX_DECLINED;
    }

    aead = ngx_stream_dtls_record_cipher_aead(cipher);
    md = SSL_CIPHER_get_handshake_digest(cipher);

    if (aead == NGX_STREAM_DTLS_AEAD_NONE || md == NULL) {
        return NGX_DECLINED;
    }

    if (ngx_stream_dtls_record_init() != NGX_OK) {
        return NGX_ERROR;
    }

    master_len = SSL_SESSION_get_master_key(sess, master, sizeof(master));

    if (master_len == 0) {
        /* a handshake before its ClientKeyExchange */
        return NGX_DECLINED;
    }

    if (SSL_get_client_random(ssl, client_random,
                                 NGX_STREAM_DTLS_RANDOM_LEN)
           != NGX_STREAM_DTLS_RANDOM_LEN
        || SSL_get_server_random(ssl, server_random,
                                 NGX_STREAM_DTLS_RANDOM_LEN)
           != NGX_STREAM_DTLS_RANDOM_LEN)
    {
        OPENSSL_cleanse(master, sizeof(master));
        return NGX_ERROR;
    }

    rc = ngx_stream_dtls_record_expand(aead, EVP_MD_get0_name(md), master,
                                       master_len, client_random,
                                       server_random, SSL_is_server(ssl),
                                       epoch, rd, wr);

    OPENSSL_cleanse(master, sizeof(master));

    return rc;
}


/*
 * The suite's AEAD; the CCM_8 suites (RFC 6655, 7251) share their
 * cipher's NID with the CCM ones and are told apart by their number.
 */

ngx_uint_t
ngx_stream_dtls_record_cipher_aead(const SSL_CIPHER *cipher)
{
    uint16_t    id;
    ngx_uint_t  ccm8;

    id = SSL_CIPHER_get_protocol_id(cipher);

    ccm8 = (id >= 0xc0a0 && id <= 0xc0a3)
           || (id >= 0xc0a8 && id <= 0xc0ab)
           || id == 0xc0ae || id == 0xc0af;

    switch (SSL_CIPHER_get_cipher_nid(cipher)) {

    case NID_aes_128_gcm:
        return NGX_STREAM_DTLS_AEAD_AES_128_GCM;

    case NID_aes_256_gcm:
        return NGX_STREAM_DTLS_AEAD_AES_256_GCM;

    case NID_aes_128_ccm:
        return ccm8 ? NGX_STREAM_DTLS_AEAD_AES_128_CCM_8
                    : NGX_STREAM_DTLS_AEAD_AES_128_CCM;

    case NID_aes_256_ccm:
        return ccm8 ? NGX_STREAM_DTLS_AEAD_AES_256_CCM_8
                    : NGX_STREAM_DTLS_AEAD_AES_256_CCM;

    case NID_chacha20_poly1305:
        return NGX_STREAM_DTLS_AEAD_CHACHA20;

    default:
        return NGX_STREAM_DTLS_AEAD_NONE;
    }
}


/*
 * RFC 5246 6.3: key_block = PRF(master_secret, "key expansion",
 * server_random + client_random), cut into client_write_key,
 * server_write_key, client_write_IV, server_write_IV (AEADs have no MAC
 * keys).
 */

static ngx_int_t
ngx_stream_dtls_record_expand(ngx_uint_t aead, const char *digest,
    u_char *master, size_t master_len, u_char *client_random,
    u_char *server_random, ngx_uint_t server, ngx_uint_t epoch,
    ngx_stream_dtls_record_t *rd, ngx_stream_dtls_record_t *wr)
{
    u_char                  *p, *client_key, *server_key, *client_iv,
                            *server_iv;
    size_t                   len;
    OSSL_PARAM               params[4];
    EVP_KDF_CTX             *kctx;
    ngx_stream_dtls_aead_t  *a;
    u_char                   block[NGX_STREAM_DTLS_KEY_BLOCK_MAX];
    u_char                   seed[NGX_STREAM_DTLS_KEY_EXPANSION_LEN
                                  + 2 * NGX_STREAM_DTLS_RANDOM_LEN];

    if (aead == NGX_STREAM_DTLS_AEAD_NONE || aead >= NGX_STREAM_DTLS_AEAD_N) {
        return NGX_DECLINED;
    }

    if (ngx_stream_dtls_record_init() != NGX_OK) {
        return NGX_ERROR;
    }

    a = &ngx_stream_dtls_aeads[aead];
    len = 2 * (a->key_len + a->iv_len);

    p = ngx_cpymem(seed, NGX_STREAM_DTLS_KEY_EXPANSION,
                   NGX_STREAM_DTLS_KEY_EXPANSION_LEN);
    p = ngx_cpymem(p, server_random, NGX_STREAM_DTLS_RANDOM_LEN);
    ngx_memcpy(p, client_random, NGX_STREAM_DTLS_RANDOM_LEN);

    kctx = EVP_KDF_CTX_new(ngx_stream_dtls_record_kdf);
    if (kctx == NULL) {
        return NGX_ERROR;
    }

    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST,
                                                 (char *) digest, 0);
    params[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SECRET,
                                                  master, master_len);
    params[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SEED,
                                                  seed, sizeof(seed));
    params[3] = OSSL_PARAM_construct_end();

    if (EVP_KDF_derive(kctx, block, len, params) != 1) {
        EVP_KDF_CTX_free(kctx);
        OPENSSL_cleanse(block, sizeof(block));
        return NGX_ERROR;
    }

    EVP_KDF_CTX_free(kctx);

    client_key = block;
    server_key = client_key + a->key_len;
    client_iv = server_key + a->key_len;
    server_iv = client_iv + a->iv_len;

    if (server) {
        ngx_stream_dtls_record_keys(wr, aead, epoch, server_key, server_iv);
        ngx_stream_dtls_record_keys(rd, aead, epoch, client_key, client_iv);

    } else {
        ngx_stream_dtls_record_keys(wr, aead, epoch, client_key, client_iv);
        ngx_stream_dtls_record_keys(rd, aead, epoch, server_key, server_iv);
    }

    OPENSSL_cleanse(block, sizeof(block));

    return NGX_OK;
}


static void
ngx_stream_dtls_record_keys(ngx_stream_dtls_record_t *r, ngx_uint_t aead,
    ngx_uint_t epoch, u_char *key, u_char *iv)
{
    ngx_memzero(r, sizeof(ngx_stream_dtls_record_t));

    ngx_memcpy(r->key, key, ngx_stream_dtls_aeads[aead].key_len);
    ngx_memcpy(r->iv, iv, ngx_stream_dtls_aeads[aead].iv_len);

    r->epoch = (uint16_t) epoch;
    r->aead = (u_char) aead;
}


/*
 * A whole record of "type" (alert, handshake or application_data) with
 * the next sequence number, into out; in may be out plus the header and
 * the explicit nonce (in place), or must not overlap out.
 */

ngx_stream_dtls_record_rc_e
ngx_stream_dtls_record_seal(ngx_stream_dtls_record_t *wr, ngx_uint_t type,
    u_char *in, size_t len, u_char *out, size_t size, size_t *n)
{
    u_char                  *p, *body;
    size_t                   total, fragment, hlen, plain, aad_len;
    ngx_int_t                rc;
    ngx_stream_dtls_aead_t  *a;
    u_char                   seq[8], aad[NGX_STREAM_DTLS_AAD_MAX],
                             nonce[NGX_STREAM_DTLS_RECORD_IV_LEN],
                             header[NGX_STREAM_DTLS_RECORD_HEADER_LEN
                                    + NGX_STREAM_DTLS_CID_MAX_LEN];

    if (wr->aead == NGX_STREAM_DTLS_AEAD_NONE
        || wr->aead >= NGX_STREAM_DTLS_AEAD_N
        || type < NGX_STREAM_DTLS_RECORD_ALERT
        || type > NGX_STREAM_DTLS_RECORD_APPLICATION)
    {
        return NGX_STREAM_DTLS_RECORD_ERROR;
    }

    if (len > NGX_STREAM_DTLS_RECORD_MAX_PLAIN) {
        return NGX_STREAM_DTLS_RECORD_TOO_BIG;
    }

    if (wr->seq >= NGX_STREAM_DTLS_RECORD_SEQ_MAX) {
        return NGX_STREAM_DTLS_RECORD_EXHAUSTED;
    }

    if (wr->cid_len > NGX_STREAM_DTLS_CID_MAX_LEN) {
        return NGX_STREAM_DTLS_RECORD_ERROR;
    }

    a = &ngx_stream_dtls_aeads[wr->aead];

    /* a CID record's plaintext ends with its real type */

    hlen = NGX_STREAM_DTLS_RECORD_HEADER_LEN + wr->cid_len;
    plain = len + (wr->cid_len ? 1 : 0);
    fragment = a->explicit_len + plain + a->tag_len;
    total = hlen + fragment;

    if (size < total) {
        return NGX_STREAM_DTLS_RECORD_NO_SPACE;
    }

    if (ngx_stream_dtls_record_init() != NGX_OK) {
        return NGX_STREAM_DTLS_RECORD_ERROR;
    }

    (void) ngx_stream_dtls_record_header(header, type,
                                         NGX_STREAM_DTLS_RECORD_VERSION,
                                         wr->epoch, wr->seq, len);
    ngx_memcpy(seq, &header[3], 8);

    aad_len = ngx_stream_dtls_record_aad(wr, header, plain, aad);

    ngx_stream_dtls_record_nonce(wr, seq, seq, nonce);

    body = out + hlen + a->explicit_len;

    if (wr->cid_len) {
        /* content and type together: CCM takes its data in one piece */
        ngx_memmove(body, in, len);
        body[len] = (u_char) type;
        in = body;
    }

    rc = ngx_stream_dtls_record_crypt(wr->aead, wr->key, nonce, aad, aad_len,
                                      in, plain, body, body + plain, 1);

    OPENSSL_cleanse(nonce, sizeof(nonce));

    if (rc != NGX_OK) {
        return NGX_STREAM_DTLS_RECORD_ERROR;
    }

    /* the header after the data, which may have been anywhere before */

    p = ngx_stream_dtls_record_header(out, wr->cid_len
                                           ? NGX_STREAM_DTLS_RECORD_CID
                                           : type,
                                      NGX_STREAM_DTLS_RECORD_VERSION,
                                      wr->epoch, wr->seq, fragment);

    if (wr->cid_len) {
        /* the CID goes before the length */
        p -= 2;
        p = ngx_cpymem(p, wr->cid, wr->cid_len);
        *p++ = (u_char) (fragment >> 8);
        *p++ = (u_char) fragment;
    }

    if (a->explicit_len) {
        ngx_memcpy(p, seq, 8);
    }

    wr->seq++;
    *n = total;

    return NGX_STREAM_DTLS_RECORD_OK;
}


/*
 * One whole record, in[0 .. len - 1] (ngx_stream_dtls_record_length()
 * finds it in a datagram), into its plaintext: out[0 .. *n - 1], *type.
 * out has room for len - ngx_stream_dtls_record_overhead() bytes, and is
 * in + the header and the explicit nonce (in place) or does not overlap
 * in.  Anything but NGX_STREAM_DTLS_RECORD_OK leaves rd as it was, and
 * no unauthenticated plaintext in out.  A CID record is decrypted in
 * place, its plaintext then moved to out: in's bytes are lost.
 */

ngx_stream_dtls_record_rc_e
ngx_stream_dtls_record_open(ngx_stream_dtls_record_t *rd, u_char *in,
    size_t len, u_char *out, size_t *n, ngx_uint_t *type)
{
    u_char                      *body, *dst;
    size_t                       fragment, plain, hlen, aad_len;
    uint64_t                     seq;
    ngx_int_t                    rc;
    ngx_uint_t                   epoch, t;
    ngx_stream_dtls_aead_t      *a;
    ngx_stream_dtls_record_rc_e  check;
    u_char                       aad[NGX_STREAM_DTLS_AAD_MAX],
                                 nonce[NGX_STREAM_DTLS_RECORD_IV_LEN];

    if (rd->aead == NGX_STREAM_DTLS_AEAD_NONE
        || rd->aead >= NGX_STREAM_DTLS_AEAD_N
        || rd->cid_len > NGX_STREAM_DTLS_CID_MAX_LEN)
    {
        return NGX_STREAM_DTLS_RECORD_ERROR;
    }

    a = &ngx_stream_dtls_aeads[rd->aead];

    hlen = NGX_STREAM_DTLS_RECORD_HEADER_LEN + rd->cid_len;

    if (len < hlen) {
        return NGX_STREAM_DTLS_RECORD_MALFORMED;
    }

    t = in[0];

    if (rd->cid_len) {
        if (t != NGX_STREAM_DTLS_RECORD_CID
            || ngx_memcmp(&in[11], rd->cid, rd->cid_len) != 0)
        {
            return NGX_STREAM_DTLS_RECORD_MALFORMED;
        }

    } else if (t < NGX_STREAM_DTLS_RECORD_ALERT
               || t > NGX_STREAM_DTLS_RECORD_APPLICATION)
    {
        return NGX_STREAM_DTLS_RECORD_MALFORMED;
    }

    if (((ngx_uint_t) in[1] << 8 | in[2]) != NGX_STREAM_DTLS_RECORD_VERSION) {
        return NGX_STREAM_DTLS_RECORD_MALFORMED;
    }

    fragment = (size_t) in[hlen - 2] << 8 | in[hlen - 1];

    if (fragment != len - hlen
        || fragment < a->explicit_len + a->tag_len + (rd->cid_len ? 1 : 0))
    {
        return NGX_STREAM_DTLS_RECORD_MALFORMED;
    }

    plain = fragment - a->explicit_len - a->tag_len;

    /* a CID record's content, its type, and zeros up to 2^8 - 1 */

    if (plain > NGX_STREAM_DTLS_RECORD_MAX_PLAIN + (rd->cid_len ? 256 : 0)) {
        return NGX_STREAM_DTLS_RECORD_TOO_BIG;
    }

    epoch = (ngx_uint_t) in[3] << 8 | in[4];

    if (epoch != rd->epoch) {
        return (epoch < rd->epoch) ? NGX_STREAM_DTLS_RECORD_OLD_EPOCH
                                   : NGX_STREAM_DTLS_RECORD_NEW_EPOCH;
    }

    seq = ngx_stream_dtls_record_seq(in);

    check = ngx_stream_dtls_record_check(rd, seq);
    if (check != NGX_STREAM_DTLS_RECORD_OK) {
        return check;
    }

    if (ngx_stream_dtls_record_init() != NGX_OK) {
        return NGX_STREAM_DTLS_RECORD_ERROR;
    }

    /* epoch and sequence as they are on the wire, at in + 3 */

    aad_len = ngx_stream_dtls_record_aad(rd, in, plain, aad);

    body = in + hlen;

    ngx_stream_dtls_record_nonce(rd, &in[3], body, nonce);

    body += a->explicit_len;

    dst = rd->cid_len ? body : out;

    rc = ngx_stream_dtls_record_crypt(rd->aead, rd->key, nonce, aad, aad_len,
                                      body, plain, dst, body + plain, 0);

    OPENSSL_cleanse(nonce, sizeof(nonce));

    if (rc != NGX_OK) {
        OPENSSL_cleanse(dst, plain);
        return (rc == NGX_DECLINED) ? NGX_STREAM_DTLS_RECORD_BAD_TAG
                                    : NGX_STREAM_DTLS_RECORD_ERROR;
    }

    if (rd->cid_len) {

        /* the real type is the last byte that is not 0 */

        while (plain && dst[plain - 1] == 0) {
            plain--;
        }

        if (plain == 0
            || dst[plain - 1] < NGX_STREAM_DTLS_RECORD_ALERT
            || dst[plain - 1] > NGX_STREAM_DTLS_RECORD_APPLICATION
            || plain - 1 > NGX_STREAM_DTLS_RECORD_MAX_PLAIN)
        {
            OPENSSL_cleanse(dst, fragment - a->explicit_len - a->tag_len);
            return NGX_STREAM_DTLS_RECORD_MALFORMED;
        }

        plain--;
        t = dst[plain];

        if (out != dst) {
            ngx_memmove(out, dst, plain);
            OPENSSL_cleanse(dst, fragment - a->explicit_len - a->tag_len);
        }
    }

    ngx_stream_dtls_record_received(rd, seq);

    *n = plain;
    *type = t;

    return NGX_STREAM_DTLS_RECORD_OK;
}


/*
 * The additional data of a record whose header (of its own type, or 25
 * with r's CID) is h, of plain bytes of plaintext: RFC 5246 6.2.3.3, or
 * RFC 9146 5
 */

static size_t
ngx_stream_dtls_record_aad(ngx_stream_dtls_record_t *r, u_char *h,
    size_t plain, u_char *aad)
{
    u_char  *p;

    p = aad;

    if (r->cid_len) {
        p = ngx_cpymem(p, "\xff\xff\xff\xff\xff\xff\xff\xff", 8);
        *p++ = NGX_STREAM_DTLS_RECORD_CID;
        *p++ = r->cid_len;
        *p++ = NGX_STREAM_DTLS_RECORD_CID;
        *p++ = h[1];
        *p++ = h[2];
        p = ngx_cpymem(p, &h[3], 8);
        p = ngx_cpymem(p, r->cid, r->cid_len);

    } else {
        p = ngx_cpymem(p, &h[3], 8);
        *p++ = h[0];
        *p++ = h[1];
        *p++ = h[2];
    }

    *p++ = (u_char) (plain >> 8);
    *p++ = (u_char) plain;

    return p - aad;
}


/* RFC 6347 4.1.2.6 */

static ngx_stream_dtls_record_rc_e
ngx_stream_dtls_record_check(ngx_stream_dtls_record_t *rd, uint64_t seq)
{
    uint64_t  d;

    if (seq > rd->top) {
        return NGX_STREAM_DTLS_RECORD_OK;
    }

    d = rd->top - seq;

    if (d >= NGX_STREAM_DTLS_RECORD_WINDOW) {
        return NGX_STREAM_DTLS_RECORD_OLD;
    }

    if (rd->window & ((uint64_t) 1 << d)) {
        return NGX_STREAM_DTLS_RECORD_REPLAY;
    }

    return NGX_STREAM_DTLS_RECORD_OK;
}


/* received already, or left of the window: not to be accepted */

ngx_uint_t
ngx_stream_dtls_record_seen(ngx_stream_dtls_record_t *rd, uint64_t seq)
{
    return ngx_stream_dtls_record_check(rd, seq) != NGX_STREAM_DTLS_RECORD_OK;
}


/* the sequence number in a record's header */

uint64_t
ngx_stream_dtls_record_seq(u_char *p)
{
    return ngx_stream_dtls_read_uint48(p + 5);
}


/* a record that authenticated, or that OpenSSL read before the keys */

void
ngx_stream_dtls_record_received(ngx_stream_dtls_record_t *rd, uint64_t seq)
{
    uint64_t  d;

    if (seq > rd->top) {
        d = seq - rd->top;

        rd->window = (d < NGX_STREAM_DTLS_RECORD_WINDOW) ? rd->window << d
                                                         : 0;
        rd->window |= 1;
        rd->top = seq;

        return;
    }

    d = rd->top - seq;

    if (d < NGX_STREAM_DTLS_RECORD_WINDOW) {
        rd->window |= (uint64_t) 1 << d;
    }
}


/*
 * GCM and CCM: the 4-byte salt and the explicit nonce; ChaCha20-Poly1305:
 * the IV XORed with epoch and sequence
 */

static void
ngx_stream_dtls_record_nonce(ngx_stream_dtls_record_t *r, u_char *seq,
    u_char *explicit, u_char *nonce)
{
    ngx_uint_t  i;

    if (ngx_stream_dtls_aeads[r->aead].explicit_len) {
        ngx_memcpy(nonce, r->iv, 4);
        ngx_memcpy(nonce + 4, explicit, 8);
        return;
    }

    ngx_memcpy(nonce, r->iv, NGX_STREAM_DTLS_RECORD_IV_LEN);

    for (i = 0; i < 8; i++) {
        nonce[4 + i] ^= seq[i];
    }
}


/*
 * A record header, the one writer of them: the session's records, the
 * HelloVerifyRequest and the alerts of a handshake given up
 */

u_char *
ngx_stream_dtls_record_header(u_char *p, ngx_uint_t type, ngx_uint_t version,
    ngx_uint_t epoch, uint64_t seq, size_t len)
{
    *p++ = (u_char) type;
    *p++ = (u_char) (version >> 8);
    *p++ = (u_char) version;
    *p++ = (u_char) (epoch >> 8);
    *p++ = (u_char) epoch;
    *p++ = (u_char) (seq >> 40);
    *p++ = (u_char) (seq >> 32);
    *p++ = (u_char) (seq >> 24);
    *p++ = (u_char) (seq >> 16);
    *p++ = (u_char) (seq >> 8);
    *p++ = (u_char) seq;
    *p++ = (u_char) (len >> 8);
    *p++ = (u_char) len;

    return p;
}


/*
 * Encrypts in into out and writes the tag, or decrypts and checks it:
 * NGX_DECLINED when it does not match.  in and out may be the same.
 */

static ngx_int_t
ngx_stream_dtls_record_crypt(ngx_uint_t aead, u_char *key, u_char *nonce,
    u_char *aad, size_t aad_len, u_char *in, size_t len, u_char *out,
    u_char *tag, int enc)
{
    int                      outl, last;
    u_char                   empty;
    OSSL_PARAM               params[2];
    EVP_CIPHER_CTX          *ctx;
    ngx_stream_dtls_aead_t  *a;

    a = &ngx_stream_dtls_aeads[aead];
    ctx = ngx_stream_dtls_record_ctx[aead];

    /*
     * CCM takes its tag length at the start, and the tag to check before
     * the data; GCM and ChaCha20-Poly1305 take a tag to check only
     */

    params[0] = OSSL_PARAM_construct_end();
    params[1] = OSSL_PARAM_construct_end();

    if (!enc || a->ccm) {
        params[0] = OSSL_PARAM_construct_octet_string(
                                            OSSL_CIPHER_PARAM_AEAD_TAG,
                                            enc ? NULL : tag, a->tag_len);
    }

    /*
     * CCM checks the tag in the update of the data, which an empty
     * input pointer turns into a "final" that checks nothing
     */

    if (len == 0) {
        in = &empty;
        out = &empty;
        empty = 0;
    }

    ERR_set_mark();

    if (EVP_CipherInit_ex2(ctx, NULL, key, nonce, enc, params) != 1) {
        goto failed;
    }

    if (a->ccm && EVP_CipherUpdate(ctx, NULL, &outl, NULL, (int) len) != 1) {
        goto failed;
    }

    if (EVP_CipherUpdate(ctx, NULL, &outl, aad, (int) aad_len) != 1) {
        goto failed;
    }

    if (EVP_CipherUpdate(ctx, out, &outl, in, (int) len) != 1) {
        goto declined;
    }

    if (EVP_CipherFinal_ex(ctx, out + outl, &last) != 1) {
        goto declined;
    }

    if (enc) {
        params[0] = OSSL_PARAM_construct_octet_string(
                                            OSSL_CIPHER_PARAM_AEAD_TAG,
                                            tag, a->tag_len);

        if (EVP_CIPHER_CTX_get_params(ctx, params) != 1) {
            goto failed;
        }
    }

    ERR_clear_last_mark();

    return NGX_OK;

declined:

    if (!enc) {
        /* a forged record is not an error of OpenSSL's */
        ERR_pop_to_mark();
        return NGX_DECLINED;
    }

failed:

    ERR_clear_last_mark();

    return NGX_ERROR;
}


/* the whole first record in p[0 .. len - 1], or 0 */

size_t
ngx_stream_dtls_record_length(u_char *p, size_t len)
{
    return ngx_stream_dtls_record_cid_length(p, len, 0);
}


/* the same, where a tls12_cid record has a CID of cid_len bytes */

size_t
ngx_stream_dtls_record_cid_length(u_char *p, size_t len, size_t cid_len)
{
    size_t  n, h;

    h = NGX_STREAM_DTLS_RECORD_HEADER_LEN;

    if (len >= h && p[0] == NGX_STREAM_DTLS_RECORD_CID) {
        h += cid_len;
    }

    if (len < h) {
        return 0;
    }

    n = h + ((size_t) p[h - 2] << 8 | p[h - 1]);

    return (n <= len) ? n : 0;
}


/*
 * header, explicit nonce and tag, and a CID record's CID and real type:
 * what a record adds to its plaintext
 */

size_t
ngx_stream_dtls_record_overhead(ngx_stream_dtls_record_t *r)
{
    if (r->aead >= NGX_STREAM_DTLS_AEAD_N
        || r->cid_len > NGX_STREAM_DTLS_CID_MAX_LEN)
    {
        return NGX_STREAM_DTLS_RECORD_MAX_OVERHEAD;
    }

    return NGX_STREAM_DTLS_RECORD_HEADER_LEN
           + ngx_stream_dtls_aeads[r->aead].explicit_len
           + ngx_stream_dtls_aeads[r->aead].tag_len
           + (r->cid_len ? r->cid_len + 1 : 0);
}


void
ngx_stream_dtls_record_wipe(ngx_stream_dtls_record_t *r)
{
    OPENSSL_cleanse(r, sizeof(ngx_stream_dtls_record_t));
}


const char *
ngx_stream_dtls_record_reason(ngx_stream_dtls_record_rc_e rc)
{
    if ((size_t) rc
        >= sizeof(ngx_stream_dtls_record_reasons) / sizeof(const char *))
    {
        return "unknown";
    }

    return ngx_stream_dtls_record_reasons[rc];
}
