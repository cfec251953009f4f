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
# defaults.  And what the tests of connection IDs share: a client's
# datagrams tapped by udp_relay -x, a datagram sent from a new port, the
# access log lines of a server's sessions, and the spoof run.

use warnings;
use strict;

use Test::More;
use Test::Nginx;
use Test::Nginx::DTLS;

use IO::Socket::INET;
use POSIX qw/ WNOHANG /;

use base qw/ Exporter /;

our @EXPORT = qw/ mbedtls_client mbedtls mbedtls_psk echoed echo_ports
	tap_lines udp_send wait_sessions forged spoof_run /;

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

# the client's datagrams a relay passed on (udp_relay -x FILE), in hex

sub tap_lines {
	my ($file) = @_;

	open my $fh, '<', $file or return wantarray ? () : 0;
	my @lines = map { chomp; $_ } <$fh>;
	return wantarray ? @lines : scalar @lines;
}

sub udp_send {
	my ($port, $data) = @_;

	my $s = IO::Socket::INET->new(Proto => 'udp',
		PeerAddr => "127.0.0.1:$port") or die "socket: $!\n";
	$s->send($data);
	close $s;
}

# the access log lines of a server's sessions since a mark, once n are in

sub wait_sessions {
	my ($t, $port, $amark, $n) = @_;

	my @lines;

	wait_for($t, sub {
		@lines = grep { /^$port / } access_lines($t, $amark);
		return @lines >= $n;
	}, 10);

	return @lines;
}

# a record (in hex) with a higher sequence number and a flipped bit: it
# passes for the newest and fails its tag

sub forged {
	my ($hex) = @_;

	my $record = pack('H*', $hex);
	substr($record, 5, 6) = pack('nN', 0, 0x7fffffff);
	substr($record, -1, 1) ^= "\x01";

	return $record;
}

# A client of 1,000 echoes with CID c1c2c3c4 through a relay that taps
# its datagrams into $tap and loses the 995th.  Once 100 have passed, a
# forged copy of the newest and an old one (the 50th) go to the server
# from new ports; once the client is done, a few records behind the
# newest, within the replay window, never seen.  Returns the client's
# exit code and output, and how many datagrams had passed when the two
# were sent.

sub spoof_run {
	my ($t, $port, $tap, $key, $suite) = @_;

	my $relay = udp_relay($t, $port, '-x', $tap, '-L', 995);

	my $pid = daemon($t, $client, mbedtls_psk($relay->{port}, $key, $suite,
		1000, 'cid=1', 'cid_val=c1c2c3c4', 'skip_close_notify=1',
		'max_resend=2', 'read_timeout=300'));

	ok(wait_for($t, sub { tap_lines($tap) >= 100 }, 10),
		'spoof: client echoing');

	my @records = tap_lines($tap);
	my ($old, $last) = @records[50, -1];

	udp_send($port, forged($last));
	udp_send($port, pack('H*', $old));

	my $during = tap_lines($tap);

	ok(wait_for($t, sub { waitpid($pid, WNOHANG) != 0 }, 20), 'spoof: done');
	my $rc = $? >> 8;
	my $out = daemon_output($t, $pid);
	udp_relay_stop($t, $relay);

	udp_send($port, pack('H*', (tap_lines($tap))[994]));

	return ($rc, $out, $during);
}

1;
