#!/usr/bin/perl

# dtls_connection_id (RFC 9146) in one worker: a session moved by its CID
# stays in its nginx session.  Mbed TLS 3.6's ssl_client2
# (build/tools/mbedtls_client) behind t/tools/udp_relay -b 10, a NAT whose
# binding changes every 10 datagrams, echoes 1,000 times through
# udp_echo -s, which tells each reply which of nginx's sockets it came
# from: no new handshake, every echo answered at the client's new port,
# one nginx session in the access log and one source port of nginx's at
# the backend.  A spoofed CID record (bad tag), a replayed one and one
# older than the newest, from new addresses, move nothing: the live
# session answers at the real address, through the same socket.  With
# dtls_proxy_protocol the header carries the client's new address after
# each move (build/tools/pp_backend_go parses it).  A session of the zone
# (its nginx session ended) moves to the port of another session's entry,
# and by the record after a forged one in its datagram; one moves to the
# port of a live nginx session whose client has gone, which gives way
# once that client has been silent for 30 s.
# A client's new handshake from its port (a new CID) goes on as before.

###############################################################################

use warnings;
use strict;

use Test::More;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::Nginx;
use Test::Nginx::DTLS;
use Test::DTLS::Mbedtls;

use IO::Socket::INET;
use Time::HiRes qw/ sleep /;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Nginx->new()->has(qw/stream udp/)->has_module('dtls');

my $echo = tool($t, 'udp_echo');
tool($t, 'udp_relay');

my $client = mbedtls_client();
my $go = "$Test::Nginx::REPO/build/tools/pp_backend_go";

my $key = hexkey();

psk_file($t, 'psk', "dev-1:$key\n");

$t->write_file_expand('nginx.conf', <<'EOF');

worker_processes  1;
worker_shutdown_timeout  1s;

events {
}

stream {
    error_log   %%TESTDIR%%/error.log  info;

    log_format  cid  '$server_port $dtls_session_continued $remote_port '
                     '$dtls_zone_moved $dtls_zone_dropped_auth '
                     '$dtls_zone_dropped_replay';

    access_log  %%TESTDIR%%/access.log  cid;

    dtls_psk_file       psk;
    dtls_connection_id  on;
    proxy_timeout       1s;

    server {
        listen             127.0.0.1:%%PORT_8980_UDP%% udp;
        dtls               on;
        dtls_session_zone  a:1m;
        proxy_pass         127.0.0.1:%%PORT_8990_UDP%%;
    }

    server {
        listen             127.0.0.1:%%PORT_8981_UDP%% udp;
        dtls               on;
        dtls_session_zone  b:1m;
        proxy_pass         127.0.0.1:%%PORT_8990_UDP%%;
    }

    server {
        listen               127.0.0.1:%%PORT_8982_UDP%% udp;
        dtls                 on;
        dtls_session_zone    c:1m;
        dtls_proxy_protocol  on;
        proxy_pass           127.0.0.1:%%PORT_8991_UDP%%;
    }

    server {
        listen             127.0.0.1:%%PORT_8983_UDP%% udp;
        dtls               on;
        dtls_session_zone  d:1m;
        proxy_pass         127.0.0.1:%%PORT_8990_UDP%%;
    }

    server {
        listen             127.0.0.1:%%PORT_8984_UDP%% udp;
        dtls               on;
        dtls_session_zone  e:1m;
        proxy_timeout      60s;
        proxy_pass         127.0.0.1:%%PORT_8990_UDP%%;
    }
}

EOF

my $epid = daemon($t, $echo, '-l', '127.0.0.1:' . port(8990, udp => 1),
	'-s');
wait_for($t, sub { daemon_output($t, $epid) =~ /udp_echo ready/ }, 5)
	or die "udp_echo did not start\n";

my $gpid;

if (-x $go) {
	$gpid = daemon($t, $go, '--listen', '127.0.0.1:' . port(8991, udp => 1));
	wait_for($t, sub { daemon_output($t, $gpid) =~ /pp_backend ready/ }, 10)
		or die "pp_backend_go did not start\n";
}

$t->run()->plan(29);

my $suite = 'TLS-PSK-WITH-AES-128-CCM-8';

###############################################################################

# a NAT that rebinds every 10 datagrams, for 1,000 echoes

my $port = port(8980, udp => 1);
my $relay = udp_relay($t, $port, '-b', 10);
my $amark = access_mark($t);
my $mark = log_mark($t);

# (its close_notify, were it the first datagram of a new port, would
# end the session there, not move it)

my ($out, $rc) = client($relay->{port}, 1000, 'cid=1',
	'cid_val=b1b2b3b4b5b6', 'skip_close_notify=1');

my $r = udp_relay_stop($t, $relay);

my $moves = grep { /DTLS session moved to a new address/ }
	split /\n/, error_log($t, $mark);
my @echoed = echo_ports($out);
my %ports = map { $_ => 1 } @echoed;

is($rc, 0, 'rebinding: client exit code');
is(scalar @echoed, 1000, 'rebinding: 1000 echoes answered');
ok(($r->{rebound} // 0) >= 99, "rebinding: $r->{rebound} new source ports");
ok($moves == $r->{rebound}, "rebinding: the session moved $moves times");
is(scalar keys %ports, 1, 'rebinding: one source port of nginx\'s at the '
	. 'backend (' . join(' ', sort keys %ports) . ')');

# the session's line once proxy_timeout ends it, and no other

my @log = wait_sessions($t, $port, $amark, 1);
sleep(0.5);
@log = grep { /^$port / } access_lines($t, $amark);

is(scalar @log, 1, 'rebinding: one nginx session')
	or diag(join("\n", @log[0 .. ($#log > 4 ? 4 : $#log)]));
like($log[0] // '', qr/^$port \. \d+ $moves 0 0$/,
	'rebinding: its handshake, and every move in its line');

###############################################################################

# a spoofed record (bad tag) and a replayed one while the client echoes,
# and, once it is done, one that authenticates but is older than the
# newest (lost on its way, the request sent again after it), each from a
# new address

$port = port(8981, udp => 1);
my $tap = $t->testdir() . '/tap.hex';
$mark = log_mark($t);
$amark = access_mark($t);

($rc, $out, my $during) = spoof_run($t, $port, $tap, $key, $suite);

@echoed = echo_ports($out);
%ports = map { $_ => 1 } @echoed;

ok($during < 1000, "spoof: sent while the client echoed ($during records)");
ok($rc == 0 && @echoed == 1000, 'spoof: the client unaffected')
	or diag("exit code $rc:\n" . substr($out, -2000));
is(scalar keys %ports, 1, 'spoof: one source port of nginx\'s at the backend');

@log = wait_sessions($t, $port, $amark, 1);
sleep(0.5);
@log = grep { /^$port / } access_lines($t, $amark);

is(scalar(grep { /DTLS session moved/ } split /\n/, error_log($t, $mark)),
	0, 'spoof: the session did not move');
is(scalar @log, 1, 'spoof: one nginx session');

my ($moved, $auth, $replay) = ($log[-1] // '') =~ / (\d+) (\d+) (\d+)$/;
ok(defined $auth && $auth >= 1, 'spoof: counted as failing authentication');
ok(defined $replay && $replay >= 2,
	'spoof: the replay and the older record counted');

###############################################################################

# dtls_proxy_protocol: the header of each datagram after a move carries
# the client's new port, as the backend parsed it

SKIP: {
skip "no $go (scripts/interop-deps.sh)", 2 unless $gpid;

$port = port(8982, udp => 1);
$relay = udp_relay($t, $port, '-b', 10);

($out, $rc) = client($relay->{port}, 100, 'cid=1', 'cid_val=a1a2',
	'skip_close_notify=1');

$r = udp_relay_stop($t, $relay);

my $line = qr/< Read from server: \d+ bytes read\s+pp parser=go /;
my @sports = $out =~ /$line.*? sport=(\d+)/g;
my %seen;
my $changes = grep { !$seen{$_}++ } @sports;

ok($rc == 0 && @sports == 100, 'proxy protocol: 100 echoes')
	or diag("exit code $rc:\n" . substr($out, -2000));
ok($changes == $r->{rebound} || $changes == $r->{rebound} + 1,
	"proxy protocol: $changes client ports in the headers, "
	. "$r->{rebound} rebindings");
}

###############################################################################

# sessions of the zone whose nginx sessions have ended (proxy_timeout),
# each client's last request lost on its way (-L), so the newest record
# of its session, sent here later: from the port of another session's
# entry (a NAT gives it to another device), and behind a forged record
# from a new port; each moves its session, and is answered there

$port = port(8983, udp => 1);
$amark = access_mark($t);

($out, $rc) = client($port, 2, 'cid=1', 'cid_val=e1', 'skip_close_notify=1');
my ($taken) = map { / (\d+) \d+ \d+ \d+$/ }
	wait_sessions($t, $port, $amark, 1);

my $n = tapped_run($port, 1000, 3);
my @lost = (newest($port, $n, 'cid_val=e2'), newest($port, $n, 'cid_val=e3'));

# the forged record: the newest's sequence number, higher, a bad tag

my $spoof = forged($lost[1]);

$mark = log_mark($t);

ok(defined $taken && udp_exchange($port, pack('H*', $lost[0]), $taken),
	"reused port: moved to another session's port ($taken), answered");
ok(udp_exchange($port, $spoof . pack('H*', $lost[1])),
	'a forged record first: moved by the next one, answered');
is(scalar(grep { /DTLS session moved/ } split /\n/, error_log($t, $mark)),
	2, 'both moves logged');

###############################################################################

# a session's newest record (its nginx session still live), from the
# port of another live nginx session whose client has gone (killed, no
# close_notify): while that client is not silent for 30 s (the shortest
# NAT binding), the record is dropped, so that a client cannot end
# another's live session with a record of its own from a spoofed source;
# then that nginx session leaves the port to the session that
# authenticates there, long before proxy_timeout (60s) would have ended
# it, and the record moves its session's nginx session there

$port = port(8984, udp => 1);
$n = tapped_run($port, 1000, 3);
tapped_run($port, $n, 3, 'max_resend=0', 'read_timeout=300', 'cid_val=e5');
my $lost = (tapped())[-1];

my $gone = dtls_lines($t, '-c', "127.0.0.1:$port", '-i', 'dev-1', '-k', $key,
	'-t', '2000');
my $answer = join ' ', map { $gone->io($_) // 'none' } 'handshake',
	'send live';
$taken = udp_port_of($gone->{pid});
kill 'KILL', $gone->{pid};
$gone->close();

$mark = log_mark($t);

ok($answer =~ /^handshake ok .* recv \d+ live$/ && defined $taken,
	"live session's port: $taken") or diag($answer);
ok(!udp_exchange($port, pack('H*', $lost), $taken),
	"live session's port: kept while its client is not silent");
unlike(error_log($t, $mark), qr/address taken/,
	'live session\'s port: no session ended');

sleep 31;

ok(udp_exchange($port, pack('H*', $lost), $taken),
	"live session's port: the record moved its session there, answered");
like(error_log($t, $mark),
	qr/address taken by another session's connection ID.*session moved/s,
	'live session\'s port: both logged');

###############################################################################

# a client that handshakes again from its port, without close_notify
# (reconnect_hard): the new handshake beside its live session mints a
# new CID, whose records are the new handshake's, not another session's

$port = port(8980, udp => 1);
$mark = log_mark($t);

($out, $rc) = client($port, 3, 'cid=1', 'cid_val=f1', 'reconnect=1',
	'reconnect_hard=1', 'reco_delay=0', 'skip_close_notify=1',
	'dgram_packing=0');

# (then, reconnect=1, a resumption from a new port, a new nginx session)

@echoed = echo_ports($out);

ok($rc == 0 && $out =~ /Restarting connection from same port\.\.\. ok/
	&& @echoed == 5 && !grep({ $_ ne $echoed[0] } @echoed[1 .. 3]),
	'a new handshake from the port: echoes after it, in its nginx session')
	or diag("exit code $rc:\n" . substr($out, -2000));
unlike(error_log($t, $mark), qr/address taken/,
	'a new handshake from the port: no other session seen');

$t->stop();

is(log_alerts($t), '', 'no alerts in the error log');

###############################################################################

sub client {
	my ($port, @args) = @_;
	return mbedtls($t, $port, $key, $suite, @args);
}

# a session whose client's datagram "lose" (its last of 3 exchanges) is
# lost: that datagram, in hex, once the session's nginx session has ended

sub newest {
	my ($port, $lose, @args) = @_;

	my $amark = access_mark($t);

	tapped_run($port, $lose, 3, 'max_resend=0', 'read_timeout=300', @args);
	wait_sessions($t, $port, $amark, 1);

	return (tapped())[-1];
}

# a client's run of n exchanges through a relay's tap (-L N, the Nth
# datagram lost): how many datagrams the tap saw

sub tapped_run {
	my ($port, $lose, $n, @args) = @_;

	unlink $tap;
	my $relay = udp_relay($t, $port, '-x', $tap, '-L', $lose);
	client($relay->{port}, $n, 'cid=1', 'skip_close_notify=1', @args);
	udp_relay_stop($t, $relay);

	return scalar tapped();
}

# a datagram sent to nginx from a local port (any, if none): whether a
# reply came there

sub udp_exchange {
	my ($port, $data, $local) = @_;

	my $s = IO::Socket::INET->new(Proto => 'udp', ReuseAddr => 1,
		PeerAddr => "127.0.0.1:$port",
		$local ? (LocalAddr => "127.0.0.1:$local") : ())
		or die "socket: $!\n";
	$s->send($data);

	my $reply = '';
	my $rin = '';
	vec($rin, fileno($s), 1) = 1;
	$s->recv($reply, 65536) if select($rin, undef, undef, 2);
	close $s;

	return length $reply > 0;
}

# the UDP port of a process's socket, from /proc

sub udp_port_of {
	my ($pid) = @_;

	my %inodes = map { (readlink($_) // '') =~ /^socket:\[(\d+)\]/ ? ($1, 1)
		: () } glob("/proc/$pid/fd/*");

	open my $fh, '<', '/proc/net/udp' or return undef;

	while (<$fh>) {
		my @f = split;
		return hex((split /:/, $f[1])[1]) if @f > 9 && $inodes{$f[9]};
	}

	return undef;
}

# the client's datagrams the relay passed on, in hex

sub tapped {
	return tap_lines($tap);
}


###############################################################################
