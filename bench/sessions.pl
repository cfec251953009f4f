#!/usr/bin/perl

# make bench-sessions: what an idle session costs nginx, side by side in
# one run, each case in an nginx of its own (one worker), and the echo
# round trips per second of the same cases, in one nginx:
#
#   own records      an AEAD suite (PSK-AES128-CCM8): the SSL object is
#                    freed once the handshake is done
#   OpenSSL records  a CBC suite (PSK-AES128-CBC-SHA256): the SSL object
#                    stays, with OpenSSL's record layer
#   zone only        the AEAD suite with dtls_session_zone and a short
#                    proxy_timeout: the nginx sessions end, the DTLS
#                    sessions stay in the zone, sized so that they fit
#                    only if each takes at most 512 bytes
#
# Sessions are held idle by build/tools/dtls_load (hold mode), from
# several loopback source addresses for the zone's many sessions (nginx's
# upstream sockets bound to 127.0.0.1, whose ports those leave free); the
# worker's RSS before and after, per session.
#
# Echo: one nginx (one worker) with a server for each case (the zone's
# with the default proxy_timeout: its sessions stay live); dtls_load -m
# echo, closed loop, 64 sessions, 64 bytes, BENCH_ECHO_SECONDS (default
# 3) measured after 1 s of warm-up, the cases taking turns (A B C, then
# C B A, ...) BENCH_ECHO_REPEAT times (default 4); echoes/s, latency and
# the worker's CPU per echo, medians, and each turn's ratio to OpenSSL's
# records.  With BENCH_BASELINE (an nginx binary, whose module predates
# its own record layer; make bench-sessions BASELINE=COMMIT builds one),
# the AEAD suite through OpenSSL's record layer too, in that nginx (one
# worker, the same CPU), taking turns with the others: ratios to it too.
#
# Writes docs/benchmarks-sessions.md.  Knobs: BENCH_SESSIONS (default
# 10000), BENCH_ZONE_SESSIONS (default 100000), BENCH_ECHO_SECONDS,
# BENCH_ECHO_REPEAT, BENCH_BASELINE and BENCH_BASELINE_NAME (what the
# report calls it), BENCH_OUT (default docs/), BENCH_KEEP (keep the run's
# directory).  The processes, holders and helpers are bench/Bench.pm's.

use warnings;
use strict;

use File::Basename qw/ dirname /;
use Time::HiRes qw/ time sleep /;

use lib dirname(__FILE__);
use Bench;

###############################################################################

my $OUT = $ENV{BENCH_OUT} || "$TOP/docs";

my $N = $ENV{BENCH_SESSIONS} || 10000;
my $ZN = $ENV{BENCH_ZONE_SESSIONS} || 100000;
my $ECHO_SECONDS = $ENV{BENCH_ECHO_SECONDS} || 3;
my $ECHO_REPEAT = $ENV{BENCH_ECHO_REPEAT} || 4;
my $BASELINE = $ENV{BENCH_BASELINE};
my $BASELINE_NAME = $ENV{BENCH_BASELINE_NAME} || $BASELINE;

# dtls_load processes of 14,000 sessions (within the file limit of 20,000
# here), two from each source address (the local port range)
my $PER_PROCESS = 14000;

# 512 bytes a session, and room for the slab allocator's own pages
my $ZONE_MB = int($ZN * 512 / 1048576 * 1.15) + 1;

start_run();

my $key = psk_file();
my $echo = echo_backend();
my @holders;

my @cases = (
	[ 'own records', 'PSK-AES128-CCM8', '', $N ],
	[ 'OpenSSL records', 'PSK-AES128-CBC-SHA256', '', $N ],
	[ 'zone only', 'PSK-AES128-CCM8', "${ZONE_MB}m", $ZN ],
);

# echo: the zone's sessions stay live; with BENCH_BASELINE, the AEAD
# suite in that nginx too

my @echo_cases = (
	[ 'own records', 'PSK-AES128-CCM8', '', 'nginx' ],
	[ 'OpenSSL records', 'PSK-AES128-CBC-SHA256', '', 'nginx' ],
	[ 'own records, zone', 'PSK-AES128-CCM8', '4m', 'nginx' ],
	$BASELINE ? [ 'OpenSSL records, before', 'PSK-AES128-CCM8', '',
		'before' ] : (),
);

my @results = map { measure(@$_) } @cases;
my $rates = echo_rates(@echo_cases);

stop_all();
report(\@results, $rates);

###############################################################################

sub measure {
	my ($name, $cipher, $zone, $n) = @_;

	my $port = free_port();

	start_nginx('nginx', $NGINX, { port => $port, cipher => $cipher,
		zone => $zone, idle => 1 });

	my $worker = nginx_worker();

	# one session first: what all sessions share is made

	hold($port, $cipher, 1, '127.0.0.1');
	hold_stop(splice @holders);
	sleep 1;

	my $before = rss_kb($worker);
	my $t0 = time();

	for (my $i = 0; $i * $PER_PROCESS < $n; $i++) {
		my $m = $n - $i * $PER_PROCESS;
		hold($port, $cipher, $m < $PER_PROCESS ? $m : $PER_PROCESS,
			'127.0.0.' . (2 + int($i / 2)));
	}

	my $setup = time() - $t0;

	# zone only: the nginx sessions end at proxy_timeout

	sleep($zone ? 4 : 1);

	my $after = rss_kb($worker);
	my $zone_line = $zone ? zone_counts() : undef;

	hold_stop(splice @holders);
	stop('nginx');

	my $r = {
		name => $name, cipher => $cipher, sessions => $n,
		zone => $zone, rss_kb => $after - $before,
		per_session => ($after - $before) * 1024 / $n,
		setup_s => $setup,
	};

	@$r{qw/ zone_sessions zone_evictions /} = @$zone_line if $zone_line;

	say(sprintf('%s: %d sessions, RSS +%d kB, %.0f bytes each%s', $name,
		$n, $r->{rss_kb}, $r->{per_session},
		$zone_line ? ", zone $zone: $zone_line->[0] sessions, "
			. "$zone_line->[1] evicted" : ''));

	return $r;
}

# the zone's counters, from the access log line of the last nginx session

sub zone_counts {
	open my $fh, '<', "$dir/access.log" or return [ 0, 0 ];
	my $last;
	$last = $_ while <$fh>;
	return [ 0, 0 ] unless defined $last;
	return [ split ' ', $last ];
}

# n idle sessions from one source address; returns when they are up

sub hold {
	my ($port, $cipher, $n, $bind) = @_;

	push @holders, holder('-c', "127.0.0.1:$port", '-N', $n, '-n', 64,
		'-b', $bind, '-t', 10000, '-i', 'bench', '-k', $key,
		'-C', $cipher);
}

# an nginx (the binary, started as NAME), one worker, a server for each
# { port, cipher, zone, idle }: idle sessions held (the zone's ended at a
# short proxy_timeout), or echoing

sub start_nginx {
	my ($name, $binary, @servers) = @_;

	my $servers = '';
	my $zones = grep { $_->{zone} } @servers;

	for my $sv (@servers) {
		my $conf = $sv->{zone}
			? "dtls_session_zone  s$sv->{port}:$sv->{zone};\n"
				. ($sv->{idle} ? "        proxy_timeout      2s;\n" : '')
				. "        access_log         $dir/access.log zone;"
			: "proxy_timeout      10m;\n"
				. "        access_log         off;";

		$servers .= <<"EOF";

    server {
        listen                127.0.0.1:$sv->{port} udp;
        dtls                  on;
        dtls_psk_file         $dir/psk;
        dtls_ciphers          $sv->{cipher};
        dtls_handshake_limit  4096;
        proxy_buffer_size     2k;
        proxy_pass            127.0.0.1:$echo;
        proxy_bind            127.0.0.1;
        $conf
    }
EOF
	}

	unlink "$dir/access.log" if $zones;

	# the zone's variables only where there are zones (BENCH_BASELINE's
	# module may have none)

	my $log = $zones
		? "log_format  zone  '\$dtls_zone_sessions \$dtls_zone_evictions';"
		: '';

	nginx_start($name, $SERVER_CPU, $binary, "    $log\n$servers",
		map { $_->{port} } @servers);
}

# echo round trips per second of each case, in one nginx, the cases
# taking turns

sub echo_rates {
	my (@cases) = @_;

	my @servers = map { { port => free_port(), cipher => $_->[1],
		zone => $_->[2], nginx => $_->[3] } } @cases;

	my %binary = (nginx => $NGINX, before => $BASELINE);

	for my $name (grep { $binary{$_} } sort keys %binary) {
		start_nginx($name, $binary{$name},
			grep { $_->{nginx} eq $name } @servers);
	}

	my @runs;
	my @load = (loadavg());

	say("echo/s: 64 sessions, 64 B, $ECHO_REPEAT x ${ECHO_SECONDS}s each, "
		. "the cases taking turns");

	for my $rep (1 .. $ECHO_REPEAT) {
		my @order = 0 .. $#cases;
		@order = reverse @order unless $rep % 2;

		for my $i (@order) {
			my $worker = nginx_worker($servers[$i]{nginx});
			my ($u0, $s0) = cpu_seconds($worker);
			my $t0 = time();

			my $r = run_load('-c', "127.0.0.1:$servers[$i]{port}",
				'-m', 'echo', '-n', 64, '-s', 64, '-d', $ECHO_SECONDS,
				'-w', 1, '-i', 'bench', '-k', $key, '-C', $cases[$i][1]);

			my ($u1, $s1) = cpu_seconds($worker);
			my $wall = time() - $t0;

			# the worker's CPU over the whole run, per echo measured,
			# scaled to the run

			$r->{case} = $i;
			$r->{rep} = $rep;
			$r->{cpu_us} = $r->{echoes_per_s} && $wall > 0
				? 1e6 * (($u1 + $s1 - $u0 - $s0) / $wall)
					/ $r->{echoes_per_s}
				: undef;

			say(sprintf('  %-16s %8.0f/s  p50 %5dus  p99 %5dus  %5.1f us '
				. 'cpu  fail %d', $cases[$i][0], $r->{echoes_per_s},
				$r->{latency_us}{p50}, $r->{latency_us}{p99},
				$r->{cpu_us} // 0, $r->{failures_total}));

			push @runs, $r;
		}
	}

	stop($_) for keys %binary;
	push @load, loadavg();

	# each turn's ratios to OpenSSL's records, in this nginx (CBC) and
	# before the module's own (BENCH_BASELINE)

	my @refs = grep { $cases[$_][0] =~ /OpenSSL records/ } 0 .. $#cases;
	my @echo;

	for my $i (0 .. $#cases) {
		my @r = grep { $_->{case} == $i } @runs;
		my @ratios;

		for my $ref (@refs) {
			my @q;

			for my $x (@r) {
				my ($o) = grep { $_->{case} == $ref
					&& $_->{rep} == $x->{rep} } @runs;
				push @q, $x->{echoes_per_s} / $o->{echoes_per_s}
					if $o->{echoes_per_s};
			}

			push @ratios, [ median(@q), @q ];
		}

		my $failures = 0;
		$failures += $_->{failures_total} for @r;

		push @echo, {
			name => $cases[$i][0], cipher => $cases[$i][1],
			rate => median(map { $_->{echoes_per_s} } @r),
			p50 => median(map { $_->{latency_us}{p50} } @r),
			p99 => median(map { $_->{latency_us}{p99} } @r),
			cpu => median(map { $_->{cpu_us} } @r),
			ratios => \@ratios, failures => $failures,
		};
	}

	return { refs => [ map { $cases[$_][0] } @refs ], cases => \@echo,
		load => \@load };
}

# the machine's load average over the last minute

sub loadavg {
	open my $fh, '<', '/proc/loadavg' or return undef;
	return (split ' ', <$fh>)[0];
}

###############################################################################

sub report {
	my ($res, $rates) = @_;

	my @r = @$res;

	my $md = "# Sessions: memory and echo rate with the module's records, "
		. "OpenSSL's, the zone\n\n"
		. written_by('bench-sessions'
			. ($BASELINE ? " BASELINE=$BASELINE_NAME" : ''))
		. ".\n\n"
		. "## Memory per idle session\n\n"
		. "One nginx worker "
		. "for each case, `proxy_buffer_size 2k`; idle sessions held by "
		. "`dtls_load -m hold`; the worker's RSS with them, less its RSS "
		. "before (one session made first), per session.\n\n"
		. "| case | cipher | sessions | RSS per session | zone |\n"
		. "|---|---|---|---|---|\n";

	for my $r (@r) {
		$md .= sprintf("| %s | %s | %d | %.0f bytes | %s |\n", $r->{name},
			$r->{cipher}, $r->{sessions}, $r->{per_session},
			$r->{zone} ? "$r->{zone}: $r->{zone_sessions} sessions, "
				. "$r->{zone_evictions} evicted" : '—');
	}

	$md .= "\nIn the zone-only case the nginx sessions have ended "
		. "(`proxy_timeout 2s`) and only the zone holds the sessions: "
		. "its size is 512 bytes a session and 15% more, so that they fit "
		. "without eviction only if each entry takes at most 512 bytes "
		. "(the slab allocator's sizes are powers of two). Its RSS counts "
		. "the zone's pages the worker touched and the heap that the "
		. "ended nginx sessions left to the allocator, free for the next "
		. "ones.\n";

	my @refs = @{$rates->{refs}};

	$md .= "\n## Echo round trips per second\n\n"
		. "The same cases in one nginx (one worker, on CPU $SERVER_CPU; "
		. "`dtls_load` and the backend on CPU $CLIENT_CPU), a server for "
		. "each (the zone's with live nginx sessions: the default "
		. "`proxy_timeout`)"
		. ($BASELINE ? ", and the AEAD suite in an nginx of its own with "
			. "the module from before its own record layer "
			. "($BASELINE_NAME; one worker, the same CPU)" : '')
		. ": `dtls_load -m echo -n 64 -s 64 -d $ECHO_SECONDS -w 1`, "
		. "closed loop, the cases taking turns (in order, then in reverse "
		. "order) $ECHO_REPEAT times. Medians; a ratio is each turn's "
		. "echoes/s over the reference's in the same turn: their median, "
		. "then each turn's. The machine's load average (1 min) was "
		. join(' before, ', map { $_ // '?' } @{$rates->{load}})
		. " after (the bench alone keeps about one CPU busy): each "
		. "turn's ratio moves with whatever else runs, the medians are "
		. "what to compare.\n\n"
		. "| case | cipher | echoes/s | "
		. join('', map { "ratio to $_ | " } @refs)
		. "p50 / p99 | worker CPU per echo | failures |\n"
		. "|---|---|---|" . ('---|' x @refs) . "---|---|---|\n";

	for my $e (@{$rates->{cases}}) {
		$md .= sprintf("| %s | %s | %.0f | ", $e->{name}, $e->{cipher},
			$e->{rate});

		for my $q (@{$e->{ratios}}) {
			my ($m, @each) = @$q;
			$md .= sprintf('%.2f (%s) | ', $m // 0,
				join(', ', map { sprintf '%.2f', $_ } @each));
		}

		$md .= sprintf("%d / %d us | %.1f us | %d |\n", $e->{p50},
			$e->{p99}, $e->{cpu} // 0, $e->{failures});
	}

	$md .= "\nIn one nginx, OpenSSL's record layer is had with a CBC suite "
		. "(only non-AEAD sessions keep it), so those cases differ in "
		. "their cipher too: AES-128-CCM with an 8-byte tag against "
		. "AES-128-CBC with HMAC-SHA256."
		. ($BASELINE ? " The nginx from before has the same AEAD suite "
			. "through OpenSSL's record layer: the issue's \"today's\"."
			: " `BENCH_BASELINE=path/to/nginx` adds the AEAD suite in an "
			. "nginx whose module predates its own record layer.")
		. " The worker's CPU per echo is the whole process's (the proxy, "
		. "both sockets' system calls, the records); the rate is bound by "
		. "whichever of the two CPUs saturates first.\n";

	write_file("$OUT/benchmarks-sessions.md", $md);
	say("wrote $OUT/benchmarks-sessions.md");
}

###############################################################################
