/*
 * udp_echo: a UDP echo backend for the ngx_dtls tests.
 *
 *   udp_echo -l 127.0.0.1:PORT [-p PREFIX]
 *   udp_echo -l [::1]:PORT [-p PREFIX]
 *
 * Every datagram is sent back to its sender, one reply per datagram,
 * optionally preceded by PREFIX.  Prints "udp_echo ready" once bound;
 * exits with 0 on SIGTERM or SIGINT.
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
    int                      fd, opt;
    char                    *listen_addr, *prefix;
    size_t                   plen;
    ssize_t                  n;
    socklen_t                slen, plen_addr;
    struct sigaction         sa;
    struct sockaddr_storage  ss, peer;
    static unsigned char     in[BUF_SIZE], out[2 * BUF_SIZE];

    listen_addr = NULL;
    prefix = NULL;

    while ((opt = getopt(argc, argv, "l:p:h")) != -1) {
        switch (opt) {
        case 'l':
            listen_addr = optarg;
            break;
        case 'p':
            prefix = optarg;
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
    if (plen > BUF_SIZE) {
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

        memcpy(out + plen, in, n);

        if (sendto(fd, out, plen + n, 0, (struct sockaddr *) &peer,
                   plen_addr) == -1)
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
    fprintf(stderr, "usage: udp_echo -l ADDR:PORT [-p PREFIX]\n"
                    "       ADDR is IPv4 (127.0.0.1) or IPv6 in brackets"
                    " ([::1])\n");
}



static void
on_signal(int signo)
{
    (void) signo;
    stop = 1;
}
