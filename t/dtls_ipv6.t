#!/usr/bin/perl

# Tests of a dtls listener on [::1]: sessions proxied to a UDP echo backend
# on 127.0.0.1, the HelloVerifyRequest to a ClientHello without a cookie,
# silence to garbage, and the client's IPv6 address in the logs.

###############################################################################

use warnings;
use strict;

use Test::More;

use IO::Socket::IP;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::Nginx;
use Test::Nginx::DTLS;
use Test::DTLS::Hello qw/ :DEFAULT garbage /;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Nginx->new()->has(qw/stream udp/)->has_module('dtls');

tool($t, qw/ dtls_client udp_echo /);

IO::Socket::IP->new(LocalHost => '::1', LocalPort => 0, Proto => 'udp')
	or plan(skip_all => 'no ::1');

my $d = $t->testdir();
my $key = hexkey();

psk_file($t, 'psk', "dev:$key\n");

$t->write_file_expand('nginx.conf', <<"EOF");

events {
}

stream {
    log_format  dtls  '\$remote_addr \$dtls_protocol \$dtls_psk_identity';

    server {
        listen          [::1]:%%PORT_8980_UDP%% udp;
        dtls            on;
        dtls_psk_file   psk;
        proxy_pass      127.0.0.1:%%PORT_8981_UDP%%;
        proxy_timeout   5s;
        access_log      $d/access.log dtls;
    }
}

EOF

udp_echo($t, '127.0.0.1:' . port(8981, udp => 1), 'echo:');

my $mark = log_mark($t);
$t->run()->plan(13);

my $peer = '[::1]:' . port(8980, udp => 1);

###############################################################################

# a session over IPv6, proxied to the IPv4 backend

my ($out, $rc) = dtls_client($t, { timeout => 15 }, '-m', 'echo',
	'-n', '3', '-i', 'dev', '-k', $key, '-c', $peer, '-t', '5000');

like($out, qr/^handshake ok protocol=DTLSv1\.2 cipher=\S+ reused=0$/m,
	'echo: handshake');
like($out, qr/^recv echo:hello-1\nrecv echo:hello-2\nrecv echo:hello-3$/m,
	'echo: replies from the backend');
like($out, qr/^echo ok n=3$/m, 'echo: ok');
is($rc, 0, 'echo: exit code');

ok(wait_for($t, sub { $t->read_file('access.log') ne '' }, 5),
	'access log written');
like($t->read_file('access.log'), qr/^::1 DTLSv1\.2 dev$/m,
	'access log: IPv6 client and variables');

# a ClientHello without a cookie gets a HelloVerifyRequest, no larger

my $hello = client_hello(random => random(32));
my $hvr = exchange(client($peer), $hello) // '';

is(parse_hvr($hvr)->{msg_type}, 3, 'nocookie: hvr');
is(length(parse_hvr($hvr)->{cookie} // ''), 32, 'nocookie: hvr cookie');
ok(length $hvr == 60 && length $hvr <= length $hello,
	'nocookie: hvr not larger than request');

# garbage first datagrams get no reply

my $gmark = log_mark($t);

ok(!defined garbage(client($peer), 3), 'garbage: no reply');
my $dropped = 'DTLS session must start with a ClientHello, datagram of \d+'
	. ' bytes dropped.*udp client: ::1,';
ok(wait_log($t, qr/$dropped/, 5, $gmark),
	'garbage: logged with the IPv6 client');

# the error log: no alerts, and never the key

is(log_alerts($t, $mark), '', 'no alerts');
ok(index(error_log($t), $key) < 0, 'no key in error log');

###############################################################################
