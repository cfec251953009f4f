package Test::Nginx;

# A small harness for the ngx_dtls tests, in the manner of nginx-tests:
# a test writes its nginx.conf with ports expanded, says what it needs,
# starts nginx with its backends, talks to it and checks the error log.
#
# Knobs: TEST_NGINX_BINARY, TEST_NGINX_LEAVE, TEST_NGINX_VERBOSE,
# TEST_NGINX_GLOBALS, and TEST_NGINX_ASAN, set by make test-asan, which
# tests that measure memory (RSS) read to skip: ASan keeps freed memory.
# TEST_NGINX_PREFIX (build/nginx by default) is where dtls_dynamic.t
# finds sbin/nginx-compat and modules/ngx_stream_dtls_module.so.
#
#	my $t = Test::Nginx->new()->has(qw/stream udp/)->has_module('dtls');
#	$t->write_file_expand('nginx.conf', <<'EOF');
#	events {
#	}
#	stream {
#	    server {
#	        listen      127.0.0.1:%%PORT_8980_UDP%% udp;
#	        dtls        on;
#	        proxy_pass  127.0.0.1:%%PORT_8981_UDP%%;
#	    }
#	}
#	EOF
#	udp_echo($t, '127.0.0.1:' . port(8981, udp => 1));
#	$t->run()->plan(2);
#	my ($out, $rc) = dtls_client($t, '-c',
#		'127.0.0.1:' . port(8980, udp => 1), '-i', 'id', '-k', $hex);
#
# nginx runs in the foreground as a child of the test ("daemon off;" is
# among the globals prepended to nginx.conf, or put where the conf says
# %%TEST_GLOBALS%%), with pid and error.log (debug) in the test directory.
#
# Its methods are those of nginx-tests' Test::Nginx, with their names and
# meanings (reload, stop and run_daemon return the object), so that a test
# would run under that harness too; what the DTLS tests need besides (the
# error log since a mark, the tools, the UDP backends, the workers) is
# Test::Nginx::DTLS's, on the private subs (_name) below.

###############################################################################

use warnings;
use strict;

use base qw/ Exporter /;

our @EXPORT = qw/ port /;

###############################################################################

use Cwd qw/ abs_path /;
use File::Basename qw/ dirname /;
use File::Path qw/ make_path /;
use File::Temp qw/ tempdir /;
use IO::Select;
use IO::Socket::IP;
use POSIX qw/ WNOHANG _exit /;
use Socket qw/ SOCK_DGRAM SOCK_STREAM /;
use Test::More qw//;
use Time::HiRes qw/ sleep time /;

###############################################################################

our $REPO = abs_path(dirname(__FILE__) . '/../../..');
our $VERBOSE = $ENV{TEST_NGINX_VERBOSE};

my %ports;          # "8980" or "8980_UDP" => the port picked for this test
my %ports_used;
my @instances;      # for END

sub new {
	my ($class) = @_;

	my $self = bless {}, $class;

	$self->{_testdir} = tempdir('nginx-dtls-test-XXXXXXXXXX',
		TMPDIR => 1, CLEANUP => !$ENV{TEST_NGINX_LEAVE});
	$self->{_binary} = $ENV{TEST_NGINX_BINARY}
		|| "$REPO/build/nginx/sbin/nginx";
	$self->{_daemons} = [];

	Test::More::diag("testdir: $self->{_testdir}")
		if $ENV{TEST_NGINX_LEAVE};

	# a test killed by a signal still runs END, which stops nginx

	for my $sig (qw/ INT TERM HUP /) {
		$SIG{$sig} = sub { die "killed by SIG$sig\n" }
			if !$SIG{$sig} || $SIG{$sig} eq 'DEFAULT';
	}

	push @instances, $self;
	return $self;
}

sub testdir { $_[0]->{_testdir} }
sub _binary { $_[0]->{_binary} }

sub plan {
	my ($self, $n) = @_;
	Test::More::plan(tests => $n);
	return $self;
}

###############################################################################

# features and modules

sub _version_info {
	my ($self) = @_;

	return $self->{_version} if defined $self->{_version};

	Test::More::plan(skip_all => "no nginx binary at $self->{_binary}")
		unless -x $self->{_binary};

	$self->{_version} = `$self->{_binary} -V 2>&1`;
	return $self->{_version};
}

sub has {
	my ($self, @features) = @_;

	for my $f (@features) {
		Test::More::plan(skip_all => "no $f") unless $self->has_feature($f);
	}

	return $self;
}

sub has_feature {
	my ($self, $f) = @_;

	my $v = $self->_version_info();

	return $v =~ /--with-stream(?![_\w])/ if $f eq 'stream' || $f eq 'udp';
	return $v =~ /--with-debug/ if $f eq 'debug';
	return $self->_has_dtls() if $f eq 'dtls';
	return $v =~ /--with-${f}(?:_module)?(?![_\w])/;
}

sub has_module {
	my ($self, $name) = @_;

	my $ok = $name eq 'dtls' ? $self->_has_dtls()
		: $self->_version_info() =~ /--(?:add|add-dynamic|with)-\S*$name/;

	Test::More::plan(skip_all => "no module $name") unless $ok;
	return $self;
}

# the binary is nginx VERSION ("1.25.5") or later

sub has_version {
	my ($self, $need) = @_;

	my ($have) = $self->_version_info() =~ m!nginx version: nginx/([\d.]+)!;
	return 0 unless defined $have;

	my @have = split /\./, $have;
	my @need = split /\./, $need;

	while (@need) {
		my ($h, $n) = (shift(@have) // 0, shift @need);
		return $h > $n if $h != $n;
	}

	return 1;
}

# built in (--add-module, and the module name in the binary), or loaded
# with load_module from TEST_NGINX_GLOBALS

sub _has_dtls {
	my ($self) = @_;

	return 1 if ($ENV{TEST_NGINX_GLOBALS} || '')
		=~ /load_module\s+\S*ngx_stream_dtls_module/;

	return 0 unless $self->_version_info() =~ /--add-module=/;

	open my $fh, '<:raw', $self->{_binary} or return 0;
	local $/;
	my $bin = <$fh>;
	return index($bin, "ngx_stream_dtls_module\0") >= 0;
}

###############################################################################

# files

sub write_file {
	my ($self, $name, $content) = @_;

	my $path = "$self->{_testdir}/$name";
	make_path(dirname($path));

	open my $fh, '>', $path or die "Can't create $path: $!\n";
	binmode $fh;
	print $fh $content;
	close $fh;

	return $self;
}

sub write_file_expand {
	my ($self, $name, $content) = @_;

	$content = $self->_expand($content);

	if (!($content =~ s/%%TEST_GLOBALS%%/$self->test_globals()/e)
		&& $name eq 'nginx.conf')
	{
		$content = $self->test_globals() . $content;
	}

	return $self->write_file($name, $content);
}

sub _expand {
	my ($self, $content) = @_;

	$content =~ s/%%TESTDIR%%/$self->{_testdir}/g;
	$content =~ s/%%PORT_(\d+)(_UDP)?%%/port($1, udp => !!$2)/ge;

	return $content;
}

sub test_globals {
	my ($self) = @_;

	my $d = $self->{_testdir};
	my $g = "daemon off;\n"
		. "pid $d/nginx.pid;\n"
		. "error_log $d/error.log debug;\n";

	$g .= $ENV{TEST_NGINX_GLOBALS} . "\n" if $ENV{TEST_NGINX_GLOBALS};

	return "# harness globals\n$g\n";
}

sub read_file {
	my ($self, $name) = @_;

	my $path = $name =~ m{^/} ? $name : "$self->{_testdir}/$name";

	open my $fh, '<', $path or return '';
	binmode $fh;
	local $/;
	my $content = <$fh>;
	return defined $content ? $content : '';
}

# the error log, or its part written after the mark taken with _log_mark()

sub _error_log {
	my ($self, $mark) = @_;

	my $log = $self->read_file('error.log');
	return $mark ? substr($log, $mark) : $log;
}

sub _log_mark {
	my ($self) = @_;
	return length $self->read_file('error.log');
}

# lines of the error log matching a regex (since an optional mark)

sub _grep_log {
	my ($self, $re, $mark) = @_;
	return grep { /$re/ } split /\n/, $self->_error_log($mark);
}

# waits until the error log matches, bounded; returns true if it did

sub _wait_log {
	my ($self, $re, $timeout, $mark) = @_;
	return $self->_wait_for(sub { $self->_error_log($mark) =~ $re },
		$timeout || 5);
}

# [alert], [crit] and [emerg] lines: an empty string is a clean log

sub _log_alerts {
	my ($self, $mark) = @_;
	return join "\n", $self->_grep_log(qr/\[(alert|crit|emerg)\]/, $mark);
}

###############################################################################

# ports

sub port {
	shift if ref $_[0];
	my ($n, %opts) = @_;

	my $key = $n . ($opts{udp} ? '_UDP' : '');
	return $ports{$key} if exists $ports{$key};

	for (1 .. 1000) {
		my $p = 20000 + int(rand(12000));
		next if $ports_used{$p};
		next unless _port_free($p);

		$ports_used{$p} = 1;
		return $ports{$key} = $p;
	}

	die "Can't find a free port\n";
}

# free on 127.0.0.1 (and ::1 if there is one) for both TCP and UDP

sub _port_free {
	my ($port, $addr) = @_;

	my @addrs = $addr ? ($addr) : ('127.0.0.1', '::1');

	for my $a (@addrs) {
		for my $type (SOCK_STREAM, SOCK_DGRAM) {
			my $s = IO::Socket::IP->new(LocalHost => $a,
				LocalPort => $port, Type => $type,
				$type == SOCK_STREAM ? (ReuseAddr => 1) : ());

			next if !$s && $a eq '::1' && !$addr
				&& $! =~ /assign|not available|family/i;

			return 0 unless $s;
			close $s;
		}
	}

	return 1;
}

###############################################################################

# nginx

sub run {
	my ($self) = @_;

	die "nginx is already running\n" if $self->{_pid};

	my $d = $self->{_testdir};
	my @cmd = ($self->{_binary}, '-p', "$d/", '-c', 'nginx.conf',
		'-e', 'error.log');

	unlink "$d/nginx.pid";
	Test::More::diag("run: @cmd") if $VERBOSE;

	my $pid = $self->_spawn("$d/stderr.log", @cmd);
	$self->{_pid} = $pid;

	my @listen = $self->_listen_addrs();
	my $status;
	my $up = $self->_wait_for(sub {
		if (waitpid($pid, WNOHANG) == $pid) {
			$status = $?;
			return -1;
		}
		return 0 unless -s "$d/nginx.pid";
		for my $l (@listen) {
			return 0 if _port_free($l->[1], $l->[0]);
		}
		return 1;
	}, 5);

	if (!$up || $up < 0) {
		if ($up) {
			$self->{_pid} = undef;
			$self->{_exit_status} = $status;
		}
		$self->_stop() if $self->{_pid};
		die "Can't start nginx"
			. ($up ? " (exit status " . ($status >> 8) . ")" : " (timeout)")
			. "\n" . $self->_log_tail();
	}

	# workers, if any: give them a moment to be forked

	$self->_wait_for(sub { scalar $self->_workers() }, 2);

	return $self;
}

# run() or skip_all with a message: for features that may be missing

sub try_run {
	my ($self, $message) = @_;

	eval { $self->run(); };

	if ($@) {
		Test::More::diag($@) if $VERBOSE;
		Test::More::plan(skip_all => $message);
	}

	return $self;
}

# [host, port] of every listen directive of nginx.conf

sub _listen_addrs {
	my ($self) = @_;

	my @addrs;
	my $conf = $self->read_file('nginx.conf');
	$conf =~ s/#.*$//mg;

	while ($conf =~ /^\s*listen\s+([^\s;]+)[^;]*;/mg) {
		my $l = $1;
		next if $l =~ /^unix:/;

		my ($host, $port) = $l =~ /^\[(.+)\]:(\d+)$/ ? ($1, $2)
			: $l =~ /^(.+):(\d+)$/ ? ($1, $2)
			: $l =~ /^(\d+)$/ ? ('0.0.0.0', $1) : ();
		next unless $port;

		$host = '0.0.0.0' if $host eq '*';
		$host = '127.0.0.1' if $host eq 'localhost';
		push @addrs, [ $host, $port ];
	}

	return @addrs;
}

sub _pid {
	my ($self) = @_;
	return $self->{_pid};
}

sub _running {
	my ($self) = @_;

	return 0 unless $self->{_pid};

	if (waitpid($self->{_pid}, WNOHANG) == $self->{_pid}) {
		$self->{_exit_status} = $?;
		$self->{_pid} = undef;
		return 0;
	}

	return 1;
}

# the exit status ($?) of the last nginx that ended

sub _exit_status {
	my ($self) = @_;
	return $self->{_exit_status};
}

# pids of the processes whose parent is nginx's master

sub _workers {
	my ($self) = @_;

	my $master = $self->{_pid} or return ();
	return _children($master);
}

sub _children {
	my ($ppid) = @_;

	my @pids;

	opendir my $dh, '/proc' or return ();

	for my $p (grep { /^\d+$/ } readdir $dh) {
		open my $fh, '<', "/proc/$p/stat" or next;
		my $stat = <$fh>;
		push @pids, $p if $stat && $stat =~ /\)\s+\S+\s+(\d+)/
			&& $1 == $ppid;
	}

	@pids = sort { $a <=> $b } @pids;
	return @pids;
}

# HUP, then waits until a worker that was not there before is up;
# returns true if one is

sub reload {
	my ($self) = @_;
	$self->_reload();
	return $self;
}

# HUP, then waits until a worker that was not there before is up;
# returns true if one is

sub _reload {
	my ($self) = @_;

	return 0 unless $self->_running();

	my %old = map { $_ => 1 } $self->_workers();

	Test::More::diag("reload") if $VERBOSE;
	kill 'HUP', $self->{_pid};

	return $self->_wait_for(sub {
		return grep { !$old{$_} } $self->_workers();
	}, 5);
}

# QUIT, then TERM, then KILL, bounded; returns nginx's exit status

sub stop {
	my ($self) = @_;
	$self->_stop();
	return $self;
}

# returns nginx's exit status

sub _stop {
	my ($self) = @_;

	if ($self->{_pid}) {
		my $pid = $self->{_pid};
		my @workers = $self->_workers();

		for my $sig (qw/ QUIT TERM KILL /) {
			kill $sig, $pid;
			last if $self->_wait_for(sub { !$self->_running() },
				$sig eq 'KILL' ? 5 : $sig eq 'QUIT' ? 10 : 3);

			Test::More::diag("nginx did not exit on $sig") if $sig ne 'KILL';
		}

		# workers left behind by a killed master

		kill 'KILL', grep { kill 0, $_ } @workers;

		Test::More::diag($self->_log_tail(100)) if $VERBOSE;
	}

	$self->stop_daemons();

	return $self->{_exit_status};
}

# nginx -t on nginx.conf (or another file of the test directory);
# returns (exit code, output) or the exit code in scalar context

sub _test_config {
	my ($self, $conf) = @_;

	my $d = $self->{_testdir};

	# nginx -t exits without freeing its first pool: not a leak to report

	local $ENV{ASAN_OPTIONS} = ($ENV{ASAN_OPTIONS} // '') . ':detect_leaks=0';

	my ($out, $rc) = $self->_run_tool({ stderr => 1, timeout => 10 },
		$self->{_binary}, '-t', '-p', "$d/", '-c', $conf || 'nginx.conf',
		'-e', 'error.log');

	return wantarray ? ($rc, $out) : $rc;
}

sub _log_tail {
	my ($self, $lines) = @_;

	$lines ||= 30;

	my @log = split /\n/, $self->_error_log();
	@log = @log[-$lines .. -1] if @log > $lines;

	my $stderr = $self->read_file('stderr.log');

	return ($stderr ne '' ? "stderr:\n$stderr" : '')
		. "error.log (tail):\n" . join("\n", @log) . "\n";
}

###############################################################################

# helper processes

# starts a command in the background with stdout and stderr in a log file
# of the test directory; returns its pid; stop() ends it

sub run_daemon {
	my ($self, @cmd) = @_;
	$self->_daemon(@cmd);
	return $self;
}

# returns the pid

sub _daemon {
	my ($self, $cmd, @args) = @_;

	my $n = scalar @{$self->{_daemons}};
	my $log = "$self->{_testdir}/daemon$n.log";

	Test::More::diag("daemon: $cmd " . _shown(@args)) if $VERBOSE;

	my $pid = $self->_spawn($log, $cmd, @args);
	push @{$self->{_daemons}}, { pid => $pid, log => $log };

	return $pid;
}

sub _daemon_output {
	my ($self, $pid) = @_;

	for my $d (@{$self->{_daemons}}) {
		return $self->read_file($d->{log}) if $d->{pid} == $pid;
	}

	return '';
}

# udp_echo on ADDR:PORT (an optional reply prefix, then udp_echo's other
# options), waits for "ready"

sub _udp_echo {
	my ($self, $listen, $prefix, @options) = @_;

	my $pid = $self->_daemon($self->_tool('udp_echo'), '-l', $listen,
		defined $prefix ? ('-p', $prefix) : (), @options);

	$self->_wait_for(sub { $self->_daemon_output($pid) =~ /udp_echo ready/ },
		5) or die "udp_echo on $listen did not start:\n"
			. $self->_daemon_output($pid);

	return $pid;
}

# a udp_relay (t/tools/udp_relay.c) on a port of its own in front of
# 127.0.0.1:$port, with udp_relay's options; returns { pid, port }

my $relays = 0;

sub _udp_relay {
	my ($self, $port, @args) = @_;

	my $rport = port('relay' . ++$relays, udp => 1);

	my $pid = $self->_daemon($self->_tool('udp_relay'),
		'-l', "127.0.0.1:$rport", '-u', "127.0.0.1:$port", @args);

	$self->_wait_for(sub { $self->_daemon_output($pid) =~ /udp_relay ready/ },
		5) or die "udp_relay did not start:\n"
			. $self->_daemon_output($pid);

	return { pid => $pid, port => $rport };
}

# stops a relay; its summary: { line, relayed, dropped, duplicated,
# reordered, corrupted, rebound }

sub _udp_relay_stop {
	my ($self, $r) = @_;

	kill 'TERM', $r->{pid};
	$self->_wait_for(sub { waitpid($r->{pid}, WNOHANG) != 0 }, 5);

	my $out = $self->_daemon_output($r->{pid});
	my %s;

	if ($out =~ /^(relayed (\d+) dropped (\d+) duplicated (\d+) reordered (\d+))$/m) {
		@s{qw/ line relayed dropped duplicated reordered /}
			= ($1, $2, $3, $4, $5);
	}

	$s{corrupted} = $1 if $out =~ /^corrupted (\d+) held \d+$/m;
	$s{rebound} = $1 if $out =~ /^rebound (\d+)$/m;

	return \%s;
}

sub stop_daemons {
	my ($self) = @_;

	while (my $d = pop @{$self->{_daemons}}) {
		my $pid = $d->{pid};

		kill 'TERM', $pid;
		next if _wait_for(undef,
			sub { waitpid($pid, WNOHANG) != 0 }, 3);

		kill 'KILL', $pid;
		waitpid($pid, 0);
	}
}

# <repo>/build/tools/NAME for each NAME (the first in scalar context), or
# skip_all when one is missing

sub _tool {
	my ($self, @names) = @_;

	my @paths = map { "$REPO/build/tools/$_" } @names;

	for my $path (@paths) {
		Test::More::plan(skip_all => "no $path (make tools)")
			unless -x $path;
	}

	return wantarray ? @paths : $paths[0];
}

# runs a tool (a name in build/tools or a path) with a timeout; returns
# (stdout, exit code) or stdout alone in scalar context; the exit code is
# -1 when it had to be killed.  Options as a leading hash reference:
# timeout (seconds, default 30), stderr (mix stderr into the output).

# command arguments as they may be shown: the key after -k never is

sub _shown {
	my @shown = @_;

	for my $i (1 .. $#shown) {
		$shown[$i] = '***' if $shown[$i - 1] eq '-k';
	}

	return "@shown";
}

sub _run_tool {
	my ($self, @args) = @_;

	my %opts = ref $args[0] eq 'HASH' ? %{shift @args} : ();
	my $timeout = $opts{timeout} || 30;

	my $cmd = shift @args;
	$cmd = $self->_tool($cmd) unless $cmd =~ m{/};

	Test::More::diag("tool: $cmd " . _shown(@args)) if $VERBOSE;

	pipe(my $r, my $w) or die "pipe: $!\n";

	my $pid = fork();
	die "fork: $!\n" unless defined $pid;

	if ($pid == 0) {
		close $r;
		open STDIN, '<', '/dev/null';
		open STDOUT, '>&', $w;
		if ($opts{stderr}) {
			open STDERR, '>&', $w;
		} else {
			open STDERR, '>>', "$self->{_testdir}/tools.stderr.log";
		}
		{ no warnings 'exec'; exec { $cmd } $cmd, @args; }
		print STDERR "exec $cmd: $!\n";
		_exit(127);
	}

	close $w;

	my $out = '';
	my $sel = IO::Select->new($r);
	my $end = time() + $timeout;
	my $killed = 0;

	while (1) {
		my $left = $end - time();

		if ($left <= 0) {
			kill 'KILL', $pid;
			$killed = 1;
			last;
		}

		next unless $sel->can_read($left);
		last unless sysread($r, $out, 65536, length $out);
	}

	close $r;
	waitpid($pid, 0);

	my $rc = $killed ? -1 : $? & 127 ? -1 : $? >> 8;

	Test::More::diag("exit code $rc, output:\n$out") if $VERBOSE;

	return wantarray ? ($out, $rc) : $out;
}

# one datagram to HOST:PORT and its reply (undef when none came in time)

sub _udp_request {
	my ($self, $peer, $data, $timeout) = @_;

	my ($host, $port) = $peer =~ /^\[?(.+?)\]?:(\d+)$/
		or die "bad address $peer\n";

	my $s = IO::Socket::IP->new(PeerHost => $host, PeerPort => $port,
		Proto => 'udp') or die "Can't create UDP socket: $@\n";

	$s->send($data);

	my $reply;
	my $sel = IO::Select->new($s);

	if ($sel->can_read($timeout || 3)) {
		defined $s->recv($reply, 65536) or $reply = undef;
	}

	close $s;
	return $reply;
}

###############################################################################

# forks and execs a command with stdout and stderr to a file

sub _spawn {
	my ($self, $log, @cmd) = @_;

	my $pid = fork();
	die "fork: $!\n" unless defined $pid;

	if ($pid == 0) {
		open STDIN, '<', '/dev/null';
		open STDOUT, '>', $log or _exit(126);
		open STDERR, '>&', \*STDOUT;
		{ no warnings 'exec'; exec { $cmd[0] } @cmd; }
		print STDERR "exec $cmd[0]: $!\n";
		_exit(127);
	}

	return $pid;
}

# polls a condition every 50ms until it is true or the timeout (seconds)
# passes; returns the condition's last value

sub _wait_for {
	my ($self, $cond, $timeout) = @_;

	my $end = time() + ($timeout || 5);

	while (1) {
		my $v = $cond->();
		return $v if $v || time() >= $end;
		sleep 0.05;
	}
}

###############################################################################

sub DESTROY {
	my ($self) = @_;
	local ($?, $!, $@);
	$self->_stop() if $self->{_pid} || @{$self->{_daemons} || []};
}

END {
	local $?;
	for my $t (@instances) {
		$t->_stop() if $t->{_pid} || @{$t->{_daemons} || []};
	}
}

###############################################################################

1;
