#!/usr/bin/perl

# A reload that fails after the stream block was read (here an unknown
# directive on the last line) leaves the running configuration in place,
# and with it everything a worker needs for a handshake: a worker forked
# after that (one killed and respawned) still makes handshakes, and so do
# the workers of a good reload that follows.

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

my $key = hexkey();

psk_file($t, 'psk', "dev-1:$key\n");

my $conf = <<'EOF';

events {
}

stream {
    server {
        listen                  127.0.0.1:%%PORT_8980_UDP%% udp;
        dtls                    on;
        dtls_psk_file           psk;
        dtls_handshake_timeout  2s;
        return                  "ok $dtls_psk_identity";
    }
}

EOF

$t->write_file_expand('nginx.conf', $conf);
$t->run()->plan(13);

my $peer = '127.0.0.1:' . port(8980, udp => 1);

sub handshake {
	my ($o) = dtls_client($t, { timeout => 10 },
		'-c', $peer, '-m', 'send-only', '-s', 'x', '-i', 'dev-1',
		'-k', $key, '-t', 3000);
	return $o;
}

###############################################################################

like(handshake(), qr/^handshake ok .*^recv ok dev-1$/ms, 'before: handshake');

# the new configuration fails on its last line, after the stream block
# (and the module's postconfiguration) was done

my @workers = workers($t);
my $mark = log_mark($t);

$t->write_file_expand('nginx.conf', $conf . "no_such_directive  on;\n");
kill 'HUP', nginx_pid($t);

ok(wait_log($t, qr/\[emerg\] .*unknown directive "no_such_directive"/,
	5, $mark), 'failed reload: emerg logged');
ok(running($t), 'failed reload: nginx still running');
is(join(' ', workers($t)), join(' ', @workers),
	'failed reload: same workers');
like(handshake(), qr/^handshake ok .*^recv ok dev-1$/ms,
	'failed reload: the old worker serves');

# a worker forked after the failed reload, from the master's state

kill 'KILL', @workers;

ok(wait_log($t, qr/worker process $workers[0] exited on signal 9/, 5, $mark)
	&& wait_for($t, sub { grep { $_ != $workers[0] } workers($t) }, 5),
	'killed worker respawned');

like(handshake(), qr/^handshake ok .*^recv ok dev-1$/ms,
	'respawned worker: handshake');
like(handshake(), qr/^handshake ok .*^recv ok dev-1$/ms,
	'respawned worker: second handshake');

# a good reload after that

$t->write_file_expand('nginx.conf', $conf);

ok(reload_done($t), 'good reload');
like(handshake(), qr/^handshake ok .*^recv ok dev-1$/ms,
	'good reload: handshake');

# no worker crashed; the alerts are the failed reload and the kill

$t->stop();

is(join("\n", grep_log($t, qr/exited on signal (?!9\b)/)), '',
	'no worker died of a signal but the kill');

my @alerts = split /\n/, log_alerts($t);

is(scalar(@alerts), 2, 'two alerts in the log');
ok((grep { /\[emerg\] .*unknown directive "no_such_directive"/ } @alerts)
	&& (grep { /\[alert\] .*worker process $workers[0] exited on signal 9$/ }
		@alerts), 'alerts: the failed reload, the killed worker')
	or diag(join "\n", @alerts);

###############################################################################
