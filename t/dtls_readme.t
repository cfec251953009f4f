#!/usr/bin/perl

# The configurations the README and docs/directives.md show, taken from
# those files as they are, run on test ports: a client with a key from the
# PSK file gets its datagrams echoed by the backend through nginx.

###############################################################################

use warnings;
use strict;

use Test::More;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::Nginx;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my @examples = (
	[ 'README.md', example("$FindBin::Bin/../README.md") ],
	[ 'docs/directives.md',
		example("$FindBin::Bin/../docs/directives.md") ],
);

plan(skip_all => 'no examples found') if grep { !$_->[1] } @examples;

my $t = Test::Nginx->new()->has(qw/stream udp/)->has_module('dtls');

$t->tool('dtls_client');

my $key = unpack('H*', join '', map { chr int rand 256 } 1 .. 16);

$t->plan(3 * @examples);

###############################################################################

for my $example (@examples) {
	my ($name, $conf) = @$example;

	# the example's addresses, ports and PSK file, made the test's

	$conf =~ s!/etc/nginx/dtls\.psk!%%TESTDIR%%/dtls.psk!g;
	$conf =~ s/listen(\s+)5684 /listen${1}127.0.0.1:%%PORT_8980_UDP%% /g;
	$conf =~ s/127\.0\.0\.1:5683/127.0.0.1:%%PORT_8981_UDP%%/g;

	$t->write_file('dtls.psk', "# identity:hexkey\ngw-1:$key\n");
	chmod 0600, $t->testdir() . '/dtls.psk';

	$t->write_file_expand('nginx.conf', "events {\n}\n\n$conf");

	$t->udp_echo('127.0.0.1:' . port(8981, udp => 1), 'coap:');
	$t->run();

	my ($out, $rc) = $t->run_tool('dtls_client',
		'-c', '127.0.0.1:' . port(8980, udp => 1),
		'-i', 'gw-1', '-k', $key, '-m', 'echo', '-n', 3);

	like($out, qr/^handshake ok /m, "$name: handshake");
	is(scalar(() = $out =~ /^recv coap:hello-\d$/mg), 3,
		"$name: echo through nginx");

	$t->stop();

	is($t->log_alerts(), '', "$name: no alerts");
}

###############################################################################

# the first ```nginx block that has "dtls on", with what surrounds it

sub example {
	my ($file) = @_;

	open my $fh, '<', $file or return undef;
	local $/;
	my $text = <$fh>;

	for my $block ($text =~ /^```nginx\n(.*?)^```/msg) {
		return $block if $block =~ /^\s*dtls\s+on;/m;
	}

	return undef;
}

###############################################################################
