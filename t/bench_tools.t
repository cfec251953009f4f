#!/usr/bin/perl

# The benchmark's own tools, briefly, against a real nginx: dtls_load in
# each mode (DTLS through ngx_dtls, plain UDP through nginx's UDP proxy;
# paced echoes; held sessions that wake, with a session zone and without),
# dtls_floor in each mode, and the pion proxy when it was built.  What
# make bench reports is only as good as these.

###############################################################################

use warnings;
use strict;

use Test::More;

use JSON::PP;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::Nginx;
use Test::Nginx::DTLS;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Nginx->new()->has(qw/stream udp/)->has_module('dtls');

tool($t, qw/ dtls_load dtls_floor udp_echo /);

my $key = hexkey();

psk_file($t, 'psk', "bench:$key\n");

$t->write_file_expand('nginx.conf', <<'EOF');

events {
}

stream {
    dtls_psk_file  psk;

    server {
        listen         127.0.0.1:%%PORT_8980_UDP%% udp;
        dtls           on;
        proxy_pass     127.0.0.1:%%PORT_8982_UDP%%;
        proxy_timeout  30s;
    }

    server {
        listen         127.0.0.1:%%PORT_8981_UDP%% udp;
        proxy_pass     127.0.0.1:%%PORT_8982_UDP%%;
        proxy_timeout  30s;
    }

    # held sessions silent past proxy_timeout: continued from the zone,
    # or closed by nginx

    server {
        listen             127.0.0.1:%%PORT_8984_UDP%% udp;
        dtls               on;
        dtls_session_zone  held:1m;
        proxy_pass         127.0.0.1:%%PORT_8982_UDP%%;
        proxy_timeout      1s;
    }

    server {
        listen         127.0.0.1:%%PORT_8985_UDP%% udp;
        dtls           on;
        proxy_pass     127.0.0.1:%%PORT_8982_UDP%%;
        proxy_timeout  1s;
    }
}

EOF

udp_echo($t, '127.0.0.1:' . port(8982, udp => 1));
$t->run()->plan(43);

my $dtls = '127.0.0.1:' . port(8980, udp => 1);
my $plain = '127.0.0.1:' . port(8981, udp => 1);
my @psk = ('-i', 'bench', '-k', $key);

###############################################################################

# handshake mode: full handshakes, each with an echo, counted

my $r = load('-c', $dtls, @psk, '-m', 'handshake', '-n', 4, '-d', 1,
	'-w', 0);
ok($r->{handshakes} > 10, "handshake: $r->{handshakes} handshakes");
ok(abs($r->{echoes} - $r->{handshakes}) <= 4,
	'handshake: an echo each (but those the window cut)');
is($r->{failures}, 0, 'handshake: no failures');
ok($r->{latency_us}{p50} > 0
	&& $r->{latency_us}{p50} <= $r->{latency_us}{p99},
	'handshake: latencies');
like($r->{cipher}, qr/^PSK-/, "handshake: cipher $r->{cipher}");

# echo mode, DTLS and plain, each payload size the benchmark uses

$r = load('-c', $dtls, @psk, '-m', 'echo', '-n', 4, '-d', 1, '-w', 0,
	'-s', 1000);
ok($r->{echoes} > 100, "echo: $r->{echoes} round trips");
is($r->{failures}, 0, 'echo: no failures');

$r = load('-c', $plain, '-u', '-m', 'echo', '-n', 4, '-d', 1, '-w', 0);
ok($r->{echoes} > 100, "plain echo: $r->{echoes} round trips");
is($r->{failures}, 0, 'plain echo: no failures');

# paced echo: 20 sessions, an echo every 100 ms each, for 2 s: some 400,
# where a closed loop makes thousands

$r = load('-c', $dtls, @psk, '-m', 'echo', '-n', 20, '-R', 100, '-d', 2,
	'-w', 0);
is($r->{pace_ms}, 100, 'paced echo: pace_ms');
ok($r->{echoes} >= 300 && $r->{echoes} <= 500,
	"paced echo: $r->{echoes} round trips, 400 paced");
is($r->{failures_total}, 0, 'paced echo: no failures');
is($r->{sessions}, 20, 'paced echo: sessions');

$r = load('-c', $plain, '-u', '-m', 'echo', '-n', 4, '-R', 50, '-d', 1,
	'-w', 0);
ok($r->{echoes} >= 60 && $r->{echoes} <= 100,
	"plain paced echo: $r->{echoes} round trips, 80 paced");

# held sessions wake after 2 s of silence: the zone answers each in its
# session; without it, nginx closed them at proxy_timeout and each needs
# a new handshake

$r = load('-c', '127.0.0.1:' . port(8984, udp => 1), @psk, '-m', 'hold',
	'-N', 20, '-n', 10, '-H', 2);
ok($r->{done} && $r->{held_s} >= 2, "zone: held $r->{held_s} s");
is($r->{woken}, 20, 'zone: 20 woken');
is($r->{wake_answered}, 20, 'zone: 20 answered in their sessions');
is($r->{wake_handshakes}, 0, 'zone: no new handshake');
is($r->{handshakes}, 20, 'zone: 20 handshakes in all');

$r = load('-c', '127.0.0.1:' . port(8985, udp => 1), @psk, '-m', 'hold',
	'-N', 20, '-n', 10, '-H', 2);
is($r->{lost}, 20, 'no zone: 20 closed by nginx while held');
is($r->{wake_answered}, 0, 'no zone: none answered in its session');
is($r->{wake_handshakes}, 20, 'no zone: 20 answered after a handshake');
is($r->{wake_failed}, 0, 'no zone: none failed');

my ($out, $rc) = run_tool($t, { timeout => 20 }, 'dtls_load', '-c', $dtls,
	@psk, '-m', 'hold', '-N', 1, '-H', 1, '-d', 1);
is($rc, 2, 'hold: -H with -d is a usage error');

# a wake that nothing answers: the identity removed, and nginx reloaded,
# while the sessions are held; the zone does not continue them and no
# new handshake succeeds

my $held = daemon($t, tool($t, 'dtls_load'), '-c',
	'127.0.0.1:' . port(8984, udp => 1), @psk, '-m', 'hold', '-N', 10,
	'-n', 10, '-H', 3, '-t', 1000);

wait_for($t, sub { daemon_output($t, $held) =~ /"ready":true/ }, 10);
psk_file($t, 'psk', "other:$key\n");
reload_wait($t);

wait_for($t, sub { daemon_output($t, $held) =~ /"done"/ }, 20);
$r = decode_json((grep { /"done"/ } split /\n/, daemon_output($t, $held))[0]
	// '{}');
is($r->{woken}, 10, 'identity gone: 10 woken');
is($r->{wake_answered} + $r->{wake_handshakes}, 0,
	'identity gone: none answered');
is($r->{wake_failed}, 10, 'identity gone: 10 failed');

psk_file($t, 'psk', "bench:$key\n");
reload_wait($t);

# a payload that no record of the MTU can carry is refused, not measured

($out, $rc) = run_tool($t, { timeout => 20 }, 'dtls_load', '-c', $dtls,
	@psk, '-m', 'echo', '-n', 1, '-d', 1, '-w', 0, '-s', 1200);
is($rc, 2, 'echo: a payload over the MTU is a usage error');

# hold mode: the sessions stay in nginx until the tool lets them go

my $log = log_mark($t);

my $pid = open(my $hold, '-|', tool($t, 'dtls_load'), '-c', $dtls, @psk,
	'-m', 'hold', '-N', 50, '-n', 10) or die "dtls_load: $!\n";

my $ready = <$hold>;
ok(defined $ready && decode_json($ready)->{ready}, 'hold: ready line');

is(scalar grep_log($t, qr/client closed DTLS session/, $log), 0,
	'hold: sessions held');

kill 'TERM', $pid;
my @rest = <$hold>;
close $hold;

my $final = decode_json($rest[-1] // '{}');
is($final->{mode}, 'hold', 'hold: final line');

ok(wait_for($t, sub {
	grep_log($t, qr/client closed DTLS session/, $log) >= 50 }, 10),
	'hold: every session closed with close_notify');

# a wrong key fails, and says so

($out, $rc) = run_tool($t, { timeout => 20 }, 'dtls_load', '-c', $dtls,
	'-i', 'bench', '-k', '00' x 16, '-m', 'handshake', '-n', 1, '-d', 1,
	'-w', 0, '-t', 500);
$r = decode_json((grep { /^\{/ } split /\n/, $out)[-1] // '{}');
is($r->{handshakes} // -1, 0, 'wrong key: no handshake');
ok(($r->{failures_total} // 0) > 0, 'wrong key: failures counted');
is($rc, 1, 'wrong key: exit code');

###############################################################################

# dtls_floor: the server's CPU per handshake, its heap per idle session

($out, $rc) = run_tool($t, { timeout => 20 }, 'dtls_floor', '-m',
	'handshake', '-d', 1);
$r = decode_json((split /\n/, $out)[-1] // '{}');
ok($r->{handshakes} > 100, "floor: $r->{handshakes} handshakes");
ok($r->{server_cpu_us_per_handshake} > 1
	&& $r->{server_cpu_us_per_handshake} < 10000,
	"floor: $r->{server_cpu_us_per_handshake} us per server handshake");

($out, $rc) = run_tool($t, { timeout => 20 }, 'dtls_floor', '-m', 'memory',
	'-N', 100);
$r = decode_json((split /\n/, $out)[-1] // '{}');
my $full = $r->{server_bytes_per_session} // 0;
ok($full > 16384, "floor: $full bytes per idle session");
is($r->{server_bytes_left}, 0, 'floor: nothing left after SSL_CTX_free');

($out, $rc) = run_tool($t, { timeout => 20 }, 'dtls_floor', '-m', 'memory',
	'-N', 100, '-F', 1200);
$r = decode_json((split /\n/, $out)[-1] // '{}');
ok(($r->{server_bytes_per_session} // $full) < $full - 8192,
	'floor: a smaller write buffer with max_send_fragment');

###############################################################################

# the pion proxy, when scripts/interop-deps.sh pion_proxy built it

SKIP: {
my $pion = "$Test::Nginx::REPO/build/tools/pion_proxy";
skip 'no build/tools/pion_proxy (make bench builds it)', 2 unless -x $pion;

my $port = port(8983, udp => 1);

my $ppid = open(my $p, '-|', $pion, '--listen', "127.0.0.1:$port",
	'--backend', '127.0.0.1:' . port(8982, udp => 1), '--psk-file',
	$t->testdir() . '/psk') or die "pion_proxy: $!\n";
my $line = <$p>;

$r = load('-c', "127.0.0.1:$port", @psk, '-m', 'handshake', '-n', 4,
	'-d', 1, '-w', 0);
ok($r->{handshakes} > 10, "pion proxy: $r->{handshakes} handshakes");
is($r->{failures}, 0, 'pion proxy: no failures');

kill 'TERM', $ppid;
close $p;
}

is(log_alerts($t), '', 'no alerts');

###############################################################################

sub load {
	my ($out, $rc) = run_tool($t, { timeout => 30 }, 'dtls_load', @_);
	my ($line) = grep { /^\{/ } reverse split /\n/, $out;
	return decode_json($line // '{}');
}

###############################################################################
