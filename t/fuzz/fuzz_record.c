
/*
 * Copyright (C) ngx_dtls authors
 */


/*
 * libFuzzer target: the record layer of an established session,
 * src/ngx_stream_dtls_record.c (the source file is included, so that the
 * key expansion and the AEAD call, both static, are reachable).  The keys
 * of each AEAD are expanded once from a fixed master secret; the input
 * says which AEAD and what to do:
 *
 *   byte 0   AEAD (mod 7: AES-128-GCM, AES-256-GCM, AES-128-CCM,
 *            AES-128-CCM_8, AES-256-CCM, AES-256-CCM_8, ChaCha20-Poly1305)
 *   byte 1   mode (mod 3):
 *     0  open: the read state's epoch (2 bytes), top (6) and window (8;
 *        no bits for records below 0, as in the module's), then a record,
 *        opened;
 *     1  round trip: type (1, mod 3: alert, handshake, application_data;
 *        divided by 3, mod 9: the length of a connection ID, which the
 *        writer and the reader have, from the read state's top bytes),
 *        epoch (2), sequence (6), the read state's top (6) and window (8),
 *        a bit to flip (2), then the payload: sealed, opened, and opened
 *        again with that bit flipped and one byte short;
 *     2  keys: a master secret (48) and the randoms (2 x 32), expanded for
 *        both sides, then the payload: the server's write keys are the
 *        client's read keys and the other way round, and a record sealed
 *        with one opens with the other.
 *
 * Checked (abort() when broken):
 *   - open accepts a record only in the state's epoch, within the replay
 *     window and not seen before (RFC 6347 4.1.2.6, the window's model
 *     here), and only if sealing its plaintext with its nonce gives back
 *     the same record, byte for byte: no forgery is accepted;
 *   - a record that is refused leaves the state as it was; one accepted
 *     moves the window as the model does;
 *   - seal refuses sequence 2^48 - 1 and more, and plaintexts over 2^14,
 *     changing nothing; otherwise it writes a record of the plaintext's
 *     length plus the overhead, with the header it should have, and
 *     advances the sequence by one;
 *   - what seal wrote opens to the same type and bytes, exactly when the
 *     window allows its sequence; with any one bit flipped, or a byte
 *     short, it does not open; with a CID, it is a tls12_cid record (type
 *     25, the CID after the sequence number, RFC 9146) of the overhead
 *     the CID and the inner type add.
 */


#include "../../src/ngx_stream_dtls_record.c"

#include "fuzz.h"


#define FUZZ_AEADS     7
#define FUZZ_BUF_LEN   (NGX_STREAM_DTLS_RECORD_MAX_PLAIN                      \
                        + NGX_STREAM_DTLS_RECORD_MAX_OVERHEAD + 64)




static ngx_stream_dtls_record_t  fuzz_rd[NGX_STREAM_DTLS_AEAD_N];
static ngx_stream_dtls_record_t  fuzz_wr[NGX_STREAM_DTLS_AEAD_N];

static u_char  fuzz_rec[FUZZ_BUF_LEN];
static u_char  fuzz_copy[FUZZ_BUF_LEN];
static u_char  fuzz_out[FUZZ_BUF_LEN];
static u_char  fuzz_again[FUZZ_BUF_LEN];

static ngx_uint_t  fuzz_verbose;


/*
 * A window as the module can have it: no bit for a record below 0 (bit i
 * is record top - i)
 */

static uint64_t
fuzz_window(uint64_t top, uint64_t window)
{
    if (top < 63) {
        window &= ((uint64_t) 1 << (top + 1)) - 1;
    }

    return window;
}


static uint64_t
fuzz_uint(const uint8_t *p, size_t n)
{
    uint64_t  v;

    v = 0;

    while (n--) {
        v = v << 8 | *p++;
    }

    return v;
}


/* the replay window's model: may seq be accepted? */

static ngx_uint_t
fuzz_window_allows(uint64_t top, uint64_t window, uint64_t seq)
{
    if (seq > top) {
        return 1;
    }

    if (top - seq >= 64) {
        return 0;
    }

    return ((window >> (top - seq)) & 1) == 0;
}


/* and what it remembers after accepting seq */

static void
fuzz_window_after(uint64_t *top, uint64_t *window, uint64_t seq)
{
    uint64_t    w;
    ngx_uint_t  i;

    if (seq > *top) {
        /* bit i of the new window: record seq - i */
        w = 1;

        for (i = 1; i < 64; i++) {
            if (seq - i <= *top && *top - (seq - i) < 64
                && ((*window >> (*top - (seq - i))) & 1))
            {
                w |= (uint64_t) 1 << i;
            }
        }

        *top = seq;
        *window = w;
        return;
    }

    *window |= (uint64_t) 1 << (*top - seq);
}


/*
 * An accepted record must be what sealing its plaintext gives, with the
 * nonce it carries: the tag recomputed, not trusted.
 */

static void
fuzz_check_authentic(ngx_stream_dtls_record_t *rd, u_char *rec, size_t len,
    u_char *plain, size_t n, ngx_uint_t type)
{
    u_char                  *body, *p;
    ngx_stream_dtls_aead_t  *a;
    u_char                   aad[NGX_STREAM_DTLS_AAD_LEN],
                             nonce[NGX_STREAM_DTLS_RECORD_IV_LEN];

    a = &ngx_stream_dtls_aeads[rd->aead];

    fuzz_assert(len == NGX_STREAM_DTLS_RECORD_HEADER_LEN + a->explicit_len
                       + n + a->tag_len);
    fuzz_assert(rec[0] == type);
    fuzz_assert(((ngx_uint_t) rec[3] << 8 | rec[4]) == rd->epoch);

    p = aad;
    p = ngx_cpymem(p, &rec[3], 8);
    *p++ = rec[0];
    *p++ = rec[1];
    *p++ = rec[2];
    *p++ = (u_char) (n >> 8);
    *p = (u_char) n;

    body = rec + NGX_STREAM_DTLS_RECORD_HEADER_LEN;
    ngx_stream_dtls_record_nonce(rd, &rec[3], body, nonce);
    body += a->explicit_len;

    fuzz_assert(ngx_stream_dtls_record_crypt(rd->aead, rd->key, nonce, aad,
                                             NGX_STREAM_DTLS_AAD_LEN, plain,
                                             n, fuzz_again, fuzz_again + n, 1)
                == NGX_OK);

    fuzz_assert(memcmp(fuzz_again, body, n + a->tag_len) == 0);
}


static void
fuzz_open(ngx_uint_t aead, const uint8_t *data, size_t size)
{
    u_char                      *rec;
    size_t                       n, len;
    uint64_t                     seq, top, window;
    ngx_uint_t                   type, epoch;
    ngx_stream_dtls_record_t     rd, before;
    ngx_stream_dtls_record_rc_e  rc;

    if (size < 16) {
        return;
    }

    rd = fuzz_rd[aead];
    rd.epoch = (uint16_t) fuzz_uint(data, 2);
    rd.top = fuzz_uint(data + 2, 6);
    rd.window = fuzz_window(rd.top, fuzz_uint(data + 8, 8));

    data += 16;
    size -= 16;

    len = size < FUZZ_BUF_LEN ? size : FUZZ_BUF_LEN;

    /* the record in a buffer of exactly its size, for ASan */

    rec = malloc(len ? len : 1);
    fuzz_assert(rec != NULL);
    ngx_memcpy(rec, data, len);

    fuzz_assert(ngx_stream_dtls_record_length(rec, len)
                == ((len >= 13 && 13 + fuzz_uint(rec + 11, 2) <= len)
                    ? 13 + fuzz_uint(rec + 11, 2) : 0));

    before = rd;

    rc = ngx_stream_dtls_record_open(&rd, rec, len, fuzz_out, &n, &type);

    if (fuzz_verbose) {
        fprintf(stderr, "open aead %lu, %zu bytes: %s\n",
                (unsigned long) aead, len, ngx_stream_dtls_record_reason(rc));
    }

    if (rc != NGX_STREAM_DTLS_RECORD_OK) {
        fuzz_assert(memcmp(&before, &rd, sizeof(rd)) == 0);
        free(rec);
        return;
    }

    epoch = (ngx_uint_t) rec[3] << 8 | rec[4];
    seq = fuzz_uint(rec + 5, 6);

    fuzz_assert(epoch == before.epoch);
    fuzz_assert(fuzz_window_allows(before.top, before.window, seq));
    fuzz_assert(type >= 21 && type <= 23);
    fuzz_assert(n <= NGX_STREAM_DTLS_RECORD_MAX_PLAIN);

    top = before.top;
    window = before.window;
    fuzz_window_after(&top, &window, seq);

    fuzz_assert(rd.top == top && rd.window == window);

    fuzz_check_authentic(&before, rec, len, fuzz_out, n, type);

    free(rec);
}


static void
fuzz_round_trip(ngx_uint_t aead, const uint8_t *data, size_t size)
{
    size_t                       n, len, plen, pos, cid, h;
    uint64_t                     seq, top, window;
    ngx_uint_t                   type, t, allowed;
    ngx_stream_dtls_record_t     wr, rd, before;
    ngx_stream_dtls_record_rc_e  rc;

    if (size < 25) {
        return;
    }

    t = 21 + data[0] % 3;
    cid = (data[0] / 3) % (NGX_STREAM_DTLS_CID_MAX_LEN + 1);
    h = 13 + cid;

    wr = fuzz_wr[aead];
    wr.epoch = (uint16_t) fuzz_uint(data + 1, 2);
    wr.seq = fuzz_uint(data + 3, 6);
    wr.cid_len = (u_char) cid;
    ngx_memcpy(wr.cid, data + 9, cid);

    rd = fuzz_wr[aead];     /* the peer reads with the writer's keys */
    rd.seq = 0;
    rd.top = fuzz_uint(data + 9, 6);
    rd.window = fuzz_window(rd.top, fuzz_uint(data + 15, 8));
    rd.cid_len = wr.cid_len;
    ngx_memcpy(rd.cid, wr.cid, cid);

    pos = fuzz_uint(data + 23, 2);

    data += 25;
    size -= 25;

    plen = size;
    seq = wr.seq;
    before = wr;

    rc = ngx_stream_dtls_record_seal(&wr, t, (u_char *) data, plen, fuzz_rec,
                                     sizeof(fuzz_rec), &len);

    if (seq >= NGX_STREAM_DTLS_RECORD_SEQ_MAX
        || plen > NGX_STREAM_DTLS_RECORD_MAX_PLAIN)
    {
        fuzz_assert(rc != NGX_STREAM_DTLS_RECORD_OK);
        fuzz_assert(memcmp(&before, &wr, sizeof(wr)) == 0);
        return;
    }

    fuzz_assert(rc == NGX_STREAM_DTLS_RECORD_OK);
    fuzz_assert(wr.seq == seq + 1);
    fuzz_assert(len == plen + ngx_stream_dtls_record_overhead(&wr));
    fuzz_assert(len == plen + (cid ? cid + 1 : 0) + 13
                       + ngx_stream_dtls_aeads[aead].explicit_len
                       + ngx_stream_dtls_aeads[aead].tag_len);
    fuzz_assert(fuzz_rec[0] == (cid ? 25 : t) && fuzz_rec[1] == 0xfe
                && fuzz_rec[2] == 0xfd);
    fuzz_assert(fuzz_uint(fuzz_rec + 3, 2) == wr.epoch);
    fuzz_assert(fuzz_uint(fuzz_rec + 5, 6) == seq);
    fuzz_assert(memcmp(fuzz_rec + 11, wr.cid, cid) == 0);
    fuzz_assert(fuzz_uint(fuzz_rec + h - 2, 2) == len - h);
    fuzz_assert(ngx_stream_dtls_record_cid_length(fuzz_rec, len, cid) == len);
    fuzz_assert(cid || ngx_stream_dtls_record_length(fuzz_rec, len) == len);

    if (ngx_stream_dtls_aeads[aead].explicit_len) {
        fuzz_assert(memcmp(fuzz_rec + h, fuzz_rec + 3, 8) == 0);
    }

    /* one bit flipped: refused, nothing changed */

    rd.epoch = wr.epoch;
    before = rd;

    ngx_memcpy(fuzz_copy, fuzz_rec, len);
    fuzz_copy[(pos >> 3) % len] ^= (u_char) (1 << (pos & 7));

    rc = ngx_stream_dtls_record_open(&rd, fuzz_copy, len, fuzz_out, &n,
                                     &type);

    fuzz_assert(rc != NGX_STREAM_DTLS_RECORD_OK);
    fuzz_assert(memcmp(&before, &rd, sizeof(rd)) == 0);

    /* a byte short */

    rc = ngx_stream_dtls_record_open(&rd, fuzz_rec, len - 1, fuzz_out, &n,
                                     &type);

    fuzz_assert(rc == NGX_STREAM_DTLS_RECORD_MALFORMED);
    fuzz_assert(memcmp(&before, &rd, sizeof(rd)) == 0);

    /* the record itself: as the window allows */

    allowed = fuzz_window_allows(rd.top, rd.window, seq);

    rc = ngx_stream_dtls_record_open(&rd, fuzz_rec, len, fuzz_out, &n,
                                     &type);

    if (fuzz_verbose) {
        fprintf(stderr, "round trip aead %lu, %zu bytes, sequence %llu: "
                "%s\n", (unsigned long) aead, plen, (unsigned long long) seq,
                ngx_stream_dtls_record_reason(rc));
    }

    if (!allowed) {
        fuzz_assert(rc == NGX_STREAM_DTLS_RECORD_REPLAY
                    || rc == NGX_STREAM_DTLS_RECORD_OLD);
        fuzz_assert(memcmp(&before, &rd, sizeof(rd)) == 0);
        return;
    }

    fuzz_assert(rc == NGX_STREAM_DTLS_RECORD_OK);
    fuzz_assert(type == t && n == plen);
    fuzz_assert(plen == 0 || memcmp(fuzz_out, data, plen) == 0);

    top = before.top;
    window = before.window;
    fuzz_window_after(&top, &window, seq);

    fuzz_assert(rd.top == top && rd.window == window);

    /* and not twice */

    before = rd;

    rc = ngx_stream_dtls_record_open(&rd, fuzz_rec, len, fuzz_out, &n,
                                     &type);

    fuzz_assert(rc == NGX_STREAM_DTLS_RECORD_REPLAY);
    fuzz_assert(memcmp(&before, &rd, sizeof(rd)) == 0);
}


static void
fuzz_keys(ngx_uint_t aead, const uint8_t *data, size_t size)
{
    size_t                       n, len, plen;
    ngx_uint_t                   type;
    ngx_stream_dtls_record_t     srd, swr, crd, cwr;
    ngx_stream_dtls_record_rc_e  rc;
    u_char                       master[48], cr[32], sr[32];

    if (size < 112) {
        return;
    }

    ngx_memcpy(master, data, 48);
    ngx_memcpy(cr, data + 48, 32);
    ngx_memcpy(sr, data + 80, 32);

    data += 112;
    size -= 112;

    plen = size < 2048 ? size : 2048;

    fuzz_assert(ngx_stream_dtls_record_expand(aead,
                                              (aead == 2) ? "SHA384"
                                                          : "SHA256",
                                              master, 48, cr, sr, 1, 1,
                                              &srd, &swr)
                == NGX_OK);
    fuzz_assert(ngx_stream_dtls_record_expand(aead,
                                              (aead == 2) ? "SHA384"
                                                          : "SHA256",
                                              master, 48, cr, sr, 0, 1,
                                              &crd, &cwr)
                == NGX_OK);

    fuzz_assert(memcmp(&swr, &crd, sizeof(swr)) == 0);
    fuzz_assert(memcmp(&srd, &cwr, sizeof(srd)) == 0);
    fuzz_assert(memcmp(&swr, &srd, sizeof(swr)) != 0);

    rc = ngx_stream_dtls_record_seal(&cwr, 23, (u_char *) data, plen,
                                     fuzz_rec, sizeof(fuzz_rec), &len);
    fuzz_assert(rc == NGX_STREAM_DTLS_RECORD_OK);

    rc = ngx_stream_dtls_record_open(&srd, fuzz_rec, len, fuzz_out, &n,
                                     &type);
    fuzz_assert(rc == NGX_STREAM_DTLS_RECORD_OK && n == plen && type == 23);
    fuzz_assert(plen == 0 || memcmp(fuzz_out, data, plen) == 0);

    /* the other direction's keys do not open it */

    rc = ngx_stream_dtls_record_open(&swr, fuzz_rec, len, fuzz_out, &n,
                                     &type);
    fuzz_assert(rc == NGX_STREAM_DTLS_RECORD_BAD_TAG);

    ngx_stream_dtls_record_wipe(&srd);
    ngx_stream_dtls_record_wipe(&swr);
    ngx_stream_dtls_record_wipe(&crd);
    ngx_stream_dtls_record_wipe(&cwr);

    fuzz_assert(srd.aead == 0 && swr.key[0] == 0 && swr.key[31] == 0);
}


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    ngx_uint_t  i;
    u_char      master[48], cr[32], sr[32];

    fuzz_verbose = getenv("FUZZ_VERBOSE") != NULL;

    fuzz_assert(ngx_stream_dtls_record_init() == NGX_OK);

    for (i = 0; i < 48; i++) {
        master[i] = (u_char) (i * 7 + 1);
    }

    for (i = 0; i < 32; i++) {
        cr[i] = (u_char) (0xc0 + i);
        sr[i] = (u_char) (0x50 + i);
    }

    for (i = 1; i < NGX_STREAM_DTLS_AEAD_N; i++) {
        fuzz_assert(ngx_stream_dtls_record_expand(i,
                                                  (i == 2) ? "SHA384"
                                                           : "SHA256",
                                                  master, 48, cr, sr, 1, 1,
                                                  &fuzz_rd[i], &fuzz_wr[i])
                    == NGX_OK);
    }

    return 0;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ngx_uint_t  aead;

    if (size < 2) {
        return 0;
    }

    aead = 1 + data[0] % FUZZ_AEADS;

    switch (data[1] % 3) {

    case 0:
        fuzz_open(aead, data + 2, size - 2);
        break;

    case 1:
        fuzz_round_trip(aead, data + 2, size - 2);
        break;

    default:
        fuzz_keys(aead, data + 2, size - 2);
        break;
    }

    return 0;
}


#ifdef FUZZ_RECORD_SEEDS

/*
 * The seeds of corpus/record (see README.md):
 *   cc -DFUZZ_RECORD_SEEDS -I... fuzz_record.c -lssl -lcrypto
 *   ./a.out corpus/record
 */

static void
fuzz_seed(const char *dir, const char *name, u_char *p, size_t len)
{
    FILE  *f;
    char   path[512];

    snprintf(path, sizeof(path), "%s/%s", dir, name);

    f = fopen(path, "w");
    fuzz_assert(f != NULL);
    fuzz_assert(fwrite(p, 1, len, f) == len);
    fclose(f);
}


static u_char *
fuzz_put(u_char *p, uint64_t v, size_t n)
{
    while (n--) {
        *p++ = (u_char) (v >> (8 * n));
    }

    return p;
}


int
main(int argc, char **argv)
{
    u_char                    *p;
    size_t                     len, plen;
    ngx_uint_t                 a, i;
    ngx_stream_dtls_record_t   w;
    char                       name[64];
    u_char                     seed[FUZZ_BUF_LEN + 64], payload[1200];

    static const char  *names[] = {
        NULL, "gcm128", "gcm256", "ccm128", "ccm8-128", "ccm256",
        "ccm8-256", "chacha"
    };

    fuzz_assert(argc == 2);

    LLVMFuzzerInitialize(&argc, &argv);

    for (i = 0; i < sizeof(payload); i++) {
        payload[i] = (u_char) (i * 31 + 7);
    }

    for (a = 1; a < NGX_STREAM_DTLS_AEAD_N; a++) {

        /* open: a genuine record of the client's (the state's keys) */

        for (i = 0; i < 3; i++) {
            plen = (i == 0) ? 0 : (i == 1) ? 21 : 1200;

            w = fuzz_rd[a];
            w.epoch = 1;
            w.seq = (i == 2) ? NGX_STREAM_DTLS_RECORD_SEQ_MAX - 1 : 5 + i;

            p = seed;
            *p++ = (u_char) (a - 1);
            *p++ = 0;
            p = fuzz_put(p, 1, 2);                  /* epoch */
            p = fuzz_put(p, 4, 6);                  /* top */
            p = fuzz_put(p, 0x1f, 8);               /* window */

            fuzz_assert(ngx_stream_dtls_record_seal(&w, 21 + i, payload,
                                                    plen, p, FUZZ_BUF_LEN,
                                                    &len)
                        == NGX_STREAM_DTLS_RECORD_OK);

            snprintf(name, sizeof(name), "open-%s-%zu", names[a], plen);
            fuzz_seed(argv[1], name, seed, p + len - seed);
        }

        /* round trips: an ordinary one, one near 2^48, one at 2^48 - 1 */

        for (i = 0; i < 3; i++) {
            plen = (i == 0) ? 100 : (i == 1) ? 1 : 0;

            p = seed;
            *p++ = (u_char) (a - 1);
            *p++ = 1;
            *p++ = (u_char) i;                      /* type */
            p = fuzz_put(p, (i == 1) ? 0xffff : 1, 2);
            p = fuzz_put(p, (i == 0) ? 77
                            : NGX_STREAM_DTLS_RECORD_SEQ_MAX - 2 + i, 6);
            p = fuzz_put(p, (i == 0) ? 80 : 3, 6);  /* top */
            p = fuzz_put(p, 0x5, 8);                /* window */
            p = fuzz_put(p, 8 * 13 + 3, 2);         /* a bit to flip */
            p = ngx_cpymem(p, payload, plen);

            snprintf(name, sizeof(name), "trip-%s-%lu", names[a],
                     (unsigned long) i);
            fuzz_seed(argv[1], name, seed, p - seed);
        }

        /* keys */

        p = seed;
        *p++ = (u_char) (a - 1);
        *p++ = 2;

        for (i = 0; i < 112; i++) {
            *p++ = (u_char) (i ^ 0x5a);
        }

        p = ngx_cpymem(p, payload, 40);

        snprintf(name, sizeof(name), "keys-%s", names[a]);
        fuzz_seed(argv[1], name, seed, p - seed);
    }

    return 0;
}

#endif
