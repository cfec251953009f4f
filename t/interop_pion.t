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
use Test::DTLS::Interop qw/ :DEFAULT close_notify conn_ids grep_ids shown_ids /;

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

	my $mark = log_mark($t);
	my $amark = access_mark($t);

	my ($out, $rc) = client('--identity', 'dev-1', '--key', $key,
		'--cipher', $name, '--count', 100, '--size-max', $max);

	my ($log) = wait_access($t, 1, 5, $amark);
	my ($cport, $cipher) = $log ? $log =~ /^(\d+) "dev-1" (\S+) / : ();
	my @ids = $cport ? conn_ids($t, $cport, $mark) : ();

	my $ok = $out =~ /^handshake ok cipher=\Q$name\E /m
		&& defined $cipher && $cipher eq $suite;
	ok($r->record($suite, 'handshake', $ok), "$suite: handshake")
		or diag("client exit code $rc:\n${out}access log: "
			. ($log // "none\n"));

	$ok = $out =~ /^echo ok n=100$/m;
	ok($r->record($suite, 'echo 100', $ok),
		"$suite: 100 datagrams of up to $max bytes each way")
		or diag("client:\n$out");

	# pion 2.2.6's Conn.Close() races its own read loop, which may close
	# the socket before the close_notify is written (Close() cancels the
	# reader first, and the reader closes the socket when cancelled): a
	# session whose close_notify never reached nginx's socket (no datagram
	# of an alert's size) is tried again, up to 4 times, with a short one

	my ($sent, $logged, @tries) = close_notify($t, $out, \@ids, $max,
		$mark);

	for (1 .. 4) {
		last if $sent;

		my $m = log_mark($t);
		my $am = access_mark($t);

		my ($o) = client('--identity', 'dev-1', '--key', $key,
			'--cipher', $name, '--count', 1);

		my ($l) = wait_access($t, 1, 5, $am);
		my ($p) = $l ? $l =~ /^(\d+) / : ();
		my @i = $p ? conn_ids($t, $p, $m) : ();

		($sent, $logged) = close_notify($t, $o, \@i, $max, $m);
		push @tries, $sent ? 'sent' : 'not sent';
	}

	diag("$suite: pion did not send close_notify, tried again: @tries")
		if @tries;

	ok($r->record($suite, 'close', $sent && $logged),
		"$suite: close_notify reaches nginx")
		or diag("client:\n${out}close_notify "
			. ($sent ? 'sent, not logged' : 'never sent')
			. "\nerror log:\n" . shown_ids($t, \@ids, $mark));

	$ok = $out =~ /^handshake ok/m && @ids
		&& grep { /dtls ClientHello without cookie, HelloVerifyRequest sent/ }
			grep_ids($t, \@ids, $mark);
	ok($r->record($suite, 'cookie', $ok),
		"$suite: handshake after HelloVerifyRequest")
		or diag("client:\n${out}error log:\n" . shown_ids($t, \@ids,
			$mark));

	is($rc, 0, "$suite: client exit code");

	# a second session offers the first one's session ID

	$amark = access_mark($t);

	($out, $rc) = client('--identity', 'dev-1', '--key', $key,
		'--cipher', $name, '--count', 1, '--resume', 1);

	my @log = wait_access($t, 2, 5, $amark);

	# in either order: the first session's line comes late when its
	# close_notify was lost (see above) and proxy_timeout ends it

	$ok = $rc == 0 && $out =~ /^resumed yes$/m && @log == 2
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
