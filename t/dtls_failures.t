#!/usr/bin/perl

# Failures of DTLS sessions: each gives a clean, specific result on both
# sides (the client's output, nginx's info-level log line), a failing
# session never hurts another, no key is ever logged, and a stalled
# handshake does not hold up a graceful stop.
#
# Also the orderly ends of a session: the client's close_notify, return,
# proxy_timeout.

###############################################################################

use warnings;
use strict;

use Test::More;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::Nginx;
use Test::Nginx::DTLS;
use Test::DTLS::Hello qw/ :DEFAULT garbage /;

use Time::HiRes qw/ time sleep /;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Nginx->new()->has(qw/stream udp/)->has_module('dtls');

tool($t, qw/ dtls_client udp_echo /);

$t->write_file_expand('nginx.conf', <<'EOF');

events {
}

stream {
    log_format  dtls  '$server_port $dtls_psk_identity $dtls_protocol '
                      '$dtls_cipher $status $session_time';

    access_log  %%TESTDIR%%/access.log  dtls;

    dtls_psk_file           psk;
    dtls_handshake_timeout  1s;

    server {
        listen                 127.0.0.1:%%PORT_8980_UDP%% udp;
        dtls                   on;
        proxy_pass             127.0.0.1:%%PORT_8981_UDP%%;
        proxy_timeout          3s;
    }

    # a session ended by nginx at once

    server {
        listen                 127.0.0.1:%%PORT_8982_UDP%% udp;
        dtls                   on;
        return                 "bye";
    }

    # a session ended by nginx when idle

    server {
        listen                 127.0.0.1:%%PORT_8983_UDP%% udp;
        dtls                   on;
        proxy_pass             127.0.0.1:%%PORT_8981_UDP%%;
        proxy_timeout          1s;
    }

    # only ClientHellos without a cookie come here

    server {
        listen                 127.0.0.1:%%PORT_8984_UDP%% udp;
        dtls                   on;
        proxy_pass             127.0.0.1:%%PORT_8981_UDP%%;
        proxy_timeout          3s;
    }
}

EOF

my $key = hexkey(16);
my $key2 = hexkey(32);
my $wrong = hexkey(16);

psk_file($t, 'psk', "# test keys\ndev-1:$key\ndev-2:$key2\n");

udp_echo($t, '127.0.0.1:' . port(8981, udp => 1), 'be:');
$t->run()->plan(62);

my $p = port(8980, udp => 1);
my $pret = port(8982, udp => 1);
my $pidle = port(8983, udp => 1);
my $pnc = port(8984, udp => 1);

my @good = ('-c', "127.0.0.1:$p", '-i', 'dev-1', '-k', $key);

###############################################################################

# no cookie: a HelloVerifyRequest, no larger than the ClientHello, and
# nothing else: no session, no log line, no access log line

my $hello = client_hello(random => random(32));
my $hvr = exchange(client($pnc), $hello) // '';
my $h = parse_hvr($hvr);

is($h->{msg_type}, 3, 'nocookie: hvr received');
is(length $hvr, 60, 'nocookie: hvr length');
is(length($h->{cookie} // ''), 32, 'nocookie: cookie length');
ok(length $hvr <= length $hello,
	'nocookie: hvr not larger than the ClientHello');
is($h->{version}, 0xfeff, 'nocookie: hvr server_version DTLS 1.0');

exchange(client($pnc), client_hello(random => random(32))) for 1 .. 2;

# garbage: dropped without a reply, logged

my $mark = log_mark($t);

ok(!defined garbage(client($p), 5), 'garbage: no reply');
ok(wait_log($t, qr/\[info\].*DTLS session must start with a ClientHello, datagram of \d+ bytes dropped/,
	3, $mark), 'garbage: logged');

my @dropped = grep_log($t, 
	qr/DTLS session must start with a ClientHello, datagram of/, $mark);
ok(grep({ /datagram of 0 bytes dropped/ } @dropped),
	'garbage: empty datagram logged with its size');
is(scalar @dropped, 6, 'garbage: each datagram logged');
is(scalar(grep_log($t, qr/DTLS handshake/, $mark)), 0,
	'garbage: no handshake');

# wrong key for a known identity: shows at the handshake timeout, when
# nginx tells the client with a handshake_failure alert

$mark = log_mark($t);

my $start = time();
my ($out, $rc) = dtls_client($t, '-c', "127.0.0.1:$p", '-i', 'dev-1', '-k', $wrong,
	'-m', 'echo', '-t', '2500');
like($out, qr/^alert received: handshake failure$/m,
	'wrong key: client gets an alert');
unlike($out, qr/^handshake ok/m, 'wrong key: no handshake');
is($rc, 1, 'wrong key: exit code');

ok(wait_log($t, qr/\[info\].*DTLS handshake failed: timed out: the client's Finished did not decrypt, wrong PSK\?/,
	3, $mark), 'wrong key: logged');

# unknown identity: an alert at once

$mark = log_mark($t);

$start = time();
($out, $rc) = dtls_client($t, '-c', "127.0.0.1:$p", '-i', 'nobody', '-k', $key,
	'-m', 'echo', '-t', '4000');
my $elapsed = time() - $start;
like($out, qr/^alert received: unknown PSK identity$/m,
	'unknown identity: alert');
like($out, qr/^handshake failed: /m, 'unknown identity: client fails');
is($rc, 1, 'unknown identity: exit code');
ok($elapsed < 2, 'unknown identity: fast')
	or diag(sprintf('%.2fs', $elapsed));

ok(wait_log($t, qr/\[info\].*DTLS handshake failed: unknown PSK identity/,
	3, $mark), 'unknown identity: handshake failed logged');
ok(scalar grep_log($t, 
	qr/\[info\].*DTLS client sent unknown PSK identity "nobody"/, $mark),
	'unknown identity: identity logged');

# a stalled handshake is released at dtls_handshake_timeout

$mark = log_mark($t);
my $lines = access_lines($t);

$start = time();
my $stall = dtls_lines($t, '-c', "127.0.0.1:$p", '-i', 'dev-1', '-k', $key,
	'-t', '1000');
like($stall->io('hello'), qr/^hvr received /, 'stall: hvr');
like($stall->io('cookie'), qr/^server flight received len=\d+$/,
	'stall: server flight');

ok(wait_log($t, qr/\[info\].*DTLS handshake failed: timed out while/, 4, $mark),
	'stall: timed out logged');
$elapsed = time() - $start;
ok($elapsed > 0.8 && $elapsed < 3.5, 'stall: released at the timeout')
	or diag(sprintf('%.2fs', $elapsed));

ok(wait_for($t, sub { access_lines($t) > $lines }, 2),
	'stall: access log line');
like((access_lines($t))[-1], qr/^$p - - - 400 /,
	'stall: status 400');
$stall->close();

# the client's close_notify is answered, and the session ends at once

$mark = log_mark($t);
$lines = access_lines($t);

($out, $rc) = dtls_client($t, @good, '-m', 'echo', '-n', '2', '-t', '3000');
like($out, qr/^handshake ok protocol=DTLSv1\.2 cipher=\S+ reused=0$/m,
	'close_notify: handshake');
like($out, qr/^recv be:hello-2$/m, 'close_notify: through the backend');
like($out, qr/^echo ok n=2$/m, 'close_notify: echo');
like($out, qr/^close_notify received$/m, 'close_notify: answered');
is($rc, 0, 'close_notify: exit code');

$start = time();
ok(wait_for($t, sub { access_lines($t) > $lines }, 1.5),
	'close_notify: session ended promptly')
	or diag(sprintf('%.2fs', time() - $start));
my ($session_time) = (access_lines($t))[-1]
	=~ /^$p dev-1 DTLSv1\.2 \S+ 200 (\S+)$/;
ok(defined $session_time, 'close_notify: access log');
ok(defined $session_time && $session_time < 1,
	'close_notify: not held until proxy_timeout')
	or diag($session_time);
ok(scalar grep_log($t, 
	qr/\[info\].*client closed DTLS session \(close_notify\)/, $mark),
	'close_notify: logged');

# return: nginx ends the session with close_notify

($out, $rc) = dtls_client($t, '-c', "127.0.0.1:$pret", '-i', 'dev-2',
	'-k', $key2, '-m', 'send-only', '-t', '3000');
like($out, qr/^recv bye$/m, 'return: data');
like($out, qr/^close_notify received$/m, 'return: close_notify');
is($rc, 0, 'return: exit code');

# proxy_timeout: an idle session is ended with close_notify

$start = time();
($out, $rc) = dtls_client($t, '-c', "127.0.0.1:$pidle", '-i', 'dev-1',
	'-k', $key, '-m', 'send-only', '-t', '3000');
$elapsed = time() - $start;
like($out, qr/^recv be:hello$/m, 'proxy_timeout: data');
like($out, qr/^close_notify received$/m, 'proxy_timeout: close_notify');
ok($elapsed < 2.8, 'proxy_timeout: before the client gave up')
	or diag(sprintf('%.2fs', $elapsed));

# isolation: a stalled and a wrong-key handshake in progress do not
# disturb a good session

$mark = log_mark($t);

$stall = dtls_lines($t, '-c', "127.0.0.1:$p", '-i', 'dev-1', '-k', $key,
	'-t', '1000');
my $bad = daemon($t, tool($t, 'dtls_client'), '-c', "127.0.0.1:$p",
	'-i', 'dev-1', '-k', $wrong, '-m', 'handshake', '-t', '2000');

$stall->io('hello');
like($stall->io('cookie'), qr/^server flight received/,
	'isolation: stall in progress');

# the wrong-key client has sent its Finished by now, nginx waits for
# a Finished that will not decrypt

sleep 0.3;

($out, $rc) = dtls_client($t, @good, '-m', 'echo', '-n', '3', '-t', '3000');
like($out, qr/^echo ok n=3$/m, 'isolation: good session');
is($rc, 0, 'isolation: exit code');

ok(wait_log($t, qr/DTLS handshake failed: timed out while/, 4, $mark),
	'isolation: stall timed out');
ok(wait_log($t, qr/DTLS handshake failed: timed out: the client's Finished/,
	4, $mark), 'isolation: wrong key timed out');
ok(wait_for($t, sub { daemon_output($t, $bad) =~ /^handshake failed: /m },
	4), 'isolation: wrong-key client failed');

# the good session was over before either failing handshake ended

my $log = error_log($t, $mark);
my $good_end = index($log, 'client closed DTLS session (close_notify)');
my $first_fail = index($log, 'DTLS handshake failed');
ok($good_end >= 0 && $first_fail > $good_end,
	'isolation: good session while the others were in progress');

($out, $rc) = dtls_client($t, @good, '-m', 'echo', '-t', '3000');
like($out, qr/^echo ok n=1$/m, 'isolation: good session after');
$stall->close();

###############################################################################

# a graceful stop is not held up by a stalled handshake: handshakes in
# progress are ended at worker shutdown

$stall = dtls_lines($t, '-c', "127.0.0.1:$p", '-i', 'dev-1', '-k', $key,
	'-t', '1000');
$stall->io('hello');
like($stall->io('cookie'), qr/^server flight received/,
	'stop: handshake stalled');

$start = time();
$rc = stop_status($t);
$elapsed = time() - $start;
is($rc, 0, 'stop: exit status');
ok($elapsed < 3, 'stop: prompt with a handshake in progress')
	or diag(sprintf('%.2fs', $elapsed));
diag(sprintf('stop with a stalled handshake: %.2fs', $elapsed))
	if $ENV{TEST_NGINX_VERBOSE};
$stall->close();

###############################################################################

# the access log, now that every session has ended: a line for each
# session that got past the cookie exchange, none for the ClientHellos
# without cookie

my @access = access_lines($t);
is(scalar(grep { /^$pnc / } @access), 0, 'nocookie: no access log line');
is(scalar(grep { /server: 127\.0\.0\.1:$pnc\b/ }
	grep_log($t, qr/DTLS handshake/)), 0,
	'nocookie: no DTLS handshake log lines');
is(scalar(grep { /^$p dev-1 DTLSv1\.2 \S+ 200 / } @access), 3,
	'access log: good sessions');
is(scalar(grep { /^$p - - - 400 / } @access), 5,
	'access log: failed handshakes');
is(scalar(grep { /^$pret dev-2 DTLSv1\.2 \S+ 200 / } @access), 1,
	'access log: return');
is(scalar(grep { /^$pidle dev-1 DTLSv1\.2 \S+ 200 / } @access), 1,
	'access log: proxy_timeout');

# no key anywhere, though the error log is at debug level

my %logs = (
	'error.log' => $t->read_file('error.log'),
	'access.log' => $t->read_file('access.log'),
	'tools output' => join('', map { $t->read_file($_) }
		'tools.stderr.log', glob($t->testdir() . '/daemon*.log')),
);

for my $name (sort keys %logs) {
	my $log = lc $logs{$name};
	ok(!grep({ index($log, $_) >= 0 } $key, $key2, $wrong),
		"no key in $name");
}

is(log_alerts($t), '', 'no alerts');

###############################################################################
