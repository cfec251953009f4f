#!/usr/bin/perl

# No copy of a secret goes back to the allocator unwiped: nginx runs under
# t/tools/freescan.so, which searches every block given back by free() or
# moved by realloc() for the secrets of this test.  Two PSK files of 100
# keys each (loaded, used, unloaded by a reload, and at exit), their text,
# the cookie secret (the file, its digest, the per-epoch keys), the master
# secrets of the sessions made, and OpenSSL's session ticket keys, which
# the shim learns from each SSL_CTX made.  A canary among nginx.conf's
# arguments, which nginx frees as they are, is the control that must be
# found, in the master and in a worker.

###############################################################################

use warnings;
use strict;

use Test::More;

use Digest::SHA qw/ sha256 hmac_sha256 /;
use List::Util qw/ shuffle /;

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

tool($t, 'dtls_client');

my $d = $t->testdir();

# 100 keys of 16 to 64 bytes, in no order: the sort has work to do

sub keys_file {
	my ($name, $tag) = @_;

	my @keys = map { [ sprintf("%s-%03d", $tag, $_),
		random(16 + int rand 49) ] } 1 .. 100;

	psk_file($t, $name, join '', "# $tag\n",
		map { "$_->[0]:" . unpack('H*', $_->[1]) . "\n" } shuffle @keys);

	return @keys;
}

my @psk1 = keys_file('psk1', 'one');
my @psk2 = keys_file('psk2', 'two');

my $secret = random(48);
psk_file($t, 'cookie', $secret);

my $canary = 'canary-' . unpack('H*', random(12));

# "LABEL HEX" lines for the shim, which keeps the file open: a secret
# learnt later is appended

my @patterns;

sub pattern { push @patterns, "$_[0] " . unpack('H*', $_[1]) . "\n" }

sub write_patterns {
	open my $fh, '>>', "$d/patterns" or die "Can't open patterns: $!\n";
	print $fh splice @patterns;
	close $fh;
}

for my $k (@psk1, @psk2) {
	pattern("psk:$k->[0]", $k->[1]);
	pattern("text:$k->[0]", unpack('H*', $k->[1]));
}

my $base = sha256($secret);
my $epoch = int(time() / 60);

pattern('cookie:file', $secret);
pattern('cookie:base', $base);
pattern('cookie:epoch', hmac_sha256(pack('Q>', $_), $base))
	for $epoch - 3 .. $epoch + 3;

pattern('canary', $canary);

my $npatterns = @patterns;

write_patterns();

sub conf {
	my ($psk) = @_;

	$t->write_file_expand('nginx.conf', <<"EOF");

events {
}

stream {
    server {
        listen                  127.0.0.1:%%PORT_8980_UDP%% udp;
        dtls                    on;
        dtls_psk_file           $psk;
        dtls_psk_identity_hint  "$canary";
        dtls_cookie_secret      cookie;
        dtls_cookie_lifetime    60s;
        proxy_pass              127.0.0.1:%%PORT_8981_UDP%%;
        proxy_timeout           3s;
    }
}

EOF
}

conf('psk1');

udp_echo($t, '127.0.0.1:' . port(8981, udp => 1));

my $master = freescan_run($t);
$t->plan(17);


###############################################################################

# a session with a key; the client leaves it open (send-only), so that
# nginx frees it (proxy_timeout) after the test knows its master secret

sub session {
	my ($k, $tag) = @_;

	unlink "$d/keylog";

	my ($out) = do {
		local $ENV{SSLKEYLOGFILE} = "$d/keylog";

		dtls_client($t, { timeout => 10 }, '-m', 'send-only',
			'-c', '127.0.0.1:' . port(8980, udp => 1), '-s', 'x',
			'-i', $k->[0], '-k', unpack('H*', $k->[1]), '-t', 500);
	};

	my ($ms) = $t->read_file('keylog') =~ /^CLIENT_RANDOM \S+ ([0-9a-f]{96})$/m;

	if ($ms) {
		pattern("master:$tag", pack('H*', $ms));
		write_patterns();
	}

	return ($out, $ms);
}

my ($out, $ms) = session($psk1[rand @psk1], 'one');
like($out, qr/^handshake ok .*^recv x$/ms, 'first file: handshake');
ok($ms, 'first file: master secret known');

# a reload to the other file: the master frees the old configuration, the
# old worker ends the session, frees its configuration and exits

my %old = map { $_ => 1 } workers($t);
conf('psk2');

ok(reload_done($t), 'reload to the second file');

($out, $ms) = session($psk2[rand @psk2], 'two');
like($out, qr/^handshake ok .*^recv x$/ms, 'second file: handshake');
ok($ms, 'second file: master secret known');

is(stop_status($t), 0, 'nginx exits');

###############################################################################

# what the shim saw: "hit LABEL pid=PID free|realloc size=N" and one
# "exit pid=PID ... patterns=N tickets=N" a process

my $scan = freescan_log($t);
my %exited = %{$scan->{exited}};
my $tickets = $scan->{tickets}{$master};
my ($old) = keys %old;
my ($new) = grep { $_ != $master && $_ != $old } keys %exited;
$new //= 0;

ok(defined $exited{$master} && defined $exited{$old} && $new,
	'shim in the master and both workers');

# the shim learns ticket keys through libssl's SSL_CTX_new(): not where
# nginx has OpenSSL built in (make OPENSSL=3.5)

my $shared_ssl = `ldd ${\ nginx_binary($t)} 2>/dev/null` =~ /libssl\.so/;

SKIP: {
	skip 'OpenSSL built into nginx: its ticket keys are out of reach', 1
		unless $shared_ssl;

	is($tickets, 2, 'ticket keys of both configurations known');
}

# each worker knew the master secret of its session when it freed it

ok(($exited{$old} // 0) == $npatterns + 1
	&& ($exited{$new} // 0) == $npatterns + 2,
	'master secrets known to the workers');

# the controls: the canary found in the master and in a worker

canaries_ok($scan, $master);

is(found($scan, qr/^psk:one-/), '', 'no key of the first file freed unwiped');
is(found($scan, qr/^psk:two-/), '', 'no key of the second file freed unwiped');
is(found($scan, qr/^text:/), '', 'no PSK file text freed unwiped');
is(found($scan, qr/^cookie:/), '', 'no cookie secret freed unwiped');
is(found($scan, qr/^master:/), '', 'no master secret freed unwiped');
SKIP: {
	skip 'OpenSSL built into nginx: its ticket keys are out of reach', 1
		unless $shared_ssl;

	is(found($scan, qr/^ticket:/), '', 'no session ticket key freed unwiped');
}

freescan_diag($scan);

###############################################################################
