package Test::DTLS::Interop;

# What the interop tests found, for docs/interop.md: each test records one
# row per client, suite and check; scripts/interop-report.pl makes the
# table from the rows of the last run (build/interop/*.tsv).
#
#	my $r = Test::DTLS::Interop->new('gnutls-cli', $version);
#	$r->record('PSK-AES128-CCM8', 'echo 100', $ok);
#	$r->record('ECDHE-PSK-CHACHA20-POLY1305', 'close', $ok, $why);
#
# Rows: client, client version, suite (or "-"), check, "pass" or "fail",
# and why, for a failure the report should explain.
#
# And for the tests of a client library (interop_node.t, interop_pion.t):
# their nginx, a suite's session and the check of a wrong key, and what
# they read of nginx's error log: a client port's connections, their
# lines, and whether a session's close_notify came.

use warnings;
use strict;

use Test::More;
use Test::Nginx qw/ port /;
use Test::Nginx::DTLS qw/ hexkey psk_file udp_echo log_mark error_log grep_log
	wait_log wait_for access_mark wait_access /;

use Time::HiRes qw/ time /;

use File::Basename qw/ dirname /;
use File::Path qw/ make_path /;
use Cwd qw/ abs_path /;

use base qw/ Exporter /;

our @EXPORT = qw/ psk_server psk_session wrong_key /;
our @EXPORT_OK = qw/ close_notify conn_ids grep_ids shown_ids /;

our $DIR = abs_path(dirname(__FILE__) . '/../../../..') . '/build/interop';

sub new {
	my ($class, $client, $version) = @_;

	make_path($DIR);

	(my $file = "$DIR/$client.tsv") =~ s/[^\w.\/-]/_/g;
	open my $fh, '>', $file or die "Can't write $file: $!\n";
	$fh->autoflush(1);

	return bless { fh => $fh, client => $client,
		version => $version // '?' }, $class;
}

sub record {
	my ($self, $suite, $check, $ok, $why) = @_;

	print { $self->{fh} } join("\t", $self->{client}, $self->{version},
		$suite // '-', $check, $ok ? 'pass' : 'fail',
		$ok ? '' : $why // ''), "\n";

	return $ok;
}

# the nginx of the client library tests: DTLS-PSK (identity dev-1, the
# key returned) to an echo backend, an access log line a session

sub psk_server {
	my ($t) = @_;

	my $key = hexkey();

	psk_file($t, 'psk', "dev-1:$key\n");

	$t->write_file_expand('nginx.conf', <<'EOF');

events {
}

stream {
    dtls_psk_file  psk;

    log_format  dtls  '$remote_port "$dtls_psk_identity" $dtls_cipher '
                      '$dtls_session_reused $status';

    access_log  %%TESTDIR%%/access.log dtls;

    server {
        listen                  127.0.0.1:%%PORT_8980_UDP%% udp;
        dtls                    on;
        dtls_psk_identity_hint  "gw-1";
        dtls_handshake_timeout  1s;
        proxy_pass              127.0.0.1:%%PORT_8981_UDP%%;
        proxy_timeout           3s;
    }
}

EOF

	udp_echo($t, '127.0.0.1:' . port(8981, udp => 1));

	return $key;
}

# a session of one suite (OpenSSL's name SUITE, the client's NAME) by the
# test's sub that runs the client, with the key psk_server() returned:
# its handshake, 100 datagrams of up to MAX bytes each way, its
# close_notify reaching nginx, the HelloVerifyRequest before, the
# client's exit code (5 tests).  A session whose close_notify never
# reached nginx's socket is tried again, up to RETRIES times, with a
# short one (pion: see interop_pion.t).  Returns the client's exit code.

sub psk_session {
	my ($t, $r, $client, $key, $suite, $name, $max, $retries) = @_;

	my $mark = log_mark($t);
	my $amark = access_mark($t);

	my ($out, $rc) = $client->('--identity', 'dev-1', '--key', $key,
		'--cipher', $name, '--count', 100, '--size-max', $max);

	my ($log) = wait_access($t, 1, 5, $amark);
	my ($cport, $cipher) = $log ? $log =~ /^(\d+) "dev-1" (\S+) / : ();
	my @ids = $cport ? conn_ids($t, $cport, $mark) : ();

	my $ok = $out =~ /^handshake ok cipher=\Q$name\E(?: |$)/m
		&& defined $cipher && $cipher eq $suite;
	ok($r->record($suite, 'handshake', $ok), "$suite: handshake")
		or diag("client exit code $rc:\n${out}access log: "
			. ($log // "none\n"));

	$ok = $out =~ /^echo ok n=100$/m;
	ok($r->record($suite, 'echo 100', $ok),
		"$suite: 100 datagrams of up to $max bytes each way")
		or diag("client:\n$out");

	my ($sent, $logged) = close_notify($t, $out, \@ids, $max, $mark);
	my @tries;

	for (1 .. $retries // 0) {
		last if $sent;

		my $m = log_mark($t);
		my $am = access_mark($t);

		my ($o) = $client->('--identity', 'dev-1', '--key', $key,
			'--cipher', $name, '--count', 1);

		my ($l) = wait_access($t, 1, 5, $am);
		my ($p) = $l ? $l =~ /^(\d+) / : ();
		my @i = $p ? conn_ids($t, $p, $m) : ();

		($sent, $logged) = close_notify($t, $o, \@i, $max, $m);
		push @tries, $sent ? 'sent' : 'not sent';
	}

	diag("$suite: no close_notify sent, tried again: @tries") if @tries;

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

	return $rc;
}

# a client with the wrong key, by the test's sub that runs the client:
# refused in bounded time, nginx says why

sub wrong_key {
	my ($t, $r, $client, $cipher) = @_;

	my $mark = log_mark($t);
	my $start = time();

	my ($out, $rc) = $client->('--identity', 'dev-1', '--key', 'ff' x 16,
		'--cipher', $cipher, '--count', 1);

	my $took = time() - $start;

	my $ok = $rc != 0 && $rc != -1 && $out !~ /^handshake ok/m
		&& $took < 8
		&& wait_log($t, qr/DTLS handshake failed: timed out: the /
			. qr/client's Finished did not decrypt, wrong PSK\?/, 4,
			$mark);

	ok($r->record('-', 'wrong key', $ok),
		'wrong key: refused in bounded time')
		or diag(sprintf "client exit code %s after %.1fs:\n%s", $rc,
			$took, $out);
}

# whether a session's close_notify reached nginx's socket (a datagram of
# an alert's size: 2 bytes, 8 of explicit nonce, a tag of 8 bytes for CCM8
# or 16, 13 of header; no echo datagram has this size), and whether nginx
# logged it

sub close_notify {
	my ($t, $out, $ids, $max, $mark) = @_;

	return (0, 0) unless $out =~ /^closed$/m && @$ids;

	my $re = join '|', @$ids;
	my $n = 13 + 8 + 2 + ($max == 1200 - 29 ? 8 : 16);

	my $logged = wait_log($t, qr/\*(?:$re) client closed DTLS session /
		. qr/\(close_notify\)/, 3, $mark);
	my $sent = $logged
		|| grep_log($t, qr/\*(?:$re) recvmsg: fd:\d+ n:$n$/, $mark);

	return ($sent ? 1 : 0, $logged ? 1 : 0);
}

# the connections of a client port (its HelloVerifyRequest, its session)

sub conn_ids {
	my ($t, $cport, $mark) = @_;

	my %ids = map { /\*(\d+) udp client 127\.0\.0\.1:$cport connected/
		? ($1 => 1) : () } grep_log($t, qr/udp client/, $mark);

	return sort { $a <=> $b } keys %ids;
}

sub grep_ids {
	my ($t, $ids, $mark) = @_;

	return () unless @$ids;

	my $re = join '|', @$ids;
	return grep_log($t, qr/\*(?:$re) /, $mark);
}

# what to show of them when a check fails: not every debug line

sub shown_ids {
	my @lines = grep { !/\[debug\]/ || /\bdtls\b/i } grep_ids(@_);
	return join '', map { "$_\n" } @lines > 30 ? @lines[0 .. 29] : @lines;
}

1;
