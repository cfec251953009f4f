/*
 * freescan.so: an LD_PRELOAD shim that searches memory for secrets as it
 * is given back to the allocator, for the ngx_dtls tests.
 *
 *   FREESCAN_PATTERNS=FILE FREESCAN_LOG=LOG LD_PRELOAD=.../freescan.so CMD
 *
 * FILE holds one pattern a line, "LABEL HEX" (a label of up to 31
 * characters without spaces, 4 to 512 bytes of pattern).  FILE and LOG are
 * opened when the shim is loaded and kept open, so that a process that
 * changes its user or its environment later (nginx's workers) still reads
 * and writes them.  FILE is read again when it has changed (looked at, at
 * most, every 20 ms, on a free): a test may append a secret it learns
 * later, a session's master secret.
 *
 * Before free() gives a block back, and before realloc() moves one, the
 * whole block (malloc_usable_size()) is searched for every pattern; each
 * pattern found appends a line to LOG:
 *
 *   hit LABEL pid=PID free|realloc size=SIZE
 *
 * and at exit each process appends
 *
 *   exit pid=PID frees=N bytes=N patterns=N tickets=N
 *
 * (counts since the process started, a forked child's including its
 * parent's before the fork; the patterns of FILE it knew last).
 *
 * OpenSSL's session ticket keys are learnt, too: SSL_CTX_new() is
 * wrapped, and the keys of each SSL_CTX made are searched for under the
 * labels "ticket:hmac" and "ticket:aes" ("tickets=N": of how many
 * SSL_CTXs).
 *
 * A realloc() that keeps its block in place is not reported, nor memory
 * that is never freed, nor munmap().  Without FREESCAN_PATTERNS the shim
 * does nothing.  Its free() and realloc() allocate nothing.
 */

#define _GNU_SOURCE

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/ssl.h>


#define MAX_PATTERNS   4096
#define MAX_PATTERN    512
#define MIN_PATTERN    4
#define MAX_LABEL      32
#define FILE_MAX       (2 * 1024 * 1024)
#define RELOAD_NSEC    (20 * 1000000L)
#define MAX_HITS       64
#define MAX_LEARNT     64
#define TICKET_KEYS    80      /* name, HMAC key, AES key: 16 + 32 + 32 */


typedef struct {
    char                     label[MAX_LABEL];
    size_t                   len;
    const unsigned char     *data;
} pattern_t;


/* glibc's own, so that the shim needs no dlsym() (which may allocate) */

extern void __libc_free(void *p);
extern void *__libc_realloc(void *p, size_t n);


static void load_patterns(void);
static void add_pattern(pattern_t *pt);
static void learn(const char *label, const unsigned char *data, size_t len);
static void maybe_reload(void);
static size_t scan(const unsigned char *p, size_t n, int *hits, size_t max);
static void report(const int *hits, size_t n, const char *how, size_t size);
static char *put_str(char *p, char *last, const char *s);
static char *put_num(char *p, char *last, unsigned long v);
static int hexval(int c);


static int                active;
static __thread int       busy;

static int                patterns_fd = -1;
static int                log_fd = -1;

static char               text[FILE_MAX];
static unsigned char      bytes[FILE_MAX / 2];
static pattern_t          pat[MAX_PATTERNS];
static size_t             npat;
static size_t             nfile;      /* of them, read from FILE */

static pattern_t          learnt[MAX_LEARNT];
static unsigned char      learnt_bytes[MAX_LEARNT][32];
static size_t             nlearnt;
static uint64_t           first[65536 / 64];  /* the patterns' first 2 bytes */

static struct timespec    checked;
static struct stat        loaded;

static unsigned long      frees;
static unsigned long      scanned;


__attribute__((constructor))
static void
freescan_init(void)
{
    const char  *pf, *lf;

    pf = getenv("FREESCAN_PATTERNS");
    lf = getenv("FREESCAN_LOG");

    if (pf == NULL || lf == NULL) {
        return;
    }

    patterns_fd = open(pf, O_RDONLY|O_CLOEXEC);
    log_fd = open(lf, O_WRONLY|O_APPEND|O_CREAT|O_CLOEXEC, 0600);

    if (patterns_fd == -1 || log_fd == -1) {
        return;
    }

    busy++;
    load_patterns();
    busy--;

    active = 1;
}


__attribute__((destructor))
static void
freescan_exit(void)
{
    char   line[128], *p, *last;

    if (!active) {
        return;
    }

    p = line;
    last = line + sizeof(line) - 1;

    p = put_str(p, last, "exit pid=");
    p = put_num(p, last, (unsigned long) getpid());
    p = put_str(p, last, " frees=");
    p = put_num(p, last, frees);
    p = put_str(p, last, " bytes=");
    p = put_num(p, last, scanned);
    p = put_str(p, last, " patterns=");
    p = put_num(p, last, (unsigned long) nfile);
    p = put_str(p, last, " tickets=");
    p = put_num(p, last, (unsigned long) nlearnt / 2);
    *p++ = '\n';

    (void) !write(log_fd, line, p - line);
}


void
free(void *p)
{
    int     hits[MAX_HITS], saved;
    size_t  n, size;

    if (p == NULL || !active || busy) {
        __libc_free(p);
        return;
    }

    busy++;
    saved = errno;

    maybe_reload();

    size = malloc_usable_size(p);
    n = scan(p, size, hits, MAX_HITS);

    if (n) {
        report(hits, n, "free", size);
    }

    frees++;
    scanned += size;

    errno = saved;
    busy--;

    __libc_free(p);
}


void *
realloc(void *p, size_t size)
{
    int     hits[MAX_HITS], saved;
    void   *q;
    size_t  n, old;

    if (p == NULL || !active || busy) {
        return __libc_realloc(p, size);
    }

    if (size == 0) {
        free(p);
        return NULL;
    }

    busy++;
    saved = errno;

    maybe_reload();

    old = malloc_usable_size(p);
    n = scan(p, old, hits, MAX_HITS);

    errno = saved;

    q = __libc_realloc(p, size);

    saved = errno;

    /* moved: the old block went back to the allocator as it was */

    if (q != NULL && q != p) {
        if (n) {
            report(hits, n, "realloc", old);
        }

        frees++;
        scanned += old;
    }

    errno = saved;
    busy--;

    return q;
}


static void
load_patterns(void)
{
    int             hi, lo;
    char           *p, *end, *eol, *sp;
    size_t          len, used, l;
    ssize_t         r;
    struct stat     st;

    if (fstat(patterns_fd, &st) == -1) {
        return;
    }

    len = 0;

    while (len < sizeof(text)) {
        r = pread(patterns_fd, text + len, sizeof(text) - len, len);
        if (r <= 0) {
            break;
        }
        len += r;
    }

    loaded = st;
    npat = 0;
    used = 0;
    memset(first, 0, sizeof(first));

    for (p = text, end = text + len; p < end; p = eol + 1) {

        eol = memchr(p, '\n', end - p);
        if (eol == NULL) {
            eol = end;
        }

        sp = memchr(p, ' ', eol - p);
        if (sp == NULL || sp == p || sp - p >= MAX_LABEL
            || npat == MAX_PATTERNS)
        {
            continue;
        }

        l = (eol - (sp + 1)) / 2;

        if (l < MIN_PATTERN || l > MAX_PATTERN
            || used + l > sizeof(bytes))
        {
            continue;
        }

        memcpy(pat[npat].label, p, sp - p);
        pat[npat].label[sp - p] = '\0';
        pat[npat].data = bytes + used;
        pat[npat].len = l;

        for (l = 0, p = sp + 1; l < pat[npat].len; l++, p += 2) {
            hi = hexval(p[0]);
            lo = hexval(p[1]);

            if (hi < 0 || lo < 0) {
                break;
            }

            bytes[used + l] = (unsigned char) (hi << 4 | lo);
        }

        if (l < pat[npat].len) {
            continue;
        }

        add_pattern(&pat[npat]);

        used += l;
    }

    nfile = npat;

    for (l = 0; l < nlearnt; l++) {
        add_pattern(&learnt[l]);
    }
}


static void
add_pattern(pattern_t *pt)
{
    unsigned int  v;

    if (npat == MAX_PATTERNS) {
        return;
    }

    if (&pat[npat] != pt) {
        pat[npat] = *pt;
    }

    v = pt->data[0] << 8 | pt->data[1];
    first[v >> 6] |= (uint64_t) 1 << (v & 63);

    npat++;
}


static void
learn(const char *label, const unsigned char *data, size_t len)
{
    pattern_t  *pt;

    if (nlearnt == MAX_LEARNT || len > sizeof(learnt_bytes[0])) {
        return;
    }

    pt = &learnt[nlearnt];

    strncpy(pt->label, label, MAX_LABEL - 1);
    memcpy(learnt_bytes[nlearnt], data, len);
    pt->data = learnt_bytes[nlearnt];
    pt->len = len;

    nlearnt++;

    add_pattern(pt);
}


SSL_CTX *
SSL_CTX_new(const SSL_METHOD *method)
{
    SSL_CTX        *ctx;
    unsigned char   keys[TICKET_KEYS];

    static SSL_CTX *(*real)(const SSL_METHOD *);

    if (real == NULL) {
        real = (SSL_CTX *(*)(const SSL_METHOD *)) dlsym(RTLD_NEXT,
                                                        "SSL_CTX_new");
        if (real == NULL) {
            return NULL;
        }
    }

    ctx = real(method);

    if (ctx != NULL && active
        && SSL_CTX_get_tlsext_ticket_keys(ctx, keys, sizeof(keys)) == 1)
    {
        busy++;
        learn("ticket:hmac", keys + 16, 32);
        learn("ticket:aes", keys + 48, 32);
        busy--;

        OPENSSL_cleanse(keys, sizeof(keys));
    }

    return ctx;
}


static void
maybe_reload(void)
{
    struct stat      st;
    struct timespec  now;

    if (clock_gettime(CLOCK_MONOTONIC_COARSE, &now) == -1) {
        return;
    }

    if ((now.tv_sec - checked.tv_sec) * 1000000000L
        + (now.tv_nsec - checked.tv_nsec) < RELOAD_NSEC)
    {
        return;
    }

    checked = now;

    if (fstat(patterns_fd, &st) == -1) {
        return;
    }

    if (st.st_size != loaded.st_size
        || st.st_mtim.tv_sec != loaded.st_mtim.tv_sec
        || st.st_mtim.tv_nsec != loaded.st_mtim.tv_nsec)
    {
        load_patterns();
    }
}


/* the patterns found in p[0 .. n), each once; returns how many */

static size_t
scan(const unsigned char *p, size_t n, int *hits, size_t max)
{
    size_t        i, k, nhits, j;
    unsigned int  v;

    nhits = 0;

    for (i = 0; i + 1 < n; i++) {

        v = p[i] << 8 | p[i + 1];

        if ((first[v >> 6] & ((uint64_t) 1 << (v & 63))) == 0) {
            continue;
        }

        for (k = 0; k < npat; k++) {

            if (pat[k].len > n - i
                || pat[k].data[0] != p[i]
                || memcmp(pat[k].data, p + i, pat[k].len) != 0)
            {
                continue;
            }

            for (j = 0; j < nhits; j++) {
                if (hits[j] == (int) k) {
                    break;
                }
            }

            if (j == nhits && nhits < max) {
                hits[nhits++] = (int) k;
            }
        }
    }

    return nhits;
}


static void
report(const int *hits, size_t n, const char *how, size_t size)
{
    char    line[256], *p, *last;
    size_t  i;

    for (i = 0; i < n; i++) {
        p = line;
        last = line + sizeof(line) - 1;

        p = put_str(p, last, "hit ");
        p = put_str(p, last, pat[hits[i]].label);
        p = put_str(p, last, " pid=");
        p = put_num(p, last, (unsigned long) getpid());
        p = put_str(p, last, " ");
        p = put_str(p, last, how);
        p = put_str(p, last, " size=");
        p = put_num(p, last, (unsigned long) size);
        *p++ = '\n';

        (void) !write(log_fd, line, p - line);
    }
}


static char *
put_str(char *p, char *last, const char *s)
{
    while (*s && p < last) {
        *p++ = *s++;
    }

    return p;
}


static char *
put_num(char *p, char *last, unsigned long v)
{
    char   digits[24];
    char  *d;

    d = digits + sizeof(digits);
    *--d = '\0';

    do {
        *--d = (char) ('0' + v % 10);
        v /= 10;
    } while (v);

    return put_str(p, last, d);
}


static int
hexval(int c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }

    c |= 0x20;

    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }

    return -1;
}
