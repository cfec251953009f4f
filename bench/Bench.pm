package Bench;

# What the bench/*.pl share: the repository's paths, the CPUs, the run's
# directory and its end, the processes they start (by name, on a CPU,
# output in the run's directory), the PSK file and the echo backend,
# nginx with one worker, the dtls_load holders and runs, a process's RSS
# per idle session, the listening socket buffer, a process's RSS and CPU
# times, free ports, medians.
#
#	use lib dirname(__FILE__);
#	use Bench;
#	start_run();
#	my $key = psk_file();
#	my $echo = echo_backend();
#	nginx_start('nginx', $SERVER_CPU, $NGINX, $stream, $port);

use warnings;
use strict;

use base qw/ Exporter /;

use Cwd qw/ abs_path /;
use File::Basename qw/ basename dirname /;
use File::Temp qw/ tempdir /;
use IO::Socket::IP;
use JSON::PP;
use POSIX qw/ WNOHANG strftime /;
use Time::HiRes qw/ sleep time /;

our @EXPORT = qw/ $TOP $TOOLS $NGINX $SERVER_CPU $CLIENT_CPU $dir %pids
	start_run psk_file random_key echo_backend spawn stop stop_all
	holder hold_stop rss_curve run_json run_load nginx_start dtls_server
	nginx_worker wait_udp set_rmem rss_kb cpu_seconds free_port wait_for
	write_file machine median say written_by /;

# the repository, its tools and its nginx; the server under test runs on
# one CPU, the clients and the backend on the other

our $TOP = abs_path(dirname(__FILE__) . '/..');
our $TOOLS = "$TOP/build/tools";
our $NGINX = "$TOP/build/nginx/sbin/nginx";
our ($SERVER_CPU, $CLIENT_CPU) = (0, 1);

# the run's directory; the processes started, by name; the pids of the
# dtls_load processes that hold sessions; the socket buffer's default
# before set_rmem()

our $dir;
our (%pids, %holders);
our $rmem_default;

our $NAME = basename($0, '.pl');

# the run's directory (kept with BENCH_KEEP); however the run ends, the
# processes it started are stopped and the socket buffer's default is
# put back

sub start_run {
	$dir = tempdir("ngx-dtls-$NAME-XXXXXXXX", TMPDIR => 1,
		CLEANUP => !$ENV{BENCH_KEEP});
	$SIG{INT} = $SIG{TERM} = sub { exit 1 };
}

END {
	local $?;
	stop_all();
	set_rmem($rmem_default) if defined $rmem_default;
}

sub random_key {
	return unpack('H*', join '', map { chr int rand 256 } 1 .. 16);
}

# the run's PSK file, $dir/psk: the identity "bench" with a key made for
# this run only, which it returns

sub psk_file {
	my $key = random_key();

	write_file("$dir/psk", "bench:$key\n");
	chmod 0600, "$dir/psk";

	return $key;
}

# udp_echo on the clients' CPU: its port

sub echo_backend {
	my $port = free_port();

	say("backend: udp_echo on 127.0.0.1:$port (cpu $CLIENT_CPU)");
	spawn('echo', $CLIENT_CPU, "$TOOLS/udp_echo", '-l', "127.0.0.1:$port");

	return $port;
}

sub spawn {
	my ($name, $cpu, @cmd) = @_;

	my $pid = fork() // die "fork: $!\n";

	if ($pid == 0) {
		open STDOUT, '>>', "$dir/$name.out";
		open STDERR, '>&', \*STDOUT;
		exec('taskset', '-c', $cpu, @cmd) or die "exec $cmd[0]: $!\n";
	}

	$pids{$name} = $pid;
	return $pid;
}

sub stop {
	my ($name) = @_;

	my $pid = delete $pids{$name} or return;

	kill 'TERM', $pid;

	for (1 .. 100) {
		return if waitpid($pid, WNOHANG) != 0;
		sleep 0.1;
	}

	kill 'KILL', $pid;
	waitpid($pid, 0);
}

sub stop_all {
	kill 'KILL', keys %holders;
	stop($_) for keys %pids;
}

# a dtls_load -m hold on the clients' CPU, with its arguments, once it
# says it holds its sessions: [ pid, its stdin (closed, it ends), its
# stdout ]

sub holder {
	my (@args) = @_;

	pipe(my $r, my $w) or die "pipe: $!\n";
	pipe(my $in_r, my $in_w) or die "pipe: $!\n";

	my $pid = fork() // die "fork: $!\n";

	if ($pid == 0) {
		close $r;
		close $in_w;
		open STDOUT, '>&', $w or die;
		open STDIN, '<&', $in_r or die;
		open STDERR, '>>', "$dir/dtls_load.err";
		exec('taskset', '-c', $CLIENT_CPU, "$TOOLS/dtls_load", '-m', 'hold',
			@args) or die "exec: $!\n";
	}

	close $w;
	close $in_r;

	my $line = <$r>;
	die "dtls_load hold: no ready line (see $dir/dtls_load.err)\n"
		unless defined $line;
	die "dtls_load hold: not ready: $line"
		unless decode_json($line)->{ready};

	$holders{$pid} = 1;
	return [ $pid, $in_w, $r ];
}

sub hold_stop {
	for my $h (@_) {
		close $h->[1];
		my $r = $h->[2];
		my @rest = <$r>;
		waitpid($h->[0], 0);
		delete $holders{$h->[0]};
	}
}

# RSS per idle session of the process PID at each count of idle sessions
# in COUNTS, HOLD(N) holding N more (it returns their holders): 100
# sessions first warm the allocator and the code up, and the RSS after
# they ended is the base.  WITH(N), if given, runs with no session held
# and with each count held.  Says each count's figures after LABEL.

sub rss_curve {
	my ($label, $pid, $counts, $hold, $with) = @_;

	hold_stop($hold->(100));
	sleep 1;

	my $base = rss_kb($pid);
	my ($held, @holders, @curve) = (0);

	$with->(0) if $with;

	for my $n (@$counts) {
		push @holders, $hold->($n - $held);
		$held = $n;
		sleep 1;

		my $rss = rss_kb($pid);
		my $per = ($rss - $base) * 1024 / $n;

		push @curve, { sessions => $n, rss_kb => $rss, base_rss_kb => $base,
			bytes_per_session => int($per) };

		say(sprintf("  %-6s %6d sessions: RSS %d kB (base %d kB), "
			. "%.1f kB per session", $label, $n, $rss, $base, $per / 1024));

		$with->($n) if $with;
	}

	hold_stop(@holders);

	return @curve;
}

# a tool (dtls_load, dtls_floor) run to its end on a CPU, its stderr in
# the run's directory: its result line, decoded

sub run_json {
	my ($cpu, $tool, @args) = @_;

	my $err = "$dir/" . basename($tool) . '.err';
	my $out = qx{taskset -c $cpu $tool @args 2>>$err};
	my ($line) = grep { /^\{/ } reverse split /\n/, $out;

	die basename($tool) . " @args: no result (see $err)\n"
		unless defined $line;

	return decode_json($line);
}

# dtls_load on the clients' CPU

sub run_load {
	return run_json($CLIENT_CPU, "$TOOLS/dtls_load", @_);
}

# nginx as NAME on a CPU, one worker, with the contents of its stream
# block, once its worker is up and listens on each UDP port of PORTS.
# The worker runs as the user who runs the bench, root too: it reads the
# run's files of mode 0600 (psk.pl's replaced database).

sub nginx_start {
	my ($name, $cpu, $binary, $stream, @ports) = @_;

	my $user = $> == 0 ? "user root;\n" : '';

	write_file("$dir/$name.conf", <<"EOF");
daemon off;
${user}worker_processes 1;
worker_rlimit_nofile 20000;
error_log $dir/$name.error.log notice;
pid $dir/$name.pid;

events {
    worker_connections 50000;
}

stream {
$stream}
EOF

	spawn($name, $cpu, $binary, '-p', $dir, '-c', "$dir/$name.conf");

	wait_for(sub { nginx_worker($name) }, 10)
		or die "$name did not start (see $dir/$name.error.log)\n";
	wait_udp($_) for @ports;
}

# a DTLS server block of bench.pl and memory.pl: on 127.0.0.1:PORT, with
# the directives of AUTH (name => value: its keys, certificates, cipher),
# records of MTU bytes at most, in front of the backend on 127.0.0.1:ECHO.
# The upstream sockets bind to 127.0.0.1, the clients to 127.0.0.2: two
# ephemeral port ranges, not one for both.

sub dtls_server {
	my ($port, $mtu, $echo, @auth) = @_;

	my @d = (listen => "127.0.0.1:$port udp", dtls => 'on', @auth,
		dtls_handshake_limit => 4096, dtls_mtu => $mtu,
		proxy_pass => "127.0.0.1:$echo", proxy_bind => '127.0.0.1',
		proxy_timeout => '10m');

	my $conf = "\n    server {\n";

	while (my ($name, $value) = splice @d, 0, 2) {
		$conf .= sprintf("        %-24s %s;\n", $name, $value);
	}

	return "$conf    }\n";
}

# a UDP port is bound when binding it again fails

sub wait_udp {
	my ($port) = @_;

	wait_for(sub {
		!IO::Socket::IP->new(Proto => 'udp',
			LocalAddr => "127.0.0.1:$port");
	}, 10) or die "nothing listens on udp port $port\n";
}

# the worker of the nginx started as NAME ("nginx" by default)

sub nginx_worker {
	my ($name) = @_;

	my $master = $pids{$name // 'nginx'} or return undef;
	my ($w) = split /\s+/, `pgrep -P $master 2>/dev/null` || '';
	return $w || undef;
}

# the listening sockets' receive buffer (rmem_default): the old value,
# put back at the run's end, or undef when it cannot be set

sub set_rmem {
	my ($v) = @_;

	my $f = '/proc/sys/net/core/rmem_default';
	open my $fh, '<', $f or return undef;
	my $old = <$fh>;
	chomp $old;
	close $fh;

	open $fh, '>', $f or do {
		say("cannot set $f ($!): the default socket buffers are used");
		return undef;
	};
	print $fh "$v\n";
	close $fh;

	$rmem_default //= $old;
	return $old;
}

sub rss_kb {
	my ($pid) = @_;

	open my $fh, '<', "/proc/$pid/status" or return 0;
	while (<$fh>) {
		return $1 if /^VmRSS:\s+(\d+)/;
	}
	return 0;
}

# a process's user and system CPU seconds

sub cpu_seconds {
	my ($pid) = @_;

	open my $fh, '<', "/proc/$pid/stat" or return (0, 0);
	my $stat = <$fh>;
	$stat =~ s/^.*\) //;
	my @f = split / /, $stat;

	# utime and stime, fields 14 and 15 of proc(5), in clock ticks

	my $hz = POSIX::sysconf(POSIX::_SC_CLK_TCK());
	return ($f[11] / $hz, $f[12] / $hz);
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

# how a report begins: what wrote it (make TARGET), when, in how long

sub written_by {
	my ($target) = @_;

	return "Written by `make $target` (bench/$NAME.pl), "
		. strftime('%Y-%m-%d %H:%M UTC', gmtime) . ", "
		. sprintf('%.0f s', time() - $^T);
}

# the machine and the software of the run: cpu, cores, kernel, openssl,
# nginx (the version of the binary NGINX)

sub machine {
	my ($nginx) = @_;

	my $cpu = `grep -m1 'model name' /proc/cpuinfo`;
	$cpu =~ s/^.*:\s*//;
	chomp $cpu;

	my $nginx_v = `$nginx -v 2>&1`;
	chomp $nginx_v;

	return (
		cpu => $cpu,
		cores => scalar(() = `grep '^processor' /proc/cpuinfo` =~ /\n/g),
		kernel => `uname -r` =~ s/\n//r,
		openssl => `openssl version` =~ s/\n//r,
		nginx => $nginx_v =~ s/^nginx version: //r,
	);
}

sub median {
	my @v = sort { $a <=> $b } grep { defined } @_;
	return undef unless @v;
	return @v % 2 ? $v[$#v / 2] : ($v[@v / 2 - 1] + $v[@v / 2]) / 2;
}

sub say {
	print "$NAME: @_\n";
}

1;
