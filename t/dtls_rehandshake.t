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

use Time::HiRes qw/ time /;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Nginx->new()->has(qw/stream udp/)->has_module('dtls');

tool($t, qw/ dtls_client udp_echo /);

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
$t->run()->plan(54);

my $p = port(8980, udp => 1);
my @good = ('-c', "127.0.0.1:$p", '-i', 'dev-1', '-k', $key);

my $new_re = qr/client made a new handshake, DTLS session renewed/;
my $hs_re = qr/^handshake ok protocol=DTLSv1\.2 cipher=\S+/;

###############################################################################

# a client that restarted and kept its port: its new handshake completes at
# once, not after a retransmission or at proxy_timeout, and the session
# goes on with it

my $mark = log_mark($t);

my $c = dtls_lines($t, @good, '-t', '6000');
like($c->io('handshake'), qr/$hs_re reused=0$/,
	'rehandshake: first handshake');
is($c->io('send hello-1'), 'recv be:hello-1',
	'rehandshake: first session echoes');
is($c->io('send hello-2'), 'recv be:hello-2',
	'rehandshake: first session echo ok');

# no close_notify: the device lost its state

$c->io('new-session');

my $start = time();
like($c->io('handshake'), qr/$hs_re reused=0$/,
	'rehandshake: second handshake') or diag($c->out());
my $ms = int((time() - $start) * 1000);

is($c->io('send hello-s2-1'), 'recv be:hello-s2-1',
	'rehandshake: second session echoes');
is($c->io('send hello-s2-2'), 'recv be:hello-s2-2',
	'rehandshake: second session echo ok');
$c->io('close');

ok($ms < 500,
	'rehandshake: second handshake without waiting for a retransmission')
	or diag("$ms ms");
diag("second handshake: $ms ms") if $ENV{TEST_NGINX_VERBOSE};
is($c->close(), 0, 'rehandshake: exit code');

ok(wait_log($t, qr/\[info\].*$new_re/, 3, $mark), 'rehandshake: logged');
is(scalar grep_log($t, $new_re, $mark), 1, 'rehandshake: logged once');

# one nginx session, renewed, ended by the close_notify of the second

ok(wait_for($t, sub { access_lines($t) >= 1 }, 3),
	'rehandshake: session ended');
is(scalar grep_log($t, qr/new DTLS handshake of the client failed/, $mark),
	0, 'rehandshake: no failure');

# the same with a resumed handshake whose last flight carries the first
# record (-X): delivered at once after the swap

$mark = log_mark($t);

$c = dtls_lines($t, @good, '-X', '-t', '3000');
$c->io('handshake');
$c->io('send hello-1');
$c->io('new-session resume');
like($c->io('handshake'), qr/$hs_re reused=1$/,
	'rehandshake, resumed: second handshake') or diag($c->out());
is($c->io('send hello-s2-1'), 'recv be:hello-s2-1',
	'rehandshake, resumed, data with the last flight: echoes');
$c->io('close');
$c->close();

ok(wait_log($t, qr/\[info\].*$new_re/, 3, $mark), 'rehandshake, resumed: renewed');
is(join("\n", grep_log($t, qr/\[(alert|crit|error)\]/, $mark)), '',
	'rehandshake, resumed: no alerts');

###############################################################################

# a new handshake left after the server's flight: the live session works
# during it, and after nginx gave it up at dtls_handshake_timeout (2s)

$mark = log_mark($t);

$c = dtls_lines($t, @good, '-t', '5000');
$c->io('handshake');
is($c->io('send hello-0'), 'recv be:hello-0', 'renew-stall: session up');

like($c->io('hello'), qr/^hvr received /, 'renew-stall: hvr');
like($c->io('cookie'), qr/^server flight received len=\d+$/,
	'renew-stall: new handshake begun') or diag($c->out());
is($c->io('send hello-1') . $c->io('send hello-2'),
	'recv be:hello-1recv be:hello-2',
	'renew-stall: live session works during it');
like($c->io('wait 3000'), qr/^waited 3000 ms, epoch-0:.* len=15 type=2\b/,
	'renew-stall: handshake_failure alert at the timeout');
is($c->io('send late-1') . $c->io('send late-2'),
	'recv be:late-1recv be:late-2', 'renew-stall: and after it');
$c->io('close');
is($c->close(), 0, 'renew-stall: exit code');

ok(wait_log($t, qr/\[info\].*DTLS handshake failed: timed out/, 3, $mark),
	'renew-stall: new handshake timed out');
ok(wait_log($t, qr/new DTLS handshake of the client failed, the DTLS session goes on/, 3, $mark),
	'renew-stall: session went on');
is(scalar grep_log($t, $new_re, $mark), 0, 'renew-stall: not renewed');

###############################################################################

# a new handshake of another PSK identity from the same address and port
# ends the session: what was decided for one peer does not pass to another

$mark = log_mark($t);

$c = dtls_lines($t, @good, '-t', '2000');
$c->io('handshake');
$c->io('send hello-1');
$c->io('new-session dev-2');
like($c->io('handshake'), $hs_re, 'other peer: handshake done');
isnt($c->io('send hello-s2-1'), 'recv be:hello-s2-1', 'other peer: no echo');
$c->close();

ok(wait_log($t, qr/authenticated another peer, DTLS session ended/, 3,
	$mark), 'other peer: session ended');

###############################################################################

# a copy of the ClientHello that made the session (its valid cookie and
# the session's random) is ignored

$mark = log_mark($t);

$c = dtls_lines($t, @good, '-t', '5000');
$c->io('handshake');
is($c->io('send hello-0'), 'recv be:hello-0', 'replay: session up');
like($c->io('replay'), qr/^replayed clienthello len=\d+$/,
	'replay: ClientHello sent');
is($c->io('wait 500'), 'waited 500 ms, epoch-0: none', 'replay: no reply');
is($c->io('send hello-1'), 'recv be:hello-1', 'replay: echoes after');
is($c->io('send hello-2'), 'recv be:hello-2', 'replay: echo ok')
	or diag($c->out());
is($c->io('close'), 'close_notify received',
	'replay: session closed cleanly');
is($c->close(), 0, 'replay: exit code');

ok(wait_log($t, qr/client closed DTLS session \(close_notify\)/, 3, $mark),
	'replay: the session lasted until close_notify');
is(scalar grep_log($t, $new_re, $mark), 0, 'replay: session not ended');

###############################################################################

# a ClientHello without a cookie gets a HelloVerifyRequest and leaves the
# session be

$mark = log_mark($t);

$c = dtls_lines($t, @good, '-t', '5000');
$c->io('handshake');
is($c->io('send hello-0'), 'recv be:hello-0', 'replay-new: session up');
like($c->io('hello'), qr/^hvr received len=\d+ cookie_len=32 request_len=\d+$/,
	'replay-new: hvr') or diag($c->out());
is($c->io('send hello-1'), 'recv be:hello-1', 'replay-new: echoes after');
is($c->io('send hello-2'), 'recv be:hello-2', 'replay-new: echo ok');
$c->io('close');
is($c->close(), 0, 'replay-new: exit code');

ok(wait_log($t, qr/client closed DTLS session \(close_notify\)/, 3, $mark),
	'replay-new: the session lasted until close_notify');
is(scalar grep_log($t, $new_re, $mark), 0, 'replay-new: session not ended');

###############################################################################

# a new handshake in progress when its worker shuts down (a reload): the
# old worker, whose socket is closed, neither retransmits nor alerts

$mark = log_mark($t);

$c = dtls_lines($t, @good, '-t', '3000');
$c->io('handshake');
$c->io('send hello-0');
$c->io('hello');
$c->io('cookie');
is($c->io('send hello-1'), 'recv be:hello-1', 'renewal at a reload: begun')
	or diag($c->out());

reload_wait($t);

my $waited = $c->io('wait 3000');
ok(defined $c->io('send late-1'), 'renewal at a reload: client done')
	or diag($c->out());
unlike($waited, qr/epoch-0: len/, 'renewal at a reload: nothing more sent for it');
$c->close();
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
