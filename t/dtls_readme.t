#!/usr/bin/perl

# The configurations README.md and docs/ show, taken from those files as
# they are and run on test ports: every ```nginx block with "dtls on".
# A client with a key from the PSK file, or a certificate of the test CA,
# gets its datagrams echoed by a backend through nginx; where the example
# routes by SNI, each name reaches its own backend.

###############################################################################

use warnings;
use strict;

use Test::More;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::Nginx;
use Test::Nginx::DTLS;
use Test::DTLS::PKI;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $top = "$FindBin::Bin/..";
my @examples = map { my $f = $_; map { [ $f, $_ ] } examples("$top/$f") }
	'README.md', map { s!^\Q$top/\E!!r } glob("$top/docs/*.md");

plan(skip_all => 'no examples found') unless @examples;

my $t = Test::Nginx->new()->has(qw/stream udp/)->has_module('dtls');

tool($t, 'dtls_client');

my $key = hexkey();
my $pki = Test::DTLS::PKI->new($t->testdir() . '/pki');

$t->plan(4 * @examples);

###############################################################################

for my $example (@examples) {
	my ($name, $conf) = @$example;

	# the example's addresses, ports, keys and certificates, made the test's

	my %files = (
		'dtls.psk' => '%%TESTDIR%%/dtls.psk',
		'certs/server.crt' => $pki->path('server-ec.crt'),
		'certs/server.key' => $pki->path('server-ec.key'),
		'certs/ca.crt' => $pki->path('root.crt'),
	);

	$conf =~ s!/etc/nginx/([\w./]+)!$files{$1} // die "unknown file $1"!ge;
	$conf =~ s/listen(\s+)5684 /listen${1}127.0.0.1:%%PORT_8980_UDP%% /g;
	$conf =~ s/127\.0\.0\.1:5683/127.0.0.1:%%PORT_8981_UDP%%/g;
	$conf =~ s/127\.0\.0\.1:5685/127.0.0.1:%%PORT_8982_UDP%%/g;

	psk_file($t, 'dtls.psk', "# identity:hexkey\ngw-1:$key\n");

	$t->write_file_expand('nginx.conf', "events {\n}\n\n$conf");

	udp_echo($t, '127.0.0.1:' . port(8981, udp => 1), '5683:');
	udp_echo($t, '127.0.0.1:' . port(8982, udp => 1), '5685:');
	$t->run();

	my @client = ('-c', '127.0.0.1:' . port(8980, udp => 1),
		'-m', 'echo', '-n', 3, $conf =~ /dtls_psk_file/
		? ('-i', 'gw-1', '-k', $key)
		: ('-a', $pki->path('client.crt'), '-K', $pki->path('client.key'),
			'-A', $pki->path('root.crt')));

	# with dtls_proxy_protocol the backend echoes the header too: its
	# signature, PROXY over UDP (t/dtls_proxy_protocol.t reads it whole)

	my $pp = $conf =~ /^\s*dtls_proxy_protocol\s+on;/m
		? qr/\\x0d\\x0a\\x0d\\x0a\\x00\\x0d\\x0aQUIT\\x0a!(?:\\x12|").*/
		: '';

	my ($out) = dtls_client($t, @client);

	like($out, qr/^handshake ok /m, "$name: handshake");
	is(scalar(() = $out =~ /^recv 568[35]:${pp}hello-\d$/mg), 3,
		"$name: echo through nginx");

	# an example that maps server names to upstreams routes each name

	SKIP: {
		my ($map) = $conf =~ /map \$dtls_server_name \$\w+ \{(.*?)\}/s;
		skip "$name: no SNI routing", 1 unless $map;

		# upstream name => the echo backend's prefix

		my %backend = map { $_->[0] => $_->[1] == 8981 ? 5683 : 5685 }
			map { [ /^(\w+)/, /PORT_(\d+)_UDP/ ] }
			$conf =~ /upstream (\w+\s*\{\s*server [^;]+);/g;
		my %routes = $map =~ /^\s*(\S+)\s+(\w+);/mg;

		my $ok = 1;

		for my $sni (grep { $_ ne 'default' } keys %routes) {
			($out) = dtls_client($t, @client, '-S', $sni);
			$ok &&= $out =~ /^recv $backend{$routes{$sni}}:${pp}hello-1$/m;

			($out) = dtls_client($t, @client, '-S', "x.$sni");
			$ok &&= $out
				=~ /^recv $backend{$routes{default}}:${pp}hello-1$/m;
		}

		ok($ok, "$name: each server name reaches its upstream");
	}

	$t->stop();

	is(log_alerts($t), '', "$name: no alerts");
}

###############################################################################


# the ```nginx blocks that have "dtls on"

sub examples {
	my ($file) = @_;

	open my $fh, '<', $file or return;
	local $/;
	my $text = <$fh>;

	return grep { /^\s*dtls\s+on;/m } $text =~ /^```nginx\n(.*?)^```/msg;
}

###############################################################################
