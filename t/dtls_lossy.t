#!/usr/bin/perl

# DTLS over a hostile network: nginx behind udp_relay, which drops,
# reorders and duplicates datagrams in both directions.  Handshakes still
# complete, by retransmission, for PSK and for a certificate chain
# fragmented at dtls_mtu 576; application data, which DTLS does not
# retransmit, comes back when it is not lost; and with every datagram
# duplicated, each datagram reaches the backend once and each reply the
# client once (DTLS replay protection).

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

use POSIX qw/ WNOHANG /;
use Time::HiRes qw/ time sleep /;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Nginx->new()->has(qw/stream udp/)->has_module('dtls');

tool($t, qw/ dtls_client udp_echo udp_relay /);

my $pki = Test::DTLS::PKI->new($t->testdir() . '/pki');

my $key = hexkey();
psk_file($t, 'psk', "dev-1:$key\n");

my $conf = <<'EOF';

worker_shutdown_timeout  1s;

events {
}

stream {
    log_format  bytes  '$remote_port $status $bytes_received $bytes_sent '
                       '$upstream_bytes_sent $upstream_bytes_received';

    access_log  %%TESTDIR%%/access.log  bytes;

    # the client retransmits its last flight after 1, 2, 4, 8s when
    # nginx's is lost: nginx, done with the handshake, must still be
    # there to answer (a session with no data ends at proxy_timeout)

    dtls_handshake_timeout  30s;
    proxy_timeout           15s;

    server {
        listen                 127.0.0.1:%%PORT_8980_UDP%% udp;
        dtls                   on;
        dtls_psk_file          psk;
        proxy_pass             127.0.0.1:%%PORT_8981_UDP%%;
    }

    server {
        listen                   127.0.0.1:%%PORT_8982_UDP%% udp;
        dtls                     on;
        dtls_certificate         %%PKI%%/server-long.crt;
        dtls_certificate_key     %%PKI%%/server-long.key;
        dtls_client_certificate  %%PKI%%/root.crt;
        dtls_mtu                 576;
        proxy_pass               127.0.0.1:%%PORT_8981_UDP%%;
    }
}

EOF

my $pkidir = $pki->dir();
$conf =~ s/%%PKI%%/$pkidir/g;
$t->write_file_expand('nginx.conf', $conf);

udp_echo($t, '127.0.0.1:' . port(8981, udp => 1), 'be:');
$t->run()->plan(26);

my $psk_port = port(8980, udp => 1);
my $cert_port = port(8982, udp => 1);

my @psk = ('-i', 'dev-1', '-k', $key);
my @cert = ('-a', $pki->path('client.crt'), '-K', $pki->path('client.key'),
	'-A', $pki->path('root.crt'), '-M', 576);

###############################################################################

# every lossy run at once, to keep within the time: a relay for each
# (20% drop, 20% reorder, 10% duplicate, several seeds), parallel
# sessions through it, each a handshake and one echo within 20s

my $start = time();

my @runs = (
	(map { { name => "psk seed $_", port => $psk_port, seed => $_,
		args => [ @psk ], sessions => 5 } } 11, 22, 33),
	(map { { name => "cert mtu 576 seed $_", port => $cert_port, seed => $_,
		args => [ @cert ], sessions => 5 } } 44, 55),
);

for my $r (@runs) {
	$r->{relay} = udp_relay($t, $r->{port}, '-d', 20, '-r', 20,
		'-D', 10, '-s', $r->{seed});

	$r->{client} = daemon($t, tool($t, 'dtls_client'),
		'-c', "127.0.0.1:$r->{relay}{port}", @{$r->{args}},
		'-m', 'parallel', '-P', $r->{sessions}, '-n', 1, '-t', 20000);
}

my %summary;

for my $r (@runs) {
	wait_for($t, sub {
		daemon_output($t, $r->{client}) =~ /^summary /m
	}, 30);

	my $out = daemon_output($t, $r->{client});
	my ($ok, $failed) = $out =~ /^summary ok=(\d+) failed=(\d+)$/m;
	my $hs_failed = () = $out =~ /failed: handshake failed/g;

	$r->{out} = $out;
	$r->{ok} = $ok // 0;
	$r->{handshakes} = $r->{sessions} - $hs_failed;
	$r->{stats} = udp_relay_stop($t, $r->{relay});

	diag("$r->{name}: $r->{handshakes}/$r->{sessions} handshakes, "
		. "$r->{ok} echoes; relay: " . ($r->{stats}{line} // 'no summary'))
		if $ENV{TEST_NGINX_VERBOSE};
}

diag(sprintf('lossy runs: %.1fs', time() - $start))
	if $ENV{TEST_NGINX_VERBOSE};

for my $kind ('psk', 'cert') {
	my @r = grep { $_->{name} =~ /^$kind/ } @runs;

	my $sessions = 0;
	$sessions += $_->{sessions} for @r;
	my $hs = 0;
	$hs += $_->{handshakes} for @r;
	my $echoes = 0;
	$echoes += $_->{ok} for @r;

	ok(!grep({ $_->{out} !~ /^summary ok=\d+ failed=\d+$/m } @r),
		"$kind: clients finished")
		or diag(join "\n", map { "$_->{name}:\n$_->{out}" } @r);

	# retransmission carries the handshakes through, with an unlucky
	# one or two allowed: a flight lost again and again, past the
	# client's 20s, is what 20% loss does now and then

	cmp_ok($hs, '>=', int($sessions * 0.8), "$kind: handshakes complete")
		or diag(join "\n", map { "$_->{name}:\n$_->{out}" } @r);

	cmp_ok($echoes, '>=', $kind eq 'psk' ? 3 : 2, "$kind: echoes came back")
		or diag(join "\n", map { "$_->{name}:\n$_->{out}" } @r);

	my %sum = (relayed => 0, dropped => 0, duplicated => 0, reordered => 0);

	for my $r (@r) {
		$sum{$_} += $r->{stats}{$_} // 0 for keys %sum;
	}

	cmp_ok($sum{dropped}, '>', 0, "$kind: relay dropped");
	cmp_ok($sum{reordered}, '>', 0, "$kind: relay reordered");
	cmp_ok($sum{duplicated}, '>', 0, "$kind: relay duplicated");

	# 20% drop: between 5% and 40% of what came in, on any seed

	my $seen = $sum{relayed} + $sum{dropped};
	ok($seen && $sum{dropped} > $seen * 0.05 && $sum{dropped} < $seen * 0.4,
		"$kind: drop rate about 20%")
		or diag("dropped $sum{dropped} of $seen");
}

# the certificate flights were fragmented: a Certificate message larger
# than one datagram came through the relay in pieces (the client verified
# the 3-certificate chain against the root, or the handshake would fail)

my @cert_out = map { $_->{out} } grep { $_->{name} =~ /^cert/ } @runs;
ok(!grep({ /certificate verify failed|FAILED:/ } @cert_out),
	'cert: chain verified');

###############################################################################

# a seed makes a run repeatable: one client, same seed, same decisions

my @again;

for (1 .. 2) {
	my $relay = udp_relay($t, $psk_port, '-d', 20, '-r', 20, '-D', 10,
		'-s', 7);

	# the nocookie exchange: one datagram each way, or none; each client
	# waits long enough for a reply held (100 ms) both ways, so that no
	# count depends on how fast nginx answers (under ASan, or a loaded
	# machine)

	exchange(client($relay->{port}), client_hello(random => random(32)),
		0.6) for 1 .. 20;

	sleep 0.5;
	push @again, udp_relay_stop($t, $relay)->{line};
}

ok(defined $again[0] && $again[0] =~ /^relayed \d+/, 'seed: summary')
	or diag(explain \@again);

# each exchange is from a new client (a new port) with its own draws,
# so the two runs of 20 clients give the same counts

is($again[1], $again[0], 'seed: same seed, same drops');

###############################################################################

# every datagram duplicated, none lost: everything works, and once

my $mark = log_mark($t);
my $relay = udp_relay($t, $psk_port, '-D', 100);

my ($out, $rc) = dtls_client($t, { timeout => 20 },
	'-c', "127.0.0.1:$relay->{port}", @psk, '-m', 'echo', '-n', 5,
	'-t', 5000);

like($out, qr/^echo ok n=5$/m, 'dup 100%: echoes');
is($rc, 0, 'dup 100%: exit code');

my @recv = $out =~ /^recv (.*)$/mg;
is_deeply(\@recv, [ map { "be:hello-$_" } 1 .. 5 ],
	'dup 100%: each reply once, in order')
	or diag($out);
like($out, qr/^close_notify received$/m, 'dup 100%: close_notify');

my $stats = udp_relay_stop($t, $relay);
ok($stats->{relayed} && $stats->{duplicated} == $stats->{relayed}
	&& $stats->{dropped} == 0 && $stats->{reordered} == 0,
	'dup 100%: relay duplicated every datagram')
	or diag($stats->{line});

# the access log: the backend got each datagram once (5 x "hello-N",
# 35 bytes) and answered each once ("be:" + 7 bytes, 50 bytes), the
# client got 50 bytes of data

my $from = client_port($t, $mark);

ok(wait_for($t, sub { access_line($t, $from) }, 5),
	'dup 100%: access log line');

my $line = access_line($t, $from) // '';
like($line, qr/^\d+ 200 \d+ \d+ 35 50$/, 'dup 100%: bytes, once each')
	or diag($line);

is(scalar(grep_log($t, qr/DTLS handshake failed|DTLS session failed/,
	$mark)), 0, 'dup 100%: no failure logged');

###############################################################################

$t->stop();

is(log_alerts($t), '', 'no alerts');

###############################################################################

# the access log line of a session from the relay's port


###############################################################################
