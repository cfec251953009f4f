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

use File::Basename qw/ dirname /;

use lib dirname(__FILE__);
use Bench;

###############################################################################

my $OUT = $ENV{BENCH_OUT} || "$TOP/docs/benchmarks-openssl.md";
my $REPEAT = $ENV{BENCH_REPEAT} || 2;
my @SESSIONS = split /,/, ($ENV{BENCH_SESSIONS} || '1000,10000');
my $CIPHER = $ENV{BENCH_CIPHER} || 'PSK-AES128-GCM-SHA256';
my $MTU = 1300;
my $RMEM = 4194304;

my @builds = map {
	my ($label, $nginx, $floor) = split /=/, $_, 3;
	die "usage: $0 'LABEL=NGINX=FLOOR' ...\n" unless $floor;
	-x $_ or die "no $_\n" for $nginx, $floor;
	{ label => $label, nginx => $nginx, floor => $floor,
		version => scalar `$nginx -V 2>&1` }
} @ARGV;

die "usage: $0 'LABEL=NGINX=FLOOR' ...\n" unless @builds;

start_run();
set_rmem($RMEM);

my $key = psk_file();
my $echo = echo_backend();
my $port = free_port();

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

		start_nginx($b);
		push @{$b->{rss_runs}}, [ rss_curve('nginx', nginx_worker(),
			\@SESSIONS, \&hold_start) ];
		stop('nginx');
	}
}

stop_all();
report();

say(sprintf("done in %.0fs: %s", time() - $^T, $OUT));

###############################################################################

sub floor {
	my ($b, @args) = @_;

	return run_json($SERVER_CPU, $b->{floor}, '-m', 'memory', '-N', 1000,
		'-M', $MTU, '-C', $CIPHER, @args);
}

# n more idle sessions, one dtls_load process; it prints a line when all
# its sessions are up, and closes them when its stdin is closed

sub hold_start {
	my ($n) = @_;

	return holder('-c', "127.0.0.1:$port", '-N', $n, '-n', 64,
		'-b', '127.0.0.2', '-t', 10000, '-M', $MTU, '-i', 'bench',
		'-k', $key, '-C', $CIPHER);
}

sub start_nginx {
	my ($b) = @_;

	nginx_start('nginx', $SERVER_CPU, $b->{nginx},
		dtls_server($port, $MTU, $echo, dtls_psk_file => "$dir/psk",
			dtls_ciphers => $CIPHER), $port);
}

###############################################################################

sub report {
	my $n = $SESSIONS[-1];
	my $md = "# Memory per idle DTLS session: OpenSSL 3.0 and 3.5\n\n"
		. written_by('bench-memory') . ".  Cipher $CIPHER, "
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
