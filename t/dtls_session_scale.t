#!/usr/bin/perl

# dtls_session_scale: issue 12's proof at its scale.  500 sessions, each
# echoing every 100 ms, through three reloads (the second adds an identity
# to the PSK file), then another 500 through a worker killed with SIGKILL:
# no new handshake, no session dead, echoes lost only while in flight
# (reported); then 1,000 devices hold a session, stay silent past
# proxy_timeout and send: all answered, no handshake.
# t/dtls_session_zone.t has the zone's behaviours with a few sessions;
# this file has the load, its file limits and its time: some 17 s, under
# ASan too (the load is paced), so the counts are the same there.

###############################################################################

use warnings;
use strict;

use Test::More;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::Nginx;
use Test::Nginx::DTLS;

use JSON::PP qw/ decode_json /;
use POSIX qw/ WNOHANG /;
use Time::HiRes qw/ sleep /;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $N = 500;
my $HELD = 1000;
my $PACE = 100;

# each client session is a socket of dtls_load's (which raises its soft
# limit to the hard one); each nginx session an upstream socket of a
# worker's, whose limit worker_rlimit_nofile raises

my $NOFILE = 4096;
my $hard = `sh -c 'ulimit -Hn'`;
chomp $hard;

plan(skip_all => "the hard file limit is $hard, $NOFILE needed")
	if $hard ne 'unlimited' && $hard < $NOFILE;

my $t = Test::Nginx->new()->has(qw/stream udp/)->has_module('dtls');

tool($t, qw/ dtls_client dtls_load udp_echo /);

my %key = map { $_ => hexkey() } qw/ bench dev-2 /;

psk(qw/ bench /);

$t->write_file_expand('nginx.conf', <<"EOF");

worker_processes  2;
worker_rlimit_nofile  $NOFILE;
worker_shutdown_timeout  1s;

events {
    worker_connections  4096;
}

stream {
    # not debug: the load would log faster than nginx serves

    error_log   %%TESTDIR%%/error.log  info;

    log_format  scale  '\$server_port \$pid \$dtls_session_continued '
                       '\$dtls_psk_identity';

    access_log  %%TESTDIR%%/access.log  scale;

    dtls_psk_file  %%TESTDIR%%/psk;

    server {
        listen             127.0.0.1:%%PORT_8980_UDP%% udp reuseport;
        dtls               on;
        dtls_session_zone  echo:2m;
        proxy_pass         127.0.0.1:%%PORT_8982_UDP%%;
    }

    server {
        listen             127.0.0.1:%%PORT_8981_UDP%% udp reuseport;
        dtls               on;
        dtls_session_zone  held:4m;
        proxy_timeout      1s;
        proxy_pass         127.0.0.1:%%PORT_8982_UDP%%;
    }
}

EOF

udp_echo($t, '127.0.0.1:' . port(8982, udp => 1));
$t->run()->plan(30);

my $echo = port(8980, udp => 1);
my $held = port(8981, udp => 1);

###############################################################################

# $N sessions, an echo every 100 ms each, through three reloads, the
# second with an identity added

my @first = workers($t);

my $r = paced(sub {
	my $reloads = 0;

	sleep 1.5;
	$reloads++ if reload_wait($t);
	sleep 1.5;
	psk(qw/ bench dev-2 /);
	$reloads++ if reload_wait($t);
	sleep 1.5;
	$reloads++ if reload_wait($t);
	is($reloads, 3, 'three reloads, each with new workers');
	sleep 2.5;

	my ($out) = dtls_client($t, '-c', "127.0.0.1:$echo", '-i', 'dev-2',
		'-k', $key{'dev-2'}, '-m', 'echo', '-n', 1);
	like($out, qr/^echo ok n=1$/m, 'identity added by a reload under load');
}, '3 reloads');

is($r->{reconnects}, 0, 'reloads: no session dead');
is($r->{failures_total}, 0, 'reloads: no echo failed');

# an echo lost is resent after 1 s: fewer than one a session over the
# reloads, where a session dead for a while would lose at least one each

ok(($r->{retransmissions_echo} // $N) < $N, 'reloads: echoes lost only in '
	. 'flight');

my @lines = grep { / bench$/ } grep { /^$echo / }
	split /\n/, $t->read_file('access.log');

is(scalar(grep { / \. / } @lines), $N, "reloads: $N handshakes, none after");
ok(!grep({ / \. / && !from(\@first, $_) } @lines),
	'reloads: handshakes only in the first workers');

# every session continued in each later generation of workers

ok(scalar(grep { / c / } @lines) >= 3 * $N, 'reloads: sessions continued');

# another $N sessions, one of the workers killed

my $mark = length $t->read_file('access.log');
my ($respawned, @before);

$r = paced(sub {
	sleep 1.5;

	@before = workers($t);
	kill 'KILL', $before[0];

	wait_for($t, sub {
		($respawned) = grep { my $w = $_; !grep { $_ == $w } @before }
			workers($t);
		return $respawned;
	}, 10);
	ok($respawned, 'a worker killed, another started');

	sleep 2.5;
}, 'a SIGKILL');

is($r->{reconnects}, 0, 'SIGKILL: no session dead');
is($r->{failures_total}, 0, 'SIGKILL: no echo failed');
ok(($r->{retransmissions_echo} // $N) < $N, 'SIGKILL: echoes lost only in '
	. 'flight');

@lines = grep { /^$echo / }
	split /\n/, substr($t->read_file('access.log'), $mark);

# the killed worker logged none of its sessions

ok(scalar(grep { / \. / } @lines) <= $N, "SIGKILL: $N handshakes at most");
ok(!grep({ / \. / && from([ $respawned ], $_) } @lines),
	'SIGKILL: no handshake in the respawned worker');
ok(scalar(grep { / c / && from([ $respawned ], $_) } @lines) > 0,
	'SIGKILL: the killed worker\'s sessions continued in the respawned one');

###############################################################################

# $HELD devices: each a session and an echo, 2 s of silence (their nginx
# sessions end at proxy_timeout, 1 s), then an echo each, 50 at a time

my ($out) = run_tool($t, { timeout => 60 }, 'dtls_load', '-c',
	"127.0.0.1:$held", '-m', 'hold', '-N', $HELD, '-n', 50, '-H', 2,
	'-i', 'bench', '-k', $key{bench}, '-t', 5000);
my ($json) = grep { /"done"/ } split /\n/, $out;
$r = eval { decode_json($json // '{}') } // {};

diag(sprintf('%d devices held %.1f s, set up in %.1f s, woken in %.1f s: '
	. '%d answered, %d after a handshake, %d failed', $r->{sessions} // 0,
	$r->{held_s} // 0, $r->{setup_s} // 0, $r->{wake_s} // 0,
	$r->{wake_answered} // 0, $r->{wake_handshakes} // 0,
	$r->{wake_failed} // 0));

is($r->{sessions}, $HELD, "$HELD devices held");
is($r->{lost}, 0, 'none closed while silent');
is($r->{wake_answered}, $HELD, 'all answered after their silence');
is($r->{wake_handshakes}, 0, 'no new handshake');

@lines = grep { /^$held / } split /\n/, $t->read_file('access.log');

is(scalar(grep { / \. / } @lines), $HELD, "$HELD handshakes, no more");
ok(scalar(grep { / c / } @lines) >= $HELD,
	'each continued from the zone after proxy_timeout');

###############################################################################

$t->stop();

unlike($t->read_file('error.log') =~ s/^.*exited on signal 9\n//mgr,
	qr/\[(alert|crit|emerg)\]/, 'no alert in the error log but SIGKILL\'s');

###############################################################################

# $N sessions echoing every $PACE ms; once all are established, the
# events, the last of them 2.5 s before the end: an echo not answered in
# 2 s (-t; resent after 1 s) fails the session within the measurement;
# then the load's result, reported

sub paced {
	my ($events, $what) = @_;

	my $load = daemon($t, tool($t, 'dtls_load'), '-c', "127.0.0.1:$echo",
		'-m', 'echo', '-n', $N, '-R', $PACE, '-w', 0, '-d', 60,
		'-i', 'bench', '-k', $key{bench}, '-t', 2000, '-v');

	ok(wait_for($t, sub { daemon_output($t, $load) =~ /measuring/ }, 30),
		"$what: $N sessions established");

	my $drops = listen_drops($echo);

	$events->();

	kill 'TERM', $load;
	wait_for($t, sub { waitpid($load, WNOHANG) != 0 }, 20);

	my ($json) = daemon_output($t, $load) =~ /^(\{.*"mode".*)$/m;
	my $r = eval { decode_json($json // '{}') } // {};

	diag(sprintf('%d sessions, paced %d ms, through %s in %.1f s: %d '
		. 'echoes (%.0f/s), %d lost in flight (resent; the kernel dropped '
		. '%d on the listening sockets meanwhile), %d late replies, '
		. '%d reconnects, %d failures', $r->{sessions} // 0, $PACE, $what,
		$r->{seconds} // 0, $r->{echoes} // 0, $r->{echoes_per_s} // 0,
		$r->{retransmissions_echo} // 0, listen_drops($echo) - $drops,
		$r->{late_replies} // 0, $r->{reconnects} // 0,
		$r->{failures_total} // 0));

	# continuously: at least 80% of the paced rate throughout

	is($r->{sessions}, $N, "$what: $N sessions measured");
	is($r->{handshakes}, 0, "$what: no handshake while measured");
	ok(($r->{echoes} // 0)
		>= 0.8 * $N * ($r->{seconds} // 0) * 1000 / $PACE,
		"$what: echoing continuously");

	return $r;
}

# the "drops" column of /proc/net/udp, summed over the sockets on a port
# (one a worker, with reuseport)

sub listen_drops {
	my ($port) = @_;

	my $local = sprintf '0100007F:%04X', $port;
	my $drops = 0;

	for (split /\n/, $t->read_file('/proc/net/udp')) {
		my @f = split ' ';
		$drops += $f[-1] if @f > 2 && $f[1] eq $local;
	}

	return $drops;
}

# whether an access log line is one of these workers'

sub from {
	my ($pids, $line) = @_;

	my $pid = (split / /, $line)[1];
	return grep { $_ == $pid } @$pids;
}

sub psk {
	psk_file($t, 'psk', join '', map { "$_:$key{$_}\n" } @_);
}

###############################################################################
