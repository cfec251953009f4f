#!/usr/bin/perl

# make bench-memory: the memory of an idle DTLS session, side by side for
# nginx builds that differ in their OpenSSL (3.0, the system's, and 3.5,
# built into nginx), in one run:
#
#   perl bench/memory.pl 'LABEL=NGINX=FLOOR' ...
#
# NGINX is an nginx with ngx_dtls built in, FLOOR build/tools/dtls_floor
# linked against the same OpenSSL.  For each build, in turns, BENCH_REPEAT
# times:
#
#   - the nginx worker's RSS per idle established session: a fresh nginx
#     (one worker, on CPU 0, configured as bench/bench.pl configures it),
#     100 sessions first to warm the allocator up, the RSS after they
#     ended as the base, then BENCH_SESSIONS (default 1000,10000) held by
#     dtls_load on CPU 1; (RSS - base) / sessions;
#   - OpenSSL's own heap per idle server session, counted by dtls_floor
#     -m memory over memory BIOs (1000 sessions, max_send_fragment 1300
#     as ngx_dtls sets it, and OpenSSL's default).
#
# The cipher is BENCH_CIPHER (default PSK-AES128-GCM-SHA256): OpenSSL 3.2
# and later put the CCM8 suites at security level 0, out of the default
# level.  Writes BENCH_OUT (default docs/benchmarks-openssl.md).

use warnings;
use strict;

use Cwd qw/ abs_path /;
use File::Basename qw/ dirname /;
use File::Temp qw/ tempdir /;
use JSON::PP;
use POSIX qw/ WNOHANG /;
use Time::HiRes qw/ sleep time /;

use lib dirname(__FILE__);
use Bench;

###############################################################################

my $TOP = abs_path(dirname(__FILE__) . '/..');
my $TOOLS = "$TOP/build/tools";
my $OUT = $ENV{BENCH_OUT} || "$TOP/docs/benchmarks-openssl.md";
my $REPEAT = $ENV{BENCH_REPEAT} || 2;
my @SESSIONS = split /,/, ($ENV{BENCH_SESSIONS} || '1000,10000');
my $CIPHER = $ENV{BENCH_CIPHER} || 'PSK-AES128-GCM-SHA256';
my $MTU = 1300;
my $RMEM = 4194304;

my ($SERVER_CPU, $CLIENT_CPU) = (0, 1);

my @builds = map {
	my ($label, $nginx, $floor) = split /=/, $_, 3;
	die "usage: $0 'LABEL=NGINX=FLOOR' ...\n" unless $floor;
	-x $_ or die "no $_\n" for $nginx, $floor;
	{ label => $label, nginx => $nginx, floor => $floor,
		version => scalar `$nginx -V 2>&1` }
} @ARGV;

die "usage: $0 'LABEL=NGINX=FLOOR' ...\n" unless @builds;

$dir = tempdir('ngx-dtls-memory-XXXXXXXX', TMPDIR => 1, CLEANUP => 1);
my $started = time();

my $rmem_default = set_rmem($RMEM);

$SIG{INT} = $SIG{TERM} = sub { stop_all(); exit 1 };
END { stop_all(); set_rmem($rmem_default) if $rmem_default }

my $key = unpack('H*', join '', map { chr int rand 256 } 1 .. 16);

write_file("$dir/psk", "bench:$key\n");
chmod 0600, "$dir/psk";

my $echo = free_port();
my $port = free_port();

spawn('echo', $CLIENT_CPU, "$TOOLS/udp_echo", '-l', "127.0.0.1:$echo");

###############################################################################

for my $rep (1 .. $REPEAT) {
	for my $b (@builds) {
		say("$b->{label}, run $rep");

		my $f = floor($b, '-F', $MTU);
		push @{$b->{floor_runs}}, $f;

		my $d = floor($b);
		push @{$b->{floor_default_runs}}, $d;

		say(sprintf("  dtls_floor: %.1f kB of OpenSSL heap per session "
			. "(%.1f kB with OpenSSL's default fragment size)",
			$f->{server_bytes_per_session} / 1024,
			$d->{server_bytes_per_session} / 1024));

		push @{$b->{rss_runs}}, rss_curve($b);
	}
}

stop_all();
report();

say(sprintf("done in %.0fs: %s", time() - $started, $OUT));

###############################################################################

sub floor {
	my ($b, @args) = @_;

	my $out = qx{taskset -c $SERVER_CPU $b->{floor} -m memory -N 1000 -M $MTU -C $CIPHER @args};
	my ($line) = grep { /^\{/ } reverse split /\n/, $out;

	die "$b->{floor}: no result\n" unless defined $line;
	return decode_json($line);
}

sub rss_curve {
	my ($b) = @_;

	start_nginx($b);
	my $pid = nginx_worker();

	hold_stop(hold_start(100));
	sleep 1;

	my $base = rss_kb($pid);
	my ($held, @holders, @curve) = (0);

	for my $n (@SESSIONS) {
		push @holders, hold_start($n - $held);
		$held = $n;
		sleep 1;

		my $rss = rss_kb($pid);
		my $per = ($rss - $base) * 1024 / $n;

		push @curve, { sessions => $n, rss_kb => $rss, base_rss_kb => $base,
			bytes_per_session => int($per) };

		say(sprintf("  nginx: %6d sessions: RSS %d kB (base %d kB), "
			. "%.1f kB per session", $n, $rss, $base, $per / 1024));
	}

	hold_stop(@holders);
	stop('nginx');

	return \@curve;
}

# n more idle sessions, one dtls_load process; it prints a line when all
# its sessions are up, and closes them when its stdin is closed

sub hold_start {
	my ($n) = @_;

	return holder("$TOOLS/dtls_load", $CLIENT_CPU,
		'-c', "127.0.0.1:$port", '-N', $n, '-n', 64, '-b', '127.0.0.2',
		'-t', 10000, '-M', $MTU, '-i', 'bench', '-k', $key, '-C', $CIPHER);
}

sub start_nginx {
	my ($b) = @_;

	nginx_start('nginx', $SERVER_CPU, $b->{nginx}, <<"EOF", $port);
    server {
        listen                127.0.0.1:$port udp;
        dtls                  on;
        dtls_psk_file         $dir/psk;
        dtls_ciphers          $CIPHER;
        dtls_handshake_limit  4096;
        dtls_mtu              $MTU;
        proxy_pass            127.0.0.1:$echo;
        proxy_bind            127.0.0.1;
        proxy_timeout         10m;
    }
EOF
}

###############################################################################

sub report {
	my $n = $SESSIONS[-1];
	my $md = "# Memory per idle DTLS session: OpenSSL 3.0 and 3.5\n\n"
		. written_by('bench-memory', $started) . ".  Cipher $CIPHER, "
		. "dtls_mtu $MTU, one nginx worker; the builds took turns, "
		. "$REPEAT runs each.\n\n"
		. "- nginx RSS: the worker's RSS with $n idle sessions held, less "
		. "its RSS before, per session (their mean, and each run's"
		. " figure);\n"
		. "- OpenSSL heap: what OpenSSL itself allocated per idle server "
		. "session (bench/dtls_floor -m memory, 1000 sessions, "
		. "max_send_fragment $MTU), its allocations of 16 KB and more "
		. "apart, and with OpenSSL's default max_send_fragment "
		. "(16 KB).\n\n"
		. "| build | OpenSSL | nginx RSS per session | "
		. "OpenSSL heap per session | of which >= 16 KB | "
		. "OpenSSL heap, default fragment size |\n"
		. "|---|---|---|---|---|---|\n";

	for my $b (@builds) {
		my ($ossl) = $b->{version} =~ /built with (OpenSSL \S+)/;
		my ($ngx) = $b->{version} =~ m!nginx version: (nginx/\S+)!;

		my @rss = map { $_->[-1]{bytes_per_session} / 1024 }
			@{$b->{rss_runs}};
		my @heap = map { $_->{server_bytes_per_session} / 1024 }
			@{$b->{floor_runs}};
		my @big = map { $_->{classes}{'16k_up'}{bytes} / 1024 }
			@{$b->{floor_runs}};
		my @default = map { $_->{server_bytes_per_session} / 1024 }
			@{$b->{floor_default_runs}};

		$md .= sprintf("| %s (%s) | %s | %s | %s | %s | %s |\n",
			$b->{label}, $ngx // '?', $ossl // '?',
			runs(@rss), runs(@heap), runs(@big), runs(@default));
	}

	$md .= "\nRSS at each count (kB per session, run by run):\n\n";

	for my $b (@builds) {
		$md .= "- $b->{label}: " . join('; ', map {
			join(', ', map { sprintf('%d: %.1f', $_->{sessions},
				$_->{bytes_per_session} / 1024) } @$_)
		} @{$b->{rss_runs}}) . "\n";
	}

	write_file($OUT, $md);
	print $md;
}

sub runs {
	my $mean = 0;
	$mean += $_ / @_ for @_;
	return sprintf('**%.1f kB** (%s)', $mean,
		join(', ', map { sprintf '%.1f', $_ } @_));
}

###############################################################################
