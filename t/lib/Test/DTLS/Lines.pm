package Test::DTLS::Lines;

# Command-line DTLS clients (openssl s_client, gnutls-cli) fed numbered
# lines, for the interop tests: the lines, what came back of them, the
# client run with its input paced by what nginx logs, and the error and
# access log read per client port.
#
#	my $l = Test::DTLS::Lines->new($t);
#	my $c = $l->client({ handshakes => 1, lines => [ lines($max) ] }, @cmd);
#	is(echoed($c->{out}, @lines), 100);
#
# and the checks the two tests (interop_openssl.t, interop_gnutls.t) make
# alike: a suite's session, the wrong key.

use warnings;
use strict;

use Test::Nginx qw/ port /;
use Test::Nginx::DTLS qw/ hexkey psk_file udp_echo log_mark error_log grep_log
	wait_log wait_for /;
use Test::DTLS::PKI;
use Test::More;

use base qw/ Exporter /;

use POSIX qw/ WNOHANG /;
use Time::HiRes qw/ sleep time /;

our @EXPORT = qw/ lines echoed missing /;

sub new {
	my ($class, $t) = @_;
	return bless { t => $t }, $class;
}

# the nginx of the command-line interop tests: a server of PSK and
# certificates (Test::DTLS::PKI's), one whose clients give the wrong PSK
# (8981), both to an echo backend that puts "e" in front; returns the
# PKI, the key and the wrong key

sub server {
	my ($self) = @_;
	my $t = $self->{t};

	plan(skip_all => 'no timeout binary')
		unless system('timeout 1 true >/dev/null 2>&1') == 0;

	my $pki = Test::DTLS::PKI->new($t->testdir() . '/pki');

	my $key = hexkey();
	my $wrong = hexkey();
	$wrong = 'ff' x 16 if $wrong eq $key;

	psk_file($t, 'psk', "dev-1:$key\n");

	my $conf = <<'EOF';

events {
}

stream {
    log_format  interop  '$remote_port $dtls_protocol $dtls_cipher '
                         '$dtls_session_reused "$dtls_psk_identity" '
                         '$dtls_client_verify $status';

    access_log  %%TESTDIR%%/access.log interop;

    server {
        listen                   127.0.0.1:%%PORT_8980_UDP%% udp;
        dtls                     on;
        dtls_psk_file            psk;
        dtls_certificate         %%PKI%%/server-ec.crt;
        dtls_certificate_key     %%PKI%%/server-ec.key;
        dtls_certificate         %%PKI%%/server-rsa.crt;
        dtls_certificate_key     %%PKI%%/server-rsa.key;
        dtls_client_certificate  %%PKI%%/root.crt;
        dtls_handshake_timeout   5s;
        proxy_pass               127.0.0.1:%%PORT_8990_UDP%%;
        proxy_timeout            5s;
    }

    # wrong PSK: the handshake times out quickly

    server {
        listen                   127.0.0.1:%%PORT_8981_UDP%% udp;
        dtls                     on;
        dtls_psk_file            psk;
        dtls_handshake_timeout   1s;
        proxy_pass               127.0.0.1:%%PORT_8990_UDP%%;
        proxy_timeout            2s;
    }
}

EOF

	my $dir = $pki->dir();
	$conf =~ s/%%PKI%%/$dir/g;
	$t->write_file_expand('nginx.conf', $conf);

	# every reply is the datagram with "e" in front: a line that came back
	# whole, with its "e", was one record each way

	udp_echo($t, '127.0.0.1:' . port(8990, udp => 1), 'e');

	return ($pki, $key, $wrong);
}

# 100 lines (each "\n"-terminated, numbered), sizes spread from 5 bytes
# to $max

sub lines {
	my ($max) = @_;

	my @lines;
	my $fill = join '', map { ('a' .. 'z', 'A' .. 'Z', 0 .. 9)[$_ % 62] }
		0 .. 2047;

	for my $i (0 .. 99) {
		my $size = 5 + int(($max - 5) * $i / 99);
		push @lines, sprintf('%03d:', $i) . substr($fill, 0, $size - 5)
			. "\n";
	}

	return @lines;
}

# how many of the lines came back exactly, each once, "e" in front

sub echoed {
	my ($out, @lines) = @_;

	my %back;
	$back{$1}++ while $out =~ /^e(\d{3}:[^\n]*\n)/mg;

	return scalar grep { ($back{$_} // 0) == 1 } @lines;
}

# the numbers of the lines that did not come back as they should

sub missing {
	my ($out, @lines) = @_;

	my %back;
	$back{$1}++ while $out =~ /^e(\d{3}:[^\n]*\n)/mg;

	return map { substr($_, 0, 3) } grep { ($back{$_} // 0) != 1 } @lines;
}

# the client, its input fed a line at a time once nginx has done the
# handshake(s) (and the first line came back), then its input closed once the replies came (or 3s); the
# client is bounded by timeout(1).  Returns { out, err, rc, killed }.

sub client {
	my ($self, $o, @cmd) = @_;
	my $t = $self->{t};

	my $timeout = $o->{timeout} || 20;
	my $id = $o->{id} = ($main::client_n = ($main::client_n // 0) + 1);
	my $outf = $t->testdir() . "/client$id.out";
	my $errf = $t->testdir() . "/client$id.err";

	local $SIG{PIPE} = 'IGNORE';

	my $mark = log_mark($t);

	pipe(my $rd, my $wr) or die "pipe: $!\n";

	my $pid = fork();
	die "fork: $!\n" unless defined $pid;

	if ($pid == 0) {
		close $wr;
		open STDIN, '<&', $rd or _exit(126);
		open STDOUT, '>', $outf or _exit(126);
		open STDERR, '>', $errf or _exit(126);
		{ no warnings 'exec'; exec 'timeout', $timeout, @cmd; }
		_exit(127);
	}

	close $rd;
	$wr->autoflush(1);

	my $exited = sub {
		return 1 if defined $o->{status};
		return 0 unless waitpid($pid, WNOHANG) == $pid;
		$o->{status} = $?;
		return 1;
	};

	if ($o->{handshakes}) {
		wait_for($t, sub {
			$exited->() || (grep_log($t, qr/dtls handshake done/, $mark)
				>= $o->{handshakes})
		}, 5);

		# the client's side of it: its reading of the server's Finished

		sleep 0.1;
	}

	my @want = map { "e$_" } @{$o->{lines}};

	# the first line alone, until it comes back: a client that reads its
	# input only once its side of the handshake is done would otherwise
	# send what piled up meanwhile as one record

	for my $i (0 .. $#{$o->{lines}}) {
		last if $exited->();
		print $wr $o->{lines}[$i];

		if ($i == 0) {
			wait_for($t, sub {
				$exited->() || index($t->read_file($outf), $want[0]) >= 0
			}, 3);
		}

		sleep 0.02;
	}

	wait_for($t, sub {
		return 1 if $exited->();
		my $out = $t->read_file($outf);
		return !grep { index($out, $_) < 0 } @want;
	}, 3) if @want;

	wait_for($t, $exited, $o->{hold}) if $o->{hold};

	close $wr;

	wait_for($t, $exited, $timeout + 2);

	if (!defined $o->{status}) {
		kill 'KILL', $pid;
		waitpid($pid, 0);
		$o->{status} = $?;
		$o->{killed} = 1;
	}

	my $st = $o->{status};
	$o->{rc} = $st & 127 ? 128 + ($st & 127) : $st >> 8;
	$o->{out} = $t->read_file($outf);
	$o->{err} = $t->read_file($errf);

	return $o;
}

# a suite's session by the command CMD (the client NAME), fed lines up to
# MAX bytes: its handshake (the suite in the access log), the lines
# echoed, its close_notify, the HelloVerifyRequest before (4 tests); if
# TODO->($c) gives a reason, the echo and close tests are expected to
# fail for it

sub session {
	my ($self, $r, $suite, $name, $max, $todo, @cmd) = @_;
	my $t = $self->{t};

	my @lines = lines($max);
	my $mark = log_mark($t);

	my $c = $self->client({ handshakes => 1, lines => \@lines }, @cmd);

	my $log = $self->parse_log($mark);
	my ($conn) = @{$log->{done}};
	my $port = defined $conn ? $log->{port}{$conn} : undef;

	my $access = defined $port ? $self->access_line($port) : undef;

	# handshake: done, and the suite in the access log

	my $hs = defined $access && $access =~ /^\d+ DTLSv1\.2 \Q$suite\E /;

	diag("$suite: handshake: "
		. (defined $port ? "access log: " . ($access // 'no line')
			: 'no handshake in the error log')
		. ", $name exit $c->{rc}\n$c->{err}")
		unless $hs;

	ok($r->record($suite, 'handshake', $hs), "$suite: handshake");

	my $why = $todo ? $todo->($c) : undef;
	Test::More->builder->todo_start($why) if $why;

	# echo 100: every line back, whole, with its "e"

	my $got = echoed($c->{out}, @lines);

	diag("$suite: echo: $got of " . scalar(@lines) . " lines came back, "
		. "missing: " . join(' ', missing($c->{out}, @lines)))
		unless $got == @lines;

	ok($r->record($suite, 'echo 100', $got == @lines, $why),
		"$suite: echo 100, up to $max bytes");

	# close: the client's close_notify at the end of its input

	my $closed = defined $conn && wait_log($t, qr/\*$conn client closed /
		. qr/DTLS session \(close_notify\)/, 3, $mark);

	ok($r->record($suite, 'close', $closed, $why), "$suite: close_notify");

	Test::More->builder->todo_end() if $why;

	# cookie: a HelloVerifyRequest to the same port, then the handshake

	my $hvr = defined $conn
		&& grep { $_ < $conn && $log->{port}{$_} == $port } @{$log->{hvr}};

	ok($r->record($suite, 'cookie', $hvr && $hs),
		"$suite: handshake after a HelloVerifyRequest");
}

# a wrong PSK by the command CMD (the client NAME) to the server's port
# 8981: nginx gives up at dtls_handshake_timeout and says why; the client
# should fail on its own, non-zero, in bounded time (here 10s, for
# nginx's 1s).  It learns of the failure only if nginx tells it: the
# client's Finished was dropped unread, and nginx sends no alert when it
# gives up, so the client retransmits its last flight on its own schedule
# (tried through a relay: an epoch 0 handshake_failure alert sent to the
# client at that point ends s_client and gnutls-cli at once, exit 1)

sub wrong_key {
	my ($self, $r, $name, @cmd) = @_;
	my $t = $self->{t};

	my $wrong_port = port(8981, udp => 1);
	my $mark = log_mark($t);
	my $start = time();

	my $c = $self->client({ handshakes => 0, lines => [], timeout => 10,
		hold => 11 }, @cmd);

	my $took = time() - $start;

	my $logged = wait_log($t, qr/DTLS handshake failed: timed out: the /
		. qr/client's Finished did not decrypt, wrong PSK\? .*/
		. qr/server: 127\.0\.0\.1:$wrong_port/, 3, $mark);

	my $client_ok = $c->{rc} != 0 && $c->{rc} != 124 && !$c->{killed};

	diag(sprintf("wrong key: $name %s after %.1fs; nginx %s",
		$c->{rc} == 124 ? 'still running, killed by timeout'
			: "exited with $c->{rc}", $took,
		$logged ? 'logged the wrong PSK' : 'did not log the wrong PSK'))
		unless $client_ok && $logged;

	ok($r->record('-', 'wrong key', $client_ok && $logged),
		'wrong key: clean failure on both sides');
}

# the error log since a mark: each connection's client port, the
# connections that got a HelloVerifyRequest, and those that completed
# a handshake (in order)

sub parse_log {
	my ($self, $mark) = @_;
	my $t = $self->{t};

	my %l = (port => {}, hvr => [], done => []);

	for (split /\n/, error_log($t, $mark)) {
		next unless /\*(\d+) (.*)/;
		my ($n, $msg) = ($1, $2);

		if ($msg =~ /^udp client 127\.0\.0\.1:(\d+) connected to /) {
			$l{port}{$n} = $1;

		} elsif ($msg =~ /^dtls ClientHello without cookie, HelloVerify/) {
			push @{$l{hvr}}, $n;

		} elsif ($msg =~ /^dtls handshake done/) {
			push @{$l{done}}, $n;
		}
	}

	return \%l;
}

# the access log line of the session from a client port, once written
# (when the session ends: at once after close_notify, else at
# proxy_timeout)

sub access_line {
	my ($self, $port) = @_;
	my $t = $self->{t};

	my $line;

	wait_for($t, sub {
		($line) = grep { /^$port / } split /\n/, $t->read_file('access.log');
		return defined $line;
	}, 6);

	return $line;
}

1;
