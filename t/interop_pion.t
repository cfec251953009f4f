#!/usr/bin/perl

# Interop: pion/dtls (Go, v2, Debian's golang-github-pion-dtls.v2-dev)
# against nginx with DTLS-PSK, through proxy_pass to a UDP echo backend.
# For each default suite the client has: the handshake (the suite in the
# access log), 100 datagrams each way up to the largest that fits dtls_mtu
# 1200, the client's close_notify, the handshake after a
# HelloVerifyRequest, session resumption (pion's SessionStore, by session
# ID); once, a client with the wrong key.
#
# The client is t/interop/pion/main.go, built into build/tools/pion_client
# by scripts/interop-deps.sh.  Results also go to
# build/interop/pion-dtls.tsv (Test::DTLS::Interop).

###############################################################################

use warnings;
use strict;

use Test::More;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::Nginx;
use Test::Nginx::DTLS;
use Test::DTLS::Interop;

use Time::HiRes qw/ time /;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Nginx->new()->has(qw/stream udp debug/)->has_module('dtls');

tool($t, 'udp_echo');

my $client = "$Test::Nginx::REPO/build/tools/pion_client";

plan(skip_all => "no $client (scripts/interop-deps.sh; needs go and "
	. "golang-github-pion-dtls.v2-dev)") unless -x $client;

diag("$client is older than t/interop/pion/main.go: "
	. "run scripts/interop-deps.sh")
	if -M $client > -M "$FindBin::Bin/interop/pion/main.go";

my $version = `dpkg-query -W -f='\${Version}' golang-github-pion-dtls.v2-dev \\
	2>/dev/null` || '?';
$version =~ s/-[^-]+$//;

# OpenSSL's name, the client's name, the largest datagram that fits
# dtls_mtu 1200 (29 bytes of record for CCM8, 37 for GCM and CCM); pion
# has neither AES-256-GCM nor ChaCha20-Poly1305

my @suites = (
	[ 'PSK-AES128-CCM8', 'TLS_PSK_WITH_AES_128_CCM_8', 1200 - 29 ],
	[ 'PSK-AES128-CCM', 'TLS_PSK_WITH_AES_128_CCM', 1200 - 37 ],
	[ 'PSK-AES128-GCM-SHA256', 'TLS_PSK_WITH_AES_128_GCM_SHA256', 1200 - 37 ],
);

my $key = psk_server($t);
$t->run()->plan(6 * @suites + 2);

my $r = Test::DTLS::Interop->new('pion-dtls', $version);
my $port = port(8980, udp => 1);

###############################################################################

for my $s (@suites) {
	my ($suite, $name, $max) = @$s;

	# pion 2.2.6's Conn.Close() races its own read loop, which may close
	# the socket before the close_notify is written (Close() cancels the
	# reader first, and the reader closes the socket when cancelled): a
	# session whose close_notify never reached nginx's socket (no datagram
	# of an alert's size) is tried again, up to 4 times, with a short one

	psk_session($t, $r, \&client, $key, $suite, $name, $max, 4);

	# a second session offers the first one's session ID

	my $amark = access_mark($t);

	my ($out, $rc) = client('--identity', 'dev-1', '--key', $key,
		'--cipher', $name, '--count', 1, '--resume', 1);

	my @log = wait_access($t, 2, 5, $amark);

	# in either order: the first session's line comes late when its
	# close_notify was lost (see above) and proxy_timeout ends it

	my $ok = $rc == 0 && $out =~ /^resumed yes$/m && @log == 2
		&& (grep { /^\d+ "dev-1" \Q$suite\E \. 200$/ } @log) == 1
		&& (grep { /^\d+ "dev-1" \Q$suite\E r 200$/ } @log) == 1;
	ok($r->record($suite, 'resumption', $ok), "$suite: resumption")
		or diag("client exit code $rc:\n${out}access log:\n", @log);
}

# the wrong key: the client gives up in its own time, nginx says why

wrong_key($t, $r, \&client, $suites[0][1]);

$t->stop();

is(log_alerts($t), '', 'no alerts in the error log');

###############################################################################

sub client {
	return run_tool($t, { stderr => 1, timeout => 30 }, $client,
		'--host', '127.0.0.1', '--port', $port, '--timeout', 2000, @_);
}

###############################################################################
