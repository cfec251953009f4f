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
# BENCH_ZONE_SESSIONS (default 100000).

use warnings;
use strict;

use Cwd qw/ abs_path /;
use File::Basename qw/ dirname /;
use File::Temp qw/ tempdir /;
use IO::Socket::IP;
use JSON::PP qw/ decode_json /;
use POSIX qw/ strftime /;
use Time::HiRes qw/ time sleep /;

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

my $dir = tempdir('ngx-dtls-sessions-XXXXXXXX', TMPDIR => 1, CLEANUP => !$ENV{BENCH_KEEP});
my $started = time();
my $key = join '', map { sprintf '%02x', int rand 256 } 1 .. 16;
my (%pids, @holders);

$SIG{INT} = $SIG{TERM} = sub { stop_all(); exit 1 };

write_file("$dir/psk", "bench:$key\n");
chmod 0600, "$dir/psk";

my $echo = free_port();
spawn('echo', "$TOOLS/udp_echo", '-l', "127.0.0.1:$echo");

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
	stop_holders();
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

	stop_holders();
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

	pipe(my $r, my $w) or die "pipe: $!\n";
	pipe(my $in_r, my $in_w) or die "pipe: $!\n";

	my $pid = fork() // die "fork: $!\n";

	if ($pid == 0) {
		close $r;
		close $in_w;
		open STDOUT, '>&', $w or die;
		open STDIN, '<&', $in_r or die;
		open STDERR, '>>', "$dir/load.err";
		exec("$TOOLS/dtls_load", '-c', "127.0.0.1:$port", '-m', 'hold',
			'-N', $n, '-n', 64, '-b', $bind, '-t', 10000,
			'-i', 'bench', '-k', $key, '-C', $cipher)
			or die "exec: $!\n";
	}

	close $w;
	close $in_r;

	my $line = <$r>;
	die "dtls_load hold: no ready line (see $dir/load.err)\n"
		unless defined $line && decode_json($line)->{ready};

	push @holders, [ $pid, $in_w, $r ];
}

sub stop_holders {
	while (my $h = pop @holders) {
		close $h->[1];
		my $r = $h->[2];
		my @rest = <$r>;
		waitpid($h->[0], 0);
	}
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

	spawn('nginx', $NGINX, '-p', $dir, '-c', "$dir/nginx.conf");

	wait_for(sub { nginx_worker() }, 10) or die "nginx did not start\n";
	wait_for(sub {
		!IO::Socket::IP->new(Proto => 'udp',
			LocalAddr => "127.0.0.1:$port");
	}, 10) or die "nginx does not listen on udp port $port\n";
}

sub nginx_worker {
	my $master = $pids{nginx} or return undef;
	my ($w) = split /\s+/, `pgrep -P $master 2>/dev/null` || '';
	return $w || undef;
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

sub spawn {
	my ($name, @cmd) = @_;

	my $pid = fork() // die "fork: $!\n";

	if ($pid == 0) {
		open STDOUT, '>>', "$dir/$name.log";
		open STDERR, '>&', \*STDOUT;
		exec(@cmd) or die "exec: $!\n";
	}

	$pids{$name} = $pid;
}

sub stop {
	my ($name) = @_;

	my $pid = delete $pids{$name} or return;
	kill 'TERM', $pid;

	wait_for(sub { waitpid($pid, 1) != 0 }, 10) and return;

	kill 'KILL', $pid;
	waitpid($pid, 0);
}

sub stop_all {
	kill 'KILL', map { $_->[0] } @holders;
	stop($_) for keys %pids;
}

sub rss_kb {
	my ($pid) = @_;

	open my $fh, '<', "/proc/$pid/status" or return 0;
	while (<$fh>) {
		return $1 if /^VmRSS:\s+(\d+)/;
	}
	return 0;
}

sub free_port {
	my $s = IO::Socket::IP->new(Proto => 'udp', LocalAddr => '127.0.0.1:0')
		or die "udp socket: $!\n";
	return $s->sockport();
}

sub wait_for {
	my ($cond, $timeout) = @_;

	my $end = time() + $timeout;
	while (time() < $end) {
		my $v = $cond->();
		return $v if $v;
		sleep 0.05;
	}
	return undef;
}

sub write_file {
	my ($path, $content) = @_;
	open my $fh, '>', $path or die "$path: $!\n";
	print $fh $content;
	close $fh;
}

sub say {
	print "sessions: @_\n";
}

###############################################################################
