#!/usr/bin/perl

# DTLS with certificates: handshake flights larger than dtls_mtu are
# fragmented (every datagram nginx sends is measured on the way, through a
# relay in this test) and reassembled, and a flight larger than OpenSSL's
# 4096-byte write buffer goes out in whole records at dtls_mtu 9000; SNI routing with $dtls_server_name
# in a map; client certificates and the session variables in the access
# log; the default suites (no PSK suite without dtls_psk_file, no CBC
# suite ever, both kinds with both); and two clients we did not write,
# openssl s_client and GnuTLS's gnutls-cli, with certificates and PSK.

###############################################################################

use warnings;
use strict;

use Test::More;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::Nginx;
use Test::Nginx::DTLS;
use Test::DTLS::PKI;

use IO::Select;
use IO::Socket::IP;
use POSIX qw/ WNOHANG /;
use Time::HiRes qw/ time /;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Nginx->new()->has(qw/stream udp/)->has_module('dtls');

tool($t, 'udp_echo');

plan(skip_all => 'no openssl binary')
	unless `openssl version 2>/dev/null` =~ /^OpenSSL/;

my $gnutls = `gnutls-cli --version 2>/dev/null` =~ /gnutls/i;

my %pki = make_pki($t->testdir());

my $key = hexkey();

psk_file($t, 'psk', "dev-1:$key\n");

$t->write_file('nginx.conf.in', <<'EOF');

events {
}

stream {
    log_format  cert  '$server_port "$dtls_server_name" "$dtls_client_s_dn" '
                      '"$dtls_client_i_dn" $dtls_client_verify '
                      '"$dtls_psk_identity" $dtls_protocol $dtls_cipher '
                      '$status';

    access_log  %%TESTDIR%%/access.log cert;

    dtls_handshake_timeout   3s;
    dtls_client_certificate  %%CLIENT_CA%%;
    dtls_verify_depth        3;

    # a three-certificate chain: fragmented at 576, and at 1200

    server {
        listen                127.0.0.1:%%PORT_8980_UDP%% udp;
        dtls                  on;
        dtls_certificate      %%LONG_CRT%%;
        dtls_certificate_key  %%LONG_KEY%%;
        dtls_mtu              576;
        proxy_pass            127.0.0.1:%%PORT_8990_UDP%%;
        proxy_timeout         2s;
    }

    server {
        listen                127.0.0.1:%%PORT_8981_UDP%% udp;
        dtls                  on;
        dtls_certificate      %%LONG_CRT%%;
        dtls_certificate_key  %%LONG_KEY%%;
        proxy_pass            127.0.0.1:%%PORT_8990_UDP%%;
        proxy_timeout         2s;
    }

    # three RSA 4096 certificates at 9000: a flight of about 5000 bytes,
    # more than the 4096 OpenSSL buffers before it writes to the BIO;
    # at 4500, a flight OpenSSL takes for one datagram although it is not

    server {
        listen                127.0.0.1:%%PORT_8985_UDP%% udp;
        dtls                  on;
        dtls_certificate      %%BIG_CRT%%;
        dtls_certificate_key  %%BIG_KEY%%;
        dtls_mtu              9000;
        proxy_pass            127.0.0.1:%%PORT_8990_UDP%%;
        proxy_timeout         2s;
    }

    server {
        listen                127.0.0.1:%%PORT_8986_UDP%% udp;
        dtls                  on;
        dtls_certificate      %%BIG_CRT%%;
        dtls_certificate_key  %%BIG_KEY%%;
        dtls_mtu              4500;
        proxy_pass            127.0.0.1:%%PORT_8990_UDP%%;
        proxy_timeout         2s;
    }

    # SNI routing; certificates only, default suites

    map $dtls_server_name $backend {
        a.example  backend_a;
        b.example  backend_b;
        default    backend_a;
    }

    upstream backend_a {
        server 127.0.0.1:%%PORT_8991_UDP%%;
    }

    upstream backend_b {
        server 127.0.0.1:%%PORT_8992_UDP%%;
    }

    server {
        listen                127.0.0.1:%%PORT_8982_UDP%% udp;
        dtls                  on;
        dtls_certificate      %%EC_CRT%%;
        dtls_certificate_key  %%EC_KEY%%;
        proxy_pass            $backend;
        proxy_timeout         2s;
    }

    # PSK only

    server {
        listen                127.0.0.1:%%PORT_8983_UDP%% udp;
        dtls                  on;
        dtls_psk_file         psk;
        proxy_pass            127.0.0.1:%%PORT_8990_UDP%%;
        proxy_timeout         2s;
    }

    # certificates and PSK

    server {
        listen                127.0.0.1:%%PORT_8984_UDP%% udp;
        dtls                  on;
        dtls_psk_file         psk;
        dtls_certificate      %%EC_CRT%%;
        dtls_certificate_key  %%EC_KEY%%;
        proxy_pass            127.0.0.1:%%PORT_8990_UDP%%;
        proxy_timeout         2s;
    }
}

EOF

my $conf = $t->read_file('nginx.conf.in');
$conf =~ s/%%CLIENT_CA%%/$pki{client_ca}/g;
$conf =~ s/%%LONG_CRT%%/$pki{long_crt}/g;
$conf =~ s/%%LONG_KEY%%/$pki{long_key}/g;
$conf =~ s/%%EC_CRT%%/$pki{ec_crt}/g;
$conf =~ s/%%EC_KEY%%/$pki{ec_key}/g;
$conf =~ s/%%BIG_CRT%%/$pki{big_crt}/g;
$conf =~ s/%%BIG_KEY%%/$pki{big_key}/g;
$t->write_file_expand('nginx.conf', $conf);

udp_echo($t, '127.0.0.1:' . port(8990, udp => 1), 'e:');
udp_echo($t, '127.0.0.1:' . port(8991, udp => 1), 'A:');
udp_echo($t, '127.0.0.1:' . port(8992, udp => 1), 'B:');

$t->run()->plan(64);

my $long576 = '127.0.0.1:' . port(8980, udp => 1);
my $long1200 = '127.0.0.1:' . port(8981, udp => 1);
my $big9000 = '127.0.0.1:' . port(8985, udp => 1);
my $big4500 = '127.0.0.1:' . port(8986, udp => 1);
my $sni = '127.0.0.1:' . port(8982, udp => 1);
my $psk = '127.0.0.1:' . port(8983, udp => 1);
my $both = '127.0.0.1:' . port(8984, udp => 1);

my @client_cert = ('-cert', $pki{client_crt}, '-key', $pki{client_key});
my @ca = ('-CAfile', $pki{ca}, '-verify_return_error');

###############################################################################

# the three-certificate chain, through a relay that measures every
# datagram: nginx's are never larger than dtls_mtu, and its Certificate
# message takes several of them at 576

my ($out, $r) = relayed($long576, "one\n",
	@ca, @client_cert, '-mtu', 576);

like($out, qr/^e:one$/m, 'mtu 576: handshake and echo');
like($out, qr/Verify return code: 0 \(ok\)/, 'mtu 576: chain verified');
ok($r->{s2c_max} && $r->{s2c_max} <= 576,
	"mtu 576: largest datagram from nginx $r->{s2c_max} <= 576");
cmp_ok($r->{cert_datagrams}, '>', 1,
	'mtu 576: Certificate message in several datagrams');
cmp_ok($r->{cert_len}, '>', 576, 'mtu 576: Certificate message larger');
ok($r->{cert_complete}, 'mtu 576: Certificate fragments cover it all');
ok($r->{c2s_max} && $r->{c2s_max} <= 576,
	"mtu 576: largest datagram from the client $r->{c2s_max} <= 576");
cmp_ok($r->{c2s_flight}, '>', 1,
	'mtu 576: client flight in several datagrams too');
is($r->{s2c_torn}, 0, 'mtu 576: every datagram from nginx whole records');

($out, $r) = relayed($long1200, "two\n", @ca, @client_cert);

like($out, qr/^e:two$/m, 'mtu 1200: handshake and echo');
ok($r->{s2c_max} && $r->{s2c_max} <= 1200,
	"mtu 1200: largest datagram from nginx $r->{s2c_max} <= 1200");
cmp_ok($r->{cert_len}, '>', 1200, 'mtu 1200: Certificate message larger');
cmp_ok($r->{cert_datagrams}, '>', 1,
	'mtu 1200: Certificate message in several datagrams');
is($r->{s2c_torn}, 0, 'mtu 1200: every datagram from nginx whole records');

# a flight larger than 4096 bytes at dtls_mtu 9000: no datagram ends or
# starts inside a record

($out, $r) = relayed($big9000, "nine\n", '-CAfile', $pki{big_ca},
	'-verify_return_error', @client_cert, '-mtu', 9000);

like($out, qr/^e:nine$/m, 'mtu 9000: handshake and echo');
like($out, qr/Verify return code: 0 \(ok\)/, 'mtu 9000: chain verified');
cmp_ok($r->{s2c_flight}, '>', 4096,
	"mtu 9000: server flight of $r->{s2c_flight} bytes, more than 4096");
is($r->{s2c_torn}, 0, 'mtu 9000: every datagram from nginx whole records')
	or diag("datagrams from nginx: @{$r->{s2c_sizes}}");
ok($r->{s2c_max} && $r->{s2c_max} <= 9000,
	"mtu 9000: largest datagram from nginx $r->{s2c_max} <= 9000");
cmp_ok($r->{s2c_max}, '>', 4096,
	'mtu 9000: datagrams larger than 4096 bytes, up to dtls_mtu');

# at 4500 OpenSSL's count of a datagram misses what the BIO holds: the
# flight still goes out in whole records, none larger than 4500

($out, $r) = relayed($big4500, "half\n", '-CAfile', $pki{big_ca},
	'-verify_return_error', @client_cert, '-mtu', 4500);

like($out, qr/^e:half$/m, 'mtu 4500: handshake and echo');
cmp_ok($r->{s2c_flight}, '>', 4500,
	"mtu 4500: server flight of $r->{s2c_flight} bytes, more than 4500");
is($r->{s2c_torn}, 0, 'mtu 4500: every datagram from nginx whole records')
	or diag("datagrams from nginx: @{$r->{s2c_sizes}}");
ok($r->{s2c_max} && $r->{s2c_max} <= 4500,
	"mtu 4500: largest datagram from nginx $r->{s2c_max} <= 4500")
	or diag("datagrams from nginx: @{$r->{s2c_sizes}}");

# the client's certificate chain (three certificates) in several
# datagrams too, reassembled by nginx

($out, $r) = relayed($long576, "four\n", @ca, '-mtu', 576,
	'-cert', $pki{client_long_crt}, '-key', $pki{client_long_key},
	'-cert_chain', $pki{client_long_crt});

like($out, qr/^e:four$/m, 'client chain at 576: echo');
cmp_ok($r->{c2s_cert_datagrams}, '>', 1,
	'client chain at 576: client Certificate in several datagrams');
ok($r->{c2s_max} && $r->{c2s_max} <= 576,
	"client chain at 576: largest datagram from the client $r->{c2s_max}");
ok($r->{s2c_max} && $r->{s2c_max} <= 576,
	"client chain at 576: largest datagram from nginx $r->{s2c_max}");

# without the relay, the client at 576 and nginx at 1200

$out = s_client($long1200, "three\n", @ca, @client_cert, '-mtu', 576);
like($out, qr/^e:three$/m, 'client mtu 576, nginx 1200');

# SNI routing: $dtls_server_name in a map picks the upstream

$out = s_client($sni, "x\n", @ca, @client_cert, '-servername', 'a.example');
like($out, qr/^A:x$/m, 'sni a.example: backend_a');

$out = s_client($sni, "y\n", @ca, @client_cert, '-servername', 'b.example');
like($out, qr/^B:y$/m, 'sni b.example: backend_b');

$out = s_client($sni, "z\n", @ca, @client_cert, '-servername', 'c.example');
like($out, qr/^A:z$/m, 'sni c.example: default');

$out = s_client($sni, "w\n", @ca, @client_cert, '-noservername');
like($out, qr/^A:w$/m, 'no sni: default');

# openssl s_client with a client certificate

$out = s_client($sni, "cert\n", @ca, @client_cert);
like($out, qr/^A:cert$/m, 's_client: client certificate, echo');
like($out, qr/Verify return code: 0 \(ok\)/, 's_client: server verified');
like($out, qr/Cipher is ECDHE-ECDSA-/, 's_client: ECDHE-ECDSA suite');

# default suites with certificates only: no PSK suite, no CBC suite

my $mark = log_mark($t);

$out = s_client($sni, "psk\n", '-psk_identity', 'dev-1', '-psk', $key,
	'-cipher', 'PSK-AES128-GCM-SHA256');
unlike($out, qr/^[AB]:/m, 'certificates only: PSK client gets nothing');
ok(wait_log($t, qr/DTLS handshake failed: no shared cipher/, 3, $mark),
	'certificates only: PSK client, no shared cipher');

$mark = log_mark($t);

$out = s_client($sni, "cbc\n", @ca, @client_cert,
	'-cipher', 'ECDHE-ECDSA-AES128-SHA');
unlike($out, qr/^[AB]:/m, 'CBC suite: nothing');
ok(wait_log($t, qr/DTLS handshake failed: no shared cipher/, 3, $mark),
	'CBC suite: no shared cipher');

$mark = log_mark($t);

$out = s_client($psk, "cbc\n", '-psk_identity', 'dev-1', '-psk', $key,
	'-cipher', 'PSK-AES128-CBC-SHA');
unlike($out, qr/^e:/m, 'PSK CBC suite: nothing');
ok(wait_log($t, qr/DTLS handshake failed: no shared cipher/, 3, $mark),
	'PSK CBC suite: no shared cipher');

# certificates and PSK: both kinds of client

$out = s_client($both, "psk\n", '-psk_identity', 'dev-1', '-psk', $key,
	'-cipher', 'PSK-AES128-GCM-SHA256');
like($out, qr/^e:psk$/m, 'certificates and PSK: PSK client');

$out = s_client($both, "cert\n", @ca, @client_cert);
like($out, qr/^e:cert$/m, 'certificates and PSK: certificate client');

# a client without a certificate is refused (dtls_verify_client is on)

$mark = log_mark($t);

$out = s_client($both, "nocert\n", @ca);
unlike($out, qr/^e:/m, 'no client certificate: nothing');
ok(wait_log($t, qr/DTLS handshake failed: client sent no required cert/,
	3, $mark), 'no client certificate: logged');

# gnutls-cli

SKIP: {
	skip 'no gnutls-cli', 8 unless $gnutls;

	my ($port) = $sni =~ /:(\d+)$/;

	$out = gnutls_cli($port, "gnutls\n",
		'--x509cafile=' . $pki{ca},
		'--x509certfile=' . $pki{client_crt},
		'--x509keyfile=' . $pki{client_key},
		'--verify-hostname=' . $pki{server_name},
		'--sni-hostname=b.example',
		'--priority=NORMAL:-VERS-ALL:+VERS-DTLS1.2');

	like($out, qr/Handshake was completed/, 'gnutls-cli: certificates');
	like($out, qr/Status: The certificate is trusted/,
		'gnutls-cli: server certificate verified');
	like($out, qr/Successfully sent 1 certificate/,
		'gnutls-cli: client certificate sent');
	like($out, qr/^B:gnutls$/m, 'gnutls-cli: certificates, echo');

	($port) = $long576 =~ /:(\d+)$/;

	$out = gnutls_cli($port, "long\n",
		'--x509cafile=' . $pki{ca},
		'--x509certfile=' . $pki{client_crt},
		'--x509keyfile=' . $pki{client_key},
		'--verify-hostname=' . $pki{server_name},
		'--mtu=576',
		'--priority=NORMAL:-VERS-ALL:+VERS-DTLS1.2');

	like($out, qr/^e:long$/m, 'gnutls-cli: chain at mtu 576');

	($port) = $psk =~ /:(\d+)$/;

	$out = gnutls_cli($port, "gnutls-psk\n",
		'--pskusername=dev-1', '--pskkey=' . $key,
		'--priority=NORMAL:-VERS-ALL:+VERS-DTLS1.2:-KX-ALL:+PSK:+ECDHE-PSK');

	like($out, qr/Handshake was completed/, 'gnutls-cli: PSK');
	like($out, qr/^- Description: \S*-\((?:ECDHE-)?PSK\)-/m,
		'gnutls-cli: PSK key exchange');
	like($out, qr/^e:gnutls-psk$/m, 'gnutls-cli: PSK, echo');
}

# the access log

$t->stop();

my $log = $t->read_file('access.log');

my ($long_port) = $long576 =~ /:(\d+)$/;
my ($sni_port) = $sni =~ /:(\d+)$/;
my ($psk_port) = $psk =~ /:(\d+)$/;
my ($both_port) = $both =~ /:(\d+)$/;

my $dn = quotemeta $pki{client_dn};
my $i_dn = quotemeta $pki{client_i_dn};
my $long_dn = quotemeta $pki{client_long_dn};

# "$dtls_server_name" "$dtls_client_s_dn" "$dtls_client_i_dn"
# $dtls_client_verify "$dtls_psk_identity" $dtls_protocol $dtls_cipher

like($log, qr/^$long_port "-" "$dn" "$i_dn" SUCCESS "-" DTLSv1\.2 /m,
	'access log: chain at 576');
like($log, qr/^$long_port "-" "$long_dn" "[^"]+" SUCCESS /m,
	'access log: client chain at 576');
like($log, qr/^$sni_port "a\.example" "$dn" "$i_dn" SUCCESS /m,
	'access log: server name a.example');
like($log, qr/^$sni_port "b\.example" "$dn" /m,
	'access log: server name b.example');
like($log, qr/^$sni_port "-" "$dn" "$i_dn" SUCCESS "-" DTLSv1\.2 /m,
	'access log: no server name, client DN, issuer DN');
like($log, qr/^$sni_port "-" "$dn" "$i_dn" \S+ "-" \S+ ECDHE-ECDSA-\S+ 200$/m,
	'access log: ECDHE-ECDSA suite');
like($log, qr/^$both_port "-" "-" "-" NONE "dev-1" DTLSv1\.2 PSK-AES128-GCM-/m,
	'access log: PSK session with certificates set');

SKIP: {
	skip 'no gnutls-cli', 1 unless $gnutls;

	like($log, qr/^$psk_port "-" "-" "-" NONE "dev-1" DTLSv1\.2 \S*PSK-/m,
		'access log: gnutls-cli PSK session');
}

unlike($log, qr/ DTLSv1\.2 \S*(?:CBC|-SHA) \d+$/m, 'no CBC suite used');

is(log_alerts($t), '', 'no alerts');

###############################################################################

# openssl s_client: the input is sent, then it waits a second for the reply

sub s_client {
	my ($peer, $input, @args) = @_;

	my $cmd = "(printf '$input'; sleep 1) | timeout 10 openssl s_client "
		. "-dtls1_2 -connect $peer " . join(' ', @args) . " 2>&1";

	return `$cmd`;
}

sub gnutls_cli {
	my ($port, $input, @args) = @_;

	my $cmd = "(printf '$input'; sleep 1) | timeout 10 gnutls-cli --udp "
		. "-p $port 127.0.0.1 " . join(' ', @args) . " 2>&1";

	return `$cmd`;
}

# s_client through a UDP relay that records every datagram; returns the
# client's output and what was seen

sub relayed {
	my ($peer, $input, @args) = @_;

	my ($host, $port) = $peer =~ /^(.+):(\d+)$/;

	my $front = IO::Socket::IP->new(LocalHost => '127.0.0.1',
		LocalPort => 0, Proto => 'udp') or die "relay: $@\n";
	my $back = IO::Socket::IP->new(PeerHost => $host, PeerPort => $port,
		Proto => 'udp') or die "relay: $@\n";

	my $relay = '127.0.0.1:' . $front->sockport();
	my $outfile = $t->testdir() . '/relay.out';

	my $pid = spawn($t, $outfile, 'sh', '-c',
		"(printf '$input'; sleep 1) | timeout 10 "
		. "openssl s_client -dtls1_2 -connect $relay @args");

	my %r = (s2c_max => 0, c2s_max => 0, c2s_flight => 0,
		c2s_cert_datagrams => 0, cert_datagrams => 0, cert_len => 0,
		s2c_torn => 0, s2c_sizes => [], s2c_flight => 0);
	my ($flight, $bytes) = (0, 0);
	my %frag;
	my $client;
	my $sel = IO::Select->new($front, $back);
	my $end = time() + 15;

	while (time() < $end) {
		last if waitpid($pid, WNOHANG) == $pid;

		for my $s ($sel->can_read(0.1)) {
			my $buf;

			if ($s == $front) {
				my $from = $front->recv($buf, 65536);
				next unless defined $from;
				$client = $from;
				$r{c2s_max} = length $buf if length $buf > $r{c2s_max};
				my @hs = records($buf, 22);
				$r{c2s_flight}++
					if grep { $_->{msg_type} =~ /^(11|15|16)$/ } @hs;
				$r{c2s_cert_datagrams}++
					if grep { $_->{msg_type} == 11 } @hs;

				# the server's flight: what answers a ClientHello
				# until the client sends its own flight (the
				# largest, if the client had to send it again)

				$flight = 0
					if grep { $_->{msg_type} =~ /^(-1|1|11|16)$/ } @hs;
				$flight = 1, $bytes = 0
					if grep { $_->{msg_type} == 1 } @hs;

				$back->send($buf);

			} else {
				next unless defined $back->recv($buf, 65536);
				$r{s2c_max} = length $buf if length $buf > $r{s2c_max};
				$bytes += length $buf if $flight;
				$r{s2c_flight} = $bytes if $bytes > $r{s2c_flight};
				$r{s2c_torn}++ unless whole_records($buf);
				push @{$r{s2c_sizes}}, length $buf;

				my @cert = grep { $_->{msg_type} == 11 } records($buf, 22);
				$r{cert_datagrams}++ if @cert;

				for my $h (@cert) {
					$r{cert_len} = $h->{len};
					$frag{$_} = 1 for $h->{offset}
						.. $h->{offset} + $h->{frag_len} - 1;
				}

				$front->send($buf, 0, $client) if $client;
			}
		}
	}

	if (waitpid($pid, WNOHANG) == 0) {
		kill 'KILL', $pid;
		waitpid($pid, 0);
	}

	$r{cert_complete} = $r{cert_len} && keys(%frag) == $r{cert_len};

	return ($t->read_file($outfile), \%r);
}

# a datagram is a sequence of whole DTLS 1.0 or 1.2 records

sub whole_records {
	my ($buf) = @_;

	return 0 unless length $buf;

	while (length $buf) {
		return 0 if length $buf < 13;

		my ($type, $version, $len) = unpack('C n x8 n', $buf);

		return 0 unless $type >= 20 && $type <= 23
			&& ($version == 0xfeff || $version == 0xfefd)
			&& length $buf >= 13 + $len;

		$buf = substr($buf, 13 + $len);
	}

	return 1;
}

# the handshake fragments of the epoch 0 records of a datagram, of one
# content type

sub records {
	my ($buf, $want) = @_;

	my @h;

	while (length $buf >= 13) {
		my ($type, $epoch, $len) = unpack('C x2 n x6 n', $buf);
		my $body = substr($buf, 13, $len);
		$buf = substr($buf, 13 + $len);

		next unless $type == $want;

		if ($epoch != 0) {
			push @h, { msg_type => -1 };
			next;
		}

		while (length $body >= 12) {
			my ($mt, $l1, $l2, $seq, $o1, $o2, $f1, $f2)
				= unpack('C C n n C n C n', $body);
			my $fl = ($f1 << 16) + $f2;

			push @h, { msg_type => $mt, len => ($l1 << 16) + $l2,
				offset => ($o1 << 16) + $o2, frag_len => $fl };

			$body = substr($body, 12 + $fl);
		}
	}

	return @h;
}

###############################################################################

# the test PKI (Test::DTLS::PKI), made in the test directory

sub make_pki {
	my ($dir) = @_;

	my $pki = Test::DTLS::PKI->new("$dir/pki");

	$pki->rsa_chain('big', 4096);

	return (
		ca => $pki->path('root.crt'),
		client_ca => $pki->path('root.crt'),
		long_crt => $pki->path('server-long.crt'),
		long_key => $pki->path('server-long.key'),
		ec_crt => $pki->path('server-ec.crt'),
		ec_key => $pki->path('server-ec.key'),
		big_crt => $pki->path('big.crt'),
		big_key => $pki->path('big.key'),
		big_ca => $pki->path('big-root.crt'),
		server_name => 'localhost',
		client_crt => $pki->path('client.crt'),
		client_key => $pki->path('client.key'),
		client_dn => $pki->info('client')->{subject},
		client_i_dn => $pki->info('client')->{issuer},
		client_long_crt => $pki->path('client-long.crt'),
		client_long_key => $pki->path('client-long.key'),
		client_long_dn => $pki->info('client-long')->{subject},
	);
}

###############################################################################
