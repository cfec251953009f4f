
/*
 * Copyright (C) ngx_dtls authors
 */


/*
 * dtls_bpf: each CID record to the worker that holds its session.
 *
 * With "listen ... udp reuseport" every worker has a socket of its own in
 * the listen's reuseport group, and the kernel picks one by a hash of the
 * datagram's addresses and ports: after a client's NAT rebinding its
 * records would reach another worker.  A worker puts its number in the
 * first byte of the CIDs it mints (cid.c); an SK_REUSEPORT program
 * attached to the group reads that byte from a tls12_cid record and
 * selects the socket at that index of a REUSEPORT_SOCKARRAY map, which
 * the master fills with the workers' sockets.  Anything else (a
 * ClientHello, a record without CID, a byte no worker has) is left to the
 * kernel's hash.
 *
 * A socket can be in one such map only: a listen keeps its map from one
 * configuration to the next (each cycle holds a descriptor of its own,
 * closed with its pool), and a reload updates the slots that changed.
 * The program is loaded again, and attached in place of the last one; a
 * listen that no longer steers has it detached.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_stream.h>

#include <sys/syscall.h>
#include <linux/bpf.h>

#include "ngx_stream_dtls.h"


/* one slot per value of the CID's first byte */

#define NGX_STREAM_DTLS_BPF_SLOTS     256

#define NGX_STREAM_DTLS_BPF_LOG_SIZE  16384
#define NGX_STREAM_DTLS_BPF_LOG_TAIL  400


/* eBPF instructions, as the kernel's own macros write them */

#define NGX_BPF_INSN(c, d, s, o, i)                                           \
    { .code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i) }

#define NGX_BPF_MOV64_REG(d, s)                                               \
    NGX_BPF_INSN(BPF_ALU64 | BPF_MOV | BPF_X, d, s, 0, 0)

#define NGX_BPF_MOV64_IMM(d, i)                                               \
    NGX_BPF_INSN(BPF_ALU64 | BPF_MOV | BPF_K, d, 0, 0, i)

#define NGX_BPF_ADD64_IMM(d, i)                                               \
    NGX_BPF_INSN(BPF_ALU64 | BPF_ADD | BPF_K, d, 0, 0, i)

#define NGX_BPF_LDX_B(d, s, o)                                                \
    NGX_BPF_INSN(BPF_LDX | BPF_B | BPF_MEM, d, s, o, 0)

#define NGX_BPF_STX_W(d, s, o)                                                \
    NGX_BPF_INSN(BPF_STX | BPF_W | BPF_MEM, d, s, o, 0)

#define NGX_BPF_JNE_IMM(d, i, o)                                              \
    NGX_BPF_INSN(BPF_JMP | BPF_JNE | BPF_K, d, 0, o, i)

#define NGX_BPF_CALL(f)                                                       \
    NGX_BPF_INSN(BPF_JMP | BPF_CALL, 0, 0, 0, f)

#define NGX_BPF_EXIT()                                                        \
    NGX_BPF_INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)

/* the map's descriptor, set in a copy of the program before it is loaded */

#define NGX_BPF_LD_MAP_FD(d)                                                  \
    NGX_BPF_INSN(BPF_LD | BPF_DW | BPF_IMM, d, BPF_PSEUDO_MAP_FD, 0, 0),      \
    NGX_BPF_INSN(0, 0, 0, 0, 0)


/* a listen's reuseport group */

typedef struct {
    struct sockaddr            *sockaddr;
    socklen_t                   socklen;
    ngx_str_t                   addr_text;
    int                         map;
} ngx_stream_dtls_bpf_group_t;


static ngx_int_t ngx_stream_dtls_bpf_steers(ngx_listening_t *ls);
static ngx_stream_dtls_bpf_group_t *ngx_stream_dtls_bpf_find(
    ngx_array_t *groups, ngx_listening_t *ls);
static ngx_int_t ngx_stream_dtls_bpf_group(ngx_cycle_t *cycle,
    ngx_array_t *groups, ngx_array_t *old, ngx_listening_t *ls);
static ngx_int_t ngx_stream_dtls_bpf_fill(ngx_cycle_t *cycle,
    ngx_stream_dtls_bpf_group_t *grp, ngx_uint_t workers);
static ngx_int_t ngx_stream_dtls_bpf_attach(ngx_cycle_t *cycle,
    ngx_stream_dtls_bpf_group_t *grp, ngx_listening_t *ls);
static void ngx_stream_dtls_bpf_detach(ngx_cycle_t *cycle,
    ngx_array_t *groups, ngx_array_t *old);
static void ngx_stream_dtls_bpf_unsteer(ngx_cycle_t *cycle,
    ngx_listening_t *ls);
static int ngx_stream_dtls_bpf_map(void);
static int ngx_stream_dtls_bpf_load(ngx_log_t *log, int map,
    ngx_str_t *addr);
static void ngx_stream_dtls_bpf_probe(ngx_cycle_t *cycle);
static void ngx_stream_dtls_bpf_refused(ngx_log_t *log, ngx_err_t err,
    const char *what, ngx_str_t *addr);
static void ngx_stream_dtls_bpf_cleanup(void *data);
static int ngx_stream_dtls_bpf_call(int cmd, union bpf_attr *attr);
static ngx_array_t *ngx_stream_dtls_bpf_groups(ngx_cycle_t *cycle);


/*
 * The datagram from the UDP header on (ctx->data): its first 12 bytes of
 * payload, a tls12_cid record's type, version, epoch, sequence number and
 * the CID's first byte, onto the stack at r10 - 16; the key, the CID's
 * byte as a 32-bit index, at r10 - 4.  Jumps count instructions from the
 * next one.
 */

#define NGX_STREAM_DTLS_BPF_MAP_INSN  11

static struct bpf_insn  ngx_stream_dtls_bpf_program[] = {

    /* 0: bpf_skb_load_bytes(ctx, 8, r10 - 16, 12) */
    NGX_BPF_MOV64_REG(BPF_REG_6, BPF_REG_1),
    NGX_BPF_MOV64_IMM(BPF_REG_2, 8),
    NGX_BPF_MOV64_REG(BPF_REG_3, BPF_REG_10),
    NGX_BPF_ADD64_IMM(BPF_REG_3, -16),
    NGX_BPF_MOV64_IMM(BPF_REG_4, 12),
    NGX_BPF_CALL(BPF_FUNC_skb_load_bytes),
    NGX_BPF_JNE_IMM(BPF_REG_0, 0, 11),                          /* 18 */

    /* 7: a tls12_cid record; the key */
    NGX_BPF_LDX_B(BPF_REG_2, BPF_REG_10, -16),
    NGX_BPF_JNE_IMM(BPF_REG_2, NGX_STREAM_DTLS_RECORD_CID, 9),  /* 18 */
    NGX_BPF_LDX_B(BPF_REG_2, BPF_REG_10, -5),
    NGX_BPF_STX_W(BPF_REG_10, BPF_REG_2, -4),

    /* 11: bpf_sk_select_reuseport(ctx, map, r10 - 4, 0) */
    NGX_BPF_LD_MAP_FD(BPF_REG_2),
    NGX_BPF_MOV64_REG(BPF_REG_1, BPF_REG_6),
    NGX_BPF_MOV64_REG(BPF_REG_3, BPF_REG_10),
    NGX_BPF_ADD64_IMM(BPF_REG_3, -4),
    NGX_BPF_MOV64_IMM(BPF_REG_4, 0),
    NGX_BPF_CALL(BPF_FUNC_sk_select_reuseport),

    /* 18: the socket selected, or none: the kernel's hash */
    NGX_BPF_MOV64_IMM(BPF_REG_0, SK_PASS),
    NGX_BPF_EXIT()
};


/* the verifier's log of a program it refused */

static char  ngx_stream_dtls_bpf_log[NGX_STREAM_DTLS_BPF_LOG_SIZE];


/*
 * The configuration's checks, at nginx -t and each start and reload: a
 * CID that carries the worker's number in its only byte leaves no
 * random part, and the byte numbers 256 workers at most; a listen
 * without reuseport has one socket for all workers, which cannot be told
 * apart
 */

ngx_int_t
ngx_stream_dtls_bpf_check(ngx_cycle_t *cycle)
{
    ngx_uint_t                    i, n;
    ngx_core_conf_t              *ccf;
    ngx_listening_t              *ls;
    ngx_stream_port_t            *port;
    ngx_stream_dtls_srv_conf_t   *dscf;
    ngx_stream_dtls_main_conf_t  *dmcf;

    dmcf = ngx_stream_cycle_get_module_main_conf(cycle,
                                                 ngx_stream_dtls_module);

    if (!dmcf->bpf) {
        return NGX_OK;
    }

    ccf = (ngx_core_conf_t *) ngx_get_conf(cycle->conf_ctx, ngx_core_module);

    if (ccf->worker_processes > NGX_STREAM_DTLS_BPF_SLOTS) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "\"dtls_bpf\" steers to %d worker processes at most, "
                      "as a CID's first byte numbers them, not %i, in "
                      "%s:%ui", NGX_STREAM_DTLS_BPF_SLOTS,
                      ccf->worker_processes, dmcf->bpf_file,
                      dmcf->bpf_line);
        return NGX_ERROR;
    }

    ls = cycle->listening.elts;

    for (i = 0; i < cycle->listening.nelts; i++) {

        if (ls[i].handler != ngx_stream_init_connection
            || ls[i].type != SOCK_DGRAM
            || ls[i].worker)
        {
            continue;
        }

        port = ls[i].servers;

        for (n = 0; n < port->naddrs; n++) {

            dscf = ngx_stream_dtls_listening_conf(&ls[i], n);

            if (!dscf->enable || dscf->cid_length == 0) {
                continue;
            }

            if (dscf->cid_length == 1) {
                ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                              "\"dtls_connection_id on length=1\" in "
                              "%s:%ui leaves \"dtls_bpf\" no random byte: "
                              "a CID's first byte is the worker's number",
                              dscf->cid_file, dscf->cid_line);
                return NGX_ERROR;
            }

            if (!ls[i].reuseport) {
                ngx_log_error(NGX_LOG_WARN, cycle->log, 0,
                              "\"dtls_bpf\" steers no record to "
                              "\"listen %V udp\" without \"reuseport\", "
                              "in %s:%ui", &ls[i].addr_text, dscf->file,
                              dscf->line);
            }

            break;
        }
    }

    return NGX_OK;
}


/*
 * Called from the module's init_module in the master, once the listening
 * sockets of a new configuration are open: a map and the program for
 * every reuseport listen of a server with CIDs.  A kernel that refuses
 * leaves the records to the kernel's hash, with a warning; nginx serves
 * on.
 */

ngx_int_t
ngx_stream_dtls_bpf_init(ngx_cycle_t *cycle)
{
    ngx_uint_t                    i;
    ngx_array_t                  *groups, *old;
    ngx_listening_t              *ls;
    ngx_pool_cleanup_t           *cln;
    ngx_stream_dtls_main_conf_t  *dmcf;

    dmcf = ngx_stream_cycle_get_module_main_conf(cycle,
                                                 ngx_stream_dtls_module);

    if (dmcf == NULL) {
        return NGX_OK;
    }

    if (ngx_test_config) {

        /* no SO_REUSEPORT on nginx -t's sockets: only the kernel's word */

        if (dmcf->bpf) {
            ngx_stream_dtls_bpf_probe(cycle);
        }

        return NGX_OK;
    }

    groups = ngx_array_create(cycle->pool, 1,
                              sizeof(ngx_stream_dtls_bpf_group_t));
    if (groups == NULL) {
        return NGX_ERROR;
    }

    cln = ngx_pool_cleanup_add(cycle->pool, 0);
    if (cln == NULL) {
        return NGX_ERROR;
    }

    cln->handler = ngx_stream_dtls_bpf_cleanup;
    cln->data = groups;

    dmcf->groups = groups;

    old = ngx_stream_dtls_bpf_groups(cycle->old_cycle);

    if (dmcf->bpf) {
        ls = cycle->listening.elts;

        for (i = 0; i < cycle->listening.nelts; i++) {

            if (!ngx_stream_dtls_bpf_steers(&ls[i])
                || ngx_stream_dtls_bpf_find(groups, &ls[i]))
            {
                continue;
            }

            if (ngx_stream_dtls_bpf_group(cycle, groups, old, &ls[i])
                == NGX_ERROR)
            {
                return NGX_ERROR;
            }
        }
    }

    if (old) {
        ngx_stream_dtls_bpf_detach(cycle, groups, old);
    }

    return NGX_OK;
}


/* a reuseport socket of a server with CIDs */

static ngx_int_t
ngx_stream_dtls_bpf_steers(ngx_listening_t *ls)
{
    ngx_uint_t                   n;
    ngx_stream_port_t           *port;
    ngx_stream_dtls_srv_conf_t  *dscf;

    if (ls->handler != ngx_stream_init_connection
        || ls->type != SOCK_DGRAM
        || !ls->reuseport
        || ls->fd == (ngx_socket_t) -1)
    {
        return 0;
    }

    port = ls->servers;

    for (n = 0; n < port->naddrs; n++) {

        dscf = ngx_stream_dtls_listening_conf(ls, n);

        if (dscf->enable && dscf->cid_length) {
            return 1;
        }
    }

    return 0;
}


static ngx_stream_dtls_bpf_group_t *
ngx_stream_dtls_bpf_find(ngx_array_t *groups, ngx_listening_t *ls)
{
    ngx_uint_t                    i;
    ngx_stream_dtls_bpf_group_t  *grp;

    grp = groups->elts;

    for (i = 0; i < groups->nelts; i++) {
        if (ngx_cmp_sockaddr(ls->sockaddr, ls->socklen, grp[i].sockaddr,
                             grp[i].socklen, 1)
            == NGX_OK)
        {
            return &grp[i];
        }
    }

    return NULL;
}


/*
 * The group of a socket ls: the map the last configuration had for the
 * listen, or a new one; filled, and the program attached.  A group the
 * kernel refused keeps no map (-1), and no program: one attached before
 * would steer by a map that no longer matches the workers (after a
 * binary upgrade, the old master's).
 */

static ngx_int_t
ngx_stream_dtls_bpf_group(ngx_cycle_t *cycle, ngx_array_t *groups,
    ngx_array_t *old, ngx_listening_t *ls)
{
    ngx_core_conf_t              *ccf;
    ngx_stream_dtls_bpf_group_t  *grp, *prev;

    grp = ngx_array_push(groups);
    if (grp == NULL) {
        return NGX_ERROR;
    }

    grp->sockaddr = ls->sockaddr;
    grp->socklen = ls->socklen;
    grp->addr_text = ls->addr_text;
    grp->map = -1;

    prev = old ? ngx_stream_dtls_bpf_find(old, ls) : NULL;

    if (prev && prev->map != -1) {
        /*
         * close-on-exec, as the map was made: a binary upgrade's new
         * master must not hold the old one's map and its sockets
         */

        grp->map = fcntl(prev->map, F_DUPFD_CLOEXEC, 0);

        if (grp->map == -1) {
            ngx_log_error(NGX_LOG_ALERT, cycle->log, ngx_errno,
                          "fcntl(F_DUPFD_CLOEXEC) of the dtls_bpf map of %V "
                          "failed",
                          &ls->addr_text);
            ngx_stream_dtls_bpf_unsteer(cycle, ls);
            return NGX_DECLINED;
        }

    } else {
        grp->map = ngx_stream_dtls_bpf_map();

        if (grp->map == -1) {
            ngx_stream_dtls_bpf_refused(cycle->log, ngx_errno,
                                        "bpf(BPF_MAP_CREATE)",
                                        &ls->addr_text);
            ngx_stream_dtls_bpf_unsteer(cycle, ls);
            return NGX_DECLINED;
        }
    }

    ccf = (ngx_core_conf_t *) ngx_get_conf(cycle->conf_ctx, ngx_core_module);

    if (ngx_stream_dtls_bpf_fill(cycle, grp, ccf->worker_processes)
        != NGX_OK
        || ngx_stream_dtls_bpf_attach(cycle, grp, ls) != NGX_OK)
    {
        (void) close(grp->map);
        grp->map = -1;
        ngx_stream_dtls_bpf_unsteer(cycle, ls);
        return NGX_DECLINED;
    }

    ngx_log_debug3(NGX_LOG_DEBUG_CORE, cycle->log, 0,
                   "dtls bpf: %V steered, %i workers, map fd:%d",
                   &ls->addr_text, ccf->worker_processes, grp->map);

    return NGX_OK;
}


/*
 * Slot i: worker i's socket of the group.  A socket can be in one slot
 * only, so the slots that hold another socket are emptied before any is
 * set; those of workers no longer there are emptied too.
 */

static ngx_int_t
ngx_stream_dtls_bpf_fill(ngx_cycle_t *cycle, ngx_stream_dtls_bpf_group_t *grp,
    ngx_uint_t workers)
{
    int               fds[NGX_STREAM_DTLS_BPF_SLOTS];
    uint32_t          key;
    uint64_t          cookie, value;
    socklen_t         len;
    ngx_err_t         err;
    ngx_uint_t        i;
    union bpf_attr    attr;
    ngx_listening_t  *ls;

    ngx_memset(fds, -1, sizeof(fds));

    ls = cycle->listening.elts;

    for (i = 0; i < cycle->listening.nelts; i++) {

        if (ls[i].reuseport
            && ls[i].worker < workers
            && ls[i].fd != (ngx_socket_t) -1
            && ls[i].handler == ngx_stream_init_connection
            && ls[i].type == SOCK_DGRAM
            && ngx_cmp_sockaddr(ls[i].sockaddr, ls[i].socklen,
                                grp->sockaddr, grp->socklen, 1)
               == NGX_OK)
        {
            fds[ls[i].worker] = ls[i].fd;
        }
    }

    for (key = 0; key < NGX_STREAM_DTLS_BPF_SLOTS; key++) {

        ngx_memzero(&attr, sizeof(union bpf_attr));
        attr.map_fd = grp->map;
        attr.key = (uintptr_t) &key;
        attr.value = (uintptr_t) &value;

        if (ngx_stream_dtls_bpf_call(BPF_MAP_LOOKUP_ELEM, &attr) == -1) {
            continue;
        }

        if (fds[key] != -1) {
            len = sizeof(uint64_t);

            if (getsockopt(fds[key], SOL_SOCKET, SO_COOKIE, &cookie, &len)
                == 0
                && cookie == value)
            {
                /* the same socket, kept through a reload */
                fds[key] = -1;
                continue;
            }
        }

        /* the kernel refuses a deletion with a value (EINVAL) */

        attr.value = 0;

        if (ngx_stream_dtls_bpf_call(BPF_MAP_DELETE_ELEM, &attr) == -1) {
            ngx_log_error(NGX_LOG_ALERT, cycle->log, ngx_errno,
                          "bpf(BPF_MAP_DELETE_ELEM) of the dtls_bpf map of "
                          "%V failed", &grp->addr_text);
            return NGX_ERROR;
        }
    }

    for (key = 0; key < workers; key++) {

        if (fds[key] == -1) {
            continue;
        }

        value = fds[key];

        ngx_memzero(&attr, sizeof(union bpf_attr));
        attr.map_fd = grp->map;
        attr.key = (uintptr_t) &key;
        attr.value = (uintptr_t) &value;
        attr.flags = BPF_ANY;

        if (ngx_stream_dtls_bpf_call(BPF_MAP_UPDATE_ELEM, &attr) == -1) {

            /* EBUSY: in another map, an old master's (binary upgrade) */

            err = ngx_errno;
            ngx_stream_dtls_bpf_refused(cycle->log, err,
                                        "bpf(BPF_MAP_UPDATE_ELEM)",
                                        &grp->addr_text);
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_stream_dtls_bpf_attach(ngx_cycle_t *cycle,
    ngx_stream_dtls_bpf_group_t *grp, ngx_listening_t *ls)
{
    int        prog;
    ngx_err_t  err;

    prog = ngx_stream_dtls_bpf_load(cycle->log, grp->map, &ls->addr_text);

    if (prog == -1) {
        return NGX_ERROR;
    }

    /* the group holds the program from now on, in place of the last */

    if (setsockopt(ls->fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_EBPF, &prog,
                   sizeof(int))
        == -1)
    {
        err = ngx_socket_errno;
        (void) close(prog);
        ngx_stream_dtls_bpf_refused(cycle->log, err,
                                    "setsockopt(SO_ATTACH_REUSEPORT_EBPF)",
                                    &ls->addr_text);
        return NGX_ERROR;
    }

    (void) close(prog);

    return NGX_OK;
}


/*
 * A listen the last configuration steered and this one does not, but
 * whose sockets stay: its group goes back to the kernel's hash
 */

static void
ngx_stream_dtls_bpf_detach(ngx_cycle_t *cycle, ngx_array_t *groups,
    ngx_array_t *old)
{
    ngx_uint_t                    i, g;
    ngx_listening_t              *ls;
    ngx_stream_dtls_bpf_group_t  *grp;

    grp = old->elts;

    for (g = 0; g < old->nelts; g++) {

        ls = cycle->listening.elts;

        for (i = 0; i < cycle->listening.nelts; i++) {

            if (ls[i].reuseport
                && ls[i].fd != (ngx_socket_t) -1
                && ngx_cmp_sockaddr(ls[i].sockaddr, ls[i].socklen,
                                    grp[g].sockaddr, grp[g].socklen, 1)
                   == NGX_OK)
            {
                break;
            }
        }

        if (i == cycle->listening.nelts
            || ngx_stream_dtls_bpf_find(groups, &ls[i]))
        {
            continue;
        }

        ngx_stream_dtls_bpf_unsteer(cycle, &ls[i]);

        /*
         * the kernel frees the old map later: emptied now, it lets the
         * sockets into another map at once (a reload that turns
         * dtls_bpf on again)
         */

        if (grp[g].map != -1) {
            (void) ngx_stream_dtls_bpf_fill(cycle, &grp[g], 0);
        }
    }
}


/* the group of ls back to the kernel's hash, if a program steers it */

static void
ngx_stream_dtls_bpf_unsteer(ngx_cycle_t *cycle, ngx_listening_t *ls)
{
#ifdef SO_DETACH_REUSEPORT_BPF
    int        unused;
    ngx_err_t  err;

    unused = 0;

    if (setsockopt(ls->fd, SOL_SOCKET, SO_DETACH_REUSEPORT_BPF, &unused,
                   sizeof(int))
        == -1)
    {
        err = ngx_socket_errno;

        /* ENOENT: none attached */

        if (err != NGX_ENOENT) {
            ngx_log_error(NGX_LOG_WARN, cycle->log, err,
                          "setsockopt(SO_DETACH_REUSEPORT_BPF) %V failed: "
                          "an earlier dtls_bpf program may still steer its "
                          "records", &ls->addr_text);
        }

        return;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_CORE, cycle->log, 0,
                   "dtls bpf: %V no longer steered", &ls->addr_text);
#endif
}


static int
ngx_stream_dtls_bpf_map(void)
{
    union bpf_attr  attr;

    ngx_memzero(&attr, sizeof(union bpf_attr));

    attr.map_type = BPF_MAP_TYPE_REUSEPORT_SOCKARRAY;
    attr.key_size = sizeof(uint32_t);
    attr.value_size = sizeof(uint64_t);
    attr.max_entries = NGX_STREAM_DTLS_BPF_SLOTS;

    return ngx_stream_dtls_bpf_call(BPF_MAP_CREATE, &attr);
}


/*
 * The program with the map's descriptor, for the listen addr (NULL: nginx
 * -t's probe); a program the verifier refuses is loaded again for its log
 */

static int
ngx_stream_dtls_bpf_load(ngx_log_t *log, int map, ngx_str_t *addr)
{
    int              prog;
    char            *p, *buf;
    size_t           n, i;
    ngx_err_t        err;
    union bpf_attr   attr;
    struct bpf_insn  insns[sizeof(ngx_stream_dtls_bpf_program)
                           / sizeof(struct bpf_insn)];

    ngx_memcpy(insns, ngx_stream_dtls_bpf_program, sizeof(insns));
    insns[NGX_STREAM_DTLS_BPF_MAP_INSN].imm = map;

    ngx_memzero(&attr, sizeof(union bpf_attr));

    attr.prog_type = BPF_PROG_TYPE_SK_REUSEPORT;
    attr.insns = (uintptr_t) insns;
    attr.insn_cnt = sizeof(insns) / sizeof(struct bpf_insn);
    attr.license = (uintptr_t) "BSD";

    prog = ngx_stream_dtls_bpf_call(BPF_PROG_LOAD, &attr);

    if (prog != -1) {
        return prog;
    }

    err = ngx_errno;

    if (err == NGX_EPERM || err == ENOSYS) {
        ngx_stream_dtls_bpf_refused(log, err, "bpf(BPF_PROG_LOAD)", addr);
        return -1;
    }

    buf = ngx_stream_dtls_bpf_log;
    buf[0] = '\0';

    attr.log_buf = (uintptr_t) buf;
    attr.log_size = NGX_STREAM_DTLS_BPF_LOG_SIZE;
    attr.log_level = 1;

    prog = ngx_stream_dtls_bpf_call(BPF_PROG_LOAD, &attr);

    if (prog != -1) {
        return prog;
    }

    n = ngx_strlen(buf);

    if (n == 0) {
        /* a kernel without the program type, or its helpers */
        ngx_stream_dtls_bpf_refused(log, err, "bpf(BPF_PROG_LOAD)", addr);
        return -1;
    }

    while (n && (buf[n - 1] == '\n' || buf[n - 1] == ' ')) {
        n--;
    }

    /* its last lines say why, on one line of the error log */

    p = buf;

    if (n > NGX_STREAM_DTLS_BPF_LOG_TAIL) {
        p += n - NGX_STREAM_DTLS_BPF_LOG_TAIL;
    }

    for (i = p - buf; i < n; i++) {
        if (buf[i] == '\n') {
            buf[i] = ' ';
        }
    }

    ngx_log_error(NGX_LOG_ALERT, log, err,
                  "the eBPF verifier refused the dtls_bpf program: ...%*s",
                  n - (p - buf), p);

    return -1;
}


/* nginx -t: whether the kernel loads the program */

static void
ngx_stream_dtls_bpf_probe(ngx_cycle_t *cycle)
{
    int  map, prog;

    map = ngx_stream_dtls_bpf_map();

    if (map == -1) {
        ngx_stream_dtls_bpf_refused(cycle->log, ngx_errno,
                                    "bpf(BPF_MAP_CREATE)", NULL);
        return;
    }

    prog = ngx_stream_dtls_bpf_load(cycle->log, map, NULL);

    if (prog != -1) {
        (void) close(prog);
    }

    (void) close(map);
}


static void
ngx_stream_dtls_bpf_refused(ngx_log_t *log, ngx_err_t err, const char *what,
    ngx_str_t *addr)
{
    if (addr) {
        ngx_log_error(NGX_LOG_WARN, log, err,
                      "\"dtls_bpf\" does not steer %V, its records reach "
                      "workers by the kernel's hash: %s failed", addr, what);
        return;
    }

    ngx_log_error(NGX_LOG_WARN, log, err,
                  "\"dtls_bpf\" would steer no records, they would reach "
                  "workers by the kernel's hash: %s failed", what);
}


static void
ngx_stream_dtls_bpf_cleanup(void *data)
{
    ngx_array_t  *groups = data;

    ngx_uint_t                    i;
    ngx_stream_dtls_bpf_group_t  *grp;

    grp = groups->elts;

    for (i = 0; i < groups->nelts; i++) {
        if (grp[i].map != -1 && close(grp[i].map) == -1) {
            ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, ngx_errno,
                          "close() of the dtls_bpf map of %V failed",
                          &grp[i].addr_text);
        }
    }

    groups->nelts = 0;
}


static int
ngx_stream_dtls_bpf_call(int cmd, union bpf_attr *attr)
{
    return syscall(__NR_bpf, cmd, attr, sizeof(union bpf_attr));
}


/* the groups of a cycle that has this module: the last configuration's */

static ngx_array_t *
ngx_stream_dtls_bpf_groups(ngx_cycle_t *cycle)
{
    ngx_uint_t                    m;
    ngx_stream_dtls_main_conf_t  *dmcf;

    if (cycle == NULL || cycle->conf_ctx == NULL || cycle->modules == NULL) {
        return NULL;
    }

    /* a dynamic module may be new in this configuration */

    for (m = 0; cycle->modules[m]; m++) {
        if (cycle->modules[m] == &ngx_stream_dtls_module) {
            break;
        }
    }

    if (cycle->modules[m] == NULL) {
        return NULL;
    }

    dmcf = ngx_stream_cycle_get_module_main_conf(cycle,
                                                 ngx_stream_dtls_module);

    return dmcf ? dmcf->groups : NULL;
}
