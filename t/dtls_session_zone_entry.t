#!/usr/bin/perl

# dtls_session_zone: what an entry is.  A session is that of the client's
# address and port and the server's.  One client socket with a session on each of two
# listens of a server (two ports; two addresses of a wildcard listen):
# both sessions are kept in the zone, and both are answered when the
# client wakes after its nginx sessions ended.  A new handshake from a
# session's address ends the session (RFC 6347 4.2.8), also when its suite
# is one the zone cannot keep.  A session whose PSK identity does not fit
# in an entry is not kept (a continued session without it could not say
# who it is, nor be ended when the identity is removed).

###############################################################################

use warnings;
use strict;

use Test::More;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::Nginx;
use Test::Nginx::DTLS;

use POSIX qw/ WNOHANG /;
use Socket qw/ pack_sockaddr_in inet_aton /;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Nginx->new()->has(qw/stream udp/)->has_module('dtls');

tool($t, qw/ dtls_client udp_echo /);

my $key = hexkey();

# identities of 100 and 128 bytes (the longest a key file may hold)

my %long = map { $_ => 'urn:dev:' . ('x' x ($_ - 8)) } 100, 128;

psk_file($t, 'psk', "dev-1:$key\n$long{100}:$key\n$long{128}:$key\n");

$t->write_file_expand('nginx.conf', <<'EOF');

events {
}

stream {
    log_format  zone  '$server_addr:$server_port $dtls_session_continued '
                      '$dtls_psk_identity $dtls_zone_sessions $dtls_cipher';

    access_log  %%TESTDIR%%/access.log  zone;
    error_log   %%TESTDIR%%/error.log  info;

    dtls_psk_file  %%TESTDIR%%/psk;

    server {
        listen             127.0.0.1:%%PORT_8990_UDP%% udp;
        listen             127.0.0.1:%%PORT_8991_UDP%% udp;
        listen             %%PORT_8992_UDP%% udp;
        dtls               on;
        dtls_session_zone  sessions:1m;
        proxy_timeout      1s;
        proxy_pass         127.0.0.1:%%PORT_8993_UDP%%;
    }

    server {
        listen             127.0.0.1:%%PORT_8998_UDP%% udp;
        dtls               on;
        dtls_ciphers       PSK-AES128-CCM8:PSK-AES128-CBC-SHA256;
        dtls_session_zone  cbc:1m;
        proxy_timeout      1s;
        proxy_pass         127.0.0.1:%%PORT_8993_UDP%%;
    }
}

EOF

udp_echo($t, '127.0.0.1:' . port(8993, udp => 1));
$t->run()->plan(13);

###############################################################################

# two ports of one server

my @to = map { '127.0.0.1:' . port($_, udp => 1) } 8990, 8991;
my @both = sleepy_pair([ 8994, 8995 ], @to);

ok($both[0], 'first port: answered after the nginx session ended');
ok($both[1], 'second port: answered after the nginx session ended');

# two addresses of a wildcard listen

@to = map { "$_:" . port(8992, udp => 1) } '127.0.0.1', '127.0.0.2';
@both = sleepy_pair([ 8996, 8997 ], @to);

ok($both[0], 'wildcard, first address: answered');
ok($both[1], 'wildcard, second address: answered');

# a new handshake for each session, and only that: the rest continued

my @lines = access_lines($t);

is(scalar(grep { / \. / } @lines), 4, 'four handshakes, no more');
ok(scalar(grep { / c / } @lines) >= 4, 'each session continued');

# a device's session in the zone (an AEAD suite), then a new handshake from
# its address with a CBC suite, which keeps OpenSSL's records and no entry:
# the device's session is over, in the zone too

my $mark = access_mark($t);
my $cbc = '127.0.0.1:' . port(8998, udp => 1);
my @ports = map { port($_, udp => 1) } 8999, 9000;
my $pid = relay(\@ports, [ $cbc, $cbc ]);

my $device = daemon($t, tool($t, 'dtls_client'), '-c', "127.0.0.1:$ports[0]",
	'-i', 'dev-1', '-k', $key, '-C', 'PSK-AES128-CCM8', '-m', 'echo',
	'-n', 2, '-W', 3000, '-t', 2000, '-s', 'hello');

# its nginx session ends at proxy_timeout, and is logged then

wait_access($t, 1, 5, $mark);

my ($out) = dtls_client($t, '-c', "127.0.0.1:$ports[1]", '-i', 'dev-1',
	'-k', $key, '-C', 'PSK-AES128-CBC-SHA256', '-m', 'echo', '-n', 1);

like($out, qr/^echo ok n=1$/m, 'new handshake from the address, CBC suite');

wait_for($t, sub { waitpid($device, WNOHANG) != 0 }, 10);
kill 'TERM', $pid;
waitpid($pid, 0);

unlike(daemon_output($t, $device), qr/^echo ok n=2$/m,
	'the session it replaced is not continued');
my ($line) = grep { / PSK-AES128-CBC-SHA256$/ } access_lines($t, $mark);
like($line, qr/ \. dev-1 0 PSK-AES128-CBC-SHA256$/, 'and left the zone');

# long identities: one that fits, and one that does not

for my $n (100, 128) {
	$mark = access_mark($t);

	($out) = dtls_client($t, '-c', $to[0], '-i', $long{$n}, '-k', $key,
		'-m', 'echo', '-n', 2, '-W', 2500, '-t', 2000);

	wait_access($t, 2, 5, $mark) if $n == 100;
	@lines = access_lines($t, $mark);

	if ($n == 100) {
		like($out, qr/^echo ok n=2$/m, 'identity of 100 bytes: continued');
		my $id = $long{100};
		ok(grep({ / c \Q$id\E / } @lines),
			'and its identity with it');
		next;
	}

	unlike($out, qr/^echo ok n=2$/m, 'identity of 128 bytes: not kept');
	ok(grep_log($t, qr/\[info\].*DTLS session not kept in /
		. qr/dtls_session_zone "sessions": its PSK identity, server name /
		. qr/and PROXY protocol values take more than an entry's 512 /),
		'and logged');
}

###############################################################################

# two dtls_clients through one relay socket (listening on the ports
# numbered in $relay), the first's datagrams to $to[0], the second's to
# $to[1]: each echoes, sleeps past proxy_timeout
# and echoes again.  Whether each got both echoes back.

sub sleepy_pair {
	my ($relay, @to) = @_;

	my @ports = map { port($_, udp => 1) } @$relay;
	my $pid = relay(\@ports, \@to);

	my @clients = map {
		daemon($t, tool($t, 'dtls_client'), '-c', "127.0.0.1:$_",
			'-i', 'dev-1', '-k', $key, '-m', 'echo', '-n', 2,
			'-W', 2500, '-t', 3000, '-s', 'hello')
	} @ports;

	wait_for($t, sub { !grep { waitpid($_, WNOHANG) == 0 } @clients }, 20);

	kill 'TERM', $pid;
	waitpid($pid, 0);

	return map { daemon_output($t, $_) =~ /^echo ok n=2$/m ? 1 : 0 }
		@clients;
}

# a relay: what comes to 127.0.0.1:$ports->[i] goes to $to->[i], all from
# one socket; what comes back from $to->[i] goes to whoever sent to
# $ports->[i] last (of those with that $to, whoever sent last)

sub relay {
	my ($ports, $to) = @_;

	my @dest = map {
		my ($host, $port) = split /:/;
		pack_sockaddr_in($port, inet_aton($host));
	} @$to;

	my ($up, @from, %last);

	return rule_relay($ports, sub {
		my ($r, $fh, $peer, $buf) = @_;

		$up //= $r->socket();

		if ($fh == $up) {
			my $i = $last{$peer};
			$r->{listen}[$i]->send($buf, 0, $from[$i]) if defined $i;
			return;
		}

		my ($i) = grep { $r->{listen}[$_] == $fh } 0 .. $#$ports;
		$from[$i] = $peer;
		$last{$dest[$i]} = $i;
		$up->send($buf, 0, $dest[$i]);
	});
}

###############################################################################
