/*
 * udp_echo: a UDP echo backend for the ngx_dtls tests.
 *
 *   udp_echo -l 127.0.0.1:PORT [-p PREFIX] [-s]
 *   udp_echo -l [::1]:PORT [-p PREFIX] [-s]
 *
 * Every datagram is sent back to its sender, one reply per datagram,
 * optionally preceded by PREFIX.  With -s each reply starts (after
 * PREFIX) with the sender's port in decimal and a space: a client behind
 * nginx sees which of nginx's sockets each of its datagrams came from.
 * Prints "udp_echo ready" once bound; exits with 0 on SIGTERM or SIGINT.
 */

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "addr.h"


#define BUF_SIZE  65536


static volatile sig_atomic_t  stop;


static void usage(void);
static void on_signal(int signo);


int
main(int argc, char **argv)
{
    int                      fd, opt, sender;
    char                    *listen_addr, *prefix;
    size_t                   plen, slen_port;
    ssize_t                  n;
    socklen_t                slen, plen_addr;
    struct sigaction         sa;
    struct sockaddr_storage  ss, peer;
    static unsigned char     in[BUF_SIZE], out[2 * BUF_SIZE];

    listen_addr = NULL;
    prefix = NULL;
    sender = 0;

    while ((opt = getopt(argc, argv, "l:p:sh")) != -1) {
        switch (opt) {
        case 'l':
            listen_addr = optarg;
            break;
        case 'p':
            prefix = optarg;
            break;
        case 's':
            sender = 1;
            break;
        default:
            usage();
            return 2;
        }
    }

    if (listen_addr == NULL || parse_addr(listen_addr, &ss, &slen) != 0) {
        usage();
        return 2;
    }

    plen = prefix ? strlen(prefix) : 0;
    /* room for the sender's port too */

    if (plen > BUF_SIZE - 8) {
        fprintf(stderr, "udp_echo: prefix too long\n");
        return 2;
    }

    memcpy(out, prefix ? prefix : "", plen);

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;      /* no SA_RESTART: recvfrom() returns */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    fd = socket(ss.ss_family, SOCK_DGRAM, 0);
    if (fd == -1) {
        perror("udp_echo: socket");
        return 1;
    }

    if (bind(fd, (struct sockaddr *) &ss, slen) == -1) {
        perror("udp_echo: bind");
        return 1;
    }

    printf("udp_echo ready\n");
    fflush(stdout);

    while (!stop) {
        plen_addr = sizeof(peer);
        n = recvfrom(fd, in, sizeof(in), 0, (struct sockaddr *) &peer,
                     &plen_addr);
        if (n == -1) {
            if (errno == EINTR) {
                continue;
            }
            perror("udp_echo: recvfrom");
            continue;
        }

        slen_port = 0;

        if (sender) {
            slen_port = sprintf((char *) out + plen, "%u ",
                                peer.ss_family == AF_INET6
                                ? ntohs(((struct sockaddr_in6 *)
                                         &peer)->sin6_port)
                                : ntohs(((struct sockaddr_in *)
                                         &peer)->sin_port));
        }

        memcpy(out + plen + slen_port, in, n);

        if (sendto(fd, out, plen + slen_port + n, 0,
                   (struct sockaddr *) &peer, plen_addr) == -1)
        {
            perror("udp_echo: sendto");
        }
    }

    close(fd);
    return 0;
}


static void
usage(void)
{
    fprintf(stderr, "usage: udp_echo -l ADDR:PORT [-p PREFIX] [-s]\n"
                    "       ADDR is IPv4 (127.0.0.1) or IPv6 in brackets"
                    " ([::1])\n");
}



static void
on_signal(int signo)
{
    (void) signo;
    stop = 1;
}
