#!/usr/bin/perl

# The stateless cookie exchange (RFC 6347, 4.2.1), with ClientHellos built
# here byte by byte: a HelloVerifyRequest never larger than the request,
# a cookie bound to the source address, port and ClientHello, nothing kept
# before a valid cookie, and no reply to anything but a ClientHello.

###############################################################################

use warnings;
use strict;

use Test::More;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::Nginx;
use Test::Nginx::DTLS;
use Test::DTLS::Hello;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Nginx->new()->has(qw/stream udp/)->has_module('dtls');

psk_file($t, 'psk', 'dev-1:' . hexkey() . "\n");

$t->write_file_expand('nginx.conf', <<'EOF');

events {
}

stream {
    log_format  dtls  '$remote_port $status';

    server {
        listen                  127.0.0.1:%%PORT_8980_UDP%% udp;
        dtls                    on;
        dtls_psk_file           psk;
        dtls_handshake_timeout  1s;
        access_log              %%TESTDIR%%/access.log dtls;
        return                  "ok";
    }
}

EOF

$t->run()->plan(33);

my $port = port(8980, udp => 1);

###############################################################################

# a ClientHello without a cookie gets a HelloVerifyRequest

my $s = client($port);
my %hello = (random => random(32), seq => 7);
my $request = client_hello(%hello);
my $reply = exchange($s, $request);

ok(defined $reply, 'hvr sent');
is(length($reply), 60, 'hvr length');
ok(length($reply) <= length($request), 'hvr not larger than clienthello');

my $hvr = parse_hvr($reply);
is($hvr->{type}, 22, 'hvr record type handshake');
is($hvr->{msg_type}, 3, 'hvr message type');
is($hvr->{record_seq}, 7, 'hvr record sequence is the clienthello\'s');
is($hvr->{version}, 0xfeff, 'hvr server_version DTLS 1.0');
is(length($hvr->{cookie}), 32, 'cookie length');

my $cookie = $hvr->{cookie};

# the smallest ClientHello there can be still gets no larger a reply

my $small = client_hello(random => random(32), suites => "\x00\xa8");
my $small_reply = exchange(client($port), $small);
ok(length($small_reply) <= length($small), 'hvr to smallest clienthello')
	or diag(length($small_reply) . ' > ' . length($small));

# the cookie, sent back from the same address and port, starts a handshake

$reply = exchange($s, client_hello(%hello, cookie => $cookie, msg_seq => 1,
	seq => 8));
is(msg_type($reply), 2, 'valid cookie gets a ServerHello');

# the same cookie from another port is refused: another HelloVerifyRequest

my $mark = log_mark($t);

$reply = exchange(client($port), client_hello(%hello, cookie => $cookie,
	msg_seq => 1));
is(msg_type($reply), 3, 'cookie from another port refused');
ok(wait_log($t, qr/invalid or expired cookie/, 3, $mark),
	'cookie from another port logged');
isnt(parse_hvr($reply)->{cookie}, $cookie, 'new cookie for the new port');

# a cookie for another ClientHello is refused

my $s2 = client($port);
my %hello2 = (random => random(32));
my $cookie2 = parse_hvr(exchange($s2, client_hello(%hello2)))->{cookie};

$reply = exchange($s2, client_hello(%hello2, random => random(32),
	cookie => $cookie2, msg_seq => 1));
is(msg_type($reply), 3, 'cookie for another random refused');

$reply = exchange($s2, client_hello(%hello2, suites => "\x00\xae\x00\xa8",
	cookie => $cookie2, msg_seq => 1));
is(msg_type($reply), 3, 'cookie for other cipher suites refused');

# a cookie altered by one bit is refused

my $forged = $cookie2;
substr($forged, 5, 1) = chr(ord(substr($forged, 5, 1)) ^ 0x01);

$reply = exchange($s2, client_hello(%hello2, cookie => $forged,
	msg_seq => 1));
is(msg_type($reply), 3, 'forged cookie refused');

# and the unaltered one still works from its own port

$reply = exchange($s2, client_hello(%hello2, cookie => $cookie2,
	msg_seq => 1));
is(msg_type($reply), 2, 'original cookie accepted');

# nothing is kept after a HelloVerifyRequest: the next datagram from the
# same port starts a new session, which drops it as not a ClientHello

my $s3 = client($port);
exchange($s3, client_hello(random => random(32)));
my ($id) = error_log($t) =~ /.*\*(\d+) udp client 127\.0\.0\.1:${\
	$s3->sockport()} connected/s;

$mark = log_mark($t);
$reply = exchange($s3, 'x' x 80);

ok(!defined $reply, 'datagram after hvr: no reply');
ok(wait_log($t, qr/\*(\d+) DTLS session must start with a ClientHello/, 3,
	$mark), 'datagram after hvr: new session');
my ($id2) = error_log($t, $mark)
	=~ /\*(\d+) DTLS session must start with a ClientHello/;
ok($id && $id2 && $id2 > $id, 'datagram after hvr: not the old session')
	or diag("sessions $id, $id2");

# no reply to anything that is not one whole epoch-0 ClientHello

my $good = client_hello(random => random(32));

is(exchange(client($port), 'GET / HTTP/1.0' . "\r\n" x 20), undef, 'no reply: text');
is(exchange(client($port), substr($good, 0, length($good) - 1)), undef,
	'no reply: truncated clienthello');
is(exchange(client($port), client_hello(random => random(32), fragment => 1)),
	undef, 'no reply: fragmented clienthello');
is(exchange(client($port), client_hello(random => random(32), epoch => 1)),
	undef, 'no reply: epoch 1');
is(exchange(client($port), client_hello(random => random(32), version => 0x0303)),
	undef, 'no reply: TLS version');
is(exchange(client($port), client_hello(random => random(32), msg_type => 2)),
	undef, 'no reply: not a ClientHello');
is(exchange(client($port), ''), undef, 'no reply: empty datagram');

# a cookie issued just before a reload still works after it, with the
# new worker: the secret outlives the configuration

my $s4 = client($port);
my %hello4 = (random => random(32));
my $cookie4 = parse_hvr(exchange($s4, client_hello(%hello4)))->{cookie};

ok(reload_done($t), 'reload');

$reply = exchange($s4, client_hello(%hello4, cookie => $cookie4,
	msg_seq => 1));
is(msg_type($reply), 2, 'cookie from before the reload accepted');

# a record of a later epoch (a client's close_notify after nginx ended the
# session) is dropped quietly: debug, not info

$mark = log_mark($t);

is(exchange(client($port), pack('Cnn', 21, 0xfefd, 1) . pack('nN', 0, 3)
	. pack('n', 26) . random(26)), undef, 'no reply: record of epoch 1');
ok(wait_log($t, qr/\[debug\].*dtls record of no live session dropped/, 3,
	$mark), 'record of epoch 1: debug line');
unlike(error_log($t, $mark), qr/\[info\].*must start with a ClientHello/,
	'record of epoch 1: no info line');

# cookie exchanges and dropped datagrams leave no session to log

$t->stop();

my @lines = access_lines($t);
is(scalar(grep { /^${\$s->sockport()} 400$/ } @lines), 1,
	'access log: only the session that got past the cookie');

###############################################################################
