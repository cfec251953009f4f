#!/usr/bin/perl

# Volume: 1,000 DTLS sessions one after another and 200 at once, proxied
# to a UDP backend; every session is logged, and released: the worker's
# memory does not grow with another 1,000 sessions.

###############################################################################

use warnings;
use strict;

use Test::More;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::Nginx;
use Test::Nginx::DTLS qw/ :DEFAULT proc_kb /;

use Time::HiRes qw/ time /;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Nginx->new()->has(qw/stream udp/)->has_module('dtls');

tool($t, qw/ dtls_client udp_echo /);

$t->write_file_expand('nginx.conf', <<'EOF');

events {
    worker_connections  1024;
}

stream {
    log_format  load  '$dtls_psk_identity $dtls_protocol $dtls_cipher '
                      '$status $upstream_addr $upstream_bytes_received';

    access_log  %%TESTDIR%%/access.log  load;

    # all datagrams of all sessions arrive on the listen socket: with
    # 200 clients at once (and a debug log) the default receive buffer
    # overflows, and a lost application datagram is never retransmitted

    server {
        listen                  127.0.0.1:%%PORT_8980_UDP%% udp rcvbuf=4m;
        dtls                    on;
        dtls_psk_file           psk;
        dtls_handshake_timeout  2s;
        proxy_pass              127.0.0.1:%%PORT_8981_UDP%%;
        proxy_timeout           5s;
    }
}

EOF

my $key = hexkey();

psk_file($t, 'psk', "load-1:$key\n");

udp_echo($t, '127.0.0.1:' . port(8981, udp => 1), 'be:');
$t->run()->plan(22);

my $p = port(8980, udp => 1);
my $backend = '127.0.0.1:' . port(8981, udp => 1);

my @client = ('-c', "127.0.0.1:$p", '-i', 'load-1', '-k', $key);

###############################################################################

# the replies come from the backend

my ($out, $rc) = dtls_client($t, { timeout => 30 }, @client, '-m', 'echo',
	'-n', '2');
like($out, qr/^recv be:hello-2$/m, 'reply through the backend');
is($rc, 0, 'echo: exit code');

my $lines = 1;
ok(wait_access($t, $lines, 10), 'echo: logged');

# 1,000 sessions one after another

my $start = time();
($out, $rc) = dtls_client($t, { timeout => 240 }, @client, '-m', 'sequential',
	'-n', '1000',
	'-t', '5000');
my $seq_time = time() - $start;
diag(sprintf('1000 sequential sessions: %.1fs', $seq_time));

like($out, qr/^summary ok=1000 failed=0$/m, 'sequential: all sessions')
	or diag(substr($out, 0, 2000));
is($rc, 0, 'sequential: exit code');

$lines += 1000;
ok(wait_access($t, $lines, 10), 'sequential: 1000 access log lines')
	or diag(scalar access_lines($t));
is(good_lines(access_lines($t)), $lines,
	'sequential: all logged with status 200');

# 200 sessions at once

$start = time();
($out, $rc) = dtls_client($t, { timeout => 120 }, @client, '-m', 'parallel',
	'-P', '200', '-n', '3',
	'-t', '20000');
diag(sprintf('200 parallel sessions: %.1fs', time() - $start));

like($out, qr/^summary ok=200 failed=0$/m, 'parallel: all sessions')
	or diag(substr($out, 0, 2000)
		. "datagrams dropped by the kernel on the listen socket: "
		. listen_drops());
is($rc, 0, 'parallel: exit code');

$lines += 200;
ok(wait_access($t, $lines, 10), 'parallel: 200 access log lines')
	or diag(scalar access_lines($t));
is(good_lines(access_lines($t)), $lines,
	'parallel: all logged with status 200');

is(log_alerts($t), '', 'no alerts after the load');

# another 1,000 sessions: the worker does not keep them

my ($worker) = workers($t);
ok($worker, 'worker pid');

my $rss_before = proc_kb($worker, 'VmRSS');

$start = time();
($out, $rc) = dtls_client($t, { timeout => 240 }, @client, '-m', 'sequential',
	'-n', '1000',
	'-t', '5000');
diag(sprintf('1000 more sequential sessions: %.1fs', time() - $start));

like($out, qr/^summary ok=1000 failed=0$/m, 'sequential again: all sessions')
	or diag(substr($out, 0, 2000));

$lines += 1000;
ok(wait_access($t, $lines, 10), 'sequential again: 1000 access log lines')
	or diag(scalar access_lines($t));

my $rss_after = proc_kb($worker, 'VmRSS');

diag("worker $worker VmRSS: "
	. (defined $rss_before ? $rss_before : '?') . " kB before, "
	. (defined $rss_after ? $rss_after : '?') . " kB after 1000 more"
	. " sessions");

ok(defined $rss_before && defined $rss_after, 'worker RSS read');
SKIP: {
	skip 'ASan keeps freed memory', 1 if $ENV{TEST_NGINX_ASAN};

	ok(defined $rss_before && defined $rss_after
		&& $rss_after - $rss_before < 5 * 1024,
		'worker RSS growth under 5 MB');
}

is((workers($t))[0], $worker, 'same worker throughout');

###############################################################################

# after the stop: every session logged once, all of them good

is(stop_status($t), 0, 'stop: exit status');

my @access = access_lines($t);
is(scalar @access, $lines, 'access log: one line per session');
is(good_lines(@access), $lines, 'access log: identity, protocol, status 200,'
	. ' upstream');

is(log_alerts($t), '', 'no alerts');

###############################################################################




# a session that got through: identity, DTLS 1.2, status 200, proxied to
# the backend which sent something back

sub good_lines {
	return scalar grep {
		/^load-1 DTLSv1\.2 \S+ 200 \Q$backend\E [1-9]\d*$/
	} @_;
}

# the "drops" column of /proc/net/udp for the listen socket

sub listen_drops {
	my $local = sprintf '0100007F:%04X', $p;

	for (split /\n/, $t->read_file('/proc/net/udp')) {
		my @f = split ' ';
		return $f[-1] if @f > 2 && $f[1] eq $local;
	}

	return '?';
}


###############################################################################
