#!/usr/bin/perl

# One run of nginx under valgrind's memcheck: PSK and certificate
# handshakes with echoes through proxy_pass, a session of
# dtls_session_zone (with dtls_proxy_protocol) continued after
# proxy_timeout, a wrong key, a stalled handshake and a cookie exchange; valgrind must report no error, and no
# memory definitely lost but what nginx itself leaves at exit
# (t/valgrind/nginx.supp).

###############################################################################

use warnings;
use strict;

use Test::More;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::Nginx;
use Test::Nginx::DTLS;
use Test::DTLS::Hello;
use Test::DTLS::PKI;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Nginx->new()->has(qw/stream udp/)->has_module('dtls');

plan(skip_all => 'no valgrind') unless `valgrind --version 2>/dev/null`;
plan(skip_all => 'not under ASan') if $ENV{TEST_NGINX_ASAN};

tool($t, 'dtls_client');

my $key = hexkey();
my $pki = Test::DTLS::PKI->new($t->testdir() . '/pki');

psk_file($t, 'psk', "dev-1:$key\n");

# single process, so that valgrind watches the sessions themselves

$t->write_file('valgrind.conf', expand($t, <<'EOF'));

daemon off;
master_process off;
pid %%TESTDIR%%/nginx.pid;
error_log %%TESTDIR%%/error.log info;

events {
}

stream {
    dtls_psk_file  psk;

    server {
        listen                   127.0.0.1:%%PORT_8980_UDP%% udp;
        dtls                     on;
        dtls_certificate         %%TESTDIR%%/pki/server-ec.crt;
        dtls_certificate_key     %%TESTDIR%%/pki/server-ec.key;
        dtls_client_certificate  %%TESTDIR%%/pki/root.crt;
        dtls_handshake_timeout   3s;
        proxy_pass               127.0.0.1:%%PORT_8981_UDP%%;
        proxy_timeout            5s;
    }

    server {
        listen                   127.0.0.1:%%PORT_8982_UDP%% udp;
        dtls                     on;
        dtls_session_zone        sessions:1m;
        dtls_proxy_protocol      on;
        proxy_pass               127.0.0.1:%%PORT_8981_UDP%%;
        proxy_timeout            1s;
    }
}

EOF

udp_echo($t, '127.0.0.1:' . port(8981, udp => 1), 'e:');

my $d = $t->testdir();
my $vg = daemon($t, 'valgrind', '--tool=memcheck', '--leak-check=full',
	'--errors-for-leak-kinds=definite',
	"--suppressions=$FindBin::Bin/valgrind/nginx.supp",
	"--log-file=$d/valgrind.log",
	nginx_binary($t), '-p', "$d/", '-c', 'valgrind.conf', '-e', 'error.log');

plan(tests => 7);

my $peer = '127.0.0.1:' . port(8980, udp => 1);

ok(wait_for($t, sub { -s "$d/nginx.pid" }, 30), 'nginx under valgrind');

my ($out) = dtls_client($t, { timeout => 60 }, '-c', $peer,
	'-i', 'dev-1', '-k', $key, '-m', 'echo', '-n', 5, '-t', 20000);
like($out, qr/^echo ok n=5$/m, 'psk: echoes');

($out) = dtls_client($t, { timeout => 60 }, '-c', $peer,
	'-a', $pki->path('client.crt'), '-K', $pki->path('client.key'),
	'-m', 'echo', '-n', 5, '-t', 20000);
like($out, qr/^echo ok n=5$/m, 'certificate: echoes');

# a session of the zone: its second echo, after proxy_timeout, in a new
# nginx session (the backend echoes the PROXY protocol header too)

($out) = dtls_client($t, { timeout => 60 }, '-c',
	'127.0.0.1:' . port(8982, udp => 1), '-i', 'dev-1', '-k', $key,
	'-m', 'echo', '-n', 2, '-W', 3000, '-t', 20000);
like($out, qr/^echo ok n=2$/m, 'zone: continued after proxy_timeout');

# failures: a wrong key, a stall, a cookie exchange only

dtls_client($t, { timeout => 60 }, '-c', $peer, '-i', 'dev-1',
	'-k', 'ff' x 16, '-m', 'handshake', '-t', 6000);
my $stall = dtls_lines($t, '-c', $peer, '-i', 'dev-1', '-k', $key,
	'-t', 6000);
$stall->io($_) for 'hello', 'cookie';
$stall->close();
exchange(client($peer), client_hello(random => random(32)), 6);

ok(wait_for($t, sub { error_log($t) =~ /DTLS handshake failed: timed out/ },
	30), 'failed handshakes ended');

# nginx exits on QUIT (sessions end at shutdown), valgrind then reports

kill 'QUIT', $vg;
wait_for($t, sub { $t->read_file('valgrind.log') =~ /ERROR SUMMARY/ }, 60);

my $log = $t->read_file('valgrind.log');

like($log, qr/ERROR SUMMARY: 0 errors/, 'valgrind: no errors')
	or diag($log);
unlike($log, qr/definitely lost: [1-9]/, 'valgrind: nothing definitely lost')
	or diag($log);

###############################################################################
