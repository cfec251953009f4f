#!/usr/bin/perl

# make bench: ngx_dtls side by side with its peers, in one run.
#
#   nginx + ngx_dtls (DTLS-PSK)  -> UDP echo backend
#   nginx, plain UDP proxy       -> the same backend (the ceiling)
#   pion/dtls PSK proxy (Go)     -> the same backend (the alternative)
#   OpenSSL in one process over memory BIOs (the floor)
#
# The server under test runs on CPU 0 (one nginx worker; the pion proxy
# with GOMAXPROCS=1), the load generator (build/tools/dtls_load) and the
# echo backend on CPU 1; the servers take turns, run after run, so that
# the ratios hold on a noisy machine.  Writes docs/benchmarks.json, the
# plots docs/bench-*.png, and docs/benchmarks.md from them.
#
# Last, full against resumed (abbreviated) handshakes, with DTLS-PSK and
# with ECDHE-ECDSA certificates (client certificates verified), written to
# docs/benchmarks-resumption.md and .json.
#
# Knobs: BENCH_SECONDS (per run, default 3), BENCH_REPEAT (default 3),
# BENCH_SESSIONS (idle session counts, default "1000,10000,18000"),
# BENCH_OUT (default docs/), BENCH_ONLY=resumption (that part alone, a
# minute or two; the other reports are left as they are).

use warnings;
use strict;

use File::Basename qw/ dirname /;
use JSON::PP;
use POSIX qw/ strftime /;
use Time::HiRes qw/ sleep time /;

use lib dirname(__FILE__);
use Bench;

###############################################################################

my $OUT = $ENV{BENCH_OUT} || "$TOP/docs";

my $SECONDS = $ENV{BENCH_SECONDS} || 3;
my $REPEAT = $ENV{BENCH_REPEAT} || 3;
my @SESSIONS = split /,/, ($ENV{BENCH_SESSIONS} || '1000,10000,18000');
my @CONCURRENCY = (1, 4, 16, 64, 256, 1024);
my @PAYLOADS = (16, 64, 256, 1200);

my $CIPHER = 'PSK-AES128-CCM8';
my $CERT_CIPHER = 'ECDHE-ECDSA-AES128-GCM-SHA256';
my $ONLY = $ENV{BENCH_ONLY} || '';

die "BENCH_ONLY: only \"resumption\" is known\n"
	if $ONLY && $ONLY ne 'resumption';
my $PION_CIPHER = 'TLS_PSK_WITH_AES_128_CCM_8';

# 1200-byte payloads need records of 1200 bytes of data: 1300 on the wire
my $MTU = 1300;

# socket receive buffers of 4 MB (the machine's rmem_max) for every socket
# of the run, servers, backend and clients alike: with Linux's 208 KB
# default a listening socket overflows at a few hundred clients, and the
# lost flights wait for a 1 s retransmission
my $RMEM = 4194304;

start_run();

my (@runs, @memory, @scaling, %floor, %meta);

set_rmem($RMEM);

###############################################################################

my $key = psk_file();
my %port = map { $_ => free_port() } qw/ dtls plain pion cert /;

pki();

meta();

$port{echo} = echo_backend();

start_nginx();
start_pion() unless $ONLY;

my %server = (
	dtls => { name => 'nginx + ngx_dtls', port => $port{dtls},
		pid => sub { nginx_worker() } },
	plain => { name => 'nginx plain UDP', port => $port{plain}, plain => 1,
		pid => sub { nginx_worker() } },
	pion => { name => 'pion/dtls proxy', port => $port{pion},
		pid => sub { $pids{pion} } },
	cert => { name => 'nginx + ngx_dtls, certificates', port => $port{cert},
		cert => 1, pid => sub { nginx_worker() } },
);

if ($ONLY) {
	resumption();
	stop_all();
	exit 0;
}

###############################################################################

# 0. warm-up, not reported: in runs without it, the first handshake runs
# of fresh servers cost nginx and pion alike up to 1.8 times the CPU per
# handshake of the same load minutes later; 1 s before each run did not
# cover it

say("warm-up, ${SECONDS}s each");

for my $s (qw/ dtls pion /) {
	measure($s, 'handshake', 64, 16, group => 'warm-up');
}

measure('plain', 'echo', 64, 64, group => 'warm-up');

# 1. handshakes: each a full handshake, one echo, close_notify

say("handshakes/s, concurrency 64, $REPEAT x ${SECONDS}s each");

for my $rep (1 .. $REPEAT) {
	for my $s (qw/ dtls pion /) {
		push @runs, measure($s, 'handshake', 64, 16, rep => $rep,
			group => 'handshake');
	}
}

# 2. echo round trips on persistent sessions, each payload

say("echo/s, concurrency 64, payloads @PAYLOADS, $REPEAT x ${SECONDS}s each");

for my $size (@PAYLOADS) {
	for my $rep (1 .. $REPEAT) {
		for my $s (qw/ dtls plain pion /) {
			push @runs, measure($s, 'echo', 64, $size, rep => $rep,
				group => 'echo');
		}
	}
}

# 3. OpenSSL's floor: the server half of a handshake in one process

say("OpenSSL floor (cpu $SERVER_CPU)");

$floor{handshake} = floor_run('-m', 'handshake', '-d', $SECONDS,
	'-M', $MTU);
$floor{memory_openssl_default} = floor_run('-m', 'memory', '-N', 1000,
	'-M', $MTU);

# as ngx_dtls sets its SSL_CTX up: no record larger than dtls_mtu

$floor{memory} = floor_run('-m', 'memory', '-N', 1000, '-M', $MTU,
	'-F', $MTU);

# 4. how rates grow with concurrency

say("concurrency sweep @CONCURRENCY");

for my $n (@CONCURRENCY) {
	for my $s (qw/ dtls pion /) {
		push @runs, measure($s, 'handshake', $n, 16, group => 'sweep');
	}
	for my $s (qw/ dtls plain pion /) {
		push @runs, measure($s, 'echo', $n, 64, group => 'sweep');
	}
}

# 5. memory per idle session, and handshake cost with sessions held

say("idle sessions @SESSIONS");

for my $s (qw/ dtls plain pion /) {
	memory_curve($s);
}

# 6. full and resumed handshakes, PSK and certificates

my $resumption = resumption();

stop_all();

###############################################################################

my $results = {
	meta => \%meta,
	runs => \@runs,
	floor => \%floor,
	memory => \@memory,
	scaling => \@scaling,
	summary => summary(),
	resumption => $resumption,
	seconds => sprintf('%.0f', time() - $^T),
};

write_file("$OUT/benchmarks.json",
	JSON::PP->new->pretty->canonical->encode($results));

plots($results);
report($results);

say(sprintf("done in %.0fs: %s/benchmarks.md", time() - $^T, $OUT));

###############################################################################

sub measure {
	my ($s, $mode, $n, $size, %o) = @_;

	my $srv = $server{$s};
	my @args = ('-c', "127.0.0.1:$srv->{port}", '-m', $mode, '-n', $n,
		'-s', $size, '-d', $SECONDS, '-w', 1, '-b', '127.0.0.2',
		'-M', $MTU);

	push @args, $srv->{plain} ? ('-u')
		: $srv->{cert} ? ('-a', "$dir/client.crt", '-K', "$dir/client.key",
			'-C', $CERT_CIPHER)
		: ('-i', 'bench', '-k', $key, '-C', $CIPHER);

	push @args, '-r' if $o{resume};

	my $pid = $srv->{pid}->();
	my ($user0, $sys0) = cpu_seconds($pid);
	my $t0 = time();

	my $r = run_load(@args);

	my ($user1, $sys1) = cpu_seconds($pid);
	my $cpu = $user1 + $sys1 - $user0 - $sys0;
	my $wall = time() - $t0;

	$r->{server} = $s;
	$r->{group} = $o{group};
	$r->{rep} = $o{rep} if $o{rep};
	$r->{resume} = $o{resume} ? 1 : 0;

	# the server's CPU over the whole run (warm-up and set-up included),
	# per operation of the measured part, scaled to the run

	my $ops = $mode eq 'handshake' ? $r->{handshakes} : $r->{echoes};
	my $rate = $mode eq 'handshake' ? $r->{handshakes_per_s}
		: $r->{echoes_per_s};

	$r->{server_cpu_s} = $cpu;
	$r->{server_cpu_share} = $wall > 0 ? $cpu / $wall : 0;
	$r->{server_cpu_us_per_op} = $rate > 0 && $wall > 0
		? 1e6 * ($cpu / $wall) / $rate : undef;
	$r->{server_user_us_per_op} = $rate > 0 && $wall > 0
		? 1e6 * (($user1 - $user0) / $wall) / $rate : undef;

	say(sprintf("  %-6s %-9s n=%-4d %4dB  %9.0f/s  p50 %6dus  p99 %6dus"
		. "  server cpu %3.0f%%  fail %d retr %d",
		$s, $mode, $n, $size, $rate || 0, $r->{latency_us}{p50} // 0,
		$r->{latency_us}{p99} // 0, 100 * $r->{server_cpu_share},
		$r->{failures} // 0, $r->{retransmissions} // 0));

	return $r;
}

sub floor_run {
	my (@args) = @_;

	my $r = run_json($SERVER_CPU, "$TOOLS/dtls_floor", '-C', $CIPHER, @args);
	say("  floor " . join(' ', map { "$_=" . (ref $r->{$_} ? '...'
		: $r->{$_} // '-') } sort keys %$r));
	return $r;
}

# RSS per idle established session at each count (sessions added to those
# already held), of a fresh server process, and what a handshake costs
# the server meanwhile

sub memory_curve {
	my ($s) = @_;

	my $srv = $server{$s};

	my $handshakes = sub {
		my ($n) = @_;

		my $hs = measure($s, 'handshake', 16, 16, group => 'held');

		push @scaling, { server => $s, sessions => $n,
			handshakes_per_s => $hs->{handshakes_per_s},
			server_cpu_us_per_handshake => $hs->{server_cpu_us_per_op} };
	};

	restart($s);

	push @memory, map { { server => $s, %$_ } }
		rss_curve($s, $srv->{pid}->(), \@SESSIONS,
			sub { hold_start($srv, @_) },
			$srv->{plain} ? undef : $handshakes);

	# plain UDP sessions have no end but proxy_timeout: their upstream
	# sockets would keep the ephemeral ports the next server needs

	restart($s);
}

# n more idle sessions, in as many dtls_load processes as the fd limit
# asks for; each prints a line when all its sessions are up

sub hold_start {
	my ($srv, $n) = @_;

	my $per_process = 15000;
	my @holders;

	while ($n > 0) {
		my $k = $n > $per_process ? $per_process : $n;
		$n -= $k;

		my @args = ('-c', "127.0.0.1:$srv->{port}",
			'-N', $k, '-n', 64, '-b', '127.0.0.2', '-t', 10000,
			'-M', $MTU);

		push @args, $srv->{plain} ? ('-u')
			: ('-i', 'bench', '-k', $key, '-C', $CIPHER);

		push @holders, holder(@args);
	}

	return @holders;
}

# stdin closed: the holders close their sessions and exit

sub restart {
	my ($s) = @_;

	if ($s eq 'pion') {
		stop('pion');
		start_pion();
	} else {
		stop('nginx');
		start_nginx();
	}
}

###############################################################################

# nginx: DTLS-PSK, certificates (client certificates verified), plain
# UDP

sub start_nginx {
	my $plain = <<"EOF";

    server {
        listen         127.0.0.1:$port{plain} udp;
        proxy_pass     127.0.0.1:$port{echo};
        proxy_bind     127.0.0.1;
        proxy_timeout  10m;
    }
EOF

	nginx_start('nginx', $SERVER_CPU, $NGINX,
		dtls_server($port{dtls}, $MTU, $port{echo},
			dtls_psk_file => "$dir/psk", dtls_ciphers => $CIPHER)
		. dtls_server($port{cert}, $MTU, $port{echo},
			dtls_certificate => "$dir/server.crt",
			dtls_certificate_key => "$dir/server.key",
			dtls_client_certificate => "$dir/ca.crt",
			dtls_ciphers => $CERT_CIPHER)
		. $plain, $port{dtls});
}

sub start_pion {
	local $ENV{GOMAXPROCS} = 1;

	spawn('pion', $SERVER_CPU, "$TOOLS/pion_proxy",
		'--listen', "127.0.0.1:$port{pion}",
		'--backend', "127.0.0.1:$port{echo}",
		'--psk-file', "$dir/psk", '--cipher', $PION_CIPHER,
		'--bind', '127.0.0.1', '--mtu', $MTU);

	wait_udp($port{pion});
}

###############################################################################

# full handshakes against resumed ones (dtls_load -r: each session resumes
# the first, with the ticket nginx issued), PSK and certificates in turn,
# run after run; the server's CPU per handshake is what resumption saves

sub resumption {
	say("full and resumed handshakes/s, concurrency 64, $REPEAT x "
		. "${SECONDS}s each");

	my @r;

	measure($_, 'handshake', 64, 16, group => 'warm-up', resume => 1)
		for qw/ dtls cert /;

	for my $rep (1 .. $REPEAT) {
		for my $s (qw/ dtls cert /) {
			for my $resume (0, 1) {
				push @r, measure($s, 'handshake', 64, 16, rep => $rep,
					group => 'resumption', resume => $resume);
			}
		}
	}

	my %sum;

	for my $s (qw/ dtls cert /) {
		for my $resume (0, 1) {
			my @m = grep { $_->{server} eq $s && $_->{resume} == $resume }
				@r;
			my $failures = 0;
			$failures += $_->{failures} // 0 for @m;

			$sum{$s}{$resume ? 'resumed' : 'full'} = {
				handshakes_per_s => median(map { $_->{handshakes_per_s} } @m),
				server_cpu_us_per_handshake =>
					median(map { $_->{server_cpu_us_per_op} } @m),
				p50_us => median(map { $_->{latency_us}{p50} } @m),
				resumed_share => median(map { $_->{handshakes}
					? $_->{resumed} / $_->{handshakes} : 0 } @m),
				failures => $failures,
				cipher => $m[0]{cipher},
			};
		}

		$sum{$s}{ratio} = {
			handshakes => div($sum{$s}{resumed}{handshakes_per_s},
				$sum{$s}{full}{handshakes_per_s}),
			server_cpu => div($sum{$s}{full}{server_cpu_us_per_handshake},
				$sum{$s}{resumed}{server_cpu_us_per_handshake}),
		};
	}

	my $res = { meta => \%meta, runs => \@r, summary => \%sum };

	write_file("$OUT/benchmarks-resumption.json",
		JSON::PP->new->pretty->canonical->encode($res));
	write_file("$OUT/benchmarks-resumption.md", resumption_report($res));

	say("resumption: $OUT/benchmarks-resumption.md");

	return \%sum;
}

sub resumption_report {
	my ($res) = @_;

	my $m = $res->{meta};
	my $s = $res->{summary};

	my $md = <<"EOF";
# Full and resumed handshakes

Generated by `make bench` (bench/bench.pl, its last part; that part alone
with `BENCH_ONLY=resumption perl bench/bench.pl`) on $m->{date}; raw
results in [benchmarks-resumption.json](benchmarks-resumption.json). Set
up as in [benchmarks.md](benchmarks.md): one nginx worker on CPU 0, the
load generator (`dtls_load`) and the UDP echo backend on CPU 1, 64
clients, each in a loop: a new socket, a handshake with the cookie
exchange, one 16-byte echo, close_notify. "Full" is a full handshake each
time; "resumed" is `dtls_load -r`: every session offers the session of
the first handshake, and nginx resumes it from its session ticket (an
abbreviated handshake: no key exchange, no certificate, one flight
less). Medians of $m->{repeat} runs of $m->{seconds_per_run} s, taken in
turns.

- PSK: `$CIPHER`, `dtls_psk_file`;
- certificates: `$CERT_CIPHER`, an ECDSA P-256 server certificate and a
  P-256 client certificate that nginx verifies (`dtls_verify_client on`,
  the default).

| suite | handshake | handshakes/s | server CPU per handshake | p50 latency | resumed |
|---|---|---:|---:|---:|---:|
EOF

	for my $k (qw/ dtls cert /) {
		for my $h (qw/ full resumed /) {
			my $x = $s->{$k}{$h};
			$md .= sprintf("| %s | %s | %.0f | %.0f µs | %d µs | %.0f%% |\n",
				$k eq 'dtls' ? 'PSK' : 'ECDHE-ECDSA', $h,
				$x->{handshakes_per_s} // 0,
				$x->{server_cpu_us_per_handshake} // 0,
				$x->{p50_us} // 0, 100 * ($x->{resumed_share} // 0));
		}
	}

	$md .= "\n";

	for my $k (qw/ dtls cert /) {
		$md .= sprintf("- %s: server CPU per handshake, full ÷ resumed: "
			. "%s; handshakes per second, resumed ÷ full: %s.\n",
			$k eq 'dtls' ? 'PSK' : 'ECDHE-ECDSA',
			$s->{$k}{ratio}{server_cpu} // '-',
			$s->{$k}{ratio}{handshakes} // '-');
	}

	$md .= <<"EOF";

Handshakes per second count the whole loop, the client's work and the
cookie exchange included, on a machine where the load generator has one
core: with certificates, the client's own ECDHE and ECDSA signature bound
the full handshakes, and the server's CPU per handshake is the figure to
compare. Machine: $m->{cpu}, $m->{cores} cores, Linux $m->{kernel},
$m->{nginx}, $m->{openssl}.
EOF

	return $md;
}

###############################################################################

# a CA, the server's certificate and a client's, ECDSA P-256, for the
# certificate server

sub pki {
	my $ec = '-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes';

	system("openssl req -x509 $ec -keyout $dir/ca.key -out $dir/ca.crt "
		. "-subj /CN=bench-ca -days 2 2>/dev/null") == 0
		or die "openssl req (CA) failed\n";

	for my $name (qw/ server client /) {
		system("openssl req $ec -keyout $dir/$name.key "
			. "-subj /CN=bench-$name -out $dir/$name.csr 2>/dev/null "
			. "&& openssl x509 -req -in $dir/$name.csr -CA $dir/ca.crt "
			. "-CAkey $dir/ca.key -set_serial " . (1 + int rand 1e9)
			. " -days 2 -out $dir/$name.crt 2>/dev/null") == 0
			or die "openssl (certificate of $name) failed\n";
	}

	chmod 0600, map { "$dir/$_.key" } qw/ ca server client /;
}

###############################################################################

sub meta {
	%meta = (
		date => strftime('%Y-%m-%d %H:%M UTC', gmtime),
		machine($NGINX),
		pion => pion_version(),
		cipher => $CIPHER,
		seconds_per_run => $SECONDS,
		repeat => $REPEAT,
	);
}

sub pion_version {
	my $v = `dpkg-query -W -f '\${Version}' golang-github-pion-dtls.v2-dev 2>/dev/null`;
	return $v ? "pion/dtls $v (Debian)" : 'pion/dtls';
}

###############################################################################

# medians of the alternated runs, and the ratios the issue asks for

sub rate_of {
	my ($r) = @_;
	return $r->{mode} eq 'handshake' ? $r->{handshakes_per_s}
		: $r->{echoes_per_s};
}

sub med {
	my ($group, $server, $mode, $size, $n, $field) = @_;

	my @r = grep { $_->{group} eq $group && $_->{server} eq $server
		&& $_->{mode} eq $mode && $_->{payload} == $size
		&& $_->{concurrency} == $n } @runs;

	return median(map { $field ? $field->($_) : rate_of($_) } @r);
}

sub summary {
	my %s;

	$s{handshakes_per_s}{$_} = med('handshake', $_, 'handshake', 16, 64)
		for qw/ dtls pion /;
	$s{server_cpu_us_per_handshake}{$_} = med('handshake', $_, 'handshake',
		16, 64, sub { $_[0]{server_cpu_us_per_op} }) for qw/ dtls pion /;
	$s{server_user_us_per_handshake}{$_} = med('handshake', $_,
		'handshake', 16, 64, sub { $_[0]{server_user_us_per_op} })
		for qw/ dtls pion /;

	for my $size (@PAYLOADS) {
		$s{echoes_per_s}{$size}{$_} = med('echo', $_, 'echo', $size, 64)
			for qw/ dtls plain pion /;
		$s{echo_p99_us}{$size}{$_} = med('echo', $_, 'echo', $size, 64,
			sub { $_[0]{latency_us}{p99} }) for qw/ dtls plain pion /;
	}

	my $fl = $floor{handshake}{server_handshakes_per_cpu_s};
	my $hs = $s{handshakes_per_s};
	my $cpu = $s{server_cpu_us_per_handshake}{dtls};

	$s{ratio} = {
		handshakes_dtls_over_pion => div($hs->{dtls}, $hs->{pion}),
		handshakes_dtls_over_floor => div($hs->{dtls}, $fl),
		handshake_cpu_floor_over_dtls => div(
			$floor{handshake}{server_cpu_us_per_handshake}, $cpu),
		handshake_user_cpu_floor_over_dtls => div(
			$floor{handshake}{server_cpu_us_per_handshake},
			$s{server_user_us_per_handshake}{dtls}),
		echo64_dtls_over_plain => div($s{echoes_per_s}{64}{dtls},
			$s{echoes_per_s}{64}{plain}),
		echo64_dtls_over_pion => div($s{echoes_per_s}{64}{dtls},
			$s{echoes_per_s}{64}{pion}),
	};

	return \%s;
}

sub div {
	my ($a, $b) = @_;
	return undef unless defined $a && defined $b && $b > 0;
	return sprintf('%.3f', $a / $b) + 0;
}

###############################################################################

sub plots {
	my ($res) = @_;

	# rate vs concurrency

	for my $mode (qw/ handshake echo /) {
		my @servers = $mode eq 'handshake' ? qw/ dtls pion /
			: qw/ dtls plain pion /;

		my $data = '';
		for my $n (@CONCURRENCY) {
			$data .= $n;
			for my $s (@servers) {
				my $v = med('sweep', $s, $mode, $mode eq 'echo' ? 64 : 16,
					$n);
				$data .= ' ' . ($v // 'NaN');
			}
			$data .= "\n";
		}
		write_file("$dir/$mode.dat", $data);

		my $i = 1;
		my $plot = join ', ', map { $i++; "'$dir/$mode.dat' using 1:$i "
			. "with linespoints lw 2 title '$server{$_}{name}'" } @servers;

		gnuplot("bench-$mode-concurrency.png",
			$mode eq 'handshake' ? 'handshakes/s (handshake, echo, close)'
				: 'echo round trips/s (64 B)',
			'concurrent clients', 'set logscale x 2', $plot);
	}

	# memory vs sessions

	my $data = '';
	for my $n (@SESSIONS) {
		$data .= $n;
		for my $s (qw/ dtls plain pion /) {
			my ($m) = grep { $_->{server} eq $s && $_->{sessions} == $n }
				@memory;
			$data .= ' ' . ($m ? $m->{rss_kb} / 1024 : 'NaN');
		}
		$data .= "\n";
	}
	write_file("$dir/memory.dat", $data);

	my $i = 1;
	my $plot = join ', ', map { $i++; "'$dir/memory.dat' using 1:$i "
		. "with linespoints lw 2 title '$server{$_}{name}'" }
		qw/ dtls plain pion /;

	gnuplot('bench-memory.png', 'server RSS (MB)', 'idle sessions', '',
		$plot);
}

sub gnuplot {
	my ($png, $ylabel, $xlabel, $extra, $plot) = @_;

	my $script = <<"EOF";
set terminal pngcairo size 800,480 font 'sans,10' noenhanced
set output '$OUT/$png'
set grid
set key top left
set xlabel '$xlabel'
set ylabel '$ylabel'
set yrange [0:*]
$extra
plot $plot
EOF

	write_file("$dir/plot.gp", $script);
	system('gnuplot', "$dir/plot.gp") == 0
		or warn "gnuplot failed for $png\n";
}

###############################################################################

sub report {
	my ($res) = @_;

	require "$TOP/bench/report.pl";
	write_file("$OUT/benchmarks.md", Bench::Report::render($res,
		\%server, \@PAYLOADS, \@CONCURRENCY, \@SESSIONS));
}

###############################################################################
