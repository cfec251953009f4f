#!/usr/bin/perl

# dtls_session_zone: DTLS sessions in shared memory outlive their nginx
# sessions.  20 devices silent past proxy_timeout are answered when they
# wake, with no new handshake (and, without a zone, are not); an identity
# a reload adds is served, one a reload removes is not continued;
# duplicated and corrupted records, and records of another session sent
# from a session's address, are dropped; a client's close_notify ends the
# session in the zone too.  The load (500 sessions through reloads and a
# SIGKILL, 1,000 sleepy devices) is t/dtls_session_scale.t's.

###############################################################################

use warnings;
use strict;

use Test::More;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::Nginx;
use Test::Nginx::DTLS;

use POSIX qw/ WNOHANG /;
use Time::HiRes qw/ sleep /;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Nginx->new()->has(qw/stream udp/)->has_module('dtls');

tool($t, qw/ dtls_client udp_echo udp_relay /);

my %key = map { $_ => join '', map { sprintf '%02x', int rand 256 } 1 .. 16 }
	qw/dev-1 dev-2/;

psk(qw/dev-1/);

$t->write_file_expand('nginx.conf', <<'EOF');

worker_processes  2;
worker_shutdown_timeout  1s;

events {
}

stream {
    error_log   %%TESTDIR%%/error.log  info;

    log_format  zone  '$server_port $dtls_session_continued '
                      '$dtls_psk_identity $dtls_cipher '
                      '$dtls_zone_dropped_auth $dtls_zone_dropped_replay '
                      '$bytes_received $upstream_bytes_sent';

    access_log  %%TESTDIR%%/access.log  zone;

    dtls_psk_file  %%TESTDIR%%/psk;

    server {
        listen             127.0.0.1:%%PORT_8980_UDP%% udp reuseport;
        dtls               on;
        dtls_session_zone  sessions:1m;
        proxy_timeout      1s;
        proxy_pass         127.0.0.1:%%PORT_8981_UDP%%;
    }

    server {
        listen             127.0.0.1:%%PORT_8982_UDP%% udp reuseport;
        dtls               on;
        proxy_timeout      1s;
        proxy_pass         127.0.0.1:%%PORT_8981_UDP%%;
    }
}

EOF

udp_echo($t, '127.0.0.1:' . port(8981, udp => 1));
$t->run()->plan(18);

my $zone = port(8980, udp => 1);
my $nozone = port(8982, udp => 1);

###############################################################################

# sleeping devices: an echo, 2.5 s of silence (the nginx session ends at
# proxy_timeout), another echo

my @devices = map { sleepy($zone) } 1 .. 20;
my @control = map { sleepy($nozone) } 1 .. 5;

ok(wait_for($t, sub { !grep { waitpid($_, WNOHANG) == 0 } @devices, @control },
	20), 'sleepy devices done');

is(scalar(grep { daemon_output($t, $_) =~ /^echo ok n=2$/m } @devices),
	20, 'zone: 20 of 20 devices answered after their silence');
is(scalar(grep { daemon_output($t, $_) =~ /^echo ok n=2$/m } @control),
	0, 'no zone: 0 of 5 answered after their silence');

my @lines = grep { /^$zone / } split /\n/, $t->read_file('access.log');
is(scalar(grep { / \. / } @lines), 20, 'zone: 20 handshakes, no more');
is(scalar(grep { / c dev-1 PSK-/ } @lines), 20,
	'zone: 20 sessions continued, with their variables');

###############################################################################

# an identity a reload adds, once the old workers, which read the old
# file, are gone

psk(qw/dev-1 dev-2/);
reload_wait($t);
wait_for($t, sub { workers($t) == 2 }, 5);

my $out = run_tool($t, 'dtls_client', '-c', "127.0.0.1:$zone", '-i',
	'dev-2', '-k', $key{'dev-2'}, '-m', 'echo', '-n', 1);
like($out, qr/^echo ok n=1$/m, 'identity added by a reload');

# an identity removed, and nginx reloaded: its session, in the zone, is
# not continued

my $gone = sleepy($zone, 'hello', 2500, 2, 'dev-2');
sleep 1;
psk(qw/dev-1/);
reload_wait($t);

wait_for($t, sub { waitpid($gone, WNOHANG) != 0 }, 10);
unlike(daemon_output($t, $gone), qr/^echo ok n=2$/m,
	'identity removed: its session not continued');
ok(grep_log($t, qr/PSK identity no longer in dtls_psk_file/),
	'identity removed: logged');

###############################################################################

# every datagram duplicated and preceded by a corrupted copy, through a
# sleep: each echo reaches the backend once

my $relay = udp_relay($t, $zone, '-D', 100, '-c', 100, '-K', '0');

$out = run_tool($t, 'dtls_client', '-c', "127.0.0.1:$relay->{port}",
	'-i', 'dev-1', '-k', $key{'dev-1'}, '-m', 'echo', '-n', 3,
	'-W', 1500, '-t', 5000, '-s', 'x' x 10);

like($out, qr/^echo ok n=3$/m, 'duplicated and corrupted: answered');

udp_relay_stop($t, $relay);

@lines = grep { /^$zone / } split /\n/, $t->read_file('access.log');
my @relayed = @lines[-2 .. -1];
is_deeply([ map { (split / /)[1, -1] } @relayed ], [ 'c', 12, 'c', 12 ],
	'each record reached the backend once');

my ($auth, $replay) = (split / /, $relayed[-1])[-4, -3];
ok($auth >= 3 && $replay >= 3, "dropped and counted: $auth forged, "
	. "$replay replayed");

###############################################################################

# records of another session, sent from a session's address (through a
# relay that sends every record of the second client from the first
# client's socket too), live and after the first's nginx session ended

my $before = @{[ split /\n/, $t->read_file('access.log') ]};
my $cross = cross_relay(port(8986, udp => 1), $zone);

# the first's records at 0, 1.5 and 3 s (each nginx session ends 1 s
# later), the second's at 0.3 (the first's nginx session live), 1.3 (no
# nginx session: looked up in the zone) and 2.3 s (live)

my $a = sleepy(port(8986, udp => 1), 'a' x 10, 1500, 3);
sleep 0.3;
my $b = sleepy(port(8986, udp => 1), 'b' x 10, 1000, 3);

wait_for($t, sub { !grep { waitpid($_, WNOHANG) == 0 } $a, $b }, 20);

like(daemon_output($t, $a), qr/^echo ok n=3$/m, 'another\'s records: answered');
like(daemon_output($t, $b), qr/^echo ok n=3$/m, 'the other: answered');

kill 'TERM', $cross;
waitpid($cross, 0);
ok($? >> 8 >= 2, 'records sent from another session\'s address');

# whichever nginx sessions the records came in, the backend got 6 of 12
# bytes

my @cross = split /\n/, $t->read_file('access.log');
my $sent = 0;
$sent += (split / /)[-1] for @cross[$before .. $#cross];
is($sent, 72, 'no record of another session\'s delivered');

###############################################################################

# close_notify ends the DTLS session: the zone forgets it

$out = run_tool($t, 'dtls_client', '-c', "127.0.0.1:$zone", '-i', 'dev-1',
	'-k', $key{'dev-1'}, '-m', 'echo', '-n', 1);
like($out, qr/^echo ok n=1$/m, 'a session, closed by the client');

$t->stop();

unlike($t->read_file('error.log'), qr/\[(alert|crit|emerg)\]/,
	'no alert in the error log');
like($t->read_file('error.log'), qr/client closed DTLS session/,
	'close_notify');

###############################################################################

sub sleepy {
	my ($port, $payload, $pause, $n, $identity) = @_;

	$identity //= 'dev-1';

	return daemon($t, tool($t, 'dtls_client'), '-c', "127.0.0.1:$port",
		'-i', $identity, '-k', $key{$identity}, '-m', 'echo', '-n', $n // 2,
		'-W', $pause // 2500, '-t', 3000, '-s', $payload // 'hello');
}

# a relay for two clients, each from a socket of its own; every
# application_data record of the second goes from the first's socket too.
# Exits with the number of such copies.

sub cross_relay {
	my ($listen, $upstream) = @_;

	my (@clients, %up);

	return rule_relay([ $listen ], sub {
		my ($r, $fh, $from, $buf) = @_;
		my $l = $r->{listen}[0];

		if ($fh != $l) {
			$l->send($buf, 0, $up{$fh});
			return;
		}

		my ($i) = grep { $clients[$_]{from} eq $from } 0 .. $#clients;

		if (!defined $i) {
			return if @clients == 2;
			my $u = $r->socket("127.0.0.1:$upstream");
			push @clients, { from => $from, up => $u };
			$up{$u} = $from;
			$i = $#clients;
		}

		$clients[$i]{up}->send($buf);

		if ($i == 1 && ord($buf) == 23) {
			$clients[0]{up}->send($buf);
			$r->{count}++;
		}
	});
}

sub psk {
	psk_file($t, 'psk', join '', map { "$_:$key{$_}\n" } @_);
}

###############################################################################
