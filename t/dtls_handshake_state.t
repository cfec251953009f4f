#!/usr/bin/perl

# What a client can make a handshake in progress hold.  After its cookie,
# a client sends what OpenSSL would keep for later: a hundred records of
# the next epoch, each in a datagram of its own, and one-byte fragments
# of ten future handshake messages that claim 17.7 KB each.  Then the
# same within every bound that a real client flight may need: the
# largest ClientKeyExchange there can be, and, to a server that asks for
# client certificates, the largest Certificate and CertificateVerify; a
# ChangeCipherSpec before each record of the next epoch.  With 50 and
# with 1,000 such handshakes in progress, the worker's data grows by at
# most 128 KB a handshake (or twice what a normal handshake in progress
# costs, measured first, where the OpenSSL build needs more: 3.5's record
# layer does), and a real client still gets through.

###############################################################################

use warnings;
use strict;

use Test::More;

use Time::HiRes qw/ sleep /;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::Nginx;
use Test::Nginx::DTLS qw/ :DEFAULT proc_kb /;
use Test::DTLS::Hello;
use Test::DTLS::PKI;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Nginx->new()->has(qw/stream udp/)->has_module('dtls');

tool($t, 'dtls_client');

# ASan keeps freed memory: there, the attacks run against 50 handshakes,
# for what the sanitizers see, and the memory is not measured

my $asan = $ENV{TEST_NGINX_ASAN};
my @sizes = $asan ? (50) : (50, 1000);

my $key = unpack('H*', random(16));

psk_file($t, 'psk', "dev-1:$key\n");

my $pki = Test::DTLS::PKI->new($t->testdir() . '/pki');

$t->write_file_expand('nginx.conf', <<'EOF');

events {
    worker_connections  4096;
}

stream {
    server {
        listen                  127.0.0.1:%%PORT_8980_UDP%% udp rcvbuf=16m;
        dtls                    on;
        dtls_psk_file           psk;
        dtls_handshake_limit    1100;
        dtls_handshake_timeout  60s;
        proxy_pass              127.0.0.1:%%PORT_8981_UDP%%;
    }

    server {
        listen                   127.0.0.1:%%PORT_8982_UDP%% udp rcvbuf=16m;
        dtls                     on;
        dtls_psk_file            psk;
        dtls_certificate         %%PKI%%/server-ec.crt;
        dtls_certificate_key     %%PKI%%/server-ec.key;
        dtls_client_certificate  %%PKI%%/root.crt;
        dtls_handshake_limit     1100;
        dtls_handshake_timeout   60s;
        proxy_pass               127.0.0.1:%%PORT_8981_UDP%%;
    }
}

EOF

$t->write_file('nginx.conf',
	$t->read_file('nginx.conf') =~ s/%%PKI%%/$pki->dir()/ger);

udp_echo($t, '127.0.0.1:' . port(8981, udp => 1));
$t->run()->plan(9 * @sizes + 1);

my ($worker) = workers($t);

###############################################################################

# a normal handshake in progress: the cookie, the server's flight, then
# nothing yet

my $before = proc_kb($worker, 'VmData');
my @normal = map { handshake(port(8980, udp => 1)) } 1 .. 50;
sleep 1;
my $normal = (proc_kb($worker, 'VmData') - $before) / 50;
my $limit = 128 < 2 * $normal ? 2 * $normal : 128;

diag(sprintf('normal, 50 handshakes: %.1f kB each; limit %.1f kB',
	$normal, $limit));
ok($normal > 0 || $asan, 'a normal handshake in progress measured');

close $_->{s} for @normal;
fresh();

###############################################################################

for my $case ([ 'future', 8980 ], [ 'bounded', 8980 ], [ 'certificate', 8982 ]) {
	my ($attack, $port) = @$case;
	$port = port($port, udp => 1);

	for my $n (@sizes) {
		my $before = proc_kb($worker, 'VmData');

		my @held = map { handshake($port) } 1 .. $n;
		attack($attack, @held);

		# the worker reads what is queued on its socket

		sleep 1;
		my $grown = proc_kb($worker, 'VmData') - $before;
		my $each = $grown / $n;

		diag(sprintf('%s, %d handshakes: VmData +%d kB, %.1f kB each',
			$attack, $n, $grown, $each));
		SKIP: {
			skip 'ASan keeps freed memory', 1 if $asan;

			ok($each <= $limit, "$attack x $n: at most the limit a handshake")
				or diag("$each kB a handshake");
		}

		# while they are in progress

		my $client = daemon($t, tool($t, 'dtls_client'),
			'-c', "127.0.0.1:$port", '-i', 'dev-1', '-k', $key,
			'-m', 'sequential', '-n', 10, '-t', 20000);

		ok(wait_for($t, sub { daemon_output($t, $client) =~ /^summary/m },
			30), "$attack x $n: real client finished");
		like(daemon_output($t, $client), qr/^summary ok=10 failed=0$/m,
			"$attack x $n: real client got through");

		close $_->{s} for @held;
		fresh();
	}
}

###############################################################################

# a fresh worker for the next round: the old one ends its handshakes as
# it shuts down

sub fresh {
	reload_wait($t);
	wait_for($t, sub { workers($t) == 1 }, 10);
	($worker) = workers($t);
}

# a handshake after its cookie, the server's flight received

sub handshake {
	my ($port) = @_;

	my $s = client($port);
	my %hello = (random => random(32));
	my $hvr = parse_hvr(exchange($s, client_hello(%hello)));
	my $flight = exchange($s,
		client_hello(%hello, cookie => $hvr->{cookie}, msg_seq => 1));

	return { s => $s, flight => $flight };
}

sub attack {
	my ($attack, @held) = @_;

	for my $h (@held) {
		my $s = $h->{s};

		if ($attack eq 'future') {
			$s->send(fragment(11, 17700, $_)) for 2 .. 12;

			$s->send(record(23, 1, $_, 'x')) for 1 .. 100;
			next;
		}

		if ($attack eq 'bounded') {
			$s->send(fragment(16, 4096, 2));

		} else {
			$s->send(fragment(11, 16384, 2) . fragment(16, 4096, 3)
				. fragment(15, 4096, 4));
		}

		$s->send(record(20, 0, 5 + $_, "\x01") . record(23, 1, $_, 'x'))
			for 1 .. 100;
	}
}

# an epoch-0 handshake record: the first byte of a message of $len bytes

sub fragment {
	my ($type, $len, $seq) = @_;

	my $hs = pack('C', $type) . substr(pack('N', $len), 1) . pack('n', $seq)
		. "\0\0\0" . substr(pack('N', 1), 1) . 'x';

	return record(22, 0, $seq + 1, $hs);
}

sub record {
	my ($type, $epoch, $seq, $body) = @_;

	return pack('Cnn', $type, 0xfefd, $epoch) . pack('nN', 0, $seq)
		. pack('n', length $body) . $body;
}


###############################################################################
