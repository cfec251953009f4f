#!/usr/bin/perl

# DTLS-PSK sessions carrying data: through proxy_pass to a balanced
# upstream, through return, with the session variables in content and in
# the access log; every default cipher suite; resumption; dtls_mtu on the
# way back; and openssl s_client as a client we did not write.

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
my $key2 = hexkey(32);
my @dev1 = ('-i', 'dev-1', '-k', $key);

psk_file($t, 'psk', "# test keys\ndev-1:$key\nurn:dev:2:$key2\n");

$t->write_file_expand('nginx.conf', <<'EOF');

events {
}

stream {
    dtls_psk_file  psk;

    log_format  dtls  '$remote_port "$dtls_psk_identity" $dtls_protocol '
                      '$dtls_cipher $dtls_session_reused $status';

    access_log  %%TESTDIR%%/access.log dtls;

    upstream backends {
        server 127.0.0.1:%%PORT_8981_UDP%%;
        server 127.0.0.1:%%PORT_8982_UDP%%;
    }

    server {
        listen                  127.0.0.1:%%PORT_8980_UDP%% udp;
        dtls                    on;
        dtls_psk_identity_hint  "gw-1";
        proxy_pass              backends;
        proxy_timeout           2s;
    }

    server {
        listen                  127.0.0.1:%%PORT_8983_UDP%% udp;
        dtls                    on;
        return                  "$dtls_psk_identity $dtls_protocol $dtls_cipher";
    }

    server {
        listen                  127.0.0.1:%%PORT_8986_UDP%% udp;
        dtls                    on;
        dtls_protocols          DTLSv1 DTLSv1.2;
        dtls_ciphers            "PSK-AES128-CBC-SHA:@SECLEVEL=0";
        return                  "$dtls_protocol $dtls_cipher";
    }

    server {
        listen                  127.0.0.1:%%PORT_8987_UDP%% udp;
        dtls                    on;
        proxy_pass              127.0.0.1:%%PORT_8981_UDP%%;
        proxy_buffer_size       1k;
        proxy_timeout           2s;
    }

    server {
        listen                  127.0.0.1:%%PORT_8984_UDP%% udp;
        dtls                    on;
        proxy_pass              127.0.0.1:%%PORT_8985_UDP%%;
        proxy_timeout           2s;
    }
}

EOF

udp_echo($t, '127.0.0.1:' . port(8981, udp => 1), 'a:');
udp_echo($t, '127.0.0.1:' . port(8982, udp => 1), 'b:');
udp_echo($t, '127.0.0.1:' . port(8985, udp => 1), 'x' x 100);

$t->run()->plan(31);

my $proxy = '127.0.0.1:' . port(8980, udp => 1);
my $ret = '127.0.0.1:' . port(8983, udp => 1);
my $big = '127.0.0.1:' . port(8984, udp => 1);
my $v10 = '127.0.0.1:' . port(8986, udp => 1);
my $small = '127.0.0.1:' . port(8987, udp => 1);

###############################################################################

# each record reaches a backend as one datagram, each reply comes back as
# one record; sessions are balanced over the upstream servers

my $mark;
my ($out, $rc) = dtls_client($t, @dev1, '-c', $proxy, '-m', 'echo', '-n', 5);

like($out, qr/^handshake ok protocol=DTLSv1\.2 /m, 'proxy: handshake');
is(scalar(() = $out =~ /^recv ([ab]):hello-\d$/mg), 5,
	'proxy: 5 datagrams each way');
like($out, qr/^close_notify received$/m, 'proxy: close_notify answered');

my %seen;

for (1 .. 4) {
	($out) = dtls_client($t, @dev1, '-c', $proxy, '-m', 'echo');
	$seen{$1}++ if $out =~ /^recv ([ab]):/m;
}

ok($seen{a} && $seen{b}, 'proxy: both upstream servers used');

# return, with the session's variables

($out) = dtls_client($t, @dev1, '-c', $ret, '-m', 'send-only', '-s', 'x');
like($out, qr/^recv dev-1 DTLSv1\.2 \S+$/m, 'return: variables');
like($out, qr/^close_notify received$/m, 'return: close_notify');

($out) = dtls_client($t, @dev1, '-c', $ret, '-m', 'send-only', '-s', 'x',
	'-i', 'urn:dev:2', '-k', $key2);
like($out, qr/^recv urn:dev:2 /m, 'identity with colons, 32-byte key');

# every default cipher suite

for my $cipher (qw/PSK-AES128-CCM8 PSK-AES128-CCM PSK-AES128-GCM-SHA256
	PSK-AES256-GCM-SHA384 PSK-CHACHA20-POLY1305
	ECDHE-PSK-CHACHA20-POLY1305/)
{
	($out) = dtls_client($t, @dev1, '-c', $ret, '-m', 'send-only',
		'-s', 'x', '-C', $cipher);
	like($out, qr/^recv dev-1 DTLSv1\.2 \Q$cipher\E$/m, "cipher $cipher");
}

# resumption

($out) = dtls_client($t, @dev1, '-c', $proxy, '-m', 'sequential',
	'-n', 3, '-R');
like($out, qr/^summary ok=3 failed=0 reused=2$/m, 'resumption');

# a resumed session whose client sends ChangeCipherSpec, Finished and its
# first record in one datagram: that record is delivered at once, and the
# session goes on

$mark = log_mark($t);

($out) = dtls_client($t, @dev1, '-c', $proxy, '-m', 'sequential',
	'-n', 3, '-R', '-X');
like($out, qr/^summary ok=3 failed=0 reused=2$/m,
	'resumption, data with the last flight');
is(join("\n", grep_log($t, qr/\[(alert|crit|error)\]/, $mark)), '',
	'resumption, data with the last flight: no alerts');

# a reply whose record would exceed dtls_mtu is dropped, and logged

$mark = log_mark($t);

($out) = dtls_client($t, @dev1, '-c', $big, '-m', 'send-only',
	'-s', 'y' x 1100, '-t', 1500);
unlike($out, qr/^recv /m, 'dtls_mtu: oversized reply not sent');
ok(wait_log($t, qr/datagram of 1200 bytes dropped: a record of it exceeds /
	. qr/dtls_mtu/, 3, $mark), 'dtls_mtu: logged');

($out) = dtls_client($t, @dev1, '-c', $big, '-m', 'send-only',
	'-s', 'y' x 1060);
like($out, qr/^recv x{100}y{1060}$/m, 'dtls_mtu: 1160 bytes fit');

# a record larger than the proxy's buffer is dropped whole, and logged:
# split, it would reach the backend as two datagrams

$mark = log_mark($t);

($out) = dtls_client($t, @dev1, '-c', $small, '-m', 'send-only',
	'-s', 'z' x 1100, '-t', 1500);
unlike($out, qr/^recv /m, 'proxy_buffer_size: larger record not delivered');
ok(wait_log($t, qr/\[info\].*DTLS record of 1100 bytes dropped: the proxy /
	. qr/buffer has 1024 bytes free/, 3, $mark),
	'proxy_buffer_size: logged');

($out) = dtls_client($t, @dev1, '-c', $small, '-m', 'send-only',
	'-s', 'z' x 1000);
like($out, qr/^recv a:z{1000}$/m, 'proxy_buffer_size: 1000 bytes fit');

# openssl s_client

SKIP: {
	skip 'no openssl binary', 4 unless `openssl version 2>/dev/null`;

	$out = s_client($proxy, 'dev-1', $key, "one\n");
	like($out, qr/^[ab]:one$/m, 's_client: echo through proxy');

	# s_client renegotiates on "R": refused, no second handshake

	$mark = log_mark($t);

	$out = s_client($proxy, 'dev-1', $key, "one\\n' ; sleep 0.5; printf 'R\\n",
		'-dtls1_2 -no_ign_eof');
	like($out, qr/^RENEGOTIATING/m, 'renegotiation: asked for');
	like($out, qr/no renegotiation/, 'renegotiation: refused');

	$out = s_client($proxy, 'dev-1', 'ff' x 16, "two\n");
	unlike($out, qr/two/, 's_client: wrong key gets nothing');
}

# dtls_protocols: DTLS 1.0 only where it is enabled

SKIP: {
	skip 'no openssl binary', 3 unless `openssl version 2>/dev/null`;

	my $dtls1 = '-dtls1 -cipher PSK-AES128-CBC-SHA:@SECLEVEL=0';

	$mark = log_mark($t);

	$out = s_client($ret, 'dev-1', $key, "x\n", $dtls1);
	unlike($out, qr/DTLSv1/, 'DTLS 1.0 refused by default');
	ok(wait_log($t, qr/DTLS handshake failed: protocol version not enabled/,
		3, $mark), 'DTLS 1.0 refusal logged');

	$out = s_client($v10, 'dev-1', $key, "x\n", $dtls1);
	like($out, qr/^DTLSv1 PSK-AES128-CBC-SHA$/m, 'DTLS 1.0 when enabled');
}

# the access log

$t->stop();

my $log = $t->read_file('access.log');
like($log, qr/^\d+ "dev-1" DTLSv1\.2 PSK-\S+ \. 200$/m, 'access log');
like($log, qr/^\d+ "dev-1" DTLSv1\.2 \S+ r 200$/m, 'access log: reused');

###############################################################################


sub s_client {
	my ($peer, $identity, $psk, $input, $options) = @_;

	$options //= '-dtls1_2';

	# the input is sent, then s_client waits a second for the reply;
	# the options come last, as -no_ign_eof must follow -quiet

	return `(printf '$input'; sleep 1) | timeout 10 openssl s_client \\
		-connect $peer -psk_identity $identity -psk $psk -quiet \\
		$options 2>&1`;
}

###############################################################################
