#!/usr/bin/perl

# make bench-sessions: what an idle session costs nginx, side by side in
# one run, each case in an nginx of its own (one worker):
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
# worker's RSS before and after, per session.  Writes
# docs/benchmarks-sessions.md.  Knobs: BENCH_SESSIONS (default 10000),
# BENCH_ZONE_SESSIONS (default 100000), BENCH_OUT (default docs/),
# BENCH_KEEP (keep the run's directory).  The processes, holders and
# helpers are bench/Bench.pm's.

use warnings;
use strict;

use Cwd qw/ abs_path /;
use File::Basename qw/ dirname /;
use File::Temp qw/ tempdir /;
use IO::Socket::IP;
use POSIX qw/ strftime /;
use Time::HiRes qw/ time sleep /;

use lib dirname(__FILE__);
use Bench;

###############################################################################

my $TOP = abs_path(dirname(__FILE__) . '/..');
my $TOOLS = "$TOP/build/tools";
my $NGINX = "$TOP/build/nginx/sbin/nginx";
my $OUT = $ENV{BENCH_OUT} || "$TOP/docs";

my $N = $ENV{BENCH_SESSIONS} || 10000;
my $ZN = $ENV{BENCH_ZONE_SESSIONS} || 100000;

# dtls_load processes of 14,000 sessions (within the file limit of 20,000
# here), two from each source address (the local port range)
my $PER_PROCESS = 14000;

# 512 bytes a session, and room for the slab allocator's own pages
my $ZONE_MB = int($ZN * 512 / 1048576 * 1.15) + 1;

# nginx on one CPU, the clients and the backend on the other

my $SERVER_CPU = 0;
my $CLIENT_CPU = 1;

$dir = tempdir('ngx-dtls-sessions-XXXXXXXX', TMPDIR => 1,
	CLEANUP => !$ENV{BENCH_KEEP});
my $started = time();
my $key = join '', map { sprintf '%02x', int rand 256 } 1 .. 16;
my @holders;

$SIG{INT} = $SIG{TERM} = sub { stop_all(); exit 1 };

write_file("$dir/psk", "bench:$key\n");
chmod 0600, "$dir/psk";

my $echo = free_port();
spawn('echo', $CLIENT_CPU, "$TOOLS/udp_echo", '-l', "127.0.0.1:$echo");

my @cases = (
	[ 'own records', 'PSK-AES128-CCM8', '', $N ],
	[ 'OpenSSL records', 'PSK-AES128-CBC-SHA256', '', $N ],
	[ 'zone only', 'PSK-AES128-CCM8', "${ZONE_MB}m", $ZN ],
);

my @results = map { measure(@$_) } @cases;

stop_all();
report(@results);

###############################################################################

sub measure {
	my ($name, $cipher, $zone, $n) = @_;

	my $port = free_port();

	start_nginx($port, $cipher, $zone);

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

	push @holders, holder("$TOOLS/dtls_load", $CLIENT_CPU, '-c',
		"127.0.0.1:$port", '-N', $n, '-n', 64, '-b', $bind, '-t', 10000,
		'-i', 'bench', '-k', $key, '-C', $cipher);
}

sub start_nginx {
	my ($port, $cipher, $zone) = @_;

	my $conf = $zone
		? "dtls_session_zone  bench:$zone;\n"
			. "        proxy_timeout      2s;\n"
			. "        access_log         $dir/access.log zone;"
		: "proxy_timeout      10m;\n"
			. "        access_log         off;";

	unlink "$dir/access.log";

	write_file("$dir/nginx.conf", <<"EOF");
daemon off;
worker_processes 1;
worker_rlimit_nofile 20000;
error_log $dir/error.log notice;
pid $dir/nginx.pid;

events {
    worker_connections 50000;
}

stream {
    log_format  zone  '\$dtls_zone_sessions \$dtls_zone_evictions';

    server {
        listen                127.0.0.1:$port udp;
        dtls                  on;
        dtls_psk_file         $dir/psk;
        dtls_ciphers          $cipher;
        dtls_handshake_limit  4096;
        proxy_buffer_size     2k;
        proxy_pass            127.0.0.1:$echo;
        proxy_bind            127.0.0.1;
        $conf
    }
}
EOF

	spawn('nginx', $SERVER_CPU, $NGINX, '-p', $dir, '-c', "$dir/nginx.conf");

	wait_for(sub { nginx_worker() }, 10) or die "nginx did not start\n";
	wait_for(sub {
		!IO::Socket::IP->new(Proto => 'udp',
			LocalAddr => "127.0.0.1:$port");
	}, 10) or die "nginx does not listen on udp port $port\n";
}

###############################################################################

sub report {
	my @r = @_;

	my $md = "# Memory per idle DTLS session: the module's records, "
		. "OpenSSL's, the zone\n\n"
		. "Written by `make bench-sessions` (bench/sessions.pl), "
		. strftime('%Y-%m-%d %H:%M UTC', gmtime) . ", "
		. sprintf('%.0f s', time() - $started) . ". One nginx worker "
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

	write_file("$OUT/benchmarks-sessions.md", $md);
	say("wrote $OUT/benchmarks-sessions.md");
}

###############################################################################
