#!/usr/bin/perl

# dtls_bpf: with two workers and "listen ... udp reuseport", an eBPF
# program steers each CID record to the worker that minted the CID.  Mbed
# TLS 3.6's ssl_client2 (build/tools/mbedtls_client) through a NAT that
# rebinds every 10 datagrams (t/tools/udp_relay -b), 1,000 echoes: with
# dtls_bpf on, the client's session stays in one nginx session of the
# worker that did the handshake ($pid), which moves with it, so that the
# backend (udp_echo -s) sees one source port of nginx's, while 20
# clients' handshakes reach both workers; with it off (a reload), by
# both; on again (a reload), by one of the new workers, and
# after reloads to three workers and back to two.  The
# master holds one eBPF map with it on, none with it off, and no more
# descriptors after reloads.  nginx -t refuses invalid values, and a CID
# of one byte; it warns of a listen without reuseport.  Without CAP_BPF
# (capsh) nginx warns and serves without steering.

###############################################################################

use warnings;
use strict;

use Test::More;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::Nginx;
use Test::Nginx::DTLS qw/ :DEFAULT port_free /;
use Test::DTLS::Mbedtls;

use Time::HiRes qw/ sleep /;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Nginx->new()->has(qw/stream udp/)->has_module('dtls');

plan(skip_all => 'Linux only') unless $^O eq 'linux';
plan(skip_all => 'not root: no CAP_BPF') if $> != 0;

tool($t, qw/ udp_echo udp_relay /);

mbedtls_client();

my $key = hexkey();

psk_file($t, 'psk', "dev-1:$key\n");

my $conf = <<'EOF';

%%TEST_GLOBALS%%

worker_processes  2;
worker_shutdown_timeout  1s;

events {
}

stream {
    error_log   %%TESTDIR%%/error.log  info;

    log_format  bpf  '$server_port $pid $dtls_session_continued';
    access_log  %%TESTDIR%%/access.log  bpf;

    dtls_bpf            on;
    dtls_psk_file       psk;
    dtls_connection_id  on;
    proxy_timeout       1s;

    server {
        listen             127.0.0.1:%%PORT_8980_UDP%% udp reuseport;
        dtls               on;
        dtls_session_zone  a:1m;
        proxy_pass         127.0.0.1:%%PORT_8990_UDP%%;
    }
}

EOF

$t->write_file_expand('nginx.conf', $conf);

(my $off = $conf) =~ s/dtls_bpf            on;/dtls_bpf            off;/;

(my $noreuse = $conf) =~ s/ reuseport;/;/;
$noreuse =~ s/worker_processes  2;/worker_processes  1;/;
$t->write_file_expand('noreuse.conf', $noreuse);

(my $short = $conf) =~ s/(dtls_connection_id  on)/$1 length=1/;
$t->write_file_expand('short.conf', $short);

(my $maybe = $conf) =~ s/dtls_bpf            on;/dtls_bpf            maybe;/;
$t->write_file_expand('maybe.conf', $maybe);

(my $inserver = $conf) =~ s/(dtls               on;)/$1\n        dtls_bpf on;/;
$t->write_file_expand('inserver.conf', $inserver);

# nginx without CAP_BPF and CAP_SYS_ADMIN, on a port of its own

my $d = $t->testdir();
(my $nocap = $conf) =~ s/8980/8981/;
$nocap =~ s/%%TESTDIR%%\/error\.log/%%TESTDIR%%\/nocap.log/;
$nocap =~ s/access\.log/nocap_access.log/;
$nocap =~ s/a:1m/n:1m/;
my $globals = "daemon off;\npid $d/nocap.pid;\nerror_log $d/nocap.log info;";
$nocap =~ s/%%TEST_GLOBALS%%/$globals/;
$t->write_file_expand('nocap.conf', $nocap);

udp_echo($t, '127.0.0.1:' . port(8990, udp => 1), undef, '-s');
$t->run()->plan(31);

###############################################################################

# nginx -t

my ($rc, $out) = test_config($t, 'maybe.conf');
ok($rc != 0 && $out =~ /invalid value "maybe" in "dtls_bpf"/,
	'nginx -t: "dtls_bpf maybe" refused') or diag("exit code $rc:\n$out");

($rc, $out) = test_config($t, 'inserver.conf');
ok($rc != 0 && $out =~ /"dtls_bpf" directive is not allowed here/,
	'nginx -t: dtls_bpf in a server refused') or diag("exit code $rc:\n$out");

($rc, $out) = test_config($t, 'short.conf');
ok($rc != 0 && $out =~ /"dtls_connection_id on length=1" in \S+short\.conf:/
	. qr/\d+ leaves "dtls_bpf" no random byte/,
	'nginx -t: a CID of 1 byte refused') or diag("exit code $rc:\n$out");

($rc, $out) = test_config($t, 'noreuse.conf');
ok($rc == 0 && $out =~ /\[warn\] .*"dtls_bpf" steers no record to "listen /
	. qr/127\.0\.0\.1:\d+ udp" without "reuseport"/,
	'nginx -t: a listen without reuseport warned of')
	or diag("exit code $rc:\n$out");

($rc, $out) = test_config($t, 'nginx.conf');
ok($rc == 0 && $out !~ /\[warn\]|\[alert\]/, 'nginx -t: the kernel loads it')
	or diag("exit code $rc:\n$out");

###############################################################################

my $port = port(8980, udp => 1);
my $master = nginx_pid($t);

# dtls_bpf on: every nginx session of the client in the worker that did
# the handshake

my %r = rebound($port, 'on');
my @pids = sort keys %{$r{pids}};
is(scalar @pids, 1, 'on: all in one worker')
	or diag(explain($r{pids}));
is($r{sessions}, 1, 'on: one nginx session, moved with the client');
is($r{backend_ports}, 1, 'on: the backend sees one port of nginx\'s');

# what is not a CID record goes by the kernel's hash: the ClientHellos of
# 20 clients, each from a port of its own, reach both workers (all of
# them one: 2^-19)

my $amark = access_mark($t);
my $ok = 0;

for my $n (1 .. 20) {
	my ($out, $rc) = client($port, 1, 'cid=1', sprintf('cid_val=%02x', $n));
	$ok++ if $rc == 0 && echoed($out) == 1;
}

my @lines;
wait_for($t, sub {
	@lines = grep { /^$port / } access_lines($t, $amark);
	return @lines >= 20;
}, 10);

my %hs = map { (split / /)[1] => 1 } @lines;
ok($ok == 20 && keys %hs == 2,
	"on: 20 clients served ($ok), their handshakes by both workers")
	or diag(explain(\%hs));

my $fds = fds($master);

# off (a reload): the kernel's hash spreads the client's new ports over
# both workers (that 90 sessions or more all hash to one: 2^-89)

$t->write_file_expand('nginx.conf', $off);
ok(reload_wait($t), 'off: reloaded');
old_workers_gone();

%r = rebound($port, 'off');
@pids = sort keys %{$r{pids}};
is(scalar @pids, 2, 'off: served by both workers')
	or diag(explain($r{pids}));
ok($r{backend_ports} >= 2,
	"off: the backend sees $r{backend_ports} ports of nginx's");
is(bpf_maps($master), 0, 'off: the master holds no map');

# on again (a reload): the new workers, and their CIDs, steered

$t->write_file_expand('nginx.conf', $conf);
ok(reload_wait($t), 'on again: reloaded');
old_workers_gone();

my %workers = map { $_ => 1 } workers($t);

%r = rebound($port, 'on again');
@pids = sort keys %{$r{pids}};
ok(@pids == 1 && $workers{$pids[0]}, 'on again: all in one new worker')
	or diag(explain($r{pids}));

# three workers, then two again (the third's slot emptied), then a
# reload alone: steered, and each configuration's map descriptor goes
# with it

my $mark = log_mark($t);

(my $three = $conf) =~ s/worker_processes  2;/worker_processes  3;/;
$t->write_file_expand('nginx.conf', $three);
reload_wait($t);
old_workers_gone(3);

$t->write_file_expand('nginx.conf', $conf);
reload_wait($t);
old_workers_gone();

reload_wait($t);
old_workers_gone();

%r = rebinding($port);
@pids = sort keys %{$r{pids}};

ok($r{rc} == 0 && $r{echoed} == 1000 && @pids == 1,
	'3 workers, then 2: all in one worker')
	or diag(explain($r{pids}));
is(join("\n", grep { /\[(warn|alert|crit)\]/ } split /\n/,
	error_log($t, $mark)), '', '3 workers, then 2: no warning');

is(fds($master), $fds, "no descriptor left by reloads in the master ($fds)");
is(bpf_maps($master), 1, 'the master holds one map, its configuration\'s');
is(bpf_maps($master, 'cloexec'), 1, 'the map is close-on-exec after reloads');

###############################################################################

# without CAP_BPF: a warning, and a client served without steering

SKIP: {
	my $capsh = '/usr/sbin/capsh';
	skip "no $capsh (libcap2-bin)", 4 unless -x $capsh;

	my $pid = daemon($t, $capsh, '--drop=cap_bpf,cap_sys_admin', '--', '-c',
		'exec ' . nginx_binary($t) . " -p $d/ -c nocap.conf -e nocap.log");

	my $nport = port(8981, udp => 1);

	ok(wait_for($t, sub { -s "$d/nocap.pid" && !port_free($nport) }, 5),
		'no CAP_BPF: nginx started');

	($out, $rc) = client($nport, 20, 'cid=1', 'cid_val=a1a2');
	ok($rc == 0 && echoed($out) == 20, 'no CAP_BPF: 20 echoes')
		or diag("exit code $rc:\n" . substr($out, -2000));

	my $log = $t->read_file('nocap.log');

	my $warn = qr/\[warn\] .*"dtls_bpf" does not steer 127\.0\.0\.1:$nport, /
		. qr/its records reach workers by the kernel's hash: /
		. qr/bpf\(BPF_MAP_CREATE\) failed \(1: Operation not permitted\)/;
	my @warn = $log =~ /$warn/g;

	is(scalar @warn, 1, 'no CAP_BPF: warned of, once');
	unlike($log, qr/\[(alert|crit|emerg)\]/, 'no CAP_BPF: no alerts');

	kill 'TERM', $pid;
	wait_for($t, sub { !kill 0, $pid }, 5);
}

$t->stop();

is(join("\n", grep { !/"dtls_bpf"|length=1/ } split /\n/, log_alerts($t)),
	'', 'no alerts in the error log');

###############################################################################

# rebinding(), and what every run of it checks: the echoes and the one
# handshake

sub rebound {
	my ($port, $name) = @_;

	my %r = rebinding($port);

	ok($r{rc} == 0 && $r{echoed} == 1000 && $r{rebound} >= 99,
		"$name: 1000 echoes over $r{rebound} new source ports")
		or diag("exit code $r{rc}:\n" . substr($r{out}, -2000));
	is($r{handshakes}, 1, "$name: 1 handshake");

	return %r;
}

# the client through a NAT that rebinds every 10 datagrams, 1,000 echoes;
# the nginx sessions of its port logged once proxy_timeout ends them

sub rebinding {
	my ($port) = @_;

	my $relay = udp_relay($t, $port, '-b', 10);
	my $amark = access_mark($t);

	my ($out, $rc) = client($relay->{port}, 1000, 'cid=1',
		'cid_val=b1b2b3b4', 'skip_close_notify=1');

	my $r = udp_relay_stop($t, $relay);

	# proxy_timeout (1s) ends every nginx session of the client about as
	# the first ends: the lines that come within 1.5s of the first

	my @lines;

	wait_for($t, sub {
		@lines = grep { /^$port / } access_lines($t, $amark);
		return @lines >= 1;
	}, 10);

	for (1 .. 6) {
		sleep 0.25;
		@lines = grep { /^$port / } access_lines($t, $amark);
	}

	my %ports = map { $_ => 1 }
		$out =~ /< Read from server: \d+ bytes read\s+(\d+) GET /g;

	my %pids;
	$pids{(split / /)[1]}++ for @lines;

	return (rc => $rc, out => $out, echoed => echoed($out),
		rebound => $r->{rebound} // 0, sessions => scalar @lines,
		handshakes => scalar(grep { / \.$/ } @lines), pids => \%pids,
		backend_ports => scalar keys %ports);
}

sub client {
	my ($port, @args) = @_;
	return mbedtls($t, $port, $key, 'TLS-PSK-WITH-AES-128-CCM-8', @args);
}

# the old workers exited (worker_shutdown_timeout): their sessions logged

sub old_workers_gone {
	my ($n) = @_;

	wait_for($t, sub { scalar(workers($t)) == ($n // 2) }, 10)
		or diag('old workers still running: ' . join(' ', workers($t)));
}

# the eBPF maps a process holds (only those closed on exec, with
# "cloexec": a binary upgrade's new master would inherit the others)

sub bpf_maps {
	my ($pid, $cloexec) = @_;

	return scalar grep {
		(readlink($_) // '') eq 'anon_inode:bpf-map'
			&& (!$cloexec || cloexec($pid, (split m|/|)[-1]))
	} glob("/proc/$pid/fd/*");
}

sub cloexec {
	my ($pid, $fd) = @_;

	open my $fh, '<', "/proc/$pid/fdinfo/$fd" or return 0;
	my ($flags) = join('', <$fh>) =~ /^flags:\s+([0-7]+)/m;
	return oct($flags // 0) & 02000000;
}

# the descriptors a process holds

sub fds {
	my ($pid) = @_;

	opendir my $dh, "/proc/$pid/fd" or return -1;
	return scalar grep { /^\d+$/ } readdir $dh;
}

###############################################################################
