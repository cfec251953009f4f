
/*
 * Copyright (C) ngx_dtls authors
 */


/*
 * libFuzzer target: the check of a PSK database (a cdb file),
 * ngx_stream_dtls_psk_db_validate(), and the handshake's lookup,
 * ngx_stream_dtls_psk_db_key() (static; the source file is included, see
 * README.md).  The input is the file's bytes, in a buffer of exactly its
 * size that stands for the mapping (struct cdb set up as cdb_init() sets
 * it up over an mmap), so that ASan sees any read past the file's end.
 *
 * Checked when the file is accepted (abort() when broken): every record,
 * walked here on its own from the header to the first hash table, has an
 * identity of 1 to 128 printable bytes and a key of 16 to 64 bytes in
 * hex; the lookup finds each identity, and returns its key decoded.
 * When it is refused: nothing to check but the sanitizers.
 */


#include "../../src/ngx_stream_dtls_psk_db.c"

#include "fuzz.h"


static ngx_log_t  fuzz_log;


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    /* the lookup's errors, formatted by nobody */

    fuzz_log.log_level = NGX_LOG_EMERG;

    return 0;
}


static ngx_int_t
fuzz_hex(u_char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }

    c |= 0x20;

    return c - 'a' + 10;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char                      *reason;
    u_char                    *mem, key[NGX_STREAM_DTLS_PSK_MAX_LEN + 8];
    size_t                     n, i;
    unsigned                   pos, klen, vlen, dend;
    ngx_uint_t                 entries, walked;
    ngx_stream_dtls_psk_db_t   db;

    if (size < NGX_STREAM_DTLS_PSK_DB_HEADER) {
        return 0;
    }

    mem = malloc(size);
    fuzz_assert(mem != NULL);
    ngx_memcpy(mem, data, size);

    /* what cdb_init() sets up over the mapping */

    ngx_memzero(&db, sizeof(ngx_stream_dtls_psk_db_t));
    ngx_str_set(&db.file, "/nonexistent/conf/dtls.cdb");

    dend = cdb_unpack(mem);
    if (dend < NGX_STREAM_DTLS_PSK_DB_HEADER) {
        dend = NGX_STREAM_DTLS_PSK_DB_HEADER;

    } else if (dend >= size) {
        dend = size;
    }

    db.cdb.cdb_fd = -1;
    db.cdb.cdb_mem = mem;
    db.cdb.cdb_fsize = size;
    db.cdb.cdb_dend = dend;

    reason = ngx_stream_dtls_psk_db_validate(&db, &db.cdb, &entries);

    if (reason) {
        free(mem);
        return 0;
    }

    /* no second look at the file: ngx_current_msec stays 0 */

    db.checked = ngx_current_msec;

    walked = 0;

    for (pos = NGX_STREAM_DTLS_PSK_DB_HEADER; pos < dend; pos += klen + vlen)
    {
        fuzz_assert(dend - pos >= 8);

        klen = cdb_unpack(mem + pos);
        vlen = cdb_unpack(mem + pos + 4);
        pos += 8;

        fuzz_assert(klen >= 1 && klen <= NGX_STREAM_DTLS_IDENTITY_MAX_LEN);
        fuzz_assert(vlen % 2 == 0);
        fuzz_assert(vlen / 2 >= NGX_STREAM_DTLS_PSK_MIN_LEN
                    && vlen / 2 <= NGX_STREAM_DTLS_PSK_MAX_LEN);
        fuzz_assert(klen + vlen <= dend - pos);

        for (i = 0; i < klen; i++) {
            fuzz_assert(mem[pos + i] >= 0x20 && mem[pos + i] <= 0x7e);
        }

        ngx_memset(key, 0xa5, sizeof(key));

        n = ngx_stream_dtls_psk_db_key(&db, &fuzz_log, mem + pos, klen, key,
                                       NGX_STREAM_DTLS_PSK_MAX_LEN);

        fuzz_assert(n == vlen / 2);
        fuzz_assert(key[NGX_STREAM_DTLS_PSK_MAX_LEN] == 0xa5);

        for (i = 0; i < n; i++) {
            fuzz_assert(key[i] == (fuzz_hex(mem[pos + klen + 2 * i]) << 4
                                   | fuzz_hex(mem[pos + klen + 2 * i + 1])));
        }

        walked++;
    }

    fuzz_assert(walked == entries);

    free(mem);

    return 0;
}
