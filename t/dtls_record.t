#!/usr/bin/perl

# The module's own DTLS 1.2 record layer (src/ngx_stream_dtls_record.c)
# against OpenSSL's DTLS endpoints: build/tools/dtls_record_diff, which
# needs no nginx.  For every AEAD suite the module offers (and AES-256-CCM)
# it completes an OpenSSL handshake in memory, derives the record keys from
# the server's SSL, and exchanges records both ways, payloads of 0 to 1200
# bytes and a few large; sequence numbers near 2^48, the replay window's
# edges and other epochs module to module, each record checked against an
# independent EVP computation.  See the tool's head comment.

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

my $t = Test::Nginx->new();

tool($t, 'dtls_record_diff');

my @suites = qw/
	PSK-AES128-CCM8 PSK-AES128-CCM PSK-AES128-GCM-SHA256
	PSK-AES256-GCM-SHA384 PSK-CHACHA20-POLY1305 ECDHE-PSK-CHACHA20-POLY1305
	ECDHE-ECDSA-AES128-CCM8 ECDHE-ECDSA-AES128-GCM-SHA256
	ECDHE-ECDSA-AES256-GCM-SHA384 ECDHE-ECDSA-CHACHA20-POLY1305
	ECDHE-ECDSA-AES128-CCM ECDHE-RSA-AES128-GCM-SHA256
	ECDHE-RSA-AES256-GCM-SHA384 ECDHE-RSA-CHACHA20-POLY1305
	PSK-AES256-CCM8 PSK-AES256-CCM
/;

$t->plan(@suites + 4);

###############################################################################

my ($out, $rc) = run_tool($t, { timeout => 120, stderr => 1 },
	'dtls_record_diff');

for my $suite (@suites) {
	my ($line) = $out =~ /^(\Q$suite\E\s.*)$/m;

	like($line // '', qr/: [1-9]\d* passed, 0 failed/, "$suite")
		or diag($line // "no line for $suite");
}

my ($passed, $failed) = $out =~ /^(\d+) passed, (\d+) failed$/m;

ok(defined $failed && $failed == 0, 'no check failed')
	or diag(join "\n", grep { /^FAIL/ } split /\n/, $out);
ok(defined $passed && $passed > 100000, 'checks run')
	or diag("passed: " . ($passed // 'none'));
is($rc, 0, 'exit code');

# each suite's explicit nonce as OpenSSL sends it: CCM's is the epoch and
# sequence, as the module's; GCM's a counter from a random start (RFC 5288
# leaves it to the sender), which the module must take from the record

like($out, qr/^PSK-AES128-CCM8\s.*OpenSSL's nonce: epoch\+seq/m,
	'OpenSSL: CCM nonce is epoch and sequence');

###############################################################################
