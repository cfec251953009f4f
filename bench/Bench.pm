package Bench;

# What bench/bench.pl and bench/memory.pl share: the processes they start
# (by name, on a CPU, output in the run's directory), the dtls_load
# holders, the listening socket buffer, a process's RSS, free ports.
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
use POSIX qw/ WNOHANG /;
use Time::HiRes qw/ sleep time /;

our @EXPORT = qw/ $dir %pids %holders spawn stop stop_all hold_stop
	nginx_worker set_rmem rss_kb free_port wait_for write_file say /;

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

sub hold_stop {
	for my $h (@_) {
		close $h->[1];
		my $r = $h->[2];
		my @rest = <$r>;
		waitpid($h->[0], 0);
		delete $holders{$h->[0]};
	}
}

sub nginx_worker {
	my $master = $pids{nginx} or return undef;
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
	print "$NAME: @_\n";
}

1;
