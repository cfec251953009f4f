
/*
 * Copyright (C) ngx_dtls authors
 */


/*
 * Datagrams from sources no client can have: port 0, the unspecified
 * address, multicast, the limited broadcast.  A reply to one would go
 * nowhere or everywhere, so they get none, and cost nothing: on Linux a
 * socket filter on every dtls listening socket drops them in the kernel,
 * before nginx reads them; elsewhere, or if the filter cannot be set,
 * the session handler drops them before any DTLS work.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_stream.h>

#include "ngx_stream_dtls.h"

#if (NGX_LINUX)
#include <linux/filter.h>
#endif


#if (NGX_LINUX)
static ngx_uint_t ngx_stream_dtls_listening_has_dtls(ngx_listening_t *ls);
static void ngx_stream_dtls_set_filter(ngx_listening_t *ls, ngx_uint_t on,
    ngx_log_t *log);


/*
 * Classic BPF over the datagram as the UDP socket sees it: offset 0 is
 * the UDP header, SKF_NET_OFF the IP header (IPv4 or IPv6: an IPv6
 * socket also receives IPv4 datagrams).  Jumps count instructions.
 */

#define NGX_STREAM_DTLS_NET  SKF_NET_OFF

static struct sock_filter  ngx_stream_dtls_source_bpf[] = {

    /* 0: the source port */
    BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 0),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 19, 0),              /* drop */

    /* 2: the IP version */
    BPF_STMT(BPF_LD | BPF_B | BPF_ABS, NGX_STREAM_DTLS_NET),
    BPF_STMT(BPF_ALU | BPF_RSH | BPF_K, 4),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 6, 5, 0),               /* 10 */

    /* 5: IPv4 source: 0.0.0.0, 255.255.255.255, 224.0.0.0/4 */
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, NGX_STREAM_DTLS_NET + 12),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 14, 0),              /* drop */
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0xffffffff, 13, 0),     /* drop */
    BPF_STMT(BPF_ALU | BPF_AND | BPF_K, 0xf0000000),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0xe0000000, 11, 10),

    /* 10: IPv6 source: ff00::/8, :: */
    BPF_STMT(BPF_LD | BPF_B | BPF_ABS, NGX_STREAM_DTLS_NET + 8),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0xff, 9, 0),            /* drop */
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, NGX_STREAM_DTLS_NET + 8),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 6),               /* accept */
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, NGX_STREAM_DTLS_NET + 12),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 4),               /* accept */
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, NGX_STREAM_DTLS_NET + 16),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 2),               /* accept */
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, NGX_STREAM_DTLS_NET + 20),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 1, 0),               /* drop */

    /* 20: accept, the whole datagram */
    BPF_STMT(BPF_RET | BPF_K, 0xffffffff),

    /* 21: drop */
    BPF_STMT(BPF_RET | BPF_K, 0)
};


/*
 * Called from the module's init_module, once the listening sockets of a
 * new configuration are open (at start and at each reload): a socket
 * that serves dtls gets the filter, a stream UDP socket that no longer
 * does loses it.
 */

ngx_int_t
ngx_stream_dtls_source_filters(ngx_cycle_t *cycle)
{
    ngx_uint_t        i;
    ngx_listening_t  *ls;

    if (ngx_test_config) {
        return NGX_OK;
    }

    ls = cycle->listening.elts;

    for (i = 0; i < cycle->listening.nelts; i++) {

        if (ls[i].type != SOCK_DGRAM
            || ls[i].fd == (ngx_socket_t) -1
            || ls[i].handler != ngx_stream_init_connection)
        {
            continue;
        }

        ngx_stream_dtls_set_filter(&ls[i],
                                   ngx_stream_dtls_listening_has_dtls(&ls[i]),
                                   cycle->log);
    }

    return NGX_OK;
}


static ngx_uint_t
ngx_stream_dtls_listening_has_dtls(ngx_listening_t *ls)
{
    ngx_uint_t          i;
    ngx_stream_port_t  *port;

    port = ls->servers;

    for (i = 0; i < port->naddrs; i++) {
        if (ngx_stream_dtls_listening_conf(ls, i)->enable) {
            return 1;
        }
    }

    return 0;
}


static void
ngx_stream_dtls_set_filter(ngx_listening_t *ls, ngx_uint_t on,
    ngx_log_t *log)
{
    int                unused;
    struct sock_fprog  prog;

    unused = 0;

    if (!on) {
        /* ENOENT: there was none */
        (void) setsockopt(ls->fd, SOL_SOCKET, SO_DETACH_FILTER, &unused,
                          sizeof(int));
        return;
    }

    prog.len = sizeof(ngx_stream_dtls_source_bpf)
               / sizeof(struct sock_filter);
    prog.filter = ngx_stream_dtls_source_bpf;

    if (setsockopt(ls->fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog))
        == -1)
    {
        ngx_log_error(NGX_LOG_WARN, log, ngx_socket_errno,
                      "setsockopt(SO_ATTACH_FILTER) for %V failed, "
                      "datagrams from invalid sources are dropped "
                      "after they are read",
                      &ls->addr_text);
        return;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_STREAM, log, 0,
                   "dtls source filter set on %V", &ls->addr_text);
}

#else

ngx_int_t
ngx_stream_dtls_source_filters(ngx_cycle_t *cycle)
{
    return NGX_OK;
}

#endif


/* the same check, for what the kernel let through */

ngx_uint_t
ngx_stream_dtls_source_valid(struct sockaddr *sa)
{
    uint32_t              a;
    struct sockaddr_in   *sin;
#if (NGX_HAVE_INET6)
    u_char               *p;
    struct sockaddr_in6  *sin6;
#endif

    switch (sa->sa_family) {

#if (NGX_HAVE_INET6)
    case AF_INET6:
        sin6 = (struct sockaddr_in6 *) sa;
        p = sin6->sin6_addr.s6_addr;

        if (sin6->sin6_port == 0) {
            return 0;
        }

        if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
            a = ((uint32_t) p[12] << 24) | (p[13] << 16) | (p[14] << 8)
                | p[15];
            break;
        }

        return !IN6_IS_ADDR_MULTICAST(&sin6->sin6_addr)
               && !IN6_IS_ADDR_UNSPECIFIED(&sin6->sin6_addr);
#endif

    case AF_INET:
        sin = (struct sockaddr_in *) sa;

        if (sin->sin_port == 0) {
            return 0;
        }

        a = ntohl(sin->sin_addr.s_addr);
        break;

    default:
        return 1;
    }

    return a != 0 && a != 0xffffffff && (a & 0xf0000000) != 0xe0000000;
}
