#!/usr/bin/perl

# Interop: node-dtls-client (npm, DTLS in TypeScript) against nginx with
# DTLS-PSK, through proxy_pass to a UDP echo backend.  For each default
# suite the client has: the handshake (the suite in the access log), 100
# datagrams each way up to the largest that fits dtls_mtu 1200, the
# client's close_notify, the handshake after a HelloVerifyRequest; once, a
# client with the wrong key.  node-dtls-client offers no session ID and
# no ticket, so there is no resumption to test.
#
# The client is t/interop/node/client.js; node-dtls-client is installed
# into build/interop-node by scripts/interop-deps.sh.  Results also go to
# build/interop/node-dtls-client.tsv (Test::DTLS::Interop).

###############################################################################

use warnings;
use strict;

use Test::More;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::Nginx;
use Test::Nginx::DTLS qw/ :DEFAULT which /;
use Test::DTLS::Interop;

use Time::HiRes qw/ time /;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Nginx->new()->has(qw/stream udp debug/)->has_module('dtls');

tool($t, 'udp_echo');

my $node = which('node')
	or plan(skip_all => 'no node');

my $modules = "$Test::Nginx::REPO/build/interop-node/node_modules";
my $client = "$FindBin::Bin/interop/node/client.js";

plan(skip_all => "no $modules/node-dtls-client (scripts/interop-deps.sh)")
	unless -f "$modules/node-dtls-client/package.json";

my $version = $t->read_file("$modules/node-dtls-client/package.json")
	=~ /"version"\s*:\s*"([^"]+)"/ ? $1 : '?';

# OpenSSL's name, the client's name, the largest datagram that fits
# dtls_mtu 1200 (29 bytes of record for CCM8, 37 for GCM and CCM)

my @suites = (
	[ 'PSK-AES128-CCM8', 'TLS_PSK_WITH_AES_128_CCM_8', 1200 - 29 ],
	[ 'PSK-AES128-CCM', 'TLS_PSK_WITH_AES_128_CCM', 1200 - 37 ],
	[ 'PSK-AES128-GCM-SHA256', 'TLS_PSK_WITH_AES_128_GCM_SHA256', 1200 - 37 ],
	[ 'PSK-AES256-GCM-SHA384', 'TLS_PSK_WITH_AES_256_GCM_SHA384', 1200 - 37 ],
);

my $key = psk_server($t);
$t->run()->plan(5 * @suites + 2);

my $r = Test::DTLS::Interop->new('node-dtls-client', $version);
my $port = port(8980, udp => 1);

###############################################################################

for my $s (@suites) {
	psk_session($t, $r, \&client, $key, @$s);
}

# the wrong key: the client gives up in its own time, nginx says why

wrong_key($t, $r, \&client, $suites[0][1]);

$t->stop();

is(log_alerts($t), '', 'no alerts in the error log');

###############################################################################

sub client {
	return run_tool($t, { stderr => 1, timeout => 30 }, $node, $client,
		'--modules', $modules, '--host', '127.0.0.1', '--port', $port,
		'--timeout', 2000, @_);
}

###############################################################################
