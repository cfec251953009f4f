#!/usr/bin/perl

# An established session with an AEAD suite keeps no SSL object: its
# records are the module's own.  Side by side in one nginx, an idle
# session of a CBC suite (OpenSSL's record layer, kept) costs the worker
# more than twice one of an AEAD suite; the server's last flight, lost
# once, is sent again when the client retransmits its own.

###############################################################################

use warnings;
use strict;

use Test::More;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::Nginx;
use Test::Nginx::DTLS;


###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Nginx->new()->has(qw/stream udp/)->has_module('dtls');

tool($t, qw/ dtls_client dtls_load udp_echo /);

my $key = join '', map { sprintf '%02x', int rand 256 } 1 .. 16;
$t->write_file('psk', "dev-1:$key\n");
chmod 0600, $t->testdir() . '/psk';

$t->write_file_expand('nginx.conf', <<'EOF');

worker_processes  1;

events {
    worker_connections  2048;
}

stream {
    error_log  %%TESTDIR%%/error.log  debug;

    dtls_psk_file  %%TESTDIR%%/psk;

    proxy_buffer_size  2k;

    server {
        listen        127.0.0.1:%%PORT_8980_UDP%% udp;
        dtls          on;
        dtls_ciphers  PSK-AES128-CCM8;
        proxy_pass    127.0.0.1:%%PORT_8981_UDP%%;
    }

    server {
        listen        127.0.0.1:%%PORT_8982_UDP%% udp;
        dtls          on;
        dtls_ciphers  PSK-AES128-CBC-SHA256;
        proxy_pass    127.0.0.1:%%PORT_8981_UDP%%;
    }
}

EOF

udp_echo($t, '127.0.0.1:' . port(8981, udp => 1));
$t->run()->plan(7);

my $asan = $ENV{TEST_NGINX_ASAN};

###############################################################################

# memory of idle sessions, each suite in a fresh worker

my $n = 200;

my $cbc = idle_session('PSK-AES128-CBC-SHA256', port(8982, udp => 1));
my $aead = idle_session('PSK-AES128-CCM8', port(8980, udp => 1));

diag(sprintf('an idle session: %.1f kB (OpenSSL\'s records), '
	. '%.1f kB (the module\'s)', $cbc, $aead));

SKIP: {
	skip 'ASan keeps freed memory', 1 if $asan;

	ok($aead * 2 < $cbc, 'AEAD session less than half a CBC one');
}

like($t->read_file('error.log'), qr/keeps OpenSSL's record layer/,
	'CBC suite: OpenSSL\'s record layer');

my $log = $t->read_file('error.log');
my $keeps = () = $log =~ /keeps OpenSSL's record layer/g;
ok($keeps <= $n + 1, 'AEAD suite: none kept OpenSSL\'s record layer');

###############################################################################

# the server's last flight (its ChangeCipherSpec and Finished) lost once:
# the client retransmits its own, and nginx sends it again

my $mark = log_mark($t);
my $relay = relay(port(8985, udp => 1), port(8980, udp => 1));

my $out = run_tool($t, 'dtls_client', '-c', '127.0.0.1:' . port(8985,
	udp => 1), '-i', 'dev-1', '-k', $key, '-m', 'sequential', '-n', 1,
	'-t', 10000);

like($out, qr/^summary ok=1 failed=0$/m, 'lost last flight: session works');
ok(grep_log($t, qr/ours resent/, $mark), 'lost last flight: resent');

kill 'TERM', $relay;
waitpid($relay, 0);
is($? >> 8, 1, 'relay dropped one flight of the server');

$t->stop();

unlike($t->read_file('error.log'), qr/\[(alert|crit|emerg)\]/,
	'no alert in the error log');

###############################################################################

# VmData of a fresh worker grown by $n idle sessions, per session, in kB

sub idle_session {
	my ($cipher, $port) = @_;

	reload_wait($t);
	wait_for($t, sub { workers($t) == 1 }, 10);
	my ($worker) = workers($t);

	# one session first: what every session shares is made

	run_tool($t, 'dtls_client', '-c', "127.0.0.1:$port", '-i', 'dev-1',
		'-k', $key, '-C', $cipher, '-m', 'sequential', '-n', 1);

	my $before = vmdata($worker);

	my $load = daemon($t, tool($t, 'dtls_load'), '-c',
		"127.0.0.1:$port", '-m', 'hold', '-N', $n, '-n', 20, '-d', 60,
		'-i', 'dev-1', '-k', $key, '-C', $cipher, '-t', 10000);

	wait_for($t, sub { daemon_output($t, $load) =~ /"ready":true/ }, 30)
		or diag(daemon_output($t, $load));

	my $grown = vmdata($worker) - $before;

	kill 'TERM', $load;
	waitpid($load, 0);

	return $grown / $n;
}

sub vmdata {
	my ($pid) = @_;

	open my $fh, '<', "/proc/$pid/status" or return 0;
	my ($kb) = join('', <$fh>) =~ /^VmData:\s+(\d+)/m;
	return $kb;
}

# a relay that drops the first datagram of nginx's with a ChangeCipherSpec
# record; it exits with the number of datagrams it dropped

sub relay {
	my ($listen, $upstream) = @_;

	my ($u, $client);

	return rule_relay([ $listen ], sub {
		my ($r, $fh, $from, $buf) = @_;

		$u //= $r->socket("127.0.0.1:$upstream");

		if ($fh != $u) {
			$client = $from;
			$u->send($buf);

		} elsif (!$r->{count} && ccs($buf)) {
			$r->{count}++;

		} elsif (defined $client) {
			$r->{listen}[0]->send($buf, 0, $client);
		}
	});
}

sub ccs {
	my ($buf) = @_;

	while (length $buf >= 13) {
		my ($type, $len) = unpack('C x10 n', $buf);
		return 1 if $type == 20;
		substr($buf, 0, 13 + $len, '');
	}

	return 0;
}

###############################################################################
