#!/usr/bin/perl

# No copy of a key from a PSK database goes back to the allocator unwiped:
# nginx runs under t/tools/freescan.so (as in t/dtls_psk_wipe.t), which
# searches every block given back by free() or moved by realloc().  Two
# cdb databases of 100 keys each, of 16 to 64 bytes: the first mapped at
# start, used by handshakes (a wrong key among them), then replaced under
# the running worker by the second, used too, and nginx stopped.  Neither
# the keys nor their hex text may be found; a canary among nginx.conf's
# arguments, which nginx frees as they are, must be, in the master and in
# a worker.

###############################################################################

use warnings;
use strict;

use Test::More;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::Nginx;
use Test::Nginx::DTLS;
use Test::DTLS::Freescan;
use Test::DTLS::Hello qw/ random /;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Nginx->new()->has(qw/stream udp/)->has_module('dtls');

freescan_needs($t);
plan(skip_all => 'no cdb tool (tinycdb)') unless `cdb -h 2>&1` =~ /cdb -c/;

tool($t, 'dtls_client');

my $d = $t->testdir();

# 100 keys of 16 to 64 bytes, in a database renamed into place

sub db {
	my ($tag) = @_;

	my @keys = map { [ sprintf("%s-%03d", $tag, $_),
		random(16 + int rand 49) ] } 1 .. 100;

	open my $fh, '|-', "cdb -c -t - $d/psk.cdb.new" or die "cdb: $!\n";
	printf $fh "+%d,%d:%s->%s\n", length $_->[0], 2 * length $_->[1],
		$_->[0], unpack('H*', $_->[1]) for @keys;
	print $fh "\n";
	close $fh or die "cdb -c failed\n";

	chmod 0600, "$d/psk.cdb.new";
	rename "$d/psk.cdb.new", "$d/psk.cdb" or die "rename: $!\n";

	return @keys;
}

my @one = db('one');

my $canary = 'canary-' . unpack('H*', random(12));

open my $fh, '>', "$d/patterns" or die "patterns: $!\n";
print $fh "canary " . unpack('H*', $canary) . "\n";
print $fh "psk:$_->[0] " . unpack('H*', $_->[1]) . "\n" for @one;
print $fh "hex:$_->[0] " . unpack('H*', unpack('H*', $_->[1])) . "\n"
	for @one;
close $fh;

# the workers run as root: they map the second database themselves

$t->write_file_expand('nginx.conf', <<"EOF");

${\ ($> == 0 ? 'user root;' : '') }

events {
}

stream {
    server {
        listen                  127.0.0.1:%%PORT_8980_UDP%% udp;
        dtls                    on;
        dtls_psk_file           cdb:psk.cdb;
        dtls_psk_identity_hint  "$canary";
        proxy_pass              127.0.0.1:%%PORT_8981_UDP%%;
        proxy_timeout           3s;
    }
}

EOF

udp_echo($t, '127.0.0.1:' . port(8981, udp => 1));

my $master = freescan_run($t);
$t->plan(8);


###############################################################################

sub session {
	my ($k, $hex) = @_;

	my ($out) = run_tool($t, { timeout => 10 }, 'dtls_client',
		'-c', '127.0.0.1:' . port(8980, udp => 1), '-m', 'echo',
		'-i', $k->[0], '-k', $hex // unpack('H*', $k->[1]), '-t', 1000);

	return $out =~ /^recv hello-1$/m;
}

my $ok = 0;
$ok += session($one[$_ * 5]) for 0 .. 19;
is($ok, 20, 'first database: 20 handshakes');

ok(!session($one[1], 'ff' x 16), 'first database: wrong key refused');

# the second database replaces the first under the running worker

my @two = db('two');

open $fh, '>>', "$d/patterns" or die "patterns: $!\n";
print $fh "psk:$_->[0] " . unpack('H*', $_->[1]) . "\n" for @two;
print $fh "hex:$_->[0] " . unpack('H*', unpack('H*', $_->[1])) . "\n"
	for @two;
close $fh;

sleep 1.1;

$ok = 0;
$ok += session($two[$_ * 5]) for 0 .. 19;
is($ok, 20, 'second database, replaced: 20 handshakes');

is(stop_status($t), 0, 'nginx exits');

###############################################################################

my $scan = freescan_log($t);
my %exited = %{$scan->{exited}};

ok(defined $exited{$master} && keys %exited >= 2,
	'shim in the master and a worker');

canaries_ok($scan, $master);

is(found($scan, qr/^(psk|hex):/), '', 'no database key freed unwiped');

freescan_diag($scan);

###############################################################################
