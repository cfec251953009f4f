package Test::DTLS::Mbedtls;

# Mbed TLS 3.6's ssl_client2 (build/tools/mbedtls_client, which
# scripts/interop-deps.sh mbedtls builds) as a DTLS PSK client, for
# interop_mbedtls.t and the tests of connection IDs:
#
#	my $client = mbedtls_client();		# or the test skips
#	my ($out, $rc) = mbedtls($t, $port, $key, $suite, 20, 'cid=1');
#	my $pid = daemon($t, $client, mbedtls_psk($port, $key, $suite, 20));
#	echoed($out);		# requests echoed back
#	echo_ports($out);	# and the port udp_echo -s saw for each
#
# The identity is dev-1; later options (read_timeout=300) override the
# defaults.

use warnings;
use strict;

use Test::More;
use Test::Nginx;
use Test::Nginx::DTLS qw/ run_tool /;

use base qw/ Exporter /;

our @EXPORT = qw/ mbedtls_client mbedtls mbedtls_psk echoed echo_ports /;

my $client = "$Test::Nginx::REPO/build/tools/mbedtls_client";

sub mbedtls_client {
	plan(skip_all => "no $client (scripts/interop-deps.sh mbedtls could "
		. "not fetch or build Mbed TLS 3.6)") unless -x $client;

	return $client;
}

# ssl_client2's options: a PSK session of n exchanges with a suite

sub mbedtls_psk {
	my ($port, $key, $suite, $n, @args) = @_;

	return ('server_addr=127.0.0.1', "server_port=$port", 'dtls=1',
		"psk=$key", 'psk_identity=dev-1', "force_ciphersuite=$suite",
		"exchanges=$n", 'read_timeout=2000', 'hs_timeout=500-4000',
		@args);
}

# the client's (output, exit code)

sub mbedtls {
	my ($t, @args) = @_;

	return run_tool($t, { stderr => 1, timeout => 60 }, $client,
		mbedtls_psk(@args));
}

sub echoed {
	my ($out) = @_;
	return scalar(() = $out
		=~ /< Read from server: \d+ bytes read\s+(?:\d+ )?GET /g);
}

# nginx's source port that udp_echo -s saw, for each request echoed

sub echo_ports {
	my ($out) = @_;
	return $out =~ /< Read from server: \d+ bytes read\s+(\d+) GET /g;
}

1;
