package Test::Nginx::DTLS;

# What the DTLS tests share, beside Test::Nginx as nginx-tests keeps
# Test::Nginx::Stream beside it: random keys, PSK files, the dtls_client
# tool, the access log, and what a test reads of a process or of PATH;
# and, as functions of the test object, what our harness does beyond
# nginx-tests' Test::Nginx (whose methods are all Test::Nginx has): the
# error log since a mark, the tools and UDP backends, nginx's workers.
#
#	use Test::Nginx::DTLS qw/ :DEFAULT /;
#
#	my $key = hexkey();
#	psk_file($t, 'psk', "dev-1:$key\n");
#	my ($out, $rc) = dtls_client($t, '-c', "127.0.0.1:$port",
#		'-i', 'dev-1', '-k', $key, '-m', 'echo');
#	my @lines = access_lines($t);
#
#	my $c = dtls_lines($t, '-c', "127.0.0.1:$port", '-i', 'dev-1',
#		'-k', $key);
#	is($c->io('handshake'), 'handshake ok ...');
#	is($c->io('send hello'), 'recv be:hello');
#	is($c->close(), 0);

###############################################################################

use warnings;
use strict;

use base qw/ Exporter /;

use IO::Select;
use IO::Socket::INET;
use POSIX ();

# the harness's subs beyond nginx-tests' Test::Nginx: NAME($t, ...) is
# $t->_NAME(...) (Test::Nginx), or what the comment says

our %HARNESS = (
	log_mark => '_log_mark',        # the error log's length, a mark
	error_log => '_error_log',      # the error log (since a mark)
	grep_log => '_grep_log',        # its lines that match (since a mark)
	wait_log => '_wait_log',        # waits until it matches
	log_alerts => '_log_alerts',    # its [alert], [crit], [emerg] lines
	wait_for => '_wait_for',        # polls a condition, bounded
	tool => '_tool',                # build/tools/NAME..., or skip_all
	run_tool => '_run_tool',        # a tool's (stdout, exit code)
	daemon => '_daemon',            # a background command: its pid
	daemon_output => '_daemon_output',
	udp_echo => '_udp_echo',
	udp_relay => '_udp_relay',
	udp_relay_stop => '_udp_relay_stop',
	udp_request => '_udp_request',
	spawn => '_spawn',
	expand => '_expand',            # %%PORT_N%%, %%TESTDIR%% expanded
	test_config => '_test_config',  # nginx -t: (exit code, output)
	workers => '_workers',
	running => '_running',
	exit_status => '_exit_status',
	nginx_pid => '_pid',
	nginx_binary => '_binary',
	reload_wait => '_reload',       # HUP; true once a new worker is up
	stop_status => '_stop',         # stop; nginx's exit status
);

for my $name (keys %HARNESS) {
	my $m = $HARNESS{$name};
	no strict 'refs';
	*{$name} = sub { my $t = shift; return $t->$m(@_); };
}

sub port_free { Test::Nginx::_port_free(@_) }

our @EXPORT = (qw/ hexkey psk_file dtls_client dtls_lines access_mark
	access_lines access_line wait_access client_port reload_done
	rule_relay /, sort keys %HARNESS);
our @EXPORT_OK = qw/ which proc_kb line_of rx port_free /;

###############################################################################

# N random bytes (16 by default) as hex, the form of a PSK file's keys

sub hexkey {
	my ($n) = @_;
	return unpack('H*', join '', map { chr int rand 256 } 1 .. ($n || 16));
}

# a file of the test directory that only its owner may read, as nginx
# wants its PSK and secret files (a MODE to test what else it says)

sub psk_file {
	my ($t, $name, $content, $mode) = @_;

	my $path = $t->testdir() . "/$name";

	$t->write_file($name, $content);
	chmod(defined $mode ? $mode : 0600, $path) or die "chmod $path: $!\n";

	return $path;
}

# the dtls_client tool (t/tools/dtls_client.c) with its arguments, run
# by Test::Nginx's run_tool (with its options, a hash in front): (stdout,
# exit code), or stdout in scalar context

sub dtls_client {
	my ($t, @args) = @_;

	my $opts = ref $args[0] eq 'HASH' ? shift @args : {};
	return run_tool($t, $opts, 'dtls_client', @args);
}

###############################################################################

# the access log's length, a MARK to read what is written after it

# dtls_client -m lines with its arguments, fed a command at a time: io()
# sends one and returns the line that answers it (undef if none came in
# the client's -t and a second, and a wait's time); close() ends its
# input and returns its exit status (-1 if it had to be killed); out()
# is what it answered

sub dtls_lines {
	my ($t, @args) = @_;

	my ($timeout) = join(' ', @args) =~ /-t (\d+)/;

	pipe(my $cr, my $pw) or die "pipe: $!\n";
	pipe(my $pr, my $cw) or die "pipe: $!\n";

	my $pid = fork();
	die "fork: $!\n" unless defined $pid;

	if ($pid == 0) {
		close $pw;
		close $pr;
		open STDIN, '<&', $cr;
		open STDOUT, '>&', $cw;
		open STDERR, '>>', $t->testdir() . '/tools.stderr.log';
		no warnings 'exec';
		exec { tool($t, 'dtls_client') } 'dtls_client', '-m', 'lines',
			@args;
		POSIX::_exit(127);
	}

	close $cr;
	close $cw;
	$pw->autoflush(1);

	return bless { pid => $pid, in => $pw, from => $pr, buf => '',
		out => '', wait => ($timeout // 5000) / 1000 + 1 },
		'Test::Nginx::DTLS::Lines';
}

sub access_mark {
	my ($t) = @_;
	return length $t->read_file('access.log');
}

# the access log's lines (written after a MARK, when one is given), or
# how many there are in scalar context

sub access_lines {
	my ($t, $mark) = @_;

	my $log = $t->read_file('access.log');
	my @lines = split /\n/, $mark ? substr($log, $mark) : $log;

	return wantarray ? @lines : scalar @lines;
}

# the line of the session from a client port, or undef

sub access_line {
	my ($t, $port, $mark) = @_;

	my ($line) = grep { /^$port / } access_lines($t, $mark);
	return $line;
}

# waits (TIMEOUT seconds, 5 by default) until the access log has N lines
# after the MARK; returns the lines there are, or in scalar context
# whether N came

sub wait_access {
	my ($t, $n, $timeout, $mark) = @_;

	my @lines;

	my $came = wait_for($t, sub {
		@lines = access_lines($t, $mark);
		return @lines >= $n;
	}, $timeout || 5);

	return wantarray ? @lines : $came;
}

# the client port of the first session that nginx logged after a MARK of
# the error log, or 0 if none was

sub client_port {
	my ($t, $mark) = @_;

	my ($port) = error_log($t, $mark)
		=~ /udp client 127\.0\.0\.1:(\d+) connected/;
	return $port // 0;
}

# a reload done: HUP, a new worker up and every old one gone (they share
# the listening socket, and would answer from the old configuration);
# true if that came in 10 s

sub reload_done {
	my ($t) = @_;

	my %old = map { $_ => 1 } workers($t);

	return reload_wait($t)
		&& wait_for($t, sub { !grep { $old{$_} } workers($t) }, 10);
}

###############################################################################

# a UDP relay in a child process for a test that alters what passes: it
# listens on 127.0.0.1:PORT for each of PORTS and gives every datagram
# that comes, to a listening socket or to one it opened, to
# RULE->($r, $fh, $peer, $buf), which forwards it as it will.  $r->{listen}
# are the listening sockets in the order of PORTS, $r->socket(ADDR) opens
# one (connected to ADDR if given) that the relay reads too, and
# $r->{count} (what the rule dropped or copied) is the child's exit
# status.  Returns the child's pid; TERM ends it, as do 30 s of silence.

sub rule_relay {
	my ($ports, $rule) = @_;

	my $r = bless {}, 'Test::Nginx::DTLS::Relay';
	$r->{count} = 0;
	$r->{listen} = [ map { $r->socket(undef, "127.0.0.1:$_") } @$ports ];

	my $pid = fork() // die "fork: $!
";

	if ($pid) {
		close $_ for @{$r->{listen}};
		return $pid;
	}

	# the child ends without the test's destructors (they stop nginx)

	local $SIG{TERM} = sub { POSIX::_exit($r->{count}) };

	$r->{select} = IO::Select->new(@{$r->{listen}});

	eval {
		while (my @ready = $r->{select}->can_read(30)) {
			for my $fh (@ready) {
				my $peer = $fh->recv(my $buf, 65536);
				$rule->($r, $fh, $peer, $buf);
			}
		}
		1;
	} or print STDERR "relay: $@";

	POSIX::_exit($r->{count});
}

###############################################################################

# a command's path in PATH, or undef

sub which {
	my ($name) = @_;

	for my $dir (split /:/, $ENV{PATH} || '/usr/bin:/bin') {
		return "$dir/$name" if $dir ne '' && -x "$dir/$name";
	}

	return undef;
}

# a field of /proc/PID/status in kB (VmRSS, VmData), or undef

sub proc_kb {
	my ($pid, $field) = @_;

	open my $fh, '<', "/proc/$pid/status" or return undef;
	my ($kb) = join('', <$fh>) =~ /^$field:\s+(\d+) kB/m;
	return $kb;
}

# the number of the first line of a test directory's file that matches

sub line_of {
	my ($t, $name, $re) = @_;

	my @lines = split /\n/, $t->read_file($name);
	my ($n) = grep { $lines[$_ - 1] =~ $re } 1 .. @lines;

	die "no $re in $name\n" unless $n;
	return $n;
}

# a regex made of pieces, to keep lines short

sub rx {
	my $s = join '', map { "$_" =~ s/^\(\?\^\w*:(.*)\)$/$1/sr } @_;
	return qr/$s/m;
}

###############################################################################

package Test::Nginx::DTLS::Relay;

# a UDP socket of the relay's, connected to PEER or bound to LOCAL (by
# default 127.0.0.1, any port), that the relay reads

sub socket {
	my ($r, $peer, $local) = @_;

	my $s = IO::Socket::INET->new(Proto => 'udp',
		$peer ? (PeerAddr => $peer) : (LocalAddr => $local // '127.0.0.1'))
		or die "relay: $!\n";

	$r->{select}->add($s) if $r->{select};
	return $s;
}

###############################################################################

package Test::Nginx::DTLS::Lines;

use IO::Select;
use POSIX qw/ WNOHANG /;
use Time::HiRes qw/ sleep time /;

sub io {
	my ($self, $cmd) = @_;

	print { $self->{in} } "$cmd\n";

	my ($ms) = $cmd =~ /^wait (\d+)/;
	my $end = time() + $self->{wait} + ($ms // 0) / 1000;
	my $sel = IO::Select->new($self->{from});

	while ($self->{buf} !~ /\n/) {
		my $left = $end - time();
		last if $left <= 0 || !$sel->can_read($left);
		last unless sysread($self->{from}, $self->{buf}, 65536,
			length $self->{buf});
	}

	return undef unless $self->{buf} =~ s/^(.*)\n//;

	$self->{out} .= "$cmd: $1\n";
	return $1;
}

sub out {
	return $_[0]->{out};
}

sub close {
	my ($self) = @_;

	close $self->{in};

	my $end = time() + $self->{wait};

	while (waitpid($self->{pid}, WNOHANG) == 0) {
		if (time() > $end) {
			kill 'KILL', $self->{pid};
			waitpid($self->{pid}, 0);
			return $self->{rc} = -1;
		}

		sleep 0.05;
	}

	return $self->{rc} = $? >> 8;
}

sub DESTROY {
	my ($self) = @_;
	local $?;
	$self->close() unless defined $self->{rc};
}

###############################################################################

1;
