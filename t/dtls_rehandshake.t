#!/usr/bin/perl

# A ClientHello from the address and port of a live session (RFC 6347,
# 4.2.8): a client that restarted and kept its port makes a new handshake
# beside the live session, which goes on until the new one has finished
# and then carries on with its keys; a new handshake left unfinished, a
# copy of the ClientHello that made the session, or a ClientHello without
# a cookie leave the session working; a new handshake that authenticates
# another PSK identity ends the session.

###############################################################################

use warnings;
use strict;

use Test::More;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::Nginx;
use Test::Nginx::DTLS;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Nginx->new()->has(qw/stream udp/)->has_module('dtls');

tool($t, 'dtls_client');
tool($t, 'udp_echo');

$t->write_file_expand('nginx.conf', <<'EOF');

worker_shutdown_timeout  3s;

events {
}

stream {
    log_format  dtls  '$remote_port $dtls_psk_identity $status $session_time';

    access_log  %%TESTDIR%%/access.log  dtls;

    server {
        listen                 127.0.0.1:%%PORT_8980_UDP%% udp;
        dtls                   on;
        dtls_psk_file          psk;
        dtls_handshake_timeout 2s;
        proxy_pass             127.0.0.1:%%PORT_8981_UDP%%;
        proxy_timeout          30s;
    }
}

EOF

my $key = hexkey();

psk_file($t, 'psk', "dev-1:$key\ndev-2:$key\n");

udp_echo($t, '127.0.0.1:' . port(8981, udp => 1), 'be:');
$t->run()->plan(53);

my $p = port(8980, udp => 1);
my @good = ('-c', "127.0.0.1:$p", '-i', 'dev-1', '-k', $key);

my $new_re = qr/client made a new handshake, DTLS session renewed/;

###############################################################################

# a client that restarted and kept its port: its new handshake completes at
# once, not after a retransmission or at proxy_timeout, and the session
# goes on with it

my $mark = log_mark($t);

my ($out, $rc) = dtls_client($t, @good, '-m', 'rehandshake', '-n', '2',
	'-t', '6000');
like($out, qr/^handshake ok protocol=DTLSv1\.2 cipher=\S+ reused=0$/m,
	'rehandshake: first handshake');
like($out, qr/^recv be:hello-2$/m, 'rehandshake: first session echoes');
like($out, qr/^echo ok n=2$/m, 'rehandshake: first session echo ok');
like($out, qr/^second handshake ok protocol=DTLSv1\.2 cipher=\S+ reused=0$/m,
	'rehandshake: second handshake') or diag($out);
like($out, qr/^second recv be:hello-s2-2$/m,
	'rehandshake: second session echoes');
like($out, qr/^second echo ok n=2$/m, 'rehandshake: second session echo ok');

my ($ms) = $out =~ /^second handshake took (\d+) ms$/m;
ok(defined $ms && $ms < 500,
	'rehandshake: second handshake without waiting for a retransmission')
	or diag($ms // 'no time');
diag("second handshake: $ms ms") if defined $ms && $ENV{TEST_NGINX_VERBOSE};
is($rc, 0, 'rehandshake: exit code');

ok(wait_log($t, qr/\[info\].*$new_re/, 3, $mark), 'rehandshake: logged');
is(scalar grep_log($t, $new_re, $mark), 1, 'rehandshake: logged once');

# one nginx session, renewed, ended by the close_notify of the second

ok(wait_for($t, sub { access_lines($t) >= 1 }, 3),
	'rehandshake: session ended');
is(scalar grep_log($t, qr/new DTLS handshake of the client failed/, $mark),
	0, 'rehandshake: no failure');

# the same with a resumed handshake whose last flight carries the first
# record: delivered at once after the swap

$mark = log_mark($t);

($out, $rc) = dtls_client($t, @good, '-m', 'rehandshake', '-n', '2', '-R',
	'-X', '-t', '3000');
like($out, qr/^second handshake ok protocol=DTLSv1\.2 cipher=\S+ reused=1$/m,
	'rehandshake, resumed: second handshake') or diag($out);
like($out, qr/^second echo ok n=2$/m,
	'rehandshake, resumed, data with the last flight: echoes');
ok(wait_log($t, qr/\[info\].*$new_re/, 3, $mark), 'rehandshake, resumed: renewed');
is(join("\n", grep_log($t, qr/\[(alert|crit|error)\]/, $mark)), '',
	'rehandshake, resumed: no alerts');

###############################################################################

# a new handshake left after the server's flight: the live session works
# during it, and after nginx gave it up at dtls_handshake_timeout (2s)

$mark = log_mark($t);

($out, $rc) = dtls_client($t, @good, '-m', 'renew-stall', '-n', '2',
	'-W', '3000', '-t', '5000');
like($out, qr/^first echo ok n=1$/m, 'renew-stall: session up');
like($out, qr/^server flight received len=\d+$/m,
	'renew-stall: new handshake begun') or diag($out);
like($out, qr/^echo ok n=2$/m, 'renew-stall: live session works during it');
like($out, qr/^epoch-0 datagram len=15 type=2$/m,
	'renew-stall: handshake_failure alert at the timeout');
like($out, qr/^late echo ok n=2$/m, 'renew-stall: and after it');
is($rc, 0, 'renew-stall: exit code');

ok(wait_log($t, qr/\[info\].*DTLS handshake failed: timed out/, 3, $mark),
	'renew-stall: new handshake timed out');
ok(wait_log($t, qr/new DTLS handshake of the client failed, the DTLS session goes on/, 3, $mark),
	'renew-stall: session went on');
is(scalar grep_log($t, $new_re, $mark), 0, 'renew-stall: not renewed');

###############################################################################

# a new handshake of another PSK identity from the same address and port
# ends the session: what was decided for one peer does not pass to another

$mark = log_mark($t);

($out, $rc) = dtls_client($t, @good, '-m', 'rehandshake', '-n', '1',
	'-I', 'dev-2', '-t', '2000');
like($out, qr/^second handshake ok /m, 'other peer: handshake done');
unlike($out, qr/^second echo ok/m, 'other peer: no echo');
ok(wait_log($t, qr/authenticated another peer, DTLS session ended/, 3,
	$mark), 'other peer: session ended');

###############################################################################

# a copy of the ClientHello that made the session (its valid cookie and
# the session's random) is ignored

$mark = log_mark($t);

($out, $rc) = dtls_client($t, @good, '-m', 'replay', '-n', '2', '-t', '5000');
like($out, qr/^first echo ok n=1$/m, 'replay: session up');
like($out, qr/^replayed clienthello len=\d+$/m, 'replay: ClientHello sent');
unlike($out, qr/^reply after replay/m, 'replay: no reply');
like($out, qr/^recv be:hello-2$/m, 'replay: echoes after');
like($out, qr/^echo ok n=2$/m, 'replay: echo ok') or diag($out);
like($out, qr/^close_notify received$/m, 'replay: session closed cleanly');
is($rc, 0, 'replay: exit code');

ok(wait_log($t, qr/client closed DTLS session \(close_notify\)/, 3, $mark),
	'replay: the session lasted until close_notify');
is(scalar grep_log($t, $new_re, $mark), 0, 'replay: session not ended');

###############################################################################

# a ClientHello without a cookie gets a HelloVerifyRequest and leaves the
# session be

$mark = log_mark($t);

($out, $rc) = dtls_client($t, @good, '-m', 'replay-new', '-n', '2',
	'-t', '5000');
like($out, qr/^first echo ok n=1$/m, 'replay-new: session up');
like($out, qr/^hvr received len=\d+ cookie_len=32 request_len=\d+$/m,
	'replay-new: hvr') or diag($out);
like($out, qr/^recv be:hello-2$/m, 'replay-new: echoes after');
like($out, qr/^echo ok n=2$/m, 'replay-new: echo ok');
is($rc, 0, 'replay-new: exit code');

ok(wait_log($t, qr/client closed DTLS session \(close_notify\)/, 3, $mark),
	'replay-new: the session lasted until close_notify');
is(scalar grep_log($t, $new_re, $mark), 0, 'replay-new: session not ended');

###############################################################################

# a new handshake in progress when its worker shuts down (a reload): the
# old worker, whose socket is closed, neither retransmits nor alerts

$mark = log_mark($t);

my $stall = daemon($t, tool($t, 'dtls_client'), @good,
	'-m', 'renew-stall', '-n', '1', '-W', '3000', '-t', '3000');
ok(wait_for($t, sub { daemon_output($t, $stall) =~ /^echo ok n=1$/m }, 5),
	'renewal at a reload: begun') or diag(daemon_output($t, $stall));

reload_wait($t);

ok(wait_for($t, sub { daemon_output($t, $stall) =~ /^late echo|failed/m },
	10), 'renewal at a reload: client done')
	or diag(daemon_output($t, $stall));
unlike(daemon_output($t, $stall), qr/^epoch-0 datagram/m,
	'renewal at a reload: nothing more sent for it');
ok(wait_for($t, sub { workers($t) == 1 }, 8), 'renewal at a reload: old worker gone');
is(join("\n", grep_log($t, qr/\[(alert|crit)\]/, $mark)), '',
	'renewal at a reload: no alerts');

###############################################################################

$t->stop();

# a line for each session: a renewed session is one; the session ended by
# another peer's handshake is logged with its first identity

my @access = access_lines($t);
is(scalar(grep { /^\d+ dev-1 200 [\d.]+$/ } @access), 7,
	'access log: seven sessions, of dev-1') or diag(join "\n", @access);

my %ports;
$ports{(split / /)[0]}++ for @access;
is(scalar(grep { $_ > 1 } values %ports), 0,
	'access log: one session per client port');

is(scalar grep_log($t, qr/DTLS handshake failed/), 1,
	'one failed handshake, the one left unfinished');
is(log_alerts($t), '', 'no alerts');

###############################################################################
