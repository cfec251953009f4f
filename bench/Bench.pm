package Bench;

# What the bench/*.pl share: the processes they start (by name, on a CPU,
# output in the run's directory), nginx with one worker, the dtls_load
# holders and runs, the listening socket buffer, a process's RSS and CPU
# times, free ports, medians.
#
#	use lib dirname(__FILE__);
#	use Bench;
#	$dir = tempdir(...);
#	spawn('nginx', 0, $nginx, '-c', "$dir/nginx.conf");

use warnings;
use strict;

use base qw/ Exporter /;

use File::Basename qw/ basename /;
use IO::Socket::IP;
use JSON::PP;
use POSIX qw/ WNOHANG strftime /;
use Time::HiRes qw/ sleep time /;

our @EXPORT = qw/ $dir %pids %holders spawn stop stop_all holder hold_stop
	run_load nginx_start nginx_worker wait_udp set_rmem rss_kb cpu_seconds free_port wait_for
	write_file median say written_by /;

# the run's directory; the processes started, by name; the pids of the
# dtls_load processes that hold sessions

our $dir;
our (%pids, %holders);

our $NAME = basename($0, '.pl');

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

# a dtls_load -m hold on a CPU, with its arguments, once it says it holds
# its sessions: [ pid, its stdin (closed, it ends), its stdout ]

sub holder {
	my ($load, $cpu, @args) = @_;

	pipe(my $r, my $w) or die "pipe: $!\n";
	pipe(my $in_r, my $in_w) or die "pipe: $!\n";

	my $pid = fork() // die "fork: $!\n";

	if ($pid == 0) {
		close $r;
		close $in_w;
		open STDOUT, '>&', $w or die;
		open STDIN, '<&', $in_r or die;
		open STDERR, '>>', "$dir/load.err";
		exec('taskset', '-c', $cpu, $load, '-m', 'hold', @args)
			or die "exec: $!\n";
	}

	close $w;
	close $in_r;

	my $line = <$r>;
	die "dtls_load hold: no ready line (see $dir/load.err)\n"
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

# a dtls_load run to its end, on a CPU: its result line, decoded

sub run_load {
	my ($load, $cpu, @args) = @_;

	my $out = qx{taskset -c $cpu $load @args 2>>$dir/load.err};
	my ($line) = grep { /^\{/ } reverse split /\n/, $out;

	die "dtls_load @args: no result (see $dir/load.err)\n"
		unless defined $line;

	return decode_json($line);
}

# nginx as NAME on a CPU, one worker, with the contents of its stream
# block, once its worker is up and listens on each UDP port of PORTS

sub nginx_start {
	my ($name, $cpu, $binary, $stream, @ports) = @_;

	write_file("$dir/$name.conf", <<"EOF");
daemon off;
worker_processes 1;
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
	my ($target, $started) = @_;

	return "Written by `make $target` (bench/$NAME.pl), "
		. strftime('%Y-%m-%d %H:%M UTC', gmtime) . ", "
		. sprintf('%.0f s', time() - $started);
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
