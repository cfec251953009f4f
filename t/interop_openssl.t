#!/usr/bin/perl

# Interoperability with openssl s_client (DTLS 1.2): for every suite of
# the matrix, a handshake (with the HelloVerifyRequest nginx always sends
# first), 100 datagrams each way up to the largest that fits dtls_mtu,
# the client's close_notify at the end of its input, and resumption with
# -sess_out/-sess_in; once, a wrong PSK.  Each check is a test and a row
# for docs/interop.md (Test::DTLS::Interop).

###############################################################################

use warnings;
use strict;

use Test::More;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::Nginx;
use Test::Nginx::DTLS;
use Test::DTLS::PKI;
use Test::DTLS::Interop;
use Test::DTLS::Lines;


###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Nginx->new()->has(qw/stream udp/)->has_module('dtls');
my $l = Test::DTLS::Lines->new($t);

tool($t, 'udp_echo');

my ($version) = `openssl version 2>/dev/null` =~ /^OpenSSL (\S+)/;
plan(skip_all => 'no openssl binary') unless $version;
my ($pki, $key, $wrong) = $l->server();

# suite => PSK or certificate, record overhead at dtls_mtu 1200

my @suites = (
	[ 'PSK-AES128-CCM8', 'psk', 29 ],
	[ 'PSK-AES128-GCM-SHA256', 'psk', 37 ],
	[ 'PSK-AES256-GCM-SHA384', 'psk', 37 ],
	[ 'PSK-CHACHA20-POLY1305', 'psk', 29 ],
	[ 'ECDHE-PSK-CHACHA20-POLY1305', 'psk', 29 ],
	[ 'ECDHE-ECDSA-AES128-GCM-SHA256', 'cert', 37 ],
	[ 'ECDHE-ECDSA-AES128-CCM8', 'cert', 29 ],
	[ 'ECDHE-ECDSA-CHACHA20-POLY1305', 'cert', 29 ],
	[ 'ECDHE-RSA-AES128-GCM-SHA256', 'cert', 37 ],
);

my $supported = `openssl ciphers -s -tls1_2 -psk 'ALL:PSK' 2>/dev/null` || '';
my %supported = map { $_ => 1 } split /:/, $supported =~ s/\s+//gr;

$t->run()->plan(5 * @suites + 2);

my $r = Test::DTLS::Interop->new('openssl s_client', $version);

my $peer = '127.0.0.1:' . port(8980, udp => 1);
my $wrong_port = port(8981, udp => 1);

my @psk = ('-psk_identity', 'dev-1', '-psk', $key);
my @cert = ('-cert', $pki->path('client.crt'),
	'-key', $pki->path('client.key'),
	'-CAfile', $pki->path('root.crt'), '-verify_return_error');

###############################################################################

for my $s (@suites) {
	my ($suite, $kind, $overhead) = @$s;

	SKIP: {
		skip "$suite: not supported by this openssl", 5
			unless $supported{$suite};

		suite($suite, $kind, $overhead);
	}
}

# a wrong PSK: the client fails on its own, nginx says why

$l->wrong_key($r, 's_client', 'openssl', 's_client', '-dtls1_2',
	'-connect', "127.0.0.1:$wrong_port", '-psk_identity', 'dev-1',
	'-psk', $wrong, '-cipher', 'PSK-AES128-CCM8', '-quiet', '-no_ign_eof');

$t->stop();

is(log_alerts($t), '', 'no alerts');

###############################################################################

sub suite {
	my ($suite, $kind, $overhead) = @_;

	my @auth = $kind eq 'psk' ? @psk : @cert;
	my $sess = $t->testdir() . "/$suite.sess";

	# the largest datagram the client may send, so that the echo (one
	# byte more) still fits nginx's dtls_mtu 1200 in one record

	$l->session($r, $suite, 's_client', 1200 - $overhead - 1, undef,
		'openssl', 's_client', '-dtls1_2', '-connect', $peer, @auth,
		'-cipher', $suite, '-quiet', '-no_ign_eof', '-sess_out', $sess);

	# resumption: the saved session offered again

	my $mark = log_mark($t);

	my $c = $l->client({ handshakes => 1, lines => [ "resume\n" ] },
		'openssl', 's_client', '-dtls1_2', '-connect', $peer, @auth,
		'-cipher', $suite, '-quiet', '-no_ign_eof', '-sess_in', $sess);

	my $log = $l->parse_log($mark);
	my ($conn) = @{$log->{done}};
	my $port = defined $conn ? $log->{port}{$conn} : undef;
	my $access = defined $port ? $l->access_line($port) : undef;

	my $resumed = -s $sess && defined $access
		&& $access =~ /^\d+ DTLSv1\.2 \Q$suite\E r /
		&& $c->{out} =~ /^eresume$/m;

	diag("$suite: resumption: access log: " . ($access // 'no line'))
		unless $resumed;

	ok($r->record($suite, 'resumption', $resumed), "$suite: resumption");
}

###############################################################################
