#!/usr/bin/perl

# dtls_connection_id (RFC 9146) with Mbed TLS 3.6's ssl_client2
# (build/tools/mbedtls_client, scripts/interop-deps.sh mbedtls) as the
# client: the CID negotiated (the default length and length=8, a client
# that asks for none, a client without CID), tls12_cid records both ways
# with PSK-AES128-CCM8 and a GCM suite, a session resumed with a ticket,
# through 20% loss and with the server's last flight lost; a client whose
# source port changes every 10 datagrams (t/tools/udp_relay -b) for
# 1,000 echoes, with no new handshake and one nginx session per worker,
# also across a reload; a spoofed CID record (bad tag), a replayed one
# and one older than the newest, from new addresses, move nothing;
# nginx -t refuses dtls_connection_id without dtls_session_zone, and
# invalid values.

###############################################################################

use warnings;
use strict;

use Test::More;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::Nginx;
use Test::Nginx::DTLS;
use Test::DTLS::Mbedtls;

use POSIX qw/ WNOHANG /;
use Time::HiRes qw/ sleep /;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Nginx->new()->has(qw/stream udp/)->has_module('dtls');

tool($t, qw/ udp_echo udp_relay /);

my $client = mbedtls_client();

my $key = hexkey();

psk_file($t, 'psk', "dev-1:$key\n");

$t->write_file_expand('nginx.conf', <<'EOF');

worker_processes  2;
worker_shutdown_timeout  1s;

events {
}

stream {
    error_log   %%TESTDIR%%/error.log  info;

    log_format  cid  '$server_port $dtls_session_continued $dtls_cipher '
                     '$dtls_zone_moved $dtls_zone_dropped_auth '
                     '$dtls_zone_dropped_replay';

    access_log  %%TESTDIR%%/access.log  cid;

    dtls_psk_file       psk;
    dtls_connection_id  on;
    proxy_timeout       1s;

    server {
        listen             127.0.0.1:%%PORT_8980_UDP%% udp reuseport;
        dtls               on;
        dtls_session_zone  a:1m;
        proxy_pass         127.0.0.1:%%PORT_8990_UDP%%;
    }

    server {
        listen              127.0.0.1:%%PORT_8981_UDP%% udp reuseport;
        dtls                on;
        dtls_session_zone   b:1m;
        dtls_connection_id  on length=8;
        proxy_pass          127.0.0.1:%%PORT_8990_UDP%%;
    }

    server {
        listen             127.0.0.1:%%PORT_8982_UDP%% udp reuseport;
        dtls               on;
        dtls_session_zone  c:1m;
        proxy_pass         127.0.0.1:%%PORT_8990_UDP%%;
    }

    server {
        listen             127.0.0.1:%%PORT_8983_UDP%% udp reuseport;
        dtls               on;
        dtls_session_zone  d:1m;
        proxy_pass         127.0.0.1:%%PORT_8990_UDP%%;
    }

    server {
        listen             127.0.0.1:%%PORT_8984_UDP%% udp reuseport;
        dtls               on;
        dtls_session_zone  e:1m;
        proxy_pass         127.0.0.1:%%PORT_8990_UDP%%;
    }
}

EOF

$t->write_file_expand('nozone.conf', <<'EOF');

events {
}

stream {
    dtls_psk_file  psk;

    server {
        listen              127.0.0.1:%%PORT_8985_UDP%% udp;
        dtls                on;
        dtls_connection_id  on;
        proxy_pass          127.0.0.1:%%PORT_8990_UDP%%;
    }
}

EOF

udp_echo($t, '127.0.0.1:' . port(8990, udp => 1));
$t->run()->plan(39);

my @suites = (
	[ 'PSK-AES128-CCM8', 'TLS-PSK-WITH-AES-128-CCM-8' ],
	[ 'PSK-AES128-GCM-SHA256', 'TLS-PSK-WITH-AES-128-GCM-SHA256' ],
);

###############################################################################

# nginx -t

my $mark;
my ($rc, $out) = test_config($t, 'nozone.conf');
ok($rc != 0 && $out =~ /"dtls_connection_id" in \S+nozone\.conf:11 /
	. qr/needs "dtls_session_zone"/, 'nginx -t: no dtls_session_zone refused')
	or diag("exit code $rc:\n$out");

for my $bad ([ 'maybe', qr/invalid value "maybe"/ ],
	[ 'on length=0', qr/invalid CID length "length=0"/ ],
	[ 'on length=9', qr/invalid CID length "length=9"/ ],
	[ 'on size=6', qr/invalid parameter "size=6"/ ],
	[ 'off length=6', qr/invalid parameter "length=6"/ ])
{
	my ($value, $re) = @$bad;

	my $zone = "dtls_connection_id  $value;\n"
		. "        dtls_session_zone   z:1m;";

	(my $conf = $t->read_file('nozone.conf'))
		=~ s/dtls_connection_id  on;/$zone/;
	$t->write_file('bad.conf', $conf);

	($rc, $out) = test_config($t, 'bad.conf');
	ok($rc != 0 && $out =~ $re, "nginx -t: \"$value\" refused")
		or diag("exit code $rc:\n$out");
}

# negotiation: the server's CID of its length, echoes both ways in the
# tls12_cid format (ssl_client2 takes no other once it is negotiated)

for my $s (@suites) {
	my ($suite, $name) = @$s;

	($out, $rc) = client(port(8980, udp => 1), $name, 20,
		'cid=1', 'cid_val=a1a2a3a4');
	ok($rc == 0 && cid_len($out) == 6 && echoed($out) == 20,
		"$suite: CID of 6 bytes, 20 echoes")
		or diag("exit code $rc:\n$out");
}

($out, $rc) = client(port(8981, udp => 1), $suites[0][1], 20, 'cid=1',
	'cid_val=a1a2a3a4');
ok($rc == 0 && cid_len($out) == 8 && echoed($out) == 20,
	'length=8: CID of 8 bytes, 20 echoes') or diag("exit code $rc:\n$out");

# a client that asks for no CID of its own gets records without one

($out, $rc) = client(port(8980, udp => 1), $suites[1][1], 20, 'cid=1');
ok($rc == 0 && cid_len($out) == 6 && echoed($out) == 20,
	'client with a zero-length CID: 20 echoes')
	or diag("exit code $rc:\n$out");

($out, $rc) = client(port(8980, udp => 1), $suites[0][1], 20, 'cid=0');
ok($rc == 0 && !defined cid_len($out) && echoed($out) == 20,
	'client without CID: 20 echoes') or diag("exit code $rc:\n$out");

# a client's CID longer than 8 bytes is not negotiated: records as before

$mark = log_mark($t);
($out, $rc) = client(port(8980, udp => 1), $suites[0][1], 20, 'cid=1',
	'cid_val=0102030405060708090a0b0c0d0e0f10');
ok($rc == 0 && $out =~ /Connection ID was rejected by the server/
	&& echoed($out) == 20
	&& wait_log($t, qr/connection ID of 16 bytes is longer than 8/, 2,
		$mark),
	'client CID of 16 bytes: not negotiated, 20 echoes')
	or diag("exit code $rc:\n$out");

# an abbreviated handshake (a ticket): the server's Finished comes first,
# sealed with the CID from the resumed session's master secret

($out, $rc) = client(port(8980, udp => 1), $suites[1][1], 2, 'cid=1',
	'cid_val=a1a2a3a4', 'reconnect=1', 'reco_delay=0', 'tickets=1');
ok($rc == 0 && $out =~ /Reconnecting with saved session\.\.\. ok/
	&& echoed($out) == 3, 'resumed with a ticket: echoes')
	or diag("exit code $rc:\n$out");

# a lossy network: the handshake's translated Finished messages go again
# as flights are retransmitted, and lost requests are sent again (the
# client has max_resend for its whole run)

for my $seed (1 .. 3) {
	my $lossy = udp_relay($t, port(8980, udp => 1), '-d', 20, '-s', $seed);

	($out, $rc) = client($lossy->{port}, $suites[$seed % 2][1], 30,
		'cid=1', 'cid_val=e1e2e3', 'max_resend=200', 'read_timeout=300',
		'hs_timeout=100-3000');

	my $l = udp_relay_stop($t, $lossy);

	ok($rc == 0 && cid_len($out) == 6 && echoed($out) >= 30,
		"20% loss, seed $seed: handshake and 30 echoes "
		. "($l->{dropped} of $l->{relayed} datagrams dropped)")
		or diag("exit code $rc:\n" . substr($out, -3000));
}

# the server's last flight (its ChangeCipherSpec and Finished, sealed
# with the client's CID) lost: the client's Finished again, in its CID
# record, gets the kept flight again

{
	my $lossy = udp_relay($t, port(8980, udp => 1), '-R', 3);

	($out, $rc) = client($lossy->{port}, $suites[0][1], 5, 'cid=1',
		'cid_val=f1f2', 'hs_timeout=200-3000');

	my $l = udp_relay_stop($t, $lossy);

	ok($rc == 0 && cid_len($out) == 6 && echoed($out) == 5,
		"server's last flight lost: resent ($l->{relayed} datagrams)")
		or diag("exit code $rc:\n" . substr($out, -3000));
}

# the client's records carry the server's CID, ours the client's: the
# record expansion ssl_client2 computes grows by both, and the inner type

my ($plain) = client(port(8980, udp => 1), $suites[0][1], 1, 'cid=0')
	=~ /Record expansion is (\d+)/;
my ($with) = client(port(8980, udp => 1), $suites[0][1], 1, 'cid=1',
	'cid_val=a1a2a3a4') =~ /Record expansion is (\d+)/;
ok(defined $plain && defined $with && $with > $plain + 4,
	"record expansion with CIDs: $with bytes, without: $plain");

###############################################################################

# a NAT that rebinds every 10 datagrams, for 1,000 echoes

my $port = port(8982, udp => 1);
my $relay = udp_relay($t, $port, '-b', 10);
my $amark = access_mark($t);

$mark = log_mark($t);

# (its close_notify, were it the first datagram of a new port, would
# end the session there, not move it)

($out, $rc) = client($relay->{port}, $suites[0][1], 1000, 'cid=1',
	'cid_val=b1b2b3b4b5b6', 'skip_close_notify=1');

my $r = udp_relay_stop($t, $relay);

my $moves = grep { /DTLS session moved to a new address/ }
	split /\n/, error_log($t, $mark);

is($rc, 0, 'rebinding: client exit code');
is(echoed($out), 1000, 'rebinding: 1000 echoes answered');
ok(($r->{rebound} // 0) >= 99, "rebinding: $r->{rebound} new source ports");

# with each new port; but a port the kernel gives again while nginx still
# has a session for it (proxy_timeout) goes on in that session, unmoved

ok($moves <= $r->{rebound} && $moves >= $r->{rebound} * 0.9,
	"rebinding: the session moved $moves times");

# the worker of the handshake moves its nginx session; the other one
# continues the session from the zone once, then moves that one
# (t/dtls_cid_move.t has one worker)

my @log = wait_sessions($t, $port, $amark, 2);
is(scalar(grep { /^$port \. / } @log), 1, 'rebinding: 1 handshake');
is(scalar(grep { /^$port c / } @log), 1,
	'rebinding: continued from the zone once, by the other worker');

###############################################################################

# a spoofed record (bad tag) and a replayed one while the client echoes,
# and, once it is done, one that authenticates but is older than the
# newest (lost on its way, the request sent again after it), from new
# addresses

$port = port(8983, udp => 1);
my $tap = $t->testdir() . '/tap.hex';
$mark = log_mark($t);
$amark = access_mark($t);

($rc, $out, my $during) = spoof_run($t, $port, $tap, $key, $suites[1][1]);

# what a move would log, and its nginx session's line (proxy_timeout)

sleep(1.5);

ok($during < 1000, "spoof: sent while the client echoed ($during records)");
ok($rc == 0 && echoed($out) == 1000, 'spoof: the client unaffected')
	or diag("exit code $rc:\n" . substr($out, -2000));
is(scalar(grep { /DTLS session moved/ } split /\n/, error_log($t, $mark)),
	0, 'spoof: the session did not move');

@log = wait_sessions($t, $port, $amark, 1);
my ($moved, $auth, $replay) = ($log[-1] // '') =~ / (\d+) (\d+) (\d+)$/;
ok(defined $auth && $auth >= 1, 'spoof: counted as failing authentication');
ok(defined $replay && $replay >= 2,
	'spoof: the replay and the older record counted');
is($moved, 0, 'spoof: no move counted');
is(scalar(grep { /^$port c / } @log), 0, 'spoof: no session continued');

###############################################################################

# rebinding through a reload: the zone finds the session by its CID in
# the new workers

$port = port(8984, udp => 1);
unlink $tap;
$relay = udp_relay($t, $port, '-b', 10, '-x', $tap);
$amark = access_mark($t);

# a request in flight as its nginx session ends with its old worker loses
# its reply: the client sends it again (max_resend), in a new record

my $pid = daemon($t, $client, mbedtls_psk($relay->{port}, $key,
	$suites[0][1], 4000, 'cid=1', 'cid_val=d1d2d3d4', 'max_resend=3'));

wait_for($t, sub { tapped() >= 100 }, 10);

$mark = log_mark($t);
my %old = map { $_ => 1 } workers($t);
my $reloaded = tapped();
ok(reload_wait($t), 'reload: new workers');

ok(wait_for($t, sub { waitpid($pid, WNOHANG) != 0 }, 40), 'reload: done');
$rc = $? >> 8;
$out = daemon_output($t, $pid);
$r = udp_relay_stop($t, $relay);

ok($rc == 0 && echoed($out) == 4000,
	"reload: 4000 echoes, the reload after $reloaded records")
	or diag("exit code $rc:\n" . substr($out, -2000));

# moves the new workers made, by the CID they found in the zone

$moves = grep { /\[info\] (\d+)#\d+: .* DTLS session moved/ && !$old{$1} }
	split /\n/, error_log($t, $mark);
ok($moves >= 10, "reload: $moves moves by the new workers");

@log = wait_sessions($t, $port, $amark, 2);
is(scalar(grep { /^$port \. / } @log), 1, 'reload: 1 handshake');

$t->stop();

# but nginx -t's

is(join("\n", grep { !/needs "dtls_session_zone"|invalid/ } split /\n/,
	log_alerts($t)), '', 'no alerts in the error log');

###############################################################################

sub client {
	my ($port, @args) = @_;
	return mbedtls($t, $port, $key, @args);
}

# the server's CID's length, as the client saw it

sub cid_len {
	my ($out) = @_;
	return $out =~ /\(initial handshake\) Peer CID \(length (\d+) Bytes\)/
		? $1 : undef;
}

# the client's datagrams the relay passed on, in hex

sub tapped {
	return tap_lines($tap);
}


###############################################################################
