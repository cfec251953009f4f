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


#define BUF_SIZE  65536


static volatile sig_atomic_t  stop;


static void usage(void);
static int parse_addr(const char *s, struct sockaddr_storage *ss,
    socklen_t *len);
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


static int
parse_addr(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
    char                 host[128];
    const char          *colon, *end;
    long                 port;
    size_t               hlen;
    struct sockaddr_in  *sin;
    struct sockaddr_in6 *sin6;

    memset(ss, 0, sizeof(*ss));

    if (s[0] == '[') {
        end = strchr(s, ']');
        if (end == NULL || end[1] != ':') {
            return -1;
        }
        hlen = end - s - 1;
        if (hlen >= sizeof(host)) {
            return -1;
        }
        memcpy(host, s + 1, hlen);
        host[hlen] = '\0';
        colon = end + 1;

    } else {
        colon = strrchr(s, ':');
        if (colon == NULL) {
            return -1;
        }
        hlen = colon - s;
        if (hlen >= sizeof(host)) {
            return -1;
        }
        memcpy(host, s, hlen);
        host[hlen] = '\0';
    }

    port = strtol(colon + 1, NULL, 10);
    if (port <= 0 || port > 65535) {
        return -1;
    }

    sin = (struct sockaddr_in *) ss;
    if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons((unsigned short) port);
        *len = sizeof(struct sockaddr_in);
        return 0;
    }

    sin6 = (struct sockaddr_in6 *) ss;
    if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((unsigned short) port);
        *len = sizeof(struct sockaddr_in6);
        return 0;
    }

    return -1;
}


static void
on_signal(int signo)
{
    (void) signo;
    stop = 1;
}
