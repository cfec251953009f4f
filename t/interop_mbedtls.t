#!/usr/bin/perl

# Interop: Mbed TLS 3.6 (Debian 13's source package, built by
# scripts/interop-deps.sh into build/tools/mbedtls_client, its
# programs/ssl/ssl_client2) against nginx with DTLS-PSK, through
# proxy_pass to a UDP echo backend (Test::DTLS::Interop's psk_server),
# without connection IDs: for PSK-AES128-CCM8 and a GCM suite, the
# handshake (the suite in the access log) and 20 requests each echoed
# back.

###############################################################################

use warnings;
use strict;

use Test::More;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::Nginx;
use Test::Nginx::DTLS;
use Test::DTLS::Mbedtls;
use Test::DTLS::Interop;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Nginx->new()->has(qw/stream udp/)->has_module('dtls');

tool($t, 'udp_echo');

mbedtls_client();

# OpenSSL's name, Mbed TLS's

my @suites = (
	[ 'PSK-AES128-CCM8', 'TLS-PSK-WITH-AES-128-CCM-8' ],
	[ 'PSK-AES128-GCM-SHA256', 'TLS-PSK-WITH-AES-128-GCM-SHA256' ],
);

my $key = psk_server($t);

$t->run()->plan(3 * @suites + 1);

my $port = port(8980, udp => 1);

###############################################################################

for my $s (@suites) {
	my ($suite, $name) = @$s;

	my $amark = access_mark($t);

	my ($out, $rc) = mbedtls($t, $port, $key, $name, 20);

	like($out, qr/handshake\.\.\. ok\n.*^ +\[ Ciphersuite is \Q$name\E \]/ms,
		"$suite: handshake") or diag("client exit code $rc:\n$out");

	# each exchange: the request written, and the same bytes read back

	my $written = () = $out =~ /> Write to server: \d+ bytes written/g;
	my $echoed = echoed($out);
	ok($rc == 0 && $written == 20 && $echoed == 20,
		"$suite: 20 requests echoed") or diag("client exit code $rc, "
		. "$written written, $echoed read back:\n$out");

	my ($log) = wait_access($t, 1, 5, $amark);
	like($log // '', qr/^\d+ "dev-1" \Q$suite\E \. 200$/,
		"$suite: access log");
}

$t->stop();

is(log_alerts($t), '', 'no alerts in the error log');

###############################################################################
