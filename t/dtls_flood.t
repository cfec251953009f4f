#!/usr/bin/perl

# Floods: 20,000 cookie-less ClientHellos from distinct ports cost no
# lasting memory and are answered with nothing larger than themselves,
# while a real client gets through; 1,000 clients that stop right after
# the cookie are held to dtls_handshake_limit and all released by
# dtls_handshake_timeout; handshake messages claiming 16 MB are refused.

###############################################################################

use warnings;
use strict;

use Test::More;

use Socket qw/ MSG_DONTWAIT /;
use Time::HiRes qw/ time sleep /;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::Nginx;
use Test::Nginx::DTLS qw/ :DEFAULT proc_kb /;
use Test::DTLS::Hello;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Nginx->new()->has(qw/stream udp/)->has_module('dtls');

tool($t, 'dtls_client');

my $key = unpack('H*', random(16));

psk_file($t, 'psk', "dev-1:$key\n");

$t->write_file_expand('nginx.conf', <<'EOF');

events {
}

stream {
    dtls_psk_file           psk;

    server {
        listen                  127.0.0.1:%%PORT_8980_UDP%% udp rcvbuf=4m;
        dtls                    on;
        proxy_pass              127.0.0.1:%%PORT_8982_UDP%%;
    }

    server {
        listen                  127.0.0.1:%%PORT_8981_UDP%% udp rcvbuf=4m;
        dtls                    on;
        dtls_handshake_limit    200;
        dtls_handshake_timeout  4s;
        return                  "$dtls_handshakes $dtls_handshakes_dropped";
    }
}

EOF

udp_echo($t, '127.0.0.1:' . port(8982, udp => 1));
$t->run()->plan(12);

my $flood = port(8980, udp => 1);
my $limited = port(8981, udp => 1);

my ($worker) = workers($t);

###############################################################################

# 20,000 ClientHellos without cookies, each from its own port, while a
# real client makes sessions one after another

my $rss = proc_kb($worker, 'VmRSS');

my $client = daemon($t, tool($t, 'dtls_client'), '-c', "127.0.0.1:$flood",
	'-i', 'dev-1', '-k', $key, '-m', 'sequential', '-n', 50, '-t', 10000);

my ($sent, $replies, $larger) = (0, 0, 0);
my $start = time();

for (1 .. 20000) {
	my $s = client($flood);
	my $hello = client_hello(random => random(32));
	my $reply = exchange($s, $hello);

	$sent++;
	next unless defined $reply;

	$replies++;
	$larger++ if length($reply) > length($hello);
}

my $elapsed = time() - $start;

diag(sprintf('%d ClientHellos in %.1fs, %d replies', $sent, $elapsed,
	$replies));

ok($replies >= 19000, 'flood: answered') or diag("$replies replies");
is($larger, 0, 'flood: no reply larger than its request');

my $grown = proc_kb($worker, 'VmRSS') - $rss;
diag("worker RSS grew by $grown kB");

SKIP: {
	skip 'ASan keeps freed memory', 1 if $ENV{TEST_NGINX_ASAN};

	ok($grown < 5 * 1024, 'flood: worker RSS grew less than 5 MB');
}

ok(wait_for($t, sub { daemon_output($t, $client) =~ /^summary/m }, 30),
	'flood: real client finished');
like(daemon_output($t, $client), qr/^summary ok=50 failed=0$/m,
	'flood: real client got through');

# 1,000 clients stop right after their cookie was accepted: 200 hold the
# limit's slots, 800 are dropped, and all slots come back at the timeout

# (cookies first, then every ClientHello with its cookie at once, so that
# no slot times out before the last of them arrives)

my @clients = map {
	my $s = client($limited);
	my %hello = (random => random(32));
	my $hvr = parse_hvr(exchange($s, client_hello(%hello)));
	[ $s, client_hello(%hello, cookie => $hvr->{cookie}, msg_seq => 1) ];
} 1 .. 1000;

$_->[0]->send($_->[1]) for @clients;

sleep 1;

my $flights = 0;

for (@clients) {
	my $reply;
	$_->[0]->recv($reply, 65536, MSG_DONTWAIT);
	$flights++ if length($reply // "") && msg_type($reply) == 2;
}

is($flights, 200, 'limit: 200 handshakes started, the rest dropped');

my ($out) = dtls_client($t, '-c', "127.0.0.1:$limited",
	'-i', 'dev-1', '-k', $key, '-m', 'send-only', '-s', 'x', '-t', 1000);
like($out, qr/^handshake failed/m, 'limit: held while full');

sleep 4;

($out) = dtls_client($t, '-c', "127.0.0.1:$limited",
	'-i', 'dev-1', '-k', $key, '-m', 'send-only', '-s', 'x');
like($out, qr/^recv 0 (\d+)$/m, 'limit: all slots back after the timeout');

my ($dropped) = $out =~ /^recv 0 (\d+)$/m;
ok($dropped && $dropped >= 800, 'limit: drops counted')
	or diag("dropped $dropped");

# reassembly bombs: 100 handshakes, each followed by the first fragment of
# a message that claims 90 KB (under OpenSSL's own limit of 100 KB, over
# nginx's 16 KB); the handshake fails at once, and nothing of that size
# is held

$rss = proc_kb($worker, 'VmRSS');
my $mark = log_mark($t);

for (1 .. 100) {
	my $s = client($flood);
	my %hello = (random => random(32));
	my $hvr = parse_hvr(exchange($s, client_hello(%hello)));

	exchange($s, client_hello(%hello, cookie => $hvr->{cookie}, msg_seq => 1));
	$s->send(fragment(16, 90000, 2, random(100)));
}

ok(wait_for($t, sub { scalar(() = error_log($t, $mark)
	=~ /\[info\].*DTLS handshake failed: malformed or oversized handshake /g)
	== 100 }, 10), 'bombs: each handshake failed on the message size');

$grown = proc_kb($worker, 'VmRSS') - $rss;
diag("worker RSS grew by $grown kB after the bombs");

SKIP: {
	skip 'ASan keeps freed memory', 1 if $ENV{TEST_NGINX_ASAN};

	ok($grown < 5 * 1024, 'bombs: worker RSS grew less than 5 MB');
}

$t->stop();

is(log_alerts($t), '', 'no alerts');

###############################################################################

# an epoch-0 handshake record with one fragment of a message of $len bytes

sub fragment {
	my ($type, $len, $seq, $body) = @_;

	my $hs = pack('C', $type) . substr(pack('N', $len), 1) . pack('n', $seq)
		. "\0\0\0" . substr(pack('N', length $body), 1) . $body;

	return pack('Cnn', 22, 0xfefd, 0) . pack('nN', 0, 9)
		. pack('n', length $hs) . $hs;
}


###############################################################################
